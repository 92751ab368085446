"""Option groups declared once and stacked on every command that takes them: the spec options (from
the one field table), the sides, the tolerance, the rule, the output format, `--set`, `--max-memory`.

Each group is a decorator; each has one parser turning its values into typed data for the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from convdiff.backends.registry import backend_names
from convdiff.cli.params import FieldType, LayerRefType, OverrideType, SizeType, SweepValuesType
from convdiff.spec.fields import BY_NAME, FIELDS, SHAPE_AXES

FORMATS = ("table", "json")
TOLERANCE_MODES = ("bound", "elementwise")
BOUND_FORMS = ("probabilistic", "worst-case")
_BIAS_FLAG = "\0flag"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def stack(*options: Decorator) -> Decorator:
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


def format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for people, json for machines.")(fn)


def side_options(reference: str | None, candidate: str | None, what: str = "") -> Decorator:
    """--reference/--candidate, with their defaults (None: decided later, e.g. by a grid file)."""
    ref_default = f" Default: {what}" if reference is None and what else ""
    return stack(
        click.option("--reference", type=click.Choice(backend_names()), default=reference,
                     show_default=reference is not None,
                     help=f"Backend whose output is the reference (relative errors divide by it).{ref_default}"),
        click.option("--candidate", type=click.Choice(backend_names()), default=candidate,
                     show_default=candidate is not None,
                     help="Backend whose output is checked against the reference." + (
                         f" Default: {what.replace('nn', 'keras')}" if candidate is None and what else "")),
    )


def spec_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options describing one convolution: one per field of the field table, plus `--bias [PATH]`/`--no-bias`."""
    options: list[Decorator] = [
        click.option(*f.flags, f.name, is_flag=True, default=None, help=f.help) if f.is_flag else
        click.option(*f.flags, f.name, type=FieldType(f), default=None, metavar=f.metavar, help=f.help)
        for f in FIELDS if f.flags
    ]
    # `--bias` alone keeps its old meaning (add a bias); `--bias PATH` reads the bias from a file.
    options.append(click.option("--bias", "bias_option", is_flag=False, flag_value=_BIAS_FLAG, default=None,
                                metavar="[PATH]",
                                help="Add a bias (default); with PATH, read it from a .npy/.npz file (needs --weights)."))
    options.append(click.option("--no-bias", "no_bias", is_flag=True, default=None, help="No bias."))
    options.append(click.option("--from", "from_layer", type=LayerRefType(), default=None, metavar="FILE#LAYER",
                                help="Take one layer of a model file: its weights and its configuration (kernel size, "
                                     "strides, padding, dilation, groups, filters, bias). Options given too must agree "
                                     "with the file; --set SIDE.FIELD changes one side. `convdiff layers FILE` lists "
                                     "the layers."))
    return stack(*options)(fn)


def spec_fields(params: dict[str, Any]) -> dict[str, Any]:
    """The spec options a user actually gave, already parsed (unset ones keep the spec's defaults)."""
    # A bare flag left off is "not given" (the spec's default), not an explicit false.
    fields = {f.name: params.pop(f.name) for f in FIELDS
              if f.flags and params.get(f.name) is not None and not (f.is_flag and params[f.name] is False)}
    from_layer = params.pop("from_layer", None)
    if from_layer is not None:
        from convdiff.data.specs import FROM

        fields[FROM] = from_layer
    bias_option, no_bias = params.pop("bias_option", None), params.pop("no_bias", None)
    if bias_option is not None and no_bias:
        raise click.UsageError("give --bias or --no-bias, not both")
    if no_bias:
        fields["use_bias"] = False
    elif bias_option is not None:
        fields["use_bias"] = True
        if bias_option != _BIAS_FLAG:
            fields["bias"] = BY_NAME["bias"].parse(bias_option)
    for f in FIELDS:
        params.pop(f.name, None)
    return fields


LAYOUT_TYPE = FieldType(BY_NAME["input_layout"])
"""An array layout (NHWC, NCHW, HWC, ...; the other ranks' too), parsed like --input-layout."""


def output_layout_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output-layout", "output_layout", type=LAYOUT_TYPE, default=None,
                        metavar="LAYOUT",
                        help="Layout of the recorded output files (NHWC, NCHW, HWC, CHW; NWC/NCW, NDHWC/NCDHW "
                             "for other ranks). Default: channels-last (NHWC). caffe.Net and PyTorch dump NCHW.")(fn)


recorded_output_options = stack(
    click.option("--reference-output", "reference_output", default=None, metavar="FILE[.npz#KEY]",
                 help="A recorded output (.npy, .npz#key or a single-array .npz) that stands for the reference: "
                      "no backend runs for it. With --input and --weights/--from it is checked as a backend would "
                      "be (rounding bound, regions, diagnosis); without them, elementwise only."),
    click.option("--candidate-output", "candidate_output", default=None, metavar="FILE[.npz#KEY]",
                 help="A recorded output that stands for the candidate (as --reference-output)."),
    output_layout_option,
)


def set_option(help_text: str) -> Decorator:
    return click.option("--set", "overrides", multiple=True, type=OverrideType(), metavar="SIDE.FIELD=VALUE",
                        help=help_text)


def overrides_by_side(values: tuple[tuple[str, str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Parsed `--set` values by side; later settings win."""
    by_side: dict[str, dict[str, Any]] = {"reference": {}, "candidate": {}}
    for side, field, value in values:
        by_side[side][field] = value
    return by_side


tolerance_options = stack(
    click.option("--atol", type=float, default=None,
                 help="Absolute tolerance of the elementwise rule (with --rtol). Default: per compute dtype."),
    click.option("--rtol", type=float, default=None,
                 help="Relative tolerance, relative to the reference (with --atol)."),
    click.option("--equal-nan", is_flag=True, help="Treat NaN in the same position on both sides as equal."),
)


def parse_tolerance(atol: float | None, rtol: float | None):  # noqa: ANN201 - Tolerance | None
    """The one check of the atol/rtol pair: both or neither, finite and not negative."""
    from convdiff.compare import Tolerance
    from convdiff.errors import BadInputError

    if (atol is None) != (rtol is None):
        raise click.UsageError("give --atol and --rtol together, or neither")
    if atol is None:
        return None
    if atol < 0 or rtol < 0:  # type: ignore[operator]
        raise click.BadParameter("tolerances must not be negative", param_hint="--atol/--rtol")
    try:
        return Tolerance(atol, rtol)  # type: ignore[arg-type]
    except BadInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--atol/--rtol") from None


def top_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    # Capped where a bundle's schema caps it: a report listing more positions than that helps no one.
    return click.option("--top", "top_k", type=click.IntRange(0, 1_000_000), default=10, show_default=True,
                        help="How many worst positions to report.")(fn)


bound_form_option = click.option(
    "--bound-form", type=click.Choice(BOUND_FORMS), default="probabilistic", show_default=True,
    help="accumulation term of the bound: probabilistic u*(c*sqrt(K)*S + K*|t|) or worst-case K*u/(1-K*u)*S, "
         "S = |x|(*)|w|.")

rule_options = stack(
    click.option("--tolerance", "tolerance_mode", type=click.Choice(TOLERANCE_MODES), default=None,
                 help="Verdict rule: bound (each element within the rounding-error bound of both sides' "
                      "arithmetic: operand, accumulation and output precisions) or elementwise (atol/rtol). Default "
                      "bound; elementwise when --atol/--rtol are given."),
    bound_form_option,
)


def backend_option(help_text: str) -> Decorator:
    """`--backend NAME` (required): the one backend a command probes."""
    return click.option("--backend", type=click.Choice(backend_names()), required=True, help=help_text)


def case_options(atol: float | None, rtol: float | None, equal_nan: bool, tolerance_mode: str | None,
                 bound_form: str, shared_kernel: bool = False, top_k: int = 10):  # noqa: ANN201 - CaseOptions
    """The comparison options of a command, parsed once into `CaseOptions`."""
    from convdiff.compare import parse_rule_kind
    from convdiff.pipeline import CaseOptions
    from convdiff.reference.rounding import parse_bound_form

    return CaseOptions(tolerance=parse_tolerance(atol, rtol), shared_kernel=shared_kernel, top_k=top_k,
                       equal_nan=equal_nan,
                       mode=parse_rule_kind(tolerance_mode) if tolerance_mode is not None else None,
                       bound_form=parse_bound_form(bound_form))


def max_memory_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--max-memory SIZE`: refuse (exit 2) a comparison whose estimated memory is above SIZE."""
    return click.option("--max-memory", "max_memory", type=SizeType(), default=None, metavar="SIZE",
                        help="Refuse comparisons estimated to need more memory than SIZE (e.g. 4GiB, 500MB). "
                             "Default: 50% of the available memory.")(fn)


def save_bundle_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--save-bundle", "bundle_dir", default=None, metavar="DIR",
                        help="Write a reproduction bundle (specs, inputs, kernels, outputs, rule, report); "
                             "`convdiff run DIR` replays it.")(fn)


def sweep_axis_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One option per sweep axis: every sweepable field of the table, and the input shape's dimensions."""
    axes: list[tuple[str, str, str]] = []
    for f in FIELDS:
        if f.sweep_flag:
            axes.append((f.sweep_flag, f.name, f.sweep_help))
            if f.name == "input_shape":
                axes.extend((a.sweep_flag, a.name, a.sweep_help) for a in SHAPE_AXES)
    return stack(*(click.option(flag, axis, type=SweepValuesType(axis), default=None, metavar="V1,V2,...",
                                help=text + ".") for flag, axis, text in axes))(fn)


# --- what a command writes and how much it prints ------------------------------------------------


def quiet_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--quiet/-q`: print exactly the verdict line (errors still go to stderr)."""
    return click.option("--quiet", "-q", "quiet", is_flag=True,
                        help="Print only the verdict line (errors still go to stderr); not with --format json.")(fn)


def report_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--report FILE.html`: also write a self-contained HTML report (checked before anything runs)."""
    return click.option("--report", "report_path", default=None, metavar="FILE.html",
                        help="Also write a self-contained HTML report: verdict, tables, figures, diagnosis, "
                             "specs, environment (needs convdiff[report]).")(fn)


def junit_option(what: str) -> Decorator:
    return click.option("--junit", "junit_path", default=None, metavar="FILE.xml",
                        help=f"Also write JUnit XML: one testcase per {what}.")


def check_outputs(quiet: bool = False, fmt: str = "table", report_path: str | None = None,
                  junit_path: str | None = None, figure_paths: dict[str, str] | None = None) -> None:
    """Everything about a command's output that can be refused, refused before anything runs: --quiet
    with JSON, unwritable paths, a figure format no extension names, a missing `report` extra."""
    from convdiff.data.files import check_output_path

    if quiet and fmt == "json":
        raise click.UsageError("give --quiet or --format json, not both")
    if report_path is not None:
        check_output_path(report_path, "HTML report")
        from convdiff.report.html import require_report_extra

        require_report_extra()
    if junit_path is not None:
        check_output_path(junit_path, "JUnit report")
    for what, path in (figure_paths or {}).items():
        from convdiff.report.figures import figure_format, require_matplotlib

        check_output_path(path, what)
        figure_format(path, what)
        require_matplotlib()
