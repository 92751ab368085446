"""`scipy.signal.correlate` / `scipy.signal.convolve`, one spatial correlation per (input, output) channel
pair: the library MATLAB-style ports (`conv2`, `convn`, `filter2`) are checked against. With
`convention = convolution` it computes what MATLAB's conv2 computes, the true convolution.

Forward: the input padded as the spec says, then `correlate(x, kernel, 'valid')` (or `convolve`), a
dilated kernel made by inserting zeros between taps, and the strides taken by subsampling the result.
Transposed: the input spread out by the stride (zeros between samples), then `convolve(x, kernel, 'full')`
(the adjoint of a correlation is the full convolution), then the spec's crops.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import np_dtype


class ScipyBackend:
    name = "scipy"
    summary = "scipy.signal.correlate / convolve per channel pair"
    requires: tuple[str, ...] = ()
    install_hint = ""

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.guard import run_guarded

        backend_info(self.name).check_spec(spec)
        return run_guarded(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        import scipy.signal

        start = time.perf_counter()
        weights = weights or initial_weights(spec)
        dtype = np_dtype(spec.dtype)
        # Reported as given (like the numpy reference), computed in the spec's dtype.
        given_bias = weights.bias if spec.use_bias else None
        kernel = np.asarray(weights.kernel).astype(dtype)
        bias = None if given_bias is None else np.asarray(given_bias).astype(dtype)
        data = np.asarray(x).astype(dtype)
        true = spec.convention == "convolution"
        if spec.transposed:
            out = _transposed(scipy.signal, data, kernel, spec, true)
            what = (f"scipy.signal.convolve(x spread by the strides, {'rotated ' if true else ''}kernel, 'full') "
                    f"per channel pair, cropped {[list(p) for p in spec.pads]}")
        else:
            out = _forward(scipy.signal, data, kernel, spec, true)
            what = (f"scipy.signal.{'convolve' if true else 'correlate'}(padded x, kernel, 'valid') per channel pair"
                    + ("" if all(s == 1 for s in spec.strides) else ", subsampled by the strides"))
        if bias is not None:
            out += bias
        notes = (f"{what}, method='direct', in {spec.dtype}",)
        if true:
            notes += ("true convolution (convention=convolution): MATLAB conv2's kernel rotated 180 degrees",)
        return SideResult(self.name, out, weights.kernel, given_bias, spec.dtype, notes=notes,
                          seconds=time.perf_counter() - start)


def _dilated(tap_kernel: np.ndarray, dilation: tuple[int, ...]) -> np.ndarray:
    """A spatial kernel with dilation - 1 zeros between its taps."""
    if all(d == 1 for d in dilation):
        return tap_kernel
    shape = tuple((k - 1) * d + 1 for k, d in zip(tap_kernel.shape, dilation))
    out = np.zeros(shape, dtype=tap_kernel.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = tap_kernel
    return out


def _forward(signal, x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, true: bool) -> np.ndarray:  # noqa: ANN001
    rank = spec.rank
    padded = np.pad(x, ((0, 0), *spec.pads, (0, 0)))
    op = signal.convolve if true else signal.correlate
    per_in, per_out = spec.in_channels // spec.groups, spec.multiplier
    sampled = (slice(None), *(slice(None, None, s) for s in spec.strides))
    out = np.zeros(spec.output_shape, dtype=x.dtype)
    for o in range(spec.filters):
        group = o // per_out
        for c in range(per_in):
            i = group * per_in + c
            taps = _dilated(kernel[(Ellipsis, c, o)], spec.dilation)
            # A leading size-1 axis on the kernel: the batch is correlated in the same call, item by item.
            result = op(padded[..., i], taps[None], mode="valid", method="direct")
            out[..., o] += result[sampled][(slice(None), *(slice(0, n) for n in spec.output_shape[1:rank + 1]))]
    return out


def _transposed(signal, x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, true: bool) -> np.ndarray:  # noqa: ANN001
    rank = spec.rank
    n, *sizes, c_in = x.shape
    spread_shape = tuple((size - 1) * s + 1 for size, s in zip(sizes, spec.strides))
    spread = np.zeros((n, *spread_shape, c_in), dtype=x.dtype)
    spread[(slice(None), *(slice(None, None, s) for s in spec.strides))] = x
    per_in, per_out = c_in // spec.groups, spec.filters // spec.groups
    full = tuple(a + (k - 1) * d for a, k, d in zip(spread_shape, spec.kernel_size, spec.dilation))
    scattered = np.zeros((n, *full, spec.filters), dtype=x.dtype)
    flip = (slice(None, None, -1),) * rank
    for o in range(spec.filters):
        group, j = divmod(o, per_out)
        for c in range(per_in):
            i = group * per_in + c
            taps = _dilated(kernel[(Ellipsis, j, i)], spec.dilation)
            if true:
                taps = taps[flip]
            scattered[..., o] += signal.convolve(spread[..., i], taps[None], mode="full", method="direct")
    # Crops, negative where the output reaches past the full scatter (those positions get no tap).
    out = np.zeros(spec.output_shape, dtype=x.dtype)
    source, target = [slice(None)], [slice(None)]
    for (before, _), size, length in zip(spec.pads, spec.output_shape[1:rank + 1], full):
        start, stop = max(before, 0), min(before + size, length)
        source.append(slice(start, stop))
        target.append(slice(start - before, stop - before))
    out[(*target, slice(None))] = scattered[(*source, slice(None))]
    return out
