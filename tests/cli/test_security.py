"""Security: no pickles, nothing evaluated, no network."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convdiff.cli import cli
from helpers import run_processes

ROOT = Path(__file__).parents[2]
PAYLOAD = "__import__('os').system('touch {marker}')"


def _load_calls(tree: ast.AST):
    """Every call that reads arrays: np.load, and np.lib.format.read_array (what convdiff.data.arrays uses
    once it has checked the headers itself)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    else None)
            if name in ("np.load", "numpy.load") or (isinstance(func, ast.Attribute) and func.attr == "read_array"):
                yield node


def test_every_np_load_refuses_pickles_literally():
    found = 0
    for path in sorted((ROOT / "convdiff").rglob("*.py")):
        for call in _load_calls(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found += 1
            kwargs = {k.arg: k.value for k in call.keywords}
            value = kwargs.get("allow_pickle")
            assert isinstance(value, ast.Constant) and value.value is False, (
                f"{path.relative_to(ROOT)}:{call.lineno}: np.load without allow_pickle=False")
    assert found >= 1  # the scan saw convdiff.data.arrays' read_array


def test_no_eval_or_exec_in_the_package():
    for path in sorted((ROOT / "convdiff").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "compile"), (
                    f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}()")
                if node.func.id == "__import__":  # a fixed module name is harmless; a computed one is not
                    assert all(isinstance(a, ast.Constant) for a in node.args), f"{path}:{node.lineno}"


@pytest.mark.parametrize("field", ["padding", "initializer", "strides", "input", "seed", "dtype"])
def test_set_values_are_parsed_never_evaluated(cli_runner, tmp_path, field):
    marker = tmp_path / "pwned"
    result = cli_runner.invoke(cli, ["compare", "--shape", "1,6,6,2", "--set",
                                     f"candidate.{field}={PAYLOAD.format(marker=marker)}"])
    assert result.exit_code == 2, result.output
    assert not marker.exists()


def test_experiment_values_are_parsed_never_evaluated(cli_runner, tmp_path):
    marker = tmp_path / "pwned"
    payload = PAYLOAD.format(marker=marker).replace("'", "\\'")
    for key in ("initializer", "padding", "input_shape", "expect", "input"):
        path = tmp_path / f"{key}.toml"
        path.write_text(f"[[case]]\nname = 'x'\ncandidate = 'nn'\nexpect = 'equivalent'\n".replace(
            "expect = 'equivalent'\n", "" if key == "expect" else "expect = 'equivalent'\n")
                        + f'{key} = "{payload}"\n')
        result = cli_runner.invoke(cli, ["run", str(path)])
        assert result.exit_code == 2, (key, result.output)
        assert not marker.exists(), key


# A guard loaded into the child process (sitecustomize): any IP connection attempt is recorded and refused.
GUARD = textwrap.dedent("""
    import os, socket
    _marker = os.environ["CONVDIFF_NET_MARKER"]
    def _refuse(*args, **kwargs):
        with open(_marker, "a") as fh:
            fh.write(repr(args[:2]) + "\\n")
        raise OSError("network access attempted (blocked by the test)")
    _connect = socket.socket.connect
    def _checked_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(self, address)
        return _connect(self, address)
    socket.socket.connect = _checked_connect
    socket.socket.connect_ex = lambda self, address: _checked_connect(self, address)
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
""")


def _network_off_prefix() -> list[str]:
    """`unshare -n` (a network namespace with no interfaces) when this machine allows it, else nothing."""
    if shutil.which("unshare"):
        for prefix in (["unshare", "-n"], ["unshare", "--net", "--map-root-user"]):
            try:
                if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                    return prefix
            except (OSError, subprocess.TimeoutExpired):
                continue
    return []


def test_cli_runs_without_network(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(GUARD)
    marker = tmp_path / "attempts.txt"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "CONVDIFF_NET_MARKER": str(marker)}
    prefix = _network_off_prefix()
    if prefix:  # the namespace really has no network: prove it before trusting it
        probe = subprocess.run([*prefix, sys.executable, "-c",
                                "import socket; s = socket.socket(); s.settimeout(2); s.connect(('1.1.1.1', 53))"],
                               capture_output=True, text=True, timeout=30)
        assert probe.returncode != 0
    commands = [
        ["run", "xavier-kernel", "ones-filter"],
        ["compare", "--reference", "numpy", "--candidate", "keras", "--shape", "1,8,8,3"],
        ["list"],
    ]
    for args, proc in zip(commands, run_processes([[*prefix, sys.executable, "-m", "convdiff", *args]
                                                   for args in commands], env=env, timeout=180)):
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    assert not marker.exists(), marker.read_text()
