"""Tables at any width, on exact text: whole words at every width, a narrower layout, then stacking."""

from rich.console import Console
from rich.table import Table

from convdiff.report.layout import _fair_shares, fit


def text_at(renderable, width):
    console = Console(width=width, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in capture.get().splitlines())


def table(*columns):
    t = Table(title="T", title_justify="left", show_edge=False)
    for c in columns:
        t.add_column(c)
    return t


def test_wide_enough_the_table_is_unchanged():
    t = table("metric", "value")
    t.add_row("max abs diff", "8.414e+06 at (0, 3, 3, 1)")
    assert text_at(fit(t), 60) == text_at(t, 60)


def test_words_are_never_cut_and_labels_keep_their_line():
    t = table("metric", "value")
    t.add_row("max abs diff", "8.414e+06 at (0, 3, 3, 1) relative to the reference")
    assert text_at(fit(t), 34) == (
        "T\n"
        " metric       ┃ value\n"
        "━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━\n"
        " max abs diff │ 8.414e+06 at (0,\n"
        "              │ 3, 3, 1) relative\n"
        "              │ to the reference")
    alone = table("metric", "value")
    alone.add_row("max abs diff", "8.414e+06 at (0, 3, 3, 1) relative to the reference")
    assert "…" in text_at(alone, 20)  # what rich alone does, and fit must not


def test_too_narrow_for_any_layout_the_rows_stack():
    t = table("experiment", "case", "got")
    t.add_row("caffe-port", "stride2-pad1-vs-same", "shape_mismatch")
    narrow = table("experiment / case", "got")
    narrow.add_row("caffe-port / stride2-pad1-vs-same", "shape_mismatch")
    assert text_at(fit(t, narrow), 52) == text_at(t, 52)
    assert text_at(fit(t, narrow), 45) == text_at(narrow, 45)
    assert text_at(fit(t, narrow), 30) == (
        "T\n"
        " caffe-port /\n"
        "stride2-pad1-vs-same:\n"
        "shape_mismatch")


def test_stacked_rows_name_every_column():
    t = table("layer", "std", "flag")
    t.add_row("1", "8.414e+06", "exploding")
    t.add_row("2", "1.5e+07", "")
    assert text_at(fit(t), 12) == (
        "T\n"
        " layer: 1\n"
        "   std:\n"
        "8.414e+06\n"
        "   flag:\n"
        "exploding\n"
        " layer: 2\n"
        "   std:\n"
        "1.5e+07")


def test_fair_shares_meet_small_wants_first():
    assert _fair_shares([2, 30, 30], 20) == [2, 9, 9]
    assert _fair_shares([2, 3], 100) == [2, 3]
    assert _fair_shares([5, 5, 5], 2) == [1, 1, 0]  # fewer characters than columns: one each, in order
