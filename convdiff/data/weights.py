"""Weights from files: a kernel (.npy, or .npz key `kernel`) in a named layout, or one layer of a model
file (`FILE#LAYER`, in the layout its format stores), and an optional bias.

Every array file goes through `convdiff.data.arrays` (no pickles); model files through
`convdiff.data.modelfiles` (never run). The kernel is converted to the canonical layout of the spec's kind
(HWIO; HWOI for a transposed convolution; WIO, DHWIO, ... for other ranks; see `convdiff.spec.layouts`),
the layout every backend receives, and the conversion travels with it so the report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convdiff.data.arrays import npz_arrays
from convdiff.errors import BadInputError
from convdiff.spec.layer_ref import LayerRef, model_format, split_layer_ref
from convdiff.spec.layouts import NATIVE_WEIGHTS, Conversion, kernel_layout_for, to_canonical


@dataclass(frozen=True)
class LoadedWeights:
    """A kernel and bias read from files, the kernel converted to the canonical layout of its kind."""

    kernel: np.ndarray
    """In the canonical layout of the spec's kind (HWIO; HWOI transposed; WIO, DHWIO, ... for other ranks)."""
    bias: np.ndarray | None
    """1-D, one value per output channel, or None when no file holds a bias."""
    conversion: Conversion
    """How the file's layout became the canonical one."""
    source: str
    """The file(s) the weights came from."""
    file_shape: tuple[int, ...]
    """The kernel's shape as stored in the file."""
    layout: str = NATIVE_WEIGHTS
    """The layout the kernel was read as (`conversion.source`)."""
    origin: str = ""
    """For a model file's layer: what it is and how it is stored, e.g. "Caffe Convolution, stored OIHW"."""
    kind_fields: dict[str, Any] = field(default_factory=dict)
    """Spec fields the layer's kind needs beyond a standard 2-D convolution (groups, transposed, rank)."""

    @property
    def note(self) -> str:
        bias = "" if self.bias is None else ", with bias"
        origin = f", {self.origin}" if self.origin else ""
        return (f"weights from {self.source} ({'x'.join(map(str, self.file_shape))}{bias}{origin}): "
                f"{self.conversion}")


def load_weights(path: str, layout: str | None, bias_path: str | None = None, *, rank: int = 2,
                 transposed: bool = False, groups: int = 1) -> LoadedWeights:
    """Read a kernel in `layout` and its optional bias, return them with the kernel in the canonical layout.

    Args:
        path: a .npy (the kernel), a .npz (keys `kernel` and optional `bias`), or FILE#LAYER of a
            model file (the layer's kernel and bias; its own rank, groups and kind).
        layout: the kernel's layout in the file, e.g. "OIHW", "HWCM", "IOHW"; None for the file's own
            (the canonical layout of the kind for arrays, the format's layout for a model file's layer).
        bias_path: a .npy/.npz bias file (npz key `bias` or its single array); overrides the file's bias.
        rank: spatial axes of the convolution (arrays; a model file's layer says its own).
        transposed: a transposed convolution's kernel (canonical HWOI).
        groups: the convolution's groups (a transposed kernel holds C_out / groups output channels).

    Raises:
        BadInputError: missing file or keys, pickles, wrong rank, non-numeric data, an unknown layer.
    """
    ref = split_layer_ref(path)
    if ref is not None:
        return _layer_weights(ref, layout, bias_path)
    if model_format(path):
        from convdiff.data.modelfiles import read_model

        raise BadInputError(f"weights '{path}' is a model file: name one of its layers as {path}#LAYER "
                            f"(convolution layers: {read_model(path).names()})")
    layout = layout or kernel_layout_for(rank, transposed)
    arrays = npz_arrays(path, "weights")
    bias = None
    if "" in arrays:
        kernel = arrays[""]
    else:
        if "kernel" not in arrays:
            raise BadInputError(f"weights file '{path}' has no 'kernel' array (keys found: "
                                f"{', '.join(sorted(arrays)) or 'none'}; expected 'kernel' and optional 'bias')")
        unknown = sorted(set(arrays) - {"kernel", "bias"})
        if unknown:
            raise BadInputError(f"weights file '{path}' has unexpected arrays {', '.join(unknown)} "
                                f"(keys found: {', '.join(sorted(arrays))}; expected 'kernel' and optional 'bias')")
        kernel, bias = arrays["kernel"], arrays.get("bias")
    if kernel.ndim != len(layout):
        raise BadInputError(f"weights file '{path}' holds a kernel of rank {kernel.ndim} "
                            f"(shape {'x'.join(map(str, kernel.shape))}); expected a {len(layout)}-D kernel ({layout})")
    if 0 in kernel.shape:
        raise BadInputError(f"weights file '{path}' holds an empty kernel")
    source = str(path)
    if bias_path is not None:
        bias = _bias_file(bias_path)
        source += f" + {bias_path}"
    canonical, conv = to_canonical(kernel, layout, rank, transposed)
    _check_bias(bias, _outputs(canonical, transposed, groups), bias_path or path, layout)
    return LoadedWeights(np.ascontiguousarray(canonical), bias, conv, source, tuple(kernel.shape), layout)


def _outputs(canonical: np.ndarray, transposed: bool, groups: int) -> int:
    """Output channels of a canonical kernel (a transposed one holds C_out / groups of them)."""
    return canonical.shape[-2] * groups if transposed else canonical.shape[-1]


def _bias_file(bias_path: str) -> np.ndarray:
    bias_arrays = npz_arrays(bias_path, "bias")
    if "" in bias_arrays:
        return bias_arrays[""]
    if "bias" in bias_arrays:
        return bias_arrays["bias"]
    if len(bias_arrays) == 1:
        (bias,) = bias_arrays.values()
        return bias
    raise BadInputError(f"bias file '{bias_path}' has no 'bias' array (keys found: {', '.join(sorted(bias_arrays))})")


def _check_bias(bias: np.ndarray | None, outputs: int, where: str, layout: str) -> None:
    if bias is not None:
        bias = np.asarray(bias)
        if bias.ndim != 1 or bias.shape[0] != outputs:
            raise BadInputError(f"bias from {where} has shape {'x'.join(map(str, bias.shape))}; "
                                f"the kernel ({layout}) has {outputs} output channels")


def _layer_weights(ref: LayerRef, layout: str | None, bias_path: str | None) -> LoadedWeights:
    """A model file's layer: its kernel read as `layout` (default: as the format stores it), converted."""
    from convdiff.data.modelfiles import read_layer
    from convdiff.data.modelfiles.configuration import check_kernel

    found = read_layer(ref)
    record = found.record
    kind_fields = check_kernel(record, str(ref))
    stored = record.kernel_layout
    layout = layout or stored
    origin = f"{record.framework} {record.op}, stored {stored}"
    if layout != stored:
        origin += f", read as {layout} (weights_layout)"
    bias = found.bias
    source = str(ref)
    if bias_path is not None:
        bias = _bias_file(bias_path)
        source += f" + {bias_path}"
    if len(layout) != found.kernel.ndim:
        raise BadInputError(f"{ref}: a kernel of shape {'x'.join(map(str, found.kernel.shape))} cannot be read as "
                            f"{layout}")
    transposed = bool(kind_fields.get("transposed", False))
    canonical, conv = to_canonical(found.kernel, layout, record.rank, transposed)
    _check_bias(bias, _outputs(canonical, transposed, int(kind_fields.get("groups", 1))), bias_path or source, layout)
    return LoadedWeights(np.array(canonical, copy=True), None if bias is None else np.array(bias, copy=True), conv,
                         source, tuple(found.kernel.shape), layout, origin, kind_fields)


def resolve_relative(path: str, base: Path) -> str:
    """A relative path resolved against `base` (an experiment file's folder) when it exists there
    (for FILE#LAYER, the FILE part)."""
    ref = split_layer_ref(path)
    file = ref.path if ref is not None else path
    candidate = Path(file)
    if not candidate.is_absolute() and (base / candidate).exists():
        return str(base / candidate) + (f"#{ref.layer}" if ref is not None else "")
    return path
