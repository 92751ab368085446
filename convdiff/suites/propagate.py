"""How an initializer's scale compounds through a deep conv+ReLU stack: the NaN question.

A ReLU layer with weights of variance Var(w) and fan_in n multiplies the activations' second moment
by n * Var(w) / 2, so their scale by sqrt(n * Var(w) / 2) per layer (He et al., 2015). With
`truncated_normal(stddev=0.1)` and n = 5*5*32 = 800 that is about 1.76 per layer (2 before the
truncation correction): 1e8 after 30 layers, float32 overflow (3.4e38) after about 160. He's
initializer makes the factor exactly 1; Glorot's, with fan_in = fan_out, sqrt(1/2) = 0.71: it was
derived for linear layers, and each ReLU halves the second moment, so a deep Glorot stack vanishes.

The stack runs in float32 with `tf.nn.conv2d` (no Keras model, so it is fast); the gradient of
sum(output) with respect to each layer's kernel comes from one `tf.GradientTape` pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.errors import BadInputError
from convdiff.spec.initializers import InitializerSpec, parse_initializer

REFERENCES = ("glorot_uniform", "he_normal")
EXPLODING = 1e3
"""An activation std above EXPLODING times the input's is flagged as exploding."""
VANISHING = 1e-3
"""An activation std below VANISHING times the input's is flagged as vanishing."""
MAX_DEPTH = 5000


@dataclass(frozen=True)
class LayerStats:
    layer: int
    """1-based layer index."""
    activation_std: float
    """Std of the layer's output (after ReLU); nan once it holds Inf or NaN."""
    activation_max_abs: float
    gradient_std: float | None
    """Std of d sum(final output) / d (this layer's kernel); None when gradients were not computed or
    the forward pass overflowed (an infinite loss has no meaningful gradient)."""
    flag: str
    """"", "exploding", "vanishing", "inf" or "nan" (the worst that applies)."""


@dataclass(frozen=True)
class Series:
    """One initializer pushed through the stack."""

    initializer: str
    role: str
    """"candidate" (the one asked about) or "reference" (Glorot uniform, He normal)."""
    expected_growth: float | None
    """sqrt(fan_in * Var(w) / 2): the per-layer scale factor theory predicts for conv+ReLU."""
    measured_growth: float | None
    """Geometric mean of std(layer l) / std(layer l-1) over the finite layers after the first."""
    layers: tuple[LayerStats, ...]

    @property
    def first_flag(self) -> LayerStats | None:
        return next((s for s in self.layers if s.flag), None)

    @property
    def first_nonfinite(self) -> LayerStats | None:
        return next((s for s in self.layers if s.flag in ("inf", "nan")), None)


@dataclass(frozen=True)
class Propagation:
    depth: int
    kernel_size: int
    channels: int
    input_shape: tuple[int, int, int, int]
    seed: int
    input_std: float
    fan_in: int
    series: tuple[Series, ...]
    """The candidate first, then the references."""


def run_propagation(init: InitializerSpec | str, depth: int = 30, kernel_size: int = 5, channels: int = 32,
                    input_hw: tuple[int, int, int] = (1, 32, 32), seed: int = 42,
                    gradients: bool = True) -> Propagation:
    """Push a seeded N(0, 1) input through `depth` conv+ReLU layers for `init` and the references.

    Args:
        init: the initializer asked about.
        depth: number of conv+ReLU layers, 1..MAX_DEPTH.
        kernel_size: square kernel size K (fan_in = K*K*channels).
        channels: input and output channels of every layer.
        input_hw: (N, H, W) of the input; its channels are `channels`.
        seed: seeds the input and each layer's kernel (layer l draws with seed + l).
        gradients: also compute each layer's gradient std (one backward pass).

    Returns:
        A Propagation; explosion, vanishing, Inf and NaN are flags in it, not errors.
    """
    spec = parse_initializer(init).resolved("kernel")
    float32_max = float(np.finfo(np.float32).max)
    for name, value in spec.args:
        # Every layer is float32: a parameter it cannot hold fails inside Keras' draw, not here.
        if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= float32_max):
            raise BadInputError(f"initializer {spec}: {name}={value:g} does not fit float32, the dtype of every "
                                "propagate layer")
    for what, value, low, high in (("depth", depth, 1, MAX_DEPTH), ("kernel size", kernel_size, 1, 64),
                                   ("channels", channels, 1, 1024)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadInputError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    if len(input_hw) != 3 or any(d < 1 for d in input_hw):
        raise BadInputError(f"input shape must be N,H,W with positive sizes, got {input_hw!r}")
    if math.prod(input_hw) * channels * depth > 2e9:
        raise BadInputError("depth x input size is too large for one run (keep it under 2e9 values)")
    if not 0 <= seed < 2**31:
        raise BadInputError(f"seed must be in [0, 2**31), got {seed}")
    shape = (*input_hw, channels)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    fan_in = kernel_size * kernel_size * channels
    inits = [(spec, "candidate")] + [(parse_initializer(r), "reference") for r in REFERENCES]
    series = tuple(_run_one(s, role, x, depth, kernel_size, channels, seed, gradients) for s, role in inits)
    return Propagation(depth, kernel_size, channels, shape, seed, float(x.std()), fan_in, series)


def _run_one(init: InitializerSpec, role: str, x: np.ndarray, depth: int, kernel_size: int, channels: int,
             seed: int, gradients: bool) -> Series:
    from convdiff.analysis.kernels import theoretical
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    kshape = (kernel_size, kernel_size, channels, channels)
    # A different seed per layer: one seed for all would stack the same kernel `depth` times.
    kernels = [init.keras(seed + layer)(kshape, dtype="float32") for layer in range(1, depth + 1)]
    inputs = tf.constant(x)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(kernels)
        activations = []
        h = inputs
        for kernel in kernels:
            h = tf.nn.relu(tf.nn.conv2d(h, kernel, strides=1, padding="SAME"))
            activations.append(h)
        loss = tf.reduce_sum(h)
    # Once the forward pass has overflowed, the loss is inf and its "gradient" (0 or NaN) means
    # nothing: report no gradient rather than a misleading 0.
    grads = tape.gradient(loss, kernels) if gradients and np.isfinite(loss.numpy()) else [None] * depth
    input_std = float(x.std())
    with np.errstate(invalid="ignore", over="ignore"):
        layers = _stats(activations, grads, input_std)
    law = theoretical(init, kshape)
    expected = None
    if law is not None:
        try:
            second_moment = law.std ** 2 + law.mean ** 2
            expected = math.sqrt(kshape[0] * kshape[1] * kshape[2] * second_moment / 2.0)
        except OverflowError:  # a law with a std near float64's limit: its growth is beyond any float
            expected = math.inf
    return Series(str(init), role, expected, _measured_growth(layers), tuple(layers))


def _stats(activations: list[Any], grads: list[Any], input_std: float) -> list[LayerStats]:
    layers = []
    for i, (a, g) in enumerate(zip(activations, grads), start=1):
        values = a.numpy().astype(np.float64)
        layers.append(LayerStats(i, float(values.std()), float(np.abs(values).max()),
                                 None if g is None else float(g.numpy().astype(np.float64).std()),
                                 _flag(values, input_std)))
    return layers


def _flag(values: np.ndarray, input_std: float) -> str:
    if np.isnan(values).any():
        return "nan"
    if np.isinf(values).any():
        return "inf"
    std = float(values.std())
    if not math.isfinite(std) or std > EXPLODING * input_std:
        return "exploding"  # finite values whose std overflows float64 are exploding too
    if std < VANISHING * input_std:
        return "vanishing"
    return ""


def _measured_growth(layers: list[LayerStats]) -> float | None:
    stds = [s.activation_std for s in layers]
    finite = [v for v in stds if math.isfinite(v) and v > 0]
    # Only the leading run of finite, positive layers: after Inf/NaN a ratio means nothing.
    run = []
    for v in stds:
        if not (math.isfinite(v) and v > 0):
            break
        run.append(v)
    if len(run) < 2 or not finite:
        return None
    return float(math.exp((math.log(run[-1]) - math.log(run[0])) / (len(run) - 1)))
