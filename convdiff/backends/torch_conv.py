"""`torch.nn.functional.conv2d`: NCHW input, OIHW weights, PyTorch's own padding rules.

`same`/`valid` are passed to PyTorch as strings, so PyTorch's rules apply (and its refusal of `same`
with a stride > 1 is passed on as a clear message, exit 2). A symmetric explicit pad is conv2d's
integer `padding=(pad_h, pad_w)`; asymmetric explicit pads go through `F.pad` in front, as PyTorch users
write it, then conv2d with padding 0.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendUnavailableError
from convdiff.spec.layouts import conversion, from_hwio
from convdiff.spec.convspec import ConvSpec, PaddingMode


class TorchBackend:
    name = "torch"
    summary = "torch.nn.functional.conv2d (NCHW/OIHW)"
    requires: tuple[str, ...] = ("torch",)
    install_hint = "pip install 'convdiff[torch]'"

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.guard import run_guarded

        backend_info(self.name).check_spec(spec)
        return run_guarded(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        try:
            import torch
            import torch.nn.functional as F  # noqa: N812
        except ImportError:
            raise BackendUnavailableError(
                f"backend 'torch' needs torch, which is not installed: {self.install_hint}") from None

        start = time.perf_counter()
        dtype = getattr(torch, spec.dtype)
        # The shared seeded factory: the same kernel the TF backends draw, so only the ops differ.
        weights = weights or initial_weights(spec)
        kernel = weights.kernel
        bias = weights.bias if spec.use_bias else None
        to_nchw, to_nhwc = conversion("NHWC", "NCHW"), conversion("NCHW", "NHWC")
        oihw, to_oihw = from_hwio(kernel, "OIHW")
        notes = [f"input {to_nchw}; weights {to_oihw}; output {to_nhwc}"]
        xt = _tensor(torch, to_nchw.apply(x), dtype)
        if xt.dtype != _tensor(torch, np.zeros(1, x.dtype), None).dtype:
            notes.append(f"input {x.dtype} converted to torch.{spec.dtype}")
        wt = _tensor(torch, oihw, dtype)
        bt = _tensor(torch, bias, dtype) if bias is not None else None
        padding: str | tuple[int, int]
        if spec.padding.mode is PaddingMode.EXPLICIT:
            (t, b), (l, r) = spec.padding.pads
            if spec.padding.symmetric:
                padding = (t, l)
            else:
                xt = F.pad(xt, (l, r, t, b))  # F.pad takes the last axis first: (left, right, top, bottom)
                padding = (0, 0)
                notes.append(f"asymmetric pads applied with F.pad(x, ({l}, {r}, {t}, {b})) before conv2d")
        else:
            padding = spec.padding.mode.value
        with torch.no_grad(), warnings.catch_warnings():
            # PyTorch notes that an even kernel with `same` copies the input; a fact, not a problem.
            warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
            y = F.conv2d(xt, wt, bt, stride=spec.strides, padding=padding, dilation=spec.dilation)
        out = y.detach().to(torch.float64 if spec.dtype == "float64" else torch.float32).numpy()
        if spec.dtype in ("float16", "bfloat16"):
            from convdiff.spec.dtypes import np_dtype

            out = out.astype(np_dtype(spec.dtype))
        return SideResult(self.name, np.ascontiguousarray(to_nhwc.apply(out)), kernel, bias, spec.dtype,
                          notes=tuple(notes), seconds=time.perf_counter() - start)


def _tensor(torch, array: np.ndarray, dtype):  # noqa: ANN001, ANN202
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":  # torch cannot read ml_dtypes' bfloat16; float32 holds it exactly
        array = array.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor if dtype is None else tensor.to(dtype)
