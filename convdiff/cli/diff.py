"""`convdiff diff A B`: two recorded output files through the full comparator, with regions; the bound,
the three-way check and the diagnosis too when the input and weights they came from are given."""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (LAYOUT_TYPE, case_options, check_outputs, format_option, max_memory_option,
                                  output_layout_option,
                                  quiet_option, rule_options, spec_fields, spec_options, tolerance_options, top_option)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.command()
@click.argument("reference_file", metavar="A")
@click.argument("candidate_file", metavar="B")
@output_layout_option
@click.option("--candidate-layout", "candidate_layout", default=None, metavar="LAYOUT",
              type=LAYOUT_TYPE,
              help="Layout of B when it differs from A's (default: --output-layout).")
@spec_options
@tolerance_options
@top_option
@format_option
@rule_options
@max_memory_option
@quiet_option
@click.option("--details", is_flag=True, help="Print the full report of a passing comparison too.")
def diff(reference_file: str, candidate_file: str, output_layout: str | None, candidate_layout: str | None,
         atol: float | None, rtol: float | None, equal_nan: bool, top_k: int, fmt: str, tolerance_mode: str | None,
         bound_form: str, max_memory: int | None, quiet: bool, details: bool, **spec_params: Any) -> None:
    """Compare two array files: A is the reference, B the candidate (.npy, .npz#key, single-array .npz).

    Attributes first (a shape a layout transpose would fix is named), then values under the deciding rule,
    then where they differ. Without --input and --weights/--from the elementwise rule decides and the
    report says which checks were not possible; with them (and the spec options the arrays were computed
    with), the rounding bound, the three-way check and the diagnosis run as in `compare`.
    Exits 0 when they agree, 1 when they do not, 2 on bad input (a shape mismatch included).
    """
    check_outputs(quiet, fmt)
    from convdiff.cli.compare import make_case

    options = case_options(atol, rtol, equal_nan, tolerance_mode, bound_form, False, top_k)
    case = make_case("recorded", "recorded", spec_fields(spec_params), options, name="diff",
                     recorded={"reference": reference_file, "candidate": candidate_file},
                     output_layout=output_layout, candidate_layout=candidate_layout)
    from convdiff.pipeline import execute

    result = execute(case, max_memory)
    from convdiff.backends.environment import collect
    from convdiff.report.json import SCHEMA_VERSION, case_to_json
    from convdiff.report.tables import render_case, render_case_summary, verdict_line

    env = collect()
    doc = {"schema": SCHEMA_VERSION, "comparisons": [case_to_json(result, env, verdict_line(result))],
           "environment": env}
    out = Output(fmt, quiet)
    out.show(render_case(result) if details or not result else render_case_summary(result), doc,
             verdict_line(result))
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)
