"""The TF1 ways of building a convolution, in graph mode: `get_variable` + the tf.nn ops of the `nn`
backend (conv1d/conv2d/conv3d, convolution with groups, depthwise_conv2d, conv_transpose), and
`tf.compat.v1.layers` (conv1d/conv2d/conv3d, conv2d_transpose/conv3d_transpose; no groups, no output padding).

Seeds follow TF1 as users had it: `tf.compat.v1.set_random_seed(spec.seed)` sets the graph-level
seed and the initializers get `seed=None`, so every random op takes its op seed from the graph.
In TensorFlow 2 (tensorflow/python/framework/random_seed.py, `get_seed`) that op seed is a per-graph
counter of seedless random ops (0, 1, 2, ...), not the op's id: two fresh graphs that create the
kernel as their first seedless random op draw the same numbers, however many other ops (a
placeholder, name scopes) came before. Both backends create the kernel first, then the bias.

Variables are read through the variable objects (`session.run(variable)`): in TF2 graph mode a
variable fetched by tensor name is a resource handle, not its value.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.registry import backend_info
from convdiff.errors import install_command
from convdiff.backends.tf_common import from_computing_layout, nn_convolution, run_framework, to_computing_layout
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.layouts import conversion, for_rank, from_canonical, input_layout_for, to_canonical


class _V1Backend:
    name = ""
    summary = ""
    requires: tuple[str, ...] = ("tf_keras",)
    install_hint = install_command("legacy")

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        return run_framework(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.frameworks import import_tensorflow

        tf = import_tensorflow(legacy=True)
        v1 = tf.compat.v1
        start = time.perf_counter()
        graph = tf.Graph()
        notes: list[str] = []
        with graph.as_default():
            v1.set_random_seed(spec.seed)
            output, kernel, bias, compute_dtype = self._build(tf, spec, x, notes)
            # Assign ops are built before the session runs: the variable objects, not tensor names.
            assigns = []
            if weights is not None:
                given = np.asarray(weights.kernel)
                if tuple(kernel.shape) != given.shape:  # the canonical kernel into a (k, C, M) variable
                    given = from_canonical(given, for_rank("HWCM", spec.rank), spec.rank, channels=spec.in_channels)[0]
                assigns.append(kernel.assign(tf.constant(given, dtype=kernel.dtype.base_dtype)))
                if bias is not None and weights.bias is not None:
                    assigns.append(bias.assign(tf.constant(weights.bias, dtype=bias.dtype.base_dtype)))
            init = v1.global_variables_initializer()
        with v1.Session(graph=graph) as session:
            session.run(init)
            if assigns:
                session.run(assigns)
            fetches = {"output": output, "kernel": kernel}
            if bias is not None:
                fetches["bias"] = bias
            values = session.run(fetches, feed_dict={self._input: x.astype(self._input_dtype, copy=False)})
        kernel_value = np.asarray(values["kernel"])
        if kernel_value.shape != spec.kernel_shape:  # a depthwise filter variable (k, C, M)
            kernel_value = to_canonical(kernel_value, for_rank("HWCM", spec.rank), spec.rank)[0]
        return SideResult(self.name, np.asarray(values["output"]), kernel_value,
                          np.asarray(values["bias"]) if bias is not None else None,
                          compute_dtype=compute_dtype, notes=tuple(notes), seconds=time.perf_counter() - start)

    def _build(self, tf: Any, spec: ConvSpec, x: np.ndarray, notes: list[str]) -> tuple[Any, Any, Any, str]:
        raise NotImplementedError


def _tf1_initializer(text: str, role: str) -> Any:
    """The TF1 initializer for `text`, or None for `default` (let the API pick its own)."""
    from convdiff.spec.initializers import parse_initializer

    init = parse_initializer(text)
    if init.is_default:
        return None
    return init.tf1(None)  # op seed from the graph-level seed, as TF1 users wrote it


class V1NnBackend(_V1Backend):
    name = "v1-nn"
    summary = "tf.compat.v1.get_variable + the tf.nn ops + bias_add in graph mode"

    def _build(self, tf, spec, x, notes):  # noqa: ANN001, ANN202
        v1 = tf.compat.v1
        # tf.nn.conv2d takes its dtype from its input, as in the eager `nn` backend.
        self._input_dtype = x.dtype
        self._input = v1.placeholder(tf.as_dtype(x.dtype), shape=x.shape, name="input")
        with v1.variable_scope("conv2d"):
            # A depthwise filter variable is (k, C, M), as TF1 code creates it for depthwise_conv2d (and the
            # shared factory draws it): its fans are those of that shape.
            kernel = v1.get_variable("kernel", shape=spec.draw_shape, dtype=spec.dtype,
                                     initializer=_tf1_initializer(spec.initializer, "kernel"))
            bias = (v1.get_variable("bias", shape=(spec.filters,), dtype=spec.dtype,
                                    initializer=_tf1_initializer(spec.bias_initializer, "bias"))
                    if spec.use_bias else None)
        filt, b = kernel, bias
        if self._input.dtype != kernel.dtype.base_dtype:
            op = "tf.nn.conv2d" if spec.rank == 2 and not spec.transposed and spec.groups == 1 else "tf.nn"
            notes.append(f"input is {x.dtype}: {op} computes in {x.dtype} (filter converted from {spec.dtype})")
            filt = tf.cast(kernel, self._input.dtype)
            b = tf.cast(bias, self._input.dtype) if bias is not None else None
        if tuple(filt.shape) != spec.kernel_shape:
            filt = tf.reshape(filt, spec.kernel_shape)  # (k, C, M) is the canonical (k, 1, C*M), reshaped
        y = nn_convolution(tf, spec, to_computing_layout(tf, self._input, spec, notes), filt, notes)
        if b is not None:
            y = tf.nn.bias_add(y, b, data_format="NC..." if spec.channels_first else None)
        return from_computing_layout(tf, y, spec), kernel, bias, self._input.dtype.name


class V1LayersBackend(_V1Backend):
    name = "v1-layers"
    summary = "tf.compat.v1.layers.conv1d/2d/3d and conv2d/3d_transpose in graph mode"

    def _build(self, tf, spec, x, notes):  # noqa: ANN001, ANN202
        v1 = tf.compat.v1
        # A TF1 layer takes its variables' dtype from its input: feed the input in the spec's dtype.
        self._input_dtype = np.dtype(x.dtype) if spec.dtype == x.dtype.name else spec.dtype
        if str(self._input_dtype) != str(x.dtype):
            notes.append(f"input is {x.dtype}: fed to the layer as {spec.dtype} (a TF1 layer takes its dtype from its input)")
        self._input = v1.placeholder(tf.as_dtype(spec.dtype), shape=x.shape, name="input")
        inputs, padding = self._input, spec.padding.mode.value
        if spec.channels_first:
            to_first = conversion(input_layout_for(spec.rank), input_layout_for(spec.rank, True))
            inputs = tf.transpose(inputs, to_first.perm)
            notes.append(f"data_format channels_first: input {to_first}; output transposed back")
        spatial = list(range(2, spec.rank + 2)) if spec.channels_first else list(range(1, spec.rank + 1))
        crop = None
        if spec.padding.mode is PaddingMode.EXPLICIT and not spec.transposed:
            # The layers only know same/valid: explicit pads are a tf.pad in front, as users wrote it.
            pads = [[0, 0]] * (spec.rank + 2)
            for axis, pair in zip(spatial, spec.padding.pads):
                pads[axis] = list(pair)
            inputs, padding = tf.pad(inputs, pads), "valid"
        elif spec.padding.mode is PaddingMode.EXPLICIT:
            crop = spec.padding.pads  # a VALID transposed layer, then the crops sliced off
            padding = "valid"
        kwargs = {}
        kernel_init = _tf1_initializer(spec.initializer, "kernel")
        bias_init = _tf1_initializer(spec.bias_initializer, "bias")
        if kernel_init is not None:
            kwargs["kernel_initializer"] = kernel_init
        if bias_init is not None:
            kwargs["bias_initializer"] = bias_init
        name = f"conv{spec.rank}d" + ("_transpose" if spec.transposed else "")
        build = getattr(v1.layers, name)
        options = dict(strides=spec.strides, padding=padding, data_format=spec.data_format, use_bias=spec.use_bias,
                       name=f"conv{spec.rank}d", **kwargs)
        if not spec.transposed or any(d != 1 for d in spec.dilation):
            options["dilation_rate"] = spec.dilation
        with warnings.catch_warnings():
            # Its deprecation notice is the point of this backend, not news to the user.
            warnings.filterwarnings("ignore", message=r"`tf.layers.conv\dd", category=UserWarning)
            y = build(inputs, spec.filters, spec.kernel_size, **options)
        if crop is not None:
            index = [slice(None)] * (spec.rank + 2)
            for axis, (before, after) in zip(spatial, crop):
                index[axis] = slice(before, -after if after else None)
            y = y[tuple(index)]
            notes.append(f"explicit pads as crops {[list(p) for p in crop]} of a VALID {name}")
        if spec.channels_first:
            y = tf.transpose(y, conversion(input_layout_for(spec.rank, True), input_layout_for(spec.rank)).perm)
        by_name = {v.op.name.split("/")[-1]: v for v in v1.global_variables()}
        return y, by_name["kernel"], by_name.get("bias") if spec.use_bias else None, spec.dtype
