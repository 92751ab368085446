"""How the weights shipped with the built-in experiments were made (tests check the files match)."""

from __future__ import annotations

import numpy as np


def caffe_conv1(seed: int = 2016) -> dict[str, np.ndarray]:
    """conv1 of the caffe-port experiment: 96 filters 5x5 on one channel, Caffe's OIHW (96, 1, 5, 5).

    Caffe's `xavier` filler: uniform in +-sqrt(3 / fan_in), fan_in = C * kh * kw = 25 (Caffe's default
    variance_norm FAN_IN); the `constant` bias filler with value 0.1. float32, as Caffe stores blobs.
    """
    limit = np.sqrt(3.0 / 25.0)
    kernel = np.random.default_rng(seed).uniform(-limit, limit, size=(96, 1, 5, 5)).astype(np.float32)
    return {"kernel": kernel, "bias": np.full(96, 0.1, dtype=np.float32)}
