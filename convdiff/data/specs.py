"""Building a spec from parsed fields, with what files say filled in (an input file's shape, a weights
file's kernel size and filters). The spec itself never reads a file; this is where files are read."""

from __future__ import annotations

from typing import Any

from convdiff.errors import BadInputError
from convdiff.spec.convspec import BUILTIN_INPUTS, ConvSpec, default_shape_for
from convdiff.spec.parse import fmt_values


def build_spec(fields: dict[str, Any]) -> ConvSpec:
    """Build a validated spec from parsed fields, filling the input shape from the input source."""
    fields = dict(fields)
    source = fields.get("input", "random")
    rank = fields.get("rank", 2)
    if "input_shape" not in fields:
        if source in BUILTIN_INPUTS:
            fields["input_shape"] = default_shape_for(source, rank)
        else:
            from convdiff.data.inputs import file_input_shape

            fields["input_shape"] = file_input_shape(source, fields.get("input_layout"), rank)
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
    from convdiff.data.weights import load_weights
    from convdiff.spec.layouts import fitting_layouts, kernel_layout_for

    rank, transposed, groups = fields.get("rank", 2), fields.get("transposed", False), fields.get("groups", 1)
    layout = fields.get("weights_layout") or kernel_layout_for(rank, transposed)
    loaded = load_weights(fields["weights"], layout, fields.get("bias"), rank=rank, transposed=transposed,
                          groups=groups)
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
        if not transposed and groups == 1 and channels % kernel[-2] == 0 and channels != kernel[-2]:
            hint += f" (or a grouped kernel: --groups {channels // kernel[-2]})"
        raise BadInputError(f"{where} has {c_in} input channel(s){per_group}, the input has {channels}{hint}")
    for name, value in (("kernel_size", tuple(kernel[:rank])), ("filters", c_out)):
        given = _per_axis(fields.get(name), rank) if name == "kernel_size" else fields.get(name)
        if given is not None and given != value:
            raise BadInputError(f"{where} gives {name} {fmt_values(value) if name == 'kernel_size' else value}, "
                                f"but {name} is set to {fmt_values(given) if name == 'kernel_size' else given}")
    fields["kernel_size"], fields["filters"] = tuple(kernel[:rank]), c_out


def _per_axis(values: tuple[int, ...] | None, rank: int) -> tuple[int, ...] | None:
    if values is None:
        return None
    return tuple(values) * rank if len(values) == 1 else tuple(values)
