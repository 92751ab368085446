"""Caffe's Convolution and Deconvolution layers, written in NumPy: NCHW input (N-D, as Caffe's
`num_spatial_axes` allows), weights (C_out, C_in/group, *k) and (C_in, C_out/group, *k), a symmetric `pad`,
`group`.

Like every backend it receives channels-last input and canonical weights through the protocol; it converts
them to Caffe's layouts, computes there (one matrix product per kernel tap, per group, as Caffe's im2col
GEMM does), and hands the output back channels-last so comparisons line up. The conversions it applied are
listed in its notes.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.layouts import conversion, for_rank, from_canonical, input_layout_for


def caffe_pad(spec: ConvSpec) -> tuple[int, ...]:
    """The `pad` per spatial axis as in a prototxt (pad_h, pad_w in 2-D); the registry has refused SAME and
    asymmetric pads already."""
    if spec.padding.mode is PaddingMode.VALID:
        return (0,) * spec.rank
    return tuple(before for before, _ in spec.padding.pads)


def conv_nchw(x: np.ndarray, weights: np.ndarray, stride: tuple[int, ...], pad: tuple[int, ...],
              dilation: tuple[int, ...], group: int, bias: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """Caffe's Convolution forward pass: (N, C, *spatial) x (O, C/group, *k) -> (N, O, *out)."""
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(weights, dtype=dtype)
    rank = x.ndim - 2
    if any(pad):
        x = np.pad(x, ((0, 0), (0, 0), *((p, p) for p in pad)))
    n, c = x.shape[:2]
    o, per_in = w.shape[:2]
    taps = w.shape[2:]
    # Caffe's conv_layer.cpp: (input + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1, in integers.
    out = tuple((size - (d * (k - 1) + 1)) // s + 1 for size, k, s, d in zip(x.shape[2:], taps, stride, dilation))
    positions = int(np.prod(out))
    y = np.zeros((n, group, o // group, positions), dtype=dtype)
    grouped = w.reshape(group, o // group, per_in, *taps)
    for tap in np.ndindex(*taps):
        window = tuple(slice(j * d, j * d + s * (m - 1) + 1, s) for j, d, s, m in zip(tap, dilation, stride, out))
        patch = x[(slice(None), slice(None), *window)].reshape(n, group, per_in, positions)
        y += grouped[(slice(None), slice(None), slice(None), *tap)] @ patch
    y = y.reshape(n, o, *out)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape(1, o, *(1,) * rank)
    return y


def deconv_nchw(x: np.ndarray, weights: np.ndarray, stride: tuple[int, ...], pad: tuple[int, ...],
                dilation: tuple[int, ...], group: int, bias: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """Caffe's Deconvolution forward pass (its Convolution's backward data pass): (N, C, *spatial) x
    (C, O/group, *k) -> (N, O, *out), out = stride * (input - 1) + dilation * (kernel - 1) + 1 - 2 * pad."""
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(weights, dtype=dtype)
    rank = x.ndim - 2
    n, c = x.shape[:2]
    per_out = w.shape[1]
    taps = w.shape[2:]
    sizes = x.shape[2:]
    full = tuple(s * (size - 1) + d * (k - 1) + 1 for size, k, s, d in zip(sizes, taps, stride, dilation))
    y = np.zeros((n, group, per_out, *full), dtype=dtype)
    # col2im of W^T x: each tap's product lands on a strided window of the full output.
    grouped = w.reshape(group, c // group, per_out, *taps).swapaxes(1, 2)  # (group, O/group, C/group, *k)
    columns = x.reshape(n, group, c // group, int(np.prod(sizes)))
    for tap in np.ndindex(*taps):
        product = grouped[(slice(None), slice(None), slice(None), *tap)] @ columns
        window = tuple(slice(j * d, j * d + s * (size - 1) + 1, s)
                       for j, d, s, size in zip(tap, dilation, stride, sizes))
        y[(slice(None), slice(None), slice(None), *window)] += product.reshape(n, group, per_out, *sizes)
    y = y[(slice(None), slice(None), slice(None), *(slice(p, f - p) for p, f in zip(pad, full)))]
    y = y.reshape(n, group * per_out, *y.shape[3:])
    if bias is not None:
        y = y + np.asarray(bias, dtype=dtype).reshape(1, -1, *(1,) * rank)
    return y


class CaffeBackend:
    name = "caffe"
    summary = "Caffe's Convolution and Deconvolution layers in NumPy (NCHW, symmetric pad, group)"
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
        last, first = input_layout_for(spec.rank), input_layout_for(spec.rank, True)
        to_nchw, to_nhwc = conversion(last, first), conversion(first, last)
        layer = "Deconvolution" if spec.transposed else "Convolution"
        blob, to_blob = from_canonical(kernel, for_rank("IOHW" if spec.transposed else "OIHW", spec.rank),
                                       spec.rank, spec.transposed)
        run = deconv_nchw if spec.transposed else conv_nchw
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a result (inf), not a warning
            out = run(to_nchw.apply(x), blob, spec.strides, pad, spec.dilation, spec.groups, bias, dtype)
        names = ("pad_h", "pad_w") if spec.rank == 2 else tuple(f"pad[{i}]" for i in range(spec.rank))
        notes = (f"input {to_nchw}; weights {to_blob}; output {to_nhwc}",
                 f"Caffe {layer} ({', '.join(names)}) = {pad}" + (f", group {spec.groups}" if spec.groups > 1 else "")
                 + f", computed in {spec.dtype}")
        if spec.rank == 2 and not spec.transposed and spec.groups == 1:
            notes = (notes[0], f"Caffe pad (pad_h, pad_w) = {pad}, computed in {spec.dtype}")
        return SideResult(self.name, np.ascontiguousarray(to_nhwc.apply(out)), kernel, bias, spec.dtype,
                          notes=notes, seconds=time.perf_counter() - start)
