"""Ctrl-C: a real SIGINT to a real `python -m convdiff run` exits 130 with one line and the summary so far."""

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


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Three real runs started together and interrupted together (the start-up, not the wait, dominates):
    {name: (returncode, stdout, stderr)}."""
    path = tmp_path_factory.mktemp("interrupt") / "two.toml"
    path.write_text(TWO_CASES)
    procs = {"table": _start("run", str(path)), "json": _start("run", str(path), "--format", "json"),
             "builtins": _start("run")}
    # Every built-in takes well over 3 s with TensorFlow's start-up: interrupt it early, never as it exits
    # (a signal during the interpreter's own shutdown kills it by SIGINT, as it does any Python program).
    time.sleep(3.0)
    procs["builtins"].send_signal(signal.SIGINT)
    time.sleep(3.0)
    for name, proc in procs.items():
        if name == "builtins":
            continue
        assert proc.poll() is None, f"{name} finished before the interrupt: make the slow case slower"
        proc.send_signal(signal.SIGINT)
    return _collect(procs)


def _collect(procs: dict[str, subprocess.Popen]) -> dict[str, tuple[int, str, str]]:
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
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
