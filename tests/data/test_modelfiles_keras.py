"""Keras files (.keras and legacy .h5, written by Keras 3 and by tf-keras): the config read as JSON,
the weights with h5py, the model never deserialised."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.data.modelfiles import find_layer, read_layer, read_model
from convdiff.data.modelfiles.types import LayerKind, PadMode
from convdiff.errors import BadInputError
from convdiff.spec.layer_ref import split_layer_ref
from model_builders import keras_model


def ref(path, layer):  # noqa: ANN001, ANN201
    return split_layer_ref(f"{path}#{layer}")


@pytest.fixture(scope="module")
def model():
    return keras_model()


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("keras")
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")  # Keras 3's legacy HDF5 writer
    return folder


EXPECTED = {  # name: (kind, rank, layout, groups)
    "c1": (LayerKind.CONV, 2, "HWIO", 1),
    "c2": (LayerKind.CONV, 2, "HWIO", 1),
    "dw": (LayerKind.DEPTHWISE, 2, "HWCM", 4),
    "sep/depthwise": (LayerKind.SEPARABLE_DEPTHWISE, 2, "HWCM", 8),
    "sep/pointwise": (LayerKind.SEPARABLE_POINTWISE, 2, "HWIO", 1),
    "grouped": (LayerKind.GROUPED, 2, "HWIO", 3),
    "up": (LayerKind.TRANSPOSED, 2, "HWOI", 1),
    "block/inner": (LayerKind.CONV, 2, "HWIO", 1),
    "c1d": (LayerKind.CONV, 1, "WIO", 1),
    "c3d": (LayerKind.CONV, 3, "DHWIO", 1),
    "up1d": (LayerKind.TRANSPOSED, 1, "WOI", 1),
    "up3d": (LayerKind.TRANSPOSED, 3, "DHWOI", 1),
}


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_every_keras_convolution_layer_with_its_layout(files, name):
    records = {r.name: r for r in read_model(str(files / name)).layers}
    assert {n: (r.kind, r.rank, r.kernel_layout, r.config.groups) for n, r in records.items()} == EXPECTED
    c1 = records["c1"].config
    assert (c1.strides, c1.padding.mode, c1.filters, c1.use_bias) == ((2, 2), PadMode.SAME, 4, True)
    assert records["c2"].config.dilation == (2, 1) and records["c2"].config.kernel_size == (3, 1)
    assert records["up"].config.output_padding == (1, 1)
    assert records["c1d"].config.padding.mode is PadMode.CAUSAL
    assert records["sep/depthwise"].bias_shape is None and records["sep/pointwise"].bias_shape == (6,)
    assert records["grouped"].bias_shape is None and records["grouped"].in_channels == 6


def test_keras_build_config_gives_the_input_shape(files):
    assert find_layer(ref(files / "model.keras", "c1")).input_shape == (1, 16, 16, 3)
    assert find_layer(ref(files / "model.keras", "dw")).input_shape == (1, 4, 8, 4)


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_keras_weights_come_back_exactly(files, model, name):
    for layer_name, key in (("c1", "c1"), ("up", "up"), ("block/inner", None), ("c3d", "c3d")):
        layer = model.get_layer(key) if key else model.get_layer("block").get_layer("inner")
        kernel, bias = layer.get_weights()
        found = read_layer(ref(files / name, layer_name))
        np.testing.assert_array_equal(found.kernel, kernel)
        np.testing.assert_array_equal(found.bias, bias)
    depthwise, pointwise, bias = model.get_layer("sep").get_weights()
    np.testing.assert_array_equal(read_layer(ref(files / name, "sep/depthwise")).kernel, depthwise)
    step = read_layer(ref(files / name, "sep/pointwise"))
    np.testing.assert_array_equal(step.kernel, pointwise)
    np.testing.assert_array_equal(step.bias, bias)


def test_tf_keras_legacy_h5(tmp_path):
    import tf_keras

    inp = tf_keras.Input((10, 10, 2))
    x = tf_keras.layers.Conv2D(3, 3, padding="same", strides=2, name="c1")(inp)
    x = tf_keras.layers.SeparableConv2D(4, 3, name="sep")(x)
    m = tf_keras.Model(inp, x)
    m.save(tmp_path / "tf.h5")
    records = {r.name: r for r in read_model(str(tmp_path / "tf.h5")).layers}
    assert set(records) == {"c1", "sep/depthwise", "sep/pointwise"}
    np.testing.assert_array_equal(read_layer(ref(tmp_path / "tf.h5", "c1")).kernel, m.get_layer("c1").get_weights()[0])
    np.testing.assert_array_equal(read_layer(ref(tmp_path / "tf.h5", "sep/pointwise")).bias,
                                  m.get_layer("sep").get_weights()[2])


def test_keras_conv2d_from_a_file_end_to_end(files, model):
    """--from takes c1's own settings (stride 2, SAME, 4 filters); convdiff's keras side computes what
    the model's layer computes."""
    from convdiff.data.specs import FROM, build_spec
    from convdiff.pipeline import CaseOptions, SideConfig
    from helpers import run_case

    spec = build_spec({FROM: f"{files / 'model.keras'}#c1"})
    assert (spec.input_shape, spec.strides, spec.padding.mode.value, spec.filters) == (
        (1, 16, 16, 3), (2, 2), "same", 4)
    result = run_case("keras-file", SideConfig("numpy", spec), SideConfig("keras-call", spec), CaseOptions())
    assert result.verdict.value in ("identical", "equivalent"), result.verdict
    x = result.side("reference").input
    expected = np.asarray(model.get_layer("c1")(x))
    np.testing.assert_allclose(result.side("candidate").result.output, expected, rtol=1e-5, atol=1e-5)


def test_cli_compare_from_keras_pointwise_step(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", "--from",
                                     f"{files / 'model.h5'}#sep/pointwise", "--shape", "1,4,8,8", "--format", "json"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)["comparisons"][0]["spec"]
    assert (spec["kernel_size"], spec["filters"], spec["padding"], spec["use_bias"]) == ([1, 1], 6, "valid", True)


def test_a_separable_layer_is_named_by_its_steps(files):
    with pytest.raises(BadInputError, match="its steps are sep/depthwise and sep/pointwise"):
        find_layer(ref(files / "model.keras", "sep"))
    with pytest.raises(BadInputError, match=r"no convolution layer 'c9' .*\(convolution layers: c1, c2, dw"):
        find_layer(ref(files / "model.keras", "c9"))


def test_the_model_is_never_deserialised(tmp_path):
    """A Lambda layer's code (Keras stores its bytecode) never runs when convdiff reads the file."""
    import keras

    marker = tmp_path / "ran"
    inp = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="c")(inp)
    x = keras.layers.Lambda(lambda t, m=str(marker): (open(m, "w").close(), t)[1], name="code")(x)
    keras.Model(inp, x).save(tmp_path / "lambda.keras")
    marker.unlink()  # building the model ran it once, symbolically
    keras_layers = read_model(str(tmp_path / "lambda.keras"))
    assert [r.name for r in keras_layers.layers] == ["c"] and keras_layers.others["code"] == "a Lambda layer"
    read_layer(ref(tmp_path / "lambda.keras", "c"))
    assert not marker.exists()


def _rezip(source, target, drop=(), replace=None):  # noqa: ANN001
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            data = (replace or {}).get(info.filename, src.read(info.filename))
            dst.writestr(info.filename, data)


@pytest.mark.parametrize("damage", ["no config", "no weights", "config not json", "truncated zip", "bad hdf5",
                                    "weights only", "truncated weights"])
def test_damaged_keras_files_are_one_line_exit_2(cli_runner, tmp_path, files, model, damage):
    keras_file = files / "model.keras"
    if damage == "no config":
        path = tmp_path / "bad.keras"
        _rezip(keras_file, path, drop=("config.json",))
    elif damage == "no weights":
        path = tmp_path / "bad.keras"
        _rezip(keras_file, path, drop=("model.weights.h5",))
    elif damage == "config not json":
        path = tmp_path / "bad.keras"
        _rezip(keras_file, path, replace={"config.json": b"{'class_name': Functional"})
    elif damage == "truncated zip":
        path = tmp_path / "bad.keras"
        path.write_bytes(keras_file.read_bytes()[:3000])
    elif damage == "bad hdf5":
        path = tmp_path / "bad.h5"
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(500))
    elif damage == "weights only":
        path = tmp_path / "only.weights.h5"
        model.save_weights(path)
    else:
        path = tmp_path / "bad.keras"
        with zipfile.ZipFile(keras_file) as src:
            weights = src.read("model.weights.h5")
        _rezip(keras_file, path, replace={"model.weights.h5": weights[: len(weights) // 3]})
    result = cli_runner.invoke(cli, ["layers", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("convdiff: error: ") and result.output.count("\n") == 1, result.output


def test_keras3_groups_are_found_by_class_name_without_name_attributes(tmp_path, files, model):
    """Keras addresses a layer's weights by its class name in snake case (conv2d, conv2d_1, ...) within its
    model; the `name` attributes on the groups are a convenience older files lack."""
    import h5py

    with zipfile.ZipFile(files / "model.keras") as src:
        (tmp_path / "w.h5").write_bytes(src.read("model.weights.h5"))
    with h5py.File(tmp_path / "w.h5", "r+") as h5:
        h5.visititems(lambda name, obj: obj.attrs.__delitem__("name") if "name" in obj.attrs else None)
    _rezip(files / "model.keras", tmp_path / "plain.keras",
           replace={"model.weights.h5": (tmp_path / "w.h5").read_bytes()})
    for layer_name, layer in (("c2", model.get_layer("c2")), ("grouped", model.get_layer("grouped")),
                              ("block/inner", model.get_layer("block").get_layer("inner"))):
        np.testing.assert_array_equal(read_layer(ref(tmp_path / "plain.keras", layer_name)).kernel,
                                      layer.get_weights()[0])
