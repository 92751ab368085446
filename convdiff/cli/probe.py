"""`convdiff probe batch|channels`: one backend, the same layer computed two ways that must agree up to rounding."""

from __future__ import annotations

import sys
from typing import Any

import click

from convdiff.cli.group import cli
from convdiff.cli.options import (backend_option, bound_form_option, check_outputs, format_option, max_memory_option, quiet_option,
                                  spec_fields, spec_options)
from convdiff.cli.output import Output
from convdiff.cli.params import ChannelsType
from convdiff.errors import EXIT_MISMATCH, EXIT_OK


@cli.group()
def probe() -> None:
    """Invariance probes of one backend: the same layer computed two ways, compared under the rounding bound.

    A difference within the bound is expected behaviour (the two computations round differently), and
    the report says so. Exits 0 when every difference is within the bound, 1 when one is beyond it.
    """


def probe_command(fn: Any) -> Any:
    """The options every probe takes."""
    for option in reversed((backend_option("Backend to probe."), spec_options, bound_form_option, max_memory_option,
                            format_option, quiet_option)):
        fn = option(fn)
    return fn


@probe.command()
@click.option("--batch-size", "batch", type=click.IntRange(min=2), default=None, metavar="N",
              help="N: the batch of the batched run. Default: the batch of --shape, or 4 when that is 1.")
@probe_command
def batch(backend: str, batch: int | None, **params: Any) -> None:
    """The layer on a batch of N against N runs of batch 1 (pytorch#107514, keras#12557).

    The N runs of batch 1 are the reference.
    """
    from convdiff.pipeline.probe import probe_batch

    _finish(params, lambda spec, form, memory: probe_batch(backend, spec, batch, memory, form))


@probe.command()
@click.option("--subset", "channels", type=ChannelsType(), default=None, metavar="C1,C2,...|START:STOP",
              help="The output channels computed as a smaller layer. Default: the first half of --filters.")
@probe_command
def channels(backend: str, channels: tuple[int, ...] | None, **params: Any) -> None:
    """A subset of output channels computed as a smaller layer against the same channels of the full layer
    (tensorflow#61422).

    The full layer is the reference; the smaller one has the same kernel slices and biases.
    """
    from convdiff.pipeline.probe import probe_channels

    _finish(params, lambda spec, form, memory: probe_channels(backend, spec, channels, memory, form))


def _finish(params: dict[str, Any], run: Any) -> None:
    """Build the spec, run the probe, render, exit."""
    from convdiff.data.specs import build_spec
    from convdiff.reference.rounding import parse_bound_form

    fmt, quiet, memory, form = params.pop("fmt"), params.pop("quiet"), params.pop("max_memory"), params.pop("bound_form")
    check_outputs(quiet, fmt)
    result = run(build_spec(spec_fields(params)), parse_bound_form(form), memory)
    from convdiff.backends.environment import collect
    from convdiff.report.json import SCHEMA_VERSION
    from convdiff.report.probe import probe_json, probe_verdict_line, render_probe

    doc = {"schema": SCHEMA_VERSION, "ok": bool(result), "probes": [probe_json(result)], "environment": collect()}
    Output(fmt, quiet).show(render_probe(result), doc, probe_verdict_line(result))
    sys.exit(EXIT_OK if result else EXIT_MISMATCH)
