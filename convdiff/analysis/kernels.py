"""The law each kernel initializer draws from, and whether a drawn kernel follows it.

Two kernels built by two frameworks from "the same" initializer rarely hold the same numbers;
what should agree is the distribution. `theoretical` states that distribution exactly as Keras 3
(keras/src/initializers/random_initializers.py) and TF1 (tensorflow/python/ops/init_ops.py) define
it, `check_distribution` tests one kernel against it (Kolmogorov-Smirnov plus the support), and
`compare_draws` tells identical kernels from different draws of one law and from different laws.

Pure NumPy and SciPy; SciPy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.errors import BadInputError
from convdiff.spec.initializers import InitializerSpec, parse_initializer

# Standard deviation of a standard normal truncated to [-2, 2]. Keras and TF1 divide by it so that
# the variance-scaling std holds *after* truncation.
TRUNCATED_STD = 0.87962566103423978
DEFAULT_ALPHA = 1e-3

IDENTICAL = "identical"
SAME_DISTRIBUTION = "same distribution, different draws"
DIFFERENT_DISTRIBUTIONS = "different distributions"

# (scale, mode, distribution) of the variance-scaling initializers, as Keras defines them.
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
_LABELS = {
    "glorot_uniform": "Glorot uniform",
    "glorot_normal": "Glorot normal",
    "he_uniform": "He uniform",
    "he_normal": "He normal",
    "lecun_uniform": "LeCun uniform",
    "lecun_normal": "LeCun normal",
    "variance_scaling": "variance scaling",
}


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) exactly as Keras' `compute_fans` (and TF1's `_compute_fans`) count them.

    Scalars: (1, 1); 1-D: (n, n); 2-D (in, out): (in, out); N-D kernels (..., in, out) multiply
    both by the receptive field prod(shape[:-2]).
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)


@dataclass(frozen=True)
class Theoretical:
    """The elementwise law of one initializer for one kernel shape."""

    family: str
    """"uniform", "normal", "truncated_normal", "constant" or "orthogonal"."""
    mean: float
    std: float
    """Standard deviation of the values as drawn (after truncation, for truncated_normal)."""
    low: float | None
    """Lower end of the support; None when unbounded."""
    high: float | None
    """Upper end of the support; None when unbounded."""
    description: str
    """One line for people, e.g. "U(-0.102, 0.102), Glorot uniform limit sqrt(6/(fan_in+fan_out))"."""
    vector_length: int | None = None
    """orthogonal only: the length n of the orthonormal vectors, max(prod(shape[:-1]), shape[-1])."""

    def cdf(self, x: Any) -> np.ndarray:
        """P(X <= x), for the Kolmogorov-Smirnov test."""
        from scipy import stats

        x = np.asarray(x, dtype=np.float64)
        if self.family == "constant":
            return np.where(x >= self.mean, 1.0, 0.0)
        if self.family == "uniform":
            return stats.uniform.cdf(x, loc=self.low, scale=self.high - self.low)
        if self.family == "normal":
            return stats.norm.cdf(x, loc=self.mean, scale=self.std)
        if self.family == "truncated_normal":
            sigma = (self.high - self.low) / 4.0  # the underlying normal's std: the support is mean ± 2 sigma
            return stats.truncnorm.cdf(x, -2.0, 2.0, loc=self.mean, scale=sigma)
        if self.family == "orthogonal":
            # Each orthonormal vector is uniform on the unit sphere S^(n-1) (Haar QR with the sign
            # fix), so one coordinate x has density ∝ (1 - x²)^((n-3)/2): (1 + x) / 2 ~ Beta((n-1)/2, (n-1)/2).
            a = (self.vector_length - 1) / 2.0
            return stats.beta.cdf(x, a, a, loc=self.low, scale=self.high - self.low)
        raise ValueError(f"no cdf for family {self.family!r}")


def theoretical(init: InitializerSpec | str, shape: tuple[int, ...]) -> Theoretical | None:
    """The law `init` draws from for a kernel of `shape`.

    Args:
        init: the initializer, parsed or as text.
        shape: the kernel shape (HWIO for a 2-D convolution).

    Returns:
        The law; None only where there is none to test: orthogonal on fewer than 2 dimensions
        (Keras refuses to draw) or with 1-element vectors (every entry is ±gain).
    """
    spec = parse_initializer(init).resolved("kernel")
    kw = spec.kwargs()
    shape = tuple(int(d) for d in shape)
    fan_in, fan_out = fans(shape)

    value = spec.constant_value()
    if value is not None:
        return Theoretical("constant", value, 0.0, value, value, f"every weight {value:g} ({spec})")
    if spec.name == "random_uniform":
        lo, hi = kw["minval"], kw["maxval"]
        return Theoretical("uniform", (lo + hi) / 2, (hi - lo) / math.sqrt(12.0), lo, hi, f"U({lo:.3g}, {hi:.3g})")
    if spec.name == "random_normal":
        return Theoretical("normal", kw["mean"], kw["stddev"], None, None,
                           f"N({kw['mean']:.3g}, {kw['stddev']:.3g}²)")
    if spec.name == "truncated_normal":
        return _truncated(kw["mean"], kw["stddev"],
                          f"stddev {kw['stddev']:.3g} is the underlying normal's: "
                          f"the values' std is {TRUNCATED_STD:.4f}x that")
    if spec.name == "orthogonal":
        if len(shape) < 2:
            return None
        n = max(math.prod(shape[:-1]), shape[-1])
        if n < 2:
            return None
        gain = kw["gain"]
        return Theoretical("orthogonal", 0.0, gain / math.sqrt(n), -gain, gain,
                           f"gain {gain:.3g} x a coordinate of a random unit vector in R^{n}: "
                           f"std gain/sqrt({n}) = {gain / math.sqrt(n):.3g}", vector_length=n)

    if spec.name == "variance_scaling":
        scale, mode, distribution = kw["scale"], kw["mode"], kw["distribution"]
    else:
        scale, mode, distribution = _VARIANCE_SCALING[spec.name]
    label = _LABELS[spec.name]
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    variance = scale / max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return Theoretical("uniform", 0.0, limit / math.sqrt(3.0), -limit, limit,
                           f"U(-{limit:.3g}, {limit:.3g}), {label} limit {_formula(3.0 * scale, mode)}")
    std = math.sqrt(variance)
    if distribution == "untruncated_normal":
        return Theoretical("normal", 0.0, std, None, None, f"N(0, {std:.3g}²), {label} std {_formula(scale, mode)}")
    return _truncated(0.0, std / TRUNCATED_STD,
                      f"{label} std after truncation {_formula(scale, mode)} = {std:.3g}")


def _truncated(mean: float, sigma: float, why: str) -> Theoretical:
    lo, hi = mean - 2.0 * sigma, mean + 2.0 * sigma
    return Theoretical("truncated_normal", mean, sigma * TRUNCATED_STD, lo, hi,
                       f"N({mean:.3g}, {sigma:.3g}²) truncated to [{lo:.3g}, {hi:.3g}], {why}")


def _formula(numerator: float, mode: str) -> str:
    """sqrt(numerator / n) written with the fans, e.g. sqrt(6/(fan_in+fan_out)) for Glorot uniform."""
    if mode == "fan_avg":
        return f"sqrt({2.0 * numerator:g}/(fan_in+fan_out))"
    return f"sqrt({numerator:g}/{mode})"


@dataclass(frozen=True)
class DistributionCheck:
    """One drawn kernel against the law its initializer promises. Truthy when consistent."""

    initializer: str
    """The initializer checked against, canonical text."""
    shape: tuple[int, ...]
    """The kernel's shape (the fans come from it)."""
    fan_in: float
    """Keras' fan_in for that shape."""
    fan_out: float
    """Keras' fan_out for that shape."""
    mean: float
    """Observed mean."""
    std: float
    """Observed standard deviation (population, ddof=0)."""
    min: float
    """Observed minimum."""
    max: float
    """Observed maximum."""
    expected: Theoretical | None
    """The law the values should follow; None when there is none to test."""
    ks_statistic: float | None
    """One-sample Kolmogorov-Smirnov distance to `expected`; None for constants or no law."""
    ks_pvalue: float | None
    """Its p-value: the chance of a distance at least this large if the kernel follows `expected`
    (for float16/bfloat16 kernels, of the distance less `resolution_allowance`)."""
    within_support: bool
    """Every value lies in [low, high] (or equals the constant), with a few float32 ulps of slack."""
    consistent: bool
    """ks_pvalue >= alpha and within_support; for constants, within_support alone; True (nothing to
    contradict) when expected is None."""
    alpha: float = DEFAULT_ALPHA
    """The significance level used for `consistent`."""

    def __bool__(self) -> bool:
        return self.consistent


def check_distribution(kernel: np.ndarray, init: InitializerSpec | str, alpha: float = DEFAULT_ALPHA) -> DistributionCheck:
    """Test whether `kernel` looks like a draw of `init` for its shape.

    Float16 and bfloat16 kernels cannot follow a continuous law closer than their resolution:
    values are rounded to a few bits, and TensorFlow builds low-precision uniforms from only
    1/eps levels (128 for bfloat16). Their Kolmogorov-Smirnov distance is therefore reduced by that
    resolution (`resolution_allowance`) before the p-value is taken, so a genuine draw passes while
    a real departure (e.g. float16 QR leaving orthogonal columns 5% too long) still fails.

    Args:
        kernel: the drawn weights; its shape gives the fans.
        init: the initializer it should follow.
        alpha: significance level of the Kolmogorov-Smirnov test, in (0, 1).

    Returns:
        A DistributionCheck; failing to follow the law is a result, not an exception.

    Raises:
        BadInputError: empty kernel, non-numeric kernel, alpha outside (0, 1), or a bad initializer.
    """
    spec = parse_initializer(init)
    _check_alpha(alpha)
    kernel = np.asarray(kernel)
    values = _as_float64(kernel)
    expected = theoretical(spec, kernel.shape)
    fan_in, fan_out = fans(kernel.shape)

    finite = bool(np.isfinite(values).all())
    within = finite
    ks_statistic = ks_pvalue = None
    if expected is not None and finite:
        slack = _slack(kernel.dtype, expected)
        if expected.family == "constant":
            within = bool((np.abs(values - expected.mean) <= slack).all())
        else:
            if expected.low is not None:
                within = bool((values >= expected.low - slack).all() and (values <= expected.high + slack).all())
            ks_statistic, ks_pvalue = _ks_test(values.ravel(), kernel.dtype, expected)
    if expected is None:
        consistent = within
    elif expected.family == "constant":
        consistent = within
    else:
        consistent = within and ks_pvalue is not None and ks_pvalue >= alpha

    return DistributionCheck(
        initializer=str(spec),
        shape=tuple(int(d) for d in kernel.shape),
        fan_in=fan_in,
        fan_out=fan_out,
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        expected=expected,
        ks_statistic=ks_statistic,
        ks_pvalue=ks_pvalue,
        within_support=within,
        consistent=consistent,
        alpha=alpha,
    )


def compare_draws(a: np.ndarray, b: np.ndarray, init_a: InitializerSpec | str,
                  init_b: InitializerSpec | str | None = None, alpha: float = DEFAULT_ALPHA) -> str:
    """Classify two kernels: the same numbers, two draws of one law, or two different laws.

    "same distribution, different draws" needs every piece of evidence to agree: the two-sample
    Kolmogorov-Smirnov test (scipy.stats.ks_2samp) does not reject, each kernel is consistent with
    its own initializer's law, and those two laws are the same.

    Args:
        a: the reference kernel.
        b: the candidate kernel.
        init_a: the initializer `a` was drawn with.
        init_b: the initializer `b` was drawn with; None: the same as `init_a`.
        alpha: significance level of each test.

    Returns:
        "identical", "same distribution, different draws" or "different distributions".
    """
    from scipy import stats

    _check_alpha(alpha)
    spec_a = parse_initializer(init_a)
    spec_b = spec_a if init_b is None else parse_initializer(init_b)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape and np.array_equal(_as_float64(a), _as_float64(b)):
        return IDENTICAL
    check_a = check_distribution(a, spec_a, alpha)
    check_b = check_distribution(b, spec_b, alpha)
    if not (check_a.consistent and check_b.consistent) or not _same_law(check_a.expected, check_b.expected):
        return DIFFERENT_DISTRIBUTIONS
    va, vb = _as_float64(a).ravel(), _as_float64(b).ravel()
    if np.isfinite(va).all() and np.isfinite(vb).all():
        two_sample = stats.ks_2samp(va, vb)
        pvalue = float(two_sample.pvalue)
        allowance = 0.0
        if check_a.expected is not None:
            allowance = (resolution_allowance(va, a.dtype, check_a.expected)
                         + resolution_allowance(vb, b.dtype, check_b.expected))
        if allowance > 0.0:
            effective_n = round(va.size * vb.size / (va.size + vb.size))
            pvalue = float(stats.kstwo.sf(max(0.0, float(two_sample.statistic) - allowance), max(1, effective_n)))
        if pvalue < alpha:
            return DIFFERENT_DISTRIBUTIONS
    return SAME_DISTRIBUTION


def _same_law(x: Theoretical | None, y: Theoretical | None) -> bool:
    if x is None or y is None:
        return x is y
    if x.family != y.family or x.vector_length != y.vector_length:
        return False
    pairs = [(x.mean, y.mean), (x.std, y.std), (x.low, y.low), (x.high, y.high)]
    for p, q in pairs:
        if (p is None) != (q is None):
            return False
        if p is not None and not math.isclose(p, q, rel_tol=1e-6, abs_tol=1e-12):
            return False
    return True


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise BadInputError(f"alpha must be a number in (0, 1), got {alpha!r}")


def _as_float64(kernel: np.ndarray) -> np.ndarray:
    if kernel.size == 0:
        raise BadInputError(f"cannot check an empty kernel (shape {kernel.shape})")
    try:
        return kernel.astype(np.float64)
    except (TypeError, ValueError):
        raise BadInputError(f"kernel must hold numbers, got dtype {kernel.dtype}") from None


def _finfo(dtype: np.dtype) -> Any:
    if dtype.name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(dtype)
    if np.issubdtype(dtype, np.floating):
        return np.finfo(dtype)
    return None


def _slack(dtype: np.dtype, law: Theoretical) -> float:
    """How far outside the support rounding alone can push a value: a few ulps of the coarser of
    float32 (Keras draws in it) and the kernel's own dtype."""
    info = _finfo(dtype)
    eps = max(float(np.finfo(np.float32).eps), float(info.eps) if info is not None else 0.0)
    bound = max(abs(v) for v in (law.low, law.high, law.mean) if v is not None)
    return 4.0 * eps * max(bound, float(np.finfo(np.float32).tiny))


def _ks_test(values: np.ndarray, dtype: np.dtype, law: Theoretical) -> tuple[float, float]:
    """(distance, p-value) of the one-sample Kolmogorov-Smirnov test, resolution-aware for 16-bit floats."""
    from scipy import stats

    result = stats.kstest(values, law.cdf)
    statistic, pvalue = float(result.statistic), float(result.pvalue)
    allowance = resolution_allowance(values, dtype, law)
    if allowance > 0.0:
        pvalue = float(stats.kstwo.sf(max(0.0, statistic - allowance), values.size))
    return statistic, pvalue


def resolution_allowance(values: np.ndarray, dtype: np.dtype, law: Theoretical) -> float:
    """How far a float16/bfloat16 sample's empirical CDF can sit from `law` through resolution alone.

    Two effects, bounded separately and added: TensorFlow draws low-precision uniforms from 1/eps
    equally likely levels (eps of probability per level), and rounding a value to the dtype moves
    at most half the probability of one ulp around it (taken at the sample's own values, where the
    dtype's ulp is known; we allow the whole ulp, to stay clear of false alarms). Zero for float32 and float64, whose resolution is far below any
    sample's statistical noise.
    """
    dtype = np.dtype(dtype)
    if dtype.name not in ("float16", "bfloat16") or law.family == "constant":
        return 0.0
    info = _finfo(dtype)
    eps, smallest_normal = float(info.eps), float(info.smallest_normal)
    points = np.unique(values)
    ulp = np.exp2(np.floor(np.log2(np.maximum(np.abs(points), smallest_normal)))) * eps
    cell = law.cdf(points + ulp) - law.cdf(points - ulp)
    return eps + float(cell.max())



@dataclass(frozen=True)
class KernelDistribution:
    """Why two kernels that are not bit-identical differ: a different draw, or a different law."""

    verdict: str
    """"same distribution, different draws" or "different distributions" (see `compare_draws`)."""
    reference: DistributionCheck
    """The reference kernel against its own initializer's law."""
    candidate: DistributionCheck
    """The candidate kernel against its own initializer's law."""


def kernel_distribution(reference: np.ndarray, candidate: np.ndarray, init_reference: InitializerSpec | str,
                        init_candidate: InitializerSpec | str, alpha: float = DEFAULT_ALPHA) -> KernelDistribution | None:
    """The distribution diagnosis of two kernels, or None when they are identical or not comparable.

    Args:
        reference: the reference side's kernel.
        candidate: the candidate side's kernel.
        init_reference: the initializer the reference drew with (`default` means the framework's).
        init_candidate: the candidate's initializer.
        alpha: significance level of the tests.
    """
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.size == 0 or candidate.size == 0:
        return None
    ref_init = parse_initializer(init_reference).resolved("kernel")
    cand_init = parse_initializer(init_candidate).resolved("kernel")
    verdict = compare_draws(reference, candidate, ref_init, cand_init, alpha)
    if verdict == IDENTICAL:
        return None
    return KernelDistribution(verdict, check_distribution(reference, ref_init, alpha),
                              check_distribution(candidate, cand_init, alpha))


@dataclass(frozen=True)
class KernelStats:
    """Summary figures of one kernel, in float64."""

    mean: float
    std: float
    min: float
    max: float


def kernel_stats(kernel: np.ndarray) -> KernelStats:
    k = np.asarray(kernel, dtype=np.float64)
    if k.size == 0:  # a recorded output's side: it carries no kernel
        return KernelStats(math.nan, math.nan, math.nan, math.nan)
    with np.errstate(all="ignore"):
        return KernelStats(float(k.mean()), float(k.std()), float(k.min()), float(k.max()))
