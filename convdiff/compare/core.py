"""Compare a candidate array against a reference: two arrays in, a frozen `Comparison` out.

One rule decides whether an element passes:

    |candidate - reference| <= atol + rtol * |reference|

The relative part scales with the *reference*, so swapping the two sides can change the result;
it is the rule of `np.isclose(candidate, reference, rtol=rtol, atol=atol)`. `atol` and `rtol` are
given together or not at all; when neither is given, the default comes from the lower-precision
dtype of the two arrays (`DEFAULT_TOLERANCES`).

Attributes come before values. Arrays of different shapes are `SHAPE_MISMATCH` and get no value
statistics. Arrays with no elements are `EMPTY`, an error rather than a vacuous pass. Arrays of
different dtypes are compared by value but are never `IDENTICAL`, which means bitwise equal.

Differences are computed in float64, so `|candidate - reference|` is exact for float16, bfloat16
and float32 inputs (integers wider than 53 bits are rounded on the way).

Non-finite values:

- A position where either side is NaN is a mismatch, unless `equal_nan` is set and both sides
  are NaN. Bitwise-identical arrays that hold NaN are therefore a `MISMATCH` unless `equal_nan`
  is set, and an all-NaN output never passes by default.
- An infinity matches only an infinity of the same sign at the same position.
- Positions where either side is NaN or infinite are counted (`reference_nan`, `candidate_inf`,
  ...) and, when they fail, in `mismatched` and `mismatch_counts_by_axis`; they are left out of
  the difference statistics (`max_abs_diff`, `max_rel_diff`, `sum_abs_diff`, `mean_abs_diff`,
  `rmse`, `worst`), and the means average over the positions finite on both sides. A failing
  non-finite position makes `min_atol` infinite: no atol would pass it.

The arrays are read once, in chunks of `chunk_size` elements in C order, with buffers of at most
one chunk each: the extra memory does not grow with the arrays (apart from the per-axis counts,
one per index of each axis). Where the two sides share a dtype, each chunk is first compared
bitwise: equal elements need no arithmetic, so a chunk where few elements differ is computed on
those alone, and one where most differ is computed whole, in cache-sized blocks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

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


class Verdict(StrEnum):
    """The outcome of a comparison; only `IDENTICAL` and `EQUIVALENT` pass.

    - `IDENTICAL`: same shape and dtype, bitwise equal (holding NaN only under `equal_nan`).
    - `EQUIVALENT`: every element within the tolerance.
    - `MISMATCH`: at least one element outside it.
    - `SHAPE_MISMATCH`: the shapes differ; no value was compared.
    - `EMPTY`: no elements; an error, never a vacuous pass.
    """

    IDENTICAL = "identical"
    EQUIVALENT = "equivalent"
    MISMATCH = "mismatch"
    SHAPE_MISMATCH = "shape_mismatch"
    EMPTY = "empty"


@dataclass(frozen=True)
class Tolerance:
    """`|candidate - reference| <= atol + rtol * |reference|`, with NaN == NaN when `equal_nan`."""

    atol: float
    rtol: float
    equal_nan: bool = False

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise BadInputError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise BadInputError(f"{name} must be finite and >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "equal_nan", bool(self.equal_nan))


# The loosest first: `default_tolerance` picks the first of these among the dtypes compared.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "bfloat16": Tolerance(atol=1e-5, rtol=1.6e-2),
    "float16": Tolerance(atol=1e-5, rtol=1e-3),
    "float32": Tolerance(atol=1e-5, rtol=1.3e-6),
    "float64": Tolerance(atol=1e-7, rtol=1e-7),
}
_EXACT = Tolerance(atol=0.0, rtol=0.0)


def default_tolerance(*dtypes: str) -> Tolerance:
    """The default tolerance for comparing arrays of these dtypes.

    Args:
        *dtypes: NumPy dtype names (`"float32"`, `"bfloat16"`, ...); dtype objects also work.

    Returns:
        The entry of `DEFAULT_TOLERANCES` for the lowest-precision floating dtype among
        `dtypes`, or an exact tolerance (0, 0) when none is floating (integers, booleans).
    """
    names = {str(getattr(dtype, "name", dtype)) for dtype in dtypes}
    for name, tolerance in DEFAULT_TOLERANCES.items():
        if name in names:
            return tolerance
    return _EXACT


@dataclass(frozen=True)
class WorstPosition:
    """One of the positions with the largest absolute difference."""

    index: tuple[int, ...]
    """Position in the arrays (one entry per axis)."""
    reference: float
    """Reference value there."""
    candidate: float
    """Candidate value there."""
    abs_diff: float
    """`|candidate - reference|`, computed in float64."""


@dataclass(frozen=True)
class Comparison:
    """The result of comparing a candidate array against a reference; truthy when it passes."""

    verdict: Verdict
    """Overall outcome; only `IDENTICAL` and `EQUIVALENT` pass."""
    tolerance: Tolerance
    """Tolerance applied (given, or the default for the dtypes)."""
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
    """Up to `top_k` differing finite positions, largest difference first, ties by position."""
    min_atol: float
    """Smallest atol that would pass at this rtol: 0.0 if all pass at 0, inf if none can."""
    mismatch_counts_by_axis: tuple[tuple[int, ...], ...]
    """Per axis, mismatches at each index along it (NHWC: per batch, row, column, channel).

    One count per index of every axis: small for images, one per element for a 1-D array.
    """

    def __bool__(self) -> bool:
        return self.verdict in (Verdict.IDENTICAL, Verdict.EQUIVALENT)

    @property
    def mismatch_fraction(self) -> float:
        """`mismatched / total`, 0.0 when nothing was compared."""
        return self.mismatched / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        """A dict that `json.dumps(..., allow_nan=False)` accepts; inf and NaN become strings."""
        tol = self.tolerance
        return {
            "verdict": self.verdict.value,
            "shape_match": self.shape_match,
            "dtype_match": self.dtype_match,
            "reference_shape": list(self.reference_shape),
            "candidate_shape": list(self.candidate_shape),
            "reference_dtype": self.reference_dtype,
            "candidate_dtype": self.candidate_dtype,
            "max_abs_diff": json_float(self.max_abs_diff),
            "max_abs_diff_index": _json_index(self.max_abs_diff_index),
            "max_rel_diff": json_float(self.max_rel_diff),
            "max_rel_diff_index": _json_index(self.max_rel_diff_index),
            "sum_abs_diff": json_float(self.sum_abs_diff),
            "mean_abs_diff": json_float(self.mean_abs_diff),
            "rmse": json_float(self.rmse),
            "mismatched": self.mismatched,
            "total": self.total,
            "atol": json_float(tol.atol),
            "rtol": json_float(tol.rtol),
            "equal_nan": tol.equal_nan,
            "min_atol": json_float(self.min_atol),
            "nan": {
                "reference": self.reference_nan,
                "candidate": self.candidate_nan,
                "positions_agree": self.nan_positions_agree,
            },
            "inf": {"reference": self.reference_inf, "candidate": self.candidate_inf},
            "worst": [
                {
                    "index": list(w.index),
                    "reference": json_float(w.reference),
                    "candidate": json_float(w.candidate),
                    "abs_diff": json_float(w.abs_diff),
                }
                for w in self.worst
            ],
        }


def json_float(value: float) -> float | str:
    """A float for strict JSON: inf and NaN become the strings "inf", "-inf", "nan"."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _json_index(index: tuple[int, ...] | None) -> list[int] | None:
    return None if index is None else list(index)


def compare_arrays(
    reference: Any,
    candidate: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    tolerance: Tolerance | None = None,
    equal_nan: bool = False,
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
    tol = _resolve_tolerance(atol, rtol, tolerance, equal_nan, reference.dtype, candidate.dtype)
    if not _is_int(top_k) or top_k < 0:
        raise BadInputError(f"top_k must be an integer >= 0, got {top_k!r}")
    if not _is_int(chunk_size) or chunk_size < 1:
        raise BadInputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")

    shape_match = reference.shape == candidate.shape
    attributes = {
        "tolerance": tol,
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

    scan = _Scan(reference, candidate, tol, int(top_k), min(int(chunk_size), reference.size))
    with np.errstate(all="ignore"):
        for offset, ref_chunk, cand_chunk in _chunks(reference, candidate, scan.chunk_size):
            scan.add_chunk(ref_chunk, cand_chunk, offset)
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


def _resolve_tolerance(
    atol: float | None,
    rtol: float | None,
    tolerance: Tolerance | None,
    equal_nan: bool,
    reference_dtype: np.dtype,
    candidate_dtype: np.dtype,
) -> Tolerance:
    if (atol is None) != (rtol is None):
        given, missing = ("atol", "rtol") if rtol is None else ("rtol", "atol")
        raise BadInputError(f"{given} was given without {missing}: give both, or neither")
    if tolerance is not None:
        if atol is not None:
            raise BadInputError("give either tolerance= or atol=/rtol=, not both")
        if equal_nan and not tolerance.equal_nan:
            raise BadInputError("equal_nan=True contradicts tolerance.equal_nan=False")
        return tolerance
    if atol is not None:
        return Tolerance(atol, rtol, equal_nan)
    default = default_tolerance(reference_dtype.name, candidate_dtype.name)
    return Tolerance(default.atol, default.rtol, equal_nan)


def _without_values(verdict: Verdict, attributes: dict[str, Any],
                    axis_counts: tuple[tuple[int, ...], ...]) -> Comparison:
    return Comparison(
        verdict=verdict,
        **attributes,
        total=0,
        mismatched=0,
        max_abs_diff=0.0,
        max_abs_diff_index=None,
        max_rel_diff=0.0,
        max_rel_diff_index=None,
        sum_abs_diff=0.0,
        mean_abs_diff=0.0,
        rmse=0.0,
        reference_nan=0,
        candidate_nan=0,
        reference_inf=0,
        candidate_inf=0,
        nan_positions_agree=True,
        worst=(),
        min_atol=0.0,
        mismatch_counts_by_axis=axis_counts,
    )


def _chunks(reference: np.ndarray, candidate: np.ndarray, chunk_size: int):
    """Yield (flat offset, reference chunk, candidate chunk), 1-D and contiguous, in C order."""
    ref_flat = _flat(reference)
    cand_flat = _flat(candidate)
    for start in range(0, reference.size, chunk_size):
        stop = start + chunk_size
        yield start, ref_flat[start:stop], cand_flat[start:stop]


def _flat(array: np.ndarray):
    # A view when C-contiguous; otherwise `.flat` copies one chunk at a time, never the whole.
    return array.reshape(-1) if array.flags.c_contiguous else array.flat


class _Scan:
    """Running statistics over the chunks, taken in increasing flat-index order."""

    def __init__(self, reference: np.ndarray, candidate: np.ndarray, tol: Tolerance, top_k: int,
                 chunk_size: int):
        self.shape = reference.shape
        self.tol = tol
        self.top_k = top_k
        self.chunk_size = chunk_size
        same_dtype = reference.dtype == candidate.dtype
        # Bitwise comparison views each chunk as unsigned integers of the element size.
        self.bits = np.dtype(f"u{reference.dtype.itemsize}") if same_dtype else None
        self.identical = same_dtype
        self.floating = reference.dtype.kind in "fV"  # "V": ml_dtypes floats such as bfloat16
        # Reused with out=: float64 buffers of one block each, a bitwise mask of one chunk.
        block = min(chunk_size, _BLOCK)
        self._ref = np.empty(block)
        self._cand = np.empty(block)
        self._diff = np.empty(block)
        self._tmp = np.empty(block)
        self._tmp2 = np.empty(block)
        self._failing = np.empty(block, dtype=bool)
        self._maybe = np.empty(block, dtype=bool)
        self._differ = np.empty(chunk_size, dtype=bool)
        self._skip_probes = 0
        self.profile = _AxisProfile(self.shape, chunk_size)

        self.mismatched = 0
        self.finite = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.max_abs = 0.0
        self.max_abs_at = -1
        self.max_rel = 0.0
        self.max_rel_at = -1
        self.min_atol = 0.0
        self.ref_nan = self.cand_nan = self.ref_inf = self.cand_inf = 0
        self.nan_disagree = 0
        # The top-k so far, sorted by (-abs_diff, flat index). Chunks come in index order, so a
        # later position must beat the k-th value strictly: on ties the earlier position wins.
        self.top_diff = np.empty(0)
        self.top_at = np.empty(0, dtype=np.intp)
        self.top_ref = np.empty(0)
        self.top_cand = np.empty(0)
        self.top_floor = 0.0

    def add_chunk(self, ref: np.ndarray, cand: np.ndarray, offset: int) -> None:
        n = ref.size
        if self.bits is not None and self._skip_probes == 0:
            differ = np.not_equal(ref.view(self.bits), cand.view(self.bits), out=self._differ[:n])
            differing = np.flatnonzero(differ)
            n_differ = differing.size
            if n_differ <= _DENSE_FRACTION * n:
                # Equal bits mean a zero difference: compute only where the bits differ.
                self._add_equal_bits(ref, differ if n_differ else None, n - n_differ, offset)
                if n_differ:
                    self.identical = False
                    for start in range(0, n_differ, _BLOCK):
                        at = differing[start:start + _BLOCK]
                        where = at + offset
                        failing = self._failing[:at.size]
                        if self._add_values(ref[at].astype(np.float64),
                                            cand[at].astype(np.float64), where, failing):
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
            any_failing |= self._add_values(self._as_float64(ref[start:stop], self._ref),
                                            self._as_float64(cand[start:stop], self._cand),
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

    def _add_equal_bits(self, ref: np.ndarray, differ: np.ndarray | None, n_equal: int,
                        offset: int) -> None:
        """Positions where both sides have the same bits: only NaN and infinity need counting."""
        if not self.floating or not _holds_nonfinite(ref):
            self.finite += n_equal
            return
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
        self.finite += n_equal - n_nan - n_inf
        if n_nan and not self.tol.equal_nan:
            self.min_atol = math.inf
            self._add_failing(nan, offset, offset, ref.size)

    def _add_values(self, ref: np.ndarray, cand: np.ndarray, where: int | np.ndarray,
                    failing: np.ndarray) -> bool:
        """Add float64 values at flat positions `where + i` (an int) or `where[i]` (an array).

        Marks their mismatches in `failing` and returns whether there is any; the caller counts
        them, so that a chunk computed in blocks is profiled once.
        """
        n = ref.size
        diff = np.subtract(cand, ref, out=self._diff[:n])
        np.absolute(diff, out=diff)
        total = float(diff.sum())
        failing_nonfinite = None
        if math.isfinite(total):
            self.finite += n
        else:
            ref, cand, failing_nonfinite = self._split_nonfinite(ref, cand)
            diff = np.subtract(cand, ref, out=diff)
            np.absolute(diff, out=diff)
            total = float(diff.sum())
        self.sum_abs += total
        self.sum_sq += float(np.einsum("i,i->", diff, diff))

        top = float(diff.max())
        if top > self.max_abs:
            self.max_abs = top
            self.max_abs_at = _position(where, int(diff.argmax()))
        if self.top_k and top > self.top_floor:
            self._add_top(diff, ref, cand, where)

        magnitude = np.absolute(ref, out=self._tmp[:n])
        if top > 0 and self.max_rel != math.inf:
            self._add_max_rel(diff, magnitude, where)

        atol, rtol = self.tol.atol, self.tol.rtol
        # `diff - rtol*|ref|` never exceeds `diff`, and the bound `atol + rtol*|ref|` is never
        # below atol: blocks whose largest difference is small skip both computations.
        if top > self.min_atol or top > atol:
            bound = np.multiply(magnitude, rtol, out=magnitude)
            if top > self.min_atol:
                excess = float(np.subtract(diff, bound, out=self._tmp2[:n]).max())
                self.min_atol = max(self.min_atol, excess)
            if top > atol:
                np.add(bound, atol, out=bound)
                np.greater(diff, bound, out=failing)
                if failing_nonfinite is not None:
                    np.logical_or(failing, failing_nonfinite, out=failing)
                return True
        if failing_nonfinite is not None:
            np.copyto(failing, failing_nonfinite)
            return True
        failing.fill(False)
        return False

    def _add_max_rel(self, diff: np.ndarray, magnitude: np.ndarray,
                     where: int | np.ndarray) -> None:
        """Track the largest diff / |ref|; 0/0 is NaN here, which fmax and nanargmax ignore."""
        n = diff.size
        at = None
        if self.max_rel > 0:
            # fl(diff / |ref|) > m implies diff >= fl(m * |ref|): a product is cheaper than a
            # quotient, so divide only where the product says the record may be beaten.
            maybe = np.greater_equal(diff, np.multiply(magnitude, self.max_rel,
                                                       out=self._tmp2[:n]),
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
        """Count NaN/Inf; return finite-only copies (0 elsewhere) and the failing non-finite."""
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
        if self.tol.equal_nan:
            agree |= ref_nan & cand_nan
        failing = ~(finite | agree)
        if failing.any():
            self.min_atol = math.inf
        return np.where(finite, ref, 0.0), np.where(finite, cand, 0.0), failing

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

    def _add_top(self, diff: np.ndarray, ref: np.ndarray, cand: np.ndarray,
                 where: int | np.ndarray) -> None:
        picked = np.flatnonzero(diff > self.top_floor)
        at = picked + where if isinstance(where, int) else where[picked]
        values = np.concatenate((self.top_diff, diff[picked]))
        at = np.concatenate((self.top_at, at))
        refs = np.concatenate((self.top_ref, ref[picked]))
        cands = np.concatenate((self.top_cand, cand[picked]))
        k = self.top_k
        if values.size > k:
            kth = np.partition(values, values.size - k)[values.size - k]
            keep = values >= kth
            values, at, refs, cands = values[keep], at[keep], refs[keep], cands[keep]
        order = np.lexsort((at, -values))[:k]
        self.top_diff, self.top_at = values[order], at[order]
        self.top_ref, self.top_cand = refs[order], cands[order]
        if self.top_diff.size == k:
            self.top_floor = float(self.top_diff[-1])

    def result(self, attributes: dict[str, Any]) -> Comparison:
        if self.mismatched:
            verdict = Verdict.MISMATCH
        elif self.identical:
            verdict = Verdict.IDENTICAL
        else:
            verdict = Verdict.EQUIVALENT
        finite = self.finite
        return Comparison(
            verdict=verdict,
            **attributes,
            total=math.prod(self.shape),
            mismatched=self.mismatched,
            max_abs_diff=self.max_abs,
            max_abs_diff_index=self._index(self.max_abs_at),
            max_rel_diff=self.max_rel,
            max_rel_diff_index=self._index(self.max_rel_at),
            sum_abs_diff=self.sum_abs,
            mean_abs_diff=self.sum_abs / finite if finite else math.nan,
            rmse=math.sqrt(self.sum_sq / finite) if finite else math.nan,
            reference_nan=self.ref_nan,
            candidate_nan=self.cand_nan,
            reference_inf=self.ref_inf,
            candidate_inf=self.cand_inf,
            nan_positions_agree=self.nan_disagree == 0,
            worst=tuple(
                WorstPosition(self._index(int(at)), float(ref), float(cand), float(diff))
                for at, ref, cand, diff in zip(self.top_at, self.top_ref, self.top_cand,
                                               self.top_diff)
            ),
            min_atol=self.min_atol,
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
