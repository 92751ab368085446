"""Recorded outputs: an array a framework produced earlier (a blob dumped from `caffe.Net`, a saved
activation), read from `.npy`, `.npz#key` or a single-array `.npz`, in a stated layout, and turned
channels-last so that it stands where a backend's output would."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convdiff.data.arrays import array_headers, read_arrays
from convdiff.errors import BadFileError, BadInputError
from convdiff.spec.layouts import INPUT_LAYOUTS_BY_RANK, input_layout_for, layout_rank, to_channels_last
from convdiff.spec.parse import fmt_values

# A recorded output is a result of floating-point arithmetic: an integer array is no framework's output.
_FLOAT_KINDS = "f"


@dataclass(frozen=True)
class RecordedOutput:
    """One recorded output array, channels-last, in the dtype it was saved in."""

    source: str
    """The file as given (`FILE.npy`, `FILE.npz#key`)."""
    layout: str
    """The layout the file holds it in (e.g. NCHW, as caffe.Net dumps blobs)."""
    array: np.ndarray = field(repr=False, compare=False)
    """The array channels-last (NWC / NHWC / NDHWC)."""
    file_shape: tuple[int, ...] = ()
    """Its shape in the file, before any transpose."""
    layout_option: str = "--output-layout"
    """The option that sets `layout` (named when a shape mismatch says which layout would fit)."""

    @property
    def dtype(self) -> str:
        return self.array.dtype.name


def split_array_ref(ref: str) -> tuple[str, str | None]:
    """`FILE.npz#key` -> (FILE.npz, key); anything else -> (ref, None)."""
    path, sep, key = ref.rpartition("#")
    if sep and path.lower().endswith((".npz", ".npy")) and key:
        return path, key
    return ref, None


def read_array(ref: str, what: str = "recorded output") -> np.ndarray:
    """One numeric array of `FILE.npy`, `FILE.npz#key`, or a `.npz` holding one array (or one named `output`);
    every header is checked before the one array chosen is read."""
    path, key = split_array_ref(ref)
    if Path(path).suffix.lower() not in (".npy", ".npz"):
        raise BadFileError(f"{what} '{ref}' is not a .npy or .npz file")
    headers = array_headers(path, what)
    if "" in headers:
        if key is not None:
            raise BadFileError(f"{what} '{ref}': a .npy file holds one array, it has no key '{key}'")
        chosen = ""
    elif key is not None:
        if key not in headers:
            raise BadFileError(f"{what} file '{path}' has no array '{key}' (arrays: {', '.join(headers) or 'none'})")
        chosen = key
    elif len(headers) == 1:
        chosen = next(iter(headers))
    elif "output" in headers:
        chosen = "output"
    else:
        raise BadFileError(f"{what} file '{path}' holds {len(headers)} arrays ({', '.join(headers) or 'none'}): "
                           f"name one as {path}#KEY")
    return read_arrays(path, what, [chosen])[chosen]


def load_recorded_output(ref: str, layout: str | None = None, rank: int = 2,
                         layout_option: str = "--output-layout") -> RecordedOutput:
    """The recorded output `ref` (FILE.npy, FILE.npz#key) held in `layout` (default channels-last of
    `rank`), converted channels-last. A layout without the batch axis (HWC, CHW) reads one item."""
    data = read_array(ref)
    if data.dtype.kind not in _FLOAT_KINDS:
        raise BadFileError(f"recorded output '{ref}' has dtype {data.dtype}; a convolution's output is floating-point")
    if data.size == 0:
        raise BadFileError(f"recorded output '{ref}' is empty (shape {fmt_values(data.shape)})")
    native = input_layout_for(rank)
    layout = layout or native
    if layout_rank(layout) != rank:
        raise BadInputError(f"--output-layout {layout} is a rank-{layout_rank(layout)} layout; the spec is rank {rank} "
                            f"(e.g. {native})")
    if data.ndim != len(layout):
        raise BadFileError(f"recorded output '{ref}' has rank {data.ndim} (shape {fmt_values(data.shape)}); "
                            f"layout {layout} expects rank {len(layout)}")
    converted = data if layout == native else to_channels_last(data, layout, rank)[0]
    return RecordedOutput(ref, layout, np.ascontiguousarray(converted), tuple(data.shape), layout_option)


def layouts_explaining(file_shape: tuple[int, ...], expected: tuple[int, ...], given_layout: str,
                       rank: int) -> list[str]:
    """The layouts (other than `given_layout`) in which an array of `file_shape` has the channels-last
    shape `expected`: what a shape mismatch a transpose would fix is named with."""
    fits = []
    for layout in INPUT_LAYOUTS_BY_RANK[rank]:
        if layout == given_layout or len(layout) != len(file_shape):
            continue
        dims = dict(zip(layout, file_shape))
        native = input_layout_for(rank)
        shape = tuple(dims.get(letter, 1) for letter in native)
        if shape == tuple(expected):
            fits.append(layout)
    return fits


def shape_error(recorded: RecordedOutput, expected: tuple[int, ...], rank: int, against: str,
                like: str = "the expected output") -> BadInputError:
    """The one-line error of a recorded output whose shape is not `expected`, naming a layout that fits."""
    shape = fmt_values(recorded.file_shape)
    text = (f"recorded output '{recorded.source}' has shape {shape} ({recorded.layout}); {against} "
            f"{fmt_values(expected)} ({input_layout_for(rank)})")
    fits = layouts_explaining(recorded.file_shape, expected, recorded.layout, rank)
    if fits:
        text += f": {recorded.source} looks like {like} in {fits[0]} (give {recorded.layout_option} {fits[0]})"
    return BadInputError(text)
