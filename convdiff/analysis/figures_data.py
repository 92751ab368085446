"""The arrays behind the figures of a comparison, computed here once as frozen data so that
`convdiff.report.figures` only draws them:

- `DifferenceMap`: |candidate - reference| divided by the deciding rule's limit at each position
  (the rounding bound, or atol + rtol * |reference|), so 1.0 is "at the limit": a pass lies below
  1 everywhere and a mismatch above it. Panels are the spatial slices that matter: the whole
  output plane (max over batch and channels), the worst channel, and the border lines the regions
  analysis found; the mismatch regions of each panel are outlined by bounding boxes.
- `ErrorScatter`: the error of each position against the magnitude its limit grows with, and the
  limit as a line.
- `RatioHistogram`: how many positions sit at each |diff| / limit (log-spaced bins).
- `KernelMosaic`: the reference's and candidate's kernels and their difference, tiled, for small
  kernels.

Outputs are `(N, *spatial, C)`: NHWC today; one spatial axis (N, W, C) becomes a channels x
positions plane, three (N, D, H, W, C) a panel per depth slice that matters (the worst, the first
and last when they mismatch). Large planes are max-pooled, so a single mismatching row or column
never disappears from a figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convdiff.compare.rules import Rule

MAX_CELLS = (240, 360)
"""The largest plane drawn cell by cell (rows, columns); larger ones are max-pooled to fit."""
MAX_OUTLINES = 12
"""Mismatch regions outlined per panel, largest first (the panel says how many there are)."""
BORDER_CONTEXT = 3
"""Rows (or columns) of the interior shown next to the border lines of a border panel."""
SCATTER_POINTS = 4000
"""Positions drawn in the error-vs-magnitude scatter: every failing one first (worst first), then an
evenly spaced sample of the rest."""
HISTOGRAM_DECADES = (-12, 12)
BINS_PER_DECADE = 4
KERNEL_SIDE = 11
"""Kernels up to this size (rows and columns) are drawn tile by tile."""
KERNEL_TILES = (8, 16)
"""At most this many input channels (tile rows) and output channels (tile columns) are drawn: the
ones whose weights differ most."""


@dataclass(frozen=True)
class Outline:
    """A bounding box of one connected mismatch region, in output coordinates (end exclusive)."""

    rows: tuple[int, int]
    columns: tuple[int, int]
    count: int
    """Mismatching positions inside."""


@dataclass(frozen=True)
class MapPanel:
    """One spatial slice of the difference map."""

    title: str
    kind: str
    """`plane` (the whole output plane), `channel` (the worst channel), `depth` (a depth slice),
    `rows` or `columns` (border lines and a few interior ones next to them)."""
    ratio: np.ndarray
    """2-D float64, one cell per position (or per pooled block: the block's largest value). NaN where
    only one side has the position or the NaN/Inf pattern differs; inf where the limit is 0 but the
    difference is not."""
    rows: tuple[int, int]
    """First output row of the panel and the end (exclusive)."""
    columns: tuple[int, int]
    cell: tuple[int, int]
    """Output rows and columns per drawn cell (1, 1 unless pooled)."""
    outlines: tuple[Outline, ...]
    regions: int
    """Connected mismatch regions in the panel (`outlines` holds at most MAX_OUTLINES of them)."""
    row_label: str = "output row"
    column_label: str = "output column"


@dataclass(frozen=True)
class DifferenceMap:
    panels: tuple[MapPanel, ...]
    limit: str
    """What 1.0 is, e.g. "the float32 rounding bound" or "atol + rtol * |reference| (atol=1e-05, rtol=1.3e-06)"."""
    max_ratio: float
    """The largest |diff| / limit where both sides have finite values (inf when a limit of 0 is exceeded)."""
    mismatched: int
    total: int
    one_sided: int
    """Positions of the whole plane drawn as NaN: only one side has them (shape mismatch) or their
    NaN/Inf pattern differs."""


@dataclass(frozen=True)
class LimitLine:
    label: str
    y: np.ndarray
    """The limit at each `ErrorScatter.line_x`."""


@dataclass(frozen=True)
class ErrorScatter:
    magnitude: np.ndarray
    """x of each drawn position: |x| (*) |w| under the bound rule, |reference| under the elementwise rule."""
    error: np.ndarray
    """|candidate - reference| of each drawn position (all > 0: zeros have no place on log axes)."""
    failing: np.ndarray
    """Whether each drawn position fails the deciding rule."""
    line_x: np.ndarray
    lines: tuple[LimitLine, ...]
    magnitude_label: str
    shown: int
    finite: int
    """Positions with finite values on both sides (the population sampled)."""
    zero_error: int
    """Positions with no difference at all, not drawn."""
    limit: str


@dataclass(frozen=True)
class RatioHistogram:
    edges: np.ndarray
    """Bin edges of |diff| / limit (log-spaced; the bins with counts, plus 1.0 inside the range)."""
    counts: np.ndarray
    zero: int
    """Positions with no difference (ratio 0), counted apart."""
    infinite: int
    """Positions whose limit is 0 but whose difference is not."""
    excluded: int
    """Positions left out: non-finite values on a side."""
    total: int
    limit: str


@dataclass(frozen=True)
class KernelMosaic:
    """Tiles of kh x kw weights: one row of tiles per input channel, one column per output channel."""

    reference: np.ndarray
    candidate: np.ndarray
    difference: np.ndarray
    """candidate - reference; NaN in the one-cell gaps between tiles (in all three)."""
    in_channels: tuple[int, ...]
    out_channels: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    identical: bool
    max_abs_diff: float


def limit_name(rule: Rule) -> str:
    """What a ratio of 1.0 means under `rule`."""
    if rule.model is not None:
        return f"the {rule.model.dtype} rounding bound"
    t = rule.tolerance
    return f"atol + rtol * |reference| (atol={t.atol:g}, rtol={t.rtol:g})"


def ratios(reference: np.ndarray, candidate: np.ndarray, rule: Rule, bound: np.ndarray | None = None) -> np.ndarray:
    """|candidate - reference| / limit per element (float64), by the deciding rule.

    0 where the values agree (equal infinities, NaN with NaN under equal_nan, or no difference);
    inf where the limit is 0 (or not finite: compared exactly) and the values differ; NaN where the
    NaN/Inf pattern differs between the sides.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(ref) & np.isfinite(cand)
        diff = np.where(finite, np.abs(cand - ref), 0.0)
        limit = rule.thresholds(ref, bound)
        usable = np.isfinite(limit) & (limit > 0)
        ratio = np.where(usable, diff / np.where(usable, limit, 1.0), np.where(diff > 0, np.inf, 0.0))
        agree = ref == cand
        if rule.equal_nan:
            agree |= np.isnan(ref) & np.isnan(cand)
    return np.where(finite, ratio, np.where(agree, 0.0, np.nan))


def _common(reference: np.ndarray, candidate: np.ndarray) -> tuple[slice, ...]:
    """The region both outputs have (top-left aligned), batch and channels included."""
    return tuple(slice(0, min(a, b)) for a, b in zip(reference.shape, candidate.shape))


def difference_map(reference: np.ndarray, candidate: np.ndarray, rule: Rule, bound: np.ndarray | None = None,
                   border: tuple[int, int, int, int] | None = None) -> DifferenceMap | None:
    """The per-position difference scaled to the deciding rule's limit, in panels.

    Args:
        reference, candidate: the outputs, `(N, *spatial, C)` with 1 to 3 spatial axes. Their shapes
            may differ in the spatial axes: positions only one side has are NaN.
        rule: the deciding rule of their comparison; `bound` its bound array (the reference's shape).
        border: (top, bottom, left, right) border depths from the regions analysis; each side with a
            border gets a panel of its lines and a few interior lines next to them.

    Returns:
        The map, or None when the outputs differ in rank, batch or channels.
    """
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if ref.ndim != cand.ndim or not 3 <= ref.ndim <= 5 or (ref.shape[0], ref.shape[-1]) != (cand.shape[0],
                                                                                           cand.shape[-1]):
        return None
    common = _common(ref, cand)
    spatial = tuple(max(a, b) for a, b in zip(ref.shape[1:-1], cand.shape[1:-1]))
    inner = tuple(s.stop for s in common[1:-1])
    batch, channels = ref.shape[0], ref.shape[-1]
    # Accumulated per batch item, so that memory stays near one item whatever the batch size.
    per_channel = np.zeros((*inner, channels))
    pattern = np.zeros((*inner, channels), dtype=bool)  # the NaN/Inf pattern differs in some batch item
    mismatched = 0
    for n in range(batch):
        r = ratios(ref[(n, *common[1:])], cand[(n, *common[1:])], rule,
                   None if bound is None else np.asarray(bound)[(n, *common[1:])])
        differs = np.isnan(r)
        mismatched += int(np.count_nonzero(differs | (r > 1)))
        pattern |= differs
        per_channel = np.maximum(per_channel, np.where(differs, 0.0, r))
    per_channel[pattern] = np.nan
    region = tuple(slice(0, n) for n in inner)
    channel_planes = np.full((*spatial, channels), np.nan)  # outside the common region: only one side has it
    channel_planes[region] = per_channel
    plane = np.full(spatial, np.nan)
    plane[region] = np.max(per_channel, axis=-1, initial=0.0)  # NaN where any channel's pattern differs
    one_sided = int(np.prod(spatial)) - int(np.prod(inner))
    mismatched += one_sided * batch * channels
    drawn = plane[~np.isnan(plane)]
    return DifferenceMap(tuple(_panels(plane, channel_planes, border)), limit_name(rule),
                         float(drawn.max()) if drawn.size else 0.0, mismatched,
                         int(np.prod(spatial)) * batch * channels, int(np.count_nonzero(np.isnan(plane))))


def _panels(plane: np.ndarray, per_channel: np.ndarray, border: tuple[int, int, int, int] | None) -> list[MapPanel]:
    if plane.ndim == 1:  # one spatial axis: the channels are the rows of the plane
        return [_panel("every channel (max over the batch)", "plane", per_channel.T, (0, 0), "channel",
                       "output position")]
    if plane.ndim == 3:
        return _depth_panels(plane, per_channel)
    panels = [_panel("every channel (max over batch and channels)", "plane", plane, (0, 0))]
    channels = per_channel.shape[-1]
    if channels > 1:
        worst = max(range(channels), key=lambda c: (_badness(per_channel[..., c]), -c))
        panels.append(_panel(f"channel {worst}, the worst (max over the batch)", "channel", per_channel[..., worst],
                             (0, 0)))
    if border is not None:
        panels.extend(_border_panels(plane, border))
    return panels


def _badness(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(np.count_nonzero(~np.isfinite(values) | (values > 1))), float(finite.max()) if finite.size else 0.0)


def _depth_panels(plane: np.ndarray, per_channel: np.ndarray) -> list[MapPanel]:
    depth = plane.shape[0]
    worst = max(range(depth), key=lambda d: (_badness(plane[d]), -d))
    chosen = [worst]
    for d in (0, depth - 1):  # the first and last slices: a border in depth
        if d not in chosen and _badness(plane[d])[0] > 0:
            chosen.append(d)
    return [_panel(f"depth {d}{', the worst' if d == worst else ''} (max over batch and channels)", "depth", plane[d],
                   (0, 0))
            for d in sorted(chosen)]


def _border_panels(plane: np.ndarray, border: tuple[int, int, int, int]) -> list[MapPanel]:
    h, w = plane.shape
    top, bottom, left, right = border
    panels = []
    if top:
        end = min(h, top + BORDER_CONTEXT)
        panels.append(_panel(f"the first {_count(top, 'row')} (and {end - top} inside)", "rows", plane[:end], (0, 0)))
    if bottom:
        start = max(0, h - bottom - BORDER_CONTEXT)
        panels.append(_panel(f"the last {_count(bottom, 'row')} (and {h - bottom - start} inside)", "rows", plane[start:],
                             (start, 0)))
    if left:
        end = min(w, left + BORDER_CONTEXT)
        panels.append(_panel(f"the first {_count(left, 'column')} (and {end - left} inside)", "columns",
                             plane[:, :end], (0, 0)))
    if right:
        start = max(0, w - right - BORDER_CONTEXT)
        panels.append(_panel(f"the last {_count(right, 'column')} (and {w - right - start} inside)", "columns",
                             plane[:, start:],
                             (0, start)))
    return panels


def _count(n: int, what: str) -> str:
    return f"{n} {what}s" if n != 1 else what


def _panel(title: str, kind: str, values: np.ndarray, origin: tuple[int, int], row_label: str = "output row",
           column_label: str = "output column") -> MapPanel:
    outlines, regions = _outlines(values, origin)
    pooled, cell = _pool(values)
    r0, c0 = origin
    return MapPanel(title, kind, pooled, (r0, r0 + values.shape[0]), (c0, c0 + values.shape[1]), cell, outlines, regions,
                    row_label, column_label)


def _outlines(values: np.ndarray, origin: tuple[int, int]) -> tuple[tuple[Outline, ...], int]:
    """Bounding boxes of the connected mismatch regions (8-connected), largest first."""
    from scipy import ndimage

    failing = np.isnan(values) | (values > 1)
    labels, count = ndimage.label(failing, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return (), 0
    sizes = np.bincount(labels.ravel())[1:]
    boxes = ndimage.find_objects(labels)
    order = sorted(range(count), key=lambda i: (-sizes[i], boxes[i][0].start, boxes[i][1].start))[:MAX_OUTLINES]
    r0, c0 = origin
    return tuple(Outline((r0 + boxes[i][0].start, r0 + boxes[i][0].stop), (c0 + boxes[i][1].start,
                                                                           c0 + boxes[i][1].stop), int(sizes[i]))
                 for i in order), int(count)


def _pool(values: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Max-pool to at most MAX_CELLS cells; a NaN in a block makes the block NaN."""
    h, w = values.shape
    fh, fw = -(-h // MAX_CELLS[0]), -(-w // MAX_CELLS[1])
    if fh == 1 and fw == 1:
        return values.astype(np.float64), (1, 1)
    padded = np.full((-(-h // fh) * fh, -(-w // fw) * fw), -np.inf)
    padded[:h, :w] = np.where(np.isnan(values), np.inf, values)
    blocks = padded.reshape(padded.shape[0] // fh, fh, padded.shape[1] // fw, fw)
    nan = np.pad(np.isnan(values), ((0, padded.shape[0] - h), (0, padded.shape[1] - w)))
    nan = nan.reshape(blocks.shape).any(axis=(1, 3))
    pooled = blocks.max(axis=(1, 3))
    return np.where(nan, np.nan, pooled), (fh, fw)


def error_scatter(reference: np.ndarray, candidate: np.ndarray, rule: Rule, bound: np.ndarray | None = None,
                  magnitude: np.ndarray | None = None, bias: np.ndarray | None = None) -> ErrorScatter | None:
    """Each position's error against the magnitude its limit grows with, and the limit as lines.

    Args:
        reference, candidate: outputs of the same shape.
        rule, bound: the deciding rule and its bound array.
        magnitude: `|x| (*) |w|` (the reference side's), needed under the bound rule.
        bias: the reference's bias, whose add widens the bound by u * |b|: with a non-zero bias the
            limit is drawn for |b| = 0 and for the largest |b|.

    Returns:
        The sample, or None when the shapes differ or nothing finite differs.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        return None
    if rule.model is not None and magnitude is None:
        raise ValueError("the bound rule's scatter needs |x| (*) |w|")
    with np.errstate(all="ignore"):
        finite = np.isfinite(ref) & np.isfinite(cand)
        error = np.abs(cand - ref)
        x = np.abs(ref) if rule.model is None else np.asarray(magnitude, dtype=np.float64)
        failing = rule.failing(ref, cand, bound)
        ratio = ratios(ref, cand, rule, bound)
    drawable = finite & (error > 0) & np.isfinite(x) & (x > 0)
    index = np.flatnonzero(drawable)
    if index.size == 0:
        return None
    fail_idx = index[failing.ravel()[index]]
    fail_idx = fail_idx[np.argsort(-ratio.ravel()[fail_idx], kind="stable")][:SCATTER_POINTS]
    pass_idx = index[~failing.ravel()[index]]
    room = SCATTER_POINTS - fail_idx.size
    if pass_idx.size > room:
        pass_idx = pass_idx[np.linspace(0, pass_idx.size - 1, max(room, 0)).astype(np.int64)] if room > 0 else pass_idx[:0]
    chosen = np.concatenate([pass_idx, fail_idx])
    xs = x.ravel()[chosen]
    line_x = np.geomspace(xs.min(), xs.max(), 64) if xs.min() < xs.max() else np.array([xs.min() / 2, xs.min() * 2])
    lines = _limit_lines(rule, line_x, bias)
    return ErrorScatter(xs, error.ravel()[chosen], failing.ravel()[chosen], line_x, lines,
                        "|reference|" if rule.model is None else "|x| (*) |w| (magnitude of the dot product)",
                        int(chosen.size), int(np.count_nonzero(finite)),
                        int(np.count_nonzero(finite & (error == 0))), limit_name(rule))


def _limit_lines(rule: Rule, x: np.ndarray, bias: np.ndarray | None) -> tuple[LimitLine, ...]:
    if rule.model is None:
        t = rule.tolerance
        return (LimitLine(f"atol + rtol * |reference| (atol={t.atol:g}, rtol={t.rtol:g})", t.atol + t.rtol * x),)
    # The bound grows with S = |x| (*) |w| and with |t| <= S: drawn at |t| = S, its upper envelope.
    model = rule.model
    name = f"{model.dtype} rounding bound ({model.form.value}, at |x (*) w| = |x| (*) |w|)"
    largest = float(np.max(np.abs(bias))) if bias is not None and np.size(bias) else 0.0
    if largest == 0:
        return (LimitLine(name, model.bound(x, x, None if bias is None else np.zeros(1))),)
    return (LimitLine(f"{name}, bias 0", model.bound(x, x, np.zeros(1))),
            LimitLine(f"{name}, largest |bias| {largest:.3g}",
                      model.bound(x, x + largest, np.array([largest]))))


def ratio_histogram(reference: np.ndarray, candidate: np.ndarray, rule: Rule,
                    bound: np.ndarray | None = None) -> RatioHistogram | None:
    """Counts of |diff| / limit in log-spaced bins (BINS_PER_DECADE per decade), zeros apart.

    Returns None when the shapes differ.
    """
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if ref.shape != cand.shape:
        return None
    lo, hi = HISTOGRAM_DECADES
    edges = np.logspace(lo, hi, (hi - lo) * BINS_PER_DECADE + 1)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    zero = infinite = excluded = 0
    chunks = [slice(None)] if ref.ndim == 0 else [slice(i, i + 1) for i in range(ref.shape[0])]
    for chunk in chunks:
        r = ratios(ref[chunk], cand[chunk], rule, None if bound is None else np.asarray(bound)[chunk]).ravel()
        with np.errstate(all="ignore"):
            finite_values = np.isfinite(np.asarray(ref[chunk], dtype=np.float64)) & np.isfinite(
                np.asarray(cand[chunk], dtype=np.float64))
        finite_values = finite_values.ravel()
        excluded += int(np.count_nonzero(~finite_values))
        r = r[finite_values]
        zero += int(np.count_nonzero(r == 0))
        infinite += int(np.count_nonzero(np.isinf(r)))
        positive = r[np.isfinite(r) & (r > 0)]
        counts += np.histogram(np.clip(positive, edges[0], edges[-1]), bins=edges)[0]
    used = np.flatnonzero(counts)
    if used.size:
        first, last = used[0], used[-1] + 1
        one = (0 - lo) * BINS_PER_DECADE  # the edge at 1.0 stays inside the drawn range
        first, last = min(first, one - BINS_PER_DECADE), max(last, one + BINS_PER_DECADE)
    else:
        first, last = (0 - lo - 1) * BINS_PER_DECADE, (0 - lo + 1) * BINS_PER_DECADE
    return RatioHistogram(edges[first:last + 1], counts[first:last], zero, infinite, excluded, int(ref.size),
                          limit_name(rule))


def kernel_mosaic(reference: np.ndarray, candidate: np.ndarray) -> KernelMosaic | None:
    """Both kernels (HWIO, or WIO for one spatial axis) tiled, and their difference; None unless small and of one shape."""
    ref, cand = np.asarray(reference, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim not in (3, 4):
        return None
    if ref.ndim == 3:
        ref, cand = ref[None], cand[None]
    kh, kw, cin, cout = ref.shape
    if kh > KERNEL_SIDE or kw > KERNEL_SIDE or ref.size == 0:
        return None
    with np.errstate(all="ignore"):
        diff = cand - ref
    per_in = np.nan_to_num(np.abs(diff), nan=np.inf).max(axis=(0, 1, 3))
    per_out = np.nan_to_num(np.abs(diff), nan=np.inf).max(axis=(0, 1, 2))
    ins = _most_different(per_in, KERNEL_TILES[0])
    outs = _most_different(per_out, KERNEL_TILES[1])

    def tiles(k: np.ndarray) -> np.ndarray:
        mosaic = np.full((len(ins) * (kh + 1) - 1, len(outs) * (kw + 1) - 1), np.nan)
        for a, i in enumerate(ins):
            for b, o in enumerate(outs):
                mosaic[a * (kh + 1):a * (kh + 1) + kh, b * (kw + 1):b * (kw + 1) + kw] = k[:, :, i, o]
        return mosaic

    max_diff = float(np.nanmax(np.abs(diff))) if diff.size else 0.0
    return KernelMosaic(tiles(ref), tiles(cand), tiles(diff), ins, outs, tuple(np.shape(reference)),
                        bool(np.array_equal(ref, cand, equal_nan=True)), max_diff)


def _most_different(per_channel: np.ndarray, limit: int) -> tuple[int, ...]:
    if per_channel.size <= limit:
        return tuple(range(per_channel.size))
    order = sorted(range(per_channel.size), key=lambda i: (-per_channel[i], i))[:limit]
    return tuple(sorted(order))
