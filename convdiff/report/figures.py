"""Figures drawn with matplotlib (the `report` extra): frozen data in, PNG, SVG or PDF bytes out.

The data comes from `convdiff.analysis.figures_data` (a comparison's difference map, error scatter,
ratio histogram and kernel mosaic) or from a suite's result (propagate's per-layer std); nothing
here computes a figure. One `draw` function per kind of data, registered on its type: a new figure
(the models issue's per-layer error chart) is a new data class and one `@draw.register` function.

Every figure has a title, labelled axes with units and a colour scale or legend. Rendering is
deterministic: matplotlib's defaults (not the user's matplotlibrc), a fixed SVG hash salt, text as
paths, and no dates in the metadata, so reruns give byte-identical files. matplotlib is imported
lazily, on its non-interactive Agg canvas; without it, a figure is exit 3 with the install command.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.analysis.figures_data import (DifferenceMap, ErrorScatter, KernelMosaic, MapPanel, RatioHistogram,
                                            difference_map, error_scatter, kernel_mosaic, ratio_histogram)
from convdiff.data.files import write_atomically
from convdiff.errors import BackendUnavailableError, BadInputError, install_command
from convdiff.pipeline import CaseResult
from convdiff.pipeline.models import ModelsResult
from convdiff.suites.propagate import EXPLODING, VANISHING, Propagation

INSTALL = install_command("report")
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": "convdiff"},
    "svg": {"Date": None, "Creator": "convdiff"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "convdiff", "Producer": "convdiff"},
}
RC = {"svg.hashsalt": "convdiff", "svg.fonttype": "path", "pdf.compression": 6, "font.size": 9,
      "axes.titlesize": 9, "figure.titlesize": 11, "image.interpolation": "nearest"}
PASS_COLOUR, FAIL_COLOUR, ONE_SIDED_COLOUR, OUTLINE_COLOUR = "#2166ac", "#d6292b", "#000000", "#00c853"
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
DPI = 110


def require_matplotlib() -> None:
    """Refuse (exit 3) before any work when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise BackendUnavailableError(f"figures need matplotlib, which is not installed: {INSTALL}")


def figure_format(path: str, what: str = "figure") -> str:
    """The format a file name asks for (png, svg or pdf), or exit 2: no PNG bytes in a .jpg."""
    extension = os.path.splitext(str(path))[1].lower()
    if extension not in FORMATS:
        raise BadInputError(f"cannot write {what} '{path}': the format follows the file's extension, "
                            f"one of {', '.join(FORMATS)} (got '{extension or 'none'}')")
    return FORMATS[extension]


@functools.singledispatch
def draw(data: object, figure: Any) -> None:
    """Draw `data` on an empty matplotlib Figure (registered per data type)."""
    raise TypeError(f"no figure for {type(data).__name__}")


def size(data: object) -> tuple[float, float]:
    """The figure size in inches (width, height) for `data`."""
    if isinstance(data, DifferenceMap):
        return _map_size(data)
    if isinstance(data, Propagation):
        return 7.5, 5.4
    if isinstance(data, KernelMosaic):
        h, w = data.reference.shape
        if _kernels_stacked(data):
            return 10.0, 1.0 + 3 * (1.5 + min(2.5, 8.5 * h / max(w, 1)))
        return 10.0, 2.4 + min(4.0, 3.0 * h / max(w, 1))
    return 7.5, 4.6


def render(data: object, fmt: str = "svg") -> bytes:
    """The figure of `data` as `fmt` (png, svg or pdf) bytes."""
    require_matplotlib()
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # the same figure whatever the user's matplotlibrc says
        matplotlib.rcParams.update(RC)
        figure = Figure(figsize=size(data), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(data, figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, metadata=METADATA[fmt], dpi=DPI)
    return buffer.getvalue()


def write_figure(path: str, data: object, what: str = "figure") -> None:
    """Render `data` in the format of `path`'s extension and write it atomically."""
    write_atomically(path, render(data, figure_format(path, what)), what)


# --- a comparison's figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFigures:
    """The figures of one comparison; each is None when it does not apply."""

    difference: DifferenceMap | None
    scatter: ErrorScatter | None
    histogram: RatioHistogram | None
    kernels: KernelMosaic | None

    def present(self) -> list[object]:
        return [f for f in (self.difference, self.scatter, self.histogram, self.kernels) if f is not None]


def difference_figure(case: CaseResult) -> DifferenceMap | None:
    """The map `--heatmap` writes: |diff| / limit per position, with the regions' border panels."""
    regions = case.regions
    return difference_map(case.reference.output, case.candidate.output, case.output.rule, case.bound,
                          None if regions is None else regions.border)


def case_figures(case: CaseResult) -> CaseFigures:
    """Every figure of a comparison (an identical one has nothing to draw but its map)."""
    ref, cand = case.reference, case.candidate
    rule = case.output.rule
    scatter = histogram = None
    if case.output.shape_match and case.output.total and case.output.max_abs_diff != 0:
        magnitude = None
        if rule.model is not None:
            from convdiff.reference.rounding import abs_convolution

            run = case.side("reference")
            magnitude = abs_convolution(run.input, ref.kernel, run.config.spec)
        scatter = error_scatter(ref.output, cand.output, rule, case.bound, magnitude, ref.bias)
        histogram = ratio_histogram(ref.output, cand.output, rule, case.bound)
    return CaseFigures(difference_figure(case), scatter, histogram, kernel_mosaic(ref.kernel, cand.kernel))


# --- the difference map --------------------------------------------------------------------------


def _ratio_scale(max_ratio: float):  # noqa: ANN202 - (colormap, norm)
    """A two-part colour map on a log scale symmetric about 1.0: blues below the limit, reds above,
    with a jump at 1.0 so that "just within" and "just over" never look alike."""
    import matplotlib
    from matplotlib.colors import ListedColormap, LogNorm

    top = 10.0 ** max(2, min(8, int(np.ceil(np.log10(max_ratio))) if np.isfinite(max_ratio) and max_ratio > 0 else 8))
    below = matplotlib.colormaps["Blues_r"](np.linspace(0.0, 0.85, 128))
    above = matplotlib.colormaps["YlOrRd"](np.linspace(0.3, 1.0, 128))
    cmap = ListedColormap(np.vstack([below, above]), name="convdiff-ratio").with_extremes(
        under=below[0], over="#3d0008", bad=ONE_SIDED_COLOUR)
    return cmap, LogNorm(vmin=1.0 / top, vmax=top)


def _display(ratio: np.ndarray, norm: Any) -> np.ndarray:
    """Ratios as the colour scale draws them: 0 (no difference) below its bottom, inf above its top."""
    shown = np.where(ratio == 0, norm.vmin / 10, ratio)
    return np.where(np.isposinf(shown), norm.vmax * 10, shown)


def _map_size(data: DifferenceMap) -> tuple[float, float]:
    planes, rows, columns = _map_groups(data.panels)
    width = 10.0
    height = 1.4  # the titles and the colour bar's label
    if planes:
        h, w = planes[0].rows[1] - planes[0].rows[0], planes[0].columns[1] - planes[0].columns[0]
        panel_width = (width - 1.6) / len(planes)
        height += min(6.0, max(1.6, panel_width * h / max(w, 1))) + 0.6
    height += 1.5 * len(rows) + (3.0 if columns else 0.0)
    return width, height


def _map_groups(panels: Sequence[MapPanel]) -> tuple[list[MapPanel], list[MapPanel], list[MapPanel]]:
    return ([p for p in panels if p.kind in ("plane", "channel", "depth")], [p for p in panels if p.kind == "rows"],
            [p for p in panels if p.kind == "columns"])


@draw.register
def _draw_map(data: DifferenceMap, figure: Any) -> None:
    from matplotlib.patches import Patch

    cmap, norm = _ratio_scale(data.max_ratio)
    planes, row_strips, column_strips = _map_groups(data.panels)
    grid_columns = max(len(planes), len(column_strips), 1)
    heights = ([3.0] if planes else []) + [1.0] * len(row_strips) + ([2.0] if column_strips else [])
    grid = figure.add_gridspec(len(heights), grid_columns, height_ratios=heights)
    axes, image = [], None
    line = 0
    if planes:
        for i, panel in enumerate(planes):
            axes.append((figure.add_subplot(grid[line, i]), panel, "equal"))
        line += 1
    for panel in row_strips:
        axes.append((figure.add_subplot(grid[line, :]), panel, "auto"))
        line += 1
    for i, panel in enumerate(column_strips):
        axes.append((figure.add_subplot(grid[line, i]), panel, "auto"))
    for ax, panel, aspect in axes:
        image = _draw_panel(ax, panel, cmap, norm, aspect)
    worst = "infinitely many times" if np.isposinf(data.max_ratio) else f"{data.max_ratio:.3g} times"
    if not data.mismatched:
        verdict = f"all {data.total:,} elements within it, the largest at {worst} the limit"
    elif data.one_sided:
        verdict = (f"{data.mismatched:,} of {data.total:,} elements fail: {data.one_sided:,} positions only one side "
                   f"has or whose NaN/Inf differs (black); elsewhere up to {worst} the limit")
    else:
        verdict = f"{data.mismatched:,} of {data.total:,} elements exceed it, up to {worst} the limit"
    figure.suptitle(f"|candidate − reference| per position, divided by {data.limit} (1 = at the limit)\n"
                    + textwrap.fill(verdict, 110))
    bar = figure.colorbar(image, ax=[a for a, _, _ in axes], extend="both", shrink=0.9, pad=0.02)
    bar.set_label(f"|candidate − reference| ÷ {data.limit} (log scale)\nblue: within the limit · red: exceeds it")
    bar.ax.axhline(1.0, color="black", linewidth=2.0)
    decades = int(round(np.log10(norm.vmax)))
    step = max(1, -(-decades // 4))
    exponents = sorted({*range(0, decades + 1, step), *range(0, -decades - 1, -step)})
    bar.set_ticks([10.0 ** k for k in exponents], labels=["1 = limit" if k == 0 else f"{10.0 ** k:g}" for k in exponents])
    bar.minorticks_off()
    handles = []
    if any(panel.outlines for panel in data.panels):
        handles.append(Patch(facecolor="none", edgecolor=OUTLINE_COLOUR, linewidth=1.6,
                             label="mismatch region (bounding box)"))
    if data.one_sided:
        handles.append(Patch(color=ONE_SIDED_COLOUR, label="only one side has the position, or its NaN/Inf differs"))
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def _draw_panel(ax: Any, panel: MapPanel, cmap: Any, norm: Any, aspect: str) -> Any:
    from matplotlib.patches import Rectangle

    (r0, r1), (c0, c1) = panel.rows, panel.columns
    image = ax.imshow(_display(panel.ratio, norm), cmap=cmap, norm=norm, interpolation="none", aspect=aspect,
                      extent=(c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5))
    for outline in panel.outlines:
        (a, b), (c, d) = outline.rows, outline.columns
        ax.add_patch(Rectangle((c - 0.5, a - 0.5), d - c, b - a, fill=False, edgecolor=OUTLINE_COLOUR, linewidth=1.6))
    pooled = "" if panel.cell == (1, 1) else f"; each cell the max of {panel.cell[0]}x{panel.cell[1]} positions"
    outlined = ""
    if panel.regions > len(panel.outlines):
        outlined = f"; the {len(panel.outlines)} largest of {panel.regions} mismatch regions outlined"
    ax.set_title(f"{panel.title}{pooled}{outlined}", wrap=True)
    ax.set_xlabel(f"{panel.column_label} (index)")
    ax.set_ylabel(f"{panel.row_label} (index)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4 if panel.kind == "rows" else "auto"))
    return image


# --- error against magnitude, the ratio histogram ------------------------------------------------


@draw.register
def _draw_scatter(data: ErrorScatter, figure: Any) -> None:
    ax = figure.add_subplot()
    passing, failing = ~data.failing, data.failing
    # The points are drawn as one embedded image (rasterized) even in SVG/PDF: thousands of vector dots
    # would make a report page megabytes long; the axes, lines and text stay vector.
    if passing.any():
        ax.scatter(data.magnitude[passing], data.error[passing], s=6, color=PASS_COLOUR, alpha=0.6, linewidths=0,
                   rasterized=True, label=f"within the limit ({int(passing.sum()):,} drawn)")
    if failing.any():
        ax.scatter(data.magnitude[failing], data.error[failing], s=6, color=FAIL_COLOUR, alpha=0.7, linewidths=0,
                   rasterized=True,
                   label=f"exceeds the limit ({int(failing.sum()):,} drawn)")
    for i, line in enumerate(data.lines):
        ax.plot(data.line_x, line.y, color="black", linestyle=("-", "--")[i % 2], linewidth=1.4, label=line.label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{data.magnitude_label} (output units, log scale)")
    ax.set_ylabel("|candidate − reference| (output units, log scale)")
    zero = f"; not drawn: {data.zero_error:,} with no difference" if data.zero_error else ""
    ax.set_title(f"Error against magnitude, and the limit: {data.shown:,} of {data.finite:,} positions drawn "
                 f"(every failing one first){zero}", wrap=True)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.legend(loc="upper left", fontsize=8)


@draw.register
def _draw_histogram(data: RatioHistogram, figure: Any) -> None:
    ax = figure.add_subplot()
    left, right = data.edges[:-1], data.edges[1:]
    colours = [PASS_COLOUR if r <= 1.0 else FAIL_COLOUR for r in right]
    ax.bar(left, data.counts, width=right - left, align="edge", color=colours, edgecolor="white", linewidth=0.4)
    ax.axvline(1.0, color="black", linewidth=1.6, label="1 = at the limit")
    ax.set_xscale("log")
    ax.set_yscale("log", nonpositive="clip")
    ax.set_xlim(data.edges[0], data.edges[-1])
    ax.set_ylim(0.7, max(10.0, float(data.counts.max(initial=1)) * 2))
    ax.set_xlabel(f"|candidate − reference| / {data.limit} (log scale)")
    ax.set_ylabel("positions per bin (log scale)")
    apart = [text for count, text in ((data.zero, f"{data.zero:,} with no difference"),
                                      (data.infinite, f"{data.infinite:,} over a limit of 0"),
                                      (data.excluded, f"{data.excluded:,} non-finite left out")) if count]
    ax.set_title(f"How far each of the {data.total:,} positions is from the limit"
                 + (f" (not drawn: {', '.join(apart)})" if apart else ""), wrap=True)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=PASS_COLOUR, label="within the limit"), Patch(color=FAIL_COLOUR,
                       label="exceeds the limit"), *ax.get_legend_handles_labels()[0]], loc="upper right", fontsize=8)


# --- kernels -------------------------------------------------------------------------------------


@draw.register
def _draw_kernels(data: KernelMosaic, figure: Any) -> None:
    from matplotlib.colors import Normalize

    axes = figure.subplots(3, 1) if _kernels_stacked(data) else figure.subplots(1, 3)
    weights = np.concatenate([data.reference[np.isfinite(data.reference)], data.candidate[np.isfinite(data.candidate)]])
    top = float(np.abs(weights).max()) if weights.size else 1.0
    top = top or 1.0
    diff_top = data.max_abs_diff if np.isfinite(data.max_abs_diff) and data.max_abs_diff > 0 else top
    shape = "x".join(str(s) for s in data.kernel_shape)
    kh = (data.reference.shape[0] + 1) // max(len(data.in_channels), 1) - 1
    kw = (data.reference.shape[1] + 1) // max(len(data.out_channels), 1) - 1
    panels = (("reference", data.reference, "RdBu_r", top, "weight value"),
              ("candidate", data.candidate, "RdBu_r", top, "weight value"),
              ("candidate − reference", data.difference, "PuOr_r", diff_top, "difference (weight units)"))
    for ax, (name, values, cmap, limit, label) in zip(axes, panels):
        image = ax.imshow(values, cmap=cmap, norm=Normalize(-limit, limit), interpolation="none")
        ax.set_title(name)
        ax.set_xticks([b * (kw + 1) + (kw - 1) / 2 for b in range(len(data.out_channels))],
                      labels=[str(o) for o in data.out_channels], fontsize=7)
        ax.set_yticks([a * (kh + 1) + (kh - 1) / 2 for a in range(len(data.in_channels))],
                      labels=[str(i) for i in data.in_channels], fontsize=7)
        ax.set_xlabel("output channel")
        ax.set_ylabel("input channel")
        bar = figure.colorbar(image, ax=ax, orientation="vertical", shrink=0.9, aspect=10)
        bar.set_label(label)
    finding = "bit-identical" if data.identical else f"max |difference| {data.max_abs_diff:.3g}"
    shown = (f"; input channels {_channels(data.in_channels)} and output channels {_channels(data.out_channels)} "
             "(those that differ most)" if len(data.in_channels) * len(data.out_channels) < _tiles(data.kernel_shape)
             else "")
    figure.suptitle(f"Kernels (HWIO {shape}): {finding}{shown}\neach tile is one output channel's {kh}x{kw} "
                    "weights (kernel rows x columns) for one input channel", wrap=True)


def _kernels_stacked(data: KernelMosaic) -> bool:
    """Wide mosaics (few input channels, many output channels) are drawn one above the other."""
    h, w = data.reference.shape
    return w >= 2 * h


def _tiles(shape: tuple[int, ...]) -> int:
    return int(shape[-1] * shape[-2])


def _channels(channels: tuple[int, ...]) -> str:
    return ", ".join(str(c) for c in channels)


# --- propagate -----------------------------------------------------------------------------------


@draw.register
def _draw_propagation(data: Propagation, figure: Any) -> None:
    ax = figure.add_subplot()
    for colour, series in zip(SERIES_COLOURS, data.series):
        layers = np.array([s.layer for s in series.layers])
        std = np.array([s.activation_std for s in series.layers], dtype=np.float64)
        std = np.where(np.isfinite(std) & (std > 0), std, np.nan)  # Inf/NaN and 0 have no place on a log axis
        growth = "" if series.measured_growth is None else f", {series.measured_growth:.3g}x per layer"
        ax.plot(layers, std, color=colour, linewidth=1.8, marker="o", markersize=2.5,
                label=f"{series.initializer} ({'--init' if series.role == 'candidate' else 'reference'}{growth})")
        stop = series.first_nonfinite
        if stop is not None:
            ax.axvline(stop.layer, color=colour, linestyle=":", linewidth=1.4,
                       label=f"{series.initializer}: {stop.flag} from layer {stop.layer}")
    ax.axhline(EXPLODING * data.input_std, color="#b00020", linestyle="--", linewidth=1.0,
               label=f"exploding above {EXPLODING:g} x the input's std")
    ax.axhline(VANISHING * data.input_std, color="#555555", linestyle="--", linewidth=1.0,
               label=f"vanishing below {VANISHING:g} x the input's std")
    ax.set_yscale("log")
    ax.set_xlim(0.5, data.depth + 0.5)
    ax.set_xlabel("layer (conv + ReLU, 1 = first)")
    ax.set_ylabel("activation std after the layer (log scale)")
    ax.set_title(f"Activation std through {data.depth} conv+ReLU layers ({data.kernel_size}x{data.kernel_size}, "
                 f"{data.channels} channels, fan_in {data.fan_in}, float32)", wrap=True)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)



# --- models --------------------------------------------------------------------------------------


@draw.register
def _draw_models(data: ModelsResult, figure: Any) -> None:
    """Added and propagated error per paired layer, as a fraction of its bound, on a log axis."""
    ax = figure.add_subplot()
    measured = [r for r in data.layers if r.added_ratio is not None]
    positions = np.array([r.position + 1 for r in measured], dtype=np.float64)
    floor = 1e-3

    def shown(values: list[float | None]) -> np.ndarray:
        v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
        v = np.where(np.isinf(v), np.nan, v)
        return np.maximum(v, floor)

    ax.plot(positions, shown([r.propagated_ratio for r in measured]), color=SERIES_COLOURS[1], marker="o",
            markersize=3, linewidth=1.4, label="propagated (the candidate's own output)")
    ax.plot(positions, shown([r.added_ratio for r in measured]), color=SERIES_COLOURS[0], marker="s",
            markersize=3, linewidth=1.8, label="added (teacher-forced from the reference's input)")
    ax.axhline(1.0, color=FAIL_COLOUR, linestyle="--", linewidth=1.0, label="the layer's rounding bound")
    first = data.first_divergence
    if first is not None:
        at = next(r.position + 1 for r in data.layers if r.pair.reference == first.reference_layer)
        ax.axvline(at, color=FAIL_COLOUR, linestyle=":", linewidth=1.2,
                   label=f"first divergence: {first.reference_layer}")
    ax.set_yscale("log")
    ax.set_xlabel("paired convolution layer (reference's execution order)")
    ax.set_ylabel(f"max error / rounding bound (log; floor {floor:g})")
    if len(measured) <= 30:
        ax.set_xticks(positions, [r.pair.reference for r in measured], rotation=60, ha="right", fontsize=7)
    ax.set_title(f"Error per layer: {data.reference.description} vs {data.candidate.description}", wrap=True)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
