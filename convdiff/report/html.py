"""The HTML report: one self-contained page per command, rendered from jinja2 templates (package data,
`convdiff/report/templates/`) with autoescape on, since case, experiment and file names are user input.

Self-contained means: no script, no font, no stylesheet or image fetched from anywhere. Figures are
SVG embedded as data URIs, styles are inline, and a Content-Security-Policy (`default-src 'none'`)
forbids the browser every other fetch. The tables are the same rich tables the terminal shows,
converted cell by cell, so the page and the terminal never disagree; nothing here computes a figure.

A command adds `--report` with `cli.options.report_option` and one call of a `*_page` function here.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from convdiff.errors import BackendUnavailableError, install_command
from convdiff.pipeline import CaseResult
from convdiff.report import tables
from convdiff.report.layout import Fit

INSTALL = install_command("report")
COLOURS = ("red", "green", "yellow", "blue", "magenta", "cyan")


def require_report_extra() -> None:
    """Refuse (exit 3) before any work when jinja2 or matplotlib (the `report` extra) is not installed."""
    from convdiff.report.figures import require_matplotlib

    if importlib.util.find_spec("jinja2") is None:
        raise BackendUnavailableError(f"the HTML report needs jinja2, which is not installed: {INSTALL}")
    require_matplotlib()


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("convdiff.report", "templates"),
                              autoescape=jinja2.select_autoescape(("html", "j2"), default=True),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_page(template: str, **context: Any) -> bytes:
    """A page of `template` (a file in templates/) as UTF-8 bytes."""
    from convdiff import __version__

    return _environment().get_template(template).render(version=__version__, **context).encode("utf-8")


# --- rich renderables as HTML --------------------------------------------------------------------


def _markup() -> Any:
    from markupsafe import Markup

    return Markup


@functools.cache
def _console() -> Console:
    return Console(file=io.StringIO(), width=10**6, color_system=None, force_terminal=False)


def text_html(text: Text | str) -> Any:
    """Rich text (or markup) as escaped HTML spans: bold, dim and the colours become CSS classes."""
    from markupsafe import escape

    if isinstance(text, str):
        text = Text.from_markup(text)
    parts = []
    for segment in text.render(_console(), end=""):
        content = escape(segment.text)
        style = segment.style
        classes = []
        if style is not None:
            if style.bold:
                classes.append("b")
            if style.dim:
                classes.append("dim")
            if style.color is not None and style.color.name in COLOURS:
                classes.append(f"c-{style.color.name}")
        parts.append(f'<span class="{" ".join(classes)}">{content}</span>' if classes else str(content))
    return _markup()("".join(parts))


def table_html(table: Table) -> Any:
    rows = []
    columns = list(table.columns)
    header = "".join(f"<th>{text_html(_cell(c.header))}</th>" for c in columns)
    cells = [list(c.cells) for c in columns]
    for row in zip(*cells):
        rows.append("<tr>" + "".join(
            f'<td class="{"num" if c.justify == "right" else ""}">{text_html(_cell(v))}</td>'
            for c, v in zip(columns, row)) + "</tr>")
    caption = f"<caption>{text_html(_cell(table.title))}</caption>" if table.title else ""
    note = f'<p class="dim">{text_html(_cell(table.caption))}</p>' if table.caption else ""
    head = f"<thead><tr>{header}</tr></thead>" if any(_cell(c.header).plain for c in columns) else ""
    return _markup()(f"<table>{caption}{head}<tbody>{''.join(rows)}</tbody></table>{note}")


def _cell(value: object) -> Text:
    if isinstance(value, Text):
        return value
    if isinstance(value, str):
        return Text.from_markup(value)
    return Text("" if value is None else str(value))


def to_html(renderable: object) -> Any:
    """A rich renderable of the report (tables, texts, groups of them) as HTML."""
    Markup = _markup()
    if renderable is None:
        return Markup("")
    if isinstance(renderable, Fit):
        return table_html(renderable.table)
    if isinstance(renderable, Table):
        return table_html(renderable)
    if isinstance(renderable, Group):
        return Markup("").join(to_html(r) for r in renderable.renderables)
    text = _cell(renderable)
    if "\n" in text.plain:
        return Markup(f'<pre class="map">{text_html(text)}</pre>')
    return Markup(f"<p>{text_html(text)}</p>")


# --- figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureHtml:
    title: str
    source: str
    """A `data:image/svg+xml;base64,...` URI."""


FIGURE_TITLES = {"DifferenceMap": "Difference per position, scaled to the limit",
                 "ErrorScatter": "Error against magnitude",
                 "RatioHistogram": "Histogram of |diff| / limit",
                 "KernelMosaic": "Kernels: reference, candidate, difference",
                 "Propagation": "Activation std per layer",
                 "ModelsResult": "Added and propagated error per paired layer, as a fraction of its rounding bound"}


def figure_html(data: object) -> FigureHtml:
    from convdiff.report.figures import render

    svg = render(data, "svg")
    return FigureHtml(FIGURE_TITLES.get(type(data).__name__, type(data).__name__),
                      "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"))


# --- sections and pages --------------------------------------------------------------------------


def case_section(case: CaseResult, notes: Sequence[str] = (), heading: str | None = None) -> dict[str, Any]:
    """What the page shows of one comparison, in the order a reader needs it: the verdict, the
    tables, the figures, the diagnosis, each side's spec and notes."""
    from convdiff.report.figures import case_figures

    figures = [] if case.verdict.value == "identical" else [figure_html(f) for f in case_figures(case).present()]
    results = [tables.render_output(case.output), tables.render_precision(case), tables.render_kernels(case),
               tables.render_worst(case.output)]
    if not case.inputs_identical:
        results.insert(0, Text(tables.inputs_warning(case), style="bold yellow"))
    if case.regions is not None:
        results.append(tables.render_regions(case.regions))
    side_notes = [f"note ({run.role}): {note}" for run in case.sides for note in run.result.notes]
    side_notes += [f"note: {note}" for note in notes]
    ref, cand = case.sides
    return {
        "heading": heading or f"{case.name}: {ref.config.backend} ({ref.result.compute_dtype}) vs "
                              f"{cand.config.backend} ({cand.result.compute_dtype})",
        "verdict": tables.verdict_line(case),
        "passed": bool(case),
        "tables": [to_html(r) for r in results if r is not None],
        "figures": figures,
        "identical": case.verdict.value == "identical",
        "diagnosis": to_html(tables.render_diagnosis(case.diagnosis)) if case.diagnosis else None,
        "spec": to_html(tables.render_spec(case)),
        "notes": side_notes,
    }


def environment_rows(environment: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in environment.items()]


def compare_page(case: CaseResult, environment: dict[str, Any]) -> bytes:
    """The report of `convdiff compare`."""
    section = case_section(case)
    ref, cand = case.sides
    title = (f"convdiff compare: {ref.config.backend} ({ref.result.compute_dtype}) vs {cand.config.backend} "
             f"({cand.result.compute_dtype})")
    return render_page("compare.html.j2", title=title, verdict=section["verdict"],
                       ok=section["passed"], case=section, environment=environment_rows(environment))


def run_page(outcome: Any, summary: object, verdict: str, environment: dict[str, Any],
             interrupted: bool = False) -> bytes:
    """The report of `convdiff run`: the summary table, then every case in full."""
    cases = [case_section(o.result, o.notes, f"{o.experiment} / {o.case.name}") | {
        "expected": o.expected, "as_expected": o.as_expected} for o in outcome.outcomes]
    return render_page("run.html.j2", title="convdiff run", verdict=verdict, ok=outcome.ok and not interrupted,
                       summary=to_html(summary), cases=cases, environment=environment_rows(environment))


def sweep_page(plan: Any, summary: Any, outcomes: Sequence[Any], rendered_summary: object, verdict: str,
               environment: dict[str, Any]) -> bytes:
    """The report of `convdiff sweep`: the summary, every config's line, and the worst config of each
    failure group in full."""
    from convdiff.report.sweep import outcome_line

    configs = [{"name": o.config.name, "status": o.status, "line": outcome_line(o),
                "cause": o.cause.key if o.cause else ""} for o in outcomes]
    worst = [case_section(g.worst.result, heading=f"{g.cause}: worst of {g.count} ({g.worst.config.name})")
             for g in summary.groups if g.worst.result is not None]
    return render_page("sweep.html.j2", title=f"convdiff sweep: {plan.reference} vs {plan.candidate}",
                       verdict=verdict, ok=summary.ok, summary=to_html(rendered_summary), configs=configs,
                       worst=worst, environment=environment_rows(environment))


def models_page(result: Any, environment: dict[str, Any]) -> bytes:
    """The HTML report of `convdiff models`: the terminal's tables and the error-per-layer figure."""
    from convdiff.report.models import render_models, verdict_line

    return render_page("models.html.j2", title=f"convdiff models: {result.reference.description} vs "
                       f"{result.candidate.description}", verdict=verdict_line(result), ok=bool(result),
                       body=to_html(render_models(result)), figure=figure_html(result),
                       environment=environment_rows(environment))
