"""The elementwise tolerance `|candidate - reference| <= atol + rtol * |reference|` and its per-dtype defaults."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from convdiff.errors import BadInputError


@dataclass(frozen=True)
class Tolerance:
    """`|candidate - reference| <= atol + rtol * |reference|`, with NaN == NaN when `equal_nan`."""

    atol: float
    rtol: float
    equal_nan: bool = False

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise BadInputError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise BadInputError(f"{name} must be finite and >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "equal_nan", bool(self.equal_nan))


# The loosest first: `default_tolerance` picks the first of these among the dtypes compared.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "bfloat16": Tolerance(atol=1e-5, rtol=1.6e-2),
    "float16": Tolerance(atol=1e-5, rtol=1e-3),
    "float32": Tolerance(atol=1e-5, rtol=1.3e-6),
    "float64": Tolerance(atol=1e-7, rtol=1e-7),
}
EXACT = Tolerance(atol=0.0, rtol=0.0)


def default_tolerance(*dtypes: object) -> Tolerance:
    """The default tolerance for comparing arrays of these dtypes.

    Args:
        *dtypes: NumPy dtype names (`"float32"`, `"bfloat16"`, ...); dtype objects also work.

    Returns:
        The entry of `DEFAULT_TOLERANCES` for the lowest-precision floating dtype among
        `dtypes`, or an exact tolerance (0, 0) when none is floating (integers, booleans).
    """
    names = {str(getattr(dtype, "name", dtype)) for dtype in dtypes}
    names |= {"float32" for n in names if n == "tf32"}  # TF32 stores float32
    for name, tolerance in DEFAULT_TOLERANCES.items():
        if name in names:
            return tolerance
    return EXACT


def resolve_tolerance(atol: float | None, rtol: float | None, tolerance: Tolerance | None, equal_nan: bool,
                      *dtypes: object) -> Tolerance:
    """One tolerance from the ways a caller can give it: both atol and rtol, a Tolerance, or neither."""
    if (atol is None) != (rtol is None):
        given, missing = ("atol", "rtol") if rtol is None else ("rtol", "atol")
        raise BadInputError(f"{given} was given without {missing}: give both, or neither")
    if tolerance is not None:
        if atol is not None:
            raise BadInputError("give either tolerance= or atol=/rtol=, not both")
        if equal_nan and not tolerance.equal_nan:
            raise BadInputError("equal_nan=True contradicts tolerance.equal_nan=False")
        return tolerance
    if atol is not None:
        return Tolerance(atol, rtol, equal_nan)  # type: ignore[arg-type]
    default = default_tolerance(*dtypes)
    return Tolerance(default.atol, default.rtol, equal_nan)
