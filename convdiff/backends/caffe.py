"""Caffe's Convolution layer, written in NumPy: NCHW input, OIHW weights, a symmetric `pad`.

Like every backend it receives NHWC input and HWIO weights through the protocol; it converts them to
Caffe's layouts, convolves there, and hands the output back as NHWC so comparisons line up. The
conversions it applied are listed in its notes.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.layouts import conversion, from_hwio
from convdiff.spec.convspec import ConvSpec, PaddingMode


def caffe_pad(spec: ConvSpec) -> tuple[int, int]:
    """(pad_h, pad_w) as in a prototxt (the registry has refused SAME and asymmetric pads already)."""
    if spec.padding.mode is PaddingMode.VALID:
        return (0, 0)
    (t, _), (l, _) = spec.pads
    return (t, l)


def conv2d_nchw(x: np.ndarray, weights: np.ndarray, stride: tuple[int, int], pad: tuple[int, int],
                dilation: tuple[int, int], bias: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """Caffe's forward pass: NCHW x OIHW -> NCHW, one matrix product per kernel tap."""
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(weights, dtype=dtype)
    ph, pw = pad
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    # Caffe's conv_layer.cpp: (input + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1, in integers.
    oh = (h - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((n, o, oh * ow), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            out += w[:, :, i, j] @ patch.reshape(n, c, oh * ow)
    out = out.reshape(n, o, oh, ow)
    if bias is not None:
        out += np.asarray(bias, dtype=dtype)[None, :, None, None]
    return out


class CaffeBackend:
    name = "caffe"
    summary = "Caffe's Convolution layer in NumPy (NCHW/OIHW, symmetric pad)"
    requires: tuple[str, ...] = ()
    install_hint = ""

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        pad = caffe_pad(spec)
        start = time.perf_counter()
        weights = weights or initial_weights(spec)
        with np.errstate(over="ignore"):
            kernel = np.asarray(weights.kernel).astype(spec.dtype)
        bias = (np.asarray(weights.bias).astype(spec.dtype)
                if spec.use_bias and weights.bias is not None else None)
        dtype = np_dtype(spec.dtype)
        to_nchw, to_nhwc = conversion("NHWC", "NCHW"), conversion("NCHW", "NHWC")
        oihw, to_oihw = from_hwio(kernel, "OIHW")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a result (inf), not a warning
            out = conv2d_nchw(to_nchw.apply(x), oihw, spec.strides, pad, spec.dilation, bias, dtype)
        notes = (f"input {to_nchw}; weights {to_oihw}; output {to_nhwc}",
                 f"Caffe pad (pad_h, pad_w) = {pad}, computed in {spec.dtype}")
        return SideResult(self.name, np.ascontiguousarray(to_nhwc.apply(out)), kernel, bias, spec.dtype,
                          notes=notes, seconds=time.perf_counter() - start)
