"""`keras-jax`: the `keras` backend's Conv*/DepthwiseConv*/Conv*Transpose layer, run by Keras 3 on JAX (XLA) in a
child process (`convdiff.backends.keras_engine`)."""

from __future__ import annotations

from convdiff.backends.keras_engine import KerasEngineBackend
from convdiff.errors import install_command


class KerasJaxBackend(KerasEngineBackend):
    name = "keras-jax"
    engine = "jax"
    summary = "the Keras convolution layers run by Keras 3 on JAX, in a child process"
    requires: tuple[str, ...] = ("jax", "keras")
    install_hint = install_command("jax")
