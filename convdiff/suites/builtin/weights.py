"""How the model files shipped with the built-in experiments were made (tests check the files match).

`python -m convdiff.suites.builtin.weights DIR` writes them again into DIR.
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


def write(directory: str | Path) -> list[Path]:
    from convdiff.data.files import write_atomically

    written = []
    for name, data in caffe_conv1_files().items():
        target = Path(directory) / name
        write_atomically(str(target), data, "model file")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
