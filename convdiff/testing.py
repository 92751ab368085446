"""Assertions for test suites: `assert_conv_close` fails with the same report the CLI prints.

    from convdiff.testing import assert_conv_close

    assert_conv_close(expected_output, my_output)                      # two arrays
    assert_conv_close("nn", "keras", spec=ConvSpec(strides=(2, 2)))     # a spec and two backends
"""

from __future__ import annotations

import io
from typing import Any

from convdiff.compare import Comparison, Tolerance, Verdict, compare_arrays

__all__ = ["assert_conv_close", "plain_text"]

# The width the CLI uses when its output is not a terminal, so the two texts are the same.
REPORT_WIDTH = 120


def plain_text(renderable: Any, width: int = REPORT_WIDTH) -> str:
    """A rich renderable as plain text: no colour, no terminal control codes."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, no_color=True, color_system=None, force_terminal=False,
                      record=False, highlight=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def render_comparison(c: Comparison) -> Any:
    from rich.console import Group
    from rich.text import Text

    from convdiff.report.tables import comparison_line, render_output, render_worst

    parts = [render_output(c)]
    worst = render_worst(c)
    if worst is not None:
        parts.append(worst)
    parts.append(Text(comparison_line(c)))
    return Group(*parts)


def assert_conv_close(reference: Any, candidate: Any, *, spec: Any = None, atol: float | None = None,
                      rtol: float | None = None, equal_nan: bool = False, top_k: int = 10,
                      shared_kernel: bool = False, expect: tuple[str, ...] = ("identical", "equivalent")) -> Any:
    """Assert that `candidate` matches `reference`.

    Two arrays are compared under `|candidate - reference| <= atol + rtol * |reference|`; two backends
    run on `spec` are compared under the rule `convdiff compare` uses (the rounding bound, unless atol
    and rtol are given).

    Args:
        reference: The reference array, or with `spec` a backend name (`"numpy"`, `"nn"`, ...).
        candidate: The candidate array, or with `spec` a backend name.
        spec: A `ConvSpec` (or a dict of spec fields as in experiment files) both backends run.
        atol: Absolute tolerance, with `rtol`; neither picks the default of the lower dtype.
        rtol: Relative tolerance (a multiple of |reference|), with `atol`.
        equal_nan: NaN at the same position on both sides counts as equal.
        top_k: How many worst positions the report lists.
        shared_kernel: With `spec`, give the candidate the reference's kernel.
        expect: Verdicts that pass.

    Returns:
        The `Comparison` (arrays) or `CaseResult` (spec and backends), when it passes.

    Raises:
        AssertionError: whose message is the report the CLI prints (plain text).
    """
    expected = {Verdict(v) for v in expect}
    if spec is None:
        result = compare_arrays(reference, candidate, atol=atol, rtol=rtol, equal_nan=equal_nan, top_k=top_k)
        if result.verdict not in expected:
            raise AssertionError("\n" + plain_text(render_comparison(result)))
        return result
    from convdiff.data.specs import build_spec
    from convdiff.errors import BadInputError
    from convdiff.pipeline import Case, CaseOptions, SideConfig, execute
    from convdiff.report.tables import render_case
    from convdiff.spec.convspec import ConvSpec
    from convdiff.spec.fields import parse_fields

    if not isinstance(spec, ConvSpec):
        spec = build_spec(parse_fields(dict(spec)))
    if (atol is None) != (rtol is None):
        raise BadInputError("give atol and rtol together, or neither")
    tolerance = Tolerance(atol, rtol, equal_nan) if atol is not None else None  # type: ignore[arg-type]
    options = CaseOptions(tolerance=tolerance, shared_kernel=shared_kernel, top_k=top_k, equal_nan=equal_nan)
    case = execute(Case("compare", SideConfig(reference, spec), SideConfig(candidate, spec), options))
    if case.verdict not in expected:
        raise AssertionError("\n" + plain_text(render_case(case)))
    return case
