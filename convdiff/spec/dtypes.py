"""Dtype names as users type them -> NumPy dtypes (bfloat16 through ml_dtypes, a TensorFlow dependency)."""

from __future__ import annotations

import numpy as np

from convdiff.errors import BackendUnavailableError


def np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - ml_dtypes ships with TensorFlow
            raise BackendUnavailableError("bfloat16 needs the ml_dtypes package: pip install ml_dtypes") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def lower_precision(*names: str) -> str:
    """The least precise of the given float dtype names (by unit roundoff)."""
    order = {"float64": 0, "float32": 1, "tf32": 2, "float16": 3, "bfloat16": 4}
    return max(names, key=lambda n: order.get(n, -1))


FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# tf32 is an emulation of the NumPy reference only: float32 storage, multiplicands rounded to TF32.
COMPUTE_DTYPES = (*FLOAT_DTYPES, "tf32")
