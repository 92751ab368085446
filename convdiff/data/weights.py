"""Weights from files: a kernel (.npy, or .npz key `kernel`) in a named layout, and an optional bias.

Every file goes through `convdiff.data.arrays` (headers first, no pickles). The kernel is converted to HWIO, the
layout every backend receives, and the conversion travels with it so the report can show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convdiff.data.arrays import array_headers, read_arrays
from convdiff.errors import BadFileError
from convdiff.spec.layouts import Conversion, to_hwio


@dataclass(frozen=True)
class LoadedWeights:
    """A kernel and bias read from files, the kernel converted to HWIO."""

    kernel: np.ndarray
    """HWIO."""
    bias: np.ndarray | None
    """1-D, one value per output channel, or None when no file holds a bias."""
    conversion: Conversion
    """How the file's layout became HWIO."""
    source: str
    """The file(s) the weights came from."""
    file_shape: tuple[int, ...]
    """The kernel's shape as stored in the file."""

    @property
    def note(self) -> str:
        bias = "" if self.bias is None else ", with bias"
        return (f"weights from {self.source} ({'x'.join(map(str, self.file_shape))}{bias}): "
                f"{self.conversion}")


@dataclass(frozen=True)
class WeightsHeader:
    """What the weights files hold, from their headers alone (no array read)."""

    kernel_key: str
    """The kernel's key: '' for a .npy, `kernel` in an .npz."""
    kernel_shape: tuple[int, ...]
    """As stored in the file."""
    hwio_shape: tuple[int, ...]
    bias_file: str | None
    """The file the bias comes from (the weights .npz, or the bias file), or None."""
    bias_key: str | None


def weights_header(path: str, layout: str, bias_path: str | None = None) -> WeightsHeader:
    """Check the weights (and bias) files from their headers: keys, ranks, shapes; nothing is read.

    Raises:
        BadFileError: missing file or keys, unexpected arrays, pickles, wrong rank, non-numeric data.
    """
    headers = array_headers(path, "weights")
    bias_file, bias_key = None, None
    if "" in headers:
        kernel_key = ""
    else:
        if "kernel" not in headers:
            raise BadFileError(f"weights file '{path}' has no 'kernel' array (keys found: "
                               f"{', '.join(sorted(headers)) or 'none'}; expected 'kernel' and optional 'bias')")
        unknown = sorted(set(headers) - {"kernel", "bias"})
        if unknown:
            raise BadFileError(f"weights file '{path}' has unexpected arrays {', '.join(unknown)} "
                               f"(keys found: {', '.join(sorted(headers))}; expected 'kernel' and optional 'bias')")
        kernel_key = "kernel"
        if "bias" in headers:
            bias_file, bias_key = path, "bias"
    kernel = headers[kernel_key]
    if kernel.ndim != 4:
        raise BadFileError(f"weights file '{path}' holds a kernel of rank {kernel.ndim} "
                           f"(shape {'x'.join(map(str, kernel.shape))}); expected a 4-D kernel ({layout})")
    if 0 in kernel.shape:
        raise BadFileError(f"weights file '{path}' holds an empty kernel")
    hwio = to_hwio(np.broadcast_to(np.zeros((), np.uint8), kernel.shape), layout)[0].shape
    bias_header = headers.get("bias") if bias_key else None
    if bias_path is not None:
        bias_headers = array_headers(bias_path, "bias")
        if "" in bias_headers:
            bias_key = ""
        elif "bias" in bias_headers:
            bias_key = "bias"
        elif len(bias_headers) == 1:
            (bias_key,) = bias_headers
        else:
            raise BadFileError(f"bias file '{bias_path}' has no 'bias' array (keys found: "
                               f"{', '.join(sorted(bias_headers)) or 'none'})")
        bias_file, bias_header = bias_path, bias_headers[bias_key]
    if bias_header is not None and (bias_header.ndim != 1 or bias_header.shape[0] != hwio[3]):
        raise BadFileError(f"bias from {bias_path or path} has shape {'x'.join(map(str, bias_header.shape))}; "
                           f"the kernel ({layout}) has {hwio[3]} output channels")
    return WeightsHeader(kernel_key, tuple(kernel.shape), tuple(hwio), bias_file, bias_key)


def load_weights(path: str, layout: str, bias_path: str | None = None) -> LoadedWeights:
    """Read a kernel in `layout` and its optional bias, return them with the kernel as HWIO.

    Args:
        path: a .npy (the kernel) or .npz (keys `kernel` and optional `bias`).
        layout: the kernel's layout in the file, e.g. "OIHW".
        bias_path: a .npy/.npz bias file (npz key `bias` or its single array); overrides the npz's bias.

    Raises:
        BadFileError: missing file or keys, pickles, wrong rank, non-numeric data (all from the headers,
            before any array is read).
    """
    header = weights_header(path, layout, bias_path)
    kernel = read_arrays(path, "weights", [header.kernel_key])[header.kernel_key]
    bias = None
    if header.bias_file is not None:
        what = "weights" if header.bias_file == path and bias_path is None else "bias"
        bias = read_arrays(header.bias_file, what, [header.bias_key])[header.bias_key]
    source = str(path) + (f" + {bias_path}" if bias_path is not None else "")
    hwio, conv = to_hwio(kernel, layout)
    return LoadedWeights(np.ascontiguousarray(hwio), bias, conv, source, tuple(kernel.shape))


def resolve_relative(path: str, base: Path) -> str:
    """A relative path resolved against `base` (an experiment file's folder) when it exists there."""
    candidate = Path(path)
    if not candidate.is_absolute() and os.path.lexists(os.path.join(base, candidate)):  # never raises
        return str(base / candidate)
    return path
