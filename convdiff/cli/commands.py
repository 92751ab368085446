"""The thin command layer: parse, execute, render, exit.

Every command parses its options into typed values, calls an `execute_*` function that returns data,
renders it, and returns the documented exit code. Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from convdiff import __version__
from convdiff.backends import backend_names
from convdiff.errors import EXIT_INTERRUPTED, EXIT_MISMATCH, EXIT_OK, ConvdiffError

FORMATS = ("table", "json")


def one_line(message: str) -> str:
    """The message on one printable line: newlines and control characters a user typed are escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


class CliError(click.ClickException):
    """A ConvdiffError at the edge: one line on stderr, its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(one_line(message))
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"convdiff: error: {self.format_message()}", err=True)


class ConvdiffGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvdiffError as exc:
            if ctx.params.get("traceback"):
                raise
            raise CliError(str(exc), exc.exit_code) from exc
        except KeyboardInterrupt:
            raise CliError("interrupted", EXIT_INTERRUPTED) from None
        except click.UsageError as exc:
            # A subcommand's usage error is one line too, like every other error, with where to look.
            if ctx.params.get("traceback"):
                raise
            where = f"convdiff {exc.ctx.info_name} --help" if exc.ctx is not None and exc.ctx.parent else "convdiff --help"
            raise CliError(f"{exc.format_message()} (see '{where}')", exc.exit_code) from None


@dataclass(frozen=True)
class Output:
    """Where results and diagnostics go, decided once."""

    format: str

    @functools.cached_property
    def console(self):  # noqa: ANN201 - rich is imported lazily to keep --help fast
        from rich.console import Console

        console = Console(no_color="NO_COLOR" in os.environ or None)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 120  # logs and pipes: wide enough for the tables, still readable
        return console

    @functools.cached_property
    def err(self):  # noqa: ANN201
        from rich.console import Console

        return Console(stderr=True, no_color="NO_COLOR" in os.environ or None)

    def show(self, renderable: Any = None, document: dict[str, Any] | None = None) -> None:
        if self.format == "json":
            click.echo(json.dumps(document, indent=2, allow_nan=False))
        else:
            self.console.print(renderable)


@click.group(cls=ConvdiffGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="convdiff")
@click.option("--traceback", is_flag=True, help="Show the full Python traceback on errors (for bug reports).")
def cli(traceback: bool) -> None:
    """Build the same convolution two ways, compare kernels then outputs, and explain the difference.

    Exit codes: 0 as expected, 1 mismatch or unexpected result, 2 usage or bad input,
    3 a backend could not run, 130 interrupted.
    """


def spec_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that describe one convolution (shared by every command that builds one)."""
    options = [
        click.option("--shape", default=None, metavar="N,H,W,C",
                     help="Input shape, NHWC (or H,W,C). Default: from --input (1,32,32,3; 1,427,640,3 for image)."),
        click.option("--filters", default=None, metavar="N", help="Output channels. Default 8."),
        click.option("--kernel-size", default=None, metavar="K|KH,KW", help="Kernel size. Default 3."),
        click.option("--strides", default=None, metavar="S|SH,SW", help="Strides. Default 1."),
        click.option("--padding", default=None, metavar="P",
                     help="same | valid | P (symmetric) | PH,PW | TOP,BOTTOM,LEFT,RIGHT. Default same."),
        click.option("--dilation", default=None, metavar="D|DH,DW", help="Dilation rate. Default 1."),
        # `--bias` alone keeps its old meaning (add a bias); `--bias PATH` reads the bias from a file.
        click.option("--bias", "bias_option", is_flag=False, flag_value=_BIAS_FLAG, default=None, metavar="[PATH]",
                     help="Add a bias (default); with PATH, read it from a .npy/.npz file (needs --weights)."),
        click.option("--no-bias", "no_bias", is_flag=True, default=None, help="No bias."),
        click.option("--init", "--initializer", "initializer", default=None, metavar="INIT",
                     help="Kernel initializer, e.g. ones, glorot_uniform, xavier, 'truncated_normal(stddev=0.1)'. "
                          "Default glorot_uniform. `convdiff list` shows all."),
        click.option("--bias-init", "bias_initializer", default=None, metavar="INIT",
                     help="Bias initializer. Default zeros."),
        click.option("--dtype", default=None, metavar="DTYPE",
                     help="Compute dtype: float16, bfloat16, float32, float64. Default float32."),
        click.option("--input-dtype", default=None, metavar="DTYPE",
                     help="Dtype the input is stored in (e.g. float64 for image/255). Default: --dtype."),
        click.option("--input", "input", default=None, metavar="SOURCE",
                     help="random (seeded uniform [0,1)), ones, image (synthetic 427x640x3), or a .npy/.png/.jpg path. "
                          "Default random."),
        click.option("--seed", default=None, metavar="N", help="Seed for kernels and the random input. Default 42."),
        click.option("--input-layout", "input_layout", default=None, metavar="LAYOUT",
                     help="Layout of an --input .npy/.npz: NHWC, NCHW, HWC, CHW, HW. Default NHWC."),
        click.option("--weights", "weights", default=None, metavar="PATH",
                     help="Kernel from a .npy, or a .npz with keys kernel and optional bias; every backend uses it."),
        click.option("--weights-layout", "weights_layout", default=None, metavar="LAYOUT",
                     help="Layout of --weights: HWIO, OIHW, OHWI, IOHW (or any order of H, W, I, O). Default HWIO."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


SPEC_OPTION_NAMES = ("shape", "filters", "kernel_size", "strides", "padding", "dilation", "use_bias", "initializer",
                     "bias_initializer", "dtype", "input_dtype", "input", "seed", "input_layout", "weights",
                     "weights_layout", "bias")
_BIAS_FLAG = "\0flag"
SIDES = ("reference", "candidate")


def comparison_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--atol", type=float, default=None,
                     help="Absolute tolerance (with --rtol). Default: per compute dtype (see README)."),
        click.option("--rtol", type=float, default=None, help="Relative tolerance, relative to the reference (with --atol)."),
        click.option("--equal-nan", is_flag=True, help="Treat NaN in the same position on both sides as equal."),
        click.option("--top", "top_k", type=click.IntRange(min=0), default=10, show_default=True,
                     help="How many worst positions to report."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     help="table for people, json for machines."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


TOLERANCE_MODES = ("bound", "elementwise")
BOUND_FORMS = ("probabilistic", "worst-case")


def precision_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The rule that decides the verdict (README: "Precision-aware verdicts")."""
    options = [
        click.option("--tolerance", "tolerance_mode", type=click.Choice(TOLERANCE_MODES), default=None,
                     help="Verdict rule: bound (each element within the rounding-error bound of its dot product in "
                          "the lower compute precision) or elementwise (atol/rtol). Default bound; elementwise when "
                          "--atol/--rtol are given."),
        click.option("--bound-form", type=click.Choice(BOUND_FORMS), default="probabilistic", show_default=True,
                     help="gamma of the bound: probabilistic c*sqrt(K)*u or worst-case K*u/(1-K*u)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def parse_precision(tolerance_mode: str | None, bound_form: str):  # noqa: ANN201
    from convdiff.analysis.precision import parse_bound_form, parse_tolerance_mode

    return (parse_tolerance_mode(tolerance_mode) if tolerance_mode is not None else None,
            parse_bound_form(bound_form))


def max_memory_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--max-memory SIZE`: refuse (exit 2) a comparison whose estimated memory is above SIZE."""
    return click.option("--max-memory", "max_memory", default=None, metavar="SIZE", callback=_parse_max_memory,
                        help="Refuse comparisons estimated to need more memory than SIZE (e.g. 4GiB, 500MB). "
                             "Default: 50% of the available memory.")(fn)


def _parse_max_memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from convdiff.errors import BadInputError
    from convdiff.data.memory import parse_size

    try:
        return parse_size(value)
    except BadInputError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_tolerance(atol: float | None, rtol: float | None):  # noqa: ANN201
    from convdiff.compare.core import Tolerance

    if (atol is None) != (rtol is None):
        raise click.UsageError("give --atol and --rtol together, or neither")
    if atol is None:
        return None
    if atol < 0 or rtol < 0:  # type: ignore[operator]
        raise click.BadParameter("tolerances must not be negative", param_hint="--atol/--rtol")
    return Tolerance(atol, rtol)  # type: ignore[arg-type]


def spec_fields(params: dict[str, Any]) -> dict[str, Any]:
    """The spec options a user actually gave, parsed (unset ones keep the spec's defaults)."""
    from convdiff.spec.convspec import parse_fields

    params = dict(params)
    bias_option, no_bias = params.pop("bias_option", None), params.pop("no_bias", None)
    if bias_option is not None and no_bias:
        raise click.UsageError("give --bias or --no-bias, not both")
    if no_bias:
        params["use_bias"] = False
    elif bias_option is not None:
        params["use_bias"] = True
        if bias_option != _BIAS_FLAG:
            params["bias"] = bias_option
    raw = {("input_shape" if k == "shape" else k): v for k, v in params.items()
           if k in SPEC_OPTION_NAMES and v is not None}
    return parse_fields(raw)


def parse_overrides(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`--set SIDE.FIELD=VALUE` (repeatable) -> {side: parsed fields}; later settings win."""
    from convdiff.spec.convspec import parse_fields

    raw: dict[str, dict[str, Any]] = {side: {} for side in SIDES}
    for text in values:
        target, sep, value = text.partition("=")
        side, dot, name = target.strip().partition(".")
        if not sep or not dot or side not in SIDES or not name:
            raise click.BadParameter(f"expected SIDE.FIELD=VALUE with SIDE reference or candidate, got '{text}'",
                                     param_hint="--set")
        raw[side][name.strip()] = value.strip()
    return {side: parse_fields(fields, where=f" in --set {side}.") for side, fields in raw.items()}


# --- compare -------------------------------------------------------------------------------------


@cli.command()
@click.option("--reference", type=click.Choice(backend_names()), default="nn", show_default=True,
              help="Backend whose output is the reference (relative errors divide by it).")
@click.option("--candidate", type=click.Choice(backend_names()), default="keras", show_default=True,
              help="Backend whose output is checked against the reference.")
@spec_options
@click.option("--shared-kernel", is_flag=True,
              help="Give the candidate the reference's kernel and bias, so only the convolution ops are compared.")
@click.option("--set", "overrides", multiple=True, metavar="SIDE.FIELD=VALUE",
              help="Override a spec field for one side (repeatable), e.g. --set candidate.padding=1, "
                   "--set candidate.weights_layout=OHWI.")
@click.option("--heatmap", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE.png",
              help="Write a PNG heatmap of the per-position max abs diff (over batch and channels).")
@comparison_options
@precision_options
@click.option("--save-bundle", "bundle_dir", default=None, metavar="DIR",
              help="Write a reproduction bundle (specs, input, kernels, outputs, report); `convdiff run DIR` replays it.")
@max_memory_option
def compare(reference: str, candidate: str, shared_kernel: bool, overrides: tuple[str, ...], heatmap: str | None,
            atol: float | None, rtol: float | None, equal_nan: bool, top_k: int, fmt: str,
            tolerance_mode: str | None, bound_form: str, bundle_dir: str | None = None, max_memory: int | None = None,
            **spec_params: Any) -> None:
    """Build one convolution with two backends and compare kernels, then outputs.

    Exits 0 when the outputs are identical or equivalent, 1 when they are not.
    """
    from convdiff.pipeline.execute import CaseOptions

    mode, form = parse_precision(tolerance_mode, bound_form)
    options = CaseOptions(tolerance=parse_tolerance(atol, rtol), shared_kernel=shared_kernel,
                          top_k=top_k, equal_nan=equal_nan, mode=mode, bound_form=form)
    result = execute_compare(reference, candidate, spec_fields(spec_params), options, parse_overrides(overrides),
                             max_memory=max_memory)
    if heatmap:
        from convdiff.analysis.regions import write_heatmap

        write_heatmap(heatmap, result.reference.output, result.candidate.output)
    from convdiff.backends import environment
    from convdiff.report import tables as report

    env = environment.collect()
    doc = {"schema": report.SCHEMA_VERSION, "comparisons": [report.case_to_json(result, env)], "environment": env}
    if bundle_dir:
        from convdiff.suites import bundle

        bundle.save(bundle_dir, [(result, {"experiment": "compare"})], doc)
    Output(fmt).show(report.render_case(result), doc)
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)


def execute_compare(reference: str, candidate: str, fields: dict[str, Any], options: Any,  # noqa: ANN201
                    overrides: dict[str, dict[str, Any]] | None = None, max_memory: int | None = None):
    from convdiff.backends import prepare_frameworks
    from convdiff.errors import BadInputError
    from convdiff.pipeline.execute import SideConfig, run_case
    from convdiff.spec.convspec import build_spec

    overrides = overrides or {}
    specs = {}
    for side in SIDES:
        try:
            specs[side] = build_spec({**fields, **overrides.get(side, {})})
        except BadInputError as exc:
            raise BadInputError(f"{side}: {exc}" if any(overrides.values()) else str(exc)) from None
    from convdiff.data.memory import check_memory

    check_memory(specs["reference"], specs["candidate"], max_memory)  # before any framework or allocation
    prepare_frameworks([reference, candidate])
    return run_case("compare", SideConfig(reference, specs["reference"]), SideConfig(candidate, specs["candidate"]),
                    options)


# --- run -----------------------------------------------------------------------------------------


@cli.command()
@click.argument("targets", nargs=-1, metavar="[NAME|FILE|DIR]...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for machines.")
@click.option("--details/--no-details", default=None,
              help="Print the full report of every case (default: only for unexpected results).")
@click.option("--save-bundle", "bundle_dir", default=None, metavar="DIR",
              help="Write a reproduction bundle of every case; `convdiff run DIR` replays it.")
@max_memory_option
def run(targets: tuple[str, ...], fmt: str, details: bool | None, bundle_dir: str | None = None,
        max_memory: int | None = None) -> None:
    """Run built-in experiments (by NAME), experiment files (TOML) and bundles (DIR, replayed); no argument
    runs every built-in experiment.

    Exits 0 when every case came out as expected (a bundle: the verdict it recorded), 1 otherwise
    (130 on Ctrl-C, after the summary of the cases completed so far).
    """
    from convdiff.errors import InterruptedRun

    interrupted = None
    try:
        outcomes, skipped = execute_run(targets, max_memory=max_memory)
    except InterruptedRun as exc:
        interrupted = exc
        outcomes, skipped = exc.partial  # type: ignore[misc]
    from convdiff.backends import environment
    from convdiff.report import tables as report

    rows = [report.SummaryRow(o.experiment, o.case.name, o.expected, o.got, o.as_expected, report.key_figures(o.result))
            for o in outcomes]
    ok = all(o.as_expected for o in outcomes)
    if bundle_dir:
        _save_run_bundle(bundle_dir, outcomes, skipped)
    if fmt == "json":
        doc = _run_json(outcomes, skipped, environment.collect())
        if interrupted is not None:
            doc["ok"], doc["interrupted"] = False, True
        Output(fmt).show(document=doc)
    else:
        out = Output(fmt)
        for o in outcomes:
            if details or (details is None and not o.as_expected):
                out.console.print(report.render_case(o.result))
                out.console.print()
        out.console.print(report.render_summary(rows, skipped))
        if interrupted is not None:
            out.console.print(f"interrupted: {interrupted.total - interrupted.completed} of {interrupted.total} "
                              "cases not run", style="bold yellow")
    if interrupted is not None:
        raise CliError(f"{interrupted}; the summary shows the completed ones", EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if ok else EXIT_MISMATCH)


def _run_json(outcomes: Any, skipped: Any, env: dict[str, Any]) -> dict[str, Any]:
    from convdiff.report import tables as report

    return {
        "schema": report.SCHEMA_VERSION,
        "ok": all(o.as_expected for o in outcomes),
        "cases": [{"experiment": o.experiment, "case": o.case.name, "expected": o.case.expect.value,
                   "expect_kernels": o.case.expect_kernels, "expect_distribution": o.case.expect_distribution,
                   "as_expected": o.as_expected,
                   **report.case_to_json(o.result, env)} for o in outcomes],
        "skipped": [{"experiment": name, "reason": reason} for name, reason in skipped],
        "environment": env,
    }


def _save_run_bundle(directory: str, outcomes: Any, skipped: Any) -> None:
    from convdiff.suites import bundle
    from convdiff.backends import environment

    bundle.save(directory, [(o.result, {"experiment": o.experiment}) for o in outcomes],
                _run_json(outcomes, skipped, environment.collect()))


def execute_run(targets: tuple[str, ...], max_memory: int | None = None):  # noqa: ANN201
    from convdiff.suites import bundle
    from convdiff.suites import experiments
    from convdiff.pipeline.execute import run_case

    explicit = bool(targets)
    bundles = [t for t in targets if bundle.is_bundle(t)]
    targets = tuple(t for t in targets if not bundle.is_bundle(t))
    loaded = [experiments.resolve(t) for t in targets] if explicit else [
        experiments.load_builtin(n) for n in experiments.builtin_names()]
    from convdiff.backends import prepare_frameworks

    outcomes, skipped, runnable = [], [], []
    for exp in loaded:
        missing = exp.missing_requirements()
        if missing:
            if explicit:
                from convdiff.errors import BackendUnavailableError

                raise BackendUnavailableError(f"experiment '{exp.name}': {'; '.join(missing)}")
            skipped.append((exp.name, "; ".join(missing)))
            continue
        runnable.append(exp)
    from convdiff.data.memory import check_memory

    for exp in runnable:  # every case is checked before any runs: refuse the run, not its last case
        for case in exp.cases:
            check_memory(case.reference.spec, case.candidate.spec, max_memory,
                         where=f"experiment '{exp.name}', case '{case.name}': ")
    # Decided once, before any backend imports TensorFlow: TF1 backends need legacy mode process-wide.
    prepare_frameworks([side.backend for exp in runnable for case in exp.cases
                        for side in (case.reference, case.candidate)]
                       + [name for b in bundles for name in bundle.backends(b)])
    total = sum(len(exp.cases) for exp in runnable) + sum(len(bundle.backends(b)) // 2 for b in bundles)
    try:
        outcomes.extend(o for b in bundles for o in bundle.replay_outcomes(b))
        for exp in runnable:
            for case in exp.cases:
                result = run_case(case.name, case.reference, case.candidate, case.options)
                outcomes.append(experiments.CaseOutcome(exp.name, case, result))
    except KeyboardInterrupt:
        from convdiff.errors import InterruptedRun

        raise InterruptedRun(len(outcomes), total, (outcomes, skipped)) from None
    return outcomes, skipped


# --- propagate -----------------------------------------------------------------------------------


@cli.command()
@click.option("--init", "--initializer", "initializer", default="truncated_normal(stddev=0.1)", show_default=True,
              metavar="INIT", help="Kernel initializer of every layer.")
@click.option("--depth", type=click.IntRange(1, 5000), default=30, show_default=True, help="Number of conv+ReLU layers.")
@click.option("--kernel-size", type=click.IntRange(1, 64), default=5, show_default=True, help="Square kernel size K.")
@click.option("--channels", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Channels of every layer (fan_in = K*K*channels).")
@click.option("--shape", default="1,32,32", show_default=True, metavar="N,H,W",
              help="Input batch and spatial size; its channels are --channels.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=42, show_default=True,
              help="Seeds the N(0,1) input and the kernels (layer l uses seed + l).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE.png",
              help="Also write a PNG line plot of log10 activation std per layer.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for machines.")
def propagate(initializer: str, depth: int, kernel_size: int, channels: int, shape: str, seed: int,
              plot_path: str | None, fmt: str) -> None:
    """Push a seeded input through a deep conv+ReLU stack: does the initializer explode or vanish?

    Glorot uniform and He normal run alongside as references. A report, not a check: exits 0
    (2 on bad input).
    """
    from convdiff.report import tables as report
    from convdiff.spec.initializers import parse_initializer
    from convdiff.spec.convspec import parse_ints

    init = parse_initializer(initializer)
    hw = parse_ints(shape, "input shape")
    if len(hw) == 4:
        if hw[3] != channels:
            raise click.BadParameter(f"the shape's channels ({hw[3]}) must equal --channels ({channels})",
                                     param_hint="--shape")
        hw = hw[:3]
    if len(hw) != 3:
        raise click.BadParameter(f"expected N,H,W, got {shape!r}", param_hint="--shape")
    result = execute_propagate(init, depth, kernel_size, channels, hw, seed, plot_path)
    doc = {"schema": report.SCHEMA_VERSION, **result.to_json(), "plot": plot_path}
    Output(fmt).show(report.render_propagation(result, plot_path), doc)
    sys.exit(EXIT_OK)


def execute_propagate(init: Any, depth: int, kernel_size: int, channels: int, hw: tuple[int, ...], seed: int,
                      plot_path: str | None):  # noqa: ANN201
    from convdiff.suites.propagate import run_propagation

    result = run_propagation(init, depth, kernel_size, channels, tuple(hw), seed)
    if plot_path:
        from convdiff.errors import BadInputError
        from convdiff.report.figures import encode_png, log_line_plot

        image = log_line_plot([[s.activation_std for s in series.layers] for series in result.series])
        try:
            with open(plot_path, "wb") as handle:
                handle.write(encode_png(image))
        except OSError as exc:
            raise BadInputError(f"cannot write plot '{plot_path}': {exc.strerror}") from None
    return result


# --- defaults ------------------------------------------------------------------------------------


@cli.command()
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=42, show_default=True,
              help="Seeds the draws (the default initializers themselves are unseeded).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for machines.")
def defaults(seed: int, fmt: str) -> None:
    """Show the default kernel and bias initializers of Keras and the TF1 APIs, asked live and confirmed by a draw.

    Exits 0 when every drawn weight follows the initializer its API declares, 1 otherwise.
    """
    from convdiff.report import tables as report
    from convdiff.suites.defaults import collect_defaults

    result = collect_defaults(seed)
    Output(fmt).show(report.render_defaults(result), {"schema": report.SCHEMA_VERSION, **result.to_json()})
    sys.exit(EXIT_OK if all(r.confirmed for r in result.rows) else EXIT_MISMATCH)


# --- sweep ---------------------------------------------------------------------------------------

# (option, axis) for every sweepable option; values are comma lists (see `convdiff.suites.sweep`).
SWEEP_OPTIONS = (
    ("--shape", "input_shape", "N,H,W,C shapes, written 1x16x16x4 (or separated by ';')"),
    ("--batch", "batch", "Batch sizes N"),
    ("--input-size", "input_size", "Input sizes: H = W"),
    ("--channels", "channels", "Input channels C"),
    ("--filters", "filters", "Output channels"),
    ("--kernel-size", "kernel_size", "Kernel sizes, e.g. 1,3,5 (a pair: 1x3)"),
    ("--strides", "strides", "Strides, e.g. 1,2 (a pair: 1x2)"),
    ("--padding", "padding", "Paddings, e.g. same,valid,1 (explicit pairs: 1x2 or 0x1x0x1)"),
    ("--dilation", "dilation", "Dilation rates, e.g. 1,2"),
    ("--use-bias", "use_bias", "true,false"),
    ("--dtype", "dtype", "Compute dtypes, e.g. float32,float64"),
    ("--input-dtype", "input_dtype", "Input storage dtypes"),
    ("--init", "initializer", "Kernel initializers (separate with ';' when one has arguments)"),
    ("--bias-init", "bias_initializer", "Bias initializers"),
    ("--input", "input", "Input sources: random, ones, image, or files"),
    ("--seed", "seed", "Seeds"),
)


def sweep_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for flag, axis, text in reversed(SWEEP_OPTIONS):
        fn = click.option(flag, axis, default=None, metavar="V1,V2,...", help=text + ".")(fn)
    return fn


@cli.command()
@click.option("--reference", type=click.Choice(backend_names()), default=None,
              help="Reference backend. Default: the grid file's, else nn.")
@click.option("--candidate", type=click.Choice(backend_names()), default=None,
              help="Candidate backend. Default: the grid file's, else keras.")
@sweep_options
@click.option("--grid", "grid_file", default=None, metavar="FILE.toml",
              help="Grid file: a [sweep] table of lists (and optional [spec], reference, candidate, expect). "
                   "Options given on the command line add axes or replace the file's.")
@click.option("--expect", default=None, metavar="VERDICTS",
              help="Verdicts that pass, comma-separated. Default: identical,equivalent.")
@click.option("--shard", default=None, metavar="K/N", help="Run only configs with index % N == K-1 (for CI matrices).")
@click.option("--shared-kernel", is_flag=True, help="Give the candidate the reference's kernel and bias.")
@click.option("--atol", type=float, default=None, help="Absolute tolerance (with --rtol). Default: per dtype.")
@click.option("--rtol", type=float, default=None, help="Relative tolerance (with --atol).")
@click.option("--equal-nan", is_flag=True, help="Treat NaN in the same position on both sides as equal.")
@click.option("--set", "overrides", multiple=True, metavar="SIDE.FIELD=VALUE",
              help="Override a spec field for one side in every config (repeatable), e.g. --set reference.padding=1.")
@precision_options
@click.option("--junit", "junit_path", default=None, metavar="FILE.xml",
              help="Also write JUnit XML: one testcase per config.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for machines.")
def sweep(reference: str | None, candidate: str | None, grid_file: str | None, expect: str | None,
          shard: str | None, shared_kernel: bool, atol: float | None, rtol: float | None, equal_nan: bool,
          overrides: tuple[str, ...], tolerance_mode: str | None, bound_form: str,
          junit_path: str | None, fmt: str, **axes: str | None) -> None:
    """Compare reference and candidate over a Cartesian grid of specs (every combination of the values).

    Values are comma-separated (--kernel-size 1,3,5); a pair is written 1x3; with a ';' in an option,
    values are split on ';' instead. Configs a backend cannot run (or a kernel larger than the input)
    are skipped with the reason. Exits 0 when every config gave an expected verdict, 1 otherwise.
    """
    import dataclasses

    mode, form = parse_precision(tolerance_mode, bound_form)
    plan = dataclasses.replace(
        execute_sweep_plan(reference, candidate, grid_file, expect, shard, shared_kernel,
                           parse_tolerance(atol, rtol), equal_nan, axes),
        overrides=parse_overrides(overrides), mode=mode, bound_form=form)
    import time

    from convdiff.backends import environment
    from convdiff.report import sweep as sweep_report
    from convdiff.suites.sweep import run_sweep, summarize

    out = Output(fmt)
    start = time.perf_counter()
    with _progress(out.err, len(plan.selected())) as advance:
        outcomes = run_sweep(plan, progress=advance)
    summary = summarize(plan, outcomes, time.perf_counter() - start)
    if junit_path:
        _write_atomically(junit_path, sweep_report.sweep_to_junit(plan, summary, outcomes))
    out.show(sweep_report.render_summary(plan, summary),
             sweep_report.sweep_to_json(plan, summary, outcomes, environment.collect()))
    sys.exit(EXIT_OK if summary.ok else EXIT_MISMATCH)


def execute_sweep_plan(reference: str | None, candidate: str | None, grid_file: str | None, expect: str | None,
                       shard: str | None, shared_kernel: bool, tolerance: Any, equal_nan: bool,
                       axes: dict[str, str | None]):  # noqa: ANN201
    """Options (and the grid file) -> a SweepPlan; bad values raise BadInputError (exit 2)."""
    from convdiff.spec.convspec import parse_fields
    from convdiff.suites.sweep import DEFAULT_EXPECT, SweepPlan, load_grid_file, make_grid, parse_expect, parse_shard, split_values

    given = {axis: split_values(text) for axis, text in axes.items() if text is not None}
    file = load_grid_file(grid_file) if grid_file else None
    raw_axes = dict(file.axes) if file else {}
    from convdiff.suites.sweep import axis_name

    raw_axes = {axis_name(k): v for k, v in raw_axes.items()}
    raw_axes.update(given)
    if not raw_axes:
        raise click.UsageError("nothing to sweep: give at least one axis (e.g. --kernel-size 1,3,5) or --grid FILE")
    base = parse_fields(file.base, where=f" in {grid_file}") if file else {}
    grid = make_grid(raw_axes, base)
    verdicts = (parse_expect(expect.split(",")) if expect else
                parse_expect(file.expect) if file and file.expect else DEFAULT_EXPECT)
    from convdiff.backends import backend_info

    ref = reference or (file.reference if file and file.reference else "nn")
    cand = candidate or (file.candidate if file and file.candidate else "keras")
    backend_info(ref), backend_info(cand)
    return SweepPlan(grid, ref, cand, verdicts, tolerance or (file.tolerance if file else None),
                     shared_kernel or bool(file and file.shared_kernel), equal_nan or bool(file and file.equal_nan),
                     parse_shard(shard))


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


def _write_atomically(path: str, data: bytes) -> None:
    """Write a file via a temporary file beside it, so a reader never sees half a file."""
    import tempfile

    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        from convdiff.errors import BadInputError

        raise BadInputError(f"cannot write '{path}': directory '{directory}' does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".convdiff-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- list ----------------------------------------------------------------------------------------


@cli.command(name="list")
def list_() -> None:
    """List backends, initializers and built-in experiments, one line each."""
    from rich.table import Table

    from convdiff.suites import experiments
    from convdiff.backends import REGISTRY
    from convdiff.spec.initializers import initializer_names

    out = Output("table")
    table = Table(title="Backends", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("what it builds")
    table.add_column("status")
    for info in REGISTRY.values():
        missing = info.missing()
        table.add_row(info.name, info.summary, f"[yellow]needs {', '.join(missing)}: {info.install_hint}[/]"
                      if missing else "[green]available[/]")
    out.console.print(table)
    table = Table(title="Initializers", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("description")
    for name, description in initializer_names():
        table.add_row(name, description)
    out.console.print(table)
    table = Table(title="Built-in experiments", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("question")
    for name in experiments.builtin_names():
        table.add_row(name, experiments.load_builtin(name).title)
    out.console.print(table)


def main() -> None:
    cli(prog_name="convdiff")
