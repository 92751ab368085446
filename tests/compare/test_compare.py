"""Tests of `convdiff.compare.core`: tables of cases, then properties against a naive oracle."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convdiff.compare import (
    DEFAULT_TOLERANCES,
    Comparison,
    Tolerance,
    Verdict,
    WorstPosition,
    compare_arrays,
    default_tolerance,
)

NAN, INF = math.nan, math.inf
F32 = np.float32


def a32(*values) -> np.ndarray:
    return np.array(values, dtype=F32)


# (reference, candidate, keyword arguments, expected verdict)
VERDICT_CASES = [
    # the same values: bitwise equal
    (a32(1, 2, 3), a32(1, 2, 3), {}, Verdict.IDENTICAL),
    # differences within atol + rtol * |reference|
    (a32(1, 2, 3), a32(1, 2.5, 3), {"atol": 0.0, "rtol": 0.25}, Verdict.EQUIVALENT),
    # one element beyond the tolerance
    (a32(1, 2, 3), a32(1, 2, 4), {"atol": 0.5, "rtol": 0.0}, Verdict.MISMATCH),
    # -0.0 and 0.0 are equal values but different bits
    (a32(0.0), a32(-0.0), {}, Verdict.EQUIVALENT),
    # equal values in different dtypes are never identical
    (a32(1, 2, 3), np.array([1, 2, 3], dtype=np.float64), {}, Verdict.EQUIVALENT),
    # integers compare exactly by default
    (np.array([1, 2]), np.array([1, 3]), {}, Verdict.MISMATCH),
    # ... and are identical when equal
    (np.array([1, 2]), np.array([1, 2]), {}, Verdict.IDENTICAL),
    # shapes differ: no values compared
    (np.zeros((2, 3), F32), np.zeros((3, 2), F32), {}, Verdict.SHAPE_MISMATCH),
    # zero elements are an error, never a vacuous pass
    (np.zeros((0, 3), F32), np.zeros((0, 3), F32), {}, Verdict.EMPTY),
    # NaN on one side only
    (a32(1, 2), a32(1, NAN), {}, Verdict.MISMATCH),
    # NaN at the same position, NaN policy off: a mismatch even though the bits are equal
    (a32(1, NAN), a32(1, NAN), {}, Verdict.MISMATCH),
    # ... with equal_nan: identical bits, so identical
    (a32(1, NAN), a32(1, NAN), {"equal_nan": True}, Verdict.IDENTICAL),
    # ... with equal_nan and a different NaN payload: equivalent, not identical
    (a32(1, NAN), np.array([0x3F800000, 0x7FC00001], dtype=np.uint32).view(F32),
     {"equal_nan": True}, Verdict.EQUIVALENT),
    # an all-NaN output never passes by default
    (np.full(5, NAN, F32), np.full(5, NAN, F32), {}, Verdict.MISMATCH),
    # NaN against a finite value fails even with equal_nan
    (a32(NAN, 1), a32(0, 1), {"equal_nan": True}, Verdict.MISMATCH),
    # infinities of the same sign at the same position match
    (a32(INF, -INF, 1), a32(INF, -INF, 1), {}, Verdict.IDENTICAL),
    # ... also across dtypes
    (a32(INF, 1), np.array([INF, 1.0]), {}, Verdict.EQUIVALENT),
    # infinities of different sign do not
    (a32(INF, 1), a32(-INF, 1), {}, Verdict.MISMATCH),
    # an infinity against a finite value does not, whatever the tolerance
    (a32(INF, 1), a32(1e30, 1), {"atol": 1e38, "rtol": 1.0}, Verdict.MISMATCH),
    # a scalar
    (np.float32(1.0), np.float32(1.0), {}, Verdict.IDENTICAL),
    # booleans compare exactly
    (np.array([True, False]), np.array([True, True]), {}, Verdict.MISMATCH),
    # the same values in another byte order: equal dtype names, different bytes
    (a32(1, 2), a32(1, 2).astype(">f4"), {}, Verdict.EQUIVALENT),
]


@pytest.mark.parametrize(("reference", "candidate", "kwargs", "verdict"), VERDICT_CASES)
def test_verdict(reference, candidate, kwargs, verdict):
    result = compare_arrays(reference, candidate, **kwargs)
    assert result.verdict is verdict
    assert bool(result) is (verdict in (Verdict.IDENTICAL, Verdict.EQUIVALENT))


def test_one_element_off_explains_itself():
    reference = np.zeros((2, 3, 4), dtype=F32)
    candidate = reference.copy()
    candidate[1, 2, 0] = 0.75
    candidate[0, 1, 1] = 0.25  # within atol: a difference, not a mismatch
    result = compare_arrays(reference, candidate, atol=0.5, rtol=0.125, top_k=3)
    assert result.verdict is Verdict.MISMATCH
    assert (result.total, result.mismatched) == (24, 1)
    assert result.mismatch_fraction == 1 / 24
    assert result.max_abs_diff == 0.75
    assert result.max_abs_diff_index == (1, 2, 0)
    assert result.worst == (
        WorstPosition(index=(1, 2, 0), reference=0.0, candidate=0.75, abs_diff=0.75, ratio=1.5),
        WorstPosition(index=(0, 1, 1), reference=0.0, candidate=0.25, abs_diff=0.25, ratio=0.5),
    )
    assert (result.max_ratio, result.max_ratio_index) == (1.5, (1, 2, 0))
    # the smallest atol that passes at rtol 0.125: |0.75 - 0| - 0.125 * |0|
    assert result.min_atol == 0.75
    assert result.max_rel_diff == INF  # the reference is 0 where the candidate is not
    assert result.max_rel_diff_index == (0, 1, 1)  # the first of the infinite ratios
    assert result.sum_abs_diff == 1.0
    assert result.mean_abs_diff == 1.0 / 24
    assert result.rmse == pytest.approx(math.sqrt((0.75**2 + 0.25**2) / 24))
    assert result.mismatch_counts_by_axis == ((0, 1), (0, 0, 1), (1, 0, 0, 0))


def test_min_atol_accounts_for_rtol():
    result = compare_arrays(a32(4, 8), a32(5, 8), atol=0.0, rtol=0.125)
    # |5 - 4| - 0.125 * 4 = 0.5
    assert result.min_atol == 0.5
    assert compare_arrays(a32(4, 8), a32(5, 8), atol=0.5, rtol=0.125)
    assert not compare_arrays(a32(4, 8), a32(5, 8), atol=0.4375, rtol=0.125)


def test_min_atol_is_zero_when_everything_passes_at_zero():
    result = compare_arrays(a32(4, 8), a32(4.25, 8), atol=0.0, rtol=0.125)
    assert result.min_atol == 0.0
    assert result.verdict is Verdict.EQUIVALENT


# (reference, candidate, expected max_rel_diff)
REL_CASES = [
    # relative error divides by the reference: |3 - 2| / 2
    (a32(2), a32(3), 0.5),
    # swapped: |2 - 3| / 3
    (a32(3), a32(2), 1 / 3),
    # a zero reference under a non-zero candidate
    (a32(0), a32(1), INF),
    # zero on both sides: no relative error
    (a32(0), a32(0), 0.0),
]


@pytest.mark.parametrize(("reference", "candidate", "max_rel"), REL_CASES)
def test_relative_error_divides_by_the_reference(reference, candidate, max_rel):
    assert compare_arrays(reference, candidate).max_rel_diff == pytest.approx(max_rel)


def test_rule_is_asymmetric():
    # |2 - 1| <= 0.5 * |2| passes; |1 - 2| <= 0.5 * |1| does not
    assert compare_arrays(a32(2), a32(1), atol=0.0, rtol=0.5)
    assert not compare_arrays(a32(1), a32(2), atol=0.0, rtol=0.5)


def test_shape_mismatch_has_no_value_statistics():
    result = compare_arrays(np.zeros((2, 3), F32), np.ones((3, 2), F32))
    assert result.verdict is Verdict.SHAPE_MISMATCH
    assert not result
    assert (result.shape_match, result.dtype_match) == (False, True)
    assert (result.reference_shape, result.candidate_shape) == ((2, 3), (3, 2))
    assert (result.total, result.mismatched, result.max_abs_diff) == (0, 0, 0.0)
    assert result.max_abs_diff_index is None
    assert result.worst == ()
    assert result.mismatch_counts_by_axis == ()
    assert result.mismatch_fraction == 0.0


def test_dtype_mismatch_is_reported_but_values_compared():
    result = compare_arrays(a32(1, 2), np.array([1.0, 2.0]))
    assert result.verdict is Verdict.EQUIVALENT
    assert (result.reference_dtype, result.candidate_dtype) == ("float32", "float64")
    assert result.shape_match and not result.dtype_match


def test_empty_arrays_are_an_error_not_a_pass():
    result = compare_arrays(np.zeros((0, 4), F32), np.zeros((0, 4), F32))
    assert result.verdict is Verdict.EMPTY
    assert not result
    assert result.total == 0
    assert result.mismatch_counts_by_axis == ((), (0, 0, 0, 0))


# (reference, candidate, kwargs, (reference_nan, candidate_nan, reference_inf, candidate_inf,
#  nan_positions_agree, mismatched))
NONFINITE_CASES = [
    # NaN on the candidate side only
    (a32(1, 2, 3), a32(1, NAN, 3), {}, (0, 1, 0, 0, False, 1)),
    # NaN on the reference side only
    (a32(NAN, 2, 3), a32(1, 2, 3), {}, (1, 0, 0, 0, False, 1)),
    # NaN on both sides at the same position, without equal_nan
    (a32(1, NAN, 3), a32(1, NAN, 3), {}, (1, 1, 0, 0, True, 1)),
    # ... with equal_nan
    (a32(1, NAN, 3), a32(1, NAN, 3), {"equal_nan": True}, (1, 1, 0, 0, True, 0)),
    # NaN on both sides at different positions, with equal_nan
    (a32(NAN, 2, 3), a32(1, NAN, 3), {"equal_nan": True}, (1, 1, 0, 0, False, 2)),
    # infinities of the same sign
    (a32(INF, -INF), a32(INF, -INF), {}, (0, 0, 2, 2, True, 0)),
    # infinities of different sign
    (a32(INF, 1), a32(-INF, 1), {}, (0, 0, 1, 1, True, 1)),
    # an infinity against a NaN
    (a32(INF, 1), a32(NAN, 1), {"equal_nan": True}, (0, 1, 1, 0, False, 1)),
]


@pytest.mark.parametrize(("reference", "candidate", "kwargs", "expected"), NONFINITE_CASES)
def test_nan_and_inf_policy(reference, candidate, kwargs, expected):
    result = compare_arrays(reference, candidate, **kwargs)
    counts = (result.reference_nan, result.candidate_nan, result.reference_inf,
              result.candidate_inf, result.nan_positions_agree, result.mismatched)
    assert counts == expected


def test_nonfinite_positions_are_left_out_of_the_statistics():
    reference = a32(1, NAN, INF, 4)
    candidate = a32(1.5, 2, INF, 4)
    result = compare_arrays(reference, candidate, atol=1.0, rtol=0.0)
    assert result.mismatched == 1  # the NaN
    assert result.max_abs_diff == 0.5
    assert result.max_abs_diff_index == (0,)
    assert result.sum_abs_diff == 0.5
    assert result.mean_abs_diff == 0.5 / 2  # over the two positions finite on both sides
    assert result.min_atol == INF  # no atol passes the NaN
    assert [w.index for w in result.worst] == [(0,)]


def test_all_nan_output_never_passes_by_default():
    reference = np.full((2, 2), NAN, F32)
    result = compare_arrays(reference, reference.copy())
    assert not result
    assert result.mismatched == 4
    assert math.isnan(result.mean_abs_diff)  # no finite position to average over
    assert compare_arrays(reference, reference.copy(), equal_nan=True).verdict is Verdict.IDENTICAL


# (keyword arguments, words the error message must contain)
BAD_ARGUMENTS = [
    # atol without rtol
    ({"atol": 1e-3}, "rtol"),
    # rtol without atol
    ({"rtol": 1e-3}, "atol"),
    # tolerance= and atol/rtol together
    ({"atol": 1e-3, "rtol": 1e-3, "tolerance": Tolerance(1e-3, 1e-3)}, "not both"),
    # equal_nan contradicting the tolerance given
    ({"tolerance": Tolerance(1e-3, 1e-3), "equal_nan": True}, "equal_nan"),
    # a negative tolerance
    ({"atol": -1.0, "rtol": 0.0}, "atol"),
    # a NaN tolerance
    ({"atol": 0.0, "rtol": NAN}, "rtol"),
    # a negative top_k
    ({"top_k": -1}, "top_k"),
    # a zero chunk size
    ({"chunk_size": 0}, "chunk_size"),
]


@pytest.mark.parametrize(("kwargs", "words"), BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        compare_arrays(a32(1), a32(1), **kwargs)


def test_complex_arrays_are_refused():
    with pytest.raises(ValueError, match="complex|real"):
        compare_arrays(np.ones(2, np.complex64), np.ones(2, np.complex64))


def test_tolerance_object_is_an_alternative_to_atol_rtol():
    tolerance = Tolerance(atol=0.5, rtol=0.0, equal_nan=True)
    result = compare_arrays(a32(1, NAN), a32(1.25, NAN), tolerance=tolerance)
    assert result.verdict is Verdict.EQUIVALENT
    assert result.tolerance == tolerance


# (dtypes of the two sides, expected default (atol, rtol))
DEFAULT_CASES = [
    # half precision
    (("float16", "float16"), (1e-5, 1e-3)),
    # bfloat16, by name
    (("bfloat16", "bfloat16"), (1e-5, 1.6e-2)),
    # single precision
    (("float32", "float32"), (1e-5, 1.3e-6)),
    # double precision
    (("float64", "float64"), (1e-7, 1e-7)),
    # the lower precision of the two decides
    (("float32", "float64"), (1e-5, 1.3e-6)),
    # ... whichever side it is on
    (("float64", "float16"), (1e-5, 1e-3)),
    # bfloat16 is coarser than float16
    (("float16", "bfloat16"), (1e-5, 1.6e-2)),
    # integers compare exactly
    (("int32", "int32"), (0.0, 0.0)),
    # an integer against a float takes the float's tolerance
    (("int32", "float32"), (1e-5, 1.3e-6)),
]


@pytest.mark.parametrize(("dtypes", "expected"), DEFAULT_CASES)
def test_default_tolerance(dtypes, expected):
    tolerance = default_tolerance(*dtypes)
    assert (tolerance.atol, tolerance.rtol) == expected


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_default_tolerance_is_applied(dtype):
    result = compare_arrays(np.ones(3, dtype), np.ones(3, dtype))
    assert result.tolerance == DEFAULT_TOLERANCES[dtype]


def test_bfloat16_arrays():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    reference = np.array([1.0, 2.0, NAN, INF], dtype=ml_dtypes.bfloat16)
    candidate = np.array([1.0, 2.015625, NAN, INF], dtype=ml_dtypes.bfloat16)
    result = compare_arrays(reference, candidate, equal_nan=True, chunk_size=3)
    assert result.verdict is Verdict.EQUIVALENT  # 0.015625 <= 1e-5 + 1.6e-2 * 2
    assert result.reference_dtype == "bfloat16"
    assert result.tolerance.rtol == 1.6e-2
    assert result.max_abs_diff == 0.015625
    assert (result.reference_nan, result.reference_inf) == (1, 1)
    assert compare_arrays(reference, reference.copy(), equal_nan=True).verdict is Verdict.IDENTICAL


# (where the mismatches are in an NHWC array of shape (2, 3, 4, 5), expected counts per axis)
PROFILE_CASES = [
    # the whole last row of every image
    ((slice(None), -1, slice(None), slice(None)),
     ((20, 20), (0, 0, 40), (10, 10, 10, 10), (8, 8, 8, 8, 8))),
    # one channel
    ((slice(None), slice(None), slice(None), 2),
     ((12, 12), (8, 8, 8), (6, 6, 6, 6), (0, 0, 24, 0, 0))),
    # one pixel of the second image, all channels
    ((1, 0, 3, slice(None)), ((0, 5), (5, 0, 0), (0, 0, 0, 5), (1, 1, 1, 1, 1))),
    # the first column
    ((slice(None), slice(None), 0, slice(None)),
     ((15, 15), (10, 10, 10), (30, 0, 0, 0), (6, 6, 6, 6, 6))),
]


@pytest.mark.parametrize("chunk_size", [7, 64, 1 << 16])
@pytest.mark.parametrize(("where", "expected"), PROFILE_CASES)
def test_mismatch_counts_by_axis(where, expected, chunk_size):
    reference = np.zeros((2, 3, 4, 5), dtype=F32)
    candidate = reference.copy()
    candidate[where] = 1.0
    result = compare_arrays(reference, candidate, chunk_size=chunk_size)
    assert result.mismatch_counts_by_axis == expected


def test_mismatch_counts_by_axis_dense_and_long_axes():
    # every element of most chunks fails: the profile comes from masks, not positions
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((3, 50, 7, 11)).astype(F32)
    candidate = reference + np.where(rng.random(reference.shape) < 0.7, 1, 0).astype(F32)
    result = compare_arrays(reference, candidate, chunk_size=1000)
    failing = candidate != reference
    assert result.mismatch_counts_by_axis == _profile(failing)
    # a single axis longer than a chunk
    flat_ref, flat_cand = reference.ravel(), candidate.ravel()
    result = compare_arrays(flat_ref, flat_cand, chunk_size=999)
    assert result.mismatch_counts_by_axis == (tuple(failing.ravel().astype(int).tolist()),)


def test_scalar_positions_are_empty_tuples():
    result = compare_arrays(np.float32(1.0), np.float32(3.0), top_k=2)
    assert result.verdict is Verdict.MISMATCH
    assert result.max_abs_diff_index == ()
    (worst,) = result.worst
    assert (worst.index, worst.reference, worst.candidate, worst.abs_diff) == ((), 1.0, 3.0, 2.0)
    assert worst.ratio == 2.0 / (1e-5 + 1.3e-6 * 1.0)  # float32's default atol + rtol * |reference|
    assert result.mismatch_counts_by_axis == ()


def test_worst_ties_break_by_lowest_index():
    reference = np.zeros(10, F32)
    candidate = a32(0, 1, 2, 1, 2, 0, 2, 1, 0, 3)
    result = compare_arrays(reference, candidate, top_k=4, chunk_size=3)
    assert [(w.index, w.abs_diff) for w in result.worst] == [
        ((9,), 3.0), ((2,), 2.0), ((4,), 2.0), ((6,), 2.0)]
    assert result.max_abs_diff_index == (9,)


def test_non_contiguous_input():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((6, 8)).astype(F32)
    candidate = reference.copy()
    candidate[4, 1] += 1
    result = compare_arrays(reference.T, candidate.T, chunk_size=5)
    assert result.max_abs_diff_index == (1, 4)
    assert result.mismatch_counts_by_axis == _profile(candidate.T != reference.T)


def test_comparison_is_frozen():
    result = compare_arrays(a32(1), a32(1))
    with pytest.raises(AttributeError):
        result.verdict = Verdict.MISMATCH  # type: ignore[misc]
    assert isinstance(result, Comparison)


# ---- properties against a naive oracle -------------------------------------------------------


def _profile(failing: np.ndarray) -> tuple[tuple[int, ...], ...]:
    axes = range(failing.ndim)
    return tuple(
        tuple(failing.sum(axis=tuple(a for a in axes if a != axis)).astype(int).tolist())
        for axis in axes
    )


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-6, NAN, INF, -INF]


@st.composite
def array_pairs(draw):
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    if np.dtype(dtype).kind == "f":
        elements = st.one_of(st.sampled_from(SPECIAL),
                             st.floats(-4, 4, width=np.dtype(dtype).itemsize * 8))
    else:
        elements = st.integers(-5, 5)
    reference = draw(hnp.arrays(dtype, shape, elements=elements))
    # Equal bits in some places (shared NaNs and infinities included), noise in the others:
    # sparse noise takes the comparator's gather path, dense noise its whole-chunk path.
    noise = draw(hnp.arrays(dtype, shape, elements=elements))
    density = draw(st.sampled_from([0.02, 0.2, 0.6]))
    seed = draw(st.integers(0, 2**32 - 1))
    changed = np.random.default_rng(seed).random(shape) < density
    candidate = np.where(changed, noise, reference).astype(dtype)
    return reference, candidate


def assert_matches_oracle(result, reference, candidate, atol, rtol, equal_nan, top_k):
    """Check a Comparison against whole-array NumPy, the naive way."""
    r = reference.astype(np.float64)
    c = candidate.astype(np.float64)
    failing = ~np.isclose(c, r, rtol=rtol, atol=atol, equal_nan=equal_nan)
    finite = np.isfinite(r) & np.isfinite(c)
    with np.errstate(all="ignore"):
        diff = np.where(finite, np.abs(c - r), 0.0)
        excess = np.where(finite, diff - rtol * np.abs(r), 0.0)
        rel = np.where(finite & (diff > 0), diff / np.abs(r), 0.0)

    assert result.total == reference.size
    assert result.mismatched == int(failing.sum())
    assert result.mismatch_counts_by_axis == _profile(failing)
    identical = reference.dtype == candidate.dtype and reference.tobytes() == candidate.tobytes()
    assert result.verdict is (Verdict.MISMATCH if failing.any() else
                              Verdict.IDENTICAL if identical else Verdict.EQUIVALENT)
    assert (result.reference_nan, result.candidate_nan) == (int(np.isnan(r).sum()),
                                                            int(np.isnan(c).sum()))
    assert (result.reference_inf, result.candidate_inf) == (int(np.isinf(r).sum()),
                                                            int(np.isinf(c).sum()))
    assert result.nan_positions_agree == bool((np.isnan(r) == np.isnan(c)).all())
    assert result.max_abs_diff == diff.max()
    assert result.max_abs_diff_index == (
        np.unravel_index(diff.argmax(), diff.shape) if diff.max() > 0 else None)
    assert result.max_rel_diff == rel.max()
    assert result.max_rel_diff_index == (
        np.unravel_index(rel.argmax(), rel.shape) if rel.max() > 0 else None)
    assert result.sum_abs_diff == pytest.approx(diff.sum(), rel=1e-9)
    n_finite = int(finite.sum())
    if n_finite:
        assert result.rmse == pytest.approx(math.sqrt((diff**2).sum() / n_finite), rel=1e-9)
    else:
        assert math.isnan(result.rmse)
    nonfinite_failure = (failing & ~finite).any()
    assert result.min_atol == (INF if nonfinite_failure else max(0.0, excess.max()))
    flat = diff.ravel()
    order = sorted(np.flatnonzero(flat > 0), key=lambda i: (-flat[i], i))[:top_k]
    assert [w.index for w in result.worst] == [np.unravel_index(i, diff.shape) for i in order]
    assert [w.abs_diff for w in result.worst] == [flat[i] for i in order]
    assert [w.candidate for w in result.worst] == [c.ravel()[i] for i in order]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=array_pairs(), atol=st.sampled_from([0.0, 1e-3, 0.5]),
       rtol=st.sampled_from([0.0, 1e-3, 0.25]), equal_nan=st.booleans(),
       chunk_size=st.sampled_from([1, 7, 64]), top_k=st.sampled_from([0, 1, 3]))
def test_chunking_does_not_change_the_result(pair, atol, rtol, equal_nan, chunk_size, top_k):
    reference, candidate = pair
    kwargs = {"atol": atol, "rtol": rtol, "equal_nan": equal_nan, "top_k": top_k}
    small = compare_arrays(reference, candidate, chunk_size=chunk_size, **kwargs)
    whole = compare_arrays(reference, candidate, chunk_size=1 << 20, **kwargs)

    sums = ("sum_abs_diff", "mean_abs_diff", "rmse", "median_ratio")
    for name in Comparison.__dataclass_fields__:
        if name in sums:
            assert getattr(small, name) == pytest.approx(getattr(whole, name), rel=1e-12,
                                                         nan_ok=True)
        else:
            assert getattr(small, name) == getattr(whole, name), name
    assert small.mismatched == int((~np.isclose(candidate.astype(np.float64),
                                                reference.astype(np.float64), rtol=rtol,
                                                atol=atol, equal_nan=equal_nan)).sum())
    assert_matches_oracle(small, reference, candidate, atol, rtol, equal_nan, top_k)


def large_pair() -> tuple[np.ndarray, np.ndarray]:
    """NHWC outputs whose images differ in every way a chunk can: the comparator's paths."""
    rng = np.random.default_rng(7)
    reference = rng.standard_normal((6, 48, 40, 24)).astype(F32)
    candidate = reference.copy()
    # image 0 identical; image 1: sparse noise, some of it beyond tolerance
    sparse = rng.random(reference[1].shape) < 0.01
    candidate[1][sparse] += rng.standard_normal(int(sparse.sum())).astype(F32) * F32(1e-4)
    # image 2: rounding noise everywhere, within tolerance
    rounding = rng.standard_normal(reference[2].shape).astype(F32) * F32(1e-7)
    candidate[2] = reference[2] * (1 + rounding)
    # image 3: everything off
    candidate[3] += F32(0.01)
    # image 4: NaN and infinities, some shared, plus ties at the largest difference
    reference[4, 0, :5, 0] = NAN
    candidate[4, 0, :5, 0] = NAN
    candidate[4, 1, 3, :] = NAN
    reference[4, 2, 2, :4] = [INF, -INF, INF, 1.0]
    candidate[4, 2, 2, :4] = [INF, -INF, -INF, INF]
    candidate[4, 5, 5, :3] = reference[4, 5, 5, :3] + F32(3.0)
    # image 5: zeros on both sides (ReLU), a few where only one side is zero
    reference[5] = np.maximum(reference[5], 0)
    candidate[5] = reference[5]
    candidate[5, 7, 7, 7] = F32(0.5) if reference[5, 7, 7, 7] == 0 else F32(0)
    return reference, candidate


@pytest.mark.parametrize("chunk_size", [None, 1 << 16, 100_003, 40_000])
@pytest.mark.parametrize("equal_nan", [False, True])
def test_large_arrays_match_oracle(chunk_size, equal_nan):
    reference, candidate = large_pair()
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    tolerance = default_tolerance("float32")
    result = compare_arrays(reference, candidate, equal_nan=equal_nan, top_k=5, **kwargs)
    assert_matches_oracle(result, reference, candidate, tolerance.atol, tolerance.rtol,
                          equal_nan, 5)
    # the same values as float64 on one side: no bitwise shortcut anywhere
    result = compare_arrays(reference.astype(np.float64), candidate, equal_nan=equal_nan,
                            top_k=5, **kwargs)
    assert_matches_oracle(result, reference.astype(np.float64), candidate, tolerance.atol,
                          tolerance.rtol, equal_nan, 5)


def test_extra_memory_stays_bounded():
    # NHWC: the per-axis counts are small. (For a 1-D array they hold one count per element.)
    shape = (4, 256, 256, 16)  # 16 MiB
    reference = np.random.default_rng(3).standard_normal(shape).astype(F32)
    candidate = reference + F32(0.5)  # every element fails: the most work per element
    compare_arrays(reference, candidate, chunk_size=1 << 16)  # the first call in a process loads the compiled loop
    tracemalloc.start()
    try:
        result = compare_arrays(reference, candidate, chunk_size=1 << 16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.mismatched == reference.size
    assert peak < 4 << 20


@settings(max_examples=100, deadline=None)
@given(pair=array_pairs(), chunk_size=st.sampled_from([3, 64]))
def test_max_rel_diff_matches_oracle(pair, chunk_size):
    reference, candidate = pair
    result = compare_arrays(reference, candidate, atol=0.0, rtol=0.0, chunk_size=chunk_size)
    r, c = reference.astype(np.float64), candidate.astype(np.float64)
    finite = np.isfinite(r) & np.isfinite(c)
    with np.errstate(all="ignore"):
        rel = np.where(finite & (c != r), np.abs(c - r) / np.abs(r), 0.0)
    assert result.max_rel_diff == rel.max()
    expected = np.unravel_index(rel.argmax(), rel.shape) if rel.max() > 0 else None
    assert result.max_rel_diff_index == expected


# --- the two scans: NumPy (small arrays) and the compiled loop (large ones) give the same result ------


def _both_paths(monkeypatch, reference, candidate, **kwargs):
    import convdiff.compare.core as core

    numpy_result = compare_arrays(reference, candidate, **kwargs)  # small arrays: the NumPy scan
    monkeypatch.setattr(core, "KERNEL_FROM", 0)
    monkeypatch.setattr(core, "_THREADED_FROM", 2)  # several threads even on tiny arrays: the merge is tested too
    kernel_result = compare_arrays(reference, candidate, **kwargs)
    monkeypatch.undo()
    return numpy_result, kernel_result


def _assert_same(a, b):
    for name in Comparison.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name in ("sum_abs_diff", "mean_abs_diff", "rmse"):  # summed in another order
            assert x == pytest.approx(y, rel=1e-12, nan_ok=True), name
        elif name == "worst":
            assert [(w.index, w.abs_diff, w.ratio) for w in x] == [(w.index, w.abs_diff, w.ratio) for w in y]
        else:
            assert x == y or (x != x and y != y), (name, x, y)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(pair=array_pairs(), atol=st.sampled_from([0.0, 1e-3, 0.5]), rtol=st.sampled_from([0.0, 1e-3, 0.25]),
       equal_nan=st.booleans(), top_k=st.sampled_from([0, 1, 3]), with_bound=st.booleans())
def test_the_compiled_loop_agrees_with_the_numpy_scan(monkeypatch, pair, atol, rtol, equal_nan, top_k, with_bound):
    from convdiff.compare import Rule, Tolerance
    from convdiff.reference.rounding import BoundForm, RoundingModel, as_sides

    reference, candidate = pair
    if with_bound:
        rng = np.random.default_rng(reference.size)
        bound = rng.choice([0.0, 1e-3, 0.25, np.inf, np.nan], size=reference.shape)
        model = RoundingModel(BoundForm.PROBABILISTIC, 9, as_sides("float32"))
        kwargs = {"rule": Rule.bound(model, Tolerance(atol, rtol, equal_nan)), "bound": bound}
    else:
        kwargs = {"atol": atol, "rtol": rtol, "equal_nan": equal_nan}
    _assert_same(*_both_paths(monkeypatch, reference, candidate, top_k=top_k, **kwargs))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16, np.bool_])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_the_compiled_loop_agrees_on_large_arrays(monkeypatch, dtype, layout):
    rng = np.random.default_rng(5)
    reference = (rng.standard_normal((3, 40, 50, 7)) * 4).astype(dtype)
    candidate = reference.copy()
    flat = candidate.reshape(-1)
    flat[rng.choice(flat.size, 400, replace=False)] = (rng.standard_normal(400) * 4).astype(dtype)
    if dtype in (np.float32, np.float64, np.float16):
        flat[:3] = np.nan
        flat[10:12] = np.inf
        reference.reshape(-1)[:2] = np.nan
    if layout == "transposed":
        reference, candidate = reference.transpose(2, 0, 3, 1), candidate.transpose(2, 0, 3, 1)
    for equal_nan in (False, True):
        _assert_same(*_both_paths(monkeypatch, reference, candidate, atol=1e-3, rtol=1e-3, equal_nan=equal_nan,
                                  top_k=5))


def _blocks_of_every_kind(dtype):
    """Consecutive blocks of the compiled loop (kernel.BLOCK elements) that each take another of its paths."""
    from convdiff.compare import kernel

    block = kernel.BLOCK
    rng = np.random.default_rng(11)
    reference = (rng.standard_normal(12 * block) * 3).astype(dtype)
    reference[5 * block:5 * block + 300] = 0  # zeros on both sides (ReLU)
    candidate = reference.copy()
    parts = [candidate[b * block:(b + 1) * block] for b in range(12)]
    # 0: bit for bit equal
    parts[1][::97] += dtype(1e-3)  # sparse differences, most beyond tolerance
    parts[2][:] = parts[2] * dtype(1 + 1e-6)  # dense rounding-sized noise, every element differs
    parts[3][:] += dtype(0.01)  # dense, every element fails
    parts[4][7] = np.nan  # sparse: a NaN on one side only
    parts[5][301] = dtype(0.5)  # sparse: only the reference is 0 there
    parts[6][:] = parts[6] * dtype(1 + 1e-6)  # dense with an infinity (and after it, unprobed blocks)
    parts[6][1000] = np.inf
    parts[7][::3] += dtype(1e-5)  # dense, differences near the tolerance
    # 8-11: identical again, then a sparse one after dense ones
    parts[10][5] = -parts[10][5]
    return reference, candidate


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("top_k", [0, 3])
def test_the_compiled_loop_agrees_on_every_kind_of_block(monkeypatch, dtype, top_k):
    from convdiff.compare import Rule, Tolerance
    from convdiff.reference.rounding import BoundForm, RoundingModel, as_sides

    reference, candidate = _blocks_of_every_kind(dtype)
    for kwargs in ({"atol": 1e-5, "rtol": 1e-4}, {"atol": 0.0, "rtol": 0.0},
                   {"atol": 1e-3, "rtol": 4.0}):  # a threshold that overflows for huge finite values
        _assert_same(*_both_paths(monkeypatch, reference, candidate, top_k=top_k, **kwargs))
        _assert_same(*_both_paths(monkeypatch, reference.astype(np.float64), candidate, top_k=top_k, **kwargs))
    bound = np.abs(reference.astype(np.float64)) * 1e-5
    bound[3 * 2048 + 17] = np.inf  # an overflowed bound in a dense block
    bound[2048 + 5] = np.nan  # and in a sparse one, at a position whose bits are equal
    bound[6 * 2048 + 9] = 0.0
    model = RoundingModel(BoundForm.PROBABILISTIC, 9, as_sides("float32"))
    for equal_nan in (False, True):
        rule = Rule.bound(model, Tolerance(1e-5, 1e-4, equal_nan))
        _assert_same(*_both_paths(monkeypatch, reference, candidate, top_k=top_k, rule=rule, bound=bound))
