"""The calibration study of the rounding bound: does it pass every correct result with margin, and
catch every mistake, at every precision?

Correct computations: one input and kernel per config, run once by every backend that can run the
dtype, every pair of them compared through the pipeline's own deciding rule (`deciding_rule`, the
verdict's bound). The grid spans K = 1 .. 9216 (kernels 1..19), all-positive data (uniform random;
the structured `image / 255` pattern with a ones kernel, whose rounding errors do not cancel) and
mixed-sign data (standard normal; the image with a mixed-sign kernel), input magnitudes 1e-3 .. 1e4,
and the dtypes float16, bfloat16, float32, float64 and tf32 (the numpy emulation as reference of the
float32 backends). The margin is the largest max(|diff| / bound) seen: at most 0.5 is the target.

Mistakes: the candidate is given one mistake (an all-zero output, a one-pixel shift, an H/W-swapped
kernel, a kernel rotated 180 degrees, a missing or doubled bias, one output channel scaled by 1.01,
a symmetric pad against TF SAME, an NCHW input read as NHWC) and compared through `compare_sides`.
A mistake is caught when the verdict fails; a passing verdict must say "cannot be distinguished from
rounding at this precision" (a resolution that is not `distinguishable`), else it is a miss.

`benchmarks/calibrate_bound.py` prints the study; tests/suites/test_calibration.py runs a slice of
the same grid (`quick=True`) with the same assertions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from convdiff.backends.base import Weights
from convdiff.backends.registry import REGISTRY, backend_info, get_backend, prepare_frameworks
from convdiff.data.inputs import synthetic_image
from convdiff.pipeline.case import CaseOptions, SideConfig, SideRun
from convdiff.pipeline.execute import compare_sides, deciding_rule
from convdiff.compare import compare_arrays
from convdiff.spec.convspec import ConvSpec, Padding
from convdiff.spec.dtypes import lower_precision, np_dtype

DATA = ("uniform", "image", "normal", "image-mixed")
"""all-positive random; all-positive structured (image / 255, ones kernel); mixed-sign random; image with a
mixed-sign kernel."""
POSITIVE = ("uniform", "image")
DTYPES = ("float16", "bfloat16", "float32", "float64", "tf32")
# (kernel size, input channels): K = k * k * C from 1 to 9 * 1024, kernels 1..19.
SHAPES = ((1, 1), (3, 1), (1, 64), (5, 3), (7, 3), (3, 64), (15, 3), (19, 3), (11, 16), (9, 64), (3, 512),
          (3, 1024))
QUICK_SHAPES = ((3, 1), (3, 64), (15, 3))
MAGNITUDES = (1e-3, 1.0, 1e4)
# Shapes and data the extreme magnitudes are tried on (every dtype).
MAGNITUDE_SHAPES = ((3, 1), (7, 3), (3, 64), (3, 512))
MAGNITUDE_DATA = ("uniform", "normal")
MISTAKES = ("zero_output", "shifted", "kernel_hw_swapped", "kernel_rotated_180", "bias_missing", "bias_doubled",
            "channel_scaled", "wrong_padding", "wrong_layout")
MISTAKE_SHAPES = ((3, 3), (3, 64), (5, 16), (3, 512))
QUICK_MISTAKE_SHAPES = ((3, 3), (3, 64))
MISTAKE_DATA = ("normal", "image-mixed")
SPATIAL = (2, 12, 12)
FILTERS = 8
TARGET_MARGIN = 0.5


@dataclass(frozen=True)
class Config:
    """One correct computation of the grid."""

    kernel: int
    channels: int
    data: str
    magnitude: float
    dtype: str
    """The compute dtype of the sides (tf32: the numpy emulation against the float32 backends)."""
    bias: bool
    seed: int

    @property
    def K(self) -> int:
        return self.kernel * self.kernel * self.channels

    @property
    def storage(self) -> str:
        """The dtype the operands are stored in (float32 for tf32)."""
        return "float32" if self.dtype == "tf32" else self.dtype

    def spec(self, **changes) -> ConvSpec:  # noqa: ANN003
        n, h, w = SPATIAL
        spec = ConvSpec(input_shape=(n, h, w, self.channels), filters=FILTERS, kernel_size=(self.kernel,) * 2,
                        use_bias=self.bias, dtype=self.storage, seed=self.seed)
        return spec.replace(**changes) if changes else spec

    @property
    def name(self) -> str:
        return (f"{self.dtype} K={self.K} ({self.kernel}x{self.kernel}x{self.channels}) {self.data} "
                f"x{self.magnitude:g}{' +bias' if self.bias else ''}")


def correct_grid(quick: bool = False) -> list[Config]:
    """The correct computations, in a fixed order (the seed of each is its index)."""
    shapes = QUICK_SHAPES if quick else SHAPES
    cells = [(k, c, data, 1.0) for k, c in shapes for data in DATA]
    magnitude_shapes = MAGNITUDE_SHAPES[:2] if quick else MAGNITUDE_SHAPES
    cells += [(k, c, data, m) for k, c in magnitude_shapes for data in MAGNITUDE_DATA
              for m in MAGNITUDES if m != 1.0]
    return [Config(k, c, data, m, dtype, bias=(i % 2 == 0), seed=i)
            for i, (dtype, (k, c, data, m)) in enumerate((d, cell) for d in DTYPES for cell in cells)]


def operands(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The input, kernel and bias of a config, rounded to its storage dtype (deterministic)."""
    rng = np.random.default_rng(config.seed)
    spec = config.spec()
    shape, kshape, K, m = spec.input_shape, spec.kernel_shape, config.K, config.magnitude
    if config.data == "uniform":
        x, w = m * rng.random(shape), rng.random(kshape) * (2.0 / K)
    elif config.data == "image":
        # The ones-filter structure: image / 255 values, an exact ones kernel; scaled so |y| stays near m.
        x, w = synthetic_image(shape).astype(np.float64) / 255.0 * (m * 2.0 / K), np.ones(kshape)
    elif config.data == "normal":
        x, w = m * rng.standard_normal(shape), rng.standard_normal(kshape) / math.sqrt(K)
    else:  # image-mixed
        x, w = m * synthetic_image(shape).astype(np.float64) / 255.0, rng.standard_normal(kshape) / math.sqrt(K)
    b = m * 0.5 * rng.standard_normal(kshape[-1]) if config.bias else None
    t = np_dtype(config.storage)
    return x.astype(t), w.astype(t), None if b is None else b.astype(t)


def backends_for(dtype: str, spec: ConvSpec, names: Sequence[str] | None = None) -> list[str]:
    """The backends that can run `spec` in `dtype` here (installed, not refused)."""
    wanted = list(REGISTRY) if names is None else list(names)
    prepare_frameworks(wanted)  # the TF1 backends need TensorFlow imported in legacy mode, before anything
    spec = spec.replace(dtype=dtype)
    return [n for n in wanted if not backend_info(n).missing() and backend_info(n).refusal(spec) is None]


def _run(backend: str, spec: ConvSpec, x: np.ndarray, weights: Weights) -> SideRun:
    return SideRun("side", SideConfig(backend, spec), x, get_backend(backend).run(spec, x, weights))


def _as(run: SideRun, role: str) -> SideRun:
    return SideRun(role, run.config, run.input, run.result)


@dataclass(frozen=True)
class PairResult:
    """One correct comparison: the largest |diff| / bound and whether the verdict passed."""

    config: Config
    reference: str
    candidate: str
    passed: bool
    max_ratio: float
    dtype: str
    """The precision the bound names."""


def run_correct(config: Config, names: Sequence[str] | None = None,
                options: CaseOptions = CaseOptions()) -> list[PairResult]:
    """Every backend once on the config's operands, then every pair under the verdict's own rule."""
    x, w, b = operands(config)
    spec = config.spec()
    weights = Weights(w, b)
    if config.dtype == "tf32":
        runs = [_run("numpy", spec.replace(dtype="tf32"), x, weights)]
        runs += [_run(n, spec, x, weights) for n in backends_for("float32", spec, names) if n != "numpy"]
        pairs = [(runs[0], r) for r in runs[1:]]
    else:
        runs = [_run(n, spec, x, weights) for n in backends_for(config.dtype, spec, names)]
        pairs = [(a, c) for i, a in enumerate(runs) for c in runs[i + 1:]]
    results = []
    for ref, cand in pairs:
        ref, cand = _as(ref, "reference"), _as(cand, "candidate")
        dtype = lower_precision(ref.result.compute_dtype, cand.result.compute_dtype)
        rule, bound = deciding_rule(options, ref, cand, dtype)
        out = compare_arrays(ref.result.output, cand.result.output, rule=rule, bound=bound, top_k=0)
        results.append(PairResult(config, ref.config.backend, cand.config.backend, bool(out), out.max_ratio,
                                  rule.model.dtype))
    return results


# --- mistakes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """One mistake injected into the candidate side."""

    name: str
    description: str
    applies: Callable[[Config], bool]
    inject: Callable[[Config, np.ndarray, np.ndarray, np.ndarray | None], tuple[ConvSpec, ConvSpec, np.ndarray,
                                                                                  Weights]]
    """(config, x, kernel, bias) -> (reference spec, candidate spec, candidate input, candidate weights)."""


def _scaled_channel(w: np.ndarray) -> np.ndarray:
    scaled = w.astype(np.float64)
    scaled[..., 0] *= 1.01
    return scaled.astype(w.dtype)


def _shifted(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    out[:, 1:] = x[:, :-1]
    return out


def _wrong_padding(config: Config) -> tuple[ConvSpec, ConvSpec]:
    """TF SAME at stride 2 on an even input (the extra pad at the bottom/right) against a symmetric pad
    giving the same output size: Caffe's pad against SAME."""
    reference = config.spec(strides=(2, 2))
    (t, b), (l, r) = reference.pads
    return reference, config.spec(strides=(2, 2), padding=Padding.explicit(b, b, r, r))


def _mistakes() -> tuple[Mistake, ...]:
    keep = object()

    def same(c: Config, x, w, b, *, kernel=None, bias=keep, xc=None):  # noqa: ANN001, ANN202
        spec = c.spec()
        return spec, spec, x if xc is None else xc, Weights(w if kernel is None else kernel, b if bias is keep else bias)

    def zeros(c, x, w, b):  # noqa: ANN001, ANN202
        return same(c, x, w, b, kernel=np.zeros_like(w), bias=None if b is None else np.zeros_like(b))

    def padding(c, x, w, b):  # noqa: ANN001, ANN202
        ref, cand = _wrong_padding(c)
        return ref, cand, x, Weights(w, b)

    def pads_differ(c: Config) -> bool:
        ref, cand = _wrong_padding(c)
        return ref.pads != cand.pads

    def layout(c, x, w, b):  # noqa: ANN001, ANN202
        return same(c, x, w, b, xc=np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(x.shape))

    return (
        Mistake("zero_output", "an all-zero output", lambda c: True, zeros),
        Mistake("shifted", "the output shifted by one pixel (input rows moved down by one)", lambda c: True,
                lambda c, x, w, b: same(c, x, w, b, xc=_shifted(x))),
        Mistake("kernel_hw_swapped", "the kernel with H and W swapped", lambda c: c.kernel > 1,
                lambda c, x, w, b: same(c, x, w, b, kernel=np.ascontiguousarray(w.transpose(1, 0, 2, 3)))),
        Mistake("kernel_rotated_180", "the kernel rotated 180 degrees", lambda c: c.kernel > 1,
                lambda c, x, w, b: same(c, x, w, b, kernel=np.ascontiguousarray(w[::-1, ::-1]))),
        Mistake("bias_missing", "the bias left out", lambda c: c.bias,
                lambda c, x, w, b: same(c, x, w, b, bias=np.zeros_like(b))),
        Mistake("bias_doubled", "the bias added twice", lambda c: c.bias,
                lambda c, x, w, b: same(c, x, w, b, bias=(2 * b.astype(np.float64)).astype(b.dtype))),
        Mistake("channel_scaled", "output channel 0's weights scaled by 1.01", lambda c: True,
                lambda c, x, w, b: same(c, x, w, b, kernel=_scaled_channel(w))),
        Mistake("wrong_padding", "a symmetric pad against TF SAME at stride 2", pads_differ, padding),
        Mistake("wrong_layout", "an NCHW input read as NHWC", lambda c: c.channels > 1, layout),
    )


MISTAKE_TABLE = {m.name: m for m in _mistakes()}


def mistake_grid(quick: bool = False) -> list[Config]:
    shapes = QUICK_MISTAKE_SHAPES if quick else MISTAKE_SHAPES
    return [Config(k, c, data, 1.0, dtype, bias=True, seed=1000 + i)
            for i, (dtype, (k, c), data) in enumerate((d, s, data) for d in DTYPES for s in shapes
                                                      for data in MISTAKE_DATA)]


# (reference, candidate) pairs the mistakes are tried on: a float64 reference, and two low-precision sides.
MISTAKE_PAIRS = (("numpy", "nn"), ("nn", "keras-call"))


@dataclass(frozen=True)
class MistakeResult:
    config: Config
    mistake: str
    reference: str
    candidate: str
    verdict: str
    caught: bool
    flagged: bool
    """Passed, with the resolution saying it cannot be distinguished from rounding at this precision."""
    effect: float
    """How much the mistake changes the output: max |exact with the mistake - exact| / max |exact| over an
    output channel's values, for the most changed channel."""
    effect_ratio: float
    """max |exact with the mistake - exact| / bound: the mistake's own effect in units of the bound (above
    1.5 it is sure to fail, a correct result using at most half of the bound)."""
    resolution: float | None
    """The smallest relative change the bound could see at any element (when it passed)."""
    max_ratio: float

    @property
    def missed(self) -> bool:
        return not self.caught and not self.flagged


def run_mistake(config: Config, mistake: Mistake, pair: tuple[str, str],
                options: CaseOptions = CaseOptions()) -> MistakeResult | None:
    """One mistake on one config and pair, through `compare_sides` (verdict and resolution)."""
    x, w, b = operands(config)
    ref_spec, cand_spec, xc, cand_weights = mistake.inject(config, x, w, b)
    ref_name, cand_name = pair
    prepare_frameworks(pair)
    if config.dtype == "tf32":
        ref_name, ref_spec = "numpy", ref_spec.replace(dtype="tf32")
    for name, spec in ((ref_name, ref_spec), (cand_name, cand_spec)):
        if backend_info(name).missing() or backend_info(name).refusal(spec) is not None:
            return None
    ref = SideRun("reference", SideConfig(ref_name, ref_spec), x,
                  get_backend(ref_name).run(ref_spec, x, Weights(w, b)))
    cand = SideRun("candidate", SideConfig(cand_name, cand_spec), xc,
                   get_backend(cand_name).run(cand_spec, xc, cand_weights))
    case = compare_sides(mistake.name, (ref, cand), options, explain_failures=False)
    exact = get_backend("numpy").run(ref_spec.replace(dtype=config.storage), x, Weights(w, b)).output
    wrong = get_backend("numpy").run(cand_spec, xc, cand_weights).output
    comparable = wrong.shape == exact.shape and case.bound is not None
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = _channel_effect(wrong, exact) if comparable else math.inf
        effect_ratio = float(np.nanmax(np.abs(wrong - exact) / case.bound)) if comparable else math.inf
    res = case.resolution
    return MistakeResult(config, mistake.name, ref_name, cand_name, case.verdict.value, not case,
                         bool(case) and res is not None and not res.distinguishable, effect, effect_ratio,
                         None if res is None else res.relative, case.output.max_ratio)


def _channel_effect(wrong: np.ndarray, exact: np.ndarray) -> float:
    change = np.abs(wrong - exact).reshape(-1, exact.shape[-1]).max(axis=0)
    size = np.abs(exact).reshape(-1, exact.shape[-1]).max(axis=0)
    return float(np.max(change / np.maximum(size, 1e-300)))


def run_mistakes(configs: Iterable[Config], mistakes: Iterable[str] = MISTAKES,
                 pairs: Sequence[tuple[str, str]] = MISTAKE_PAIRS) -> list[MistakeResult]:
    out = []
    for config in configs:
        for name in mistakes:
            mistake = MISTAKE_TABLE[name]
            if not mistake.applies(config):
                continue
            for pair in pairs:
                result = run_mistake(config, mistake, pair)
                if result is not None:
                    out.append(result)
    return out


# --- the summary -----------------------------------------------------------------------------------


# From this dot-product length on, the accumulation term dominates the bound (below, single roundings
# of the output or the bias add, allowed one ulp each, can use half of it by construction).
LONG_K = 64


@dataclass
class DtypeSummary:
    dtype: str
    comparisons: int = 0
    false_alarms: int = 0
    margin: float = 0.0
    """The largest max(|diff| / bound) of a correct comparison."""
    worst: str = ""
    margin_long: float = 0.0
    """The same over K >= LONG_K, where the accumulation term dominates."""
    mistakes: int = 0
    caught: int = 0
    flagged: list[MistakeResult] = field(default_factory=list)
    misses: list[MistakeResult] = field(default_factory=list)

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.comparisons if self.comparisons else 0.0

    @property
    def miss_rate(self) -> float:
        return len(self.misses) / self.mistakes if self.mistakes else 0.0

    @property
    def ok(self) -> bool:
        return not self.false_alarms and not self.misses and self.margin <= TARGET_MARGIN


def summarize(correct: Iterable[PairResult], mistakes: Iterable[MistakeResult]) -> dict[str, DtypeSummary]:
    table = {d: DtypeSummary(d) for d in DTYPES}
    for r in correct:
        s = table[r.config.dtype]
        s.comparisons += 1
        s.false_alarms += not r.passed
        if r.max_ratio > s.margin or not s.worst:
            s.margin = max(s.margin, r.max_ratio)
            s.worst = f"{r.config.name}, {r.reference} vs {r.candidate}"
        if r.config.K >= LONG_K:
            s.margin_long = max(s.margin_long, r.max_ratio)
    for m in mistakes:
        s = table[m.config.dtype]
        s.mistakes += 1
        s.caught += m.caught
        if m.flagged:
            s.flagged.append(m)
        elif m.missed:
            s.misses.append(m)
    return table


# --- the ones-filter question at large kernels --------------------------------------------------------

ONES_FILTER_KERNELS = (9, 11, 13, 15, 17, 19)


@dataclass(frozen=True)
class OnesFilterResult:
    kernel: int
    K: int
    verdict: str
    max_ratio: float
    seconds: float


def ones_filter_sweep(kernels: Iterable[int] = ONES_FILTER_KERNELS) -> list[OnesFilterResult]:
    """`convdiff compare --reference nn --candidate keras --input image --input-dtype float64 --init ones
    --kernel-size K --filters 1 --shape 2,427,640,3` for each kernel size, through the pipeline."""
    import time

    from convdiff.pipeline.case import Case
    from convdiff.pipeline.execute import execute

    out = []
    for k in kernels:
        spec = ConvSpec(input_shape=(2, 427, 640, 3), filters=1, kernel_size=(k, k), input="image",
                        input_dtype="float64", initializer="ones")
        start = time.perf_counter()
        result = execute(Case(f"ones-{k}", SideConfig("nn", spec), SideConfig("keras", spec)))
        out.append(OnesFilterResult(k, spec.dot_length, result.verdict.value, result.output.max_ratio,
                                    time.perf_counter() - start))
    return out


__all__ = ["ONES_FILTER_KERNELS", "OnesFilterResult", "ones_filter_sweep", "DATA", "DTYPES", "MISTAKES", "MISTAKE_TABLE", "Config", "DtypeSummary", "MistakeResult", "PairResult",
           "correct_grid", "mistake_grid", "operands", "run_correct", "run_mistake", "run_mistakes", "summarize"]
