"""`torch.nn.functional.conv1d/2d/3d` (with `groups`) and `conv_transpose1d/2d/3d` (with `output_padding`):
channels-first input, weights (O, I/g, *k) and (I, O/g, *k), PyTorch's own padding rules.

Forward: `same`/`valid` are passed to PyTorch as strings, so PyTorch's rules apply (and its refusal of
`same` with a stride > 1 is passed on as a clear message, exit 2). A symmetric explicit pad is the integer
`padding`; asymmetric explicit pads go through `F.pad` in front, as PyTorch users write it, then padding 0.

Transposed: PyTorch's `padding` crops both sides of the full output and `output_padding` gives positions
back at the end. It has no `same` (refused before running). Asymmetric pads are a `padding=0` transposed
convolution with the crops sliced off afterwards, as users write it.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendUnavailableError, install_command
from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.layouts import conversion, for_rank, from_canonical, input_layout_for


class TorchBackend:
    name = "torch"
    summary = "torch.nn.functional.conv1d/2d/3d and conv_transpose1d/2d/3d (NCHW)"
    requires: tuple[str, ...] = ("torch",)
    install_hint = install_command("torch")

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
        device = torch_device(torch, self.name, spec.device)
        # The shared seeded factory: the same kernel the TF backends draw, so only the ops differ.
        weights = weights or initial_weights(spec)
        kernel = weights.kernel
        bias = weights.bias if spec.use_bias else None
        last, first = input_layout_for(spec.rank), input_layout_for(spec.rank, True)
        to_nchw, to_nhwc = conversion(last, first), conversion(first, last)
        torch_weights, to_weights = from_canonical(kernel, for_rank("IOHW" if spec.transposed else "OIHW", spec.rank),
                                                   spec.rank, spec.transposed)
        notes = [f"input {to_nchw}; weights {to_weights}; output {to_nhwc}"]
        xt = _tensor(torch, to_nchw.apply(x), dtype)
        if xt.dtype != _tensor(torch, np.zeros(1, x.dtype), None).dtype:
            notes.append(f"input {x.dtype} converted to torch.{spec.dtype}")
        wt = _tensor(torch, torch_weights, dtype)
        bt = _tensor(torch, bias, dtype) if bias is not None else None
        if device != "cpu":
            xt, wt = xt.to(device), wt.to(device)
            bt = bt.to(device) if bt is not None else None
            notes.append(f"ran on {torch.cuda.get_device_name(0)}")
        with torch.no_grad(), warnings.catch_warnings():
            # PyTorch notes that an even kernel with `same` copies the input; a fact, not a problem.
            warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
            if spec.transposed:
                y = self._transposed(F, spec, xt, wt, bt, notes)
            else:
                y = self._forward(F, spec, xt, wt, bt, notes)
        out = y.detach().cpu().to(torch.float64 if spec.dtype == "float64" else torch.float32).numpy()
        if spec.dtype in ("float16", "bfloat16"):
            from convdiff.spec.dtypes import np_dtype

            out = out.astype(np_dtype(spec.dtype))
        return SideResult(self.name, np.ascontiguousarray(to_nhwc.apply(out)), kernel, bias, spec.dtype,
                          notes=tuple(notes), seconds=time.perf_counter() - start)

    @staticmethod
    def _forward(F, spec: ConvSpec, xt, wt, bt, notes: list[str]):  # noqa: ANN001, ANN205, N803
        padding: str | tuple[int, ...]
        if spec.padding.mode is PaddingMode.EXPLICIT:
            if spec.padding.symmetric:
                padding = tuple(before for before, _ in spec.padding.pads)
            else:
                flat = _last_axis_first(spec.padding.pads)
                xt = F.pad(xt, flat)  # F.pad takes the last axis first: (left, right, top, bottom, ...)
                padding = (0,) * spec.rank
                notes.append(f"asymmetric pads applied with F.pad(x, {flat}) before conv{spec.rank}d")
        else:
            padding = spec.padding.mode.value
        conv = getattr(F, f"conv{spec.rank}d")
        return conv(xt, wt, bt, stride=spec.strides, padding=padding, dilation=spec.dilation, groups=spec.groups)

    @staticmethod
    def _transposed(F, spec: ConvSpec, xt, wt, bt, notes: list[str]):  # noqa: ANN001, ANN205, N803
        conv = getattr(F, f"conv_transpose{spec.rank}d")
        pads = spec.padding.pads if spec.padding.mode is PaddingMode.EXPLICIT else ((0, 0),) * spec.rank
        if all(a == b for a, b in pads):
            return conv(xt, wt, bt, stride=spec.strides, padding=tuple(a for a, _ in pads),
                        output_padding=spec.output_padding, groups=spec.groups, dilation=spec.dilation)
        # Asymmetric: padding 0 (with the output padding still missing at the end, if any), then slice.
        extra, _ = geometry.valid_then_crop(pads, spec.output_padding)
        y = conv(xt, wt, bt, stride=spec.strides, padding=0, output_padding=extra, groups=spec.groups,
                 dilation=spec.dilation)
        sizes = spec.output_shape[1:-1]
        index = (slice(None), slice(None), *(slice(before, before + n) for (before, _), n in zip(pads, sizes)))
        notes.append(f"asymmetric pads as crops {[list(p) for p in pads]} of conv_transpose{spec.rank}d(padding=0, "
                     f"output_padding={extra})")
        return y[index]


def torch_device(torch, backend: str, device: str) -> str:  # noqa: ANN001
    """PyTorch's name of `device` (`cpu`, `cuda:0`); a GPU PyTorch does not see is exit 3."""
    if device != "gpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"backend '{backend}' was asked to run on gpu, but PyTorch sees no GPU on this "
                                      "machine (give --device cpu)")
    return "cuda:0"


def _last_axis_first(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(p for pair in reversed(pads) for p in pair)


def _tensor(torch, array: np.ndarray, dtype):  # noqa: ANN001, ANN202
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":  # torch cannot read ml_dtypes' bfloat16; float32 holds it exactly
        array = array.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor if dtype is None else tensor.to(dtype)
