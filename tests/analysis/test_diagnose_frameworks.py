"""Framework-specific mistakes diagnosed on real backends (issue 15): each cause confirmed by name when the
mistake is made, and not claimed when it is not.

- ONNX's SAME_LOWER against TF SAME (onnxruntime#9370): TensorFlow on one side, ONNX Runtime on the other;
- ONNX pads written in the wrong order ([t, l, b, r] as [t, b, l, r]): ONNX Runtime given the misread pads;
- Flax's un-flipped transposed kernel (ConvTranspose without transpose_kernel=True) against PyTorch.
"""

import pytest

from convdiff.pipeline import SideConfig
from convdiff.spec import ConvSpec, parse_padding
from convdiff.spec.geometry import from_onnx_pads
from helpers import run_case


def spec(**fields):
    fields = {"seed": 3, "bias_initializer": "glorot_uniform", **fields}
    fields["padding"] = parse_padding(fields.get("padding", "same"))
    return ConvSpec(**fields)


def confirmed(result):
    return {f.cause for f in result.diagnosis if f.confirmed}


def findings(result):
    return {f.cause: f for f in result.diagnosis}


# An even input with stride 2: SAME pads (0, 1) on each axis, SAME_LOWER (1, 0).
STRIDED = spec(input_shape=(1, 8, 10, 3), filters=4, strides=2)


def test_same_lower_against_tf_same_is_named():
    lower = STRIDED.replace(padding=parse_padding("same_lower"))
    assert STRIDED.pads == ((0, 1), (0, 1)) and lower.pads == ((1, 0), (1, 0))
    result = run_case("onnxruntime#9370", SideConfig("nn", STRIDED), SideConfig("onnxruntime", lower))
    assert not result.output
    assert "same_lower" in confirmed(result), findings(result)["same_lower"].detail
    assert "SAME_LOWER's pads rows (1, 0), columns (1, 0)" in findings(result)["same_lower"].detail


def test_same_lower_on_both_sides_is_equivalent():
    lower = STRIDED.replace(padding=parse_padding("same_lower"))
    assert run_case("lower", SideConfig("numpy", lower), SideConfig("onnxruntime", lower)).output
    assert run_case("lower", SideConfig("numpy", lower), SideConfig("jax", lower)).output


def test_same_upper_is_tf_same_in_onnx_runtime():
    upper = STRIDED.replace(padding=parse_padding("same_upper"))
    assert upper == STRIDED
    assert run_case("upper", SideConfig("nn", STRIDED), SideConfig("onnxruntime", upper)).output


def test_same_lower_is_not_claimed_for_another_mistake_or_an_even_total():
    # The bias left out by the candidate: SAME on both sides, the pads are right.
    no_bias = run_case("no bias", SideConfig("nn", STRIDED), SideConfig("onnxruntime", STRIDED.replace(use_bias=False)))
    assert not no_bias.output
    assert "bias_missing" in confirmed(no_bias) and "same_lower" not in confirmed(no_bias)
    assert "odd pad at the start" in findings(no_bias)["same_lower"].detail  # tried, and it does not match
    # Stride 1, kernel 3: the total pad is even, SAME_LOWER pads as SAME does, nothing to tell apart.
    odd = spec(input_shape=(1, 7, 7, 3), filters=4)
    lower = odd.replace(padding=parse_padding("same_lower"))
    assert lower.pads == odd.pads
    assert run_case("even total", SideConfig("nn", odd), SideConfig("onnxruntime", lower)).output


# Explicit pads whose two orders differ and give the same output size: (t, b) = (0, 2), (l, r) = (1, 1).
PADDED = spec(input_shape=(1, 7, 8, 3), filters=4, padding="0,2,1,1")


def test_onnx_pads_read_in_the_wrong_order_are_named():
    misread = from_onnx_pads([0, 2, 1, 1])  # [t, b, l, r] taken as ONNX's [t, l, b, r]
    assert misread == ((0, 1), (2, 1)) and misread != PADDED.pads
    candidate = PADDED.replace(padding=parse_padding([list(p) for p in misread]))
    result = run_case("pads order", SideConfig("torch", PADDED), SideConfig("onnxruntime", candidate))
    assert not result.output
    assert "onnx_pads_order" in confirmed(result), findings(result)["onnx_pads_order"].detail
    assert "read as ONNX's [begins..., ends...]" in findings(result)["onnx_pads_order"].detail


def test_onnx_pads_in_the_right_order_are_equivalent_and_the_cause_is_not_claimed_otherwise():
    assert run_case("pads", SideConfig("torch", PADDED), SideConfig("onnxruntime", PADDED)).output
    # Another explicit-pad mistake (one more row on top): the pads order does not explain it.
    other = PADDED.replace(padding=parse_padding("1,1,1,1"))
    result = run_case("other pads", SideConfig("torch", PADDED), SideConfig("onnxruntime", other))
    assert not result.output
    assert "onnx_pads_order" not in confirmed(result)
    assert "padding" in confirmed(result)


# A transposed convolution with an asymmetric kernel (3 x 2) so that flipping it changes it.
TRANSPOSED = spec(input_shape=(1, 5, 6, 3), filters=4, kernel_size=(3, 2), transposed=True, strides=2,
                  padding="valid")


def test_flax_un_flipped_transposed_kernel_against_pytorch_is_named():
    unflipped = TRANSPOSED.replace(transpose_kernel=False)
    result = run_case("flax default", SideConfig("torch", TRANSPOSED), SideConfig("flax", unflipped))
    assert not result.output
    assert confirmed(result) == {"kernel_not_flipped"}, findings(result)["kernel_not_flipped"].detail
    assert any("transpose_kernel=False (Flax's default)" in n for n in result.sides[1].result.notes)


def test_flax_with_transpose_kernel_matches_pytorch_and_tf():
    assert run_case("flax", SideConfig("torch", TRANSPOSED), SideConfig("flax", TRANSPOSED)).output
    assert run_case("flax", SideConfig("nn", TRANSPOSED), SideConfig("flax", TRANSPOSED)).output


def test_transpose_kernel_false_is_refused_by_every_other_backend():
    from convdiff.backends import REGISTRY, BackendRefusedError

    unflipped = TRANSPOSED.replace(transpose_kernel=False)
    for name, info in REGISTRY.items():
        reason = info.refusal(unflipped)
        assert (reason is None) == (name == "flax"), (name, reason)
    with pytest.raises(BackendRefusedError, match="transpose_kernel=false"):
        run_case("refused", SideConfig("torch", TRANSPOSED), SideConfig("jax", unflipped))
