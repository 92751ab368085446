import os

import pytest

# Keep the suite on one code path whatever the developer's shell holds.
os.environ.pop("TF_USE_LEGACY_KERAS", None)


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()
