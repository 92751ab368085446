"""Reproduction bundles: everything needed to replay a comparison somewhere else.

A bundle is a directory:

    bundle.json       manifest: format version, and per case the backends, the effective spec of each
                      side, the options and the verdict obtained
    report.json       the JSON report of the run that wrote it
    case-NNN.npz      per case: input, reference_kernel, candidate_kernel, [reference_bias,
                      candidate_bias], reference_output, candidate_output

Replaying (`convdiff run DIR`) re-runs both backends on the saved input with the saved kernels
and compares again; the case is as expected when it reaches the saved verdict. It also checks the
re-run outputs against the saved ones and says so in a note.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convdiff.compare.core import Tolerance, Verdict
from convdiff.errors import BadInputError

FORMAT = 1
MANIFEST = "bundle.json"
# Derived keys of ConvSpec.to_json(): recomputed from the others, never parsed back.
_DERIVED_SPEC_KEYS = {"pads", "output_shape"}


def is_bundle(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def _options_json(options: Any) -> dict[str, Any]:
    tol = options.tolerance
    return {"atol": tol.atol if tol else None, "rtol": tol.rtol if tol else None,
            "shared_kernel": options.shared_kernel, "top_k": options.top_k, "equal_nan": options.equal_nan}


def save(directory: str | Path, cases: Sequence[tuple[Any, dict[str, Any]]], report: dict[str, Any]) -> Path:
    """Write a bundle atomically: into a temporary directory beside `directory`, then renamed.

    Args:
        directory: Where the bundle goes; an existing bundle there is replaced, any other
            non-empty directory is refused.
        cases: (CaseResult, extra manifest fields) per case.
        report: The JSON report of the run.

    Returns:
        The bundle's path.
    """
    target = Path(directory).resolve()
    if target.exists() and not (target.is_dir() and (is_bundle(target) or not any(target.iterdir()))):
        raise BadInputError(f"cannot save bundle: '{directory}' exists and is not a convdiff bundle")
    if not target.parent.is_dir():
        raise BadInputError(f"cannot save bundle: directory '{target.parent}' does not exist")
    from convdiff.data.inputs import make_input
    from convdiff.pipeline.execute import _same_input

    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the bundle's mode
    try:
        entries = []
        for i, (case, extra) in enumerate(cases):
            arrays_name = f"case-{i + 1:03d}.npz"
            # The inputs are regenerated from the specs: deterministic, and cheaper than keeping them.
            x_ref = make_input(case.reference_config.spec)
            arrays = {"input": x_ref,
                      "reference_kernel": case.reference.kernel, "candidate_kernel": case.candidate.kernel,
                      "reference_output": case.reference.output, "candidate_output": case.candidate.output}
            if not _same_input(case.reference_config.spec, case.candidate_config.spec):
                arrays["candidate_input"] = make_input(case.candidate_config.spec)
            for which in ("reference", "candidate"):
                bias = getattr(case, which).bias
                if bias is not None:
                    arrays[f"{which}_bias"] = bias
            np.savez(tmp / arrays_name, **{k: _savable(v) for k, v in arrays.items()})
            entries.append({
                "name": case.name,
                "arrays": arrays_name,
                "reference": {"backend": case.reference_config.backend, "spec": case.reference_config.spec.to_json()},
                "candidate": {"backend": case.candidate_config.backend, "spec": case.candidate_config.spec.to_json()},
                "options": _options_json(case.options),
                "verdict": _verdict(case).value,
                "kernels_identical": case.kernels_identical,
                **extra,
            })
        manifest = {"convdiff_bundle": FORMAT, "cases": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / "bundle")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _savable(array: np.ndarray) -> np.ndarray:
    # bfloat16 (an ml_dtypes void type) would need pickling to load back; float32 holds it exactly.
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.kind == "V" else array


def _verdict(case: Any) -> Verdict:
    verdict = getattr(case, "verdict", None)
    return verdict if isinstance(verdict, Verdict) else case.output.verdict


@dataclass(frozen=True)
class Replayed:
    """One replayed case: the fresh result, the verdict the bundle recorded, and the saved arrays check."""

    result: Any
    saved_verdict: Verdict
    outputs_reproduced: bool
    """Whether both re-run outputs are bitwise equal to the saved ones."""
    experiment: str
    kernels_identical: bool
    """The kernel finding the bundle recorded."""


def load_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"bundle '{directory}': unreadable {MANIFEST}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("convdiff_bundle") != FORMAT:
        raise BadInputError(f"bundle '{directory}': not a convdiff bundle of format {FORMAT}")
    return manifest


def backends(directory: str | Path) -> list[str]:
    """The backend names a bundle replays (so that frameworks can be prepared before any runs)."""
    names = []
    for entry in load_manifest(directory).get("cases", []):
        for side in ("reference", "candidate"):
            backend = entry.get(side, {}).get("backend") if isinstance(entry, dict) else None
            if isinstance(backend, str):
                names.append(backend)
    return names


def spec_from_json(doc: dict[str, Any], where: str) -> Any:
    from convdiff.spec.convspec import build_spec, parse_fields

    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: the spec must be an object")
    # None in to_json() means "not set" (no weights file, say): leave such fields at their defaults.
    raw = {k: v for k, v in doc.items() if k not in _DERIVED_SPEC_KEYS and v is not None}
    try:
        return build_spec(parse_fields(raw, where=f" in {where}"))
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None


def replay(directory: str | Path) -> list[Replayed]:
    """Re-run every case of a bundle on its saved input and kernels, and compare again."""
    from convdiff.backends import Weights, get_backend
    from convdiff.spec.dtypes import np_dtype
    from convdiff.data.inputs import load_npy
    from convdiff.pipeline.execute import CaseOptions, SideConfig, compare_sides

    directory = Path(directory)
    manifest = load_manifest(directory)
    out = []
    for i, entry in enumerate(manifest.get("cases", [])):
        where = f"bundle '{directory}', case {i + 1}"
        try:
            name = entry["name"]
            sides = {w: SideConfig(entry[w]["backend"], spec_from_json(entry[w]["spec"], where))
                     for w in ("reference", "candidate")}
            opts = entry["options"]
            saved_verdict = Verdict(entry["verdict"])
            arrays_file = directory / Path(entry["arrays"]).name  # never leave the bundle directory
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"{where}: malformed manifest entry ({exc})") from None
        tolerance = Tolerance(opts["atol"], opts["rtol"]) if opts.get("atol") is not None else None
        options = CaseOptions(tolerance, bool(opts.get("shared_kernel")), int(opts.get("top_k", 10)),
                              bool(opts.get("equal_nan")))
        arrays = load_npy(arrays_file, what="bundle arrays")
        try:
            saved = {k: arrays[k] for k in arrays.files}  # an npz reads its members lazily, here
        except ValueError as exc:
            kind = "holds pickled objects, which convdiff refuses to load" if "pickle" in str(exc).lower() else (
                f"is not a valid .npz file: {exc}")
            raise BadInputError(f"{where}: {arrays_file.name} {kind}") from None
        finally:
            arrays.close()
        missing = {"input", "reference_kernel", "candidate_kernel", "reference_output", "candidate_output"} - set(saved)
        if missing:
            raise BadInputError(f"{where}: {arrays_file.name} lacks {', '.join(sorted(missing))}")
        results = {}
        for which in ("reference", "candidate"):
            spec = sides[which].spec
            x = saved.get("candidate_input", saved["input"]) if which == "candidate" else saved["input"]
            x = x.astype(np_dtype(spec.effective_input_dtype))  # undo _savable (bfloat16 stored as float32)
            weights = Weights(saved[f"{which}_kernel"], saved.get(f"{which}_bias"))
            results[which] = get_backend(sides[which].backend).run(spec, x, weights)
        result = compare_sides(name, sides["reference"], sides["candidate"], results["reference"],
                               results["candidate"], options)
        reproduced = all(
            saved[f"{w}_output"].shape == results[w].output.shape
            and np.array_equal(saved[f"{w}_output"], _savable(results[w].output), equal_nan=True)
            for w in ("reference", "candidate"))
        out.append(Replayed(result, saved_verdict, reproduced, entry.get("experiment", f"bundle:{directory.name}"),
                            bool(entry.get("kernels_identical", True))))
    if not out:
        raise BadInputError(f"bundle '{directory}' holds no cases")
    return out


def replay_outcomes(directory: str | Path) -> list[Any]:
    """Replayed cases as experiment outcomes: expected to reach the verdict (and kernel finding) saved."""
    import dataclasses

    from convdiff.suites.experiments import Case, CaseOutcome

    outcomes = []
    for r in replay(directory):
        result = r.result
        note = ("replay: both outputs bitwise equal to the saved ones" if r.outputs_reproduced else
                "replay: outputs differ from the saved ones (other machine or library versions?)")
        result = dataclasses.replace(result, candidate=dataclasses.replace(
            result.candidate, notes=(*result.candidate.notes, note)))
        case = Case(result.name, result.reference_config, result.candidate_config, r.saved_verdict,
                    "identical" if r.kernels_identical else "different", result.options,
                    description=f"replay of bundle {directory}")
        outcomes.append(CaseOutcome(r.experiment, case, result))
    return outcomes
