"""Weights from files: a kernel (.npy, or .npz key `kernel`) in a named layout, and an optional bias.

Every file goes through `convdiff.inputs.load_npy` (no pickles). The kernel is converted to the canonical
layout of the spec's kind (HWIO, HWOI for a transposed convolution; see `convdiff.spec.layouts`), the layout
every backend receives, and the conversion travels with it so the report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convdiff.data.arrays import npz_arrays
from convdiff.errors import BadInputError
from convdiff.spec.layouts import Conversion, to_canonical


@dataclass(frozen=True)
class LoadedWeights:
    """A kernel and bias read from files, the kernel converted to HWIO."""

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

    @property
    def note(self) -> str:
        bias = "" if self.bias is None else ", with bias"
        return (f"weights from {self.source} ({'x'.join(map(str, self.file_shape))}{bias}): "
                f"{self.conversion}")


def load_weights(path: str, layout: str, bias_path: str | None = None, *, rank: int = 2, transposed: bool = False,
                 groups: int = 1) -> LoadedWeights:
    """Read a kernel in `layout` and its optional bias, return them with the kernel in the canonical layout.

    Args:
        path: a .npy (the kernel) or .npz (keys `kernel` and optional `bias`).
        layout: the kernel's layout in the file, e.g. "OIHW", "HWCM", "IOHW".
        bias_path: a .npy/.npz bias file (npz key `bias` or its single array); overrides the npz's bias.
        rank: spatial axes of the convolution.
        transposed: a transposed convolution's kernel (canonical HWOI).
        groups: the convolution's groups (a transposed kernel holds C_out / groups output channels).

    Raises:
        BadInputError: missing file or keys, pickles, wrong rank, non-numeric data.
    """
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
        bias_arrays = npz_arrays(bias_path, "bias")
        if "" in bias_arrays:
            bias = bias_arrays[""]
        elif "bias" in bias_arrays:
            bias = bias_arrays["bias"]
        elif len(bias_arrays) == 1:
            (bias,) = bias_arrays.values()
        else:
            raise BadInputError(f"bias file '{bias_path}' has no 'bias' array (keys found: "
                                f"{', '.join(sorted(bias_arrays))})")
        source += f" + {bias_path}"
    canonical, conv = to_canonical(kernel, layout, rank, transposed)
    if bias is not None:
        bias = np.asarray(bias)
        out = canonical.shape[-2] * groups if transposed else canonical.shape[-1]
        if bias.ndim != 1 or bias.shape[0] != out:
            raise BadInputError(f"bias from {bias_path or path} has shape {'x'.join(map(str, bias.shape))}; "
                                f"the kernel ({layout}) has {out} output channels")
    return LoadedWeights(np.ascontiguousarray(canonical), bias, conv, source, tuple(kernel.shape))


def resolve_relative(path: str, base: Path) -> str:
    """A relative path resolved against `base` (an experiment file's folder) when it exists there."""
    candidate = Path(path)
    if not candidate.is_absolute() and (base / candidate).exists():
        return str(base / candidate)
    return path
