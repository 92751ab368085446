"""Never report garbage as equivalent: NaN outputs, empty outputs, and two sides fed different inputs.

The comparator's own NaN/Inf rules are tested in tests/test_compare.py; these tests go through the CLI
and experiment files with real backends, where a NaN in the input reaches both outputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from convdiff.cli import cli

ONE_NAN = (0, 3, 4, 1)


@pytest.fixture
def nan_input(tmp_path):
    x = np.random.default_rng(0).random((1, 8, 8, 2)).astype(np.float32)
    x[ONE_NAN] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, x)
    return str(path)


def _compare(runner, *args):
    result = runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", "--filters", "3",
                                 "--format", "json", *args])
    doc = json.loads(result.output)["comparisons"][0] if result.output.startswith("{") else None
    return result, doc


def test_nan_input_gives_nan_on_both_sides_and_fails_by_default(cli_runner, nan_input):
    result, doc = _compare(cli_runner, "--input", nan_input)
    assert result.exit_code == 1, result.output
    # One NaN pixel reaches every output it touches (3x3 window, SAME): 9 positions x 3 filters per side.
    assert doc["nan"] == {"reference": 27, "candidate": 27, "positions_agree": True}
    assert doc["verdict"] == "mismatch" and doc["passed"] is False
    assert doc["mismatched"] == 27


def test_equal_nan_passes_when_positions_agree(cli_runner, nan_input):
    result, doc = _compare(cli_runner, "--input", nan_input, "--equal-nan")
    assert result.exit_code == 0, result.output
    assert doc["verdict"] == "equivalent" and doc["equal_nan"] is True and doc["mismatched"] == 0


def test_all_nan_output_is_never_equivalent_by_default(cli_runner, tmp_path):
    path = tmp_path / "all-nan.npy"
    np.save(path, np.full((1, 6, 6, 2), np.nan, np.float32))
    result, doc = _compare(cli_runner, "--input", str(path))
    assert result.exit_code == 1, result.output
    assert doc["verdict"] == "mismatch" and doc["mismatched"] == doc["total"] == 6 * 6 * 3
    # The same bytes on both sides, still not a pass: NaN never equals NaN unless asked.
    result, doc = _compare(cli_runner, "--input", str(path), "--reference", "nn", "--candidate", "keras-call")
    assert result.exit_code == 1 and doc["verdict"] == "mismatch"
    result, doc = _compare(cli_runner, "--input", str(path), "--reference", "nn", "--candidate", "keras-call",
                           "--equal-nan")
    assert result.exit_code == 0 and doc["verdict"] == "identical"


def test_experiment_file_with_nan_input(cli_runner, nan_input, tmp_path):
    path = tmp_path / "nan.toml"
    path.write_text(f'''
[spec]
input = "{nan_input}"
filters = 3

[[case]]
name = "nan-is-a-mismatch"
candidate = "nn"
expect = "mismatch"

[[case]]
name = "nan-equal-when-asked"
candidate = "nn"
equal_nan = true
expect = "equivalent"
''')
    result = cli_runner.invoke(cli, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [c["verdict"] for c in doc["cases"]] == ["mismatch", "equivalent"]
    assert all(c["nan"]["positions_agree"] for c in doc["cases"])


def test_empty_output_is_an_error_not_a_pass(cli_runner, tmp_path):
    # Zero-size dimensions are refused before anything runs (exit 2): no vacuous "equivalent".
    for args in (["--shape", "1,8,0,3"], ["--shape", "0,8,8,3"], ["--filters", "0"]):
        result = cli_runner.invoke(cli, ["compare", *args])
        assert result.exit_code == 2, (args, result.output)
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((1, 0, 8, 3), np.float32))
    result = cli_runner.invoke(cli, ["compare", "--input", str(path)])
    assert result.exit_code == 2 and "is empty" in result.output


# --- the two sides' inputs -----------------------------------------------------------------------


def test_same_input_has_one_fingerprint(cli_runner):
    result, doc = _compare(cli_runner, "--shape", "1,6,6,2")
    assert result.exit_code == 0, result.output
    assert doc["inputs_identical"] is True
    sha = doc["reference"]["input_sha256"]
    assert len(sha) == 64 and sha == doc["candidate"]["input_sha256"]


@pytest.mark.parametrize("override", ["candidate.seed=7", "candidate.input=ones", "candidate.input_dtype=float64"])
def test_different_inputs_are_flagged_in_json(cli_runner, override):
    result, doc = _compare(cli_runner, "--shape", "1,6,6,2", "--shared-kernel", "--set", override)
    assert doc["inputs_identical"] is False, override
    assert doc["reference"]["input_sha256"] != doc["candidate"]["input_sha256"]


def test_different_inputs_are_flagged_in_the_table_before_the_outputs(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", "--shape", "1,6,6,2",
                                     "--shared-kernel", "--set", "candidate.seed=7"])
    assert result.exit_code == 1
    text = result.output
    assert "warning: the two sides ran on different inputs" in text
    assert "seed 42" in text and "seed 7" in text
    assert text.index("different inputs") < text.index("Outputs")


def test_fingerprint_covers_dtype_and_shape():
    from convdiff.data.fingerprint import input_sha256

    x = np.arange(12, dtype=np.float32)
    assert input_sha256(x) == input_sha256(x.copy())
    assert input_sha256(x) != input_sha256(x.reshape(3, 4))
    assert input_sha256(x) != input_sha256(x.view(np.int32))
    assert input_sha256(x[::2]) == input_sha256(np.ascontiguousarray(x[::2]))
