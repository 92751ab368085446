"""`convdiff layers`, `--weights FILE#LAYER` and `--from FILE#LAYER` from the command line and experiment
files, on the Caffe files convdiff ships."""

from __future__ import annotations

import json
import shutil
from importlib import resources

import pytest

from convdiff.cli import cli

BUILTIN = resources.files("convdiff.suites.builtin")


@pytest.fixture
def caffe_files(tmp_path, monkeypatch):
    for name in ("caffe-conv1.prototxt", "caffe-conv1.caffemodel"):
        shutil.copy(str(BUILTIN / name), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_layers_table_of_a_prototxt(cli_runner, caffe_files):
    result = cli_runner.invoke(cli, ["layers", "caffe-conv1.prototxt"])
    assert result.exit_code == 0, result.output
    assert lines(result.output) == [
        "Caffe: caffe-conv1.prototxt",
        " layer ┃ kind      ┃ type        ┃ kernel        ┃ bias ┃ strides ┃ padding ┃ dilation ┃ groups ┃ input",
        "━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━",
        " conv1 │ conv      │ Convolution │ 96x1x5x5 OIHW │ 96   │ 1,1     │ 2       │ 1,1      │ 1      │ 1x128x128x1",
        "kernel: the shape as stored, and its layout (O out, I in, M depth multiplier, D/H/W spatial); input: NHWC, "
        "when the file",
        "declares it",
        "note: this file describes layers without their weights: --from takes the configuration, --weights needs the "
        "file that",
        "holds them (a .caffemodel)",
    ]


def test_layers_json_of_a_caffemodel(cli_runner, caffe_files):
    result = cli_runner.invoke(cli, ["layers", "caffe-conv1.caffemodel", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["schema"], doc["file"], doc["format"]) == (1, "caffe-conv1.caffemodel", "caffe")
    (conv1,) = doc["layers"]
    assert conv1 == {
        "name": "conv1", "kind": "conv", "rank": 2, "framework": "Caffe", "op": "Convolution",
        "kernel_shape": [96, 1, 5, 5], "kernel_layout": "OIHW", "bias_shape": [96], "in_channels": 1,
        "filters": 96, "kernel_size": [5, 5], "strides": [1, 1], "padding": [[2, 2], [2, 2]], "dilation": [1, 1],
        "groups": 1, "use_bias": True, "output_padding": None, "data_format": "channels_first",
        "input_shape": [1, 128, 128, 1], "has_weights": True, "notes": []}


@pytest.mark.parametrize("args, message", [
    (["layers", "missing.onnx"], "ONNX file 'missing.onnx' not found"),
    (["layers", "weights.npz"], "is not a model file convdiff reads"),
    (["layers", "."], "is not a model file"),
    (["compare", "--from", "caffe-conv1.caffemodel#conv9"],
     "no convolution layer 'conv9' in caffe-conv1.caffemodel (convolution layers: conv1)"),
    (["compare", "--weights", "caffe-conv1.caffemodel#relu1"],
     "layer 'relu1' of caffe-conv1.caffemodel is not a convolution (a ReLU layer; convolution layers: conv1)"),
    (["compare", "--weights", "caffe-conv1.caffemodel"],
     "is a model file: name one of its layers as caffe-conv1.caffemodel#LAYER (convolution layers: conv1)"),
    (["compare", "--weights", "caffe-conv1.prototxt#conv1"], "holds no weights"),
    (["compare", "--from", "caffe-conv1.caffemodel"], "expected FILE#LAYER of a model file"),
    (["compare", "--from", "caffe-conv1.caffemodel#conv1", "--padding", "same"],
     "padding same disagrees with --from caffe-conv1.caffemodel#conv1, whose layer has padding 2"),
    (["compare", "--from", "caffe-conv1.caffemodel#conv1", "--filters", "64"],
     "filters 64 disagrees with --from caffe-conv1.caffemodel#conv1, whose layer has filters 96"),
    (["compare", "--from", "caffe-conv1.caffemodel#conv1", "--no-bias"],
     "use_bias false disagrees with --from caffe-conv1.caffemodel#conv1, whose layer has use_bias true"),
    (["compare", "--weights", "caffe-conv1.caffemodel#conv1", "--shape", "1,8,8,3"],
     "has 1 input channel(s), the input has 3"),
])
def test_bad_layer_references_are_one_line_exit_2(cli_runner, caffe_files, args, message):
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("convdiff: error: ") and result.output.count("\n") == 1, result.output
    assert message in result.output


def test_the_seed_caffe_workflow_from_files(cli_runner, caffe_files):
    """Caffe's own semantics from the caffemodel against the TensorFlow port with SAME: equivalent, and
    the input shape is the one the net declares."""
    result = cli_runner.invoke(cli, ["compare", "--from", "caffe-conv1.caffemodel#conv1", "--reference", "caffe",
                                     "--candidate", "nn", "--set", "candidate.padding=same", "--input", "image",
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["comparisons"][0]
    assert doc["verdict"] == "equivalent" and doc["kernels_identical"]
    assert doc["reference"]["spec"]["padding"] == [[2, 2], [2, 2]] and doc["candidate"]["spec"]["padding"] == "same"
    assert doc["spec"]["input_shape"] == [1, 128, 128, 1]
    # The bare np.transpose port: H and W swapped, diagnosed by name.
    result = cli_runner.invoke(cli, ["compare", "--from", "caffe-conv1.caffemodel#conv1", "--reference", "caffe",
                                     "--candidate", "nn", "--set", "candidate.padding=same", "--set",
                                     "candidate.weights_layout=OIWH", "--input", "image", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)["comparisons"][0]
    diagnosis = {d["cause"]: d["confirmed"] for d in doc["diagnosis"]}
    assert diagnosis["kernel_transposed_hw"] and not diagnosis["padding"]
    assert any("stored OIHW, read as OIWH (weights_layout)): OIWH -> HWIO: transpose(3, 2, 1, 0)" in n
               for n in doc["candidate"]["notes"])


def test_a_file_without_convolutions(cli_runner, tmp_path):
    (tmp_path / "relu.prototxt").write_text('layer { name: "relu" type: "ReLU" bottom: "x" top: "x" }\n')
    result = cli_runner.invoke(cli, ["layers", str(tmp_path / "relu.prototxt")])
    assert result.exit_code == 0 and "no convolution layers" in result.output, result.output
    result = cli_runner.invoke(cli, ["compare", "--weights", f"{tmp_path / 'relu.prototxt'}#relu"])
    assert result.exit_code == 2 and "convolution layers: none" in result.output, result.output


def test_configuration_from_the_prototxt_weights_from_the_caffemodel(cli_runner, caffe_files):
    result = cli_runner.invoke(cli, ["compare", "--from", "caffe-conv1.prototxt#conv1", "--weights",
                                     "caffe-conv1.caffemodel#conv1", "--reference", "caffe", "--candidate", "numpy",
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["comparisons"][0]
    assert doc["spec"]["weights"] == "caffe-conv1.caffemodel#conv1" and doc["spec"]["pads"] == [[2, 2], [2, 2]]


def test_from_in_an_experiment_file(cli_runner, caffe_files):
    (caffe_files / "port.toml").write_text(
        '[spec]\ninput = "image"\nfrom = "caffe-conv1.caffemodel#conv1"\n'
        '[[case]]\nname = "pad2"\nexpect = "equivalent"\nreference = "caffe"\n'
        '[case.candidate]\nbackend = "nn"\npadding = "same"\n'            # a side's own field may differ
        '[[case]]\nname = "stride"\nexpect = "equivalent"\nreference = "caffe"\ncandidate = "nn"\nstrides = 2\n')
    result = cli_runner.invoke(cli, ["run", "port.toml"])
    assert result.exit_code == 2, result.output  # the shared stride 2 disagrees with the file's 1
    assert "case 'stride'" in result.output and "strides 2,2 disagrees with --from" in result.output
    first_case_only = (caffe_files / "port.toml").read_text().split('[[case]]\nname = "stride"')[0]
    (caffe_files / "port.toml").write_text(first_case_only)
    result = cli_runner.invoke(cli, ["run", "port.toml", "--format", "json"])
    assert result.exit_code == 0, result.output
    (case,) = json.loads(result.output)["cases"]
    assert case["reference"]["spec"]["input_shape"] == [1, 128, 128, 1] and case["verdict"] == "equivalent"


def test_from_must_be_a_string_in_experiment_files(cli_runner, caffe_files):
    (caffe_files / "port.toml").write_text('[[case]]\nname = "x"\nexpect = "equivalent"\ncandidate = "nn"\nfrom = 3\n')
    result = cli_runner.invoke(cli, ["run", "port.toml"])
    assert result.exit_code == 2 and "'from' must be a string FILE#LAYER" in result.output, result.output
