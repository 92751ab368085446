"""ONNX graphs built with onnx.helper: Conv and ConvTranspose nodes, their attributes in ONNX's own
conventions, external data only from beside the model, and the damaged files."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.data.modelfiles import find_layer, read_layer, read_model
from convdiff.data.modelfiles.types import LayerKind, PadMode
from convdiff.errors import BadInputError
from convdiff.spec.layer_ref import split_layer_ref
from model_builders import onnx_conv_model, rng

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def ref(path, layer):  # noqa: ANN001, ANN201
    return split_layer_ref(f"{path}#{layer}")


def tensor(name, shape, seed):  # noqa: ANN001, ANN201
    return numpy_helper.from_array(rng(seed).standard_normal(shape).astype(np.float32), name)


def value(name, shape):  # noqa: ANN001, ANN201
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["y1"], name="conv1", pads=[0, 1, 2, 1], strides=[2, 1]),
        helper.make_node("Conv", ["x", "W2"], ["y2"], name="same_lower", auto_pad="SAME_LOWER", strides=[2, 2]),
        helper.make_node("Conv", ["x", "W3", "B3"], ["y3"], auto_pad="SAME_UPPER", strides=[2, 2], dilations=[1, 1]),
        helper.make_node("Conv", ["x", "Wdw"], ["ydw"], name="dw", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "Wg"], ["yg"], name="grouped", group=2, auto_pad="VALID"),
        helper.make_node("ConvTranspose", ["x", "Wt", "Bt"], ["yt"], name="up", strides=[2, 2], group=2,
                         output_padding=[1, 1], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["Wc"], value=tensor("Wc", (3, 4, 1, 1), 9)),
        helper.make_node("Conv", ["x", "Wc"], ["yc"], name="from_constant"),
        helper.make_node("Relu", ["y1"], ["r"], name="relu"),
    ]
    inits = [tensor("W1", (5, 4, 3, 3), 1), tensor("B1", (5,), 2), tensor("W2", (6, 4, 4, 4), 3),
             tensor("W3", (2, 4, 3, 3), 4), tensor("B3", (2,), 5), tensor("Wdw", (8, 1, 3, 3), 6),
             tensor("Wg", (6, 2, 3, 3), 7), tensor("Wt", (4, 3, 3, 3), 8), tensor("Bt", (6,), 10)]
    outputs = [value(n, None) for n in ("y1", "y2", "y3", "ydw", "yg", "yt", "yc", "r")]
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(onnx_conv_model(nodes, inits, [value("x", [1, 4, 10, 11])], outputs), path)
    return path


def test_conv_and_conv_transpose_nodes_with_their_attributes(graph_file):
    model = read_model(str(graph_file))
    by_name = {r.name: r for r in model.layers}
    assert set(by_name) == {"conv1", "same_lower", "y3", "dw", "grouped", "up", "from_constant"}  # y3: no node name
    conv1 = by_name["conv1"]
    # pads [begin_h, begin_w, end_h, end_w] = [0, 1, 2, 1]: rows (0, 2), columns (1, 1)
    assert conv1.config.padding.pads == ((0, 2), (1, 1)) and conv1.config.strides == (2, 1)
    assert (conv1.kernel_layout, conv1.input_shape, conv1.bias_shape) == ("OIHW", (1, 10, 11, 4), (5,))
    assert by_name["same_lower"].config.padding.mode is PadMode.SAME_LOWER
    assert by_name["y3"].config.padding.mode is PadMode.SAME
    assert (by_name["dw"].kind, by_name["dw"].config.groups) == (LayerKind.DEPTHWISE, 4)
    assert (by_name["grouped"].kind, by_name["grouped"].config.padding.mode) == (LayerKind.GROUPED, PadMode.VALID)
    up = by_name["up"]
    assert (up.kind, up.kernel_layout, up.config.filters, up.config.output_padding, up.in_channels) == (
        LayerKind.TRANSPOSED, "IOHW", 6, (1, 1), 4)
    assert model.others["relu"] == "a Relu node"


def test_onnx_weights_come_back_exactly(graph_file):
    loaded = onnx.load(str(graph_file))
    arrays = {t.name: numpy_helper.to_array(t) for t in loaded.graph.initializer}
    conv1 = read_layer(ref(graph_file, "conv1"))
    np.testing.assert_array_equal(conv1.kernel, arrays["W1"])
    np.testing.assert_array_equal(conv1.bias, arrays["B1"])
    assert read_layer(ref(graph_file, "from_constant")).kernel.shape == (3, 4, 1, 1)
    # a named node answers to its output's name too
    assert read_layer(ref(graph_file, "y1")).record.name == "conv1"


@pytest.mark.parametrize("layer", ["conv1", "same_lower", "y3"])
def test_onnx_conv_from_a_file_is_what_onnxruntime_computes(graph_file, layer):
    """--from maps ONNX pads (explicit, SAME_UPPER, SAME_LOWER on this input) to the spec; convdiff's
    float64 reference of the file's layer equals ONNX Runtime running the node."""
    ort = pytest.importorskip("onnxruntime")
    from convdiff.data.specs import FROM, build_spec
    from convdiff.pipeline import CaseOptions, SideConfig
    from helpers import run_case

    spec = build_spec({FROM: f"{graph_file}#{layer}", "input": "random"})
    result = run_case("onnx-file", SideConfig("numpy", spec), SideConfig("nn", spec), CaseOptions())
    assert result.verdict.value in ("identical", "equivalent"), result.verdict
    x = result.side("reference").input
    output = {"conv1": "y1", "same_lower": "y2", "y3": "y3"}[layer]
    session = ort.InferenceSession(str(graph_file), providers=["CPUExecutionProvider"])
    (expected,) = session.run([output], {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    np.testing.assert_allclose(result.side("reference").result.output, expected.transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-5)


def test_external_data_is_read_only_from_beside_the_model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="conv")]
    model = onnx_conv_model(nodes, [tensor("W", (2, 3, 3, 3), 1)], [value("x", [1, 3, 8, 8])], [value("y", None)])
    onnx.save(model, folder / "inside.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    kernel = read_layer(ref(folder / "inside.onnx", "conv")).kernel
    np.testing.assert_array_equal(kernel, numpy_helper.to_array(tensor("W", (2, 3, 3, 3), 1)))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(2 * 3 * 3 * 3 * 4))
    for location in ("../secret.bin", str(secret)):
        loaded = onnx.load(str(folder / "inside.onnx"), load_external_data=False)
        for entry in loaded.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        path = folder / "escape.onnx"
        onnx.save(loaded, path)
        from convdiff.data import modelfiles

        modelfiles._read_layer.cache_clear()
        with pytest.raises(BadInputError, match="outside the model's directory"):
            read_layer(ref(path, "conv"))


def test_a_wrong_node_name_lists_the_nodes(graph_file):
    with pytest.raises(BadInputError, match=r"no convolution layer 'conv2' in .* \(convolution layers: conv1, "):
        find_layer(ref(graph_file, "conv2"))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "weights not stored"])
def test_damaged_onnx_files_are_one_line_exit_2(cli_runner, tmp_path, graph_file, damage):
    path = tmp_path / "bad.onnx"
    if damage == "truncated":
        path.write_bytes(graph_file.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(bytes(rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    else:
        nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="conv")]
        onnx.save(onnx_conv_model(nodes, [], [value("x", [1, 3, 8, 8]), value("W", [2, 3, 3, 3])],
                                  [value("y", None)]), path)
    result = cli_runner.invoke(cli, ["layers", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("convdiff: error: ") and result.output.count("\n") == 1, result.output


def test_cli_layers_json_of_an_onnx_model(cli_runner, graph_file):
    result = cli_runner.invoke(cli, ["layers", str(graph_file), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    conv1 = next(layer for layer in doc["layers"] if layer["name"] == "conv1")
    assert doc["format"] == "onnx" and conv1["padding"] == [[0, 2], [1, 1]] and conv1["kernel_layout"] == "OIHW"


def test_missing_onnx_is_exit_3_with_the_install_command(cli_runner, monkeypatch, graph_file):
    from convdiff.data import modelfiles

    modelfiles._read_model.cache_clear()
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = cli_runner.invoke(cli, ["layers", str(graph_file)])
    assert result.exit_code == 3, result.output
    assert "pip install -e '.[onnx]'" in result.output
