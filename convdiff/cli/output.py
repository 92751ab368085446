"""Where results and diagnostics go, decided once: results to stdout, diagnostics to stderr.

`--quiet` prints exactly the verdict line on stdout and nothing else (errors still reach stderr);
the files a command writes are named on stderr ("wrote the HTML report to r.html"), so stdout stays
the report or the JSON document.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any

import click


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
