"""The comparator's one pass, compiled: every statistic, the deciding rule and the worst positions of a
flat range of elements, computed in a single read of the two arrays (and the bound).

NumPy would need one pass per statistic (the difference, its absolute value, the threshold, the
comparison, the ratio, the reductions): on two float32 arrays each pass costs about as much as reading
them, so the comparison ran at 3-50 times the memory floor (benchmarks/bench_compare.py). Here each
block of `BLOCK` elements is read once by a loop the compiler vectorises (sums, maxima taken on the
bit patterns of non-negative floats, which order like integers, counts), into two cache-resident
buffers; only the few positions that need it (a mismatch, a new record, a top-k entry, a sampled
ratio) are visited again, from the buffers. Blocks holding NaN or infinities, and the first-index
searches, take an exact scalar path. Blocks whose bits are equal on both sides are settled by an
integer pass alone.

The loop is compiled by numba (a well-kept JIT) once per machine and cached on disk (beside this file,
or in the user's cache directory where that is not writable); it releases the GIL, so `compare.core` runs it on several threads over contiguous spans and merges the spans in index
order (ties keep the lowest index, as a sequential scan would). The semantics are those documented in
`convdiff.compare.core`; this module only computes them.
"""

from __future__ import annotations

import numba
import numpy as np

from convdiff.compare.histogram import BINS_PER_OCTAVE, N_BINS, OCTAVES
from convdiff.compare.slots import (BITS_EQUAL, CAND_INF, CAND_NAN, EXACT, EXACT_MISMATCHED, EXCEEDED, FINITE,
                                    MAX_ABS, MAX_ABS_AT,
                                    MAX_RATIO, MAX_RATIO_AT, MAX_REL, MAX_REL_AT, MIN_ATOL, MISMATCHED,
                                    NAN_DISAGREE, NONFINITE_MISMATCHED, REF_INF, REF_NAN, SAMPLED_ZERO,
                                    SKIP_PROBES, SUM_ABS, SUM_SQ, TOP_COUNT)

BLOCK = 2048
# After a block whose bits differ somewhere, skip the bitwise probe for this many blocks.
PROBE_EVERY = 8

# Per-element arithmetic is exact IEEE (no contraction, no reciprocal approximations); only the order
# of the reductions may change, which is what lets them vectorise.
_REDUCE = {"reassoc", "nsz"}


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _ratio_bin(ratio: float) -> int:
    # The exponent and the top 6 mantissa bits of a float64 are log2 to 1/64 of an octave.
    bits = np.float64(ratio).view(np.int64)
    exponent = ((bits >> 52) & 0x7FF) - 1023
    b = (exponent + OCTAVES) * BINS_PER_OCTAVE + ((bits >> 46) & 63)
    if b < 0:
        return 0
    if b >= N_BINS:
        return N_BINS - 1
    return b


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _insert_top(key, at, r, c, d, q, top_key, top_at, top_ref, top_cand, top_diff, top_ratio, count):  # noqa: ANN001
    """Insert into the top-k, kept sorted by (-key, index); positions come in increasing index order."""
    k = top_key.size
    j = count if count < k else k - 1
    while j > 0 and top_key[j - 1] < key:
        if j < k:
            top_key[j] = top_key[j - 1]
            top_at[j] = top_at[j - 1]
            top_ref[j] = top_ref[j - 1]
            top_cand[j] = top_cand[j - 1]
            top_diff[j] = top_diff[j - 1]
            top_ratio[j] = top_ratio[j - 1]
        j -= 1
    top_key[j] = key
    top_at[j] = at
    top_ref[j] = r
    top_cand[j] = c
    top_diff[j] = d
    top_ratio[j] = q
    return count + 1 if count < k else k


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _bits_pass(ref_bits, cand_bits, exponent_mask):  # noqa: ANN001
    """(whether every position has equal bits, whether a reference element is NaN or infinite).

    An OR of the XORs and a minimum, on a block sliced from 0: the forms the compiler vectorises."""
    differ = np.int64(0)
    special = np.int64(1) << 62
    for i in range(ref_bits.size):
        rb = np.int64(ref_bits[i])
        differ |= rb ^ np.int64(cand_bits[i])
        t = (rb & exponent_mask) ^ exponent_mask  # 0 exactly where all exponent bits are set
        special = t if t < special else special
    return differ == 0, exponent_mask != 0 and special == 0


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=_REDUCE)
def _value_pass(ref, cand, bound, bound_rule, atol, rtol, dbuf, lbuf, fbuf):  # noqa: ANN001
    """One vectorised read of [lo, hi): the sums, the maxima (as bit patterns), the counts, and the
    differences and thresholds left in the buffers for the positions that need another look."""
    s = 0.0
    ss = 0.0
    max_d = np.int64(0)
    max_excess = np.int64(0)
    max_rel = np.int64(0)
    max_ratio = np.int64(0)
    failing = 0
    special = 0
    for j in range(ref.size):
        a = np.float64(ref[j])
        d = abs(np.float64(cand[j]) - a)
        m = abs(a)
        if bound_rule:
            limit = np.float64(bound[j])
        else:
            limit = atol + rtol * m
        dbuf[j] = d
        lbuf[j] = limit
        s += d
        ss += d * d
        special += not (d - d == 0.0)
        special += not (limit - limit == 0.0)
        fails = d > limit
        fbuf[j] = fails
        failing += fails
        bits = np.float64(d).view(np.int64)
        max_d = bits if bits > max_d else max_d
        e = d - rtol * m
        e = e if e > 0.0 else 0.0
        bits = np.float64(e).view(np.int64)
        max_excess = bits if bits > max_excess else max_excess
        rel = d / m if m > 0.0 else (np.inf if d > 0.0 else 0.0)
        bits = np.float64(rel).view(np.int64)
        max_rel = bits if bits > max_rel else max_rel
        ratio = d / limit if limit > 0.0 else (np.inf if d > 0.0 else 0.0)
        bits = np.float64(ratio).view(np.int64)
        max_ratio = bits if bits > max_ratio else max_ratio
    return s, ss, max_d, max_excess, max_rel, max_ratio, failing, special


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _as_float(bits) -> float:  # noqa: ANN001
    return np.int64(bits).view(np.float64)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan, offset, lo, hi,  # noqa: ANN001
          sample, profile_strides, profile_shape, profile_start, ints, floats, hist, profile,
          top_key, top_at, top_ref, top_cand, top_diff, top_ratio):
    """The exact scalar scan of [lo, hi), for blocks holding NaN, infinities or an overflowed bound."""
    k = top_key.size
    count = ints[TOP_COUNT]
    top_floor = top_key[k - 1] if count == k and k > 0 else 0.0
    n_axes = profile_shape.size
    for i in range(lo, hi):
        r = np.float64(ref[i])
        c = np.float64(cand[i])
        position = offset + i
        sampled = position % sample == 0
        failing = False
        if use_bits and ref_bits[i] == cand_bits[i]:
            if r != r:  # NaN on both sides, bit for bit
                ints[REF_NAN] += 1
                ints[CAND_NAN] += 1
                if not equal_nan:
                    failing = True
                    floats[MIN_ATOL] = np.inf
            elif r == np.inf or r == -np.inf:
                ints[REF_INF] += 1
                ints[CAND_INF] += 1
            else:
                ints[FINITE] += 1
                unbounded = False
                if bound_rule:
                    b = bound[i]
                    unbounded = not (b - b == 0.0)
                if unbounded:  # inf or NaN: compared exactly (and equal); no ratio
                    ints[EXACT] += 1
                elif sampled:
                    ints[SAMPLED_ZERO] += 1
        else:
            ints[BITS_EQUAL] = 0
            r_finite = r - r == 0.0
            c_finite = c - c == 0.0
            if not (r_finite and c_finite):
                r_nan = r != r
                c_nan = c != c
                if r_nan:
                    ints[REF_NAN] += 1
                elif not r_finite:
                    ints[REF_INF] += 1
                if c_nan:
                    ints[CAND_NAN] += 1
                elif not c_finite:
                    ints[CAND_INF] += 1
                if r_nan != c_nan:
                    ints[NAN_DISAGREE] += 1
                agree = (r == c) or (equal_nan and r_nan and c_nan)
                if not agree:
                    failing = True
                    floats[MIN_ATOL] = np.inf
                    if not (r_nan and c_nan):  # both NaN without equal_nan fails, but the patterns agree
                        ints[NONFINITE_MISMATCHED] += 1
            else:
                ints[FINITE] += 1
                d = abs(c - r)
                floats[SUM_ABS] += d
                floats[SUM_SQ] += d * d
                if d > floats[MAX_ABS]:
                    floats[MAX_ABS] = d
                    ints[MAX_ABS_AT] = position
                magnitude = abs(r)
                if d > 0.0:
                    rel = d / magnitude if magnitude > 0.0 else np.inf
                    if rel > floats[MAX_REL]:
                        floats[MAX_REL] = rel
                        ints[MAX_REL_AT] = position
                excess = d - rtol * magnitude
                if excess > floats[MIN_ATOL]:
                    floats[MIN_ATOL] = excess
                unbounded = False
                if bound_rule:
                    limit = np.float64(bound[i])
                    unbounded = not (limit - limit == 0.0)
                else:
                    limit = atol + rtol * magnitude
                if unbounded:
                    # The bound overflowed: compare exactly; the bound says nothing there, so the
                    # position stays out of the ratio figures.
                    ints[EXACT] += 1
                    if d > 0.0:
                        ints[EXACT_MISMATCHED] += 1
                        failing = True
                elif d > limit:
                    ints[EXCEEDED] += 1
                    failing = True
                if unbounded:
                    pass
                elif d > 0.0:
                    ratio = d / limit if limit > 0.0 else np.inf
                    if ratio > floats[MAX_RATIO]:
                        floats[MAX_RATIO] = ratio
                        ints[MAX_RATIO_AT] = position
                    if sampled:
                        hist[_ratio_bin(ratio)] += 1
                    key = ratio if bound_rule else d
                    if k > 0 and key > top_floor:
                        count = _insert_top(key, position, r, c, d, ratio, top_key, top_at, top_ref, top_cand,
                                            top_diff, top_ratio, count)
                        if count == k:
                            top_floor = top_key[k - 1]
                elif sampled:
                    ints[SAMPLED_ZERO] += 1
        if failing:
            ints[MISMATCHED] += 1
            for a in range(n_axes):
                profile[profile_start[a] + (position // profile_strides[a]) % profile_shape[a]] += 1
    ints[TOP_COUNT] = count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def scan(ref, cand, ref_bits, cand_bits, use_bits, exponent_mask, bound, bound_rule, atol, rtol, equal_nan,  # noqa: ANN001
         offset, sample, profile_strides, profile_shape, profile_start, ints, floats, hist, profile,
         top_key, top_at, top_ref, top_cand, top_diff, top_ratio):
    """Scan elements `offset .. offset + ref.size - 1` (flat C order) into the statistics arrays.

    `ints`, `floats`, `hist`, `profile` and the `top_*` arrays are accumulated into (they may already
    hold an earlier span's results, of lower indices). `ref_bits`/`cand_bits` are integer views of the
    original arrays, compared when `use_bits` (both sides of one dtype); `exponent_mask` marks NaN and
    infinity in those bits (0 for integers). The ratio histogram takes the positions that are a
    multiple of `sample`. `profile` holds the mismatches per index of every axis, axis a at
    `profile_start[a]`.
    """
    n = ref.size
    k = top_key.size
    n_axes = profile_shape.size
    dbuf = np.empty(BLOCK)
    lbuf = np.empty(BLOCK)
    fbuf = np.zeros(BLOCK, dtype=np.uint8)  # 1 where the element fails; read back 8 at a time
    fwords = fbuf.view(np.uint64)
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        width = hi - lo
        first_sampled = (-(offset + lo)) % sample
        bits_all_equal = False
        block_bound = bound[lo:hi] if bound_rule else bound
        if use_bits and ints[SKIP_PROBES] == 0:
            bits_all_equal, special = _bits_pass(ref_bits[lo:hi], cand_bits[lo:hi], exponent_mask)
            if bits_all_equal and not special:
                # Every element bit for bit equal and finite: nothing differs, nothing to compute.
                ints[FINITE] += width
                if first_sampled < width:
                    ints[SAMPLED_ZERO] += (width - 1 - first_sampled) // sample + 1
                if bound_rule:
                    for j in range(width):
                        b = block_bound[j]
                        if not (b - b == 0.0):  # compared exactly (and equal); no ratio
                            ints[EXACT] += 1
                            if (offset + lo + j) % sample == 0:
                                ints[SAMPLED_ZERO] -= 1
                continue
            if not bits_all_equal:
                ints[SKIP_PROBES] = PROBE_EVERY - 1
        elif ints[SKIP_PROBES] > 0:
            ints[SKIP_PROBES] -= 1
        s, ss, max_d, max_excess, max_rel, max_ratio, failing, special = _value_pass(
            ref[lo:hi], cand[lo:hi], block_bound, bound_rule, atol, rtol, dbuf, lbuf, fbuf)
        if special:
            _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan, offset, lo, hi,
                  sample, profile_strides, profile_shape, profile_start, ints, floats, hist, profile,
                  top_key, top_at, top_ref, top_cand, top_diff, top_ratio)
            continue
        if not bits_all_equal:
            ints[BITS_EQUAL] = 0
        ints[FINITE] += width
        ints[EXCEEDED] += failing
        floats[SUM_ABS] += s
        floats[SUM_SQ] += ss
        excess = _as_float(max_excess)
        if excess > floats[MIN_ATOL]:
            floats[MIN_ATOL] = excess
        d_top = _as_float(max_d)
        if d_top > floats[MAX_ABS]:
            for j in range(width):
                if dbuf[j] == d_top:
                    floats[MAX_ABS] = d_top
                    ints[MAX_ABS_AT] = offset + lo + j
                    break
        rel_top = _as_float(max_rel)
        if rel_top > floats[MAX_REL]:
            for j in range(width):
                d = dbuf[j]
                m = abs(np.float64(ref[lo + j]))
                rel = d / m if m > 0.0 else (np.inf if d > 0.0 else 0.0)
                if rel == rel_top:
                    floats[MAX_REL] = rel_top
                    ints[MAX_REL_AT] = offset + lo + j
                    break
        ratio_top = _as_float(max_ratio)
        if ratio_top > floats[MAX_RATIO]:
            for j in range(width):
                d, limit = dbuf[j], lbuf[j]
                ratio = d / limit if limit > 0.0 else (np.inf if d > 0.0 else 0.0)
                if ratio == ratio_top:
                    floats[MAX_RATIO] = ratio_top
                    ints[MAX_RATIO_AT] = offset + lo + j
                    break
        if k > 0:
            count = ints[TOP_COUNT]
            top_floor = top_key[k - 1] if count == k else 0.0
            if (ratio_top if bound_rule else d_top) > top_floor:
                for j in range(width):
                    d, limit = dbuf[j], lbuf[j]
                    if d > 0.0:
                        ratio = d / limit if limit > 0.0 else np.inf
                        key = ratio if bound_rule else d
                        if key > top_floor:
                            count = _insert_top(key, offset + lo + j, np.float64(ref[lo + j]),
                                                np.float64(cand[lo + j]), d, ratio, top_key, top_at, top_ref,
                                                top_cand, top_diff, top_ratio, count)
                            if count == k:
                                top_floor = top_key[k - 1]
                ints[TOP_COUNT] = count
        if failing:
            ints[MISMATCHED] += failing
            fbuf[width:] = 0  # a short last block leaves old flags behind it
            for w in range((width + 7) // 8):
                if fwords[w] == 0:
                    continue
                for j in range(8 * w, min(8 * w + 8, width)):
                    if fbuf[j]:
                        position = offset + lo + j
                        for a in range(n_axes):
                            profile[profile_start[a] + (position // profile_strides[a]) % profile_shape[a]] += 1
        for j in range(first_sampled, width, sample):
            d = dbuf[j]
            if d > 0.0:
                limit = lbuf[j]
                hist[_ratio_bin(d / limit if limit > 0.0 else np.inf)] += 1
            else:
                ints[SAMPLED_ZERO] += 1
