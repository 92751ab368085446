"""The only place that knows how padding, output sizes and dot-product lengths are computed.

Every formula is per spatial axis, so it holds for any number of spatial axes. Pads are
`(before, after)` pairs, one per axis ((top, bottom), (left, right) in 2-D).
"""

from __future__ import annotations

from collections.abc import Sequence

Pads = tuple[tuple[int, int], ...]


def dilated_size(kernel: int, dilation: int) -> int:
    """The span of a dilated kernel tap row: (k - 1) * d + 1."""
    return (kernel - 1) * dilation + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's `SAME` on one axis: ceil(size / stride) outputs, the odd pad at the end.

    (tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSizeVerbose.)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilated_size(kernel, dilation) - size, 0)
    return (total // 2, total - total // 2)


def output_size(size: int, pads: tuple[int, int], kernel: int, stride: int, dilation: int) -> int:
    """floor((size + before + after - dilated kernel) / stride) + 1: TF, Caffe and PyTorch agree on it."""
    return (size + pads[0] + pads[1] - dilated_size(kernel, dilation)) // stride + 1


def resolve_same(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilation: Sequence[int]) -> Pads:
    return tuple(same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation))


def output_sizes(sizes: Sequence[int], pads: Pads, kernel: Sequence[int], strides: Sequence[int],
                 dilation: Sequence[int]) -> tuple[int, ...]:
    return tuple(output_size(n, p, k, s, d) for n, p, k, s, d in zip(sizes, pads, kernel, strides, dilation))


def dot_length(kernel: Sequence[int], in_channels: int, groups: int = 1) -> int:
    """K: the length of every dot product the convolution computes (taps times input channels per group)."""
    taps = 1
    for k in kernel:
        taps *= k
    return taps * (in_channels // groups)
