"""The backends by name, what each can express, and how to get one.

Modules are imported only when a backend is used, so that listing names (for `--help` and
`click.Choice`) never imports a framework. What a backend can express is declared here, in its
`Capabilities`, and checked by one function before anything runs: a refusal is exit 2 (a sweep
skips the config), never a framework error half-way through.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field

from convdiff.backends.base import Backend, BackendRefusedError
from convdiff.errors import BackendUnavailableError, BadInputError
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.dtypes import FLOAT_DTYPES
from convdiff.spec.parse import fmt_values


@dataclass(frozen=True)
class Capabilities:
    """What a backend can express; everything else is refused before it runs."""

    dtypes: frozenset[str] = frozenset(FLOAT_DTYPES)
    """Compute dtypes it runs (`tf32` only where it is emulated)."""
    same: bool = True
    """TF `SAME` padding."""
    no_same: str = ""
    """What the backend offers instead of SAME, when it has none."""
    asymmetric_pads: bool = True
    """Explicit pads that differ before and after."""
    strided_dilation: bool = True
    """Strides > 1 together with dilation > 1."""
    same_with_strides: bool = True
    """`SAME` together with strides > 1."""


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
    can: Capabilities = field(default_factory=Capabilities)

    def refusal(self, spec: ConvSpec) -> str | None:
        """Why this backend cannot express `spec`, or None when it can."""
        can, name = self.can, self.name
        if spec.dtype not in can.dtypes:
            if spec.dtype == "tf32":
                return (f"backend '{name}' cannot compute in tf32: it is an emulation of the numpy reference "
                        "(e.g. --reference numpy --set reference.dtype=tf32); TF32 itself runs only on GPU tensor cores")
            return f"backend '{name}' computes in {' or '.join(sorted(can.dtypes))}, not {spec.dtype}"
        mode = spec.padding.mode
        if mode is PaddingMode.SAME and not can.same:
            return f"backend '{name}' has no SAME padding: {can.no_same}"
        if mode is PaddingMode.EXPLICIT and not spec.padding.symmetric and not can.asymmetric_pads:
            return f"backend '{name}' pads symmetrically (pad_h, pad_w); explicit pads {spec.padding} are asymmetric"
        strided = any(s != 1 for s in spec.strides)
        if strided and any(d != 1 for d in spec.dilation) and not can.strided_dilation:
            return (f"backend '{name}' cannot combine strides {tuple(spec.strides)} with dilation "
                    f"{tuple(spec.dilation)} (TensorFlow requires one of them to be 1)")
        if mode is PaddingMode.SAME and strided and not can.same_with_strides:
            return (f"backend '{name}' refuses padding='same' with strides {tuple(spec.strides)}: PyTorch allows "
                    f"'same' only with stride 1; give explicit pads (e.g. --padding 1) instead "
                    f"(TF SAME here pads {fmt_values(p for pair in spec.pads for p in pair)})")
        return None

    def check_spec(self, spec: ConvSpec) -> None:
        """Refuse (exit 2; a sweep skips) a spec this backend cannot express, before anything runs."""
        reason = self.refusal(spec)
        if reason is not None:
            raise BackendRefusedError(reason)

    def missing(self) -> list[str]:
        return [m for m in self.requires if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken module counts as missing
        return False


LEGACY_HINT = "pip install 'convdiff[legacy]'"
_TF = Capabilities(strided_dilation=False)

REGISTRY: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("numpy", "convdiff.backends.numpy_ref:NumpyBackend",
                    "float64 NumPy reference with exact TF padding semantics (no TensorFlow)",
                    can=Capabilities(dtypes=frozenset((*FLOAT_DTYPES, "tf32")))),
        BackendInfo("nn", "convdiff.backends.nn:NnBackend",
                    "tf.nn.conv2d + tf.nn.bias_add with a get_variable-style tf.Variable kernel", can=_TF),
        BackendInfo("keras", "convdiff.backends.keras_layer:KerasPredictBackend",
                    "keras.layers.Conv2D(kernel_initializer=...) in a keras.Model, run through predict()", can=_TF),
        BackendInfo("keras-call", "convdiff.backends.keras_layer:KerasCallBackend",
                    "keras.layers.Conv2D called directly on a tensor (no Model.predict)", can=_TF),
        BackendInfo("v1-nn", "convdiff.backends.tf1:V1NnBackend",
                    "TF1 graph mode: tf.compat.v1.get_variable + tf.nn.conv2d + bias_add, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True, can=_TF),
        BackendInfo("v1-layers", "convdiff.backends.tf1:V1LayersBackend",
                    "TF1 graph mode: tf.compat.v1.layers.conv2d, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True, can=_TF),
        BackendInfo("caffe", "convdiff.backends.caffe:CaffeBackend",
                    "Caffe's Convolution layer in NumPy: NCHW/OIHW, symmetric pad (pad_h, pad_w), floor output size",
                    can=Capabilities(dtypes=frozenset(("float32", "float64")), same=False, asymmetric_pads=False,
                                     no_same="Caffe's Convolution layer takes a symmetric pad (pad_h, pad_w) and "
                                             "computes floor((H + 2*pad - dilation*(k-1) - 1) / stride) + 1 outputs; "
                                             "give --padding P or PH,PW (TF SAME with stride 1 and an odd kernel k "
                                             "equals pad (k-1)/2)")),
        BackendInfo("torch", "convdiff.backends.torch_conv:TorchBackend",
                    "torch.nn.functional.conv2d (NCHW/OIHW), PyTorch's own padding rules",
                    ("torch",), "pip install 'convdiff[torch]'", can=Capabilities(same_with_strides=False)),
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
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an installed framework that cannot load here (a broken install, ulimit -v)
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise BackendUnavailableError(f"backend '{name}' could not import its framework: {first}") from exc
    return getattr(module, cls_name)()
