"""How much a command prints: --quiet is the verdict line alone, a passing compare is a short summary
(--details the rest), a failing one the full report; the files a command writes are named on stderr."""

import json
import xml.etree.ElementTree as ET

import pytest

from convdiff.cli import cli

SMALL = ["--shape", "1,8,8,3", "--filters", "4"]
PASSING = ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL]
FAILING = ["compare", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn", "--strides", "2",
           *SMALL]
SWEEP = ["sweep", "--reference", "numpy", "--candidate", "nn", "--kernel-size", "1,3", "--input-size", "5",
         "--channels", "2", "--filters", "2"]


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


def verdict_of(runner, args):
    """The verdict line as the JSON document records it."""
    return json.loads(invoke(runner, [*args, "--format", "json"]).stdout)["comparisons"][0]["verdict_line"]


@pytest.mark.parametrize(("args", "code"), [(PASSING, 0), (FAILING, 1)])
def test_quiet_compare_prints_exactly_the_verdict_line(cli_runner, args, code):
    result = invoke(cli_runner, [*args, "--quiet"])
    assert result.exit_code == code
    assert result.stdout == verdict_of(cli_runner, args) + "\n"
    assert result.stderr == ""


def test_quiet_run_and_sweep_print_their_last_line(cli_runner):
    run = invoke(cli_runner, ["run", "ones-filter", "-q"])
    assert (run.exit_code, run.stdout) == (0, "2 of 2 cases as expected\n")
    sweep = invoke(cli_runner, [*SWEEP, "-q"])
    assert sweep.exit_code == 0 and len(sweep.stdout.splitlines()) == 1
    assert sweep.stdout.startswith("2 of 2 configs identical or equivalent in ")
    assert invoke(cli_runner, SWEEP).stdout.rstrip().splitlines()[-1].startswith("2 of 2 configs identical or equivalent")


def test_quiet_errors_still_reach_stderr(cli_runner):
    result = invoke(cli_runner, ["compare", "--shape", "1,0,4,3", "-q"])
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.startswith("convdiff: error: ")


@pytest.mark.parametrize("command", [PASSING, ["run", "ones-filter"], SWEEP])
def test_quiet_and_json_are_refused_together(cli_runner, command):
    result = invoke(cli_runner, [*command, "--quiet", "--format", "json"])
    assert result.exit_code == 2 and "give --quiet or --format json, not both" in result.stderr


def test_a_passing_compare_is_a_short_summary_and_details_the_full_report(cli_runner):
    short = invoke(cli_runner, PASSING).stdout
    full = invoke(cli_runner, [*PASSING, "--details"]).stdout
    assert len(short.splitlines()) <= 16 < len(full.splitlines())
    assert "Key figures" in short and "Specification" not in short and "--details" in short
    for figure in ("max abs diff", "of the bound", "ULP distance", "0 / 256 elements fail"):
        assert figure in short
    assert "Specification" in full and "Worst 10 positions" in full
    assert short.rstrip().endswith(full.rstrip().splitlines()[-1])  # both end with the verdict line


def test_a_failing_compare_keeps_the_full_report(cli_runner):
    text = invoke(cli_runner, FAILING).stdout
    for section in ("Specification", "Kernels", "Outputs", "Precision", "Where the mismatches sit", "Diagnosis"):
        assert section in text
    assert "Key figures" not in text


def test_heatmap_format_follows_the_extension_and_is_named_on_stderr(cli_runner, tmp_path):
    for name, magic in (("h.png", b"\x89PNG"), ("h.svg", b"<?xml"), ("h.pdf", b"%PDF")):
        path = tmp_path / name
        result = invoke(cli_runner, [*FAILING, "--heatmap", str(path)])
        assert result.exit_code == 1 and path.read_bytes().startswith(magic)
        assert result.stderr == f"wrote the heatmap to {path}\n"
    jpg = tmp_path / "h.jpg"
    result = invoke(cli_runner, [*FAILING, "--heatmap", str(jpg)])
    assert result.exit_code == 2 and "the format follows the file's extension" in result.stderr
    assert not jpg.exists() and "Outputs" not in result.stdout  # refused before the comparison ran


def test_run_junit_has_one_testcase_per_case_and_a_failure_for_the_unexpected(cli_runner, tmp_path):
    experiment = tmp_path / "e.toml"
    experiment.write_text("""name = "gate"
[spec]
input_shape = [1, 6, 6, 2]
filters = 2
[[case]]
name = "bitwise"
reference = "numpy"
candidate = "nn"
expect = "identical"
[[case]]
name = "close"
reference = "numpy"
candidate = "nn"
expect = "equivalent"
""")
    junit = tmp_path / "run.xml"
    result = invoke(cli_runner, ["run", str(experiment), "--junit", str(junit)])
    assert result.exit_code == 1 and f"wrote the JUnit report to {junit}" in result.stderr
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    (suite,) = root.findall("testsuite")
    bitwise, close = suite.findall("testcase")
    assert suite.get("name") == "gate" and (bitwise.get("name"), close.get("name")) == ("bitwise", "close")
    failure = bitwise.find("failure")
    assert failure.get("type") == "expected identical, got equivalent"
    assert failure.get("message").startswith("equivalent: all 72 elements within the float32 rounding bound")
    assert "expected: identical" in failure.text and close.find("failure") is None
    assert close.find("system-out").text.startswith("equivalent: ")


def test_run_junit_path_is_checked_before_anything_runs(cli_runner, tmp_path):
    result = invoke(cli_runner, ["run", "ones-filter", "--junit", str(tmp_path / "no" / "x.xml")])
    assert result.exit_code == 2 and "cannot write JUnit report" in result.stderr and result.stdout == ""
