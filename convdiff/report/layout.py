"""Terminals of any width: a table that cannot fit without cutting a word is stacked instead.

Rich shrinks a table that is too wide by wrapping its cells at spaces, and when a single word (a
number, a case name, a path) is wider than its column it cuts the word with an ellipsis. Nothing a
user reads may be cut, so every table of a report goes through `fit`: at a width where each column
can hold its longest word the table is shown as it is (wrapped at spaces if needed); below that it
is *stacked*, one block per row of `column: value` lines, which fit any width. Every column also
folds instead of cutting, for the one word that is wider than the terminal itself.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


class Fit:
    """A rich table, shown as a table where it fits and stacked as `column: value` lines where not.

    `narrower` are other layouts of the same rows (fewer, merged columns), tried in order when the
    table does not fit; the last one is stacked when none fits.
    """

    def __init__(self, table: Table, *narrower: Table):
        self.table = table
        self.layouts = (table, *narrower)
        for layout in self.layouts:
            for column in layout.columns:
                column.overflow = "fold"  # never "ellipsis": a word wider than the screen wraps onto the next line
                column.no_wrap = False

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for layout in self.layouts:
            sized = _sized(layout, console, options)
            if sized is not None:
                yield sized
                return
        yield stacked(self.layouts[-1])

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        table = Measurement.get(console, options, self.table)
        return Measurement(min(table.minimum, 1), table.maximum)


def _sized(table: Table, console: Console, options: ConsoleOptions) -> Table | None:
    """The table with column widths that keep every word whole at this width, or None if none exist.

    Rich itself shrinks the widest columns first, below their longest word, and then folds or cuts
    that word; here every column gets at least its longest word, and the room left is shared in
    max-min fairly: a column that needs little to be whole (a label) gets it, the long texts wrap.
    """
    unbounded = options.update_width(10**6)
    ranges = [table._measure_column(console, unbounded, column) for column in table.columns]  # noqa: SLF001
    room = options.max_width - table._extra_width  # noqa: SLF001 - the borders and separators
    if sum(r.maximum for r in ranges) <= room:
        return table
    if sum(r.minimum for r in ranges) > room:
        return None
    widths = [r.minimum for r in ranges]
    shares = _fair_shares([r.maximum - r.minimum for r in ranges], room - sum(widths))
    sized = copy.copy(table)
    sized.columns = [dataclasses.replace(column, width=w + s - table._get_padding_width(i))  # noqa: SLF001
                     for i, (column, w, s) in enumerate(zip(table.columns, widths, shares))]
    return sized


def _fair_shares(wants: list[int], spare: int) -> list[int]:
    """Split `spare` so that no column gets more than it wants and the smallest wants are met first."""
    shares = [0] * len(wants)
    remaining = sorted(range(len(wants)), key=lambda i: wants[i])
    while remaining and spare > 0:
        fair = spare // len(remaining)
        first = remaining[0]
        if wants[first] - shares[first] <= fair:
            spare -= wants[first] - shares[first]
            shares[first] = wants[first]
            remaining.pop(0)
        elif fair == 0:  # fewer spare characters than open columns: one each, to the largest wants
            for i in sorted(remaining, key=lambda i: -wants[i])[:spare]:
                shares[i] += 1
            spare = 0
        else:
            for i in remaining:
                shares[i] += fair
            spare -= fair * len(remaining)
    return shares


def fit(table: Table, *narrower: Table) -> Fit:
    return Fit(table, *narrower)


def stacked(table: Table) -> RenderableType:
    """The table as blocks of lines: the first cell of a row as its heading, then `column: value`.

    A two-column table (a label and its value) becomes one `label: value` line per row.
    """
    headers = [_text(column.header) for column in table.columns]
    columns = [list(column.cells) for column in table.columns]
    rows = list(zip(*columns)) if columns else []
    parts: list[RenderableType] = []
    if table.title:
        parts.append(_text(table.title, "bold"))
    two_columns = len(headers) == 2
    for row in rows:
        cells = [_text(cell) for cell in row]
        if two_columns:
            line = Text(" ", overflow="fold")
            if cells[0].plain:
                line.append_text(cells[0]).append(": ")
            parts.append(line.append_text(cells[1]))
            continue
        first = cells[0] if headers[0].plain == "" or not headers[0].plain else _label(headers[0], cells[0])
        parts.append(Text(" ", overflow="fold").append_text(first))
        for header, cell in zip(headers[1:], cells[1:]):
            if not cell.plain:
                continue
            line = Text("   ", overflow="fold")
            if header.plain:
                line.append_text(header).append(": ")
            parts.append(line.append_text(cell))
    if table.caption:
        parts.append(_text(table.caption, "dim"))
    return Group(*parts)


def _label(header: Text, cell: Text) -> Text:
    return Text(overflow="fold").append_text(header).append(": ").append_text(cell)


def _text(cell: object, style: str = "") -> Text:
    """A cell as Text: markup strings parsed, Text kept, anything else by its string."""
    if isinstance(cell, Text):
        text = cell.copy()
    elif isinstance(cell, str):
        text = Text.from_markup(cell)
    else:
        text = Text(str(cell))
    text.overflow = "fold"
    text.no_wrap = False
    if style:
        text.stylize(style)
    return text


def fit_all(renderables: Iterable[RenderableType]) -> list[RenderableType]:
    """Every table among `renderables` wrapped in `fit`."""
    return [fit(r) if isinstance(r, Table) else r for r in renderables]
