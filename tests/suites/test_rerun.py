"""Every built-in experiment gives the same JSON, apart from timings, in a fresh process and in this one."""

import json
import os
import subprocess
import sys

from helpers import strip_timings


def test_builtin_experiments_rerun_identically(builtin_run):
    # A fresh process started without TF_USE_LEGACY_KERAS: convdiff sets it itself for the TF1 cases.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run([sys.executable, "-m", "convdiff", "run", "--format", "json"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    # The environment block may differ (this process has loaded torch for other tests); the results may not.
    fresh = strip_timings(json.loads(proc.stdout), also=("environment",))
    _, here = builtin_run
    here = strip_timings(json.loads(json.dumps(here)), also=("environment",))
    assert not fresh["skipped"], fresh["skipped"]
    assert {c["experiment"] for c in fresh["cases"]} >= {"ones-filter", "xavier-kernel", "xavier-kernel-v1",
                                                         "caffe-port", "default-initializer"}
    assert fresh == here
