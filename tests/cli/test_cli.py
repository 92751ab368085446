"""The CLI contract: exit codes, one-line errors, JSON keys. Real backends, through CliRunner."""

import json

import numpy as np
import pytest

from convdiff.cli import cli

SMALL = ["--shape", "1,8,8,3", "--filters", "2"]

JSON_KEYS = {"verdict", "reference", "candidate", "shape_match", "kernels_identical", "max_abs_diff",
             "max_abs_diff_index", "max_rel_diff", "sum_abs_diff", "mean_abs_diff", "rmse", "mismatched", "total",
             "atol", "rtol", "worst", "spec", "environment"}


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


def test_compare_ones_is_equivalent(cli_runner):
    result = invoke(cli_runner, ["compare", "--init", "ones", *SMALL])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output


def test_compare_json_has_the_documented_keys(cli_runner):
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    (comparison,) = doc["comparisons"]
    assert JSON_KEYS <= set(comparison)
    assert comparison["reference"]["name"] == "numpy" and comparison["reference"]["dtype"] == "float64"
    assert comparison["candidate"]["name"] == "nn" and comparison["candidate"]["shape"] == [1, 8, 8, 2]
    assert comparison["verdict"] == "equivalent"
    assert {"tensorflow", "keras", "numpy", "onednn", "device"} <= set(comparison["environment"])
    worst = comparison["worst"][0]
    assert set(worst) == {"index", "reference", "candidate", "abs_diff", "ratio"}


def test_compare_mismatch_exits_1(cli_runner):
    # float64 vs float32 arithmetic is not bitwise equal: with a zero tolerance it is a mismatch.
    result = invoke(cli_runner, ["compare", "--init", "ones", "--input", "image", "--input-dtype", "float64",
                                 *SMALL, "--atol", "0", "--rtol", "0"])
    assert result.exit_code == 1, result.output
    assert "mismatch" in result.output


def test_compare_reports_differing_kernels_first(cli_runner):
    args = ["compare", "--reference", "nn", "--candidate", "keras", *SMALL, "--set", "candidate.initializer=he_normal"]
    doc = json.loads(invoke(cli_runner, [*args, "--format", "json"]).output)["comparisons"][0]
    assert doc["kernels_identical"] is False and doc["kernels"]["verdict"] == "mismatch"
    assert doc["kernel_distribution"]["verdict"] == "different distributions"
    text = invoke(cli_runner, args).output
    # The kernel finding comes before any output value, in the table and in the verdict line.
    assert text.index("kernels max abs diff") < text.index("Outputs")
    assert "weights differ before convolution" in text[text.rindex("mismatch:"):]


def test_run_single_builtin(cli_runner):
    result = invoke(cli_runner, ["run", "xavier-kernel"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 cases as expected" in result.output


def test_run_file_with_unexpected_result_exits_1(cli_runner, tmp_path):
    path = tmp_path / "wrong.toml"
    path.write_text('[[case]]\nname = "claims-identical"\nreference = "numpy"\ncandidate = "nn"\n'
                    'input_shape = "1,6,6,2"\nexpect = "identical"\n')
    result = invoke(cli_runner, ["run", str(path)])
    assert result.exit_code == 1, result.output
    assert "UNEXPECTED" in result.output


def test_list(cli_runner):
    result = invoke(cli_runner, ["list"])
    assert result.exit_code == 0
    for name in ("numpy", "nn", "keras", "v1-nn", "v1-layers", "glorot_uniform", "default", "ones-filter",
                 "xavier-kernel", "xavier-kernel-v1", "default-initializer"):
        assert name in result.output


def _npy(tmp_path, name, array, **kw):
    path = tmp_path / name
    np.save(path, array, **kw)
    return str(path)


BAD = [
    (["compare", "--reference", "caffe2"], "Invalid value for '--reference'"),
    (["compare", "--init", "sparkly"], "unknown initializer"),
    (["compare", "--shape", "1,0,8,3"], "input shape must be positive"),
    (["compare", "--shape", "1,8,8"], None),  # H,W,C is accepted: not an error
    (["compare", "--shape", "one,8,8,3"], "malformed input shape"),
    (["compare", "--filters", "-3"], "filters must be a positive integer"),
    (["compare", "--kernel-size", "9", "--padding", "valid", *SMALL], "larger than the padded input"),
    (["compare", "--input", "missing.npy"], "not found"),
    (["compare", "--input", "picture.gif"], "unknown input"),
    (["compare", "--atol", "1e-3"], "--atol and --rtol together"),
    (["compare", "--dtype", "float8"], "unknown dtype"),
    (["compare", "--padding", "sideways"], "malformed padding"),
    (["run", "no-such-experiment"], "unknown experiment"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(cli_runner, args, message):
    result = cli_runner.invoke(cli, args)
    if message is None:
        assert result.exit_code in (0, 1), result.output
        return
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if "convdiff: error:" in result.output:
        assert len(result.output.strip().splitlines()) == 1


def test_bad_npy_files_exit_2(cli_runner, tmp_path):
    rank2 = _npy(tmp_path, "rank2.npy", np.zeros((4, 4)))
    pickled = _npy(tmp_path, "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(open(_npy(tmp_path, "full.npy", np.zeros((1, 4, 4, 3))), "rb").read()[:90])
    for path, message in ((rank2, "rank 2"), (pickled, "pickled"), (str(truncated), "not a valid .npy")):
        result = cli_runner.invoke(cli, ["compare", "--input", path])
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_npy_input_is_used(cli_runner, tmp_path):
    path = _npy(tmp_path, "x.npy", np.random.default_rng(0).random((1, 6, 5, 2)).astype(np.float32))
    result = invoke(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", "--input", path,
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["comparisons"][0]
    assert doc["spec"]["input_shape"] == [1, 6, 5, 2]


def test_png_input_is_decoded(cli_runner, tmp_path):
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    image = np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(tf.io.encode_png(image).numpy())
    result = invoke(cli_runner, ["compare", "--input", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["comparisons"][0]["spec"]["input_shape"] == [1, 6, 7, 3]
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"not a png at all")
    result = cli_runner.invoke(cli, ["compare", "--input", str(bad)])
    assert result.exit_code == 2 and "not a decodable" in result.output


def test_missing_backend_dependency_exits_3(cli_runner, monkeypatch):
    """A backend whose requirement is absent exits 3 with the install hint (registry entry, not a mock of TF)."""
    from convdiff import backends

    info = backends.REGISTRY["keras"]
    monkeypatch.setitem(backends.REGISTRY, "keras",
                        backends.BackendInfo(info.name, info.target, info.summary, ("no_such_module_xyz",),
                                             "pip install 'convdiff[xyz]'"))
    result = cli_runner.invoke(cli, ["compare", *SMALL])
    assert result.exit_code == 3, result.output
    assert "pip install 'convdiff[xyz]'" in result.output


# --- precision-aware verdicts (issue #5) ----------------------------------------------------------

IMAGE64 = ["--init", "ones", "--input", "image", "--input-dtype", "float64", "--shape", "1,24,24,3", "--filters", "1",
           "--kernel-size", "7", "--no-bias"]


def test_compare_default_is_the_bound_with_three_way_and_ulp(cli_runner):
    # nn computes in float64 (float64 input), keras in float32: they differ, neither is the numpy reference.
    result = invoke(cli_runner, ["compare", *IMAGE64, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["comparisons"][0]
    assert doc["tolerance_mode"] == "bound" and doc["verdict"] == "equivalent"
    assert doc["verdict_line"].startswith("equivalent: all 576 elements within the float32 rounding bound")
    assert set(doc["bound"]) >= {"form", "dtype", "unit_roundoff", "gamma_description", "K", "exceeded", "max_ratio",
                                 "max_ratio_index", "median_ratio"}
    assert doc["bound"]["K"] == 147 and doc["bound"]["dtype"] == "float32" and doc["bound"]["exceeded"] == 0
    assert doc["ulp"]["dtype"] == "float32" and doc["ulp"]["max"] >= 1
    for side in ("reference_error", "candidate_error"):
        assert set(doc[side]) >= {"max_abs", "rmse", "max_bound_ratio"}
    assert doc["reference_error"]["dtype"] == "float64" and doc["candidate_error"]["dtype"] == "float32"
    assert doc["three_way"]["wrong"] == "neither"


def test_compare_elementwise_mode_names_its_rule(cli_runner):
    result = invoke(cli_runner, ["compare", *IMAGE64, "--tolerance", "elementwise", "--atol", "0", "--rtol", "0"])
    assert result.exit_code == 1, result.output
    assert "mismatch: elementwise atol=0, rtol=0:" in result.output
    # One rule decides and every section counts by it: no bound is computed or counted beside it.
    assert "elementwise decides; no bound computed" in result.output
    precision = result.output.split("Precision")[1].split("Worst")[0]
    assert "exceeded" not in precision and "max diff / bound" not in precision


def test_compare_bound_beats_a_zero_atol_when_asked(cli_runner):
    # Explicit atol/rtol alone switch to elementwise; --tolerance bound keeps the bound deciding.
    result = invoke(cli_runner, ["compare", *IMAGE64, "--atol", "0", "--rtol", "0", "--tolerance", "bound",
                                 "--bound-form", "worst-case"])
    assert result.exit_code == 0, result.output
    assert "worst-case" in result.output


def test_compare_unknown_tolerance_mode_is_a_usage_error(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--tolerance", "fuzzy"])
    assert result.exit_code == 2
    assert "fuzzy" in result.output
