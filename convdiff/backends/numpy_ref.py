"""The float64 NumPy reference: TensorFlow's convolution semantics, no TensorFlow.

One matrix product per kernel tap over a strided view of the padded input, so the working set stays
near one input-sized temporary (no im2col matrix kh*kw times the input).
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.spec.convspec import ConvSpec, Pads


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], pads: Pads,
                dilation: tuple[int, int] = (1, 1), bias: np.ndarray | None = None,
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


class NumpyBackend:
    name = "numpy"
    summary = "float64 NumPy reference"
    requires: tuple[str, ...] = ()
    install_hint = ""

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.spec.initializers import make_kernel, parse_initializer

        start = time.perf_counter()
        if weights is None:
            # Drawn in the spec's variable dtype, as the TF sides draw theirs, so that only the
            # arithmetic of the convolution differs.
            kernel = make_kernel(parse_initializer(spec.initializer).resolved("kernel"), spec.kernel_shape,
                                 spec.variable_dtype, spec.seed)
            bias = (make_kernel(parse_initializer(spec.bias_initializer).resolved("bias"), (spec.filters,),
                                spec.variable_dtype, spec.seed) if spec.use_bias else None)
        else:
            kernel, bias = weights.kernel, (weights.bias if spec.use_bias else None)
        if spec.dtype == "tf32":
            from convdiff.analysis.precision import tf32_reference

            # What a GPU's tensor cores do with a float32 convolution: multiplicands rounded to 10
            # mantissa bits; the float64 arithmetic then stands in for their float32 accumulation.
            out = tf32_reference(x, kernel, spec, bias)
            return SideResult(self.name, out, kernel, bias, "tf32",
                              notes=("TF32 emulation: input and kernel rounded to 10 mantissa bits, then a float64 "
                                     "convolution",),
                              seconds=time.perf_counter() - start)
        out = conv2d_nhwc(x, kernel, spec.strides, spec.pads, spec.dilation, bias)
        return SideResult(self.name, out, kernel, bias, "float64",
                          notes=(f"input {x.dtype} and kernel {kernel.dtype} promoted to float64",),
                          seconds=time.perf_counter() - start)
