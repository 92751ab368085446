"""Where mismatches sit: border depths, interior, profiles and the text map. No TensorFlow."""

import numpy as np
import pytest

from convdiff.compare import compare_arrays
from convdiff.analysis.regions import analyze_regions
from convdiff.report.tables import shade

RNG = np.random.default_rng(3)
REF = RNG.random((2, 16, 20, 3))


def regions_of(candidate, reference=REF):
    return analyze_regions(reference, candidate, compare_arrays(reference, candidate, atol=1e-9, rtol=0.0))


def perturbed(where):
    cand = REF.copy()
    cand[where] += 1.0
    return cand


@pytest.mark.parametrize(
    ("where", "kind", "border"),
    [
        ((slice(None), -1), "border", (0, 1, 0, 0)),  # the last row only
        ((slice(None), slice(None), -1), "border", (0, 0, 0, 1)),  # the last column only
        ((slice(None), slice(0, 2)), "border", (2, 0, 0, 0)),  # two rows deep at the top
        ((0, slice(6, 9), slice(8, 11), 1), "interior", (0, 0, 0, 0)),  # a block in the middle, one channel
        ((slice(None),), "everywhere", (0, 0, 0, 0)),  # every position
    ],
)
def test_kinds_and_depths(where, kind, border):
    r = regions_of(perturbed(where))
    assert (r.kind, r.border) == (kind, border), r.summary


def test_last_row_and_last_column():
    cand = REF.copy()
    cand[:, -1] += 1
    cand[:, :, -1] += 1
    r = regions_of(cand)
    assert r.kind == "border" and r.border == (0, 1, 0, 1)
    assert r.summary == "mismatches confined to the last 1 row and the last 1 column"
    assert r.interior_mismatches == 0 and r.border_mismatches == 2 * 3 * (16 + 20 - 1)


def test_no_mismatch_is_none():
    r = regions_of(REF.copy())
    assert r.kind == "none" and r.border_mismatches == r.interior_mismatches == 0


def test_profiles_count_per_axis():
    cand = REF.copy()
    cand[1, 4, 5, 2] += 1
    cand[1, 4, 6, 2] += 1
    r = regions_of(cand)
    assert r.rows[4] == 2 and sum(r.rows) == 2
    assert r.columns[5] == r.columns[6] == 1
    assert r.channels == (0, 0, 2) and r.batch == (0, 2)


def test_shape_mismatch_extra_row_and_column_is_border():
    bigger = np.zeros((2, 17, 21, 3))
    bigger[:, :16, :20] = REF
    r = regions_of(bigger)
    assert r.kind == "border" and r.extra_rows == 1 and r.extra_columns == 1
    assert r.border == (0, 1, 0, 1)


def test_shape_mismatch_that_also_differs_inside_is_everywhere():
    bigger = np.zeros((2, 17, 21, 3))
    bigger[:, :16, :20] = REF + 1
    assert regions_of(bigger).kind == "everywhere"


def test_map_grid_and_shades():
    r = regions_of(perturbed((slice(None), -1)))
    assert len(r.grid) == 16 and len(r.grid[0]) == 20
    assert r.grid[-1][0] == 1.0 and r.grid[0][0] == 0.0
    assert [shade(v) for v in (0.0, 0.1, 0.3, 0.6, 1.0)] == ["·", "░", "▒", "▓", "█"]


# --- other ranks -------------------------------------------------------------------------------------------

REF1 = RNG.random((2, 40, 3))
REF3 = RNG.random((1, 8, 10, 12, 2))


def test_1d_border_positions_and_map_of_channels_by_positions():
    cand = REF1.copy()
    cand[:, -1] += 1
    cand[:, 0, 1] += 1
    r = regions_of(cand, REF1)
    assert r.kind == "border" and [a.name for a in r.axes] == ["positions"]
    assert r.axes[0].border == (1, 1)
    assert r.summary == "mismatches confined to the first 1 position and the last 1 position"
    assert r.border is None and r.rows is None and r.columns is None  # the 2-D keys have no meaning in 1-D
    assert r.map_axes == "output channels x positions" and len(r.grid) == 3 and len(r.grid[0]) == 40
    assert r.grid[1][0] == 1.0 and r.grid[0][0] == 0.0


def test_1d_shape_mismatch_counts_the_extra_positions_at_the_end():
    longer = np.concatenate([REF1, np.zeros((2, 1, 3))], axis=1)
    r = regions_of(longer, REF1)
    assert r.kind == "border" and r.axes[0].extra == 1 and r.axes[0].border == (0, 1)
    assert "the candidate has +1 position(s) at the end" in r.summary


def test_3d_depth_border_profiles_and_the_map_of_the_worst_slice():
    cand = REF3.copy()
    cand[:, 0] += 1  # the first depth slice
    r = regions_of(cand, REF3)
    assert r.kind == "border" and [a.name for a in r.axes] == ["depth", "rows", "columns"]
    assert [a.border for a in r.axes] == [(1, 0), (0, 0), (0, 0)]
    assert r.summary == "mismatches confined to the first 1 depth slice"
    assert r.axes[0].counts[0] == 10 * 12 * 2 and sum(r.axes[0].counts) == 10 * 12 * 2
    assert r.map_axes.startswith("rows x columns of depth slice 0")
    assert r.border == (0, 0, 0, 0)  # the 2-D keys are its H and W axes


def test_3d_interior_block():
    cand = REF3.copy()
    cand[0, 3:5, 4:6, 5:7, 0] += 1
    r = regions_of(cand, REF3)
    assert r.kind == "interior" and r.interior_mismatches == 8
    assert "none on the outer faces" in r.summary


def test_regions_json_keeps_the_2d_keys_and_adds_the_axes():
    from convdiff.report.json import regions_json

    two = regions_json(regions_of(perturbed((slice(None), -1))))
    assert {"border", "rows", "columns", "extra_rows", "extra_columns", "channels", "batch", "axes"} <= set(two)
    assert [a["name"] for a in two["axes"]] == ["rows", "columns"] and two["axes"][0]["border"] == {"start": 0, "end": 1}
    one = regions_json(regions_of(REF1 + 1, REF1))
    assert one["border"] is None and one["rows"] is None and one["axes"][0]["name"] == "positions"
