"""Ctrl-C and SIGTERM: a real signal to a real `python -m convdiff run` (or sweep, or compare) exits 130
(143 for SIGTERM) with one line and the summary so far; an interrupted run never replaces a bundle, and
the partial bundle it writes where none was is marked incomplete and never replayed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# Two cases without TensorFlow (numpy and caffe, `ones` kernels): the first takes milliseconds, the
# second minutes, so a SIGINT a few seconds in always lands inside the second.
TWO_CASES = """
[spec]
initializer = "ones"
padding = 1
kernel_size = 3

[[case]]
name = "quick"
reference = "numpy"
candidate = "caffe"
input_shape = "1,6,6,2"
expect = "equivalent"

[[case]]
name = "slow"
reference = "numpy"
candidate = "caffe"
input_shape = "1,800,800,64"
filters = 64
kernel_size = 7
padding = 3
expect = "equivalent"
"""


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "convdiff", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


# `ones` kernels: no TensorFlow (Keras draws the random ones), so the first config is done in a moment.
SLOW_SWEEP = ["sweep", "--reference", "numpy", "--candidate", "caffe", "--init", "ones", "--padding", "1", "--kernel-size", "7",
              "--input-size", "6,800", "--channels", "64", "--filters", "64"]
SLOW_COMPARE = ["compare", "--reference", "numpy", "--candidate", "caffe", "--init", "ones", "--padding", "3", "--kernel-size", "7",
                "--shape", "1,800,800,64", "--filters", "64"]
QUICK = ["--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--shape", "1,6,6,2", "--filters", "2"]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Real runs started together and stopped together (the start-up, not the wait, dominates):
    {name: (returncode, stdout, stderr)}, plus the folder they wrote in under "folder"."""
    from click.testing import CliRunner

    from convdiff.cli import cli

    folder = tmp_path_factory.mktemp("interrupt")
    path = folder / "two.toml"
    path.write_text(TWO_CASES)
    existing = folder / "existing"
    assert CliRunner().invoke(cli, ["compare", *QUICK, "--save-bundle", str(existing)]).exit_code == 0
    procs = {"table": _start("run", str(path)), "json": _start("run", str(path), "--format", "json"),
             "builtins": _start("run"), "term": _start("run", str(path)),
             "fresh": _start("run", str(path), "--save-bundle", str(folder / "fresh")),
             "existing": _start("run", str(path), "--save-bundle", str(existing)),
             "sweep": _start(*SLOW_SWEEP, "--format", "json", "--junit", str(folder / "sweep.xml")),
             "sweep-term": _start(*SLOW_SWEEP), "compare-term": _start(*SLOW_COMPARE)}
    before = {p.name: p.read_bytes() for p in existing.iterdir()}
    # A signal must land inside the slow work, never during start-up or at exit (Python's own import
    # machinery or shutdown killed by SIGINT is no convdiff behaviour). Fixed sleeps are not enough on a
    # loaded machine, so wait until each process holds the slow case's arrays (hundreds of MB; the quick
    # case and start-up stay far below), or, for the built-ins, has imported TensorFlow.
    thresholds = {name: 600 * 2**20 if name == "builtins" else 250 * 2**20 for name in procs}
    _signal_when_big(procs, thresholds)
    out = _collect(procs)
    out["folder"] = folder
    out["existing-before"] = before
    return out


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def _signal_when_big(procs: dict[str, subprocess.Popen], thresholds: dict[str, int], timeout: float = 300.0) -> None:
    """Signal each process as soon as its resident memory passes its threshold (read from /proc), all
    watched at once: SIGTERM for the "...term" ones, SIGINT for the others."""
    waiting = dict(procs)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for name, proc in list(waiting.items()):
            assert proc.poll() is None, f"{name} finished before the interrupt: make the slow case slower"
            if _rss(proc.pid) > thresholds[name]:
                proc.send_signal(signal.SIGTERM if name.endswith("term") else signal.SIGINT)
                del waiting[name]
        time.sleep(0.02)
    assert not waiting, f"{', '.join(waiting)} never reached the slow work in {timeout:.0f} s"


def _collect(procs: dict[str, subprocess.Popen]) -> dict[str, tuple[int, str, str]]:
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (proc.returncode, stdout, stderr)
    return out


def test_interrupted_run_prints_the_summary_so_far(interrupted):
    code, out, err = interrupted["table"]
    assert code == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["convdiff: error: interrupted after 1 of 2 cases; "
                                        "the summary shows the completed ones"]
    assert "quick" in out and "slow" not in out
    assert "1 of 1 cases as expected" in out and "interrupted: 1 of 2 cases not run" in out


def test_interrupted_run_json_is_valid_and_marked(interrupted):
    code, out, err = interrupted["json"]
    assert code == 130, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ok"] is False
    assert [c["case"] for c in doc["cases"]] == ["quick"]


def test_interrupting_every_builtin_exits_130_without_traceback(interrupted):
    code, out, err = interrupted["builtins"]
    assert code == 130, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convdiff: error: interrupted"), err


def test_sigterm_is_handled_like_ctrl_c_and_exits_143(interrupted):
    code, out, err = interrupted["term"]
    assert code == 143, err
    assert err.strip().splitlines() == ["convdiff: error: terminated after 1 of 2 cases; "
                                        "the summary shows the completed ones"]
    assert "quick" in out and "terminated: 1 of 2 cases not run" in out


def test_an_interrupted_run_writes_a_partial_bundle_marked_incomplete(interrupted, cli_runner):
    from convdiff.cli import cli
    from hostile import assert_one_line_error

    code, _, err = interrupted["fresh"]
    fresh = interrupted["folder"] / "fresh"
    assert code == 130 and err.strip().endswith(f"'{fresh}' holds a bundle of the completed cases, marked "
                                                "incomplete"), err
    manifest = json.loads((fresh / "bundle.json").read_text())
    assert manifest["complete"] is False and manifest["planned"] == 2 and len(manifest["cases"]) == 1
    assert_one_line_error(cli_runner.invoke(cli, ["run", str(fresh)]),
                          "is incomplete: the run that wrote it was interrupted after 1 of 2 cases")


def test_an_interrupted_run_never_replaces_a_bundle(interrupted):
    code, _, err = interrupted["existing"]
    existing = interrupted["folder"] / "existing"
    assert code == 130 and err.strip().endswith(f"the bundle at '{existing}' was left as it was"), err
    assert {p.name: p.read_bytes() for p in existing.iterdir()} == interrupted["existing-before"]
    assert not [p for p in interrupted["folder"].iterdir() if p.name.startswith(".")]


def test_an_interrupted_sweep_prints_the_summary_so_far_and_no_junit(interrupted):
    code, out, err = interrupted["sweep"]
    assert code == 130, err
    assert err.strip().splitlines() == ["convdiff: error: interrupted after 1 of 2 configs; the summary shows the "
                                        "completed ones; no JUnit report was written"]
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ok"] is False and doc["summary"]["total"] == 1
    assert not (interrupted["folder"] / "sweep.xml").exists()
    code, out, err = interrupted["sweep-term"]
    assert code == 143 and err.strip().splitlines() == [
        "convdiff: error: terminated after 1 of 2 configs; the summary shows the completed ones"], err
    assert "passed" in out


def test_sigterm_stops_a_comparison_in_one_line(interrupted):
    code, out, err = interrupted["compare-term"]
    assert code == 143 and err.strip().splitlines() == ["convdiff: error: terminated"], (out, err)
