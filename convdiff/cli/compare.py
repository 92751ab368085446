"""`convdiff compare`: one convolution built by two backends; kernels first, then outputs."""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (case_options, format_option, max_memory_option, overrides_by_side, rule_options,
                                  save_bundle_option, set_option, side_options, spec_fields, spec_options,
                                  tolerance_options, top_option)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.command()
@side_options("nn", "keras")
@spec_options
@click.option("--shared-kernel", is_flag=True,
              help="Give the candidate the reference's kernel and bias, so only the convolution ops are compared.")
@set_option("Override a spec field for one side (repeatable), e.g. --set candidate.padding=1, "
            "--set candidate.weights_layout=OHWI.")
@click.option("--heatmap", default=None, metavar="FILE.png",
              help="Write a PNG heatmap of the per-position max abs diff (over batch and channels).")
@tolerance_options
@top_option
@format_option
@rule_options
@save_bundle_option
@max_memory_option
def compare(reference: str, candidate: str, shared_kernel: bool, overrides: tuple, heatmap: str | None,
            atol: float | None, rtol: float | None, equal_nan: bool, top_k: int, fmt: str,
            tolerance_mode: str | None, bound_form: str, bundle_dir: str | None, max_memory: int | None,
            **spec_params: Any) -> None:
    """Build one convolution with two backends and compare kernels, then outputs.

    Exits 0 when the outputs are identical or equivalent, 1 when they are not.
    """
    options = case_options(atol, rtol, equal_nan, tolerance_mode, bound_form, shared_kernel, top_k)
    case = make_case(reference, candidate, spec_fields(spec_params), options, overrides_by_side(overrides))
    target = None
    if bundle_dir is not None:
        from convdiff.suites.bundle import check_target

        target = check_target(bundle_dir)  # before the comparison runs, not after
    if heatmap is not None:
        from convdiff.data.files import check_not_an_input, check_output_path

        check_output_path(heatmap, "heatmap")
        check_not_an_input(heatmap, "heatmap", [getattr(side.spec, f) for _, side in case.sides
                                                for f in ("input", "weights", "bias")])
    from convdiff.pipeline import execute

    result = execute(case, max_memory)
    if heatmap is not None:
        from convdiff.report.figures import write_heatmap

        write_heatmap(heatmap, result.reference.output, result.candidate.output)
    from convdiff.backends.environment import collect
    from convdiff.report.json import SCHEMA_VERSION, case_to_json
    from convdiff.report.tables import render_case, verdict_line

    env = collect()
    doc = {"schema": SCHEMA_VERSION, "comparisons": [case_to_json(result, env, verdict_line(result))],
           "environment": env}
    if target is not None:
        from convdiff.suites import bundle

        bundle.save(target, [(result, {"experiment": "compare"})], doc)
    Output(fmt).show(render_case(result), doc)
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
            specs[side] = build_spec({**fields, **overrides.get(side, {})})
        except BadInputError as exc:
            raise BadInputError(f"{side}: {exc}" if any(overrides.values()) else str(exc)) from None
    return Case(name, SideConfig(reference, specs["reference"]), SideConfig(candidate, specs["candidate"]), options)
