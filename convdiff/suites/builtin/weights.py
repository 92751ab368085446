"""How the model files and arrays shipped with the built-in experiments were made (tests check the files match).

`python -m convdiff.suites.builtin.weights [DIR]` writes them again, atomically, into DIR (default: next to
this module).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

CAFFE_NAME = "caffe-conv1"

# A deploy prototxt as Caffe users write it: the input declared by an Input layer, conv1 with its
# fillers (what Caffe draws the weights from when it trains), and an in-place ReLU.
CAFFE_PROTOTXT = """\
name: "caffe-port"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape { dim: 1 dim: 1 dim: 128 dim: 128 } }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param {
    num_output: 96
    kernel_size: 5
    pad: 2
    stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0.1 }
  }
}
layer {
  name: "relu1"
  type: "ReLU"
  bottom: "conv1"
  top: "conv1"
}
"""


def caffe_conv1(seed: int = 2016) -> dict[str, np.ndarray]:
    """conv1 of the caffe-port experiment: 96 filters 5x5 on one channel, Caffe's OIHW (96, 1, 5, 5).

    Caffe's `xavier` filler: uniform in +-sqrt(3 / fan_in), fan_in = C * kh * kw = 25 (Caffe's default
    variance_norm FAN_IN); the `constant` bias filler with value 0.1. float32, as Caffe stores blobs.
    """
    limit = np.sqrt(3.0 / 25.0)
    kernel = np.random.default_rng(seed).uniform(-limit, limit, size=(96, 1, 5, 5)).astype(np.float32)
    return {"kernel": kernel, "bias": np.full(96, 0.1, dtype=np.float32)}


CAFFE_OUTPUT = f"{CAFFE_NAME}-output.npy"
"""The recorded conv1 blob: what `np.save(path, net.blobs['conv1'].data)` writes after `net.forward()`."""


def caffe_conv1_output() -> np.ndarray:
    """conv1's output blob as caffe.Net holds it: NCHW (1, 96, 128, 128) float32, computed by convdiff's
    Caffe backend (Caffe's own im2col + GEMM semantics, in float32) on the synthetic 128x128 grayscale
    image of the caffe-port experiment (`input = "image"`), pad 2, stride 1, the caffemodel's weights."""
    from convdiff.backends.base import Weights
    from convdiff.backends.caffe import CaffeBackend
    from convdiff.data.inputs import make_input
    from convdiff.spec.convspec import ConvSpec
    from convdiff.spec.fields import parse_fields

    spec = ConvSpec(**parse_fields({"input": "image", "input_shape": [1, 128, 128, 1], "filters": 96,
                                    "kernel_size": 5, "padding": 2, "strides": 1, "dtype": "float32"}))
    arrays = caffe_conv1()
    weights = Weights(np.ascontiguousarray(arrays["kernel"].transpose(2, 3, 1, 0)), arrays["bias"])
    output = CaffeBackend().run(spec, make_input(spec), weights).output
    return np.ascontiguousarray(output.transpose(0, 3, 1, 2)).astype(np.float32)


def caffe_conv1_files() -> dict[str, bytes]:
    """{file name: bytes} of conv1 as Caffe would have saved it: the deploy prototxt, and the caffemodel
    (a binary NetParameter: the same layers, conv1 with its two blobs)."""
    from google.protobuf import text_format

    from convdiff.data.modelfiles.caffe_proto import message_classes

    net = message_classes()["NetParameter"]()
    text_format.Parse(CAFFE_PROTOTXT, net)
    arrays = caffe_conv1()
    conv1 = next(layer for layer in net.layer if layer.name == "conv1")
    for array in (arrays["kernel"], arrays["bias"]):
        blob = conv1.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.data.extend(array.ravel().tolist())
    return {f"{CAFFE_NAME}.prototxt": CAFFE_PROTOTXT.encode("utf-8"),
            f"{CAFFE_NAME}.caffemodel": net.SerializeToString(deterministic=True)}


MOBILENET_CHANNELS, MOBILENET_MULTIPLIER = 16, 2


def mobilenet_depthwise(seed: int = 2017) -> dict[str, np.ndarray]:
    """A MobileNet depthwise 3x3 layer as PyTorch stores it: nn.Conv2d(16, 32, 3, padding=1, groups=16), weight
    (C*M, 1, 3, 3) with output channel c*M + m, depth multiplier M = 2 (Keras' MobileNet(depth_multiplier=2)).

    PyTorch's default init (kaiming_uniform with a = sqrt(5): uniform in +-1/sqrt(fan_in), fan_in = 1 * 3 * 3)
    for the weight and the bias. float32.
    """
    rng = np.random.default_rng(seed)
    c, m = MOBILENET_CHANNELS, MOBILENET_MULTIPLIER
    bound = 1.0 / np.sqrt(9.0)
    return {"kernel": rng.uniform(-bound, bound, size=(c * m, 1, 3, 3)).astype(np.float32),
            "bias": rng.uniform(-bound, bound, size=c * m).astype(np.float32)}


def mobilenet_depthwise_m_major() -> dict[str, np.ndarray]:
    """The same layer ported to Keras' DepthwiseConv2D kernel (3, 3, C, M) with the channel-order mistake:
    `w.reshape(M, C, 3, 3).transpose(2, 3, 1, 0)` (m-major) instead of `w.reshape(C, M, 3, 3).transpose(2, 3, 0, 1)`.
    The shape fits, so nothing fails: Keras' channel c*M + m gets PyTorch's channel m*C + c. The bias, a plain
    vector in both frameworks, is copied as it is."""
    torch_layer = mobilenet_depthwise()
    c, m = MOBILENET_CHANNELS, MOBILENET_MULTIPLIER
    kernel = torch_layer["kernel"].reshape(m, c, 3, 3).transpose(2, 3, 1, 0)
    return {"kernel": np.ascontiguousarray(kernel), "bias": torch_layer["bias"]}


def tf11864() -> dict[str, np.ndarray]:
    """tensorflow#11864: x = 1..16 as a 4x4 image, row by row, on 3 channels (NHWC (1, 4, 4, 3)); k = 1..9 as a
    3x3 kernel, row by row, on the same 3 channels, one output (HWIO (3, 3, 3, 1)); float16 as in the issue."""
    x = np.repeat(np.arange(1, 17, dtype=np.float16).reshape(1, 4, 4, 1), 3, axis=3)
    k = np.repeat(np.arange(1, 10, dtype=np.float16).reshape(3, 3, 1, 1), 3, axis=2)
    return {"input": x, "kernel": k}


FILES = {
    "mobilenet-dw.npz": mobilenet_depthwise,
    "mobilenet-dw-keras-m-major.npz": mobilenet_depthwise_m_major,
    "tf11864-input.npz": lambda: {"input": tf11864()["input"]},
    "tf11864-kernel.npz": lambda: {"kernel": tf11864()["kernel"]},
}
"""The shipped arrays and the function that makes each (the Caffe model files: `caffe_conv1_files`)."""


def write(directory: str | Path) -> list[Path]:
    """Write every shipped file (atomically) into `directory`: the Caffe model files, conv1's recorded
    output and the arrays."""
    import io

    from convdiff.data.files import write_atomically

    written = []
    for name, data in caffe_conv1_files().items():
        target = Path(directory) / name
        write_atomically(str(target), data, "model file")
        written.append(target)
    buffer = io.BytesIO()
    np.save(buffer, caffe_conv1_output())
    target = Path(directory) / CAFFE_OUTPUT
    write_atomically(str(target), buffer.getvalue(), "recorded output")
    written.append(target)
    for name, make in FILES.items():
        buffer = io.BytesIO()
        np.savez(buffer, **make())
        target = Path(directory) / name
        write_atomically(str(target), buffer.getvalue(), "built-in array")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
