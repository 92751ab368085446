"""Ctrl-C: a real SIGINT to a real `python -m convdiff run` exits 130 with one line and the summary so far."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]

# Two cases without TensorFlow (numpy and caffe, `ones` kernels): the first takes milliseconds, the
# second tens of seconds, so a SIGINT a few seconds in always lands inside the second.
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
input_shape = "1,400,400,64"
filters = 64
kernel_size = 7
padding = 3
expect = "equivalent"
"""


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "convdiff", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _interrupt_after(proc: subprocess.Popen, seconds: float) -> tuple[str, str]:
    time.sleep(seconds)
    assert proc.poll() is None, "finished before the interrupt: make the slow case slower"
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)


def test_interrupted_run_prints_the_summary_so_far(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(TWO_CASES)
    proc = _start("run", str(path))
    out, err = _interrupt_after(proc, 4.0)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["convdiff: error: interrupted after 1 of 2 cases; "
                                        "the summary shows the completed ones"]
    assert "quick" in out and "slow" not in out
    assert "1 of 1 cases as expected" in out and "interrupted: 1 of 2 cases not run" in out


def test_interrupted_run_json_is_valid_and_marked(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(TWO_CASES)
    proc = _start("run", str(path), "--format", "json")
    out, err = _interrupt_after(proc, 4.0)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ok"] is False
    assert [c["case"] for c in doc["cases"]] == ["quick"]


def test_interrupting_every_builtin_exits_130_without_traceback():
    proc = _start("run")
    out, err = _interrupt_after(proc, 5.0)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convdiff: error: interrupted"), err
