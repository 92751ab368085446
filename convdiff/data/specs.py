"""Building a spec from parsed fields, with what files say filled in (an input file's shape, a weights
file's kernel size and filters, a model file's layer configuration for `--from`). The spec itself
never reads a file; this is where files are read."""

from __future__ import annotations

from typing import Any

from convdiff.errors import BadInputError
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec, default_shape_for
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
    if "input_shape" not in merged:
        if source in BUILTIN_INPUTS:
            shape = default_shape_for(source)
            layer = record or _weights_layer(merged)
            if layer is not None:
                from convdiff.data.modelfiles.configuration import layer_input_shape

                shape = layer_input_shape(layer, shape)
            fields["input_shape"] = shape
        else:
            from convdiff.data.inputs import file_input_shape

            fields["input_shape"] = file_input_shape(source, merged.get("input_layout", "NHWC"))
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
        _fields_from_weights(fields)
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

    loaded = load_weights(fields["weights"], fields.get("weights_layout"), fields.get("bias"))
    layout = loaded.layout
    fields.setdefault("weights_layout", layout)
    for name, value in loaded.kind_fields.items():  # a model file's grouped/transposed/N-D layer
        if name in fields and fields[name] != value:
            raise BadInputError(f"weights {fields['weights']} give {name} {value}, but {name} is set to {fields[name]}")
        fields[name] = value
    kh, kw, c_in, c_out = loaded.kernel.shape
    c_in *= fields.get("groups", 1)  # a grouped kernel holds C_in / groups input channels
    channels = fields["input_shape"][-1]
    where = f"weights file '{fields['weights']}' ({fmt_values(loaded.file_shape)} read as {layout})"
    if c_in != channels:
        fits = fitting_layouts(loaded.file_shape, channels, fields.get("kernel_size"), fields.get("filters"))
        hint = (f"; layouts that fit: {', '.join(fits)}" if fits else "; it fits no layout "
                f"(HWIO, OIHW, OHWI, IOHW) for {channels} input channel(s)")
        raise BadInputError(f"{where} has {c_in} input channel(s), the input has {channels}{hint}")
    for name, value in (("kernel_size", (kh, kw)), ("filters", c_out)):
        if name in fields and fields[name] != value:
            raise BadInputError(f"{where} gives {name} {value}, but {name} is set to {fields[name]}")
    fields["kernel_size"], fields["filters"] = (kh, kw), c_out
