"""Renderers of `convdiff run` beyond its table: the verdict line of the whole run and its JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from convdiff.report.tables import verdict_line
from convdiff.report.text import one_line


def run_line(outcome: Any, interrupted: Any = None) -> str:
    """The one line a run ends with (and all that --quiet prints): how many cases came out as expected."""
    rows = outcome.outcomes
    failed = sum(not o.as_expected for o in rows)
    text = f"{len(rows) - failed} of {len(rows)} cases as expected"
    if outcome.skipped:
        text += f", {len(outcome.skipped)} experiment(s) skipped"
    if interrupted is not None:
        text += f"; interrupted: {interrupted.total - interrupted.completed} of {interrupted.total} cases not run"
    return text


def run_to_junit(outcome: Any) -> bytes:
    """JUnit XML: one testsuite per experiment, one testcase per case; a case that did not come out as
    expected is a failure holding its verdict line, what was expected and the confirmed causes; a
    built-in experiment skipped for a missing dependency is a skipped testcase."""
    by_experiment: dict[str, list[Any]] = {}
    for o in outcome.outcomes:
        by_experiment.setdefault(o.experiment, []).append(o)
    failures = sum(not o.as_expected for o in outcome.outcomes)
    total = len(outcome.outcomes) + len(outcome.skipped)
    root = ET.Element("testsuites", name="convdiff run", tests=str(total), failures=str(failures), errors="0",
                      skipped=str(len(outcome.skipped)), time=_seconds(sum(_case_seconds(o) for o in outcome.outcomes)))
    for experiment, cases in by_experiment.items():
        suite = ET.SubElement(root, "testsuite", name=one_line(experiment), tests=str(len(cases)),
                              failures=str(sum(not o.as_expected for o in cases)), errors="0", skipped="0",
                              time=_seconds(sum(_case_seconds(o) for o in cases)))
        for o in cases:
            case = ET.SubElement(suite, "testcase", classname=f"convdiff.run.{one_line(experiment)}",
                                 name=one_line(o.case.name), time=_seconds(_case_seconds(o)))
            line = verdict_line(o.result)
            if o.as_expected:
                ET.SubElement(case, "system-out").text = line
                continue
            failure = ET.SubElement(case, "failure", message=line, type=f"expected {o.expected}, got {o.got}")
            causes = ", ".join(o.confirmed_causes) or "none confirmed"
            failure.text = f"{line}\nexpected: {o.expected}\ngot: {o.got}\ndiagnosis: {causes}"
    for name, reason in outcome.skipped:
        suite = ET.SubElement(root, "testsuite", name=one_line(name), tests="1", failures="0", errors="0",
                              skipped="1", time="0")
        case = ET.SubElement(suite, "testcase", classname=f"convdiff.run.{one_line(name)}", name=one_line(name),
                             time="0")
        ET.SubElement(case, "skipped", message=reason)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _case_seconds(o: Any) -> float:
    return sum(run.result.seconds for run in o.result.sides)


def _seconds(value: float) -> str:
    return f"{value:.6f}"
