"""Where each statistic of a scan lives in the arrays both scans (`numpy_scan` and the compiled
`kernel`) fill, so that `core` builds one `Comparison` from either."""

# Integer statistics.
(MISMATCHED, NONFINITE_MISMATCHED, EXACT, FINITE, REF_NAN, CAND_NAN, REF_INF, CAND_INF, NAN_DISAGREE,
 SAMPLED_ZERO, BITS_EQUAL, MAX_ABS_AT, MAX_REL_AT, MAX_RATIO_AT, TOP_COUNT, SKIP_PROBES, EXCEEDED,
 EXACT_MISMATCHED) = range(18)
N_INT = 18
# Float statistics.
SUM_ABS, SUM_SQ, MAX_ABS, MAX_REL, MAX_RATIO, MIN_ATOL = range(6)
N_FLOAT = 6
