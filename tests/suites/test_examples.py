"""The example files the CI workflow gates on must pass."""

from pathlib import Path

from convdiff.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_port_check_experiment_passes(cli_runner):
    result = cli_runner.invoke(cli, ["run", str(EXAMPLES / "port-check.toml")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 of 2 cases as expected" in result.output


def test_sweep_grid_example_shard_passes(cli_runner):
    result = cli_runner.invoke(cli, ["sweep", "--grid", str(EXAMPLES / "sweep-grid.toml"), "--shard", "3/32"],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "shard 3/32 of 192" in result.output


def test_ci_workflow_gates_on_sweep_and_run():
    text = (EXAMPLES / "ci" / "github-actions.yml").read_text()
    assert "convdiff sweep --grid examples/sweep-grid.toml" in text
    assert "convdiff run examples/port-check.toml" in text
    assert "pip install" in text
