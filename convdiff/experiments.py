"""Experiments: named sets of reference/candidate cases with expected verdicts, from TOML.

Built-in experiments are TOML files shipped in `convdiff/builtin/`, read by the same parser as the
user's files, so that the documented schema is the only schema.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from convdiff.backends import backend_info
from convdiff.compare import Tolerance, Verdict
from convdiff.errors import BadInputError
from convdiff.precision import BoundForm, parse_bound_form, parse_tolerance_mode
from convdiff.runner import CaseOptions, CaseResult, SideConfig
from convdiff.spec import FIELD_PARSERS, build_spec, parse_fields

CASE_KEYS = {"name", "description", "reference", "candidate", "expect", "expect_kernels",
             "atol", "rtol", "shared_kernel", "top", "equal_nan", "tolerance", "bound_form"}
TOP_KEYS = {"name", "title", "description", "spec", "case"}
EXPECT_KERNELS = ("identical", "different")


@dataclass(frozen=True)
class Case:
    name: str
    reference: SideConfig
    candidate: SideConfig
    expect: Verdict
    expect_kernels: str | None
    options: CaseOptions
    description: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    description: str
    source: str
    cases: tuple[Case, ...]

    def missing_requirements(self) -> list[str]:
        """Install hints for backends this experiment needs that are not installed."""
        hints = []
        for case in self.cases:
            for side in (case.reference, case.candidate):
                info = backend_info(side.backend)
                if info.missing() and info.install_hint not in hints:
                    hints.append(f"backend '{info.name}' needs {', '.join(info.missing())} ({info.install_hint})")
        return list(dict.fromkeys(hints))


@dataclass(frozen=True)
class CaseOutcome:
    experiment: str
    case: Case
    result: CaseResult

    @property
    def got(self) -> str:
        return self.result.verdict.value

    @property
    def kernels_as_expected(self) -> bool:
        if self.case.expect_kernels is None:
            return True
        return self.result.kernels_identical == (self.case.expect_kernels == "identical")

    @property
    def as_expected(self) -> bool:
        return self.result.verdict is self.case.expect and self.kernels_as_expected

    @property
    def expected(self) -> str:
        text = self.case.expect.value
        if self.case.expect_kernels:
            text += f", kernels {self.case.expect_kernels}"
        return text


# --- loading ---------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("convdiff.builtin").iterdir() if p.name.endswith(".toml"))


def load_builtin(name: str) -> Experiment:
    path = resources.files("convdiff.builtin") / f"{name}.toml"
    if not path.is_file():
        raise BadInputError(f"unknown experiment '{name}' (built-in: {', '.join(builtin_names())}; or give a .toml file)")
    return parse_experiment(path.read_text(encoding="utf-8"), f"built-in {name}")


def load_file(path: str | Path) -> Experiment:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"experiment file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"experiment file '{path}' could not be read: {exc}") from None
    return parse_experiment(text, str(path))


def resolve(target: str) -> Experiment:
    """A built-in name, or a path to a TOML experiment file."""
    if target in builtin_names():
        return load_builtin(target)
    if target.endswith(".toml") or Path(target).exists():
        return load_file(target)
    return load_builtin(target)  # raises with the list of names


def parse_experiment(text: str, source: str) -> Experiment:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{source}: invalid TOML: {exc}") from None
    _check_keys(doc, TOP_KEYS, source)
    name = _get(doc, "name", str, source, default=Path(source).stem)
    defaults = _get(doc, "spec", dict, source, default={})
    raw_cases = _get(doc, "case", list, source, default=None)
    if not raw_cases:
        raise BadInputError(f"{source}: no cases: add at least one [[case]] table")
    cases = tuple(_parse_case(c, i, defaults, source) for i, c in enumerate(raw_cases))
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise BadInputError(f"{source}: case names must be unique, got {names}")
    return Experiment(name, _get(doc, "title", str, source, default=name),
                      _get(doc, "description", str, source, default=""), source, cases)


def _parse_case(raw: Any, i: int, defaults: dict[str, Any], source: str) -> Case:
    where = f"{source}: case {i + 1}"
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: expected a table")
    spec_keys = {k for k in raw if k.replace("-", "_") in FIELD_PARSERS}
    _check_keys(raw, CASE_KEYS | spec_keys, where, extra_hint=True)
    name = _get(raw, "name", str, where, default=f"case-{i + 1}")
    where = f"{source}: case '{name}'"
    shared = {**defaults, **{k: raw[k] for k in spec_keys}}
    reference = _parse_side(raw.get("reference", "numpy"), shared, f"{where}, reference")
    candidate = _parse_side(raw.get("candidate"), shared, f"{where}, candidate")
    expect_text = _get(raw, "expect", str, where, default=None)
    if expect_text is None:
        raise BadInputError(f"{where}: missing required key 'expect' ({', '.join(v.value for v in Verdict)})")
    try:
        expect = Verdict(expect_text)
    except ValueError:
        raise BadInputError(
            f"{where}: unknown expect '{expect_text}' (choose from {', '.join(v.value for v in Verdict)})") from None
    expect_kernels = _get(raw, "expect_kernels", str, where, default=None)
    if expect_kernels is not None and expect_kernels not in EXPECT_KERNELS:
        raise BadInputError(f"{where}: expect_kernels must be one of {', '.join(EXPECT_KERNELS)}")
    atol, rtol = raw.get("atol"), raw.get("rtol")
    if (atol is None) != (rtol is None):
        raise BadInputError(f"{where}: give atol and rtol together, or neither")
    tolerance = None
    if atol is not None:
        for key, value in (("atol", atol), ("rtol", rtol)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise BadInputError(f"{where}: {key} must be a non-negative number, got {value!r}")
        tolerance = Tolerance(float(atol), float(rtol))
    mode_text = _get(raw, "tolerance", str, where, default=None)
    form_text = _get(raw, "bound_form", str, where, default=None)
    try:
        mode = parse_tolerance_mode(mode_text) if mode_text is not None else None
        form = parse_bound_form(form_text) if form_text is not None else BoundForm.PROBABILISTIC
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None
    options = CaseOptions(tolerance=tolerance, mode=mode, bound_form=form,
                          shared_kernel=_get(raw, "shared_kernel", bool, where, default=False),
                          top_k=_get(raw, "top", int, where, default=10),
                          equal_nan=_get(raw, "equal_nan", bool, where, default=False))
    return Case(name, reference, candidate, expect, expect_kernels, options,
                _get(raw, "description", str, where, default=""))


def _parse_side(raw: Any, shared: dict[str, Any], where: str) -> SideConfig:
    if raw is None:
        raise BadInputError(f"{where}: missing required key (a backend name or a table with 'backend')")
    if isinstance(raw, str):
        backend, overrides = raw, {}
    elif isinstance(raw, dict):
        overrides = dict(raw)
        backend = overrides.pop("backend", None)
        if not isinstance(backend, str):
            raise BadInputError(f"{where}: the side table needs a 'backend' name")
    else:
        raise BadInputError(f"{where}: expected a backend name or a table, got {type(raw).__name__}")
    backend_info(backend)  # unknown names fail here, with the list
    fields = parse_fields({**shared, **overrides}, where=f" in {where}")
    try:
        return SideConfig(backend, build_spec(fields))
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None


def _check_keys(table: dict[str, Any], allowed: set[str], where: str, extra_hint: bool = False) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        hint = " or a spec field" if extra_hint else ""
        raise BadInputError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))}{hint})")


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadInputError(f"{where}: '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value
