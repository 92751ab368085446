"""PNG and JPEG inputs: the size read from the header before anything is decoded, then the decode.

A 138-byte PNG may claim 20000x20000 pixels; a decoder allocates that before it finds the data
missing. The header is a few bytes (PNG: the IHDR chunk; JPEG: the start-of-frame segment), so the
size is known, checked against the memory limit with the rest of the comparison, and only then is
the image decoded (with `tf.io`, as the product always has).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convdiff.data.files import open_regular
from convdiff.errors import BadFileError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
MAX_SIDE = 1 << 16
"""Neither format's decoder in TensorFlow goes beyond 65535 pixels a side (JPEG cannot)."""
# PNG colour type -> channels tf.io.decode_png gives with channels=0 (palette: RGB, RGBA with tRNS).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT (C4), JPG (C8), DAC (CC).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_HEADER_SCAN_BYTES = 1 << 20
"""How far into a JPEG to look for its frame header (EXIF and ICC segments come first, each < 64 KiB)."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    """`png` or `jpeg`."""
    height: int
    width: int
    channels: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


def _bad(path: Path, why: str) -> BadFileError:
    return BadFileError(f"input file '{path}' is not a decodable PNG/JPEG image: {why}")


def image_header(path: str | Path) -> ImageHeader:
    """The size and channels of a PNG or JPEG file, from its header alone.

    Raises:
        BadFileError: not a regular file, neither PNG nor JPEG, a malformed header, a zero or
            implausibly large size.
    """
    path = Path(path)
    with open_regular(path, "input") as handle:
        head = handle.read(_HEADER_SCAN_BYTES)
    if head.startswith(PNG_SIGNATURE):
        header = _png_header(head, path)
    elif head.startswith(JPEG_SOI):
        header = _jpeg_header(head, path)
    else:
        raise _bad(path, "it starts with neither the PNG signature nor a JPEG start-of-image marker")
    if header.height == 0 or header.width == 0:
        raise _bad(path, f"its header declares {header.width}x{header.height} pixels")
    if header.height > MAX_SIDE or header.width > MAX_SIDE:
        raise _bad(path, f"its header declares {header.width}x{header.height} pixels, more than "
                         f"{MAX_SIDE} a side")
    return header


def _png_header(data: bytes, path: Path) -> ImageHeader:
    # IHDR must be the first chunk: length 13, width, height, bit depth, colour type, ...
    if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        raise _bad(path, "its first chunk is not a complete IHDR")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise _bad(path, f"colour type {colour} with bit depth {depth} is not a PNG format")
    channels = _PNG_CHANNELS[colour]
    if colour == 3 and _png_has_chunk(data, b"tRNS"):
        channels = 4
    return ImageHeader("png", height, width, channels)


def _png_has_chunk(data: bytes, kind: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(data):
        length, name = struct.unpack(">I4s", data[pos:pos + 8])
        if name == kind:
            return True
        if name in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def _jpeg_header(data: bytes, path: Path) -> ImageHeader:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise _bad(path, f"no JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break  # end of image, or entropy-coded data before any frame header
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            raise _bad(path, f"a segment at byte {pos} has length {length}")
        if marker in _SOF_MARKERS:
            if pos + 10 > len(data):
                break
            _, height, width, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            if components not in (1, 3):
                raise _bad(path, f"it has {components} colour components; convdiff reads grey or RGB JPEGs")
            return ImageHeader("jpeg", height, width, components)
        pos += 2 + length
    raise _bad(path, "no frame header (SOF) before the image data")


def decode_image(path: str | Path, header: ImageHeader | None = None) -> np.ndarray:
    """Decode a PNG/JPEG to uint8 HxWxC with tf.io, after its header was read and checked.

    Only PNG and JPEG decoders run, chosen by the header, so a GIF renamed `.png` is refused rather
    than decoded by content.
    """
    path = Path(path)
    header = header or image_header(path)
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    with open_regular(path, "input") as handle:
        data = handle.read()
    decode = tf.io.decode_png if header.format == "png" else tf.io.decode_jpeg
    try:
        image = decode(data, channels=0).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.ResourceExhaustedError, ValueError) as exc:
        why = " ".join(str(getattr(exc, "message", exc)).split())[:120] or type(exc).__name__
        raise _bad(path, why) from None
    if image.dtype != np.uint8:  # 16-bit PNGs: decode_png keeps 16 bits when asked for uint16 only
        image = (image // 257).astype(np.uint8)
    if image.shape != header.shape:
        raise _bad(path, f"it decodes to {'x'.join(map(str, image.shape))}, its header declares "
                         f"{'x'.join(map(str, header.shape))}")
    return image
