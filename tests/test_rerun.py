"""Every built-in experiment, run twice in fresh processes, gives the same JSON apart from timings."""

import json
import os
import subprocess
import sys


def _strip_timings(value):  # noqa: ANN001, ANN202
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def test_builtin_experiments_rerun_identically():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "convdiff", "run", "--format", "json"],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        runs.append(_strip_timings(json.loads(proc.stdout)))
    first, second = runs
    assert not first["skipped"], first["skipped"]
    assert {c["experiment"] for c in first["cases"]} >= {"ones-filter", "xavier-kernel", "xavier-kernel-v1",
                                                         "caffe-port", "default-initializer"}
    assert first == second
