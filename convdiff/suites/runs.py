"""`convdiff run`: built-in experiments, experiment files and replayed bundles, every case through the
one pipeline, in order, with everything refusable refused before the first case runs."""

from __future__ import annotations

from dataclasses import dataclass

from convdiff.backends import prepare_frameworks
from convdiff.errors import BackendUnavailableError, InterruptedRun
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

    Raises:
        InterruptedRun: on Ctrl-C (or SIGTERM), carrying the RunOutcome of the cases completed.
    """
    explicit = bool(targets)
    bundle_dirs = [t for t in targets if bundle.is_bundle(t)]
    names = [t for t in targets if t not in bundle_dirs]
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
    replays = [(d, bundle.replay_cases(d)) for d in bundle_dirs]
    planned = [(exp.name, case, None) for exp in runnable for case in exp.cases]
    for directory, entries in replays:
        for case, verdict, kernels, experiment, saved in entries:
            planned.append((experiment, _replay_expectation(case, verdict, kernels, directory), saved))
    # Every case is checked before any runs: refuse the run, not its last case.
    for experiment, expected, _ in planned:
        check_case(expected.case, max_memory, where=f"experiment '{experiment}', case '{expected.name}': ")
    # Decided once, before any backend imports TensorFlow: TF1 backends need legacy mode process-wide.
    prepare_frameworks([side.backend for _, expected, _ in planned for side in (expected.reference, expected.candidate)])
    outcomes: list[CaseOutcome] = []
    try:
        for experiment, expected, saved in planned:
            result = execute(expected.case, max_memory)
            notes = ()
            if saved is not None:
                notes = ("replay: both outputs bitwise equal to the saved ones" if bundle.outputs_reproduced(result, saved)
                         else "replay: outputs differ from the saved ones (other machine or library versions?)",)
            outcomes.append(CaseOutcome(experiment, expected, result, notes))
    except KeyboardInterrupt:
        raise InterruptedRun(len(outcomes), len(planned),
                             RunOutcome(tuple(outcomes), tuple(skipped), len(planned))) from None
    return RunOutcome(tuple(outcomes), tuple(skipped), len(planned))


def _replay_expectation(case, verdict, kernels_identical: bool, directory: str) -> ExperimentCase:  # noqa: ANN001
    return ExperimentCase(case.name, case.reference, case.candidate, verdict,
                          "identical" if kernels_identical else "different", case.options,
                          description=f"replay of bundle {directory}")
