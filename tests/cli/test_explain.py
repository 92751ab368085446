"""`convdiff explain` through the CLI: the options it prints reproduce the recorded output, exit codes 0/1/2."""

import json
import pickle
import shlex

import numpy as np
import pytest

from convdiff.cli import cli
from explain_cases import CASES, filled, produce, write_files

# Every case whose semantic a spec can state (a doubled bias has no option).
REPRODUCIBLE = [c for c in CASES if c[3].get("bias") != "twice"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("explain-cli"))


def _explain_args(args, output_path, expected, paths):
    def value_of(option):
        return args[args.index(option) + 1] if option in args else None

    out = ["explain", "--input", value_of("--input"), "--weights", value_of("--weights"), "--output", output_path]
    bias = expected.get("bias_file", "{bias}" if value_of("--bias") else None)
    return out + (["--bias", bias.format(**paths)] if bias else [])


@pytest.mark.parametrize("name, backend, args, expected", REPRODUCIBLE, ids=[c[0] for c in REPRODUCIBLE])
def test_the_printed_options_reproduce_the_output(cli_runner, paths, tmp_path, name, backend, args, expected):
    args = filled(args, paths)
    recorded = produce(backend, args)
    output_path = str(tmp_path / "y.npy")
    np.save(output_path, recorded)
    result = cli_runner.invoke(cli, [*_explain_args(args, output_path, expected, paths), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["explained"] is True and doc["verdict"].startswith("EXPLAINED")
    assert doc["tried"] == len(doc["candidates"]) > 1
    options = doc["explanation"]["compare_options"]
    # The options run through compare's own path on the same backend give the recorded output, bit for bit.
    assert np.array_equal(produce(backend, options), recorded)
    # And compare accepts them: the backend against the float64 reference is equivalent.
    compared = cli_runner.invoke(cli, ["compare", *options, "--reference", "numpy", "--candidate", backend, "-q"])
    assert compared.exit_code == 0, compared.output


def test_the_table_names_the_explanation_and_its_options(cli_runner, paths, tmp_path):
    name, backend, args, expected = CASES[0]  # torch pad 1 stride 2, OIHW
    args = filled(args, paths)
    np.save(tmp_path / "y.npy", produce(backend, args))
    result = cli_runner.invoke(cli, _explain_args(args, str(tmp_path / "y.npy"), expected, paths),
                               )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines if not line.strip().startswith("/")) <= 120
    start = lines.index("reproduce with:")
    command = []
    for line in lines[start + 1:]:
        command.append(line.removesuffix(" \\"))
        if not line.endswith(" \\"):
            break
    assert shlex.split(" ".join(command)) == [
        "convdiff", "compare", "--input", paths["x"], "--weights", paths["w_oihw_npz"], "--weights-layout", "OIHW",
        "--strides", "2", "--padding", "1", "--dtype", "float32"]
    verdict = " ".join(" ".join(lines[start + 1 + len(command):]).split())
    assert verdict.startswith("EXPLAINED: input NHWC, kernel OIHW, correlation, strides 2, padding symmetric 1 "
                              "(= SAME_LOWER), bias once, float32 arithmetic")
    assert "variants tried" in verdict


def test_quiet_prints_the_verdict_line_and_report_writes_a_page(cli_runner, paths, tmp_path):
    name, backend, args, expected = CASES[2]  # tf.nn SAME stride 2
    args = filled(args, paths)
    np.save(tmp_path / "y.npy", produce(backend, args))
    base = _explain_args(args, str(tmp_path / "y.npy"), expected, paths)
    quiet = cli_runner.invoke(cli, [*base, "-q", "--report", str(tmp_path / "r.html")])
    assert quiet.exit_code == 0
    assert quiet.stdout.splitlines() == [quiet.stdout.strip()] and quiet.stdout.startswith("EXPLAINED: ")
    page = (tmp_path / "r.html").read_text()
    assert "TF SAME 0,1,0,1" in page and "<script" not in page


def test_an_nchw_output(cli_runner, paths, tmp_path):
    name, backend, args, expected = CASES[2]
    args = filled(args, paths)
    np.save(tmp_path / "y.npy", produce(backend, args).transpose(0, 3, 1, 2))
    base = _explain_args(args, str(tmp_path / "y.npy"), expected, paths)
    assert cli_runner.invoke(cli, [*base, "-q"]).exit_code == 1  # read as NHWC it fits nothing
    result = cli_runner.invoke(cli, [*base, "--output-layout", "NCHW", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["explanation"]["pads"] == [[0, 1], [0, 1]]


def test_hints_and_options_it_does_not_search(cli_runner, paths, tmp_path):
    name, backend, args, expected = CASES[2]
    args = filled(args, paths)
    np.save(tmp_path / "y.npy", produce(backend, args))
    base = _explain_args(args, str(tmp_path / "y.npy"), expected, paths)
    free = json.loads(cli_runner.invoke(cli, [*base, "--format", "json"]).output)
    hinted = cli_runner.invoke(cli, [*base, "--strides", "2", "--convention", "correlation", "--format", "json"])
    assert hinted.exit_code == 0
    assert json.loads(hinted.output)["tried"] < free["tried"]
    assert cli_runner.invoke(cli, [*base, "--padding", "valid", "-q"]).exit_code == 1
    refused = cli_runner.invoke(cli, [*base, "--seed", "3"])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("convdiff: error: explain does not search --seed")


def test_a_random_output_exits_1(cli_runner, paths, tmp_path):
    np.save(tmp_path / "y.npy", np.random.default_rng(3).random((1, 10, 10, 6)).astype(np.float32))
    result = cli_runner.invoke(cli, ["explain", "--input", paths["x"], "--weights", paths["w_hwio"], "--output",
                                     str(tmp_path / "y.npy"), "--bias", paths["bias"]])
    assert result.exit_code == 1
    assert "\nNOT EXPLAINED: none of " in result.stdout


def _bad_files(tmp_path, paths):
    good = tmp_path / "y.npy"
    np.save(good, np.zeros((1, 10, 10, 6), np.float32))
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:200])
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(pickle.dumps("not an array"))
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros((1, 10, 10, 6)), b=np.zeros((1, 10, 10, 6)))
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(6))
    x, w = paths["x"], paths["w_hwio"]
    return [
        (["--input", x, "--weights", w, "--output", str(tmp_path / "missing.npy")], "output file"),
        (["--input", x, "--weights", w, "--output", str(truncated)], "truncated or corrupt"),
        (["--input", x, "--weights", w, "--output", str(pickled)], "pickled objects"),
        (["--input", x, "--weights", w, "--output", str(garbage)], "pickled objects"),
        (["--input", x, "--weights", w, "--output", str(two)], "has no 'output' array"),
        (["--input", x, "--weights", w, "--output", str(flat)], "has rank 1"),
        (["--input", str(truncated), "--weights", w, "--output", str(good)], "truncated or corrupt"),
        (["--input", x, "--weights", str(pickled), "--output", str(good)], "pickled objects"),
        (["--input", "random", "--weights", w, "--output", str(good)], "needs --input as a .npy/.npz file"),
        (["--weights", w, "--output", str(good)], "needs --input"),
        (["--input", x, "--output", str(good)], "needs --weights"),
        (["--input", x, "--weights", w, "--output", str(good), "--output-layout", "NCHWX"], "unknown input layout"),
        (["--input", x, "--weights", w, "--output", str(good), "--bias", str(flat)], "the bias has 6 values") ,
        # hints the spec would refuse (a zero stride once divided the output size by zero)
        (["--input", x, "--weights", w, "--output", str(good), "--strides", "0"], "strides must be positive integers, got 0"),
        (["--input", x, "--weights", w, "--output", str(good), "--dilation", "1,0"], "dilation must be positive integers, got 1x0"),
        (["--input", x, "--weights", w, "--output", str(good), "--kernel-size", "0"], "kernel size must be positive integers, got 0"),
    ]


def test_bad_files_are_one_line_exit_2(cli_runner, paths, tmp_path):
    for args, message in _bad_files(tmp_path, paths):
        result = cli_runner.invoke(cli, ["explain", *args])
        if "--bias" in args:  # a fine bias for 6 channels: the output fits nothing here
            assert result.exit_code in (0, 1), (args, result.output)
            continue
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("convdiff: error: ") and message in result.stderr, (args, result.stderr)
