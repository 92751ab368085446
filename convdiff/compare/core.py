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
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from convdiff.compare import histogram
from convdiff.compare import slots as K
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

# Elements per call of the compiled loop (and per converted chunk, for dtypes it does not read itself:
# float16, bfloat16, integers, booleans, non-contiguous arrays). Large enough that the call overhead
# vanishes, small enough that a converted chunk stays in cache.
DEFAULT_CHUNK_SIZE = 1 << 17
# Arrays at least this large take the compiled loop (`kernel`), split into contiguous spans scanned on
# separate threads; smaller ones the NumPy scan, since loading the compiler (0.4-0.5 s per process,
# benchmarks/bench_compare.py) would cost more than it saves. The choice depends on the size alone,
# so the same arrays always take the same path.
KERNEL_FROM = 1 << 22
_THREADED_FROM = 1 << 20
_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))
# The per-axis counts are kept per thread only while they are small (one count per index of every
# axis: a 1-D array has one per element).
_PROFILE_PER_THREAD = 1 << 20


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
    """Median of that ratio over the finite positions (every 16th of them beyond 65,536 elements), to 1%
    (NaN when there are none)."""
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

    return _scan(reference, candidate, bound, rule, int(top_k), min(int(chunk_size), reference.size), attributes)


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


def _flat(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1) if array.flags.c_contiguous else array


def _threads(n: int) -> int:
    if n < _THREADED_FROM:
        return 1
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8, n // (_THREADED_FROM // 2)))


class _Span:
    """The statistics of one contiguous span of flat positions, filled by the compiled loop."""

    def __init__(self, top_k: int, profile_size: int):
        self.ints = np.zeros(K.N_INT, dtype=np.int64)
        self.ints[K.BITS_EQUAL] = 1
        self.ints[[K.MAX_ABS_AT, K.MAX_REL_AT, K.MAX_RATIO_AT]] = -1
        self.floats = np.zeros(K.N_FLOAT)
        self.hist = np.zeros(histogram.N_BINS, dtype=np.int64)
        self.profile = np.zeros(profile_size, dtype=np.int64)
        k = max(top_k, 1)
        self.top = [np.zeros(k), np.zeros(k, dtype=np.int64), np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)]
        self.top_k = top_k


def _scan(reference: np.ndarray, candidate: np.ndarray, bound: np.ndarray | None, rule: Rule, top_k: int,
          chunk_size: int, attributes: dict[str, Any]) -> Comparison:
    shape = reference.shape
    n = reference.size
    strides = np.array([math.prod(shape[a + 1:]) for a in range(len(shape))], dtype=np.int64)
    lengths = np.array(shape, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    profile_size = int(lengths.sum())
    same_dtype = reference.dtype == candidate.dtype
    sample = histogram.sample_stride(n)
    if n < KERNEL_FROM:
        from convdiff.compare.numpy_scan import Scan, chunks

        scan = Scan(reference, candidate, rule, top_k, chunk_size, sample)
        with np.errstate(all="ignore"):
            for offset, ref_chunk, cand_chunk, bound_chunk in chunks(reference, candidate, bound, chunk_size):
                scan.add_chunk(ref_chunk, cand_chunk, bound_chunk, offset)
        span = _Span(top_k, profile_size)
        scan.export(span)
        return _result([span], rule, shape, n, same_dtype, starts, lengths, attributes)
    spans = _threads(n) if profile_size <= _PROFILE_PER_THREAD else 1
    bounds = [n * s // spans for s in range(spans + 1)]
    results = [_Span(top_k, profile_size) for _ in range(spans)]
    flats = (_flat(reference), _flat(candidate), None if bound is None else _flat(bound))
    geometry = (strides, lengths, starts)

    def work(s: int) -> None:
        _scan_span(flats, same_dtype, rule, bounds[s], bounds[s + 1], chunk_size, sample, geometry, results[s])

    if spans == 1:
        work(0)
    else:
        with ThreadPoolExecutor(spans) as pool:
            list(pool.map(work, range(spans)))
    return _result(results, rule, shape, n, same_dtype, starts, lengths, attributes)


def _scan_span(flats, same_dtype: bool, rule: Rule, start: int, stop: int, chunk_size: int, sample: int,  # noqa: ANN001
               geometry, span: _Span) -> None:
    from convdiff.compare import kernel

    ref_flat, cand_flat, bound_flat = flats
    strides, lengths, starts = geometry
    tol = rule.tolerance
    dummy_bound = np.zeros(1)
    # Whether `atol + rtol * |ref|` can overflow for a finite reference (rounding is monotone, so the
    # largest float64 decides): only then must the compiled pass test the threshold for finiteness.
    check_limit = not rule.is_bound and not math.isfinite(tol.atol + tol.rtol * _LARGEST)
    # Contiguous float32/float64 spans are read in place, in one call; others a converted chunk at a time.
    native = all(f is None or (f.ndim == 1 and f.dtype in _NATIVE) for f in (ref_flat, cand_flat)) and (
        bound_flat is None or (bound_flat.ndim == 1 and bound_flat.dtype == np.float64))
    step = stop - start if native else chunk_size
    for offset in range(start, stop, max(step, 1)):
        end = min(offset + step, stop)
        ref = _chunk(ref_flat, offset, end)
        cand = _chunk(cand_flat, offset, end)
        if same_dtype:
            bits = np.dtype(f"u{ref.dtype.itemsize}")
            ref_bits, cand_bits = ref.view(bits), cand.view(bits)
            mask = bits.type(_EXPONENT_MASK.get(ref.dtype.kind, {}).get(ref.dtype.itemsize, 0))
        else:
            ref_bits = cand_bits = _NO_BITS
            mask = np.uint8(0)
        bnd = dummy_bound if bound_flat is None else _as_native(_chunk(bound_flat, offset, end), np.float64)
        kernel.scan(_as_native(ref), _as_native(cand), ref_bits, cand_bits, same_dtype, mask, bnd, rule.is_bound,
                    tol.atol, tol.rtol, check_limit, tol.equal_nan, offset, sample, strides, lengths, starts,
                    span.ints, span.floats, span.hist, span.profile, *span.top)


_NO_BITS = np.zeros(1, dtype=np.uint8)
_LARGEST = float(np.finfo(np.float64).max)
# The bits that are all ones in NaN and infinities, by dtype kind and size ("V": ml_dtypes' bfloat16).
_EXPONENT_MASK = {"f": {2: 0x7C00, 4: 0x7F800000, 8: 0x7FF0000000000000}, "V": {2: 0x7F80}}


def _chunk(flat: np.ndarray, start: int, stop: int) -> np.ndarray:
    if flat.ndim == 1:
        return flat[start:stop]
    return flat.flat[start:stop]  # a non-contiguous array: a copy of this chunk only, in C order


def _as_native(chunk: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """A chunk the compiled loop reads itself (float32/float64, contiguous), converted only if needed."""
    if dtype is None and chunk.dtype in _NATIVE:
        target = chunk.dtype
    else:
        target = np.dtype(dtype or np.float64)
    if chunk.dtype == target and chunk.flags.c_contiguous:
        return chunk
    with np.errstate(all="ignore"):
        return np.ascontiguousarray(chunk, dtype=target) if chunk.dtype.kind != "V" else chunk.astype(target)


def _result(spans: list[_Span], rule: Rule, shape: tuple[int, ...], n: int, same_dtype: bool, starts: np.ndarray,
            lengths: np.ndarray, attributes: dict[str, Any]) -> Comparison:
    ints = np.zeros(K.N_INT, dtype=np.int64)
    for slot in (K.MISMATCHED, K.NONFINITE_MISMATCHED, K.EXACT, K.EXCEEDED, K.EXACT_MISMATCHED, K.FINITE, K.REF_NAN, K.CAND_NAN, K.REF_INF,
                 K.CAND_INF, K.NAN_DISAGREE, K.SAMPLED_ZERO):
        ints[slot] = sum(int(s.ints[slot]) for s in spans)
    bits_equal = same_dtype and all(s.ints[K.BITS_EQUAL] for s in spans)
    sum_abs = math.fsum(float(s.floats[K.SUM_ABS]) for s in spans)
    sum_sq = math.fsum(float(s.floats[K.SUM_SQ]) for s in spans)
    min_atol = max(float(s.floats[K.MIN_ATOL]) for s in spans)
    extremes = {}
    for value_slot, at_slot in ((K.MAX_ABS, K.MAX_ABS_AT), (K.MAX_REL, K.MAX_REL_AT), (K.MAX_RATIO, K.MAX_RATIO_AT)):
        best, at = 0.0, -1
        for s in spans:  # in index order: a later span must beat the record strictly
            if s.floats[value_slot] > best:
                best, at = float(s.floats[value_slot]), int(s.ints[at_slot])
        extremes[value_slot] = (best, at)
    hist = sum(s.hist for s in spans) if len(spans) > 1 else spans[0].hist
    profile = sum(s.profile for s in spans) if len(spans) > 1 else spans[0].profile
    worst = _merge_top(spans, shape)
    mismatched = int(ints[K.MISMATCHED])
    if mismatched:
        verdict = Verdict.MISMATCH
    elif bits_equal:
        verdict = Verdict.IDENTICAL
    else:
        verdict = Verdict.EQUIVALENT
    finite = int(ints[K.FINITE])

    def index(flat: int) -> tuple[int, ...] | None:
        return None if flat < 0 else tuple(int(i) for i in np.unravel_index(flat, shape))

    max_abs, max_abs_at = extremes[K.MAX_ABS]
    max_rel, max_rel_at = extremes[K.MAX_REL]
    max_ratio, max_ratio_at = extremes[K.MAX_RATIO]
    return Comparison(
        verdict=verdict,
        **attributes,
        total=n,
        mismatched=mismatched,
        nonfinite_mismatched=int(ints[K.NONFINITE_MISMATCHED]),
        nonfinite_excluded=n - finite,
        exact_compared=int(ints[K.EXACT]),
        exceeded=int(ints[K.EXCEEDED]),
        exact_mismatched=int(ints[K.EXACT_MISMATCHED]),
        max_abs_diff=max_abs,
        max_abs_diff_index=index(max_abs_at),
        max_rel_diff=max_rel,
        max_rel_diff_index=index(max_rel_at),
        sum_abs_diff=sum_abs,
        mean_abs_diff=sum_abs / finite if finite else math.nan,
        rmse=math.sqrt(sum_sq / finite) if finite else math.nan,
        max_ratio=max_ratio,
        max_ratio_index=index(max_ratio_at),
        median_ratio=histogram.median(int(ints[K.SAMPLED_ZERO]), hist),
        reference_nan=int(ints[K.REF_NAN]),
        candidate_nan=int(ints[K.CAND_NAN]),
        reference_inf=int(ints[K.REF_INF]),
        candidate_inf=int(ints[K.CAND_INF]),
        nan_positions_agree=int(ints[K.NAN_DISAGREE]) == 0,
        worst=worst,
        min_atol=max(min_atol, 0.0),
        mismatch_counts_by_axis=tuple(tuple(profile[a:a + m].tolist()) for a, m in zip(starts.tolist(),
                                                                                       lengths.tolist())),
    )


def _merge_top(spans: list[_Span], shape: tuple[int, ...]) -> tuple[WorstPosition, ...]:
    k = spans[0].top_k
    if not k:
        return ()
    parts = [[a[: int(s.ints[K.TOP_COUNT])] for a in s.top] for s in spans]
    keys, at, refs, cands, diffs, ratios = (np.concatenate([p[j] for p in parts]) for j in range(6))
    order = np.lexsort((at, -keys))[:k]
    return tuple(WorstPosition(tuple(int(i) for i in np.unravel_index(int(at[o]), shape)), float(refs[o]),
                               float(cands[o]), float(diffs[o]), float(ratios[o])) for o in order)
