"""`convdiff run`: built-in experiments, experiment files and bundles."""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import CliError, cli
from convdiff.cli.options import (check_outputs, format_option, junit_option, max_memory_option, quiet_option,
                                  report_option, save_bundle_option)
from convdiff.cli.output import Output, stdout_guard
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.command()
@click.argument("targets", nargs=-1, metavar="[NAME|FILE|DIR]...")
@format_option
@click.option("--details/--no-details", default=None,
              help="Print the full report of every case (default: only for unexpected results).")
@save_bundle_option
@max_memory_option
@junit_option("case")
@report_option
@quiet_option
def run(targets: tuple[str, ...], fmt: str, details: bool | None, bundle_dir: str | None,
        max_memory: int | None, junit_path: str | None, report_path: str | None, quiet: bool) -> None:
    """Run built-in experiments (by NAME), experiment files (TOML) and bundles (DIR, replayed); no argument
    runs every built-in experiment.

    Exits 0 when every case came out as expected (a bundle: the verdict it recorded), 1 otherwise
    (130 on Ctrl-C, 143 on SIGTERM, after the summary of the cases completed so far).
    """
    from convdiff.errors import InterruptedRun
    from convdiff.suites.runs import RunOutcome, run_targets

    check_outputs(quiet, fmt, report_path, junit_path)
    target = None
    if bundle_dir is not None:
        from convdiff.suites.bundle import check_target

        target = check_target(bundle_dir)  # before anything runs
    interrupted = None
    try:
        outcome = run_targets(targets, max_memory=max_memory)
    except InterruptedRun as exc:
        interrupted = exc
        outcome = exc.partial  # type: ignore[assignment]
    assert isinstance(outcome, RunOutcome)
    from convdiff.backends.environment import collect
    from convdiff.report import tables

    doc = run_json(outcome, collect(), interrupted is not None)
    bundle_note = ""
    if target is not None:
        from convdiff.suites import bundle

        cases = [(o.result, {"experiment": o.experiment}) for o in outcome.outcomes]
        if interrupted is None:
            bundle.save(target, cases, doc)
        elif target.existed:  # an interrupted run never replaces a bundle
            bundle_note = f"; the bundle at '{target.given}' was left as it was"
        else:  # a partial bundle says so, and is never replayed
            bundle.save(target, cases, doc, complete=False, planned=outcome.total)
            bundle_note = f"; '{target.given}' holds a bundle of the completed cases, marked incomplete"
    from convdiff.report.runs import run_line, run_to_junit

    out = Output(fmt, quiet)
    rows = [tables.SummaryRow(o.experiment, o.case.name, o.expected, o.got, o.as_expected,
                              tables.key_figures(o.result)) for o in outcome.outcomes]
    summary = tables.render_summary(rows, outcome.skipped)
    line = run_line(outcome, interrupted)
    if interrupted is None:  # like the bundle: a partial run writes no report that could pass for a whole one
        if junit_path:
            out.write(junit_path, run_to_junit(outcome), "JUnit report")
        if report_path:
            from convdiff.report.html import run_page

            out.write(report_path, run_page(outcome, summary, line, doc["environment"]), "HTML report")
    if fmt == "json" or quiet:
        out.show(document=doc, verdict=line)
    else:
        with stdout_guard():
            for o in outcome.outcomes:
                if details or (details is None and not o.as_expected):
                    out.console.print(tables.render_case(o.result, o.notes))
                    out.console.print()
            out.console.print(summary)
            if interrupted is not None:
                out.console.print(f"{interrupted.word}: {interrupted.total - interrupted.completed} of "
                                  f"{interrupted.total} cases not run", style="bold yellow")
    if interrupted is not None:
        raise CliError(f"{interrupted}; the summary shows the completed ones{bundle_note}", interrupted.exit_code)
    sys.exit(EXIT_OK if outcome.ok else EXIT_MISMATCH)


def run_json(outcome: Any, env: dict[str, Any], interrupted: bool = False) -> dict[str, Any]:
    from convdiff.report.json import SCHEMA_VERSION, case_to_json
    from convdiff.report.tables import verdict_line

    doc = {
        "schema": SCHEMA_VERSION,
        "ok": outcome.ok and not interrupted,
        "cases": [{"experiment": o.experiment, "case": o.case.name, "expected": o.case.expect.value,
                   "expect_kernels": o.case.expect_kernels, "expect_distribution": o.case.expect_distribution,
                   "as_expected": o.as_expected, "notes": list(o.notes),
                   **case_to_json(o.result, env, verdict_line(o.result))} for o in outcome.outcomes],
        "skipped": [{"experiment": name, "reason": reason} for name, reason in outcome.skipped],
        "environment": env,
    }
    if interrupted:
        doc["interrupted"] = True
    return doc
