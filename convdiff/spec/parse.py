"""Parsers for what users type (CLI options, TOML values, `--set`, sweep values): text in, typed values out.

Each raises BadInputError with a one-line message naming what was malformed. TOML values are taken at
their TOML type: a string is parsed as text, an integer stays an integer, and a boolean is only a
boolean (a string "false" is not one).
"""

from __future__ import annotations

import re
from typing import Any

from convdiff.errors import BadInputError

_INT = re.compile(r"^\s*-?\d+\s*$")


def fmt_values(values: Any) -> str:
    return "x".join(str(v) for v in values)


def parse_ints(text: str | int | list | tuple, what: str) -> tuple[int, ...]:
    """'1,32,32,3', '1x32x32x3', 3, [3, 3] -> tuple of ints."""
    if isinstance(text, bool):
        raise BadInputError(f"{what} must be integers, got {text!r}")
    if isinstance(text, int):
        return (text,)
    if isinstance(text, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in text):
            raise BadInputError(f"{what} must be integers, got {list(text)!r}")
        return tuple(text)
    if not isinstance(text, str):
        raise BadInputError(f"{what} must be integers, got {type(text).__name__} {text!r}")
    parts = re.split(r"[x,]", text.strip().strip("()[]"))
    if not parts or not all(_INT.match(p) for p in parts):
        raise BadInputError(f"malformed {what} '{text}': expected integers separated by ',' or 'x'")
    return tuple(int(p) for p in parts)


def parse_shape(text: str | list | tuple) -> tuple[int, ...]:
    """An input shape as given: N,W,C (rank 1), N,H,W,C or the single-image H,W,C (rank 2), N,D,H,W,C
    (rank 3). Which one it is depends on the spec's rank, so the spec completes it (`ConvSpec`)."""
    values = parse_ints(text, "input shape")
    if not 3 <= len(values) <= 5:
        raise BadInputError(f"malformed input shape '{text}': expected N,H,W,C (or H,W,C; N,W,C with rank 1, "
                            "N,D,H,W,C with rank 3)")
    return values


def parse_per_axis(text: str | int | list | tuple, what: str) -> tuple[int, ...]:
    """One value for every spatial axis, or one per axis (1 to 3 of them): '3', '3,5', [3, 3, 1].

    The spec broadcasts a single value to its rank and checks the count (`ConvSpec`).
    """
    values = parse_ints(text, what)
    if not 1 <= len(values) <= 3:
        raise BadInputError(f"malformed {what} '{text}': expected one integer, or one per spatial axis (at most 3)")
    # The sign is the spec's to check, once the values are broadcast (`kernel size must be positive integers,
    # got 0x0`), so that every way of giving a spec says the same.
    return values


def parse_pair(text: str | int | list | tuple, what: str) -> tuple[int, int]:
    values = parse_ints(text, what)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise BadInputError(f"malformed {what} '{text}': expected one integer or two (h,w)")
    return values  # type: ignore[return-value]


def parse_bool(value: Any, what: str) -> bool:
    """A boolean: true/false (and 1/0, yes/no, on/off) as typed text, or a real boolean.

    A TOML or JSON string is never taken for a boolean: `equal_nan = "false"` would read as true in a
    language that tests strings for emptiness, so it is an error here.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, CliText):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise BadInputError(f"malformed {what} '{value}': expected true or false")
    raise BadInputError(f"{what} must be true or false, got {type(value).__name__} {value!r}")


def parse_single_int(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, CliText):  # a TOML/JSON string where a number belongs: say so, do not guess
        raise BadInputError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    values = parse_ints(value, what)
    if len(values) != 1:  # '0x10' and '1,2' are two numbers to parse_ints, never one
        raise BadInputError(f"malformed {what} '{value}': expected one integer")
    return values[0]


def parse_positive_int(value: Any, what: str) -> int:
    v = parse_single_int(value, what)
    if v <= 0:
        raise BadInputError(f"{what} must be a positive integer, got {v}")
    return v


def parse_choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str):
        raise BadInputError(f"{what} must be one of {', '.join(choices)}, got {type(value).__name__} {value!r}")
    text = value.strip().lower()
    if text not in choices:
        raise BadInputError(f"unknown {what} '{value}' (choose from {', '.join(choices)})")
    return text


def parse_path(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{what} must be a file path, got {value!r}")
    return value.strip()


class CliText(str):
    """Text a user typed on the command line (or in `--set`), where `true`/`1` may spell a boolean.

    Values from TOML and JSON files arrive as their own types; only command-line text is marked so,
    which is what lets `parse_bool` refuse a TOML string "false".
    """
