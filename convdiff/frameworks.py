"""Importing TensorFlow quietly, in one place.

TensorFlow writes its start-up notices (oneDNN, CUDA probing) through absl *before* its own log
level is read, straight to file descriptor 2, so `TF_CPP_MIN_LOG_LEVEL` alone cannot silence them.
We capture fd 2 while TensorFlow starts, drop only the lines known to be start-up noise, and pass
every other line (real errors included) through unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from convdiff.errors import BackendUnavailableError

_NOISE = [
    re.compile(p)
    for p in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        r"^I\d{4} .*",  # absl INFO lines: oneDNN notice, CPU feature notice, "could not find cuda drivers"
        r"^W\d{4} .*(cuda|TensorRT|TF-TRT|computation_placer|oneDNN).*",
        r"^E\d{4} .*cuda_platform\.cc.*failed call to cuInit.*",  # no GPU driver: the CPU-only case
        r"^E\d{4} .*(cuda_dnn|cuda_fft|cuda_blas)\.cc.*Unable to register .* factory.*",
        r"^To enable the following instructions: .* in other operations, rebuild TensorFlow.*",
        r"^This TensorFlow binary is optimized to use available CPU instructions.*",
    )
]

LEGACY_ENV = "TF_USE_LEGACY_KERAS"


def is_noise(line: str) -> bool:
    return any(p.match(line) for p in _NOISE)


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines() if not is_noise(ln)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def _silence_python_warnings() -> None:
    # Targeted: deprecation chatter from the frameworks themselves, not from user code.
    for module in (r"tensorflow(\..*)?", r"keras(\..*)?", r"tf_keras(\..*)?", r"absl(\..*)?", r"google\.protobuf(\..*)?"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=module)


def import_tensorflow(legacy: bool = False) -> ModuleType:
    """Import TensorFlow once, with its start-up noise removed.

    Args:
        legacy: the caller needs the TF1 layers (`tf.compat.v1.layers`), which TensorFlow 2.16+
            only provides through tf-keras with TF_USE_LEGACY_KERAS=1 set before the first import.

    Returns:
        The tensorflow module.
    """
    if legacy:
        if "tensorflow" in sys.modules and os.environ.get(LEGACY_ENV) != "1":
            raise BackendUnavailableError(
                "the TF1 backends need TF_USE_LEGACY_KERAS=1 before TensorFlow is imported, but TensorFlow was "
                "already imported without it in this process; run TF1 backends in a separate convdiff invocation")
        os.environ[LEGACY_ENV] = "1"
    if _import_failure is not None:
        raise BackendUnavailableError(_import_failure)
    if "tensorflow" in sys.modules and hasattr(sys.modules["tensorflow"], "config"):
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _silence_python_warnings()
    try:
        with _filtered_stderr():
            import tensorflow as tf

            # Probing devices is what triggers the CUDA driver lookup; do it inside the filtered window.
            tf.config.list_physical_devices()
            tf.get_logger().setLevel("ERROR")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - whatever stops TensorFlow from starting is exit 3, one line
        _remember_failure(exc)
        raise BackendUnavailableError(_import_failure) from exc
    return tf


_import_failure: str | None = None
"""Why TensorFlow could not be imported in this process (a second try would find a half-imported module)."""


def _remember_failure(exc: BaseException) -> None:
    global _import_failure
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    hint = " (too little memory for its libraries? check `ulimit -v`)" if isinstance(exc, MemoryError) or (
        "map segment" in first or "cannot allocate memory" in first.lower()) else ""
    _import_failure = f"TensorFlow could not be imported: {type(exc).__name__}: {first}{hint}"


def import_keras(legacy: bool = False) -> ModuleType:
    import_tensorflow(legacy=legacy)
    try:
        import keras
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - as for TensorFlow: exit 3, one line
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise BackendUnavailableError(f"Keras could not be imported: {type(exc).__name__}: {first}") from exc
    return keras
