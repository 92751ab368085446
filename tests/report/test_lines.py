"""Verdict lines on exact text: every figure says what it was computed over (no NaN ever shown as a number)."""

import numpy as np
import pytest

from convdiff.compare import Rule, Tolerance, compare_arrays
from convdiff.reference.rounding import Arithmetic, BoundForm, RoundingModel
from convdiff.report.tables import comparison_line

INF, NAN = float("inf"), float("nan")
MODEL = RoundingModel(BoundForm.PROBABILISTIC, 9, (Arithmetic.exact(), Arithmetic("float32", "float32", "float32")),
                      "float32", "float32")
RULE = Rule.bound(MODEL, Tolerance(0.0, 0.0))


def line(reference, candidate, bound):
    ref, cand = np.array(reference), np.array(candidate)
    return comparison_line(compare_arrays(ref, cand, rule=RULE, bound=np.array(bound, dtype=np.float64)))


LINES = [
    # A reference +inf against a finite candidate: a pattern mismatch, never inf/inf = NaN passing.
    ("reference inf, candidate finite", [INF, 1.0], [1.0, 1.0], [1e-6, 1e-6],
     "mismatch: 1 / 2 elements fail the float32 rounding bound (probabilistic): 1 where NaN/inf differ between the "
     "sides; max abs diff 0; 1 non-finite position(s) left out of the figures"),
    # Every position non-finite on a side: no "max abs diff 0", no "nan times the bound at -".
    ("all NaN on one side", [NAN, NAN], [1.0, 1.0], [1e-6, 1e-6],
     "mismatch: 2 / 2 elements fail the float32 rounding bound (probabilistic): 2 where NaN/inf differ between the "
     "sides; no position is finite on both sides; 2 non-finite position(s) left out of the figures"),
    # NaN on both sides (no --equal-nan) and one value over the bound.
    ("NaN on both sides and one over", [NAN, 1.0], [NAN, 2.0], [1e-6, 0.5],
     "mismatch: 2 / 2 elements fail the float32 rounding bound (probabilistic): 1 exceed it, up to 2 times the bound "
     "at (1); 1 NaN on both sides (equal only with --equal-nan); max abs diff 1; 1 non-finite position(s) left out "
     "of the figures"),
    # Where |x|(*)|w| overflowed float64 the bound says nothing: exact comparison there, and the line says so.
    ("bound overflowed, values differ", [5.0, 1.0], [7.0, 1.0], [INF, 1e-6],
     "mismatch: 1 / 2 elements fail the float32 rounding bound (probabilistic): 1 of 1 compared exactly (the bound "
     "overflowed float64 there) differ; max abs diff 2"),
    ("bound overflowed, values equal", [5.0, 1.0], [5.0, 1.0 + 1e-7], [INF, 1e-6],
     "equivalent: all 2 elements within the float32 rounding bound (max 10% of bound at (1), probabilistic; max abs "
     "diff 1.000e-07); 1 position(s) compared exactly where the bound overflowed float64"),
    # Identical outputs that overflowed on both sides say how much of them is infinite.
    ("identical infinities", [INF, 1.0], [INF, 1.0], [1e-6, 1e-6],
     "identical: outputs are bitwise equal (1 of 2 positions hold the same NaN or infinity on both sides)"),
]


@pytest.mark.parametrize(("what", "reference", "candidate", "bound", "expected"), LINES, ids=[x[0] for x in LINES])
def test_verdict_lines(what, reference, candidate, bound, expected):
    text = line(reference, candidate, bound)
    assert text == expected
    assert "nan" not in text.replace("NaN", "").replace("--equal-nan", "") and "at -" not in text


def test_a_shape_mismatch_of_swapped_rows_and_columns_is_named():
    c = compare_arrays(np.zeros((1, 14, 10, 2)), np.zeros((1, 10, 14, 2)))
    assert comparison_line(c) == "shape_mismatch: reference 1x14x10x2 vs candidate 1x10x14x2 (rows and columns swapped)"
    c = compare_arrays(np.zeros((1, 14, 10, 2)), np.zeros((1, 13, 10, 2)))
    assert comparison_line(c) == "shape_mismatch: reference 1x14x10x2 vs candidate 1x13x10x2"


def test_counts_by_kind_add_up_to_the_mismatches():
    ref = np.array([INF, 1.0, NAN, 5.0, 2.0])
    cand = np.array([1.0, 3.0, NAN, 6.0, 2.0])
    c = compare_arrays(ref, cand, rule=RULE, bound=np.array([1.0, 1.0, 1.0, INF, 1.0]))
    assert (c.mismatched, c.exceeded, c.exact_mismatched, c.nonfinite_mismatched) == (4, 1, 1, 1)
    assert c.exact_compared == 1 and c.nonfinite_excluded == 2
    # The exactly compared position stays out of the ratios: the largest is the finite one over its bound.
    assert c.max_ratio == 2.0 and c.max_ratio_index == (1,)


def test_equal_values_in_different_dtypes_say_no_element_differs():
    c = compare_arrays(np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0]), rule=RULE, bound=np.array([0.1, 0.1]))
    assert comparison_line(c) == ("equivalent: all 2 elements within the float32 rounding bound (no element differs, "
                                  "probabilistic; max abs diff 0)")


def test_no_figure_is_written_as_nan():
    from convdiff.report.text import fmt_times

    assert "nan" not in fmt_times(float("nan"))
