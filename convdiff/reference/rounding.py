"""The rounding model: how far a correct convolution may land from the exact result, per element.

A convolution output is a length-K dot product (K = `spec.dot_length` = taps * C_in / groups, from
`geometry.dot_length`; a transposed convolution counts only the taps that reach one output) plus a bias.
A side computes it in three precisions, which the model keeps apart (`Arithmetic`):

- **operands**: the precision its input and kernel are rounded to before the products (its storage
  precision: Keras' `predict` casts a float64 input to float32, `nn` casts a float32 filter to a
  float16 input's dtype, TF32 rounds both to 10 mantissa bits);
- **accumulation**: the precision of the sums (CPU frameworks accumulate float16 and bfloat16
  convolutions in float32: measured per backend, declared in `convdiff.backends.registry`);
- **output**: the precision the result is stored in.

The bound on `|candidate - reference|` is the sum of both sides' bounds against the exact result of
the values the reference holds, each side's bound the sum of the terms that are really there:

    operands       2 u_op  * S                       per operand (input, kernel) rounded to a coarser precision,
                                                     and 2 u_op * |b| for the bias
    accumulation   u_acc * (c * sqrt(K) * S + K * |t|)      probabilistic (`--bound-form probabilistic`)
                   K u_acc / (1 - K u_acc) * S             rigorous (`--bound-form worst-case`)
    output         ulp_out(|t|)                      the accumulator rounded to a coarser output precision
    bias add       ulp_out(|y|)                      the bias added in the output's precision

with S = |x| (*) |w| (one float64 convolution of absolute values), t = x (*) w the exact convolution
and y = t + b. A rounding to nearest moves a value by at most half a unit in the last place (u times
it, u = 2^-p); each single rounding is allowed a whole ulp (2 u relative), so a correct result uses at
most half of those terms: the margin the calibration (`benchmarks/calibrate_bound.py`) checks.

**The accumulation term.** Higham & Mary ("A New Approach to Probabilistic Rounding Error Analysis",
SIAM J. Sci. Comput. 41(5), 2019) model rounding errors as independent, mean-zero random variables
bounded by u; a length-n inner product then satisfies |computed - exact| <= gamma_n(lambda) * S with
gamma_n(lambda) = exp(lambda sqrt(n) u + n u^2 / (1 - u)) - 1 ~ lambda sqrt(n) u, with probability at
least 1 - 2 n exp(-lambda^2 (1 - u)^2 / 2). With lambda = c = 8 (`PROBABILISTIC_C`) that failure
probability is at most 2.3e-10 per element at K = 9216 (2.5e-12 at K = 100), and at most 1.3e-4 over
the 546,560 outputs of a 2x427x640 layer at K = 9216 (a union bound). Structured data break the
mean-zero assumption: all-positive `image / 255` values summed with a ones kernel round in one
direction, and the error grows like K, not sqrt(K) (measured 0.195 K u S at K = 675, 5 times
sqrt(K) u S; Bhola & Duraisamy 2024 call these biased rounding errors). A common bias mu (|mu| <= u)
of the rounding errors adds mu times the sum of the partial sums, at most K u |t| when the terms do not
cancel (then |t| = S and the term is the rigorous worst case); where they cancel, |t| << S and the
sqrt(K) term dominates. So the probabilistic form is never tighter than the rigorous bound on data of
one sign, and stays sqrt(K) tight where the terms cancel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


# Significand bits p (the implicit one included) and the smallest normal exponent of each precision.
# u = 2^-p is the unit roundoff of rounding to nearest. TF32 keeps float32's exponent and float16's
# 10 stored mantissa bits.
SIGNIFICAND_BITS: dict[str, int] = {"float64": 53, "float32": 24, "tf32": 11, "float16": 11, "bfloat16": 8}
MIN_EXPONENT: dict[str, int] = {"float64": -1022, "float32": -126, "tf32": -126, "float16": -14, "bfloat16": -126}
UNIT_ROUNDOFF: dict[str, float] = {name: 2.0 ** -bits for name, bits in SIGNIFICAND_BITS.items()}

# Accumulation precision per compute dtype, measured (not assumed) on CPU: every backend's float16 and
# bfloat16 output is within one ulp of the exact result rounded once (99-100% bit-equal to it at
# K = 4608, where float16 sums would be many ulps off), so the sums run in float32 and only the result
# is rounded: TensorFlow 2.21 with oneDNN (nn, keras, keras-call, v1-nn, v1-layers) and PyTorch 2.13.
# Caffe's NumPy float32 matrix products accumulate in float32. Each backend names its table in its
# `Capabilities` (convdiff.backends.registry); tests/backends/test_accumulation.py repeats the measurement.
CPU_ACCUMULATION: tuple[tuple[str, str], ...] = (
    ("float16", "float32"), ("bfloat16", "float32"), ("float32", "float32"), ("float64", "float64"),
    ("tf32", "float32"))
# The numpy reference promotes every operand to float64 (its tf32 emulation rounds them first).
FLOAT64_ACCUMULATION: tuple[tuple[str, str], ...] = tuple(
    (d, "float64") for d in ("float16", "bfloat16", "float32", "float64", "tf32"))

# lambda of Higham & Mary's probabilistic bound (module docstring): the failure probability per element
# is at most 2 K exp(-c^2 / 2), 2.3e-10 at K = 9216.
PROBABILISTIC_C = 8.0


def precision_of(dtype: object) -> str:
    """The precision name of a NumPy dtype (or name): integers and booleans hold their values exactly in float64."""
    name = str(dtype if isinstance(dtype, str) else np.dtype(dtype).name)
    if name in SIGNIFICAND_BITS:
        return name
    if name.startswith(("int", "uint", "bool")):
        return "float64"
    raise BadInputError(f"no rounding model for dtype '{name}' (known: {', '.join(SIGNIFICAND_BITS)})")


def coarser(a: str, b: str) -> bool:
    """Whether precision `a` has fewer significand bits than `b` (rounding to `a` loses information)."""
    return SIGNIFICAND_BITS[a] < SIGNIFICAND_BITS[b]


def ulp(values: np.ndarray | float, precision: str) -> np.ndarray:
    """The spacing of `precision` at |values| (subnormal spacing below its smallest normal); inf stays inf."""
    bits, emin = SIGNIFICAND_BITS[precision], MIN_EXPONENT[precision]
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _, exponent = np.frexp(magnitude)  # magnitude = m * 2^exponent, m in [0.5, 1); frexp(0) = (0, 0)
        exponent = np.where(magnitude > 0, exponent - 1, emin)
        spacing = np.ldexp(1.0, np.maximum(exponent, emin) - (bits - 1))
    return np.where(np.isfinite(magnitude), spacing, magnitude)


@dataclass(frozen=True)
class Arithmetic:
    """How one side computes its convolution: the three precisions its roundings happen in."""

    operands: str
    """Precision the input and kernel are rounded to before the products (the side's storage precision)."""
    accumulation: str
    """Precision of the sums."""
    output: str
    """Precision the output is stored in."""

    @classmethod
    def exact(cls) -> Arithmetic:
        """The float64 reference: operands held exactly, float64 sums and output."""
        return cls("float64", "float64", "float64")

    @classmethod
    def computing_in(cls, dtype: str) -> Arithmetic:
        """A framework computing in `dtype` on CPU: operands and output in it, sums as `CPU_ACCUMULATION` says."""
        return cls(dtype, dict(CPU_ACCUMULATION).get(dtype, dtype), "float32" if dtype == "tf32" else dtype)

    def __post_init__(self) -> None:
        for name in (self.operands, self.accumulation, self.output):
            if name not in SIGNIFICAND_BITS:
                raise BadInputError(f"no rounding model for precision '{name}'")

    @property
    def description(self) -> str:
        if self.operands == self.accumulation == self.output:
            return f"{self.operands} throughout"
        return (f"operands in {self.operands}, accumulation in {self.accumulation}, "
                f"output stored in {self.output}")


@dataclass(frozen=True)
class Gamma:
    """The factor multiplying `|x| (*) |w|` in the accumulation term of one precision."""

    form: BoundForm
    dtype: str
    """The accumulation precision."""
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
    """The gamma factor of a length-`K` dot product accumulated in `dtype`.

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


# Elements of the bound built at once (its temporaries fit in the cache).
_BOUND_BLOCK_ELEMENTS = 1 << 15


@dataclass(frozen=True)
class RoundingModel:
    """Which roundings the bound of one comparison allows, and how it is built (`bound`)."""

    form: BoundForm
    K: int
    """Dot-product length (`spec.dot_length`)."""
    sides: tuple[Arithmetic, ...]
    """One per side whose rounding separates its output from the exact result (both sides of a comparison)."""
    input_precision: str = "float64"
    """Precision of the input values the bound is built from: a side rounding to a coarser one pays a term."""
    kernel_precision: str = "float64"
    """Precision of the kernel (and bias) values the bound is built from."""

    def __post_init__(self) -> None:
        if not self.sides:
            raise BadInputError("a rounding model needs at least one side")
        if self.K < 1:
            raise BadInputError(f"dot-product length must be >= 1, got {self.K}")

    @property
    def dtype(self) -> str:
        """The coarsest precision any side rounds to: the one the verdict names ("the float16 rounding bound")."""
        used = [p for a in self.sides for p in self._rounds_to(a)] or ["float64"]
        return min(used, key=lambda p: SIGNIFICAND_BITS[p])

    def _rounds_to(self, a: Arithmetic) -> list[str]:
        used = [a.accumulation, a.output]
        if coarser(a.operands, self.input_precision) or coarser(a.operands, self.kernel_precision):
            used.append(a.operands)
        return used

    @property
    def unit_roundoff(self) -> float:
        return UNIT_ROUNDOFF[self.dtype]

    @property
    def accumulation(self) -> Gamma:
        """The gamma of the coarsest accumulation of the sides."""
        coarsest = min((a.accumulation for a in self.sides), key=lambda p: SIGNIFICAND_BITS[p])
        return gamma(self.K, coarsest, self.form)

    @property
    def value(self) -> float:
        """gamma of the coarsest accumulation (the factor of S in the accumulation term)."""
        return self.accumulation.value

    @property
    def c(self) -> float | None:
        return PROBABILISTIC_C if self.form is BoundForm.PROBABILISTIC else None

    @property
    def terms(self) -> str:
        """The bound's terms, in words."""
        acc = ("u_acc*(c*sqrt(K)*S + K*|t|)" if self.form is BoundForm.PROBABILISTIC
               else "K*u_acc/(1-K*u_acc)*S")
        return (f"sum over both sides of: 2*u_op*S per operand rounded to a coarser precision, {acc}, "
                "ulp_out(|t|) when the output is coarser than the accumulation, ulp_out(|y|) for the bias add "
                "(S = |x|(*)|w|, t = x(*)w, y = t + b)")

    @property
    def description(self) -> str:
        if len(self.sides) == 2 and self.sides[0] == self.sides[1]:
            sides = f"both sides {self.sides[0].description}"
        elif len(self.sides) == 2:
            sides = f"reference {self.sides[0].description}; candidate {self.sides[1].description}"
        else:
            sides = "; ".join(a.description for a in self.sides)
        if self.form is BoundForm.PROBABILISTIC:
            acc = f"c={PROBABILISTIC_C:g}, K={self.K}"
        else:
            acc = f"worst case, K={self.K}"
        return f"{acc}; {sides}"

    def bound(self, magnitude: np.ndarray, exact: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """The per-element bound from S = |x| (*) |w| and the exact output y = t + b (arrays or scalars).

        Every term grows with S, |t| and |y|, so upper bounds of them give an upper bound of the bound.
        """
        S = np.asarray(magnitude, dtype=np.float64)
        exact = np.asarray(exact, dtype=np.float64)
        b = None if bias is None else np.asarray(bias, dtype=np.float64)
        shape = np.broadcast_shapes(S.shape, exact.shape, *(() if b is None else (b.shape,)))
        if S.shape != shape or exact.shape != shape or not shape or (b is not None and b.ndim > 1):
            return self._bound_block(S, exact, b)
        # The bound is elementwise: built block by block, its temporaries (one per term) stay cache-sized
        # instead of one full-size float64 array each; the same arithmetic gives the same bits.
        width = shape[-1]
        S, exact, total = S.reshape(-1, width), exact.reshape(-1, width), np.empty(shape)
        rows = max(1, _BOUND_BLOCK_ELEMENTS // max(1, width))
        out = total.reshape(-1, width)
        for first in range(0, S.shape[0], rows):
            block = slice(first, first + rows)
            out[block] = self._bound_block(S[block], exact[block], b)
        return total

    def _bound_block(self, S: np.ndarray, exact: np.ndarray, b_signed: np.ndarray | None) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            y = np.abs(exact)
            b = None if b_signed is None else np.abs(b_signed)
            t = y if b is None else np.abs(exact - b_signed)
            total = np.zeros(np.broadcast_shapes(S.shape, y.shape))
            for a in self.sides:
                total = total + self._side_bound(a, S, t, y, b)
        return total

    def _side_bound(self, a: Arithmetic, S: np.ndarray, t: np.ndarray, y: np.ndarray,
                    b: np.ndarray | None) -> np.ndarray:
        u_op = UNIT_ROUNDOFF[a.operands]
        operands = coarser(a.operands, self.input_precision) + coarser(a.operands, self.kernel_precision)
        term = np.zeros_like(S)
        if operands:  # (never 0 * S: S may be inf)
            term = term + (2 * u_op * operands) * S
        if b is not None and coarser(a.operands, self.kernel_precision):
            term = term + 2 * u_op * b
        g = gamma(self.K, a.accumulation, self.form)
        if self.form is BoundForm.PROBABILISTIC:
            term = term + g.value * S + self.K * g.unit_roundoff * t
        else:
            term = term + g.value * S
        if coarser(a.output, a.accumulation):
            term = term + ulp(t, a.output)
        if b is not None:
            term = term + ulp(y, a.output)
        return term


def abs_convolution(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """`|x| (*) |w|` in float64: the spec's own convolution (any rank, groups, transposed) of the magnitudes."""
    with np.errstate(over="ignore", invalid="ignore"):
        # |x| taken in NumPy's own float dtypes before the float64 cast (exact either way: one copy less).
        x, kernel = (np.abs(a) if a.dtype in (np.float16, np.float32, np.float64) else np.abs(np.asarray(a, np.float64))
                     for a in (np.asarray(x), np.asarray(kernel)))
        return convolve(x, kernel, spec)


# Below this many products the float64 |x| (*) |w| costs next to nothing: it is kept exact there.
FLOAT32_MAGNITUDE_FROM = 1 << 26


def magnitude_upper(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """An upper bound of `|x| (*) |w|` for the rounding bound: exactly the float64 convolution, or, for a large
    convolution of float32/float16 operands, the float32 one divided by (1 - gamma_2K).

    Why the float32 one is enough: |x| and |w| are exact in float32, every product and partial sum is
    non-negative, and an output is at most K products and K - 1 additions, each tap's sum added to its block
    once more (at most 2K roundings, in whatever order BLAS takes). With no underflow (every non-zero
    product is a normal float32: the smallest non-zero |x| times the smallest non-zero |w| is at least
    2^-126) and no overflow (max |x| times the largest sum of |w| an output channel reads is below 2^126),
    the float32 result S32 satisfies |S32 - S| <= gamma_2K * S, so S <= S32 / (1 - gamma_2K): a bound at
    most (1 + gamma_2K) / (1 - gamma_2K) looser (1 + 7e-5 for K = 576) at half the cost of float64.
    """
    x, kernel = np.asarray(x), np.asarray(kernel)
    two_k = 2 * spec.dot_length
    products = int(np.prod(spec.output_shape)) * spec.dot_length
    if (products < FLOAT32_MAGNITUDE_FROM or x.dtype not in (np.float32, np.float16)
            or kernel.dtype not in (np.float32, np.float16) or two_k * UNIT_ROUNDOFF["float32"] >= 0.01):
        return abs_convolution(x, kernel, spec)
    with np.errstate(over="ignore", invalid="ignore"):
        ax, aw = np.abs(x), np.abs(kernel)
        if not (np.isfinite(ax.max()) and np.isfinite(aw.max())):
            return abs_convolution(x, kernel, spec)
        out_axis = kernel.ndim - (2 if spec.transposed else 1)
        reach = float(aw.astype(np.float64).sum(axis=tuple(a for a in range(kernel.ndim) if a != out_axis)).max())
        smallest = [float(a[a > 0].min()) if np.any(a > 0) else 1.0 for a in (ax, aw)]
        if float(ax.max()) * reach >= 2.0 ** 126 or smallest[0] * smallest[1] < 2.0 ** -126:
            return abs_convolution(x, kernel, spec)
        s32 = convolve(ax, aw, spec, dtype=np.float32)
    u = UNIT_ROUNDOFF["float32"]
    gamma_2k = two_k * u / (1 - two_k * u)
    return s32.astype(np.float64) * (1.0 / (1.0 - gamma_2k))


def as_sides(arithmetic: Arithmetic | str | Sequence[Arithmetic | str]) -> tuple[Arithmetic, ...]:
    """One or more sides' arithmetic; a dtype name is a CPU framework computing in it."""
    if isinstance(arithmetic, (str, Arithmetic)):
        arithmetic = (arithmetic,)
    return tuple(Arithmetic.computing_in(a) if isinstance(a, str) else a for a in arithmetic)


def rounding_bound(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec,
                   sides: Arithmetic | str | Sequence[Arithmetic | str],
                   form: BoundForm = BoundForm.PROBABILISTIC, bias: np.ndarray | None = None,
                   exact: np.ndarray | None = None,
                   precisions: tuple[str, str] | None = None) -> tuple[np.ndarray, RoundingModel]:
    """The per-element bound on the difference of two computations of the convolution of `spec`.

    The one function every bound comes from: the verdict, the three-way check, the TF32 check and the
    diagnosis.

    Args:
        x: the input as the reference holds it, channels-last (its dtype is the precision an operand term
            is measured from).
        kernel: canonical (HWIO; HWOI transposed), as the reference holds it (with `bias`).
        spec: the ConvSpec (its convolution and dot_length).
        sides: the arithmetic of each side (one side: against the exact result); a dtype name is a CPU
            framework computing in it.
        form: the form of the accumulation term.
        bias: the bias added, or None.
        exact: the exact float64 output of `x`, `kernel` and `bias`, when already computed.
        precisions: the precisions the input and kernel values are held in, when their arrays' dtypes
            do not say (values rounded to float16 but held in float64).

    Returns:
        (bound, model): the float64 bound array of the output's shape, and the model it was made with.
        The bound is inf (compare exactly) where the magnitudes overflow float64.
    """
    held = precisions or (precision_of(require_real(x, "input values").dtype),
                          precision_of(require_real(kernel, "kernel values").dtype))
    model = RoundingModel(form, spec.dot_length, as_sides(sides), *held)
    if exact is None:
        with np.errstate(over="ignore", invalid="ignore"):
            exact = convolve(x, kernel, spec, bias)
    return model.bound(magnitude_upper(x, kernel, spec), exact, bias), model


def require_real(values: np.ndarray, what: str = "values") -> np.ndarray:
    """`values` as an array, refused (BadInputError) when complex: casting would drop the imaginary part."""
    array = np.asarray(values)
    if array.dtype.kind == "c":
        raise BadInputError(f"{what} are complex ({array.dtype}); a convolution's rounding is modelled for real values")
    return array


def round_to_tf32(values: np.ndarray) -> np.ndarray:
    """Round to TF32 (float32 with 10 stored mantissa bits), to nearest even; returns float32.

    Inf and NaN pass through; a value that rounds past float32's largest becomes inf.
    """
    values = require_real(values)
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
    with np.errstate(over="ignore", invalid="ignore"):
        return convolve(round_to_tf32(x), round_to_tf32(kernel), spec, bias)
