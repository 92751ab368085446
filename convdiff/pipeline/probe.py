"""Invariance probes: one backend, the same layer computed two ways that must agree up to rounding.

- **batch** (pytorch#107514, keras#12557): the layer on a batch of N against N runs of batch 1. A
  framework may pick another algorithm (or blocking) for another batch size, so the sums can be
  ordered differently: a difference within the rounding bound is expected behaviour, not a bug.
- **channels** (tensorflow#61422): a subset of the output channels computed as a smaller layer (the
  same kernel slices and biases) against the same channels of the full layer.

Both sides run on the same input and the same kernel (the shared seeded factory, or the spec's
weights files), in the same backend, so their rounding model is the backend's own on both sides
(`BackendInfo.arithmetic`); the comparison is under the rounding bound of that convolution
(`analysis.bound.bound_comparison`). Results are frozen data; rendering is `report.probe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from convdiff.analysis.bound import bound_comparison
from convdiff.backends.base import SideResult, Weights
from convdiff.backends.factory import initial_weights
from convdiff.backends.guard import run_guarded
from convdiff.backends.registry import backend_info, get_backend, prepare_frameworks
from convdiff.compare import Comparison, Verdict
from convdiff.data.inputs import make_input
from convdiff.data.memory import check_memory
from convdiff.errors import BadInputError
from convdiff.pipeline.execute import _as_weights, file_weights
from convdiff.reference.rounding import BoundForm
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.layouts import kernel_layout_for

DEFAULT_BATCH = 4
"""The batch of the batch probe when the spec's own batch is 1."""


class ProbeKind(StrEnum):
    BATCH = "batch"
    CHANNELS = "channels"


class ProbeVerdict(StrEnum):
    IDENTICAL = "identical"
    """Bit for bit the same."""
    WITHIN_BOUND = "within-bound"
    """Different, but every difference is within the rounding bound: expected behaviour."""
    BEYOND_BOUND = "beyond-bound"
    """Some difference exceeds the rounding bound (or the shapes differ): not explained by rounding."""


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one backend; truthy when the two computations agree within the rounding bound."""

    kind: ProbeKind
    backend: str
    spec: ConvSpec
    """The full layer (the batch probe's batch of N; the channels probe's layer with every channel)."""
    reference: str
    """What the reference side computed, in words."""
    candidate: str
    """What the candidate side computed, in words."""
    comparison: Comparison
    """Candidate against reference under the rounding bound of the backend's own arithmetic on both sides."""
    channels: tuple[int, ...] = ()
    """The output channels the channels probe computed as a smaller layer (empty for the batch probe)."""
    notes: tuple[str, ...] = ()
    """The backend's notes on the full run."""
    seconds: float = 0.0
    """Wall time of all the runs, for information only."""
    equal_positions: int = 0
    """Positions where the two computations are bit-identical."""

    def __bool__(self) -> bool:
        return bool(self.comparison)

    @property
    def verdict(self) -> ProbeVerdict:
        if self.comparison.verdict is Verdict.IDENTICAL:
            return ProbeVerdict.IDENTICAL
        return ProbeVerdict.WITHIN_BOUND if self.comparison else ProbeVerdict.BEYOND_BOUND

    @property
    def differing(self) -> int:
        """Positions whose values differ at all (under the bound rule, `mismatched` counts only those beyond it)."""
        return self.comparison.total - self.equal_positions if self.comparison.shape_match else 0


def probe_batch(backend: str, spec: ConvSpec, batch: int | None = None, max_memory: int | None = None,
                form: BoundForm = BoundForm.PROBABILISTIC) -> ProbeResult:
    """The layer on a batch of `batch` against `batch` runs of batch 1 (the runs of batch 1 are the reference).

    Args:
        batch: N; None: the spec's batch, or `DEFAULT_BATCH` when that is 1.
    """
    n = batch if batch is not None else (spec.input_shape[0] if spec.input_shape[0] > 1 else DEFAULT_BATCH)
    if n < 2:
        raise BadInputError(f"the batch probe needs a batch of at least 2, got {n}")
    full = spec.replace(input_shape=(n, *spec.input_shape[1:]))
    single = full.replace(input_shape=(1, *full.input_shape[1:]))
    runner, weights = _prepare(backend, (full, single), max_memory)
    x = make_input(full)
    batched = runner(full, x, weights)
    singles = [runner(single, x[i:i + 1], weights) for i in range(n)]
    reference = np.concatenate([np.asarray(r.output) for r in singles], axis=0)
    return judge(ProbeKind.BATCH, backend, full, f"{n} runs of batch 1", f"one run of batch {n}", reference,
                   batched, x, form, seconds=batched.seconds + sum(r.seconds for r in singles))


def probe_channels(backend: str, spec: ConvSpec, channels: tuple[int, ...] | None = None,
                   max_memory: int | None = None, form: BoundForm = BoundForm.PROBABILISTIC) -> ProbeResult:
    """Output `channels` computed as a smaller layer against the same channels of the full layer (the reference).

    Args:
        channels: output channel indices; None: the first half (at least one).
    """
    if spec.groups > 1:
        raise BadInputError("the channels probe needs groups=1: a grouped layer's output channels come in groups, "
                            "a subset of them is not a smaller layer of the same kind")
    chosen = channels if channels is not None else tuple(range(max(1, spec.filters // 2)))
    if not chosen or any(c < 0 or c >= spec.filters for c in chosen) or len(set(chosen)) != len(chosen):
        raise BadInputError(f"--subset needs distinct output channels in 0..{spec.filters - 1}, got "
                            f"{','.join(map(str, chosen)) or 'none'}")
    if len(chosen) == spec.filters:
        raise BadInputError(f"--subset names every output channel ({spec.filters}): the smaller layer must have fewer")
    small = spec.replace(filters=len(chosen))
    runner, weights = _prepare(backend, (spec, small), max_memory)
    axis = kernel_layout_for(spec.rank, spec.transposed).index("O")
    subset = Weights(np.ascontiguousarray(np.take(weights.kernel, chosen, axis=axis)),
                     None if weights.bias is None else np.ascontiguousarray(weights.bias[list(chosen)]))
    x = make_input(spec)
    full = runner(spec, x, weights)
    part = runner(small, x, subset)
    reference = np.ascontiguousarray(np.asarray(full.output)[..., list(chosen)])
    result = judge(ProbeKind.CHANNELS, backend, small, f"channels {_span(chosen)} of the full {spec.filters}-channel "
                     "layer", f"a {len(chosen)}-channel layer of the same kernel slices", reference, part, x, form,
                     subset=subset, seconds=full.seconds + part.seconds)
    return _replace_spec(result, spec, chosen, full.notes)


def _prepare(backend: str, specs: tuple[ConvSpec, ...], max_memory: int | None):  # noqa: ANN202
    """Refusals, memory and frameworks before anything runs; the guarded runner and the one shared kernel."""
    info = backend_info(backend)
    for spec in specs:
        info.check_spec(spec)
    check_memory(specs[0], specs[0], max_memory)
    prepare_frameworks([backend])
    instance = get_backend(backend)
    full = specs[0]
    weights = _as_weights(file_weights(full), full) or run_guarded(backend, lambda: initial_weights(full))

    def runner(spec: ConvSpec, x: np.ndarray, w: Weights) -> SideResult:
        return run_guarded(backend, lambda: instance.run(spec, x, w))

    return runner, weights


def judge(kind: ProbeKind, backend: str, spec: ConvSpec, reference_what: str, candidate_what: str,
            reference: np.ndarray, candidate: SideResult, x: np.ndarray, form: BoundForm,
            subset: Weights | None = None, seconds: float = 0.0) -> ProbeResult:
    """The verdict of one probe: `candidate`'s output against `reference` under the bound of the backend's arithmetic.

    Args:
        spec: the layer `candidate` computed (the smaller one for the channels probe).
        subset: the kernel and bias the candidate ran with, when not its own (the channels probe's slices).
    """
    arithmetic = backend_info(backend).arithmetic(candidate)
    kernel = np.asarray(candidate.kernel if subset is None else subset.kernel, np.float64)
    bias = candidate.bias if subset is None else subset.bias
    out = np.asarray(candidate.output)
    comparison = bound_comparison(reference, out, x, kernel, spec, [arithmetic, arithmetic], form=form,
                                  bias=None if bias is None else np.asarray(bias, np.float64))
    equal = int(np.sum(reference == out)) if reference.shape == out.shape else 0
    return ProbeResult(ProbeKind(kind), backend, spec, reference_what, candidate_what, comparison, notes=candidate.notes,
                       seconds=seconds, equal_positions=equal)


def _replace_spec(result: ProbeResult, spec: ConvSpec, chosen: tuple[int, ...], notes: tuple[str, ...]) -> ProbeResult:
    import dataclasses

    return dataclasses.replace(result, spec=spec, channels=chosen, notes=notes)


def _span(channels: tuple[int, ...]) -> str:
    if channels == tuple(range(channels[0], channels[-1] + 1)) and len(channels) > 1:
        return f"{channels[0]}-{channels[-1]}"
    return ",".join(map(str, channels))
