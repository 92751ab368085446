"""Precision-aware verdicts: how far apart may two correct convolutions be?

A convolution output is a length-K dot product, K = kh * kw * C_in. Computed in a precision with
unit roundoff u, its error against the exact value is bounded by (Higham, "Accuracy and Stability
of Numerical Algorithms", 3.1; Higham & Mary 2019 for the probabilistic form)

    |computed - exact| <= gamma * (|x| (*) |w|)[pos]  (+ u * ((|x| (*) |w|)[pos] + |b|) for the bias add)

where `|x| (*) |w|` is the convolution of absolute values (one extra float64 convolution) and

    worst-case:     gamma = K*u / (1 - K*u)
    probabilistic:  gamma = c * sqrt(K) * u          (c = PROBABILISTIC_C)

The worst case is rigorous but loose: it grows with K while real rounding errors grow like
sqrt(K), so a 1% error in one output channel fits under it for large K. The probabilistic form is
the default (see `PROBABILISTIC_C` for the choice of c).

Everything here is pure NumPy: arrays in, frozen results out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from convdiff.compare.core import json_float
from convdiff.errors import BadInputError

__all__ = [
    "PROBABILISTIC_C",
    "UNIT_ROUNDOFF",
    "BoundCheck",
    "BoundForm",
    "Gamma",
    "SideError",
    "ThreeWay",
    "ToleranceMode",
    "UlpDistance",
    "abs_convolution",
    "check_bound",
    "gamma",
    "parse_bound_form",
    "parse_tolerance_mode",
    "Tf32Consistency",
    "round_to_tf32",
    "tf32_consistency",
    "tf32_reference",
    "rounding_bound",
    "side_error",
    "ulp_distance",
]


class ToleranceMode(StrEnum):
    """Which rule decides the verdict of a case."""

    BOUND = "bound"
    """Every element within the rounding-error bound of its dot product (the default)."""
    ELEMENTWISE = "elementwise"
    """`|candidate - reference| <= atol + rtol * |reference|` with fixed atol/rtol."""


class BoundForm(StrEnum):
    PROBABILISTIC = "probabilistic"
    WORST_CASE = "worst-case"


def parse_tolerance_mode(text: str) -> ToleranceMode:
    try:
        return ToleranceMode(str(text).strip().lower())
    except ValueError:
        raise BadInputError(f"unknown tolerance mode '{text}' (choose from "
                            f"{', '.join(m.value for m in ToleranceMode)})") from None


def parse_bound_form(text: str) -> BoundForm:
    try:
        return BoundForm(str(text).strip().lower())
    except ValueError:
        raise BadInputError(f"unknown bound form '{text}' (choose from "
                            f"{', '.join(f.value for f in BoundForm)})") from None


# u = 2^-p for p significand bits (round to nearest). TF32 keeps float32's exponent and 10 stored
# mantissa bits, as float16 does.
UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

# c of the probabilistic form c * sqrt(K) * u, measured against float64 (README "Choosing c"):
# - correct tf.nn.conv2d float32 results, standard-normal data with bias, 3 seeds: at most 0.98,
#   0.36, 0.28, 0.10, 0.05, 0.025 of 3*sqrt(K)*u*(|x|(*)|w|) for K = 1, 9, 27, 144, 576, 4608;
# - the built-in ones-filter (all-positive image/255, ones kernel, K = 147) is the hard case: its
#   rounding errors do not cancel like random ones and reach 2.1 * sqrt(K)*u*(|x|(*)|w|);
# - a 1.01 scaling of one output channel at K = 4608 exceeds sqrt(K)*u*(|x|(*)|w|) 35-50-fold at
#   the channel's median and 135-185-fold at its maximum.
# c = 5 leaves the structured ones-filter case a 2.4x margin, random data 5x or more, and still
# puts the 1% bug 7-10x over the bound at the median (27-37x at the maximum). For K <= 25 it is at
# least the rigorous worst case K*u.
PROBABILISTIC_C = 5.0


@dataclass(frozen=True)
class Gamma:
    """The factor multiplying `|x| (*) |w|` in the bound."""

    form: BoundForm
    dtype: str
    """The precision whose rounding is bounded (the lower compute precision of the two sides)."""
    unit_roundoff: float
    K: int
    """Dot-product length kh * kw * C_in."""
    value: float

    @property
    def description(self) -> str:
        if self.form is BoundForm.WORST_CASE:
            return f"K*u/(1-K*u) with K={self.K}, u={self.dtype} unit roundoff {self.unit_roundoff:.3g}"
        return (f"c*sqrt(K)*u with c={PROBABILISTIC_C:g}, K={self.K}, "
                f"u={self.dtype} unit roundoff {self.unit_roundoff:.3g}")


def gamma(K: int, dtype: str, form: BoundForm = BoundForm.PROBABILISTIC) -> Gamma:
    """The gamma factor of a length-`K` dot product computed in `dtype`.

    Args:
        K: dot-product length (>= 1).
        dtype: 'float64', 'float32', 'tf32', 'float16' or 'bfloat16'.
        form: worst-case `K*u/(1-K*u)` or probabilistic `c*sqrt(K)*u`.

    Returns:
        A `Gamma`; the worst case is infinite when K*u >= 1 (no bound at all).
    """
    if dtype not in UNIT_ROUNDOFF:
        raise BadInputError(f"no unit roundoff known for dtype '{dtype}' (known: {', '.join(UNIT_ROUNDOFF)})")
    if K < 1:
        raise BadInputError(f"dot-product length must be >= 1, got {K}")
    u = UNIT_ROUNDOFF[dtype]
    if form is BoundForm.WORST_CASE:
        value = K * u / (1 - K * u) if K * u < 1 else math.inf
    else:
        value = PROBABILISTIC_C * math.sqrt(K) * u
    return Gamma(form, dtype, u, K, value)


def abs_convolution(x: np.ndarray, kernel: np.ndarray, spec: Any) -> np.ndarray:
    """`|x| (*) |w|` in float64 with the spec's strides, pads and dilation (one extra convolution)."""
    from convdiff.backends.numpy_ref import conv2d_nhwc

    return conv2d_nhwc(np.abs(np.asarray(x, dtype=np.float64)), np.abs(np.asarray(kernel, dtype=np.float64)),
                       spec.strides, spec.pads, spec.dilation)


def rounding_bound(x: np.ndarray, kernel: np.ndarray, spec: Any, dtype: str,
                   form: BoundForm = BoundForm.PROBABILISTIC, bias: np.ndarray | None = None) -> tuple[np.ndarray, Gamma]:
    """Per-element bound on the rounding error of the convolution of `spec` computed in `dtype`.

    Args:
        x: the input, NHWC (any float dtype; used in float64).
        kernel: HWIO.
        spec: the ConvSpec (strides, pads, dilation, dot_length).
        dtype: the precision whose rounding is bounded.
        form: the gamma form.
        bias: the bias, whose add costs one more rounding: `u * (|x|(*)|w| + |b|)`.

    Returns:
        (bound, gamma): the float64 bound array of the output's shape, and the gamma used.
    """
    g = gamma(spec.dot_length, dtype, form)
    magnitude = abs_convolution(x, kernel, spec)
    bound = g.value * magnitude
    if bias is not None:
        # The bias add is one more rounding, of a value no larger than |x|(*)|w| + |b|.
        bound += g.unit_roundoff * (magnitude + np.abs(np.asarray(bias, dtype=np.float64)))
    return bound, g


@dataclass(frozen=True)
class BoundCheck:
    """Every element of the candidate within the rounding bound of the reference? Truthy when so."""

    gamma: Gamma
    total: int
    """Elements checked."""
    exceeded: int
    """Elements whose |candidate - reference| exceeds the bound (non-finite mismatches included)."""
    max_ratio: float
    """Largest |candidate - reference| / bound (inf where the bound is 0 and the difference is not)."""
    max_ratio_index: tuple[int, ...] | None
    """First position of `max_ratio`; None when nothing differs."""
    median_ratio: float
    """Median of |candidate - reference| / bound over finite positions."""

    def __bool__(self) -> bool:
        return self.total > 0 and self.exceeded == 0

    def to_json(self) -> dict[str, Any]:
        g = self.gamma
        return {
            "form": g.form.value,
            "dtype": g.dtype,
            "unit_roundoff": g.unit_roundoff,
            "gamma": json_float(g.value),
            "gamma_description": g.description,
            "K": g.K,
            "total": self.total,
            "exceeded": self.exceeded,
            "max_ratio": json_float(self.max_ratio),
            "max_ratio_index": None if self.max_ratio_index is None else list(self.max_ratio_index),
            "median_ratio": json_float(self.median_ratio),
        }


def check_bound(reference: np.ndarray, candidate: np.ndarray, bound: np.ndarray, g: Gamma, *,
                equal_nan: bool = False, chunk_size: int = 1 << 18) -> BoundCheck:
    """Check `|candidate - reference| <= bound` element by element, in chunks.

    Args:
        reference, candidate, bound: arrays of one shape (bound in float64, >= 0).
        g: the gamma the bound was built with (carried into the result).
        equal_nan: NaN on both sides at one position counts as within the bound.
        chunk_size: elements per step.

    Returns:
        A `BoundCheck`. Equal infinities pass; any other non-finite position is exceeded.
    """
    reference, candidate, bound = np.asarray(reference), np.asarray(candidate), np.asarray(bound)
    if not (reference.shape == candidate.shape == bound.shape):
        raise BadInputError(f"bound check needs equal shapes, got {reference.shape}, {candidate.shape}, {bound.shape}")
    ref_f, cand_f, bound_f = (a.reshape(-1) for a in (reference, candidate, bound))
    n = ref_f.size
    ratios = np.empty(n, dtype=np.float64)
    exceeded = 0
    with np.errstate(all="ignore"):
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            r = ref_f[start:stop].astype(np.float64)
            c = cand_f[start:stop].astype(np.float64)
            b = bound_f[start:stop].astype(np.float64)
            diff = np.abs(c - r)
            same_inf = np.isinf(r) & (r == c)
            both_nan = np.isnan(r) & np.isnan(c)
            ok_nonfinite = same_inf | (both_nan if equal_nan else False)
            diff[ok_nonfinite] = 0.0
            ratio = np.where(diff == 0, 0.0, diff / b)  # 0/0 -> 0, d/0 -> inf
            ratio[np.isnan(diff)] = np.inf  # a NaN on one side (or both, without equal_nan)
            exceeded += int(np.count_nonzero(ratio > 1.0))
            ratios[start:stop] = ratio
    if n == 0:
        return BoundCheck(g, 0, 0, 0.0, None, 0.0)
    i = int(np.argmax(ratios))
    max_ratio = float(ratios[i])
    finite = ratios[np.isfinite(ratios)]
    median = float(np.median(finite)) if finite.size else math.inf
    index = tuple(int(v) for v in np.unravel_index(i, reference.shape)) if max_ratio > 0 else None
    return BoundCheck(g, n, exceeded, max_ratio, index, median)


# --- three-way against the float64 reference ---------------------------------------------------


@dataclass(frozen=True)
class SideError:
    """One side's output against float64 recomputed from ITS OWN input, kernel and bias."""

    max_abs: float
    rmse: float
    bound: BoundCheck
    """The side against float64 under the rounding bound of the side's own compute dtype."""

    @property
    def within(self) -> bool:
        return bool(self.bound)

    def to_json(self) -> dict[str, Any]:
        return {"max_abs": json_float(self.max_abs), "rmse": json_float(self.rmse),
                "max_bound_ratio": json_float(self.bound.max_ratio), "dtype": self.bound.gamma.dtype,
                "within_bound": self.within}


def side_error(output: np.ndarray, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, spec: Any,
               dtype: str, form: BoundForm = BoundForm.PROBABILISTIC) -> SideError:
    """Measure one side against the float64 NumPy convolution of its own input and kernel."""
    from convdiff.backends.numpy_ref import conv2d_nhwc

    exact = conv2d_nhwc(x, kernel, spec.strides, spec.pads, spec.dilation, bias)
    out = np.asarray(output, dtype=np.float64)
    if out.shape != exact.shape:
        raise BadInputError(f"output shape {out.shape} differs from the float64 recomputation {exact.shape}")
    with np.errstate(all="ignore"):
        diff = np.abs(out - exact)
        finite = diff[np.isfinite(diff)]
        max_abs = float(finite.max()) if finite.size else math.nan
        rmse = float(np.sqrt(np.mean(finite**2))) if finite.size else math.nan
    bound, g = rounding_bound(x, kernel, spec, dtype, form, bias)
    return SideError(max_abs, rmse, check_bound(exact, out, bound, g))


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
        if w is Attribution.NEITHER:
            return ("both sides are within their precision of the float64 reference: "
                    "they simply rounded differently")
        if w is Attribution.BOTH:
            return "both sides exceed their rounding bound against the float64 reference"
        bad = self.candidate if w is Attribution.CANDIDATE else self.reference
        return (f"the {w.value} is wrong: it exceeds its {bad.bound.gamma.dtype} rounding bound against "
                f"the float64 reference {_times(bad.bound.max_ratio)}, the other side is within its bound")


# --- ULP distance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UlpDistance:
    """Distance between the two sides in units in the last place of `dtype`."""

    dtype: str
    max: int
    median: float
    compared: int
    """Positions finite on both sides (the others are left out)."""

    def to_json(self) -> dict[str, Any]:
        return {"max": self.max, "median": self.median, "dtype": self.dtype}


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def ulp_distance(reference: np.ndarray, candidate: np.ndarray, dtype: str) -> UlpDistance:
    """Max and median ULP distance after casting both sides to `dtype`.

    The bit patterns are mapped sign-magnitude -> ordered integers (negative floats mirrored below
    zero, so +0 and -0 coincide) and subtracted. `tf32` is measured on TF32-rounded float32 values,
    in TF32 ULPs (2^13 float32 ULPs each).
    """
    from convdiff.spec.dtypes import np_dtype

    shift = 0
    if dtype == "tf32":
        reference, candidate = round_to_tf32(reference), round_to_tf32(candidate)
        np_t, shift = np.dtype(np.float32), 13
    else:
        np_t = np_dtype(dtype)
    a = np.asarray(reference).astype(np_t)
    b = np.asarray(candidate).astype(np_t)
    finite = np.isfinite(a.astype(np.float64)) & np.isfinite(b.astype(np.float64))
    oa, ob = _ordered(a[finite], shift), _ordered(b[finite], shift)
    if oa.size == 0:
        return UlpDistance(dtype, 0, 0.0, 0)
    with np.errstate(over="ignore"):
        d = np.abs(oa - ob)
    return UlpDistance(dtype, int(d.max()), float(np.median(d)), int(oa.size))


def _ordered(values: np.ndarray, shift: int) -> np.ndarray:
    bits = values.view(_UINT[values.dtype.itemsize]).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * values.dtype.itemsize - 1)
    magnitude = (bits & ~sign).astype(np.int64) >> shift
    return np.where(bits & sign, -magnitude, magnitude)


# --- TF32 ----------------------------------------------------------------------------------------


def round_to_tf32(values: np.ndarray) -> np.ndarray:
    """Round to TF32 (float32 with 10 stored mantissa bits), to nearest even; returns float32.

    Inf and NaN pass through; a value that rounds past float32's largest becomes inf.
    """
    a = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    bits = a.view(np.uint32).astype(np.uint64)
    # Add half an ULP of TF32 (minus one when the kept part is even) and clear the 13 dropped bits.
    keep_lsb = (bits >> np.uint64(13)) & np.uint64(1)
    rounded = (bits + np.uint64(0x0FFF) + keep_lsb) & np.uint64(0xFFFFE000)
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(a), out, a).reshape(np.shape(values))


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "where the bound is 0"
    return f"{ratio:.3g} times"


@dataclass(frozen=True)
class Tf32Consistency:
    """Is a float32 result explained by TF32 inputs (GPU tensor cores) rather than a bug?"""

    against_tf32: BoundCheck
    """The result against the TF32-emulated float64 reference, under the float32 rounding bound."""
    against_float32: BoundCheck
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


def tf32_reference(x: np.ndarray, kernel: np.ndarray, spec: Any, bias: np.ndarray | None = None) -> np.ndarray:
    """The float64 convolution of TF32-rounded input and kernel (the bias is added unrounded, in float64)."""
    from convdiff.backends.numpy_ref import conv2d_nhwc

    return conv2d_nhwc(round_to_tf32(x), round_to_tf32(kernel), spec.strides, spec.pads, spec.dilation, bias)


def tf32_consistency(candidate: np.ndarray, x: np.ndarray, kernel: np.ndarray, spec: Any,
                     bias: np.ndarray | None = None, form: BoundForm = BoundForm.PROBABILISTIC) -> Tf32Consistency:
    """Check whether `candidate` is what a float32 convolution with TF32 inputs computes.

    TF32 rounds the multiplicands (input and kernel) to 10 mantissa bits and accumulates in float32,
    so a TF32 result is within float32 accumulation rounding of the float64 convolution of the
    TF32-rounded operands, and usually well outside the float32 bound of the exact one.
    """
    from convdiff.backends.numpy_ref import conv2d_nhwc

    bound, g = rounding_bound(x, kernel, spec, "float32", form, bias)
    emulated = tf32_reference(x, kernel, spec, bias)
    exact = conv2d_nhwc(x, kernel, spec.strides, spec.pads, spec.dilation, bias)
    return Tf32Consistency(check_bound(emulated, candidate, bound, g), check_bound(exact, candidate, bound, g))
