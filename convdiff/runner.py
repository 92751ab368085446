"""Run every side of a case, then compare: two separate phases, as Polygraphy's Comparator does.

The order of findings matters: kernels are compared before outputs, because "the weights differ
before the convolution" is a different finding from "the convolutions differ".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from convdiff.backends import SideResult, Weights, get_backend
from convdiff.compare import Comparison, Tolerance, compare_arrays, default_tolerance
from convdiff.dtypes import lower_precision
from convdiff.inputs import make_input
from convdiff.spec import ConvSpec

if TYPE_CHECKING:
    from convdiff.distribution import KernelDistribution


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

    @property
    def kernels_identical(self) -> bool:
        return self.kernels.verdict.value == "identical"

    @property
    def compute_dtype(self) -> str:
        """The lower of the two sides' compute precisions: the one the tolerance is chosen for."""
        return lower_precision(self.reference.compute_dtype, self.candidate.compute_dtype)

    def __bool__(self) -> bool:
        return bool(self.output)


def run_sides(reference: SideConfig, candidate: SideConfig, options: CaseOptions) -> tuple[SideResult, SideResult]:
    """Phase one: run both backends (the candidate on the reference's kernel with `shared_kernel`)."""
    ref_backend = get_backend(reference.backend)
    cand_backend = get_backend(candidate.backend)
    x_ref = make_input(reference.spec)
    x_cand = x_ref if _same_input(reference.spec, candidate.spec) else make_input(candidate.spec)
    ref = ref_backend.run(reference.spec, x_ref, None)
    weights = Weights(ref.kernel, ref.bias) if options.shared_kernel else None
    cand = cand_backend.run(candidate.spec, x_cand, weights)
    return ref, cand


def compare_sides(name: str, reference: SideConfig, candidate: SideConfig, ref: SideResult, cand: SideResult,
                  options: CaseOptions) -> CaseResult:
    """Phase two: kernels first (exactly), then outputs (under the tolerance)."""
    kernels = compare_arrays(ref.kernel, cand.kernel, atol=0.0, rtol=0.0, top_k=options.top_k)
    tolerance = options.tolerance or default_tolerance(ref.compute_dtype, cand.compute_dtype)
    output = compare_arrays(ref.output, cand.output, tolerance=tolerance, top_k=options.top_k,
                            equal_nan=options.equal_nan)
    distribution = None
    if kernels.verdict.value != "identical":
        from convdiff.distribution import kernel_distribution

        distribution = kernel_distribution(ref.kernel, cand.kernel, reference.spec.initializer,
                                           candidate.spec.initializer)
    return CaseResult(name, reference, candidate, ref, cand, kernels, output, options, distribution)


def run_case(name: str, reference: SideConfig, candidate: SideConfig, options: CaseOptions = CaseOptions()) -> CaseResult:
    ref, cand = run_sides(reference, candidate, options)
    return compare_sides(name, reference, candidate, ref, cand, options)


def _same_input(a: ConvSpec, b: ConvSpec) -> bool:
    return (a.input, a.input_shape, a.effective_input_dtype, a.seed) == (b.input, b.input_shape, b.effective_input_dtype, b.seed)


def kernel_summary(kernel: np.ndarray) -> dict[str, float]:
    k = np.asarray(kernel, dtype=np.float64)
    return {"mean": float(k.mean()), "std": float(k.std()), "min": float(k.min()), "max": float(k.max())}
