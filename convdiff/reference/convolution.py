"""The float64 reference convolution: one N-D routine for every kind a port meets (1-D, 2-D and 3-D;
grouped and depthwise; transposed; dilated; explicit per-side pads; cross-correlation or true
convolution), pure NumPy, importable by every layer above it.

Semantics are TensorFlow's, in channels-last layout with canonical kernels (`convdiff.spec.layouts`):

- forward: `y[o] = sum_taps sum_c x_padded[o * stride + tap * dilation, c] * w[tap, c, out]`, over the
  input channels `c` of the output channel's group (cross-correlation, as every framework computes);
- transposed (the gradient of the forward convolution with respect to its input): every input position
  `i` and tap `j` scatter into `y[i * stride + j * dilation - crop_before]` (`convdiff.spec.geometry`);
- true convolution (MATLAB conv2, scipy.signal.convolve): the kernel rotated 180 degrees in every spatial
  axis, then the same.

Memory stays near one input-sized temporary: one matrix product per kernel tap over a strided view of
the (padded) input, block by block of output rows (all taps of a block are added while it is in the
cache), or of the input scattered into a strided view of the output; no im2col matrix (taps times the
input) and no zero-dilated copy of the input is ever built.
"""

from __future__ import annotations

import numpy as np

from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.geometry import Pads


def conv_nd(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], pads: Pads,
            dilation: tuple[int, ...] | None = None, *, groups: int = 1, transposed: bool = False,
            flip: bool = False, bias: np.ndarray | None = None,
            dtype: np.dtype | type = np.float64) -> np.ndarray:
    """The convolution of `x` and `kernel`, any rank, in `dtype`.

    Args:
        x: input, (N, spatial..., C_in).
        kernel: canonical: (*k, C_in / groups, C_out) forward, (*k, C_out / groups, C_in) transposed.
        strides: one per spatial axis.
        pads: forward: the (before, after) pads of each axis; transposed: the (before, after) crops of
            the full scatter (`ConvSpec.pads`), negative for output positions beyond it.
        dilation: one per spatial axis (default 1).
        groups: input and output channels split into this many independent groups.
        transposed: the transposed convolution.
        flip: true convolution: the kernel rotated 180 degrees in every spatial axis.
        bias: optional per-output-channel bias.
        dtype: arithmetic dtype (float64 for the reference).

    Returns:
        The output, (N, spatial..., C_out), in `dtype`.
    """
    # A forward convolution converts its input while padding it (one copy, not two).
    x = np.asarray(x, dtype=dtype) if transposed else np.asarray(x)
    kernel = np.asarray(kernel, dtype=dtype)
    rank = x.ndim - 2
    dilation = tuple(dilation) if dilation is not None else (1,) * rank
    if flip:
        kernel = kernel[(slice(None, None, -1),) * rank]
    if transposed:
        out = _transposed(x, kernel, tuple(strides), tuple(pads), dilation, groups, dtype)
    else:
        out = _forward(x, kernel, tuple(strides), tuple(pads), dilation, groups, dtype)
    if bias is not None:
        out += np.asarray(bias, dtype=dtype)
    return out


# Output elements computed at once: every tap of a block is added while the block is still in the cache.
# Matrix products get larger blocks: a multi-threaded BLAS pays a synchronisation per call, ruinous for
# small products on a busy machine (measured: Conv1D 8x4096x64 twenty times slower with 1024-row products
# and two OpenBLAS threads under load); elementwise depthwise products get cache-sized ones.
_BLOCK_ELEMENTS = 1 << 19
_DEPTHWISE_BLOCK_ELEMENTS = 1 << 16


def _forward(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], pads: Pads,
             dilation: tuple[int, ...], groups: int, dtype: np.dtype | type) -> np.ndarray:
    rank = x.ndim - 2
    taps = kernel.shape[:rank]
    c_out = kernel.shape[-1]
    out_sizes = geometry.output_sizes(x.shape[1:-1], pads, taps, strides, dilation)
    if any(p for pair in pads for p in pair):
        padded = np.zeros((x.shape[0], *(size + sum(pair) for size, pair in zip(x.shape[1:-1], pads)), x.shape[-1]),
                          dtype=dtype)
        padded[(slice(None), *(slice(before, before + size) for size, (before, _) in zip(x.shape[1:-1], pads)))] = x
        x = padded
    else:
        x = np.asarray(x, dtype=dtype)
    out = np.zeros((x.shape[0], *out_sizes, c_out), dtype=dtype)
    # Blocks of whole rows of the first spatial axis, one batch item at a time.
    budget = _DEPTHWISE_BLOCK_ELEMENTS if kernel.shape[-2] == 1 and groups > 1 else _BLOCK_ELEMENTS
    rows = max(1, budget // max(1, int(np.prod(out_sizes[1:])) * c_out))
    s0, d0 = strides[0], dilation[0]
    scratch = np.empty((1, min(rows, out_sizes[0]), *out_sizes[1:], c_out), dtype=dtype)
    for n in range(x.shape[0]):
        for first in range(0, out_sizes[0], rows):
            last = min(out_sizes[0], first + rows)
            block = out[n:n + 1, first:last]
            product = scratch[:, :last - first]
            for tap in np.ndindex(*taps):
                lead = slice(first * s0 + tap[0] * d0, (last - 1) * s0 + tap[0] * d0 + 1, s0)
                window = tuple(slice(j * d, j * d + s * (o - 1) + 1, s)
                               for j, d, s, o in zip(tap[1:], dilation[1:], strides[1:], out_sizes[1:]))
                _product(x[(slice(n, n + 1), lead, *window, slice(None))], kernel[tap], groups, product)
                block += product
    return out


def _product(window: np.ndarray, w: np.ndarray, groups: int, out: np.ndarray) -> None:
    """out = the window's channels times one tap's weights w (C_in / groups, C_out), group by group."""
    c_in, c_out = window.shape[-1], out.shape[-1]
    if groups == 1:
        # A batched product over the leading axes: BLAS reads the strided window rows in place.
        np.matmul(window, w, out=out)
        return
    per_in, per_out = c_in // groups, c_out // groups
    if per_in == 1:  # depthwise: each input channel times its own output channels' weights
        if per_out == 1:
            np.multiply(window, w[0], out=out)
        else:
            np.multiply(window[..., None], w.reshape(groups, per_out), out=out.reshape(*out.shape[:-1], groups, per_out))
        return
    a = window.reshape(-1, groups, per_in).transpose(1, 0, 2)      # (groups, positions, per_in)
    b = w.reshape(per_in, groups, per_out).transpose(1, 0, 2)      # (groups, per_in, per_out)
    out.reshape(-1, groups, per_out)[...] = (a @ b).transpose(1, 0, 2)


def _transposed(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], crops: Pads,
                dilation: tuple[int, ...], groups: int, dtype: np.dtype | type) -> np.ndarray:
    rank = x.ndim - 2
    sizes = x.shape[1:-1]
    taps = kernel.shape[:rank]
    c_out = kernel.shape[-2] * groups
    out_sizes = geometry.transposed_output_sizes(sizes, crops, taps, strides, dilation)
    out = np.zeros((x.shape[0], *out_sizes, c_out), dtype=dtype)
    for tap in np.ndindex(*taps):
        source, target = [], []
        for i, (j, n, s, d, o, (before, _)) in enumerate(zip(tap, sizes, strides, dilation, out_sizes, crops)):
            shift = j * d - before  # input position p lands on output p * s + shift
            first = max(0, -(shift // s))          # the first p with p * s + shift >= 0
            last = min(n, (o - 1 - shift) // s + 1)  # one past the last p with p * s + shift < o
            if last <= first:
                break
            source.append(slice(first, last))
            target.append(slice(first * s + shift, (last - 1) * s + shift + 1, s))
        else:
            contribution = _scatter_product(x[(slice(None), *source, slice(None))], kernel[tap], groups)
            out[(slice(None), *target, slice(None))] += contribution
    return out


def _scatter_product(window: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """The window's channels times one tap of a transposed kernel w (C_out / groups, C_in)."""
    lead = window.shape[:-1]
    c_in = window.shape[-1]
    per_in, per_out = c_in // groups, w.shape[0]
    if groups == 1:
        return window @ w.T
    if per_in == 1:
        return (window.reshape(-1, groups, 1) * w.T.reshape(groups, per_out)).reshape(*lead, groups * per_out)
    a = window.reshape(-1, groups, per_in).transpose(1, 0, 2)        # (groups, positions, per_in)
    b = w.reshape(per_out, groups, per_in).transpose(1, 2, 0)        # (groups, per_in, per_out)
    return (a @ b).transpose(1, 0, 2).reshape(*lead, groups * per_out)


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], pads: Pads,
                dilation: tuple[int, ...] = (1, 1), bias: np.ndarray | None = None,
                dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Cross-correlation as tf.nn.conv2d computes it, with explicit per-side pads (the 2-D forward case).

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
    return conv_nd(x, kernel, strides, pads, dilation, bias=bias, dtype=dtype)


def convolve(x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, bias: np.ndarray | None = None,
             dtype: np.dtype | type = np.float64) -> np.ndarray:
    """The convolution `spec` describes (rank, strides, resolved pads or crops, dilation, groups, transposed,
    convention), in float64."""
    return conv_nd(x, kernel, spec.strides, spec.pads, spec.dilation, groups=spec.groups,
                   transposed=spec.transposed, flip=spec.convention == "convolution", bias=bias, dtype=dtype)
