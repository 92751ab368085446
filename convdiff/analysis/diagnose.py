"""Why two outputs differ: every hypothesis of `convdiff.analysis.hypotheses` recomputes the float64
reference with one suspected mistake applied, and is confirmed only when that recomputation matches
the candidate under the same rounding model as the verdict: the rounding bound of the lower compute
precision (`convdiff.reference.rounding`), built from the recomputation's own operands.

The residual shown is `max |recomputed - candidate| / max |candidate|`; the ratio, the largest
`|recomputed - candidate| / bound`. A structural mistake (a wrong pad, a transposed kernel) moves
outputs far above the bound.

Pure: arrays and specs in, a tuple of frozen `Finding` out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convdiff.analysis.bound import tf32_consistency
from convdiff.analysis.hypotheses import HYPOTHESES, Context, NotApplicable, Trial
from convdiff.compare import Rule, Tolerance, compare_arrays
from convdiff.reference.rounding import BoundForm, bound_from_magnitude, gamma, tf32_reference
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import lower_precision

CAUSES = ("dtype", "tf32", *(h.cause for h in HYPOTHESES[1:]))


@dataclass(frozen=True)
class Finding:
    """One suspected mistake and what recomputing with it showed."""

    cause: str
    """One of `CAUSES`."""
    confirmed: bool
    """The recomputation matches the candidate within the rounding bound."""
    residual: float | None
    """Best `max |recomputed - candidate| / max |candidate|` over the variants tried; None if none applied."""
    detail: str
    """What was tried and what it showed, in words (names the pads, the permutation, ...)."""
    bound_ratio: float | None = None
    """Largest |recomputed - candidate| / rounding bound of the best variant (a lower bound when screened out)."""


@dataclass(frozen=True)
class _Measured:
    trial: Trial
    diff: float
    ratio: float
    confirmed: bool
    precision: str
    screened: bool
    """The ratio is only a lower bound: the difference exceeds the largest bound any position can have."""


def diagnose(reference_spec: ConvSpec, candidate_spec: ConvSpec, x: np.ndarray, kernel: np.ndarray,
             bias: np.ndarray | None, candidate_output: np.ndarray, *, reference_dtype: str = "float64",
             candidate_dtype: str = "float32", candidate_kernel: np.ndarray | None = None,
             candidate_bias: np.ndarray | None = None,
             form: BoundForm = BoundForm.PROBABILISTIC) -> tuple[Finding, ...]:
    """Test every hypothesis about why `candidate_output` differs from the reference convolution.

    Args:
        reference_spec: the reference side's effective spec (its kind, strides, pads and dilation are taken
            from it).
        candidate_spec: the candidate side's effective spec (its pads are one padding hypothesis).
        x: the reference side's input, channels-last.
        kernel: the kernel the reference used, canonical (HWIO; HWOI transposed).
        bias: the bias the reference added, or None.
        candidate_output: the candidate's output, channels-last.
        reference_dtype: the reference's compute dtype.
        candidate_dtype: the candidate's compute dtype.
        candidate_kernel: the kernel the candidate reports using (canonical), if known.
        candidate_bias: the bias the candidate reports using.
        form: the gamma form of the rounding bound.

    Returns:
        One `Finding` per cause in `CAUSES`, in that order.
    """
    ctx = Context(reference_spec, candidate_spec, x, kernel, bias, candidate_output, reference_dtype,
                  candidate_dtype, candidate_kernel, candidate_bias)
    precision = lower_precision(reference_dtype, candidate_dtype)
    scale = _scale(ctx.candidate)
    findings = {}
    for hypothesis in HYPOTHESES:
        trials = hypothesis.trials(ctx)
        findings[hypothesis.cause] = _finding(ctx, hypothesis.cause, trials, hypothesis.context_text(ctx), precision,
                                              scale, form)
    findings["tf32"] = _tf32(ctx, scale, form)
    return tuple(findings[c] for c in CAUSES)


def confirmed(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.confirmed]


def _scale(candidate: np.ndarray) -> float:
    finite = np.abs(candidate[np.isfinite(candidate)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _measure(ctx: Context, trial: Trial, precision: str, form: BoundForm) -> _Measured | None:
    if trial.output is None:
        return None
    candidate = ctx.candidate if trial.candidate is None else trial.candidate
    if trial.output.shape != candidate.shape or trial.output.size == 0:
        return None
    p = trial.precision or precision
    ops = trial.operands
    g = gamma(ctx.dot_length(ops), p, form)
    diff = _max_diff(trial.output, candidate)
    with np.errstate(all="ignore"):
        # The largest bound any position can have: screen out the recomputations that are far off
        # before paying for the convolution of magnitudes.
        bias_top = 0.0 if ops.bias is None else float(np.abs(ops.bias).max())
        reach = float(np.abs(ops.x).max()) * ctx.kernel_reach(ops) + bias_top
        ceiling = g.value * reach + g.unit_roundoff * (reach + bias_top)
    if math.isfinite(ceiling) and diff > ceiling:
        return _Measured(trial, diff, diff / ceiling if ceiling > 0 else math.inf, False, p, True)
    with np.errstate(all="ignore"):
        magnitude = ctx.magnitude(ops)
    bound = bound_from_magnitude(magnitude, g, ops.bias)
    if trial.region is not None:
        bound = bound[trial.region]
    result = compare_arrays(trial.output, candidate, rule=Rule.bound(g, Tolerance(0.0, 0.0)), bound=bound, top_k=0)
    return _Measured(trial, diff, result.max_ratio, bool(result), p, False)


def _finding(ctx: Context, cause: str, trials: list[Trial] | NotApplicable, context: str, precision: str,
             scale: float, form: BoundForm) -> Finding:
    prefix = f"{context}; " if context else ""
    if isinstance(trials, NotApplicable):
        return Finding(cause, False, None, f"{prefix}not applicable: {trials.why}")
    measured = [m for m in (_measure(ctx, t, precision, form) for t in trials) if m is not None]
    if not measured:
        return Finding(cause, False, None,
                       f"{prefix}{len(trials)} variant(s) tried, none gives the candidate's output shape")
    best = min(measured, key=lambda m: (not m.confirmed, m.ratio, m.diff))
    verdict = "matches the candidate to rounding level" if best.confirmed else "does not explain it"
    tried = f" (best of {len(trials)})" if len(trials) > 1 else ""
    ratio = f"{'more than ' if best.screened else ''}{_times(best.ratio)} the {best.precision} rounding bound"
    return Finding(cause, best.confirmed, best.diff / scale,
                   f"{prefix}{best.trial.detail}{tried}: max diff {best.diff:.3g}, {ratio}, {verdict}", best.ratio)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |a - b|, a NaN on either side counting as infinitely far."""
    with np.errstate(all="ignore"):
        d = np.abs(a - b)
    return float(np.where(np.isnan(d), np.inf, d).max())


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "infinitely many times (a zero bound)"
    return f"{ratio:.3g} times"


def _tf32(ctx: Context, scale: float, form: BoundForm) -> Finding:
    """A float32 result computed with TF32 multiplicands (GPU tensor cores since Ampere).

    Confirmed only when the candidate is within *float32* rounding of the TF32-emulated reference while
    outside the plain float32 bound: a real bug of the same size does not match the emulation that well.
    """
    if ctx.candidate_dtype != "float32" or ctx.reference_dtype not in ("float32", "float64"):
        return Finding("tf32", False, None, f"not applicable: the candidate computes in {ctx.candidate_dtype}, "
                                            "TF32 replaces float32 arithmetic only")
    emulated = tf32_reference(ctx.x, ctx.kernel, ctx.spec, ctx.bias)
    if emulated.shape != ctx.candidate.shape:
        return Finding("tf32", False, None, "not applicable: the outputs have different shapes")
    check = tf32_consistency(ctx.candidate, ctx.x, ctx.kernel, ctx.spec, ctx.bias, form)
    diff = _max_diff(emulated, ctx.candidate)
    return Finding("tf32", check.consistent, diff / scale, check.summary, check.against_tf32.max_ratio)


__all__ = ["CAUSES", "Finding", "confirmed", "diagnose"]
