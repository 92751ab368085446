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
DEFAULT_SHAPES = {1: (1, 32, 3), 2: DEFAULT_SHAPE, 3: (1, 8, 16, 16, 3)}
"""The default input shape of each rank (N, spatial..., C)."""
RANKS = (1, 2, 3)
DATA_FORMATS = ("channels_last", "channels_first")
CONVENTIONS = ("correlation", "convolution")
ORT_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")
"""ONNX Runtime's graph optimisation levels (ORT_DISABLE_ALL, ORT_ENABLE_BASIC, _EXTENDED, _ALL)."""
DEVICES = ("cpu", "gpu")
SHAPE_LETTERS = {1: "N,W,C", 2: "N,H,W,C", 3: "N,D,H,W,C"}


class PaddingMode(StrEnum):
    SAME = "same"
    """TF `SAME` (ONNX `SAME_UPPER`): ceil(size / stride) outputs, the odd pad at the end."""
    SAME_LOWER = "same_lower"
    """ONNX `SAME_LOWER`: the same total pad, the odd one at the start (forward convolutions only)."""
    VALID = "valid"
    EXPLICIT = "explicit"


@dataclass(frozen=True)
class Padding:
    """TF-style padding: `same` (= `same_upper`), `same_lower`, `valid`, or explicit (before, after) pads per
    spatial axis.

    For a transposed convolution explicit pads are PyTorch's `padding`: the full scatter is cropped by
    them (`geometry.transposed_explicit_crops`).
    """

    mode: PaddingMode
    pads: Pads = ((0, 0), (0, 0))
    spelled: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    """The integers as written (`1`, `1,2`, `0,1,0,1`): their meaning depends on the rank, so a spec
    resolves them for its own (`for_rank`)."""

    @classmethod
    def same(cls) -> Padding:
        return cls(PaddingMode.SAME)

    @classmethod
    def valid(cls) -> Padding:
        return cls(PaddingMode.VALID)

    @classmethod
    def explicit(cls, top: int, bottom: int, left: int, right: int) -> Padding:
        return cls(PaddingMode.EXPLICIT, ((top, bottom), (left, right)))

    @classmethod
    def from_pairs(cls, pairs: Pads) -> Padding:
        """Explicit (before, after) pads, one pair per spatial axis."""
        return cls(PaddingMode.EXPLICIT, tuple((int(a), int(b)) for a, b in pairs))

    @classmethod
    def from_values(cls, values: tuple[int, ...]) -> Padding:
        """Explicit pads as written; resolved as 2-D pads where they can be (the rank is not known yet)."""
        pairs = _pairs_for_rank(values, 2) if len(values) in (1, 2, 4) else ()
        return cls(PaddingMode.EXPLICIT, pairs, spelled=tuple(values))

    def for_rank(self, rank: int) -> Padding:
        """This padding for a spec of `rank` spatial axes (written integers resolved for that rank)."""
        if self.mode is not PaddingMode.EXPLICIT or self.spelled is None:
            return self
        return Padding(PaddingMode.EXPLICIT, _pairs_for_rank(self.spelled, rank))

    @property
    def symmetric(self) -> bool:
        return self.mode is PaddingMode.EXPLICIT and all(a == b for a, b in self.pads)

    def __str__(self) -> str:
        if self.mode is not PaddingMode.EXPLICIT:
            return self.mode.value
        if not self.pads:
            return ",".join(map(str, self.spelled or ()))
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
        """The pads TensorFlow actually applies to a forward convolution, (before, after) per spatial axis.

        TF `SAME` puts the odd padding pixel at the end (bottom/right), unlike a symmetric Caffe/PyTorch pad;
        ONNX's `SAME_LOWER` puts it at the start.
        """
        if self.mode is PaddingMode.EXPLICIT:
            return self.pads
        if self.mode is PaddingMode.VALID:
            return tuple((0, 0) for _ in sizes)
        return geometry.resolve_same(sizes, kernel, strides, dilation, lower=self.mode is PaddingMode.SAME_LOWER)


def _pairs_for_rank(values: tuple[int, ...], rank: int) -> Pads:
    """1 integer: every side; `rank` integers: each axis symmetric; 2 * rank: (before, after) per axis."""
    if len(values) == 1:
        return ((values[0], values[0]),) * rank
    if len(values) == rank:
        return tuple((v, v) for v in values)
    if len(values) == 2 * rank:
        return tuple((values[2 * i], values[2 * i + 1]) for i in range(rank))
    raise BadInputError(f"malformed padding '{','.join(map(str, values))}' for rank {rank}: expected 1 integer, "
                        f"{rank} (one per axis) or {2 * rank} (before,after per axis)")


@dataclass(frozen=True)
class ConvSpec:
    """One convolution (1-D, 2-D or 3-D; forward or transposed; grouped or not), in channels-last input
    and canonical kernel terms (`convdiff.spec.layouts`).

    Per-axis fields (kernel size, strides, dilation, output padding) take one value for every axis or
    one per axis; the spec broadcasts and checks them. A 2-D input shape may omit the batch (H,W,C).
    """

    input_shape: tuple[int, ...] | None = None
    """Input shape (N, spatial..., C); None: the default of the rank (1,32,32,3 in 2-D)."""
    filters: int = 8
    """Number of output channels."""
    kernel_size: tuple[int, ...] = (3,)
    strides: tuple[int, ...] = (1,)
    padding: Padding = field(default_factory=Padding.same)
    dilation: tuple[int, ...] = (1,)
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
    input_layout: str | None = None
    """Layout of an input file (NHWC, NCHW, HWC, ...; NWC, NDHWC, ... for other ranks); None: channels-last."""
    weights: str | None = None
    """A .npy/.npz kernel file: every backend uses it instead of an initializer."""
    weights_layout: str | None = None
    """Layout of the kernel in `weights` (HWIO, OIHW, HWCM, HWOI, IOHW, ... or any order of the letters);
    None: the canonical layout of the kind (HWIO, or HWOI for a transposed convolution)."""
    bias: str | None = None
    """A .npy/.npz bias file (needs `weights`); overrides the bias held in a weights .npz."""
    rank: int = 2
    """Spatial axes: 1 (N,W,C), 2 (N,H,W,C) or 3 (N,D,H,W,C)."""
    groups: int = 1
    """Grouped convolution; depthwise when it equals the input channels."""
    transposed: bool = False
    """The transposed convolution (the gradient of the forward one with respect to its input)."""
    output_padding: tuple[int, ...] = (0,)
    """Extra output positions at the end of each axis of a transposed convolution (PyTorch's output_padding)."""
    data_format: str = "channels_last"
    """The layout a framework layer computes in (Keras' data_format; tf.nn's NHWC/NCHW)."""
    convention: str = "correlation"
    """`correlation` (what deep-learning frameworks compute) or `convolution` (the kernel rotated 180
    degrees in every spatial axis: MATLAB conv2, scipy.signal.convolve)."""
    ort_optimization: str = "disabled"
    """The onnxruntime backend's graph optimisation level (disabled, basic, extended, all); other backends
    ignore it. Off by default: fusions can change results."""
    transpose_kernel: bool = True
    """The flax backend's `ConvTranspose(transpose_kernel=...)`: True flips the kernel (the gradient of the
    forward convolution, what every other backend computes); False is Flax's own default, which does not."""
    device: str = "cpu"
    """Where a framework backend runs: `cpu`, or `gpu` (its first GPU; exit 3 when it sees none)."""

    def __post_init__(self) -> None:
        _complete(self)
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
    def depthwise(self) -> bool:
        """groups == C_in > 1: each input channel convolved on its own (C_out = C_in * multiplier)."""
        return self.groups > 1 and self.groups == self.in_channels

    @property
    def multiplier(self) -> int:
        """Output channels per group (the depth multiplier of a depthwise convolution)."""
        return self.filters // self.groups

    @property
    def channels_first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Canonical: (*k, C_in/groups, C_out) forward, (*k, C_out/groups, C_in) transposed."""
        if self.transposed:
            return (*self.kernel_size, self.filters // self.groups, self.in_channels)
        return (*self.kernel_size, self.in_channels // self.groups, self.filters)

    @property
    def draw_shape(self) -> tuple[int, ...]:
        """The shape an initializer draws the kernel in (its fans come from it): the canonical one, except a
        1-D or 2-D depthwise kernel, drawn as Keras' DepthwiseConv1D/2D and tf.nn.depthwise_conv2d hold it,
        (*k, C, M), and reshaped to the canonical (*k, 1, C*M)."""
        if self.depthwise and not self.transposed and self.rank <= 2:
            return (*self.kernel_size, self.in_channels, self.multiplier)
        return self.kernel_shape

    @property
    def kernel_layout(self) -> str:
        """The letters of the canonical kernel layout (HWIO; HWOI transposed; WIO, DHWIO, ...)."""
        from convdiff.spec.layouts import kernel_layout_for

        return kernel_layout_for(self.rank, self.transposed)

    @property
    def dilated_kernel(self) -> tuple[int, ...]:
        return tuple(geometry.dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    @property
    def pads(self) -> Pads:
        """Forward: the (before, after) pads of the input. Transposed: the (before, after) crops of the full
        scatter (negative where output positions lie beyond it)."""
        if not self.transposed:
            return self.padding.resolve(self.spatial_shape, self.kernel_size, self.strides, self.dilation)
        if self.padding.mode is PaddingMode.SAME:
            return tuple(geometry.transposed_same_crops(n, k, s, d) for n, k, s, d in
                         zip(self.spatial_shape, self.kernel_size, self.strides, self.dilation))
        pads = self.padding.pads if self.padding.mode is PaddingMode.EXPLICIT else ((0, 0),) * self.rank
        return tuple(geometry.transposed_explicit_crops(p, op) for p, op in zip(pads, self.output_padding))

    @property
    def padded_shape(self) -> tuple[int, ...]:
        return tuple(n + a + b for n, (a, b) in zip(self.spatial_shape, self.pads))

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.transposed:
            spatial = geometry.transposed_output_sizes(self.spatial_shape, self.pads, self.kernel_size, self.strides,
                                                       self.dilation)
        else:
            spatial = geometry.output_sizes(self.spatial_shape, self.pads, self.kernel_size, self.strides,
                                            self.dilation)
        return (self.input_shape[0], *spatial, self.filters)

    @property
    def dot_length(self) -> int:
        """K: the length of the longest dot product the convolution computes (taps x C_in / groups)."""
        return geometry.dot_length(self.kernel_size, self.in_channels, self.groups, transposed=self.transposed,
                                   strides=self.strides, dilation=self.dilation)

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
            "rank": self.rank,
            "groups": self.groups,
            "transposed": self.transposed,
            "output_padding": list(self.output_padding),
            "data_format": self.data_format,
            "convention": self.convention,
            "ort_optimization": self.ort_optimization,
            "transpose_kernel": self.transpose_kernel,
            "device": self.device,
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


def _complete(spec: ConvSpec) -> None:
    """Fill in what depends on the rank: default shape and layouts, per-axis values given once, the
    batch of a single 2-D image (H,W,C), written pads. Malformed values are left for `validate`."""
    from convdiff.spec.layouts import input_layout_for, kernel_layout_for

    rank = spec.rank
    if isinstance(rank, bool) or rank not in RANKS:
        raise BadInputError(f"rank must be 1, 2 or 3 (spatial axes), got {rank!r}")

    def put(name: str, value: Any) -> None:
        object.__setattr__(spec, name, value)

    shape = spec.input_shape
    if shape is None:
        shape = DEFAULT_SHAPES[rank]
    shape = tuple(shape)
    if rank == 2 and len(shape) == 3:  # H,W,C: a single image
        shape = (1, *shape)
    put("input_shape", shape)
    for name in ("kernel_size", "strides", "dilation", "output_padding"):
        put(name, per_axis(getattr(spec, name), rank))
    if isinstance(spec.padding, Padding):
        put("padding", spec.padding.for_rank(rank))
    if spec.input_layout is None:
        put("input_layout", input_layout_for(rank))
    if spec.weights_layout is None:
        put("weights_layout", kernel_layout_for(rank, bool(spec.transposed)))


def validate(spec: ConvSpec) -> None:
    """Raise BadInputError with a one-line message if `spec` is not a valid convolution."""
    from convdiff.spec.layouts import layout_rank, parse_input_layout, parse_weights_layout

    rank = spec.rank
    # The layouts first: a file read in another rank's layout explains a shape of the wrong length.
    parse_input_layout(spec.input_layout)
    parse_weights_layout(spec.weights_layout)
    for what, layout in (("input layout", spec.input_layout), ("weights layout", spec.weights_layout)):
        if layout_rank(layout) != rank:
            raise BadInputError(f"{what} {layout} has {layout_rank(layout)} spatial axes, the spec has rank {rank}")
    if len(spec.input_shape) != rank + 2:
        other = {4: 2, 3: 1, 5: 3}.get(len(spec.input_shape))
        hint = f"; {len(spec.input_shape)} dimensions are a rank-{other} shape (--rank {other})" if other else ""
        raise BadInputError(f"malformed input shape '{','.join(map(str, spec.input_shape))}': expected "
                            f"{SHAPE_LETTERS[rank]}{' (or H,W,C)' if rank == 2 else ''} for rank {rank}{hint}")
    for name, values in (("input shape", spec.input_shape), ("kernel size", spec.kernel_size),
                         ("strides", spec.strides), ("dilation", spec.dilation), ("filters", (spec.filters,)),
                         ("groups", (spec.groups,))):
        check_positive_ints(name, values)
    for name, values in (("kernel size", spec.kernel_size), ("strides", spec.strides), ("dilation", spec.dilation),
                         ("output padding", spec.output_padding)):
        if len(values) != rank:
            raise BadInputError(f"{name} needs {rank} values (one per spatial axis) or one, got {len(values)}")
    if spec.padding.mode is PaddingMode.EXPLICIT and len(spec.padding.pads) != rank:
        raise BadInputError(f"padding needs {rank} (before, after) pairs (one per spatial axis), "
                            f"got {len(spec.padding.pads)}")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in spec.output_padding):
        raise BadInputError(f"output padding must be non-negative integers, got {fmt_values(spec.output_padding)}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**32:
        # NumPy's generators and Keras' seeds are unsigned 32-bit: anything else fails deep inside them.
        raise BadInputError(f"seed must be an integer in [0, 2**32), got {spec.seed!r}")
    if any(p < 0 for pair in spec.padding.pads for p in pair):
        raise BadInputError(f"padding must not be negative, got {spec.padding}")
    for name, choices in (("dtype", COMPUTE_DTYPES), ("input_dtype", FLOAT_DTYPES), ("data_format", DATA_FORMATS),
                          ("convention", CONVENTIONS), ("ort_optimization", ORT_OPTIMIZATIONS), ("device", DEVICES)):
        value = getattr(spec, name)
        if value is not None and value not in choices:
            raise BadInputError(f"unknown {name} '{value}' (choose from {', '.join(choices)})")
    for name in ("transposed", "transpose_kernel"):
        if not isinstance(getattr(spec, name), bool):
            raise BadInputError(f"{name} must be true or false, got {getattr(spec, name)!r}")
    _validate_groups(spec)
    if "M" in spec.weights_layout and (spec.transposed or not spec.depthwise):
        raise BadInputError(f"weights layout {spec.weights_layout} (C, M) is a depthwise kernel: it needs "
                            f"groups = input channels ({spec.in_channels}) and no transposed convolution")
    if spec.transposed:
        _validate_transposed(spec)
        return
    if any(spec.output_padding):
        raise BadInputError("output padding applies to transposed convolutions only (--transposed)")
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


def _validate_groups(spec: ConvSpec) -> None:
    g, c_in, c_out = spec.groups, spec.in_channels, spec.filters
    if c_in % g or c_out % g:
        raise BadInputError(f"groups {g} must divide the input channels ({c_in}) and the filters ({c_out})"
                            + (" (depthwise: filters = channels x multiplier)" if g == c_in else ""))


def _validate_transposed(spec: ConvSpec) -> None:
    if spec.padding.mode is PaddingMode.SAME_LOWER:
        # Which side ONNX's ConvTranspose SAME_UPPER/SAME_LOWER crops more has read differently in the ONNX
        # operator text and in ONNX Runtime's kernels: there is no one meaning to compare against.
        raise BadInputError("padding same_lower applies to forward convolutions only; give a transposed "
                            "convolution same (TF's) or explicit pads")
    if spec.padding.mode is PaddingMode.SAME and any(spec.output_padding):
        raise BadInputError("output padding cannot be combined with padding same: a transposed SAME convolution "
                            "has input x stride outputs; give valid or explicit pads with it")
    for op, s, d in zip(spec.output_padding, spec.strides, spec.dilation):
        if op > geometry.max_output_padding(s, d):
            raise BadInputError(f"output padding {fmt_values(spec.output_padding)} must be smaller than the stride "
                                f"or the dilation on each axis (strides {fmt_values(spec.strides)}, dilation "
                                f"{fmt_values(spec.dilation)}): further positions would receive no input")
    out = spec.output_shape[1:-1]
    if any(n < 1 for n in out):
        raise BadInputError(f"padding {spec.padding} crops the transposed output of kernel "
                            f"{fmt_values(spec.kernel_size)} to nothing (output {fmt_values(out)})")


PADDING_NAMES = {"same": PaddingMode.SAME, "same_upper": PaddingMode.SAME, "same_lower": PaddingMode.SAME_LOWER,
                 "valid": PaddingMode.VALID}
"""Padding modes by name, ONNX's `auto_pad` spellings included (lower case)."""


def per_axis(value: int | tuple[int, ...] | list[int], rank: int) -> tuple[int, ...]:
    """A per-axis value given once for every axis (`2`, `(2,)`) spelled out for `rank` axes (`(2, 2)`)."""
    values = (value,) if isinstance(value, int) else tuple(value)
    return values * rank if len(values) == 1 else values


def check_positive_ints(name: str, values: tuple[int, ...]) -> None:
    """Refuse (one line, exit 2) sizes, strides or counts that are not positive integers."""
    if any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in values):
        raise BadInputError(f"{name} must be positive integers, got {fmt_values(values)}")


def parse_padding(value: Any) -> Padding:
    """`same`, `valid`, an int (every side), one int per axis (symmetric), (before, after) per axis
    (`top,bottom,left,right` in 2-D), or nested pairs [[t, b], [l, r]]. ONNX's auto_pad names are accepted:
    `same_upper` is `same` (TF's), `same_lower` puts the odd pad at the start."""
    if isinstance(value, str) and value.strip().lower() in PADDING_NAMES:
        return Padding(PADDING_NAMES[value.strip().lower()])
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        if not all(len(v) == 2 for v in value) or len(value) > 3:
            raise BadInputError(f"malformed padding {value!r}: expected [[before,after], ...] (one pair per axis)")
        flat = parse_ints([v for pair in value for v in pair], "padding")
        if any(v < 0 for v in flat):
            raise BadInputError(f"padding must not be negative, got {value!r}")
        return Padding.from_pairs(tuple((flat[2 * i], flat[2 * i + 1]) for i in range(len(value))))
    if isinstance(value, bool) or not isinstance(value, (str, int, list, tuple)):
        raise BadInputError(f"malformed padding {value!r}: expected same, same_lower, valid, an integer, h,w or "
                            "top,bottom,left,right")
    try:
        values = parse_ints(value, "padding")
    except BadInputError:
        raise BadInputError(
            f"malformed padding '{value}': expected same, same_lower, valid, an integer, h,w or top,bottom,left,right") from None
    if any(v < 0 for v in values):
        raise BadInputError(f"padding must not be negative, got '{value}'")
    if len(values) not in (1, 2, 3, 4, 6):
        raise BadInputError(f"malformed padding '{value}': expected 1, 2 or 4 integers (3 or 6 in 3-D)")
    return Padding.from_values(values)


def default_shape_for(input_source: str, rank: int = 2) -> tuple[int, ...]:
    if input_source == "image" and rank == 2:
        return IMAGE_SHAPE
    return DEFAULT_SHAPES.get(rank, DEFAULT_SHAPE)
