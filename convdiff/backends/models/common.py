"""Pieces every model source shares: the canonical kernel of a layer record, channels-last captures, and
the one way a framework's failure while running a model becomes exit 3."""

from __future__ import annotations

import numpy as np

from convdiff.data.modelfiles.types import LayerKind, LayerRecord, float_array
from convdiff.errors import BackendFailedError, BadInputError
from convdiff.spec.layouts import to_canonical

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "elu", "softplus", "hard_sigmoid", "leaky_relu")
"""Activations a layer may apply after its convolution that the recomputation applies too: each changes two
values by at most their difference (1-Lipschitz), so the convolution's rounding bound still holds after it."""


def canonical_kernel(record: LayerRecord, kernel: np.ndarray, where: str) -> np.ndarray:
    """A stored kernel in the canonical layout of its kind, read-only, its dtype kept."""
    kernel = float_array(np.asarray(kernel), where)
    if kernel.ndim != len(record.kernel_layout):
        raise BadInputError(f"{where}: a kernel of shape {'x'.join(map(str, kernel.shape))} does not fit "
                            f"its layout {record.kernel_layout}")
    canonical, _ = to_canonical(kernel, record.kernel_layout, record.rank, record.kind is LayerKind.TRANSPOSED)
    canonical = np.ascontiguousarray(canonical)
    canonical.flags.writeable = False
    return canonical


def channels_last(array: np.ndarray, channels_first: bool) -> np.ndarray:
    """An (N, C, spatial...) array as (N, spatial..., C); others unchanged."""
    array = np.asarray(array)
    if channels_first and array.ndim >= 3:
        return np.ascontiguousarray(np.moveaxis(array, 1, -1))
    return array


def channels_first_input(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, -1, 1)) if array.ndim >= 3 else array


def framework_failure(framework: str, description: str, exc: BaseException) -> BackendFailedError:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return BackendFailedError(framework, f"running {description}: {type(exc).__name__}: {first[:400]}")


def first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
