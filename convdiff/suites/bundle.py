"""Reproduction bundles: everything needed to replay a comparison somewhere else.

A bundle is a directory holding only convdiff's own files:

    bundle.json       manifest: the signature (format "convdiff-bundle", version), whether the run that
                      wrote it completed, and per case the backends, the effective spec of each side,
                      everything that decided the verdict (the rule, its bound form and tolerance, each
                      side's compute dtype) and the verdict obtained
    report.json       the JSON report of the run that wrote it
    case-NNN.npz      per case: the arrays actually compared: input (and candidate_input when the sides'
                      inputs differ), reference_kernel, candidate_kernel, [reference_bias, candidate_bias],
                      reference_output, candidate_output

Replaying (`convdiff run DIR`) runs each case again through the live pipeline (`convdiff.pipeline`),
on the saved inputs with the saved kernels, under the saved rule; the case is as expected when it
reaches the saved verdict. It also says whether the re-run outputs are bitwise equal to the saved ones.
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

from convdiff.backends import Weights
from convdiff.backends.registry import RECORDED
from convdiff.compare import RuleKind, Tolerance, Verdict, parse_rule_kind
from convdiff.data.arrays import load_npy
from convdiff.errors import BadInputError
from convdiff.pipeline import Case, CaseOptions, CaseResult, SideConfig
from convdiff.reference.rounding import BoundForm, parse_bound_form
from convdiff.spec.convspec import DERIVED_KEYS, ConvSpec
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.fields import parse_fields

SIGNATURE = "convdiff-bundle"
VERSION = 2
MANIFEST = "bundle.json"
REPORT = "report.json"


def _is_own_file(name: str) -> bool:
    return name in (MANIFEST, REPORT) or (name.startswith("case-") and name.endswith(".npz") and name[5:-4].isdigit())


def read_signature(directory: str | Path) -> int | None:
    """The format version of the convdiff bundle at `directory`, or None when it is not one."""
    path = Path(directory) / MANIFEST
    try:
        if not path.is_file() or path.stat().st_size > (16 << 20):
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == SIGNATURE and isinstance(doc.get("version"), int) and not isinstance(doc["version"], bool):
        return doc["version"]
    if doc.get("convdiff_bundle") == 1 and "format" not in doc:  # the first format had only this key
        return 1
    return None


def is_bundle(path: str | Path) -> bool:
    """A directory whose manifest carries convdiff's signature and that holds only convdiff's files."""
    path = Path(path)
    if not path.is_dir() or read_signature(path) is None:
        return False
    try:
        return all(_is_own_file(entry.name) and entry.is_file() and not entry.is_symlink()
                   for entry in os.scandir(path))
    except OSError:
        return False


def options_json(options: CaseOptions) -> dict[str, Any]:
    tol = options.tolerance
    return {"tolerance": options.tolerance_mode.value, "bound_form": options.bound_form.value,
            "atol": tol.atol if tol else None, "rtol": tol.rtol if tol else None,
            "shared_kernel": options.shared_kernel, "top_k": options.top_k, "equal_nan": options.equal_nan}


def _rule_json(case: CaseResult) -> dict[str, Any]:
    rule = case.output.rule
    doc: dict[str, Any] = {"kind": rule.kind.value, "atol": rule.tolerance.atol, "rtol": rule.tolerance.rtol,
                           "equal_nan": rule.tolerance.equal_nan}
    if rule.model is not None:
        doc.update({"form": rule.model.form.value, "dtype": rule.model.dtype, "K": rule.model.K})
    return doc


def check_target(directory: str | Path) -> Path:
    """Refuse (exit 2) a bundle target that is anything but a new path, an empty directory or a bundle."""
    text = str(directory)
    if not text.strip():
        raise BadInputError("cannot save bundle: the directory name is empty")
    target = Path(directory).resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise BadInputError(f"cannot save bundle: '{directory}' is the working directory or one of its parents")
    if target.exists() or target.is_symlink():
        if target.is_symlink() or not target.is_dir():
            raise BadInputError(f"cannot save bundle: '{directory}' exists and is not a directory")
        if os.path.ismount(target):
            raise BadInputError(f"cannot save bundle: '{directory}' is a mount point")
        if any(target.iterdir()) and not is_bundle(target):
            raise BadInputError(f"cannot save bundle: '{directory}' exists and is not a convdiff bundle "
                                "(it is left untouched)")
    if not target.parent.is_dir():
        raise BadInputError(f"cannot save bundle: directory '{target.parent}' does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot save bundle: directory '{target.parent}' is not writable")
    return target


def save(directory: str | Path, cases: Sequence[tuple[CaseResult, dict[str, Any]]], report: dict[str, Any],
         complete: bool = True) -> Path:
    """Write a bundle atomically: into a temporary directory beside `directory`, then renamed.

    Args:
        directory: Where the bundle goes; an existing convdiff bundle there is replaced, any other
            non-empty directory is refused and left untouched.
        cases: (CaseResult, extra manifest fields) per case.
        report: The JSON report of the run.
        complete: False for the partial bundle of an interrupted run (it never replays as a pass).

    Returns:
        The bundle's path.
    """
    target = check_target(directory)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the bundle's mode
    try:
        entries = [_save_case(tmp, i, case, extra) for i, (case, extra) in enumerate(cases)]
        manifest = {"format": SIGNATURE, "version": VERSION, "complete": complete, "cases": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (tmp / REPORT).write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
        _install(tmp, target, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _save_case(tmp: Path, i: int, case: CaseResult, extra: dict[str, Any]) -> dict[str, Any]:
    arrays_name = f"case-{i + 1:03d}.npz"
    ref_run, cand_run = case.sides
    arrays = {"input": ref_run.input,
              "reference_kernel": case.reference.kernel, "candidate_kernel": case.candidate.kernel,
              "reference_output": case.reference.output, "candidate_output": case.candidate.output}
    if cand_run.input is not ref_run.input and not np.array_equal(cand_run.input, ref_run.input):
        arrays["candidate_input"] = cand_run.input
    for run in case.sides:
        if run.result.bias is not None:
            arrays[f"{run.role}_bias"] = run.result.bias
    try:
        np.savez(tmp / arrays_name, **{k: _savable(v) for k, v in arrays.items()})
    except OSError as exc:
        raise BadInputError(f"cannot save bundle: {exc.strerror or exc}") from None
    return {
        "name": case.name,
        "arrays": arrays_name,
        **{run.role: {"backend": run.config.backend, "spec": run.config.spec.to_json(),
                      "dtype": run.result.compute_dtype, "kernel_dtype": str(run.result.kernel.dtype)}
           for run in case.sides},
        "options": options_json(case.options),
        "rule": _rule_json(case),
        "verdict": case.verdict.value,
        "kernels_identical": case.kernels_identical,
        **extra,
    }


def _install(tmp: Path, target: Path, directory: str | Path) -> None:
    """Rename the finished bundle into place; an old bundle there is set aside first, then removed."""
    if not target.exists():
        try:
            os.rename(tmp, target)
        except OSError as exc:  # another process created it in the meantime
            raise BadInputError(f"cannot save bundle: '{directory}' appeared while saving ({exc.strerror}); "
                                "nothing was replaced") from None
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    try:
        os.rename(target, old / "bundle")
    except OSError as exc:
        old.rmdir()
        raise BadInputError(f"cannot save bundle: '{directory}' could not be replaced ({exc.strerror})") from None
    try:
        os.rename(tmp, target)
    except OSError as exc:
        os.rename(old / "bundle", target)  # put the previous bundle back
        old.rmdir()
        raise BadInputError(f"cannot save bundle: '{directory}' was replaced by another process while saving "
                            f"({exc.strerror}); the previous bundle is kept") from None
    shutil.rmtree(old, ignore_errors=True)


def _savable(array: np.ndarray) -> np.ndarray:
    # bfloat16 (an ml_dtypes void type) would need pickling to load back; float32 holds it exactly.
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.kind == "V" else array


@dataclass(frozen=True)
class Replayed:
    """One replayed case: the fresh result, the verdict the bundle recorded, and the saved arrays check."""

    result: CaseResult
    saved_verdict: Verdict
    outputs_reproduced: bool
    """Whether both re-run outputs are bitwise equal to the saved ones."""
    experiment: str
    kernels_identical: bool
    """The kernel finding the bundle recorded."""


def load_manifest(directory: str | Path) -> dict[str, Any]:
    version = read_signature(directory)
    if version is None or not is_bundle(directory):
        raise BadInputError(f"bundle '{directory}': not a convdiff bundle (no {MANIFEST} with its signature, or "
                            "files convdiff did not write)")
    if version not in (1, VERSION):
        raise BadInputError(f"bundle '{directory}': format version {version} is not one this convdiff reads "
                            f"(1 or {VERSION})")
    return json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))


def backends(directory: str | Path) -> list[str]:
    """The backend names a bundle replays (so that frameworks can be prepared before any runs)."""
    names = []
    for entry in load_manifest(directory).get("cases", []):
        for side in ("reference", "candidate"):
            backend = entry.get(side, {}).get("backend") if isinstance(entry, dict) else None
            if isinstance(backend, str):
                names.append(backend)
    return names


def spec_from_json(doc: Any, where: str) -> ConvSpec:
    """A spec from its JSON (`ConvSpec.to_json`), built from the fields alone: no file is read again."""
    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: the spec must be an object")
    # None in to_json() means "not set" (no weights file, say): leave such fields at their defaults.
    raw = {k: v for k, v in doc.items() if k not in DERIVED_KEYS and v is not None}
    try:
        return ConvSpec(**parse_fields(raw, where=f" in {where}"))
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise BadInputError(f"{where}: invalid spec: {exc}") from None


def options_from_json(opts: Any, where: str) -> CaseOptions:
    if not isinstance(opts, dict):
        raise BadInputError(f"{where}: options must be an object")
    atol, rtol = opts.get("atol"), opts.get("rtol")
    tolerance = Tolerance(atol, rtol) if atol is not None or rtol is not None else None
    mode: RuleKind | None = parse_rule_kind(opts["tolerance"]) if opts.get("tolerance") is not None else None
    form = parse_bound_form(opts["bound_form"]) if opts.get("bound_form") is not None else BoundForm.PROBABILISTIC
    top_k = opts.get("top_k", 10)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise BadInputError(f"{where}: top_k must be an integer >= 0, got {top_k!r}")
    flags = {}
    for key in ("shared_kernel", "equal_nan"):
        value = opts.get(key, False)
        if not isinstance(value, bool):
            raise BadInputError(f"{where}: {key} must be true or false, got {value!r}")
        flags[key] = value
    return CaseOptions(tolerance, flags["shared_kernel"], top_k, flags["equal_nan"], mode, form)


def replay_cases(directory: str | Path) -> list[tuple[Case, Verdict, bool, str, dict[str, np.ndarray]]]:
    """The cases of a bundle, ready for the pipeline: (case, saved verdict, saved kernel finding, experiment,
    saved arrays)."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    cases = manifest.get("cases")
    if not isinstance(cases, list) or not cases:
        raise BadInputError(f"bundle '{directory}' holds no cases")
    out = []
    for i, entry in enumerate(cases):
        where = f"bundle '{directory}', case {i + 1}"
        try:
            name = entry["name"]
            specs = {w: spec_from_json(entry[w]["spec"], where) for w in ("reference", "candidate")}
            backends_ = {w: entry[w]["backend"] for w in ("reference", "candidate")}
            options = options_from_json(entry["options"], where)
            saved_verdict = Verdict(entry["verdict"])
            arrays_file = directory / Path(entry["arrays"]).name  # never leave the bundle directory
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"{where}: malformed manifest entry ({exc})") from None
        saved = _load_arrays(arrays_file, where)
        sides = {}
        for which in ("reference", "candidate"):
            spec = specs[which]
            x = saved.get("candidate_input", saved["input"]) if which == "candidate" else saved["input"]
            x = x.astype(np_dtype(spec.effective_input_dtype))  # undo _savable (bfloat16 stored as float32)
            # bfloat16 kernels were stored as float32 (exactly): give them back their own dtype.
            kernel_dtype = np_dtype(str(entry[which].get("kernel_dtype", saved[f"{which}_kernel"].dtype)))
            bias = saved.get(f"{which}_bias")
            weights = Weights(saved[f"{which}_kernel"].astype(kernel_dtype),
                              None if bias is None else bias.astype(kernel_dtype))
            if backends_[which] == RECORDED.name:  # a recorded output replays as the saved array it was
                from convdiff.data.outputs import RecordedOutput
                from convdiff.spec.layouts import input_layout_for

                output = saved[f"{which}_output"].astype(np_dtype(spec.dtype))
                recorded = RecordedOutput(f"{arrays_file.name}:{which}_output", input_layout_for(spec.rank), output,
                                          tuple(output.shape))
                sides[which] = SideConfig(RECORDED.name, spec, given_input=x, recorded=recorded,
                                          given_weights=weights if weights.kernel.size else None)
                continue
            sides[which] = SideConfig(backends_[which], spec, given_input=x, given_weights=weights)
        out.append((Case(str(name), sides["reference"], sides["candidate"], options), saved_verdict,
                    bool(entry.get("kernels_identical", True)), str(entry.get("experiment", f"bundle:{directory.name}")),
                    saved))
    return out


def _load_arrays(arrays_file: Path, where: str) -> dict[str, np.ndarray]:
    arrays = load_npy(arrays_file, what="bundle arrays")
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise BadInputError(f"{where}: {arrays_file.name} is not an .npz archive")
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
    return saved


def outputs_reproduced(result: CaseResult, saved: dict[str, np.ndarray]) -> bool:
    return all(saved[f"{run.role}_output"].shape == run.result.output.shape
               and np.array_equal(saved[f"{run.role}_output"], _savable(run.result.output), equal_nan=True)
               for run in result.sides)
