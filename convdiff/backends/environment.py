"""What a result was computed on: versions, oneDNN, threads, device. Never imports a framework itself."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from functools import lru_cache
from typing import Any

from convdiff.backends.registry import onednn_enabled


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tf_op_determinism() -> bool | None:
    """Whether tf.config.experimental.enable_op_determinism() (deterministic cuDNN algorithms) is on.

    TensorFlow has a setter but no public getter; its internal one is read, None when it moved.
    """
    try:
        from tensorflow.python.framework import config as tf_config
    except ImportError:
        return None
    getter = getattr(tf_config, "is_op_determinism_enabled", None)
    return bool(getter()) if getter is not None else None


def collect() -> dict[str, Any]:
    """The environment block of every JSON report."""
    env: dict[str, Any] = {
        "convdiff": _version("convdiff"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _version("numpy"),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "tf_keras": _version("tf-keras"),
        "torch": _version("torch") if "torch" in sys.modules else None,
        "onnxruntime": _version("onnxruntime") if "onnxruntime" in sys.modules else None,
        "jax": _version("jax") if "jax" in sys.modules else None,
        "flax": _version("flax") if "flax" in sys.modules else None,
        # oneDNN is on by default for x86 Linux builds of TensorFlow unless TF_ENABLE_ONEDNN_OPTS=0.
        "onednn": onednn_enabled(),
        "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS") == "1",
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": "CPU",
        "gpus": [],
        # CPUs this process may run on (containers and taskset restrict it below cpu_count).
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "intra_op_threads": None,
        "inter_op_threads": None,
        "tf32": None,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        # The settings themselves, GPU or not: cuDNN convolutions use TF32 on Ampere+ unless allow_tf32 is off.
        env["torch_cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        env["torch_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        env["torch_cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
        env["torch_cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        if torch.cuda.is_available():
            env["torch_device"] = torch.cuda.get_device_name(0)
            env["torch_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)
    jax = sys.modules.get("jax")
    if jax is not None:
        # None: JAX's default, under which XLA may use TF32 for float32 convolutions on a GPU.
        env["jax"] = _version("jax")
        env["jax_default_matmul_precision"] = jax.config.jax_default_matmul_precision
        env["jax_device"] = str(jax.devices()[0].platform)
    engines = sys.modules.get("convdiff.backends.keras_engine")
    if engines is not None and engines.environments():
        # keras-jax / keras-torch run in child processes: what each child reported about itself.
        env["keras_engines"] = engines.environments()
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        # 0 means TensorFlow picks the count itself (one per available CPU).
        env["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        env["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        env["tf_tensor_float_32_execution"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
        env["tf_op_determinism"] = _tf_op_determinism()
        gpus = tf.config.list_physical_devices("GPU")
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        env["gpus"] = names
        if names:
            env["device"] = names[0]
            # TensorFlow runs float32 convolutions in TF32 on Ampere and later unless disabled.
            env["tf32"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
    return env
