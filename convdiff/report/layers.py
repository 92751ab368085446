"""`convdiff layers`: the convolution layers of a model file, as a table and as JSON. Nothing computed."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from convdiff.data.modelfiles import ModelFile
from convdiff.data.modelfiles.types import fmt_dims
from convdiff.report.layout import fit

FORMAT_NAMES = {"caffe": "Caffe", "torch": "PyTorch state_dict", "safetensors": "PyTorch state_dict (safetensors)",
                "keras": "Keras", "onnx": "ONNX"}


def _axes(values: tuple[int, ...] | None) -> str:
    return "-" if values is None else ",".join(map(str, values))


def render_layers(model: ModelFile) -> RenderableType:
    """One row per convolution layer: kind, kernel as stored (shape and layout), bias and settings."""
    title = f"{FORMAT_NAMES.get(model.format, model.format)}: {model.path}"
    if not model.layers:
        return Text(f"{title}: no convolution layers", style="yellow")
    table = Table(title=escape(title), title_justify="left", show_edge=False)
    for column in ("layer", "kind", "type", "kernel", "bias", "strides", "padding", "dilation", "groups", "input"):
        widths = {"layer": min(max(len(r.name) for r in model.layers), 32), "type": 10, "kind": 9,
                  "padding": max(min(max(len(str(r.config.padding)) if r.config else 1 for r in model.layers), 16), 7)}
        table.add_column(column, no_wrap=column not in widths, overflow="fold", min_width=widths.get(column))
    notes: list[str] = []
    for r in model.layers:
        c = r.config
        table.add_row(
            escape(r.name), r.kind.value, escape(r.op), f"{fmt_dims(r.kernel_shape)} {r.kernel_layout}",
            "-" if r.bias_shape is None else fmt_dims(r.bias_shape),
            "-" if c is None else _axes(c.strides), "-" if c is None else escape(str(c.padding)),
            "-" if c is None else _axes(c.dilation), "-" if c is None else str(c.groups),
            "-" if r.input_shape is None else fmt_dims(r.input_shape))
        for note in r.notes:
            if note not in notes:
                notes.append(note)
    parts: list[RenderableType] = [fit(table), Text("kernel: the shape as stored, and its layout (O out, I in, M depth "
                                               "multiplier, D/H/W spatial); input: NHWC, when the file declares it",
                                               style="dim")]
    if any(not r.has_weights for r in model.layers):
        notes.insert(0, "this file describes layers without their weights: --from takes the configuration, "
                        "--weights needs the file that holds them (a .caffemodel)")
    parts.extend(Text(f"note: {n}", style="dim") for n in notes)
    return Group(*parts)


def layers_json(model: ModelFile, schema: int) -> dict[str, Any]:
    return {"schema": schema, "file": model.path, "format": model.format,
            "layers": [r.to_json() for r in model.layers]}
