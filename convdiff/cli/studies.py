"""`convdiff propagate` and `convdiff defaults`: reports about initializers, not comparisons."""

from __future__ import annotations

import sys

import click

from convdiff.cli.group import cli
from convdiff.cli.options import check_outputs, format_option
from convdiff.cli.output import Output
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


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
@click.option("--plot", "plot_path", default=None, metavar="FILE.png|.svg|.pdf",
              help="Also write a plot of the activation std per layer (log scale, one line per initializer); "
                   "the format follows the extension.")
@format_option
def propagate(initializer: str, depth: int, kernel_size: int, channels: int, shape: str, seed: int,
              plot_path: str | None, fmt: str) -> None:
    """Push a seeded input through a deep conv+ReLU stack: does the initializer explode or vanish?

    Glorot uniform and He normal run alongside as references. A report, not a check: exits 0
    (2 on bad input).
    """
    from convdiff.report.json import SCHEMA_VERSION, propagation_json
    from convdiff.report.tables import render_propagation
    from convdiff.spec.initializers import parse_initializer
    from convdiff.spec.parse import parse_ints
    from convdiff.suites.propagate import run_propagation

    init = parse_initializer(initializer)
    hw = parse_ints(shape, "input shape")
    if len(hw) == 4:
        if hw[3] != channels:
            raise click.BadParameter(f"the shape's channels ({hw[3]}) must equal --channels ({channels})",
                                     param_hint="--shape")
        hw = hw[:3]
    if len(hw) != 3:
        raise click.BadParameter(f"expected N,H,W, got {shape!r}", param_hint="--shape")
    check_outputs(fmt=fmt, figure_paths={"plot": plot_path} if plot_path is not None else None)
    result = run_propagation(init, depth, kernel_size, channels, tuple(hw), seed)
    out = Output(fmt)
    if plot_path is not None:
        from convdiff.report.figures import figure_format, render

        out.write(plot_path, render(result, figure_format(plot_path, "plot")), "plot")
    doc = {"schema": SCHEMA_VERSION, **propagation_json(result), "plot": plot_path}
    out.show(render_propagation(result), doc)
    sys.exit(EXIT_OK)


@cli.command()
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=42, show_default=True,
              help="Seeds the draws (the default initializers themselves are unseeded).")
@format_option
def defaults(seed: int, fmt: str) -> None:
    """Show the default kernel and bias initializers of Keras and the TF1 APIs, asked live and confirmed by a draw.

    Exits 0 when every drawn weight follows the initializer its API declares, 1 otherwise.
    """
    from convdiff.report.json import SCHEMA_VERSION, defaults_json
    from convdiff.report.tables import render_defaults
    from convdiff.suites.defaults import collect_defaults

    result = collect_defaults(seed)
    Output(fmt).show(render_defaults(result), {"schema": SCHEMA_VERSION, **defaults_json(result)})
    sys.exit(EXIT_OK if all(r.confirmed for r in result.rows) else EXIT_MISMATCH)


@cli.command(name="list")
def list_() -> None:
    """List backends (with what each supports), initializers and built-in experiments, one line each."""
    from rich.table import Table

    from convdiff.backends import REGISTRY
    from convdiff.report.layout import fit
    from convdiff.spec.initializers import initializer_names
    from convdiff.suites import experiments

    out = Output("table")
    table = Table(title="Backends", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("what it builds")
    table.add_column("supports")
    table.add_column("status")
    for info in REGISTRY.values():
        missing = info.missing()
        status = f"[yellow]needs {', '.join(missing)}: {info.install_hint}[/]" if missing else "[green]available[/]"
        table.add_row(info.name, info.summary, info.can.summary(), status)
    out.console.print(fit(table))
    table = Table(title="Initializers", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("description")
    for name, description in initializer_names():
        table.add_row(name, description)
    out.console.print(fit(table))
    table = Table(title="Built-in experiments", title_justify="left", show_edge=False)
    table.add_column("name")
    table.add_column("question")
    for name in experiments.builtin_names():
        table.add_row(name, experiments.load_builtin(name).title)
    out.console.print(fit(table))
