"""Rich renderers: results in, renderables out. Nothing here prints or computes a figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from convdiff.analysis.diagnose import Finding
from convdiff.analysis.regions import MismatchRegions
from convdiff.compare import DEFAULT_TOLERANCES, Comparison, RuleKind, Verdict
from convdiff.pipeline import CaseResult
from convdiff.report.layout import Fit, fit
from convdiff.report.text import fmt, fmt_index, fmt_percent, fmt_shape, fmt_times, one_line

VERDICT_STYLE = {
    Verdict.IDENTICAL: "bold green",
    Verdict.EQUIVALENT: "green",
    Verdict.MISMATCH: "bold red",
    Verdict.SHAPE_MISMATCH: "bold red",
    Verdict.EMPTY: "bold red",
}
SHADES = ("·", "░", "▒", "▓", "█")


def comparison_line(c: Comparison) -> str:
    """The verdict of a comparison in one line, naming the rule that decided it."""
    if c.verdict is Verdict.SHAPE_MISMATCH:
        text = f"shape_mismatch: reference {fmt_shape(c.reference_shape)} vs candidate {fmt_shape(c.candidate_shape)}"
        if _rows_columns_swapped(c.reference_shape, c.candidate_shape):
            text += " (rows and columns swapped)"
        return text
    if c.verdict is Verdict.EMPTY:
        return "empty: the output has no elements, nothing was compared"
    if c.verdict is Verdict.IDENTICAL:
        text = "identical: outputs are bitwise equal"
        if c.nonfinite_excluded:
            text += f" ({c.nonfinite_excluded:,} of {c.total:,} positions hold the same NaN or infinity on both sides)"
        return text
    m = c.rule.model
    tol = c.tolerance
    finite = c.total - c.nonfinite_excluded
    diff = f"max abs diff {fmt(c.max_abs_diff)}" if finite else "no position is finite on both sides"
    if m is not None:
        rule = f"the {m.dtype} rounding bound"
        if c.verdict is Verdict.EQUIVALENT:
            where = ("no element differs" if c.max_ratio_index is None else
                     f"max {fmt_percent(c.max_ratio)} of bound at {fmt_index(c.max_ratio_index)}")
            text = f"equivalent: all {c.total:,} elements within {rule} ({where}, {m.form.value}; {diff})"
        elif c.mismatched == c.exceeded:
            text = (f"mismatch: {c.mismatched:,} / {c.total:,} elements exceed {rule} ({m.form.value}), up to "
                    f"{fmt_times(c.max_ratio)} at {fmt_index(c.max_ratio_index)}; {diff}")
        else:
            text = (f"mismatch: {c.mismatched:,} / {c.total:,} elements fail {rule} ({m.form.value}): "
                    f"{'; '.join(_failures(c))}; {diff}")
    else:
        rule = f"atol={tol.atol:g}, rtol={tol.rtol:g}"
        if c.verdict is Verdict.EQUIVALENT:
            text = f"equivalent: all {c.total:,} elements within elementwise {rule} ({diff})"
        else:
            where = f" at {fmt_index(c.max_abs_diff_index)}" if finite else ""
            text = (f"mismatch: elementwise {rule}: {c.mismatched:,} / {c.total:,} mismatched "
                    f"({100 * c.mismatch_fraction:.3g}%), {diff}{where}")
            if c.mismatched != c.exceeded:
                text += f" ({'; '.join(_failures(c, elementwise=True))})"
    if c.nonfinite_mismatched and (m is None or c.mismatched == c.exceeded):
        text += f"; {c.nonfinite_mismatched:,} position(s) where NaN/inf differ between the sides"
    if c.nonfinite_excluded:
        text += f"; {c.nonfinite_excluded:,} non-finite position(s) left out of the figures"
    if c.exact_compared and not c.exact_mismatched:
        text += f"; {c.exact_compared:,} position(s) compared exactly where the bound overflowed float64"
    return text


def _failures(c: Comparison, elementwise: bool = False) -> list[str]:
    """What failed, by kind: over the threshold, the NaN/inf pattern, exact comparison where the bound overflowed."""
    parts = []
    if c.exceeded:
        what = "exceed the tolerance" if elementwise else "exceed it"
        ratio = "" if elementwise else f", up to {fmt_times(c.max_ratio)} at {fmt_index(c.max_ratio_index)}"
        parts.append(f"{c.exceeded:,} {what}{ratio}")
    if c.nonfinite_mismatched:
        parts.append(f"{c.nonfinite_mismatched:,} where NaN/inf differ between the sides")
    nan_both = c.mismatched - c.exceeded - c.exact_mismatched - c.nonfinite_mismatched
    if nan_both:
        parts.append(f"{nan_both:,} NaN on both sides (equal only with --equal-nan)")
    if c.exact_mismatched:
        parts.append(f"{c.exact_mismatched:,} of {c.exact_compared:,} compared exactly (the bound overflowed "
                     "float64 there) differ")
    return parts


def _rows_columns_swapped(a: Sequence[int], b: Sequence[int]) -> bool:
    return (len(a) == len(b) == 4 and a[1] != a[2] and (a[0], a[3]) == (b[0], b[3])
            and (a[1], a[2]) == (b[2], b[1]))


def verdict_line(case: CaseResult) -> str:
    """One line saying what was found and by which rule: the line CI logs and assertion messages show."""
    text = comparison_line(case.output)
    res = case.resolution
    if res is not None and res.indistinguishable:
        fits = ", ".join(f"{f.cause} ({fmt_percent(f.bound_ratio)} of bound)" if f.bound_ratio is not None
                         else f.cause for f in res.indistinguishable)
        text = (f"{CANNOT_DISTINGUISH}: {text.removeprefix('equivalent: ')}; the reference recomputed with "
                f"{fits} fits the candidate as well")
    if res is not None and res.coarse:
        text += (f"; a change of up to {fmt_percent(res.relative)} of an output channel "
                 f"{'may pass as well' if res.indistinguishable else CANNOT_DISTINGUISH}")
    if case.not_possible:
        text += "; recorded output without its input or weights: elementwise only (see 'not possible')"
    if not case.kernels_identical and not _no_kernel(case.kernels):
        text += f"; weights differ before convolution ({kernel_difference(case.kernels)}"
        if case.kernel_distribution is not None:
            text += f": {case.kernel_distribution.verdict})"
        elif case.kernels_from_files:
            text += ": from files)"
        else:
            text += ")"
    return text


CANNOT_DISTINGUISH = "cannot be distinguished from rounding at this precision"


def inputs_warning(case: CaseResult) -> str:
    """The line flagging a comparison whose two sides ran on different inputs."""
    ref, cand = case.reference_config.spec, case.candidate_config.spec
    return (f"warning: the two sides ran on different inputs (reference {ref.input} "
            f"{fmt_shape(ref.input_shape)} {ref.effective_input_dtype} seed {ref.seed}, sha256 "
            f"{case.reference.input_sha256[:12]}; candidate {cand.input} {fmt_shape(cand.input_shape)} "
            f"{cand.effective_input_dtype} seed {cand.seed}, sha256 {case.candidate.input_sha256[:12]}): "
            "the outputs compare the inputs as well as the convolutions")


def _no_kernel(k: Comparison) -> bool:
    """A side is a recorded output without weights: there is no kernel to compare."""
    return 0 in (math.prod(k.reference_shape), math.prod(k.candidate_shape))


def kernel_difference(k: Comparison) -> str:
    if _no_kernel(k):
        return "not compared: a recorded output carries no kernel"
    if not k.shape_match:
        return f"kernel shapes {fmt_shape(k.reference_shape)} vs {fmt_shape(k.candidate_shape)}"
    if k.verdict is Verdict.IDENTICAL:
        return "kernels bit-identical"
    if not k.mismatched:
        return f"kernels hold the same values in different dtypes ({k.reference_dtype} vs {k.candidate_dtype})"
    return f"kernels max abs diff {fmt(k.max_abs_diff)}, {k.mismatched:,} / {k.total:,} elements differ"


def _side_title(case: CaseResult, which: str) -> str:
    recorded = case.side(which).config.recorded
    if recorded is not None:
        return f"{which}: recorded {recorded.source} ({case.side(which).result.compute_dtype})"
    return f"{which}: {case.side(which).config.backend} ({case.side(which).result.compute_dtype})"


def render_spec(case: CaseResult) -> Fit:
    ref, cand = case.reference_config.spec.to_json(), case.candidate_config.spec.to_json()
    table = Table(title="Specification", title_justify="left", show_edge=False)
    table.add_column("field")
    table.add_column(_side_title(case, "reference"))
    same = ref == cand
    if not same:
        table.add_column(_side_title(case, "candidate"))
    for key, value in ref.items():
        row = [key, escape(_cell(value))]
        if not same:
            other = escape(_cell(cand[key]))
            row.append(other if cand[key] == value else f"[yellow]{other}[/]")
        table.add_row(*row)
    table.add_row("computes in", case.reference.compute_dtype, *([] if same else [case.candidate.compute_dtype]))
    return fit(table)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return one_line(str(value))


def render_kernels(case: CaseResult) -> Fit:
    table = Table(title="Kernels (compared before outputs)", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("reference")
    table.add_column("candidate")
    ref_run, cand_run = case.sides
    r, c = ref_run.kernel_stats, cand_run.kernel_stats
    table.add_row("shape / dtype", f"{fmt_shape(case.reference.kernel.shape)} {case.reference.kernel.dtype}",
                  f"{fmt_shape(case.candidate.kernel.shape)} {case.candidate.kernel.dtype}")
    for key in ("mean", "std", "min", "max"):
        table.add_row(key, fmt(getattr(r, key)), fmt(getattr(c, key)))
    theory = case.kernel_theory
    if theory is not None:
        table.add_row("theory", theory.description, "")
    source = "shared (--shared-kernel): candidate uses the reference's kernel" if case.options.shared_kernel else (
        "each side initialized its own kernel")
    if case.kernels_from_files:
        source = "from file (no initializer; see the notes for each side's conversion)"
    if case.reference_config.given_weights is not None:
        source = "the saved kernels of a bundle"
    style = "green" if case.kernels_identical else "bold yellow"
    table.add_row("kernels", f"[{style}]{kernel_difference(case.kernels)}[/]", source)
    dist = case.kernel_distribution
    if dist is not None:
        table.add_row("KS p-value", _ks_cell(dist.reference), _ks_cell(dist.candidate))
        table.add_row("distribution", f"[{style}]{dist.verdict}[/]", "")
    return fit(table)


def _ks_cell(check) -> str:  # noqa: ANN001
    if check.ks_pvalue is None:
        return "consistent" if check.consistent else "inconsistent"
    return f"{check.ks_pvalue:.3g} vs {check.initializer} ({'consistent' if check.consistent else 'inconsistent'})"


def render_output(c: Comparison) -> Fit:
    table = Table(title="Outputs", title_justify="left", show_edge=False)
    table.add_column("metric")
    table.add_column("value")
    table.add_row("shape", f"reference {fmt_shape(c.reference_shape)}, candidate {fmt_shape(c.candidate_shape)}"
                  + ("" if c.shape_match else "  [bold red]differ[/]"))
    table.add_row("output dtype", f"reference {c.reference_dtype}, candidate {c.candidate_dtype}")
    if c.shape_match and c.total:
        finite = c.total - c.nonfinite_excluded
        if finite:
            over = f" (over the {finite:,} positions finite on both sides)" if c.nonfinite_excluded else ""
            table.add_row("max abs diff", f"{fmt(c.max_abs_diff)} at {fmt_index(c.max_abs_diff_index)}{over}")
            table.add_row("max rel diff", f"{fmt(c.max_rel_diff)} at {fmt_index(c.max_rel_diff_index)} "
                          "(relative to reference)")
            table.add_row("sum abs diff", fmt(c.sum_abs_diff))
            table.add_row("mean abs diff", fmt(c.mean_abs_diff))
            table.add_row("rmse", fmt(c.rmse))
        else:
            table.add_row("differences", f"none computed: all {c.total:,} positions are NaN or infinite on a side")
        decided = "rounding bound" if c.rule.is_bound else "elementwise rule"
        table.add_row("mismatched", f"{c.mismatched:,} / {c.total:,} ({100 * c.mismatch_fraction:.3g}%) by the "
                      f"{decided}")
        table.add_row("deciding rule", escape(c.rule.description))
        t = c.tolerance
        elementwise = "" if not c.rule.is_bound else f"; the elementwise rule alone: {c.elementwise_verdict.value}"
        table.add_row("min atol to pass", f"{fmt(c.min_atol)} (elementwise, at rtol={t.rtol:g}){elementwise}")
        if not c.rule.is_bound:
            table.add_row("default table", default_table())
        if c.reference_nan or c.candidate_nan or c.reference_inf or c.candidate_inf:
            table.add_row("NaN / Inf", f"reference {c.reference_nan} / {c.reference_inf}, "
                          f"candidate {c.candidate_nan} / {c.candidate_inf}; NaN positions "
                          f"{'agree' if c.nan_positions_agree else 'differ'}; {c.nonfinite_mismatched:,} position(s) "
                          f"where the patterns differ; {c.nonfinite_excluded:,} left out of the figures above")
        if c.exact_compared:
            table.add_row("exact", f"{c.exact_compared:,} position(s) compared exactly: their bound overflowed float64")
    return fit(table)


def default_table() -> str:
    """The per-dtype elementwise defaults, as one cell."""
    return "; ".join(f"{name} atol={t.atol:g} rtol={t.rtol:g}" for name, t in DEFAULT_TOLERANCES.items())


def render_precision(case: CaseResult) -> Fit | None:
    """The deciding bound, the ULP distance and the three-way check against float64."""
    c = case.output
    g = c.rule.model
    if (g is None and case.ulp is None and case.three_way is None) or not c.shape_match or not c.total:
        return None
    title = ("Precision (the rounding bound of both sides' arithmetic, deciding)"
             if g is not None else "Precision (--tolerance elementwise decides; no bound computed)")
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("metric")
    table.add_column("value")
    if g is not None:
        table.add_row("bound", escape(c.rule.description))
        table.add_row("gamma", f"{g.value:.3e} (accumulation in {g.accumulation.dtype})")
        table.add_row("model", escape(g.terms))
        for run in case.sides:
            table.add_row(f"{run.role} arithmetic", run.arithmetic.description)
        table.add_row("exceeded", f"{c.exceeded:,} / {c.total:,}")
        if c.max_ratio_index is not None:
            table.add_row("max diff / bound", f"{fmt(c.max_ratio)} ({fmt_percent(c.max_ratio)}) at "
                          f"{fmt_index(c.max_ratio_index)}")
            table.add_row("median diff / bound", fmt(c.median_ratio))
    if case.ulp is not None:
        u = case.ulp
        if u.compared:
            over = f" over the {u.compared:,} positions finite on both sides" if u.compared < c.total else ""
            table.add_row("ULP distance", f"max {u.max:,}, median {u.median:g} ({u.dtype}){over}")
        else:
            table.add_row("ULP distance", f"none computed: no position is finite on both sides ({u.dtype})")
    res = case.resolution
    if res is not None:
        if res.relative is not None:
            table.add_row("resolution", f"a change of up to {fmt_percent(res.relative)} of an output channel may pass "
                          "as rounding (1.5 x the smallest bound / |y| of the worst channel)"
                          + ("" if res.checked else "; structural mistakes not recomputed (finer than 0.1%)"))
        for f in res.indistinguishable:
            table.add_row("cannot exclude", f"[bold yellow]{f.cause}[/]: {escape(f.detail)}")
    t = case.three_way
    if t is not None:
        for which, e in (("reference", t.reference), ("candidate", t.candidate)):
            table.add_row(f"{which} vs float64", f"max abs {fmt(e.max_abs)}, rmse {fmt(e.rmse)}, max bound ratio "
                          f"{fmt(e.max_ratio)} ({e.dtype})"
                          + ("" if e.within else "  [bold red]outside its bound[/]"))
        table.add_row("which side", t.summary)
    return fit(table)


def render_worst(c: Comparison) -> Fit | None:
    if not c.worst or c.max_abs_diff == 0:
        return None
    by = "|diff| / bound" if c.rule.is_bound else "abs diff"
    table = Table(title=f"Worst {len(c.worst)} positions (by {by})", title_justify="left", show_edge=False)
    for col in ("index", "reference", "candidate", "abs diff", "of limit"):
        table.add_column(col, justify="right")
    for w in c.worst:
        table.add_row(fmt_index(w.index), f"{w.reference:.9g}", f"{w.candidate:.9g}", fmt(w.abs_diff),
                      fmt_percent(w.ratio))
    return fit(table)


def render_case(case: CaseResult, notes: Sequence[str] = ()) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"{one_line(case.name)}: {_side_title(case, 'reference')} vs {_side_title(case, 'candidate')}",
             style="bold"),
        render_spec(case),
        render_kernels(case),
    ]
    if not case.inputs_identical:  # said before any value, like differing kernels
        parts.append(Text(inputs_warning(case), style="bold yellow"))
    parts.append(render_output(case.output))
    for renderable in (render_precision(case), render_worst(case.output)):
        if renderable is not None:
            parts.append(renderable)
    if case.regions is not None:
        parts.append(render_regions(case.regions))
    if case.diagnosis:
        parts.append(render_diagnosis(case.diagnosis))
    for run in case.sides:
        for note in run.result.notes:
            parts.append(Text(f"note ({run.role}): {note}", style="dim"))
    for note in notes:
        parts.append(Text(f"note: {note}", style="dim"))
    parts.extend(not_possible_lines(case))
    parts.append(Text(verdict_line(case), style=VERDICT_STYLE[case.verdict]))
    return Group(*parts)


def not_possible_lines(case: CaseResult) -> list[Text]:
    """What a recorded side without its input or weights left impossible, said plainly."""
    return [Text(f"not possible: {gap}", style="yellow") for gap in case.not_possible]


def render_case_summary(case: CaseResult) -> RenderableType:
    """A passing comparison in a few lines: who ran, one table of key figures, the verdict line."""
    c = case.output
    table = Table(title="Key figures", title_justify="left", show_edge=False, show_header=False)
    table.add_column("")
    table.add_column("")
    spec = case.reference_config.spec
    source = ("recorded, input not given" if case.recorded_without_input
              else f"from a {fmt_shape(spec.input_shape)} input")
    table.add_row("outputs", f"{fmt_shape(c.reference_shape)} {c.reference_dtype} vs {fmt_shape(c.candidate_shape)} "
                  f"{c.candidate_dtype}, {source}")
    table.add_row("kernels", kernel_difference(case.kernels))
    if c.shape_match and c.total:
        table.add_row("max abs diff", f"{fmt(c.max_abs_diff)} at {fmt_index(c.max_abs_diff_index)}")
        table.add_row("max rel diff", f"{fmt(c.max_rel_diff)} at {fmt_index(c.max_rel_diff_index)} (relative to "
                      "reference)")
        if c.rule.model is not None:
            table.add_row("of the bound", f"max {fmt_percent(c.max_ratio)} at {fmt_index(c.max_ratio_index)}, "
                          f"median {fmt_percent(c.median_ratio)}")
        if case.ulp is not None:
            table.add_row("ULP distance", f"max {case.ulp.max:,}, median {case.ulp.median:g} ({case.ulp.dtype})")
        decided = escape(c.rule.description)
        table.add_row("rule", f"{c.mismatched:,} / {c.total:,} elements fail the {decided}")
    parts: list[RenderableType] = [
        Text(f"{one_line(case.name)}: {_side_title(case, 'reference')} vs {_side_title(case, 'candidate')}",
             style="bold"),
        fit(table),
    ]
    if not case.inputs_identical:
        parts.append(Text(inputs_warning(case), style="bold yellow"))
    parts.append(Text("(--details for the specification, the kernels, the precision analyses and the worst "
                      "positions)", style="dim"))
    parts.extend(not_possible_lines(case))
    parts.append(Text(verdict_line(case), style=VERDICT_STYLE[case.verdict]))
    return Group(*parts)


def shade(value: float) -> str:
    """The map character for a cell's mismatch fraction: · none, ░ ▒ ▓ █ by quarters."""
    if value <= 0:
        return SHADES[0]
    return SHADES[min(4, 1 + int(value * 4 - 1e-9))]


def render_regions(regions: MismatchRegions) -> RenderableType:
    """Where the mismatches sit: the one-line summary, the profiles, and the downsampled map."""
    table = Table(title="Where the mismatches sit", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("")
    table.add_row("regions", f"[bold]{regions.kind}[/]: {escape(regions.summary)}")
    inside = f"({regions.border_mismatches:,} in the border, {regions.interior_mismatches:,} inside)"
    border = regions.border
    if border is not None and len(regions.axes) == 2:
        top, bottom, left, right = border
        table.add_row("border depth", f"top {top}, bottom {bottom}, left {left}, right {right} {inside}")
    else:
        depths = ", ".join(f"{a.name} {a.border[0]}/{a.border[1]}" for a in regions.axes)
        table.add_row("border depth", f"{depths} (first/last) {inside}")
    names = {"rows": "per row", "columns": "per column", "depth": "per depth slice", "positions": "per position"}
    for axis in regions.axes:
        table.add_row(names[axis.name], _profile(axis.counts))
    for name, counts in (("per channel", regions.channels), ("per batch item", regions.batch)):
        table.add_row(name, _profile(counts))
    lines = ["".join(shade(v) for v in row) for row in regions.grid]
    if regions.map_axes == "rows x columns":
        over = "the output's rows x columns; · none, ░ ▒ ▓ █ up to all batch/channel elements"
    else:
        over = f"{regions.map_axes}; · none, ░ ▒ ▓ █ up to all of its elements"
    caption = Text(f"mismatch map ({len(regions.grid)}x{len(regions.grid[0]) if regions.grid else 0} cells over "
                   f"{over})", style="dim")
    return Group(fit(table), caption, Text("\n".join(lines)))


def _profile(counts: Sequence[int], limit: int = 8) -> str:
    nonzero = [(i, c) for i, c in enumerate(counts) if c]
    if not nonzero:
        return "none"
    shown = ", ".join(f"{i}: {c:,}" for i, c in nonzero[:limit])
    more = f", ... ({len(nonzero) - limit} more)" if len(nonzero) > limit else ""
    return f"{len(nonzero)} of {len(counts)} with mismatches ({shown}{more})"


def render_diagnosis(findings: Sequence[Finding]) -> RenderableType:
    """The hypotheses table: every recomputation tried, its residual, and whether it explains the mismatch."""
    table = Table(title="Diagnosis (the reference recomputed in float64 with each suspected mistake)",
                  title_justify="left", show_edge=False)
    for col in ("cause", "confirmed", "residual", "detail"):
        table.add_column(col)
    for f in findings:
        mark = "[bold green]yes[/]" if f.confirmed else "no"
        table.add_row(f.cause, mark, "-" if f.residual is None else fmt(f.residual), escape(f.detail))
    confirmed = [f.cause for f in findings if f.confirmed]
    if confirmed:
        same = sorted({f.cause for f in findings if f.confirmed and f.same_as})
        apart = (f" ({', '.join(same)} give the same recomputation on this data: they cannot be told apart)"
                 if same else "")
        line = Text(f"explained by: {', '.join(confirmed)}{apart}", style="bold")
    else:
        line = Text(f"nothing explains the mismatch: none of the {len(findings)} hypotheses brings the "
                    "difference within the rounding bound", style="bold yellow")
    return Group(fit(table), line)


@dataclass(frozen=True)
class SummaryRow:
    experiment: str
    case: str
    expected: str
    got: str
    as_expected: bool
    figures: str


def render_summary(rows: Sequence[SummaryRow], skipped: Sequence[tuple[str, str]] = ()) -> RenderableType:
    # Case names are long single words: merged with the experiment, then with the verdicts, as the
    # width shrinks; stacked below that.
    wide = Table(title="convdiff run", title_justify="left")
    for column in ("experiment", "case", "expected", "got", "", "key figures"):
        wide.add_column(column)
    medium = Table(title="convdiff run", title_justify="left")
    for column in ("experiment / case", "expected", "got", "", "key figures"):
        medium.add_column(column)
    compact = Table(title="convdiff run", title_justify="left")
    for column in ("experiment / case", "result", "key figures"):
        compact.add_column(column)
    for row in rows:
        mark = "[green]ok[/]" if row.as_expected else "[bold red]UNEXPECTED[/]"
        experiment, case = escape(one_line(row.experiment)), escape(one_line(row.case))
        wide.add_row(experiment, case, row.expected, row.got, mark, row.figures)
        medium.add_row(f"{experiment} / {case}", row.expected, row.got, mark, row.figures)
        compact.add_row(f"{experiment} / {case}", f"{mark}: got {row.got}, expected {row.expected}", row.figures)
    parts: list[RenderableType] = [fit(wide, medium, compact)]
    for name, reason in skipped:
        parts.append(Text(f"skipped {one_line(name)}: {reason}", style="yellow"))
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
    if o.rule.model is not None:
        r = o.max_ratio
        share = fmt_percent(r) + " of" if r <= 1 or r != r else f"{r:.3g}x"
        bound = f", {share} {o.rule.model.dtype} bound"
    kern += "" if case.inputs_identical else ", inputs differ"
    return f"{dtypes}, max abs {fmt(o.max_abs_diff)}, sum abs {fmt(o.sum_abs_diff)}{bound}{kern}"


# --- propagate -----------------------------------------------------------------------------------


def render_propagation(result) -> RenderableType:  # noqa: ANN001
    """Per-layer activation std of the candidate initializer next to the Glorot and He references."""
    cand, *refs = result.series
    title = (f"Activation std through {result.depth} conv+ReLU layers ({result.kernel_size}x{result.kernel_size}, "
             f"{result.channels} channels, fan_in {result.fan_in}, float32, input std {fmt(result.input_std)})")
    # Wide: one std and one flag column per initializer, named in full. Compact (80 columns): the
    # candidate's column is called --init (its full name in the caption) and the flags share a column.
    wide = Table(title=title, title_justify="left")
    wide.add_column("layer", justify="right")
    wide.add_column(f"{cand.initializer} std", justify="right")
    wide.add_column("grad std", justify="right")
    wide.add_column("")
    compact = Table(title=title, title_justify="left", caption=f"--init = {cand.initializer}", caption_justify="left")
    compact.add_column("layer", justify="right")
    compact.add_column("--init std", justify="right")
    compact.add_column("--init grad std", justify="right")
    for ref in refs:
        wide.add_column(f"{ref.initializer} std", justify="right")
        wide.add_column("")
        compact.add_column(f"{ref.initializer} std", justify="right")
    compact.add_column("flags")
    for i, layer in enumerate(cand.layers):
        row = [str(layer.layer), fmt(layer.activation_std), fmt(layer.gradient_std), _flag_cell(layer.flag)]
        flags = [f"--init {_flag_cell(layer.flag)}"] if layer.flag else []
        for ref in refs:
            row += [fmt(ref.layers[i].activation_std), _flag_cell(ref.layers[i].flag)]
            if ref.layers[i].flag:
                flags.append(f"{ref.initializer} {_flag_cell(ref.layers[i].flag)}")
        wide.add_row(*row)
        compact.add_row(row[0], row[1], row[2], *(fmt(ref.layers[i].activation_std) for ref in refs), ", ".join(flags))
    parts: list[RenderableType] = [fit(wide, compact)]
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
    return Group(*parts)


def _flag_cell(flag: str) -> str:
    return f"[bold red]{flag}[/]" if flag else ""


# --- defaults ------------------------------------------------------------------------------------


def render_defaults(result) -> RenderableType:  # noqa: ANN001
    """One row per API and weight: what the framework attaches, and whether a real draw follows it."""
    title = "Default initializers (none given; asked live, confirmed by a draw)"
    wide = Table(title=title, title_justify="left")
    for col in ("api", "weight", "framework attaches", "drawn", "std", "max", "KS p", "confirmed"):
        wide.add_column(col)
    compact = Table(title=title, title_justify="left")
    for col in ("api, weight", "framework attaches", "drawn", "confirmed"):
        compact.add_column(col)
    for r in result.rows:
        c = r.check
        ok = "[green]yes[/]" if r.confirmed else "[bold red]no[/]"
        attaches = _declared(r.declared) + (f" = {r.initializer}" if r.initializer else "")
        figures = [_short(getattr(c, k)) if c is not None else "-" for k in ("std", "max", "ks_pvalue")]
        wide.add_row(r.api, r.weight, escape(attaches), fmt_shape(r.shape), *figures, ok)
        compact.add_row(f"{r.api} {r.weight}", escape(attaches),
                        f"{fmt_shape(r.shape)}: std {figures[0]}, max {figures[1]}, KS p {figures[2]}", ok)
    parts: list[RenderableType] = [fit(wide, compact)]
    for api, why in result.unavailable:
        parts.append(Text(f"skipped {api}: {why}", style="yellow"))
    return Group(*parts)


def _declared(declared: str) -> str:
    """`module:Class(args)` as `Class (module)`: the class name is what a reader looks for."""
    module, _, rest = declared.partition(":")
    return f"{rest.split('(')[0]} ({module})" if rest else declared.split("(")[0]


def _short(x: float | None) -> str:
    """Three significant digits: enough to read a distribution check (the JSON has every digit)."""
    return "-" if x is None else f"{x:.3g}"


__all__ = ["RuleKind", "SummaryRow", "comparison_line", "key_figures", "render_case", "render_case_summary", "render_defaults",
           "render_diagnosis", "render_output", "render_propagation", "render_regions", "render_spec",
           "render_summary", "render_worst", "verdict_line"]
