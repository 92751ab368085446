"""The rounding model: unit roundoffs, the gamma of a length-K dot product, TF32 rounding, and the
per-element rounding-error bound of a convolution.

A convolution output is a length-K dot product, K = taps * C_in / groups (`geometry.dot_length`; a
transposed convolution counts only the taps that reach one output). Computed in a precision with
unit roundoff u, its error against the exact value is bounded by (Higham, "Accuracy and Stability
of Numerical Algorithms", 3.1; Higham & Mary 2019 for the probabilistic form)

    |computed - exact| <= gamma * (|x| (*) |w|)[pos]  (+ u * ((|x| (*) |w|)[pos] + |b|) for the bias add)

where `|x| (*) |w|` is the convolution of absolute values (one extra float64 convolution) and

    worst-case:     gamma = K*u / (1 - K*u)
    probabilistic:  gamma = c * sqrt(K) * u          (c = PROBABILISTIC_C)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from convdiff.errors import BadInputError
from convdiff.reference.convolution import convolve
from convdiff.spec.convspec import ConvSpec


class BoundForm(StrEnum):
    PROBABILISTIC = "probabilistic"
    WORST_CASE = "worst-case"


def parse_bound_form(text: object) -> BoundForm:
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
    """Dot-product length: taps * C_in / groups (`convdiff.spec.geometry.dot_length`)."""
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


def abs_convolution(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """`|x| (*) |w|` in float64: the spec's own convolution (any rank, groups, transposed) of the magnitudes."""
    return convolve(np.abs(np.asarray(x, dtype=np.float64)), np.abs(np.asarray(kernel, dtype=np.float64)), spec)


def rounding_bound(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, dtype: str,
                   form: BoundForm = BoundForm.PROBABILISTIC,
                   bias: np.ndarray | None = None) -> tuple[np.ndarray, Gamma]:
    """Per-element bound on the rounding error of the convolution of `spec` computed in `dtype`.

    Args:
        x: the input, channels-last (any float dtype; used in float64).
        kernel: canonical (HWIO; HWOI transposed).
        spec: the ConvSpec (its convolution and dot_length).
        dtype: the precision whose rounding is bounded.
        form: the gamma form.
        bias: the bias, whose add costs one more rounding: `u * (|x|(*)|w| + |b|)`.

    Returns:
        (bound, gamma): the float64 bound array of the output's shape, and the gamma used.
    """
    g = gamma(spec.dot_length, dtype, form)
    with np.errstate(over="ignore", invalid="ignore"):
        return bound_from_magnitude(abs_convolution(x, kernel, spec), g, bias), g


def bound_from_magnitude(magnitude: np.ndarray, g: Gamma, bias: np.ndarray | None = None) -> np.ndarray:
    """The bound from `|x| (*) |w|`: gamma times it, plus the rounding of the bias add."""
    with np.errstate(over="ignore", invalid="ignore"):
        bound = g.value * magnitude
        if bias is not None:
            # The bias add is one more rounding, of a value no larger than |x|(*)|w| + |b|.
            bound += g.unit_roundoff * (magnitude + np.abs(np.asarray(bias, dtype=np.float64)))
    return bound


def round_to_tf32(values: np.ndarray) -> np.ndarray:
    """Round to TF32 (float32 with 10 stored mantissa bits), to nearest even; returns float32.

    Inf and NaN pass through; a value that rounds past float32's largest becomes inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    bits = a.view(np.uint32).astype(np.uint64)
    # Add half an ULP of TF32 (minus one when the kept part is even) and clear the 13 dropped bits.
    keep_lsb = (bits >> np.uint64(13)) & np.uint64(1)
    rounded = (bits + np.uint64(0x0FFF) + keep_lsb) & np.uint64(0xFFFFE000)
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(a), out, a).reshape(np.shape(values))


def tf32_reference(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, bias: np.ndarray | None = None) -> np.ndarray:
    """The float64 convolution of TF32-rounded input and kernel (the bias is added unrounded, in float64)."""
    return convolve(round_to_tf32(x), round_to_tf32(kernel), spec, bias)
