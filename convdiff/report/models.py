"""`convdiff models`: the pairing table, the per-layer table (added and propagated error as a fraction of
each layer's rounding bound), the first divergence and its fix, as rich renderables and as JSON. Nothing
here computes a figure: every number comes from `ModelsResult`."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from convdiff.analysis.models import LayerVerdict
from convdiff.pipeline.models import ModelsResult
from convdiff.report.json import comparison_json, strict
from convdiff.report.layout import fit
from convdiff.report.tables import comparison_line

VERDICT_STYLE = {LayerVerdict.WITHIN: "green", LayerVerdict.AMPLIFIES: "yellow", LayerVerdict.DIVERGES: "bold red",
                 LayerVerdict.NOT_MEASURED: "dim"}


def fmt_ratio(ratio: float | None) -> str:
    """A fraction of the bound: "0.021", "4.7e+05", "inf", "-" (not measured)."""
    if ratio is None:
        return "-"
    if math.isinf(ratio):
        return "inf"
    if math.isnan(ratio):
        return "nan"
    return f"{ratio:.2g}" if ratio < 1000 else f"{ratio:.2e}"


def verdict_line(result: ModelsResult) -> str:
    n = len(result.layers)
    diverging = len(result.diverging)
    final = comparison_line(result.final)
    if result.first_divergence is not None:
        return (f"mismatch: first divergence at {result.first_divergence.line}; {diverging} of {n} paired layers "
                f"add more than their rounding bound; final outputs {final}")
    if not result:
        return f"mismatch: final outputs {final}; {result.note or 'see the layer table'}"
    return f"equivalent: all {n} paired layers within their rounding bounds; final outputs {final}"


def render_models(result: ModelsResult) -> RenderableType:
    parts: list[RenderableType] = []
    for role, model in (("reference", result.reference), ("candidate", result.candidate)):
        parts.append(Text(f"{role}: {model.description} ({model.framework}, {model.layers} convolution layers, "
                          f"fed {model.input_layout})"))
    pairing = Table(title="pairing", title_justify="left", show_edge=False)
    for column in ("reference layer", "candidate layer", "paired by", "kernel"):
        pairing.add_column(column, overflow="fold")
    for pair in result.pairing.pairs:
        style = "" if pair.kernel_identical else "yellow"
        pairing.add_row(escape(pair.reference), escape(pair.candidate), pair.paired_by.value,
                        Text(pair.kernel, style=style))
    parts.append(fit(pairing))
    for role, names in (("reference", result.pairing.unpaired_reference),
                        ("candidate", result.pairing.unpaired_candidate)):
        if names:
            parts.append(Text(f"unpaired {role} layers: {', '.join(names)}", style="yellow"))
    for role, model in (("reference", result.reference), ("candidate", result.candidate)):
        for name, why in model.skipped:
            parts.append(Text(f"not compared ({role}): {name}: {why}", style="dim"))

    layers = Table(title="layers (errors as a fraction of each layer's rounding bound; 1 = at the bound)",
                   title_justify="left", show_edge=False)
    for column in ("#", "reference layer", "candidate layer", "added", "propagated", "dtypes", "verdict"):
        layers.add_column(column, overflow="fold", justify="right" if column in ("#", "added", "propagated") else "left")
    notes: list[str] = []
    for r in result.layers:
        dtypes = r.reference_dtype if r.reference_dtype == r.candidate_dtype else f"{r.reference_dtype}/{r.candidate_dtype}"
        mark = ""
        if r.note:
            notes.append(f"{r.pair.reference}: {r.note}")
            mark = f" [{len(notes)}]"
        layers.add_row(str(r.position + 1), escape(r.pair.reference), escape(r.pair.candidate),
                       fmt_ratio(r.added_ratio), fmt_ratio(r.propagated_ratio), dtypes,
                       Text(r.verdict.value + mark, style=VERDICT_STYLE[r.verdict]))
    parts.append(fit(layers))
    parts.extend(Text(f"[{i}] {escape(note)}", style="dim") for i, note in enumerate(notes, 1))
    parts.append(Text("added: the candidate layer recomputed in float64 from the reference's captured input, "
                      "against the reference layer's output; propagated: the candidate's own output (with what it "
                      "inherits); amplifies: adds nothing beyond rounding, passes on more", style="dim"))
    first = result.first_divergence
    if first is not None:
        parts.append(Text(f"first divergence: {first.line}", style="bold red"))
        for finding in first.diagnosis:
            if finding.confirmed:
                parts.append(Text(f"  confirmed: {finding.cause}: {finding.detail}", style="red"))
    elif result.note:
        parts.append(Text(result.note, style="yellow"))
    parts.append(Text(f"final outputs: {comparison_line(result.final)}"))
    t = result.timings
    kept = "; the captured activations were kept on disk (memory-mapped)" if result.spilled else ""
    parts.append(Text("time: " + ", ".join(f"{k} {v:.3g} s" for k, v in t.items()) + kept, style="dim"))
    parts.append(Text(verdict_line(result), style="bold green" if result else "bold red"))
    return Group(*parts)


def models_json(result: ModelsResult, schema: int, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    first = result.first_divergence
    return strict({
        "schema": schema,
        "verdict": "equivalent" if result else "mismatch",
        "verdict_line": verdict_line(result),
        "models": {role: {"description": m.description, "framework": m.framework, "layers": m.layers,
                          "input_layout": m.input_layout, "seconds": m.seconds,
                          "not_compared": [{"layer": n, "why": w} for n, w in m.skipped]}
                   for role, m in (("reference", result.reference), ("candidate", result.candidate))},
        "pairing": [{"reference_layer": p.reference, "candidate_layer": p.candidate, "paired_by": p.paired_by.value,
                     "kernel": p.kernel, "kernel_identical": p.kernel_identical} for p in result.pairing.pairs],
        "unpaired": {"reference": list(result.pairing.unpaired_reference),
                     "candidate": list(result.pairing.unpaired_candidate)},
        "layers": [{"position": r.position, "reference_layer": r.pair.reference, "candidate_layer": r.pair.candidate,
                    "paired_by": r.pair.paired_by.value, "kernel": r.pair.kernel, "verdict": r.verdict.value,
                    "added_error_ratio": r.added_ratio, "propagated_error_ratio": r.propagated_ratio,
                    "reference_dtype": r.reference_dtype, "candidate_dtype": r.candidate_dtype, "note": r.note,
                    "added": None if r.added is None else comparison_json(r.added),
                    "propagated": None if r.propagated is None else comparison_json(r.propagated)}
                   for r in result.layers],
        "first_divergence": None if first is None else {
            "reference_layer": first.reference_layer, "candidate_layer": first.candidate_layer,
            "added_error_ratio": first.added_error_ratio, "cause": first.cause, "line": first.line,
            "diagnosis": [{"cause": f.cause, "confirmed": f.confirmed, "residual": f.residual,
                           "bound_ratio": f.bound_ratio, "detail": f.detail, "same_as": list(f.same_as)}
                          for f in first.diagnosis]},
        "final": comparison_json(result.final),
        "note": result.note,
        "timings": result.timings,
        "estimated_bytes": result.estimated_bytes,
        "spilled": result.spilled,
        "environment": environment or {},
    })
