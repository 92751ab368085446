"""`convdiff explain`: which convolution turned this input and kernel into this recorded output?"""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (BOUND_FORMS, check_outputs, format_option, quiet_option, report_option,
                                  spec_fields, spec_options)
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK

HINT_FIELDS = ("strides", "padding", "dilation", "groups", "convention", "dtype", "input_layout", "weights_layout",
               "kernel_size", "use_bias")
"""Spec options that restrict the search; `--input`, `--weights`, `--bias PATH` and `--rank` name the data."""
DATA_FIELDS = ("input", "weights", "bias", "rank")


@cli.command()
@click.option("--output", "output_path", required=True, metavar="FILE",
              help="The recorded output to explain: a .npy, or a .npz (its array 'output', or its only one).")
@click.option("--output-layout", default=None, metavar="LAYOUT",
              help="Layout of --output: NHWC or NCHW (NWC/NCW, NDHWC/NCDHW for other ranks). Default: channels-last.")
@spec_options
@click.option("--bound-form", type=click.Choice(BOUND_FORMS), default="probabilistic", show_default=True,
              help="Accumulation term of the rounding bound a variant is confirmed under (as for compare).")
@click.option("--all", "show_all", is_flag=True, help="List every variant tried (default: the ones checked "
                                                       "under the rounding bounds).")
@format_option
@report_option
@quiet_option
def explain(output_path: str, output_layout: str | None, bound_form: str, show_all: bool, fmt: str,
            report_path: str | None, quiet: bool, **spec_params: Any) -> None:
    """Search the semantics that turn --input and --weights into --output: the input's layout, the kernel's
    layout (transposes included) and groups, correlation or true convolution, strides, padding (TF SAME,
    SAME_LOWER, symmetric, explicit), dilation, a missing or doubled bias, and the arithmetic (float64,
    float32, TF32, float16, bfloat16).

    Spec options given (--strides, --padding, --dilation, --groups, --convention, --dtype, --input-layout,
    --weights-layout, --kernel-size, --no-bias) restrict the search to their value. Every variant is
    recomputed with the float64 reference; the closest are confirmed under the rounding bound of each
    arithmetic, as the verdicts of compare are. Prints the variants with their residuals and the compare
    options that reproduce the output. Exits 0 when a variant is confirmed, 1 when none is, 2 for bad input.
    """
    check_outputs(quiet, fmt, report_path)
    fields = spec_fields(spec_params)
    from convdiff.analysis.explain import explain as search
    from convdiff.reference.rounding import parse_bound_form
    from convdiff.report.explain import explain_page, explanation_json, render_explanation, verdict_line
    from convdiff.report.json import SCHEMA_VERSION

    hints, x, kernel, bias, output, files = read_files(fields, output_path, output_layout)
    result = search(x, kernel, output, bias, hints, parse_bound_form(bound_form))
    out = Output(fmt, quiet)
    if report_path:
        from convdiff.backends.environment import collect

        out.write(report_path, explain_page(result, files, collect()), "HTML report")
    out.show(render_explanation(result, files, show_all), explanation_json(result, files, SCHEMA_VERSION),
             verdict_line(result))
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)


def read_files(fields: dict[str, Any], output_path: str, output_layout: str | None):  # noqa: ANN201
    """The hints and arrays of an explain: the input as its file holds it, the kernel and bias, the output
    channels-last."""
    from convdiff.analysis.explain import Hints
    from convdiff.data.arrays import load_array, load_channels_last, npz_arrays
    from convdiff.errors import BadInputError
    from convdiff.report.explain import ExplainFiles
    from convdiff.spec.layer_ref import split_layer_ref
    from convdiff.spec.layouts import input_layout_for

    unused = sorted(set(fields) - set(HINT_FIELDS) - set(DATA_FIELDS))
    if unused:
        raise click.UsageError(f"explain does not search {', '.join('--' + f.replace('_', '-') for f in unused)}: "
                               "it reads the input, weights and output files (and hints: "
                               f"{', '.join('--' + f.replace('_', '-') for f in HINT_FIELDS if f != 'use_bias')}, "
                               "--no-bias)")
    for name in ("input", "weights"):
        if not fields.get(name):
            raise click.UsageError(f"explain needs --{name} FILE")
    if fields["input"] in ("random", "ones", "image") or not str(fields["input"]).lower().endswith((".npy", ".npz")):
        raise click.UsageError(f"explain needs --input as a .npy/.npz file (the input the output was computed from), "
                               f"got '{fields['input']}'")
    if split_layer_ref(str(fields["weights"])) is not None:
        raise BadInputError(f"explain reads a kernel .npy/.npz, not a model file's layer ('{fields['weights']}'): its "
                            "layout is what it searches")
    output = load_channels_last(output_path, "output", output_layout, key="output")
    x = load_array(fields["input"], "input", key="input")
    weights = npz_arrays(fields["weights"], "weights")
    if "" in weights:
        kernel, bias = weights[""], None
    elif "kernel" in weights:
        kernel, bias = weights["kernel"], weights.get("bias")
    else:
        raise BadInputError(f"weights file '{fields['weights']}' has no 'kernel' array (keys found: "
                            f"{', '.join(sorted(weights)) or 'none'})")
    if fields.get("bias"):
        bias = load_array(fields["bias"], "bias", key="bias")
    if "rank" in fields and fields["rank"] != output.ndim - 2:
        raise BadInputError(f"--rank {fields['rank']}, but the output has {output.ndim - 2} spatial axes "
                            f"(shape {'x'.join(map(str, output.shape))})")
    # `--bias PATH` names a file (its bias may still be missing or doubled); only --no-bias or a bare --bias hint.
    use_bias = None if fields.get("bias") else fields.get("use_bias")
    hints = Hints(**{f: fields.get(f) for f in HINT_FIELDS if f != "use_bias"}, use_bias=use_bias)
    files = ExplainFiles(str(fields["input"]), str(fields["weights"]), output_path,
                         str(fields["bias"]) if fields.get("bias") else None,
                         output_layout.upper() if output_layout else input_layout_for(output.ndim - 2))
    return hints, x, kernel, bias, output, files
