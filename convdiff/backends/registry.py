"""The backends by name, what each can express, and how to get one.

Modules are imported only when a backend is used, so that listing names (for `--help` and
`click.Choice`) never imports a framework. What a backend can express is declared here, in its
`Capabilities`, and checked by one function before anything runs: a refusal is exit 2 (a sweep
skips the config), never a framework error half-way through.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from convdiff.backends.base import Backend, BackendRefusedError, SideResult
from convdiff.errors import BackendUnavailableError, BadInputError, install_command
from convdiff.reference.rounding import CPU_ACCUMULATION, FLOAT64_ACCUMULATION, Arithmetic, precision_of
from convdiff.spec.convspec import CONVENTIONS, DATA_FORMATS, DEVICES, ConvSpec, PaddingMode
from convdiff.spec.dtypes import FLOAT_DTYPES
from convdiff.spec.parse import fmt_values


ALL_RANKS = frozenset((1, 2, 3))


def onednn_enabled() -> bool:
    """TensorFlow's oneDNN kernels: on by default for x86 Linux builds, off with TF_ENABLE_ONEDNN_OPTS=0."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can express and how it computes; everything else is refused before it runs."""

    dtypes: frozenset[str] = frozenset(FLOAT_DTYPES)
    """Compute dtypes it runs (`tf32` only where it is emulated)."""
    same: bool = True
    """TF `SAME` padding (ONNX `SAME_UPPER`)."""
    same_lower: bool = False
    """ONNX `SAME_LOWER` padding (the odd pad at the start) of a forward convolution."""
    no_same: str = ""
    """What the backend offers instead of SAME, when it has none."""
    asymmetric_pads: bool = True
    """Explicit pads that differ before and after."""
    strided_dilation: bool = True
    """Strides > 1 together with dilation > 1."""
    same_with_strides: bool = True
    """`SAME` together with strides > 1."""
    ranks: frozenset[int] = ALL_RANKS
    """Spatial ranks of forward convolutions (1-D, 2-D, 3-D)."""
    grouped_ranks: frozenset[int] = ALL_RANKS
    """Ranks where groups > 1 (grouped and depthwise) can be expressed."""
    grouped_note: str = ""
    """Why the other ranks cannot be grouped."""
    transposed_ranks: frozenset[int] = ALL_RANKS
    """Ranks of transposed convolutions (empty: none)."""
    transposed_groups: bool = True
    transposed_groups_note: str = ""
    transposed_dilation: bool = True
    transposed_dilation_note: str = ""
    transposed_same: bool = True
    """TF SAME for a transposed convolution (input x stride outputs)."""
    transposed_same_note: str = ""
    unflipped_transposed_kernel: bool = False
    """`transpose_kernel=false`: a transposed convolution with the kernel not flipped (Flax's default)."""
    output_padding: bool = True
    """Non-zero output padding of a transposed convolution."""
    output_padding_below_stride: bool = False
    """Output padding must be smaller than the stride itself (TensorFlow, Keras), not only than the dilation."""
    data_formats: frozenset[str] | None = frozenset(DATA_FORMATS)
    """The data formats it computes in; None when it always computes in its own layout (`layout`)."""
    layout: str = ""
    """What it computes in when `data_formats` is None (e.g. `NCHW`, or `layout-free` for NumPy references)."""
    channels_first_needs_onednn: bool = False
    """TensorFlow on CPU: channels_first (NCHW) kernels exist only with oneDNN."""
    conventions: frozenset[str] = frozenset(("correlation",))
    """`correlation` and, for references that can compute it, `convolution`."""

    devices: frozenset[str] = frozenset(("cpu",))
    """Where it can run (`ConvSpec.device`): `cpu`, and `gpu` for the frameworks that place work on one."""

    accumulation: tuple[tuple[str, str], ...] = CPU_ACCUMULATION
    """(compute dtype, the precision its sums run in), as measured on CPU (`convdiff.reference.rounding`):
    the rounding model's accumulation term."""

    def accumulates_in(self, compute_dtype: str) -> str:
        return dict(self.accumulation).get(compute_dtype, compute_dtype)

    def summary(self) -> str:
        """What it supports, one line (for `convdiff list` and the README's table)."""
        parts = [f"rank {_ranks(self.ranks)}"]
        if self.grouped_ranks:
            parts.append("groups/depthwise" + ("" if self.grouped_ranks == self.ranks
                                               else f" (rank {_ranks(self.grouped_ranks)})"))
        if self.transposed_ranks:
            missing = [w for w, ok in (("groups", self.transposed_groups), ("dilation", self.transposed_dilation),
                                       ("same", self.transposed_same), ("output_padding", self.output_padding))
                       if not ok]
            ranks = "" if self.transposed_ranks == self.ranks else f"rank {_ranks(self.transposed_ranks)}"
            note = ", ".join(([ranks] if ranks else []) + [f"no {m}" for m in missing])
            if self.unflipped_transposed_kernel:
                note = ", ".join(filter(None, (note, "transpose_kernel=false")))
            parts.append(f"transposed ({note})" if note else "transposed")
        if self.data_formats is None:
            parts.append(f"computes {self.layout}")
        elif "channels_first" in self.data_formats:
            parts.append("channels_first" + (" (needs oneDNN on CPU)" if self.channels_first_needs_onednn else ""))
        if "convolution" in self.conventions:
            parts.append("true convolution")
        if self.same_lower:
            parts.append("same_lower")
        pads = [w for w, ok in (("same", self.same), ("asymmetric pads", self.asymmetric_pads),
                                ("strides with dilation", self.strided_dilation),
                                ("same with strides", self.same_with_strides)) if not ok]
        if pads:
            parts.append("no " + ", no ".join(pads))
        parts.append("/".join(d for d in (*FLOAT_DTYPES, "tf32") if d in self.dtypes))
        if "gpu" in self.devices:
            parts.append("cpu/gpu")
        return "; ".join(parts)


def _ranks(ranks: frozenset[int]) -> str:
    values = sorted(ranks)
    if values == list(range(values[0], values[-1] + 1)) and len(values) > 1:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


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
        if spec.device not in can.devices:
            return (f"backend '{name}' runs on CPU only, not on {spec.device}; run only the other side there "
                    f"(e.g. --set candidate.device={spec.device})")
        if spec.convention not in can.conventions:
            return (f"backend '{name}' computes cross-correlation only (what deep-learning frameworks call "
                    "convolution); true convolution (convention=convolution, MATLAB conv2) is computed by the "
                    "numpy and scipy backends")
        kind = "transposed convolutions" if spec.transposed else "convolutions"
        ranks = can.transposed_ranks if spec.transposed else can.ranks
        if spec.rank not in ranks:
            have = f"only rank {_ranks(ranks)}" if ranks else "none"
            return f"backend '{name}' cannot build rank-{spec.rank} {kind} ({have})"
        if spec.groups > 1:
            what = "depthwise" if spec.depthwise else f"grouped (groups={spec.groups})"
            if spec.transposed and not can.transposed_groups:
                why = f": {can.transposed_groups_note}" if can.transposed_groups_note else ""
                return f"backend '{name}' cannot build {what} {kind}{why}"
            if spec.rank not in can.grouped_ranks:
                why = f": {can.grouped_note}" if can.grouped_note else ""
                return f"backend '{name}' cannot build {what} rank-{spec.rank} {kind}{why}"
        if spec.channels_first and can.data_formats is not None:
            if "channels_first" not in can.data_formats:
                return f"backend '{name}' computes channels_last only"
            if can.channels_first_needs_onednn and not onednn_enabled():
                return (f"backend '{name}' cannot compute channels_first (NCHW) on this CPU: TensorFlow's CPU "
                        "convolutions support NCHW only through oneDNN, which TF_ENABLE_ONEDNN_OPTS=0 turns off")
        if spec.transposed:
            reason = self._transposed_refusal(spec)
            if reason is not None:
                return reason
        mode = spec.padding.mode
        if mode is PaddingMode.SAME and not can.same:
            return f"backend '{name}' has no SAME padding: {can.no_same}"
        if mode is PaddingMode.SAME_LOWER and not can.same_lower:
            return (f"backend '{name}' has no SAME_LOWER padding (ONNX's, the odd pad at the start); give its pads "
                    f"explicitly (--padding {','.join(str(p) for pair in spec.pads for p in pair)})")
        if mode is PaddingMode.EXPLICIT and not spec.padding.symmetric and not can.asymmetric_pads:
            return (f"backend '{name}' pads symmetrically (one pad per axis); explicit pads {spec.padding} are "
                    "asymmetric")
        strided = any(s != 1 for s in spec.strides)
        if (not spec.transposed and strided and any(d != 1 for d in spec.dilation)
                and not can.strided_dilation):
            return (f"backend '{name}' cannot combine strides {tuple(spec.strides)} with dilation "
                    f"{tuple(spec.dilation)} (TensorFlow requires one of them to be 1)")
        if mode is PaddingMode.SAME and strided and not can.same_with_strides and not spec.transposed:
            return (f"backend '{name}' refuses padding='same' with strides {tuple(spec.strides)}: PyTorch allows "
                    f"'same' only with stride 1; give explicit pads (e.g. --padding 1) instead "
                    f"(TF SAME here pads {fmt_values(p for pair in spec.pads for p in pair)})")
        return None

    def _transposed_refusal(self, spec: ConvSpec) -> str | None:
        can, name = self.can, self.name
        if any(d != 1 for d in spec.dilation) and not can.transposed_dilation:
            return (f"backend '{name}' cannot build transposed convolutions with dilation {tuple(spec.dilation)}"
                    + (f": {can.transposed_dilation_note}" if can.transposed_dilation_note else ""))
        if not spec.transpose_kernel and not can.unflipped_transposed_kernel:
            return (f"backend '{name}' always flips the kernel of a transposed convolution; transpose_kernel=false "
                    "(Flax's un-flipped ConvTranspose) is the flax backend's")
        if spec.padding.mode is PaddingMode.SAME and not can.transposed_same:
            return f"backend '{name}' has no SAME for transposed convolutions: {can.transposed_same_note}"
        if any(spec.output_padding):
            if not can.output_padding:
                return f"backend '{name}' has no output_padding for transposed convolutions"
            if can.output_padding_below_stride and any(op >= s for op, s in zip(spec.output_padding, spec.strides)):
                return (f"backend '{name}' needs output_padding smaller than the stride on each axis (output padding "
                        f"{fmt_values(spec.output_padding)}, strides {fmt_values(spec.strides)}), as TensorFlow's "
                        "conv_transpose and Keras do")
        return None

    def check_spec(self, spec: ConvSpec) -> None:
        """Refuse (exit 2; a sweep skips) a spec this backend cannot express, before anything runs."""
        reason = self.refusal(spec)
        if reason is not None:
            raise BackendRefusedError(reason)

    def arithmetic(self, result: SideResult) -> Arithmetic:
        """How this backend computed `result`: the precisions of the rounding model.

        The operands are rounded to the compute dtype (every framework casts its input and kernel to
        it; the numpy reference promotes them to float64, exactly), the sums run in the precision
        `Capabilities.accumulation` declares, and the output is stored in its array's dtype.
        """
        compute = result.compute_dtype
        return Arithmetic(compute, self.can.accumulates_in(compute), precision_of(np.asarray(result.output).dtype))

    def missing(self) -> list[str]:
        return [m for m in self.requires if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken module counts as missing
        return False


LEGACY_HINT = install_command("legacy")
_NO_TF_TRANSPOSED_DILATION = ("TensorFlow's CPU conv_transpose supports no dilation (without oneDNN: 'Current CPU "
                              "implementations do not yet support dilation rates larger than 1'; with it, 2-D fails "
                              "to create its primitive)")
_TF_COMMON = dict(strided_dilation=False, transposed_groups=False,
                  transposed_groups_note="TensorFlow's conv_transpose and Keras' ConvTranspose layers have no groups",
                  transposed_dilation=False,
                  transposed_dilation_note=_NO_TF_TRANSPOSED_DILATION, output_padding_below_stride=True,
                  channels_first_needs_onednn=True, devices=frozenset(DEVICES))
# tf.nn: grouped through tf.nn.convolution (and depthwise_conv2d) in 1-D and 2-D; its Conv3D kernel checks
# "input and filter must have the same depth" on CPU, so 3-D groups are refused.
_TF = Capabilities(grouped_ranks=frozenset((1, 2)),
                   grouped_note="TensorFlow's CPU Conv3D has no groups ('input and filter must have the same depth')",
                   **_TF_COMMON)
# TF1 graphs are built on the CPU here (a device scope for graph mode is not wired up).
_TF1_NN = dataclasses.replace(_TF, devices=frozenset(("cpu",)))
# Keras runs grouped convolutions through XLA on CPU (its TensorFlow backend compiles them), so every rank.
_KERAS = Capabilities(**_TF_COMMON)
# Keras 3 on other engines: the same layers and Keras' own checks (no strides with dilation, output padding
# below the stride, no transposed groups), but dilated transposed convolutions run (measured on both engines)
# and channels_first needs no oneDNN.
_KERAS_ENGINE = Capabilities(**{**_TF_COMMON, "channels_first_needs_onednn": False, "transposed_dilation": True})
_KERAS_JAX = _KERAS_TORCH = _KERAS_ENGINE
_TF1_LAYERS = Capabilities(grouped_ranks=frozenset(), grouped_note="tf.compat.v1.layers have no groups",
                           transposed_ranks=frozenset((2, 3)), output_padding=False,
                           **{**_TF_COMMON, "output_padding_below_stride": False, "devices": frozenset(("cpu",))})
_NO_DATA_FORMAT = dict(data_formats=None)
_CAFFE_NO_SAME = ("Caffe's Convolution layer takes a symmetric pad (pad_h, pad_w) and computes "
                  "floor((H + 2*pad - dilation*(k-1) - 1) / stride) + 1 outputs; give --padding P or PH,PW "
                  "(TF SAME with stride 1 and an odd kernel k equals pad (k-1)/2)")

# ONNX Runtime's CPU Conv and ConvTranspose kernels are registered for float only (float16 runs only on
# other providers, float64 not at all): the model computes in float32.
_ONNXRUNTIME = Capabilities(dtypes=frozenset(("float32",)), same_lower=True, layout="NCHW", **_NO_DATA_FORMAT)
# XLA on CPU: every kind, any pads (explicit pairs), SAME_LOWER as its pads.
_JAX = Capabilities(same_lower=True, layout="NHWC (channels-last)", **_NO_DATA_FORMAT)
_FLAX = Capabilities(same_lower=True, transposed_groups=False, unflipped_transposed_kernel=True,
                     transposed_groups_note="flax.nnx.ConvTranspose has no feature_group_count",
                     layout="NHWC (channels-last)", **_NO_DATA_FORMAT)

REGISTRY: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("numpy", "convdiff.backends.numpy_ref:NumpyBackend",
                    "float64 NumPy reference with exact TF padding semantics (no TensorFlow)",
                    can=Capabilities(dtypes=frozenset((*FLOAT_DTYPES, "tf32")), accumulation=FLOAT64_ACCUMULATION,
                                     same_lower=True,
                                     data_formats=None, layout="layout-free (float64)",
                                     conventions=frozenset(CONVENTIONS))),
        BackendInfo("nn", "convdiff.backends.nn:NnBackend",
                    "tf.nn.conv1d/conv2d/conv3d, tf.nn.convolution (groups), depthwise_conv2d, conv_transpose + "
                    "bias_add with a get_variable-style tf.Variable kernel", can=_TF),
        BackendInfo("keras", "convdiff.backends.keras_layer:KerasPredictBackend",
                    "keras.layers.Conv1D/2D/3D (groups), DepthwiseConv1D/2D, Conv1D/2D/3DTranspose in a "
                    "keras.Model, run through predict()", can=_KERAS),
        BackendInfo("keras-call", "convdiff.backends.keras_layer:KerasCallBackend",
                    "the same Keras layers called directly on a tensor (no Model.predict)", can=_KERAS),
        BackendInfo("keras-jax", "convdiff.backends.keras_jax:KerasJaxBackend",
                    "the same Keras layers run by Keras 3 on JAX (XLA), called directly, in a child process "
                    "(KERAS_BACKEND=jax)", ("jax", "keras"), "pip install -e '.[jax]' (from a convdiff checkout)",
                    can=_KERAS_JAX),
        BackendInfo("keras-torch", "convdiff.backends.keras_torch:KerasTorchBackend",
                    "the same Keras layers run by Keras 3 on PyTorch, called directly, in a child process "
                    "(KERAS_BACKEND=torch)", ("torch", "keras"), "pip install -e '.[torch]' (from a convdiff checkout)",
                    can=_KERAS_TORCH),
        BackendInfo("v1-nn", "convdiff.backends.tf1:V1NnBackend",
                    "TF1 graph mode: tf.compat.v1.get_variable + the tf.nn ops of `nn`, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True, can=_TF1_NN),
        BackendInfo("v1-layers", "convdiff.backends.tf1:V1LayersBackend",
                    "TF1 graph mode: tf.compat.v1.layers.conv1d/2d/3d, conv2d/3d_transpose, graph-level seed",
                    requires=("tf_keras",), install_hint=LEGACY_HINT, needs_legacy=True, can=_TF1_LAYERS),
        BackendInfo("caffe", "convdiff.backends.caffe:CaffeBackend",
                    "Caffe's Convolution (group) and Deconvolution layers in NumPy: NCHW, symmetric pad, "
                    "floor output size",
                    can=Capabilities(dtypes=frozenset(("float32", "float64")), same=False, asymmetric_pads=False,
                                     no_same=_CAFFE_NO_SAME, transposed_same=False, transposed_same_note=_CAFFE_NO_SAME,
                                     output_padding=False, layout="NCHW", **_NO_DATA_FORMAT)),
        BackendInfo("torch", "convdiff.backends.torch_conv:TorchBackend",
                    "torch.nn.functional.conv1d/2d/3d (groups), conv_transpose1d/2d/3d (output_padding), NCHW, "
                    "PyTorch's own padding rules",
                    ("torch",), install_command("torch"),
                    can=Capabilities(same_with_strides=False, transposed_same=False,
                                     transposed_same_note="ConvTranspose has no padding='same'; give PyTorch's "
                                                          "padding and output_padding (e.g. --padding 1 "
                                                          "--output-padding 1 for kernel 3, stride 2)",
                                     layout="NCHW", devices=frozenset(DEVICES), **_NO_DATA_FORMAT)),
        BackendInfo("scipy", "convdiff.backends.scipy_signal:ScipyBackend",
                    "scipy.signal.correlate / convolve per channel pair (the library MATLAB-style ports are checked "
                    "against; true convolution with --convention convolution)",
                    can=Capabilities(dtypes=frozenset(("float32", "float64")), layout="layout-free (per channel)",
                                     conventions=frozenset(CONVENTIONS), same_lower=True, **_NO_DATA_FORMAT)),
        BackendInfo("onnxruntime", "convdiff.backends.onnx_runtime:OnnxRuntimeBackend",
                    "a one-node ONNX model (Conv / ConvTranspose, opset 17) built with onnx.helper, run by ONNX "
                    "Runtime's CPU provider, graph optimisations off unless ort_optimization says otherwise",
                    ("onnx", "onnxruntime"), install_command("onnx"), can=_ONNXRUNTIME),
        BackendInfo("jax", "convdiff.backends.jax_conv:JaxBackend",
                    "jax.lax.conv_general_dilated with explicit dimension numbers and pads (transposed: "
                    "lhs_dilation with the flipped kernel), on JAX's CPU device",
                    ("jax",), install_command("jax"), can=_JAX),
        BackendInfo("flax", "convdiff.backends.flax_conv:FlaxBackend",
                    "flax.nnx.Conv (feature_group_count) and flax.nnx.ConvTranspose, channels-last, with Flax's "
                    "defaults written out (transpose_kernel from the spec)",
                    ("flax", "jax"), install_command("jax"), can=_FLAX),
    )
}


RECORDED = BackendInfo("recorded", "", "a recorded output array read from a file: no backend runs; assumed "
                       "computed in the array's dtype as a CPU framework sums (the default accumulation)")
"""The rounding model of a recorded side (not in REGISTRY: it cannot be chosen as a backend)."""


def backend_names() -> list[str]:
    return list(REGISTRY)


def backend_info(name: str) -> BackendInfo:
    if name == RECORDED.name:
        return RECORDED
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
