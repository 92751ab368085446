"""Pieces shared by the TensorFlow backends: the tf.nn op for every kind (used eagerly by `nn` and in a
graph by `v1-nn`), and the layouts they compute in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.layouts import conversion, input_layout_for

T = TypeVar("T")


def tf_padding(spec: ConvSpec) -> str | list[list[int]]:
    """The `padding` argument of tf.nn.conv2d (and depthwise_conv2d, conv2d_transpose) for a spec, in the
    layout it computes in."""
    if spec.padding.mode is PaddingMode.EXPLICIT:
        spatial = [list(p) for p in spec.padding.pads]
        return [[0, 0], [0, 0], *spatial] if spec.channels_first else [[0, 0], *spatial, [0, 0]]
    return spec.padding.mode.value.upper()


def tf_data_format(spec: ConvSpec) -> str:
    """NWC / NHWC / NDHWC, or NCW / NCHW / NCDHW for channels_first."""
    return input_layout_for(spec.rank, spec.channels_first)


def to_computing_layout(tf: Any, x: Any, spec: ConvSpec, notes: list[str]) -> Any:
    """The channels-last input in the layout the op computes in (a transpose for channels_first)."""
    if not spec.channels_first:
        return x
    conv = conversion(input_layout_for(spec.rank), tf_data_format(spec))
    notes.append(f"data_format channels_first: input {conv}; output transposed back")
    return tf.transpose(x, conv.perm)


def from_computing_layout(tf: Any, y: Any, spec: ConvSpec) -> Any:
    if not spec.channels_first:
        return y
    return tf.transpose(y, conversion(tf_data_format(spec), input_layout_for(spec.rank)).perm)


def _spatial_axes(spec: ConvSpec) -> list[int]:
    return list(range(2, spec.rank + 2)) if spec.channels_first else list(range(1, spec.rank + 1))


def _pad_in_front(tf: Any, x: Any, spec: ConvSpec, notes: list[str]) -> Any:
    """Explicit pads as a tf.pad in front (the ops without an explicit-padding argument), as users write it."""
    pads = [[0, 0]] * (spec.rank + 2)
    for axis, pair in zip(_spatial_axes(spec), spec.padding.pads):
        pads[axis] = list(pair)
    notes.append(f"explicit pads applied with tf.pad({pads}) before a VALID convolution")
    return tf.pad(x, pads)


def nn_convolution(tf: Any, spec: ConvSpec, x: Any, kernel: Any, notes: list[str]) -> Any:
    """The tf.nn op of `spec` on `x` (in the computing layout), with a canonical kernel.

    Forward: conv1d / conv2d / conv3d; groups through tf.nn.convolution (TensorFlow infers them from the
    kernel's input-channel axis); depthwise 2-D through depthwise_conv2d with the (kh, kw, C, M) kernel.
    Transposed: conv1d_transpose / conv2d_transpose / conv3d_transpose with the output shape of the spec.
    """
    fmt = tf_data_format(spec)
    strides, dilation = list(spec.strides), list(spec.dilation)
    explicit = spec.padding.mode is PaddingMode.EXPLICIT
    if spec.transposed:
        return _nn_transposed(tf, spec, x, kernel, notes)
    if spec.depthwise and spec.rank == 2:
        # The canonical (kh, kw, 1, C*M) is (kh, kw, C, M) reshaped (c-major): a reshape, in the graph too.
        notes.append(f"depthwise filter {conversion(spec.kernel_layout, 'HWCM', spec.in_channels)}")
        filt = tf.reshape(kernel, (*spec.kernel_size, spec.in_channels, spec.multiplier))
        padding = tf_padding(spec)
        if explicit:
            # depthwise_conv2d's explicit paddings abort the process in graph mode (a failed CHECK in
            # grappler's shape inference, TensorFlow 2.21): a tf.pad in front, in both modes.
            x, padding = _pad_in_front(tf, x, spec, notes), "VALID"
        return tf.nn.depthwise_conv2d(x, filt, [1, 1, *strides] if spec.channels_first else [1, *strides, 1],
                                      padding, data_format=fmt, dilations=dilation)
    if spec.rank == 2 and spec.groups == 1:
        lead = [1, 1] if spec.channels_first else [1]
        tail = [] if spec.channels_first else [1]
        return tf.nn.conv2d(x, kernel, strides=[*lead, *strides, *tail], padding=tf_padding(spec), data_format=fmt,
                            dilations=[*lead, *dilation, *tail])
    padding = spec.padding.mode.value.upper()
    if explicit:
        x, padding = _pad_in_front(tf, x, spec, notes), "VALID"
    if spec.groups > 1:
        notes.append(f"groups {spec.groups} through tf.nn.convolution (inferred from the kernel's "
                     f"{spec.in_channels // spec.groups} input channel(s) per group)")
        return tf.nn.convolution(x, kernel, strides=strides, padding=padding, data_format=fmt, dilations=dilation)
    if spec.rank == 1:
        return tf.nn.conv1d(x, kernel, stride=strides, padding=padding, data_format=fmt, dilations=dilation)
    lead, tail = ([1, 1], []) if spec.channels_first else ([1], [1])
    return tf.nn.conv3d(x, kernel, strides=[*lead, *strides, *tail], padding=padding, data_format=fmt,
                        dilations=[*lead, *dilation, *tail])


def _nn_transposed(tf: Any, spec: ConvSpec, x: Any, kernel: Any, notes: list[str]) -> Any:
    fmt = tf_data_format(spec)
    op = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}[spec.rank]
    n, *spatial, c = spec.output_shape
    mode = spec.padding.mode
    crop = None
    padding: Any = mode.value.upper()
    if mode is PaddingMode.EXPLICIT:
        if spec.rank == 2:
            padding = tf_padding(spec)  # conv2d_transpose takes the forward convolution's explicit pads
        else:
            # conv1d/3d_transpose take SAME or VALID only: VALID (with the output padding still missing at the
            # end, if any) and the crops sliced off, as users write it.
            _, crops = geometry.valid_then_crop(spec.padding.pads, spec.output_padding)
            crop = [(before, before + size) for size, (before, _) in zip(spatial, crops)]
            spatial, padding = [size + before + after for size, (before, after) in zip(spatial, crops)], "VALID"
            notes.append(f"explicit pads as crops {[list(p) for p in spec.pads]} of a VALID conv_transpose "
                         "(conv1d/3d_transpose take SAME or VALID only)")
    shape = [n, c, *spatial] if spec.channels_first else [n, *spatial, c]
    strides = spec.strides[0] if spec.rank == 1 else list(spec.strides)
    y = op(x, kernel, shape, strides, padding=padding, data_format=fmt, dilations=list(spec.dilation))
    if crop is not None:
        index = [slice(None)] * (spec.rank + 2)
        for axis, (start, stop) in zip(_spatial_axes(spec), crop):
            index[axis] = slice(start, stop)
        y = y[tuple(index)]
    return y


def run_framework(backend: str, fn: Callable[[], T], device: str = "cpu") -> T:
    """Run framework code on `device`, turning any exception it raises into BackendFailedError (exit 3).

    Raises:
        BackendUnavailableError: `gpu` was asked for and TensorFlow sees no GPU (exit 3).
    """
    from convdiff.backends.guard import run_guarded
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    with tf.device(tf_device_name(tf, backend, device)):
        return run_guarded(backend, fn, extra=(tf.errors.OpError,))


def tf_device_name(tf: Any, backend: str, device: str) -> str:
    """TensorFlow's name of `device` (`/CPU:0`, `/GPU:0`); a GPU TensorFlow does not see is exit 3."""
    if device == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            from convdiff.errors import BackendUnavailableError

            raise BackendUnavailableError(f"backend '{backend}' was asked to run on gpu, but TensorFlow sees no GPU "
                                          "on this machine (give --device cpu)")
        return "/GPU:0"
    return "/CPU:0"
