"""keras-jax and keras-torch: the child-process protocol, its failures, and that no child outlives its parent."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from convdiff.backends import get_backend
from convdiff.backends.keras_engine import EngineWorker, read_message, worker_for, write_message
from convdiff.cli import cli
from convdiff.errors import BackendFailedError, BackendUnavailableError
from convdiff.spec import ConvSpec
from convdiff.spec.dtypes import np_dtype

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_messages_round_trip_arrays_bit_for_bit_bfloat16_included():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((2, 3, 4)).astype(np.float32),
              "low": rng.standard_normal(5).astype(np_dtype("bfloat16")), "none": None}
    buffer = io.BytesIO()
    write_message(buffer, {"ok": True, "n": 3}, arrays)
    buffer.seek(0)
    header, back = read_message(buffer)
    assert header["ok"] and header["n"] == 3 and set(back) == {"x", "low"}
    assert back["x"].dtype == np.float32 and np.array_equal(back["x"], arrays["x"])
    assert back["low"].dtype.name == "bfloat16" and np.array_equal(back["low"], arrays["low"])
    with pytest.raises(EOFError):
        read_message(buffer)


def test_arrays_are_never_unpickled():
    buffer = io.BytesIO()
    write_message(buffer, {}, {"x": np.array([1.0])})
    data = buffer.getvalue().replace(b"'descr': '<f8'", b"'descr': '|O8'")
    with pytest.raises(ValueError, match="pickle"):
        read_message(io.BytesIO(data))


@pytest.mark.parametrize("backend", ["keras-jax", "keras-torch"])
def test_each_engine_reports_its_own_environment(backend, cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", backend, "--shape", "1,6,6,2",
                                     "--filters", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    engines = json.loads(result.stdout)["environment"]["keras_engines"]
    child = engines[backend]
    assert child["keras_backend"] == backend.split("-")[1] and child["requested_device"] == "cpu"
    assert ("jax_default_matmul_precision" in child) == (backend == "keras-jax")
    assert ("cudnn_allow_tf32" in child) == (backend == "keras-torch")


def test_the_worker_is_reused_across_cases():
    spec = ConvSpec(input_shape=(1, 5, 5, 2), filters=2)
    x = np.ones(spec.input_shape, np.float32)
    get_backend("keras-torch").run(spec, x, None)
    first = worker_for("keras-torch", "torch", "cpu").process.pid
    get_backend("keras-torch").run(spec.replace(filters=3), x, None)
    assert worker_for("keras-torch", "torch", "cpu").process.pid == first


def test_an_engine_that_cannot_start_is_exit_3_in_one_line():
    with pytest.raises(BackendUnavailableError) as raised:
        EngineWorker("keras-nothing", "nothing", "cpu")
    assert raised.value.exit_code == 3 and "\n" not in str(raised.value)
    assert "cannot start Keras on nothing" in str(raised.value)


def test_gpu_on_a_machine_without_one_is_exit_3(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "keras-jax", "--set",
                                     "candidate.device=gpu", "--shape", "1,5,5,2"])
    if result.exit_code == 0:
        pytest.skip("this machine has a GPU JAX can use")
    assert result.exit_code == 3 and "sees no GPU" in result.output and len(result.output.splitlines()) == 1


def test_a_child_that_dies_is_exit_3_and_the_next_case_starts_a_fresh_one():
    spec = ConvSpec(input_shape=(1, 5, 5, 2), filters=2)
    x = np.ones(spec.input_shape, np.float32)
    backend = get_backend("keras-jax")
    backend.run(spec, x, None)
    worker = worker_for("keras-jax", "jax", "cpu")
    worker.process.kill()
    worker.process.wait()
    with pytest.raises(BackendFailedError, match="process exited"):
        worker.run(spec, x, _weights(spec))
    again = backend.run(spec, x, None)  # a fresh child
    assert again.output.shape == spec.output_shape
    assert worker_for("keras-jax", "jax", "cpu").process.pid != worker.process.pid


def _weights(spec):
    from convdiff.backends.factory import initial_weights

    return initial_weights(spec)


PARENT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from convdiff.backends import get_backend
    from convdiff.backends.keras_engine import worker_for
    from convdiff.spec import ConvSpec
    spec = ConvSpec(input_shape=(1, 5, 5, 2), filters=2)
    get_backend("keras-torch").run(spec, np.ones(spec.input_shape, np.float32), None)
    print(worker_for("keras-torch", "torch", "cpu").process.pid, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_child_outlives_an_interrupted_or_killed_parent(signum):
    env = dict(os.environ, PYTHONPATH=ROOT)
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signum)
        parent.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), f"the child {child} outlived its parent after signal {signum}"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
