"""`convdiff models` and `convdiff.compare_models`: two models run on one input, their convolution layers
paired by weights, each paired layer's added and propagated error under its rounding bound, and the first
layer that really diverges, diagnosed.

The order of work is the order of cost: the input and both models are read and checked, the layers are
paired (a model pair with nothing to pair stops here, exit 2) and the memory is estimated before either
model runs; then both run once, capturing their convolution layers; then the layers are compared one at
a time in the reference's order, each layer's captures and float64 recomputations released before the
next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convdiff.analysis.models import FirstDivergence, LayerResult, LayerVerdict, compare_layer, diagnose_divergence
from convdiff.analysis.pairing import KernelView, LayerPair, Pairing, pair_layers
from convdiff.backends.models import Captured, ModelSource, open_model
from convdiff.compare import Comparison, Tolerance, compare_arrays
from convdiff.data.memory import available_memory, default_limit, format_size
from convdiff.data.modelfiles.types import fmt_dims
from convdiff.data.spill import Spill
from convdiff.errors import BadInputError
from convdiff.reference.rounding import BoundForm, parse_bound_form
from convdiff.spec.layouts import conversion, input_layout_for, parse_input_layout

SIDES = ("reference", "candidate")


@dataclass(frozen=True)
class ModelSummary:
    description: str
    framework: str
    layers: int
    """Convolution layers convdiff compares."""
    skipped: tuple[tuple[str, str], ...]
    """(layer, why it is not compared)."""
    input_layout: str
    """The layout the model was fed in."""
    seconds: float
    """Its run (with capture)."""


@dataclass(frozen=True)
class ModelsResult:
    """Two models compared layer by layer; truthy when every paired layer is within its bound and the final
    outputs pass."""

    reference: ModelSummary
    candidate: ModelSummary
    pairing: Pairing
    layers: tuple[LayerResult, ...]
    """One per pair, in the reference's execution order."""
    first_divergence: FirstDivergence | None
    final: Comparison = field(repr=False)
    """The models' outputs, elementwise (atol/rtol: given, or the default of their dtypes)."""
    timings: dict[str, float]
    """Seconds: reference run, candidate run, recomputation (both errors of every layer), diagnosis."""
    estimated_bytes: int | None
    """The memory estimate checked before the runs (None when neither model's shapes were known before)."""
    note: str = ""
    """What the verdict leaves to the reader (final outputs differing while no paired layer diverges)."""
    spilled: bool = False
    """The captured activations were kept on disk (memory-mapped), not in memory."""

    @property
    def diverging(self) -> tuple[LayerResult, ...]:
        return tuple(r for r in self.layers if r.verdict is LayerVerdict.DIVERGES)

    def __bool__(self) -> bool:
        return not self.diverging and bool(self.final)


def compare_models(reference: Any, candidate: Any, x: Any, *, input_layout: str | None = None,
                   layouts: dict[str, str] | None = None, pairs: tuple[tuple[str, str], ...] = (),
                   atol: float | None = None, rtol: float | None = None, bound_form: str | BoundForm = "probabilistic",
                   equal_nan: bool = False, max_memory: int | None = None, spill: bool | None = None) -> ModelsResult:
    """Compare two models layer by layer on one input.

    Args:
        reference: a model file (.keras, .h5, .onnx, .tflite) or a live keras.Model, torch.nn.Module or onnx.ModelProto.
        candidate: the same, checked against the reference.
        x: the input: an array, or a .npy/.npz file (its array 'input', or its only one).
        input_layout: the layout `x` is in (NHWC, NCHW, ...); default channels-last.
        layouts: {"reference"|"candidate": layout} a model takes; default what the model declares (Keras
            channels-last unless its layers say channels_first; ONNX and PyTorch NCHW, unless the ONNX
            graph's input has the channels last).
        pairs: (reference layer, candidate layer) pairs that override the pairing by weights.
        atol: with `rtol`, the tolerance of the final outputs' comparison (default: that of their dtypes).
        rtol: see `atol`.
        bound_form: the rounding bound's form ("probabilistic" or "worst-case").
        equal_nan: NaN at the same position on both sides counts as equal.
        max_memory: refuse (BadInputError) a comparison estimated above this many bytes (None: half the
            available memory).
        spill: keep the captured activations on disk, memory-mapped (True), in memory (False), or on disk only
            when both models' would not fit `max_memory` (None).

    Returns:
        A `ModelsResult`, truthy when it passes.

    Raises:
        BadInputError: bad input (exit 2): an unreadable model or input, no pairable layers, too little memory.
        BackendUnavailableError, BackendFailedError: a framework cannot run (exit 3).
    """
    form = bound_form if isinstance(bound_form, BoundForm) else parse_bound_form(bound_form)
    tolerance = _tolerance(atol, rtol, equal_nan)
    x = _input(x)
    rank = x.ndim - 2
    x_layout = parse_input_layout(input_layout) if input_layout else input_layout_for(rank)
    if len(x_layout) != x.ndim:
        raise BadInputError(f"--input-layout {x_layout} does not fit the input of shape {fmt_dims(x.shape)}")
    x_last = conversion(x_layout, input_layout_for(rank)).apply(x)
    layouts = {k: parse_input_layout(v) for k, v in (layouts or {}).items()}
    for side in layouts:
        if side not in SIDES:
            raise BadInputError(f"--input-layout {side}=...: the sides are reference and candidate")
    models = {side: open_model(model, side) for side, model in zip(SIDES, (reference, candidate))}
    feeds = {side: _feed(models[side], side, x_last, layouts.get(side)) for side in SIDES}
    for side in SIDES:
        if not models[side].layers:
            skipped = "; ".join(f"{n}: {why}" for n, why in models[side].skipped[:5])
            raise BadInputError(f"the {side} model {models[side].description} has no convolution layer convdiff "
                                f"compares{' (' + skipped + ')' if skipped else ''}")
    pairing = pair_layers(*(_views(models[side]) for side in SIDES), forced=tuple(pairs))
    if not pairing:
        raise BadInputError(
            f"no pairable convolution layers: none of the reference's {len(models['reference'].layers)} "
            f"({_names(models['reference'])}) holds the weights of, or has the kernel shape of, one of the "
            f"candidate's {len(models['candidate'].layers)} ({_names(models['candidate'])}); pair them with "
            "--pair REFERENCE_LAYER=CANDIDATE_LAYER")
    plan = _plan(models, feeds, max_memory, spill)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(Spill()) if plan.spill else None
        return _compare(models, feeds, pairing, plan, store, stack, max_memory, spill, form, tolerance, equal_nan)


def _compare(models: dict[str, ModelSource], feeds: dict[str, tuple[np.ndarray, str]], pairing: Pairing, plan: _Plan,
             store: Spill | None, stack: contextlib.ExitStack, max_memory: int | None, spill: bool | None,
             form: BoundForm, tolerance: Tolerance | None, equal_nan: bool) -> ModelsResult:
    estimate = plan.estimate
    timings: dict[str, float] = {}
    runs = {}
    for side in SIDES:
        start = time.perf_counter()
        runs[side] = models[side].run(feeds[side][0], None if store is None else store.keep)
        timings[f"{side} run"] = time.perf_counter() - start
        if estimate is None and side == "reference":
            # Shapes known only by running (a torch.nn.Module): decided now, before the candidate runs.
            sizes = [c.input.nbytes + c.output.nbytes for c in runs["reference"].captured.values()]
            later = _decide(2 * sum(sizes), max(sizes, default=0), max_memory, spill)
            estimate = later.estimate
            if later.spill and store is None:
                store = stack.enter_context(Spill())
                runs["reference"] = dataclasses.replace(runs["reference"], captured={
                    name: Captured(store.keep(c.input), store.keep(c.output))
                    for name, c in runs["reference"].captured.items()})

    ref_layers = {layer.name: layer for layer in models["reference"].layers}
    cand_layers = {layer.name: layer for layer in models["candidate"].layers}
    by_reference = {p.reference: p for p in pairing.pairs}
    order = [name for name in runs["reference"].order if name in by_reference]
    order += [p.reference for p in pairing.pairs if p.reference not in order]
    ref_captured, cand_captured = dict(runs["reference"].captured), dict(runs["candidate"].captured)
    output_layer = _output_layer(runs["reference"].output, ref_captured, order)
    results: list[LayerResult] = []
    first: FirstDivergence | None = None
    start = time.perf_counter()
    diagnosis_seconds = 0.0
    for position, name in enumerate(order):
        pair = by_reference[name]
        r_cap, c_cap = ref_captured.pop(name, None), cand_captured.pop(pair.candidate, None)
        if r_cap is None or c_cap is None:
            who = "reference" if r_cap is None else "candidate"
            results.append(_not_run(pair, who, position))
            continue
        result, ref_ops, cand_ops = compare_layer(position, pair, ref_layers[name], cand_layers[pair.candidate],
                                                  r_cap, c_cap, form, equal_nan)
        results.append(result)
        if first is None and result.verdict is LayerVerdict.DIVERGES and ref_ops is not None and cand_ops is not None:
            t0 = time.perf_counter()
            first = diagnose_divergence(result, ref_ops, cand_ops, cand_layers[pair.candidate],
                                        models["candidate"].framework, form)
            diagnosis_seconds += time.perf_counter() - t0
        del r_cap, c_cap, ref_ops, cand_ops
    timings["recomputation"] = time.perf_counter() - start - diagnosis_seconds
    timings["diagnosis"] = diagnosis_seconds
    ref_out, cand_out = runs["reference"].output, runs["candidate"].output
    final = compare_arrays(ref_out, cand_out, tolerance=tolerance or _final_tolerance(ref_out, cand_out, equal_nan))
    note = ""
    if not final and first is None:
        note = _final_note(final, next((r for r in results if r.pair.reference == output_layer), None),
                           given=tolerance is not None)
    summaries = {side: ModelSummary(models[side].description, models[side].framework, len(models[side].layers),
                                    models[side].skipped, feeds[side][1], runs[side].seconds) for side in SIDES}
    return ModelsResult(summaries["reference"], summaries["candidate"], pairing, tuple(results), first, final,
                        timings, estimate, note, store is not None)


def _output_layer(output: np.ndarray, captured: dict, order: list[str]) -> str | None:
    """The paired reference layer whose captured output is the model's output itself, if one is."""
    output = np.asarray(output)
    for name in reversed(order):
        cap = captured.get(name)
        if cap is not None and np.shape(cap.output) == output.shape and np.array_equal(cap.output, output,
                                                                                      equal_nan=True):
            return name
    return None


def _final_note(final: Comparison, last: LayerResult | None, given: bool) -> str:
    """Why the final outputs fail while no paired layer diverges."""
    tolerance = f"atol {final.tolerance.atol:g}, rtol {final.tolerance.rtol:g}"
    which = f"the tolerance given ({tolerance})" if given else f"the elementwise tolerance of their dtype ({tolerance})"
    if last is None or last.verdict not in (LayerVerdict.WITHIN, LayerVerdict.AMPLIFIES):
        return ("every paired layer adds no more than its rounding bound, yet the final outputs differ: the "
                "difference comes from outside the paired convolutions (an unpaired layer, an activation, "
                "pooling, normalisation, or the final layers)")
    where = f"the final outputs are the output of paired layer '{last.pair.reference}'"
    # The elementwise tolerance of a dtype does not scale with the layer's sums (an atol is absolute), so
    # rounding alone can exceed it: large values, or outputs that cancel to near zero.
    fix = f"only {which} fails" + ("" if given else "; give --atol/--rtol to judge them")
    if last.verdict is LayerVerdict.WITHIN:
        return f"{where}, within its rounding bound (rounding alone, {last.propagated_ratio:.3g}x the bound): {fix}"
    return (f"{where}, which adds no more than its bound and inherits {last.propagated_ratio:.3g}x it from the "
            f"layers before, none of which adds more than its own bound (their rounding, amplified): {fix}")


def _tolerance(atol: float | None, rtol: float | None, equal_nan: bool) -> Tolerance | None:
    if (atol is None) != (rtol is None):
        raise BadInputError("give atol and rtol together, or neither")
    if atol is None:
        return None
    return Tolerance(float(atol), float(rtol), equal_nan)


def _final_tolerance(reference: np.ndarray, candidate: np.ndarray, equal_nan: bool) -> Tolerance:
    """The default tolerance of the final outputs: that of their dtypes, its atol in units of the reference
    output's largest magnitude when that is above 1. A model's rounding errors scale with its values; an
    absolute atol alone would call a correct port of a model run on large inputs (1e30) a mismatch at
    every output that cancels to a small value."""
    from convdiff.compare.tolerance import default_tolerance

    default = default_tolerance(np.asarray(reference).dtype, np.asarray(candidate).dtype)
    values = np.abs(np.asarray(reference, dtype=np.float64))
    finite = values[np.isfinite(values)]
    scale = float(finite.max()) if finite.size else 0.0
    return Tolerance(default.atol * max(1.0, scale), default.rtol, equal_nan)


def _input(x: Any) -> np.ndarray:
    if isinstance(x, str) or hasattr(x, "__fspath__"):
        from convdiff.data.arrays import load_array

        x = load_array(str(x), "input", key="input")
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise BadInputError(f"the input holds {x.dtype} values; models take floating point")
    if x.ndim < 3 or x.ndim > 5:
        raise BadInputError(f"the input has shape {fmt_dims(x.shape)}: give a batch (N, spatial..., C), 3 to 5 axes")
    if 0 in x.shape:
        raise BadInputError(f"the input is empty (shape {fmt_dims(x.shape)})")
    return x


def _feed(model: ModelSource, side: str, x_last: np.ndarray, layout: str | None) -> tuple[np.ndarray, str]:
    """The input as `model` takes it, and that layout."""
    rank = x_last.ndim - 2
    target = layout or input_layout_for(rank, model.channels_first)
    if len(target) != x_last.ndim:
        raise BadInputError(f"--input-layout {side}={target} does not fit a {rank}-D input")
    fed = conversion(input_layout_for(rank), target).apply(x_last)
    declared = model.input_shape
    if declared is not None and (len(declared) != fed.ndim or any(
            d is not None and d != s for d, s in zip(declared[1:], fed.shape[1:]))):
        raise BadInputError(
            f"the {side} model takes input {fmt_dims(declared)}; the input, fed as {target}, is {fmt_dims(fed.shape)} "
            f"(give --input-layout for the input file, or {side}=LAYOUT for the model)")
    return np.ascontiguousarray(fed), target


def _views(model: ModelSource) -> list[KernelView]:
    return [KernelView(layer.name, layer.kernel, layer.groups, layer.transposed) for layer in model.layers]


@dataclass(frozen=True)
class _Plan:
    """Where the captured activations go, decided from the memory estimate."""

    estimate: int | None
    """Bytes the comparison needs where the activations are kept (None: not known before the runs)."""
    spill: bool


def _plan(models: dict[str, ModelSource], feeds: dict[str, tuple[np.ndarray, str]], max_memory: int | None,
          spill: bool | None) -> _Plan:
    # The reference's sizes stand for the candidate's (a port computes the same tensors); the candidate's are
    # inferred only when the reference cannot say (ONNX shape inference of a large graph takes a while).
    for side in SIDES:
        sizes = models[side].capture_sizes(tuple(feeds[side][0].shape))
        if sizes is not None:
            return _decide(2 * sum(sizes), max(sizes, default=0), max_memory, spill)
    return _Plan(None, bool(spill))


def _decide(captured: int, largest: int, max_memory: int | None, spill: bool | None) -> _Plan:
    """Keep both models' activations in memory when they fit, else on disk (one run's worth in memory at
    once: Keras and ONNX Runtime return a run's tensors together), else refuse before anything runs."""
    # One layer at a time in float64: its input, padded input, output, the candidate's recomputation, the
    # bound's |x| (*) |w| and exact output, and the comparison's chunks: about 8 float64 copies of a layer.
    working = 8 * 2 * largest
    in_memory, on_disk = captured + working, captured // 2 + working
    limit = max_memory if max_memory is not None else default_limit()
    fits = limit is None or in_memory <= limit
    if spill is None:
        spill = not fits  # on disk is the least this comparison can need
    need = on_disk if spill else in_memory
    if limit is not None and need > limit:
        source = "--max-memory" if max_memory is not None else (
            f"the default, half of the {format_size(available_memory() or 0)} available")
        where = ("one run's captured layer inputs and outputs (the rest on disk)" if spill
                 else "captured layer inputs and outputs")
        raise BadInputError(f"comparing these models needs an estimated {format_size(need)} ({where} "
                            f"{format_size(need - working)}, the largest layer's float64 recomputation "
                            f"{format_size(working)}), above the limit of {format_size(limit)} ({source}); "
                            "use a smaller input or raise --max-memory")
    return _Plan(need, spill)


def _not_run(pair: LayerPair, who: str, position: int) -> LayerResult:
    return LayerResult(pair, LayerVerdict.NOT_MEASURED, None, None, "?", "?",
                       f"the {who} layer did not run on this input", position)


def _names(model: ModelSource, limit: int = 8) -> str:
    names = [layer.name for layer in model.layers]
    return ", ".join(names[:limit]) + (f", ... {len(names) - limit} more" if len(names) > limit else "") or "none"





__all__ = ["ModelSummary", "ModelsResult", "compare_models"]
