"""Reproduction bundles round-trip: saved by compare/run, replayed by `convdiff run DIR` to the same verdict."""

import json

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.suites.runs import run_targets

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
    assert "replay: both outputs bitwise equal to the saved ones" in case["notes"]


def test_replay_of_a_mismatch_expects_the_mismatch(cli_runner, tmp_path):
    target = tmp_path / "b"
    args = ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--atol", "0", "--rtol", "0"]
    assert invoke(cli_runner, [*args, "--save-bundle", str(target)]).exit_code == 1
    (outcome,) = run_targets((str(target),)).outcomes
    assert outcome.case.expect.value == "mismatch" == outcome.result.verdict.value
    assert outcome.notes == ("replay: both outputs bitwise equal to the saved ones",)
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


# Bundles that flipped their verdict on replay before the rule, the bound form and the tolerance were
# recorded and replay went through the live pipeline.
@pytest.mark.parametrize("args", [
    ["run", "ones-filter"],
    ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--dtype", "bfloat16"],
    ["compare", "--reference", "nn", "--candidate", "keras", *SMALL, "--bound-form", "worst-case"],
    ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--tolerance", "bound", "--atol", "0",
     "--rtol", "0"],
], ids=["ones-filter", "bfloat16", "worst-case", "bound-with-zero-tolerance"])
def test_every_bundle_kind_replays_to_its_recorded_verdict(cli_runner, tmp_path, args):
    target = tmp_path / "b"
    saved = invoke(cli_runner, [*args, "--save-bundle", str(target), "--format", "json"])
    assert saved.exit_code in (0, 1), saved.output
    manifest = json.loads((target / "bundle.json").read_text())
    assert manifest["format"] == "convdiff-bundle" and manifest["version"] == 3 and manifest["complete"] is True
    for entry in manifest["cases"]:
        assert {"kind", "atol", "rtol", "equal_nan"} <= set(entry["rule"])
        assert entry["options"]["tolerance"] in ("bound", "elementwise") and entry["options"]["bound_form"]
    replay = invoke(cli_runner, ["run", str(target), "--format", "json"])
    assert replay.exit_code == 0, replay.output
    cases = json.loads(replay.output)["cases"]
    assert [c["verdict"] for c in cases] == [e["verdict"] for e in manifest["cases"]]
    assert [c["tolerance_mode"] for c in cases] == [e["rule"]["kind"] for e in manifest["cases"]]


def test_replay_does_not_read_the_weights_file_again(cli_runner, tmp_path):
    weights = tmp_path / "w.npy"
    np.save(weights, np.random.default_rng(0).standard_normal((3, 3, 3, 2)).astype(np.float32))
    target = tmp_path / "b"
    args = ["compare", "--reference", "numpy", "--candidate", "nn", "--shape", "1,9,9,3", "--weights", str(weights)]
    assert invoke(cli_runner, [*args, "--save-bundle", str(target)]).exit_code == 0
    weights.unlink()  # the bundle is self-contained: its saved kernels are what replays
    result = invoke(cli_runner, ["run", str(target)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [
    ["--rank", "1", "--shape", "2,17,4", "--groups", "4", "--filters", "8", "--kernel-size", "4"],
    ["--shape", "1,5,6,3", "--transposed", "--strides", "2", "--padding", "1", "--output-padding", "1"],
    ["--rank", "3", "--shape", "1,4,5,6,2", "--data-format", "channels_first"],
])
def test_bundles_of_every_kind_replay(cli_runner, tmp_path, args):
    target = tmp_path / "kind"
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "torch", *args, "--save-bundle",
                                 str(target), "--format", "json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads((target / "bundle.json").read_text())["cases"]
    spec = json.loads(result.output)["comparisons"][0]["spec"]
    for key in ("rank", "groups", "transposed", "output_padding", "data_format", "convention"):
        assert entry["reference"]["spec"][key] == spec[key]
    replay = invoke(cli_runner, ["run", str(target), "--format", "json"])
    assert replay.exit_code == 0, replay.output
    (case,) = json.loads(replay.output)["cases"]
    assert case["as_expected"] and case["spec"] == spec
