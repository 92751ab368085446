"""Compare a candidate array against a reference: two arrays in, a frozen `Comparison` out.

One rule decides (`convdiff.compare.rules.Rule`): the elementwise tolerance

    |candidate - reference| <= atol + rtol * |reference|

or, for convolutions, the rounding-error bound of each output's dot product, `|candidate -
reference| <= bound[pos]`. The relative part scales with the *reference*, so swapping the two sides
can change the result. Every count the comparison carries (`mismatched`, the per-axis counts, the
worst positions, `max_ratio`) is by that rule.

Attributes come before values. Arrays of different shapes are `SHAPE_MISMATCH` and get no value
statistics. Arrays with no elements are `EMPTY`, an error rather than a vacuous pass. Arrays of
different dtypes are compared by value but are never `IDENTICAL`, which means bitwise equal.

Differences are computed in float64, so `|candidate - reference|` is exact for float16, bfloat16
and float32 inputs (integers wider than 53 bits are rounded on the way).

Non-finite values are compared first, by pattern:

- A position where either side is NaN is a mismatch, unless `equal_nan` is set and both sides
  are NaN. Bitwise-identical arrays that hold NaN are therefore a `MISMATCH` unless `equal_nan`
  is set, and an all-NaN output never passes by default.
- An infinity matches only an infinity of the same sign at the same position.
- Positions where either side is NaN or infinite are counted (`reference_nan`, `candidate_inf`,
  `nonfinite_mismatched`, ...) and left out of every figure (`max_abs_diff`, `max_rel_diff`,
  `sum_abs_diff`, `mean_abs_diff`, `rmse`, `max_ratio`, `median_ratio`, `worst`):
  `nonfinite_excluded` says how many. A failing non-finite position makes `min_atol` infinite.
- Where the rule's threshold is not finite (a bound whose magnitudes overflowed), the position is
  compared exactly and counted in `exact_compared`.

The arrays are read once, in chunks of `chunk_size` elements in C order, with buffers of at most
one chunk each: the extra memory does not grow with the arrays (apart from the per-axis counts,
one per index of each axis). Where the two sides share a dtype, each chunk is first compared
bitwise: equal elements need no arithmetic, so a chunk where few elements differ is computed on
those alone, and one where most differ is computed whole, in cache-sized blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from convdiff.compare.rules import Rule, RuleKind
from convdiff.compare.tolerance import DEFAULT_TOLERANCES, Tolerance, default_tolerance, resolve_tolerance
from convdiff.errors import BadInputError

__all__ = [
    "DEFAULT_TOLERANCES",
    "Comparison",
    "Tolerance",
    "Verdict",
    "WorstPosition",
    "compare_arrays",
    "default_tolerance",
]

# Measured fastest of 2^14..2^20 on a 2-core Xeon (benchmarks/bench_compare.py --sweep): large
# enough to amortise the per-call overhead of NumPy, small enough for a chunk to stay in L2.
DEFAULT_CHUNK_SIZE = 1 << 17
# Above this fraction of differing elements a chunk is computed whole instead of gathered.
_DENSE_FRACTION = 0.25
# Chunks where most elements differ are computed in blocks of this many elements, so that the
# float64 buffers stay in cache; and compared bitwise only every _PROBE_EVERY chunks.
_BLOCK = 1 << 15
_PROBE_EVERY = 8
# Axes up to this length are binned whole; longer ones only over the span a chunk hits.
_SHORT_AXIS = 4096
# Mismatches above 1/_MASKED_PROFILE of a chunk are profiled from a mask rather than positions.
_MASKED_PROFILE = 32
# The median of |diff| / threshold is read from a histogram of log2(ratio) with this many bins
# per octave over [2^-_RATIO_OCTAVES, 2^_RATIO_OCTAVES]: within 0.6% of the exact median.
_RATIO_BINS_PER_OCTAVE = 64
_RATIO_OCTAVES = 128


class Verdict(StrEnum):
    """The outcome of a comparison; only `IDENTICAL` and `EQUIVALENT` pass.

    - `IDENTICAL`: same shape and dtype, bitwise equal (holding NaN only under `equal_nan`).
    - `EQUIVALENT`: every element within the rule.
    - `MISMATCH`: at least one element outside it.
    - `SHAPE_MISMATCH`: the shapes differ; no value was compared.
    - `EMPTY`: no elements; an error, never a vacuous pass.
    """

    IDENTICAL = "identical"
    EQUIVALENT = "equivalent"
    MISMATCH = "mismatch"
    SHAPE_MISMATCH = "shape_mismatch"
    EMPTY = "empty"


PASSING = (Verdict.IDENTICAL, Verdict.EQUIVALENT)


@dataclass(frozen=True)
class WorstPosition:
    """One of the positions furthest outside (or least inside) the rule."""

    index: tuple[int, ...]
    """Position in the arrays (one entry per axis)."""
    reference: float
    """Reference value there."""
    candidate: float
    """Candidate value there."""
    abs_diff: float
    """`|candidate - reference|`, computed in float64."""
    ratio: float
    """`abs_diff` over the rule's threshold there (> 1: fails; inf: the threshold is 0)."""


@dataclass(frozen=True)
class Comparison:
    """The result of comparing a candidate array against a reference; truthy when it passes."""

    verdict: Verdict
    """Overall outcome by `rule`; only `IDENTICAL` and `EQUIVALENT` pass."""
    rule: Rule
    """The rule that decided (and that every count here follows)."""
    reference_shape: tuple[int, ...]
    """Shape of the reference array."""
    candidate_shape: tuple[int, ...]
    """Shape of the candidate array."""
    reference_dtype: str
    """NumPy name of the reference dtype."""
    candidate_dtype: str
    """NumPy name of the candidate dtype."""
    shape_match: bool
    """Whether the shapes are equal; when they are not, no value was compared."""
    dtype_match: bool
    """Whether the dtype names are equal; different dtypes are never `IDENTICAL`."""
    total: int
    """Elements compared (0 when the shapes differ)."""
    mismatched: int
    """Elements failing the rule, NaN and infinity mismatches included."""
    nonfinite_mismatched: int
    """Positions where the non-finite patterns disagree (NaN or an infinity on one side only, or of the other sign)."""
    nonfinite_excluded: int
    """Positions left out of the figures because a side is NaN or infinite there."""
    exact_compared: int
    """Positions compared exactly because the rule's threshold there is not finite."""
    exceeded: int
    """Positions finite on both sides whose difference exceeds a finite threshold of the rule."""
    exact_mismatched: int
    """Positions compared exactly (`exact_compared`) whose values differ.

    `mismatched - exceeded - exact_mismatched` positions fail on their NaN/inf pattern."""
    max_abs_diff: float
    """Largest `|candidate - reference|` over positions finite on both sides."""
    max_abs_diff_index: tuple[int, ...] | None
    """First position of `max_abs_diff`; None when no position differs."""
    max_rel_diff: float
    """Largest `|candidate - reference| / |reference|` (inf where only the reference is 0)."""
    max_rel_diff_index: tuple[int, ...] | None
    """First position of `max_rel_diff`; None when no position differs."""
    sum_abs_diff: float
    """Sum of `|candidate - reference|` over positions finite on both sides."""
    mean_abs_diff: float
    """`sum_abs_diff` over the number of finite positions (NaN when there are none)."""
    rmse: float
    """Root mean square difference over the finite positions (NaN when there are none)."""
    max_ratio: float
    """Largest `|candidate - reference|` over the rule's threshold (1.0 = at the limit; inf: a zero threshold)."""
    max_ratio_index: tuple[int, ...] | None
    """First position of `max_ratio`; None when nothing differs."""
    median_ratio: float
    """Median of that ratio over the finite positions, within 0.6% (NaN when there are none)."""
    reference_nan: int
    """NaN elements in the reference."""
    candidate_nan: int
    """NaN elements in the candidate."""
    reference_inf: int
    """Infinite elements (either sign) in the reference."""
    candidate_inf: int
    """Infinite elements (either sign) in the candidate."""
    nan_positions_agree: bool
    """Whether the two sides hold NaN at exactly the same positions."""
    worst: tuple[WorstPosition, ...]
    """Up to `top_k` differing finite positions, worst first by the rule (by ratio under the bound,
    by abs diff under the elementwise rule), ties by position."""
    min_atol: float
    """Smallest atol that would pass at the tolerance's rtol: 0.0 if all pass at 0, inf if none can."""
    mismatch_counts_by_axis: tuple[tuple[int, ...], ...]
    """Per axis, mismatches (by the rule) at each index along it (NHWC: per batch, row, column, channel)."""

    def __bool__(self) -> bool:
        return self.verdict in PASSING

    @property
    def tolerance(self) -> Tolerance:
        return self.rule.tolerance

    @property
    def mismatch_fraction(self) -> float:
        """`mismatched / total`, 0.0 when nothing was compared."""
        return self.mismatched / self.total if self.total else 0.0

    @property
    def elementwise_verdict(self) -> Verdict:
        """What the elementwise tolerance alone would say (a figure; under the bound rule it decides nothing)."""
        if self.verdict in (Verdict.SHAPE_MISMATCH, Verdict.EMPTY, Verdict.IDENTICAL):
            return self.verdict
        if self.rule.kind is RuleKind.ELEMENTWISE:
            return self.verdict
        return Verdict.MISMATCH if self.min_atol > self.tolerance.atol else Verdict.EQUIVALENT


def compare_arrays(
    reference: Any,
    candidate: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    tolerance: Tolerance | None = None,
    equal_nan: bool = False,
    rule: Rule | None = None,
    bound: Any = None,
    top_k: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Comparison:
    """Compare `candidate` against `reference`, element by element, in one pass.

    Args:
        reference: The array taken as correct; relative error divides by it.
        candidate: The array under test, of the same shape.
        atol: Absolute tolerance; give it together with `rtol`, or neither.
        rtol: Relative tolerance, a multiple of `|reference|`.
        tolerance: The tolerance as one value, instead of `atol`/`rtol`/`equal_nan`.
        equal_nan: Whether NaN on both sides at the same position counts as a match.
        rule: The deciding rule, instead of a tolerance (the bound rule needs `bound`).
        bound: The per-element bound of the bound rule, an array of the reference's shape.
        top_k: How many of the worst positions to report.
        chunk_size: Elements read per step; bounds the extra memory used.

    Returns:
        A `Comparison`, truthy when the verdict is `IDENTICAL` or `EQUIVALENT`. A failed
        comparison is returned, not raised.

    Raises:
        BadInputError: (a `ValueError`) for contradictory or invalid arguments, or arrays whose
            dtype is not boolean, integer or real floating point.
    """
    reference = np.asarray(reference)
    candidate = np.asarray(candidate)
    for side, array in (("reference", reference), ("candidate", candidate)):
        _check_dtype(side, array.dtype)
    if rule is None:
        rule = Rule.elementwise(resolve_tolerance(atol, rtol, tolerance, equal_nan, reference.dtype, candidate.dtype))
    elif atol is not None or rtol is not None or tolerance is not None:
        raise BadInputError("give either rule= or a tolerance (atol/rtol, tolerance=), not both")
    if not _is_int(top_k) or top_k < 0:
        raise BadInputError(f"top_k must be an integer >= 0, got {top_k!r}")
    if not _is_int(chunk_size) or chunk_size < 1:
        raise BadInputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")

    shape_match = reference.shape == candidate.shape
    attributes = {
        "rule": rule,
        "reference_shape": tuple(reference.shape),
        "candidate_shape": tuple(candidate.shape),
        "reference_dtype": reference.dtype.name,
        "candidate_dtype": candidate.dtype.name,
        "shape_match": shape_match,
        "dtype_match": reference.dtype.name == candidate.dtype.name,
    }
    if not shape_match:
        return _without_values(Verdict.SHAPE_MISMATCH, attributes, ())
    if reference.size == 0:
        return _without_values(Verdict.EMPTY, attributes, tuple((0,) * n for n in reference.shape))
    if rule.kind is RuleKind.BOUND:
        if bound is None:
            raise BadInputError("the bound rule needs its bound array (bound=)")
        bound = np.asarray(bound)
        if bound.shape != reference.shape:
            raise BadInputError(f"the bound has shape {bound.shape}, the arrays {reference.shape}")
    else:
        bound = None

    scan = _Scan(reference, candidate, rule, int(top_k), min(int(chunk_size), reference.size))
    with np.errstate(all="ignore"):
        for offset, ref_chunk, cand_chunk, bound_chunk in _chunks(reference, candidate, bound, scan.chunk_size):
            scan.add_chunk(ref_chunk, cand_chunk, bound_chunk, offset)
    return scan.result(attributes)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_dtype(side: str, dtype: np.dtype) -> None:
    # ml_dtypes floats (bfloat16, float8_*) have kind "V" but cast to float64.
    real = dtype.kind in "biuf" or (
        dtype.kind == "V" and dtype.names is None and np.can_cast(dtype, np.float64)
    )
    if not real:
        raise BadInputError(f"{side} dtype {dtype} is not boolean, integer or real floating point")


def _without_values(verdict: Verdict, attributes: dict[str, Any],
                    axis_counts: tuple[tuple[int, ...], ...]) -> Comparison:
    return Comparison(
        verdict=verdict, **attributes, total=0, mismatched=0, nonfinite_mismatched=0, nonfinite_excluded=0,
        exact_compared=0, exceeded=0, exact_mismatched=0, max_abs_diff=0.0, max_abs_diff_index=None, max_rel_diff=0.0, max_rel_diff_index=None,
        sum_abs_diff=0.0, mean_abs_diff=0.0, rmse=0.0, max_ratio=0.0, max_ratio_index=None, median_ratio=math.nan,
        reference_nan=0, candidate_nan=0, reference_inf=0, candidate_inf=0, nan_positions_agree=True, worst=(),
        min_atol=0.0, mismatch_counts_by_axis=axis_counts)


def _chunks(reference: np.ndarray, candidate: np.ndarray, bound: np.ndarray | None, chunk_size: int):
    """Yield (flat offset, reference chunk, candidate chunk, bound chunk or None), 1-D, in C order."""
    ref_flat = _flat(reference)
    cand_flat = _flat(candidate)
    bound_flat = None if bound is None else _flat(bound)
    for start in range(0, reference.size, chunk_size):
        stop = start + chunk_size
        yield (start, ref_flat[start:stop], cand_flat[start:stop],
               None if bound_flat is None else bound_flat[start:stop])


def _flat(array: np.ndarray):
    # A view when C-contiguous; otherwise `.flat` copies one chunk at a time, never the whole.
    return array.reshape(-1) if array.flags.c_contiguous else array.flat


class _Scan:
    """Running statistics over the chunks, taken in increasing flat-index order."""

    def __init__(self, reference: np.ndarray, candidate: np.ndarray, rule: Rule, top_k: int, chunk_size: int):
        self.shape = reference.shape
        self.rule = rule
        self.bound_rule = rule.kind is RuleKind.BOUND
        self.atol, self.rtol = rule.tolerance.atol, rule.tolerance.rtol
        self.equal_nan = rule.tolerance.equal_nan
        self.top_k = top_k
        self.chunk_size = chunk_size
        same_dtype = reference.dtype == candidate.dtype
        # Bitwise comparison views each chunk as unsigned integers of the element size.
        self.bits = np.dtype(f"u{reference.dtype.itemsize}") if same_dtype else None
        self.identical = same_dtype
        self.floating = reference.dtype.kind in "fV" or candidate.dtype.kind in "fV"  # "V": ml_dtypes floats
        # Reused with out=: float64 buffers of one block each, a bitwise mask of one chunk.
        block = min(chunk_size, _BLOCK)
        self._ref = np.empty(block)
        self._cand = np.empty(block)
        self._diff = np.empty(block)
        self._limit = np.empty(block) if self.bound_rule else self._ref  # the bound's float64 copy
        self._tmp = np.empty(block)
        self._tmp2 = np.empty(block)
        self._failing = np.empty(block, dtype=bool)
        self._maybe = np.empty(block, dtype=bool)
        self._bin_index = np.empty(block, dtype=np.intp)
        self._differ = np.empty(chunk_size, dtype=bool)
        self._skip_probes = 0
        self.profile = _AxisProfile(self.shape, chunk_size)

        self.mismatched = 0
        self.nonfinite_mismatched = 0
        self.exact = 0
        self.exceeded = 0
        self.exact_mismatched = 0
        self.finite = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.max_abs = 0.0
        self.max_abs_at = -1
        self.max_rel = 0.0
        self.max_rel_at = -1
        self.max_ratio = 0.0
        self.max_ratio_at = -1
        self.min_atol = 0.0
        self.ref_nan = self.cand_nan = self.ref_inf = self.cand_inf = 0
        self.nan_disagree = 0
        self.ratio_zero = 0
        self.ratio_bins = np.zeros(2 * _RATIO_OCTAVES * _RATIO_BINS_PER_OCTAVE, dtype=np.int64)
        # The top-k so far, sorted by (-key, flat index); key is the ratio under the bound rule, the
        # abs diff under the elementwise one. Chunks come in index order, so a later position must
        # beat the k-th key strictly: on ties the earlier position wins.
        self.top_key = np.empty(0)
        self.top_at = np.empty(0, dtype=np.intp)
        self.top_ref = np.empty(0)
        self.top_cand = np.empty(0)
        self.top_diff = np.empty(0)
        self.top_ratio = np.empty(0)
        self.top_floor = 0.0

    def add_chunk(self, ref: np.ndarray, cand: np.ndarray, bound: np.ndarray | None, offset: int) -> None:
        n = ref.size
        if self.bits is not None and self._skip_probes == 0:
            differ = np.not_equal(ref.view(self.bits), cand.view(self.bits), out=self._differ[:n])
            differing = np.flatnonzero(differ)
            n_differ = differing.size
            if n_differ <= _DENSE_FRACTION * n:
                # Equal bits mean a zero difference: compute only where the bits differ.
                self._add_equal_bits(ref, bound, differ if n_differ else None, n - n_differ, offset)
                if n_differ:
                    self.identical = False
                    for start in range(0, n_differ, _BLOCK):
                        at = differing[start:start + _BLOCK]
                        where = at + offset
                        failing = self._failing[:at.size]
                        if self._add_values(ref[at].astype(np.float64), cand[at].astype(np.float64),
                                            None if bound is None else bound[at].astype(np.float64),
                                            where, failing):
                            self._add_failing(failing, where, offset, n)
                return
            self.identical = False
            # Where most bits differ the probe is wasted work: skip it for a few chunks.
            self._skip_probes = _PROBE_EVERY - 1
        elif self._skip_probes:
            self._skip_probes -= 1
        # Blocks small enough for the float64 buffers to stay in cache; one mask for the chunk.
        failing = self._differ[:n]
        any_failing = False
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            any_failing |= self._add_values(
                self._as_float64(ref[start:stop], self._ref), self._as_float64(cand[start:stop], self._cand),
                None if bound is None else self._as_float64(bound[start:stop], self._limit),
                offset + start, failing[start:stop])
        if any_failing:
            self._add_failing(failing, offset, offset, n)

    @staticmethod
    def _as_float64(chunk: np.ndarray, buffer: np.ndarray) -> np.ndarray:
        if chunk.dtype == np.float64:
            return chunk
        out = buffer[:chunk.size]
        np.copyto(out, chunk, casting="unsafe")
        return out

    def _add_equal_bits(self, ref: np.ndarray, bound: np.ndarray | None, differ: np.ndarray | None, n_equal: int,
                        offset: int) -> None:
        """Positions where both sides have the same bits: a zero difference; only NaN, infinity and a
        non-finite bound need counting."""
        finite_equal = n_equal
        if self.floating and _holds_nonfinite(ref):
            values = ref.astype(np.float64)
            nan, inf = np.isnan(values), np.isinf(values)
            if differ is not None:
                nan &= ~differ
                inf &= ~differ
            n_nan, n_inf = int(np.count_nonzero(nan)), int(np.count_nonzero(inf))
            self.ref_nan += n_nan
            self.cand_nan += n_nan
            self.ref_inf += n_inf
            self.cand_inf += n_inf
            finite_equal -= n_nan + n_inf
            if n_nan and not self.equal_nan:
                self.min_atol = math.inf
                self._add_failing(nan, offset, offset, ref.size)
        if bound is not None and _holds_nonfinite(bound):
            unbounded = ~np.isfinite(bound.astype(np.float64))
            if differ is not None:
                unbounded &= ~differ
            if self.floating:
                unbounded &= np.isfinite(ref.astype(np.float64))
            self.exact += int(np.count_nonzero(unbounded))
        self.finite += finite_equal
        self.ratio_zero += finite_equal

    def _add_values(self, ref: np.ndarray, cand: np.ndarray, bound: np.ndarray | None, where: int | np.ndarray,
                    failing: np.ndarray) -> bool:
        """Add float64 values at flat positions `where + i` (an int) or `where[i]` (an array).

        Marks their mismatches in `failing` and returns whether there is any; the caller counts
        them, so that a chunk computed in blocks is profiled once.
        """
        n = ref.size
        diff = np.subtract(cand, ref, out=self._diff[:n])
        np.absolute(diff, out=diff)
        total = float(diff.sum())
        failing_nonfinite = finite = None
        if math.isfinite(total):
            self.finite += n
        else:
            ref, cand, failing_nonfinite, finite = self._split_nonfinite(ref, cand)
            diff = np.subtract(cand, ref, out=diff)
            np.absolute(diff, out=diff)
            total = float(diff.sum())
        self.sum_abs += total
        self.sum_sq += float(np.einsum("i,i->", diff, diff))

        top = float(diff.max())
        if top > self.max_abs:
            self.max_abs = top
            self.max_abs_at = _position(where, int(diff.argmax()))

        magnitude = np.absolute(ref, out=self._tmp[:n])
        if top > 0 and self.max_rel != math.inf:
            self._add_max_rel(diff, magnitude, where)
        if top > self.min_atol:
            # The smallest atol passing at rtol: max(diff - rtol * |ref|) (an elementwise figure).
            excess = np.multiply(magnitude, self.rtol, out=self._tmp2[:n])
            np.subtract(diff, excess, out=excess)
            self.min_atol = max(self.min_atol, float(excess.max()))

        # The rule's threshold at each position; where it is not finite, compare exactly.
        unbounded = None
        if self.bound_rule:
            limit = bound if bound is not None else np.zeros(n)
            unbounded = ~np.isfinite(limit)
            if unbounded.any():
                if finite is not None:
                    unbounded &= finite
                self.exact += int(np.count_nonzero(unbounded))
                limit = np.where(np.isfinite(limit), limit, 0.0)
            else:
                unbounded = None
        else:
            limit = np.multiply(magnitude, self.rtol, out=magnitude)
            np.add(limit, self.atol, out=limit)
        np.greater(diff, limit, out=failing)
        over = int(np.count_nonzero(failing))
        if unbounded is not None:
            exact_failing = int(np.count_nonzero(failing & unbounded))
            self.exact_mismatched += exact_failing
            over -= exact_failing
            # The bound says nothing there: those positions stay out of the ratio figures.
            finite = ~unbounded if finite is None else finite & ~unbounded
        self.exceeded += over
        if failing_nonfinite is not None:
            np.logical_or(failing, failing_nonfinite, out=failing)
        self._add_ratios(diff, limit, ref, cand, where, finite)
        return bool(failing.any())

    def _add_ratios(self, diff: np.ndarray, limit: np.ndarray, ref: np.ndarray, cand: np.ndarray,
                    where: int | np.ndarray, finite: np.ndarray | None) -> None:
        """diff / limit: its maximum, its histogram (for the median) and the worst positions by the rule.

        Computed in the scan's own buffers: the extra memory stays a few blocks whatever the arrays."""
        n = diff.size
        ratio = np.divide(diff, limit, out=self._tmp2[:n])
        zero = np.equal(diff, 0.0, out=self._maybe[:n])
        if finite is not None:
            np.logical_or(zero, ~finite, out=zero)
        np.copyto(ratio, 0.0, where=zero)  # 0/0: an exact match where nothing is allowed; non-finite: left out
        n_zero = int(np.count_nonzero(zero))
        self.ratio_zero += n_zero - (0 if finite is None else n - int(np.count_nonzero(finite)))
        top = float(ratio.max())
        if top > self.max_ratio:
            self.max_ratio = top
            self.max_ratio_at = _position(where, int(ratio.argmax()))
        if n_zero < n:
            # Bins of log2(ratio); the zeros go to an extra bin past the end, which is dropped, and an
            # infinite ratio (a zero threshold) to the last bin, which the median reads as inf.
            bins = np.log2(ratio, out=self._tmp[:n], where=~zero)
            np.multiply(bins, _RATIO_BINS_PER_OCTAVE, out=bins)
            np.add(bins, _RATIO_OCTAVES * _RATIO_BINS_PER_OCTAVE, out=bins)
            last = self.ratio_bins.size - 1
            np.clip(bins, 0, last, out=bins)
            np.copyto(bins, last + 1, where=zero)
            index = self._bin_index[:n]
            np.copyto(index, bins, casting="unsafe")
            self.ratio_bins += np.bincount(index, minlength=last + 2)[:last + 1]
        if self.top_k:
            key = ratio if self.bound_rule else diff
            if float(key.max()) > self.top_floor:
                self._add_top(key, diff, ratio, ref, cand, where)

    def _add_max_rel(self, diff: np.ndarray, magnitude: np.ndarray, where: int | np.ndarray) -> None:
        """Track the largest diff / |ref|; 0/0 is NaN here, which fmax and nanargmax ignore."""
        n = diff.size
        at = None
        if self.max_rel > 0:
            # fl(diff / |ref|) > m implies diff >= fl(m * |ref|): a product is cheaper than a
            # quotient, so divide only where the product says the record may be beaten.
            maybe = np.greater_equal(diff, np.multiply(magnitude, self.max_rel, out=self._tmp2[:n]),
                                     out=self._maybe[:n])
            count = int(np.count_nonzero(maybe))
            if not count:
                return
            if count * 8 < n:
                at = np.flatnonzero(maybe)
        if at is None:
            rel = np.divide(diff, magnitude, out=self._tmp2[:n])
        else:
            rel = diff[at] / magnitude[at]
        top = float(np.fmax.reduce(rel))
        if top > self.max_rel:
            i = int(np.nanargmax(rel))
            self.max_rel = top
            self.max_rel_at = _position(where, i if at is None else int(at[i]))

    def _split_nonfinite(self, ref: np.ndarray, cand: np.ndarray):
        """Count NaN/Inf; return finite-only copies (0 elsewhere), the failing non-finite and the finite mask."""
        ref_nan, cand_nan = np.isnan(ref), np.isnan(cand)
        ref_fin, cand_fin = np.isfinite(ref), np.isfinite(cand)
        n = ref.size
        n_ref_nan, n_cand_nan = int(np.count_nonzero(ref_nan)), int(np.count_nonzero(cand_nan))
        self.ref_nan += n_ref_nan
        self.cand_nan += n_cand_nan
        self.ref_inf += n - n_ref_nan - int(np.count_nonzero(ref_fin))
        self.cand_inf += n - n_cand_nan - int(np.count_nonzero(cand_fin))
        self.nan_disagree += int(np.count_nonzero(ref_nan != cand_nan))
        finite = ref_fin & cand_fin
        self.finite += int(np.count_nonzero(finite))
        agree = ref == cand  # equal infinities
        if self.equal_nan:
            agree |= ref_nan & cand_nan
        failing = ~(finite | agree)
        n_failing = int(np.count_nonzero(failing))
        if n_failing:
            self.min_atol = math.inf
            # NaN on both sides without equal_nan fails, but the patterns agree: not a pattern mismatch.
            self.nonfinite_mismatched += n_failing - int(np.count_nonzero(failing & ref_nan & cand_nan))
        return np.where(finite, ref, 0.0), np.where(finite, cand, 0.0), failing, finite

    def _add_failing(self, failing: np.ndarray, where: int | np.ndarray, offset: int,
                     n_chunk: int) -> None:
        """Count the mismatches marked in `failing` (a mask over the values at `where`)."""
        count = int(np.count_nonzero(failing))
        if not count:
            return
        self.mismatched += count
        if isinstance(where, int) and count * _MASKED_PROFILE >= n_chunk:
            self.profile.add_mask(failing, offset)
        else:
            at = np.flatnonzero(failing)
            self.profile.add_positions(at + where if isinstance(where, int) else where[at],
                                       offset, n_chunk)

    def _add_top(self, key: np.ndarray, diff: np.ndarray, ratio: np.ndarray, ref: np.ndarray, cand: np.ndarray,
                 where: int | np.ndarray) -> None:
        picked = np.flatnonzero(key > self.top_floor)
        k = self.top_k
        if picked.size > k:
            # Only this block's own top k can enter the record: the k largest keys, ties to the lowest
            # position, so that nothing larger than k values is ever concatenated.
            values = key[picked]
            kth = np.partition(values, values.size - k)[values.size - k]
            above = values > kth
            ties = np.flatnonzero(values == kth)[:k - int(np.count_nonzero(above))]
            above[ties] = True
            picked = picked[above]
        at = picked + where if isinstance(where, int) else where[picked]
        keys = np.concatenate((self.top_key, key[picked]))
        at = np.concatenate((self.top_at, at))
        refs = np.concatenate((self.top_ref, ref[picked]))
        cands = np.concatenate((self.top_cand, cand[picked]))
        diffs = np.concatenate((self.top_diff, diff[picked]))
        ratios = np.concatenate((self.top_ratio, ratio[picked]))
        if keys.size > k:
            kth = np.partition(keys, keys.size - k)[keys.size - k]
            keep = keys >= kth
            keys, at, refs, cands, diffs, ratios = (a[keep] for a in (keys, at, refs, cands, diffs, ratios))
        order = np.lexsort((at, -keys))[:k]
        self.top_key, self.top_at, self.top_ref = keys[order], at[order], refs[order]
        self.top_cand, self.top_diff, self.top_ratio = cands[order], diffs[order], ratios[order]
        if self.top_key.size == k:
            self.top_floor = float(self.top_key[-1])

    def _median_ratio(self) -> float:
        count = self.ratio_zero + int(self.ratio_bins.sum())
        if count == 0:
            return math.nan
        rank = (count - 1) // 2  # the lower middle, as a count of elements before it
        if rank < self.ratio_zero:
            return 0.0
        rank -= self.ratio_zero
        b = int(np.searchsorted(np.cumsum(self.ratio_bins), rank, side="right"))
        if b >= self.ratio_bins.size - 1:
            return math.inf
        return float(2.0 ** ((b + 0.5) / _RATIO_BINS_PER_OCTAVE - _RATIO_OCTAVES))

    def result(self, attributes: dict[str, Any]) -> Comparison:
        if self.mismatched:
            verdict = Verdict.MISMATCH
        elif self.identical:
            verdict = Verdict.IDENTICAL
        else:
            verdict = Verdict.EQUIVALENT
        finite = self.finite
        total = math.prod(self.shape)
        return Comparison(
            verdict=verdict,
            **attributes,
            total=total,
            mismatched=self.mismatched,
            nonfinite_mismatched=self.nonfinite_mismatched,
            nonfinite_excluded=total - finite,
            exact_compared=self.exact,
            exceeded=self.exceeded,
            exact_mismatched=self.exact_mismatched,
            max_abs_diff=self.max_abs,
            max_abs_diff_index=self._index(self.max_abs_at),
            max_rel_diff=self.max_rel,
            max_rel_diff_index=self._index(self.max_rel_at),
            sum_abs_diff=self.sum_abs,
            mean_abs_diff=self.sum_abs / finite if finite else math.nan,
            rmse=math.sqrt(self.sum_sq / finite) if finite else math.nan,
            max_ratio=self.max_ratio,
            max_ratio_index=self._index(self.max_ratio_at),
            median_ratio=self._median_ratio(),
            reference_nan=self.ref_nan,
            candidate_nan=self.cand_nan,
            reference_inf=self.ref_inf,
            candidate_inf=self.cand_inf,
            nan_positions_agree=self.nan_disagree == 0,
            worst=tuple(
                WorstPosition(self._index(int(at)), float(ref), float(cand), float(diff), float(ratio))
                for at, ref, cand, diff, ratio in zip(self.top_at, self.top_ref, self.top_cand, self.top_diff,
                                                      self.top_ratio)
            ),
            min_atol=max(self.min_atol, 0.0),
            mismatch_counts_by_axis=self.profile.counts_by_axis(),
        )

    def _index(self, flat: int) -> tuple[int, ...] | None:
        if flat < 0:
            return None
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))


class _AxisProfile:
    """Mismatches at each index along each axis, accumulated chunk by chunk.

    Along an axis of stride `s` (elements between consecutive indices) and length `d`, the
    flat positions of a chunk fall into runs of `s` positions sharing one index, and the runs
    take consecutive indices modulo `d`. A chunk's counts per run are folded onto the axis.
    """

    def __init__(self, shape: tuple[int, ...], chunk_size: int):
        self.shape = shape
        self.strides = [math.prod(shape[axis + 1:]) for axis in range(len(shape))]
        self.counts = [np.zeros(length, dtype=np.int64) for length in shape]
        self.chunk_size = chunk_size
        self._weights: np.ndarray | None = None  # allocated when first needed

    def _buffer(self) -> np.ndarray:
        if self._weights is None:
            # einsum sums over short axes far faster than .sum(axis=...); float32 counts exactly
            # up to 2^24.
            weight = np.float32 if self.chunk_size <= 1 << 24 else np.float64
            self._weights = np.empty(self.chunk_size, dtype=weight)
        return self._weights

    def add_positions(self, positions: np.ndarray, offset: int, n_chunk: int) -> None:
        """Add sorted flat positions, all within the chunk `offset .. offset + n_chunk - 1`."""
        if not self.shape:
            return
        if positions.size * _MASKED_PROFILE >= n_chunk:
            mask = np.zeros(n_chunk, dtype=bool)
            mask[positions - offset] = True
            self.add_mask(mask, offset)
            return
        for counts, along in zip(self.counts, np.unravel_index(positions, self.shape)):
            if counts.size <= _SHORT_AXIS:
                counts += np.bincount(along, minlength=counts.size)
            else:  # bin over the span hit: a chunk covers few indices of the leading axes
                low = int(along.min())
                binned = np.bincount(along - low)
                counts[low:low + binned.size] += binned

    def add_mask(self, mask: np.ndarray, offset: int) -> None:
        """Add a mask over the flat positions `offset .. offset + mask.size - 1`."""
        if not self.shape:
            return
        n = mask.size
        weights = self._buffer()[:n]
        np.copyto(weights, mask)
        for counts, stride in zip(self.counts, self.strides):
            if stride == 1:
                runs = weights
            else:
                head = min(-offset % stride, n)  # the part of a run begun before this chunk
                whole = (n - head) // stride
                tail = head + whole * stride
                parts = []
                if head:
                    parts.append(weights[:head].sum(keepdims=True))
                if whole:
                    parts.append(np.einsum("ij->i", weights[head:tail].reshape(whole, stride)))
                if tail < n:
                    parts.append(weights[tail:].sum(keepdims=True))
                runs = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self._fold(counts, runs, offset // stride % counts.size)

    def _fold(self, counts: np.ndarray, runs: np.ndarray, first: int) -> None:
        """counts[(first + i) % len(counts)] += runs[i]."""
        length = counts.size
        if first + runs.size <= length:
            counts[first:first + runs.size] += runs.astype(np.int64)
            return
        split = length - first
        counts[first:] += runs[:split].astype(np.int64)
        rest = runs[split:]
        rows = rest.size // length
        if rows:
            folded = np.einsum("ij->j", rest[:rows * length].reshape(rows, length))
            counts += folded.astype(np.int64)
        left = rest.size - rows * length
        counts[:left] += rest[rows * length:].astype(np.int64)

    def counts_by_axis(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(counts.tolist()) for counts in self.counts)


def _position(where: int | np.ndarray, i: int) -> int:
    return where + i if isinstance(where, int) else int(where[i])


def _holds_nonfinite(chunk: np.ndarray) -> bool:
    # NaN propagates through both; +inf is the max, -inf the min.
    return not (math.isfinite(chunk.max()) and math.isfinite(chunk.min()))
