"""The float64 NumPy reference as a backend: `convdiff.reference.convolution`, no TensorFlow."""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.reference.convolution import convolve
from convdiff.reference.rounding import tf32_reference
from convdiff.spec.convspec import ConvSpec


class NumpyBackend:
    name = "numpy"
    summary = "float64 NumPy reference"
    requires: tuple[str, ...] = ()
    install_hint = ""

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        start = time.perf_counter()
        # Drawn in the spec's variable dtype, as the TF sides draw theirs, so that only the
        # arithmetic of the convolution differs.
        weights = weights or initial_weights(spec)
        kernel, bias = weights.kernel, (weights.bias if spec.use_bias else None)
        if spec.dtype == "tf32":
            # What a GPU's tensor cores do with a float32 convolution: multiplicands rounded to 10
            # mantissa bits; the float64 arithmetic then stands in for their float32 accumulation.
            out = tf32_reference(x, kernel, spec, bias)
            return SideResult(self.name, out, kernel, bias, "tf32",
                              notes=("TF32 emulation: input and kernel rounded to 10 mantissa bits, then a float64 "
                                     "convolution",),
                              seconds=time.perf_counter() - start)
        with np.errstate(over="ignore", invalid="ignore"):
            # A float64 overflow is a result (inf, compared by its pattern), not a warning on the terminal.
            out = convolve(x, kernel, spec, bias)
        notes = (f"input {x.dtype} and kernel {kernel.dtype} promoted to float64",)
        if spec.convention == "convolution":
            notes += ("true convolution (convention=convolution): the kernel rotated 180 degrees in every spatial "
                      "axis, as MATLAB conv2 and scipy.signal.convolve compute",)
        return SideResult(self.name, out, kernel, bias, "float64", notes=notes, seconds=time.perf_counter() - start)
