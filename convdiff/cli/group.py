"""The `convdiff` group: global options, and the one place where errors become one line and an exit code."""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import click

from convdiff import __version__
from convdiff.errors import EXIT_USAGE, ConvdiffError, Terminated, stop_code, stop_word
from convdiff.report.text import one_line


class CliError(click.ClickException):
    """A ConvdiffError at the edge: one line on stderr, its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(one_line(message))
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"convdiff: error: {self.format_message()}", err=True)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `Terminated` (a KeyboardInterrupt) while a command runs, so it stops like Ctrl-C:
    the summary so far, one line, exit 143. The previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _no_numeric_warnings() -> Iterator[None]:
    """Floating-point warnings (overflow, invalid values on Inf/NaN data) never reach a user's terminal:
    every figure they concern is computed and reported as inf/nan on purpose. Targeted: RuntimeWarnings
    that NumPy raises on behalf of convdiff's own code and of NumPy itself, nothing else."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(convdiff|numpy|scipy)(\..*)?$")
        yield


class ConvdiffGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from convdiff.cli.output import stdout_guard

        try:
            with _sigterm_as_interrupt(), _no_numeric_warnings(), stdout_guard():
                return super().invoke(ctx)
        except ConvdiffError as exc:
            if ctx.params.get("traceback"):
                raise
            raise CliError(str(exc), exc.exit_code) from exc
        except KeyboardInterrupt as exc:
            raise CliError(stop_word(exc), stop_code(exc)) from None
        except MemoryError:
            if ctx.params.get("traceback"):
                raise
            raise CliError("out of memory: the estimate did not foresee this comparison's needs; use a smaller "
                           "shape, or a lower --max-memory to be refused before it starts", EXIT_USAGE) from None
        except click.UsageError as exc:
            # A subcommand's usage error is one line too, like every other error, with where to look.
            if ctx.params.get("traceback"):
                raise
            # The whole path below the group: a nested command is named whole ('convdiff probe channels --help').
            where = (f"convdiff {exc.ctx.command_path.split(' ', 1)[1]} --help" if exc.ctx is not None and exc.ctx.parent
                     else "convdiff --help")
            raise CliError(f"{exc.format_message()} (see '{where}')", exc.exit_code) from None


@click.group(cls=ConvdiffGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="convdiff")
@click.option("--traceback", is_flag=True, help="Show the full Python traceback on errors (for bug reports).")
def cli(traceback: bool) -> None:
    """Build the same convolution two ways, compare kernels then outputs, and explain the difference.

    Exit codes: 0 as expected, 1 mismatch or unexpected result, 2 usage or bad input,
    3 a backend could not run, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """
