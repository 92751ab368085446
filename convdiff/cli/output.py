"""Where results and diagnostics go, decided once: results to stdout, diagnostics to stderr."""

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
