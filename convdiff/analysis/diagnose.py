"""Why two outputs differ: every hypothesis of `convdiff.analysis.hypotheses` recomputes the float64
reference with one suspected mistake applied, and is confirmed only when that recomputation matches
the candidate under the same rounding model as the verdict (`convdiff.reference.rounding`): the
bound of the candidate's own arithmetic, built from the recomputation's own operands.

The residual shown is `max |recomputed - candidate| / max |candidate|`; the ratio, the largest
`|recomputed - candidate| / bound`. A structural mistake (a wrong pad, a transposed kernel) moves
outputs far above the bound. The NaN/inf pattern is compared first: a recomputation that is finite
where the candidate overflowed explains nothing, and where every output is non-finite on both sides
nothing is left to compare, so only an overflow can be confirmed there.

The same recomputations also say what an *equivalent* result cannot exclude (`resolution`): a
structural mistake whose recomputation is within the bound too cannot be told apart from rounding at
this precision.

Pure: arrays and specs in, frozen results out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from convdiff.analysis.bound import tf32_consistency
from convdiff.analysis.hypotheses import HYPOTHESES, Context, Hypothesis, NotApplicable, Trial
from convdiff.compare import Rule, Tolerance, compare_arrays
from convdiff.errors import BadInputError
from convdiff.reference.rounding import Arithmetic, BoundForm, RoundingModel, tf32_reference
from convdiff.spec.convspec import ConvSpec

CAUSES = ("dtype", "tf32", *(h.cause for h in HYPOTHESES[1:]))

# The smallest mistake the calibration injects changes outputs by 1% (one channel scaled by 1.01):
# where the bound cannot be sure to see a change of that size in every output channel, a passing
# verdict says so.
RESOLUTION_LIMIT = 0.01
# The structural hypotheses are recomputed for an equivalent verdict only when a change of 0.1% of an
# output may hide under its bound (float16, bfloat16, TF32, or very long sums). Finer than that, a pad,
# a transpose or a bias hides only if it changes every output by less than 0.1% (a bias 1000 times
# smaller than the outputs), and the recomputations would triple the cost of a small float32
# comparison (measured 6.4 -> 18 ms for 1x16x16x4, numpy vs nn).
STRUCTURAL_CHECK_FROM = 1e-3


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
    same_as: tuple[str, ...] = ()
    """Other confirmed causes whose recomputation coincides with this one's on this data (within the
    rounding bound): the data cannot tell them apart."""


@dataclass(frozen=True)
class _Measured:
    trial: Trial
    diff: float
    ratio: float
    confirmed: bool
    precision: str
    screened: bool
    """The ratio is only a lower bound: the difference exceeds the largest bound any position can have."""
    why: str = ""
    """Why a trial failed before any value was compared (its NaN/inf pattern), or ""."""
    bound: np.ndarray | None = field(default=None, repr=False)
    """The bound the trial was measured with, when it was computed."""
    finite: int = -1
    """Positions finite on both sides that were compared (-1: not counted)."""


def diagnose(reference_spec: ConvSpec, candidate_spec: ConvSpec, x: np.ndarray, kernel: np.ndarray,
             bias: np.ndarray | None, candidate_output: np.ndarray, *, reference_dtype: str = "float64",
             candidate_dtype: str = "float32", candidate_kernel: np.ndarray | None = None,
             candidate_bias: np.ndarray | None = None, form: BoundForm = BoundForm.PROBABILISTIC,
             candidate_arithmetic: Arithmetic | None = None) -> tuple[Finding, ...]:
    """Test every hypothesis about why `candidate_output` differs from the reference convolution.

    Args:
        reference_spec: the reference side's effective spec (its kind, strides, pads and dilation are taken
            from it).
        candidate_spec: the candidate side's effective spec (its pads are one padding hypothesis).
        x: the reference side's input, channels-last (its dtype is the precision the operands are held in).
        kernel: the kernel the reference used, canonical (HWIO; HWOI transposed).
        bias: the bias the reference added, or None.
        candidate_output: the candidate's output, channels-last.
        reference_dtype: the reference's compute dtype.
        candidate_dtype: the candidate's compute dtype.
        candidate_kernel: the kernel the candidate reports using (canonical), if known.
        candidate_bias: the bias the candidate reports using.
        form: the form of the rounding bound.
        candidate_arithmetic: how the candidate computes (the rounding model); default: a CPU framework
            computing in `candidate_dtype`.

    Returns:
        One `Finding` per cause in `CAUSES`, in that order.
    """
    ctx = Context(reference_spec, candidate_spec, x, kernel, bias, candidate_output, reference_dtype,
                  candidate_dtype, candidate_kernel, candidate_bias)
    arithmetic = candidate_arithmetic or Arithmetic.computing_in(candidate_dtype)
    scale = _scale(ctx.candidate)
    findings: dict[str, Finding] = {}
    best: dict[str, _Measured] = {}
    for hypothesis in HYPOTHESES:
        finding, measured = _finding(ctx, hypothesis, arithmetic, scale, form)
        findings[hypothesis.cause] = finding
        if measured is not None and measured.confirmed and hypothesis.structural:
            best[hypothesis.cause] = measured
    findings["tf32"] = _tf32(ctx, scale, form, arithmetic)
    for cause, others in _coinciding(best).items():
        findings[cause] = _with_same(findings[cause], others)
    return tuple(findings[c] for c in CAUSES)


def confirmed(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.confirmed]


@dataclass(frozen=True)
class Resolution:
    """What an equivalent verdict cannot exclude at this precision."""

    relative: float | None
    """The smallest relative change of an output channel's values that is sure to fail the bound, for
    the worst-resolved channel (None when every reference value is 0). A change of relative size e at an
    element fails for sure when e |y| exceeds 1.5 times its bound (a correct result uses at most half of
    the bound): 1.5 min(bound / |y|) over a channel's elements, the largest over the channels."""
    indistinguishable: tuple[Finding, ...]
    """Structural mistakes whose recomputation differs from the reference but fits the candidate within
    the rounding bound as well: at this precision they cannot be distinguished from rounding."""
    checked: bool = True
    """Whether the structural hypotheses were recomputed (only from `STRUCTURAL_CHECK_FROM` on)."""

    @property
    def coarse(self) -> bool:
        """Some output channel cannot be sure to show a 1% change of its values (`RESOLUTION_LIMIT`)."""
        return self.relative is not None and self.relative > RESOLUTION_LIMIT

    @property
    def distinguishable(self) -> bool:
        """No known mistake fits within rounding, and a 1% change of an output channel would be seen."""
        return not self.indistinguishable and not self.coarse

    @property
    def causes(self) -> tuple[str, ...]:
        return tuple(f.cause for f in self.indistinguishable)


def relative_resolution(reference_output: np.ndarray, bound: np.ndarray) -> float | None:
    """`Resolution.relative`: 1.5 min(bound / |y|) per output channel (last axis), the largest over channels."""
    ref = np.abs(np.asarray(reference_output, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.asarray(bound, dtype=np.float64) / ref
    rel = np.where((ref > 0) & np.isfinite(rel), rel, np.inf)
    per_channel = rel.reshape(-1, rel.shape[-1]).min(axis=0) if rel.ndim else rel.reshape(1)
    per_channel = per_channel[np.isfinite(per_channel)]
    return 1.5 * float(per_channel.max()) if per_channel.size else None


def resolution(reference_spec: ConvSpec, candidate_spec: ConvSpec, x: np.ndarray, kernel: np.ndarray,
               bias: np.ndarray | None, reference_output: np.ndarray, candidate_output: np.ndarray,
               bound: np.ndarray, *, reference_dtype: str = "float64", candidate_dtype: str = "float32",
               form: BoundForm = BoundForm.PROBABILISTIC,
               candidate_arithmetic: Arithmetic | None = None) -> Resolution:
    """The resolution of a passing comparison: its relative bound, and the structural mistakes it cannot exclude.

    Each structural hypothesis is recomputed as in `diagnose` (when the relative resolution is
    `STRUCTURAL_CHECK_FROM` or coarser); one is indistinguishable when its recomputation actually
    changes the output (it is not the reference's own result on this data) and yet matches the
    candidate within the rounding bound.
    """
    relative = relative_resolution(reference_output, bound)
    if relative is None or relative < STRUCTURAL_CHECK_FROM:
        return Resolution(relative, (), checked=False)
    ctx = Context(reference_spec, candidate_spec, x, kernel, bias, candidate_output, reference_dtype,
                  candidate_dtype, None, None)
    arithmetic = candidate_arithmetic or Arithmetic.computing_in(candidate_dtype)
    scale = _scale(ctx.candidate)
    found = []
    for hypothesis in HYPOTHESES:
        if not hypothesis.structural:
            continue
        trials = hypothesis.trials(ctx)
        if isinstance(trials, NotApplicable):
            continue
        # Only mistakes that change the output: one that leaves it as it was is not a matter of precision.
        changing = [t for t in trials if t.output is not None and _changes(ctx, t)]
        finding, measured = _finding(ctx, hypothesis, arithmetic, scale, form, changing)
        if measured is not None and measured.confirmed:
            found.append(finding)
    return Resolution(relative, tuple(found))


def _changes(ctx: Context, trial: Trial) -> bool:
    base = ctx.base if trial.region is None else ctx.base[trial.region]
    return base.shape != trial.output.shape or not np.array_equal(base, trial.output)


def _scale(candidate: np.ndarray) -> float:
    finite = np.abs(candidate[np.isfinite(candidate)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _pattern(a: np.ndarray, b: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether the NaN/inf patterns agree (same positions, same infinities), and the mask finite on both."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    agree = np.array_equal(fa, fb) and np.array_equal(np.isnan(a), np.isnan(b))
    if agree:
        inf = np.isinf(a)
        agree = bool(np.array_equal(a[inf], b[inf]))
    return agree, fa & fb


def _measure(ctx: Context, trial: Trial, arithmetic: Arithmetic, form: BoundForm) -> _Measured | None:
    if trial.output is None:
        return None
    candidate = ctx.candidate if trial.candidate is None else trial.candidate
    if trial.output.shape != candidate.shape or trial.output.size == 0:
        return None
    side = Arithmetic.computing_in(trial.precision) if trial.precision else arithmetic
    label = side.output if trial.precision is None else trial.precision
    precisions = ((trial.precision, trial.precision) if trial.precision
                  else (ctx.input_precision, ctx.kernel_precision))
    agree, finite = _pattern(trial.output, candidate)
    if not agree:
        return _Measured(trial, math.inf, math.inf, False, label, False, "NaN/inf at other positions than the candidate's")
    if not finite.any() and not trial.nonfinite_only:
        return _Measured(trial, math.inf, math.inf, False, label, False,
                         "every output is NaN or infinite on both sides: nothing finite left to compare")
    with np.errstate(all="ignore"):
        diff = float(np.abs(trial.output[finite] - candidate[finite]).max()) if finite.any() else 0.0
    ops = trial.operands
    model = RoundingModel(form, ctx.dot_length(ops), (side,), *precisions)
    with np.errstate(all="ignore"):
        # The largest bound any position can have: screen out the recomputations that are far off
        # before paying for the convolution of magnitudes.
        bias_top = 0.0 if ops.bias is None else float(np.abs(ops.bias).max())
        reach = float(np.abs(ops.x).max()) * ctx.kernel_reach(ops)
        ceiling = float(model.bound(reach, reach + bias_top, None if ops.bias is None else bias_top))
    if math.isfinite(ceiling) and diff > ceiling:
        return _Measured(trial, diff, diff / ceiling if ceiling > 0 else math.inf, False, label, True)
    try:
        with np.errstate(all="ignore"):
            full = trial.output if trial.region is None else ctx.conv(ops)
            magnitude = ctx.magnitude(ops)
    except BadInputError as err:  # e.g. a stride longer than the recomputation's padded input
        return _Measured(trial, diff, math.inf, False, label, False, f"no valid convolution to bound ({err})")
    bound = model.bound(magnitude, full, ops.bias)
    if trial.region is not None:
        bound = bound[trial.region]
    rule = Rule.bound(model, Tolerance(0.0, 0.0, equal_nan=trial.nonfinite_only))
    result = compare_arrays(trial.output, candidate, rule=rule, bound=bound, top_k=0)
    return _Measured(trial, diff, result.max_ratio, bool(result), label, False, bound=bound,
                     finite=int(np.count_nonzero(finite)))


def _finding(ctx: Context, hypothesis: Hypothesis, arithmetic: Arithmetic, scale: float, form: BoundForm,
             trials: list[Trial] | None = None) -> tuple[Finding, _Measured | None]:
    cause = hypothesis.cause
    context = hypothesis.context_text(ctx)
    prefix = f"{context}; " if context else ""
    if trials is None:
        trials = hypothesis.trials(ctx)
    if isinstance(trials, NotApplicable):
        return Finding(cause, False, None, f"{prefix}not applicable: {trials.why}"), None
    measured = [m for m in (_measure(ctx, t, arithmetic, form) for t in trials) if m is not None]
    if not measured:
        return Finding(cause, False, None,
                       f"{prefix}{len(trials)} variant(s) tried, none gives the candidate's output shape"), None
    best = min(measured, key=lambda m: (not m.confirmed, m.ratio, m.diff))
    tried = f" (best of {len(trials)})" if len(trials) > 1 else ""
    if best.why:
        return Finding(cause, False, None, f"{prefix}{best.trial.detail}{tried}: {best.why}, does not explain it",
                       None), best
    verdict = "matches the candidate to rounding level" if best.confirmed else "does not explain it"
    if best.finite == 0:
        return Finding(cause, best.confirmed, 0.0, f"{prefix}{best.trial.detail}{tried}: no output is finite, and the "
                       "NaN/inf pattern is the candidate's at every position", best.ratio), best
    ratio = f"{'more than ' if best.screened else ''}{_times(best.ratio)} the {best.precision} rounding bound"
    return Finding(cause, best.confirmed, best.diff / scale,
                   f"{prefix}{best.trial.detail}{tried}: max diff {best.diff:.3g}, {ratio}, {verdict}",
                   best.ratio), best


def _coinciding(best: dict[str, _Measured]) -> dict[str, tuple[str, ...]]:
    """For each confirmed structural cause, the others whose recomputation equals its own within the bound."""
    full = {c: m for c, m in best.items() if m.trial.region is None and m.bound is not None}
    same: dict[str, list[str]] = {c: [] for c in full}
    causes = list(full)
    for i, a in enumerate(causes):
        for b in causes[i + 1:]:
            ma, mb = full[a], full[b]
            if ma.trial.output.shape != mb.trial.output.shape:
                continue
            agree, finite = _pattern(ma.trial.output, mb.trial.output)
            with np.errstate(all="ignore"):
                close = agree and bool(np.all(np.abs(ma.trial.output[finite] - mb.trial.output[finite])
                                              <= np.minimum(ma.bound, mb.bound)[finite]))
            if close:
                same[a].append(b)
                same[b].append(a)
    return {c: tuple(others) for c, others in same.items() if others}


def _with_same(finding: Finding, others: tuple[str, ...]) -> Finding:
    detail = (f"{finding.detail}; gives the same recomputation as {', '.join(others)} on this data: "
              "they cannot be told apart")
    return Finding(finding.cause, finding.confirmed, finding.residual, detail, finding.bound_ratio, others)


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "infinitely many times (a zero bound)"
    return f"{ratio:.3g} times"


def _tf32(ctx: Context, scale: float, form: BoundForm, arithmetic: Arithmetic) -> Finding:
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
    check = tf32_consistency(ctx.candidate, ctx.given_x, ctx.given_kernel, ctx.spec, ctx.bias, form, arithmetic)
    with np.errstate(all="ignore"):
        d = np.abs(emulated - ctx.candidate)
    diff = float(np.where(np.isnan(d), np.inf, d).max())
    return Finding("tf32", check.consistent, diff / scale, check.summary, check.against_tf32.max_ratio)


__all__ = ["CAUSES", "RESOLUTION_LIMIT", "STRUCTURAL_CHECK_FROM", "Finding", "Resolution", "confirmed", "diagnose", "relative_resolution",
           "resolution"]
