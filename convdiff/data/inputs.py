"""The input tensor of a spec: seeded random, ones, a synthetic image, or a file (.npy, PNG/JPEG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convdiff.spec.dtypes import np_dtype
from convdiff.errors import BadInputError
from convdiff.data.arrays import load_npy
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec

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
        hint = ""
        if spec.rank == 2 and data.ndim == 4 and data.shape == (shape[0], shape[3], shape[1], shape[2]):
            hint = " (it looks like NCHW: give --input-layout NCHW)"
        raise BadInputError(f"input file '{spec.input}' has shape {_fmt(data.shape)}, the spec expects "
                            f"{_fmt(shape)}{hint}")
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


def load_input_file(source: str, layout: str | None = None, rank: int = 2) -> np.ndarray:
    """An input file channels-last (NWC / NHWC / NDHWC): .npy, .npz (key `input` or its single array) in
    `layout` (default: channels-last for the rank), or PNG/JPEG (2-D only)."""
    from convdiff.spec.layouts import input_layout_for, layout_rank

    layout = layout or input_layout_for(rank)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        data = load_npy(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            data = _npz_input(path, data)
        native = input_layout_for(layout_rank(layout))
        if layout == native and data.ndim == len(native) - 1:
            layout = native[1:]  # a single channels-last item without its batch axis, as before layouts existed
        if data.ndim != len(layout):
            raise BadInputError(f"input file '{path}' has rank {data.ndim}; layout {layout} expects rank {len(layout)}"
                                + (f" ({native} or {native[1:]})" if layout == native[1:] else ""))
        if layout != native:
            from convdiff.spec.layouts import to_channels_last

            data = to_channels_last(data, layout, layout_rank(layout))[0]
        if data.size == 0:
            raise BadInputError(f"input file '{path}' is empty (shape {_fmt(data.shape)})")
        return data
    if suffix in IMAGE_SUFFIXES:
        if rank != 2:
            raise BadInputError(f"input file '{path}' is an image (2-D); a rank-{rank} spec needs a .npy/.npz input")
        return decode_image(path)[None].astype(np.float64) / 255.0
    raise BadInputError(
        f"unknown input '{source}': expected one of {', '.join(BUILTIN_INPUTS)} or a .npy/.npz/.png/.jpg file")


def _npz_input(path: Path, data: np.lib.npyio.NpzFile) -> np.ndarray:
    try:
        with data:
            keys = list(data.files)
            if "input" in keys:
                array = data["input"]
            elif len(keys) == 1:
                array = data[keys[0]]
            elif not keys:
                raise BadInputError(f"input file '{path}' holds no arrays (expected an array named 'input')")
            else:
                raise BadInputError(f"input file '{path}' has no 'input' array and more than one array "
                                    f"(keys found: {', '.join(keys) or 'none'})")
    except ValueError as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(f"input file '{path}' holds pickled objects, which convdiff refuses to load") from None
    if array.dtype.kind not in "fiub":
        raise BadInputError(f"input file '{path}' has dtype {array.dtype}; expected a numeric array")
    return array


def decode_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise BadInputError(f"input file '{path}' not found")
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise BadInputError(f"input file '{path}' is not a decodable PNG/JPEG image") from None
    return image.numpy()


# Channel counts of images as they are stored (grayscale, RGB, RGBA): what dim 1 of an NCHW array holds.
IMAGE_CHANNELS = (1, 3, 4)
# The smallest square side taken as an image's rows and columns rather than a few rows of many channels.
SQUARE_SIDE = 8


def channels_first_suspicion(source: str, shape: tuple[int, ...]) -> str | None:
    """Why a 2-D input file read channels-last (its layout not given) looks channels-first, or None.

    The rule (README: the `--input-layout` option): a shape N x A x B x B (or A x B x B without the batch) with A
    an image's channel count (1, 3, 4) and B >= 8 reads as NHWC with A rows, B columns and B channels,
    but as NCHW it is A channels of a square B x B image. Refused only then and only when no weights
    file says how many channels the input has (with one, its input channels decide); an explicit
    --input-layout NHWC reads it as it is.
    """
    dims = tuple(shape[1:]) if len(shape) == 4 else tuple(shape) if len(shape) == 3 else ()
    if not dims:
        return None
    a, b, c = dims
    if a not in IMAGE_CHANNELS or b != c or b < SQUARE_SIDE:
        return None
    layout, first = ("NHWC", "NCHW") if len(shape) == 4 else ("HWC", "CHW")
    return (f"input file '{source}' has shape {_fmt(shape)}: read as {layout} that is {a} row(s), {b} columns "
            f"and {c} channels, but it looks like {first} ({a} channel(s) of {b}x{c}): give --input-layout {first} "
            f"(or --input-layout {layout} to read it as {layout})")


def file_input_shape(source: str, layout: str | None = None, rank: int = 2) -> tuple[int, ...]:
    path = Path(source)
    if path.suffix.lower() not in (".npy", ".npz", *IMAGE_SUFFIXES):
        raise BadInputError(
            f"unknown input '{source}': expected one of {', '.join(BUILTIN_INPUTS)} or a .npy/.npz/.png/.jpg file")
    return tuple(load_input_file(source, layout, rank).shape)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)
