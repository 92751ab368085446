"""Reproduction bundles round-trip: saved by compare/run, replayed by `convdiff run DIR` to the same verdict."""

import json

import numpy as np
import pytest

from convdiff.suites import bundle
from convdiff.cli.commands import cli

SMALL = ["--shape", "1,9,9,3", "--filters", "2"]


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


def test_compare_bundle_round_trip(cli_runner, tmp_path):
    target = tmp_path / "repro"
    result = invoke(cli_runner, ["compare", "--reference", "nn", "--candidate", "keras", "--input", "image",
                                 "--input-dtype", "float64", "--padding", "0,1,0,1", *SMALL, "--save-bundle",
                                 str(target), "--format", "json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((target / "bundle.json").read_text())
    (entry,) = manifest["cases"]
    assert entry["verdict"] == "equivalent" and entry["reference"]["backend"] == "nn"
    assert entry["candidate"]["spec"]["padding"] == [[0, 1], [0, 1]]
    assert json.loads((target / "report.json").read_text()) == json.loads(result.output)
    with np.load(target / entry["arrays"], allow_pickle=False) as arrays:
        assert arrays["input"].dtype == np.float64 and arrays["input"].shape == (1, 9, 9, 3)
        assert arrays["reference_output"].dtype == np.float64 and arrays["candidate_output"].dtype == np.float32
        assert arrays["reference_kernel"].shape == (3, 3, 3, 2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind

    replay = invoke(cli_runner, ["run", str(target), "--format", "json"])
    assert replay.exit_code == 0, replay.output
    (case,) = json.loads(replay.output)["cases"]
    assert case["as_expected"] and case["verdict"] == "equivalent" and case["expected"] == "equivalent"
    assert "replay: both outputs bitwise equal to the saved ones" in case["candidate"]["notes"]


def test_replay_of_a_mismatch_expects_the_mismatch(cli_runner, tmp_path):
    target = tmp_path / "b"
    args = ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--atol", "0", "--rtol", "0"]
    assert invoke(cli_runner, [*args, "--save-bundle", str(target)]).exit_code == 1
    (replayed,) = bundle.replay(target)
    assert replayed.saved_verdict.value == "mismatch" == replayed.result.output.verdict.value
    assert replayed.outputs_reproduced
    assert invoke(cli_runner, ["run", str(target)]).exit_code == 0  # reproduced the recorded verdict


def test_tampered_bundle_no_longer_reaches_the_verdict(cli_runner, tmp_path):
    target = tmp_path / "b"
    assert invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL,
                               "--save-bundle", str(target)]).exit_code == 0
    manifest = json.loads((target / "bundle.json").read_text())
    manifest["cases"][0]["verdict"] = "identical"  # claims more than the saved case can reach
    (target / "bundle.json").write_text(json.dumps(manifest))
    result = invoke(cli_runner, ["run", str(target)])
    assert result.exit_code == 1 and "UNEXPECTED" in result.output


def test_run_bundle_holds_every_case_and_replaces_an_old_bundle(cli_runner, tmp_path):
    target = tmp_path / "b"
    assert invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL,
                               "--save-bundle", str(target)]).exit_code == 0
    assert invoke(cli_runner, ["run", "xavier-kernel", "--save-bundle", str(target)]).exit_code == 0
    cases = json.loads((target / "bundle.json").read_text())["cases"]
    assert [c["experiment"] for c in cases] == ["xavier-kernel", "xavier-kernel"]
    assert sorted(p.name for p in target.iterdir()) == ["bundle.json", "case-001.npz", "case-002.npz", "report.json"]
    assert invoke(cli_runner, ["run", str(target)]).exit_code == 0


def test_bundle_refuses_to_overwrite_other_directories(cli_runner, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL,
                                     "--save-bundle", str(tmp_path)])
    assert result.exit_code == 2 and "not a convdiff bundle" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_bundle_with_pickled_arrays_is_refused(cli_runner, tmp_path):
    target = tmp_path / "b"
    assert invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL,
                               "--save-bundle", str(target)]).exit_code == 0
    np.savez(target / "case-001.npz", input=np.array([{"x": 1}], dtype=object))
    result = cli_runner.invoke(cli, ["run", str(target)])
    assert result.exit_code == 2 and "pickled" in result.output


@pytest.mark.parametrize("command", [["compare", *SMALL, "--format", "json"], ["run", "xavier-kernel", "--format", "json"]])
def test_every_json_report_has_the_environment_block(cli_runner, command):
    doc = json.loads(invoke(cli_runner, command).output)
    env = doc["environment"]
    for key in ("python", "numpy", "tensorflow", "keras", "onednn", "intra_op_threads", "inter_op_threads",
                "device", "cpu", "cpus_available", "tf32"):
        assert key in env, key
    assert env["tensorflow"] and env["device"] == "CPU" and isinstance(env["intra_op_threads"], int)
