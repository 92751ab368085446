"""The frozen description of one convolution, and the one place that says whether it is valid.

Everything a user can type (CLI options, experiment-file keys) is parsed here into typed values,
so the backends and the comparison never see bare strings.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from convdiff.errors import BadInputError

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# tf32 is an emulation of the NumPy reference only: float32 storage, multiplicands rounded to TF32.
COMPUTE_DTYPES = (*FLOAT_DTYPES, "tf32")
BUILTIN_INPUTS = ("random", "ones", "image")
# The synthetic image stands in for a decoded photo: the size of the one in the original question.
IMAGE_SHAPE = (1, 427, 640, 3)
DEFAULT_SHAPE = (1, 32, 32, 3)


class PaddingMode(StrEnum):
    SAME = "same"
    VALID = "valid"
    EXPLICIT = "explicit"


Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Padding:
    """TF-style padding: `same`, `valid`, or explicit ((top, bottom), (left, right)) pads."""

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
        (t, b), (l, r) = self.pads
        return self.mode is PaddingMode.EXPLICIT and t == b and l == r

    def __str__(self) -> str:
        if self.mode is not PaddingMode.EXPLICIT:
            return self.mode.value
        (t, b), (l, r) = self.pads
        if t == b == l == r:
            return str(t)
        if self.symmetric:
            return f"{t},{l}"
        return f"{t},{b},{l},{r}"

    def to_json(self) -> str | list[list[int]]:
        if self.mode is not PaddingMode.EXPLICIT:
            return self.mode.value
        return [list(p) for p in self.pads]

    def resolve(self, in_hw: tuple[int, int], kernel_hw: tuple[int, int],
                strides: tuple[int, int], dilation: tuple[int, int]) -> Pads:
        """The pads TensorFlow actually applies, per spatial axis, as ((top, bottom), (left, right)).

        TF `SAME` puts the odd padding pixel at the bottom/right, unlike a symmetric Caffe/PyTorch pad.
        """
        if self.mode is PaddingMode.EXPLICIT:
            return self.pads
        if self.mode is PaddingMode.VALID:
            return ((0, 0), (0, 0))
        out = []
        for size, k, s, d in zip(in_hw, kernel_hw, strides, dilation):
            k_eff = (k - 1) * d + 1
            out_size = -(-size // s)
            total = max((out_size - 1) * s + k_eff - size, 0)
            out.append((total // 2, total - total // 2))
        return (out[0], out[1])


@dataclass(frozen=True)
class ConvSpec:
    """One 2-D convolution, in NHWC input / HWIO kernel terms."""

    input_shape: tuple[int, int, int, int] = DEFAULT_SHAPE
    """Input shape (N, H, W, C)."""
    filters: int = 8
    """Number of output channels."""
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: Padding = field(default_factory=Padding.same)
    dilation: tuple[int, int] = (1, 1)
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
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """HWIO."""
        return (*self.kernel_size, self.input_shape[3], self.filters)

    @property
    def dilated_kernel(self) -> tuple[int, int]:
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation))  # type: ignore[return-value]

    @property
    def pads(self) -> Pads:
        return self.padding.resolve(self.input_shape[1:3], self.kernel_size, self.strides, self.dilation)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        n, h, w, _ = self.input_shape
        (t, b), (l, r) = self.pads
        kh, kw = self.dilated_kernel
        sh, sw = self.strides
        return (n, (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1, self.filters)

    @property
    def dot_length(self) -> int:
        """K = kh * kw * C_in: the length of every dot product the convolution computes."""
        return self.kernel_size[0] * self.kernel_size[1] * self.input_shape[3]

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


def validate(spec: ConvSpec) -> None:
    """Raise BadInputError with a one-line message if `spec` is not a valid convolution."""
    if len(spec.input_shape) != 4:
        raise BadInputError(f"input shape must have 4 dimensions (N,H,W,C), got {_fmt(spec.input_shape)}")
    for name, values in (("input shape", spec.input_shape), ("kernel size", spec.kernel_size),
                         ("strides", spec.strides), ("dilation", spec.dilation), ("filters", (spec.filters,))):
        if any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in values):
            raise BadInputError(f"{name} must be positive integers, got {_fmt(values)}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**32:
        # NumPy's generators and Keras' seeds are unsigned 32-bit: anything else fails deep inside them.
        raise BadInputError(f"seed must be an integer in [0, 2**32), got {spec.seed!r}")
    if any(p < 0 for pair in spec.padding.pads for p in pair):
        raise BadInputError(f"padding must not be negative, got {spec.padding}")
    for name, choices in (("dtype", COMPUTE_DTYPES), ("input_dtype", FLOAT_DTYPES)):
        value = getattr(spec, name)
        if value is not None and value not in choices:
            raise BadInputError(f"unknown {name} '{value}' (choose from {', '.join(choices)})")
    from convdiff.spec.layouts import parse_input_layout, parse_weights_layout

    parse_input_layout(spec.input_layout)
    parse_weights_layout(spec.weights_layout)
    _, h, w, _ = spec.input_shape
    (t, b), (l, r) = spec.pads
    kh, kw = spec.dilated_kernel
    if kh > h + t + b or kw > w + l + r:
        dil = f" (dilated {kh}x{kw})" if spec.dilation != (1, 1) else ""
        raise BadInputError(
            f"kernel {spec.kernel_size[0]}x{spec.kernel_size[1]}{dil} is larger than the padded input "
            f"{h + t + b}x{w + l + r} (padding {spec.padding})")
    # A stride longer than the padded input can never be applied: only the first window exists, in
    # every padding mode. TensorFlow accepts it silently; here it is almost certainly a typo.
    if spec.strides[0] > h + t + b or spec.strides[1] > w + l + r:
        raise BadInputError(
            f"strides {_fmt(spec.strides)} are larger than the padded input {h + t + b}x{w + l + r} "
            f"(padding {spec.padding}): only one window would fit and the stride would never apply")


def _fmt(values: Any) -> str:
    return "x".join(str(v) for v in values)


# --- parsing what users type -------------------------------------------------------------------

_INT = re.compile(r"^\s*-?\d+\s*$")


def parse_ints(text: str | int | list | tuple, what: str) -> tuple[int, ...]:
    """'1,32,32,3', '1x32x32x3', 3, [3, 3] -> tuple of ints."""
    if isinstance(text, bool):
        raise BadInputError(f"{what} must be integers, got {text!r}")
    if isinstance(text, int):
        return (text,)
    if isinstance(text, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in text):
            raise BadInputError(f"{what} must be integers, got {list(text)!r}")
        return tuple(text)
    parts = re.split(r"[x,]", str(text).strip().strip("()[]"))
    if not parts or not all(_INT.match(p) for p in parts):
        raise BadInputError(f"malformed {what} '{text}': expected integers separated by ',' or 'x'")
    return tuple(int(p) for p in parts)


def parse_shape(text: str | list | tuple) -> tuple[int, int, int, int]:
    values = parse_ints(text, "input shape")
    if len(values) == 3:  # H,W,C: a single image
        values = (1, *values)
    if len(values) != 4:
        raise BadInputError(f"malformed input shape '{text}': expected N,H,W,C (or H,W,C)")
    return values  # type: ignore[return-value]


def parse_pair(text: str | int | list | tuple, what: str) -> tuple[int, int]:
    values = parse_ints(text, what)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise BadInputError(f"malformed {what} '{text}': expected one integer or two (h,w)")
    return values  # type: ignore[return-value]


def parse_padding(value: str | int | list | tuple) -> Padding:
    """`same`, `valid`, an int (symmetric), `h,w`, `top,bottom,left,right`, or [[t,b],[l,r]]."""
    if isinstance(value, str) and value.strip().lower() in ("same", "valid"):
        return Padding(PaddingMode(value.strip().lower()))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (list, tuple)) for v in value):
        flat = parse_ints([v for pair in value for v in pair], "padding")
        if len(flat) != 4:
            raise BadInputError(f"malformed padding {value!r}: expected [[top,bottom],[left,right]]")
        return Padding.explicit(*flat)
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


def parse_bool(value: str | bool, what: str) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadInputError(f"malformed {what} '{value}': expected true or false")


def parse_single_int(value: str | int, what: str) -> int:
    values = parse_ints(value, what) if not isinstance(value, int) or isinstance(value, bool) else (value,)
    if len(values) != 1:  # '0x10' and '1,2' are two numbers to parse_ints, never one
        raise BadInputError(f"malformed {what} '{value}': expected one integer")
    return values[0]


def parse_positive_int(value: str | int, what: str) -> int:
    v = parse_single_int(value, what)
    if v <= 0:
        raise BadInputError(f"{what} must be a positive integer, got {v}")
    return v


# Every spec field a user may set by name (CLI `--set`, experiment files), with its parser.
FIELD_PARSERS = {
    "input_shape": parse_shape,
    "shape": parse_shape,
    "filters": lambda v: parse_positive_int(v, "filters"),
    "kernel_size": lambda v: parse_pair(v, "kernel size"),
    "strides": lambda v: parse_pair(v, "strides"),
    "padding": parse_padding,
    "dilation": lambda v: parse_pair(v, "dilation"),
    "use_bias": lambda v: parse_bool(v, "use_bias"),
    "dtype": lambda v: _parse_choice(v, COMPUTE_DTYPES, "dtype"),
    "input_dtype": lambda v: _parse_choice(v, FLOAT_DTYPES, "input dtype"),
    "seed": lambda v: parse_single_int(v, "seed"),
    "initializer": lambda v: _parse_initializer(v),
    "bias_initializer": lambda v: _parse_initializer(v),
    "input": str,
    "input_layout": lambda v: _layouts().parse_input_layout(v),
    "weights": lambda v: _path(v, "weights"),
    "weights_layout": lambda v: _layouts().parse_weights_layout(v),
    "bias": lambda v: _path(v, "bias"),
}
FIELD_ALIASES = {"shape": "input_shape"}


def _layouts():  # noqa: ANN202 - a module, imported late to keep spec.py's imports minimal
    from convdiff.spec import layouts

    return layouts


def _path(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{what} must be a file path, got {value!r}")
    return value.strip()


def _parse_initializer(value: Any) -> str:
    from convdiff.spec.initializers import parse_initializer

    return str(parse_initializer(value))


def _parse_choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise BadInputError(f"unknown {what} '{value}' (choose from {', '.join(choices)})")
    return text


def parse_fields(raw: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Parse user-given spec fields by name into typed values; unknown names are an error."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in FIELD_PARSERS:
            known = ", ".join(sorted(k for k in FIELD_PARSERS if k not in FIELD_ALIASES))
            raise BadInputError(f"unknown spec field '{key}'{where} (known: {known})")
        parsed[FIELD_ALIASES.get(name, name)] = FIELD_PARSERS[name](value)
    return parsed


def default_shape_for(input_source: str) -> tuple[int, int, int, int]:
    return IMAGE_SHAPE if input_source == "image" else DEFAULT_SHAPE


def build_spec(fields: dict[str, Any]) -> ConvSpec:
    """Build a validated spec from parsed fields, filling the input shape from the input source."""
    fields = dict(fields)
    source = fields.get("input", "random")
    if "input_shape" not in fields:
        if source in BUILTIN_INPUTS:
            fields["input_shape"] = default_shape_for(source)
        else:
            from convdiff.data.inputs import file_input_shape

            fields["input_shape"] = file_input_shape(source, fields.get("input_layout", "NHWC"))
    if fields.get("bias") and not fields.get("weights"):
        raise BadInputError("a bias file needs a weights file (--weights / weights = ...)")
    if fields.get("weights"):
        _fields_from_weights(fields)
    try:
        return ConvSpec(**fields)
    except TypeError as exc:  # a wrong type that slipped past parsing
        raise BadInputError(f"invalid spec: {exc}") from None


def _fields_from_weights(fields: dict[str, Any]) -> None:
    """Take kernel size and filters from a weights file, and check it fits the input's channels."""
    from convdiff.spec.layouts import fitting_layouts
    from convdiff.data.weights import load_weights

    layout = fields.get("weights_layout", "HWIO")
    loaded = load_weights(fields["weights"], layout, fields.get("bias"))
    kh, kw, c_in, c_out = loaded.kernel.shape
    channels = fields["input_shape"][3]
    where = f"weights file '{fields['weights']}' ({_fmt(loaded.file_shape)} read as {layout})"
    if c_in != channels:
        fits = fitting_layouts(loaded.file_shape, channels, fields.get("kernel_size"), fields.get("filters"))
        hint = (f"; layouts that fit: {', '.join(fits)}" if fits else "; it fits no layout "
                f"(HWIO, OIHW, OHWI, IOHW) for {channels} input channel(s)")
        raise BadInputError(f"{where} has {c_in} input channel(s), the input has {channels}{hint}")
    for name, value in (("kernel_size", (kh, kw)), ("filters", c_out)):
        if name in fields and fields[name] != value:
            raise BadInputError(f"{where} gives {name} {value}, but {name} is set to {fields[name]}")
    fields["kernel_size"], fields["filters"] = (kh, kw), c_out
