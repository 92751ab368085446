"""The ONE table of spec fields. CLI options, experiment-file keys, `--set SIDE.FIELD=VALUE` and sweep
axes are all derived from it, so a field added here is a field everywhere.

Values are parsed by the field's parser into typed values; command-line text is marked `CliText` so
that booleans and numbers may be spelled as text there, and only there (a TOML string "false" is an
error, not a boolean).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from convdiff.errors import BadInputError
from convdiff.spec.convspec import CONVENTIONS, DATA_FORMATS, DEVICES, ORT_OPTIMIZATIONS, RANKS, parse_padding
from convdiff.spec.dtypes import COMPUTE_DTYPES, FLOAT_DTYPES
from convdiff.spec.initializers import parse_initializer
from convdiff.spec.layer_ref import parse_weights
from convdiff.spec.layouts import parse_input_layout, parse_weights_layout
from convdiff.spec.parse import (CliText, parse_bool, parse_choice, parse_path, parse_per_axis, parse_positive_int,
                                 parse_shape, parse_single_int)


def _initializer(value: Any) -> str:
    if not isinstance(value, str):
        raise BadInputError(f"an initializer must be a name such as glorot_uniform, got {value!r}")
    return str(parse_initializer(value))


def _input(value: Any) -> str:
    return parse_path(value, "input")


def _rank(value: Any) -> int:
    rank = parse_single_int(value, "rank")
    if rank not in RANKS:
        raise BadInputError(f"rank must be 1, 2 or 3 (spatial axes), got {rank}")
    return rank


@dataclass(frozen=True)
class Field:
    """One spec field and every way a user can set it."""

    name: str
    """The spec attribute, the experiment-file key and the `--set` name."""
    parse: Callable[[Any], Any]
    metavar: str
    help: str
    """Help of the command-line option (compare and the commands that build one convolution)."""
    flags: tuple[str, ...] = ()
    """Command-line spellings; empty when the CLI spells it its own way (`--bias [PATH]` / `--no-bias`)."""
    sweep_flag: str | None = None
    """The sweep option of this axis; None when the field cannot be swept."""
    sweep_help: str = ""
    aliases: tuple[str, ...] = ()
    """Other keys accepted in files, `--set` and grid files."""
    is_flag: bool = False
    """A boolean the command line spells as a bare flag (`--transposed`); files and sweeps give true/false."""


FIELDS: tuple[Field, ...] = (
    Field("input_shape", parse_shape, "N,H,W,C",
          "Input shape, channels-last: N,H,W,C (or H,W,C); N,W,C with --rank 1, N,D,H,W,C with --rank 3. "
          "Default: from --input (1,32,32,3; 1,427,640,3 for image; 1,32,3 and 1,8,16,16,3 for ranks 1 and 3).",
          ("--shape",), "--shape", "Input shapes, written 1x16x16x4 (or separated by ';')", ("shape",)),
    Field("rank", _rank, "1|2|3", "Spatial axes: 1 (Conv1D), 2 (Conv2D) or 3 (Conv3D). Default 2.",
          ("--rank",), "--rank", "Ranks (spatial axes), e.g. 1,2,3"),
    Field("filters", lambda v: parse_positive_int(v, "filters"), "N", "Output channels. Default 8.",
          ("--filters",), "--filters", "Output channels"),
    Field("kernel_size", lambda v: parse_per_axis(v, "kernel size"), "K|KH,KW",
          "Kernel size: one value, or one per spatial axis. Default 3.",
          ("--kernel-size",), "--kernel-size", "Kernel sizes, e.g. 1,3,5 (one per axis: 1x3)"),
    Field("strides", lambda v: parse_per_axis(v, "strides"), "S|SH,SW",
          "Strides: one value, or one per spatial axis. Default 1.",
          ("--strides",), "--strides", "Strides, e.g. 1,2 (one per axis: 1x2)"),
    Field("padding", parse_padding, "P",
          "same (= same_upper) | same_lower (ONNX's: the odd pad first) | valid | P (every side) | one per axis (PH,PW) | before,after per axis (TOP,BOTTOM,LEFT,RIGHT). "
          "Transposed: PyTorch's padding (crops). Default same.",
          ("--padding",), "--padding", "Paddings, e.g. same,valid,1 (explicit pairs: 1x2 or 0x1x0x1)"),
    Field("dilation", lambda v: parse_per_axis(v, "dilation"), "D|DH,DW",
          "Dilation rate: one value, or one per spatial axis. Default 1.",
          ("--dilation",), "--dilation", "Dilation rates, e.g. 1,2"),
    Field("groups", lambda v: parse_positive_int(v, "groups"), "G",
          "Grouped convolution: G groups (must divide the input channels and --filters); depthwise when G equals "
          "the input channels (--filters = channels x multiplier). Default 1.",
          ("--groups",), "--groups", "Group counts, e.g. 1,2,4"),
    Field("transposed", lambda v: parse_bool(v, "transposed"), "",
          "The transposed convolution (the gradient of the forward one; Conv2DTranspose, ConvTranspose2d).",
          ("--transposed",), "--transposed", "true,false", is_flag=True),
    Field("output_padding", lambda v: parse_per_axis(v, "output padding"), "P|PH,PW",
          "Extra output positions at the end of each axis of a transposed convolution (PyTorch's output_padding; "
          "smaller than the stride or the dilation). Default 0.",
          ("--output-padding",), "--output-padding", "Output paddings of a transposed convolution, e.g. 0,1"),
    Field("data_format", lambda v: parse_choice(v, DATA_FORMATS, "data format"), "FORMAT",
          "The layout a framework layer computes in: channels_last (NHWC) or channels_first (NCHW), Keras' "
          "data_format and tf.nn's; input files keep --input-layout. Default channels_last.",
          ("--data-format",), "--data-format", "Data formats: channels_last,channels_first"),
    Field("convention", lambda v: parse_choice(v, CONVENTIONS, "convention"), "NAME",
          "correlation (what deep-learning frameworks compute) or convolution (the kernel rotated 180 degrees: "
          "MATLAB conv2, scipy.signal.convolve; the numpy and scipy backends only). Default correlation.",
          ("--convention",), "--convention", "Conventions: correlation,convolution"),
    Field("ort_optimization", lambda v: parse_choice(v, ORT_OPTIMIZATIONS, "ort_optimization"), "LEVEL",
          "The onnxruntime backend's graph optimisation level: disabled, basic, extended or all (ONNX Runtime's "
          "own default). Default disabled (fusions can change results); other backends ignore it.",
          (), "--ort-optimization", "ONNX Runtime optimisation levels, e.g. disabled,all"),
    Field("transpose_kernel", lambda v: parse_bool(v, "transpose_kernel"), "BOOL",
          "The flax backend's ConvTranspose(transpose_kernel=...): true (default) flips the kernel, the transposed "
          "convolution every other backend computes; false is Flax's own default, an un-flipped kernel (other "
          "backends refuse false for a transposed convolution).",
          ()),
    Field("device", lambda v: parse_choice(v, DEVICES, "device"), "cpu|gpu",
          "Where a framework backend runs: cpu, or gpu (the first GPU the framework sees; exit 3 when it sees "
          "none). TensorFlow (nn, keras, keras-call), torch, keras-jax and keras-torch; the NumPy references run "
          "on CPU only (e.g. --set candidate.device=gpu). Default cpu.",
          ("--device",), "--device", "Devices: cpu,gpu"),
    Field("use_bias", lambda v: parse_bool(v, "use_bias"), "BOOL", "Add a bias.",
          (), "--use-bias", "true,false"),
    Field("dtype", lambda v: parse_choice(v, COMPUTE_DTYPES, "dtype"), "DTYPE",
          "Compute dtype: float16, bfloat16, float32, float64 (tf32: the numpy reference only). Default float32.",
          ("--dtype",), "--dtype", "Compute dtypes, e.g. float32,float64"),
    Field("input_dtype", lambda v: parse_choice(v, FLOAT_DTYPES, "input dtype"), "DTYPE",
          "Dtype the input is stored in (e.g. float64 for image/255). Default: --dtype.",
          ("--input-dtype",), "--input-dtype", "Input storage dtypes"),
    Field("initializer", _initializer, "INIT",
          "Kernel initializer, e.g. ones, glorot_uniform, xavier, 'truncated_normal(stddev=0.1)'. "
          "Default glorot_uniform. `convdiff list` shows all.",
          ("--init", "--initializer"), "--init", "Kernel initializers (separate with ';' when one has arguments)",
          ("init",)),
    Field("bias_initializer", _initializer, "INIT", "Bias initializer. Default zeros.",
          ("--bias-init",), "--bias-init", "Bias initializers", ("bias_init",)),
    Field("input", _input, "SOURCE",
          "random (seeded uniform [0,1)), ones, image (synthetic 427x640x3), or a .npy/.npz/.png/.jpg path. "
          "Default random.",
          ("--input",), "--input", "Input sources: random, ones, image, or files"),
    Field("seed", lambda v: parse_single_int(v, "seed"), "N", "Seed for kernels and the random input. Default 42.",
          ("--seed",), "--seed", "Seeds"),
    Field("input_layout", parse_input_layout, "LAYOUT",
          "Layout of an --input .npy/.npz: NHWC, NCHW, HWC, CHW, HW (NWC, NCW, ... for rank 1; NDHWC, NCDHW, ... "
          "for rank 3). Default: channels-last (NHWC).", ("--input-layout",)),
    Field("weights", parse_weights, "PATH|FILE#LAYER",
          "Kernel from a .npy, a .npz with keys kernel and optional bias, or one layer of a model file "
          "(.caffemodel, .pt/.pth, .safetensors, .keras/.h5, .onnx) as FILE#LAYER; every backend uses it.",
          ("--weights",)),
    Field("weights_layout", parse_weights_layout, "LAYOUT",
          "Layout of --weights: HWIO, OIHW, OHWI, IOHW, HWCM (depthwise), HWOI (transposed), or any order of the "
          "letters (D, H, W, I, O). Default: HWIO (HWOI for --transposed); for FILE#LAYER the layout the model "
          "file stores.",
          ("--weights-layout",)),
    Field("bias", lambda v: parse_path(v, "bias"), "PATH",
          "A .npy/.npz bias file (needs --weights); on the command line, --bias PATH."),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
ALIASES: dict[str, str] = {alias: f.name for f in FIELDS for alias in f.aliases}


@dataclass(frozen=True)
class ShapeAxis:
    """A sweep axis that sets dimensions of the input shape rather than a field of its own."""

    name: str
    sweep_flag: str
    role: str
    """`batch` (the first dimension), `spatial` (every spatial dimension) or `channels` (the last)."""
    sweep_help: str

    def dims(self, rank: int) -> tuple[int, ...]:
        """Indices into an input shape of `rank` spatial axes that take the value."""
        if self.role == "batch":
            return (0,)
        if self.role == "channels":
            return (rank + 1,)
        return tuple(range(1, rank + 1))


# Placed right after input_shape in the sweep's axis order.
SHAPE_AXES: tuple[ShapeAxis, ...] = (
    ShapeAxis("batch", "--batch", "batch", "Batch sizes N"),
    ShapeAxis("input_size", "--input-size", "spatial", "Input sizes: every spatial dimension (H = W)"),
    ShapeAxis("channels", "--channels", "channels", "Input channels C"),
)


def field_name(key: str) -> str | None:
    """The canonical field for a key as written (`kernel-size`, `shape`, `init`), or None."""
    name = key.strip().replace("-", "_")
    name = ALIASES.get(name, name)
    return name if name in BY_NAME else None


def known_keys() -> str:
    return ", ".join(f.name for f in FIELDS)


def parse_fields(raw: Mapping[str, Any], where: str = "", *, typed_text: bool = False) -> dict[str, Any]:
    """Parse user-given spec fields by name into typed values; unknown names are an error.

    Args:
        raw: {key as written: value}.
        where: appended to messages, e.g. " in --set candidate.".
        typed_text: the values are command-line text, where `true` and `3` may be spelled as text.
    """
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        name = field_name(str(key))
        if name is None:
            raise BadInputError(f"unknown spec field '{key}'{where} (known: {known_keys()})")
        if typed_text and isinstance(value, str):
            value = CliText(value)
        parsed[name] = BY_NAME[name].parse(value)
    return parsed
