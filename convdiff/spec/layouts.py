"""Array layouts and the conversions between them, returned as data so reports can show them.

Input layouts name the axes of an input array (N batch, H, W, C channels); weights layouts name the
axes of a 4-D kernel (H, W, I input channels, O output channels). convdiff works in NHWC / HWIO and
every conversion is a `Conversion`: size-1 axes added for the letters the source lacks, then one
transpose, e.g. `OIHW -> HWIO: transpose(2, 3, 1, 0)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convdiff.errors import BadInputError

INPUT_LAYOUTS = ("NHWC", "NCHW", "HWC", "CHW", "HW")
# The named weights layouts: TF (HWIO), Caffe/PyTorch (OIHW), TFLite/ONNX-NHWC (OHWI), transposed conv (IOHW).
# Any order of the letters H, W, I, O is accepted, so that a wrong order (e.g. OIWH, H and W
# swapped) can be written down and reproduced.
WEIGHTS_LAYOUTS = ("HWIO", "OIHW", "OHWI", "IOHW")
NATIVE_INPUT = "NHWC"
NATIVE_WEIGHTS = "HWIO"


@dataclass(frozen=True)
class Conversion:
    """How an array in `source` layout becomes `target`: add size-1 axes, then transpose."""

    source: str
    target: str
    added: str
    """Letters the source lacks, added as leading size-1 axes before the transpose."""
    perm: tuple[int, ...]
    """The transpose applied after adding `added` in front of `source`."""

    @property
    def identity(self) -> bool:
        return not self.added and self.perm == tuple(range(len(self.perm)))

    def apply(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim != len(self.source):
            raise BadInputError(f"an array of rank {array.ndim} cannot be read as {self.source} "
                                f"(rank {len(self.source)})")
        if self.added:
            array = array.reshape((1,) * len(self.added) + array.shape)
        return np.transpose(array, self.perm)

    def __str__(self) -> str:
        if self.identity:
            return f"{self.source} -> {self.target}: none (already {self.target})"
        steps = []
        if self.added:
            steps.append(f"add {', '.join(self.added)} {'axes' if len(self.added) > 1 else 'axis'} of size 1")
        if self.perm != tuple(range(len(self.perm))):
            steps.append(f"transpose({', '.join(str(p) for p in self.perm)})")
        return f"{self.source} -> {self.target}: {'; '.join(steps)}"


def conversion(source: str, target: str) -> Conversion:
    """The conversion from `source` to `target` layout (letters of the source must all be in the target).

    Args:
        source: e.g. "OIHW", "CHW".
        target: e.g. "HWIO", "NHWC".

    Returns:
        A `Conversion` whose `apply` maps a `source` array to `target`.
    """
    if len(set(source)) != len(source) or not set(source) <= set(target):
        raise BadInputError(f"cannot convert layout {source} to {target}")
    added = "".join(c for c in target if c not in source)
    full = added + source
    return Conversion(source, target, added, tuple(full.index(c) for c in target))


def reverse(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """The inverse of `conversion(target, source).apply`: `source` back to the smaller `target` layout.

    Letters of `source` missing from `target` must be axes of size 1 (they are dropped).
    """
    array = np.transpose(np.asarray(array), [source.index(c) for c in _order_with_dropped(source, target)])
    dropped = len(source) - len(target)
    if any(s != 1 for s in array.shape[:dropped]):
        raise BadInputError(f"cannot drop non-unit axes converting {source} to {target}: shape {array.shape}")
    return array.reshape(array.shape[dropped:])


def _order_with_dropped(source: str, target: str) -> str:
    return "".join(c for c in source if c not in target) + target


def parse_input_layout(value: object) -> str:
    text = str(value).strip().upper()
    if text not in INPUT_LAYOUTS:
        raise BadInputError(f"unknown input layout '{value}' (choose from {', '.join(INPUT_LAYOUTS)})")
    return text


def parse_weights_layout(value: object) -> str:
    text = str(value).strip().upper()
    if len(text) != 4 or set(text) != set(NATIVE_WEIGHTS):
        raise BadInputError(f"unknown weights layout '{value}' (choose from {', '.join(WEIGHTS_LAYOUTS)}, "
                            "or any order of the letters H, W, I, O)")
    return text


def to_hwio(kernel: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """A 4-D kernel in `layout` as HWIO, with the conversion applied."""
    conv = conversion(layout, NATIVE_WEIGHTS)
    return conv.apply(kernel), conv


def from_hwio(kernel: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """An HWIO kernel in another weights layout (what Caffe's and PyTorch's OIHW backends do)."""
    conv = conversion(NATIVE_WEIGHTS, layout)
    return conv.apply(kernel), conv


def to_nhwc(x: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """An input in `layout` (NHWC, NCHW, HWC, CHW, HW) as NHWC, with the conversion applied."""
    conv = conversion(layout, NATIVE_INPUT)
    return conv.apply(x), conv


def fitting_layouts(shape: tuple[int, ...], in_channels: int, kernel_size: tuple[int, int] | None = None,
                    filters: int | None = None) -> list[str]:
    """Named weights layouts under which a kernel of `shape` has `in_channels` input channels (and the
    given kernel size / filters, when known)."""
    fits = []
    for layout in WEIGHTS_LAYOUTS:
        dims = dict(zip(layout, shape))
        if dims["I"] != in_channels:
            continue
        if kernel_size is not None and (dims["H"], dims["W"]) != tuple(kernel_size):
            continue
        if filters is not None and dims["O"] != filters:
            continue
        fits.append(layout)
    return fits
