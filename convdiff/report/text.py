"""How numbers, indices and shapes are written in every report (tables, JSON verdict lines, JUnit)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    if x == 0:
        return "0"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.3e}" if abs(x) < 1e-3 or abs(x) >= 1e6 else f"{x:.6g}"


def fmt_index(index: Sequence[int] | None) -> str:
    return "-" if index is None else "(" + ", ".join(str(i) for i in index) + ")"


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def fmt_percent(ratio: float) -> str:
    if math.isinf(ratio) or math.isnan(ratio):
        return str(ratio)
    return f"{100 * ratio:.2g}%"


def fmt_times(ratio: float, what: str = "the bound") -> str:
    if math.isnan(ratio):
        return f"an undefined multiple of {what} (no finite position to measure)"
    if math.isinf(ratio):
        return f"infinitely many times {what} (it is 0 there)"
    return f"{ratio:.3g} times {what}"


def one_line(message: str) -> str:
    """The message on one printable line: newlines and control characters a user typed are escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)
