"""Faults of the file system, for every class of output convdiff writes (heatmap, JUnit report, plot,
bundle): a full disk, a read-only directory, concurrent writers, a signal in the middle of a save.

What must hold: the previous file (or bundle) is intact, no temporary is left behind, and the command
says so in one line (exit 2). A full disk and a read-only directory are real (a small tmpfs in a
private mount namespace, `unshare -rm`) where the machine allows it; the in-process tests simulate a
full disk by failing the one OS call that puts data on disk (`os.fsync`), never convdiff's code.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convdiff.cli import cli
from helpers import run_processes
from hostile import assert_one_line_error, tree_state

ROOT = Path(__file__).parents[2]
QUICK = ["--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--shape", "1,6,6,2", "--filters", "2"]
SLOW_START = ["--reference", "numpy", "--candidate", "nn", "--shape", "1,6,6,2", "--filters", "2"]  # imports TF


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _debris(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --- a real full disk and a real read-only directory (tmpfs in a private mount namespace) ----------------

DRIVER = textwrap.dedent('''
    import json, os, subprocess, sys
    mnt, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt]).returncode != 0:
        sys.exit(77)  # no tmpfs here: the test is skipped
    py = [sys.executable, "-m", "convdiff"]
    quick = %(quick)r
    # The previous outputs, written by convdiff itself while there is room.
    prep = [py + ["compare", *quick, "--heatmap", f"{mnt}/h.png", "--save-bundle", f"{mnt}/b"]]
    for cmd in prep:
        subprocess.run(cmd, check=True, capture_output=True)
    for name in ("j.xml", "p.png"):
        with open(f"{mnt}/{name}", "wb") as fh:
            fh.write(b"previous " + name.encode())
    before = {n: open(f"{mnt}/{n}", "rb").read() for n in ("h.png", "j.xml", "p.png")}
    before["b"] = open(f"{mnt}/b/bundle.json", "rb").read()
    if mode == "full":
        fd = os.open(f"{mnt}/filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        os.close(fd)
    else:
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
    commands = {
        "heatmap": py + ["compare", *quick, "--heatmap", f"{mnt}/h.png"],
        "junit": py + ["sweep", "--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--kernel-size", "3",
                       "--input-size", "6", "--junit", f"{mnt}/j.xml"],
        "plot": py + ["propagate", "--depth", "2", "--shape", "1,8,8", "--channels", "2", "--plot", f"{mnt}/p.png"],
        "bundle": py + ["compare", *quick, "--save-bundle", f"{mnt}/b"],
    }
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k, c in commands.items()}
    results = {k: (p.wait(), p.stderr.read()) for k, p in procs.items()}
    after = {n: open(f"{mnt}/{n}", "rb").read() for n in ("h.png", "j.xml", "p.png")}
    after["b"] = open(f"{mnt}/b/bundle.json", "rb").read()
    json.dump({"results": results, "unchanged": {k: before[k] == after[k] for k in before},
               "listing": sorted(os.listdir(mnt)), "bundle": sorted(os.listdir(f"{mnt}/b"))}, open(out, "w"))
''') % {"quick": QUICK}


def _in_private_tmpfs(tmp_path: Path, mode: str) -> dict:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    mnt, out, driver = tmp_path / "mnt", tmp_path / "out.json", tmp_path / "driver.py"
    mnt.mkdir()
    driver.write_text(DRIVER)
    for flags in (["-rm"], ["-m"]):
        proc = subprocess.run(["unshare", *flags, sys.executable, str(driver), str(mnt), str(out), mode],
                              capture_output=True, text=True, env=_env(), timeout=600)
        if proc.returncode == 0:
            return json.loads(out.read_text())
        if proc.returncode != 77 and "unshare" not in proc.stderr:
            raise AssertionError(f"the tmpfs driver failed: {proc.stderr}")
    pytest.skip(f"no private tmpfs here: {proc.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory):
    return _in_private_tmpfs(tmp_path_factory.mktemp("full"), "full")


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    return _in_private_tmpfs(tmp_path_factory.mktemp("ro"), "ro")


@pytest.mark.parametrize(("output", "what"), [("heatmap", "heatmap"), ("junit", "JUnit report"), ("plot", "plot"),
                                              ("bundle", "bundle")])
def test_a_full_disk_keeps_the_previous_output(full_disk, output, what):
    code, err = full_disk["results"][output]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"convdiff: error: cannot write {what} '") and "no space left on the device" in lines[0]
    assert "is unchanged" in lines[0] or "is kept" in lines[0], lines[0]
    assert all(full_disk["unchanged"].values()), full_disk["unchanged"]
    assert full_disk["listing"] == ["b", "filler", "h.png", "j.xml", "p.png"], full_disk["listing"]  # no temporaries
    assert full_disk["bundle"] == ["bundle.json", "case-001.npz", "report.json"]


@pytest.mark.parametrize(("output", "fragment"), [
    ("heatmap", "cannot write heatmap"), ("junit", "cannot write JUnit report"), ("plot", "cannot write plot"),
    ("bundle", "cannot save bundle")])
def test_a_read_only_directory_is_refused_before_anything_runs(read_only, output, fragment):
    code, err = read_only["results"][output]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert fragment in lines[0] and "is not writable" in lines[0], lines[0]
    assert all(read_only["unchanged"].values())
    assert read_only["listing"] == ["b", "h.png", "j.xml", "p.png"]


# --- a full disk simulated in-process: the write that puts data on disk fails ---------------------------


@pytest.fixture
def disk_full(monkeypatch):
    """Every os.fsync fails with ENOSPC, as on a full disk (where the data of a write is only refused
    once it must reach the device)."""
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize(("args", "name", "what"), [
    (["compare", *QUICK, "--heatmap", "{dir}/h.png"], "h.png", "heatmap"),
    (["sweep", "--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--kernel-size", "3",
      "--input-size", "6", "--junit", "{dir}/j.xml"], "j.xml", "JUnit report"),
])
def test_a_failed_write_keeps_the_previous_file(cli_runner, tmp_path, disk_full, args, name, what):
    previous = tmp_path / name
    previous.write_bytes(b"the previous version")
    result = cli_runner.invoke(cli, [a.replace("{dir}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == (f"convdiff: error: cannot write {what} '{previous}': no space left on the device; "
                    "the previous file is unchanged")
    assert previous.read_bytes() == b"the previous version"
    assert _debris(tmp_path) == []


def test_a_failed_bundle_save_keeps_the_previous_bundle(cli_runner, tmp_path, monkeypatch):
    target = tmp_path / "b"
    assert cli_runner.invoke(cli, ["compare", *QUICK, "--save-bundle", str(target)]).exit_code == 0
    before = tree_state(tmp_path)

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    result = cli_runner.invoke(cli, ["compare", *QUICK, "--seed", "7", "--save-bundle", str(target)])
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 2 and last == (f"convdiff: error: cannot write bundle '{target}': no space left on "
                                              "the device; the previous bundle is kept"), result.output
    assert tree_state(tmp_path) == before and _debris(tmp_path) == []


@pytest.mark.parametrize("call", [1, 2, 3, 4])
def test_an_interrupted_bundle_save_leaves_no_debris(cli_runner, tmp_path, monkeypatch, call):
    """Ctrl-C at each fsync of a save (arrays, manifest, report): the old bundle stays, nothing else remains."""
    target = tmp_path / "b"
    assert cli_runner.invoke(cli, ["compare", *QUICK, "--save-bundle", str(target)]).exit_code == 0
    before = tree_state(tmp_path)
    calls = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == call:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = cli_runner.invoke(cli, ["compare", *QUICK, "--seed", "7", "--save-bundle", str(target)])
    if len(calls) >= call:
        assert_one_line_error(result, "interrupted", code=130)
        assert tree_state(tmp_path) == before
    else:  # fewer fsyncs than `call`: the save completed
        assert result.exit_code == 0
    assert _debris(tmp_path) == []


def test_signals_are_held_for_the_renames_then_delivered():
    from convdiff.data.files import signals_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("renamed")  # still runs: the signal waits for the block to end
    assert done == ["renamed"]


# --- concurrent writers ---------------------------------------------------------------------------------


def _bundle_writers(target: Path, n: int, seeds: list[int]) -> list[subprocess.CompletedProcess]:
    commands = [[sys.executable, "-m", "convdiff", "compare", *SLOW_START, "--seed", str(seeds[i]), "--save-bundle",
                 str(target)] for i in range(n)]
    return run_processes(commands, env=_env())


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_concurrent_bundle_writers_one_wins_the_others_say_so(cli_runner, tmp_path, existing):
    target = tmp_path / "b"
    if existing:
        assert cli_runner.invoke(cli, ["compare", *QUICK, "--save-bundle", str(target)]).exit_code == 0
    procs = _bundle_writers(target, 3, [1, 2, 3])
    winners = [p for p in procs if p.returncode == 0]
    losers = [p for p in procs if p.returncode != 0]
    assert len(winners) == 1, [(p.returncode, p.stderr) for p in procs]
    word = "replaced" if existing else "created"
    for p in losers:
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, p.stderr
        assert lines[0] == (f"convdiff: error: cannot save bundle: '{target}' was {word} by another process while this "
                            "one ran; nothing was replaced, the other one is kept")
    assert _debris(tmp_path) == []
    manifest = json.loads((target / "bundle.json").read_text())
    assert manifest["cases"][0]["reference"]["spec"]["seed"] == int(winners[0].args[winners[0].args.index("--seed") + 1])
    assert cli_runner.invoke(cli, ["run", str(target)]).exit_code == 0


def test_concurrent_file_writers_leave_one_whole_file(tmp_path):
    path = tmp_path / "h.png"
    commands = [[sys.executable, "-m", "convdiff", "compare", *SLOW_START, "--seed", str(s), "--heatmap", str(path)]
                for s in (1, 2, 3)]
    procs = run_processes(commands, env=_env())
    assert [p.returncode for p in procs] == [0, 0, 0], [p.stderr for p in procs]
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and _debris(tmp_path) == []


def test_a_bundle_save_waits_for_a_lock_then_gives_up_in_one_line(cli_runner, tmp_path):
    """Another process holding the directory's lock (here: this test) past the wait: one line, nothing written."""
    import fcntl

    from convdiff.data import files

    target = tmp_path / "b"
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    saved_wait = files.LOCK_WAIT_SECONDS
    try:
        files.LOCK_WAIT_SECONDS = 0.2
        result = cli_runner.invoke(cli, ["compare", *QUICK, "--save-bundle", str(target)])
    finally:
        files.LOCK_WAIT_SECONDS = saved_wait
        os.close(fd)
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 2 and "another process kept" in last and "nothing was written" in last, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_saving_replaces_only_convdiffs_own_files(cli_runner, tmp_path):
    """A bundle set aside for replacement is removed file by file, its own files only."""
    target = tmp_path / "b"
    assert cli_runner.invoke(cli, ["compare", *QUICK, "--save-bundle", str(target)]).exit_code == 0
    assert cli_runner.invoke(cli, ["run", "xavier-kernel", "--save-bundle", str(target)]).exit_code == 0
    assert sorted(p.name for p in target.iterdir()) == ["bundle.json", "case-001.npz", "case-002.npz", "report.json"]
    assert _debris(tmp_path) == []
    np.testing.assert_equal(json.loads((target / "bundle.json").read_text())["version"], 3)
