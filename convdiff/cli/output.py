"""Where results and diagnostics go, decided once: results to stdout, diagnostics to stderr.

`--quiet` prints exactly the verdict line on stdout and nothing else (errors still reach stderr);
the files a command writes are named on stderr ("wrote the HTML report to r.html"), so stdout stays
the report or the JSON document.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a writer whose reader went away (`convdiff ... | head`)."""


@contextlib.contextmanager
def stdout_guard() -> Iterator[None]:
    """Results written to standard output, and flushed, inside this block: a reader that went away
    (`| head`) ends the command quietly (exit 141, as SIGPIPE would); a full or failing output
    (`> /dev/full`) is one line, exit 2, instead of a traceback at the interpreter's exit."""
    try:
        try:
            yield
        finally:
            if sys.stdout is not None:  # None when the process was started with standard output closed
                sys.stdout.flush()
    except BrokenPipeError:
        try:  # the interpreter flushes stdout again on exit: point it at nothing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EBADF, errno.EINVAL):
            raise
        from convdiff.errors import BadInputError

        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise BadInputError(f"cannot write to standard output: {os.strerror(exc.errno)}") from None


@dataclass(frozen=True)
class Output:
    format: str
    quiet: bool = False

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

    def show(self, renderable: Any = None, document: dict[str, Any] | None = None, verdict: str | None = None) -> None:
        """The result: the JSON document, the verdict line alone (--quiet), or the renderable."""
        with stdout_guard():
            if self.format == "json":
                click.echo(json.dumps(document, indent=2, allow_nan=False))
            elif self.quiet:
                if verdict is not None:
                    click.echo(verdict)
            else:
                self.console.print(renderable)

    def note(self, text: str) -> None:
        """A line about what was done (a file written), on stderr; nothing under --quiet."""
        if not self.quiet:
            click.echo(text, err=True)

    def write(self, path: str | None, data: bytes, what: str) -> None:
        """Write a file the user asked for (atomically) and say where it went."""
        if path is None:
            return
        from convdiff.data.files import write_atomically

        write_atomically(path, data, what)
        self.note(f"wrote the {what} to {path}")
