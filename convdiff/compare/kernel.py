"""The comparator's one pass, compiled: every statistic, the deciding rule and the worst positions of a
flat range of elements, computed in a single read of the two arrays (and the bound).

NumPy would need one pass per statistic (the difference, its absolute value, the threshold, the
comparison, the ratio, the reductions): on two float32 arrays each pass costs about as much as reading
them, so the comparison ran at 3-50 times the memory floor (benchmarks/bench_compare.py). Here each
block of `BLOCK` elements is first compared bitwise (where the dtypes agree): a block whose bits are
equal is settled by that integer pass alone, and one where few bits differ is computed exactly at those
positions only. Elsewhere the block is read once by a loop the compiler vectorises (sums, maxima taken
on the bit patterns of non-negative floats, which order like integers, counts) that stores nothing and
divides nothing: the records of d / |ref| and d / threshold are screened with products, which say
whether the block holds a position that may beat them. Only the few positions that need it (a mismatch,
a new record, a top-k entry, a sampled ratio) are computed again, the same way, while the block is in
cache; blocks ahead are prefetched, since a loop with this much arithmetic per element leaves the
hardware prefetcher behind. Blocks holding NaN or infinities take an exact scalar path.

Every figure is the one an element-by-element float64 scan gives (the same positions, counts, records
and bins); only the sums may differ in their last bits, being added in another order.

The loop is compiled by numba (a well-kept JIT) once per machine and cached on disk (beside this file,
or in the user's cache directory where that is not writable); it releases the GIL, so `compare.core`
runs it on several threads over contiguous spans and merges the spans in index order (ties keep the
lowest index, as a sequential scan would). The semantics are those documented in `convdiff.compare.core`;
this module only computes them.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from convdiff.compare.histogram import BINS_PER_OCTAVE, N_BINS, OCTAVES
from convdiff.compare.slots import (BITS_EQUAL, CAND_INF, CAND_NAN, EXACT, EXACT_MISMATCHED, EXCEEDED, FINITE,
                                    MAX_ABS, MAX_ABS_AT,
                                    MAX_RATIO, MAX_RATIO_AT, MAX_REL, MAX_REL_AT, MIN_ATOL, MISMATCHED,
                                    NAN_DISAGREE, NONFINITE_MISMATCHED, REF_INF, REF_NAN, SAMPLED_ZERO,
                                    SKIP_PROBES, SUM_ABS, SUM_SQ, TOP_COUNT)

BLOCK = 2048
_INF_BITS = np.int64(0x7FF0000000000000)
# After a block whose bits differ somewhere, skip the bitwise probe for this many blocks.
PROBE_EVERY = 8
# Blocks are prefetched this many elements ahead: the hardware prefetcher alone leaves a loop with
# this much arithmetic per element waiting on memory (benchmarks/bench_compare.py: 2x the time).
AHEAD = 2 * BLOCK
# A block where at most 1 / SPARSE of the bits differ is computed at those positions alone.
SPARSE = 16

# Per-element arithmetic is exact IEEE (no contraction, no reciprocal approximations); only the order
# of the reductions may change, which is what lets them vectorise.
_REDUCE = {"reassoc", "nsz"}


@intrinsic
def _prefetch(typingctx, array, index):  # noqa: ANN001, ARG001
    """A hint to load the cache line holding array[index] (no fault if it is past the end: the
    instruction never faults)."""
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        hint = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_pointer.type], ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32]))
        # read, keep in all cache levels, data
        builder.call(hint, [byte_pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def _trailing_zeros(typingctx, word):  # noqa: ANN001, ARG001
    """The number of trailing zero bits of a nonzero uint64 (one instruction)."""
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        i64 = ir.IntType(64)
        count = builder.module.declare_intrinsic("llvm.cttz", [i64], ir.FunctionType(i64, [i64, ir.IntType(1)]))
        return builder.call(count, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.int64(types.uint64), codegen


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _differing(ref_bits, cand_bits, lo, fbuf, positions) -> int:  # noqa: ANN001
    """Write the positions lo + j where the bits differ into `positions`; return how many. A byte of
    flag per element (a loop the compiler vectorises), read back 8 at a time, one step per set flag."""
    n = ref_bits.size
    for j in range(n):
        fbuf[j] = ref_bits[j] != cand_bits[j]
    for j in range(n, (n + 7) // 8 * 8):
        fbuf[j] = 0  # a short last block leaves old flags behind it
    words = fbuf.view(np.uint64)
    count = 0
    for w in range((n + 7) // 8):
        word = words[w]
        while word:
            positions[count] = lo + 8 * w + (_trailing_zeros(word) >> 3)  # flags are 0 or 1: one bit a byte
            count += 1
            word &= word - np.uint64(1)
    return count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _prefetch_range(array, lo, hi):  # noqa: ANN001
    step = max(64 // array.itemsize, 1)
    for j in range(lo, min(hi, array.size), step):
        _prefetch(array, j)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _ratio_bin(ratio: float) -> int:
    # The exponent and the top 6 mantissa bits of a float64 are log2 to 1/64 of an octave.
    bits = np.float64(ratio).view(np.int64)
    exponent = ((bits >> 52) & 0x7FF) - 1023
    b = (exponent + OCTAVES) * BINS_PER_OCTAVE + ((bits >> 46) & 63)
    return min(max(b, 0), N_BINS - 1)


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
    """(how many positions have different bits, whether a reference element is NaN or infinite).

    Counts of equalities in the arrays' own integer width, on a block sliced from 0: the forms the
    compiler vectorises. `exponent_mask` has the dtype of the bits (0 for integers: nothing special)."""
    differ = 0
    special = 0
    for i in range(ref_bits.size):
        rb = ref_bits[i]
        differ += rb != cand_bits[i]
        special += (rb & exponent_mask) == exponent_mask  # all exponent bits set: NaN or infinity
    return differ, exponent_mask != 0 and special > 0


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=_REDUCE)
def _tolerance_pass(ref, cand, atol, rtol, rel_floor, ratio_floor):  # noqa: ANN001
    """One vectorised read of a block under the elementwise rule: the sums, the maxima (as bit patterns
    of non-negative floats, which order like integers), the counts. Nothing is stored: the few
    positions that need another look (a mismatch, a new record, a top-k entry, a sampled ratio) are
    computed again, the same way, from the block while it is in cache.

    Non-finite values need no test of their own: the sum of the differences is finite only when every
    difference is, and a block where it is not is scanned again exactly (`_slow`); the threshold is
    finite wherever the difference is (the caller checks that `atol + rtol * |ref|` cannot overflow). No quotient is taken: `fl(d / m) > r` implies `d >= fl(r * m)` for m > 0
    (rounding is monotone), so products against the records `rel_floor` (of d / |ref|) and
    `ratio_floor` (of d / threshold) count the positions that may beat them, and only then is a
    block divided, in `_first_max`. Where m <= 0 the product is <= 0 (or NaN against an infinite
    record, which nothing beats) and every positive d is counted."""
    s = 0.0
    ss = 0.0
    max_d = np.int64(0)
    max_e = np.int64(0)  # negative excesses have negative bit patterns: the maximum is at least +0.0
    failing = 0
    rel_maybe = 0
    ratio_maybe = 0
    for j in range(ref.size):
        a = np.float64(ref[j])
        d = abs(np.float64(cand[j]) - a)
        m = abs(a)
        p = rtol * m
        limit = atol + p
        s += d
        ss += d * d
        failing += d > limit
        bits = np.float64(d).view(np.int64)
        max_d = bits if bits > max_d else max_d
        bits = np.float64(d - p).view(np.int64)
        max_e = bits if bits > max_e else max_e
        positive = d > 0.0
        rel_maybe += positive & (d >= rel_floor * m)
        ratio_maybe += positive & (d >= ratio_floor * limit)
    return s, ss, max_d, max_e, failing, rel_maybe, ratio_maybe, False


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=_REDUCE)
def _bound_pass(ref, cand, bound, rtol, rel_floor, ratio_floor):  # noqa: ANN001
    """`_tolerance_pass` under the bound rule: the threshold is the bound, whose largest magnitude (as
    bits: infinity and NaN above every finite value) says whether the block needs `_slow`."""
    s = 0.0
    ss = 0.0
    max_d = np.int64(0)
    max_e = np.int64(0)
    max_b = np.int64(0)
    failing = 0
    rel_maybe = 0
    ratio_maybe = 0
    for j in range(ref.size):
        a = np.float64(ref[j])
        d = abs(np.float64(cand[j]) - a)
        m = abs(a)
        limit = bound[j]
        s += d
        bits = np.float64(abs(limit)).view(np.int64)
        max_b = bits if bits > max_b else max_b
        ss += d * d
        failing += d > limit
        bits = np.float64(d).view(np.int64)
        max_d = bits if bits > max_d else max_d
        bits = np.float64(d - rtol * m).view(np.int64)
        max_e = bits if bits > max_e else max_e
        positive = d > 0.0
        rel_maybe += positive & (d >= rel_floor * m)
        ratio_maybe += positive & (d >= ratio_floor * limit)
    return s, ss, max_d, max_e, failing, rel_maybe, ratio_maybe, max_b >= _INF_BITS


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _diff(ref, cand, j) -> float:  # noqa: ANN001
    return abs(np.float64(cand[j]) - np.float64(ref[j]))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _limit(ref, bound, bound_rule, atol, rtol, j) -> float:  # noqa: ANN001
    if bound_rule:
        return np.float64(bound[j])
    return atol + rtol * abs(np.float64(ref[j]))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _first_max(ref, cand, bound, bound_rule, atol, rtol, by_ratio, lo, hi, record):  # noqa: ANN001
    """(the largest d / scale above `record`, or `record`; its first position, or -1) over [lo, hi),
    where the scale is the threshold (`by_ratio`) or |ref|: a positive d over a scale <= 0 is inf, a
    zero d never counts. Divides only where the product against the best so far says the quotient
    may beat it."""
    best = record
    at = -1
    for j in range(lo, hi):
        d = _diff(ref, cand, j)
        if d > 0.0:
            m = _limit(ref, bound, bound_rule, atol, rtol, j) if by_ratio else abs(np.float64(ref[j]))
            if d >= best * m:
                q = d / m if m > 0.0 else np.inf
                if q > best:
                    best = q
                    at = j
    return best, at


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fail_flags(ref, cand, bound, bound_rule, atol, rtol, fbuf):  # noqa: ANN001
    """fbuf[j] = 1 where the element fails (the dense pass counts them; this says where)."""
    if bound_rule:
        for j in range(ref.size):
            fbuf[j] = abs(np.float64(cand[j]) - np.float64(ref[j])) > np.float64(bound[j])
    else:
        for j in range(ref.size):
            a = np.float64(ref[j])
            fbuf[j] = abs(np.float64(cand[j]) - a) > atol + rtol * abs(a)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _as_float(bits) -> float:  # noqa: ANN001
    return np.int64(bits).view(np.float64)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan, offset, positions,  # noqa: ANN001
          n_positions, sample, profile_strides, profile_shape, profile_start, ints, floats, hist, profile,
          top_key, top_at, top_ref, top_cand, top_diff, top_ratio):
    """The exact scalar scan of `positions[:n_positions]` (increasing), for blocks holding NaN,
    infinities or an overflowed bound, and for the few positions whose bits differ in a sparse block."""
    k = top_key.size
    count = ints[TOP_COUNT]
    top_floor = top_key[k - 1] if count == k and k > 0 else 0.0
    n_axes = profile_shape.size
    for p in range(n_positions):
        i = positions[p]
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
def scan(ref, cand, ref_bits, cand_bits, use_bits, exponent_mask, bound, bound_rule, atol, rtol, check_limit,  # noqa: ANN001
         equal_nan, offset, sample, profile_strides, profile_shape, profile_start, ints, floats, hist, profile,
         top_key, top_at, top_ref, top_cand, top_diff, top_ratio):
    """Scan elements `offset .. offset + ref.size - 1` (flat C order) into the statistics arrays.

    `ints`, `floats`, `hist`, `profile` and the `top_*` arrays are accumulated into (they may already
    hold an earlier span's results, of lower indices). `ref_bits`/`cand_bits` are integer views of the
    original arrays, compared when `use_bits` (both sides of one dtype); `exponent_mask` (of their
    dtype) marks NaN and infinity in those bits (0 for integers). `check_limit`: whether the
    elementwise threshold `atol + rtol * |ref|` may overflow for finite values (then every block that
    needs arithmetic takes the exact scan). The ratio histogram
    takes the positions that are a multiple of `sample`. `profile` holds the mismatches per index of
    every axis, axis a at `profile_start[a]`.

    Each block is first compared bitwise (where the dtypes agree): a block with equal bits needs no
    arithmetic; one where few bits differ is computed exactly at those positions alone (`_slow`); one
    where many differ takes the vectorised pass, and the bitwise probe is skipped for the next
    `PROBE_EVERY - 1` blocks.
    """
    n = ref.size
    k = top_key.size
    n_axes = profile_shape.size
    fbuf = np.zeros(BLOCK, dtype=np.uint8)  # 1 where the element differs or fails; read back 8 at a time
    fwords = fbuf.view(np.uint64)
    positions = np.empty(BLOCK, dtype=np.int64)
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        width = hi - lo
        first_sampled = (-(offset + lo)) % sample
        n_sampled = (width - 1 - first_sampled) // sample + 1 if first_sampled < width else 0
        block_bound = bound[lo:hi] if bound_rule else bound
        if ints[SKIP_PROBES] or not use_bits:
            # Where the arithmetic pass runs (the bitwise probe keeps up with memory by itself).
            _prefetch_range(ref, lo + AHEAD, hi + AHEAD)
            _prefetch_range(cand, lo + AHEAD, hi + AHEAD)
            if bound_rule:
                _prefetch_range(bound, lo + AHEAD, hi + AHEAD)
        if use_bits and ints[SKIP_PROBES] == 0:
            n_differ, special = _bits_pass(ref_bits[lo:hi], cand_bits[lo:hi], exponent_mask)
            if special:
                for j in range(width):
                    positions[j] = lo + j
                _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan, offset,
                      positions, width, sample, profile_strides, profile_shape, profile_start, ints, floats, hist,
                      profile, top_key, top_at, top_ref, top_cand, top_diff, top_ratio)
                continue
            if n_differ * SPARSE <= width:
                # Equal bits are finite here (no NaN or infinity in the block) and differ by zero: they
                # only count; the differing positions, if any, are computed one by one.
                count = _differing(ref_bits[lo:hi], cand_bits[lo:hi], lo, fbuf, positions) if n_differ else 0
                sampled_equal = n_sampled
                for c in range(count):
                    if (offset + positions[c]) % sample == 0:
                        sampled_equal -= 1
                ints[FINITE] += width - count
                ints[SAMPLED_ZERO] += sampled_equal
                if bound_rule:
                    c = 0  # the differing positions, in order: those are left to _slow
                    for j in range(lo, hi):
                        if c < count and positions[c] == j:
                            c += 1
                            continue
                        b = bound[j]
                        if not (b - b == 0.0):
                            ints[EXACT] += 1  # compared exactly (and equal); no ratio
                            if (offset + j) % sample == 0:
                                ints[SAMPLED_ZERO] -= 1
                if count:
                    _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan,
                          offset, positions, count, sample, profile_strides, profile_shape, profile_start, ints,
                          floats, hist, profile, top_key, top_at, top_ref, top_cand, top_diff, top_ratio)
                continue
            ints[SKIP_PROBES] = PROBE_EVERY - 1
        elif ints[SKIP_PROBES] > 0:
            ints[SKIP_PROBES] -= 1
        ratio_floor = floats[MAX_RATIO]
        if bound_rule and k > 0:
            # Under the bound rule the top-k is by ratio, and its k-th key is never above the largest.
            ratio_floor = top_key[k - 1] if ints[TOP_COUNT] == k else 0.0
        ref_block, cand_block = ref[lo:hi], cand[lo:hi]
        if bound_rule:
            s, ss, max_d, max_e, failing, rel_maybe, ratio_maybe, unbounded = _bound_pass(
                ref_block, cand_block, block_bound, rtol, floats[MAX_REL], ratio_floor)
        else:
            s, ss, max_d, max_e, failing, rel_maybe, ratio_maybe, unbounded = _tolerance_pass(
                ref_block, cand_block, atol, rtol, floats[MAX_REL], ratio_floor)
        if check_limit or unbounded or not (s - s == 0.0):  # a NaN or an infinity somewhere: the exact scan
            for j in range(width):
                positions[j] = lo + j
            _slow(ref, cand, ref_bits, cand_bits, use_bits, bound, bound_rule, atol, rtol, equal_nan, offset,
                  positions, width, sample, profile_strides, profile_shape, profile_start, ints, floats, hist,
                  profile, top_key, top_at, top_ref, top_cand, top_diff, top_ratio)
            continue
        # Dense: a probed block differs in many bits, and probes are skipped only after such a block.
        ints[BITS_EQUAL] = 0
        ints[FINITE] += width
        ints[EXCEEDED] += failing
        floats[SUM_ABS] += s
        floats[SUM_SQ] += ss
        excess = _as_float(max_e)
        if excess > floats[MIN_ATOL]:
            floats[MIN_ATOL] = excess
        d_top = _as_float(max_d)
        if d_top > floats[MAX_ABS]:
            for j in range(lo, hi):
                if _diff(ref, cand, j) == d_top:
                    floats[MAX_ABS] = d_top
                    ints[MAX_ABS_AT] = offset + j
                    break
        if rel_maybe:
            rel_top, at = _first_max(ref, cand, bound, bound_rule, atol, rtol, False, lo, hi, floats[MAX_REL])
            if at >= 0:
                floats[MAX_REL] = rel_top
                ints[MAX_REL_AT] = offset + at
        if ratio_maybe:
            ratio_top, at = _first_max(ref, cand, bound, bound_rule, atol, rtol, True, lo, hi, floats[MAX_RATIO])
            if at >= 0:
                floats[MAX_RATIO] = ratio_top
                ints[MAX_RATIO_AT] = offset + at
        if k > 0:
            count = ints[TOP_COUNT]
            top_floor = top_key[k - 1] if count == k else 0.0
            if ratio_maybe if bound_rule else d_top > top_floor:
                for j in range(lo, hi):
                    d = _diff(ref, cand, j)
                    if d > 0.0:
                        limit = _limit(ref, bound, bound_rule, atol, rtol, j)
                        if bound_rule and d < top_floor * limit:
                            continue  # its ratio cannot beat the floor (see _tolerance_pass)
                        ratio = d / limit if limit > 0.0 else np.inf
                        key = ratio if bound_rule else d
                        if key > top_floor:
                            count = _insert_top(key, offset + j, np.float64(ref[j]), np.float64(cand[j]), d, ratio,
                                                top_key, top_at, top_ref, top_cand, top_diff, top_ratio, count)
                            if count == k:
                                top_floor = top_key[k - 1]
                ints[TOP_COUNT] = count
        if failing:
            ints[MISMATCHED] += failing
            _fail_flags(ref_block, cand_block, block_bound, bound_rule, atol, rtol, fbuf)
            fbuf[width:] = 0
            for w in range((width + 7) // 8):
                word = fwords[w]
                while word:
                    position = offset + lo + 8 * w + (_trailing_zeros(word) >> 3)  # one bit a flag byte
                    word &= word - np.uint64(1)
                    for a in range(n_axes):
                        profile[profile_start[a] + (position // profile_strides[a]) % profile_shape[a]] += 1
        # Without branches (about half of the differences may be 0, at random): every sampled position
        # adds 1 to its bin if its difference is positive, 0 otherwise.
        zeros = 0  # counted here, not in `ints`, which the compiler cannot keep in a register
        for j in range(lo + first_sampled, hi, sample):
            d = _diff(ref, cand, j)
            limit = _limit(ref, bound, bound_rule, atol, rtol, j)
            positive = d > 0.0
            zeros += not positive
            hist[_ratio_bin(d / limit if limit > 0.0 else np.inf)] += positive
        ints[SAMPLED_ZERO] += zeros
