"""Building a spec from parsed fields, with what files say filled in (an input file's shape, a weights
file's kernel size and filters). The spec itself never reads a file; this is where files are read."""

from __future__ import annotations

from typing import Any

from convdiff.errors import BadInputError, SpecConflictError
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec, default_shape_for
from convdiff.spec.parse import fmt_values


def build_spec(fields: dict[str, Any]) -> ConvSpec:
    """Build a validated spec from parsed fields, filling the input shape from the input source."""
    fields = dict(fields)
    source = fields.get("input", "random")
    if source not in BUILTIN_INPUTS:
        from convdiff.data.inputs import file_input_shape
        from convdiff.errors import BadFileError

        # From the file's header: the shape is known (and checked) before a byte of data is read.
        shape = file_input_shape(source, fields.get("input_layout", "NHWC"))
        if "input_shape" in fields and tuple(fields["input_shape"]) != tuple(shape):
            raise BadFileError(f"input file '{source}' has shape {fmt_values(shape)}, the spec expects "
                               f"{fmt_values(fields['input_shape'])}")
        fields["input_shape"] = shape
    elif "input_shape" not in fields:
        fields["input_shape"] = default_shape_for(source)
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
    from convdiff.data.weights import weights_header
    from convdiff.spec.layouts import fitting_layouts

    layout = fields.get("weights_layout", "HWIO")
    header = weights_header(fields["weights"], layout, fields.get("bias"))  # headers only: nothing is read yet
    kh, kw, c_in, c_out = header.hwio_shape
    channels = fields["input_shape"][-1]
    where = f"weights file '{fields['weights']}' ({fmt_values(header.kernel_shape)} read as {layout})"
    if c_in != channels:
        fits = fitting_layouts(header.kernel_shape, channels, fields.get("kernel_size"), fields.get("filters"))
        hint = (f"; layouts that fit: {', '.join(fits)}" if fits else "; it fits no layout "
                f"(HWIO, OIHW, OHWI, IOHW) for {channels} input channel(s)")
        raise SpecConflictError(f"{where} has {c_in} input channel(s), the input has {channels}{hint}")
    for name, value in (("kernel_size", (kh, kw)), ("filters", c_out)):
        if name in fields and fields[name] != value:
            raise BadInputError(f"{where} gives {name} {value}, but {name} is set to {fields[name]}")
    fields["kernel_size"], fields["filters"] = (kh, kw), c_out
