"""The one rule that decides whether an element passes, and so the verdict, the mismatch count, the
worst positions, the regions and every figure a report counts.

- `elementwise`: `|candidate - reference| <= atol + rtol * |reference|` (relative to the reference).
- `bound`: `|candidate - reference| <= bound[pos]`, the rounding-error bound of the dot product at
  that position (`convdiff.reference.rounding.rounding_bound`, the model of both sides' roundings),
  supplied as an array.

Before either, the non-finite pattern: a position where a side is NaN or infinite passes only when
both sides hold the same infinity, or both NaN under `equal_nan`. Where the bound itself is not
finite (the magnitudes overflowed float64), the bound says nothing: those positions are compared
exactly and counted (`Comparison.exact_compared`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from convdiff.compare.tolerance import Tolerance
from convdiff.errors import BadInputError
from convdiff.reference.rounding import BoundForm, RoundingModel


class RuleKind(StrEnum):
    """Which rule decides the verdict of a comparison (the CLI's `--tolerance`)."""

    BOUND = "bound"
    """Every element within the rounding-error bound of its dot product (the default for convolutions)."""
    ELEMENTWISE = "elementwise"
    """`|candidate - reference| <= atol + rtol * |reference|` with fixed atol/rtol."""


def parse_rule_kind(text: object) -> RuleKind:
    try:
        return RuleKind(str(text).strip().lower())
    except ValueError:
        raise BadInputError(f"unknown tolerance mode '{text}' (choose from "
                            f"{', '.join(m.value for m in RuleKind)})") from None


@dataclass(frozen=True)
class Rule:
    """The deciding rule of one comparison, with its parameters."""

    kind: RuleKind
    tolerance: Tolerance
    """Decides under `elementwise`. Under `bound` it gives only `equal_nan` and the elementwise figures
    (`min_atol`, `elementwise_verdict`), never a count."""
    model: RoundingModel | None = None
    """The rounding model the bound array was made with (`bound` only)."""

    def __post_init__(self) -> None:
        if (self.kind is RuleKind.BOUND) != (self.model is not None):
            raise BadInputError("a bound rule needs the rounding model its bound was made with, and only a bound "
                                "rule has one")

    @classmethod
    def elementwise(cls, tolerance: Tolerance) -> Rule:
        return cls(RuleKind.ELEMENTWISE, tolerance)

    @classmethod
    def bound(cls, model: RoundingModel, tolerance: Tolerance) -> Rule:
        return cls(RuleKind.BOUND, tolerance, model)

    @property
    def equal_nan(self) -> bool:
        return self.tolerance.equal_nan

    @property
    def is_bound(self) -> bool:
        return self.kind is RuleKind.BOUND

    @property
    def description(self) -> str:
        if self.model is not None:
            m = self.model
            return f"{m.dtype} rounding bound ({m.form.value}: {m.description})"
        t = self.tolerance
        return f"|candidate - reference| <= atol + rtol * |reference|, atol={t.atol:g}, rtol={t.rtol:g}"

    def thresholds(self, reference: np.ndarray, bound: np.ndarray | None = None) -> np.ndarray:
        """The largest |candidate - reference| allowed at each position (float64; inf or NaN: compare exactly)."""
        if self.kind is RuleKind.BOUND:
            if bound is None:
                raise BadInputError("the bound rule needs its bound array")
            return np.asarray(bound, dtype=np.float64)
        return self.tolerance.atol + self.tolerance.rtol * np.abs(np.asarray(reference, dtype=np.float64))

    def failing(self, reference: np.ndarray, candidate: np.ndarray, bound: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of the positions that fail this rule (whole arrays; the comparator does the same
        per chunk). Regions and any other section that needs positions use this, so they count as the
        verdict does."""
        ref = np.asarray(reference, dtype=np.float64)
        cand = np.asarray(candidate, dtype=np.float64)
        with np.errstate(all="ignore"):
            finite = np.isfinite(ref) & np.isfinite(cand)
            diff = np.where(finite, np.abs(cand - ref), 0.0)
            limit = self.thresholds(ref, bound)
            exact = ~np.isfinite(limit)
            over = np.where(exact, diff > 0, diff > np.where(exact, 0.0, limit))
            agree = ref == cand  # equal infinities
            if self.equal_nan:
                agree |= np.isnan(ref) & np.isnan(cand)
            return np.where(finite, over, ~agree)


__all__ = ["BoundForm", "Rule", "RuleKind", "parse_rule_kind"]
