"""The ONNX Runtime, JAX and Flax backends through the command line: the spec fields only they read, set with
--set, and paddings the other backends refuse."""

import json

from convdiff.cli import cli

SMALL = ["--shape", "1,8,8,3", "--strides", "2", "--filters", "4"]


def test_ort_optimization_is_set_per_side_and_reported(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "nn", "--candidate", "onnxruntime", *SMALL,
                                     "--set", "candidate.ort_optimization=all", "--format", "json"])
    assert result.exit_code == 0, result.output
    case = json.loads(result.stdout)["comparisons"][0]
    assert case["spec"]["ort_optimization"] == "disabled"  # the reference side's spec
    notes = " ".join(case["candidate"]["notes"])
    assert "graph optimisation ORT_ENABLE_ALL" in notes and "auto_pad=SAME_UPPER" in notes


def test_ort_optimization_is_disabled_by_default(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "onnxruntime", *SMALL,
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "ORT_DISABLE_ALL" in " ".join(json.loads(result.stdout)["comparisons"][0]["candidate"]["notes"])


def test_an_unknown_ort_optimization_is_a_usage_error(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--candidate", "onnxruntime", *SMALL,
                                     "--set", "candidate.ort_optimization=fastest"])
    assert result.exit_code == 2
    assert "unknown ort_optimization 'fastest'" in result.output


def test_same_lower_runs_where_it_exists_and_is_refused_with_the_pads_elsewhere(cli_runner):
    ok = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "jax", *SMALL,
                                 "--padding", "same_lower"])
    assert ok.exit_code == 0, ok.output
    refused = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "torch", *SMALL,
                                      "--padding", "same_lower"])
    assert refused.exit_code == 2
    assert "backend 'torch' has no SAME_LOWER padding" in refused.output and "--padding 1,0,1,0" in refused.output


def test_flax_default_transposed_kernel_is_a_named_mismatch(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "torch", "--candidate", "flax", "--transposed",
                                     "--shape", "1,5,6,3", "--kernel-size", "3,2", "--strides", "2", "--padding",
                                     "valid", "--set", "candidate.transpose_kernel=false", "--format", "json"])
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["comparisons"][0]["diagnosis"]
    assert [f["cause"] for f in findings if f["confirmed"]] == ["kernel_not_flipped"]
