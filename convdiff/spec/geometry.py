"""The only place that knows how padding, output sizes and dot-product lengths are computed.

Every formula is per spatial axis, so it holds for any number of spatial axes (1-D, 2-D, 3-D). Pads
are `(before, after)` pairs, one per axis ((top, bottom), (left, right) in 2-D).

A forward convolution pads its input: output position `o` reads the padded input at
`o * stride + tap * dilation`. A transposed convolution (the gradient of a forward one with respect to
its input) scatters instead: input position `i` and kernel tap `j` add to output position

    o = i * stride + j * dilation - crop_before,       0 <= o < output size,

so its "pads" are croppings of the full scatter, whose length is `(size - 1) * stride + dilated kernel`.
A crop may be negative: output positions beyond the full scatter, which no tap reaches (that is what
`output_padding` adds at the end).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

Pads = tuple[tuple[int, int], ...]


def dilated_size(kernel: int, dilation: int) -> int:
    """The span of a dilated kernel tap row: (k - 1) * d + 1."""
    return (kernel - 1) * dilation + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int, *, lower: bool = False) -> tuple[int, int]:
    """TensorFlow's `SAME` (ONNX `SAME_UPPER`) on one axis: ceil(size / stride) outputs, the odd pad at the end.

    (tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSizeVerbose.) With `lower`, ONNX's
    `SAME_LOWER`: the same total, the odd pad at the start (onnxruntime's ComputePadAndOutputShape).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilated_size(kernel, dilation) - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


def onnx_pads(pads: Pads) -> list[int]:
    """(before, after) pairs in ONNX's order: `[begin_1, ..., begin_n, end_1, ..., end_n]` ([t, l, b, r] in 2-D)."""
    return [before for before, _ in pads] + [after for _, after in pads]


def from_onnx_pads(values: Sequence[int]) -> Pads:
    """ONNX's `[begin_1, ..., begin_n, end_1, ..., end_n]` as (before, after) pairs per axis."""
    rank = len(values) // 2
    return tuple((int(values[i]), int(values[rank + i])) for i in range(rank))


def output_size(size: int, pads: tuple[int, int], kernel: int, stride: int, dilation: int) -> int:
    """floor((size + before + after - dilated kernel) / stride) + 1: TF, Caffe and PyTorch agree on it."""
    return (size + pads[0] + pads[1] - dilated_size(kernel, dilation)) // stride + 1


def resolve_same(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilation: Sequence[int], *, lower: bool = False) -> Pads:
    return tuple(same_pads(n, k, s, d, lower=lower) for n, k, s, d in zip(sizes, kernel, strides, dilation))


def output_sizes(sizes: Sequence[int], pads: Pads, kernel: Sequence[int], strides: Sequence[int],
                 dilation: Sequence[int]) -> tuple[int, ...]:
    return tuple(output_size(n, p, k, s, d) for n, p, k, s, d in zip(sizes, pads, kernel, strides, dilation))


# --- transposed convolutions -------------------------------------------------------------------------


def full_transposed_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Length of the full scatter of a transposed convolution: (size - 1) * stride + dilated kernel."""
    return (size - 1) * stride + dilated_size(kernel, dilation)


def transposed_same_crops(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow / Keras `SAME` for a transposed convolution: size * stride outputs.

    TF computes the crops as the SAME pads of the forward convolution from the output back to the
    input (conv2d_transpose is Conv2DBackpropInput): total max(dilated kernel - stride, 0), the odd
    one at the end. With a kernel shorter than the stride the crop at the end is negative: the last
    outputs receive no tap.
    """
    out = size * stride
    before, _ = same_pads(out, kernel, stride, dilation)
    return (before, full_transposed_size(size, kernel, stride, dilation) - before - out)


def tflite_transposed_crops(size: int, out: int, kernel: int, stride: int, dilation: int, *, same: bool
                            ) -> tuple[int, int]:
    """TFLite's TRANSPOSE_CONV / CONV_3D_TRANSPOSE on one axis: the crops of the full scatter that leave the
    `out` positions its output_shape asks for.

    TFLite pads as the forward convolution from the output back to the input would (kernels/padding.h,
    ComputePaddingHeightWidth called with the output's size): that convolution's output count is
    ceil(out / stride) for SAME, (out + stride - dilated kernel) // stride for VALID, its total pad
    max((count - 1) * stride + dilated kernel - out, 0), and the crop at the start is half of it, rounded
    down; output j is position j + that crop of the full scatter. The crop at the end is whatever is left,
    negative when the output reaches past the scatter (those positions get the bias alone). For out =
    size * stride and SAME this is `transposed_same_crops`.
    """
    span = dilated_size(kernel, dilation)
    count = -(-out // stride) if same else (out + stride - span) // stride
    before = max((count - 1) * stride + span - out, 0) // 2
    return (before, full_transposed_size(size, kernel, stride, dilation) - before - out)


def transposed_explicit_crops(pads: tuple[int, int], output_padding: int) -> tuple[int, int]:
    """PyTorch's `padding` / `output_padding` (Caffe's `pad`; TF's explicit pads of conv2d_transpose).

    `padding` (before, after) crops the full scatter on both sides; `output_padding` gives back that
    many positions at the end: out = (size - 1) * stride - before - after + dilated kernel + output_padding.
    """
    return (pads[0], pads[1] - output_padding)


def valid_then_crop(pads: Pads, output_padding: Sequence[int]) -> tuple[tuple[int, ...], Pads]:
    """PyTorch's transposed pads where a framework has none (Keras' ConvTranspose layers, conv1d/3d_transpose,
    asymmetric pads in PyTorch): a VALID (padding 0) transposed convolution, with the output padding the
    pads leave missing at the end, then its output cropped.

    Returns:
        (the output padding of the VALID convolution, the (before, after) crops of its output) per axis.
    """
    extra = tuple(max(0, op - after) for op, (_, after) in zip(output_padding, pads))
    return extra, tuple((before, after - op + e) for (before, after), op, e in zip(pads, output_padding, extra))


def transposed_output_size(size: int, crops: tuple[int, int], kernel: int, stride: int, dilation: int) -> int:
    return full_transposed_size(size, kernel, stride, dilation) - crops[0] - crops[1]


def transposed_output_sizes(sizes: Sequence[int], crops: Pads, kernel: Sequence[int], strides: Sequence[int],
                            dilation: Sequence[int]) -> tuple[int, ...]:
    return tuple(transposed_output_size(n, c, k, s, d)
                 for n, c, k, s, d in zip(sizes, crops, kernel, strides, dilation))


def taps_per_output(kernel: int, stride: int, dilation: int) -> int:
    """The most kernel taps that reach one output position of a transposed convolution on one axis.

    Output o receives tap j when o + crop - j * dilation is a multiple of the stride: the taps split into
    `stride` classes by j * dilation mod stride, and the largest class is what one output sums over.
    """
    return max(Counter((j * dilation) % stride for j in range(kernel)).values())


def dot_length(kernel: Sequence[int], in_channels: int, groups: int = 1, *, transposed: bool = False,
               strides: Sequence[int] | None = None, dilation: Sequence[int] | None = None) -> int:
    """K: the length of the longest dot product the convolution computes.

    Forward: every tap of every input channel of the output's group, prod(kernel) * C_in / groups.
    Transposed: only the taps in the stride class of the output (`taps_per_output`) contribute, times
    the input channels of its group.
    """
    per_group = in_channels // groups
    taps = 1
    if transposed:
        strides = strides or (1,) * len(kernel)
        dilation = dilation or (1,) * len(kernel)
        for k, s, d in zip(kernel, strides, dilation):
            taps *= taps_per_output(k, s, d)
    else:
        for k in kernel:
            taps *= k
    return taps * per_group


def max_output_padding(stride: int, dilation: int) -> int:
    """The largest output_padding PyTorch accepts on an axis: less than max(stride, dilation).

    Past that, the extra positions would be a full stride period no input reaches. TensorFlow's
    conv_transpose and Keras require less than the stride alone (the backends say so).
    """
    return max(stride, dilation) - 1
