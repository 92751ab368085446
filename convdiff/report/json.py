"""JSON renderers: results in, JSON-ready dicts out, with ONE non-finite float policy: infinities and
NaN become the strings "inf", "-inf" and "nan", so every document is strict JSON
(`json.dumps(..., allow_nan=False)` accepts it). Nothing here computes a figure."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convdiff.analysis.bound import SideError, UlpDistance
from convdiff.analysis.diagnose import Finding, Resolution
from convdiff.analysis.kernels import DistributionCheck, KernelDistribution, Theoretical
from convdiff.analysis.regions import MismatchRegions
from convdiff.compare import Comparison
from convdiff.pipeline import CaseResult, SideRun
from convdiff.reference.rounding import Arithmetic

SCHEMA_VERSION = 1


def json_float(value: float) -> float | str:
    """A float for strict JSON: inf and NaN become the strings "inf", "-inf", "nan"."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def strict(value: Any) -> Any:
    """A document with every float made strict JSON, tuples as lists, enums as their values."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        return json_float(float(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, enum.Enum):
        return strict(value.value)
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    raise TypeError(f"not JSON-ready: {type(value).__name__}")


def _index(index: Sequence[int] | None) -> list[int] | None:
    return None if index is None else list(index)


def comparison_json(c: Comparison) -> dict[str, Any]:
    """The figures of one comparison; every count is by the rule that decided (`rule`)."""
    tol = c.tolerance
    return strict({
        "verdict": c.verdict.value,
        "rule": {"kind": c.rule.kind.value, "description": c.rule.description},
        "shape_match": c.shape_match,
        "dtype_match": c.dtype_match,
        "reference_shape": c.reference_shape,
        "candidate_shape": c.candidate_shape,
        "reference_dtype": c.reference_dtype,
        "candidate_dtype": c.candidate_dtype,
        "max_abs_diff": c.max_abs_diff,
        "max_abs_diff_index": _index(c.max_abs_diff_index),
        "max_rel_diff": c.max_rel_diff,
        "max_rel_diff_index": _index(c.max_rel_diff_index),
        "sum_abs_diff": c.sum_abs_diff,
        "mean_abs_diff": c.mean_abs_diff,
        "rmse": c.rmse,
        "max_ratio": c.max_ratio,
        "max_ratio_index": _index(c.max_ratio_index),
        "median_ratio": c.median_ratio,
        "mismatched": c.mismatched,
        "total": c.total,
        "atol": tol.atol,
        "rtol": tol.rtol,
        "equal_nan": tol.equal_nan,
        "min_atol": c.min_atol,
        "nan": {"reference": c.reference_nan, "candidate": c.candidate_nan,
                "positions_agree": c.nan_positions_agree},
        "inf": {"reference": c.reference_inf, "candidate": c.candidate_inf},
        "nonfinite": {"mismatched": c.nonfinite_mismatched, "excluded": c.nonfinite_excluded,
                      "exact_compared": c.exact_compared, "exact_mismatched": c.exact_mismatched},
        "worst": [{"index": list(w.index), "reference": w.reference, "candidate": w.candidate,
                   "abs_diff": w.abs_diff, "ratio": w.ratio} for w in c.worst],
    })


def bound_json(c: Comparison) -> dict[str, Any] | None:
    """The bound block: null unless the rounding bound decided."""
    m = c.rule.model
    if m is None or not c.shape_match:
        return None
    acc = m.accumulation
    return strict({"form": m.form.value, "dtype": m.dtype, "unit_roundoff": m.unit_roundoff, "gamma": acc.value,
                   "gamma_description": acc.description, "c": m.c, "K": m.K, "terms": m.terms,
                   "sides": [arithmetic_json(a) for a in m.sides],
                   "held": {"input": m.input_precision, "kernel": m.kernel_precision},
                   "total": c.total, "exceeded": c.exceeded, "max_ratio": c.max_ratio,
                   "max_ratio_index": _index(c.max_ratio_index), "median_ratio": c.median_ratio})


def arithmetic_json(a: Arithmetic) -> dict[str, Any]:
    return {"operands": a.operands, "accumulation": a.accumulation, "output": a.output}


def resolution_json(r: Resolution | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return strict({"distinguishable": r.distinguishable, "relative": r.relative, "coarse": r.coarse,
                   "checked": r.checked, "indistinguishable": [finding_json(f) for f in r.indistinguishable]})


def side_error_json(e: SideError) -> dict[str, Any]:
    return strict({"max_abs": e.max_abs, "rmse": e.rmse, "max_bound_ratio": e.max_ratio, "dtype": e.dtype,
                   "within_bound": e.within})


def ulp_json(u: UlpDistance) -> dict[str, Any]:
    return strict({"max": u.max if u.compared else None, "median": u.median if u.compared else None,
                   "dtype": u.dtype, "compared": u.compared})


def theoretical_json(t: Theoretical) -> dict[str, Any]:
    return strict({"family": t.family, "mean": t.mean, "std": t.std, "low": t.low, "high": t.high,
                   "description": t.description})


def distribution_check_json(d: DistributionCheck) -> dict[str, Any]:
    return strict({
        "initializer": d.initializer, "shape": d.shape, "fan_in": d.fan_in, "fan_out": d.fan_out,
        "mean": d.mean, "std": d.std, "min": d.min, "max": d.max,
        "expected": None if d.expected is None else theoretical_json(d.expected),
        "ks_statistic": d.ks_statistic, "ks_pvalue": d.ks_pvalue, "within_support": d.within_support,
        "consistent": d.consistent, "alpha": d.alpha,
    })


def kernel_distribution_json(k: KernelDistribution) -> dict[str, Any]:
    return {"verdict": k.verdict, "reference": distribution_check_json(k.reference),
            "candidate": distribution_check_json(k.candidate)}


def regions_json(r: MismatchRegions) -> dict[str, Any]:
    """The 2-D keys (border, rows, columns, extra_rows, extra_columns: the H and W axes, null in 1-D) and `axes`,
    one entry per spatial axis of any rank."""
    border = r.border
    return strict({"kind": r.kind, "summary": r.summary,
                   "border": None if border is None else dict(zip(("top", "bottom", "left", "right"), border)),
                   "border_mismatches": r.border_mismatches, "interior_mismatches": r.interior_mismatches,
                   "rows": r.rows, "columns": r.columns, "channels": r.channels, "batch": r.batch,
                   "extra_rows": r.extra_rows, "extra_columns": r.extra_columns,
                   "axes": [{"name": a.name, "counts": a.counts, "border": {"start": a.border[0], "end": a.border[1]},
                             "extra": a.extra} for a in r.axes],
                   "map": r.map_axes})


def finding_json(f: Finding) -> dict[str, Any]:
    return strict({"cause": f.cause, "confirmed": f.confirmed, "residual": f.residual, "detail": f.detail,
                   "bound_ratio": f.bound_ratio, "same_as": f.same_as})


def _side_json(run: SideRun) -> dict[str, Any]:
    result = run.result
    stats = run.kernel_stats
    return strict({
        "name": run.config.backend,
        "recorded": None if run.config.recorded is None else {
            "source": run.config.recorded.source, "layout": run.config.recorded.layout,
            "file_shape": run.config.recorded.file_shape},
        "dtype": result.compute_dtype,
        "arithmetic": arithmetic_json(run.arithmetic),
        "shape": result.output.shape,
        "output_dtype": str(result.output.dtype),
        "kernel_shape": result.kernel.shape,
        "kernel_dtype": str(result.kernel.dtype),
        "kernel_stats": dataclasses.asdict(stats),
        "notes": result.notes,
        "seconds": round(result.seconds, 6),
        "input_sha256": result.input_sha256,
        "spec": run.config.spec.to_json(),
    })


def case_to_json(case: CaseResult, environment: dict[str, Any], verdict_line: str) -> dict[str, Any]:
    """The documented JSON object of one comparison (README: "JSON report")."""
    out = comparison_json(case.output)
    three = case.three_way
    doc: dict[str, Any] = {
        "name": case.name,
        "verdict": case.verdict.value,
        "elementwise_verdict": case.output.elementwise_verdict.value,
        "verdict_line": verdict_line,
        "passed": bool(case),
        "tolerance_mode": case.tolerance_mode.value,
        "bound": bound_json(case.output),
        "ulp": ulp_json(case.ulp) if case.ulp is not None else None,
        "reference_error": side_error_json(three.reference) if three is not None else None,
        "candidate_error": side_error_json(three.candidate) if three is not None else None,
        "three_way": {"wrong": three.wrong.value, "summary": three.summary} if three is not None else None,
        "reference": _side_json(case.side("reference")),
        "candidate": _side_json(case.side("candidate")),
        "shared_kernel": case.options.shared_kernel,
        "inputs_identical": case.inputs_identical,
        "kernels_identical": case.kernels_identical,
        "kernels": {
            "verdict": case.kernels.verdict.value,
            "source": "files" if case.kernels_from_files else "initializers",
            "shape_match": case.kernels.shape_match,
            "max_abs_diff": json_float(case.kernels.max_abs_diff),
            "mismatched": case.kernels.mismatched,
            "total": case.kernels.total,
        },
        "kernel_distribution": (kernel_distribution_json(case.kernel_distribution)
                                if case.kernel_distribution is not None else None),
    }
    out.pop("verdict")
    doc.update(out)
    doc["mismatch_regions"] = regions_json(case.regions) if case.regions is not None else None
    doc["diagnosis"] = [finding_json(f) for f in case.diagnosis]
    doc["resolution"] = resolution_json(case.resolution)
    doc["not_possible"] = list(case.not_possible)
    doc["spec"] = case.reference_config.spec.to_json()
    doc["environment"] = environment
    return doc


# --- defaults and propagate ----------------------------------------------------------------------


def defaults_json(result) -> dict[str, Any]:  # noqa: ANN001 - suites.defaults.DefaultsReport
    return strict({
        "defaults": [{"api": r.api, "weight": r.weight, "declared": r.declared, "initializer": r.initializer,
                      "shape": r.shape, "confirmed": r.confirmed,
                      "check": None if r.check is None else distribution_check_json(r.check)} for r in result.rows],
        "unavailable": [{"api": api, "reason": why} for api, why in result.unavailable],
    })


def propagation_json(p) -> dict[str, Any]:  # noqa: ANN001 - suites.propagate.Propagation
    from convdiff.suites.propagate import EXPLODING, VANISHING

    def series(s) -> dict[str, Any]:  # noqa: ANN001
        first = s.first_flag
        return {"initializer": s.initializer, "role": s.role, "expected_growth": s.expected_growth,
                "measured_growth": s.measured_growth,
                "first_flag": None if first is None else {"layer": first.layer, "flag": first.flag},
                "layers": [{"layer": x.layer, "activation_std": x.activation_std,
                            "activation_max_abs": x.activation_max_abs, "gradient_std": x.gradient_std,
                            "flag": x.flag} for x in s.layers]}

    return strict({"depth": p.depth, "kernel_size": p.kernel_size, "channels": p.channels,
                   "input_shape": p.input_shape, "seed": p.seed, "input_std": p.input_std, "fan_in": p.fan_in,
                   "thresholds": {"exploding": EXPLODING, "vanishing": VANISHING},
                   "series": [series(s) for s in p.series]})
