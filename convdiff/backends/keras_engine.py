"""Keras 3 on another engine (JAX, torch), in a child process: the same `keras.layers.Conv*` layer as the
`keras` backend (`convdiff.backends.keras_layer`), called directly on a tensor.

Keras reads `KERAS_BACKEND` once, at its first import, and this process already runs Keras on TensorFlow:
so each engine gets one child process (`python -m convdiff.backends.keras_engine ENGINE DEVICE PARENT_PID`),
started on first use and reused for every later case of the process (a sweep, a run). The two talk over
the child's stdin/stdout: a message is a length-prefixed JSON header followed by length-prefixed `.npy`
arrays, read back with `np.load(allow_pickle=False)`; nothing is ever unpickled.

The parent draws the kernel with the shared seeded factory (`backends.factory`) and hands it over, so the
engines differ from the other backends only in their convolution arithmetic. The child's environment
(Keras backend and version, engine version, device, TF32 settings) is reported in the JSON
`environment` block under `keras_engines`.

Lifecycle: the child ignores SIGINT (Ctrl-C is the parent's to handle), exits when its stdin closes, and
asks Linux to send it SIGTERM when the parent dies (PR_SET_PDEATHSIG), so neither an interrupt nor a
killed parent leaves it behind. A child that cannot start (engine missing, no GPU) or dies is exit 3.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, ClassVar

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.keras_layer import KerasPredictBackend
from convdiff.backends.registry import backend_info
from convdiff.errors import BackendFailedError, BackendUnavailableError, BadInputError, ConvdiffError

_HEADER = struct.Struct(">I")
_ARRAY = struct.Struct(">Q")
# Fields that name files or layouts of files: the child gets the arrays themselves, canonical.
_FILE_FIELDS = ("input", "input_layout", "weights", "weights_layout", "bias", "pads", "output_shape")


# -- the protocol -------------------------------------------------------------------------------------------

def write_message(stream: IO[bytes], header: dict[str, Any], arrays: dict[str, np.ndarray | None]) -> None:
    """One message: the JSON header (with the names of the arrays that follow), then each array as `.npy`."""
    present = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    # `.npy` has no bfloat16 (ml_dtypes saves it as raw void): send it as float32, which holds it exactly.
    dtypes = {k: v.dtype.name for k, v in present.items() if v.dtype.name == "bfloat16"}
    head = json.dumps({**header, "arrays": list(present), "dtypes": dtypes}).encode("utf-8")
    stream.write(_HEADER.pack(len(head)) + head)
    for name, array in present.items():
        buffer = io.BytesIO()
        np.save(buffer, array.astype(np.float32) if name in dtypes else np.ascontiguousarray(array),
                allow_pickle=False)
        data = buffer.getvalue()
        stream.write(_ARRAY.pack(len(data)) + data)
    stream.flush()


def read_message(stream: IO[bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The next message; EOFError when the other side closed the pipe."""
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    header = json.loads(_read_exactly(stream, size).decode("utf-8"))
    arrays = {}
    for name in header.pop("arrays"):
        (size,) = _ARRAY.unpack(_read_exactly(stream, _ARRAY.size))
        array = np.load(io.BytesIO(_read_exactly(stream, size)), allow_pickle=False)
        if name in header["dtypes"]:
            from convdiff.spec.dtypes import np_dtype

            array = array.astype(np_dtype(header["dtypes"][name]))
        arrays[name] = array
    return header, arrays


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other process closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def spec_message(spec: Any) -> dict[str, Any]:
    """The spec's fields the child needs (no file names: it gets the arrays)."""
    return {k: v for k, v in spec.to_json().items() if k not in _FILE_FIELDS and v is not None}


def spec_from_message(fields: dict[str, Any]) -> Any:
    from convdiff.spec.convspec import ConvSpec
    from convdiff.spec.fields import parse_fields

    return ConvSpec(**parse_fields(fields))


# -- the parent side ----------------------------------------------------------------------------------------

class EngineWorker:
    """One child process running Keras on `engine`, on `device`."""

    def __init__(self, backend: str, engine: str, device: str):
        self.backend, self.engine, self.device = backend, engine, device
        self.stderr = tempfile.TemporaryFile()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, KERAS_BACKEND=engine,
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        if engine == "jax":
            # Without x64 JAX silently computes a float64 layer in float32 (measured: 1.3e-7 off the float64
            # reference, the kernel held in float32); float32 and lower layers are unaffected.
            env["JAX_ENABLE_X64"] = "1"
        if device == "cpu":  # hide GPUs, so the engine's default device is the CPU
            if engine == "jax":
                env["JAX_PLATFORMS"] = "cpu"
            else:
                env["CUDA_VISIBLE_DEVICES"] = ""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convdiff.backends.keras_engine", engine, device, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        hello = self._receive()[0]
        if not hello["ok"]:
            self.close()
            raise BackendUnavailableError(f"backend '{backend}' cannot start Keras on {engine}: {hello['error']}")
        self.environment: dict[str, Any] = hello["environment"]

    def run(self, spec: Any, x: np.ndarray, weights: Weights) -> SideResult:
        try:
            write_message(self.process.stdin, {"spec": spec_message(spec)},
                          {"x": x, "kernel": weights.kernel, "bias": weights.bias})
        except OSError:  # a dead child: reading its reply below says how it exited
            pass
        header, arrays = self._receive()
        if not header["ok"]:
            if header.get("exit") == BadInputError.exit_code:
                raise BadInputError(f"backend '{self.backend}': {header['error']}")
            raise BackendFailedError(self.backend, header["error"])
        return SideResult(self.backend, arrays["output"], arrays["kernel"], arrays.get("bias"),
                          compute_dtype=header["compute_dtype"], notes=tuple(header["notes"]),
                          seconds=header["seconds"])

    def _receive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        try:
            return read_message(self.process.stdout)
        except (EOFError, struct.error, ValueError) as exc:
            code = self.process.wait(timeout=10)
            raise BackendFailedError(self.backend, f"its Keras-on-{self.engine} process exited (code {code})"
                                     f"{self._last_error()}") from exc

    def _last_error(self) -> str:
        self.stderr.seek(0)
        lines = [ln.strip() for ln in self.stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return f": {lines[-1]}" if lines else ""

    def close(self) -> None:
        """End the child: EOF on its stdin, then SIGKILL if it does not exit within 5 seconds."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.stderr.close()


_WORKERS: dict[tuple[str, str], EngineWorker] = {}


def worker_for(backend: str, engine: str, device: str) -> EngineWorker:
    """The running child of `engine` on `device`, started on first use."""
    key = (engine, device)
    worker = _WORKERS.get(key)
    if worker is None or worker.process.poll() is not None:
        if not _WORKERS:
            atexit.register(close_workers)
        worker = _WORKERS[key] = EngineWorker(backend, engine, device)
    return worker


def close_workers() -> None:
    """End every child this process started (at exit, and after an interrupt)."""
    while _WORKERS:
        _WORKERS.popitem()[1].close()


def environments() -> dict[str, Any]:
    """The environment each running child reported, by backend name (for the JSON `environment` block)."""
    return {w.backend + ("" if w.device == "cpu" else f"@{w.device}"): w.environment for w in _WORKERS.values()}


class KerasEngineBackend:
    """Parent side of a `keras-<engine>` backend: the kernel from the shared factory, the layer in the child."""

    name: ClassVar[str]
    engine: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    install_hint: ClassVar[str]

    def run(self, spec: Any, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.backends.factory import initial_weights

        backend_info(self.name).check_spec(spec)
        # The shared seeded factory: the kernel every other backend draws, so only the engines' arithmetic differs.
        weights = weights or initial_weights(spec)
        worker = worker_for(self.name, self.engine, spec.device)
        try:
            return worker.run(spec, x, weights)
        except ConvdiffError as exc:
            if isinstance(exc, BackendFailedError) and worker.process.poll() is not None:
                _WORKERS.pop((self.engine, spec.device), None)
                worker.close()
            raise
        except BaseException:
            # Interrupted (or broken) half-way through a message: the pipe is out of step, end the child.
            _WORKERS.pop((self.engine, spec.device), None)
            worker.close()
            raise


# -- the child side -----------------------------------------------------------------------------------------

class _EngineLayer(KerasPredictBackend):
    """The `keras` backend's layer, called directly, with the Keras of this process's KERAS_BACKEND."""

    call_directly = True

    def _keras(self) -> Any:
        import keras

        return keras

    def _initializers(self, keras: Any, spec: Any, weights: Weights | None) -> dict[str, Any]:
        return {}  # the parent always sends the kernel and bias, which replace whatever the layer drew


def _environment(engine: str, device: str) -> dict[str, Any]:
    """Imports Keras on `engine` and checks the device; what this child computes on."""
    import keras

    env: dict[str, Any] = {"keras_backend": keras.backend.backend(), "keras": keras.__version__,
                           "requested_device": device}
    if env["keras_backend"] != engine:
        raise RuntimeError(f"Keras started on {env['keras_backend']}, not {engine}")
    if engine == "jax":
        import jax

        first = jax.devices()[0]
        if device == "gpu" and first.platform != "gpu":
            raise RuntimeError("JAX sees no GPU on this machine (give --device cpu)")
        # None is JAX's default precision, which lets XLA use TF32 for float32 on Ampere and later GPUs.
        env.update(jax=jax.__version__, device=f"{first.platform}:{first.device_kind}",
                   jax_default_matmul_precision=jax.config.jax_default_matmul_precision,
                   jax_enable_x64=bool(jax.config.jax_enable_x64))
    else:
        import torch

        gpu = torch.cuda.is_available()
        if device == "gpu" and not gpu:
            raise RuntimeError("PyTorch sees no GPU on this machine (give --device cpu)")
        env.update(torch=torch.__version__, device=torch.cuda.get_device_name(0) if gpu else "cpu",
                   torch_threads=torch.get_num_threads(),
                   cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
                   matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
                   cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
                   cudnn_benchmark=bool(torch.backends.cudnn.benchmark))
    return env


def _die_with_parent(parent: int) -> None:
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent handles it
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stdin's EOF still ends the loop
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(0)


def child_main(argv: list[str]) -> int:
    engine, device, parent = argv[0], argv[1], int(argv[2])
    _die_with_parent(parent)
    # The protocol owns the real stdout; anything a framework prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    try:
        env = _environment(engine, device)
    except Exception as exc:  # noqa: BLE001 - whatever stops the engine from starting is the one-line reason
        from convdiff.backends.guard import first_line

        write_message(out, {"ok": False, "error": first_line(exc)}, {})
        return 0
    write_message(out, {"ok": True, "environment": env}, {})
    layer = _EngineLayer()
    layer.name = f"keras-{engine}"
    while True:
        try:
            header, arrays = read_message(inp)
        except EOFError:
            return 0
        try:
            spec = spec_from_message(header["spec"])
            start = time.perf_counter()
            result = layer._run(spec, arrays["x"], Weights(arrays["kernel"], arrays.get("bias")))
            output = np.asarray(result.output)
            from convdiff.spec.dtypes import np_dtype

            if output.dtype != np_dtype(result.compute_dtype):  # torch's bfloat16 comes back as float32
                output = output.astype(np_dtype(result.compute_dtype))
            notes = (f"Keras {env['keras']} on {engine} ({env['device']}), in a child process; kernel from the "
                     "shared seeded factory", *result.notes)
            write_message(out, {"ok": True, "compute_dtype": result.compute_dtype, "notes": list(notes),
                                "seconds": time.perf_counter() - start},
                          {"output": output, "kernel": result.kernel, "bias": result.bias})
        except Exception as exc:  # noqa: BLE001 - every failure goes back as data; the parent decides the code
            from convdiff.backends.guard import first_line

            code = exc.exit_code if isinstance(exc, ConvdiffError) else 3
            write_message(out, {"ok": False, "error": first_line(exc), "exit": code}, {})


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
