"""A one-node ONNX model (`Conv` or `ConvTranspose`, opset 17) built in memory with `onnx.helper` and run
by ONNX Runtime's CPU execution provider.

The model computes in NCHW with the weights as initializers: Conv (M, C/group, *k) = OIHW, ConvTranspose
(C, M/group, *k) = IOHW. Forward pads: SAME is `auto_pad=SAME_UPPER`, same_lower is `SAME_LOWER` (ONNX
Runtime computes both), explicit pads are `pads` in ONNX's order `[begin_1, ..., begin_n, end_1, ..., end_n]` (so are SAME's with a
dilation, which ONNX Runtime's auto_pad refuses).
Transposed: the spec's crops as `pads` and `output_padding` (a negative crop at the end, positions no tap
reaches, is output padding), never `auto_pad`: which side ConvTranspose's SAME_UPPER crops more has read
differently in the operator text and in ONNX Runtime.

Graph optimisations are off unless `ort_optimization` asks for a level: fusions can change results.
"""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendUnavailableError, install_command
from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.layouts import conversion, for_rank, from_canonical, input_layout_for

OPSET = 17
LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}


def pad_attributes(spec: ConvSpec) -> dict[str, object]:
    """The node's padding attributes: `auto_pad`, or `pads` in ONNX order (and `output_padding`, transposed)."""
    if spec.transposed:
        crops = spec.pads
        pads = tuple((before, max(after, 0)) for before, after in crops)
        return {"pads": geometry.onnx_pads(pads), "output_padding": [max(-after, 0) for _, after in crops]}
    mode = spec.padding.mode
    if mode in (PaddingMode.SAME, PaddingMode.SAME_LOWER) and any(d != 1 for d in spec.dilation):
        # ONNX Runtime: "Dilation not supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER";
        # an exporter writes the pads out, as here.
        return {"pads": geometry.onnx_pads(spec.pads)}
    if mode is PaddingMode.SAME:
        return {"auto_pad": "SAME_UPPER"}
    if mode is PaddingMode.SAME_LOWER:
        return {"auto_pad": "SAME_LOWER"}
    if mode is PaddingMode.VALID:
        return {"auto_pad": "VALID"}
    return {"pads": geometry.onnx_pads(spec.padding.pads)}


def build_model(spec: ConvSpec, weights: np.ndarray, bias: np.ndarray | None):  # noqa: ANN201
    """The one-node model: input `x` (N, C, *spatial), float32 initializers `W` (and `B`), output `y`."""
    from onnx import TensorProto, helper, numpy_helper

    op = "ConvTranspose" if spec.transposed else "Conv"
    inputs = ["x", "W"] + (["B"] if bias is not None else [])
    attributes = dict(kernel_shape=list(spec.kernel_size), strides=list(spec.strides),
                      dilations=list(spec.dilation), group=spec.groups, **pad_attributes(spec))
    node = helper.make_node(op, inputs, ["y"], name="conv", **attributes)
    channels_first = conversion(input_layout_for(spec.rank), input_layout_for(spec.rank, True))
    x_shape = list(channels_first.apply(np.zeros(spec.input_shape, np.float32)).shape)
    initializers = [numpy_helper.from_array(np.ascontiguousarray(weights, np.float32), "W")]
    if bias is not None:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(bias, np.float32), "B"))
    graph = helper.make_graph([node], "convdiff", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="convdiff")
    model.ir_version = 8  # the IR of opset 17, which every ONNX Runtime that runs opset 17 reads
    return model, attributes


class OnnxRuntimeBackend:
    name = "onnxruntime"
    summary = "a one-node ONNX Conv / ConvTranspose model on ONNX Runtime's CPU provider"
    requires: tuple[str, ...] = ("onnx", "onnxruntime")
    install_hint = install_command("onnx")

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.guard import run_guarded

        backend_info(self.name).check_spec(spec)
        return run_guarded(self.name, lambda: self._run(spec, x, weights), _ort_errors())

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError(f"backend 'onnxruntime' needs onnx and onnxruntime, which are not "
                                          f"installed: {self.install_hint}") from None
        start = time.perf_counter()
        weights = weights or initial_weights(spec)
        kernel, bias = weights.kernel, (weights.bias if spec.use_bias else None)
        layout = for_rank("IOHW" if spec.transposed else "OIHW", spec.rank)
        onnx_weights, to_weights = from_canonical(np.asarray(kernel), layout, spec.rank, spec.transposed)
        model, attributes = build_model(spec, onnx_weights, None if bias is None else np.asarray(bias))
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[spec.ort_optimization])
        options.intra_op_num_threads = 1  # one thread: the same sums in the same order on every run
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        last, first = input_layout_for(spec.rank), input_layout_for(spec.rank, True)
        to_nchw, to_nhwc = conversion(last, first), conversion(first, last)
        (y,) = session.run(["y"], {"x": np.ascontiguousarray(to_nchw.apply(np.asarray(x)), np.float32)})
        shown = ", ".join(f"{k}={v}" for k, v in attributes.items())
        notes = (f"ONNX {'ConvTranspose' if spec.transposed else 'Conv'}({shown}), opset {OPSET}, weights {to_weights}",
                 f"onnxruntime {ort.__version__} CPUExecutionProvider, graph optimisation "
                 f"{LEVELS[spec.ort_optimization]}, 1 intra-op thread; input {to_nchw}, output {to_nhwc}")
        if np.asarray(x).dtype != np.float32:
            notes += (f"input {np.asarray(x).dtype} converted to float32 (the model's input type)",)
        return SideResult(self.name, np.ascontiguousarray(to_nhwc.apply(y)), kernel, bias, "float32", notes=notes,
                          seconds=time.perf_counter() - start)


def _ort_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's own exception classes (pybind11 ones, outside FRAMEWORK_PACKAGES' modules)."""
    try:
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException
    except ImportError:
        return ()
    return (Fail, InvalidArgument, RuntimeException)
