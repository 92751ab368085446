"""The one way a case runs, whatever asked for it (`compare`, `run`, `sweep`, a replayed bundle, the
Python API):

    capabilities -> memory estimate -> frameworks -> inputs -> each side through the guard
    -> kernels (exactly) -> outputs under the deciding rule -> precision analyses -> regions and diagnosis

Every refusal (a spec a backend cannot express, a comparison too large for memory) happens before
any framework runs; every framework failure becomes the one-line "backend failed" (exit 3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from convdiff.analysis.bound import ThreeWay, side_error, ulp_distance
from convdiff.analysis.diagnose import diagnose, resolution
from convdiff.analysis.kernels import kernel_distribution
from convdiff.analysis.regions import analyze_regions
from convdiff.backends.base import SideResult, Weights
from convdiff.backends.guard import run_guarded
from convdiff.backends.registry import backend_info, get_backend, prepare_frameworks
from convdiff.compare import Comparison, Rule, RuleKind, Verdict, compare_arrays, default_tolerance
from convdiff.data.fingerprint import input_sha256
from convdiff.data.inputs import make_input
from convdiff.data.memory import check_memory
from convdiff.data.outputs import shape_error
from convdiff.data.weights import LoadedWeights, load_weights
from convdiff.errors import BadInputError
from convdiff.pipeline.case import Case, CaseOptions, CaseResult, SideConfig, SideRun
from convdiff.reference.rounding import Arithmetic, rounding_bound
from convdiff.spec.convspec import ConvSpec
from convdiff.spec.dtypes import lower_precision, np_dtype


def check_case(case: Case, max_memory: int | None = None, where: str = "") -> None:
    """Everything that can be refused before anything runs: backends known and installed, specs they
    can express, memory. Raises BadInputError (exit 2) or BackendUnavailableError (exit 3)."""
    for _, side in case.sides:
        if not side.is_recorded:
            backend_info(side.backend).check_spec(side.spec)
    if case.options.shared_kernel and any(side.is_recorded for _, side in case.sides):
        raise BadInputError("--shared-kernel needs two backends: a recorded output has no kernel to share")
    check_memory(case.reference.spec, case.candidate.spec, max_memory, where=where)


def execute(case: Case, max_memory: int | None = None) -> CaseResult:
    """Run one case through the whole pipeline and return what came of it.

    Args:
        case: the two sides and the options.
        max_memory: bytes; None for the default limit (a share of the available memory).

    Returns:
        The `CaseResult`; a mismatch is a result, not an exception.
    """
    check_case(case, max_memory)
    live = [(role, side) for role, side in case.sides if not side.is_recorded]
    prepare_frameworks([side.backend for _, side in live])
    backends = {role: get_backend(side.backend) for role, side in live}
    ref_cfg, cand_cfg = case.reference, case.candidate
    x_ref = _input(ref_cfg)
    x_cand = x_ref if _same_input(ref_cfg, cand_cfg) else _input(cand_cfg)
    # Given weights (a replayed bundle) are what the side ran on: its weights file is not read again.
    ref_file = None if ref_cfg.given_weights is not None else file_weights(ref_cfg.spec)
    cand_file = None if cand_cfg.given_weights is not None else file_weights(cand_cfg.spec)
    # Weights from a file replace every initializer: a side without its own file uses the other's.
    ref_file, cand_file = ref_file or cand_file, cand_file or ref_file
    ref_weights = ref_cfg.given_weights or _as_weights(ref_file, ref_cfg.spec)
    if ref_cfg.is_recorded:
        # Two recordings without their input: only each other's shape is known, checked on the candidate.
        unknown = cand_cfg.is_recorded and not ref_cfg.input_known
        ref = _recorded_side(ref_cfg, x_ref, ref_weights, ref_file,
                             None if unknown else ref_cfg.spec.output_shape, "the spec's output shape is",
                             "the expected output")
    else:
        ref = _run_side(backends["reference"], ref_cfg, x_ref, ref_weights, ref_file)
    if case.options.shared_kernel:
        cand_weights: Weights | None = Weights(ref.kernel, ref.bias)
    else:
        cand_weights = cand_cfg.given_weights or _as_weights(cand_file, cand_cfg.spec)
    if cand_cfg.is_recorded:
        if ref_cfg.is_recorded and not cand_cfg.input_known:
            expected, against, like = (ref.output.shape, f"the reference '{ref_cfg.recorded.source}' has",
                                       ref_cfg.recorded.source)
        else:
            expected, against, like = cand_cfg.spec.output_shape, "the spec's output shape is", "the expected output"
        cand = _recorded_side(cand_cfg, x_cand, cand_weights, cand_file, expected, against, like)
    else:
        cand = _run_side(backends["candidate"], cand_cfg, x_cand, cand_weights,
                         None if case.options.shared_kernel else cand_file)
    sides = (SideRun("reference", ref_cfg, x_ref, ref), SideRun("candidate", cand_cfg, x_cand, cand))
    return compare_sides(case.name, sides, case.options)


def compare_sides(name: str, sides: tuple[SideRun, SideRun], options: CaseOptions,
                  explain_failures: bool = True) -> CaseResult:
    """Kernels first (exactly), then outputs under the deciding rule, then the analyses.

    `explain_failures=False` leaves out the regions and the diagnosis of a failing comparison (the
    calibration study needs only the verdict and the resolution)."""
    ref_run, cand_run = sides
    ref, cand = ref_run.result, cand_run.result
    gaps = recorded_gaps(sides)
    if gaps:
        if options.mode is RuleKind.BOUND:
            raise BadInputError(f"--tolerance bound is not possible here: {gaps[0]}")
        # Without the operands the recording came from there is no bound to build: atol/rtol decide.
        rule_options = dataclasses.replace(options, mode=RuleKind.ELEMENTWISE)
    else:
        rule_options = options
    kernels = compare_arrays(ref.kernel, cand.kernel, atol=0.0, rtol=0.0, top_k=options.top_k)
    distribution = None
    from_files = bool(ref_run.config.spec.weights or cand_run.config.spec.weights)
    recorded = ref_run.config.is_recorded or cand_run.config.is_recorded
    # Kernels read from files were never drawn from an initializer: there is no law to test them against.
    if kernels.verdict is not Verdict.IDENTICAL and not from_files and not recorded:
        # Checked in the shape each side drew its kernel in (a depthwise kernel's fans are those of (*k, C, M)).
        ref_spec, cand_spec = ref_run.config.spec, cand_run.config.spec
        distribution = kernel_distribution(_drawn(ref.kernel, ref_spec), _drawn(cand.kernel, cand_spec),
                                           ref_spec.initializer, cand_spec.initializer)
    dtype = lower_precision(ref.compute_dtype, cand.compute_dtype)
    rule, bound = deciding_rule(rule_options, ref_run, cand_run, dtype)
    output = compare_arrays(ref.output, cand.output, rule=rule, bound=bound, top_k=options.top_k)
    result = CaseResult(name, sides, options, kernels, output, bound, distribution, not_possible=gaps)
    finish = explain if explain_failures else (lambda r: r)
    if not output.shape_match or output.total == 0:
        return result if output else finish(result)
    ulp = ulp_distance(ref.output, cand.output, dtype)
    three = None
    if output.verdict is not Verdict.IDENTICAL and "numpy" not in (ref.backend, cand.backend) and not gaps:
        # Each side against float64 from ITS OWN kernel: a side is wrong when it is outside the
        # rounding bound of its own compute dtype, whatever the other side did.
        three = ThreeWay(*(side_error(run.result.output, run.input, run.result.kernel, run.result.bias,
                                      run.config.spec, run.arithmetic, options.bound_form)
                           for run in sides), same_convolution=_same_convolution(ref_run, cand_run))
    result = dataclasses.replace(result, ulp=ulp, three_way=three)
    if output.verdict is Verdict.EQUIVALENT and rule.is_bound and not gaps:
        # Within rounding: say which known mistakes the bound could not exclude at this precision.
        result = dataclasses.replace(result, resolution=resolution(
            ref_run.config.spec, cand_run.config.spec, ref_run.input, ref.kernel, ref.bias, ref.output, cand.output,
            bound, reference_dtype=ref.compute_dtype, candidate_dtype=cand.compute_dtype,
            form=options.bound_form, candidate_arithmetic=cand_run.arithmetic))
    return result if output else finish(result)


def deciding_rule(options: CaseOptions, reference: SideRun, candidate: SideRun,
                  dtype: str) -> tuple[Rule, np.ndarray | None]:
    """The rule that decides this case, and the bound array when it is the rounding bound.

    The bound is built from the reference side's input, kernel and bias, under the rounding model of
    both sides' arithmetic (`SideRun.arithmetic`); `dtype`, the lower compute precision, picks the
    elementwise tolerance.
    """
    ref = reference.result
    tolerance = options.tolerance or default_tolerance(ref.compute_dtype, dtype)
    # The NaN policy travels with the tolerance: the dtype defaults hold equal_nan=False.
    tolerance = dataclasses.replace(tolerance, equal_nan=options.equal_nan or tolerance.equal_nan)
    if options.tolerance_mode is RuleKind.ELEMENTWISE:
        return Rule.elementwise(tolerance), None
    sides = (reference.arithmetic, candidate.arithmetic)
    # A reference computed in float64 throughout is the exact result the bound needs: not computed twice.
    exact = ref.output if sides[0] == Arithmetic.exact() else None
    bound, model = rounding_bound(reference.input, ref.kernel, reference.config.spec, sides, options.bound_form,
                                  ref.bias, exact=exact)
    return Rule.bound(model, tolerance), bound


def explain(result: CaseResult) -> CaseResult:
    """Where the outputs mismatch and why: run only on a failing comparison (it costs recomputations)."""
    ref_run, cand_run = result.sides
    regions = analyze_regions(ref_run.result.output, cand_run.result.output, result.output, result.bound)
    if result.not_possible:  # a recording without its operands: nothing to recompute the variants from
        return dataclasses.replace(result, regions=regions)
    findings = diagnose(
        ref_run.config.spec, cand_run.config.spec, ref_run.input, ref_run.result.kernel, ref_run.result.bias,
        cand_run.result.output, reference_dtype=ref_run.result.compute_dtype,
        candidate_dtype=cand_run.result.compute_dtype, candidate_kernel=cand_run.result.kernel,
        candidate_bias=cand_run.result.bias, form=result.options.bound_form,
        candidate_arithmetic=cand_run.arithmetic)
    return dataclasses.replace(result, diagnosis=findings, regions=regions)


def _run_side(backend, config: SideConfig, x: np.ndarray, weights: Weights | None,  # noqa: ANN001
              loaded: LoadedWeights | None) -> SideResult:
    # Every backend runs through the one guard: a framework raising is exit 3, naming the side's backend.
    result = run_guarded(config.backend, lambda: backend.run(config.spec, x, weights))
    notes = result.notes
    if loaded is not None and config.given_weights is None:
        converted = conversion_note(loaded, config.spec)
        notes = (loaded.note, *((converted,) if converted else ()), *notes)
    # Fingerprint what the side was actually given, so different inputs can never pass unnoticed.
    return dataclasses.replace(result, notes=notes, input_sha256=input_sha256(x))


def _recorded_side(config: SideConfig, x: np.ndarray, weights: Weights | None, loaded: LoadedWeights | None,
                   expected: tuple[int, ...] | None, against: str, like: str) -> SideResult:
    """A recorded output standing where a backend's result would: its array, the weights it is said to
    come from (none: an empty kernel, nothing to compare), its dtype as the compute dtype. A shape other
    than `expected` (None: not checked) is bad input, naming the layout that would fit."""
    recorded = config.recorded
    assert recorded is not None
    spec = config.spec
    if expected is not None and recorded.array.shape != tuple(expected):
        raise shape_error(recorded, tuple(expected), spec.rank, against, like)
    array = recorded.array
    kernel = weights.kernel if weights is not None else np.zeros((0,), array.dtype)
    bias = weights.bias if weights is not None else None
    shape = "x".join(map(str, recorded.file_shape))
    notes = [f"recorded output {recorded.source} ({recorded.layout} {shape} {recorded.dtype}) stands for this "
             "side: no backend ran"]
    if loaded is not None:
        converted = conversion_note(loaded, spec)
        notes += [loaded.note, *((converted,) if converted else ())]
    return SideResult(config.backend, array, kernel, bias, recorded.dtype, tuple(notes), 0.0, input_sha256(x))


def recorded_gaps(sides: tuple[SideRun, SideRun]) -> tuple[str, ...]:
    """What a recorded side lacking its input or weights makes impossible, one sentence per check;
    empty when every recorded side has both (then everything runs as for two backends)."""
    missing: list[str] = []
    for run in sides:
        spec = run.config.spec
        if not run.config.is_recorded:
            continue
        if not run.config.input_known:
            missing.append("the input (--input FILE)")
        if not (spec.weights or run.config.given_weights is not None):
            missing.append("the weights (--weights FILE or --from FILE#LAYER)")
    if not missing:
        return ()
    needs = " and ".join(dict.fromkeys(missing))
    gaps = [f"rounding-bound verdict: it needs {needs} the recorded output was computed from; decided by the "
            "elementwise rule (atol/rtol) instead",
            "three-way check (each side against float64) and the precision analyses: no operands to recompute from",
            "diagnosis: no operands to recompute the variants from (the mismatch regions are still shown)"]
    if any("weights" in m for m in missing):
        gaps.append("kernel comparison: a recorded output carries no kernel")
    return tuple(gaps)


# Spec fields that do not change what is computed, only how it is stored, drawn or laid out.
_NOT_THE_CONVOLUTION = {"dtype", "input_dtype", "seed", "initializer", "bias_initializer", "input", "input_layout",
                        "weights", "weights_layout", "bias", "data_format", "ort_optimization", "device"}


def _same_convolution(a: SideRun, b: SideRun) -> bool:
    """Both sides asked for the same convolution of the same values (their storage dtypes aside)."""
    fa, fb = a.config.spec.to_json(), b.config.spec.to_json()
    if any(fa[k] != fb[k] for k in fa if k not in _NOT_THE_CONVOLUTION):
        return False
    with np.errstate(invalid="ignore"):
        same = [np.shape(u) == np.shape(v) and np.array_equal(np.asarray(u, np.float64), np.asarray(v, np.float64))
                for u, v in ((a.input, b.input), (a.result.kernel, b.result.kernel))]
    bias_a, bias_b = a.result.bias, b.result.bias
    same_bias = (bias_a is None) == (bias_b is None) and (bias_a is None or np.array_equal(
        np.asarray(bias_a, np.float64), np.asarray(bias_b, np.float64)))
    return all(same) and same_bias


def _drawn(kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    shape = spec.draw_shape
    return kernel.reshape(shape) if kernel.size == int(np.prod(shape)) else kernel


def _input(config: SideConfig) -> np.ndarray:
    return config.given_input if config.given_input is not None else make_input(config.spec)


def file_weights(spec: ConvSpec) -> LoadedWeights | None:
    """The weights a spec reads from files, converted to the canonical layout of its kind, or None."""
    if not spec.weights:
        return None
    return load_weights(spec.weights, spec.weights_layout, spec.bias, rank=spec.rank, transposed=spec.transposed,
                        groups=spec.groups)


def _as_weights(loaded: LoadedWeights | None, spec: ConvSpec) -> Weights | None:
    """The file's kernel and bias converted once to the side's variable dtype, so every side of that
    dtype gets the same values, as it would hold them in its variables."""
    if loaded is None:
        return None
    target = np_dtype(spec.variable_dtype)
    kernel = _converted(loaded.kernel, target, loaded.source, "kernel")
    bias = None if loaded.bias is None else _converted(loaded.bias, target, loaded.source, "bias")
    if bias is None and spec.use_bias:
        bias = np.zeros(spec.filters, dtype=target)  # no bias in the files: zero, not drawn
    return Weights(kernel, bias)


def _converted(values: np.ndarray, target: np.dtype, source: str, what: str) -> np.ndarray:
    if values.dtype == target:
        return values
    with np.errstate(over="ignore", invalid="ignore"):
        converted = values.astype(target)
    if not np.isfinite(converted.astype(np.float64)).all() and np.isfinite(values.astype(np.float64)).all():
        raise BadInputError(f"the {what} in {source} holds values beyond the range of {target.name} "
                            f"(largest magnitude {float(np.abs(values.astype(np.float64)).max()):.6g})")
    return converted


def conversion_note(loaded: LoadedWeights, spec: ConvSpec) -> str | None:
    """What converting the file's weights to the side's variable dtype did, or None when nothing changed."""
    target = np_dtype(spec.variable_dtype)
    if loaded.kernel.dtype == target:
        return None
    original = loaded.kernel.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        change = float(np.abs(loaded.kernel.astype(target).astype(np.float64) - original).max())
    how = "exactly" if change == 0 else f"rounded, max change {change:.3g}"
    return (f"weights converted once from {loaded.kernel.dtype} to {target.name} (the variable dtype), "
            f"{how}: every {target.name} side gets these values")


def _same_input(a: SideConfig, b: SideConfig) -> bool:
    if a.given_input is not None or b.given_input is not None:
        return a.given_input is b.given_input
    sa, sb = a.spec, b.spec
    return (sa.input, sa.input_shape, sa.effective_input_dtype, sa.seed, sa.input_layout) == (
        sb.input, sb.input_shape, sb.effective_input_dtype, sb.seed, sb.input_layout)


__all__ = ["Comparison", "check_case", "compare_sides", "deciding_rule", "execute", "explain", "file_weights",
           "recorded_gaps"]
