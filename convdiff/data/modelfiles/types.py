"""What convdiff knows about one convolution layer of a model file, whatever the format.

A `LayerRecord` is what `convdiff layers` lists and what `--from` maps to spec fields: the kernel's
shape and the layout it is stored in (in convdiff's letter notation), the bias, and the layer's
configuration as the file states it. `LayerWeights` adds the arrays, read only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from convdiff.errors import BadInputError

# Spatial letters per rank, as the layout notation writes them (D depth, H height, W width).
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


class LayerKind(StrEnum):
    CONV = "conv"
    DEPTHWISE = "depthwise"
    """groups == input channels (PyTorch/ONNX/Caffe group = C, Keras DepthwiseConv*)."""
    GROUPED = "grouped"
    TRANSPOSED = "transposed"
    SEPARABLE_DEPTHWISE = "separable-depthwise"
    """The depthwise step of a Keras SeparableConv (no bias of its own)."""
    SEPARABLE_POINTWISE = "separable-pointwise"
    """The 1x1 step of a Keras SeparableConv (it holds the layer's bias)."""


def conv_kind(groups: int, in_channels: int | None) -> LayerKind:
    if groups == 1:
        return LayerKind.CONV
    return LayerKind.DEPTHWISE if in_channels is not None and groups == in_channels else LayerKind.GROUPED


class PadMode(StrEnum):
    EXPLICIT = "explicit"
    SAME = "same"
    """TensorFlow/Keras SAME (the odd pad at the end); ONNX SAME_UPPER is the same rule."""
    VALID = "valid"
    SAME_LOWER = "same_lower"
    """ONNX SAME_LOWER: SAME's total, the odd pad at the beginning."""
    CAUSAL = "causal"
    """Keras Conv1D `causal`: (k - 1) * d zeros before, none after."""


@dataclass(frozen=True)
class LayerPadding:
    mode: PadMode
    pads: tuple[tuple[int, int], ...] = ()
    """(before, after) per spatial axis, for EXPLICIT."""

    def __str__(self) -> str:
        if self.mode is not PadMode.EXPLICIT:
            return self.mode.value
        flat = [p for pair in self.pads for p in pair]
        if len(set(flat)) == 1:
            return str(flat[0])
        if all(a == b for a, b in self.pads):
            return ",".join(str(a) for a, _ in self.pads)
        return ",".join(map(str, flat))  # before,after per axis: TOP,BOTTOM,LEFT,RIGHT in 2-D, as --padding

    def to_json(self) -> str | list[list[int]]:
        return [list(p) for p in self.pads] if self.mode is PadMode.EXPLICIT else self.mode.value


@dataclass(frozen=True)
class LayerConfig:
    """A layer's settings as its file states them (per spatial axis where they have one value per axis)."""

    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: LayerPadding
    dilation: tuple[int, ...]
    groups: int
    filters: int
    use_bias: bool
    output_padding: tuple[int, ...] | None = None
    """Transposed layers only; None when the file sets none."""
    data_format: str = "channels_last"
    """What the layer computes in: channels_last, or channels_first (Keras data_format; every
    NCHW-native format is reported as its tensors are: channels_first)."""


@dataclass(frozen=True)
class LayerRecord:
    """One convolution layer of a model file (or one step of a separable one)."""

    name: str
    """The name `FILE#LAYER` uses."""
    kind: LayerKind
    rank: int
    """Spatial axes: 1, 2 or 3."""
    framework: str
    """Caffe, PyTorch, Keras or ONNX."""
    op: str
    """The file's own type for the layer: Convolution, Conv2D, ConvTranspose, a state_dict tensor..."""
    kernel_shape: tuple[int | None, ...]
    """As stored; None for a size the file does not fix (a prototxt's input channels)."""
    kernel_layout: str
    """Axes of the stored kernel in convdiff's letters: O out, I in, M depth multiplier, D/H/W spatial."""
    bias_shape: tuple[int, ...] | None
    config: LayerConfig | None
    """None when the file records no configuration (a PyTorch state_dict holds tensors only)."""
    in_channels: int | None
    """Input channels of the layer (all groups), when the file fixes them."""
    input_shape: tuple[int, ...] | None = None
    """NHWC shape of the layer's input when the file declares it (batch 1 when left open)."""
    has_weights: bool = True
    """False for a file that describes layers without their weights (a prototxt)."""
    notes: tuple[str, ...] = field(default=())
    """What the comparison leaves out or assumes (an activation, an unrecorded layer type)."""

    @property
    def described(self) -> str:
        """e.g. "Caffe Convolution, kernel 96x1x5x5 OIHW"."""
        return f"{self.framework} {self.op}, kernel {fmt_dims(self.kernel_shape)} {self.kernel_layout}"

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.name,
            "kind": self.kind.value,
            "rank": self.rank,
            "framework": self.framework,
            "op": self.op,
            "kernel_shape": list(self.kernel_shape),
            "kernel_layout": self.kernel_layout,
            "bias_shape": None if self.bias_shape is None else list(self.bias_shape),
            "in_channels": self.in_channels,
            "filters": None if c is None else c.filters,
            "kernel_size": None if c is None else list(c.kernel_size),
            "strides": None if c is None else list(c.strides),
            "padding": None if c is None else c.padding.to_json(),
            "dilation": None if c is None else list(c.dilation),
            "groups": None if c is None else c.groups,
            "use_bias": None if c is None else c.use_bias,
            "output_padding": None if c is None or c.output_padding is None else list(c.output_padding),
            "data_format": None if c is None else c.data_format,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "has_weights": self.has_weights,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class LayerWeights:
    """A layer's arrays as stored (`record.kernel_layout`), read-only."""

    record: LayerRecord
    kernel: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class ModelFile:
    """The convolution layers of one file, and the names of its other layers (for error messages)."""

    path: str
    format: str
    """caffe, torch, safetensors, keras or onnx."""
    layers: tuple[LayerRecord, ...]
    others: dict[str, str] = field(default_factory=dict)
    """Layers that are not convolutions: name -> what they are ("a Pooling layer")."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Other names a layer answers to (an ONNX node's output) -> its name."""

    def find(self, name: str) -> LayerRecord:
        name = self.aliases.get(name, name) if all(r.name != name for r in self.layers) else name
        for record in self.layers:
            if record.name == name:
                return record
        if name in self.others:
            raise BadInputError(f"layer '{name}' of {self.path} is not a convolution ({self.others[name]}; "
                                f"convolution layers: {self.names()})")
        raise BadInputError(f"no convolution layer '{name}' in {self.path} (convolution layers: {self.names()})")

    def names(self, limit: int = 40) -> str:
        names = [r.name for r in self.layers]
        if not names:
            return "none"
        shown = ", ".join(names[:limit])
        if len(names) > limit:
            shown += f", ... and {len(names) - limit} more (`convdiff layers {self.path}` lists them)"
        return shown


def a(word: str) -> str:
    """`word` with its indefinite article: "an Input", "a Conv2D"."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def fmt_dims(shape: tuple[int | None, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def float_array(array: np.ndarray, where: str) -> np.ndarray:
    """A stored kernel or bias as a read-only float array (float16/32/64 kept; bfloat16 widened exactly)."""
    array = np.asarray(array)
    if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
        raise BadInputError(f"{where} holds {array.dtype} values, not floating point (a quantized model?)")
    if array.dtype.name == "bfloat16":
        array = array.astype(np.float32)  # every bfloat16 is a float32: exact
    if 0 in array.shape:
        raise BadInputError(f"{where} is empty (shape {fmt_dims(array.shape)})")
    array.flags.writeable = False
    return array
