"""A model file's layer as spec fields: the one mapping from a `LayerRecord` to what `--from` sets, and
the one check of which layer kinds this convdiff can run.

Values are written as a TOML file would write them and parsed by the field table
(`convdiff.spec.fields`), so a layer's settings are checked exactly like a user's.

The kinds beyond a standard 2-D convolution (1-D/3-D, grouped and depthwise, transposed, Keras
channels_first) set the spec fields `rank`, `groups`, `transposed`, `output_padding` and `data_format`;
`kind_fields` names the fields a layer needs (and, should the field table ever lack one, refuses the
layer with one line naming its kind rather than running it as something else).
"""

from __future__ import annotations

from typing import Any

from convdiff.data.modelfiles.types import LayerKind, LayerRecord, PadMode, fmt_dims
from convdiff.errors import BadInputError
from convdiff.spec.convspec import per_axis
from convdiff.spec.fields import BY_NAME, parse_fields
from convdiff.spec.geometry import resolve_same

KIND_PHRASES = {
    LayerKind.CONV: "convolution",
    LayerKind.DEPTHWISE: "depthwise convolution",
    LayerKind.GROUPED: "grouped convolution",
    LayerKind.TRANSPOSED: "transposed convolution",
    LayerKind.SEPARABLE_DEPTHWISE: "depthwise step of a separable convolution",
    LayerKind.SEPARABLE_POINTWISE: "pointwise step of a separable convolution",
}


def kind_phrase(record: LayerRecord) -> str:
    """e.g. "2-D depthwise convolution", "2-D grouped convolution (groups 4)"."""
    groups = record.config.groups if record.config is not None else 1
    extra = f" (groups {groups})" if record.kind is LayerKind.GROUPED else ""
    return f"{record.rank}-D {KIND_PHRASES[record.kind]}{extra}"


def kind_fields(record: LayerRecord, configuration: bool) -> dict[str, Any]:
    """The spec fields of the convolution kinds a layer needs beyond a standard 2-D convolution.

    Args:
        record: the layer.
        configuration: also the layer's settings that are not about its kernel (`--from`):
            output_padding and Keras' data_format; without it, only what reading the kernel needs
            (`--weights`).

    Raises:
        BadInputError: a field the layer needs is not in the field table yet (one line, the kind named).
    """
    config = record.config
    wanted: dict[str, Any] = {}
    if record.rank != 2:
        wanted["rank"] = record.rank
    if config is not None and config.groups != 1:
        wanted["groups"] = config.groups
    if record.kind is LayerKind.TRANSPOSED:
        wanted["transposed"] = True
        if configuration and config is not None and config.output_padding and any(config.output_padding):
            wanted["output_padding"] = list(config.output_padding)
    if (configuration and config is not None and record.framework == "Keras"
            and config.data_format == "channels_first"):
        wanted["data_format"] = "channels_first"
    missing = [name for name in wanted if name not in BY_NAME]
    if missing:
        raise BadInputError(f"{record.name} is a {kind_phrase(record)} ({record.described}): this convdiff "
                            f"compares standard 2-D convolutions and cannot run it yet (it needs the spec "
                            f"field{'s' if len(missing) > 1 else ''} {', '.join(missing)})")
    return wanted


def check_kernel(record: LayerRecord, ref: str) -> dict[str, Any]:
    """What reading a layer's kernel as `--weights` sets beyond the kernel: its kind's fields."""
    try:
        return kind_fields(record, configuration=False)
    except BadInputError as exc:
        raise BadInputError(f"{ref}: {exc}") from None


def spec_fields(record: LayerRecord, ref: str, input_shape: tuple[int, ...] | None) -> dict[str, Any]:
    """The spec fields `--from FILE#LAYER` takes from a layer, parsed by the field table.

    Args:
        record: the layer.
        ref: `FILE#LAYER` as the user wrote it (for messages).
        input_shape: NHWC, when known: ONNX SAME_LOWER pads depend on the input's size.
    """
    config = record.config
    if config is None:
        raise BadInputError(
            f"--from {ref}: a PyTorch state_dict records no layer configuration (strides, padding, dilation, "
            f"groups); use --weights {ref} (kernel size, filters and input channels come from its "
            f"{fmt_dims(record.kernel_shape)} kernel) and give --strides, --padding and --dilation")
    raw: dict[str, Any] = {
        "kernel_size": list(config.kernel_size),
        "strides": list(config.strides),
        "padding": _padding(record, ref, input_shape),
        "dilation": list(config.dilation),
        "filters": config.filters,
        "use_bias": config.use_bias,
    }
    try:
        raw.update(kind_fields(record, configuration=True))
        return parse_fields(raw, where=f" of {ref}")
    except BadInputError as exc:
        raise BadInputError(f"--from {ref}: {exc}") from None


def _padding(record: LayerRecord, ref: str, input_shape: tuple[int, ...] | None) -> Any:
    config = record.config
    assert config is not None
    mode = config.padding.mode
    if mode is PadMode.EXPLICIT:
        return [list(pair) for pair in config.padding.pads]
    if mode is PadMode.CAUSAL:  # Keras: all of the kernel's reach before the first element, none after
        return [[(k - 1) * d, 0] for k, d in zip(config.kernel_size, config.dilation)]
    if mode is PadMode.SAME_LOWER:
        if input_shape is None:
            raise BadInputError(f"--from {ref}: auto_pad SAME_LOWER pads depend on the input size; give --shape")
        lower = resolve_same(input_shape[1:-1], config.kernel_size, config.strides, config.dilation, lower=True)
        return [list(pair) for pair in lower]  # explicit: a transposed layer has no same_lower mode
    return mode.value  # same, valid


def layer_input_shape(record: LayerRecord, default: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape a layer implies when the user gives none: the file's declared one, else `default`
    (the input source's default shape) with the layer's input channels."""
    if record.input_shape is not None:
        return record.input_shape
    if record.in_channels is None:
        return default
    return (*default[:-1], record.in_channels)


def agreement(given: dict[str, Any], from_file: dict[str, Any], ref: str) -> None:
    """Options a user gives next to `--from` must say what the file says: else one line naming both."""
    rank = from_file.get("rank", 2)
    for name, value in from_file.items():
        if name in given and not _same(name, given[name], value, rank):
            raise BadInputError(f"{name} {_show(_per_axis(name, given[name], rank))} disagrees with --from {ref}, whose layer has {name} "
                                f"{_show(value)} (leave it out to take the file's, or change one side with "
                                f"--set SIDE.{name}=...)")


def _same(name: str, a: Any, b: Any, rank: int) -> bool:
    """Equal for a spec of `rank` spatial axes: `1` and `1,1` are one stride in 2-D."""
    if name == "padding":  # `valid` and explicit zero pads are one padding
        from convdiff.spec.convspec import PaddingMode

        def norm(p: Any) -> Any:
            try:
                p = p.for_rank(rank)
            except BadInputError:  # spelled for another rank: compared as written
                return p
            if p.mode is PaddingMode.VALID or (p.mode is PaddingMode.EXPLICIT and not any(x for pair in p.pads
                                                                                          for x in pair)):
                return "valid"
            return (p.mode, p.pads)
        return norm(a) == norm(b)

    return _per_axis(name, a, rank) == _per_axis(name, b, rank)


_PER_AXIS = frozenset({"kernel_size", "strides", "dilation", "output_padding"})


def _per_axis(name: str, value: Any, rank: int) -> Any:
    """A per-axis field's value spelled out for `rank` axes (`2` is `2,2` in 2-D); other fields as given."""
    return per_axis(value, rank) if name in _PER_AXIS else value


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
