"""The tf.nn ops (conv1d/conv2d/conv3d, convolution with groups, depthwise_conv2d, conv1d/2d/3d_transpose)
with a kernel created get_variable-style: a tf.Variable from a seeded initializer."""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.backends.tf_common import from_computing_layout, nn_convolution, run_framework, to_computing_layout
from convdiff.spec.convspec import ConvSpec


class NnBackend:
    name = "nn"
    summary = "tf.nn convolution ops + tf.nn.bias_add"
    requires: tuple[str, ...] = ()
    install_hint = ""

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        return run_framework(self.name, lambda: self._run(spec, x, weights), spec.device)

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.frameworks import import_tensorflow

        tf = import_tensorflow()
        start = time.perf_counter()
        # The shared factory draws through the Keras initializer in the variable's dtype: the value a
        # get_variable-style tf.Variable gets from that initializer and seed, bit for bit.
        weights = weights or initial_weights(spec)
        kernel = tf.Variable(tf.constant(weights.kernel, dtype=spec.dtype), name="kernel")
        bias = (tf.Variable(tf.constant(weights.bias, dtype=spec.dtype), name="bias")
                if spec.use_bias and weights.bias is not None else None)
        inputs = tf.convert_to_tensor(x)
        notes = []
        filt, b = kernel, bias
        if inputs.dtype != kernel.dtype:
            # tf.nn.conv2d takes its type from the input: a filter given as a NumPy array (as in the
            # original scripts) is converted to the input's dtype, so the arithmetic follows the input.
            op = "tf.nn.conv2d" if spec.rank == 2 and not spec.transposed and spec.groups == 1 else "tf.nn"
            notes.append(f"input is {inputs.dtype.name}: {op} computes in {inputs.dtype.name} "
                         f"(filter converted from {kernel.dtype.name})")
            filt = tf.cast(kernel, inputs.dtype)
            b = tf.cast(bias, inputs.dtype) if bias is not None else None
        y = nn_convolution(tf, spec, to_computing_layout(tf, inputs, spec, notes), filt, notes)
        if b is not None:
            y = tf.nn.bias_add(y, b, data_format="NC..." if spec.channels_first else None)
        y = from_computing_layout(tf, y, spec)
        return SideResult(
            self.name, y.numpy(), kernel.numpy(), bias.numpy() if bias is not None else None,
            compute_dtype=inputs.dtype.name, notes=tuple(notes), seconds=time.perf_counter() - start)
