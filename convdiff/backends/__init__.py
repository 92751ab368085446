"""Registry of backends. Modules are imported only when a backend is used, so that listing
names (for `--help` and `click.Choice`) never imports a framework."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convdiff.backends.base import Backend, BackendRefusedError, SideResult, Weights
from convdiff.errors import BackendUnavailableError, BadInputError

if TYPE_CHECKING:
    from convdiff.spec.convspec import ConvSpec


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str
    """module:Class, imported lazily."""
    summary: str
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    needs_legacy: bool = False
    """Needs TF_USE_LEGACY_KERAS=1 before TensorFlow's first import (the TF1 layers); see prepare_frameworks."""
    emulates_tf32: bool = False
    """Accepts the `tf32` compute dtype (an emulation: only the NumPy reference can do it on a CPU)."""

    def check_spec(self, spec: ConvSpec) -> None:
        """Refuse (exit 2; a sweep skips) a spec this backend cannot express, before anything runs."""
        if spec.dtype == "tf32" and not self.emulates_tf32:
            raise BackendRefusedError(
                f"backend '{self.name}' cannot compute in tf32: it is an emulation of the numpy reference "
                "(e.g. --reference numpy --set reference.dtype=tf32); TF32 itself runs only on GPU tensor cores")

    def missing(self) -> list[str]:
        return [m for m in self.requires if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken module counts as missing
        return False


LEGACY_HINT = "pip install 'convdiff[legacy]'"

REGISTRY: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("numpy", "convdiff.backends.numpy_ref:NumpyBackend",
                    "float64 NumPy reference with exact TF padding semantics (no TensorFlow)", emulates_tf32=True),
        BackendInfo("nn", "convdiff.backends.nn:NnBackend",
                    "tf.nn.conv2d + tf.nn.bias_add with a get_variable-style tf.Variable kernel"),
        BackendInfo("keras", "convdiff.backends.keras_layer:KerasPredictBackend",
                    "keras.layers.Conv2D(kernel_initializer=...) in a keras.Model, run through predict()"),
        BackendInfo("keras-call", "convdiff.backends.keras_layer:KerasCallBackend",
                    "keras.layers.Conv2D called directly on a tensor (no Model.predict)"),
        BackendInfo("v1-nn", "convdiff.backends.tf1:V1NnBackend",
                    "TF1 graph mode: tf.compat.v1.get_variable + tf.nn.conv2d + bias_add, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True),
        BackendInfo("v1-layers", "convdiff.backends.tf1:V1LayersBackend",
                    "TF1 graph mode: tf.compat.v1.layers.conv2d, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True),
        BackendInfo("caffe", "convdiff.backends.caffe:CaffeBackend",
                    "Caffe's Convolution layer in NumPy: NCHW/OIHW, symmetric pad (pad_h, pad_w), floor output size"),
        BackendInfo("torch", "convdiff.backends.torch_conv:TorchBackend",
                    "torch.nn.functional.conv2d (NCHW/OIHW), PyTorch's own padding rules",
                    ("torch",), "pip install 'convdiff[torch]'"),
    )
}


def backend_names() -> list[str]:
    return list(REGISTRY)


def backend_info(name: str) -> BackendInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise BadInputError(f"unknown backend '{name}' (choose from {', '.join(REGISTRY)})") from None


def prepare_frameworks(names: Iterable[str]) -> None:
    """Import TensorFlow the way every backend in `names` needs it, before any of them runs.

    TF_USE_LEGACY_KERAS is read once, at TensorFlow's first import: if any requested backend is a
    TF1 one (and can run here), the whole process imports TensorFlow in legacy mode. The Keras 3
    backends are unaffected by it (`import keras` stays Keras 3; only `tf.keras` becomes tf-keras).
    Backends whose requirements are missing are left to `get_backend`, which says what to install.
    """
    if any(backend_info(n).needs_legacy and not backend_info(n).missing() for n in names):
        from convdiff.frameworks import import_tensorflow

        import_tensorflow(legacy=True)


def get_backend(name: str) -> Backend:
    """Instantiate a backend, or raise BackendUnavailableError (exit 3) naming the extra to install."""
    info = backend_info(name)
    missing = info.missing()
    if missing:
        raise BackendUnavailableError(
            f"backend '{name}' needs {', '.join(missing)}, which is not installed: {info.install_hint}")
    if info.needs_legacy:
        prepare_frameworks([name])  # raises (exit 3) when TF was already imported without legacy
    module_name, cls_name = info.target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)()


__all__ = ["REGISTRY", "Backend", "BackendInfo", "BackendRefusedError", "SideResult", "Weights",
           "backend_info", "backend_names", "get_backend",
           "prepare_frameworks"]
