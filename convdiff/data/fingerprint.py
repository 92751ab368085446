"""A fingerprint of the input each side ran on, so that two sides fed different data are flagged.

`--set candidate.seed=7` or a different input file per side are legitimate experiments, but the
report must say so: a comparison of two convolutions over different inputs is not a comparison of
the convolutions. The fingerprint covers the dtype and shape as well as the bytes, so the same bytes
read as another dtype or shape count as a different input.
"""

from __future__ import annotations

import hashlib

import numpy as np


def input_sha256(x: np.ndarray) -> str:
    """sha256 (hex) of `dtype|shape|` followed by the array's bytes in C order."""
    array = np.ascontiguousarray(x)
    digest = hashlib.sha256(f"{array.dtype.str}|{','.join(map(str, array.shape))}|".encode())
    digest.update(array.reshape(-1).view(np.uint8).data)  # a byte view: works for ml_dtypes bfloat16 too
    return digest.hexdigest()
