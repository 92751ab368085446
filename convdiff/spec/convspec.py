"""The frozen description of one convolution, and the one place that says whether it is valid.

A spec is pure data: building one never reads a file (`convdiff.data.specs.build_spec` fills in what
files say, such as an input file's shape). The formulas it relies on live in `geometry`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from convdiff.errors import BadInputError, SpecConflictError
from convdiff.spec import geometry
from convdiff.spec.dtypes import COMPUTE_DTYPES, FLOAT_DTYPES
from convdiff.spec.geometry import Pads
from convdiff.spec.parse import fmt_values, parse_ints

BUILTIN_INPUTS = ("random", "ones", "image")
# The synthetic image stands in for a decoded photo: the size of the one in the original question.
IMAGE_SHAPE = (1, 427, 640, 3)
DEFAULT_SHAPE = (1, 32, 32, 3)


class PaddingMode(StrEnum):
    SAME = "same"
    VALID = "valid"
    EXPLICIT = "explicit"


@dataclass(frozen=True)
class Padding:
    """TF-style padding: `same`, `valid`, or explicit (before, after) pads per spatial axis."""

    mode: PaddingMode
    pads: Pads = ((0, 0), (0, 0))

    @classmethod
    def same(cls) -> Padding:
        return cls(PaddingMode.SAME)

    @classmethod
    def valid(cls) -> Padding:
        return cls(PaddingMode.VALID)

    @classmethod
    def explicit(cls, top: int, bottom: int, left: int, right: int) -> Padding:
        return cls(PaddingMode.EXPLICIT, ((top, bottom), (left, right)))

    @property
    def symmetric(self) -> bool:
        return self.mode is PaddingMode.EXPLICIT and all(a == b for a, b in self.pads)

    def __str__(self) -> str:
        if self.mode is not PaddingMode.EXPLICIT:
            return self.mode.value
        flat = [p for pair in self.pads for p in pair]
        if len(set(flat)) == 1:
            return str(flat[0])
        if self.symmetric:
            return ",".join(str(a) for a, _ in self.pads)
        return ",".join(map(str, flat))

    def to_json(self) -> str | list[list[int]]:
        if self.mode is not PaddingMode.EXPLICIT:
            return self.mode.value
        return [list(p) for p in self.pads]

    def resolve(self, sizes: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
                dilation: tuple[int, ...]) -> Pads:
        """The pads TensorFlow actually applies, (before, after) per spatial axis.

        TF `SAME` puts the odd padding pixel at the end (bottom/right), unlike a symmetric Caffe/PyTorch pad.
        """
        if self.mode is PaddingMode.EXPLICIT:
            return self.pads
        if self.mode is PaddingMode.VALID:
            return tuple((0, 0) for _ in sizes)
        return geometry.resolve_same(sizes, kernel, strides, dilation)


@dataclass(frozen=True)
class ConvSpec:
    """One 2-D convolution, in NHWC input / HWIO kernel terms."""

    input_shape: tuple[int, ...] = DEFAULT_SHAPE
    """Input shape (N, H, W, C)."""
    filters: int = 8
    """Number of output channels."""
    kernel_size: tuple[int, ...] = (3, 3)
    strides: tuple[int, ...] = (1, 1)
    padding: Padding = field(default_factory=Padding.same)
    dilation: tuple[int, ...] = (1, 1)
    use_bias: bool = True
    dtype: str = "float32"
    """Compute dtype of the layer/variables."""
    input_dtype: str | None = None
    """Dtype the input is stored in (None: the compute dtype), e.g. float64 for `image / 255`."""
    seed: int = 42
    initializer: str = "glorot_uniform"
    bias_initializer: str = "zeros"
    input: str = "random"
    """`random` (seeded uniform [0, 1)), `ones`, `image` (synthetic), or a path to .npy/.npz/.png/.jpg."""
    input_layout: str = "NHWC"
    """Layout of an input file (NHWC, NCHW, HWC, CHW, HW); converted to NHWC when read."""
    weights: str | None = None
    """A .npy/.npz kernel file: every backend uses it instead of an initializer."""
    weights_layout: str = "HWIO"
    """Layout of the kernel in `weights` (HWIO, OIHW, OHWI, IOHW, or any order of H, W, I, O)."""
    bias: str | None = None
    """A .npy/.npz bias file (needs `weights`); overrides the bias held in a weights .npz."""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def effective_input_dtype(self) -> str:
        return self.input_dtype or self.variable_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype kernels and biases are stored in (float32 for the tf32 emulation)."""
        return "float32" if self.dtype == "tf32" else self.dtype

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape[1:-1])

    @property
    def in_channels(self) -> int:
        return self.input_shape[-1]

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """HWIO."""
        return (*self.kernel_size, self.in_channels, self.filters)

    @property
    def dilated_kernel(self) -> tuple[int, ...]:
        return tuple(geometry.dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    @property
    def pads(self) -> Pads:
        return self.padding.resolve(self.spatial_shape, self.kernel_size, self.strides, self.dilation)

    @property
    def padded_shape(self) -> tuple[int, ...]:
        return tuple(n + a + b for n, (a, b) in zip(self.spatial_shape, self.pads))

    @property
    def output_shape(self) -> tuple[int, ...]:
        spatial = geometry.output_sizes(self.spatial_shape, self.pads, self.kernel_size, self.strides, self.dilation)
        return (self.input_shape[0], *spatial, self.filters)

    @property
    def dot_length(self) -> int:
        """K = kh * kw * C_in: the length of every dot product the convolution computes."""
        return geometry.dot_length(self.kernel_size, self.in_channels)

    def replace(self, **changes: Any) -> ConvSpec:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding.to_json(),
            "pads": [list(p) for p in self.pads],
            "dilation": list(self.dilation),
            "use_bias": self.use_bias,
            "dtype": self.dtype,
            "input_dtype": self.effective_input_dtype,
            "seed": self.seed,
            "initializer": self.initializer,
            "bias_initializer": self.bias_initializer,
            "input": self.input,
            "input_layout": self.input_layout,
            "weights": self.weights,
            "weights_layout": self.weights_layout,
            "bias": self.bias,
            "output_shape": list(self.output_shape),
        }


# Keys of `ConvSpec.to_json()` derived from the others: recomputed, never parsed back.
DERIVED_KEYS = frozenset({"pads", "output_shape"})


def validate(spec: ConvSpec) -> None:
    """Raise BadInputError with a one-line message if `spec` is not a valid convolution."""
    from convdiff.spec.layouts import parse_input_layout, parse_weights_layout

    if len(spec.input_shape) != 4:
        raise BadInputError(f"input shape must have 4 dimensions (N,H,W,C), got {fmt_values(spec.input_shape)}")
    for name, values in (("input shape", spec.input_shape), ("kernel size", spec.kernel_size),
                         ("strides", spec.strides), ("dilation", spec.dilation), ("filters", (spec.filters,))):
        if any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in values):
            raise BadInputError(f"{name} must be positive integers, got {fmt_values(values)}")
    rank = len(spec.spatial_shape)
    for name, values in (("kernel size", spec.kernel_size), ("strides", spec.strides), ("dilation", spec.dilation),
                         ("padding", spec.padding.pads)):
        if len(values) != rank:
            raise BadInputError(f"{name} needs {rank} values (one per spatial axis), got {len(values)}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**32:
        # NumPy's generators and Keras' seeds are unsigned 32-bit: anything else fails deep inside them.
        raise BadInputError(f"seed must be an integer in [0, 2**32), got {spec.seed!r}")
    if any(p < 0 for pair in spec.padding.pads for p in pair):
        raise BadInputError(f"padding must not be negative, got {spec.padding}")
    for name, choices in (("dtype", COMPUTE_DTYPES), ("input_dtype", FLOAT_DTYPES)):
        value = getattr(spec, name)
        if value is not None and value not in choices:
            raise BadInputError(f"unknown {name} '{value}' (choose from {', '.join(choices)})")
    parse_input_layout(spec.input_layout)
    parse_weights_layout(spec.weights_layout)
    padded = spec.padded_shape
    if any(k > n for k, n in zip(spec.dilated_kernel, padded)):
        dil = f" (dilated {fmt_values(spec.dilated_kernel)})" if any(d != 1 for d in spec.dilation) else ""
        raise SpecConflictError(f"kernel {fmt_values(spec.kernel_size)}{dil} is larger than the padded input "
                            f"{fmt_values(padded)} (padding {spec.padding})")
    # A stride longer than the padded input can never be applied: only the first window exists, in
    # every padding mode. TensorFlow accepts it silently; here it is almost certainly a typo.
    if any(s > n for s, n in zip(spec.strides, padded)):
        raise SpecConflictError(
            f"strides {fmt_values(spec.strides)} are larger than the padded input {fmt_values(padded)} "
            f"(padding {spec.padding}): only one window would fit and the stride would never apply")


def parse_padding(value: Any) -> Padding:
    """`same`, `valid`, an int (symmetric), `h,w`, `top,bottom,left,right`, or [[t,b],[l,r]]."""
    if isinstance(value, str) and value.strip().lower() in ("same", "valid"):
        return Padding(PaddingMode(value.strip().lower()))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (list, tuple)) for v in value):
        flat = parse_ints([v for pair in value for v in pair], "padding")
        if len(flat) != 4 or any(len(pair) != 2 for pair in value):  # [[1, 2, 3], [1]] is no pair of pairs
            raise BadInputError(f"malformed padding {value!r}: expected [[top,bottom],[left,right]]")
        return Padding.explicit(*flat)
    if isinstance(value, bool) or not isinstance(value, (str, int, list, tuple)):
        raise BadInputError(f"malformed padding {value!r}: expected same, valid, an integer, h,w or "
                            "top,bottom,left,right")
    try:
        values = parse_ints(value, "padding")
    except BadInputError:
        raise BadInputError(
            f"malformed padding '{value}': expected same, valid, an integer, h,w or top,bottom,left,right") from None
    if any(v < 0 for v in values):
        raise BadInputError(f"padding must not be negative, got '{value}'")
    if len(values) == 1:
        return Padding.explicit(values[0], values[0], values[0], values[0])
    if len(values) == 2:
        return Padding.explicit(values[0], values[0], values[1], values[1])
    if len(values) == 4:
        return Padding.explicit(*values)
    raise BadInputError(f"malformed padding '{value}': expected 1, 2 or 4 integers")


def default_shape_for(input_source: str) -> tuple[int, ...]:
    return IMAGE_SHAPE if input_source == "image" else DEFAULT_SHAPE
