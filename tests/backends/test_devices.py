"""`device`: a spec field like any other; a GPU nobody sees is exit 3 in one line; the GPU check script says so."""

import os
import subprocess
import sys

import pytest

from convdiff.backends import REGISTRY, backend_info
from convdiff.cli import cli
from convdiff.errors import BadInputError
from convdiff.spec import ConvSpec
from convdiff.spec.fields import parse_fields

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPU_BACKENDS = ["nn", "keras", "keras-call", "torch", "keras-jax", "keras-torch"]


def _has_gpu():
    import torch

    return torch.cuda.is_available()


def test_device_is_a_field_of_the_one_table():
    assert parse_fields({"device": "GPU"})["device"] == "gpu"
    with pytest.raises(BadInputError, match="unknown device 'tpu'"):
        parse_fields({"device": "tpu"})
    assert ConvSpec().to_json()["device"] == "cpu"


def test_only_the_frameworks_declare_gpu():
    assert sorted(n for n, info in REGISTRY.items() if "gpu" in info.can.devices) == sorted(GPU_BACKENDS)
    reason = backend_info("numpy").refusal(ConvSpec(device="gpu"))
    assert reason.startswith("backend 'numpy' runs on CPU only") and "--set candidate.device=gpu" in reason


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_without_one_is_exit_3_in_one_line(cli_runner, backend):
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", backend, "--set",
                                     "candidate.device=gpu", "--shape", "1,6,6,2"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"convdiff: error: backend '{backend}'")
    assert "GPU" in lines[0]


def test_cpu_is_what_ran_and_the_environment_says_how(cli_runner):
    import json

    result = cli_runner.invoke(cli, ["compare", "--reference", "nn", "--candidate", "torch", "--device", "cpu",
                                     "--shape", "1,6,6,2", "--format", "json"])
    assert result.exit_code == 0, result.output
    env = json.loads(result.stdout)["environment"]
    assert isinstance(env["tf_tensor_float_32_execution"], bool)
    assert isinstance(env["torch_cudnn_allow_tf32"], bool) and isinstance(env["torch_cudnn_deterministic"], bool)
    assert env["tf_op_determinism"] in (True, False, None)
    assert json.loads(result.stdout)["comparisons"][0]["candidate"]["spec"]["device"] == "cpu"


def test_the_gpu_check_script_says_no_gpu_and_runs_nothing():
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_checks.py")], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU: torch sees none") and done.stdout.strip().endswith("nothing was run")
