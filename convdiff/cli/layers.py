"""`convdiff layers FILE`: the convolution layers a model file holds, with their shapes and settings."""

from __future__ import annotations

import sys

import click

from convdiff.cli.group import cli
from convdiff.cli.options import format_option
from convdiff.cli.output import Output
from convdiff.errors import EXIT_OK


@cli.command()
@click.argument("file", metavar="FILE")
@format_option
def layers(file: str, fmt: str) -> None:
    """List the convolution layers of a model file: name, kind, kernel shape and layout, bias, strides,
    padding, dilation, groups.

    FILE is a Caffe .caffemodel or .prototxt, a PyTorch state_dict (.pt, .pth, .safetensors), a Keras
    model (.keras, .h5) or an ONNX model (.onnx). Use a layer as --weights FILE#LAYER or --from
    FILE#LAYER. Exits 0, 2 for an unreadable file, 3 when the library that reads it is missing.
    """
    from convdiff.data.modelfiles import read_model
    from convdiff.report.json import SCHEMA_VERSION
    from convdiff.report.layers import layers_json, render_layers

    model = read_model(file)
    Output(fmt).show(render_layers(model), layers_json(model, SCHEMA_VERSION))
    sys.exit(EXIT_OK)
