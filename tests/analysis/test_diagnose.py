"""Every diagnosis: the mistake injected -> the diagnosis names it, and no other mistake claims it.

Pure NumPy: the candidate outputs are made with the float64 reference convolution and rounded to
float32, as a float32 backend would return them.
"""

import json
import numpy as np
import pytest

from convdiff.reference.convolution import conv2d_nhwc
from convdiff.analysis.diagnose import CAUSES, diagnose
from convdiff.spec.convspec import ConvSpec, parse_padding

RNG = np.random.default_rng(11)
SPEC = ConvSpec(input_shape=(1, 9, 10, 4), filters=4, kernel_size=(3, 3), padding=parse_padding("same"))
X = RNG.random(SPEC.input_shape)
K = RNG.uniform(-0.5, 0.5, SPEC.kernel_shape)  # C_in == C_out: a swap of I and O keeps the shape
B = RNG.uniform(0.2, 0.5, 4)
OTHER_K = RNG.uniform(-0.5, 0.5, SPEC.kernel_shape)


def conv(x=X, k=K, pads=None, bias=B, strides=(1, 1), spec=SPEC):
    return conv2d_nhwc(x, k, strides, spec.pads if pads is None else pads, (1, 1), bias)


def f32(a):
    return np.asarray(a).astype(np.float32)


def shifted_down(a):
    out = np.zeros_like(a)
    out[:, 1:] = a[:, :-1]
    return out


def extra_row(a):
    return np.concatenate([a, np.zeros_like(a[:, :1])], axis=1)


STRIDED = SPEC.replace(input_shape=(1, 10, 10, 4), strides=(2, 2))  # SAME pads (0, 1) on an even input
X10 = RNG.random(STRIDED.input_shape)

# (mistake, reference spec, candidate spec, reference input, candidate output, kwargs, expected confirmed causes)
MISTAKES = [
    ("float32 candidate", SPEC, SPEC, X, f32(conv()), {}, {"dtype"}),
    ("float16 candidate", SPEC, SPEC, X, conv(f32(X).astype(np.float16), K.astype(np.float16)).astype(np.float16),
     {"candidate_dtype": "float16"}, {"dtype"}),
    ("symmetric pad 1 vs TF SAME (0, 1)", STRIDED, STRIDED.replace(padding=parse_padding("1")), X10,
     f32(conv(X10, pads=((1, 1), (1, 1)), strides=(2, 2), spec=STRIDED)), {}, {"padding"}),
    ("H/W swapped kernel", SPEC, SPEC, X, f32(conv(k=K.transpose(1, 0, 2, 3))), {}, {"kernel_transposed_hw"}),
    ("kernel rotated 180", SPEC, SPEC, X, f32(conv(k=K[::-1, ::-1])), {}, {"kernel_rotated_180"}),
    ("I and O swapped", SPEC, SPEC, X, f32(conv(k=K.transpose(0, 1, 3, 2))), {}, {"weights_permuted"}),
    ("NCHW input read as NHWC", SPEC, SPEC, X, f32(conv(x=X.transpose(0, 3, 1, 2).reshape(X.shape))), {},
     {"input_layout"}),
    ("bias missing", SPEC, SPEC, X, f32(conv(bias=None)), {}, {"bias_missing"}),
    ("bias doubled", SPEC, SPEC, X, f32(conv(bias=2 * B)), {}, {"bias_doubled"}),
    ("output shifted down one row", SPEC, SPEC, X, f32(shifted_down(conv())), {}, {"output_shifted"}),
    ("one extra output row", SPEC, SPEC, X, f32(extra_row(conv())), {}, {"output_size"}),
    ("a different kernel", SPEC, SPEC, X, f32(conv(k=OTHER_K)), {"candidate_kernel": OTHER_K, "candidate_bias": B},
     {"weights_differ"}),
    ("nothing known: noise", SPEC, SPEC, X, f32(conv() + RNG.normal(0, 0.05, conv().shape)), {}, set()),
]


@pytest.mark.parametrize(("mistake", "ref_spec", "cand_spec", "x", "candidate", "kwargs", "expected"), MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_diagnosis_names_the_injected_mistake_and_nothing_else(mistake, ref_spec, cand_spec, x, candidate, kwargs,
                                                               expected):
    kwargs = {"candidate_dtype": "float32", **kwargs}
    hypotheses = diagnose(ref_spec, cand_spec, x, K, B, candidate, reference_dtype="float64", **kwargs)
    assert [h.cause for h in hypotheses] == list(CAUSES)
    confirmed = {h.cause for h in hypotheses if h.confirmed}
    assert confirmed == expected, [(h.cause, h.residual, h.detail) for h in hypotheses]
    for h in hypotheses:
        if h.confirmed:
            assert h.residual is not None and h.residual < 1e-2  # float16 rounding at most


def test_padding_detail_names_each_sides_pads():
    _, _, cand_spec, _, candidate, _, _ = next(m for m in MISTAKES if m[0].startswith("symmetric"))
    h = {h.cause: h for h in diagnose(STRIDED, cand_spec, X10, K, B, candidate, reference_dtype="float64",
                                      candidate_dtype="float32")}["padding"]
    assert "reference pads rows (0, 1), columns (0, 1)" in h.detail
    assert "candidate rows (1, 1), columns (1, 1)" in h.detail


def test_to_json_has_the_documented_keys():
    h = diagnose(SPEC, SPEC, X, K, B, f32(conv(bias=None)), reference_dtype="float64", candidate_dtype="float32")[0]
    from convdiff.report.json import finding_json

    assert set(finding_json(h)) == {"cause", "confirmed", "residual", "detail", "bound_ratio", "same_as"}


def test_rounding_level_separates_float32_from_a_small_real_error():
    # An error of 1e-3 on one element is far above float32 rounding (K = 36): not explained by dtype.
    candidate = f32(conv())
    candidate[0, 4, 4, 0] += 1e-3
    hypotheses = {h.cause: h for h in diagnose(SPEC, SPEC, X, K, B, candidate, reference_dtype="float64",
                                               candidate_dtype="float32")}
    assert not hypotheses["dtype"].confirmed


# --- TF32: what a GPU's tensor cores do to a float32 convolution -------------------------------------


def _tf32_case(rounding):
    from convdiff.reference.convolution import conv2d_nhwc
    from convdiff.reference.rounding import round_to_tf32
    from convdiff.spec.convspec import ConvSpec

    spec = ConvSpec(input_shape=(1, 8, 8, 64), filters=8, kernel_size=(3, 3), use_bias=False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(spec.input_shape).astype(np.float32)
    w = rng.standard_normal(spec.kernel_shape).astype(np.float32)
    if rounding == "tf32":
        out = conv2d_nhwc(round_to_tf32(x), round_to_tf32(w), spec.strides, spec.pads).astype(np.float32)
    else:  # float16 multiplicands: also 10 mantissa bits, but a float16 result
        out = conv2d_nhwc(x.astype(np.float16), w.astype(np.float16), spec.strides, spec.pads).astype(np.float16)
    return spec, x, w, out


def test_tf32_result_is_recognised():
    from convdiff.analysis.diagnose import diagnose

    spec, x, w, out = _tf32_case("tf32")
    hypotheses = {h.cause: h for h in diagnose(spec, spec, x, w, None, out, reference_dtype="float32",
                                                candidate_dtype="float32")}
    assert hypotheses["tf32"].confirmed, hypotheses["tf32"].detail
    assert "consistent with TF32" in hypotheses["tf32"].detail
    assert not hypotheses["dtype"].confirmed  # plain float32 rounding does not explain it


def test_float16_result_is_not_taken_for_tf32():
    from convdiff.analysis.diagnose import diagnose

    spec, x, w, out = _tf32_case("float16")
    hypotheses = {h.cause: h for h in diagnose(spec, spec, x, w, None, out, reference_dtype="float32",
                                                candidate_dtype="float32")}
    assert not hypotheses["tf32"].confirmed, hypotheses["tf32"].detail


def test_tf32_emulation_is_a_numpy_reference_dtype(cli_runner):
    from convdiff.cli import cli

    ok = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--set", "reference.dtype=tf32", "--candidate", "nn",
                                 "--shape", "1,8,8,16", "--filters", "4", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)["comparisons"][0]
    assert doc["reference"]["dtype"] == "tf32" and doc["bound"]["dtype"] == "tf32"
    refused = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", "--dtype", "tf32"])
    assert refused.exit_code == 2
    assert "cannot compute in tf32" in refused.output


# --- the input read with H and W swapped ------------------------------------------------------------

SQUARE = ConvSpec(input_shape=(1, 8, 8, 4), filters=4, kernel_size=(3, 3), padding=parse_padding("same"))
X_SQUARE = RNG.random(SQUARE.input_shape)
WIDE = ConvSpec(input_shape=(1, 14, 10, 4), filters=4, kernel_size=(3, 3), padding=parse_padding("valid"))
X_WIDE = RNG.random(WIDE.input_shape)


def by_cause(findings):
    return {f.cause: f for f in findings}


def test_input_with_h_and_w_swapped_on_a_square_input_is_a_values_mismatch_explained():
    # An NCHW tensor permuted with (0, 3, 2, 1) instead of (0, 2, 3, 1): the candidate convolves the transpose.
    candidate = f32(conv(x=X_SQUARE.transpose(0, 2, 1, 3), spec=SQUARE))
    found = by_cause(diagnose(SQUARE, SQUARE, X_SQUARE, K, B, candidate))
    assert {f.cause for f in found.values() if f.confirmed} == {"input_transposed_hw"}
    assert "H and W swapped" in found["input_transposed_hw"].detail


def test_input_with_h_and_w_swapped_on_a_non_square_input_is_a_shape_mismatch_named_as_such():
    swapped = X_WIDE.transpose(0, 2, 1, 3)
    candidate = f32(conv2d_nhwc(swapped, K, (1, 1), ((0, 0), (0, 0)), (1, 1), B))
    assert candidate.shape == (1, 8, 12, 4) and conv(x=X_WIDE, spec=WIDE).shape == (1, 12, 8, 4)
    found = by_cause(diagnose(WIDE, WIDE, X_WIDE, K, B, candidate))
    assert {f.cause for f in found.values() if f.confirmed} == {"input_transposed_hw"}
    assert "rows and columns are swapped (reference 12x8, candidate 8x12): a shape mismatch" in \
        found["input_transposed_hw"].detail
    # Not "floor vs ceil output size": the output-size hypothesis says what it is.
    assert not found["output_size"].confirmed and "floor vs ceil" not in found["output_size"].detail
    assert "rows and columns are swapped" in found["output_size"].detail


def test_input_transposed_is_not_claimed_for_other_mistakes_or_symmetric_inputs():
    found = by_cause(diagnose(SQUARE, SQUARE, X_SQUARE, K, B, f32(conv(x=X_SQUARE, k=K[::-1, ::-1], spec=SQUARE))))
    assert not found["input_transposed_hw"].confirmed and found["kernel_rotated_180"].confirmed
    symmetric = X_SQUARE + X_SQUARE.transpose(0, 2, 1, 3)
    found = by_cause(diagnose(SQUARE, SQUARE, symmetric, K, B, f32(conv(x=symmetric, spec=SQUARE)) + 1))
    assert "symmetric in H and W" in found["input_transposed_hw"].detail


def test_one_extra_row_is_still_floor_vs_ceil():
    found = by_cause(diagnose(SPEC, SPEC, X, K, B, f32(extra_row(conv()))))
    assert found["output_size"].confirmed and "floor vs ceil output size" in found["output_size"].detail


# --- overflow -------------------------------------------------------------------------------------

def _overflowing():
    x = np.full(SQUARE.input_shape, 50.0)
    # Products of 2500: interior outputs 36 * 2500 = 90000 > 65504 overflow, edges (24) and corners (16) do not.
    k = np.full(SQUARE.kernel_shape, 50.0)
    out = conv2d_nhwc(x.astype(np.float16), k.astype(np.float16), (1, 1), SQUARE.pads, (1, 1), None)
    with np.errstate(over="ignore"):
        return x, k, out.astype(np.float16)


def test_float16_overflow_is_confirmed_as_overflow_not_as_contradictory_causes():
    x, k, candidate = _overflowing()
    assert np.isinf(candidate).any() and np.isfinite(candidate).any()
    found = by_cause(diagnose(SQUARE, SQUARE, x.astype(np.float16), k.astype(np.float16), None, candidate,
                              candidate_dtype="float16"))
    assert {f.cause for f in found.values() if f.confirmed} == {"overflow"}
    assert "overflow in float16" in found["overflow"].detail and "65504" in found["overflow"].detail
    assert "see overflow" in found["dtype"].detail  # not a failed dtype hypothesis


def test_every_output_overflowing_confirms_only_the_overflow():
    x = np.full(SQUARE.input_shape, 200.0)
    k = np.full(SQUARE.kernel_shape, 100.0)  # every output, corners included, overflows float16
    with np.errstate(over="ignore"):
        candidate = conv2d_nhwc(x, k, (1, 1), SQUARE.pads, (1, 1), None).astype(np.float16)
    assert np.isinf(candidate).all()
    found = by_cause(diagnose(SQUARE, SQUARE, x.astype(np.float16), k.astype(np.float16), None, candidate,
                              candidate_dtype="float16"))
    assert {f.cause for f in found.values() if f.confirmed} == {"overflow"}
    assert "NaN/inf pattern is the candidate's at every position" in found["overflow"].detail


def test_no_overflow_no_overflow_hypothesis():
    found = by_cause(diagnose(SPEC, SPEC, X, K, B, f32(conv(bias=None))))
    assert not found["overflow"].confirmed and "no output overflows" in found["overflow"].detail


# --- causes the data cannot tell apart ------------------------------------------------------------

def test_two_causes_with_the_same_recomputation_are_said_to_be_indistinguishable():
    # A kernel symmetric in I and O: swapping H and W equals the permutation (1, 0, 3, 2).
    k = K + K.transpose(0, 1, 3, 2)
    found = by_cause(diagnose(SPEC, SPEC, X, k, B, f32(conv(k=k.transpose(1, 0, 2, 3)))))
    confirmed = {f.cause for f in found.values() if f.confirmed}
    assert confirmed == {"kernel_transposed_hw", "weights_permuted"}
    assert found["kernel_transposed_hw"].same_as == ("weights_permuted",)
    assert found["weights_permuted"].same_as == ("kernel_transposed_hw",)
    assert "cannot be told apart" in found["weights_permuted"].detail
    # A single confirmed cause coincides with nothing.
    single = by_cause(diagnose(SPEC, SPEC, X, K, B, f32(conv(k=K[::-1, ::-1]))))
    assert single["kernel_rotated_180"].confirmed and single["kernel_rotated_180"].same_as == ()


# --- what an equivalent verdict cannot exclude --------------------------------------------------

def test_resolution_names_a_mistake_below_the_rounding_level():
    from convdiff.analysis.diagnose import resolution
    from convdiff.reference.rounding import Arithmetic, rounding_bound

    spec = ConvSpec(input_shape=(1, 8, 8, 16), filters=4, kernel_size=(3, 3), dtype="bfloat16")
    rng = np.random.default_rng(5)
    from convdiff.spec.dtypes import np_dtype

    bf16 = np_dtype("bfloat16")
    x = rng.standard_normal(spec.input_shape).astype(bf16)
    k = (rng.standard_normal(spec.kernel_shape) / 12).astype(bf16)
    tiny = np.full(4, 1e-3).astype(bf16)  # a bias far below bfloat16's rounding of outputs near 1
    exact = conv2d_nhwc(x, k, (1, 1), spec.pads, (1, 1), tiny)
    candidate = conv2d_nhwc(x, k, (1, 1), spec.pads, (1, 1), 2 * tiny.astype(np.float64)).astype(bf16)
    side = Arithmetic("bfloat16", "float32", "bfloat16")
    bound, _ = rounding_bound(x, k, spec, (Arithmetic.exact(), side), bias=tiny, exact=exact)
    res = resolution(spec, spec, x, k, tiny, exact, candidate, bound, candidate_dtype="bfloat16",
                     candidate_arithmetic=side)
    assert "bias_doubled" in res.causes and not res.distinguishable
    # The same mistake with a bias of the outputs' size is far outside the bound: nothing to flag there.
    big = np.full(4, 0.5).astype(bf16)
    exact = conv2d_nhwc(x, k, (1, 1), spec.pads, (1, 1), big)
    bound, _ = rounding_bound(x, k, spec, (Arithmetic.exact(), side), bias=big, exact=exact)
    res = resolution(spec, spec, x, k, big, exact, exact.astype(bf16), bound, candidate_dtype="bfloat16",
                     candidate_arithmetic=side)
    assert not {"bias_doubled", "bias_missing"} & set(res.causes)


def test_resolution_of_float32_is_fine_and_of_bfloat16_coarse():
    from convdiff.analysis.diagnose import RESOLUTION_LIMIT, relative_resolution

    y = np.array([[1.0, -2.0], [0.5, 0.0]])
    bound = np.array([[1e-6, 4e-6], [2e-6, 1e-6]])  # a zero reference value is left out
    # Per channel the best-resolved element (1e-6 / 1, 2e-6 / 2), then the worst channel, times 1.5.
    assert relative_resolution(y, bound) == pytest.approx(1.5 * 2e-6)
    assert relative_resolution(y, 0.01 * np.abs(y) + 0.01) > RESOLUTION_LIMIT
    assert relative_resolution(np.zeros((2, 2)), bound) is None
