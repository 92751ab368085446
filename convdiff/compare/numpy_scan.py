"""The comparator's pass in NumPy: the same statistics as the compiled loop (`convdiff.compare.kernel`),
for arrays small enough that loading the compiler would cost more than it saves (`core` picks by size,
so the same arrays always take the same path; tests run both on the same data and require equal results).

The arrays are read in chunks of `chunk_size` elements in C order, with buffers of at most one chunk
each: the extra memory does not grow with the arrays (apart from the per-axis counts, one per index of
each axis). Where the two sides share a dtype, each chunk is first compared bitwise: equal elements need
no arithmetic, so a chunk where few elements differ is computed on those alone, and one where most
differ is computed whole, in cache-sized blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convdiff.compare import slots as K
from convdiff.compare.histogram import N_BINS, ratio_bins
from convdiff.compare.rules import Rule, RuleKind

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


def chunks(reference: np.ndarray, candidate: np.ndarray, bound: np.ndarray | None, chunk_size: int):
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


class Scan:
    """Running statistics over the chunks, taken in increasing flat-index order."""

    def __init__(self, reference: np.ndarray, candidate: np.ndarray, rule: Rule, top_k: int, chunk_size: int,
                 sample: int):
        self.shape = reference.shape
        self.sample = sample
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
        self.sampled_zero = 0
        self.ratio_bins = np.zeros(N_BINS, dtype=np.int64)
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
                self._add_equal_bits(ref, bound, differ if n_differ else None, differing, n - n_differ, offset)
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

    def _add_equal_bits(self, ref: np.ndarray, bound: np.ndarray | None, differ: np.ndarray | None,
                        differing: np.ndarray, n_equal: int, offset: int) -> None:
        """Positions where both sides have the same bits: a zero difference; only NaN, infinity and a
        non-finite bound need counting, and the sampled ones are zero ratios."""
        finite_equal = n_equal
        sampled_equal = _multiples(offset, ref.size, self.sample) - int(
            np.count_nonzero((differing + offset) % self.sample == 0))
        if self.floating and _holds_nonfinite(ref):
            values = ref.astype(np.float64)
            nan, inf = np.isnan(values), np.isinf(values)
            if differ is not None:
                nan &= ~differ
                inf &= ~differ
            n_nan, n_inf = int(np.count_nonzero(nan)), int(np.count_nonzero(inf))
            nonfinite_at = np.flatnonzero(nan | inf)
            sampled_equal -= int(np.count_nonzero((nonfinite_at + offset) % self.sample == 0))
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
            # Compared exactly (and equal), they have no ratio: not sampled zeros either.
            sampled_equal -= int(np.count_nonzero((np.flatnonzero(unbounded) + offset) % self.sample == 0))
        self.finite += finite_equal
        self.sampled_zero += sampled_equal

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
        top = float(ratio.max())
        if top > self.max_ratio:
            self.max_ratio = top
            self.max_ratio_at = _position(where, int(ratio.argmax()))
        # The histogram of the sampled finite positions (every `sample`-th flat position).
        if isinstance(where, int):
            picked = slice((-where) % self.sample, None, self.sample)
            ratios = ratio[picked]
            counted = None if finite is None else finite[picked]
        else:
            keep = where % self.sample == 0
            ratios = ratio[keep]
            counted = None if finite is None else finite[keep]
        if counted is not None:
            ratios = ratios[counted]
        positive = ratios[ratios > 0]
        self.sampled_zero += ratios.size - positive.size
        if positive.size:
            self.ratio_bins += np.bincount(ratio_bins(positive), minlength=N_BINS)
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

    def export(self, span: Any) -> None:
        """Write the statistics into a `core._Span`, the form the compiled loop fills too."""
        ints, floats = span.ints, span.floats
        ints[K.MISMATCHED] = self.mismatched
        ints[K.NONFINITE_MISMATCHED] = self.nonfinite_mismatched
        ints[K.EXACT] = self.exact
        ints[K.EXCEEDED] = self.exceeded
        ints[K.EXACT_MISMATCHED] = self.exact_mismatched
        ints[K.FINITE] = self.finite
        ints[K.REF_NAN], ints[K.CAND_NAN], ints[K.REF_INF], ints[K.CAND_INF] = (
            self.ref_nan, self.cand_nan, self.ref_inf, self.cand_inf)
        ints[K.NAN_DISAGREE] = self.nan_disagree
        ints[K.SAMPLED_ZERO] = self.sampled_zero
        ints[K.BITS_EQUAL] = int(self.identical)
        ints[K.MAX_ABS_AT], ints[K.MAX_REL_AT], ints[K.MAX_RATIO_AT] = (
            self.max_abs_at, self.max_rel_at, self.max_ratio_at)
        floats[K.SUM_ABS], floats[K.SUM_SQ] = self.sum_abs, self.sum_sq
        floats[K.MAX_ABS], floats[K.MAX_REL], floats[K.MAX_RATIO] = self.max_abs, self.max_rel, self.max_ratio
        floats[K.MIN_ATOL] = self.min_atol
        span.hist[:] = self.ratio_bins
        span.profile[:] = np.concatenate([c for c in self.profile.counts]) if self.profile.counts else 0
        count = int(self.top_key.size)
        ints[K.TOP_COUNT] = count
        for target, source in zip(span.top, (self.top_key, self.top_at, self.top_ref, self.top_cand,
                                             self.top_diff, self.top_ratio)):
            target[:count] = source


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


def _multiples(offset: int, n: int, step: int) -> int:
    """How many of offset, offset + 1, ..., offset + n - 1 are multiples of `step`."""
    return (offset + n - 1) // step - (offset - 1) // step
