"""The data behind the figures: |diff| / limit per position, panels, outlines, the scatter sample, the
histogram and the kernel mosaic. Pure NumPy, no TensorFlow."""

import numpy as np
import pytest

from convdiff.analysis import figures_data as fd
from convdiff.analysis.regions import analyze_regions
from convdiff.compare import Rule, Tolerance, compare_arrays
from convdiff.reference.rounding import BoundForm

RNG = np.random.default_rng(7)
REF = RNG.random((2, 16, 20, 3))
ELEMENTWISE = Rule.elementwise(Tolerance(1e-6, 0.0))


def perturbed(where, by=1.0, reference=REF):
    cand = reference.copy()
    cand[where] += by
    return cand


def test_ratio_is_one_at_the_limit_below_for_a_pass_above_for_a_mismatch():
    ref = np.zeros(4)
    cand = np.array([0.0, 0.5e-6, 1e-6, 3e-6])
    assert fd.ratios(ref, cand, ELEMENTWISE).tolist() == pytest.approx([0.0, 0.5, 1.0, 3.0])


def test_ratio_under_the_bound_rule_divides_by_the_bound_array():
    from convdiff.reference.rounding import RoundingModel, as_sides

    rule = Rule.bound(RoundingModel(BoundForm.PROBABILISTIC, 9, as_sides("float32")), Tolerance(1e-5, 1e-6))
    bound = np.array([2.0, 4.0, 0.0, 0.0])
    ratio = fd.ratios(np.zeros(4), np.array([1.0, 8.0, 0.0, 1.0]), rule, bound)
    assert ratio.tolist() == [0.5, 2.0, 0.0, np.inf]  # a limit of 0 exceeded is infinitely over it


def test_ratio_marks_a_differing_nan_inf_pattern_and_not_an_agreeing_one():
    ref = np.array([np.inf, np.nan, np.nan, 1.0])
    cand = np.array([np.inf, np.nan, 1.0, np.inf])
    ratio = fd.ratios(ref, cand, ELEMENTWISE)
    assert ratio[0] == 0.0 and np.isnan(ratio[1:]).all()  # NaN != NaN without equal_nan
    nan_equal = Rule.elementwise(Tolerance(1e-6, 0.0, equal_nan=True))
    assert fd.ratios(ref, cand, nan_equal)[1] == 0.0


def test_a_pass_stays_below_one_everywhere_and_a_mismatch_goes_above():
    passing = fd.difference_map(REF, REF + 1e-7, ELEMENTWISE)
    failing = fd.difference_map(REF, perturbed((0, 5, 5, 1)), ELEMENTWISE)
    assert passing.mismatched == 0 and 0.09 < passing.max_ratio < 0.11
    assert all(np.nanmax(p.ratio) < 1 for p in passing.panels)
    assert failing.mismatched == 1 and failing.max_ratio > 1e5
    plane = failing.panels[0]
    assert plane.kind == "plane" and plane.ratio.shape == (16, 20) and plane.ratio[5, 5] > 1
    assert (np.delete(plane.ratio.ravel(), 5 * 20 + 5) == 0).all()


def test_the_worst_channel_gets_its_own_panel_and_mismatches_are_outlined():
    cand = perturbed((slice(None), slice(3, 5), slice(2, 6), 2))
    cand[0, 10, 15, 0] += 1.0
    m = fd.difference_map(REF, cand, ELEMENTWISE)
    plane, channel = m.panels
    assert channel.kind == "channel" and channel.title.startswith("channel 2")
    assert plane.regions == 2
    assert [(o.rows, o.columns, o.count) for o in plane.outlines] == [((3, 5), (2, 6), 8), ((10, 11), (15, 16), 1)]
    assert [(o.rows, o.columns) for o in channel.outlines] == [((3, 5), (2, 6))]


def test_border_panels_follow_the_regions_and_keep_output_coordinates():
    cand = perturbed((slice(None), -1))
    regions = analyze_regions(REF, cand, compare_arrays(REF, cand, atol=1e-9, rtol=0.0))
    assert regions.border == (0, 1, 0, 0)
    m = fd.difference_map(REF, cand, ELEMENTWISE, border=regions.border)
    (strip,) = [p for p in m.panels if p.kind == "rows"]
    assert strip.title == "the last row (and 3 inside)"
    assert strip.rows == (12, 16) and strip.columns == (0, 20) and strip.ratio.shape == (4, 20)
    assert (strip.ratio[-1] > 1).all() and (strip.ratio[:-1] < 1).all()


def test_large_planes_are_max_pooled_so_one_bad_row_survives():
    ref = RNG.random((1, 500, 730, 1))
    m = fd.difference_map(ref, perturbed((0, 499), reference=ref), ELEMENTWISE)
    plane = m.panels[0]
    assert plane.cell == (3, 3) and plane.ratio.shape == (167, 244)
    assert (plane.ratio[-1] > 1).all() and not (plane.ratio[:-1] > 1).any()
    assert plane.rows == (0, 500) and plane.columns == (0, 730)
    assert [(o.rows, o.columns) for o in plane.outlines] == [((499, 500), (0, 730))]


def test_positions_only_one_side_has_are_nan_and_count_as_mismatches():
    m = fd.difference_map(REF, REF[:, :15, :19], ELEMENTWISE)
    plane = m.panels[0]
    assert plane.ratio.shape == (16, 20) and np.isnan(plane.ratio[15]).all() and np.isnan(plane.ratio[:, 19]).all()
    assert m.one_sided == 16 + 19
    assert m.mismatched == (16 + 19) * 2 * 3 and m.total == 16 * 20 * 2 * 3
    assert m.max_ratio == 0.0  # the common region is identical


def test_outputs_that_differ_in_batch_or_channels_have_no_map():
    assert fd.difference_map(REF, REF[..., :2], ELEMENTWISE) is None


@pytest.mark.parametrize(
    ("shape", "where", "kinds"),
    [
        ((2, 30, 4), (0, 7, 1), ["plane"]),  # one spatial axis: channels x positions
        ((1, 5, 6, 7, 2), (0, 2, 3, 3, 0), ["depth"]),  # three: the worst depth slice
        ((1, 5, 6, 7, 2), (0, 4, 3, 3, 0), ["depth"]),  # the last slice is the worst: shown once
    ],
)
def test_one_and_three_spatial_axes_choose_their_slices(shape, where, kinds):
    ref = RNG.random(shape)
    m = fd.difference_map(ref, perturbed(where, reference=ref), ELEMENTWISE)
    assert [p.kind for p in m.panels] == kinds and m.mismatched == 1
    panel = m.panels[0]
    if len(shape) == 3:
        assert panel.ratio.shape == (4, 30) and panel.ratio[1, 7] > 1 and panel.row_label == "channel"
    else:
        assert panel.title.startswith(f"depth {where[1]}, the worst") and panel.ratio[3, 3] > 1


def test_histogram_counts_every_finite_position_once():
    cand = REF + RNG.random(REF.shape) * 1e-6
    cand[0, 0, 0, 0] = REF[0, 0, 0, 0]
    cand[1, 2, 3, 1] += 5.0
    h = fd.ratio_histogram(REF, cand, ELEMENTWISE)
    assert h.zero == 1 and h.excluded == 0 and h.infinite == 0
    assert int(h.counts.sum()) + h.zero == REF.size
    one = int(np.searchsorted(h.edges, 1.0))
    assert h.edges[one] == pytest.approx(1.0)
    assert int(h.counts[one:].sum()) == 1  # the one over the limit sits right of 1.0


def test_scatter_keeps_every_failing_position_and_draws_the_limit():
    big = RNG.random((1, 80, 80, 2))
    cand = big + 1e-7
    cand[0, :3, :3, 0] += 1.0
    s = fd.error_scatter(big, cand, ELEMENTWISE)
    assert s.shown == fd.SCATTER_POINTS and s.finite == big.size and int(s.failing.sum()) == 9
    (line,) = s.lines
    assert line.y == pytest.approx(1e-6 + 0.0 * s.line_x)


def test_scatter_under_the_bound_uses_the_magnitude_and_both_bias_lines():
    from convdiff.reference.rounding import RoundingModel, as_sides

    model = RoundingModel(BoundForm.PROBABILISTIC, 27, as_sides("float32"))
    rule = Rule.bound(model, Tolerance(1e-5, 1e-6))
    magnitude = RNG.random((1, 4, 4, 2)) + 0.5
    bound = model.bound(magnitude, magnitude)
    cand = REF[:1, :4, :4, :2] + 0.5 * bound
    s = fd.error_scatter(REF[:1, :4, :4, :2], cand, rule, bound, magnitude, bias=np.array([0.0, -2.0]))
    assert not s.failing.any() and s.magnitude.min() >= 0.5
    assert [line.label.split(",")[-1].strip() for line in s.lines] == ["bias 0", "largest |bias| 2"]
    with pytest.raises(ValueError):
        fd.error_scatter(REF, REF, rule, None)


def test_kernel_mosaic_tiles_the_channels_that_differ_most():
    ref = RNG.random((3, 3, 10, 20))
    cand = ref.copy()
    cand[:, :, 9, 19] += 1.0
    k = fd.kernel_mosaic(ref, cand)
    assert len(k.in_channels) == 8 and 9 in k.in_channels and len(k.out_channels) == 16 and 19 in k.out_channels
    assert k.reference.shape == (8 * 4 - 1, 16 * 4 - 1)
    assert np.isnan(k.reference[3]).all()  # the gap between tile rows
    assert not k.identical and k.max_abs_diff == pytest.approx(1.0)
    same = fd.kernel_mosaic(ref[:, :, :2, :3], ref[:, :, :2, :3])
    assert same.identical and same.in_channels == (0, 1) and same.out_channels == (0, 1, 2)
    assert fd.kernel_mosaic(RNG.random((12, 12, 1, 1)), RNG.random((12, 12, 1, 1))) is None  # not small
