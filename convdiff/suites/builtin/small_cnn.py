"""A small Keras CNN and hand-written ports of it, to test whole-model comparisons on.

`keras_cnn()` is the reference: a functional Keras model (NHWC input, default 16x16x3) with one layer
of each convolution kind convdiff pairs, seeded random kernels and non-zero biases:

    c1   Conv2D(8, 3, strides=2, padding="same")                    then a ReLU layer
    dw   DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")   (fused ReLU)
    up   Conv2DTranspose(4, 3, strides=2, padding="same")           then a ReLU layer
    head Conv2D(2, 1)

`torch_port`, `onnx_port` and `keras_port` write the same network again by hand (NCHW for PyTorch
and ONNX), with the Keras weights copied and layer names that share nothing with the Keras ones
(`PORT_NAMES`), so a comparison can only pair layers by their weights. Each port can carry one of
the `MISTAKES` people make when porting, at one layer (`layer=` is the Keras layer name):

    symmetric_pad          TF SAME at stride 2 pads (0, 1) on an even input; the port pads (1, 1)
                           (at `up`: PyTorch's padding=1, output_padding=1, which crops the first
                           row and column of the full scatter where TF crops the last)
    depthwise_order        the (kh, kw, C, M) depthwise kernel flattened m-major, not c-major
    kernel_not_transposed  the kernel copied with its two spatial axes swapped
    dropped_bias           the layer's bias left out
    float16                that layer alone computes in float16, with casts around it

`write_example_models(directory)` (also `python -m convdiff.suites.builtin.small_cnn DIR`) writes
the reference, the correct ONNX port, the symmetric_pad ONNX port and an input to files.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convdiff.spec import geometry

MISTAKES = ("symmetric_pad", "depthwise_order", "kernel_not_transposed", "dropped_bias", "float16")

KERAS_LAYERS = ("c1", "dw", "up", "head")
"""The reference's convolution layers, in order."""

PORT_NAMES = {"c1": "stem", "dw": "depthwise", "up": "upsample", "head": "classifier"}
"""Each Keras layer's name in every port: the PyTorch attribute, the ONNX Conv node, the Keras port's layer."""

DEFAULT_LAYER = {
    "symmetric_pad": "c1",
    "depthwise_order": "dw",
    "kernel_not_transposed": "up",
    "dropped_bias": "dw",
    "float16": "head",
}
"""The layer a mistake applies to when `layer` is not given."""

MISTAKE_LAYERS = {
    "symmetric_pad": ("c1", "up"),  # dw pads (1, 1) at stride 1 already; head is 1x1, no padding
    "depthwise_order": ("dw",),
    "kernel_not_transposed": ("c1", "dw", "up"),  # a 1x1 kernel looks the same either way
    "dropped_bias": KERAS_LAYERS,
    "float16": KERAS_LAYERS,
}
"""The layers where each mistake changes something."""

ONNXRUNTIME_FLOAT16 = (
    "onnxruntime's CPU provider has no float16 Conv or ConvTranspose kernel: its InsertCastTransformer (on "
    "even with every graph optimisation off) casts the float16 weights up, runs the node in float32 and "
    "removes the Cast pair around it, so there the float16 ONNX port is the float32 one with its weights "
    "rounded to float16 (measured: equal to that, bit for bit, in onnxruntime 1.32)")
"""What the float16 mistake of `onnx_port` computes in onnxruntime on a CPU."""

EXAMPLE_FILES = {
    "keras": "small_cnn.keras",
    "keras_h5": "small_cnn.h5",
    "onnx": "small_cnn.onnx",
    "onnx_symmetric_pad": "small_cnn_symmetric_pad.onnx",
    "input": "x.npy",
}
"""The only names `write_example_models` writes."""


# --- the reference -------------------------------------------------------------------------------------


def keras_cnn(seed: int = 0, input_hw: tuple[int, int] = (16, 16), channels: int = 3):  # noqa: ANN201 - keras.Model
    """The reference model: a functional Keras model with seeded random kernels and biases.

    Args:
        seed: seeds every kernel and bias; the same seed gives the same weights.
        input_hw: the input's height and width (NHWC input, batch free).
        channels: the input's channels.

    Returns:
        A keras.Model with conv layers named c1, dw, up and head (`KERAS_LAYERS`).
    """
    keras = _keras()
    inputs = keras.Input((*input_hw, channels), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(inputs)
    x = keras.layers.ReLU(name="c1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="dw")(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(x)
    x = keras.layers.ReLU(name="up_relu")(x)
    outputs = keras.layers.Conv2D(2, 1, name="head")(x)
    model = keras.Model(inputs, outputs, name="small_cnn")
    rng = np.random.default_rng(seed)
    for name in KERAS_LAYERS:
        layer = model.get_layer(name)
        kernel_shape, bias_shape = (tuple(w.shape) for w in layer.get_weights())
        scale = np.sqrt(2.0 / _fan_in(name, kernel_shape, layer.strides))  # He: activations stay near 1
        kernel = (rng.standard_normal(kernel_shape) * scale).astype(np.float32)
        bias = rng.uniform(-0.5, 0.5, bias_shape).astype(np.float32)  # non-zero: a dropped bias shows
        layer.set_weights([kernel, bias])
    return model


def example_input(seed: int = 1, input_hw: tuple[int, int] = (16, 16), channels: int = 3,
                  batch: int = 1) -> np.ndarray:
    """A seeded NHWC float32 input for `keras_cnn` (standard normal)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *input_hw, channels)).astype(np.float32)


def _fan_in(name: str, kernel_shape: tuple[int, ...], strides: tuple[int, int]) -> float:
    kh, kw = kernel_shape[:2]
    if name == "dw":  # (kh, kw, C, M): each output reads one channel
        return kh * kw
    if name == "up":  # (kh, kw, out, in): each output gets about kh*kw/stride^2 taps per input channel
        return kh * kw * kernel_shape[3] / (strides[0] * strides[1])
    return kh * kw * kernel_shape[2]


# --- what the ports copy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer of the reference, read off the Keras model."""

    name: str
    """The Keras layer name (c1, dw, up, head)."""
    kind: str
    """'conv', 'depthwise' or 'transposed'."""
    kernel: np.ndarray
    """The Keras kernel: (kh, kw, in, out); depthwise (kh, kw, C, M); transposed (kh, kw, out, in)."""
    bias: np.ndarray
    strides: tuple[int, int]
    input_hw: tuple[int, int]
    """The layer's input height and width."""

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.kernel.shape[0], self.kernel.shape[1]

    def same_pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """TF SAME's (before, after) pads of a forward layer, or crops of the full scatter of a transposed one."""
        same = geometry.transposed_same_crops if self.kind == "transposed" else geometry.same_pads
        pads = tuple(same(n, k, s, 1) for n, k, s in zip(self.input_hw, self.kernel_hw, self.strides))
        if any(p < 0 for pair in pads for p in pair):
            raise ValueError(f"layer {self.name}: a kernel shorter than its stride is not handled by the ports")
        return pads

    def output_hw(self) -> tuple[int, int]:
        if self.kind == "transposed":
            return tuple(n * s for n, s in zip(self.input_hw, self.strides))
        return tuple(-(-n // s) for n, s in zip(self.input_hw, self.strides))


def conv_layers(model) -> list[ConvLayer]:  # noqa: ANN001 - a keras_cnn model
    """The reference's four convolution layers, in order, with their weights and input sizes."""
    kinds = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "Conv2DTranspose": "transposed"}
    hw = tuple(model.input_shape[1:3])
    layers = []
    for name in KERAS_LAYERS:
        keras_layer = model.get_layer(name)
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in keras_layer.get_weights())
        layer = ConvLayer(name, kinds[type(keras_layer).__name__], kernel, bias, tuple(keras_layer.strides), hw)
        layers.append(layer)
        hw = layer.output_hw()
    return layers


def resolve_mistake(mistake: str | None, layer: str | None, port: str = "torch") -> str | None:
    """The Keras layer `mistake` applies to (its default when `layer` is None); ValueError for a bad pair."""
    if mistake is None:
        if layer is not None:
            raise ValueError(f"layer={layer!r} given without a mistake")
        return None
    if mistake not in MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}; choose one of {', '.join(MISTAKES)}")
    layer = DEFAULT_LAYER[mistake] if layer is None else layer
    if layer not in KERAS_LAYERS:
        raise ValueError(f"unknown layer {layer!r}; the conv layers are {', '.join(KERAS_LAYERS)}")
    if layer not in MISTAKE_LAYERS[mistake]:
        raise ValueError(f"mistake {mistake!r} changes nothing at layer {layer!r}; "
                         f"it applies at {', '.join(MISTAKE_LAYERS[mistake])}")
    if port == "keras" and mistake == "symmetric_pad" and layer == "up":
        raise ValueError("keras_port has no symmetric_pad at 'up' (Keras' Conv2DTranspose has no explicit pads)")
    return layer


def torch_weight(layer: ConvLayer, mistake: str | None = None) -> np.ndarray:
    """The kernel in PyTorch's (and ONNX's) layout, copied correctly or with the layer's layout mistake.

    Conv2D (kh, kw, in, out) -> (out, in, kh, kw); Conv2DTranspose (kh, kw, out, in) -> (in, out, kh, kw):
    both transpose(3, 2, 0, 1). Depthwise (kh, kw, C, M) -> (C*M, 1, kh, kw), output channel c*M + m.
    """
    kernel = layer.kernel
    if layer.kind == "depthwise":
        kh, kw, c, m = kernel.shape
        if mistake == "depthwise_order":
            kernel = kernel.transpose(0, 1, 3, 2)  # flattened m-major: channel m*C + c
        if mistake == "kernel_not_transposed":
            kernel = kernel.transpose(1, 0, 2, 3)
        return np.ascontiguousarray(kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None])
    order = (3, 2, 1, 0) if mistake == "kernel_not_transposed" else (3, 2, 0, 1)
    return np.ascontiguousarray(kernel.transpose(order))


# --- PyTorch --------------------------------------------------------------------------------------------


@functools.cache
def _torch_modules():  # noqa: ANN202 - (the torch module, the port's nn.Module classes)
    import torch
    from torch import nn

    class SameConvTranspose2d(nn.ConvTranspose2d):
        """A padding=0 nn.ConvTranspose2d whose full scatter is cropped as TF SAME crops it.

        PyTorch's `padding` crops both ends alike; TF SAME at kernel 3, stride 2 crops (0, 1): only the
        last row and column. The crop is inside `forward`, so a forward hook sees the cropped output,
        the same size as the Keras layer's.
        """

        def __init__(self, *args, crops: tuple[tuple[int, int], tuple[int, int]], **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, padding=0, **kwargs)
            self.crops = crops

        def forward(self, x, output_size=None):  # noqa: ANN001, ANN201, ARG002
            y = super().forward(x)
            (top, bottom), (left, right) = self.crops
            return y[..., top: y.shape[-2] - bottom, left: y.shape[-1] - right]

        def extra_repr(self) -> str:
            return f"{super().extra_repr()}, crops={self.crops}"

    class SmallCnnPort(nn.Module):
        """keras_cnn written in PyTorch (NCHW): stem, depthwise, upsample, classifier."""

        def __init__(self, layers: list[ConvLayer], mistake: str | None, at: str | None) -> None:
            super().__init__()
            by_name = {layer.name: layer for layer in layers}
            self.stem_pad, self.stem = _torch_conv(by_name["c1"], mistake if at == "c1" else None)
            self.stem_relu = nn.ReLU()
            self.depthwise_pad, self.depthwise = _torch_conv(by_name["dw"], mistake if at == "dw" else None)
            self.depthwise_relu = nn.ReLU()
            self.upsample = _torch_transposed(by_name["up"], mistake if at == "up" else None)
            self.upsample_relu = nn.ReLU()
            self.classifier_pad, self.classifier = _torch_conv(by_name["head"], mistake if at == "head" else None)

        def forward(self, x):  # noqa: ANN001, ANN201
            x = self.stem_relu(_call(self.stem, self.stem_pad(x)))
            x = self.depthwise_relu(_call(self.depthwise, self.depthwise_pad(x)))
            x = self.upsample_relu(_call(self.upsample, x))
            return _call(self.classifier, self.classifier_pad(x))

    def _call(conv, x):  # noqa: ANN001, ANN202
        if conv.weight.dtype == torch.float16:  # the float16 mistake: this layer alone computes in half
            return conv(x.half()).float()
        return conv(x)

    return torch, nn, SameConvTranspose2d, SmallCnnPort


def _load(conv, layer: ConvLayer, mistake: str | None):  # noqa: ANN001, ANN202
    torch = _torch_modules()[0]
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(torch_weight(layer, mistake)))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(layer.bias))
    if mistake == "float16":
        conv.half()
    return conv


def _torch_conv(layer: ConvLayer, mistake: str | None):  # noqa: ANN202 - (pad module, nn.Conv2d)
    _, nn, _, _ = _torch_modules()
    in_channels = layer.kernel.shape[2]
    if layer.kind == "depthwise":
        out_channels, groups = in_channels * layer.kernel.shape[3], in_channels
    else:
        out_channels, groups = layer.kernel.shape[3], 1
    (top, bottom), (left, right) = layer.same_pads()
    if mistake == "symmetric_pad":  # what Conv2d(padding=1) does, where TF pads (0, 1)
        pad, padding = nn.Identity(), (max(top, bottom), max(left, right))
    elif top == bottom and left == right:  # symmetric SAME (stride 1, odd kernel): Conv2d's own padding is exact
        pad, padding = nn.Identity(), (top, left)
    else:
        pad, padding = nn.ZeroPad2d((left, right, top, bottom)), 0
    conv = nn.Conv2d(in_channels, out_channels, layer.kernel_hw, stride=layer.strides, padding=padding,
                     groups=groups, bias=mistake != "dropped_bias")
    return pad, _load(conv, layer, mistake)


def _torch_transposed(layer: ConvLayer, mistake: str | None):  # noqa: ANN202 - an nn.ConvTranspose2d
    _, nn, same_conv_transpose, _ = _torch_modules()
    out_channels, in_channels = layer.kernel.shape[2], layer.kernel.shape[3]
    bias = mistake != "dropped_bias"
    crops = layer.same_pads()
    if mistake == "symmetric_pad":
        # The usual port: padding=(k-1)//2 both sides, output_padding to reach size*stride.
        padding = tuple((k - 1) // 2 for k in layer.kernel_hw)
        output_padding = tuple(s - 1 for s in layer.strides)
        conv = nn.ConvTranspose2d(in_channels, out_channels, layer.kernel_hw, stride=layer.strides,
                                  padding=padding, output_padding=output_padding, bias=bias)
    else:
        conv = same_conv_transpose(in_channels, out_channels, layer.kernel_hw, stride=layer.strides,
                                   bias=bias, crops=crops)
    return _load(conv, layer, mistake)


def torch_port(model, mistake: str | None = None, layer: str | None = None):  # noqa: ANN001, ANN201
    """The reference written by hand in PyTorch (NCHW input), with the Keras weights copied.

    Args:
        model: a `keras_cnn` model.
        mistake: one of `MISTAKES`, or None for a correct port.
        layer: the Keras layer name the mistake applies to; None: `DEFAULT_LAYER[mistake]`.

    Returns:
        An nn.Module in eval mode with attributes stem (nn.Conv2d after stem_pad, an nn.ZeroPad2d),
        depthwise (nn.Conv2d, groups=C), upsample (an nn.ConvTranspose2d subclass that crops as TF
        SAME does) and classifier (nn.Conv2d 1x1), and ReLU modules between them.
    """
    at = resolve_mistake(mistake, layer, "torch")
    port_class = _torch_modules()[3]
    return port_class(conv_layers(model), mistake, at).eval()


# --- ONNX -----------------------------------------------------------------------------------------------


def onnx_port(model, mistake: str | None = None, layer: str | None = None):  # noqa: ANN001, ANN201
    """The reference built node by node as ONNX (opset 17, NCHW float32 input "x", output "y").

    TF SAME's asymmetric pads are the Conv's own `pads` ([0, 0, 1, 1] at c1); the transposed layer's
    crop is ConvTranspose `pads` [0, 0, 1, 1] (begin h, w, end h, w). Conv nodes are named as in
    `PORT_NAMES`; ReLU nodes `<name>_relu`. The float16 mistake is Cast nodes around a Conv with float16
    initializers; onnxruntime's CPU provider runs it in float32 from the rounded weights
    (`ONNXRUNTIME_FLOAT16`).

    Args:
        model: a `keras_cnn` model.
        mistake: one of `MISTAKES`, or None for a correct port.
        layer: the Keras layer name the mistake applies to; None: `DEFAULT_LAYER[mistake]`.

    Returns:
        An onnx.ModelProto that passes onnx.checker.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    at = resolve_mistake(mistake, layer, "onnx")
    layers = conv_layers(model)
    nodes, initializers = [], []
    current = "x"
    for conv in layers:
        this = mistake if conv.name == at else None
        name = PORT_NAMES[conv.name]
        dtype = np.float16 if this == "float16" else np.float32
        weight = torch_weight(conv, this).astype(dtype)
        initializers.append(numpy_helper.from_array(weight, f"{name}.weight"))
        inputs = [current, f"{name}.weight"]
        if this != "dropped_bias":
            initializers.append(numpy_helper.from_array(conv.bias.astype(dtype), f"{name}.bias"))
            inputs.append(f"{name}.bias")
        if this == "float16":
            nodes.append(helper.make_node("Cast", [current], [f"{name}.input16"], to=TensorProto.FLOAT16,
                                          name=f"{name}_to_float16"))
            inputs[0] = f"{name}.input16"
        out = f"{name}.output16" if this == "float16" else f"{name}.output"
        pads = geometry.onnx_pads(conv.same_pads())  # [top, left, bottom, right]
        attributes = {"kernel_shape": list(conv.kernel_hw), "strides": list(conv.strides)}
        if conv.kind == "transposed":
            attributes["pads"] = pads
            if this == "symmetric_pad":
                attributes["pads"] = [(k - 1) // 2 for k in conv.kernel_hw] * 2
                attributes["output_padding"] = [s - 1 for s in conv.strides]
            nodes.append(helper.make_node("ConvTranspose", inputs, [out], name=name, **attributes))
        else:
            if this == "symmetric_pad":
                pads = [max(pads[0], pads[2]), max(pads[1], pads[3])] * 2
            attributes["pads"] = pads
            attributes["group"] = conv.kernel.shape[2] if conv.kind == "depthwise" else 1
            nodes.append(helper.make_node("Conv", inputs, [out], name=name, **attributes))
        if this == "float16":
            nodes.append(helper.make_node("Cast", [out], [f"{name}.output"], to=TensorProto.FLOAT,
                                          name=f"{name}_to_float32"))
        current = f"{name}.output"
        if conv.name != "head":
            nodes.append(helper.make_node("Relu", [current], [f"{name}.relu"], name=f"{name}_relu"))
            current = f"{name}.relu"
    nodes[-1].output[0] = "y"
    height, width = model.input_shape[1:3]
    channels = model.input_shape[3]
    out_h, out_w = layers[-1].output_hw()
    graph = helper.make_graph(
        nodes, "small_cnn_port",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", layers[-1].kernel.shape[3], out_h, out_w])],
        initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="convdiff")
    proto.ir_version = 8  # what onnxruntime releases of the last years all read
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnx_session(proto):  # noqa: ANN001, ANN201 - an onnxruntime.InferenceSession
    """An onnxruntime CPU session for `proto` with every graph optimisation off (no fusion, no layout change)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


# --- a second Keras model -------------------------------------------------------------------------------


def keras_port(model, mistake: str | None = None, layer: str | None = None):  # noqa: ANN001, ANN201
    """The reference built again in Keras, layer names from `PORT_NAMES`, the weights copied.

    Every mistake except symmetric_pad at 'up' is supported: symmetric_pad at c1 is a ZeroPadding2D(1)
    before a VALID Conv2D; float16 gives that layer dtype="float16" (Keras casts its input to float16,
    and the next layer casts back; at 'head' a float32 'output' layer follows so the output stays float32).

    Args:
        model: a `keras_cnn` model.
        mistake: one of `MISTAKES`, or None for a correct port.
        layer: the Keras layer name the mistake applies to; None: `DEFAULT_LAYER[mistake]`.

    Returns:
        A keras.Model with conv layers stem, depthwise, upsample, classifier.
    """
    keras = _keras()
    at = resolve_mistake(mistake, layer, "keras")
    layers = {conv.name: conv for conv in conv_layers(model)}

    def options(name: str) -> dict:
        this = mistake if name == at else None
        return {"name": PORT_NAMES[name], "use_bias": this != "dropped_bias",
                **({"dtype": "float16"} if this == "float16" else {})}

    inputs = keras.Input(model.input_shape[1:], name="pixels")
    x = inputs
    c1_padding = "same"
    if at == "c1" and mistake == "symmetric_pad":
        x = keras.layers.ZeroPadding2D(1, name="stem_pad")(x)
        c1_padding = "valid"
    x = keras.layers.Conv2D(8, 3, strides=2, padding=c1_padding, **options("c1"))(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", **options("dw"))(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", **options("up"))(x)
    x = keras.layers.ReLU(name="upsample_relu")(x)
    x = keras.layers.Conv2D(2, 1, **options("head"))(x)
    if at == "head" and mistake == "float16":
        x = keras.layers.Activation("linear", dtype="float32", name="output")(x)
    port = keras.Model(inputs, x, name="small_cnn_port")
    for name, conv in layers.items():
        this = mistake if name == at else None
        kernel = conv.kernel
        if this == "kernel_not_transposed":
            kernel = kernel.transpose(1, 0, 2, 3)
        elif this == "depthwise_order":  # the same wrong order as the PyTorch port's: (C*M) read m-major
            kh, kw, c, m = kernel.shape
            kernel = kernel.transpose(0, 1, 3, 2).reshape(kh, kw, c, m)
        dtype = np.float16 if this == "float16" else np.float32
        weights = [kernel.astype(dtype)] + ([] if this == "dropped_bias" else [conv.bias.astype(dtype)])
        port.get_layer(PORT_NAMES[name]).set_weights(weights)
    return port


def _keras():  # noqa: ANN202
    from convdiff.frameworks import import_keras

    return import_keras()


# --- files ----------------------------------------------------------------------------------------------


def write_example_models(directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the reference, its correct and symmetric_pad ONNX ports and an input into `directory`.

    Only the names in `EXAMPLE_FILES` are written, each atomically (a complete file or the previous
    one); `small_cnn.h5` only where this Keras can still save legacy HDF5.

    Returns:
        {"keras", "keras_h5" (when written), "onnx", "onnx_symmetric_pad", "input"}: the paths written.
    """
    from convdiff.data.files import write_atomically

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = keras_cnn(seed)
    written: dict[str, Path] = {}

    def put(key: str, data: bytes) -> None:
        path = directory / EXAMPLE_FILES[key]
        write_atomically(path, data, what=f"example model file ({key})")
        written[key] = path

    put("keras", _keras_file_bytes(model, ".keras"))
    h5 = _keras_file_bytes(model, ".h5")
    if h5 is not None:
        put("keras_h5", h5)
    put("onnx", onnx_port(model).SerializeToString())
    put("onnx_symmetric_pad", onnx_port(model, "symmetric_pad").SerializeToString())
    buffer = io.BytesIO()
    np.save(buffer, example_input(input_hw=tuple(model.input_shape[1:3]), channels=model.input_shape[3]))
    put("input", buffer.getvalue())
    return written


def _keras_file_bytes(model, suffix: str) -> bytes | None:  # noqa: ANN001
    """The bytes Keras writes for `model` in the format named by `suffix`; None where it cannot (h5)."""
    with tempfile.TemporaryDirectory(prefix="convdiff-small-cnn-") as scratch:
        path = os.path.join(scratch, f"model{suffix}")
        absl = logging.getLogger("absl")
        level = absl.level
        absl.setLevel(logging.ERROR)  # the "HDF5 is a legacy format" warning: writing it is the point here
        try:
            model.save(path)
        except (ValueError, ImportError, NotImplementedError):
            if suffix == ".keras":
                raise
            return None
        finally:
            absl.setLevel(level)
        with open(path, "rb") as fh:
            return fh.read()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m convdiff.suites.builtin.small_cnn",
                                     description="Write the small CNN's example model files into DIRECTORY.")
    parser.add_argument("directory")
    parser.add_argument("--seed", type=int, default=0, help="the weights' seed (default 0)")
    args = parser.parse_args(argv)
    for path in write_example_models(args.directory, seed=args.seed).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
