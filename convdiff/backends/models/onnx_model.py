"""An ONNX model file run by ONNX Runtime (CPU, graph optimisations off: fusions change results), with the
input and output of every Conv and ConvTranspose node exposed as extra graph outputs.

The layers' settings and weights come from the same reader as `convdiff layers FILE.onnx`
(`convdiff.data.modelfiles.onnx_file`): initializers and Constant values (through Identity nodes too) only,
never a computed weight.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from convdiff.backends.models.common import canonical_kernel, channels_last, first_line, framework_failure
from convdiff.backends.models.types import Captured, ModelLayer, ModelRun
from convdiff.data.modelfiles import onnx_file
from convdiff.errors import BackendUnavailableError, BadInputError, ConvdiffError, install_command


def load_file(path: str) -> OnnxModel:
    return OnnxModel(onnx_file._load(path), path)


class OnnxModel:
    framework = "ONNX"
    channels_first = True

    def __init__(self, model: Any, description: str):
        self.model = model
        self.description = description
        graph = model.graph
        tensors = onnx_file._stored_tensors(graph)
        file = onnx_file._from_model(description, model)
        nodes = {onnx_file._node_name(n): n for n in graph.node if n.op_type in onnx_file.OPS}
        layers = []
        for record in file.layers:
            node = nodes[record.name]
            where = f"{description}#{record.name}"
            kernel = onnx_file._array(description, tensors[node.input[1]], f"{where} (weights '{node.input[1]}')")
            bias = None
            if len(node.input) > 2 and node.input[2]:
                bias = onnx_file._array(description, tensors[node.input[2]], f"{where} (bias '{node.input[2]}')")
                bias.flags.writeable = False
            layers.append(ModelLayer(record.name, record, canonical_kernel(record, kernel, where), bias))
        self.layers = tuple(layers)
        self.skipped = ()
        self._taps = {record.name: (nodes[record.name].input[0], nodes[record.name].output[0]) for record in file.layers}
        initializers = {t.name for t in graph.initializer}
        feeds = [v for v in graph.input if v.name not in initializers]
        if len(feeds) != 1:
            raise BadInputError(f"{description}: the model takes {len(feeds)} inputs "
                                f"({', '.join(v.name for v in feeds) or 'none'}); `convdiff models` feeds one")
        self._feed = feeds[0]
        dims = self._feed.type.tensor_type.shape.dim
        self.input_shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims) or None
        # A graph that takes NHWC (a converter's Transpose in front) says so by its channels.
        first = self.layers[0] if self.layers else None
        if first is not None and first.record.in_channels and self.input_shape and len(self.input_shape) >= 3:
            if self.input_shape[1] != first.record.in_channels and self.input_shape[-1] == first.record.in_channels:
                self.channels_first = False
        self._elem_type = self._feed.type.tensor_type.elem_type

    def capture_sizes(self, x_shape: tuple[int, ...]) -> list[int] | None:
        try:
            import onnx
            from onnx import shape_inference
        except ImportError:
            return None
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        feed = next(v for v in model.graph.input if v.name == self._feed.name)
        dims = feed.type.tensor_type.shape.dim
        if len(dims) != len(x_shape):
            return None
        for dim, size in zip(dims, x_shape):
            dim.Clear()
            dim.dim_value = int(size)
        try:
            inferred = shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - an estimate only: none when ONNX cannot infer the shapes
            return None
        known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
        sizes = []
        for tapped in self._taps.values():
            size = 0
            for name in tapped:
                info = known.get(name)
                if info is None:
                    return None
                shape = [d.dim_value if d.HasField("dim_value") else 0 for d in info.type.tensor_type.shape.dim]
                if not shape or 0 in shape:
                    return None
                size += math.prod(shape) * 4
            sizes.append(size)
        return sizes

    def run(self, x: np.ndarray, keep=None) -> ModelRun:  # noqa: ANN001
        try:
            import onnx
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f"ONNX models need onnx and onnxruntime: {install_command('onnx')}") from exc
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        outputs = [o.name for o in model.graph.output]
        wanted = [name for pair in self._taps.values() for name in pair]
        for name in dict.fromkeys(wanted):
            if name not in outputs and name != self._feed.name:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                outputs.append(name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime refuses the graph: a bad model file
            raise BadInputError(f"{self.description}: ONNX Runtime cannot load the model ({first_line(exc)})") from None
        dtype = _numpy_dtype(self._elem_type)
        start = time.perf_counter()
        try:
            values = session.run(outputs, {self._feed.name: x.astype(dtype, copy=False)})
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - the runtime failed on the input: exit 3
            raise framework_failure("onnxruntime", self.description, exc) from None
        seconds = time.perf_counter() - start
        by_name = dict(zip(outputs, values))
        by_name.setdefault(self._feed.name, x.astype(dtype, copy=False))
        keep = keep or (lambda array: array)
        captured = {layer: Captured(keep(channels_last(by_name[i], True)), keep(channels_last(by_name[o], True)))
                    for layer, (i, o) in self._taps.items()}
        output = channels_last(by_name[outputs[0]], self.channels_first)
        return ModelRun(tuple(self._taps), captured, output, seconds)


def _numpy_dtype(elem_type: int) -> np.dtype:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return np.dtype(np.float32)
