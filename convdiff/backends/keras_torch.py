"""`keras-torch`: the `keras` backend's Conv*/DepthwiseConv*/Conv*Transpose layer, run by Keras 3 on PyTorch in a
child process (`convdiff.backends.keras_engine`)."""

from __future__ import annotations

from convdiff.backends.keras_engine import KerasEngineBackend
from convdiff.errors import install_command


class KerasTorchBackend(KerasEngineBackend):
    name = "keras-torch"
    engine = "torch"
    summary = "the Keras convolution layers run by Keras 3 on PyTorch, in a child process"
    requires: tuple[str, ...] = ("torch", "keras")
    install_hint = install_command("torch")
