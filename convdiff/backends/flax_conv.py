"""`flax.nnx.Conv` and `flax.nnx.ConvTranspose`, channels-last, with Flax's defaults written out.

Flax's defaults, each set explicitly here and shown in the notes: `padding='SAME'` (the spec's padding is
passed instead: 'SAME', 'SAME_LOWER', 'VALID' as strings so Flax's own rules apply, explicit pads as pairs),
`precision=None` (XLA's default, full float32 on CPU), `dtype=None` (the spec's dtype is given),
`param_dtype=float32` (the spec's dtype is given) and, for ConvTranspose, `transpose_kernel=False`: Flax
does not flip the kernel unless asked, so its default is not the gradient of the forward convolution
that PyTorch and TensorFlow compute. The spec's `transpose_kernel` (true by default) is what is passed.

The kernel is the shared seeded one, put into the layer's `kernel` parameter: Conv holds (*k, C_in/g, C_out)
(convdiff's HWIO); ConvTranspose holds (*k, C_out, C_in) with transpose_kernel=True (convdiff's HWOI) and
(*k, C_in, C_out) without it (the canonical kernel with in and out swapped, not flipped). Transposed pads
are `lax.conv_transpose` padding of the dilated input: `dilated kernel - 1 - crop` on each side.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.jax_conv import import_jax
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendUnavailableError, install_command
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.geometry import dilated_size

FLAX_DEFAULTS = "Flax defaults: padding='SAME', precision=None, dtype=None, param_dtype=float32"


def _padding(spec: ConvSpec) -> str | list[tuple[int, int]]:
    if spec.transposed:
        return [(dilated_size(k, d) - 1 - a, dilated_size(k, d) - 1 - b)
                for k, d, (a, b) in zip(spec.kernel_size, spec.dilation, spec.pads)]
    mode = spec.padding.mode
    if mode is PaddingMode.EXPLICIT:
        return [tuple(pair) for pair in spec.padding.pads]
    return {PaddingMode.SAME: "SAME", PaddingMode.SAME_LOWER: "SAME_LOWER", PaddingMode.VALID: "VALID"}[mode]


class FlaxBackend:
    name = "flax"
    summary = "flax.nnx.Conv / ConvTranspose (channels-last)"
    requires: tuple[str, ...] = ("flax", "jax")
    install_hint = install_command("jax")

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.guard import run_guarded

        backend_info(self.name).check_spec(spec)
        return run_guarded(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        jax = import_jax()
        try:
            from flax import nnx
        except ImportError:
            raise BackendUnavailableError(f"backend 'flax' needs flax, which is not installed: "
                                          f"{self.install_hint}") from None
        import jax.numpy as jnp

        start = time.perf_counter()
        weights = weights or initial_weights(spec)
        kernel, bias = weights.kernel, (weights.bias if spec.use_bias else None)
        dtype = jnp.dtype(spec.dtype)
        padding = _padding(spec)
        common = dict(strides=tuple(spec.strides), padding=padding, kernel_dilation=tuple(spec.dilation),
                      use_bias=bias is not None, dtype=dtype, param_dtype=dtype, precision=None,
                      rngs=nnx.Rngs(spec.seed))
        rank = spec.rank
        with jax.default_device(jax.devices("cpu")[0]):
            if spec.transposed:
                layer = nnx.ConvTranspose(spec.in_channels, spec.filters, tuple(spec.kernel_size),
                                          transpose_kernel=spec.transpose_kernel, **common)
                # transpose_kernel=True holds (*k, out, in), convdiff's own; False holds (*k, in, out).
                held = kernel if spec.transpose_kernel else np.swapaxes(np.asarray(kernel), rank, rank + 1)
                call = (f"nnx.ConvTranspose(transpose_kernel={spec.transpose_kernel}, padding={padding}, "
                        f"strides={tuple(spec.strides)}, kernel_dilation={tuple(spec.dilation)})")
            else:
                layer = nnx.Conv(spec.in_channels, spec.filters, tuple(spec.kernel_size),
                                 feature_group_count=spec.groups, **common)
                held = kernel
                call = (f"nnx.Conv(padding={padding!r}, strides={tuple(spec.strides)}, "
                        f"kernel_dilation={tuple(spec.dilation)}, feature_group_count={spec.groups})")
            layer.kernel[...] = jnp.asarray(held, dtype)  # (the `.value` setter is deprecated)
            if bias is not None:
                layer.bias[...] = jnp.asarray(bias, dtype)
            out = np.asarray(layer(jnp.asarray(x, dtype)))
        notes = (f"{call}, dtype={spec.dtype}, param_dtype={spec.dtype}; {FLAX_DEFAULTS}"
                 + (", ConvTranspose transpose_kernel=False" if spec.transposed else ""),)
        if spec.transposed and not spec.transpose_kernel:
            notes += ("transpose_kernel=False (Flax's default): the kernel is not flipped, so this is not the "
                      "transposed convolution PyTorch and TensorFlow compute",)
        return SideResult(self.name, out, kernel, bias, spec.dtype, notes=notes, seconds=time.perf_counter() - start)
