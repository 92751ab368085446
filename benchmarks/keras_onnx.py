"""A small Keras 3 -> ONNX exporter, node by node, for the layers of MobileNetV2 and the small CNN.

    python benchmarks/keras_onnx.py [--out mobilenet_v2.onnx] [--random-batchnorm]

`export(model)` walks a functional Keras model and writes one ONNX node (or two) per layer: InputLayer,
Conv2D, DepthwiseConv2D, Conv2DTranspose, BatchNormalization, ReLU (max_value -> Clip), ZeroPadding2D
-> Pad, Add, GlobalAveragePooling2D, Dense (softmax), Dropout, Activation. Inside the graph every
tensor is NCHW: the ONNX model takes the NHWC input the Keras model takes (a Transpose right after
it) and gives NHWC outputs (a Transpose before every 4-D output; 2-D outputs as they are). Nodes are
named node_<i> and tensors t_<i>: nothing carries a Keras layer name, so pairing layers must go by
weights. opset 17.

Run as a script, it builds keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
with keras.utils.set_random_seed(0), exports it, runs it in onnxruntime (CPU, graph optimisations
off) and prints the max abs difference from Keras' output, absolute and relative to max |output|.
--random-batchnorm also draws the BatchNormalization statistics and affine weights (seeded), which a
fresh model leaves at 0 / 1, so the exported BatchNormalization nodes are tested with real values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.spec import geometry  # noqa: E402

OPSET = 17


class _Graph:
    """The ONNX graph being built: nodes, initializers and the ONNX name of each Keras tensor."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []
        self.names: dict[tuple, str] = {}
        self.counter = 0

    def fresh(self) -> str:
        self.counter += 1
        return f"t_{self.counter}"

    def constant(self, array: np.ndarray) -> str:
        name = f"w_{len(self.initializers)}"
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes) -> str:  # noqa: ANN003
        out = self.fresh()
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=f"node_{len(self.nodes)}", **attributes))
        return out


def _history(tensor) -> tuple:  # noqa: ANN001 - a KerasTensor
    op, node_index, tensor_index = tensor._keras_history
    return id(op), node_index, tensor_index


def _spatial(tensor) -> tuple[int, ...]:  # noqa: ANN001 - NHWC KerasTensor
    return tuple(int(n) for n in tensor.shape[1:-1])


def _conv_pads(layer, input_tensor) -> list[int]:  # noqa: ANN001
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    if layer.padding != "same":
        raise ValueError(f"padding {layer.padding!r} of {type(layer).__name__} is not exported")
    pads = geometry.resolve_same(_spatial(input_tensor), layer.kernel_size, layer.strides, layer.dilation_rate)
    return geometry.onnx_pads(pads)


def _activation(g: _Graph, layer, x: str) -> str:  # noqa: ANN001
    name = getattr(layer.activation, "__name__", "linear")
    if name == "linear":
        return x
    if name == "relu":
        return g.node("Relu", [x])
    if name == "relu6":
        return g.node("Clip", [x, g.constant(np.float32(0)), g.constant(np.float32(6))])
    if name == "softmax":
        return g.node("Softmax", [x], axis=-1)
    raise ValueError(f"activation {name!r} of layer {layer.name} is not exported")


def _conv(g: _Graph, layer, inputs: list[str], tensors) -> str:  # noqa: ANN001
    kind = type(layer).__name__
    weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
    kernel, bias = weights[0], (weights[1] if layer.use_bias else None)
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"layer {layer.name}: only channels_last is exported")
    attributes = {"kernel_shape": list(layer.kernel_size), "strides": list(layer.strides),
                  "dilations": list(layer.dilation_rate)}
    if kind == "DepthwiseConv2D":  # (kh, kw, C, M) -> (C*M, 1, kh, kw), output channel c*M + m
        kh, kw, c, m = kernel.shape
        weight = kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]
        op, attributes["group"], attributes["pads"] = "Conv", c, _conv_pads(layer, tensors[0])
    elif kind == "Conv2D":  # (kh, kw, in/groups, out) -> (out, in/groups, kh, kw)
        weight = kernel.transpose(3, 2, 0, 1)
        op, attributes["group"], attributes["pads"] = "Conv", layer.groups, _conv_pads(layer, tensors[0])
    else:  # Conv2DTranspose (kh, kw, out, in) -> (in, out, kh, kw); SAME crops (0, 1) at k=3, s=2
        weight = kernel.transpose(3, 2, 0, 1)
        if layer.output_padding is not None:
            raise ValueError(f"layer {layer.name}: output_padding is not exported")
        if layer.padding == "same":
            crops = tuple(geometry.transposed_same_crops(n, k, s, d) for n, k, s, d in
                          zip(_spatial(tensors[0]), layer.kernel_size, layer.strides, layer.dilation_rate))
            if any(c < 0 for pair in crops for c in pair):
                raise ValueError(f"layer {layer.name}: a kernel shorter than its stride is not exported")
            attributes["pads"] = geometry.onnx_pads(crops)
        op = "ConvTranspose"
    names = [inputs[0], g.constant(np.ascontiguousarray(weight))] + ([g.constant(bias)] if bias is not None else [])
    return _activation(g, layer, g.node(op, names, **attributes))


def _layer(g: _Graph, layer, inputs: list[str], tensors) -> str:  # noqa: ANN001, PLR0911
    kind = type(layer).__name__
    if kind in ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose"):
        return _conv(g, layer, inputs, tensors)
    if kind == "BatchNormalization":
        if layer.axis not in (-1, 3, [3], [-1]):
            raise ValueError(f"layer {layer.name}: only channel-axis BatchNormalization is exported")
        weights = {w.path.rsplit("/", 1)[-1]: np.asarray(w, np.float32) for w in layer.weights}
        channels = weights["moving_mean"].shape[0]
        gamma = weights.get("gamma", np.ones(channels, np.float32))
        beta = weights.get("beta", np.zeros(channels, np.float32))
        return g.node("BatchNormalization", [inputs[0], g.constant(gamma), g.constant(beta),
                                             g.constant(weights["moving_mean"]), g.constant(weights["moving_variance"])],
                      epsilon=float(layer.epsilon))
    if kind == "ReLU":
        if float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            raise ValueError(f"layer {layer.name}: a leaky or thresholded ReLU is not exported")
        if layer.max_value is None:
            return g.node("Relu", inputs)
        return g.node("Clip", [inputs[0], g.constant(np.float32(0)), g.constant(np.float32(layer.max_value))])
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        pads = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
        return g.node("Pad", [inputs[0], g.constant(pads)], mode="constant")
    if kind == "Add":
        return g.node("Add" if len(inputs) == 2 else "Sum", inputs)
    if kind == "GlobalAveragePooling2D":
        pooled = g.node("GlobalAveragePool", inputs)
        return pooled if layer.keepdims else g.node("Flatten", [pooled], axis=1)
    if kind == "Dense":
        if len(tensors[0].shape) != 2:
            raise ValueError(f"layer {layer.name}: only Dense on a 2-D input is exported")
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        names = [inputs[0], g.constant(weights[0])] + ([g.constant(weights[1])] if layer.use_bias else [])
        return _activation(g, layer, g.node("Gemm", names))
    if kind == "Activation":
        return _activation(g, layer, inputs[0])
    if kind == "Dropout":
        return inputs[0]
    raise ValueError(f"layer type {kind} ({layer.name}) is not exported")


def export(model):  # noqa: ANN001, ANN201 - keras.Model -> onnx.ModelProto
    """A functional Keras model as an ONNX model: NHWC input and outputs, NCHW inside, nodes node_<i>."""
    import onnx
    from onnx import TensorProto

    g = _Graph()
    graph_inputs = []
    for index, tensor in enumerate(model.inputs):
        name = f"input_{index}"
        graph_inputs.append(g.helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *tensor.shape[1:]]))
        g.names[_history(tensor)] = g.node("Transpose", [name], perm=[0, 3, 1, 2]) if len(tensor.shape) == 4 else name
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if len(layer._inbound_nodes) != 1:
            raise ValueError(f"layer {layer.name} is used {len(layer._inbound_nodes)} times; only once is exported")
        node = layer._inbound_nodes[0]
        tensors = list(node.input_tensors)
        out = _layer(g, layer, [g.names[_history(t)] for t in tensors], tensors)
        (output_tensor,) = node.output_tensors
        g.names[_history(output_tensor)] = out
    graph_outputs = []
    for index, tensor in enumerate(model.outputs):
        name, inner = f"output_{index}", g.names[_history(tensor)]
        if len(tensor.shape) == 4:
            g.nodes.append(g.helper.make_node("Transpose", [inner], [name], name=f"node_{len(g.nodes)}",
                                              perm=[0, 2, 3, 1]))
        else:
            g.nodes.append(g.helper.make_node("Identity", [inner], [name], name=f"node_{len(g.nodes)}"))
        graph_outputs.append(g.helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *tensor.shape[1:]]))
    graph = g.helper.make_graph(g.nodes, "keras_export", graph_inputs, graph_outputs, g.initializers)
    proto = g.helper.make_model(graph, opset_imports=[g.helper.make_opsetid("", OPSET)], producer_name="convdiff")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def run_onnx(proto, x: np.ndarray) -> list[np.ndarray]:  # noqa: ANN001
    """The ONNX model's outputs in onnxruntime (CPU, every graph optimisation off)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def randomize_batchnorm(model, seed: int = 0) -> None:  # noqa: ANN001
    """Seeded BatchNormalization weights a trained model could have (a fresh one has mean 0, variance 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.set_weights([rng.uniform(lo, hi, w.shape).astype(np.float32) for w, (lo, hi) in zip(
                layer.get_weights(), [(0.5, 1.5), (-0.2, 0.2), (-0.2, 0.2), (0.5, 1.5)])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the exported MobileNetV2 here")
    parser.add_argument("--random-batchnorm", action="store_true", help="draw BatchNormalization weights (seeded)")
    args = parser.parse_args(argv)

    from convdiff.frameworks import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    if args.random_batchnorm:
        randomize_batchnorm(model)
    proto = export(model)
    if args.out:
        Path(args.out).write_bytes(proto.SerializeToString())
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    expected = np.asarray(model(x, training=False), np.float64)
    got = run_onnx(proto, x)[0].astype(np.float64)
    diff = float(np.abs(got - expected).max())
    scale = float(np.abs(expected).max())
    kinds = sorted({type(layer).__name__ for layer in model.layers})
    print(f"MobileNetV2 ({len(model.layers)} layers: {', '.join(kinds)}), {len(proto.graph.node)} ONNX nodes")
    print(f"output: Keras vs onnxruntime max abs diff {diff:.3e}, max |output| {scale:.3e}, relative {diff / scale:.3e}")

    # A fresh MobileNetV2's activations shrink layer by layer (to ~1e-11 before the pooling), so its
    # softmax is nearly uniform: every layer's output, each relative to its own largest value, says more.
    layers = model.layers[1:]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    keras_outputs = [np.asarray(a, np.float64) for a in probe(x, training=False)]
    relative = [float(np.abs(o.astype(np.float64) - k).max() / max(np.abs(k).max(), 1e-300))
                for o, k in zip(run_onnx(export(probe), x), keras_outputs)]
    worst = int(np.argmax(relative))
    print(f"every layer: worst relative max abs diff {relative[worst]:.3e} ({type(layers[worst]).__name__} "
          f"'{layers[worst].name}', max |output| {np.abs(keras_outputs[worst]).max():.3e}); "
          f"median {float(np.median(relative)):.3e}")
    return 0 if diff <= 1e-4 * scale and relative[worst] <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
