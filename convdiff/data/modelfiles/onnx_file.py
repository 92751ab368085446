"""ONNX: a `Conv` or `ConvTranspose` node, named by its node name (or its first output's name when the
node has none), with its initializers and attributes.

The model is loaded with `load_external_data=False`; a tensor stored outside the file is read here,
and only from a file inside the model's own directory (a location that is absolute or leads out of it
is refused). ONNX stores Conv weights (M, C / group, *k), `OIHW`, and ConvTranspose weights
(C, M / group, *k), `IOHW`; `pads` is `[begin_1, ..., begin_n, end_1, ..., end_n]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convdiff.data.modelfiles.checks import fits_memory, regular_file
from convdiff.data.modelfiles.types import (SPATIAL, a, conv_kind, float_array, LayerConfig, LayerKind, LayerPadding,
                                            LayerRecord, LayerWeights, ModelFile, PadMode)
from convdiff.errors import BackendUnavailableError, BadInputError
from convdiff.spec.geometry import from_onnx_pads

INSTALL = "pip install -e '.[onnx]' in the convdiff checkout"
OPS = ("Conv", "ConvTranspose")


def read(path: str) -> ModelFile:
    return _from_model(path, _load(path))


def read_layer(path: str, name: str) -> LayerWeights:
    model = _load(path)
    tensors = _stored_tensors(model.graph)
    record = _from_model(path, model).find(name)
    node = next(n for n in model.graph.node if n.op_type in OPS and _node_name(n) == record.name)
    where = f"{path}#{name}"
    kernel = float_array(_array(path, tensors[node.input[1]], f"{where} (weights '{node.input[1]}')"), where)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = float_array(_array(path, tensors[node.input[2]], f"{where} (bias '{node.input[2]}')"), where)
    return LayerWeights(record, kernel, bias)


def _from_model(path: str, model: Any) -> ModelFile:
    graph = model.graph
    tensors = _stored_tensors(graph)
    inputs = {v.name: v for v in graph.input}
    convs = [n for n in graph.node if n.op_type in OPS]
    # A named node also answers to its output's name (what a graph viewer shows on the edge).
    aliases = {n.output[0]: n.name for n in convs if n.name and n.output and n.output[0] != n.name}
    return ModelFile(path, "onnx", tuple(_record(path, n, tensors, inputs) for n in convs),
                     {_node_name(n): f"{a(n.op_type)} node" for n in graph.node if n.op_type not in OPS}, aliases)


def _node_name(node: Any) -> str:
    return node.name or (node.output[0] if node.output else "")


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise BackendUnavailableError(f"reading ONNX files needs the onnx package ({INSTALL})") from None
    return onnx


def _load(path: str) -> Any:
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    file = regular_file(path, "ONNX file")
    fits_memory(2 * file.stat().st_size, f"ONNX file '{path}'")
    try:
        model = onnx.load(str(file), load_external_data=False)
    except (DecodeError, RecursionError, ValueError, OSError) as exc:
        raise BadInputError(f"'{path}' is not a valid ONNX model: {exc} (truncated or corrupt?)") from None
    if not model.HasField("graph"):
        raise BadInputError(f"'{path}' is not a valid ONNX model: it holds no graph")
    return model


def _stored_tensors(graph: Any) -> dict[str, Any]:
    """Initializers and Constant nodes' values, by the name nodes use them by; an Identity of a stored
    tensor (what exporters write for a shared or renamed weight) is that tensor under its output's name."""
    tensors = {t.name: t for t in graph.initializer}
    for node in graph.node:  # nodes are in topological order: a chain of Identity nodes resolves in one pass
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    tensors[node.output[0]] = attr.t
        elif node.op_type == "Identity" and node.input and node.output and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    return tensors


def _array(path: str, tensor: Any, where: str) -> np.ndarray:
    """A TensorProto as NumPy, its external data (if any) read from inside the model's directory only."""
    onnx = _onnx()
    from onnx import numpy_helper

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in tensor.external_data}
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.raw_data = _external_bytes(path, info, tensor, where)
        copy.data_location = onnx.TensorProto.DEFAULT
        del copy.external_data[:]
        tensor = copy
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"{where}: the tensor could not be read: {exc}") from None


def _external_bytes(path: str, info: dict[str, str], tensor: Any, where: str) -> bytes:
    from onnx import helper

    location = info.get("location", "")
    base = Path(path).resolve().parent
    target = (base / location).resolve()
    if not location or Path(location).is_absolute() or not target.is_relative_to(base):
        raise BadInputError(f"{where}: external data at '{location}' is outside the model's directory {base}; "
                            "convdiff reads external data only from beside the model")
    if not target.is_file():
        raise BadInputError(f"{where}: external data file '{location}' not found beside the model")
    try:
        offset = int(info.get("offset", "0"))
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInputError(f"{where}: malformed external data entry ({exc})") from None
    needed = int(np.prod(tensor.dims, dtype=object)) * itemsize
    length = int(info.get("length", needed))
    size = target.stat().st_size
    if offset < 0 or length != needed or offset + length > size:
        raise BadInputError(f"{where}: external data '{location}' (offset {offset}, length {length}) does not hold the "
                            f"{needed} bytes of shape {'x'.join(map(str, tensor.dims))} in a file of {size} bytes")
    fits_memory(length, where)
    with open(target, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _ints(node: Any, name: str) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == name:
            return list(attr.ints)
    return None


def _attr(node: Any, name: str) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return None


def _record(path: str, node: Any, tensors: dict[str, Any], inputs: dict[str, Any]) -> LayerRecord:
    name = _node_name(node)
    where = f"{path}#{name}"
    if len(node.input) < 2 or node.input[1] not in tensors:
        weight = node.input[1] if len(node.input) > 1 else "(none)"
        raise BadInputError(f"{where}: the weights '{weight}' are not stored in the file (a graph input, or "
                            "computed by other nodes); convdiff reads initializers and Constant values")
    kernel_shape = tuple(int(d) for d in tensors[node.input[1]].dims)
    rank = len(kernel_shape) - 2
    if rank not in SPATIAL:
        raise BadInputError(f"{where}: weights of shape {'x'.join(map(str, kernel_shape))} ({rank} spatial axes; "
                            "convdiff reads 1 to 3)")
    transposed = node.op_type == "ConvTranspose"
    group = int(_attr(node, "group") or 1)
    k = tuple(_ints(node, "kernel_shape") or kernel_shape[2:])
    if k != kernel_shape[2:]:
        raise BadInputError(f"{where}: kernel_shape {list(k)} disagrees with the weights {list(kernel_shape)}")
    strides = tuple(_ints(node, "strides") or (1,) * rank)
    dilation = tuple(_ints(node, "dilations") or (1,) * rank)
    pads = _ints(node, "pads") or [0] * (2 * rank)
    auto_pad = _attr(node, "auto_pad")
    auto_pad = (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad or "NOTSET").upper()
    if len(strides) != rank or len(dilation) != rank or len(pads) != 2 * rank:
        raise BadInputError(f"{where}: strides/dilations/pads do not match the {rank} spatial axes of the weights")
    padding = {"SAME_UPPER": LayerPadding(PadMode.SAME), "SAME_LOWER": LayerPadding(PadMode.SAME_LOWER),
               "VALID": LayerPadding(PadMode.VALID)}.get(auto_pad)
    if padding is None:
        if auto_pad != "NOTSET":
            raise BadInputError(f"{where}: unknown auto_pad '{auto_pad}'")
        padding = LayerPadding(PadMode.EXPLICIT, from_onnx_pads(pads))
    if transposed:
        in_channels, filters = kernel_shape[0], kernel_shape[1] * group
    else:
        in_channels, filters = kernel_shape[1] * group, kernel_shape[0]
    bias_shape = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in tensors:
            raise BadInputError(f"{where}: the bias '{node.input[2]}' is not stored in the file")
        bias_shape = tuple(int(d) for d in tensors[node.input[2]].dims)
        if bias_shape != (filters,):
            raise BadInputError(f"{where}: the bias has shape {list(bias_shape)}, the node has {filters} outputs")
    output_padding = _ints(node, "output_padding")
    notes = []
    if transposed and _ints(node, "output_shape"):
        notes.append(f"output_shape {_ints(node, 'output_shape')} is set: ONNX derives the pads from it")
    config = LayerConfig(k, strides, padding, dilation, group, filters, bias_shape is not None,
                         None if output_padding is None else tuple(output_padding), "channels_first")
    input_shape = None
    source = inputs.get(node.input[0])
    if source is not None and source.type.HasField("tensor_type"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in source.type.tensor_type.shape.dim]
        if len(dims) == rank + 2 and all(d for d in dims[1:]):
            input_shape = (dims[0] or 1, *dims[2:], dims[1])
    kind = LayerKind.TRANSPOSED if transposed else conv_kind(group, in_channels)
    layout = ("IO" if transposed else "OI") + SPATIAL[rank]
    return LayerRecord(name, kind, rank, "ONNX", node.op_type, kernel_shape, layout, bias_shape, config, in_channels,
                       input_shape, notes=tuple(notes))
