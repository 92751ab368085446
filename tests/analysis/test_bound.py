"""Precision-aware verdicts, on real TensorFlow convolutions against the float64 NumPy reference.

Figures measured when these tests were written (TF 2.21 CPU, oneDNN on, 2-core Xeon):
- 1x8x8x512 standard-normal input, 3x3x512x16 standard-normal kernel (K = 4608), no bias,
  tf.nn.conv2d float32 vs float64: the fixed float32 rule atol=1e-5, rtol=1.3e-6 flags 25-30% of
  the 1024 outputs of this *correct* convolution (min atol to pass ~3e-6 + rtol part); the bound
  (c = 8, probabilistic, both sides' terms) passes every element using at most ~0.4% of it.
- The same convolution with output channel 5 scaled by 1.01 exceeds the bound at ~60 of its 64
  positions, up to ~12-17x; the worst-case K*u bound lets most of that channel pass.
"""

import numpy as np
import pytest

from convdiff.analysis.bound import bound_comparison, tf32_consistency, ulp_distance
from convdiff.backends import SideResult, Weights, get_backend
from convdiff.compare import Rule, RuleKind, Tolerance, Verdict, compare_arrays
from convdiff.pipeline import CaseOptions, SideConfig, SideRun
from convdiff.pipeline.execute import compare_sides
from convdiff.reference.rounding import PROBABILISTIC_C, BoundForm, gamma, round_to_tf32, rounding_bound
from convdiff.spec import ConvSpec

BIG_K = ConvSpec(input_shape=(1, 8, 8, 512), filters=16, use_bias=False)


def normal_case(spec: ConvSpec, seed: int, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.input_shape).astype(dtype)
    w = rng.standard_normal(spec.kernel_shape).astype(dtype)
    b = rng.standard_normal(spec.filters).astype(dtype) if spec.use_bias else None
    return x, w, b


def sides(spec, x, ref: SideResult, cand: SideResult):
    return (SideRun("reference", SideConfig(ref.backend, spec), x, ref),
            SideRun("candidate", SideConfig(cand.backend, spec), x, cand))


def run_pair(spec, x, w_ref, w_cand, b=None, candidate="nn", options=CaseOptions()):
    """numpy (float64) reference with w_ref vs a TF candidate with w_cand, through the pipeline's comparison."""
    ref = get_backend("numpy").run(spec, x, Weights(w_ref, b))
    cand = get_backend(candidate).run(spec, x, Weights(w_cand, b))
    return compare_sides("t", sides(spec, x, ref, cand), options)


def check_bound(reference, candidate, bound, g, equal_nan=False):
    return compare_arrays(reference, candidate, rule=Rule.bound(g, Tolerance(0.0, 0.0, equal_nan)), bound=bound)


# --- the acceptance scenarios --------------------------------------------------------------------


def test_false_alarm_fixed_rule_fails_bound_passes():
    x, w, _ = normal_case(BIG_K, 0)
    case = run_pair(BIG_K, x, w, w)
    # The fixed float32 rule flags a notable fraction of a correct convolution (measured ~26%).
    elementwise = compare_arrays(case.reference.output, case.candidate.output, atol=1e-5, rtol=1.3e-6)
    assert elementwise.mismatch_fraction > 0.05, elementwise.mismatch_fraction
    assert case.output.elementwise_verdict is Verdict.MISMATCH  # the elementwise figure says the same
    # The bound (the default rule) passes everywhere, with a wide margin, and every count follows it.
    assert case.tolerance_mode is RuleKind.BOUND
    assert case.verdict is Verdict.EQUIVALENT and case
    assert case.output.mismatched == 0 and case.output.max_ratio < 0.05
    assert case.output.rule.model.K == 4608 and case.output.rule.model.dtype == "float32"


def test_one_output_channel_scaled_by_1_01_is_caught():
    x, w, _ = normal_case(BIG_K, 0)
    w_bug = w.copy()
    w_bug[..., 5] *= np.float32(1.01)
    case = run_pair(BIG_K, x, w, w_bug)
    assert case.verdict is Verdict.MISMATCH and not case
    assert case.output.max_ratio > 5
    assert case.output.max_ratio_index[3] == 5
    assert case.output.mismatched > 32  # most of the channel's 64 positions, not a stray one
    # Every section counts by the rule that decided: the mismatches, the per-channel counts, the regions.
    assert case.output.mismatch_counts_by_axis[3][5] == case.output.mismatched
    assert sum(case.regions.channels) == case.output.mismatched and case.regions.channels[5] == case.output.mismatched
    assert all(w.index[3] == 5 for w in case.output.worst)
    # The worst case K*u/(1-K*u) is ~68/c times looser: most of the buggy channel hides under it.
    bound, g = rounding_bound(x, w, BIG_K, "float32", BoundForm.WORST_CASE)
    loose = check_bound(case.reference.output[..., 5], case.candidate.output[..., 5], bound[..., 5], g)
    assert loose.median_ratio < 1


@pytest.mark.parametrize("c_in", [3, 64, 512])  # K = 27, 576, 4608
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_correct_float32_passes_and_scaled_channel_fails_across_seeds(c_in, seed):
    spec = ConvSpec(input_shape=(1, 8, 8, c_in), filters=8, use_bias=True)
    x, w, b = normal_case(spec, seed)
    good = run_pair(spec, x, w, w, b)
    assert good.verdict is not Verdict.MISMATCH, good.output
    assert good.output.max_ratio < 0.5  # margin: measured <= 0.2 (K=27) down to ~0.01 (K=4608)
    w_bug = w.copy()
    w_bug[..., 2] *= np.float32(1.01)
    assert run_pair(spec, x, w, w_bug, b).verdict is Verdict.MISMATCH


def test_keras_float32_passes_the_bound_at_large_k():
    x, w, _ = normal_case(BIG_K, 4)
    assert run_pair(BIG_K, x, w, w, candidate="keras-call").verdict is Verdict.EQUIVALENT


# --- lower precisions ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["nn", "keras"])
def test_lower_precisions_pass_their_own_bound(dtype, backend):
    from convdiff.spec.dtypes import np_dtype

    spec = ConvSpec(input_shape=(1, 6, 6, 64), filters=4, dtype=dtype)
    x, w, b = normal_case(spec, 0, np_dtype(dtype))
    case = run_pair(spec, x, w, w, b, candidate=backend)
    assert case.candidate.compute_dtype == dtype
    assert case.output.rule.model.dtype == dtype  # the lower compute precision of float64 and dtype
    assert case.verdict is Verdict.EQUIVALENT, case.output
    # float32 accumulation, one final rounding: most outputs land on the nearest value (near-zero
    # outputs after cancellation can be several ULPs off).
    assert case.ulp.dtype == dtype and case.ulp.median <= 1


def test_float16_result_fails_the_float32_bound():
    spec = ConvSpec(input_shape=(1, 6, 6, 64), filters=4, use_bias=False)
    x, w, _ = normal_case(spec, 0)
    exact = get_backend("numpy").run(spec, x, Weights(w)).output
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    half = tf.nn.conv2d(x.astype(np.float16), w.astype(np.float16), 1, "SAME").numpy()
    assert not bound_comparison(exact, half, x, w, spec, "float32")
    assert bound_comparison(exact, half, x, w, spec, "float16")


# --- three-way ------------------------------------------------------------------------------------


def test_three_way_names_the_wrong_side():
    spec = BIG_K.replace(padding=BIG_K.padding.explicit(1, 1, 1, 1))  # caffe pads symmetrically
    x, w, _ = normal_case(spec, 0)
    ref = get_backend("nn").run(spec, x, Weights(w))
    # Two correct float32 implementations that sum in different orders: they round differently.
    cand = get_backend("caffe").run(spec, x, Weights(w))
    case = compare_sides("t", sides(spec, x, ref, cand), CaseOptions())
    assert case.output.verdict is Verdict.EQUIVALENT  # not bitwise equal, so the three-way check runs
    assert case.three_way is not None and case.three_way.wrong.value == "neither"
    assert "rounded differently" in case.three_way.summary
    # A corrupted output is blamed on its side.
    bad_out = ref.output.copy()
    bad_out[..., 5] *= np.float32(1.01)
    bad = SideResult("keras-call", bad_out, w, None, "float32")
    case = compare_sides("t", sides(spec, x, ref, bad), CaseOptions())
    assert case.three_way.wrong.value == "candidate"
    assert case.three_way.reference.within and not case.three_way.candidate.within
    assert "candidate is wrong" in case.three_way.summary


# --- TF32 ------------------------------------------------------------------------------------------


def test_round_to_tf32_is_round_to_nearest_even_with_10_mantissa_bits():
    one_ulp = 2.0**-10
    cases = np.array([1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-20, -(1 + 3 * 2**-11), np.finfo(np.float32).max, np.inf], np.float32)
    expected = np.array([1.0, 1 + 2 * one_ulp, 1 + one_ulp, -(1 + 2 * one_ulp), np.inf, np.inf], np.float32)
    np.testing.assert_array_equal(round_to_tf32(cases), expected)
    # In float16's normal range, TF32 and float16 keep the same 10 bits.
    v = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
    np.testing.assert_array_equal(round_to_tf32(v), v.astype(np.float16).astype(np.float32))


# Standard-normal data, K = 576: TF32 results exceed the float32 bound 6x (measured 6.0-6.1x, seeds 5 and 6;
# 26x at K = 144, 1.5x at K = 2304, 0.7x at K = 4608, where the probabilistic float32 accumulation term
# is as large as TF32's cancelling operand roundings) and use 1% of the float32 bound of the emulation.
TF32_SPEC = ConvSpec(input_shape=(1, 8, 8, 64), filters=16, use_bias=False)


def test_tf32_emulation_recognises_tf32_and_rejects_float16():
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    x, w, _ = normal_case(TF32_SPEC, 5)
    # What a GPU with TF32 computes: operands rounded to TF32, float32 accumulation.
    tf32_like = tf.nn.conv2d(round_to_tf32(x), round_to_tf32(w), 1, "SAME").numpy()
    check = tf32_consistency(tf32_like, x, w, TF32_SPEC)
    assert check.consistent, check.summary
    assert "consistent with TF32" in check.summary
    assert check.against_float32.max_ratio > 3 and check.against_tf32.max_ratio < 0.1
    half = tf.nn.conv2d(x.astype(np.float16), w.astype(np.float16), 1, "SAME").numpy().astype(np.float32)
    assert not tf32_consistency(half, x, w, TF32_SPEC)
    plain = tf.nn.conv2d(x, w, 1, "SAME").numpy()
    assert not tf32_consistency(plain, x, w, TF32_SPEC)  # within float32: TF32 is not needed to explain it


# --- pure pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "dtype", "expected"),
    [
        (1.0, np.nextafter(np.float32(1), np.float32(2)), "float32", 1),  # neighbours
        (0.0, -0.0, "float32", 0),  # +0 and -0 coincide
        (np.float32(1e-45), np.float32(-1e-45), "float32", 2),  # across zero: two subnormal steps
        (1.0, 1.0 + 2**-7, "bfloat16", 1),  # bfloat16 neighbours (7 mantissa bits)
        (1.0, 1.0 + 2**-9, "float16", 2),
        (1.0, 1.0 + 2**-10, "tf32", 1),
    ],
)
def test_ulp_distance(a, b, dtype, expected):
    d = ulp_distance(np.array([a, 5.0]), np.array([b, 5.0]), dtype)
    assert d.max == expected and d.median == expected / 2


@pytest.mark.parametrize(
    ("K", "dtype", "form", "expected"),
    [
        (4608, "float32", BoundForm.PROBABILISTIC, PROBABILISTIC_C * 4608**0.5 * 2**-24),
        (4608, "float32", BoundForm.WORST_CASE, 4608 * 2**-24 / (1 - 4608 * 2**-24)),
        (147, "bfloat16", BoundForm.PROBABILISTIC, PROBABILISTIC_C * 147**0.5 * 2**-8),
        (300, "bfloat16", BoundForm.WORST_CASE, float("inf")),  # K*u >= 1: no worst-case bound
    ],
)
def test_gamma(K, dtype, form, expected):
    assert gamma(K, dtype, form).value == pytest.approx(expected)


def test_check_bound_edges():
    from convdiff.reference.rounding import Arithmetic, RoundingModel

    g = RoundingModel(BoundForm.PROBABILISTIC, 1, (Arithmetic.computing_in("float32"),))
    ref = np.array([1.0, 0.0, np.inf, np.nan, 2.0])
    cand = np.array([1.0, 1e-30, np.inf, np.nan, 2.5])
    bound = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    c = check_bound(ref, cand, bound, g)
    assert c.mismatched == 2  # a nonzero difference over a zero bound; NaN without equal_nan
    assert c.max_ratio == np.inf and c.max_ratio_index == (1,)
    assert check_bound(ref, cand, bound, g, equal_nan=True).mismatched == 1
