"""Pieces shared by the TensorFlow backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from convdiff.spec.convspec import ConvSpec, PaddingMode

T = TypeVar("T")


def tf_padding(spec: ConvSpec) -> str | list[list[int]]:
    """The `padding` argument of tf.nn.conv2d for a spec."""
    if spec.padding.mode is PaddingMode.EXPLICIT:
        (t, b), (l, r) = spec.padding.pads
        return [[0, 0], [t, b], [l, r], [0, 0]]
    return spec.padding.mode.value.upper()


def run_framework(backend: str, fn: Callable[[], T]) -> T:
    """Run framework code, turning any exception it raises into BackendFailedError (exit 3)."""
    from convdiff.backends.guard import run_guarded
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    return run_guarded(backend, fn, extra=(tf.errors.OpError,))
