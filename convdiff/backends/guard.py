"""The one place where a framework's exception becomes convdiff's "backend failed" (exit 3).

Every backend runs through `run_guarded` (the runner wraps each `Backend.run` call, and the TF
backends' `run_framework` delegates here), so a framework that raises on a valid spec always gives the
same one-line message: the backend's name and the first line of the framework's own message. The
original exception stays chained (`raise ... from exc`), which is what `--traceback` shows.

Errors convdiff raises on purpose (bad input, a refused spec, a missing dependency) pass through
unchanged, and so do KeyboardInterrupt and SystemExit (BaseException, never caught here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from convdiff.errors import BackendFailedError, ConvdiffError, FrameworkError

T = TypeVar("T")

# Packages whose exceptions, whatever their class, are a framework failing at run time.
FRAMEWORK_PACKAGES = ("tensorflow", "keras", "tf_keras", "torch", "jax", "jaxlib", "flax", "onnx", "onnxruntime",
                      "ml_dtypes")
# Built-in exception classes frameworks raise for "cannot do this" (unsupported dtype, bad attr, ...).
FRAMEWORK_BUILTINS: tuple[type[BaseException], ...] = (ValueError, TypeError, RuntimeError, ArithmeticError,
                                                       NotImplementedError)


def first_line(exc: BaseException) -> str:
    """The framework's own message, one line: its first non-empty line, or the exception's class name."""
    for line in str(exc).strip().splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__


def is_framework_error(exc: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether `exc` is a framework failing, as opposed to convdiff's own decision or a bug of ours."""
    if isinstance(exc, ConvdiffError):
        return False
    if isinstance(exc, (MemoryError, *FRAMEWORK_BUILTINS, *extra)):
        return True
    return type(exc).__module__.split(".")[0] in FRAMEWORK_PACKAGES


def run_guarded(backend: str, fn: Callable[[], T], extra: tuple[type[BaseException], ...] = ()) -> T:
    """Run one backend's work; a framework exception becomes BackendFailedError naming `backend`.

    Args:
        backend: the registry name of the backend, quoted in the message.
        fn: the work.
        extra: further exception classes to treat as framework failures (e.g. tf.errors.OpError).

    Raises:
        BackendFailedError: the framework raised (exit 3), with the original exception chained.
    """
    try:
        return fn()
    except BackendFailedError:
        raise
    except FrameworkError as exc:
        raise BackendFailedError(backend, str(exc)) from exc
    except Exception as exc:
        if not is_framework_error(exc, extra):
            raise
        message = first_line(exc)
        if isinstance(exc, MemoryError):
            message = f"out of memory: {message}"
        raise BackendFailedError(backend, message) from exc
