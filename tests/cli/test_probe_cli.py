"""`convdiff probe batch|channels` through CliRunner: exit codes, the JSON, bad input."""

import json

import pytest

from convdiff.cli import cli


@pytest.mark.parametrize(("backend", "probe"), [("numpy", "batch"), ("torch", "batch"), ("nn", "channels"),
                                                ("keras", "channels")])
def test_probes_exit_0_with_a_verdict_per_probe(cli_runner, backend, probe):
    result = cli_runner.invoke(cli, ["probe", probe, "--backend", backend, "--shape", "3,10,10,4", "--filters", "6",
                                     "--padding", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and len(doc["probes"]) == 1
    entry = doc["probes"][0]
    assert entry["probe"] == probe and entry["backend"] == backend
    assert entry["verdict"] in ("identical", "within-bound")
    assert entry["spec"]["filters"] == 6 and entry["spec"]["input_shape"][0] == 3
    assert (entry["channels"] == [0, 1, 2]) == (probe == "channels")
    assert "environment" in doc


def test_the_table_ends_with_the_verdict_line_and_quiet_prints_only_it(cli_runner):
    args = ["probe", "channels", "--backend", "numpy", "--shape", "1,8,8,2", "--filters", "4", "--subset", "1:3"]
    full = cli_runner.invoke(cli, args)
    quiet = cli_runner.invoke(cli, [*args, "-q"])
    assert full.exit_code == quiet.exit_code == 0
    assert len(quiet.stdout.strip().splitlines()) == 1
    assert " ".join(full.stdout.split()).endswith(" ".join(quiet.stdout.split()))  # the table wraps long lines
    assert quiet.stdout.startswith("identical: channels probe of numpy: a 2-channel layer")


@pytest.mark.parametrize("args", [
    ["probe", "channels", "--backend", "numpy", "--filters", "4", "--subset", "2,9"],
    ["probe", "channels", "--backend", "numpy", "--subset", "a:b"],
    ["probe", "batch", "--backend", "numpy", "--batch-size", "1"],
    ["probe", "batch"],
    ["probe", "batch", "--backend", "numpy", "-q", "--format", "json"],
])
def test_bad_input_is_exit_2_in_one_line(cli_runner, args):
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("convdiff: error:")


def test_gpu_on_a_machine_without_one_is_exit_3(cli_runner):
    result = cli_runner.invoke(cli, ["probe", "batch", "--backend", "torch", "--device", "gpu", "--shape", "2,6,6,2"])
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert result.exit_code == 3 and result.output.strip() == (
        "convdiff: error: backend 'torch' was asked to run on gpu, but PyTorch sees no GPU on this machine "
        "(give --device cpu)")


def test_a_usage_error_names_the_nested_command_to_ask_for_help(cli_runner):
    result = cli_runner.invoke(cli, ["probe", "channels", "--backend", "numpy", "--subset", "5:2"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("(see 'convdiff probe channels --help')"), result.stderr
