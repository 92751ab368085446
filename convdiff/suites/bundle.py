"""Reproduction bundles: everything needed to replay a comparison somewhere else.

A bundle is a directory holding only convdiff's own files:

    bundle.json       manifest: the signature (format "convdiff-bundle", version 3), whether the run that
                      wrote it completed, and per case the backends, the effective spec of each side, its
                      compute, kernel and output dtypes and input fingerprint, everything that decided the
                      verdict (the rule, its bound form and tolerance), the verdict obtained, and the
                      sha256 of every saved array
    report.json       the JSON report of the run that wrote it
    case-NNN.npz      per case: the arrays actually compared: input (and candidate_input when the sides'
                      inputs differ), reference_kernel, candidate_kernel, [reference_bias, candidate_bias],
                      reference_output, candidate_output

Replaying (`convdiff run DIR`) first checks everything it can without running anything: the manifest
against its JSON Schema (`bundle.schema.json`), each spec by the spec's own rules, every array's
header (name, shape, dtype) against the spec it belongs to, the memory the cases need, and then every
array against its recorded fingerprint. Only then does each case run again through the live pipeline
(`convdiff.pipeline`), on the saved inputs with the saved kernels, under the saved rule; the case is
as expected when it reaches the saved verdict. It also says whether the re-run outputs are bitwise
equal to the saved ones.

Saving never destroys what convdiff did not write: the target must be absent, empty, or a bundle;
the bundle is written into a temporary directory beside it and renamed into place under a lock,
with Ctrl-C and SIGTERM held for the renames; a bundle that another process put there in the
meantime is never replaced.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from convdiff.backends import Weights, backend_info
from convdiff.compare import RuleKind, Tolerance, Verdict, parse_rule_kind
from convdiff.data.arrays import ArrayHeader, array_headers, read_arrays
from convdiff.data.files import (MAX_MANIFEST_BYTES, check_output_directory, directory_lock, parse_json,
                                 read_text_file, signals_deferred, write_failed)
from convdiff.data.fingerprint import input_sha256
from convdiff.errors import BadFileError, BadInputError
from convdiff.pipeline import Case, CaseOptions, CaseResult, SideConfig
from convdiff.reference.rounding import BoundForm, parse_bound_form
from convdiff.spec.convspec import DERIVED_KEYS, ConvSpec
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.fields import parse_fields
from convdiff.spec.parse import fmt_values

SIGNATURE = "convdiff-bundle"
VERSION = 3
READABLE = (1, 2, 3)
MANIFEST = "bundle.json"
REPORT = "report.json"
SIDES = ("reference", "candidate")
REQUIRED_ARRAYS = ("input", "reference_kernel", "candidate_kernel", "reference_output", "candidate_output")


def _is_own_file(name: str) -> bool:
    return name in (MANIFEST, REPORT) or (name.startswith("case-") and name.endswith(".npz") and name[5:-4].isdigit())


def _signature(doc: Any) -> int | None:
    if not isinstance(doc, dict):
        return None
    version = doc.get("version")
    if doc.get("format") == SIGNATURE and isinstance(version, int) and not isinstance(version, bool):
        return version
    if doc.get("convdiff_bundle") == 1 and "format" not in doc:  # the first format had only this key
        return 1
    return None


def read_signature(directory: str | Path) -> int | None:
    """The format version of the convdiff bundle at `directory`, or None when it is not one (never raises)."""
    try:
        doc = parse_json(read_text_file(Path(directory) / MANIFEST, "bundle manifest", MAX_MANIFEST_BYTES), "")
    except (BadInputError, OSError):
        return None
    return _signature(doc)


def foreign_entries(path: str | Path) -> list[str]:
    """Entries of a directory that are not convdiff's own bundle files (or not regular files)."""
    try:
        return sorted(e.name for e in os.scandir(path)
                      if not (_is_own_file(e.name) and e.is_file(follow_symlinks=False)))
    except OSError:
        return ["(unreadable)"]


def is_bundle(path: str | Path) -> bool:
    """A directory whose manifest carries convdiff's signature and that holds only convdiff's files."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir() or read_signature(path) is None:
        return False
    return not foreign_entries(path)


def looks_like_bundle(path: str | Path) -> bool:
    """A directory with a bundle.json: meant as a bundle, so every way it falls short is worth its own message."""
    path = Path(path)
    return path.is_dir() and os.path.lexists(path / MANIFEST)


# --- saving ----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Target:
    """Where a bundle will go, as it was when the command started (checked before the comparison runs)."""

    path: Path
    """Resolved."""
    given: str
    """As the user wrote it, for messages."""
    identity: tuple[int, int] | None
    """(device, inode) of the directory then, or None when nothing was there: a save replaces only what
    it saw, never a bundle another process wrote in the meantime."""

    @property
    def existed(self) -> bool:
        return self.identity is not None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def check_target(directory: str | Path | Target) -> Target:
    """Refuse (exit 2) a bundle target that is anything but a new path, an empty directory or a bundle.

    Never the working directory or a parent of it, a mount point, a file, a link, or a directory holding
    anything convdiff did not write; such a directory is left untouched.
    """
    if isinstance(directory, Target):
        return directory
    target = check_output_directory(directory, "bundle")
    try:
        return _check_target(directory, target)
    except OSError as exc:
        raise BadInputError(f"cannot save bundle '{directory}': {exc.strerror or exc}") from None


def _check_target(directory: str | Path, target: Path) -> Target:
    if os.path.lexists(target):
        if os.path.islink(directory) or target.is_symlink() or not target.is_dir():
            raise BadInputError(f"cannot save bundle: '{directory}' exists and is not a directory")
        if any(target.iterdir()) and not is_bundle(target):
            foreign = foreign_entries(target)
            what = f"it holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}" if foreign else (
                f"its {MANIFEST} lacks convdiff's signature")
            raise BadInputError(f"cannot save bundle: '{directory}' exists and is not a convdiff bundle ({what}); "
                                "it is left untouched")
    return Target(target, str(directory), _identity(target))


def save(directory: str | Path | Target, cases: Sequence[tuple[CaseResult, dict[str, Any]]], report: dict[str, Any],
         complete: bool = True, planned: int | None = None) -> Path:
    """Write a bundle atomically: into a temporary directory beside `directory`, then renamed.

    Args:
        directory: Where the bundle goes (a `Target` from `check_target`, taken before the comparison
            ran, or a path, checked now). An existing convdiff bundle there is replaced only if it is
            the one that was there when the target was checked.
        cases: (CaseResult, extra manifest fields: only `experiment`) per case.
        report: The JSON report of the run.
        complete: False for the partial bundle of an interrupted run (it is never replayed).
        planned: How many cases the run planned (default: len(cases)).

    Returns:
        The bundle's path.

    Raises:
        BadInputError: the target cannot be used or changed meanwhile, or a write failed (exit 2;
            whatever was at the target is kept).
    """
    target = check_target(directory)
    kept = "; the previous bundle is kept" if target.existed else ""
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.path.parent, prefix=f".{target.path.name}.tmp-"))
    except OSError as exc:
        raise write_failed("bundle", target.given, exc, kept) from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would otherwise become the bundle's mode
        entries = [_save_case(tmp, i, case, extra) for i, (case, extra) in enumerate(cases)]
        manifest = {"format": SIGNATURE, "version": VERSION, "complete": complete,
                    "planned": len(cases) if planned is None else planned, "cases": entries}
        _write(tmp / MANIFEST, json.dumps(manifest, indent=2, allow_nan=False).encode())
        _write(tmp / REPORT, json.dumps(report, indent=2, allow_nan=False).encode())
        _install(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed("bundle", target.given, exc, kept) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target.path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _save_case(tmp: Path, i: int, case: CaseResult, extra: dict[str, Any]) -> dict[str, Any]:
    unknown = set(extra) - {"experiment"}
    if unknown:  # pragma: no cover - a programming error, not a user's
        raise ValueError(f"unknown bundle entry fields {sorted(unknown)}")
    arrays_name = f"case-{i + 1:03d}.npz"
    ref_run, cand_run = case.sides
    arrays = {"input": ref_run.input,
              "reference_kernel": case.reference.kernel, "candidate_kernel": case.candidate.kernel,
              "reference_output": case.reference.output, "candidate_output": case.candidate.output}
    if case.reference.input_sha256 != case.candidate.input_sha256:
        arrays["candidate_input"] = cand_run.input
    for run in case.sides:
        if run.result.bias is not None:
            arrays[f"{run.role}_bias"] = run.result.bias
    stored = {k: _savable(v) for k, v in arrays.items()}
    with open(tmp / arrays_name, "wb") as fh:
        np.savez(fh, **stored)
        fh.flush()
        os.fsync(fh.fileno())
    return {
        "name": case.name,
        "experiment": str(extra.get("experiment", "compare")),
        "arrays": arrays_name,
        "arrays_sha256": {k: input_sha256(v) for k, v in stored.items()},
        **{run.role: {"backend": run.config.backend, "spec": run.config.spec.to_json(),
                      "dtype": run.result.compute_dtype, "kernel_dtype": _dtype_name(run.result.kernel),
                      "output_dtype": _dtype_name(run.result.output), "input_sha256": run.result.input_sha256}
           for run in case.sides},
        "options": options_json(case.options),
        "rule": _rule_json(case),
        "verdict": case.verdict.value,
        "kernels_identical": case.kernels_identical,
    }


def _dtype_name(array: np.ndarray) -> str:
    return "bfloat16" if np.asarray(array).dtype.kind == "V" else str(np.asarray(array).dtype)


def _install(tmp: Path, target: Target) -> None:
    """Rename the finished bundle into place, under a lock on the parent directory and with signals held.

    What is at the target must still be what `check_target` saw: nothing, an empty directory, or the
    same bundle. An old bundle is set aside, the new one renamed in, then the old one removed, so no
    moment exists without a whole bundle at the target, and nothing else is ever removed.
    """
    path = target.path
    with directory_lock(path.parent, "bundle"), signals_deferred():
        now = _identity(path)
        if now != target.identity:
            raise BadInputError(f"cannot save bundle: '{target.given}' was "
                                f"{'created' if target.identity is None else 'replaced'} by another process "
                                "while this one ran; nothing was replaced, the other one is kept")
        if now is None:
            os.rename(tmp, path)
            return
        if not any(path.iterdir()):
            os.rename(tmp, path)  # onto an empty directory: one atomic step
            return
        if not is_bundle(path):
            raise BadInputError(f"cannot save bundle: '{target.given}' no longer holds only a convdiff bundle; "
                                "it is left untouched")
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
        os.rename(path, old / "bundle")
        try:
            os.rename(tmp, path)
        except OSError:
            os.rename(old / "bundle", path)  # put the previous bundle back
            old.rmdir()
            raise
        _remove_bundle(old / "bundle")
        old.rmdir()


def _remove_bundle(path: Path) -> None:
    """Remove a set-aside bundle: only convdiff's own files, then the directory."""
    for entry in os.scandir(path):
        if _is_own_file(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    path.rmdir()


def _savable(array: np.ndarray) -> np.ndarray:
    # bfloat16 (an ml_dtypes void type) would need pickling to load back; float32 holds it exactly.
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.kind == "V" else array


def _stored_dtype(name: str) -> np.dtype:
    """The dtype an array of dtype `name` is stored in (bfloat16 as float32)."""
    return np.dtype(np.float32) if name == "bfloat16" else np.dtype(name)


# --- reading and checking --------------------------------------------------------------------------


@functools.cache
def _schema() -> dict[str, Any]:
    text = (resources.files("convdiff.suites") / "bundle.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_manifest(doc: Any, version: int, where: str) -> None:
    """Check a manifest against the JSON Schema of its version; the most relevant error, on one line."""
    import jsonschema

    schema = _schema()
    validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/bundle-v{version}", "$defs": schema["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return
    location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = " ".join(error.message.split())
    if len(message) > 200:
        message = message[:200] + "..."
    raise BadFileError(f"{where}: {MANIFEST}{': ' + location if location else ''}: {message}")


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of the bundle at `directory`, checked: only convdiff's files, a strict-JSON manifest of
    at most 16 MiB and 32 levels, convdiff's signature, a version this convdiff reads, its schema."""
    where = f"bundle '{directory}'"
    path = Path(directory)
    if path.is_symlink() or not path.is_dir():
        raise BadFileError(f"{where}: not a directory")
    foreign = foreign_entries(path)
    if foreign:
        raise BadFileError(f"{where} holds files convdiff did not write ({', '.join(foreign[:3])}"
                           f"{' ...' if len(foreign) > 3 else ''}): not a convdiff bundle")
    if MANIFEST not in os.listdir(path):
        raise BadFileError(f"{where} has no {MANIFEST}: not a convdiff bundle")
    doc = parse_json(read_text_file(path / MANIFEST, "bundle manifest", MAX_MANIFEST_BYTES), f"{where}: {MANIFEST}")
    version = _signature(doc)
    if version is None:
        raise BadFileError(f"{where}: {MANIFEST} lacks convdiff's signature (\"format\": \"{SIGNATURE}\" and a "
                           "version): not a convdiff bundle")
    if version not in READABLE:
        raise BadFileError(f"{where}: format version {version} is not one this convdiff reads "
                           f"({', '.join(map(str, READABLE))})")
    validate_manifest(doc, version, where)
    return doc


def backends(directory: str | Path) -> list[str]:
    """The backend names a bundle replays (so that frameworks can be prepared before any runs)."""
    return [entry[side]["backend"] for entry in load_manifest(directory)["cases"] for side in SIDES]


def spec_from_json(doc: Any, where: str) -> ConvSpec:
    """A spec from its JSON (`ConvSpec.to_json`), built from the fields alone: no file is read again.

    The derived keys (`pads`, `output_shape`) are recomputed and must agree with the recorded ones.
    """
    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: the spec must be an object")
    # None in to_json() means "not set" (no weights file, say): leave such fields at their defaults.
    raw = {k: v for k, v in doc.items() if k not in DERIVED_KEYS and v is not None}
    try:
        spec = ConvSpec(**parse_fields(raw, where=f" in {where}"))
    except BadInputError as exc:
        raise BadFileError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise BadFileError(f"{where}: invalid spec: {exc}") from None
    recomputed = spec.to_json()
    for key in DERIVED_KEYS:
        if key in doc and doc[key] != recomputed[key]:
            raise BadFileError(f"{where}: the recorded {key} {doc[key]!r} is not the spec's own "
                               f"{recomputed[key]!r}: the manifest was edited")
    return spec


def options_from_json(opts: dict[str, Any], where: str) -> CaseOptions:
    """The case options of a (schema-checked) manifest entry."""
    atol, rtol = opts.get("atol"), opts.get("rtol")
    if (atol is None) != (rtol is None):
        raise BadFileError(f"{where}: options atol and rtol must be given together or both be null")
    try:
        tolerance = Tolerance(float(atol), float(rtol)) if atol is not None else None
        mode: RuleKind | None = parse_rule_kind(opts["tolerance"]) if opts.get("tolerance") is not None else None
        form = parse_bound_form(opts["bound_form"]) if opts.get("bound_form") is not None else BoundForm.PROBABILISTIC
    except BadInputError as exc:
        raise BadFileError(f"{where}: {exc}") from None
    return CaseOptions(tolerance, opts["shared_kernel"], opts["top_k"], opts["equal_nan"], mode, form)


@dataclass(frozen=True)
class Expected:
    """What a saved array must be: its shape and stored dtype (None: any float dtype, for old versions)."""

    shape: tuple[int, ...]
    dtype: np.dtype | None
    required: bool = True


@dataclass(frozen=True)
class ReplayCase:
    """One case of a bundle, checked (manifest, spec, array headers) but with no array read yet."""

    directory: Path
    index: int
    case: Case
    """The two sides and options, without the saved arrays (enough for the memory and capability checks)."""
    saved_verdict: Verdict
    kernels_identical: bool
    """The kernel finding the bundle recorded."""
    experiment: str
    arrays_file: Path
    fingerprints: dict[str, str] | None
    """sha256 of every stored array (version 3), else None."""
    input_fingerprints: dict[str, str] | None
    """Per side, the fingerprint of the input it ran on (version 3), else None."""
    kernel_dtypes: dict[str, str]
    expected: dict[str, Expected]
    """The shape and stored dtype of every array, from the specs."""

    @property
    def where(self) -> str:
        return f"bundle '{self.directory}', case {self.index + 1}"

    def load(self) -> tuple[Case, dict[str, np.ndarray]]:
        """Read this case's arrays, check each against its fingerprint, and return the case ready to run
        (with the saved inputs and weights) and the saved arrays."""
        saved = read_arrays(self.arrays_file, "bundle arrays")
        # Checked again on what was read: the file may have changed since `plan_replay` read its headers.
        _check_headers({k: ArrayHeader(k, a.shape, a.dtype, False) for k, a in saved.items()}, self.expected,
                       f"{self.where}: {self.arrays_file.name}")
        if self.fingerprints is not None:
            for name, array in saved.items():
                if input_sha256(array) != self.fingerprints[name]:
                    raise BadFileError(f"{self.where}: array '{name}' of {self.arrays_file.name} does not match "
                                       f"its recorded sha256: the arrays were changed after the bundle was written")
        sides = {}
        restored: dict[tuple[str, str], np.ndarray] = {}
        for which, config in self.case.sides:
            spec = config.spec
            name = "candidate_input" if which == "candidate" and "candidate_input" in saved else "input"
            # Undo _savable (bfloat16 stored as float32); both sides of one input share one array.
            key = (name, spec.effective_input_dtype)
            if key not in restored:
                restored[key] = saved[name].astype(np_dtype(spec.effective_input_dtype), copy=False)
            x = restored[key]
            if self.input_fingerprints is not None and input_sha256(x) != self.input_fingerprints[which]:
                raise BadFileError(f"{self.where}: the {which} input does not match its recorded input_sha256: "
                                   "the bundle was edited")
            kernel_dtype = np_dtype(self.kernel_dtypes.get(which, str(saved[f"{which}_kernel"].dtype)))
            bias = saved.get(f"{which}_bias")
            weights = Weights(saved[f"{which}_kernel"].astype(kernel_dtype, copy=False),
                              None if bias is None else bias.astype(kernel_dtype, copy=False))
            sides[which] = replace(config, given_input=x, given_weights=weights)
        return Case(self.case.name, sides["reference"], sides["candidate"], self.case.options), saved


def plan_replay(directory: str | Path) -> list[ReplayCase]:
    """Every case of a bundle, checked before any array data is read: the manifest (schema, signature,
    completeness), each spec by its own rules, the backends' names, and every array's header against the
    spec it belongs to (names, shapes, dtypes).

    Raises:
        BadFileError: the first problem found (exit 2).
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    version = _signature(manifest)
    cases = manifest["cases"]
    if manifest.get("complete") is False:
        planned = manifest.get("planned")
        of = f" after {len(cases)} of {planned} cases" if isinstance(planned, int) else ""
        raise BadFileError(f"bundle '{directory}' is incomplete: the run that wrote it was interrupted{of}; it "
                           "holds what completed, for inspection, and is never replayed as a reproduction")
    if not cases:
        raise BadFileError(f"bundle '{directory}' holds no cases")
    files = [entry["arrays"] for entry in cases]
    if len(set(files)) != len(files):
        raise BadFileError(f"bundle '{directory}': two cases name the same arrays file")
    return [_plan_case(directory, i, entry, version) for i, entry in enumerate(cases)]  # type: ignore[arg-type]


def _plan_case(directory: Path, i: int, entry: dict[str, Any], version: int) -> ReplayCase:
    where = f"bundle '{directory}', case {i + 1}"
    specs = {w: spec_from_json(entry[w]["spec"], f"{where}, {w}") for w in SIDES}
    for w in SIDES:
        try:
            backend_info(entry[w]["backend"])
        except BadInputError as exc:
            raise BadFileError(f"{where}, {w}: {exc}") from None
    options = options_from_json(entry["options"], where)
    arrays_file = directory / entry["arrays"]  # the schema allows only case-NNN.npz: never outside the bundle
    headers = array_headers(arrays_file, "bundle arrays")
    if list(headers) == [""]:
        raise BadFileError(f"{where}: {arrays_file.name} is a .npy file, not an .npz archive")
    expected = _expected_arrays(entry, specs, options, version)
    _check_headers(headers, expected, f"{where}: {arrays_file.name}")
    fingerprints = entry.get("arrays_sha256")
    if fingerprints is not None and set(fingerprints) != set(headers):
        raise BadFileError(f"{where}: the recorded fingerprints name {', '.join(sorted(fingerprints))}, "
                           f"{arrays_file.name} holds {', '.join(sorted(headers))}")
    input_fingerprints = {w: entry[w]["input_sha256"] for w in SIDES} if version >= 3 else None
    case = Case(str(entry["name"]), SideConfig(entry["reference"]["backend"], specs["reference"]),
                SideConfig(entry["candidate"]["backend"], specs["candidate"]), options)
    return ReplayCase(directory, i, case, Verdict(entry["verdict"]), bool(entry.get("kernels_identical", True)),
                      str(entry.get("experiment", f"bundle:{directory.name}")), arrays_file, fingerprints,
                      input_fingerprints, {w: entry[w]["kernel_dtype"] for w in SIDES if "kernel_dtype" in entry[w]},
                      expected)


def _expected_arrays(entry: dict[str, Any], specs: dict[str, ConvSpec], options: CaseOptions,
                     version: int) -> dict[str, Expected]:
    """Every array a case may hold, with the shape and stored dtype its spec gives it."""
    exact = version >= 3
    expected: dict[str, Expected] = {}
    ref, cand = specs["reference"], specs["candidate"]
    distinct_inputs = exact and entry["reference"]["input_sha256"] != entry["candidate"]["input_sha256"]
    expected["input"] = Expected(ref.input_shape, _stored_dtype(ref.effective_input_dtype))
    expected["candidate_input"] = Expected(cand.input_shape, _stored_dtype(cand.effective_input_dtype),
                                           required=distinct_inputs)
    for side in SIDES:
        spec = specs[side]
        # With a shared kernel the candidate ran on the reference's kernel and bias.
        owner = ref if side == "candidate" and options.shared_kernel else spec
        kernel_dtype = entry[side].get("kernel_dtype")
        dtype = _stored_dtype(kernel_dtype) if kernel_dtype else None
        expected[f"{side}_kernel"] = Expected(owner.kernel_shape, dtype)
        expected[f"{side}_bias"] = Expected((owner.filters,), dtype, required=exact and owner.use_bias
                                            and not (side == "candidate" and options.shared_kernel))
        output_dtype = entry[side].get("output_dtype")
        expected[f"{side}_output"] = Expected(spec.output_shape, _stored_dtype(output_dtype) if output_dtype else None)
    return expected


def _check_headers(headers: dict[str, ArrayHeader], expected: dict[str, Expected], where: str) -> None:
    unknown = sorted(set(headers) - set(expected))
    if unknown:
        raise BadFileError(f"{where} holds an array '{unknown[0]}' that no bundle has (expected "
                           f"{', '.join(REQUIRED_ARRAYS)} and the optional candidate_input and biases)")
    missing = [name for name, want in expected.items() if want.required and name not in headers]
    if missing:
        raise BadFileError(f"{where} lacks {', '.join(missing)}")
    for name, header in headers.items():
        want = expected[name]
        if header.shape != tuple(want.shape):
            raise BadFileError(f"{where}: array '{name}' has shape {fmt_values(header.shape) or 'scalar'}, its spec "
                               f"gives {fmt_values(want.shape)}")
        if want.dtype is not None and header.dtype != want.dtype:
            raise BadFileError(f"{where}: array '{name}' has dtype {header.dtype}, the manifest gives {want.dtype}")
        if want.dtype is None and header.dtype.kind != "f":
            raise BadFileError(f"{where}: array '{name}' has dtype {header.dtype}; expected floating point")


def replay_cases(directory: str | Path) -> list[tuple[Case, Verdict, bool, str, dict[str, np.ndarray]]]:
    """The cases of a bundle, checked and loaded: (case, saved verdict, saved kernel finding, experiment,
    saved arrays). Loads every case's arrays at once; `plan_replay` and `ReplayCase.load` read them one case
    at a time."""
    out = []
    for planned in plan_replay(directory):
        case, saved = planned.load()
        out.append((case, planned.saved_verdict, planned.kernels_identical, planned.experiment, saved))
    return out


def outputs_reproduced(result: CaseResult, saved: dict[str, np.ndarray]) -> bool:
    return all(saved[f"{run.role}_output"].shape == run.result.output.shape
               and np.array_equal(saved[f"{run.role}_output"], _savable(run.result.output), equal_nan=True)
               for run in result.sides)
