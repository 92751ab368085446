"""`convdiff models` through the command line: exit codes, the table, JSON, figure and report, and bad input
as one line (exit 2). The model files are the small CNN's examples (a Keras file and its ONNX ports)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.suites.builtin import small_cnn as sc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {k: str(v) for k, v in sc.write_example_models(directory).items()}


def invoke(runner, *args):
    return runner.invoke(cli, ["models", *args])


def test_a_correct_onnx_port_exits_0(cli_runner, files):
    result = invoke(cli_runner, files["keras"], files["onnx"], "--input", files["input"])
    assert result.exit_code == 0, result.output
    assert "equivalent: all 4 paired layers within their rounding bounds" in result.output
    for layer, port in sc.PORT_NAMES.items():
        assert layer in result.output and port in result.output


def test_a_mistaken_port_exits_1_naming_the_layer_and_the_fix(cli_runner, files):
    result = invoke(cli_runner, files["keras"], files["onnx_symmetric_pad"], "--input", files["input"])
    assert result.exit_code == 1, result.output
    assert "first divergence: c1 -> stem: candidate pads (1, 1) where the reference pads (0, 1)" in result.output


def test_json_has_layers_and_first_divergence(cli_runner, files):
    result = invoke(cli_runner, files["keras_h5"], files["onnx_symmetric_pad"], "--input", files["input"],
                    "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert [layer["reference_layer"] for layer in doc["layers"]] == list(sc.KERAS_LAYERS)
    first = doc["first_divergence"]
    assert (first["reference_layer"], first["candidate_layer"], first["cause"]) == ("c1", "stem", "padding")
    assert first["added_error_ratio"] > 1 and first["diagnosis"]
    assert doc["pairing"][0]["paired_by"] == "weights"


def test_quiet_prints_the_verdict_line_only(cli_runner, files):
    result = invoke(cli_runner, files["keras"], files["onnx"], "--input", files["input"], "-q")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("equivalent:")


def test_figure_and_report_are_written(cli_runner, files, tmp_path):
    figure, report = tmp_path / "growth.png", tmp_path / "r.html"
    result = invoke(cli_runner, files["keras"], files["onnx_symmetric_pad"], "--input", files["input"],
                    "--figure", str(figure), "--report", str(report))
    assert result.exit_code == 1, result.output
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = report.read_text()
    assert "first divergence" in page and "data:image/svg+xml;base64," in page


def test_input_layout_per_side(cli_runner, files, tmp_path):
    nchw = tmp_path / "x_nchw.npy"
    np.save(nchw, np.moveaxis(np.load(files["input"]), -1, 1))
    ok = invoke(cli_runner, files["keras"], files["onnx"], "--input", str(nchw), "--input-layout", "NCHW")
    assert ok.exit_code == 0, ok.output
    bad = invoke(cli_runner, files["keras"], files["onnx"], "--input", files["input"],
                 "--input-layout", "candidate=NHWC")
    assert bad.exit_code == 2 and "the candidate model takes input" in bad.output


@pytest.mark.parametrize("args, message", [
    (["missing.keras", "ONNX", "--input", "X"], "missing.keras"),
    (["KERAS", "model.pt", "--input", "X"], "never runs"),
    (["KERAS", "ONNX", "--input", "missing.npy"], "missing.npy"),
    (["KERAS", "ONNX", "--input", "X", "--pair", "c1"], "REFERENCE_LAYER=CANDIDATE_LAYER"),
    (["KERAS", "ONNX", "--input", "X", "--pair", "c1=nope"], "no convolution layer 'nope'"),
    (["KERAS", "ONNX", "--input", "X", "--input-layout", "side=NHWC"], "reference or candidate"),
    (["KERAS", "ONNX", "--input", "X", "--max-memory", "1KB"], "above the limit"),
    (["KERAS", "ONNX", "--input", "X", "--atol", "1"], "together"),
    (["KERAS", "ONNX", "--input", "X", "--figure", "f.jpg"], "extension"),
])
def test_bad_input_is_one_line_exit_2(cli_runner, files, tmp_path, args, message):
    names = {"KERAS": files["keras"], "ONNX": files["onnx"], "X": files["input"]}
    args = [names.get(a, str(tmp_path / a) if a.endswith((".keras", ".pt", ".npy")) else a) for a in args]
    (tmp_path / "model.pt").write_bytes(b"\x80\x02}q\x00.")
    result = invoke(cli_runner, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_model_pair_with_no_pairable_layers_is_exit_2(cli_runner, files, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((5, 3, 2, 2), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="other")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = invoke(cli_runner, files["keras"], str(path), "--input", files["input"])
    assert result.exit_code == 2, result.output
    assert "no pairable convolution layers" in result.output


def test_spill_keeps_the_activations_on_disk_with_the_same_verdict(cli_runner, files):
    result = invoke(cli_runner, files["keras"], files["onnx_symmetric_pad"], "--input", files["input"], "--spill",
                    "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["spilled"] is True and doc["first_divergence"]["reference_layer"] == "c1"
    kept = invoke(cli_runner, files["keras"], files["onnx"], "--input", files["input"], "--no-spill", "--format", "json")
    assert kept.exit_code == 0 and json.loads(kept.stdout)["spilled"] is False
