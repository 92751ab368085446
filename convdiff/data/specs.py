"""Building a spec from parsed fields, with what files say filled in (an input file's shape, a weights
file's kernel size and filters, a model file's layer configuration for `--from`). The spec itself
never reads a file; this is where files are read."""

from __future__ import annotations

from typing import Any

from convdiff.errors import BadInputError, SpecConflictError
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec, default_shape_for, per_axis
from convdiff.spec.layer_ref import split_layer_ref
from convdiff.spec.parse import fmt_values

FROM = "from"
"""The key of `--from FILE#LAYER` (and `from = ...` in experiment files): take a model file's layer
configuration. It is not a spec field: the spec holds what it set."""


def build_spec(fields: dict[str, Any], overrides: dict[str, Any] | None = None) -> ConvSpec:
    """Build a validated spec from parsed fields, filling the input shape from the input source.

    Args:
        fields: parsed spec fields (and optionally `from`: FILE#LAYER).
        overrides: one side's own fields (`--set SIDE.FIELD`, a side table of an experiment), applied
            last: they may differ from a `--from` layer's configuration, where `fields` must agree with it.
    """
    fields, overrides = dict(fields), dict(overrides or {})
    layer_from = overrides.pop(FROM, None) or fields.pop(FROM, None)
    fields.pop(FROM, None)
    record = None
    if layer_from is not None:
        from convdiff.data.modelfiles import find_layer

        ref = split_layer_ref(str(layer_from))
        if ref is None:
            raise BadInputError(f"--from needs FILE#LAYER of a model file (.caffemodel, .prototxt, .pt, .pth, "
                                f".safetensors, .keras, .h5, .onnx), got '{layer_from}'")
        record = find_layer(ref)
    merged = {**fields, **overrides}
    source = merged.get("input", "random")
    suspicion = None
    if "input_shape" not in merged:
        layer = record or _weights_layer(merged)
        rank = merged.get("rank", layer.rank if layer is not None else 2)
        if source in BUILTIN_INPUTS:
            shape = default_shape_for(source, rank)
            if layer is not None:
                from convdiff.data.modelfiles.configuration import layer_input_shape

                shape = layer_input_shape(layer, shape)
            fields["input_shape"] = shape
        else:  # from the file's header: the shape is known (and checked) before a byte of data is read
            from convdiff.data.inputs import channels_first_suspicion, file_input_shape

            fields["input_shape"] = file_input_shape(source, merged.get("input_layout"), rank)
            if merged.get("input_layout") is None and rank == 2:
                suspicion = channels_first_suspicion(source, fields["input_shape"])
    elif source not in BUILTIN_INPUTS:
        from convdiff.data.inputs import file_input_shape
        from convdiff.errors import BadFileError

        layer = record or _weights_layer(merged)
        rank = merged.get("rank", layer.rank if layer is not None else 2)
        shape = file_input_shape(source, merged.get("input_layout"), rank)
        if tuple(merged["input_shape"]) != tuple(shape):
            raise BadFileError(f"input file '{source}' has shape {fmt_values(shape)}, the spec expects "
                               f"{fmt_values(merged['input_shape'])}")
    if record is not None:
        from convdiff.data.modelfiles.configuration import agreement, spec_fields

        from_file = spec_fields(record, str(layer_from), {**fields, **overrides}["input_shape"])
        if record.has_weights and "weights" not in merged:
            from_file["weights"] = str(layer_from)
        agreement(fields, from_file, str(layer_from))
        fields.update(from_file)
    fields.update(overrides)
    if fields.get("bias") and not fields.get("weights"):
        raise BadInputError("a bias file needs a weights file (--weights / weights = ...)")
    if fields.get("weights"):
        _fields_from_weights(fields)  # the weights' input channels decide whether the input is read right
    elif suspicion is not None and (record is None or record.in_channels != fields["input_shape"][-1]):
        raise BadInputError(suspicion)
    try:
        return ConvSpec(**fields)
    except TypeError as exc:  # a wrong type that slipped past parsing
        raise BadInputError(f"invalid spec: {exc}") from None


def _weights_layer(fields: dict[str, Any]):  # noqa: ANN202 - LayerRecord | None
    ref = split_layer_ref(fields["weights"]) if fields.get("weights") else None
    if ref is None:
        return None
    from convdiff.data.modelfiles import find_layer

    return find_layer(ref)


def _fields_from_weights(fields: dict[str, Any]) -> None:
    """Take kernel size and filters from a weights file, and check it fits the input's channels."""
    from convdiff.data.weights import load_weights
    from convdiff.spec.layouts import fitting_layouts

    loaded = load_weights(fields["weights"], fields.get("weights_layout"), fields.get("bias"),
                          rank=fields.get("rank", 2), transposed=fields.get("transposed", False),
                          groups=fields.get("groups", 1))
    for name, value in loaded.kind_fields.items():  # a model file's grouped/transposed/N-D layer
        if name in fields and fields[name] != value:
            raise BadInputError(f"weights {fields['weights']} give {name} {value}, but {name} is set to {fields[name]}")
        fields[name] = value
    layout = loaded.layout
    fields.setdefault("weights_layout", layout)
    rank, transposed, groups = fields.get("rank", 2), fields.get("transposed", False), fields.get("groups", 1)
    kernel = loaded.kernel.shape
    channels = fields["input_shape"][-1]
    where = f"weights file '{fields['weights']}' ({fmt_values(loaded.file_shape)} read as {layout})"
    if transposed:
        c_in, c_out, per_group = kernel[-1], kernel[-2] * groups, ""
    else:
        c_in, c_out = kernel[-2] * groups, kernel[-1]
        per_group = f" ({kernel[-2]} per group x {groups} groups)" if groups > 1 else ""
    if c_in != channels:
        fits = fitting_layouts(loaded.file_shape, channels, _per_axis(fields.get("kernel_size"), rank),
                               fields.get("filters"), rank=rank, transposed=transposed, groups=groups)
        named = ", ".join(("HWOI", "IOHW") if transposed else ("HWIO", "OIHW", "OHWI", "IOHW"))
        hint = (f"; layouts that fit: {', '.join(fits)}" if fits else f"; it fits no layout ({named}) for "
                f"{channels} input channel(s)")
        shape = fields["input_shape"]
        if (fields.get("input_layout") is None and rank == 2 and len(shape) == 4 and shape[1] == c_in
                and not transposed):
            hint = (f"; the input file {fmt_values(shape)} read as NHWC has {channels} channel(s), as NCHW "
                    f"{shape[1]}: give --input-layout NCHW")
        elif not transposed and groups == 1 and channels % kernel[-2] == 0 and channels != kernel[-2]:
            hint += f" (or a grouped kernel: --groups {channels // kernel[-2]})"
        raise SpecConflictError(f"{where} has {c_in} input channel(s){per_group}, the input has {channels}{hint}")
    for name, value in (("kernel_size", tuple(kernel[:rank])), ("filters", c_out)):
        given = _per_axis(fields.get(name), rank) if name == "kernel_size" else fields.get(name)
        if given is not None and given != value:
            raise BadInputError(f"{where} gives {name} {fmt_values(value) if name == 'kernel_size' else value}, "
                                f"but {name} is set to {fmt_values(given) if name == 'kernel_size' else given}")
    fields["kernel_size"], fields["filters"] = tuple(kernel[:rank]), c_out


def _per_axis(values: tuple[int, ...] | None, rank: int) -> tuple[int, ...] | None:
    return None if values is None else per_axis(values, rank)
