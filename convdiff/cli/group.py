"""The `convdiff` group: global options, and the one place where errors become one line and an exit code."""

from __future__ import annotations

from typing import Any

import click

from convdiff import __version__
from convdiff.errors import EXIT_INTERRUPTED, ConvdiffError
from convdiff.report.text import one_line


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


@click.group(cls=ConvdiffGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="convdiff")
@click.option("--traceback", is_flag=True, help="Show the full Python traceback on errors (for bug reports).")
def cli(traceback: bool) -> None:
    """Build the same convolution two ways, compare kernels then outputs, and explain the difference.

    Exit codes: 0 as expected, 1 mismatch or unexpected result, 2 usage or bad input,
    3 a backend could not run, 130 interrupted.
    """
