"""The histogram the median |diff| / threshold is read from: 64 bins per octave, by bit pattern.

The exponent and the top 6 mantissa bits of a float64 are its log2 to 1/64 of an octave, so a bin is
two shifts of the bits rather than a logarithm. Bins run from 2^-128 (below: the first bin) to 2^128
(the last bin, which also holds infinite ratios: a zero threshold). Positions are sampled regularly
(every position of small arrays, every 16th of large ones), the same whatever the chunking.
"""

from __future__ import annotations

import math

import numpy as np

BINS_PER_OCTAVE = 64
OCTAVES = 128
N_BINS = 2 * OCTAVES * BINS_PER_OCTAVE
SAMPLE_ALL_UP_TO = 1 << 16
SAMPLE_EVERY = 16


def sample_stride(n: int) -> int:
    return 1 if n <= SAMPLE_ALL_UP_TO else SAMPLE_EVERY


def ratio_bins(ratios: np.ndarray) -> np.ndarray:
    """The bin of each positive float64 ratio (the NumPy form of the compiled loop's `_ratio_bin`)."""
    bits = np.ascontiguousarray(ratios, dtype=np.float64).view(np.int64)
    b = (((bits >> 52) & 0x7FF) - 1023 + OCTAVES) * BINS_PER_OCTAVE + ((bits >> 46) & 63)
    return np.clip(b, 0, N_BINS - 1)


def median(zeros: int, hist: np.ndarray) -> float:
    """The lower median of the sampled ratios: `zeros` zero ratios, the positive ones in `hist`."""
    count = zeros + int(hist.sum())
    if count == 0:
        return math.nan
    rank = (count - 1) // 2  # the lower middle, as a count of elements before it
    if rank < zeros:
        return 0.0
    b = int(np.searchsorted(np.cumsum(hist), rank - zeros, side="right"))
    if b >= N_BINS - 1:
        return math.inf
    octave, step = divmod(b, BINS_PER_OCTAVE)
    return math.ldexp(1.0 + (step + 0.5) / BINS_PER_OCTAVE, octave - OCTAVES)
