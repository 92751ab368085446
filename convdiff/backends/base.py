"""The one small protocol every way of building a convolution implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from convdiff.errors import BadInputError
from convdiff.spec.convspec import ConvSpec


@dataclass(frozen=True)
class Weights:
    """A kernel (HWIO) and optional bias handed to a backend instead of letting it initialize its own."""

    kernel: np.ndarray
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class SideResult:
    """What one backend produced for one spec."""

    backend: str
    """Registry name of the backend."""
    output: np.ndarray
    """Output, NHWC."""
    kernel: np.ndarray
    """The kernel the convolution actually used, HWIO, in its variable's dtype."""
    bias: np.ndarray | None
    """The bias it added, or None without bias."""
    compute_dtype: str
    """The dtype the convolution arithmetic ran in."""
    notes: tuple[str, ...] = ()
    """Facts worth showing a user, e.g. a cast the framework applied."""
    seconds: float = 0.0
    """Wall time of building and running, for information only."""
    input_sha256: str = ""
    """Fingerprint of the input this side ran on (`convdiff.fingerprint.input_sha256`); set by the runner."""


class BackendRefusedError(BadInputError):
    """The spec is valid, but this backend cannot express it (a sweep reports it as skipped)."""


class Backend(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    """Importable modules the backend needs beyond the core dependencies."""
    install_hint: ClassVar[str]

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        """Build the convolution of `spec`, run it on `x` (NHWC, the spec's input dtype), return the result.

        With `weights`, use them instead of initializing a kernel.
        """
        ...
