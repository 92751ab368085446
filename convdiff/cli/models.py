"""`convdiff models`: two whole models on one input; the first convolution layer that really diverges, and why."""

from __future__ import annotations

import sys

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (LAYOUT_TYPE, bound_form_option, check_outputs, format_option, max_memory_option,
                                  parse_tolerance, quiet_option, report_option, tolerance_options)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


class SideLayoutType(click.ParamType):
    """`LAYOUT` (the --input file's) or `reference=LAYOUT` / `candidate=LAYOUT` (what that model takes)."""

    name = "[SIDE=]LAYOUT"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201
        if isinstance(value, tuple):
            return value
        text = str(value)
        side, sep, layout = text.partition("=")
        if not sep:
            side, layout = "", text
        elif side not in ("reference", "candidate"):
            self.fail(f"'{text}': the side is reference or candidate (reference=NCHW), or give the input's layout "
                      "alone (NCHW)", param, ctx)
        return side, LAYOUT_TYPE.convert(layout, param, ctx)


class PairType(click.ParamType):
    name = "REF_LAYER=CAND_LAYER"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201
        if isinstance(value, tuple):
            return value
        ref, sep, cand = str(value).partition("=")
        if not sep or not ref or not cand:
            self.fail(f"'{value}': give REFERENCE_LAYER=CANDIDATE_LAYER (e.g. --pair conv1=features.0)", param, ctx)
        return ref, cand


@cli.command()
@click.argument("reference", metavar="REFERENCE")
@click.argument("candidate", metavar="CANDIDATE")
@click.option("--input", "input_path", required=True, metavar="FILE",
              help="The input both models run on: a .npy, or a .npz (its array 'input', or its only one), with the "
                   "batch axis; channels-last unless --input-layout says otherwise.")
@click.option("--input-layout", "input_layouts", type=SideLayoutType(), multiple=True,
              help="LAYOUT: the layout of --input (NHWC, NCHW, NWC, NCDHW, ...). reference=LAYOUT / candidate=LAYOUT: "
                   "the layout a model takes (default: what the model declares: Keras channels-last unless its "
                   "layers say channels_first, ONNX NCHW unless its input's last axis holds the channels). Repeatable.")
@click.option("--pair", "pairs", type=PairType(), multiple=True,
              help="Pair these two layers whatever their weights (repeatable); the others are paired by weights, "
                   "then by order and shape.")
@tolerance_options
@bound_form_option
@click.option("--figure", "figure_path", default=None, metavar="FILE.png|.svg|.pdf",
              help="Write the error-per-layer figure: added and propagated error of each paired layer as a fraction "
                   "of its rounding bound.")
@format_option
@max_memory_option
@click.option("--spill/--no-spill", "spill", default=None,
              help="Keep the captured layer inputs and outputs on disk (memory-mapped, in a private temporary "
                   "directory removed afterwards) or in memory. Default: on disk only when both models' would not "
                   "fit --max-memory.")
@report_option
@quiet_option
def models(reference: str, candidate: str, input_path: str, input_layouts: tuple, pairs: tuple, atol: float | None,
           rtol: float | None, equal_nan: bool, bound_form: str, figure_path: str | None, fmt: str,
           max_memory: int | None, spill: bool | None, report_path: str | None, quiet: bool) -> None:
    """Run two models (.keras, .h5, .onnx, .tflite) on one input and find the first convolution layer that diverges.

    The convolution layers are paired by their weights (under HWIO/OIHW, depthwise, transposed, H/W swaps and
    flips), then by order and shape; the pairing table says how. For each pair: the error the candidate layer
    ADDS (recomputed in float64 from the reference's captured input) and the error it PROPAGATES (its own
    output), each as a fraction of the layer's rounding bound. The first layer whose added error exceeds its
    bound is diagnosed with its captured input, and one line names the cause and the fix.

    Exits 0 when every paired layer is within its bound and the final outputs pass (--atol/--rtol, default
    per dtype), 1 otherwise, 2 for bad input (no pairable layers included), 3 when a framework cannot run.
    """
    check_outputs(quiet, fmt, report_path, figure_paths={"figure": figure_path} if figure_path else None)
    tolerance = parse_tolerance(atol, rtol)
    input_layout = None
    side_layouts: dict[str, str] = {}
    for side, layout in input_layouts:
        if side:
            side_layouts[side] = layout
        else:
            input_layout = layout
    from convdiff.data.files import check_not_an_input

    for what, path in (("figure", figure_path), ("HTML report", report_path)):
        if path is not None:
            check_not_an_input(path, what, [reference, candidate, input_path])
    from convdiff.pipeline.models import compare_models

    result = compare_models(reference, candidate, input_path, input_layout=input_layout, layouts=side_layouts,
                            pairs=tuple(pairs), atol=None if tolerance is None else tolerance.atol,
                            rtol=None if tolerance is None else tolerance.rtol, bound_form=bound_form,
                            equal_nan=equal_nan, max_memory=max_memory, spill=spill)
    from convdiff.backends.environment import collect
    from convdiff.report.json import SCHEMA_VERSION
    from convdiff.report.models import models_json, render_models, verdict_line

    env = collect()
    out = Output(fmt, quiet)
    if figure_path is not None:
        from convdiff.report.figures import figure_format, render

        out.write(figure_path, render(result, figure_format(figure_path, "figure")), "figure")
    if report_path is not None:
        from convdiff.report.html import models_page

        out.write(report_path, models_page(result, env), "HTML report")
    out.show(render_models(result), models_json(result, SCHEMA_VERSION, env), verdict_line(result))
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)
