"""TFLite model files: the small Keras CNN converted by TensorFlow's own TFLiteConverter (float32, and with
float16 weights), read with the flatbuffer schema and run by the TFLite interpreter; the layers' settings,
the layer-by-layer comparison against the Keras model, TFLite's transposed crops recomputed, and corrupt
files refused with one line. Real TensorFlow, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.analysis.models import LayerVerdict
from convdiff.analysis.pairing import PairedBy
from convdiff.backends.models import MODEL_SUFFIXES, open_model
from convdiff.data.modelfiles.types import LayerKind, PadMode
from convdiff.errors import BadInputError
from convdiff.pipeline.models import compare_models
from convdiff.spec.geometry import tflite_transposed_crops, transposed_same_crops
from convdiff.suites.builtin import small_cnn as sc


def _tf():
    from convdiff.frameworks import import_tensorflow

    return import_tensorflow()


def convert(model, path, float16: bool = False):
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """(keras model, input, float32 .tflite, float16-weights .tflite)."""
    directory = tmp_path_factory.mktemp("tflite")
    model = sc.keras_cnn()
    return (model, sc.example_input(), convert(model, directory / "small_cnn.tflite"),
            convert(model, directory / "small_cnn_f16.tflite", float16=True))


def test_tflite_is_a_model_suffix():
    assert MODEL_SUFFIXES[".tflite"] == "TFLite"


def test_layers_are_read_with_their_kinds_and_settings(cnn):
    model, _, path, _ = cnn
    source = open_model(str(path), "candidate")
    assert source.framework == "TFLite" and not source.channels_first
    assert source.input_shape == (None, 16, 16, 3)
    assert source.skipped == ()
    c1, dw, up, head = source.layers
    assert [layer.record.op for layer in source.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_2D"]
    assert [layer.record.kind for layer in source.layers] == [LayerKind.CONV, LayerKind.DEPTHWISE,
                                                              LayerKind.TRANSPOSED, LayerKind.CONV]
    assert [layer.record.kernel_layout for layer in source.layers] == ["OHWI", "IHWO", "OHWI", "OHWI"]
    assert c1.record.kernel_shape == (8, 3, 3, 3) and c1.record.config.strides == (2, 2)
    assert c1.record.config.padding.mode is PadMode.SAME
    assert dw.groups == 8 and dw.record.config.filters == 16 and dw.record.kernel_shape == (1, 3, 3, 16)
    assert up.transposed and up.record.config.padding.mode is PadMode.SAME and up.record.config.strides == (2, 2)
    assert head.record.config.padding.mode is PadMode.VALID and head.record.config.kernel_size == (1, 1)
    # The converter fuses the ReLU layers after c1 and up (and dw's own) into the ops.
    assert [layer.activation for layer in source.layers] == ["relu", "relu", "relu", "linear"]
    # Canonical kernels equal the Keras ones exactly: HWIO, depthwise (k, k, 1, C*M) c-major, transposed HWOI.
    keras = {name: model.get_layer(name).get_weights() for name in sc.KERAS_LAYERS}
    np.testing.assert_array_equal(c1.kernel, keras["c1"][0])
    np.testing.assert_array_equal(dw.kernel, keras["dw"][0].reshape(3, 3, 1, 16))
    np.testing.assert_array_equal(up.kernel, keras["up"][0])
    np.testing.assert_array_equal(head.kernel, keras["head"][0])
    np.testing.assert_array_equal(up.bias, keras["up"][1])
    assert source.capture_sizes((2, 16, 16, 3)) == [
        2 * 4 * (16 * 16 * 3 + 8 * 8 * 8), 2 * 4 * (8 * 8 * 8 + 8 * 8 * 16), 2 * 4 * (8 * 8 * 16 + 16 * 16 * 4),
        2 * 4 * (16 * 16 * 4 + 16 * 16 * 2)]


def test_keras_against_its_tflite_conversion_passes(cnn):
    model, x, path, _ = cnn
    result = compare_models(model, str(path), x)
    assert bool(result), [(r.pair.reference, r.verdict, r.note) for r in result.layers]
    assert [p.reference for p in result.pairing.pairs] == list(sc.KERAS_LAYERS)
    assert all(p.paired_by is PairedBy.WEIGHTS and p.kernel == "identical" for p in result.pairing.pairs)
    assert not result.pairing.unpaired_reference and not result.pairing.unpaired_candidate
    assert all(r.verdict is not LayerVerdict.NOT_MEASURED for r in result.layers)
    assert all(r.added_ratio <= 1 for r in result.layers)
    assert result.first_divergence is None and bool(result.final)
    # The fused ReLU after c1 and up is applied to the Keras layers' outputs (Keras applies it next).
    notes = {r.pair.reference: r.note for r in result.layers}
    assert "the candidate applies relu inside the layer" in notes["c1"] and "relu" in notes["up"]
    assert notes["dw"] == "" and notes["head"] == ""
    # And the other way round: TFLite as the reference.
    assert bool(compare_models(str(path), model, x))


def test_a_batch_of_two_runs(cnn):
    model, _, path, _ = cnn
    x = sc.example_input(seed=3, batch=2)
    result = compare_models(model, str(path), x)
    assert bool(result) and result.reference.seconds > 0 and result.candidate.layers == 4


def test_float16_weights_pair_by_rounding_and_diverge_as_a_weights_change(cnn):
    """TFLite's float16 conversion stores the weights and biases as float16 constants, each behind a
    DEQUANTIZE op, and computes in float32: every layer pairs as "identical up to float16 rounding", and
    each adds tens to thousands of times its float32 rounding bound (the weights moved by up to 2^-11 of
    their size), so the first layer diverges and the diagnosis names the weights, not a dtype."""
    model, x, _, path = cnn
    source = open_model(str(path), "candidate")
    assert source.skipped == () and len(source.layers) == 4
    assert all(layer.kernel.dtype == np.float16 and layer.bias.dtype == np.float16 for layer in source.layers)
    np.testing.assert_array_equal(source.layers[0].kernel, model.get_layer("c1").get_weights()[0].astype(np.float16))
    result = compare_models(model, str(path), x)
    assert not result
    assert [p.kernel for p in result.pairing.pairs] == ["identical up to float16 rounding"] * 4
    assert all(p.paired_by is PairedBy.WEIGHTS for p in result.pairing.pairs)
    assert all(r.verdict is LayerVerdict.DIVERGES and r.added_ratio > 10 for r in result.layers)
    assert all(r.candidate_dtype == "float32" for r in result.layers)  # it computes in float32
    first = result.first_divergence
    assert first is not None and first.reference_layer == "c1"
    assert first.cause == "weights_differ", first.line
    assert "the candidate's kernel is not the reference's" in first.line
    assert not result.final


# --- transposed crops --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "kernel", "stride"), [(8, 3, 2), (5, 4, 2), (5, 2, 3), (7, 5, 3), (1, 1, 1)])
def test_tflite_same_crops_at_size_times_stride_are_tf_same(size, kernel, stride):
    assert tflite_transposed_crops(size, size * stride, kernel, stride, 1, same=True) == transposed_same_crops(
        size, kernel, stride, 1)


def test_tflite_crops_of_other_output_sizes():
    # Keras Conv2DTranspose(3, strides=2, "same", output_padding=0) asks for 2n - 1 outputs: one crop each side.
    assert tflite_transposed_crops(5, 9, 3, 2, 1, same=True) == (1, 1)
    # VALID with the natural output size: no crop.
    assert tflite_transposed_crops(5, 11, 3, 2, 1, same=False) == (0, 0)
    # VALID with a kernel shorter than the stride (Keras asks for n * stride): one output past the scatter.
    assert tflite_transposed_crops(5, 15, 2, 3, 1, same=False) == (0, -1)


def _single_layer_model(layer, shape):
    from convdiff.frameworks import import_keras

    keras = import_keras()
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(keras)(inputs))
    rng = np.random.default_rng(0)
    conv = model.layers[1]
    conv.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in conv.get_weights()])
    return model


TRANSPOSED = [
    # (what, the layer, input shape, the padding convdiff reads, its output padding)
    ("k3 s2 SAME", lambda k: k.layers.Conv2DTranspose(4, 3, strides=2, padding="same"), (7, 6, 3), "same", None),
    ("k4 s2 SAME", lambda k: k.layers.Conv2DTranspose(4, 4, strides=2, padding="same"), (5, 6, 3), "same", None),
    ("k2 s3 SAME (kernel below the stride)", lambda k: k.layers.Conv2DTranspose(4, 2, strides=3, padding="same"),
     (5, 4, 3), "same", None),
    ("k3 s2 VALID", lambda k: k.layers.Conv2DTranspose(4, 3, strides=2, padding="valid"), (5, 6, 3), "valid", None),
    ("k3 s2 SAME, 2n - 1 outputs", lambda k: k.layers.Conv2DTranspose(4, 3, strides=2, padding="same",
                                                                       output_padding=0), (5, 6, 3), "1", None),
    ("k5 s3 SAME, output_padding (1, 2)", lambda k: k.layers.Conv2DTranspose(4, 5, strides=3, padding="same",
                                                                              output_padding=(1, 2)),
     (5, 6, 3), "1,2,1,1", None),
    ("k2 s3 VALID (an output past the scatter)", lambda k: k.layers.Conv2DTranspose(4, 2, strides=3, padding="valid"),
     (5, 6, 3), "0", (1, 1)),
]


@pytest.mark.parametrize(("what", "layer", "shape", "padding", "output_padding"), TRANSPOSED,
                         ids=[t[0] for t in TRANSPOSED])
def test_transposed_crops_recompute_what_tflite_computes(tmp_path, what, layer, shape, padding, output_padding):
    """The crops read off each TRANSPOSE_CONV reproduce the interpreter's output within the float32 rounding
    bound (the file compared with itself: the candidate layer is recomputed in float64 from its settings),
    and the TFLite model's output is Keras'."""
    model = _single_layer_model(layer, shape)
    path = convert(model, tmp_path / "t.tflite")
    source = open_model(str(path), "reference")
    (conv,) = source.layers
    assert conv.record.op == "TRANSPOSE_CONV"
    assert str(conv.record.config.padding) == padding
    assert conv.record.config.output_padding == output_padding
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    result = compare_models(str(path), str(path), x)
    assert bool(result)
    (layer_result,) = result.layers
    assert layer_result.verdict is LayerVerdict.WITHIN, layer_result.note
    expected = np.asarray(model(x))
    got = source.run(x).output
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * float(np.abs(expected).max()))


@pytest.mark.parametrize(("what", "layer", "shape", "op"), [
    ("grouped", lambda k: k.layers.Conv2D(6, 3, padding="same", groups=3), (8, 8, 6), "CONV_2D"),
    ("depthwise stride 2, M 3", lambda k: k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=3, padding="valid"),
     (9, 8, 2), "DEPTHWISE_CONV_2D"),
    ("tanh fused", lambda k: k.layers.Conv2D(4, 3, padding="same", activation="tanh"), (9, 8, 3), "CONV_2D"),
    ("Conv3D, bias in an ADD", lambda k: k.layers.Conv3D(4, 3, strides=(1, 2, 2), padding="same"), (5, 6, 7, 2),
     "CONV_3D"),
    ("Conv3DTranspose, bias in an ADD", lambda k: k.layers.Conv3DTranspose(4, 3, strides=2, padding="same"),
     (3, 4, 5, 2), "CONV_3D_TRANSPOSE"),
])
def test_other_kinds_pass_against_keras(tmp_path, what, layer, shape, op):
    model = _single_layer_model(layer, shape)
    path = convert(model, tmp_path / "m.tflite")
    source = open_model(str(path), "candidate")
    assert [layer.record.op for layer in source.layers] == [op]
    assert source.layers[0].bias is not None
    x = np.random.default_rng(1).standard_normal((1, *shape)).astype(np.float32)
    result = compare_models(model, str(path), x)
    assert bool(result), [(r.verdict, r.note) for r in result.layers]
    assert result.layers[0].verdict is LayerVerdict.WITHIN
    assert result.pairing.pairs[0].kernel == "identical"


# --- bad files ----------------------------------------------------------------------------------------------


def _one_line_bad_input(path):
    with pytest.raises(BadInputError) as info:
        open_model(str(path), "candidate")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.5, 0.9, 0.99])
def test_a_truncated_file_is_one_bad_input_line(cnn, tmp_path, fraction):
    data = cnn[2].read_bytes()
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[: max(8, int(len(data) * fraction))])
    _one_line_bad_input(bad)


def test_random_bytes_and_a_wrong_identifier_are_one_bad_input_line(cnn, tmp_path):
    noise = tmp_path / "noise.tflite"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "TFL3" in _one_line_bad_input(noise)
    data = bytearray(cnn[2].read_bytes())
    data[4:8] = b"TFL2"
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(bytes(data))
    assert "identifier TFL3" in _one_line_bad_input(wrong)
    short = tmp_path / "short.tflite"
    short.write_bytes(b"TFL3")
    _one_line_bad_input(short)
    _one_line_bad_input(tmp_path)  # a directory named like a file is not one
    assert "not found" in _one_line_bad_input(tmp_path / "missing.tflite")


def test_random_bytes_behind_a_valid_header_are_one_bad_input_line(cnn, tmp_path):
    data = cnn[2].read_bytes()
    rng = np.random.default_rng(5)
    for i in range(5):
        garbage = bytearray(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())
        garbage[4:8] = b"TFL3"
        bad = tmp_path / f"garbage{i}.tflite"
        bad.write_bytes(bytes(garbage))
        _one_line_bad_input(bad)


def test_int8_weights_are_skipped_as_quantized(tmp_path):
    """The converter's default optimisation (dynamic-range quantization) stores the weights of a layer with
    at least 1024 of them as int8 (the small CNN's stay float32): the layer is not compared, it is listed
    with the reason, and a comparison has nothing to pair (exit 2)."""
    tf = _tf()
    model = _single_layer_model(lambda k: k.layers.Conv2D(64, 3, padding="same"), (8, 8, 16))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = tmp_path / "int8.tflite"
    path.write_bytes(converter.convert())
    source = open_model(str(path), "candidate")
    assert source.layers == ()
    ((_, why),) = source.skipped
    assert why.startswith("quantized"), why
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 16)).astype(np.float32)
    with pytest.raises(BadInputError, match="no convolution layer convdiff compares"):
        compare_models(model, str(path), x)
