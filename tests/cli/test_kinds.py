"""The options of the other kinds through the command line: --rank, --groups, --transposed, --output-padding,
--data-format, --convention, as compare options, --set fields, TOML keys and sweep axes (all from the one
field table), and what a backend cannot express refused with one line (exit 2)."""

import json

import pytest

from convdiff.cli import cli
from convdiff.spec.fields import BY_NAME
from convdiff.suites.sweep import AXIS_ORDER

NEW_FIELDS = ("rank", "groups", "transposed", "output_padding", "data_format", "convention")


def comparison(result):
    return json.loads(result.output)["comparisons"][0]


@pytest.mark.parametrize("name", NEW_FIELDS)
def test_every_new_field_is_an_option_a_key_and_a_sweep_axis(name):
    field = BY_NAME[name]
    assert field.flags == ("--" + name.replace("_", "-"),) and field.sweep_flag == field.flags[0]
    assert name in AXIS_ORDER


@pytest.mark.parametrize(
    ("args", "spec"),
    [
        (["--rank", "1", "--shape", "2,33,3", "--kernel-size", "4"],
         {"rank": 1, "input_shape": [2, 33, 3], "kernel_size": [4], "pads": [[1, 2]], "output_shape": [2, 33, 8]}),
        (["--rank", "3", "--shape", "1,4,6,6,2", "--filters", "3", "--padding", "1,0,1"],
         {"rank": 3, "kernel_size": [3, 3, 3], "pads": [[1, 1], [0, 0], [1, 1]], "output_shape": [1, 4, 4, 6, 3]}),
        (["--shape", "1,8,8,4", "--groups", "4", "--filters", "8"],
         {"groups": 4, "output_shape": [1, 8, 8, 8]}),
        (["--shape", "1,5,6,3", "--transposed", "--strides", "2", "--padding", "valid", "--output-padding", "1"],
         {"transposed": True, "output_padding": [1, 1], "weights_layout": "HWOI", "output_shape": [1, 12, 14, 8]}),
        (["--shape", "1,8,9,3", "--data-format", "channels_first"], {"data_format": "channels_first"}),
    ],
)
def test_new_options_build_the_spec_and_agree_with_the_reference(cli_runner, args, spec):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = comparison(result)
    for key, value in spec.items():
        assert doc["spec"][key] == value, key
    assert doc["verdict"] in ("identical", "equivalent")


def test_true_convolution_against_scipy_convolve(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "scipy", "--convention",
                                     "convolution", "--shape", "1,7,8,2", "--filters", "3", "--dtype", "float64",
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    assert comparison(result)["spec"]["convention"] == "convolution"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate", "nn", "--convention", "convolution"], "backend 'nn' computes cross-correlation only"),
        (["--candidate", "torch", "--transposed", "--strides", "2"], "backend 'torch' has no SAME for transposed"),
        (["--candidate", "nn", "--rank", "3", "--shape", "1,4,6,6,4", "--groups", "2"],
         "backend 'nn' cannot build grouped (groups=2) rank-3 convolutions"),
        (["--candidate", "nn", "--transposed", "--dilation", "2", "--padding", "valid"],
         "cannot build transposed convolutions with dilation"),
        (["--candidate", "caffe", "--transposed", "--padding", "valid", "--strides", "2", "--output-padding", "1"],
         "backend 'caffe' has no output_padding"),
        (["--candidate", "scipy", "--dtype", "float16"], "backend 'scipy' computes in float32 or float64"),
        (["--groups", "2", "--shape", "1,8,8,3"], "groups 2 must divide the input channels (3)"),
        (["--output-padding", "1"], "output padding applies to transposed convolutions only"),
        (["--rank", "2", "--shape", "1,4,8,8,3"], "malformed input shape '1,4,8,8,3'"),
        (["--rank", "5"], "rank must be 1, 2 or 3"),
        (["--data-format", "nchw"], "unknown data format 'nchw'"),
    ],
)
def test_what_cannot_be_expressed_is_one_line_exit_2(cli_runner, args, message):
    base = ["compare", "--reference", "numpy", "--shape", "1,8,8,4"]
    result = cli_runner.invoke(cli, [*base, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_channels_first_is_refused_before_running_without_onednn(cli_runner, monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "keras", "--data-format",
                                     "channels_first", "--shape", "1,8,8,3"])
    assert result.exit_code == 2, result.output
    assert "TensorFlow's CPU convolutions support NCHW only through oneDNN" in result.output


def test_set_changes_one_side_of_a_new_field(cli_runner):
    # A grouped candidate on a dense reference: the kernel shapes differ, so each side draws its own.
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "torch", "--shape", "1,8,8,4",
                                     "--filters", "4", "--set", "candidate.groups=4", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = comparison(result)
    assert doc["candidate"]["spec"]["groups"] == 4 and doc["reference"]["spec"]["groups"] == 1
    assert doc["candidate"]["kernel_shape"] == [3, 3, 1, 4]


def test_sweep_over_rank_and_groups(cli_runner):
    result = cli_runner.invoke(cli, ["sweep", "--reference", "numpy", "--candidate", "torch", "--rank", "1,2,3",
                                     "--groups", "1,2", "--channels", "4", "--input-size", "6", "--padding", "1",
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["summary"]["passed"] == 6
    shapes = {(c["params"]["rank"], tuple(c["spec"]["input_shape"])) for c in doc["configs"]}
    assert shapes == {("1", (1, 6, 4)), ("2", (1, 6, 6, 4)), ("3", (1, 6, 6, 6, 4))}


def test_sweep_skips_what_a_backend_cannot_express(cli_runner):
    result = cli_runner.invoke(cli, ["sweep", "--reference", "numpy", "--candidate", "nn", "--transposed", "true,false",
                                     "--dilation", "1,2", "--padding", "valid", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["summary"]["skipped"] == 1 and "dilation" in doc["skipped"][0]["reason"]


def test_list_shows_what_each_backend_supports(cli_runner):
    result = cli_runner.invoke(cli, ["list"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "supports" in text and "true convolution" in text and "channels_first" in text
    assert "scipy" in text


def test_experiment_files_take_the_new_keys(cli_runner, tmp_path):
    path = tmp_path / "kinds.toml"
    path.write_text('[spec]\nrank = 1\ninput_shape = [2, 16, 4]\ngroups = 4\nfilters = 8\nkernel_size = 4\n'
                    '[[case]]\nname = "depthwise-1d"\nreference = "numpy"\ncandidate = "keras-call"\n'
                    'expect = "equivalent"\n'
                    '[[case]]\nname = "transposed"\ntransposed = true\ngroups = 1\nstrides = 2\npadding = "valid"\n'
                    'output_padding = [1]\nreference = "scipy"\ncandidate = "torch"\nexpect = "equivalent"\n',
                    encoding="utf-8")
    result = cli_runner.invoke(cli, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    cases = json.loads(result.output)["cases"]
    assert [c["as_expected"] for c in cases] == [True, True]
    assert cases[1]["spec"]["output_shape"] == [2, 35, 8]  # (16 - 1) * 2 + 4 + 1


@pytest.mark.parametrize(("rank", "layout", "stored", "shape"), [
    (1, "NCW", (2, 3, 20), [2, 20, 3]),
    (1, "WC", (20, 3), [1, 20, 3]),
    (3, "NCDHW", (1, 2, 4, 5, 6), [1, 4, 5, 6, 2]),
])
def test_input_files_of_other_ranks_take_their_layout(cli_runner, tmp_path, rank, layout, stored, shape):
    import numpy as np

    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random(stored))
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "scipy", "--rank", str(rank),
                                     "--input", str(path), "--input-layout", layout, "--filters", "2",
                                     "--format", "json"])
    assert result.exit_code == 0, result.output
    assert comparison(result)["spec"]["input_shape"] == shape


def test_an_input_layout_of_another_rank_is_refused(cli_runner, tmp_path):
    import numpy as np

    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 3, 8, 8)))
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "scipy", "--rank", "1",
                                     "--input", str(path), "--input-layout", "NCHW"])
    assert result.exit_code == 2 and "input layout NCHW has 2 spatial axes, the spec has rank 1" in result.output
