"""`convdiff run`: built-in experiments, experiment files and replayed bundles, every case through the
one pipeline, in order, with everything refusable refused before the first case runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convdiff.backends import prepare_frameworks
from convdiff.errors import BackendUnavailableError, BadFileError, InterruptedRun, Terminated
from convdiff.pipeline import check_case, execute
from convdiff.suites import bundle, experiments
from convdiff.suites.experiments import CaseOutcome, ExperimentCase


@dataclass(frozen=True)
class RunOutcome:
    outcomes: tuple[CaseOutcome, ...]
    skipped: tuple[tuple[str, str], ...]
    """(experiment, why) for built-in experiments whose optional dependencies are missing."""
    total: int
    """Cases planned (the outcomes are fewer when the run was interrupted)."""

    @property
    def ok(self) -> bool:
        return len(self.outcomes) == self.total and all(o.as_expected for o in self.outcomes)


def run_targets(targets: tuple[str, ...], max_memory: int | None = None) -> RunOutcome:
    """Run what `targets` name (every built-in experiment when empty).

    Everything refusable is refused before the first case runs: experiment files parsed, bundles
    checked (manifest, specs, array headers and fingerprints), every case's capabilities and memory.

    Raises:
        InterruptedRun: on Ctrl-C (or SIGTERM), carrying the RunOutcome of the cases completed.
    """
    explicit = bool(targets)
    bundle_dirs = [t for t in targets if t.strip() and bundle.looks_like_bundle(t)]
    names = [t for t in targets if t not in bundle_dirs]
    for name in names:
        if name.strip() and Path(name).is_dir():
            raise BadFileError(f"'{name}' is a directory but not a convdiff bundle (no {bundle.MANIFEST}); give an "
                               "experiment name, a .toml file or a bundle directory")
    loaded = [experiments.resolve(t) for t in names] if explicit else [
        experiments.load_builtin(n) for n in experiments.builtin_names()]
    skipped, runnable = [], []
    for exp in loaded:
        missing = exp.missing_requirements()
        if missing:
            if explicit:
                raise BackendUnavailableError(f"experiment '{exp.name}': {'; '.join(missing)}")
            skipped.append((exp.name, "; ".join(missing)))
            continue
        runnable.append(exp)
    replays = [(d, bundle.plan_replay(d)) for d in bundle_dirs]
    planned: list[tuple[str, ExperimentCase, bundle.ReplayCase | None]] = [
        (exp.name, case, None) for exp in runnable for case in exp.cases]
    for directory, entries in replays:
        for entry in entries:
            planned.append((entry.experiment, _replay_expectation(entry, directory), entry))
    # Every case is checked before any runs: refuse the run, not its last case.
    for experiment, expected, _ in planned:
        check_case(expected.case, max_memory, where=f"experiment '{experiment}', case '{expected.name}': ")
    # Every saved array against its fingerprint, one case at a time, before anything runs.
    for _, _, replay in planned:
        if replay is not None:
            replay.load()
    # Decided once, before any backend imports TensorFlow: TF1 backends need legacy mode process-wide.
    prepare_frameworks([side.backend for _, expected, _ in planned for side in (expected.reference, expected.candidate)])
    outcomes: list[CaseOutcome] = []
    try:
        for experiment, expected, replay in planned:
            notes: tuple[str, ...] = ()
            if replay is None:
                result = execute(expected.case, max_memory)
            else:
                case, saved = replay.load()  # read only now, one case at a time
                result = execute(case, max_memory)
                notes = ("replay: both outputs bitwise equal to the saved ones" if bundle.outputs_reproduced(result, saved)
                         else "replay: outputs differ from the saved ones (other machine or library versions?)",)
                del case, saved
            outcomes.append(CaseOutcome(experiment, expected, result, notes))
    except KeyboardInterrupt as exc:
        raise InterruptedRun(len(outcomes), len(planned), RunOutcome(tuple(outcomes), tuple(skipped), len(planned)),
                             terminated=isinstance(exc, Terminated)) from None
    return RunOutcome(tuple(outcomes), tuple(skipped), len(planned))


def _replay_expectation(replay: bundle.ReplayCase, directory: str) -> ExperimentCase:
    case = replay.case
    return ExperimentCase(case.name, case.reference, case.candidate, replay.saved_verdict,
                          "identical" if replay.kernels_identical else "different", case.options,
                          description=f"replay of bundle {directory}")
