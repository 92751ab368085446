"""`convdiff compare`: one convolution built by two backends; kernels first, then outputs."""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (case_options, check_outputs, format_option, max_memory_option, overrides_by_side,
                                  quiet_option, report_option, rule_options, save_bundle_option, set_option,
                                  side_options, spec_fields, spec_options, tolerance_options, top_option)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.command()
@side_options("nn", "keras")
@spec_options
@click.option("--shared-kernel", is_flag=True,
              help="Give the candidate the reference's kernel and bias, so only the convolution ops are compared.")
@set_option("Override a spec field for one side (repeatable), e.g. --set candidate.padding=1, "
            "--set candidate.weights_layout=OHWI.")
@click.option("--heatmap", default=None, metavar="FILE.png|.svg|.pdf",
              help="Write the difference map: |candidate - reference| per position divided by the deciding "
                   "rule's limit (1 = at the rounding bound), with the mismatch regions outlined. The format "
                   "follows the extension.")
@tolerance_options
@top_option
@format_option
@rule_options
@save_bundle_option
@max_memory_option
@report_option
@quiet_option
@click.option("--details", is_flag=True,
              help="Print the full report of a passing comparison too (a failing one always gets it).")
def compare(reference: str, candidate: str, shared_kernel: bool, overrides: tuple, heatmap: str | None,
            atol: float | None, rtol: float | None, equal_nan: bool, top_k: int, fmt: str,
            tolerance_mode: str | None, bound_form: str, bundle_dir: str | None, max_memory: int | None,
            report_path: str | None, quiet: bool, details: bool, **spec_params: Any) -> None:
    """Build one convolution with two backends and compare kernels, then outputs.

    A passing comparison prints a short summary (--details: the full report); a failing one the full
    report. Exits 0 when the outputs are identical or equivalent, 1 when they are not.
    """
    check_outputs(quiet, fmt, report_path, figure_paths={"heatmap": heatmap} if heatmap is not None else None)
    options = case_options(atol, rtol, equal_nan, tolerance_mode, bound_form, shared_kernel, top_k)
    case = make_case(reference, candidate, spec_fields(spec_params), options, overrides_by_side(overrides))
    if heatmap is not None and any(side.spec.rank != 2 for _, side in case.sides):
        raise click.UsageError("--heatmap draws 2-D outputs; the report's mismatch map covers 1-D and 3-D ones")
    target = None
    if bundle_dir is not None:
        from convdiff.suites.bundle import check_target

        target = check_target(bundle_dir)  # before the comparison runs, not after
    from convdiff.data.files import check_not_an_input

    inputs = [getattr(side.spec, f) for _, side in case.sides for f in ("input", "weights", "bias")]
    for what, path in (("heatmap", heatmap), ("HTML report", report_path)):
        if path is not None:
            check_not_an_input(path, what, inputs)
    from convdiff.pipeline import execute

    result = execute(case, max_memory)
    from convdiff.backends.environment import collect
    from convdiff.report.json import SCHEMA_VERSION, case_to_json
    from convdiff.report.tables import render_case, render_case_summary, verdict_line

    env = collect()
    doc = {"schema": SCHEMA_VERSION, "comparisons": [case_to_json(result, env, verdict_line(result))],
           "environment": env}
    if target is not None:
        from convdiff.suites import bundle

        bundle.save(target, [(result, {"experiment": "compare"})], doc)
    out = Output(fmt, quiet)
    if heatmap is not None:
        write_heatmap(out, heatmap, result)
    if report_path:
        from convdiff.report.html import compare_page

        out.write(report_path, compare_page(result, env), "HTML report")
    out.show(render_case(result) if details or not result else render_case_summary(result), doc,
             verdict_line(result))
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)


def make_case(reference: str, candidate: str, fields: dict[str, Any], options: Any,  # noqa: ANN201
              overrides: dict[str, dict[str, Any]] | None = None, name: str = "compare"):
    """The pipeline case of a `compare`: both sides' specs from the options, `--set` applied per side."""
    from convdiff.data.specs import build_spec
    from convdiff.errors import BadInputError
    from convdiff.pipeline import Case, SideConfig

    overrides = overrides or {}
    specs = {}
    for side in ("reference", "candidate"):
        try:
            specs[side] = build_spec(fields, overrides.get(side))
        except BadInputError as exc:
            raise BadInputError(f"{side}: {exc}" if any(overrides.values()) else str(exc)) from None
    return Case(name, SideConfig(reference, specs["reference"]), SideConfig(candidate, specs["candidate"]), options)


def write_heatmap(out: Output, path: str, result: Any) -> None:
    """The difference map of `result` in the format of `path`'s extension."""
    from convdiff.report.figures import difference_figure, figure_format, render

    data = difference_figure(result)
    if data is None:
        out.note(f"no heatmap written to {path}: the outputs differ in rank, batch size or channels")
        return
    out.write(path, render(data, figure_format(path, "heatmap")), "heatmap")
