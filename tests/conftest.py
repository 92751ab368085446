import os

import pytest

# The test process imports TensorFlow the way `convdiff run` does when any TF1 backend is among the
# ones it runs: in legacy mode (TF_USE_LEGACY_KERAS=1, set before TensorFlow's first import), so that
# the TF1 backends run in-process next to the Keras 3 ones. The default, non-legacy start is tested
# in subprocesses (tests/cli/test_startup.py, tests/suites/test_rerun.py).
os.environ["TF_USE_LEGACY_KERAS"] = "1"


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()
