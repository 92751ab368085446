"""Renderers of a sweep: the summary table (rich), the JSON document, the JUnit XML. Nothing prints."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from convdiff.report.json import SCHEMA_VERSION, comparison_json
from convdiff.report.layout import fit
from convdiff.report.tables import verdict_line
from convdiff.report.text import fmt, one_line
from convdiff.suites.sweep import FAILED, PASSED, SKIPPED, ConfigOutcome, SweepPlan, SweepSummary


def outcome_line(o: ConfigOutcome) -> str:
    """The verdict line of a config, or why it did not run."""
    return verdict_line(o.result) if o.result is not None else o.reason


def _figures(o: ConfigOutcome) -> str:
    if o.result is None:
        return o.reason
    out = o.result.output
    if not out.shape_match:
        return "shapes differ"
    return f"max abs {fmt(out.max_abs_diff)}, {out.mismatched:,}/{out.total:,} mismatched"


def render_summary(plan: SweepPlan, summary: SweepSummary) -> RenderableType:
    shard = f", shard {summary.shard[0]}/{summary.shard[1]} of {summary.grid_size}" if summary.shard else ""
    title = f"convdiff sweep: {plan.reference} (reference) vs {plan.candidate} (candidate){shard}"
    table = Table(show_edge=False)
    table.add_column("")
    table.add_column("configs", justify="right")
    table.add_row("total", str(summary.total))
    table.add_row("[green]passed[/]", str(summary.passed))
    table.add_row("[bold red]failed[/]" if summary.failed else "failed", str(summary.failed))
    table.add_row("[yellow]skipped[/]" if summary.skipped else "skipped", str(summary.skipped))
    parts: list[RenderableType] = [Text(title, style="bold"), fit(table)]
    if summary.groups:
        groups = Table(title="Failures by cause", title_justify="left", show_edge=False)
        for col in ("cause", "what the failing configs share", "worst config", "worst figures"):
            groups.add_column(col)
        for g in summary.groups:
            groups.add_row(g.cause, g.description, one_line(g.worst.config.name), _figures(g.worst))
        parts.append(fit(groups))
    if summary.skip_reasons:
        skipped = Table(title="Skipped", title_justify="left", show_edge=False)
        skipped.add_column("configs", justify="right")
        skipped.add_column("reason")
        for reason, count in summary.skip_reasons:
            skipped.add_row(str(count), Text(one_line(reason)))  # user text (file names): never markup
        parts.append(fit(skipped))
    parts.append(Text(sweep_line(plan, summary), style="bold red" if summary.failed or not summary.compared
                      else "bold green"))
    return Group(*parts)


def sweep_line(plan: SweepPlan, summary: SweepSummary) -> str:
    """The line a sweep ends with (and all that --quiet prints)."""
    expect = " or ".join(v.value for v in plan.expect)
    rate = f" in {summary.seconds:.1f}s" if summary.seconds else ""
    return (f"{summary.passed} of {summary.total - summary.skipped} configs {expect}{rate}"
            + (f", {summary.failed} unexpected" if summary.failed else ""))


def config_to_json(o: ConfigOutcome) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "index": o.config.index,
        "name": o.config.name,
        "params": dict(o.config.params),
        "status": o.status,
        "verdict": o.verdict,
        "verdict_line": outcome_line(o) or None,
        "cause": o.cause.key if o.cause else None,
        "reason": o.reason or None,
        "seconds": round(o.seconds, 6),
    }
    if o.result is not None:
        out = comparison_json(o.result.output)
        doc.update({k: out[k] for k in ("max_abs_diff", "max_abs_diff_index", "max_rel_diff", "mismatched", "total",
                                         "atol", "rtol")})
        doc["kernels_identical"] = o.result.kernels_identical
        doc["spec"] = o.result.reference_config.spec.to_json()
    return doc


def sweep_to_json(plan: SweepPlan, summary: SweepSummary, outcomes: Sequence[ConfigOutcome],
                  environment: dict[str, Any]) -> dict[str, Any]:
    """The documented JSON document of a sweep (README: "convdiff sweep")."""
    return {
        "schema": SCHEMA_VERSION,
        "ok": summary.ok,
        "reference": plan.reference,
        "candidate": plan.candidate,
        "expect": [v.value for v in plan.expect],
        "grid": {
            "axes": {a.name: list(a.raw) for a in plan.grid.axes},
            "size": summary.grid_size,
            "shard": f"{summary.shard[0]}/{summary.shard[1]}" if summary.shard else None,
        },
        "summary": {"total": summary.total, "compared": summary.compared, "passed": summary.passed,
                    "failed": summary.failed, "skipped": summary.skipped, "seconds": round(summary.seconds, 3)},
        "groups": [{"cause": g.cause, "count": g.count, "shared": list(g.shared), "description": g.description,
                    "worst": g.worst.config.name} for g in summary.groups],
        "skipped": [{"reason": r, "count": n} for r, n in summary.skip_reasons],
        "configs": [config_to_json(o) for o in outcomes],
        "environment": environment,
    }


def sweep_to_junit(plan: SweepPlan, summary: SweepSummary, outcomes: Sequence[ConfigOutcome]) -> bytes:
    """JUnit XML: one testcase per config; failures carry the verdict line and the cause."""
    suite_name = f"convdiff sweep {plan.reference} vs {plan.candidate}"
    if summary.shard:
        suite_name += f" (shard {summary.shard[0]}/{summary.shard[1]})"
    root = ET.Element("testsuites", name="convdiff", tests=str(summary.total), failures=str(summary.failed),
                      errors="0", skipped=str(summary.skipped), time=_secs(summary.seconds))
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(summary.total), failures=str(summary.failed),
                          errors="0", skipped=str(summary.skipped), time=_secs(summary.seconds))
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"convdiff.sweep.{plan.reference}_vs_{plan.candidate}",
                             name=o.config.name, time=_secs(o.seconds))
        if o.status == FAILED:
            cause = o.cause.key if o.cause else "unknown"
            line = outcome_line(o)
            failure = ET.SubElement(case, "failure", message=line, type=cause)
            facts = ", ".join(o.cause.facts) if o.cause else ""
            failure.text = f"{line}\ncause: {cause}" + (f"\nfacts: {facts}" if facts else "")
        elif o.status == SKIPPED:
            ET.SubElement(case, "skipped", message=o.reason)
        elif o.status == PASSED:
            ET.SubElement(case, "system-out").text = outcome_line(o)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _secs(seconds: float) -> str:
    return f"{seconds:.6f}" if math.isfinite(seconds) else "0"
