"""Where the mismatches sit: border positions or the interior along every spatial axis, per-axis,
per-channel and per-batch counts, and a downsampled mismatch map. Pure NumPy; mismatches are marked by
the comparison's own rule. Outputs are channels-last of any rank: (N, W, C), (N, H, W, C), (N, D, H, W, C).

Border depths are found by peeling: starting from the whole output volume, the edge slab (the first or
last row, column, depth slice or position of what is left) with the largest fraction of mismatching
positions is peeled off while that fraction exceeds the mismatch density of what is left, at most
`max(1, min(spatial sizes) // 8)` slabs per side. What is left is the interior. Mismatches confined to
peeled slabs are `border`; none on the outermost faces is `interior`; both is `everywhere`.

When the output shapes differ (N and C equal), the common region is compared aligned at the start of every
axis, and the candidate's extra (or missing) positions count as border mismatches at the end.

The map: rows x columns in 2-D; the rows x columns of the depth slice with the most mismatches in 3-D;
output channels x positions in 1-D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convdiff.compare.core import Comparison

REGION_KINDS = ("none", "border", "interior", "everywhere")
MAP_ROWS, MAP_COLS = 16, 48
AXIS_NAMES = {1: ("positions",), 2: ("rows", "columns"), 3: ("depth", "rows", "columns")}
"""The JSON names of the spatial axes, per rank (D is `depth`, H `rows`, W `columns`; 1-D W is `positions`)."""
_UNITS = {"positions": "position", "rows": "row", "columns": "column", "depth": "depth slice"}


@dataclass(frozen=True)
class AxisRegion:
    """The mismatches along one spatial axis."""

    name: str
    """`depth`, `rows`, `columns`, or `positions` (the one axis of a 1-D output)."""
    counts: tuple[int, ...]
    """Mismatching elements at each index along the axis (over batch, the other axes and channels)."""
    border: tuple[int, int]
    """Depth of the border holding mismatches at the start and at the end of the axis."""
    extra: int
    """Candidate size minus reference size along the axis (0 when the shapes agree)."""


@dataclass(frozen=True)
class MismatchRegions:
    """Where the mismatching output positions are."""

    kind: str
    """`none`, `border`, `interior` or `everywhere`."""
    axes: tuple[AxisRegion, ...]
    """One entry per spatial axis, in order (D, H, W)."""
    border_mismatches: int
    """Mismatching elements in the border slabs (extra positions of a shape mismatch included)."""
    interior_mismatches: int
    """Mismatching elements inside the border."""
    channels: tuple[int, ...]
    """Mismatching elements per output channel."""
    batch: tuple[int, ...]
    """Mismatching elements per batch item."""
    grid: tuple[tuple[float, ...], ...]
    """Downsampled map: per cell, the fraction of the elements it covers that mismatch."""
    map_axes: str
    """What the map's rows and columns are, e.g. `rows x columns`."""
    summary: str
    """One sentence, e.g. 'mismatches confined to the last 1 row and the last 1 column'."""

    def _axis(self, name: str) -> AxisRegion | None:
        return next((a for a in self.axes if a.name == name), None)

    @property
    def border(self) -> tuple[int, int, int, int] | None:
        """(top rows, bottom rows, left columns, right columns): the H and W axes (None in 1-D)."""
        rows, cols = self._axis("rows"), self._axis("columns")
        if rows is None or cols is None:
            return None
        return (*rows.border, *cols.border)

    @property
    def rows(self) -> tuple[int, ...] | None:
        """Mismatching elements per output row (None in 1-D)."""
        axis = self._axis("rows")
        return None if axis is None else axis.counts

    @property
    def columns(self) -> tuple[int, ...] | None:
        """Mismatching elements per output column (None in 1-D)."""
        axis = self._axis("columns")
        return None if axis is None else axis.counts

    @property
    def extra_rows(self) -> int | None:
        axis = self._axis("rows")
        return None if axis is None else axis.extra

    @property
    def extra_columns(self) -> int | None:
        axis = self._axis("columns")
        return None if axis is None else axis.extra


def analyze_regions(reference: np.ndarray, candidate: np.ndarray, comparison: Comparison,
                    bound: np.ndarray | None = None) -> MismatchRegions | None:
    """Locate the mismatches of two channels-last outputs by the rule that decided `comparison`.

    Args:
        reference, candidate: the outputs compared, (N, spatial..., C) with 1 to 3 spatial axes.
        comparison: their comparison; its rule marks the mismatching positions, so the regions count
            exactly what `comparison.mismatched` counts.
        bound: the bound array, when the rule is the rounding bound (of the reference's shape).

    Returns:
        The regions, or None when the outputs are not of the same rank 3 to 5 with equal batch and channels.
    """
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if (ref.ndim != cand.ndim or not 3 <= ref.ndim <= 5
            or (ref.shape[0], ref.shape[-1]) != (cand.shape[0], cand.shape[-1])):
        return None
    rank = ref.ndim - 2
    n, c = ref.shape[0], ref.shape[-1]
    ref_sizes, cand_sizes = ref.shape[1:-1], cand.shape[1:-1]
    common = tuple(min(a, b) for a, b in zip(ref_sizes, cand_sizes))
    big = tuple(max(a, b) for a, b in zip(ref_sizes, cand_sizes))
    index = (slice(None), *(slice(0, m) for m in common), slice(None))
    mask = comparison.rule.failing(ref[index], cand[index], None if bound is None else bound[index])
    per_position = mask.sum(axis=(0, -1))
    plane = np.full(big, n * c, dtype=np.int64)  # a position only one side has is a mismatch throughout
    plane[tuple(slice(0, m) for m in common)] = per_position
    spatial_axes = tuple(range(rank))
    if ref.shape == cand.shape and len(comparison.mismatch_counts_by_axis) == ref.ndim:
        by_axis = comparison.mismatch_counts_by_axis
        batch, chans, profiles = by_axis[0], by_axis[-1], by_axis[1:-1]
    else:
        profiles = tuple(tuple(int(v) for v in plane.sum(axis=tuple(a for a in spatial_axes if a != axis)))
                         for axis in spatial_axes)
        outside = int(plane.sum() - per_position.sum())
        chans = tuple(int(v) + outside // max(c, 1) for v in mask.sum(axis=tuple(range(rank + 1))))
        batch = tuple(int(v) + outside // max(n, 1) for v in mask.sum(axis=tuple(range(1, rank + 2))))
    depths, interior = _peel(plane[tuple(slice(0, m) for m in common)] > 0)
    depths = tuple((before, after + b - m) for (before, after), b, m in zip(depths, big, common))
    inner = plane[tuple(slice(before, size - after) for (before, after), size in zip(depths, big))]
    interior_count = int(inner.sum()) if interior else 0
    total = int(plane.sum())
    border_count = total - interior_count
    frame = plane.copy()
    frame[tuple(slice(1, -1) for _ in big)] = 0
    if total == 0:
        kind = "none"
    elif interior_count == 0:
        kind = "border"
    elif all(d == (0, 0) for d in depths) and not frame.any():
        kind = "interior"
    else:
        kind = "everywhere"
    names = AXIS_NAMES[rank]
    extras = tuple(b - a for a, b in zip(ref_sizes, cand_sizes))
    axes = tuple(AxisRegion(name, tuple(int(v) for v in counts), depth, extra)
                 for name, counts, depth, extra in zip(names, profiles, depths, extras))
    grid, map_axes = _map(plane, mask, common, big, n, c, rank)
    return MismatchRegions(kind, axes, border_count, interior_count, tuple(int(v) for v in chans),
                           tuple(int(v) for v in batch), grid, map_axes,
                           _summary(kind, axes, border_count, interior_count, total))


def _peel(mask: np.ndarray) -> tuple[tuple[tuple[int, int], ...], bool]:
    """Border depths (before, after) per axis by peeling edge slabs denser than what is left."""
    shape = mask.shape
    cap = max(1, min(shape) // 8)
    lo, hi = [0] * len(shape), list(shape)
    while all(h - low > 1 for low, h in zip(lo, hi)):
        rest = mask[tuple(slice(low, h) for low, h in zip(lo, hi))]
        count = int(rest.sum())
        if count == 0:
            break
        density = count / rest.size
        edges = {}
        for axis in range(len(shape)):
            if lo[axis] < cap:
                edges[(axis, 0)] = np.take(rest, 0, axis=axis).mean()
            if shape[axis] - hi[axis] < cap:
                edges[(axis, 1)] = np.take(rest, -1, axis=axis).mean()
        if not edges:
            break
        side = max(edges, key=edges.get)  # type: ignore[arg-type]
        if edges[side] <= density:
            break  # the edges are no denser than the inside: not a border effect
        axis, end = side
        if end == 0:
            lo[axis] += 1
        else:
            hi[axis] -= 1
    depths = tuple((low, size - h) for low, h, size in zip(lo, hi, shape))
    return depths, bool(mask[tuple(slice(low, h) for low, h in zip(lo, hi))].any())


def _map(plane: np.ndarray, mask: np.ndarray, common: tuple[int, ...], big: tuple[int, ...], n: int, c: int,
         rank: int) -> tuple[tuple[tuple[float, ...], ...], str]:
    if rank == 2:
        return _grid(plane / max(n * c, 1)), "rows x columns"
    if rank == 3:
        depth = int(np.argmax(plane.sum(axis=(1, 2))))
        return (_grid(plane[depth] / max(n * c, 1)),
                f"rows x columns of depth slice {depth} (the one with the most mismatches)")
    per_channel = np.ones((c, big[0]))  # positions only one side has: a mismatch throughout
    per_channel[:, :common[0]] = mask.sum(axis=0).T / max(n, 1)
    return _grid(per_channel), "output channels x positions"


def _lines(n: int, what: str, where: str) -> str:
    return f"the {where} {n} {what}{'s' if n != 1 else ''}"


def _summary(kind: str, axes: tuple[AxisRegion, ...], border: int, interior: int, total: int) -> str:
    if kind == "none":
        return "no mismatches"
    parts = []
    for axis in axes:
        before, after = axis.border
        if before:
            parts.append(_lines(before, _UNITS[axis.name], "first"))
        if after:
            parts.append(_lines(after, _UNITS[axis.name], "last"))
    shape = ""
    if any(a.extra for a in axes):
        if [a.name for a in axes] == ["rows", "columns"]:
            extra_rows, extra_cols = (a.extra for a in axes)
            shape = (f" (the candidate has {extra_rows:+d} row(s) and {extra_cols:+d} column(s) at the bottom/right; "
                     "the common region is compared top-left aligned)")
        else:
            counts = " and ".join(f"{a.extra:+d} {_UNITS[a.name]}(s)" for a in axes)
            shape = f" (the candidate has {counts} at the end; the common region is compared aligned at the start)"
    if kind == "border":
        return f"mismatches confined to {' and '.join(parts)}{shape}"
    if kind == "interior":
        outer = {1: "the first and last positions", 2: "the outermost rows and columns",
                 3: "the outer faces"}[len(axes)]
        return f"mismatches only in the interior ({interior:,} elements), none on {outer}"
    where = f"; {border:,} in {' and '.join(parts)}" if parts else ""
    return f"mismatches throughout the output: {interior:,} of {total:,} inside the border{where}{shape}"


def _grid(fraction: np.ndarray) -> tuple[tuple[float, ...], ...]:
    h, w = fraction.shape
    rows = np.array_split(np.arange(h), min(h, MAP_ROWS))
    cols = np.array_split(np.arange(w), min(w, MAP_COLS))
    return tuple(tuple(float(fraction[np.ix_(r, c)].max()) for c in cols) for r in rows)
