"""Sweeps: a Cartesian grid of specs, each compared reference vs candidate, summarized for CI.

The grid is pure data (`Grid` -> `SweepConfig`s in a fixed order), running it yields one
`ConfigOutcome` per config, and `summarize` groups the failures by cause. Rendering (table, JSON,
JUnit) lives in `report`/`junit`; only the CLI prints.

Value syntax (CLI): values of one axis are separated by `,`; a value that is itself a pair or a
shape is written with `x` (`--kernel-size 3,1x3`, `--padding same,valid,1,0x1x0x1`). When an option
holds a `;`, values are split on `;` instead, so `--padding "same;1,2"` also works.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convdiff.backends import BackendRefusedError, get_backend
from convdiff.compare import RuleKind, Tolerance, Verdict
from convdiff.pipeline import Case, CaseOptions, CaseResult, SideConfig, execute
from convdiff.reference.rounding import BoundForm
from convdiff.data.files import read_toml_file
from convdiff.data.memory import check_memory, default_limit
from convdiff.data.specs import build_spec
from convdiff.errors import (BackendFailedError, BadFileError, BadInputError, InterruptedRun, SpecConflictError,
                             Terminated)
from convdiff.spec.convspec import ConvSpec, default_shape_for
from convdiff.spec.fields import BY_NAME, FIELDS, SHAPE_AXES, field_name
from convdiff.spec.parse import CliText, parse_positive_int

_SHAPE_DIMS = {axis.name: axis for axis in SHAPE_AXES}
# The order axes vary in (the last varies fastest), whatever order they were given in: the grid
# and its indices, hence the shards, depend only on the axes and their values. It is the field
# table's order, the input shape's own dimensions right after the input shape.
AXIS_ORDER = tuple(name for f in FIELDS if f.sweep_flag
                   for name in ((f.name, *_SHAPE_DIMS) if f.name == "input_shape" else (f.name,)))
# In grid files `bias = [true, false]` has always meant use_bias (the bias *file* is not sweepable).
AXIS_ALIASES = {"bias": "use_bias"}
DEFAULT_EXPECT = (Verdict.IDENTICAL, Verdict.EQUIVALENT)


def _parse_axis_value(axis: str, value: Any) -> Any:
    if axis in _SHAPE_DIMS:
        return parse_positive_int(value, axis.replace("_", " "))
    return BY_NAME[axis].parse(value)


def axis_name(name: str) -> str:
    """Canonical axis name for an option or TOML key (`kernel-size` -> `kernel_size`)."""
    key = name.strip().replace("-", "_")
    key = AXIS_ALIASES.get(key, key)
    key = key if key in _SHAPE_DIMS else (field_name(key) or key)
    if key not in AXIS_ORDER:
        raise BadInputError(f"unknown sweep axis '{name}' (known: {', '.join(AXIS_ORDER)})")
    return key


def split_values(text: str) -> list[str]:
    """`'1,2,3'` -> ['1', '2', '3']; with a `;` anywhere, split on `;` (`'same;1,2'`). Command-line text."""
    sep = ";" if ";" in text else ","
    values = [CliText(v.strip()) for v in text.split(sep)]
    if not values or any(not v for v in values):
        raise BadInputError(f"malformed sweep values '{text}': empty value (separate values with ',' or ';')")
    return values


@dataclass(frozen=True)
class Axis:
    name: str
    """Canonical axis name: a spec field, or batch / input_size / channels."""
    raw: tuple[Any, ...]
    """Values as the user wrote them (for labels and JSON)."""
    values: tuple[Any, ...]
    """Parsed values."""


def make_axis(name: str, raw_values: Iterable[Any]) -> Axis:
    axis = axis_name(name)
    raw = tuple(raw_values)
    if not raw:
        raise BadInputError(f"sweep axis '{axis}' has no values")
    values = tuple(_parse_axis_value(axis, v) for v in raw)
    if len(set(map(repr, values))) != len(values):
        raise BadInputError(f"sweep axis '{axis}' repeats a value: {', '.join(map(str, raw))}")
    return Axis(axis, tuple(_label_value(v) for v in raw), values)


def _label_value(raw: Any) -> Any:
    if isinstance(raw, (list, tuple)):
        return "x".join(str(v) for v in raw) if all(isinstance(v, int) for v in raw) else str(list(raw))
    return raw


@dataclass(frozen=True)
class SweepConfig:
    """One point of the grid."""

    index: int
    """Position in the whole grid (0-based), the same in every shard."""
    params: tuple[tuple[str, Any], ...]
    """(axis, value as written) for every swept axis, in axis order."""
    fields: dict[str, Any] = field(hash=False, compare=False)
    """Parsed spec fields (base fields plus this point's values)."""

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params) or "base spec"

    @property
    def name(self) -> str:
        return f"{self.index:04d} {self.label}"


@dataclass(frozen=True)
class Grid:
    """Axes to sweep over a base spec; `configs()` enumerates them in a fixed order."""

    axes: tuple[Axis, ...]
    base: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Parsed spec fields shared by every config (the non-swept options)."""

    @property
    def size(self) -> int:
        n = 1
        for axis in self.axes:
            n *= len(axis.values)
        return n

    def configs(self) -> Iterator[SweepConfig]:
        return self.configs_at(range(self.size))

    def config_at(self, index: int) -> SweepConfig:
        """The config at `index` (the last axis varies fastest), computed without enumerating the others."""
        point, rest = [], index
        for axis in reversed(self.axes):
            rest, i = divmod(rest, len(axis.values))
            point.append(i)
        point.reverse()
        params = tuple((a.name, a.raw[i]) for a, i in zip(self.axes, point))
        values = {a.name: a.values[i] for a, i in zip(self.axes, point)}
        return SweepConfig(index, params, _fields(self.base, values))

    def configs_at(self, indices: Iterable[int]) -> Iterator[SweepConfig]:
        """Configs one at a time: a grid of millions is never held in memory."""
        return (self.config_at(i) for i in indices)


def make_grid(axes: dict[str, Sequence[Any]], base: dict[str, Any] | None = None) -> Grid:
    """Build a grid from {axis: [values]} (values as typed, parsed here) and parsed base fields."""
    parsed = [make_axis(name, values) for name, values in axes.items()]
    names = [a.name for a in parsed]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise BadInputError(f"sweep axis '{sorted(dupes)[0]}' given twice")
    if "input_shape" in names and any(n in _SHAPE_DIMS for n in names):
        raise BadInputError("sweep either the whole input shape or batch/input_size/channels, not both")
    parsed.sort(key=lambda a: AXIS_ORDER.index(a.name))
    return Grid(tuple(parsed), dict(base or {}))


def _fields(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    fields = {**base, **{k: v for k, v in values.items() if k not in _SHAPE_DIMS}}
    if any(k in _SHAPE_DIMS for k in values):
        rank = fields.get("rank", 2)
        shape = list(fields.get("input_shape") or default_shape_for(fields.get("input", "random"), rank))
        if rank == 2 and len(shape) == 3:  # H,W,C: a single image
            shape = [1, *shape]
        for axis, value in values.items():
            if axis in _SHAPE_DIMS and len(shape) == rank + 2:
                for d in _SHAPE_DIMS[axis].dims(rank):
                    shape[d] = value
        fields["input_shape"] = tuple(shape)
    return fields


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'K/N' -> (K, N) with 1 <= K <= N; None when not given."""
    if text is None:
        return None
    parts = text.strip().split("/")
    try:
        if len(parts) != 2 or any(len(p.strip()) > 18 for p in parts):
            raise ValueError
        k, n = (int(p) for p in parts)
    except ValueError:
        raise BadInputError(f"malformed shard '{text}': expected K/N, e.g. 2/4") from None
    if n < 1 or not 1 <= k <= n:
        raise BadInputError(f"invalid shard '{text}': need 1 <= K <= N")
    return k, n


def shard_indices(size: int, shard: tuple[int, int] | None) -> range:
    """The grid indices a shard runs: every N-th from K-1 (all of them without a shard)."""
    return range(size) if shard is None else range(shard[0] - 1, size, shard[1])


def shard_size(size: int, shard: tuple[int, int] | None) -> int:
    """How many configs a shard runs, by arithmetic (len() of a range fails beyond 2**63)."""
    if shard is None:
        return size
    k, n = shard
    return 0 if size < k else (size - k) // n + 1


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    # Round-robin rather than contiguous blocks: neighbouring configs (often similarly slow, or
    # failing for the same reason) spread over the shards.
    return shard is None or index % shard[1] == shard[0] - 1


def parse_expect(values: Iterable[str]) -> tuple[Verdict, ...]:
    out = []
    for text in values:
        try:
            out.append(Verdict(text.strip().lower()))
        except ValueError:
            raise BadInputError(
                f"unknown expected verdict '{text}' (choose from {', '.join(v.value for v in Verdict)})") from None
    return tuple(dict.fromkeys(out))


# --- grid files ----------------------------------------------------------------------------------

GRID_KEYS = {"name", "title", "description", "reference", "candidate", "expect", "spec", "sweep", "atol", "rtol",
             "shared_kernel", "equal_nan"}


@dataclass(frozen=True)
class GridFile:
    axes: dict[str, list[Any]]
    base: dict[str, Any]
    """Raw (unparsed) fixed spec fields."""
    reference: str | None = None
    candidate: str | None = None
    expect: tuple[str, ...] | None = None
    tolerance: Tolerance | None = None
    shared_kernel: bool = False
    equal_nan: bool = False


def load_grid_file(path: str | Path) -> GridFile:
    """A TOML file with a `[sweep]` table of lists (and optionally `[spec]`, reference, candidate, expect)."""
    path = Path(path)
    doc = read_toml_file(path, "grid")  # a regular file (checked by type first), <= 1 MiB, <= 32 levels deep
    unknown = sorted(set(doc) - GRID_KEYS)
    if unknown:
        raise BadInputError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(GRID_KEYS))})")
    sweep = doc.get("sweep")
    if not isinstance(sweep, dict) or not sweep:
        raise BadInputError(f"{path}: needs a [sweep] table of lists, e.g. kernel_size = [1, 3, 5]")
    axes = {}
    for key, values in sweep.items():
        if not isinstance(values, list):
            raise BadInputError(f"{path}: sweep.{key} must be a list, got {type(values).__name__}")
        axes[key] = values
    spec = doc.get("spec", {})
    if not isinstance(spec, dict):
        raise BadInputError(f"{path}: [spec] must be a table")
    expect = doc.get("expect")
    if isinstance(expect, str):
        expect = [expect]
    if expect is not None and not (isinstance(expect, list) and expect and all(isinstance(e, str) for e in expect)):
        raise BadInputError(f"{path}: expect must be a verdict or a non-empty list of verdicts")
    atol, rtol = doc.get("atol"), doc.get("rtol")
    if (atol is None) != (rtol is None):
        raise BadInputError(f"{path}: give atol and rtol together, or neither")
    for key in ("atol", "rtol"):
        value = doc.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadInputError(f"{path}: {key} must be a number, got {type(value).__name__} {value!r}")
    for key in ("shared_kernel", "equal_nan"):
        if key in doc and not isinstance(doc[key], bool):
            raise BadInputError(f"{path}: {key} must be true or false, got {type(doc[key]).__name__} {doc[key]!r}")
    for key in ("reference", "candidate"):
        if key in doc and not isinstance(doc[key], str):
            raise BadInputError(f"{path}: {key} must be a backend name")
        if key in doc:  # checked even when the command line replaces it: a file with a typo is refused
            from convdiff.backends import backend_info

            try:
                backend_info(doc[key])
            except BadInputError as exc:
                raise BadInputError(f"{path}: {key}: {exc}") from None
    return GridFile(axes, spec, doc.get("reference"), doc.get("candidate"),
                    tuple(expect) if expect is not None else None,
                    Tolerance(float(atol), float(rtol)) if atol is not None else None,
                    doc.get("shared_kernel", False), doc.get("equal_nan", False))


# --- running -------------------------------------------------------------------------------------

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Cause:
    """Why a config failed: a key to group by, and facts about the config to describe the group."""

    key: str
    """Group key, e.g. `mismatch` or `mismatch; weights differ before convolution`."""
    facts: tuple[str, ...] = ()
    """Simple facts about the config, e.g. `asymmetric SAME padding`; a group shows those all share."""


@dataclass(frozen=True)
class ConfigOutcome:
    config: SweepConfig
    status: str
    """passed | failed | skipped."""
    result: CaseResult | None = None
    """The CaseResult (None when skipped or the backend failed)."""
    reason: str = ""
    """Why it was skipped, or the backend error."""
    cause: Cause | None = None
    """Set on failures."""
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "error" if self.status == FAILED else SKIPPED
        return self.result.verdict.value


def config_facts(spec: ConvSpec, result: CaseResult | None = None) -> tuple[str, ...]:
    """Facts about a config that often explain a failure, computed from the spec (and the result)."""
    facts = []
    if spec.rank != 2:
        facts.append(f"rank {spec.rank}")
    if spec.transposed:
        facts.append("transposed")
    if spec.depthwise:
        facts.append("depthwise")
    elif spec.groups > 1:
        facts.append(f"groups {spec.groups}")
    parity = {n % 2 for n in spec.spatial_shape}
    if parity == {0}:
        facts.append("even inputs")
    elif parity == {1}:
        facts.append("odd inputs")
    if any(s != 1 for s in spec.strides):
        facts.append(f"stride {_pair(spec.strides)}")
    if any(d != 1 for d in spec.dilation):
        facts.append(f"dilation {_pair(spec.dilation)}")
    facts.append(f"kernel {_pair(spec.kernel_size)}")
    facts.append(f"padding {spec.padding}")
    if any(op for op in spec.output_padding):
        facts.append(f"output padding {_pair(spec.output_padding)}")
    if any(a != b for a, b in spec.pads):
        facts.append("asymmetric cropping" if spec.transposed else
                     "asymmetric padding (TF SAME puts the extra row/column at the bottom/right)")
    if spec.channels_first:
        facts.append("channels_first")
    if spec.convention != "correlation":
        facts.append(f"convention {spec.convention}")
    facts.append(f"dtype {spec.dtype}")
    if spec.effective_input_dtype != spec.dtype:
        facts.append(f"input stored as {spec.effective_input_dtype}")
    if result is not None and not result.kernels_identical:
        facts.append("weights differ before convolution")
    return tuple(facts)


def _pair(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def default_cause(result: CaseResult) -> Cause:
    """The cause of a failed comparison: the diagnosis' confirmed causes, else the verdict, plus the facts.

    A confirmed hypothesis of `convdiff.analysis.diagnose` names the group (e.g. `padding`), so that groups
    read "padding: 48 configs, all with stride 2 on even inputs".
    """
    confirmed = [h.cause for h in result.diagnosis if h.confirmed]
    if confirmed:
        key = " + ".join(confirmed)
    elif result.diagnosis:
        key = f"{result.verdict.value}, unexplained"
    else:
        key = result.verdict.value
    if not result.kernels_identical:
        key += "; weights differ before convolution"
    return Cause(key, config_facts(result.reference_config.spec, result))


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, parsed at the edge."""

    grid: Grid
    reference: str
    candidate: str
    expect: tuple[Verdict, ...] = DEFAULT_EXPECT
    tolerance: Tolerance | None = None
    shared_kernel: bool = False
    equal_nan: bool = False
    shard: tuple[int, int] | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-side spec fields (`--set SIDE.FIELD=VALUE`) applied on top of every config."""
    mode: RuleKind | None = None
    """The deciding rule, or None for the default rule."""
    bound_form: BoundForm | None = None
    """The bound's gamma form, or None for the default form."""

    max_memory: int | None = None
    """Bytes every config must fit in (`--max-memory`); None for the default share of the available memory."""

    def side_specs(self, fields: dict[str, Any]) -> tuple[ConvSpec, ConvSpec]:
        return (build_spec({**fields, **self.overrides.get("reference", {})}),
                build_spec({**fields, **self.overrides.get("candidate", {})}))

    def input_files(self) -> list[str]:
        """Every file path the plan's fields name (inputs, weights, biases), whatever config uses it."""
        keys = ("input", "weights", "bias")
        values = [self.grid.base.get(k) for k in keys] + [side.get(k) for side in self.overrides.values() for k in keys]
        values += [v for axis in self.grid.axes if axis.name in keys for v in axis.values]
        return [v for v in values if isinstance(v, str)]

    @property
    def count(self) -> int:
        """How many configs this plan runs (its shard of the grid)."""
        return shard_size(self.grid.size, self.shard)

    def selected(self) -> Iterator[SweepConfig]:
        """The configs this plan runs, one at a time, in index order."""
        return self.grid.configs_at(shard_indices(self.grid.size, self.shard))


MAX_CONFIGS = 100_000
"""Configs one sweep command runs at most (at 100 configs/s, about 17 minutes); larger grids are split
with --shard, which the limit applies after."""


def check_sweep(plan: SweepPlan) -> None:
    """Everything refusable about a sweep, before its first config runs (BadInputError, exit 2).

    A shard that selects nothing, more configs than MAX_CONFIGS, a file that cannot be read (a missing
    input file would otherwise skip every config), a value invalid on its own, and a config whose
    estimated memory is above the limit: each is one line, naming the config. Configs whose fields do
    not fit together (SpecConflictError: a kernel larger than the padded input) are left to be skipped
    with their reason when they run.
    """
    size, count = plan.grid.size, plan.count
    if count == 0:
        k, n = plan.shard or (1, 1)
        raise BadInputError(f"shard {k}/{n} selects no config: the grid has only {size:,} "
                            f"config{'s' if size != 1 else ''} (K must be at most the grid size)")
    if count > MAX_CONFIGS:
        whole = f" of a {size:,}-config grid" if plan.shard else ""
        raise BadInputError(f"this sweep would run {count:,} configs{whole}, more than the limit of {MAX_CONFIGS:,}: "
                            f"fewer values, or split it with --shard K/N (N >= {-(-count // MAX_CONFIGS)})")
    limit = plan.max_memory if plan.max_memory is not None else default_limit()
    first: tuple[SweepConfig, ConvSpec, ConvSpec] | None = None
    above = 0
    from convdiff.data.memory import estimate_case

    for config in plan.selected():
        try:
            ref, cand = plan.side_specs(config.fields)
        except SpecConflictError:
            continue  # fields that do not fit together: skipped with the reason when it runs
        except BadInputError as exc:  # a file that cannot be read, a value invalid on its own
            raise type(exc)(f"config {config.name}: {exc}") from None
        if limit is not None and estimate_case(ref, cand).total > limit:
            above += 1
            first = first or (config, ref, cand)
    if first is not None:
        config, ref, cand = first
        others = f" ({above:,} of {count:,} configs are above it)" if above > 1 else ""
        try:
            check_memory(ref, cand, plan.max_memory, where=f"config {config.name}: ")
        except BadInputError as exc:
            raise BadInputError(f"{exc}{others}") from None


def summarised(result: CaseResult) -> CaseResult:
    """A result with its arrays dropped (inputs, kernels, outputs, the bound), figures kept.

    A sweep keeps one result per config for its summary, JSON and JUnit; the arrays would hold
    megabytes per config, so a long sweep's memory grows by the figures only.
    """
    def empty(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.empty((0,), dtype=np.asarray(a).dtype)

    sides = tuple(dataclasses.replace(run, input=empty(run.input), config=dataclasses.replace(
        run.config, given_input=None, given_weights=None), result=dataclasses.replace(
        run.result, output=empty(run.result.output), kernel=empty(run.result.kernel), bias=empty(run.result.bias)))
        for run in result.sides)
    return dataclasses.replace(result, sides=sides, bound=None)


def run_sweep(plan: SweepPlan, progress: Callable[[SweepConfig], None] | None = None,
              cause_of: Callable[[CaseResult], Cause] = default_cause,
              keep_failed_arrays: bool = False) -> list[ConfigOutcome]:
    """Run every selected config. Invalid configs are skipped with the reason, never raised.

    Configs stream: each is built, run, summarised (its arrays dropped) and forgotten. With
    `keep_failed_arrays` (an HTML report draws the worst failing config of each cause), failing
    configs keep their arrays: memory then grows with the failures, never with the passes.

    Raises:
        BackendUnavailableError: a missing dependency (no config could run).
        BadFileError: a file became unreadable during the sweep.
        InterruptedRun: Ctrl-C or SIGTERM, carrying the outcomes so far.
    """
    get_backend(plan.reference), get_backend(plan.candidate)  # fail fast, exit 3, before any work
    extra = {} if plan.bound_form is None else {"bound_form": plan.bound_form}
    options = CaseOptions(tolerance=plan.tolerance, shared_kernel=plan.shared_kernel, top_k=1,
                          equal_nan=plan.equal_nan, mode=plan.mode, **extra)
    outcomes: list[ConfigOutcome] = []
    try:
        for config in plan.selected():
            start = time.perf_counter()
            try:
                ref_spec, cand_spec = plan.side_specs(config.fields)
                result = execute(Case(config.name, SideConfig(plan.reference, ref_spec),
                                      SideConfig(plan.candidate, cand_spec), options), plan.max_memory)
            except BackendRefusedError as exc:
                outcome = ConfigOutcome(config, SKIPPED, reason=str(exc))
            except BackendFailedError as exc:
                outcome = ConfigOutcome(config, FAILED, reason=str(exc), cause=Cause("backend error", ()))
            except BadFileError:
                raise
            except BadInputError as exc:  # spec validation: e.g. a kernel larger than the input
                outcome = ConfigOutcome(config, SKIPPED, reason=str(exc))
            else:
                ok = result.verdict in plan.expect
                kept = result if keep_failed_arrays and not ok else summarised(result)
                outcome = ConfigOutcome(config, PASSED if ok else FAILED, kept,
                                        cause=None if ok else cause_of(result))
                del result
            outcomes.append(dataclasses.replace(outcome, seconds=time.perf_counter() - start))
            if progress is not None:
                progress(config)
    except KeyboardInterrupt as exc:
        raise InterruptedRun(len(outcomes), plan.count, outcomes, terminated=isinstance(exc, Terminated),
                             what="configs") from None
    return outcomes


# --- summary -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureGroup:
    cause: str
    count: int
    shared: tuple[str, ...]
    """Facts every config of the group shares."""
    worst: ConfigOutcome
    """The config with the largest max abs diff."""

    @property
    def description(self) -> str:
        noun = "config" if self.count == 1 else "configs"
        if not self.shared:
            return f"{self.count} {noun}, no common fact beyond the sweep's fixed settings"
        if self.count == 1:
            return f"1 config: {', '.join(self.shared)}"
        return f"{self.count} {noun}, all with {', '.join(self.shared)}"


@dataclass(frozen=True)
class SweepSummary:
    total: int
    passed: int
    failed: int
    skipped: int
    groups: tuple[FailureGroup, ...]
    skip_reasons: tuple[tuple[str, int], ...]
    """Distinct skip reasons with their counts."""
    grid_size: int
    shard: tuple[int, int] | None
    seconds: float

    @property
    def compared(self) -> int:
        """Configs that ran to a verdict (or a backend error): a sweep that compared nothing proves nothing."""
        return self.passed + self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.compared > 0


def summarize(plan: SweepPlan, outcomes: Sequence[ConfigOutcome], seconds: float = 0.0) -> SweepSummary:
    failures = [o for o in outcomes if o.status == FAILED]
    by_cause: dict[str, list[ConfigOutcome]] = {}
    for o in failures:
        by_cause.setdefault(o.cause.key if o.cause else "unknown", []).append(o)
    # Facts true of every config that ran say nothing about why some failed: leave them out.
    ran = [config_facts(o.result.reference_config.spec, o.result) for o in outcomes if o.result is not None]
    universal = set.intersection(*map(set, ran)) if ran else set()
    groups = []
    for key, members in by_cause.items():
        shared = [f for f in (members[0].cause.facts if members[0].cause else ())
                  if f not in universal and all(m.cause and f in m.cause.facts for m in members)]
        worst = max(members, key=_badness)
        groups.append(FailureGroup(key, len(members), tuple(shared), worst))
    groups.sort(key=lambda g: (-g.count, g.cause))
    reasons: dict[str, int] = {}
    for o in outcomes:
        if o.status == SKIPPED:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    return SweepSummary(len(outcomes), sum(o.status == PASSED for o in outcomes), len(failures),
                        sum(o.status == SKIPPED for o in outcomes), tuple(groups), tuple(reasons.items()),
                        plan.grid.size, plan.shard, seconds)


def _badness(o: ConfigOutcome) -> tuple[float, float]:
    if o.result is None:
        return (float("inf"), 0.0)
    out = o.result.output
    return (out.max_abs_diff if out.shape_match else float("inf"), out.mismatch_fraction)


def make_plan(reference: str | None, candidate: str | None, grid_file: str | None, expect: str | None,
              shard: str | None, options: CaseOptions, axes: dict[str, Sequence[Any]],
              overrides: dict[str, dict[str, Any]] | None = None, max_memory: int | None = None) -> SweepPlan:
    """A SweepPlan from the command's options and the grid file; options given replace the file's.

    Raises:
        BadInputError: bad values (exit 2), or nothing to sweep.
    """
    from convdiff.backends import backend_info
    from convdiff.spec.fields import parse_fields

    file = load_grid_file(grid_file) if grid_file else None
    raw_axes = {axis_name(k): v for k, v in (file.axes if file else {}).items()}
    raw_axes.update({axis: values for axis, values in axes.items() if values is not None})
    if not raw_axes:
        raise BadInputError("nothing to sweep: give at least one axis (e.g. --kernel-size 1,3,5) or --grid FILE")
    base = parse_fields(file.base, where=f" in {grid_file}") if file else {}
    grid = make_grid(raw_axes, base)
    verdicts = (parse_expect(expect.split(",")) if expect else
                parse_expect(file.expect) if file and file.expect else DEFAULT_EXPECT)
    ref = reference or (file.reference if file and file.reference else "nn")
    cand = candidate or (file.candidate if file and file.candidate else "keras")
    backend_info(ref), backend_info(cand)
    return SweepPlan(grid, ref, cand, verdicts, options.tolerance or (file.tolerance if file else None),
                     options.shared_kernel or bool(file and file.shared_kernel),
                     options.equal_nan or bool(file and file.equal_nan), parse_shard(shard),
                     overrides or {}, options.mode, options.bound_form, max_memory)
