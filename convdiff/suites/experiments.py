"""Experiments: named sets of reference/candidate cases with expected verdicts, from TOML.

Built-in experiments are TOML files shipped in `convdiff/suites/builtin/`, read by the same parser as the
user's files, so that the documented schema is the only schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from convdiff.analysis.diagnose import CAUSES
from convdiff.analysis.regions import REGION_KINDS
from convdiff.backends import backend_info
from convdiff.compare import Tolerance, Verdict, parse_rule_kind
from convdiff.data.files import parse_toml, read_text_file
from convdiff.data.specs import FROM, build_spec
from convdiff.errors import BadInputError
from convdiff.pipeline import Case, CaseOptions, CaseResult, SideConfig
from convdiff.reference.rounding import BoundForm, parse_bound_form
from convdiff.spec.fields import field_name, parse_fields

CASE_KEYS = {"name", "description", "reference", "candidate", "expect", "expect_kernels",
             "atol", "rtol", "shared_kernel", "top", "equal_nan", "expect_distribution", "expect_diagnosis",
             "expect_regions", "tolerance", "bound_form"}
TOP_KEYS = {"name", "title", "description", "spec", "case"}
EXPECT_KERNELS = ("identical", "different")
EXPECT_DISTRIBUTION = ("same distribution, different draws", "different distributions")


@dataclass(frozen=True)
class ExperimentCase:
    """A case of an experiment: what to run, and what it must come out as."""

    name: str
    reference: SideConfig
    candidate: SideConfig
    expect: Verdict
    expect_kernels: str | None
    options: CaseOptions
    description: str = ""
    expect_distribution: str | None = None
    """When the kernels differ: the expected `kernel_distribution` verdict."""
    expect_diagnosis: str | None = None
    """A diagnosis cause that must be confirmed (`none`: no hypothesis may be confirmed)."""
    expect_regions: str | None = None
    """Where the mismatches must sit: none, border, interior or everywhere."""

    @property
    def case(self) -> Case:
        return Case(self.name, self.reference, self.candidate, self.options)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    description: str
    source: str
    cases: tuple[ExperimentCase, ...]

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
    case: ExperimentCase
    result: CaseResult
    notes: tuple[str, ...] = ()
    """Facts about the run of this case (a replay says whether it reproduced the saved outputs)."""

    @property
    def got(self) -> str:
        return self.result.verdict.value

    @property
    def kernels_as_expected(self) -> bool:
        if self.case.expect_kernels is None:
            return True
        return self.result.kernels_identical == (self.case.expect_kernels == "identical")

    @property
    def distribution_as_expected(self) -> bool:
        if self.case.expect_distribution is None:
            return True
        found = self.result.kernel_distribution
        return found is not None and found.verdict == self.case.expect_distribution

    @property
    def confirmed_causes(self) -> list[str]:
        return [h.cause for h in self.result.diagnosis if h.confirmed]

    @property
    def regions_kind(self) -> str:
        return "none" if self.result.regions is None else self.result.regions.kind

    @property
    def diagnosis_as_expected(self) -> bool:
        want = self.case.expect_diagnosis
        if want is None:
            return True
        return not self.confirmed_causes if want == "none" else want in self.confirmed_causes

    @property
    def as_expected(self) -> bool:
        return (self.result.verdict is self.case.expect and self.kernels_as_expected
                and self.distribution_as_expected
                and self.diagnosis_as_expected
                and (self.case.expect_regions is None or self.regions_kind == self.case.expect_regions))

    @property
    def expected(self) -> str:
        text = self.case.expect.value
        if self.case.expect_kernels:
            text += f", kernels {self.case.expect_kernels}"
        if self.case.expect_distribution:
            text += f", {self.case.expect_distribution.split(',')[0]}"
        if self.case.expect_diagnosis:
            text += f", diagnosis {self.case.expect_diagnosis}"
        if self.case.expect_regions:
            text += f", regions {self.case.expect_regions}"
        return text


# --- loading ---------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("convdiff.suites.builtin").iterdir() if p.name.endswith(".toml"))


def load_builtin(name: str) -> Experiment:
    path = resources.files("convdiff.suites.builtin") / f"{name}.toml"
    if not path.is_file():
        raise BadInputError(f"unknown experiment '{name}' (built-in: {', '.join(builtin_names())}; or give a .toml file)")
    return parse_experiment(path.read_text(encoding="utf-8"), f"built-in {name}", base=Path(str(path)).parent)


def load_file(path: str | Path) -> Experiment:
    """An experiment file: a regular file (checked by type before it is opened) of at most 1 MiB of UTF-8 TOML."""
    path = Path(path)
    return parse_experiment(read_text_file(path, "experiment"), str(path), base=path.parent)


def resolve(target: str) -> Experiment:
    """A built-in name, or a path to a TOML experiment file."""
    if target in builtin_names():
        return load_builtin(target)
    if target.strip() and (target.endswith(".toml") or Path(target).exists()):
        return load_file(target)
    return load_builtin(target)  # raises with the list of names


def parse_experiment(text: str, source: str, base: Path | None = None) -> Experiment:
    """Parse an experiment; relative weights/bias/input paths are looked up next to the file (`base`)."""
    doc = parse_toml(text, source)
    _check_keys(doc, TOP_KEYS, source)
    name = _get(doc, "name", str, source, default=Path(source).stem)
    defaults = _get(doc, "spec", dict, source, default={})
    raw_cases = _get(doc, "case", list, source, default=None)
    if not raw_cases:
        raise BadInputError(f"{source}: no cases: add at least one [[case]] table")
    cases = tuple(_parse_case(c, i, defaults, source, base) for i, c in enumerate(raw_cases))
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise BadInputError(f"{source}: case names must be unique, got {names}")
    return Experiment(name, _get(doc, "title", str, source, default=name),
                      _get(doc, "description", str, source, default=""), source, cases)


def _parse_case(raw: Any, i: int, defaults: dict[str, Any], source: str, base: Path | None = None) -> ExperimentCase:
    where = f"{source}: case {i + 1}"
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: expected a table")
    spec_keys = {k for k in raw if field_name(k) is not None or k == FROM}
    _check_keys(raw, CASE_KEYS | spec_keys, where, extra_hint=True)
    name = _get(raw, "name", str, where, default=f"case-{i + 1}")
    where = f"{source}: case '{name}'"
    shared = {**defaults, **{k: raw[k] for k in spec_keys}}
    reference = _parse_side(raw.get("reference", "numpy"), shared, f"{where}, reference", base)
    candidate = _parse_side(raw.get("candidate"), shared, f"{where}, candidate", base)
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
    expect_distribution = _get(raw, "expect_distribution", str, where, default=None)
    if expect_distribution is not None and expect_distribution not in EXPECT_DISTRIBUTION:
        raise BadInputError(f"{where}: expect_distribution must be one of {', '.join(map(repr, EXPECT_DISTRIBUTION))}")
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
        mode = parse_rule_kind(mode_text) if mode_text is not None else None
        form = parse_bound_form(form_text) if form_text is not None else BoundForm.PROBABILISTIC
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None
    top = _get(raw, "top", int, where, default=10)
    if not 0 <= top <= 1_000_000:
        raise BadInputError(f"{where}: 'top' must be an integer in [0, 1000000], got {top}")
    options = CaseOptions(tolerance=tolerance, mode=mode, bound_form=form,
                          shared_kernel=_get(raw, "shared_kernel", bool, where, default=False),
                          top_k=top,
                          equal_nan=_get(raw, "equal_nan", bool, where, default=False))
    expect_diagnosis = _get(raw, "expect_diagnosis", str, where, default=None)
    if expect_diagnosis is not None:
        if expect_diagnosis not in (*CAUSES, "none"):
            raise BadInputError(f"{where}: unknown expect_diagnosis '{expect_diagnosis}' "
                                f"(choose from {', '.join(CAUSES)}, none)")
    expect_regions = _get(raw, "expect_regions", str, where, default=None)
    if expect_regions is not None:
        if expect_regions not in REGION_KINDS:
            raise BadInputError(f"{where}: unknown expect_regions '{expect_regions}' "
                                f"(choose from {', '.join(REGION_KINDS)})")
    return ExperimentCase(name, reference, candidate, expect, expect_kernels, options,
                _get(raw, "description", str, where, default=""), expect_distribution, expect_diagnosis,
                expect_regions)


def _parse_side(raw: Any, shared: dict[str, Any], where: str, base: Path | None = None) -> SideConfig:
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
    # The side's own fields are applied last, like `--set SIDE.FIELD`: they may differ from a `from`
    # layer's configuration, where the shared ones must agree with it.
    try:
        backend_info(backend)  # unknown names fail here, with the list
        fields = _fields_and_from({k: v for k, v in shared.items() if k not in overrides}, where)
        side = _fields_and_from(overrides, where)
    except BadInputError as exc:  # say which file and case, unless the message already does
        raise BadInputError(str(exc) if where in str(exc) else f"{where}: {exc}") from None
    if base is not None:
        from convdiff.data.weights import resolve_relative
        from convdiff.spec.convspec import BUILTIN_INPUTS

        for table in (fields, side):
            for key in ("weights", "bias", "input", FROM):
                if table.get(key) and table[key] not in BUILTIN_INPUTS:
                    table[key] = resolve_relative(table[key], base)
    try:
        return SideConfig(backend, build_spec(fields, side))
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None


def _fields_and_from(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Spec fields parsed by the field table, and `from` (FILE#LAYER) kept as given."""
    fields = parse_fields({k: v for k, v in raw.items() if k != FROM}, where=f" in {where}")
    if FROM in raw:
        if not isinstance(raw[FROM], str):
            raise BadInputError(f"'{FROM}' must be a string FILE#LAYER, got {type(raw[FROM]).__name__}")
        fields[FROM] = raw[FROM]
    return fields


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
