"""Every built-in experiment, run twice in fresh processes, gives the same JSON apart from timings."""

import json
import os
import subprocess
import sys

from helpers import strip_timings


def test_builtin_experiments_rerun_identically():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "convdiff", "run", "--format", "json"],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        runs.append(strip_timings(json.loads(proc.stdout)))
    first, second = runs
    assert not first["skipped"], first["skipped"]
    assert {c["experiment"] for c in first["cases"]} >= {"ones-filter", "xavier-kernel", "xavier-kernel-v1",
                                                         "caffe-port", "default-initializer"}
    assert first == second
