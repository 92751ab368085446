"""The invariance probes (`convdiff probe batch|channels`): the verdict line, the text report, the JSON entry.

They format a `pipeline.probe.ProbeResult`; nothing here computes.
"""

from __future__ import annotations

from typing import Any

from convdiff.pipeline.probe import ProbeResult, ProbeVerdict
from convdiff.report.json import comparison_json, strict
from convdiff.report.text import fmt, fmt_index, fmt_percent, fmt_shape

EXPECTED = "expected behaviour, not a bug: the two computations round differently, within the rounding bound"


def probe_verdict_line(result: ProbeResult) -> str:
    """One line: what was compared, the verdict, and what it means."""
    c = result.comparison
    what = f"{result.kind.value} probe of {result.backend}: {result.candidate} against {result.reference}"
    if result.verdict is ProbeVerdict.IDENTICAL:
        return f"identical: {what}, bit for bit ({c.total} elements)"
    if not c.shape_match:
        return (f"beyond the rounding bound: {what}: shapes differ ({fmt_shape(c.candidate_shape)} against "
                f"{fmt_shape(c.reference_shape)})")
    if result.verdict is ProbeVerdict.WITHIN_BOUND:
        return (f"within the rounding bound: {what}: {result.differing} of {c.total} elements differ, max "
                f"{fmt_percent(c.max_ratio)} of the bound (max abs diff {fmt(c.max_abs_diff)}); {EXPECTED}")
    return (f"beyond the rounding bound: {what}: {c.mismatched} of {c.total} elements exceed the "
            f"{c.rule.model.dtype if c.rule.model else ''} rounding bound (max {fmt(c.max_ratio)} times it at "
            f"{fmt_index(c.max_ratio_index)}); not explained by rounding")


def render_probe(result: ProbeResult) -> str:
    """The text report: the layer, both computations, the figures, the verdict line last."""
    c = result.comparison
    spec = result.spec
    lines = [
        f"probe {result.kind.value}: backend {result.backend}",
        f"  layer       {spec.rank}-D{' transposed' if spec.transposed else ''} convolution, input "
        f"{fmt_shape(spec.input_shape)}, {spec.filters} filters, kernel {fmt_shape(spec.kernel_size)}, "
        f"{spec.dtype}, on {spec.device}",
        f"  reference   {result.reference}",
        f"  candidate   {result.candidate}",
        f"  rule        {c.rule.description}",
        f"  differing   {result.differing} of {c.total} elements (bit-identical elsewhere)",
    ]
    if result.differing:
        lines += [f"  max abs     {fmt(c.max_abs_diff)} at {fmt_index(c.max_abs_diff_index)}",
                  f"  of bound    max {fmt_percent(c.max_ratio)} at {fmt_index(c.max_ratio_index)}, median "
                  f"{fmt_percent(c.median_ratio)}"]
    lines += [f"  note        {note}" for note in result.notes]
    lines.append(probe_verdict_line(result))
    return "\n".join(lines)


def probe_json(result: ProbeResult) -> dict[str, Any]:
    """One entry of the `probes` list."""
    return strict({
        "probe": result.kind.value,
        "backend": result.backend,
        "verdict": result.verdict.value,
        "passed": bool(result),
        "expected_behaviour": bool(result),
        "reference": result.reference,
        "candidate": result.candidate,
        "channels": list(result.channels) if result.channels else None,
        "differing": result.differing,
        "spec": result.spec.to_json(),
        "comparison": comparison_json(result.comparison),
        "notes": list(result.notes),
        "verdict_line": probe_verdict_line(result),
        "seconds": result.seconds,
    })
