"""Run every side of a case, then compare: two separate phases, as Polygraphy's Comparator does.

The order of findings matters: kernels are compared before outputs, because "the weights differ
before the convolution" is a different finding from "the convolutions differ".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from convdiff.backends import SideResult, Weights, backend_info, get_backend
from convdiff.backends.guard import run_guarded
from convdiff.compare.core import Comparison, Tolerance, Verdict, compare_arrays, default_tolerance
from convdiff.spec.dtypes import lower_precision
from convdiff.data.fingerprint import input_sha256
from convdiff.data.inputs import make_input
from convdiff.analysis.precision import (BoundCheck, BoundForm, ThreeWay, ToleranceMode, UlpDistance, check_bound,
                                rounding_bound, side_error, ulp_distance)
from convdiff.spec.convspec import ConvSpec

if TYPE_CHECKING:
    from convdiff.analysis.kernels import KernelDistribution


@dataclass(frozen=True)
class SideConfig:
    """One side of a comparison: a backend and the effective spec it runs."""

    backend: str
    spec: ConvSpec


@dataclass(frozen=True)
class CaseOptions:
    """How to compare, parsed once at the edge."""

    tolerance: Tolerance | None = None
    """Explicit atol/rtol; None picks the default of the lower compute dtype."""
    shared_kernel: bool = False
    """Give the candidate the reference's kernel, so only the convolution ops are compared."""
    top_k: int = 10
    equal_nan: bool = False
    mode: ToleranceMode | None = None
    """Which rule decides; None: `bound`, unless an explicit atol/rtol asks for `elementwise`."""
    bound_form: BoundForm = BoundForm.PROBABILISTIC

    @property
    def tolerance_mode(self) -> ToleranceMode:
        if self.mode is not None:
            return self.mode
        return ToleranceMode.ELEMENTWISE if self.tolerance is not None else ToleranceMode.BOUND


@dataclass(frozen=True)
class CaseResult:
    """Everything known about one reference/candidate comparison."""

    name: str
    reference_config: SideConfig
    candidate_config: SideConfig
    reference: SideResult
    candidate: SideResult
    kernels: Comparison
    """Exact comparison of the kernels the two sides used (rtol = atol = 0)."""
    output: Comparison
    """Comparison of the outputs under `output.tolerance`."""
    options: CaseOptions = field(default_factory=CaseOptions)
    kernel_distribution: KernelDistribution | None = None
    """When the kernels are not bit-identical: same law with different draws, or different laws."""
    diagnosis: tuple[Any, ...] = ()
    """`convdiff.diagnose.Hypothesis` per hypothesis tried; empty when the outputs pass."""
    regions: Any = None
    """`convdiff.regions.MismatchRegions` where the outputs mismatch; None when they pass."""
    bound: BoundCheck | None = None
    """The outputs under the rounding bound of the lower compute precision (None: not computed)."""
    three_way: ThreeWay | None = None
    """Each side against float64 recomputed from its own kernel, when the sides differ."""
    ulp: UlpDistance | None = None
    """ULP distance between the sides in the lower compute dtype."""

    @property
    def tolerance_mode(self) -> ToleranceMode:
        """The rule that decided `verdict` (elementwise when no bound could be computed)."""
        if self.bound is None:
            return ToleranceMode.ELEMENTWISE
        return self.options.tolerance_mode

    @property
    def verdict(self) -> Verdict:
        """The case verdict: shape/empty/identical from the comparison, otherwise the deciding rule's."""
        out = self.output.verdict
        if out in (Verdict.SHAPE_MISMATCH, Verdict.EMPTY, Verdict.IDENTICAL):
            return out
        if self.tolerance_mode is ToleranceMode.BOUND:
            return Verdict.EQUIVALENT if self.bound else Verdict.MISMATCH
        return out

    @property
    def kernels_identical(self) -> bool:
        return self.kernels.verdict.value == "identical"

    @property
    def inputs_identical(self) -> bool:
        """Whether both sides ran on the same input bytes, shape and dtype (see `SideResult.input_sha256`)."""
        return self.reference.input_sha256 == self.candidate.input_sha256

    @property
    def compute_dtype(self) -> str:
        """The lower of the two sides' compute precisions: the one the tolerance is chosen for."""
        return lower_precision(self.reference.compute_dtype, self.candidate.compute_dtype)

    def __bool__(self) -> bool:
        return self.verdict in (Verdict.IDENTICAL, Verdict.EQUIVALENT)


def run_sides(reference: SideConfig, candidate: SideConfig, options: CaseOptions) -> tuple[SideResult, SideResult]:
    """Phase one: run both backends (the candidate on the reference's kernel with `shared_kernel`)."""
    ref, cand, _, _ = run_sides_with_inputs(reference, candidate, options)
    return ref, cand


def run_sides_with_inputs(reference: SideConfig, candidate: SideConfig, options: CaseOptions):  # noqa: ANN201
    """`run_sides`, also returning the inputs each side was given (for the precision checks)."""
    ref_backend = get_backend(reference.backend)
    cand_backend = get_backend(candidate.backend)
    for side in (reference, candidate):
        backend_info(side.backend).check_spec(side.spec)
    x_ref = make_input(reference.spec)
    x_cand = x_ref if _same_input(reference.spec, candidate.spec) else make_input(candidate.spec)
    ref_file, cand_file = file_weights(reference.spec), file_weights(candidate.spec)
    # Weights from a file replace every initializer: a side without its own file uses the other's.
    ref_file = ref_file or cand_file
    cand_file = cand_file or ref_file
    # Every backend runs through the one guard: a framework raising is exit 3, naming the side's backend.
    ref = _with_note(run_guarded(reference.backend, lambda: ref_backend.run(
        reference.spec, x_ref, ref_file and _as_weights(ref_file, reference.spec))), ref_file)
    if options.shared_kernel:
        cand = run_guarded(candidate.backend, lambda: cand_backend.run(candidate.spec, x_cand,
                                                                       Weights(ref.kernel, ref.bias)))
    else:
        cand = _with_note(run_guarded(candidate.backend, lambda: cand_backend.run(
            candidate.spec, x_cand, cand_file and _as_weights(cand_file, candidate.spec))), cand_file)
    # Fingerprint what each side was actually given, so different inputs can never pass unnoticed.
    fp_ref = input_sha256(x_ref)
    fp_cand = fp_ref if x_cand is x_ref else input_sha256(x_cand)
    return (dataclasses.replace(ref, input_sha256=fp_ref), dataclasses.replace(cand, input_sha256=fp_cand),
            x_ref, x_cand)


def file_weights(spec: ConvSpec):  # noqa: ANN201 - LoadedWeights | None
    """The weights a spec reads from files, converted to HWIO, or None."""
    if not spec.weights:
        return None
    from convdiff.data.weights import load_weights

    return load_weights(spec.weights, spec.weights_layout, spec.bias)


def _as_weights(loaded: Any, spec: ConvSpec) -> Weights:
    bias = loaded.bias
    if bias is None and spec.use_bias:
        bias = np.zeros(loaded.kernel.shape[3], dtype=loaded.kernel.dtype)  # no bias in the files: zero, not drawn
    return Weights(loaded.kernel, bias)


def _with_note(result: SideResult, loaded: Any) -> SideResult:
    if loaded is None:
        return result
    return dataclasses.replace(result, notes=(loaded.note, *result.notes))


def compare_sides(name: str, reference: SideConfig, candidate: SideConfig, ref: SideResult, cand: SideResult,
                  options: CaseOptions, inputs: tuple[np.ndarray, np.ndarray] | None = None) -> CaseResult:
    """Phase two: kernels first (exactly), then outputs (under the tolerance and, given the
    inputs, under the rounding bound, with the three-way check against float64 and ULPs)."""
    kernels = compare_arrays(ref.kernel, cand.kernel, atol=0.0, rtol=0.0, top_k=options.top_k)
    tolerance = options.tolerance or default_tolerance(ref.compute_dtype, cand.compute_dtype)
    # The NaN policy travels with the tolerance: the dtype defaults hold equal_nan=False.
    tolerance = dataclasses.replace(tolerance, equal_nan=options.equal_nan or tolerance.equal_nan)
    output = compare_arrays(ref.output, cand.output, tolerance=tolerance, top_k=options.top_k,
                            equal_nan=options.equal_nan)
    distribution = None
    if kernels.verdict.value != "identical":
        from convdiff.analysis.kernels import kernel_distribution

        distribution = kernel_distribution(ref.kernel, cand.kernel, reference.spec.initializer,
                                           candidate.spec.initializer)
    result = CaseResult(name, reference, candidate, ref, cand, kernels, output, options, distribution)
    if inputs is None or not output.shape_match or output.total == 0:
        return result
    return precision_checks(result, *inputs)


def precision_checks(case: CaseResult, x_ref: np.ndarray, x_cand: np.ndarray) -> CaseResult:
    """Add the bound check, the ULP distance and (when the outputs differ) the three-way check."""

    ref, cand, form = case.reference, case.candidate, case.options.bound_form
    dtype = case.compute_dtype
    bound, g = rounding_bound(x_ref, ref.kernel, case.reference_config.spec, dtype, form, ref.bias)
    checked = check_bound(ref.output, cand.output, bound, g, equal_nan=case.options.equal_nan)
    del bound
    ulp = ulp_distance(ref.output, cand.output, dtype)
    three = None
    if case.output.verdict is not Verdict.IDENTICAL and "numpy" not in (ref.backend, cand.backend):
        # Each side against float64 from ITS OWN kernel: a side is wrong when it is outside the
        # rounding bound of its own compute dtype, whatever the other side did.
        three = ThreeWay(
            side_error(ref.output, x_ref, ref.kernel, ref.bias, case.reference_config.spec, ref.compute_dtype, form),
            side_error(cand.output, x_cand, cand.kernel, cand.bias, case.candidate_config.spec,
                       cand.compute_dtype, form))
    return dataclasses.replace(case, bound=checked, ulp=ulp, three_way=three)


def run_case(name: str, reference: SideConfig, candidate: SideConfig, options: CaseOptions = CaseOptions()) -> CaseResult:
    ref, cand, x_ref, x_cand = run_sides_with_inputs(reference, candidate, options)
    result = compare_sides(name, reference, candidate, ref, cand, options, inputs=(x_ref, x_cand))
    if not result:
        result = explain(result, x_ref)
    return result


def explain(result: CaseResult, x_ref: np.ndarray | None = None) -> CaseResult:
    """Where the outputs mismatch and why: run only on a failing comparison (it costs recomputations)."""
    from convdiff.analysis.diagnose import diagnose
    from convdiff.analysis.regions import analyze_regions

    if x_ref is None:
        x_ref = make_input(result.reference_config.spec)
    regions = analyze_regions(result.reference.output, result.candidate.output, result.output)
    diagnosis = diagnose(
        result.reference_config.spec, result.candidate_config.spec, x_ref,
        result.reference.kernel, result.reference.bias, result.candidate.output,
        reference_dtype=result.reference.compute_dtype, candidate_dtype=result.candidate.compute_dtype,
        candidate_kernel=result.candidate.kernel, candidate_bias=result.candidate.bias)
    return dataclasses.replace(result, diagnosis=diagnosis, regions=regions)


def _same_input(a: ConvSpec, b: ConvSpec) -> bool:
    return (a.input, a.input_shape, a.effective_input_dtype, a.seed) == (b.input, b.input_shape, b.effective_input_dtype, b.seed)


def kernel_summary(kernel: np.ndarray) -> dict[str, float]:
    k = np.asarray(kernel, dtype=np.float64)
    return {"mean": float(k.mean()), "std": float(k.std()), "min": float(k.min()), "max": float(k.max())}
