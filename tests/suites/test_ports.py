"""Ports from Caffe and PyTorch: weights and layouts from files, --set, the caffe and torch backends,
the caffe-port experiment. Real backends through CliRunner and the runner."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.pipeline import SideConfig
from convdiff.suites.runs import run_targets
from helpers import run_case
from convdiff.spec.convspec import ConvSpec, parse_padding

RNG = np.random.default_rng(5)


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


def comparison(result):
    return json.loads(result.output)["comparisons"][0]


@pytest.fixture
def oihw_npz(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, kernel=RNG.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32),
             bias=np.full(4, 0.1, np.float32))
    return str(path)


SMALL = ["--shape", "1,8,8,3"]


@pytest.mark.parametrize(("kernel", "size"), [((3, 3), 8), ((2, 2), 7), ((4, 3), 8)])
def test_torch_same_and_asymmetric_pads_match_tensorflow(kernel, size):
    for padding in ("same", "0,1,1,2"):
        spec = ConvSpec(input_shape=(1, size, size, 2), filters=3, kernel_size=kernel, padding=parse_padding(padding))
        assert run_case("t", SideConfig("nn", spec), SideConfig("torch", spec)).output


def test_caffe_output_size_is_floor():
    spec = ConvSpec(input_shape=(1, 8, 8, 1), filters=1, kernel_size=(3, 3), strides=(2, 2), padding=parse_padding("0"))
    result = run_case("floor", SideConfig("numpy", spec), SideConfig("caffe", spec))
    assert result.candidate.output.shape == (1, 3, 3, 1)  # floor((8 - 3) / 2) + 1
    assert any("transpose(3, 2, 0, 1)" in note for note in result.candidate.notes)


@pytest.mark.parametrize(("args", "message"), [
    (["--candidate", "caffe", "--padding", "same"], "Caffe's Convolution layer takes a symmetric pad"),
    (["--candidate", "caffe", "--padding", "0,1,0,1"], "pads symmetrically"),
    (["--candidate", "torch", "--padding", "same", "--strides", "2"], "refuses padding='same' with strides (2, 2)"),
])
def test_refusals_exit_2_with_one_line(cli_runner, args, message):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", *SMALL, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_torch_missing_exits_3_with_install_hint():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from convdiff.cli import cli\n"
        "cli(['compare', '--reference', 'numpy', '--candidate', 'torch', '--shape', '1,6,6,1'], prog_name='convdiff')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "pip install -e '.[torch]'" in proc.stderr and "Traceback" not in proc.stderr


# --- weights and layouts from files ---------------------------------------------------------------


def test_weights_file_in_oihw_feeds_every_backend(cli_runner, oihw_npz):
    result = invoke(cli_runner, ["compare", "--reference", "caffe", "--candidate", "nn", *SMALL, "--weights", oihw_npz,
                                 "--weights-layout", "OIHW", "--padding", "same", "--set", "reference.padding=1",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = comparison(result)
    assert doc["kernels_identical"]
    for side in ("reference", "candidate"):
        assert any("OIHW -> HWIO: transpose(2, 3, 1, 0)" in n for n in doc[side]["notes"])
    assert doc["reference"]["spec"]["padding"] == [[1, 1], [1, 1]] and doc["candidate"]["spec"]["padding"] == "same"
    assert doc["candidate"]["kernel_shape"] == [3, 3, 3, 4]
    assert doc["diagnosis"] == [] and doc["mismatch_regions"] is None


def test_wrong_weights_layout_on_one_side_is_diagnosed(cli_runner, oihw_npz):
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--weights", oihw_npz,
                                 "--weights-layout", "OIHW", "--set", "candidate.weights_layout=OIWH",
                                 "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = comparison(result)
    confirmed = {d["cause"] for d in doc["diagnosis"] if d["confirmed"]}
    assert "kernel_transposed_hw" in confirmed and "padding" not in confirmed
    assert {"cause", "confirmed", "residual", "detail", "bound_ratio", "same_as"} == set(doc["diagnosis"][0])
    assert doc["mismatch_regions"]["kind"] == "everywhere"


def test_bias_file_and_bias_flags(cli_runner, tmp_path, oihw_npz):
    bias = tmp_path / "b.npy"
    np.save(bias, np.arange(4, dtype=np.float32))
    base = ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--format", "json"]
    doc = comparison(invoke(cli_runner, [*base, "--weights", oihw_npz, "--weights-layout", "OIHW", "--bias", str(bias)]))
    assert doc["reference"]["spec"]["bias"] == str(bias) and doc["passed"]
    assert comparison(invoke(cli_runner, [*base, "--bias"]))["spec"]["use_bias"] is True  # the old flag still works
    assert comparison(invoke(cli_runner, [*base, "--no-bias"]))["spec"]["use_bias"] is False


def test_npz_input_in_nchw(cli_runner, tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, input=RNG.random((1, 2, 5, 6)).astype(np.float32))
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "torch", "--input", str(path),
                                 "--input-layout", "NCHW", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert comparison(result)["spec"]["input_shape"] == [1, 5, 6, 2]


def _save(tmp_path, name, **arrays):
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, **arrays)
    else:
        np.save(path, arrays["a"], allow_pickle=True)
    return str(path)


def test_bad_weight_files_exit_2_with_one_line(cli_runner, tmp_path):
    cases = [
        (_save(tmp_path, "rank3.npy", a=np.zeros((3, 3, 4))), "rank 3"),
        (_save(tmp_path, "nofit.npy", a=np.zeros((7, 6, 5, 4))), "fits no layout"),
        (_save(tmp_path, "keys.npz", weights=np.zeros((3, 3, 3, 2))), "keys found: weights"),
        (_save(tmp_path, "pickled.npy", a=np.array([{"a": 1}], dtype=object)), "pickled"),
        (_save(tmp_path, "pickled.npz", kernel=np.array([{"a": 1}], dtype=object)), "pickled"),
        (str(tmp_path / "missing.npz"), "not found"),
    ]
    for path, message in cases:
        result = cli_runner.invoke(cli, ["compare", *SMALL, "--weights", path])
        assert result.exit_code == 2, (path, result.output)
        assert message in result.output, (path, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_kernel_that_fits_another_layout_says_which(cli_runner, tmp_path):
    path = _save(tmp_path, "oihw.npy", a=np.zeros((4, 3, 3, 3)))
    result = cli_runner.invoke(cli, ["compare", *SMALL, "--weights", path])  # read as HWIO: C_in 3, fine
    assert result.exit_code in (0, 1)
    path = _save(tmp_path, "oihw2.npy", a=np.zeros((4, 3, 5, 5)))
    result = cli_runner.invoke(cli, ["compare", *SMALL, "--weights", path])
    assert result.exit_code == 2 and "layouts that fit: OIHW" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "candidate-padding=1"], "SIDE.FIELD=VALUE"),
    (["--set", "both.padding=1"], "SIDE.FIELD=VALUE"),
    (["--set", "candidate.colour=red"], "unknown spec field 'colour'"),
    (["--set", "candidate.padding=sideways"], "malformed padding"),
    (["--set", "reference.weights_layout=HWXO"], "unknown weights layout"),
    (["--bias", "b.npy"], "a bias file needs a weights file"),
    (["--input-layout", "NCWH"], "unknown input layout"),
])
def test_bad_set_and_layout_options_exit_2(cli_runner, args, message):
    result = cli_runner.invoke(cli, ["compare", *SMALL, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_set_changes_one_side_only(cli_runner):
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL,
                                 "--set", "candidate.padding=valid", "--format", "json"])
    assert result.exit_code == 1
    doc = comparison(result)
    assert doc["verdict"] == "shape_mismatch"
    assert doc["reference"]["spec"]["padding"] == "same" and doc["candidate"]["spec"]["padding"] == "valid"


def test_heatmap_png_is_written(cli_runner, tmp_path, oihw_npz):
    from convdiff.frameworks import import_tensorflow

    out = tmp_path / "heat.png"
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--weights", oihw_npz,
                                 "--weights-layout", "OIHW", "--set", "candidate.padding=0,2,1,1",
                                 "--heatmap", str(out)])
    assert result.exit_code == 1, result.output
    assert "Where the mismatches sit" in result.output and "Diagnosis" in result.output
    assert f"wrote the heatmap to {out}" in result.stderr
    image = import_tensorflow().io.decode_png(out.read_bytes()).numpy()
    assert image.ndim == 3 and min(image.shape[:2]) > 300 and image.max() == 255


# --- the caffe-port experiment -------------------------------------------------------------------


@pytest.fixture(scope="module")
def caffe_port(builtin_cases):
    return {case: o for (experiment, case), o in builtin_cases.items() if experiment == "caffe-port"}


def test_caffe_port_cases_come_out_as_expected(caffe_port):
    assert set(caffe_port) == {"correct-port", "wrong-transpose", "stride2-pad2-vs-same", "stride2-pad1-vs-same",
                               "recorded-correct-port", "recorded-wrong-transpose"}
    for name, outcome in caffe_port.items():
        assert outcome.as_expected, (name, outcome.got, outcome.confirmed_causes, outcome.regions_kind)


def test_caffe_port_figures(caffe_port):
    correct = caffe_port["correct-port"].result
    assert correct.output.reference_shape == (1, 128, 128, 96) and correct.kernels_identical
    wrong = caffe_port["wrong-transpose"]
    assert "kernel_transposed_hw" in wrong.confirmed_causes and "padding" not in wrong.confirmed_causes
    border = caffe_port["stride2-pad1-vs-same"].result.regions
    assert border.summary.startswith("mismatches confined to the last 1 row and the last 1 column")
    padding = {h.cause: h for h in caffe_port["stride2-pad2-vs-same"].result.diagnosis}["padding"]
    assert "reference pads rows (2, 2), columns (2, 2)" in padding.detail
    assert "candidate rows (1, 2), columns (1, 2)" in padding.detail


def test_shipped_caffe_files_are_reproducible():
    from importlib import resources

    from convdiff.suites.builtin.weights import caffe_conv1_files

    files = caffe_conv1_files()
    assert set(files) == {"caffe-conv1.prototxt", "caffe-conv1.caffemodel"}
    for name, data in files.items():
        assert (resources.files("convdiff.suites.builtin") / name).read_bytes() == data, name


def test_shipped_caffe_output_is_the_caffe_backends_blob():
    from importlib import resources

    from convdiff.suites.builtin.weights import CAFFE_OUTPUT, caffe_conv1_output

    shipped = np.load(resources.files("convdiff.suites.builtin") / CAFFE_OUTPUT, allow_pickle=False)
    assert shipped.shape == (1, 96, 128, 128) and shipped.dtype == np.float32  # NCHW, as caffe.Net holds it
    # float32 sums may round differently on another CPU: equal to the regenerated blob within rounding.
    np.testing.assert_allclose(shipped, caffe_conv1_output(), rtol=1e-5, atol=1e-6)


def test_caffe_port_against_the_recorded_blob(caffe_port):
    correct = caffe_port["recorded-correct-port"].result
    assert correct.reference_config.is_recorded and correct.reference_config.recorded.layout == "NCHW"
    assert correct.tolerance_mode.value == "bound" and correct.not_possible == () and correct.kernels_identical
    wrong = caffe_port["recorded-wrong-transpose"]
    assert "kernel_transposed_hw" in wrong.confirmed_causes and "padding" not in wrong.confirmed_causes


def test_shipped_caffemodel_holds_the_generated_weights():
    from importlib import resources

    from convdiff.data.modelfiles import read_layer, split_layer_ref
    from convdiff.suites.builtin.weights import caffe_conv1

    path = resources.files("convdiff.suites.builtin") / "caffe-conv1.caffemodel"
    layer = read_layer(split_layer_ref(f"{path}#conv1"))
    expected = caffe_conv1()
    np.testing.assert_array_equal(layer.kernel, expected["kernel"])
    np.testing.assert_array_equal(layer.bias, expected["bias"])
    config = layer.record.config
    assert (config.filters, config.kernel_size, config.padding.pads, config.strides) == (96, (5, 5), ((2, 2), (2, 2)),
                                                                                          (1, 1))
    assert layer.record.input_shape == (1, 128, 128, 1)


def test_experiment_keys_are_checked(tmp_path):
    from convdiff.errors import BadInputError
    from convdiff.suites.experiments import parse_experiment

    with pytest.raises(BadInputError, match="unknown expect_diagnosis 'gremlins'"):
        parse_experiment("[[case]]\ncandidate='nn'\nexpect='mismatch'\nexpect_diagnosis='gremlins'\n", "x.toml")
    with pytest.raises(BadInputError, match="unknown expect_regions 'corner'"):
        parse_experiment("[[case]]\ncandidate='nn'\nexpect='mismatch'\nexpect_regions='corner'\n", "x.toml")


def test_experiment_weights_are_found_next_to_the_file(tmp_path, oihw_npz):
    import shutil

    shutil.copy(oihw_npz, tmp_path / "conv.npz")
    (tmp_path / "port.toml").write_text(
        '[spec]\ninput_shape = [1, 8, 8, 3]\nweights = "conv.npz"\nweights_layout = "OIHW"\n'
        '[[case]]\nname = "pad"\nexpect = "mismatch"\nexpect_diagnosis = "padding"\nexpect_regions = "everywhere"\n'
        'strides = 1\n[case.reference]\nbackend = "caffe"\npadding = 1\n[case.candidate]\nbackend = "torch"\n'
        'padding = "0,2,0,2"\n')
    (outcome,) = run_targets((str(tmp_path / "port.toml"),)).outcomes
    assert outcome.as_expected, (outcome.got, outcome.confirmed_causes, outcome.regions_kind)
