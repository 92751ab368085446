"""`convdiff explain`: the variants tried, the explanation, and the `convdiff compare` options that
reproduce it, as a table, JSON and an HTML page. Nothing computed here."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from convdiff.analysis.explain import Candidate, Explanation
from convdiff.report.json import strict
from convdiff.report.layout import fit
from convdiff.report.text import fmt, fmt_shape
from convdiff.spec.convspec import Padding
from convdiff.spec.layouts import input_layout_for, kernel_layout_for


@dataclass(frozen=True)
class ExplainFiles:
    """The files `explain` read, as the user named them (the options name them again)."""

    input: str
    weights: str
    output: str
    bias: str | None = None
    """A separate bias file (`--bias PATH`); None when the weights .npz holds the bias, or there is none."""
    output_layout: str = "NHWC"


def compare_options(e: Explanation, c: Candidate, files: ExplainFiles) -> tuple[str, ...]:
    """The `convdiff compare` options of the spec of `c`: the files, then every field that is not the default."""
    spec = e.spec_of(c)
    args = ["--input", files.input]
    if c.input_layout != input_layout_for(c.rank):
        args += ["--input-layout", c.input_layout]
    args += ["--weights", files.weights]
    if c.weights_layout != kernel_layout_for(c.rank):
        args += ["--weights-layout", c.weights_layout]
    if c.rank != 2:
        args += ["--rank", str(c.rank)]
    args += ["--strides", _axes(c.strides), "--padding", _padding(c)]
    if any(d != 1 for d in c.dilation):
        args += ["--dilation", _axes(c.dilation)]
    if c.groups != 1:
        args += ["--groups", str(c.groups)]
    if c.convention != "correlation":
        args += ["--convention", c.convention]
    if c.bias in ("none", "absent"):
        args.append("--no-bias")
    elif files.bias is not None:
        args += ["--bias", files.bias]
    args += ["--dtype", spec.dtype if c.arithmetic else "float64"]
    return tuple(args)


def _axes(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else ",".join(map(str, values))


def _padding(c: Candidate) -> str:
    if c.padding in ("same", "valid"):
        return c.padding
    return str(Padding.from_pairs(c.pads))


def padding_words(c: Candidate) -> str:
    names = {"same": "TF SAME", "valid": "valid", "same_lower": "SAME_LOWER", "symmetric": "symmetric",
             "explicit": "explicit"}
    pads = "" if c.padding == "valid" else f" {Padding.from_pairs(c.pads)}"
    also = f" (= {', '.join(names[a] for a in c.also)})" if c.also else ""
    return f"{names[c.padding]}{pads}{also}"


def bias_words(c: Candidate) -> str:
    return {"none": "missing", "once": "once", "twice": "twice", "absent": "-"}[c.bias]


def variant_words(c: Candidate) -> str:
    """One line: what this variant reads the files as and computes."""
    parts = [f"input {c.input_layout}", f"kernel {c.weights_layout}"]
    if c.groups != 1:
        parts.append(f"groups {c.groups}")
    parts += [c.convention if c.convention != "convolution" else "true convolution",
              f"strides {_axes(c.strides)}", f"padding {padding_words(c)}"]
    if any(d != 1 for d in c.dilation):
        parts.append(f"dilation {_axes(c.dilation)}")
    if c.bias != "absent":
        parts.append(f"bias {bias_words(c)}")
    return ", ".join(parts)


def verdict_line(e: Explanation) -> str:
    best = e.best
    if best is None:
        closest = min(e.candidates, key=lambda c: c.residual, default=None)
        tail = f"; closest: {variant_words(closest)}, residual {fmt(closest.residual)}" if closest else ""
        return f"NOT EXPLAINED: none of {e.tried} variants is at rounding level{tail}"
    others = len(e.indistinguishable)
    also = f" ({others} other variant(s) fit as well)" if others else ""
    return (f"EXPLAINED: {variant_words(best)}, {best.arithmetic} arithmetic, within its rounding bound "
            f"(max {fmt(best.bound_ratio)} of it); {e.tried} variants tried{also}")


def render_explanation(e: Explanation, files: ExplainFiles, show_all: bool = False) -> RenderableType:
    """The variants (the checked ones, or every one with `show_all`), the notes, then `closing_lines`."""
    rows = list(e.candidates) if show_all else [c for c in e.candidates if c.checked]
    title = (f"variants tried: {e.tried} (input {fmt_shape(e.input_shape)}, kernel {fmt_shape(e.kernel_shape)}, "
             f"output {fmt_shape(e.output_shape)}; {e.structures} convolutions computed, {e.checked} checked under "
             "the rounding bounds)")
    columns = ["input", "kernel"]
    if any(c.groups != 1 for c in rows):
        columns.append("groups")
    columns += ["convention", "strides"]
    if any(d != 1 for c in rows for d in c.dilation):
        columns.append("dilation")
    columns += ["padding", "bias"]
    cells = {"input": lambda c: c.input_layout, "kernel": lambda c: c.weights_layout, "groups": lambda c: str(c.groups),
             "convention": lambda c: c.convention, "strides": lambda c: _axes(c.strides),
             "dilation": lambda c: _axes(c.dilation), "padding": lambda c: escape(padding_words(c)),
             "bias": bias_words, "variant": lambda c: escape(variant_words(c))}
    tables = [_variants_table(title, rows, columns, cells), _variants_table(title, rows, ["variant"], cells)]
    parts: list[RenderableType] = [fit(*tables)]
    if not show_all and len(rows) < len(e.candidates):
        parts.append(Text(f"{len(e.candidates) - len(rows)} more variants with larger residuals (--all, or "
                          "--format json, lists every one)", style="dim"))
    parts.append(Text("residual: max |output - recomputed| / max |output| in float64; x bound: the largest "
                      "|output - recomputed| / rounding bound of the arithmetic named (or the coarsest tried); "
                      "screened: the difference exceeds the largest bound any output can have (>: at least)",
                      style="dim"))
    parts.extend(Text(f"note: {n}", style="dim") for n in e.notes)
    return Group(*parts, *closing_lines(e, files))


class ShellCommand:
    """A command line that can be copied at any terminal width: broken between arguments, each line but the
    last ending in a shell continuation (` \\`)."""

    def __init__(self, lead: str, words: Sequence[str], style: str = "bold"):
        self.lead, self.style = lead, style
        # An option and its value stay on one line.
        self.words: list[str] = []
        for word in map(shlex.quote, words):
            if self.words and self.words[-1].startswith("--") and " " not in self.words[-1] \
                    and not word.startswith("--"):
                self.words[-1] += " " + word
            else:
                self.words.append(word)

    @property
    def plain(self) -> str:
        return " ".join([self.lead, *self.words])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        lines, line = [], self.lead
        for word in self.words:
            if len(line) + 1 + len(word) + 2 > width and line.strip():
                lines.append(line + " \\")
                line = "    " + word
            else:
                line += " " + word
        lines.append(line)
        for text in lines:
            yield Text(text, style=self.style, no_wrap=True, overflow="ignore")


def closing_lines(e: Explanation, files: ExplainFiles) -> list[RenderableType]:
    """After the table: the options that reproduce the explanation, what fits as well, the verdict."""
    lines: list[RenderableType] = []
    best = e.best
    if best is not None:
        lines.append(Text("reproduce with:", style="bold"))
        lines.append(ShellCommand("  convdiff compare", compare_options(e, best, files)))
        if best.bias == "twice":
            lines.append(Text("note: the bias is added twice; no spec option says so: a bias file holding twice the "
                              "bias (--bias) reproduces it", style="yellow"))
        lines.extend(Text(f"fits as well (this data cannot tell them apart): {variant_words(other)}", style="yellow")
                     for other in e.indistinguishable)
    lines.append(Text(verdict_line(e), style="bold green" if e else "bold red"))
    return lines


def _variants_table(title: str, rows: list[Candidate], columns: list[str], cells: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in (*columns, "residual", "confirmed in", "x bound"):
        table.add_column(column, justify="right" if column in ("residual", "x bound") else "left", overflow="fold")
    for c in rows:
        table.add_row(*(cells[column](c) for column in columns), fmt(c.residual), _within(c),
                      (">" if c.screened else "") + fmt(c.bound_ratio) if c.checked else "-",
                      style="green" if c.confirmed else None)
    return table


def _within(c: Candidate) -> str:
    if not c.checked:
        return "not checked"
    if c.screened:
        return "none (screened)"
    return ", ".join(c.within) or "none"


def candidate_json(e: Explanation, c: Candidate, files: ExplainFiles) -> dict[str, Any]:
    doc = {"input_layout": c.input_layout, "weights_layout": c.weights_layout, "groups": c.groups,
           "convention": c.convention, "strides": c.strides, "dilation": c.dilation, "padding": c.padding,
           "pads": c.pads, "same_as_padding": c.also, "bias": c.bias, "residual": c.residual,
           "checked": c.checked, "screened": c.screened, "confirmed": c.confirmed, "arithmetic": c.arithmetic,
           "within": c.within,
           "bound_ratio": c.bound_ratio}
    if c.confirmed:
        doc["compare_options"] = compare_options(e, c, files)
    return doc


def explanation_json(e: Explanation, files: ExplainFiles, schema: int) -> dict[str, Any]:
    best = e.best
    return strict({
        "schema": schema, "explained": bool(e), "verdict": verdict_line(e),
        "files": {"input": files.input, "weights": files.weights, "bias": files.bias, "output": files.output,
                  "output_layout": files.output_layout},
        "input_shape": e.input_shape, "kernel_shape": e.kernel_shape, "output_shape": e.output_shape,
        "bound_form": e.form.value, "tried": e.tried, "convolutions": e.structures, "checked": e.checked,
        "explanation": None if best is None else candidate_json(e, best, files),
        "indistinguishable": [candidate_json(e, c, files) for c in e.indistinguishable],
        "candidates": [candidate_json(e, c, files) for c in e.candidates],
        "notes": e.notes,
    })


def explain_page(e: Explanation, files: ExplainFiles, environment: dict[str, Any]) -> bytes:
    """The HTML report of `convdiff explain`: the same tables as the terminal (every variant)."""
    from convdiff.report.html import environment_rows, render_page, to_html

    body = Group(*(Text(r.plain, style=r.style) if isinstance(r, ShellCommand) else r
                   for r in render_explanation(e, files, show_all=True).renderables))
    return render_page("explain.html.j2", title=f"convdiff explain: {files.output}", verdict=verdict_line(e),
                       ok=bool(e), body=to_html(body),
                       environment=environment_rows(environment))
