"""Parsing at the edge: click parameter types that turn what a user typed into typed values, with the
error naming the option (`Invalid value for '--strides': ...`)."""

from __future__ import annotations

from typing import Any

import click

from convdiff.errors import BadInputError
from convdiff.spec.fields import Field
from convdiff.spec.parse import CliText


class FieldType(click.ParamType):
    """A spec field's value, parsed by the field table's parser."""

    def __init__(self, field: Field):
        self.field = field
        self.name = field.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # already converted (a default)
        try:
            return self.field.parse(CliText(value))
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)


class SizeType(click.ParamType):
    """A memory size: `4GiB`, `500MB`, `2g`, `1e9`."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from convdiff.data.memory import parse_size

        try:
            return parse_size(value)
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)


class OverrideType(click.ParamType):
    """`SIDE.FIELD=VALUE`: one spec field for one side, parsed by the field table."""

    name = "override"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str, Any]:
        if isinstance(value, tuple):
            return value
        from convdiff.pipeline.case import SIDES
        from convdiff.spec.fields import parse_fields

        target, sep, text = str(value).partition("=")
        side, dot, name = target.strip().partition(".")
        if not sep or not dot or side not in SIDES or not name.strip():
            self.fail(f"expected SIDE.FIELD=VALUE with SIDE reference or candidate, got '{value}'", param, ctx)
        try:
            ((field, parsed),) = parse_fields({name.strip(): text.strip()}, where=f" in --set {side}.",
                                              typed_text=True).items()
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)
        return side, field, parsed


class SweepValuesType(click.ParamType):
    """The values of one sweep axis, split on `,` (or `;`) and each checked by the axis's parser."""

    name = "values"

    def __init__(self, axis: str):
        self.axis = axis

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        from convdiff.suites.sweep import make_axis, split_values

        try:
            values = split_values(value)
            make_axis(self.axis, values)
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)
        return values


class LayerRefType(click.ParamType):
    """`FILE#LAYER`: one layer of a model file (.caffemodel, .prototxt, .pt, .pth, .safetensors, .keras, .h5, .onnx)."""

    name = "layer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from convdiff.spec.layer_ref import MODEL_SUFFIXES, split_layer_ref

        try:
            ref = split_layer_ref(str(value))
        except BadInputError as exc:
            self.fail(str(exc), param, ctx)
        if ref is None:
            self.fail(f"expected FILE#LAYER of a model file ({', '.join(MODEL_SUFFIXES)}), got '{value}'", param, ctx)
        return str(value)


class ChannelsType(click.ParamType):
    """Output channel indices: `0,2,5`, or a half-open range `START:STOP` (`0:4` is 0,1,2,3)."""

    name = "channels"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        try:
            if ":" in text:
                start, stop = (int(part) for part in text.split(":", 1))
                channels = tuple(range(start, stop))
            else:
                channels = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            self.fail(f"expected channel indices such as 0,2,5 or a range such as 0:4, got '{text}'", param, ctx)
        if not channels or min(channels) < 0:
            self.fail(f"expected at least one non-negative channel index, got '{text}'", param, ctx)
        return channels
