"""The example files the CI workflow gates on must pass."""

import re
import shlex
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


def workflow_commands() -> list[list[str]]:
    """The convdiff command lines the CI example runs, as the first matrix job (shard 1) runs them."""
    text = (EXAMPLES / "ci" / "github-actions.yml").read_text()
    commands = []
    for block in re.findall(r"run: >\n((?:\s{10}.*\n)+)|run: (convdiff .*)\n", text):
        line = " ".join((block[0] or block[1]).split()).replace("${{ matrix.shard }}", "1")
        if line.startswith("convdiff "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_ci_workflow_commands_run_and_gate(cli_runner, tmp_path, monkeypatch):
    commands = workflow_commands()
    assert [c[0] for c in commands] == ["sweep", "sweep", "run"]
    monkeypatch.chdir(tmp_path)  # the reports and the bundle it writes land here
    for args in commands:
        args = [str(EXAMPLES.parent / a) if a.startswith("examples/") else a for a in args]
        result = cli_runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["convdiff-bundle", "convdiff-keras.xml", "convdiff-report.html",
                                                           "convdiff-run.xml", "convdiff-sweep-1.xml"]


def test_ci_workflow_installs_convdiff_from_its_repository():
    text = (EXAMPLES / "ci" / "github-actions.yml").read_text()
    installs = re.findall(r"^\s*run: (pip install .*)$", text, flags=re.M)
    assert installs == ['pip install ".[report]"']  # a checkout of the repository, never the package index
    assert "pip install convdiff" not in text
