"""A framework that raises at run time: exit 3, the backend named, the framework's message quoted.

The failure is real, not mocked: TensorFlow's CPU kernels register no bfloat16 QR, so drawing an
orthogonal kernel in bfloat16 raises InvalidArgumentError inside the framework, whichever side asks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from convdiff.backends.guard import first_line, run_guarded
from convdiff.cli import cli
from convdiff.errors import BackendFailedError, FrameworkError
from helpers import run_processes

FAILING = ["--init", "orthogonal", "--dtype", "bfloat16", "--shape", "1,6,6,2", "--filters", "2"]
TF_MESSAGE = "Value for attr 'T' of bfloat16 is not in the list of allowed values"


# caffe is left out: it refuses bfloat16 itself (exit 2) before drawing anything.
@pytest.mark.parametrize("backend", ["nn", "keras-call", "numpy", "torch"])
def test_framework_failure_exits_3_naming_the_backend(cli_runner, backend):
    result = cli_runner.invoke(cli, ["compare", "--reference", backend, "--candidate", "nn", *FAILING])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"convdiff: error: backend '{backend}' failed: ")
    assert TF_MESSAGE in lines[0]


def test_the_candidate_side_is_named_too(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "keras", *FAILING,
                                     "--set", "reference.dtype=float32"])
    assert result.exit_code == 3, result.output
    assert "backend 'keras' failed" in result.output


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "convdiff", *args]


def test_traceback_only_with_the_flag():
    quiet, loud = run_processes([_command("compare", "--reference", "nn", *FAILING),
                                 _command("--traceback", "compare", "--reference", "nn", *FAILING)], env=_env())
    assert quiet.returncode == 3
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]
    assert "Traceback" not in quiet.stderr and "backend 'nn' failed" in quiet.stderr
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr
    # The framework's own exception is chained under convdiff's: what a bug report needs.
    assert "InvalidArgumentError" in loud.stderr and "BackendFailedError: backend 'nn' failed" in loud.stderr


def test_guard_converts_a_real_torch_failure():
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendFailedError) as info:
        # 3 input channels against a kernel expecting 5: torch raises RuntimeError inside conv2d.
        run_guarded("torch", lambda: torch.nn.functional.conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(2, 5, 3, 3)))
    assert str(info.value).startswith("backend 'torch' failed: ")
    assert "expected input[1, 3, 4, 4] to have 5 channels" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_guard_leaves_our_own_bugs_alone():
    # A KeyError in convdiff's code is a bug to report with its traceback, not "the backend failed".
    with pytest.raises(KeyError):
        run_guarded("nn", lambda: {}["missing"])


def test_guard_passes_interrupts_through():
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_guarded("nn", interrupt)


def test_make_kernel_framework_failure_is_a_framework_error():
    from convdiff.backends.factory import make_kernel

    with pytest.raises(FrameworkError) as info:
        make_kernel("orthogonal", (3, 3, 2, 4), "bfloat16", 0)
    assert "Keras cannot draw orthogonal(gain=1.0) as bfloat16" in str(info.value)
    assert info.value.exit_code == 3


def test_first_line():
    assert first_line(ValueError("\n  first   line \nsecond")) == "first line"
    assert first_line(RuntimeError()) == "RuntimeError"
