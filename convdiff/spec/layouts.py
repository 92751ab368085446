"""Array layouts and the conversions between them, returned as data so reports can show them.

Letters name axes. Inputs: N batch, C channels, and the spatial axes D (depth), H (rows), W (columns):
W alone in 1-D, H and W in 2-D, D, H and W in 3-D. Kernels: the spatial letters, I and O for input and
output channels, or C and M for a depthwise kernel's channels and multiplier.

convdiff works channels-last (NWC / NHWC / NDHWC) with one canonical kernel layout per kind:

- forward convolutions: spatial..., I, O = (*k, C_in / groups, C_out), TensorFlow's HWIO; a depthwise
  kernel (groups = C_in, C_out = C_in * M) is (*k, 1, C_in * M), output channel c * M + m (c-major, as
  tf.nn.depthwise_conv2d and PyTorch's groups = C_in both number them);
- transposed convolutions: spatial..., O, I = (*k, C_out / groups, C_in), TensorFlow's and Keras' own
  (conv2d_transpose takes the kernel of the forward convolution it is the gradient of). I and O always
  name the layer's own input and output channels, so PyTorch's ConvTranspose2d weight (in, out/g, kh, kw)
  is IOHW.

Every conversion is a `Conversion`: size-1 axes added for the letters the source lacks, one transpose,
and for depthwise kernels one reshape between (C, M) and (1, C*M), e.g. `OIHW -> HWIO: transpose(2, 3, 1, 0)`,
`HWCM -> HWIO: reshape (kh, kw, C, M) to (kh, kw, 1, C*M) (output channel c*M + m)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convdiff.errors import BadInputError

SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
INPUT_LAYOUTS = ("NHWC", "NCHW", "HWC", "CHW", "HW")
"""The 2-D input layouts (the 1-D and 3-D ones are in INPUT_LAYOUTS_BY_RANK)."""
INPUT_LAYOUTS_BY_RANK = {
    1: ("NWC", "NCW", "WC", "CW", "W"),
    2: INPUT_LAYOUTS,
    3: ("NDHWC", "NCDHW", "DHWC", "CDHW", "DHW"),
}
# The named 2-D weights layouts of a forward convolution: TF (HWIO), Caffe/PyTorch (OIHW),
# TFLite/ONNX-NHWC (OHWI), IOHW. Any order of the letters is accepted, so that a wrong order (e.g.
# OIWH, H and W swapped) can be written down and reproduced.
WEIGHTS_LAYOUTS = ("HWIO", "OIHW", "OHWI", "IOHW")
NATIVE_INPUT = "NHWC"
NATIVE_WEIGHTS = "HWIO"


@dataclass(frozen=True)
class KernelConvention:
    """A framework's kernel layout, in the letters of a 2-D kernel (1-D and 3-D use W and DHW)."""

    layout: str
    kind: str
    """`forward`, `depthwise` or `transposed`: the kind of convolution it belongs to."""
    frameworks: str


KERNEL_CONVENTIONS: tuple[KernelConvention, ...] = (
    KernelConvention("HWIO", "forward", "TensorFlow tf.nn.conv2d, Keras Conv2D (kh, kw, C_in/g, C_out): canonical"),
    KernelConvention("OIHW", "forward", "PyTorch Conv2d (C_out, C_in/g, kh, kw), Caffe Convolution, ONNX Conv"),
    KernelConvention("OHWI", "forward", "TFLite, ONNX with NHWC weights"),
    KernelConvention("HWCM", "depthwise", "Keras DepthwiseConv2D, tf.nn.depthwise_conv2d (kh, kw, C, M)"),
    KernelConvention("OIHW", "depthwise", "PyTorch Conv2d(groups=C) (C*M, 1, kh, kw)"),
    KernelConvention("HWOI", "transposed", "Keras Conv2DTranspose, tf.nn.conv2d_transpose (kh, kw, C_out, C_in): "
                                           "canonical"),
    KernelConvention("IOHW", "transposed", "PyTorch ConvTranspose2d (C_in, C_out/g, kh, kw), Caffe Deconvolution, "
                                           "ONNX ConvTranspose"),
)


def spatial_letters(rank: int) -> str:
    return SPATIAL[rank]


def for_rank(layout: str, rank: int) -> str:
    """A 2-D layout's letters for another rank: HWIO -> WIO (1-D) or DHWIO (3-D)."""
    spatial = SPATIAL[rank]
    out, placed = [], False
    for c in layout:
        if c in "DHW":
            if not placed:
                out.append(spatial)
                placed = True
        else:
            out.append(c)
    return "".join(out)


def input_layout_for(rank: int, channels_first: bool = False) -> str:
    """NWC / NHWC / NDHWC (or NCW / NCHW / NCDHW)."""
    return f"NC{SPATIAL[rank]}" if channels_first else f"N{SPATIAL[rank]}C"


def kernel_layout_for(rank: int, transposed: bool = False) -> str:
    """The canonical kernel layout: spatial, I, O (forward) or spatial, O, I (transposed)."""
    return SPATIAL[rank] + ("OI" if transposed else "IO")


def layout_rank(layout: str) -> int:
    """The number of spatial letters of a layout (parsed layouts always have D, H, W as a valid set)."""
    return sum(c in "DHW" for c in layout)


@dataclass(frozen=True)
class Conversion:
    """How an array in `source` layout becomes `target`: add size-1 axes, transpose, and for depthwise
    kernels reshape between (C, M) and (1, C*M)."""

    source: str
    target: str
    added: str
    """Letters the source lacks, added as leading size-1 axes before the transpose."""
    perm: tuple[int, ...]
    """The transpose applied after adding `added` in front of `source`."""
    merge: bool = False
    """After the transpose, reshape the last two axes (C, M) to (1, C*M): a depthwise kernel made canonical."""
    split: int | None = None
    """Before the transpose, reshape the last two axes (1, C*M) to (C, M) with this C."""

    @property
    def identity(self) -> bool:
        return not self.added and self.perm == tuple(range(len(self.perm))) and not self.merge and self.split is None

    def apply(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim != len(self.source):
            raise BadInputError(f"an array of rank {array.ndim} cannot be read as {self.source} "
                                f"(rank {len(self.source)})")
        if self.split is not None:
            if array.shape[-2] != 1 or array.shape[-1] % self.split:
                raise BadInputError(f"a kernel of shape {'x'.join(map(str, array.shape))} is not depthwise for "
                                    f"{self.split} channels")
            array = array.reshape(*array.shape[:-2], self.split, array.shape[-1] // self.split)
        if self.added:
            array = array.reshape((1,) * len(self.added) + array.shape)
        array = np.transpose(array, self.perm)
        if self.merge:
            array = array.reshape(*array.shape[:-2], 1, array.shape[-2] * array.shape[-1])
        return array

    def __str__(self) -> str:
        if self.identity:
            return f"{self.source} -> {self.target}: none (already {self.target})"
        steps = []
        spatial = ", ".join(f"k{c.lower()}" for c in self.source if c in "DHW")
        if self.split is not None:
            steps.append(f"reshape ({spatial}, 1, C*M) to ({spatial}, C, M) with C = {self.split} "
                         "(output channel c*M + m)")
        if self.added:
            steps.append(f"add {', '.join(self.added)} {'axes' if len(self.added) > 1 else 'axis'} of size 1")
        if self.perm != tuple(range(len(self.perm))):
            steps.append(f"transpose({', '.join(str(p) for p in self.perm)})")
        if self.merge:
            steps.append(f"reshape ({spatial}, C, M) to ({spatial}, 1, C*M) (output channel c*M + m)")
        return f"{self.source} -> {self.target}: {'; '.join(steps)}"


def conversion(source: str, target: str, channels: int | None = None) -> Conversion:
    """The conversion from `source` to `target` layout (letters of the source must all be in the target).

    A depthwise layout (C and M) converts to and from an I/O layout of the same spatial letters: to it
    by merging (C, M) into (1, C*M), from it by splitting (1, C*M) with C = `channels`.

    Args:
        source: e.g. "OIHW", "CHW", "HWCM".
        target: e.g. "HWIO", "NHWC".
        channels: C, needed to convert an I/O kernel to a depthwise (C, M) layout.

    Returns:
        A `Conversion` whose `apply` maps a `source` array to `target`.
    """
    depthwise_source, depthwise_target = "M" in source, "M" in target
    if depthwise_source != depthwise_target:
        # (C, M) <-> (1, C*M) is a reshape of the last two axes of an I/O layout ending in I, O.
        io = target if depthwise_source else source
        if not io.endswith("IO"):
            raise BadInputError(f"cannot convert layout {source} to {target}")
        if depthwise_source:
            inner = conversion(source, io[:-2] + "CM")
            return Conversion(source, target, inner.added, inner.perm, merge=True)
        if channels is None:
            raise BadInputError(f"converting {source} to the depthwise layout {target} needs the channel count")
        inner = conversion(source[:-2] + "CM", target)
        return Conversion(source, target, inner.added, inner.perm, split=channels)
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
    if not any(text in names for names in INPUT_LAYOUTS_BY_RANK.values()):
        names = ", ".join(name for names in INPUT_LAYOUTS_BY_RANK.values() for name in names)
        raise BadInputError(f"unknown input layout '{value}' (choose from {names})")
    return text


def parse_weights_layout(value: object) -> str:
    """A kernel layout: the spatial letters of one rank (W; H, W; D, H, W) with I and O (or C and M, a
    depthwise kernel), each once, in any order."""
    text = str(value).strip().upper()
    letters = set(text)
    spatial = "".join(c for c in "DHW" if c in letters)
    channels = letters - set("DHW")
    if len(text) != len(letters) or spatial not in SPATIAL.values() or channels not in ({"I", "O"}, {"C", "M"}):
        raise BadInputError(f"unknown weights layout '{value}' (choose from {', '.join(WEIGHTS_LAYOUTS)}, HWOI, "
                            "HWCM, their 1-D and 3-D forms (WIO, DHWIO, ...), or any order of the letters H, W "
                            "(D), I, O)")
    return text


def to_canonical(kernel: np.ndarray, layout: str, rank: int = 2, transposed: bool = False
                 ) -> tuple[np.ndarray, Conversion]:
    """A kernel in `layout` in the canonical layout of its kind, with the conversion applied."""
    conv = conversion(layout, kernel_layout_for(rank, transposed))
    return conv.apply(kernel), conv


def from_canonical(kernel: np.ndarray, layout: str, rank: int = 2, transposed: bool = False,
                   channels: int | None = None) -> tuple[np.ndarray, Conversion]:
    """A canonical kernel in another layout (what the PyTorch, Caffe and depthwise backends need).

    Args:
        channels: C, for a depthwise target layout (C and M letters).
    """
    conv = conversion(kernel_layout_for(rank, transposed), layout, channels)
    return conv.apply(kernel), conv


def to_hwio(kernel: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """A 4-D kernel in `layout` as HWIO, with the conversion applied."""
    return to_canonical(kernel, layout)


def from_hwio(kernel: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """An HWIO kernel in another weights layout (what Caffe's and PyTorch's OIHW backends do)."""
    return from_canonical(kernel, layout)


def to_channels_last(x: np.ndarray, layout: str, rank: int = 2) -> tuple[np.ndarray, Conversion]:
    """An input in `layout` as N, spatial..., C, with the conversion applied."""
    conv = conversion(layout, input_layout_for(rank))
    return conv.apply(x), conv


def to_nhwc(x: np.ndarray, layout: str) -> tuple[np.ndarray, Conversion]:
    """An input in `layout` (NHWC, NCHW, HWC, CHW, HW) as NHWC, with the conversion applied."""
    return to_channels_last(x, layout, 2)


def fitting_layouts(shape: tuple[int, ...], in_channels: int, kernel_size: tuple[int, ...] | None = None,
                    filters: int | None = None, *, rank: int = 2, transposed: bool = False,
                    groups: int = 1) -> list[str]:
    """Named kernel layouts (of this rank and kind) under which a kernel of `shape` fits the input's
    channels (and the given kernel size / filters, when known)."""
    fits = []
    spatial = SPATIAL[rank]
    for convention in KERNEL_CONVENTIONS:
        if (convention.kind == "transposed") != transposed or convention.layout in fits:
            continue
        layout = for_rank(convention.layout, rank)
        if len(layout) != len(shape) or for_rank(layout, rank) in fits:
            continue
        dims = dict(zip(layout, shape))
        if "M" in dims:
            if groups != in_channels or dims["C"] != in_channels:
                continue
            out = dims["C"] * dims["M"]
        elif transposed:
            if dims["I"] != in_channels:
                continue
            out = dims["O"] * groups
        else:
            if dims["I"] * groups != in_channels:
                continue
            out = dims["O"]
        if kernel_size is not None and tuple(dims[c] for c in spatial) != tuple(kernel_size):
            continue
        if filters is not None and out != filters:
            continue
        if layout not in fits:
            fits.append(layout)
    return fits
