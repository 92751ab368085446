"""Where the mismatches sit: border rows/columns or the interior, per-row/column/channel/batch counts,
and a downsampled mismatch map. Pure NumPy; mismatches are marked by the comparison's own rule.

Border depths are found by peeling: starting from the whole output plane, the edge line (top row,
bottom row, left or right column of what is left) with the largest fraction of mismatching positions
is peeled off while that fraction exceeds the mismatch density of what is left, at most
`max(1, min(H, W) // 8)` lines per side. What is left is the interior. Mismatches confined to peeled
lines are `border`; none on the outermost frame is `interior`; both is `everywhere`.

When the output shapes differ (N and C equal), the common top-left region is compared, and the
candidate's extra (or missing) rows and columns count as border mismatches at the bottom/right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.compare.core import Comparison

REGION_KINDS = ("none", "border", "interior", "everywhere")
MAP_ROWS, MAP_COLS = 16, 48


@dataclass(frozen=True)
class MismatchRegions:
    """Where the mismatching output positions are."""

    kind: str
    """`none`, `border`, `interior` or `everywhere`."""
    border: tuple[int, int, int, int]
    """Depth of the border holding mismatches: (top rows, bottom rows, left columns, right columns)."""
    border_mismatches: int
    """Mismatching elements in the border lines (extra rows/columns of a shape mismatch included)."""
    interior_mismatches: int
    """Mismatching elements inside the border."""
    rows: tuple[int, ...]
    """Mismatching elements per output row (over batch, columns and channels)."""
    columns: tuple[int, ...]
    """Mismatching elements per output column."""
    channels: tuple[int, ...]
    """Mismatching elements per output channel."""
    batch: tuple[int, ...]
    """Mismatching elements per batch item."""
    extra_rows: int
    """Candidate rows minus reference rows (0 when the shapes agree)."""
    extra_columns: int
    """Candidate columns minus reference columns."""
    grid: tuple[tuple[float, ...], ...]
    """Downsampled map: per cell, the fraction of (batch, channel) elements that mismatch."""
    summary: str
    """One sentence, e.g. 'mismatches confined to the last 1 row and the last 1 column'."""


def analyze_regions(reference: np.ndarray, candidate: np.ndarray, comparison: Comparison,
                    bound: np.ndarray | None = None) -> MismatchRegions | None:
    """Locate the mismatches of two NHWC outputs by the rule that decided `comparison`.

    Args:
        reference, candidate: the outputs compared.
        comparison: their comparison; its rule marks the mismatching positions, so the regions count
            exactly what `comparison.mismatched` counts.
        bound: the bound array, when the rule is the rounding bound (of the reference's shape).

    Returns:
        The regions, or None when the outputs are not rank-4 with equal batch and channel counts.
    """
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if ref.ndim != 4 or cand.ndim != 4 or (ref.shape[0], ref.shape[3]) != (cand.shape[0], cand.shape[3]):
        return None
    n, rh, rw, c = ref.shape
    ch, cw = cand.shape[1:3]
    h, w = min(rh, ch), min(rw, cw)
    mask = comparison.rule.failing(ref[:, :h, :w], cand[:, :h, :w], None if bound is None else bound[:, :h, :w])
    per_position = mask.sum(axis=(0, 3))
    big_h, big_w = max(rh, ch), max(rw, cw)
    plane = np.zeros((big_h, big_w), dtype=np.int64)  # mismatching elements per position
    plane[:h, :w] = per_position
    plane[h:, :] = n * c  # a row or column only one side has is a mismatch throughout
    plane[:, w:] = n * c
    if ref.shape == cand.shape and len(comparison.mismatch_counts_by_axis) == 4:
        batch, rows, cols, chans = comparison.mismatch_counts_by_axis
    else:
        rows = tuple(int(v) for v in plane.sum(axis=1))
        cols = tuple(int(v) for v in plane.sum(axis=0))
        outside = int(plane.sum() - per_position.sum())
        chans = tuple(int(v) + outside // max(c, 1) for v in mask.sum(axis=(0, 1, 2)))
        batch = tuple(int(v) + outside // max(n, 1) for v in mask.sum(axis=(1, 2, 3)))
    depths, interior = _peel(plane[:h, :w] > 0)
    top, bottom, left, right = depths
    bottom += big_h - h
    right += big_w - w
    inner = plane[top: big_h - bottom, left: big_w - right]
    interior_count = int(inner.sum()) if interior else 0
    total = int(plane.sum())
    border_count = total - interior_count
    frame = plane.copy()
    frame[1:-1, 1:-1] = 0
    if total == 0:
        kind = "none"
    elif interior_count == 0:
        kind = "border"
    elif (top, bottom, left, right) == (0, 0, 0, 0) and not frame.any():
        kind = "interior"
    else:
        kind = "everywhere"
    return MismatchRegions(kind, (top, bottom, left, right), border_count, interior_count, tuple(rows), tuple(cols),
                           tuple(chans), tuple(batch), ch - rh, cw - rw, _grid(plane / max(n * c, 1)),
                           _summary(kind, (top, bottom, left, right), border_count, interior_count, ch - rh, cw - rw,
                                    total))


def _peel(mask: np.ndarray) -> tuple[tuple[int, int, int, int], bool]:
    """Border depths (top, bottom, left, right) by peeling edge lines denser than what is left."""
    h, w = mask.shape
    cap = max(1, min(h, w) // 8)
    r0, r1, c0, c1 = 0, h, 0, w
    while r1 - r0 > 1 and c1 - c0 > 1:
        rest = mask[r0:r1, c0:c1]
        count = int(rest.sum())
        if count == 0:
            break
        density = count / rest.size
        edges = {}
        if r0 < cap:
            edges["top"] = rest[0].mean()
        if h - r1 < cap:
            edges["bottom"] = rest[-1].mean()
        if c0 < cap:
            edges["left"] = rest[:, 0].mean()
        if w - c1 < cap:
            edges["right"] = rest[:, -1].mean()
        if not edges:
            break
        side = max(edges, key=edges.get)  # type: ignore[arg-type]
        if edges[side] <= density:
            break  # the edges are no denser than the inside: not a border effect
        if side == "top":
            r0 += 1
        elif side == "bottom":
            r1 -= 1
        elif side == "left":
            c0 += 1
        else:
            c1 -= 1
    return (r0, h - r1, c0, w - c1), bool(mask[r0:r1, c0:c1].any())


def _lines(n: int, what: str, where: str) -> str:
    return f"the {where} {n} {what}{'s' if n != 1 else ''}"


def _summary(kind: str, depths: tuple[int, int, int, int], border: int, interior: int, extra_rows: int,
             extra_cols: int, total: int) -> str:
    if kind == "none":
        return "no mismatches"
    parts = []
    top, bottom, left, right = depths
    if top:
        parts.append(_lines(top, "row", "first"))
    if bottom:
        parts.append(_lines(bottom, "row", "last"))
    if left:
        parts.append(_lines(left, "column", "first"))
    if right:
        parts.append(_lines(right, "column", "last"))
    shape = ""
    if extra_rows or extra_cols:
        shape = (f" (the candidate has {extra_rows:+d} row(s) and {extra_cols:+d} column(s) at the bottom/right; "
                 "the common region is compared top-left aligned)")
    if kind == "border":
        return f"mismatches confined to {' and '.join(parts)}{shape}"
    if kind == "interior":
        return f"mismatches only in the interior ({interior:,} elements), none on the outermost rows and columns"
    where = f"; {border:,} in {' and '.join(parts)}" if parts else ""
    return f"mismatches throughout the output: {interior:,} of {total:,} inside the border{where}{shape}"


def _grid(fraction: np.ndarray) -> tuple[tuple[float, ...], ...]:
    h, w = fraction.shape
    rows = np.array_split(np.arange(h), min(h, MAP_ROWS))
    cols = np.array_split(np.arange(w), min(w, MAP_COLS))
    return tuple(tuple(float(fraction[np.ix_(r, c)].max()) for c in cols) for r in rows)
