"""`convdiff models` against hostile files, paths and signals: one line and exit 2 for bad input, never a
traceback or a hang; 130/143 when interrupted, with nothing half-written left; concurrent runs apart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from convdiff.cli import cli
from convdiff.suites.builtin import small_cnn as sc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {k: str(v) for k, v in sc.write_example_models(directory).items()}


def bad_files(files, tmp: Path) -> dict[str, str]:
    keras, h5, onnx = (Path(files[k]).read_bytes() for k in ("keras", "keras_h5", "onnx"))
    made = {}
    for name, data in (("truncated.keras", keras[:10000]), ("truncated.h5", h5[:5000]),
                       ("truncated.onnx", onnx[:2000]), ("garbage.onnx", b"garbage\n")):
        (tmp / name).write_bytes(data)
        made[name] = str(tmp / name)
    with zipfile.ZipFile(files["keras"]) as src, zipfile.ZipFile(tmp / "badconfig.keras", "w") as dst:
        for member in src.namelist():
            dst.writestr(member, b"{not json" if member == "config.json" else src.read(member))
    made["badconfig.keras"] = str(tmp / "badconfig.keras")
    (tmp / "dir.keras").mkdir()
    made["dir.keras"] = str(tmp / "dir.keras")
    os.mkfifo(tmp / "fifo.onnx")
    made["fifo.onnx"] = str(tmp / "fifo.onnx")
    return made


def one_line_exit_2(result) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("convdiff: error:")]
    assert len(errors) == 1, result.output


@pytest.mark.parametrize("name", ["truncated.keras", "truncated.h5", "truncated.onnx", "garbage.onnx",
                                  "badconfig.keras", "dir.keras", "fifo.onnx", "/dev/null"])
@pytest.mark.parametrize("side", ["reference", "candidate"])
def test_a_bad_model_file_is_one_line_exit_2(cli_runner, files, tmp_path, name, side):
    path = name if name.startswith("/") else bad_files(files, tmp_path)[name]
    models = [path, files["onnx"]] if side == "reference" else [files["keras"], path]
    one_line_exit_2(cli_runner.invoke(cli, ["models", *models, "--input", files["input"]]))


@pytest.mark.parametrize("make", ["directory", "fifo", "/dev/null", "empty"])
def test_a_bad_input_file_is_one_line_exit_2(cli_runner, files, tmp_path, make):
    path = tmp_path / "x.npy"
    if make == "directory":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "empty":
        path.write_bytes(b"")
    else:
        path = Path(make)
    one_line_exit_2(cli_runner.invoke(cli, ["models", files["keras"], files["onnx"], "--input", str(path)]))


@pytest.mark.parametrize("option, where", [("--figure", "missing/f.png"), ("--figure", "DIR"), ("--figure", "INPUT"),
                                           ("--report", "missing/r.html"), ("--report", "DIR"),
                                           ("--report", "KERAS"), ("--report", "INPUT")])
def test_an_output_path_that_cannot_be_written_is_refused_before_the_run(cli_runner, files, tmp_path, option, where):
    path = {"DIR": str(tmp_path), "INPUT": files["input"], "KERAS": files["keras"]}.get(where, str(tmp_path / where))
    before = {k: Path(v).read_bytes() for k, v in files.items()}
    one_line_exit_2(cli_runner.invoke(cli, ["models", files["keras"], files["onnx"], "--input", files["input"],
                                            option, path]))
    assert {k: Path(v).read_bytes() for k, v in files.items()} == before


def test_quiet_with_json_is_a_usage_error(cli_runner, files):
    one_line_exit_2(cli_runner.invoke(cli, ["models", files["keras"], files["onnx"], "--input", files["input"],
                                            "-q", "--format", "json"]))


def test_the_same_model_against_itself_is_identical(cli_runner, files):
    for model in (files["keras"], files["onnx"]):
        result = cli_runner.invoke(cli, ["models", model, model, "--input", files["input"], "-q"])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("equivalent:") and "identical: outputs are bitwise equal" in result.stdout


def _start(files, out: Path, name: str = "") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "convdiff", "models", files["keras"], files["onnx_symmetric_pad"],
                             "--input", files["input"], "--report", str(out / f"{name}r.html"), "--figure",
                             str(out / f"{name}f.png")], env=env, cwd=out, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_a_run_exits_130_or_143_leaving_no_file(files, tmp_path, signum, code, word):
    process = _start(files, tmp_path)
    time.sleep(1.5)  # the run takes several seconds (the frameworks' imports): the signal lands inside it
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err.decode()
    assert f"convdiff: error: {word}" in err.decode() and "Traceback" not in err.decode()
    assert os.listdir(tmp_path) == []


def test_two_concurrent_runs_write_their_own_complete_reports(files, tmp_path):
    # Both in one directory, each its own files: their temporaries never collide, nothing is left over.
    runs = [_start(files, tmp_path, name) for name in ("a-", "b-")]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 1, err.decode()
    assert sorted(os.listdir(tmp_path)) == ["a-f.png", "a-r.html", "b-f.png", "b-r.html"]
    for name in ("a-", "b-"):
        assert "first divergence" in (tmp_path / f"{name}r.html").read_text()
        assert (tmp_path / f"{name}f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
