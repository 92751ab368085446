"""`jax.lax.conv_general_dilated` with explicit dimension numbers, channels-last, on JAX's CPU device.

Forward: the spec's (before, after) pads as explicit `padding` pairs (so TF SAME, ONNX SAME_LOWER and
explicit pads are all the geometry's), `rhs_dilation` for the dilation, `feature_group_count` for groups.

Transposed: the gradient of the forward convolution written as a forward one, as `jax.lax.conv_transpose`
does it: the input dilated by the stride (`lhs_dilation`), the kernel flipped in every spatial axis with
its in/out channels swapped per group, and padded by `dilated kernel - 1 - crop` on each side (a negative
crop, output padding, pads more). `conv_transpose` itself has no groups, so this form serves every kind.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendUnavailableError, install_command
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.geometry import Pads, dilated_size
from convdiff.spec.layouts import SPATIAL

JAX_HINT = install_command("jax")


def import_jax():  # noqa: ANN201
    """jax and jax.numpy on the CPU, float64 enabled (the spec may compute in it), or exit 3 with the hint."""
    try:
        import jax
    except ImportError:
        raise BackendUnavailableError(f"jax is not installed: {JAX_HINT}") from None
    # float64 arrays stay float64 (JAX truncates them to float32 by default). Set before any array exists.
    jax.config.update("jax_enable_x64", True)
    return jax


def transposed_as_forward(kernel: np.ndarray, spec: ConvSpec) -> tuple[np.ndarray, Pads]:
    """A canonical transposed kernel (*k, C_out/g, C_in) as the forward kernel (*k, C_in/g, C_out) of the
    lhs-dilated convolution that computes it, and that convolution's (before, after) pads."""
    rank, g = spec.rank, spec.groups
    k = kernel.shape[:rank]
    out_per_group, c_in = kernel.shape[rank], kernel.shape[rank + 1]
    grouped = kernel.reshape(*k, out_per_group, g, c_in // g)
    # (*k, O/g, g, I/g) -> (*k, I/g, g, O/g): in and out swapped inside each group, groups stay group-major.
    order = (*range(rank), rank + 2, rank + 1, rank)
    swapped = grouped.transpose(order).reshape(*k, c_in // g, g * out_per_group)
    flipped = np.ascontiguousarray(np.flip(swapped, axis=tuple(range(rank))))
    pads = tuple((dilated_size(n, d) - 1 - a, dilated_size(n, d) - 1 - b)
                 for n, d, (a, b) in zip(spec.kernel_size, spec.dilation, spec.pads))
    return flipped, pads


def dimension_numbers(rank: int) -> tuple[str, str, str]:
    """Channels-last input and output, the canonical HWIO kernel, spelled for `rank` spatial axes."""
    spatial = SPATIAL[rank]
    return (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")


class JaxBackend:
    name = "jax"
    summary = "jax.lax.conv_general_dilated (transposed: lhs_dilation with the flipped kernel)"
    requires: tuple[str, ...] = ("jax",)
    install_hint = JAX_HINT

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.guard import run_guarded

        backend_info(self.name).check_spec(spec)
        return run_guarded(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        jax = import_jax()
        import jax.numpy as jnp

        start = time.perf_counter()
        weights = weights or initial_weights(spec)
        kernel, bias = weights.kernel, (weights.bias if spec.use_bias else None)
        dtype = jnp.dtype(spec.dtype)
        numbers = dimension_numbers(spec.rank)
        if spec.transposed:
            rhs, pads = transposed_as_forward(np.asarray(kernel), spec)
            strides, lhs_dilation = (1,) * spec.rank, tuple(spec.strides)
            what = (f"conv_general_dilated(lhs_dilation={tuple(spec.strides)}, kernel flipped and in/out swapped per "
                    f"group, padding={[list(p) for p in pads]})")
        else:
            rhs, pads = np.asarray(kernel), spec.pads
            strides, lhs_dilation = tuple(spec.strides), None
            what = f"conv_general_dilated(padding={[list(p) for p in pads]})"
        with jax.default_device(jax.devices("cpu")[0]):
            y = jax.lax.conv_general_dilated(
                jnp.asarray(x, dtype), jnp.asarray(rhs, dtype), window_strides=strides, padding=pads,
                lhs_dilation=lhs_dilation, rhs_dilation=tuple(spec.dilation), dimension_numbers=numbers,
                feature_group_count=spec.groups, precision=jax.lax.Precision.HIGHEST)
            if bias is not None:
                y = y + jnp.asarray(bias, dtype)
            out = np.asarray(y)
        notes = (f"{what}, dimension_numbers={numbers}, feature_group_count={spec.groups}, "
                 f"precision=HIGHEST, in {spec.dtype} on {jax.devices('cpu')[0].platform}",)
        return SideResult(self.name, out, kernel, bias, spec.dtype, notes=notes, seconds=time.perf_counter() - start)
