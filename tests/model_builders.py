"""Model files written by the tests themselves, through each framework's own saving code (no downloads)."""

from __future__ import annotations

import numpy as np


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- Caffe ------------------------------------------------------------------------------------------------


def caffe_net():  # noqa: ANN201 - a NetParameter of convdiff's caffe.proto subset
    from convdiff.data.modelfiles.caffe_proto import message_classes

    return message_classes()["NetParameter"]()


def add_blob(layer, array: np.ndarray, legacy: bool = False) -> None:  # noqa: ANN001
    blob = layer.blobs.add()
    if legacy:  # the deprecated num/channels/height/width of old caffemodels
        dims = (1,) * (4 - array.ndim) + array.shape
        blob.num, blob.channels, blob.height, blob.width = dims
    else:
        blob.shape.dim.extend(array.shape)
    blob.data.extend(array.astype(np.float32).ravel().tolist())


def caffe_layer(net, name: str, kind: str = "Convolution", bottom: str = "data",  # noqa: ANN001, ANN201
                blobs=(), **params):  # noqa: ANN003
    layer = net.layer.add(name=name, type=kind)
    layer.bottom.append(bottom)
    layer.top.append(name)
    conv = layer.convolution_param
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            getattr(conv, key).extend(value)
        else:
            setattr(conv, key, value)
    for array in blobs:
        add_blob(layer, array)
    return layer


# --- Keras --------------------------------------------------------------------------------------------------


def keras_model():  # noqa: ANN201
    """A functional Keras 3 model with every convolution layer type convdiff reads (weights random)."""
    import keras

    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(inp)
    x = keras.layers.Conv2D(4, (3, 1), dilation_rate=(2, 1), padding="valid", name="c2")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = keras.layers.SeparableConv2D(6, 3, padding="same", name="sep")(x)
    x = keras.layers.Conv2D(6, 1, groups=3, use_bias=False, name="grouped")(x)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1, name="up")(x)
    inner = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1, name="inner")], name="block")
    x = inner(x)
    seq = keras.layers.Reshape((-1, 2))(x)
    y = keras.layers.Conv1D(2, 3, padding="causal", dilation_rate=2, name="c1d")(seq)
    vol = keras.layers.Reshape((2, 4, 4, -1))(keras.layers.Cropping2D(((0, 0), (0, 8)))(x))
    z = keras.layers.Conv3D(2, 2, name="c3d")(vol)
    y = keras.layers.Conv1DTranspose(3, 3, strides=2, name="up1d")(y)
    z = keras.layers.Conv3DTranspose(2, 2, name="up3d")(z)
    model = keras.Model(inp, [y, z])
    weights = [rng(i).standard_normal(w.shape).astype("float32") for i, w in enumerate(model.get_weights())]
    model.set_weights(weights)
    return model


# --- ONNX ---------------------------------------------------------------------------------------------------


def onnx_conv_model(nodes, initializers, inputs, outputs):  # noqa: ANN001, ANN201
    from onnx import helper

    graph = helper.make_graph(nodes, "convdiff-test", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
