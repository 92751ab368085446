"""The case types: what to run (a `Case` of two `SideConfig`s and `CaseOptions`) and what came of it
(a `CaseResult` holding every side as data, the comparisons, and the analyses)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convdiff.analysis.bound import ThreeWay, UlpDistance
from convdiff.analysis.diagnose import Finding, Resolution
from convdiff.analysis.kernels import KernelDistribution, KernelStats, Theoretical, kernel_stats, theoretical
from convdiff.analysis.regions import MismatchRegions
from convdiff.backends.base import SideResult, Weights
from convdiff.backends.registry import RECORDED, backend_info
from convdiff.compare import PASSING, Comparison, RuleKind, Tolerance, Verdict
from convdiff.data.outputs import RecordedOutput
from convdiff.reference.rounding import Arithmetic, BoundForm
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import lower_precision

SIDES = ("reference", "candidate")


@dataclass(frozen=True)
class SideConfig:
    """One side of a comparison: a backend and the effective spec it runs.

    A replayed bundle also gives the input and the weights it ran on, so that nothing is redrawn.
    """

    backend: str
    spec: ConvSpec
    given_input: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The input to run on instead of the spec's input source (NHWC, the spec's input dtype)."""
    given_weights: Weights | None = field(default=None, compare=False, repr=False)
    """The kernel (HWIO) and bias to use instead of drawing or reading them."""
    recorded: RecordedOutput | None = field(default=None, compare=False, repr=False)
    """A recorded output that stands for this side: no backend runs (`backend` is `recorded`); its spec
    says how the recording was computed, its dtype is the array's."""

    @property
    def is_recorded(self) -> bool:
        return self.recorded is not None

    @property
    def input_known(self) -> bool:
        """Whether this side's input can be what it was computed from: a file or a deterministic built-in
        (`image`, `ones`). A seeded random input is convdiff's own draw, never taken to be a recording's."""
        return self.spec.input != "random"

    @classmethod
    def from_recorded(cls, spec: ConvSpec, recorded: RecordedOutput) -> SideConfig:
        """The side a recorded output stands for: `spec` says how it was computed, in the array's dtype."""
        return cls(RECORDED.name, spec.replace(dtype=recorded.dtype), recorded=recorded)


@dataclass(frozen=True)
class CaseOptions:
    """How to compare, parsed once at the edge."""

    tolerance: Tolerance | None = None
    """Explicit atol/rtol; None picks the default of the lower compute dtype."""
    shared_kernel: bool = False
    """Give the candidate the reference's kernel, so only the convolution ops are compared."""
    top_k: int = 10
    equal_nan: bool = False
    mode: RuleKind | None = None
    """Which rule decides; None: `bound`, unless an explicit atol/rtol asks for `elementwise`."""
    bound_form: BoundForm = BoundForm.PROBABILISTIC

    @property
    def tolerance_mode(self) -> RuleKind:
        if self.mode is not None:
            return self.mode
        return RuleKind.ELEMENTWISE if self.tolerance is not None else RuleKind.BOUND


@dataclass(frozen=True)
class Case:
    """One comparison to run: a reference side, a candidate side, and how to compare them."""

    name: str
    reference: SideConfig
    candidate: SideConfig
    options: CaseOptions = field(default_factory=CaseOptions)

    @property
    def sides(self) -> tuple[tuple[str, SideConfig], ...]:
        return (("reference", self.reference), ("candidate", self.candidate))


@dataclass(frozen=True)
class SideRun:
    """One side as it ran: its configuration, the input it was given, and what its backend produced."""

    role: str
    """`reference` or `candidate`."""
    config: SideConfig
    input: np.ndarray = field(repr=False)
    """The input this side ran on (its fingerprint is `result.input_sha256`)."""
    result: SideResult

    @property
    def kernel_stats(self) -> KernelStats:
        return kernel_stats(self.result.kernel)

    @property
    def arithmetic(self) -> Arithmetic:
        """How this side computed: its operand, accumulation and output precisions (the rounding model)."""
        info = RECORDED if self.config.is_recorded else backend_info(self.result.backend)
        return info.arithmetic(self.result)


@dataclass(frozen=True)
class CaseResult:
    """Everything known about one reference/candidate comparison."""

    name: str
    sides: tuple[SideRun, ...]
    """The reference first, then the candidate."""
    options: CaseOptions
    kernels: Comparison
    """Exact comparison of the kernels the two sides used (rtol = atol = 0), before any output."""
    output: Comparison
    """The outputs under the deciding rule (`output.rule`): the verdict and every count follow it."""
    bound: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The per-element rounding bound the bound rule used (None under the elementwise rule)."""
    kernel_distribution: KernelDistribution | None = None
    """When the kernels are not bit-identical: same law with different draws, or different laws."""
    three_way: ThreeWay | None = None
    """Each side against float64 recomputed from its own kernel, when the sides differ."""
    ulp: UlpDistance | None = None
    """ULP distance between the sides in the lower compute dtype."""
    regions: MismatchRegions | None = None
    """Where the outputs mismatch (by the deciding rule); None when they pass."""
    diagnosis: tuple[Finding, ...] = ()
    """One finding per hypothesis tried; empty when the outputs pass."""
    resolution: Resolution | None = None
    """When the bound found the outputs equivalent: what it cannot exclude at this precision."""
    not_possible: tuple[str, ...] = ()
    """The checks a recorded side without its input or weights leaves impossible, one sentence each."""

    def side(self, role: str) -> SideRun:
        for run in self.sides:
            if run.role == role:
                return run
        raise KeyError(role)

    @property
    def reference(self) -> SideResult:
        return self.side("reference").result

    @property
    def candidate(self) -> SideResult:
        return self.side("candidate").result

    @property
    def reference_config(self) -> SideConfig:
        return self.side("reference").config

    @property
    def candidate_config(self) -> SideConfig:
        return self.side("candidate").config

    @property
    def verdict(self) -> Verdict:
        return self.output.verdict

    @property
    def tolerance_mode(self) -> RuleKind:
        """The rule that decided `verdict`."""
        return self.output.rule.kind

    @property
    def recorded_without_input(self) -> bool:
        """A recorded side whose input is not known: the spec's input shape is not the recording's."""
        return any(run.config.is_recorded and not run.config.input_known for run in self.sides)

    @property
    def kernels_identical(self) -> bool:
        return self.kernels.verdict is Verdict.IDENTICAL

    @property
    def inputs_identical(self) -> bool:
        """Whether both sides ran on the same input bytes, shape and dtype (see `SideResult.input_sha256`)."""
        return self.reference.input_sha256 == self.candidate.input_sha256

    @property
    def compute_dtype(self) -> str:
        """The lower of the two sides' compute precisions: the one the tolerance is chosen for."""
        return lower_precision(self.reference.compute_dtype, self.candidate.compute_dtype)

    @property
    def kernels_from_files(self) -> bool:
        """Whether the kernels came from weights files (no initializer drew them)."""
        return bool(self.reference_config.spec.weights or self.candidate_config.spec.weights)

    @property
    def kernel_theory(self) -> Theoretical | None:
        """The law the reference's initializer draws from (e.g. the Glorot bound), when drawn from one."""
        if self.reference_config.spec.weights or self.reference_config.given_weights is not None:
            return None
        try:
            spec, kernel = self.reference_config.spec, self.reference.kernel
            # The law of the shape it was drawn in (a depthwise kernel's fans are those of (*k, C, M)).
            shape = spec.draw_shape if kernel.size == np.prod(spec.draw_shape) else kernel.shape
            return theoretical(spec.initializer, shape)
        except ValueError:  # a law this kernel shape has no theory for
            return None

    def __bool__(self) -> bool:
        return self.verdict in PASSING
