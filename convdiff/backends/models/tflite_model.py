"""A TFLite (LiteRT) flatbuffer file, read with the schema that ships with TensorFlow and run by TensorFlow's
TFLite interpreter (builtin kernels, no default delegate, every intermediate tensor kept), with each
convolution op's input and output tensor read back after the run.

Nothing from the file runs while it is read: the bytes are checked (a regular file, a size that fits in
memory, the flatbuffer identifier TFL3) and parsed into the schema's objects, and only constant tensors
(buffers, or a float16 constant feeding a DEQUANTIZE op) are taken as weights. TFLite stores CONV_2D filters
(O, kh, kw, I), `OHWI`; DEPTHWISE_CONV_2D filters (1, kh, kw, C * M), `IHWO` with I = 1 (output channel
c * M + m, as canonical); TRANSPOSE_CONV weights (O, kh, kw, I), `OHWI` of a transposed layer; CONV_3D
filters (kd, kh, kw, I, O), `DHWIO`; CONV_3D_TRANSPOSE filters (kd, kh, kw, O, I), `DHWOI`. Every tensor is
channels-last already.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.backends.models.common import canonical_kernel, first_line, framework_failure
from convdiff.backends.models.types import Captured, ModelLayer, ModelRun
from convdiff.data.modelfiles.checks import fits_memory, regular_file
from convdiff.data.modelfiles.types import (SPATIAL, LayerConfig, LayerKind, LayerPadding, LayerRecord, PadMode,
                                            conv_kind, fmt_dims)
from convdiff.errors import BadInputError, ConvdiffError
from convdiff.spec.geometry import tflite_transposed_crops, transposed_same_crops

IDENTIFIER = b"TFL3"

# op name -> (spatial rank, transposed, stored kernel layout, index of the input, of the weights, of the bias)
OPS = {
    "CONV_2D": (2, False, "OHWI", 0, 1, 2),
    "DEPTHWISE_CONV_2D": (2, False, "IHWO", 0, 1, 2),
    "TRANSPOSE_CONV": (2, True, "OHWI", 2, 1, 3),
    "CONV_3D": (3, False, "DHWIO", 0, 1, 2),
    "CONV_3D_TRANSPOSE": (3, True, "DHWOI", 2, 1, 3),
}

ACTIVATIONS = {"NONE": "linear", "RELU": "relu", "RELU6": "relu6", "TANH": "tanh"}
"""TFLite's fused activations convdiff recomputes, by their schema names."""

_FLOAT = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64}
_NUMPY = {**_FLOAT, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
          "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64, "BOOL": np.bool_}


def load_file(path: str) -> TfliteModel:
    """Check and parse a .tflite file (one line, exit 2, for a bad one); nothing runs until `run`."""
    data = _read(path)
    return TfliteModel(_parse(path, data), data, path)


@dataclass(frozen=True)
class _Tap:
    """Where one layer's input and output live in the interpreter, and their stored shapes."""

    input: int
    output: int
    shapes: tuple[tuple[int, ...], tuple[int, ...]]
    known: bool
    """Whether the stored shapes hold for every run (no free axis but the batch in the model's signature)."""


class TfliteModel:
    framework = "TFLite"
    channels_first = False

    def __init__(self, model: Any, data: bytes, description: str):
        self._data = data
        self.description = description
        self._schema = _schema()
        self._model = model
        graph = model.subgraphs[0]
        self._graph = graph
        codes = _names(self._schema.BuiltinOperator)
        self._types = _names(self._schema.TensorType)
        self._activations = _names(self._schema.ActivationFunctionType)
        self._producers = {int(o): op for op in (graph.operators or []) for o in _ints(op.outputs)}
        self._consumers: dict[int, list[Any]] = {}
        for op in graph.operators or []:
            for i in set(_ints(op.inputs)):
                self._consumers.setdefault(i, []).append(op)
        feeds = _ints(graph.inputs)
        if len(feeds) != 1:
            raise BadInputError(f"{description}: the model takes {len(feeds)} inputs; `convdiff models` feeds one")
        if not _ints(graph.outputs):
            raise BadInputError(f"{description}: the model declares no output")
        self._feed = feeds[0]
        feed = self._tensor(self._feed, "the model's input")
        signature = _ints(feed.shapeSignature) or _ints(feed.shape)
        self.input_shape = tuple(None if d < 0 else d for d in signature) or None
        self._free = {i for i, d in enumerate(signature) if d < 0}
        layers, skipped, taps, seen = [], [], {}, set()
        for position, op in enumerate(graph.operators or []):
            if not 0 <= op.opcodeIndex < len(model.operatorCodes or []):
                raise BadInputError(f"{description}: operator {position} names operator code {op.opcodeIndex}, "
                                    f"of {len(model.operatorCodes or [])}")
            code = model.operatorCodes[op.opcodeIndex]
            op_name = codes.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            if op_name not in OPS:
                continue
            outputs = _ints(op.outputs)
            if not outputs:
                raise BadInputError(f"{description}: operator {position} ({op_name}) has no output")
            add = self._bias_add(op, op_name)
            name = _unique(self._tensor_name(_ints((add or op).outputs)[0]), seen)
            seen.add(name)
            try:
                layer, tap = self._layer(name, op_name, op, add)
            except _Skip as why:
                skipped.append((name, str(why)))
                continue
            layers.append(layer)
            taps[name] = tap
        self.layers = tuple(layers)
        self.skipped = tuple(skipped)
        self._taps = taps
        self._output = _ints(graph.outputs)[0]

    # -- reading --------------------------------------------------------------------------------------------

    def _bias_add(self, op: Any, op_name: str) -> Any | None:
        """The ADD op that adds a layer's bias, when the converter split it off (CONV_3D, CONV_3D_TRANSPOSE
        have no bias input in TFLite's kernels): the only consumer of a bias-less, activation-less conv's
        output, adding a constant float vector of one value per output channel."""
        _, _, _, _, _, b_at = OPS[op_name]
        inputs, out = _ints(op.inputs), _ints(op.outputs)[0]
        if len(inputs) > b_at and inputs[b_at] >= 0 or out in _ints(self._graph.outputs):
            return None
        if int(getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0):
            return None
        consumers = self._consumers.get(out, [])
        if len(consumers) != 1 or self._op_name(consumers[0]) != "ADD":
            return None
        add = consumers[0]
        others = [i for i in _ints(add.inputs) if i != out]
        if len(others) != 1 or len(_ints(add.outputs)) != 1:
            return None
        try:
            value = self._constant(others[0], self.description)
            y = self._tensor(out, self.description)
        except BadInputError:
            return None
        channels = _ints(y.shape)[-1:] or [0]
        if value is None or value.dtype.kind != "f" or value.size != channels[0] or value.shape[-1:] != (channels[0],):
            return None
        if _ints(self._tensor(_ints(add.outputs)[0], self.description).shape) != _ints(y.shape):
            return None
        return add

    def _layer(self, name: str, op_name: str, op: Any, add: Any | None) -> tuple[ModelLayer, _Tap]:
        rank, transposed, layout, x_at, w_at, b_at = OPS[op_name]
        where = f"{self.description}#{name}"
        inputs = _ints(op.inputs)
        if len(inputs) <= max(x_at, w_at):
            raise BadInputError(f"{where}: {op_name} has {len(inputs)} inputs")
        x_index, out_index = inputs[x_at], _ints(op.outputs)[0]
        x_tensor, y_tensor = self._tensor(x_index, where), self._tensor(out_index, where)
        for tensor, what in ((x_tensor, "input"), (y_tensor, "output")):
            kind = self._types.get(tensor.type, str(tensor.type))
            if kind not in _FLOAT:
                raise _Skip(f"quantized: its {what} is {kind.lower()} (convdiff compares floating-point layers)")
        kernel = self._weights(inputs[w_at], where, "weights")
        bias = None
        if len(inputs) > b_at and inputs[b_at] >= 0:
            bias = self._weights(inputs[b_at], where, "bias")
        notes = []
        if add is not None:
            others = [i for i in _ints(add.inputs) if i != out_index]
            bias = np.ascontiguousarray(self._weights(others[0], where, "bias").reshape(-1))
            bias.flags.writeable = False
            notes.append("its bias is added by the ADD op that follows (the converter's split): folded in")
        x_shape, y_shape = _ints(x_tensor.shape), _ints(y_tensor.shape)
        if len(x_shape) != rank + 2 or len(y_shape) != rank + 2 or kernel.ndim != rank + 2:
            raise BadInputError(f"{where}: {op_name} with input {fmt_dims(x_shape)}, output {fmt_dims(y_shape)} and "
                                f"weights {fmt_dims(kernel.shape)} is not a {rank}-D convolution")
        options = op.builtinOptions
        if options is None:
            raise BadInputError(f"{where}: {op_name} holds no options")
        letters = SPATIAL[rank]
        strides = tuple(int(getattr(options, f"stride{c}")) for c in letters)
        dilation = tuple(int(getattr(options, f"dilation{c}Factor", 1)) for c in letters)
        if min(strides + dilation) < 1:
            raise BadInputError(f"{where}: strides {list(strides)} and dilation {list(dilation)} must be positive")
        dims = dict(zip(layout, kernel.shape))
        k = tuple(dims[c] for c in letters)
        channels = x_shape[-1]
        if transposed:
            in_channels, filters, groups = dims["I"], dims["O"], 1
            if in_channels != channels:
                raise BadInputError(f"{where}: weights for {in_channels} input channels on an input with {channels}")
        elif op_name == "DEPTHWISE_CONV_2D":
            filters, groups, in_channels = dims["O"], channels, channels
            if dims["I"] != 1 or filters % channels:
                raise BadInputError(f"{where}: depthwise weights {fmt_dims(kernel.shape)} do not fit an input with "
                                    f"{channels} channels")
            multiplier = int(getattr(options, "depthMultiplier", 0) or 0)
            if multiplier and multiplier != filters // channels:
                notes.append(f"depth_multiplier {multiplier} disagrees with the weights' {filters // channels}: "
                             "TFLite computes from the weights")
        else:
            filters, in_channels = dims["O"], channels
            if channels % dims["I"]:
                raise BadInputError(f"{where}: weights for {dims['I']} input channels per group on an input with "
                                    f"{channels}")
            groups = channels // dims["I"]
        if y_shape[-1] != filters:
            raise BadInputError(f"{where}: {filters} filters but an output with {y_shape[-1]} channels")
        if bias is not None and bias.shape != (filters,):
            raise BadInputError(f"{where}: the bias has shape {fmt_dims(bias.shape)}, the op has {filters} outputs")
        same = int(options.padding) == self._schema.Padding.SAME
        if int(options.padding) not in (self._schema.Padding.SAME, self._schema.Padding.VALID):
            raise BadInputError(f"{where}: unknown padding {options.padding}")
        output_padding = None
        if transposed:
            padding, output_padding = _transposed_padding(where, x_shape[1:-1], self._output_size(inputs[0], y_shape),
                                                          k, strides, dilation, same)
        else:
            padding = LayerPadding(PadMode.SAME if same else PadMode.VALID)
        activation_code = int(getattr(options, "fusedActivationFunction", 0) or 0)
        if add is not None and add.builtinOptions is not None:
            activation_code = int(getattr(add.builtinOptions, "fusedActivationFunction", 0) or 0)
        fused = self._activations.get(activation_code, str(activation_code))
        if fused not in ACTIVATIONS:
            raise _Skip(f"it applies the fused activation {fused} after the convolution, which convdiff does not "
                        f"recompute (it does: {', '.join(ACTIVATIONS)})")
        activation = ACTIVATIONS[fused]
        if activation != "linear":
            notes.append(f"fused activation {fused}")
        config = LayerConfig(k, strides, padding, dilation, groups, filters, bias is not None, output_padding)
        kind = LayerKind.TRANSPOSED if transposed else conv_kind(groups, in_channels)
        record = LayerRecord(name, kind, rank, "TFLite", op_name, tuple(kernel.shape), layout,
                             None if bias is None else tuple(bias.shape), config, in_channels,
                             (1, *x_shape[1:]), notes=tuple(notes))
        layer = ModelLayer(name, record, canonical_kernel(record, kernel, where), bias, activation)
        known = not (self._free - {0})
        tap_out = out_index if add is None else _ints(add.outputs)[0]
        return layer, _Tap(x_index, tap_out, (tuple(x_shape), tuple(y_shape)), known)

    def _output_size(self, shape_index: int, y_shape: list[int]) -> tuple[int, ...]:
        """A transposed op's output spatial size: its output_shape constant, else its output tensor's shape."""
        constant = self._constant(shape_index, "output_shape")
        if constant is not None and constant.dtype.kind == "i" and constant.size == len(y_shape):
            return tuple(int(v) for v in constant[1:-1])
        return tuple(y_shape[1:-1])

    def _weights(self, index: int, where: str, what: str) -> np.ndarray:
        """A float constant (a float16 one through a DEQUANTIZE op kept as float16), read-only."""
        value = self._constant(index, f"{where} ({what})")
        if value is None:
            producer = self._producers.get(index)
            name = self._op_name(producer)
            if name == "DEQUANTIZE":
                source = _ints(producer.inputs)
                value = self._constant(source[0], f"{where} ({what})") if source else None
                if value is not None and value.dtype.kind != "f":
                    raise _Skip(f"quantized: its {what} are {value.dtype} values dequantized at run time")
            if value is None:
                made = f"computed by {name} at run time" if name else "not stored in the file (a model input?)"
                raise _Skip(f"its {what} are {made}: convdiff reads stored constants only")
        elif value.dtype.kind != "f":
            raise _Skip(f"quantized: its {what} are {value.dtype} values")
        value.flags.writeable = False
        return value

    def _constant(self, index: int, where: str) -> np.ndarray | None:
        """The stored value of tensor `index`, or None when it has none (computed, or an input)."""
        tensor = self._tensor(index, where)
        buffers = self._model.buffers or []
        if tensor.buffer <= 0 or tensor.buffer >= len(buffers):
            return None
        buffer = buffers[tensor.buffer]
        if buffer.offset > 1:  # a large model's data after the flatbuffer, by offset and size
            if buffer.offset + buffer.size > len(self._data):
                raise BadInputError(f"{where}: its data (offset {buffer.offset}, {buffer.size} bytes) lies past the "
                                    f"end of the {len(self._data)}-byte file (truncated?)")
            raw = self._data[buffer.offset: buffer.offset + buffer.size]
        elif buffer.data is None or len(buffer.data) == 0:
            return None
        else:
            raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
        kind = self._types.get(tensor.type, str(tensor.type))
        if kind not in _NUMPY:
            return None
        dtype = np.dtype(_NUMPY[kind])
        shape = tuple(_ints(tensor.shape))
        if any(d < 0 for d in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
            raise BadInputError(f"{where}: {len(raw)} bytes stored for a {kind.lower()} tensor of shape "
                                f"{fmt_dims(shape)} (corrupt?)")
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)

    def _tensor(self, index: int, where: str) -> Any:
        tensors = self._graph.tensors or []
        if not 0 <= index < len(tensors):
            raise BadInputError(f"{where}: tensor {index} does not exist (the graph has {len(tensors)})")
        return tensors[index]

    def _tensor_name(self, index: int) -> str:
        raw = self._tensor(index, self.description).name
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw or "")
        return text or f"tensor_{index}"

    def _op_name(self, op: Any) -> str | None:
        if op is None:
            return None
        codes = self._model.operatorCodes or []
        if not 0 <= op.opcodeIndex < len(codes):
            return None
        code = codes[op.opcodeIndex]
        return _names(self._schema.BuiltinOperator).get(max(code.builtinCode, code.deprecatedBuiltinCode))

    # -- running --------------------------------------------------------------------------------------------

    def capture_sizes(self, x_shape: tuple[int, ...]) -> list[int] | None:
        sizes = []
        for tap in self._taps.values():
            if not tap.known:
                return None
            sizes.append(sum(math.prod(shape[1:]) * x_shape[0] * 4 for shape in tap.shapes))
        return sizes

    def run(self, x: np.ndarray, keep=None) -> ModelRun:  # noqa: ANN001
        from convdiff.frameworks import import_tensorflow

        tf = import_tensorflow()
        with warnings.catch_warnings():
            # The interpreter warns that it moves to ai_edge_litert, and that keeping every tensor costs memory:
            # both known, and keeping them is the point.
            for message in (r"(?s).*tf\.lite\.Interpreter is deprecated", r"(?s).*experimental_preserve_all_tensors"):
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            try:
                interpreter = tf.lite.Interpreter(
                    model_content=self._data, num_threads=1, experimental_preserve_all_tensors=True,
                    experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            except ConvdiffError:
                raise
            except Exception as exc:  # noqa: BLE001 - the interpreter refuses the file: a bad model file
                raise BadInputError(f"{self.description}: the TFLite interpreter cannot load the model "
                                    f"({first_line(exc)})") from None
        feed = next((d for d in interpreter.get_input_details() if d["index"] == self._feed), None)
        dtype = np.dtype(feed["dtype"]) if feed is not None else np.dtype(np.float32)
        x = np.ascontiguousarray(x.astype(dtype, copy=False))
        start = time.perf_counter()
        try:
            if feed is None or tuple(feed["shape"]) != x.shape:
                interpreter.resize_tensor_input(self._feed, list(x.shape), strict=False)
            interpreter.allocate_tensors()
            interpreter.set_tensor(self._feed, x)
            interpreter.invoke()
            keep = keep or (lambda array: array)
            captured = {name: Captured(keep(interpreter.get_tensor(tap.input)), keep(interpreter.get_tensor(tap.output)))
                        for name, tap in self._taps.items()}
            output = interpreter.get_tensor(self._output)
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - the interpreter failed on a valid input: exit 3
            raise framework_failure("TFLite", self.description, exc) from None
        seconds = time.perf_counter() - start
        return ModelRun(tuple(self._taps), captured, output, seconds)


class _Skip(Exception):
    """A layer convdiff leaves out, and why."""


def _transposed_padding(where: str, sizes: list[int], out: tuple[int, ...], kernel: tuple[int, ...],
                        strides: tuple[int, ...], dilation: tuple[int, ...], same: bool
                        ) -> tuple[LayerPadding, tuple[int, ...] | None]:
    """A transposed op's crops as convdiff's padding: SAME when they are TF SAME's (out = size * stride), else
    explicit crops, with an output padding where the output reaches past the full scatter."""
    if len(out) != len(sizes) or min(out, default=1) < 1:
        raise BadInputError(f"{where}: output size {list(out)} does not fit a {len(sizes)}-D input")
    crops = tuple(tflite_transposed_crops(n, o, k, s, d, same=same)
                  for n, o, k, s, d in zip(sizes, out, kernel, strides, dilation))
    tf_same = tuple(transposed_same_crops(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation))
    if same and crops == tf_same:
        return LayerPadding(PadMode.SAME), None
    if all(c == (0, 0) for c in crops):
        return LayerPadding(PadMode.VALID), None
    extra = tuple(max(-after, 0) for _, after in crops)
    if any(e >= s for e, s in zip(extra, strides)):
        raise _Skip(f"its output ({list(out)}) reaches {list(extra)} positions past the full scatter, more than "
                    "an output padding (below the stride) gives")
    pads = tuple((before, max(after, 0)) for before, after in crops)
    return LayerPadding(PadMode.EXPLICIT, pads), (extra if any(extra) else None)


def _schema() -> Any:
    from convdiff.frameworks import import_tensorflow

    import_tensorflow()  # quietly: the schema module's package imports TensorFlow
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def _read(path: str) -> bytes:
    file = regular_file(path, "TFLite file")
    size = file.stat().st_size
    if size < 8:
        raise BadInputError(f"'{path}' is not a TFLite model: {size} bytes, too short for a flatbuffer")
    fits_memory(2 * size, f"TFLite file '{path}'")
    with open(file, "rb") as fh:
        data = fh.read()
    if data[4:8] != IDENTIFIER:
        raise BadInputError(f"'{path}' is not a TFLite model: it lacks the flatbuffer identifier TFL3 "
                            f"(bytes 4-8 are {data[4:8]!r})")
    return data


def _parse(path: str, data: bytes) -> Any:
    schema = _schema()
    try:
        root = schema.Model.GetRootAs(data, 0)
        _plausible(root, len(data))
        model = schema.ModelT.InitFromObj(root)
    except ConvdiffError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the schema's reader trips on is a corrupt file, one line
        raise BadInputError(f"'{path}' is not a valid TFLite model: {first_line(exc)} (truncated or corrupt?)"
                            ) from None
    if not model.subgraphs:
        raise BadInputError(f"'{path}' is not a valid TFLite model: it holds no subgraph")
    return model


def _plausible(root: Any, size: int) -> None:
    """Refuse vector lengths a file of `size` bytes cannot hold before the reader loops over them (a flipped
    length would otherwise build millions of objects)."""
    limit = size // 4

    def check(length: int, what: str) -> int:
        if length < 0 or length > limit:
            raise ValueError(f"it declares {length} {what} in {size} bytes")
        return length

    for i in range(check(root.SubgraphsLength(), "subgraphs")):
        graph = root.Subgraphs(i)
        check(graph.TensorsLength(), "tensors")
        check(graph.OperatorsLength(), "operators")
    check(root.OperatorCodesLength(), "operator codes")
    for i in range(check(root.BuffersLength(), "buffers")):
        if root.Buffers(i).DataLength() > size:
            raise ValueError(f"buffer {i} declares {root.Buffers(i).DataLength()} bytes in {size}")


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _unique(name: str, seen: set[str]) -> str:
    if name not in seen:
        return name
    n = 2
    while f"{name}_{n}" in seen:
        n += 1
    return f"{name}_{n}"


__all__ = ["TfliteModel", "load_file"]
