"""The float64 reference convolution: TensorFlow's semantics (cross-correlation, explicit per-side pads),
pure NumPy, importable by every layer above it.

One matrix product per kernel tap over a strided view of the padded input, so the working set stays
near one input-sized temporary (no im2col matrix kh*kw times the input).
"""

from __future__ import annotations

import numpy as np

from convdiff.spec.convspec import ConvSpec
from convdiff.spec.geometry import Pads


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], pads: Pads,
                dilation: tuple[int, ...] = (1, 1), bias: np.ndarray | None = None,
                dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Cross-correlation as tf.nn.conv2d computes it, with explicit per-side pads.

    Args:
        x: input, NHWC.
        kernel: HWIO.
        strides: (sh, sw).
        pads: ((top, bottom), (left, right)) as resolved by `Padding.resolve`.
        dilation: (dh, dw).
        bias: optional per-output-channel bias.
        dtype: arithmetic dtype (float64 for the reference).

    Returns:
        The NHWC output in `dtype`.
    """
    x = np.asarray(x, dtype=dtype)
    kernel = np.asarray(kernel, dtype=dtype)
    (t, b), (l, r) = pads
    if any((t, b, l, r)):
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, cout), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            out += x[:, rows, cols, :] @ kernel[i, j]
    if bias is not None:
        out += np.asarray(bias, dtype=dtype)
    return out


def convolve(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, bias: np.ndarray | None = None,
             dtype: np.dtype | type = np.float64) -> np.ndarray:
    """The convolution `spec` describes (its strides, resolved pads and dilation), in float64."""
    return conv2d_nhwc(x, kernel, spec.strides, spec.pads, spec.dilation, bias, dtype)
