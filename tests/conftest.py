import os

import pytest

# The test process imports TensorFlow the way `convdiff run` does when any TF1 backend is among the
# ones it runs: in legacy mode (TF_USE_LEGACY_KERAS=1, set before TensorFlow's first import), so that
# the TF1 backends run in-process next to the Keras 3 ones. The default, non-legacy start is tested
# in subprocesses (tests/cli/test_startup.py, tests/suites/test_rerun.py).
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Reports are compared as text at the width convdiff uses when its output is not a terminal; a
# COLUMNS set by the runner (pytest-xdist workers have one) would change it.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(scope="session")
def builtin_run():
    """Every built-in experiment, run once in this process for the whole session: (RunOutcome, its JSON)."""
    from convdiff.backends.environment import collect
    from convdiff.cli.run import run_json
    from convdiff.suites.runs import run_targets

    outcome = run_targets(())
    return outcome, run_json(outcome, collect())


@pytest.fixture(scope="session")
def builtin_cases(builtin_run):
    """{(experiment, case): CaseOutcome} of every built-in experiment."""
    outcome, _ = builtin_run
    assert not outcome.skipped, outcome.skipped
    return {(o.experiment, o.case.name): o for o in outcome.outcomes}
