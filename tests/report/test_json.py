"""The JSON renderers: strict JSON with one non-finite policy, the documented keys."""

import json

import numpy as np

from convdiff.compare import compare_arrays
from convdiff.report.json import comparison_json

F32 = np.float32
NAN, INF = float("nan"), float("inf")


def a32(*values):
    return np.array(values, dtype=F32)


def test_to_json_round_trips_without_nan_or_inf():
    reference = a32(0, NAN, INF, 1)
    candidate = a32(1, 1, -INF, 1)
    result = compare_arrays(reference, candidate)
    encoded = json.dumps(comparison_json(result), allow_nan=False)
    decoded = json.loads(encoded)
    assert decoded["verdict"] == "mismatch"
    assert decoded["max_rel_diff"] == "inf"
    assert decoded["min_atol"] == "inf"
    assert decoded["nan"] == {"reference": 1, "candidate": 0, "positions_agree": False}
    assert decoded["inf"] == {"reference": 1, "candidate": 1}
    assert decoded["worst"] == [{"index": [0], "reference": 0.0, "candidate": 1.0,
                                 "abs_diff": 1.0, "ratio": 1.0 / 1e-5}]
    assert decoded["nonfinite"] == {"mismatched": 2, "excluded": 2, "exact_compared": 0, "exact_mismatched": 0}
    assert decoded["max_abs_diff_index"] == [0]
    assert set(decoded) == {
        "verdict", "shape_match", "dtype_match", "reference_shape", "candidate_shape",
        "reference_dtype", "candidate_dtype", "max_abs_diff", "max_abs_diff_index",
        "max_rel_diff", "max_rel_diff_index", "sum_abs_diff", "mean_abs_diff", "rmse",
        "mismatched", "total", "atol", "rtol", "equal_nan", "min_atol", "nan", "inf", "worst", "rule",
        "max_ratio", "max_ratio_index", "median_ratio", "nonfinite"}
    all_nan = compare_arrays(np.full(2, NAN, F32), np.full(2, NAN, F32))
    assert json.loads(json.dumps(comparison_json(all_nan), allow_nan=False))["rmse"] == "nan"

