"""Renderers: results in, rich renderables or JSON-ready dicts out. Nothing here prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from convdiff.compare.core import Comparison, Verdict
from convdiff.analysis.precision import BoundCheck, ToleranceMode
from convdiff.pipeline.execute import CaseResult, kernel_summary

SCHEMA_VERSION = 1

VERDICT_STYLE = {
    Verdict.IDENTICAL: "bold green",
    Verdict.EQUIVALENT: "green",
    Verdict.MISMATCH: "bold red",
    Verdict.SHAPE_MISMATCH: "bold red",
    Verdict.EMPTY: "bold red",
}


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    if x == 0:
        return "0"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.3e}" if abs(x) < 1e-3 or abs(x) >= 1e6 else f"{x:.6g}"


def fmt_index(index: Sequence[int] | None) -> str:
    return "-" if index is None else "(" + ", ".join(str(i) for i in index) + ")"


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def tolerance_rule(c: Comparison) -> str:
    return f"|candidate - reference| <= atol + rtol * |reference|, atol={c.tolerance.atol:g}, rtol={c.tolerance.rtol:g}"


def bound_rule(b: BoundCheck) -> str:
    g = b.gamma
    return f"{g.dtype} rounding bound ({g.form.value}, gamma = {g.description})"


def verdict_line(case: CaseResult) -> str:
    """One line saying what was found and by which rule: the line CI logs and assertion messages show."""
    out = case.output
    tol = out.tolerance
    rule = f"atol={tol.atol:g}, rtol={tol.rtol:g}"
    b = case.bound
    if case.tolerance_mode is ToleranceMode.BOUND and b is not None and case.verdict is Verdict.EQUIVALENT:
        text = (f"equivalent: all {b.total:,} elements within the {b.gamma.dtype} rounding bound "
                f"(max {fmt_percent(b.max_ratio)} of bound at {fmt_index(b.max_ratio_index)}, {b.gamma.form.value}; "
                f"max abs diff {fmt(out.max_abs_diff)})")
    elif case.tolerance_mode is ToleranceMode.BOUND and b is not None and case.verdict is Verdict.MISMATCH:
        text = (f"mismatch: {b.exceeded:,} / {b.total:,} elements exceed the {b.gamma.dtype} rounding bound "
                f"({b.gamma.form.value}), up to {fmt_times(b.max_ratio)} at {fmt_index(b.max_ratio_index)}; "
                f"max abs diff {fmt(out.max_abs_diff)}")
    elif out.verdict is Verdict.SHAPE_MISMATCH:
        text = (f"shape_mismatch: reference {fmt_shape(out.reference_shape)} vs "
                f"candidate {fmt_shape(out.candidate_shape)}")
    elif out.verdict is Verdict.EMPTY:
        text = "empty: the output has no elements, nothing was compared"
    elif out.verdict is Verdict.IDENTICAL:
        text = "identical: outputs are bitwise equal"
    elif out.verdict is Verdict.EQUIVALENT:
        text = (f"equivalent: all {out.total:,} elements within elementwise {rule} "
                f"(max abs diff {fmt(out.max_abs_diff)})")
    else:
        text = (f"mismatch: elementwise {rule}: {out.mismatched:,} / {out.total:,} mismatched "
                f"({100 * out.mismatch_fraction:.3g}%), max abs diff {fmt(out.max_abs_diff)} at "
                f"{fmt_index(out.max_abs_diff_index)}")
    if not case.kernels_identical:
        text += f"; weights differ before convolution ({kernel_difference(case.kernels)}"
        text += f": {case.kernel_distribution.verdict})" if case.kernel_distribution is not None else ")"
    return text


def fmt_percent(ratio: float) -> str:
    if math.isinf(ratio) or math.isnan(ratio):
        return str(ratio)
    return f"{100 * ratio:.2g}%"


def fmt_times(ratio: float) -> str:
    if math.isinf(ratio):
        return "a zero bound"
    return f"{ratio:.3g} times the bound"


def inputs_warning(case: CaseResult) -> str:
    """The line flagging a comparison whose two sides ran on different inputs."""
    ref, cand = case.reference_config.spec, case.candidate_config.spec
    return (f"warning: the two sides ran on different inputs (reference {ref.input} "
            f"{fmt_shape(ref.input_shape)} {ref.effective_input_dtype} seed {ref.seed}, sha256 "
            f"{case.reference.input_sha256[:12]}; candidate {cand.input} {fmt_shape(cand.input_shape)} "
            f"{cand.effective_input_dtype} seed {cand.seed}, sha256 {case.candidate.input_sha256[:12]}): "
            "the outputs compare the inputs as well as the convolutions")


def kernel_difference(k: Comparison) -> str:
    if not k.shape_match:
        return f"kernel shapes {fmt_shape(k.reference_shape)} vs {fmt_shape(k.candidate_shape)}"
    if k.verdict is Verdict.IDENTICAL:
        return "kernels bit-identical"
    return f"kernels max abs diff {fmt(k.max_abs_diff)}, {k.mismatched:,} / {k.total:,} elements differ"


# --- JSON --------------------------------------------------------------------------------------


def _side_json(case: CaseResult, which: str) -> dict[str, Any]:
    config = getattr(case, f"{which}_config")
    result = getattr(case, which)
    return {
        "name": config.backend,
        "dtype": result.compute_dtype,
        "shape": list(result.output.shape),
        "output_dtype": str(result.output.dtype),
        "kernel_shape": list(result.kernel.shape),
        "kernel_dtype": str(result.kernel.dtype),
        "kernel_stats": kernel_summary(result.kernel),
        "notes": list(result.notes),
        "seconds": round(result.seconds, 6),
        "input_sha256": result.input_sha256,
        "spec": config.spec.to_json(),
    }


def case_to_json(case: CaseResult, environment: dict[str, Any]) -> dict[str, Any]:
    """The documented JSON object of one comparison (README: "JSON report")."""
    out = case.output.to_json()
    doc: dict[str, Any] = {
        "name": case.name,
        "verdict": case.verdict.value,
        "elementwise_verdict": out.pop("verdict"),
        "verdict_line": verdict_line(case),
        "passed": bool(case),
        "tolerance_mode": case.tolerance_mode.value,
        "bound": case.bound.to_json() if case.bound is not None else None,
        "ulp": case.ulp.to_json() if case.ulp is not None else None,
        "reference_error": case.three_way.reference.to_json() if case.three_way is not None else None,
        "candidate_error": case.three_way.candidate.to_json() if case.three_way is not None else None,
        "three_way": ({"wrong": case.three_way.wrong.value, "summary": case.three_way.summary}
                      if case.three_way is not None else None),
        "reference": _side_json(case, "reference"),
        "candidate": _side_json(case, "candidate"),
        "shared_kernel": case.options.shared_kernel,
        "inputs_identical": case.inputs_identical,
        "kernels_identical": case.kernels_identical,
        "kernels": {
            "verdict": case.kernels.verdict.value,
            "shape_match": case.kernels.shape_match,
            "max_abs_diff": case.kernels.to_json()["max_abs_diff"],
            "mismatched": case.kernels.mismatched,
            "total": case.kernels.total,
        },
    }
    doc["kernel_distribution"] = (case.kernel_distribution.to_json()
                                  if case.kernel_distribution is not None else None)
    doc.update(out)
    doc["mismatch_regions"] = case.regions.to_json() if case.regions is not None else None
    doc["diagnosis"] = [h.to_json() for h in case.diagnosis]
    doc["spec"] = case.reference_config.spec.to_json()
    doc["environment"] = environment
    return doc


# --- rich --------------------------------------------------------------------------------------


def _side_title(case: CaseResult, which: str) -> str:
    config = getattr(case, f"{which}_config")
    return f"{which}: {config.backend} ({getattr(case, which).compute_dtype})"


def render_spec(case: CaseResult) -> Table:
    ref, cand = case.reference_config.spec.to_json(), case.candidate_config.spec.to_json()
    table = Table(title="Specification", title_justify="left", show_edge=False)
    table.add_column("field")
    table.add_column(_side_title(case, "reference"))
    same = ref == cand
    if not same:
        table.add_column(_side_title(case, "candidate"))
    for key, value in ref.items():
        row = [key, _cell(value)]
        if not same:
            other = _cell(cand[key])
            row.append(other if cand[key] == value else f"[yellow]{other}[/]")
        table.add_row(*row)
    table.add_row("computes in", case.reference.compute_dtype, *([] if same else [case.candidate.compute_dtype]))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return str(value)


def render_kernels(case: CaseResult) -> Table:
    table = Table(title="Kernels (compared before outputs)", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("reference")
    table.add_column("candidate")
    r, c = kernel_summary(case.reference.kernel), kernel_summary(case.candidate.kernel)
    table.add_row("shape / dtype", f"{fmt_shape(case.reference.kernel.shape)} {case.reference.kernel.dtype}",
                  f"{fmt_shape(case.candidate.kernel.shape)} {case.candidate.kernel.dtype}")
    for key in ("mean", "std", "min", "max"):
        table.add_row(key, fmt(r[key]), fmt(c[key]))
    bound = None if case.reference_config.spec.weights else _theory_line(case)
    if bound:
        table.add_row("theory", bound, "")
    source = "shared (--shared-kernel): candidate uses the reference's kernel" if case.options.shared_kernel else (
        "each side initialized its own kernel")
    if case.reference_config.spec.weights or case.candidate_config.spec.weights:
        source = "weights from files (see the notes for each side's layout conversion)"
    style = "green" if case.kernels_identical else "bold yellow"
    table.add_row("kernels", f"[{style}]{kernel_difference(case.kernels)}[/]", source)
    dist = case.kernel_distribution
    if dist is not None:
        table.add_row("KS p-value", _ks_cell(dist.reference), _ks_cell(dist.candidate))
        table.add_row("distribution", f"[{style}]{dist.verdict}[/]", "")
    return table


def _ks_cell(check: Any) -> str:
    if check.ks_pvalue is None:
        return "consistent" if check.consistent else "inconsistent"
    return f"{check.ks_pvalue:.3g} vs {check.initializer} ({'consistent' if check.consistent else 'inconsistent'})"


def _theory_line(case: CaseResult) -> str | None:
    """The initializer's theoretical law (e.g. the Glorot bound), when the distribution module knows it."""
    try:
        from convdiff.analysis.kernels import theoretical
    except ImportError:  # pragma: no cover
        return None
    try:
        law = theoretical(case.reference_config.spec.initializer, case.reference.kernel.shape)
    except Exception:  # noqa: BLE001 - theory is decoration; never let it break a report
        return None
    return law.description if law is not None else None


def render_output(c: Comparison) -> Table:
    table = Table(title="Outputs", title_justify="left", show_edge=False)
    table.add_column("metric")
    table.add_column("value")
    table.add_row("shape", f"reference {fmt_shape(c.reference_shape)}, candidate {fmt_shape(c.candidate_shape)}"
                  + ("" if c.shape_match else "  [bold red]differ[/]"))
    table.add_row("output dtype", f"reference {c.reference_dtype}, candidate {c.candidate_dtype}")
    if c.shape_match and c.total:
        table.add_row("max abs diff", f"{fmt(c.max_abs_diff)} at {fmt_index(c.max_abs_diff_index)}")
        table.add_row("max rel diff", f"{fmt(c.max_rel_diff)} at {fmt_index(c.max_rel_diff_index)} (relative to reference)")
        table.add_row("sum abs diff", fmt(c.sum_abs_diff))
        table.add_row("mean abs diff", fmt(c.mean_abs_diff))
        table.add_row("rmse", fmt(c.rmse))
        table.add_row("mismatched", f"{c.mismatched:,} / {c.total:,} ({100 * c.mismatch_fraction:.3g}%)")
        table.add_row("tolerance rule", tolerance_rule(c))
        table.add_row("min atol to pass", f"{fmt(c.min_atol)} (at rtol={c.tolerance.rtol:g})")
        table.add_row("default table", default_table())
        if c.reference_nan or c.candidate_nan or c.reference_inf or c.candidate_inf:
            table.add_row("NaN / Inf", f"reference {c.reference_nan} / {c.reference_inf}, "
                          f"candidate {c.candidate_nan} / {c.candidate_inf}; NaN positions "
                          f"{'agree' if c.nan_positions_agree else 'differ'}")
    return table


def default_table() -> str:
    """The per-dtype elementwise defaults, as one cell."""
    from convdiff.compare.core import DEFAULT_TOLERANCES

    return "; ".join(f"{name} atol={t.atol:g} rtol={t.rtol:g}" for name, t in DEFAULT_TOLERANCES.items())


def render_precision(case: CaseResult) -> Table | None:
    """The bound check, ULP distance and the three-way check against float64."""
    if case.bound is None:
        return None
    b = case.bound
    decides = case.tolerance_mode is ToleranceMode.BOUND
    table = Table(title="Precision (rounding bound |candidate - reference| <= gamma * (|x| (*) |w|) + bias term)"
                  + ("" if decides else " (not deciding: --tolerance elementwise)"),
                  title_justify="left", show_edge=False)
    table.add_column("metric")
    table.add_column("value")
    table.add_row("tolerance rule", f"{case.tolerance_mode.value}" + (" (decides the verdict)" if decides else ""))
    table.add_row("bound", bound_rule(b))
    table.add_row("gamma", f"{b.gamma.value:.3e}")
    table.add_row("exceeded", f"{b.exceeded:,} / {b.total:,}")
    table.add_row("max diff / bound", f"{fmt(b.max_ratio)} ({fmt_percent(b.max_ratio)}) at {fmt_index(b.max_ratio_index)}")
    table.add_row("median diff / bound", fmt(b.median_ratio))
    if case.ulp is not None:
        table.add_row("ULP distance", f"max {case.ulp.max:,}, median {case.ulp.median:g} ({case.ulp.dtype})")
    t = case.three_way
    if t is not None:
        for which, e in (("reference", t.reference), ("candidate", t.candidate)):
            table.add_row(f"{which} vs float64", f"max abs {fmt(e.max_abs)}, rmse {fmt(e.rmse)}, max bound ratio "
                          f"{fmt(e.bound.max_ratio)} ({e.bound.gamma.dtype})"
                          + ("" if e.within else "  [bold red]outside its bound[/]"))
        table.add_row("which side", t.summary)
    return table


def render_worst(c: Comparison) -> Table | None:
    if not c.worst or c.max_abs_diff == 0:
        return None
    table = Table(title=f"Worst {len(c.worst)} positions", title_justify="left", show_edge=False)
    for col in ("index (n, y, x, c)", "reference", "candidate", "abs diff"):
        table.add_column(col, justify="right")
    for w in c.worst:
        table.add_row(fmt_index(w.index), f"{w.reference:.9g}", f"{w.candidate:.9g}", fmt(w.abs_diff))
    return table


def render_case(case: CaseResult) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"{case.name}: {_side_title(case, 'reference')} vs {_side_title(case, 'candidate')}", style="bold"),
        render_spec(case),
        render_kernels(case),
    ]
    if not case.inputs_identical:  # said before any value, like differing kernels
        parts.append(Text(inputs_warning(case), style="bold yellow"))
    parts.append(render_output(case.output))
    precision = render_precision(case)
    if precision is not None:
        parts.append(precision)
    worst = render_worst(case.output)
    if worst is not None:
        parts.append(worst)
    if case.regions is not None:
        parts.append(render_regions(case.regions))
    if case.diagnosis:
        parts.append(render_diagnosis(case.diagnosis))
    for which in ("reference", "candidate"):
        for note in getattr(case, which).notes:
            parts.append(Text(f"note ({which}): {note}", style="dim"))
    parts.append(Text(verdict_line(case), style=VERDICT_STYLE[case.verdict]))
    return Group(*parts)


def render_regions(regions: Any) -> RenderableType:
    """Where the mismatches sit: the one-line summary, the profiles, and the downsampled map."""
    from convdiff.analysis.regions import shade

    table = Table(title="Where the mismatches sit", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("")
    top, bottom, left, right = regions.border
    table.add_row("regions", f"[bold]{regions.kind}[/]: {escape(regions.summary)}")
    table.add_row("border depth", f"top {top}, bottom {bottom}, left {left}, right {right} "
                  f"({regions.border_mismatches:,} in the border, {regions.interior_mismatches:,} inside)")
    for name, counts in (("per row", regions.rows), ("per column", regions.columns),
                         ("per channel", regions.channels), ("per batch item", regions.batch)):
        table.add_row(name, _profile(counts))
    lines = ["".join(shade(v) for v in row) for row in regions.grid]
    caption = Text(f"mismatch map ({len(regions.grid)}x{len(regions.grid[0]) if regions.grid else 0} cells over the "
                   f"output's rows x columns; · none, ░ ▒ ▓ █ up to all batch/channel elements)", style="dim")
    return Group(table, caption, Text("\n".join(lines)))


def _profile(counts: Sequence[int], limit: int = 8) -> str:
    nonzero = [(i, c) for i, c in enumerate(counts) if c]
    if not nonzero:
        return "none"
    shown = ", ".join(f"{i}: {c:,}" for i, c in nonzero[:limit])
    more = f", ... ({len(nonzero) - limit} more)" if len(nonzero) > limit else ""
    return f"{len(nonzero)} of {len(counts)} with mismatches ({shown}{more})"


def render_diagnosis(hypotheses: Sequence[Any]) -> RenderableType:
    """The hypotheses table: every recomputation tried, its residual, and whether it explains the mismatch."""
    table = Table(title="Diagnosis (the reference recomputed in float64 with each suspected mistake)",
                  title_justify="left", show_edge=False)
    for col in ("cause", "confirmed", "residual", "detail"):
        table.add_column(col)
    for h in hypotheses:
        mark = "[bold green]yes[/]" if h.confirmed else "no"
        table.add_row(h.cause, mark, "-" if h.residual is None else fmt(h.residual), escape(h.detail))
    confirmed = [h.cause for h in hypotheses if h.confirmed]
    if confirmed:
        line = Text(f"explained by: {', '.join(confirmed)}", style="bold")
    else:
        line = Text(f"nothing explains the mismatch: none of the {len(hypotheses)} hypotheses brings the "
                    "difference down to rounding level", style="bold yellow")
    return Group(table, line)


@dataclass(frozen=True)
class SummaryRow:
    experiment: str
    case: str
    expected: str
    got: str
    as_expected: bool
    figures: str


def render_summary(rows: Sequence[SummaryRow], skipped: Sequence[tuple[str, str]] = ()) -> RenderableType:
    table = Table(title="convdiff run", title_justify="left")
    table.add_column("experiment", ratio=2)
    table.add_column("case", ratio=3)
    table.add_column("expected", ratio=3)
    table.add_column("got", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("key figures", ratio=4)
    for row in rows:
        mark = "[green]ok[/]" if row.as_expected else "[bold red]UNEXPECTED[/]"
        table.add_row(row.experiment, row.case, row.expected, row.got, mark, row.figures)
    parts: list[RenderableType] = [table]
    for name, reason in skipped:
        parts.append(Text(f"skipped {name}: {reason}", style="yellow"))
    failed = sum(not r.as_expected for r in rows)
    style = "bold red" if failed else "bold green"
    parts.append(Text(f"{len(rows) - failed} of {len(rows)} cases as expected"
                      + (f", {len(skipped)} experiment(s) skipped" if skipped else ""), style=style))
    return Group(*parts)


def key_figures(case: CaseResult) -> str:
    o = case.output
    dtypes = f"{case.reference.compute_dtype}/{case.candidate.compute_dtype}"
    if not o.shape_match:
        return f"shapes {fmt_shape(o.reference_shape)} vs {fmt_shape(o.candidate_shape)}"
    kern = "" if case.kernels_identical else ", kernels differ"
    bound = ""
    if case.bound is not None:
        r = case.bound.max_ratio
        share = fmt_percent(r) + " of" if r <= 1 or math.isnan(r) else f"{r:.3g}x"
        bound = f", {share} {case.bound.gamma.dtype} bound"
    kern += "" if case.inputs_identical else ", inputs differ"
    return f"{dtypes}, max abs {fmt(o.max_abs_diff)}, sum abs {fmt(o.sum_abs_diff)}{bound}{kern}"


# --- propagate -----------------------------------------------------------------------------------


def render_propagation(result: Any, plot_path: str | None = None) -> RenderableType:
    """Per-layer activation std of the candidate initializer next to the Glorot and He references."""
    from convdiff.report.figures import COLOUR_NAMES

    cand, *refs = result.series
    table = Table(title=f"Activation std through {result.depth} conv+ReLU layers "
                        f"({result.kernel_size}x{result.kernel_size}, {result.channels} channels, fan_in "
                        f"{result.fan_in}, float32, input std {fmt(result.input_std)})", title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column(f"{cand.initializer}", justify="right")
    table.add_column("grad std", justify="right")
    table.add_column("")
    for ref in refs:
        table.add_column(ref.initializer, justify="right")
        table.add_column("")
    for i, layer in enumerate(cand.layers):
        row = [str(layer.layer), fmt(layer.activation_std), fmt(layer.gradient_std), _flag_cell(layer.flag)]
        for ref in refs:
            row += [fmt(ref.layers[i].activation_std), _flag_cell(ref.layers[i].flag)]
        table.add_row(*row)
    parts: list[RenderableType] = [table]
    for s in result.series:
        first, nonfinite = s.first_flag, s.first_nonfinite
        text = (f"{s.initializer}: growth per layer {fmt(s.measured_growth)} measured, "
                f"{fmt(s.expected_growth)} expected (sqrt(fan_in * E[w^2] / 2))")
        if first is not None:
            text += f"; {first.flag} from layer {first.layer}"
        if nonfinite is not None and nonfinite is not first:
            text += f"; {nonfinite.flag} from layer {nonfinite.layer}"
        style = "bold red" if first is not None else "green"
        parts.append(Text(text, style=style))
    if plot_path:
        colours = ", ".join(f"{c} = {s.initializer}" for c, s in zip(COLOUR_NAMES, result.series))
        parts.append(Text(f"plot written to {plot_path} (log10 activation std per layer; {colours})", style="dim"))
    return Group(*parts)


def _flag_cell(flag: str) -> str:
    return f"[bold red]{flag}[/]" if flag else ""


# --- defaults ------------------------------------------------------------------------------------


def render_defaults(result: Any) -> RenderableType:
    """One row per API and weight: what the framework attaches, and whether a real draw follows it."""
    table = Table(title="Default initializers (none given; asked live, confirmed by a draw)", title_justify="left")
    for col in ("api", "weight", "framework attaches", "initializer", "drawn", "std", "max", "KS p", "confirmed"):
        table.add_column(col, no_wrap=True, min_width=26 if col == "api" else None)
    for r in result.rows:
        c = r.check
        ok = "[green]yes[/]" if r.confirmed else "[bold red]no[/]"
        table.add_row(r.api, r.weight, r.declared.split("(")[0], r.initializer or "-", fmt_shape(r.shape),
                      *(fmt(getattr(c, k)) if c is not None else "-" for k in ("std", "max", "ks_pvalue")), ok)
    parts: list[RenderableType] = [table]
    for api, why in result.unavailable:
        parts.append(Text(f"skipped {api}: {why}", style="yellow"))
    return Group(*parts)
