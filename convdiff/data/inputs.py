"""The input tensor of a spec: seeded random, ones, a synthetic image, or a file (.npy, PNG/JPEG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convdiff.data.arrays import ArrayHeader, array_headers, read_arrays
from convdiff.data.images import decode_image, image_header
from convdiff.errors import BadFileError, BadInputError
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec
from convdiff.spec.dtypes import np_dtype

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def make_input(spec: ConvSpec) -> np.ndarray:
    """The input of `spec`, NHWC, in its input dtype."""
    dtype = np_dtype(spec.effective_input_dtype)
    shape = spec.input_shape
    if spec.input == "random":
        return np.random.default_rng(spec.seed).random(shape).astype(dtype)
    if spec.input == "ones":
        return np.ones(shape, dtype)
    if spec.input == "image":
        if spec.rank != 2:
            raise BadInputError(f"the synthetic image is 2-D; a rank-{spec.rank} spec needs --input random, ones "
                                "or a file")
        return (synthetic_image(shape).astype(np.float64) / 255.0).astype(dtype)
    data = load_input_file(spec.input, spec.input_layout, spec.rank)
    if data.shape != shape:
        raise BadFileError(f"input file '{spec.input}' has shape {_fmt(data.shape)}, the spec expects {_fmt(shape)}")
    return data.astype(dtype)


def synthetic_image(shape: tuple[int, int, int, int]) -> np.ndarray:
    """A deterministic photo-like uint8 image: smooth gradients, a few hard edges, fine texture.

    It stands in for the decoded JPEG of the original questions (values k/255 once divided),
    without shipping or downloading a photo.
    """
    n, h, w, c = shape
    yy, xx = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    channels = []
    for ch in range(c):
        phase = ch * 2.1
        base = 0.45 + 0.25 * np.sin(3.0 * xx + phase) * np.cos(2.0 * yy - phase)
        base += 0.2 * ((xx - 0.3 - 0.05 * ch) ** 2 + (yy - 0.6) ** 2 < 0.04)  # a disc: hard edges
        base -= 0.15 * ((xx > 0.7) & (yy < 0.35))  # a rectangle
        base += 0.05 * np.sin(40.0 * xx + 23.0 * yy + phase)  # texture
        channels.append(base)
    img = np.stack(channels, axis=-1)
    rng = np.random.default_rng(0)
    img = img[None].repeat(n, axis=0) + rng.normal(0.0, 0.02, size=(n, h, w, c))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _input_layout(shape: tuple[int, ...], layout: str | None, rank: int, path: Path) -> str:
    """The layout an array of `shape` is read in (`layout`, default channels-last for the rank; a
    channels-last array without its batch axis is one item), checked against the shape."""
    from convdiff.spec.layouts import input_layout_for, layout_rank

    layout = layout or input_layout_for(rank)
    native = input_layout_for(layout_rank(layout))
    if layout == native and len(shape) == len(native) - 1:
        layout = native[1:]  # a single channels-last item without its batch axis, as before layouts existed
    if len(shape) != len(layout):
        raise BadFileError(f"input file '{path}' has rank {len(shape)}; layout {layout} expects rank {len(layout)}"
                           + (f" ({native} or {native[1:]})" if layout == native[1:] else ""))
    if 0 in shape:
        raise BadFileError(f"input file '{path}' is empty (shape {_fmt(shape)})")
    return layout


def _shape_channels_last(shape: tuple[int, ...], layout: str | None, rank: int, path: Path) -> tuple[int, ...]:
    """The channels-last shape of an array of `shape` in `layout`, on a zero-byte view: nothing is allocated."""
    from convdiff.spec.layouts import layout_rank, to_channels_last

    layout = _input_layout(shape, layout, rank, path)
    view = np.broadcast_to(np.zeros((), np.uint8), shape)
    return to_channels_last(view, layout, layout_rank(layout))[0].shape


def _npz_key(path: Path, headers: dict[str, ArrayHeader]) -> str:
    """The array of an input file: a .npy's own, an .npz's `input`, or an .npz's single array."""
    keys = list(headers)
    if keys == [""] or "input" in keys:
        return "" if keys == [""] else "input"
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise BadFileError(f"input file '{path}' holds no arrays (expected an array named 'input')")
    raise BadFileError(f"input file '{path}' has no 'input' array and more than one array "
                       f"(keys found: {', '.join(sorted(keys))})")


def _array_input(path: Path) -> tuple[str, ArrayHeader]:
    headers = array_headers(path, "input")
    key = _npz_key(path, headers)
    return key, headers[key]


def _check_suffix(source: str) -> str:
    suffix = Path(source).suffix.lower()
    if suffix not in (".npy", ".npz", *IMAGE_SUFFIXES):
        raise BadInputError(
            f"unknown input '{source}': expected one of {', '.join(BUILTIN_INPUTS)} or a .npy/.npz/.png/.jpg file")
    return suffix


def load_input_file(source: str, layout: str | None = None, rank: int = 2) -> np.ndarray:
    """An input file channels-last (NWC / NHWC / NDHWC): .npy, .npz (key `input` or its single array) in
    `layout` (default: channels-last for the rank), or PNG/JPEG (2-D only).

    The header is read and checked first; the data only once its shape is known.
    """
    from convdiff.spec.layouts import layout_rank, to_channels_last

    path = Path(source)
    if _check_suffix(source) in IMAGE_SUFFIXES:
        if rank != 2:
            raise BadInputError(f"input file '{path}' is an image (2-D); a rank-{rank} spec needs a .npy/.npz input")
        return decode_image(path)[None].astype(np.float64) / 255.0
    key, header = _array_input(path)
    layout = _input_layout(header.shape, layout, rank, path)  # rank and emptiness, before reading
    data = read_arrays(path, "input", [key])[key]
    return to_channels_last(data, layout, layout_rank(layout))[0]


def file_input_shape(source: str, layout: str | None = None, rank: int = 2) -> tuple[int, ...]:
    """The channels-last shape of an input file, from its header alone (nothing is decoded or read)."""
    path = Path(source)
    if _check_suffix(source) in IMAGE_SUFFIXES:
        if rank != 2:
            raise BadInputError(f"input file '{path}' is an image (2-D); a rank-{rank} spec needs a .npy/.npz input")
        return (1, *image_header(path).shape)
    _, header = _array_input(path)
    return _shape_channels_last(header.shape, layout, rank, path)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)
