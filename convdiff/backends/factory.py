"""The one seeded kernel and bias factory: every backend that draws its own weights (numpy, nn,
caffe, torch) draws them here, so the same (initializer, shape, dtype, seed) gives the same weights
everywhere, and `default` means the same thing on every side (Keras' defaults: glorot_uniform for the
kernel, zeros for the bias). The Keras and TF1 backends hand the initializer to their framework
instead: that is what they test.
"""

from __future__ import annotations

import numpy as np

from convdiff.backends.base import Weights
from convdiff.errors import BadInputError, FrameworkError
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import FLOAT_DTYPES, np_dtype
from convdiff.spec.initializers import InitializerSpec, parse_initializer
from convdiff.spec.layouts import for_rank, to_canonical

_SEED_LIMIT = 2**32  # Keras folds integer seeds into uint32; larger ones would alias smaller ones.


def initial_weights(spec: ConvSpec) -> Weights:
    """The kernel (canonical layout) and bias (None without one) of `spec`, drawn in its variable dtype."""
    # Drawn in `spec.draw_shape`: a depthwise kernel as Keras' depthwise layer holds it (its fans), then made
    # canonical.
    kernel = make_kernel(parse_initializer(spec.initializer).resolved("kernel"), spec.draw_shape,
                         spec.variable_dtype, spec.seed)
    if kernel.shape != spec.kernel_shape:
        kernel = to_canonical(kernel, for_rank("HWCM", spec.rank), spec.rank)[0]
    bias = (make_kernel(parse_initializer(spec.bias_initializer).resolved("bias"), (spec.filters,),
                        spec.variable_dtype, spec.seed) if spec.use_bias else None)
    return Weights(kernel, bias)


def make_kernel(init: InitializerSpec | str, shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """The shared seeded kernel: the same (initializer, shape, seed) gives the same weights everywhere.

    Random kernels are drawn through the Keras 3 initializer in `dtype` itself: the result equals
    `init.keras(seed)(shape, dtype=dtype)` bit for bit, the weights a Keras layer or a `tf.Variable`
    of that dtype gets from the same initializer and seed. (So two different dtypes give different
    draws, not one draw rounded.) ones, zeros and constant never import TensorFlow.

    Args:
        init: the initializer, parsed or as text.
        shape: the kernel shape, e.g. HWIO (kh, kw, c_in, c_out); fans follow Keras' convention.
        dtype: 'float16', 'bfloat16', 'float32' or 'float64'.
        seed: an integer in [0, 2**32).

    Returns:
        A NumPy array of `shape` and `dtype` (ml_dtypes.bfloat16 for bfloat16).

    Raises:
        BadInputError: unknown initializer, dtype, bad shape or seed.
    """
    spec = parse_initializer(init)
    if dtype not in FLOAT_DTYPES:
        raise BadInputError(f"unknown kernel dtype '{dtype}' (choose from {', '.join(FLOAT_DTYPES)})")
    if isinstance(shape, int) or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                                         for d in shape):
        raise BadInputError(f"kernel shape must be positive integers, got {shape!r}")
    shape = tuple(int(d) for d in shape)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _SEED_LIMIT:
        raise BadInputError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    target = np_dtype(dtype)

    value = spec.constant_value()
    if value is not None:
        with np.errstate(over="ignore"):
            kernel = np.full(shape, value, dtype=target)
        if not np.isfinite(kernel.astype(np.float64)).all():
            raise BadInputError(f"{spec} overflows {dtype}")
        return kernel

    if spec.name == "orthogonal" and len(shape) < 2:
        raise BadInputError(f"orthogonal needs a kernel of at least 2 dimensions, got shape {shape}")
    from convdiff.frameworks import import_keras

    keras = import_keras()
    try:
        drawn = spec.keras(int(seed))(shape, dtype=dtype)
    except Exception as err:  # e.g. orthogonal in bfloat16: TensorFlow's QR has no bfloat16 kernel
        reason = " ".join(str(err).strip().split("\n")[0].split(";")[0].split())[:160]
        # The framework failing on a valid request is exit 3 (a backend could not run), not bad input.
        raise FrameworkError(f"Keras cannot draw {spec} as {dtype}: {type(err).__name__}: {reason}") from err
    return np.asarray(keras.ops.convert_to_numpy(drawn)).astype(target, copy=False)
