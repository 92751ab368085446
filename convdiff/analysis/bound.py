"""Precision analyses of a comparison: each side against float64 (which side is wrong?), the ULP
distance between the sides, and whether a float32 result is what TF32 arithmetic computes.

Each measurement is a comparison under the bound rule (`convdiff.compare`), so it counts the way
the verdict does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from convdiff.compare import Comparison, Rule, Tolerance, compare_arrays
from convdiff.errors import BadInputError
from convdiff.reference.convolution import convolve
from convdiff.reference.rounding import (Arithmetic, BoundForm, require_real, round_to_tf32, rounding_bound,
                                         tf32_reference)
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import np_dtype


def bound_comparison(reference: np.ndarray, candidate: np.ndarray, x: np.ndarray, kernel: np.ndarray,
                     spec: ConvSpec, arithmetic: Arithmetic | str | Sequence[Arithmetic],
                     form: BoundForm = BoundForm.PROBABILISTIC, bias: np.ndarray | None = None,
                     equal_nan: bool = False, top_k: int = 10, exact: np.ndarray | None = None) -> Comparison:
    """`candidate` against `reference` under the rounding bound of the convolution of `x` and `kernel`.

    Args:
        arithmetic: how the side(s) computed (a dtype name: a CPU framework computing in it); with one
            side, `reference` is taken as exact.
        exact: the exact output of `x`, `kernel` and `bias`, when already computed.
    """
    bound, model = rounding_bound(x, kernel, spec, arithmetic, form, bias, exact=exact)
    return compare_arrays(reference, candidate, rule=Rule.bound(model, Tolerance(0.0, 0.0, equal_nan)), bound=bound,
                          top_k=top_k)


@dataclass(frozen=True)
class SideError:
    """One side's output against float64 recomputed from ITS OWN input, kernel and bias."""

    against_float64: Comparison
    """The side's output (candidate) against float64 (reference), under the rounding bound of the side's dtype."""

    @property
    def within(self) -> bool:
        return bool(self.against_float64)

    @property
    def max_abs(self) -> float:
        return self.against_float64.max_abs_diff

    @property
    def rmse(self) -> float:
        return self.against_float64.rmse

    @property
    def max_ratio(self) -> float:
        return self.against_float64.max_ratio

    @property
    def dtype(self) -> str:
        model = self.against_float64.rule.model
        return model.dtype if model is not None else "?"


def side_error(output: np.ndarray, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, spec: ConvSpec,
               arithmetic: Arithmetic | str, form: BoundForm = BoundForm.PROBABILISTIC) -> SideError:
    """Measure one side against the float64 NumPy convolution of its own input and kernel, under the
    rounding bound of its own arithmetic (a dtype name: a CPU framework computing in it)."""
    output = require_real(output, "output values")
    with np.errstate(over="ignore", invalid="ignore"):
        exact = convolve(x, kernel, spec, bias)
    if np.shape(output) != exact.shape:
        raise BadInputError(f"output shape {np.shape(output)} differs from the float64 recomputation {exact.shape}")
    return SideError(bound_comparison(exact, output, x, kernel, spec, arithmetic, form, bias, top_k=0, exact=exact))


class Attribution(StrEnum):
    CANDIDATE = "candidate"
    REFERENCE = "reference"
    BOTH = "both"
    NEITHER = "neither"


@dataclass(frozen=True)
class ThreeWay:
    """Each side measured against float64: which one is wrong?"""

    reference: SideError
    candidate: SideError
    same_convolution: bool = True
    """Whether both sides were asked for the same convolution of the same input and kernel; when not (a
    different convention, padding, kernel, ...), both can be right and still differ."""

    @property
    def wrong(self) -> Attribution:
        r, c = self.reference.within, self.candidate.within
        if r and c:
            return Attribution.NEITHER
        if r:
            return Attribution.CANDIDATE
        if c:
            return Attribution.REFERENCE
        return Attribution.BOTH

    @property
    def summary(self) -> str:
        w = self.wrong
        if w is Attribution.NEITHER and not self.same_convolution:
            return ("both sides are within their precision of the float64 reference of their own spec: each "
                    "computes what it was asked, and they were asked for different convolutions")
        if w is Attribution.NEITHER:
            return ("both sides are within their precision of the float64 reference: "
                    "they simply rounded differently")
        if w is Attribution.BOTH:
            return "both sides exceed their rounding bound against the float64 reference"
        bad = self.candidate if w is Attribution.CANDIDATE else self.reference
        return (f"the {w.value} is wrong: it exceeds its {bad.dtype} rounding bound against "
                f"the float64 reference {_times(bad.max_ratio)}, the other side is within its bound")


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "where the bound is 0"
    return f"{ratio:.3g} times"


# --- ULP distance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UlpDistance:
    """Distance between the two sides in units in the last place of `dtype`."""

    dtype: str
    max: int
    median: float
    compared: int
    """Positions finite on both sides (the others are left out)."""


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def ulp_distance(reference: np.ndarray, candidate: np.ndarray, dtype: str) -> UlpDistance:
    """Max and median ULP distance after casting both sides to `dtype`.

    The bit patterns are mapped sign-magnitude -> ordered integers (negative floats mirrored below
    zero, so +0 and -0 coincide) and subtracted. `tf32` is measured on TF32-rounded float32 values,
    in TF32 ULPs (2^13 float32 ULPs each).
    """
    shift = 0
    reference, candidate = require_real(reference, "reference values"), require_real(candidate, "candidate values")
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "tf32":
            reference, candidate = round_to_tf32(reference), round_to_tf32(candidate)
            np_t, shift = np.dtype(np.float32), 13
        else:
            np_t = np_dtype(dtype)
        a = np.asarray(reference).astype(np_t, copy=False)
        b = np.asarray(candidate).astype(np_t, copy=False)
    finite = _finite(a) & _finite(b)
    if not finite.all():
        a, b = a[finite], b[finite]
    if a.size == 0:
        return UlpDistance(dtype, 0, 0.0, 0)
    if a.shape == b.shape and np.array_equal(a.view(_UINT[a.itemsize]), b.view(_UINT[b.itemsize])):
        return UlpDistance(dtype, 0, 0.0, int(a.size))  # the same bits: no distance to measure
    d = _ordered(a, shift)
    np.subtract(d, _ordered(b, shift), out=d)
    np.abs(d, out=d)
    return UlpDistance(dtype, int(d.max()), float(np.median(d)), int(d.size))


def _finite(values: np.ndarray) -> np.ndarray:
    # NumPy's own floats answer isfinite directly; others (bfloat16) through float64.
    native = values.dtype in (np.float16, np.float32, np.float64)
    return np.isfinite(values if native else values.astype(np.float64))


def _ordered(values: np.ndarray, shift: int) -> np.ndarray:
    """The sign-magnitude bits as ordered int64 (a new array; computed in place to spare temporaries)."""
    bits = values.view(_UINT[values.dtype.itemsize]).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * values.dtype.itemsize - 1)
    negative = (bits & sign).astype(bool)
    bits &= ~sign
    magnitude = bits.view(np.int64)  # below 2^63 once the sign is cleared: the same value
    if shift:
        magnitude >>= shift
    np.negative(magnitude, out=magnitude, where=negative)
    return magnitude


# --- TF32 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tf32Consistency:
    """Is a float32 result explained by TF32 inputs (GPU tensor cores) rather than a bug?"""

    against_tf32: Comparison
    """The result against the TF32-emulated float64 reference, under the float32 rounding bound."""
    against_float32: Comparison
    """The result against the plain float64 reference, under the float32 rounding bound."""

    @property
    def consistent(self) -> bool:
        """Within float32 rounding of the TF32 reference while failing the plain float32 bound."""
        return bool(self.against_tf32) and not self.against_float32

    def __bool__(self) -> bool:
        return self.consistent

    @property
    def summary(self) -> str:
        if self.consistent:
            return (f"consistent with TF32: within float32 rounding of the TF32-emulated reference "
                    f"(max {self.against_tf32.max_ratio:.3g} of bound), outside the plain float32 bound "
                    f"(up to {self.against_float32.max_ratio:.3g} times)")
        if self.against_float32:
            return "within the plain float32 bound: no need for TF32 to explain it"
        return (f"not TF32: exceeds float32 rounding of the TF32-emulated reference "
                f"up to {self.against_tf32.max_ratio:.3g} times")


def tf32_consistency(candidate: np.ndarray, x: np.ndarray, kernel: np.ndarray, spec: ConvSpec,
                     bias: np.ndarray | None = None, form: BoundForm = BoundForm.PROBABILISTIC,
                     arithmetic: Arithmetic | None = None) -> Tf32Consistency:
    """Check whether `candidate` is what a float32 convolution with TF32 inputs computes.

    TF32 rounds the multiplicands (input and kernel) to 10 mantissa bits and accumulates in float32,
    so a TF32 result is within float32 accumulation rounding of the float64 convolution of the
    TF32-rounded operands, and usually well outside the float32 bound of the exact one.

    Args:
        arithmetic: how the candidate claims to compute (default: float32 on CPU); the TF32 check
            replaces only its operands' rounding by TF32's, already applied to the emulated reference.
    """
    plain = arithmetic or Arithmetic.computing_in("float32")
    candidate = require_real(candidate, "candidate values")
    emulated = tf32_reference(x, kernel, spec, bias)
    with np.errstate(over="ignore", invalid="ignore"):
        exact = convolve(x, kernel, spec, bias)
    x_tf32, k_tf32 = round_to_tf32(x), round_to_tf32(kernel)
    # The emulation's operands are TF32 values held in float32: a side rounding its operands to TF32
    # then has nothing left to round.
    as_tf32 = Arithmetic("float32", plain.accumulation, plain.output)
    return Tf32Consistency(
        bound_comparison(emulated, candidate, x_tf32, k_tf32, spec, as_tf32, form, bias, top_k=0, exact=emulated),
        bound_comparison(exact, candidate, x, kernel, spec, plain, form, bias, top_k=0, exact=exact))
