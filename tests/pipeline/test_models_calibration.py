"""Regressions found by benchmarks/calibrate_models.py (real Keras, PyTorch and ONNX Runtime), a few cases each:
the correct ports on odd sizes, batches and scaled inputs stay within every bound; when only the final outputs'
elementwise tolerance fails, the note says what the measurement shows (the output is a paired layer's, within
or amplifying, not "from outside the paired convolutions"); a bias added where the reference has none is named
as that, not as a kernel difference."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.analysis.models import LayerVerdict
from convdiff.pipeline.models import compare_models
from convdiff.suites.builtin import small_cnn as sc


@pytest.fixture(scope="module")
def keras():
    return sc._keras()


# (port, input size, batch, input scale): odd and even sizes, a batch of 3, values 1e-3 and 1e3.
CORRECT = [("torch", (15, 15), 3, 1.0), ("onnx", (17, 17), 1, 1e-3), ("keras", (32, 32), 3, 1e3),
           ("torch", (16, 16), 1, 1e3)]


@pytest.mark.parametrize("kind, hw, batch, scale", CORRECT)
def test_correct_ports_add_no_more_than_their_bound(keras, kind, hw, batch, scale):
    model = sc.keras_cnn(1, input_hw=hw)
    x = (np.random.default_rng(3).standard_normal((batch, *hw, 3)) * scale).astype(np.float32)
    result = compare_models(model, getattr(sc, f"{kind}_port")(model), x)
    assert result.first_divergence is None
    assert all(r.verdict in (LayerVerdict.WITHIN, LayerVerdict.AMPLIFIES) for r in result.layers), \
        [(r.pair.reference, r.verdict, r.added_ratio) for r in result.layers]
    assert all(r.added_ratio <= 1 for r in result.layers)


def test_final_outputs_failing_only_the_tolerance_given_are_said_to_be_the_last_layers_rounding(keras):
    # Inputs of 1e3: the head's outputs (up to ~1e3, some cancelling to near 0) differ by float32 rounding. The
    # default final tolerance scales its atol with the outputs' magnitude, so they pass; a tight tolerance
    # given by the user fails them while every layer adds no more than its bound, and the note says so.
    model = sc.keras_cnn(0, input_hw=(16, 16))
    x = (np.random.default_rng(1000).standard_normal((1, 16, 16, 3)) * 1e3).astype(np.float32)
    assert compare_models(model, sc.torch_port(model), x)
    result = compare_models(model, sc.torch_port(model), x, atol=1e-7, rtol=1e-7)
    assert result.first_divergence is None and not result.final and not result
    head = result.layers[-1]
    assert head.added_ratio <= 1
    assert result.note.startswith("the final outputs are the output of paired layer 'head', ")
    assert "outside the paired convolutions" not in result.note
    assert result.note.endswith("only the tolerance given (atol 1e-07, rtol 1e-07) fails")
    # The final outputs judged with a tolerance that fits their scale pass, with no note.
    scaled = compare_models(model, sc.torch_port(model), x, atol=1e-2, rtol=1e-5)
    assert scaled and scaled.note == ""


def test_a_bias_added_where_the_reference_has_none_is_named_as_that(keras):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3, padding="same", use_bias=False,
                                                                           name="a"),
                              keras.layers.ReLU(), keras.layers.Conv2D(5, 3, use_bias=False, name="b")])
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (k,) = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([rng.standard_normal(k.shape).astype(np.float32) * 0.3])

    ka, kb = (np.ascontiguousarray(model.get_layer(n).get_weights()[0].transpose(3, 2, 0, 1)) for n in ("a", "b"))
    bias = rng.uniform(-0.5, 0.5, 5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "wa"], ["ya"], name="first", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["ya"], ["ra"], name="relu"),
         helper.make_node("Conv", ["ra", "wb", "bb"], ["y"], name="second")],
        "bias_added", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 10, 10])],
        [numpy_helper.from_array(ka, "wa"), numpy_helper.from_array(kb, "wb"), numpy_helper.from_array(bias, "bb")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    x = rng.standard_normal((1, 12, 12, 3)).astype(np.float32)
    result = compare_models(model, proto, x)
    first = result.first_divergence
    assert first is not None and (first.reference_layer, first.candidate_layer) == ("b", "second")
    assert first.line == ("b -> second: the candidate adds a bias the reference does not have: "
                          "give layer 'second' no bias")
