"""Recorded outputs from the command line: `compare --reference-output/--candidate-output`, `diff A B`,
and NCHW input files recognised. Real frameworks (tf.nn, the Caffe backend); every file is made here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convdiff.cli import cli


def assert_one_line_error(result, fragment: str) -> None:
    """Exit 2 and ONE line naming the problem (as tests/cli/test_bad_inputs.py checks every bad input)."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convdiff: error: "), result.output
    assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An NHWC input, Caffe-layout (OIHW) weights with a bias, and conv1's output as caffe.Net dumps it:
    the Caffe backend in float32, pad 1 (TF SAME for a 3x3 kernel at stride 1), saved NCHW."""
    from convdiff.backends.base import Weights
    from convdiff.backends.caffe import CaffeBackend
    from convdiff.data.specs import build_spec
    from convdiff.spec.fields import parse_fields

    d = tmp_path_factory.mktemp("recorded")
    rng = np.random.default_rng(7)
    np.save(d / "x.npy", rng.random((1, 10, 10, 2)).astype(np.float32))
    kernel = rng.uniform(-0.5, 0.5, (4, 2, 3, 3)).astype(np.float32)  # OIHW, as Caffe stores it
    bias = np.full(4, 0.1, np.float32)
    np.savez(d / "w.npz", kernel=kernel, bias=bias)
    spec = build_spec(parse_fields({"input": str(d / "x.npy"), "filters": 4, "kernel_size": 3, "padding": 1}))
    from convdiff.data.inputs import make_input

    y = CaffeBackend().run(spec, make_input(spec), Weights(kernel.transpose(2, 3, 1, 0).copy(), bias)).output
    np.save(d / "y_nchw.npy", y.transpose(0, 3, 1, 2))
    np.save(d / "y.npy", y)
    off = y.copy()
    off[0, 2:4, 5:7, :] += 0.05  # a 2x2 patch off by far more than rounding
    np.save(d / "y_off.npy", off)
    np.savez(d / "both.npz", good=y, off=off)
    return d


def _known(d) -> list[str]:
    return ["--input", str(d / "x.npy"), "--weights", str(d / "w.npz"), "--weights-layout", "OIHW", "--bias"]


def _json(result) -> dict:
    return json.loads(result.output)["comparisons"][0]


def test_port_against_recorded_blob_is_decided_by_the_bound(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--candidate", "nn", "--reference-output", str(files / "y_nchw.npy"),
                                     "--output-layout", "NCHW", "--padding", "same", *_known(files), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["tolerance_mode"] == "bound" and doc["verdict"] in ("identical", "equivalent")
    assert doc["not_possible"] == [] and doc["kernels"]["verdict"] == "identical"
    assert doc["reference"]["name"] == "recorded"
    assert doc["reference"]["recorded"] == {"source": str(files / "y_nchw.npy"), "layout": "NCHW",
                                            "file_shape": [1, 4, 10, 10]}
    assert doc["candidate"]["recorded"] is None


def test_wrong_port_against_recorded_blob_is_diagnosed(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--candidate", "nn", "--reference-output", str(files / "y_nchw.npy"),
                                     "--output-layout", "NCHW", "--padding", "same", *_known(files),
                                     "--set", "candidate.weights_layout=OIWH", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = _json(result)
    confirmed = [f["cause"] for f in doc["diagnosis"] if f["confirmed"]]
    assert "kernel_transposed_hw" in confirmed and doc["tolerance_mode"] == "bound"


def test_recorded_candidate_regions_and_diagnosis(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--reference", "caffe", "--candidate-output", str(files / "y_off.npy"),
                                     "--padding", "1", *_known(files), "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = _json(result)
    assert doc["mismatched"] == 2 * 2 * 4 and doc["mismatch_regions"] is not None
    assert doc["diagnosis"] and not any(f["confirmed"] for f in doc["diagnosis"] if f["cause"] == "padding")


def test_without_input_and_weights_the_checks_not_possible_are_named(cli_runner, files):
    args = ["compare", "--candidate-output", str(files / "y.npy"), "--shape", "1,10,10,2", "--filters", "4",
            "--padding", "same"]
    text = cli_runner.invoke(cli, args)
    assert text.exit_code == 1  # a seeded random kernel is not the recording's
    assert "not possible: rounding-bound verdict: it needs the input (--input FILE) and the weights" in text.output
    doc = _json(cli_runner.invoke(cli, [*args, "--format", "json"]))
    assert doc["tolerance_mode"] == "elementwise" and len(doc["not_possible"]) == 4
    assert doc["diagnosis"] == [] and doc["reference_error"] is None
    assert_one_line_error(cli_runner.invoke(cli, [*args, "--tolerance", "bound"]), "--tolerance bound is not possible")


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--reference-output", "y_nchw.npy"], "looks like the expected output in NCHW (give --output-layout NCHW)"),
    (["--reference-output", "both.npz"], "holds 2 arrays (good, off): name one as"),
    (["--reference-output", "missing.npy"], "not found"),
    (["--reference-output", "y.npy", "--reference", "caffe"], "give --reference or --reference-output, not both"),
    (["--reference-output", "y.npy", "--candidate-output", "y.npy"], "compare them with `convdiff diff A B`"),
    (["--output-layout", "NCHW"], "--output-layout describes a recorded output"),
    (["--reference-output", "y.npy", "--shared-kernel"], "--shared-kernel needs two backends"),
])
def test_bad_recorded_arguments(cli_runner, files, extra, fragment):
    extra = [str(files / e) if e.endswith((".npy", ".npz")) else e for e in extra]
    result = cli_runner.invoke(cli, ["compare", "--candidate", "nn", "--padding", "same", *_known(files), *extra])
    assert_one_line_error(result, fragment)


def test_truncated_recorded_output_is_one_line(cli_runner, files, tmp_path):
    (tmp_path / "t.npy").write_bytes((files / "y.npy").read_bytes()[:-40])
    result = cli_runner.invoke(cli, ["compare", "--candidate", "nn", "--reference-output", str(tmp_path / "t.npy"),
                                     *_known(files)])
    assert_one_line_error(result, "truncated or corrupt")


def test_diff_of_two_files(cli_runner, files):
    same = cli_runner.invoke(cli, ["diff", str(files / "y.npy"), str(files / "both.npz#good"), "-q"])
    assert same.exit_code == 0 and same.output.startswith("identical")
    off = cli_runner.invoke(cli, ["diff", str(files / "y.npy"), str(files / "y_off.npy"), "--format", "json"])
    assert off.exit_code == 1
    doc = _json(off)
    assert doc["mismatched"] == 16 and doc["tolerance_mode"] == "elementwise" and doc["not_possible"]
    assert doc["mismatch_regions"]["summary"]


def test_diff_names_the_layout_transpose(cli_runner, files):
    result = cli_runner.invoke(cli, ["diff", str(files / "y.npy"), str(files / "y_nchw.npy")])
    assert_one_line_error(result, "y_nchw.npy looks like " + str(files / "y.npy") + " in NCHW (give --candidate-layout "
                                  "NCHW)")
    fixed = cli_runner.invoke(cli, ["diff", str(files / "y.npy"), str(files / "y_nchw.npy"), "--candidate-layout", "NCHW"])
    assert fixed.exit_code == 0, fixed.output


def test_diff_with_input_and_weights_runs_the_bound_and_diagnosis(cli_runner, files):
    args = ["diff", str(files / "y.npy"), str(files / "y_off.npy"), "--padding", "1", *_known(files)]
    doc = _json(cli_runner.invoke(cli, [*args, "--format", "json"]))
    assert doc["tolerance_mode"] == "bound" and doc["not_possible"] == [] and doc["diagnosis"]
    assert cli_runner.invoke(cli, ["diff", str(files / "y.npy"), str(files / "y.npy"), "--padding", "1",
                                   *_known(files), "-q"]).exit_code == 0


def test_nchw_input_file_is_recognised(cli_runner, tmp_path):
    x = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)  # RGB 16x16, NCHW
    np.save(tmp_path / "x.npy", x)
    result = cli_runner.invoke(cli, ["compare", "--input", str(tmp_path / "x.npy")])
    assert_one_line_error(result, "looks like NCHW (3 channel(s) of 16x16): give --input-layout NCHW")
    # Weights with 3 input channels say so too; with 16 they say it is NHWC after all.
    np.save(tmp_path / "w3.npy", np.ones((3, 3, 3, 2), np.float32))
    np.save(tmp_path / "w16.npy", np.ones((3, 3, 16, 2), np.float32))
    result = cli_runner.invoke(cli, ["compare", "--input", str(tmp_path / "x.npy"), "--weights", str(tmp_path / "w3.npy")])
    assert_one_line_error(result, "as NCHW 3: give --input-layout NCHW")
    for args in (["--input-layout", "NCHW"], ["--input-layout", "NHWC"], ["--weights", str(tmp_path / "w16.npy")]):
        ok = cli_runner.invoke(cli, ["compare", "--candidate", "nn", "--input", str(tmp_path / "x.npy"), *args, "-q"])
        assert ok.exit_code == 0, (args, ok.output)


def test_experiment_side_table_takes_a_recorded_output(cli_runner, files):
    (files / "rec.toml").write_text("""
[spec]
input = "x.npy"
weights = "w.npz"
weights_layout = "OIHW"
padding = 1

[[case]]
name = "recorded"
expect = "equivalent"
expect_kernels = "identical"
[case.reference]
output = "y_nchw.npy"
output_layout = "NCHW"
[case.candidate]
backend = "nn"
""")
    result = cli_runner.invoke(cli, ["run", str(files / "rec.toml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)["cases"][0]
    assert case["reference"]["name"] == "recorded" and case["tolerance_mode"] == "bound"
    (files / "bad.toml").write_text('[[case]]\nexpect = "equivalent"\n[case.reference]\nbackend = "nn"\n'
                                    'output = "y.npy"\n[case.candidate]\nbackend = "nn"\n')
    assert_one_line_error(cli_runner.invoke(cli, ["run", str(files / "bad.toml")]),
                          "give 'backend' or 'output' (a recorded output), not both")
