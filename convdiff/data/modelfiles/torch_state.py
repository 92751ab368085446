"""PyTorch state_dicts: `.safetensors` (the safetensors library, no PyTorch needed) and `.pt`/`.pth`
(`torch.load(..., weights_only=True)` and nothing else: a file holding code is refused, never run).

`FILE#conv1` reads `conv1.weight` and `conv1.bias`. A state_dict holds tensors only: the kernel's
shape fixes the kernel size, the filters and the input channels per group, and nothing records the
layer type, strides, padding, dilation or groups. Conv weights are stored (out, in / groups, *k),
OIHW in 2-D; a ConvTranspose's (in, out / groups, *k), IOHW, which the shape alone cannot tell apart:
convdiff reads OIHW unless the bias length says otherwise (a bias of the second dimension's length).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from convdiff.data.modelfiles.checks import fits_memory, regular_file
from convdiff.data.modelfiles.types import (SPATIAL, LayerKind, LayerRecord, LayerWeights, ModelFile, float_array)
from convdiff.errors import BackendUnavailableError, BadInputError

# torch.load(weights_only=True) had known bypasses before these releases: CVE-2025-32434 (arbitrary code
# execution, fixed in 2.6.0) and CVE-2026-24747 (memory corruption in the weights-only unpickler,
# fixed in 2.10.0). convdiff refuses to unpickle with an older torch.
MIN_TORCH = (2, 10)
INSTALL = "pip install -e '.[torch]' in the convdiff checkout"

NO_CONFIG = ("a state_dict holds tensors only: the layer type, strides, padding, dilation and groups are not "
             "recorded")


def read(path: str) -> ModelFile:
    """The convolution weights of a state_dict (every `NAME.weight` tensor with 1 to 3 spatial axes)."""
    shapes = _shapes(path)
    fmt = "safetensors" if path.lower().endswith(".safetensors") else "torch"
    layers = []
    for key, shape in shapes.items():
        if key.endswith(".weight") and 3 <= len(shape) <= 5:
            layers.append(_record(key[: -len(".weight")], shape, shapes.get(key[: -len(".weight")] + ".bias"), fmt))
    names = {r.name for r in layers}
    others = {key.rsplit(".", 1)[0]: f"its tensor {key} has shape {'x'.join(map(str, s)) or 'scalar'}"
              for key, s in shapes.items() if key.rsplit(".", 1)[0] not in names}
    return ModelFile(path, fmt, tuple(layers), others)


def read_layer(path: str, name: str) -> LayerWeights:
    record = read(path).find(name)
    keys = [f"{name}.weight"] + ([f"{name}.bias"] if record.bias_shape is not None else [])
    arrays = _tensors(path, keys)
    where = f"{path}#{name}"
    kernel = float_array(arrays[keys[0]], f"{where} ({keys[0]})")
    bias = float_array(arrays[keys[1]], f"{where} ({keys[1]})") if len(keys) > 1 else None
    return LayerWeights(record, kernel, bias)


def _record(name: str, shape: tuple[int, ...], bias: tuple[int, ...] | None, fmt: str) -> LayerRecord:
    rank = len(shape) - 2
    transposed = bias is not None and len(bias) == 1 and bias[0] == shape[1] != shape[0]
    if bias is not None and (len(bias) != 1 or bias[0] not in (shape[0], shape[1])):
        bias = None  # not this kernel's bias
    notes = [NO_CONFIG]
    if transposed:
        notes.append(f"{name}.bias has {shape[1]} values, the kernel's second dimension: read as a ConvTranspose "
                     "kernel (in, out, ...)")
    else:
        notes.append("read as a Conv kernel (out, in / groups, ...); a ConvTranspose's would be "
                     "(in, out / groups, ...)")
    op = "tensor"
    layout = ("IO" if transposed else "OI") + SPATIAL[rank]
    return LayerRecord(name, LayerKind.TRANSPOSED if transposed else LayerKind.CONV, rank, "PyTorch state_dict", op,
                       shape,
                       layout, None if bias is None else tuple(bias), None,
                       shape[0] if transposed else shape[1], notes=tuple(notes))


# --- reading -------------------------------------------------------------------------------------------


def _shapes(path: str) -> dict[str, tuple[int, ...]]:
    if path.lower().endswith(".safetensors"):
        with _safe_open(path) as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    return {key: tuple(t.shape) for key, t in _load_pt(path).items()}


def _tensors(path: str, keys: list[str]) -> dict[str, np.ndarray]:
    if path.lower().endswith(".safetensors"):
        from safetensors import SafetensorError

        with _safe_open(path) as handle:
            out = {}
            for key in keys:
                dtype = handle.get_slice(key).get_dtype()
                if dtype == "BF16":
                    raise BadInputError(f"{path}: tensor '{key}' is bfloat16, which the safetensors NumPy reader "
                                        "cannot return; save it as float32")
                try:
                    out[key] = handle.get_tensor(key)
                except SafetensorError as exc:
                    raise BadInputError(f"{path}: tensor '{key}' could not be read: {exc}") from None
            return out
    tensors = _load_pt(path)
    out = {}
    for key in keys:
        tensor = tensors[key].detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()  # exact: NumPy has no bfloat16
        out[key] = np.array(tensor.numpy(), copy=True)  # not a view of the mapped file
    return out


def _safe_open(path: str):  # noqa: ANN202
    from safetensors import SafetensorError, safe_open

    regular_file(path, "safetensors file")
    try:
        return safe_open(path, framework="numpy")
    except (SafetensorError, OSError, ValueError) as exc:  # the header is checked against the file's size
        raise BadInputError(f"'{path}' is not a valid safetensors file: {exc} (truncated or corrupt?)") from None


def torch_for_loading(path: str) -> Any:
    """The torch module, when it is installed and recent enough to unpickle untrusted files safely."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError(f"reading '{path}' needs PyTorch ({INSTALL}); a .safetensors state_dict "
                                      "needs no PyTorch") from None
    version = tuple(int(v) for v in re.findall(r"\d+", torch.__version__)[:2])
    if version < MIN_TORCH:
        raise BackendUnavailableError(
            f"reading '{path}' needs torch >= {'.'.join(map(str, MIN_TORCH))}: torch.load(weights_only=True) "
            f"has known bypasses before it (CVE-2025-32434, CVE-2026-24747); this is torch {torch.__version__}")
    return torch


def _load_pt(path: str) -> dict[str, Any]:
    file = regular_file(path, "PyTorch file")
    torch = torch_for_loading(path)
    # torch.save's zip format can be memory-mapped: nothing is read until a tensor is used. The legacy
    # format is read whole.
    mapped = zipfile.is_zipfile(file)
    if not mapped:
        fits_memory(2 * file.stat().st_size, f"PyTorch file '{path}'")
    try:
        obj = torch.load(str(file), map_location="cpu", weights_only=True, mmap=mapped)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file; each is one line here
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if "weights only load failed" in text.lower() or "unsupported global" in text.lower():
            # Quote what was refused, not torch's advice to retry with weights_only=False.
            reason = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "an object outside the "
                          "weights-only allowlist").split(" Please use")[0]
            raise BadInputError(f"'{path}' holds pickled Python objects that torch.load(weights_only=True) refuses "
                                f"({reason}); convdiff reads state_dicts of tensors only (save "
                                "model.state_dict(), or use .safetensors)") from None
        raise BadInputError(f"'{path}' is not a readable PyTorch file: {first} (truncated or corrupt?)") from None
    if isinstance(obj, torch.Tensor) or not isinstance(obj, Mapping):
        raise BadInputError(f"'{path}' holds a {type(obj).__name__}, not a state_dict (a mapping of names to tensors)")
    flat: dict[str, Any] = {}
    _flatten(obj, "", flat, torch)
    return flat


def _flatten(obj: Mapping, prefix: str, out: dict[str, Any], torch: Any) -> None:
    """Nested mappings (a checkpoint's {"state_dict": {...}}) as dotted keys; only tensors are kept."""
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, Mapping):
            _flatten(value, f"{name}.", out, torch)
