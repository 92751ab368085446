"""Caffe: `.caffemodel` (a binary NetParameter: layers with their blobs) and `.prototxt` (text: layers
without weights), read with protobuf through convdiff's subset of caffe.proto (`caffe_proto`).

Caffe stores a Convolution's weights as (num_output, C_in / group, kh, kw), OIHW, and a
Deconvolution's as (C_in, num_output / group, kh, kw), IOHW; pads are symmetric per axis. A trained
caffemodel carries each layer's convolution_param next to its blobs, so it alone gives both the
weights and the configuration; a deploy prototxt gives the configuration (and the net's input shape).
"""

from __future__ import annotations

import numpy as np

from convdiff.data.modelfiles.caffe_proto import V1_CONVOLUTION, V1_DECONVOLUTION, message_classes
from convdiff.data.modelfiles.checks import fits_memory, regular_file
from convdiff.data.modelfiles.types import (SPATIAL, a, conv_kind, float_array, LayerConfig, LayerKind, LayerPadding,
                                            LayerRecord, LayerWeights, ModelFile, PadMode)
from convdiff.errors import BadInputError

CONV_TYPES = {"Convolution": LayerKind.CONV, "Deconvolution": LayerKind.TRANSPOSED}


def read(path: str) -> ModelFile:
    """The convolution layers of a caffemodel or prototxt."""
    return read_from(path, _parse(path))


def read_layer(path: str, name: str) -> LayerWeights:
    """One layer's blobs: the kernel as stored (OIHW, or IOHW for Deconvolution) and the bias."""
    net = _parse(path)
    found = read_from(path, net).find(name)
    if not found.has_weights:
        raise BadInputError(f"layer '{name}' of {path} holds no weights (a prototxt describes layers; the weights "
                            "are in the .caffemodel)")
    layer = next(layer for layer, _ in _layers(net) if layer.name == name)
    where = f"{path}#{name}"
    kernel = _blob_array(layer.blobs[0], f"{where} (weights blob)")
    bias = None
    if found.bias_shape is not None:
        bias = _blob_array(layer.blobs[1], f"{where} (bias blob)").reshape(-1)
    return LayerWeights(found, kernel, bias)


def read_from(path: str, net) -> ModelFile:  # noqa: ANN001 - a parsed NetParameter
    inputs = _declared_inputs(net)
    layers: list[LayerRecord] = []
    others: dict[str, str] = {}
    for layer, type_name in _layers(net):
        if type_name in CONV_TYPES:
            if not any(r.name == layer.name for r in layers):  # a train/test pair of one layer: the first
                layers.append(_record(path, layer, type_name, inputs))
        elif layer.name:
            others.setdefault(layer.name, f"{a(type_name)} layer" if type_name else "an untyped layer")
    return ModelFile(path, "caffe", tuple(layers), others)


def _parse(path: str):  # noqa: ANN202 - a NetParameter
    from google.protobuf import message, text_format

    file = regular_file(path, "Caffe model file")
    size = file.stat().st_size
    # The parsed floats take about the file's size again, and NumPy a copy of one layer's blobs.
    fits_memory(2 * size, f"Caffe model file '{path}' ({size} bytes)")
    net = message_classes()["NetParameter"]()
    data = file.read_bytes()
    try:
        if path.lower().endswith(".prototxt"):
            text_format.Parse(data.decode("utf-8"), net, allow_unknown_field=True)
        else:
            net.ParseFromString(data)
    except UnicodeDecodeError:
        raise BadInputError(f"Caffe prototxt '{path}' is not UTF-8 text (a binary .caffemodel?)") from None
    except (message.DecodeError, text_format.ParseError, RecursionError) as exc:
        kind = "prototxt" if path.lower().endswith(".prototxt") else "caffemodel (binary NetParameter)"
        raise BadInputError(f"'{path}' is not a valid Caffe {kind}: {exc} (truncated or corrupt?)") from None
    return net


def _layers(net):  # noqa: ANN001, ANN202 - (layer, type name) of both layer formats
    for layer in net.layer:
        yield layer, layer.type
    for layer in net.layers:  # V1: the type is an enum
        if layer.type == V1_CONVOLUTION:
            yield layer, "Convolution"
        elif layer.type == V1_DECONVOLUTION:
            yield layer, "Deconvolution"
        else:
            enum = layer.DESCRIPTOR.fields_by_name["type"].enum_type
            yield layer, enum.values_by_number[layer.type].name if layer.type in enum.values_by_number else ""


def _declared_inputs(net) -> dict[str, tuple[int, ...]]:  # noqa: ANN001
    """Blob name -> NCHW shape, for the net's declared inputs (`input` + shapes, or Input layers)."""
    shapes = {}
    for i, name in enumerate(net.input):
        if i < len(net.input_shape):
            shapes[name] = tuple(net.input_shape[i].dim)
        elif len(net.input_dim) >= 4 * (i + 1):
            shapes[name] = tuple(net.input_dim[4 * i:4 * i + 4])
    for layer in net.layer:
        if layer.type == "Input":
            declared = layer.input_param.shape
            for i, top in enumerate(layer.top):
                if len(declared) in (1, len(layer.top)) and declared:
                    shapes[top] = tuple(declared[i if len(declared) > 1 else 0].dim)
    return shapes


def _blob_shape(blob, where: str) -> tuple[int, ...]:  # noqa: ANN001
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:  # the deprecated 4-D dimensions
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if any(d < 0 for d in shape):
        raise BadInputError(f"{where} declares a negative dimension {shape}: corrupt file")
    count = len(blob.data) or len(blob.double_data)
    if count != int(np.prod(shape, dtype=object)):
        raise BadInputError(f"{where} holds {count} values but its shape {'x'.join(map(str, shape))} needs "
                            f"{int(np.prod(shape, dtype=object))}: truncated or corrupt")
    return shape


def _blob_array(blob, where: str) -> np.ndarray:  # noqa: ANN001
    shape = _blob_shape(blob, where)
    if len(blob.data):
        values = np.fromiter(blob.data, dtype=np.float32, count=len(blob.data))
    else:
        values = np.fromiter(blob.double_data, dtype=np.float64, count=len(blob.double_data))
    return float_array(values.reshape(shape), where)


def _per_axis(values, rank: int, default: int, what: str, where: str) -> tuple[int, ...]:  # noqa: ANN001
    values = list(values)
    if not values:
        return (default,) * rank
    if len(values) == 1:
        return (values[0],) * rank
    if len(values) == rank:
        return tuple(values)
    raise BadInputError(f"{where}: {what} has {len(values)} values for {rank} spatial axes")


def _record(path: str, layer, type_name: str, inputs: dict[str, tuple[int, ...]]) -> LayerRecord:  # noqa: ANN001
    where = f"{path}#{layer.name}"
    p = layer.convolution_param
    blobs = list(layer.blobs)
    blob_shape = _blob_shape(blobs[0], f"{where} (weights blob)") if blobs else None
    two_d = any(p.HasField(f) for f in ("kernel_h", "kernel_w", "pad_h", "pad_w", "stride_h", "stride_w"))
    if blob_shape is not None:
        rank = len(blob_shape) - 2
    else:
        rank = 2 if two_d or len(p.kernel_size) <= 1 else len(p.kernel_size)
    if rank not in SPATIAL:
        raise BadInputError(f"{where}: a {rank}-D convolution (convdiff reads 1-D to 3-D)")
    if two_d and rank != 2:
        raise BadInputError(f"{where}: kernel_h/pad_h/stride_h are for 2-D convolutions, the weights are {rank}-D")
    if p.HasField("kernel_h") or p.HasField("kernel_w"):
        kernel_size = (p.kernel_h, p.kernel_w)
    elif len(p.kernel_size) or blob_shape is None:
        kernel_size = _per_axis(p.kernel_size, rank, 0, "kernel_size", where)
    else:
        kernel_size = tuple(blob_shape[2:])
    if p.HasField("pad_h") or p.HasField("pad_w"):
        pads = (p.pad_h, p.pad_w)
    else:
        pads = _per_axis(p.pad, rank, 0, "pad", where)
    if p.HasField("stride_h") or p.HasField("stride_w"):
        strides = (p.stride_h or 1, p.stride_w or 1)
    else:
        strides = _per_axis(p.stride, rank, 1, "stride", where)
    dilation = _per_axis(p.dilation, rank, 1, "dilation", where)
    group = p.group
    transposed = CONV_TYPES[type_name] is LayerKind.TRANSPOSED
    num_output = p.num_output
    if blob_shape is not None:
        out_from_blob = blob_shape[1] * group if transposed else blob_shape[0]
        if not num_output:
            num_output = out_from_blob
        if (num_output, kernel_size) != (out_from_blob, tuple(blob_shape[2:])):
            raise BadInputError(f"{where}: the weights blob {'x'.join(map(str, blob_shape))} does not match "
                                f"num_output {num_output}, kernel_size {'x'.join(map(str, kernel_size))}: corrupt file")
    if not num_output:
        raise BadInputError(f"{where}: convolution_param has no num_output")
    declared = inputs.get(layer.bottom[0]) if layer.bottom else None
    input_shape = None
    if declared is not None and len(declared) == rank + 2:
        input_shape = (declared[0], *declared[2:], declared[1])  # NCHW -> NHWC
    if blob_shape is not None:
        in_channels: int | None = blob_shape[0] if transposed else blob_shape[1] * group
        kernel_shape: tuple[int | None, ...] = blob_shape
    else:
        in_channels = input_shape[-1] if input_shape is not None else None
        if transposed:
            kernel_shape = (in_channels, num_output // group, *kernel_size)
        else:
            kernel_shape = (num_output, None if in_channels is None else in_channels // group, *kernel_size)
    bias_shape = None
    if p.bias_term and len(blobs) > 1:
        bias_count = int(np.prod(_blob_shape(blobs[1], f"{where} (bias blob)"), dtype=object))
        if bias_count != num_output:
            raise BadInputError(f"{where}: the bias blob holds {bias_count} values for num_output {num_output}")
        bias_shape = (num_output,)
    elif p.bias_term and not blobs:
        bias_shape = (num_output,)
    notes = []
    if p.axis != 1:
        notes.append(f"convolution_param axis {p.axis}: channels are not axis 1")
    kind = LayerKind.TRANSPOSED if transposed else conv_kind(group, in_channels)
    config = LayerConfig(kernel_size=tuple(kernel_size), strides=tuple(strides),
                         padding=LayerPadding(PadMode.EXPLICIT, tuple((int(a), int(a)) for a in pads)),
                         dilation=tuple(dilation), groups=group, filters=num_output, use_bias=p.bias_term,
                         data_format="channels_first")
    layout = ("IO" if transposed else "OI") + SPATIAL[rank]
    return LayerRecord(layer.name, kind, rank, "Caffe", type_name, kernel_shape, layout, bias_shape, config,
                       in_channels, input_shape, has_weights=bool(blobs), notes=tuple(notes))
