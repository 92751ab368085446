"""`convdiff sweep`: reference against candidate over a Cartesian grid of specs, for CI."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from convdiff.cli.group import CliError, cli
from convdiff.cli.options import (case_options, check_outputs, format_option, junit_option, max_memory_option,
                                  overrides_by_side, quiet_option, report_option, rule_options, set_option,
                                  side_options, sweep_axis_options, tolerance_options)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.command()
@side_options(None, None, "the grid file's, else nn")
@sweep_axis_options
@click.option("--grid", "grid_file", default=None, metavar="FILE.toml",
              help="Grid file: a [sweep] table of lists (and optional [spec], reference, candidate, expect). "
                   "Options given on the command line add axes or replace the file's.")
@click.option("--expect", default=None, metavar="VERDICTS",
              help="Verdicts that pass, comma-separated. Default: identical,equivalent.")
@click.option("--shard", default=None, metavar="K/N", help="Run only configs with index % N == K-1 (for CI matrices).")
@click.option("--shared-kernel", is_flag=True, help="Give the candidate the reference's kernel and bias.")
@tolerance_options
@set_option("Override a spec field for one side in every config (repeatable), e.g. --set reference.padding=1.")
@rule_options
@junit_option("config")
@format_option
@report_option
@quiet_option
@max_memory_option
def sweep(reference: str | None, candidate: str | None, grid_file: str | None, expect: str | None,
          shard: str | None, shared_kernel: bool, atol: float | None, rtol: float | None, equal_nan: bool,
          overrides: tuple, tolerance_mode: str | None, bound_form: str, junit_path: str | None, fmt: str,
          report_path: str | None, quiet: bool, max_memory: int | None, **axes: list[str] | None) -> None:
    """Compare reference and candidate over a Cartesian grid of specs (every combination of the values).

    Values are comma-separated (--kernel-size 1,3,5); a pair is written 1x3; with a ';' in an option,
    values are split on ';' instead. Configs a backend cannot run (or a kernel larger than the input)
    are skipped with the reason. Exits 0 when every config gave an expected verdict, 1 otherwise
    (also when no config could be compared), 2 on bad input (checked for every config before the first runs).
    """
    from convdiff.errors import InterruptedRun
    from convdiff.suites.sweep import check_sweep, make_plan, run_sweep, summarize

    options = case_options(atol, rtol, equal_nan, tolerance_mode, bound_form, shared_kernel)
    plan = make_plan(reference, candidate, grid_file, expect, shard, options, axes, overrides_by_side(overrides),
                     max_memory)
    check_outputs(quiet, fmt, report_path, junit_path)
    from convdiff.data.files import check_not_an_input

    for what, path in (("JUnit report", junit_path), ("HTML report", report_path)):
        if path is not None:
            check_not_an_input(path, what, [grid_file, *plan.input_files()])
    check_sweep(plan)  # every config's files and memory, before the first one runs
    from convdiff.backends.environment import collect
    from convdiff.report import sweep as sweep_report

    out = Output(fmt, quiet)
    start = time.perf_counter()
    interrupted = None
    with _progress(out.err, plan.count) as advance:
        try:
            outcomes = run_sweep(plan, progress=advance, keep_failed_arrays=report_path is not None)
        except InterruptedRun as exc:
            interrupted, outcomes = exc, exc.partial  # type: ignore[assignment]
    summary = summarize(plan, outcomes, time.perf_counter() - start)
    if junit_path is not None and interrupted is None:  # a partial JUnit report would read as a pass
        out.write(junit_path, sweep_report.sweep_to_junit(plan, summary, outcomes), "JUnit report")
    rendered, line, env = sweep_report.render_summary(plan, summary), sweep_report.sweep_line(plan, summary), collect()
    doc = sweep_report.sweep_to_json(plan, summary, outcomes, env)
    if interrupted is not None:
        doc.update(ok=False, interrupted=True)
    elif report_path:  # like the JUnit report: a partial sweep writes no report that could pass for a whole one
        from convdiff.report.html import sweep_page

        out.write(report_path, sweep_page(plan, summary, outcomes, rendered, line, env), "HTML report")
    out.show(rendered, doc, line)
    if interrupted is not None:
        unwritten = " or ".join(kind for kind, path in (("JUnit", junit_path), ("HTML", report_path)) if path)
        raise CliError(f"{interrupted}; the summary shows the completed ones"
                       + (f"; no {unwritten} report was written" if unwritten else ""), interrupted.exit_code)
    if summary.compared == 0:
        raise CliError(f"no config was compared: all {summary.total:,} selected configs were skipped "
                       "(the reasons are in the summary)", EXIT_MISMATCH)
    sys.exit(EXIT_OK if summary.ok else EXIT_MISMATCH)


class _progress:
    """A rich progress bar on stderr, hidden when stderr is not a terminal; yields an advance callback."""

    def __init__(self, console: Any, total: int):
        self.console, self.total = console, total
        self.bar = None

    def __enter__(self) -> Callable[[Any], None]:
        if not self.console.is_terminal:
            return lambda config: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.description}"), console=self.console, transient=True)
        self.bar.start()
        task = self.bar.add_task("", total=self.total)
        bar = self.bar
        return lambda config: bar.update(task, advance=1, description=config.label)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
