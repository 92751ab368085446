"""A live `torch.nn.Module`: its Conv1d/2d/3d and ConvTranspose1d/2d/3d modules, their inputs and outputs
captured with forward hooks during one run (in eval mode and without gradients; the module's own mode
is restored afterwards).

PyTorch files are not run: a pickled module is code, and convdiff never executes a model file
(`torch.load(weights_only=True)` reads tensors only). Pass the module to `convdiff.compare_models`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from convdiff.backends.models.common import canonical_kernel, channels_last, framework_failure
from convdiff.backends.models.types import Captured, ModelLayer, ModelRun
from convdiff.data.modelfiles.types import (SPATIAL, LayerConfig, LayerKind, LayerPadding, LayerRecord, PadMode,
                                            conv_kind)
from convdiff.errors import BadInputError, ConvdiffError

_CONV = {f"Conv{r}d": (r, False) for r in (1, 2, 3)} | {f"ConvTranspose{r}d": (r, True) for r in (1, 2, 3)}


class TorchModel:
    framework = "PyTorch"
    channels_first = True
    input_shape = None

    def __init__(self, module: Any):
        self.module = module
        self.description = f"torch.nn.Module {type(module).__name__}"
        layers, skipped = [], []
        self._modules = {}
        import torch

        kinds = [(getattr(torch.nn, cls), spec) for cls, spec in _CONV.items()]
        for name, sub in module.named_modules():
            # A subclass counts (a module whose forward crops or pads around the convolution is seen by its
            # captured shapes).
            found = next((spec for base, spec in kinds if isinstance(sub, base)), None)
            if found is None or not name:
                continue
            rank, transposed = found
            if getattr(sub, "padding_mode", "zeros") != "zeros":
                skipped.append((name, f"padding_mode '{sub.padding_mode}': convdiff recomputes zero padding only"))
                continue
            record = _record(name, sub, rank, transposed)
            weight = sub.weight.detach().cpu().numpy()
            bias = None if sub.bias is None else sub.bias.detach().cpu().numpy().copy()
            if bias is not None:
                bias.flags.writeable = False
            layers.append(ModelLayer(name, record, canonical_kernel(record, weight, f"{self.description}#{name}"),
                                     bias))
            self._modules[name] = sub
        self.layers = tuple(layers)
        self.skipped = tuple(skipped)

    def capture_sizes(self, x_shape: tuple[int, ...]) -> list[int] | None:
        return None  # a module's shapes are known only by running it

    def run(self, x: np.ndarray, keep=None) -> ModelRun:  # noqa: ANN001
        import torch

        keep = keep or (lambda array: array)
        captured: dict[str, Captured] = {}
        order: list[str] = []
        calls: dict[str, int] = {}

        def hook(name: str):  # noqa: ANN202
            def capture(_module: Any, inputs: tuple, output: Any) -> None:
                calls[name] = calls.get(name, 0) + 1
                if calls[name] > 1:
                    return
                order.append(name)
                captured[name] = Captured(keep(channels_last(inputs[0].detach().cpu().numpy(), True)),
                                          keep(channels_last(output.detach().cpu().numpy(), True)))
            return capture

        handles = [sub.register_forward_hook(hook(name)) for name, sub in self._modules.items()]
        training = self.module.training
        param = next(iter(self.module.parameters()), None)
        dtype = torch.float32 if param is None or not param.dtype.is_floating_point else param.dtype
        start = time.perf_counter()
        try:
            self.module.eval()
            with torch.no_grad():
                out = self.module(torch.from_numpy(np.ascontiguousarray(x)).to(dtype))
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - the module failed on the input: exit 3
            raise framework_failure("torch", self.description, exc) from None
        finally:
            for handle in handles:
                handle.remove()
            self.module.train(training)
        seconds = time.perf_counter() - start
        if isinstance(out, (tuple, list)):
            out = out[0] if out else None
        elif isinstance(out, dict):
            out = next(iter(out.values()), None)
        if not isinstance(out, torch.Tensor):
            raise BadInputError(f"{self.description} returns {type(out).__name__}: convdiff compares a tensor "
                                "output (or the first of a tuple, list or dict of them)")
        repeated = tuple(name for name, n in calls.items() if n > 1)
        self.repeated = repeated
        return ModelRun(tuple(order), captured, channels_last(out.detach().cpu().numpy(), True), seconds)


def _record(name: str, sub: Any, rank: int, transposed: bool) -> LayerRecord:
    k = tuple(int(v) for v in sub.kernel_size)
    strides = tuple(int(v) for v in sub.stride)
    dilation = tuple(int(v) for v in sub.dilation)
    groups = int(sub.groups)
    if isinstance(sub.padding, str):  # 'same' (stride 1 only in PyTorch: total d*(k-1), the odd one after) / 'valid'
        padding = LayerPadding(PadMode.SAME if sub.padding == "same" else PadMode.VALID)
    else:
        padding = LayerPadding(PadMode.EXPLICIT, tuple((int(p), int(p)) for p in sub.padding))
    shape = tuple(int(d) for d in sub.weight.shape)
    if transposed:
        in_channels, filters = shape[0], shape[1] * groups
        kind, layout = LayerKind.TRANSPOSED, "IO" + SPATIAL[rank]
        output_padding = tuple(int(v) for v in sub.output_padding)
    else:
        in_channels, filters = shape[1] * groups, shape[0]
        kind, layout = conv_kind(groups, in_channels), "OI" + SPATIAL[rank]
        output_padding = None
    config = LayerConfig(k, strides, padding, dilation, groups, filters, sub.bias is not None, output_padding,
                         "channels_first")
    bias_shape = None if sub.bias is None else (filters,)
    return LayerRecord(name, kind, rank, "PyTorch", type(sub).__name__, shape, layout, bias_shape, config,
                       in_channels)
