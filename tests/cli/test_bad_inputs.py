"""The bad-input corpus: every way a user can get it wrong gives exit 2 and ONE line naming the problem.

Families, all through the real CLI, each run in a scratch directory of hostile files (FIFOs, device
links, directories, a valid bundle) whose state is compared before and after: a refused command
changes nothing.

- command-line arguments (the tables below, one row per mistake): specs, memory sizes, output paths
  of every command, bundle targets, special files where a file is read, sweeps;
- experiment files and grid files, driven by folder: tests/acceptance/corpus/bad/*.toml (run) and
  tests/acceptance/corpus/bad-grids/*.toml (sweep --grid), each with the expected message fragment
  in its first line (`# expect: ...`);
- array and image files (.npy, .npz, PNG, JPEG), generated, since binary files do not review well;
- tampered bundles: a valid bundle, changed one way per row.

A few are also run through `python -m convdiff` in a subprocess, to prove that nothing but the one
line reaches stderr in a real process.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convdiff.cli import cli
from hostile import (assert_one_line_error, jpeg_header, make_scratch, npy_bytes, npy_header, png_bytes, tree_state,
                     zip_bytes)

CORPUS = Path(__file__).parents[1] / "acceptance" / "corpus" / "bad"
GRID_CORPUS = Path(__file__).parents[1] / "acceptance" / "corpus" / "bad-grids"
SMALL = ["--shape", "1,8,8,3", "--filters", "2"]
QUICK = ["--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--shape", "1,6,6,2", "--filters", "2"]
SWEEP = ["sweep", "--reference", "numpy", "--candidate", "nn", "--input-size", "6"]
LONG = "x" * 300

# (arguments, expected fragment of the one-line message). Every row must exit 2.
CLI_CASES = [
    (["compare", "--shape", "1,-8,8,3"], "input shape must be positive integers, got 1x-8x8x3"),
    (["compare", "--shape", "0,8,8,3"], "input shape must be positive integers, got 0x8x8x3"),
    (["compare", "--shape", "1,8,0,3"], "input shape must be positive integers"),  # an empty output, refused
    (["compare", "--filters", "0"], "filters must be a positive integer, got 0"),
    (["compare", "--kernel-size", "0"], "kernel size must be positive integers, got 0x0"),
    (["compare", "--dilation", "-1"], "dilation must be positive integers, got -1x-1"),
    (["compare", "--strides", "0,1"], "strides must be positive integers, got 0x1"),
    # A stride longer than the padded input never applies: an error in every padding mode (README).
    (["compare", "--strides", "9", *SMALL], "strides 9x9 are larger than the padded input 8x8"),
    (["compare", "--strides", "1,12", "--padding", "valid", *SMALL], "strides 1x12 are larger than the padded input"),
    (["compare", "--kernel-size", "9", "--padding", "valid", *SMALL], "kernel 9x9 is larger than the padded input 8x8"),
    (["compare", "--kernel-size", "3", "--dilation", "5", "--padding", "valid", *SMALL],
     "kernel 3x3 (dilated 11x11) is larger than the padded input"),
    (["compare", "--reference", "tensorflow"], "Invalid value for '--reference'"),
    (["compare", "--candidate", "caffe2"], "Invalid value for '--candidate'"),
    (["compare", "--init", "sparkly"], "unknown initializer"),
    (["compare", "--bias-init", "glorot_uniformm"], "unknown initializer"),
    (["compare", "--dtype", "float8"], "unknown dtype 'float8'"),
    (["compare", "--input-dtype", "int8"], "unknown input dtype 'int8'"),
    (["compare", "--input-layout", "NHCW2"], "unknown input layout"),
    (["compare", "--weights-layout", "HWIQ"], "unknown weights layout"),
    (["compare", "--input", "picture.gif"], "unknown input 'picture.gif'"),
    (["compare", "--input", "missing.npy"], "input file 'missing.npy' not found"),
    (["compare", "--weights", "missing.npz"], "weights file 'missing.npz' not found"),
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
    (["run", "missing.toml"], "experiment file 'missing.toml' not found"),
    (["compare", "--atol", "1e-3"], "give --atol and --rtol together, or neither"),
    (["compare", "--atol", "-1", "--rtol", "0"], "tolerances must not be negative"),
    (["compare", "--atol", "nan", "--rtol", "0"], "atol must be finite and >= 0, got nan"),
    (["compare", "--bias", "b.npy", "--no-bias"], "give --bias or --no-bias, not both"),
    (["compare", "--bias", "b.npy"], "a bias file needs a weights file"),
    (["compare", "--format", "xml"], "Invalid value for '--format'"),
    (["compare", "--top", "-1"], "Invalid value for '--top'"),
    (["compare", "--no-such-option"], "No such option '--no-such-option'"),
    (["compare", "--set", "reference.strides"], "expected SIDE.FIELD=VALUE"),
    (["compare", "--set", "middle.strides=2"], "expected SIDE.FIELD=VALUE with SIDE reference or candidate"),
    (["compare", "--set", "candidate.kernal_size=3"], "unknown spec field 'kernal_size' in --set candidate."),
    (["compare", "--set", "candidate.padding=1,2,3"], "malformed padding '1,2,3'"),
    (["compare", "--shape", "one,8,8,3"], "malformed input shape 'one,8,8,3'"),
    (["compare", "--shape", "1,8,8,3,4"], "malformed input shape '1,8,8,3,4'"),
    (["compare", "--shape", "1,,8,3"], "malformed input shape '1,,8,3'"),
    (["compare", "--shape", ""], "malformed input shape ''"),
    (["compare", "--filters", "1.5"], "malformed filters '1.5'"),
    (["compare", "--padding", "sideways"], "malformed padding 'sideways'"),
    (["compare", "--padding", "-1"], "padding must not be negative"),
    (["compare", "--seed", "-1"], "seed must be an integer in [0, 2**32), got -1"),
    (["compare", "--seed", "99999999999999999999"], "seed must be an integer in [0, 2**32)"),
    (["compare", "--init", "truncated_normal(stddev=)"], "malformed initializer 'truncated_normal(stddev=)'"),
    (["compare", "--init", "glorot_uniform(seed=1"], "malformed initializer 'glorot_uniform(seed=1'"),
    (["compare", "--init", "truncated_normal(stddev=-1)"], "truncated_normal stddev must be > 0, got -1"),
    (["compare", "--init", "random_normal(mean='a')"], "random_normal mean must be a number"),
    (["compare", "--max-memory", "12XB"], "malformed memory size '12XB'"),
    (["compare", "--max-memory", "1KB", *SMALL], "needs an estimated"),
    # A shape no machine here can hold: refused by the estimate, before anything is allocated.
    (["compare", "--shape", "1,100000,100000,3"], "this comparison needs an estimated 4.87 TiB"),
    (["run", "--max-memory", "1MB", "caffe-port"], "experiment 'caffe-port', case 'correct-port': this comparison"),
    (["compare", "--heatmap", "/nonexistent/dir/x.png", "--shape", "1,4,4,1"], "cannot write heatmap"),
    (["propagate", "--shape", "1,2"], "expected N,H,W"),
    # Memory sizes: exact integer arithmetic, the exponent bounded before any power is taken.
    (["compare", "--max-memory", "1e400"], "memory size '1e400' is too large"),  # was an OverflowError
    (["compare", "--max-memory", "1e999999999"], "memory size '1e999999999' is too large"),  # was a hang
    (["compare", "--max-memory", "inf"], "malformed memory size 'inf'"),
    (["compare", "--max-memory", "nan"], "malformed memory size 'nan'"),
    (["compare", "--max-memory", "0.5"], "memory size '0.5' must be at least 1 byte"),
    (["compare", "--max-memory", "-5"], "malformed memory size '-5'"),
    (["compare", "--max-memory", "0x10"], "malformed memory size '0x10'"),
    (["compare", "--max-memory", ""], "malformed memory size ''"),
    (["compare", "--max-memory", "1" * 41], "malformed memory size"),
    (["compare", "--max-memory", "16EiB"], "malformed memory size '16EiB'"),
    (["compare", "--top", "1000001"], "Invalid value for '--top'"),
    (["compare", "--seed", "4294967296"], "seed must be an integer in [0, 2**32), got 4294967296"),
    (["compare", "--atol", "inf", "--rtol", "0"], "atol must be finite and >= 0, got inf"),
    (["compare", "--atol", "0", "--rtol", "1e400"], "rtol must be finite and >= 0, got inf"),
    (["compare", "--filters", "1000000000", *SMALL[:2]], "this comparison needs an estimated"),
    (["compare", "--kernel-size", "100000", "--padding", "99999", *SMALL[:2]], "this comparison needs an estimated"),
    (["compare", "--dilation", "99999999999", "--padding", "valid", *SMALL], "is larger than the padded input"),
    (["compare", "--set", "candidate.input_shape=1,100000,100000,3"], "this comparison needs an estimated"),
    (["compare", "--init", "constant(1e400)"], "constant value must be finite, got inf"),
    (["propagate", "--init", "constant(1e308)"], "value=1e+308 does not fit float32"),
    (["propagate", "--init", "random_normal(stddev=1e308)"], "stddev=1e+308 does not fit float32"),
    (["propagate", "--init", "random_uniform(minval=-1e39, maxval=1)"], "minval=-1e+39 does not fit float32"),
    (["propagate", "--shape", "1,100000,100000"], "too large for one run"),
    (["defaults", "--seed", "99999999999"], "Invalid value for '--seed'"),
    (["run", ""], "unknown experiment ''"),
    # Output paths, checked before anything runs: compare --heatmap, sweep --junit, propagate --plot.
    (["compare", *QUICK, "--heatmap", ""], "cannot write heatmap: the file name is empty"),
    (["compare", *QUICK, "--heatmap", "dir.png"], "cannot write heatmap 'dir.png': it is a directory"),
    (["compare", *QUICK, "--heatmap", "/proc/self/x.png"], "is a kernel pseudo-file system (proc)"),
    (["compare", *QUICK, "--heatmap", "/sys/x.png"], "is a kernel pseudo-file system (sysfs)"),
    (["compare", *QUICK, "--heatmap", "fifo.png"], "it exists and is a FIFO (named pipe), not a regular file"),
    (["compare", *QUICK, "--heatmap", "null.png"], "it exists and is a character device"),
    (["compare", *QUICK, "--heatmap", "/dev/null"], "is a kernel pseudo-file system (devtmpfs)"),
    (["compare", *QUICK, "--heatmap", "notes.txt/x.png"], "does not exist"),
    (["compare", *QUICK, "--heatmap", "nowhere/x.png"], "does not exist"),
    (["compare", *QUICK, "--heatmap", f"{LONG}.png"], "the name is longer than the file system allows"),
    (["compare", "--input", "x.png", "--heatmap", "x.png"], "it is an input file of this command ('x.png')"),
    (["compare", "--input", "x.png", "--report", "x.png"], "cannot write HTML report 'x.png': it is an input file"),
    (["compare", "--input", "x.npy", "--heatmap", "x.npy"], "the format follows the file's extension"),
    ([*SWEEP, "--kernel-size", "3", "--junit", ""], "cannot write JUnit report: the file name is empty"),
    ([*SWEEP, "--kernel-size", "3", "--junit", "dir.png"], "cannot write JUnit report 'dir.png': it is a directory"),
    ([*SWEEP, "--kernel-size", "3", "--junit", "/proc/self/j.xml"], "kernel pseudo-file system"),
    ([*SWEEP, "--kernel-size", "3", "--junit", "fifo.toml"], "it exists and is a FIFO"),
    ([*SWEEP, "--kernel-size", "3", "--junit", "nowhere/j.xml"], "does not exist"),
    ([*SWEEP, "--kernel-size", "3", "--junit", f"{LONG}.xml"], "the name is longer than the file system allows"),
    (["propagate", "--plot", ""], "cannot write plot: the file name is empty"),
    (["propagate", "--plot", "dir.png"], "cannot write plot 'dir.png': it is a directory"),
    (["propagate", "--plot", "/proc/x.png"], "kernel pseudo-file system"),
    (["propagate", "--plot", "fifo.png"], "it exists and is a FIFO"),
    (["propagate", "--plot", "nowhere/p.png"], "does not exist"),
    # Bundle targets: only a new path, an empty directory or a convdiff bundle; never '.', a parent, a mount.
    (["compare", *QUICK, "--save-bundle", ""], "cannot save bundle: the directory name is empty"),
    (["compare", *QUICK, "--save-bundle", "."], "is the working directory or one of its parents"),
    (["compare", *QUICK, "--save-bundle", ".."], "is the working directory or one of its parents"),
    (["compare", *QUICK, "--save-bundle", "/"], "is the working directory or one of its parents"),
    (["compare", *QUICK, "--save-bundle", "/dev/shm"], "is a mount point"),
    (["compare", *QUICK, "--save-bundle", "/proc/newdir"], "kernel pseudo-file system"),
    (["compare", *QUICK, "--save-bundle", "/sys/newdir"], "kernel pseudo-file system"),
    (["compare", *QUICK, "--save-bundle", "notes.txt"], "'notes.txt' exists and is not a directory"),
    (["compare", *QUICK, "--save-bundle", "fifo.npy"], "'fifo.npy' exists and is not a directory"),
    (["compare", *QUICK, "--save-bundle", "linkdir.npy"], "'linkdir.npy' exists and is not a directory"),
    (["compare", *QUICK, "--save-bundle", "dir.npy"], "exists and is not a convdiff bundle (it holds inside.txt)"),
    (["compare", *QUICK, "--save-bundle", "nowhere/b"], "does not exist"),
    (["compare", *QUICK, "--save-bundle", "notes.txt/b"], "does not exist"),
    (["compare", *QUICK, "--save-bundle", LONG], "the name is longer than the file system allows"),
    (["run", "xavier-kernel", "--save-bundle", "."], "is the working directory or one of its parents"),
    (["run", "xavier-kernel", "--save-bundle", "dir.npy"], "is not a convdiff bundle"),
    # Special files where a file is read: refused by type, before opening, with the right words.
    (["compare", "--input", "fifo.npy"], "input file 'fifo.npy' is a FIFO (named pipe), not a regular file"),
    (["compare", "--input", "fifo.png"], "input file 'fifo.png' is a FIFO (named pipe), not a regular file"),
    (["compare", "--input", "dir.npy"], "input file 'dir.npy' is a directory, not a regular file"),
    (["compare", "--input", "dir.png"], "input file 'dir.png' is a directory, not a regular file"),
    (["compare", "--input", "zero.npy"], "is a character device (a symbolic link to '/dev/zero')"),
    (["compare", "--input", "zero.png"], "is a character device (a symbolic link to '/dev/zero')"),
    (["compare", "--input", "linkdir.npy"], "is a directory (a symbolic link to 'dir.npy')"),
    (["compare", "--input", "linkfifo.npy"], "is a FIFO (named pipe) (a symbolic link to 'fifo.npy')"),
    (["compare", "--input", "dangling.npy"], "is a symbolic link to 'nowhere.npy', which does not exist"),
    (["compare", "--input", "loop.npy"], "input file 'loop.npy' cannot be read: Too many levels of symbolic links"),
    (["compare", "--input", "/dev/zero"], "unknown input '/dev/zero'"),
    (["compare", "--input", f"{LONG}.npy"], "cannot be read: File name too long"),
    (["compare", "--weights", "fifo.npy", "--shape", "1,8,8,3"], "weights file 'fifo.npy' is a FIFO"),
    (["compare", "--weights", "dir.npy", "--shape", "1,8,8,3"], "weights file 'dir.npy' is a directory"),
    (["compare", "--weights", "zero.npy", "--shape", "1,8,8,3"], "weights file 'zero.npy' is a character device"),
    (["compare", "--weights", "k.npy", "--bias", "fifo.npy", "--shape", "1,8,8,3"], "bias file 'fifo.npy' is a FIFO"),
    (["compare", "--weights", "k.npy", "--bias", "dir.npy", "--shape", "1,8,8,3"], "bias file 'dir.npy' is a directory"),
    (["run", "fifo.toml"], "experiment file 'fifo.toml' is a FIFO (named pipe), not a regular file"),
    (["run", "dir.toml"], "'dir.toml' is a directory but not a convdiff bundle"),
    (["run", "urandom.toml"], "is a character device (a symbolic link to '/dev/urandom')"),
    (["run", "/dev/urandom"], "experiment file '/dev/urandom' is a character device"),
    (["run", "dir.npy"], "'dir.npy' is a directory but not a convdiff bundle"),
    (["sweep", "--grid", "fifo.toml"], "grid file 'fifo.toml' is a FIFO (named pipe), not a regular file"),
    (["sweep", "--grid", "dir.toml"], "grid file 'dir.toml' is a directory, not a regular file"),
    (["sweep", "--grid", "urandom.toml"], "grid file 'urandom.toml' is a character device"),
    (["sweep", "--grid", "/dev/zero"], "grid file '/dev/zero' is a character device"),
    (["sweep", "--grid", "missing.toml"], "grid file 'missing.toml' not found"),
    # Sweeps: bad input is found for every config before the first runs; a sweep that compares nothing fails.
    ([*SWEEP, "--input", "missing.npy", "--kernel-size", "3"], "input file 'missing.npy' not found"),
    (["sweep", "--reference", "numpy", "--candidate", "nn", "--input", "x.npy,fifo.npy"], "input file 'fifo.npy' is a FIFO"),
    ([*SWEEP, "--input", "x.npy"], "input file 'x.npy' has shape 1x8x8x3, the spec expects 1x6x6x3"),
    ([*SWEEP, "--input", "random,pic.gif"], "unknown input 'pic.gif'"),
    ([*SWEEP, "--kernel-size", "3,5", "--shard", "5/5"], "shard 5/5 selects no config: the grid has only 2 configs"),
    ([*SWEEP, "--kernel-size", "3", "--shard", "2/2"], "shard 2/2 selects no config: the grid has only 1 config"),
    (["sweep", "--input-size", "100000", "--kernel-size", "3"], "config 0000 input_size=100000 kernel_size=3: this comparison needs"),
    (["sweep", "--reference", "numpy", "--candidate", "nn", "--shape", "1x8x8x3,0x8x8x3"],
     "config 0001 input_shape=0x8x8x3: input shape must be positive integers"),
    ([*SWEEP, "--seed", "1,99999999999"], "config 0001 input_size=6 seed=99999999999: seed must be an integer in [0, 2**32)"),
    ([*SWEEP, "--kernel-size", "3", "--max-memory", "1KB"], "this comparison needs an estimated"),
    ([*SWEEP, "--seed", ",".join(map(str, range(400))), "--filters", ",".join(map(str, range(1, 401)))],
     "this sweep would run 160,000 configs, more than the limit of 100,000"),
    ([*SWEEP, "--kernel-size", "3", "--shard", "1/0"], "invalid shard '1/0'"),
    ([*SWEEP, "--kernel-size", "3", "--shard", "-1/2"], "invalid shard '-1/2'"),
    ([*SWEEP, "--kernel-size", "3", "--shard", "1/2/3"], "malformed shard '1/2/3'"),
    ([*SWEEP, "--kernel-size", "3", "--shard", "1.5/2"], "malformed shard '1.5/2'"),
    ([*SWEEP, "--kernel-size", "3", "--shard", f"1/{'9' * 30}"], "malformed shard"),
    ([*SWEEP, "--kernel-size", "3", "--expect", "great"], "unknown expected verdict 'great'"),
    ([*SWEEP, "--kernel-size", "3,3"], "sweep axis 'kernel_size' repeats a value"),
    ([*SWEEP, "--kernel-size", ""], "malformed sweep values ''"),
    ([*SWEEP, "--kernel-size", "3", "--shape", "1x8x8x3"], "sweep either the whole input shape"),
]


@pytest.fixture(scope="session")
def valid_bundle(tmp_path_factory) -> Path:
    """A valid bundle (numpy vs caffe: no TensorFlow), written once; tests copy it before changing it."""
    from click.testing import CliRunner

    path = tmp_path_factory.mktemp("bundle") / "okb"
    result = CliRunner().invoke(cli, ["compare", *QUICK, "--save-bundle", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def scratch(tmp_path, monkeypatch, valid_bundle):
    """A working directory of hostile files; the test fails if a refused command changed anything in it."""
    root = tmp_path / "work"
    root.mkdir()
    make_scratch(root, valid_bundle)
    monkeypatch.chdir(root)
    before = tree_state(root)
    yield root
    assert tree_state(root) == before, "a refused command changed the working directory"


@pytest.mark.parametrize(("args", "fragment"), CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_bad_arguments(cli_runner, scratch, args, fragment):
    assert_one_line_error(cli_runner.invoke(cli, args), fragment)


# Nothing was compared: not a pass (exit 1), stated in one line after the summary, with the skips shown.
NOTHING_COMPARED = [
    (["sweep", "--reference", "numpy", "--candidate", "caffe", "--kernel-size", "3", "--padding", "same"],
     "backend 'caffe' has no SAME padding"),
    (["sweep", "--reference", "nn", "--candidate", "keras-call", "--strides", "2", "--dilation", "2"],
     "cannot combine strides"),
    ([*SWEEP, "--kernel-size", "9", "--padding", "valid"], "is larger than the padded input"),
]


@pytest.mark.parametrize(("args", "reason"), NOTHING_COMPARED, ids=lambda a: " ".join(a)[:50] if isinstance(a, list)
                         else None)
def test_a_sweep_that_compares_nothing_fails(cli_runner, scratch, args, reason):
    result = cli_runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 1, result.output
    *document, last = result.output.strip().splitlines()
    assert last.startswith("convdiff: error: no config was compared: all 1 selected configs were skipped"), last
    doc = json.loads("\n".join(document))
    assert doc["ok"] is False and doc["summary"]["compared"] == 0 and doc["summary"]["skipped"] == 1
    assert reason in doc["skipped"][0]["reason"] and doc["configs"][0]["status"] == "skipped"
    table = cli_runner.invoke(cli, args)
    assert table.exit_code == 1 and "Skipped" in table.output and "Traceback" not in table.output


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.toml"))


def expected_fragment(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: ...'"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_bad_experiment_files(cli_runner, path):
    assert_one_line_error(cli_runner.invoke(cli, ["run", str(path)]), expected_fragment(path))


@pytest.mark.parametrize("path", sorted(GRID_CORPUS.glob("*.toml")), ids=lambda p: p.stem)
def test_bad_grid_files(cli_runner, path):
    args = ["sweep", "--reference", "numpy", "--candidate", "nn", "--grid", str(path)]
    assert_one_line_error(cli_runner.invoke(cli, args), expected_fragment(path))


@pytest.mark.parametrize("path", [p for p in corpus_files() if p.stem.startswith("syntax-")], ids=lambda p: p.stem)
def test_toml_syntax_errors_give_the_line(cli_runner, path):
    result = cli_runner.invoke(cli, ["run", str(path)])
    assert result.exit_code == 2 and "(at line " in result.output, result.output


_npy_bytes = npy_bytes


def _huge_header() -> bytes:
    return npy_header((1, 100000, 100000, 3))


def _npz(path: Path, **arrays: np.ndarray) -> bytes:
    np.savez(path, **arrays)
    return path.read_bytes()


def _zip_member(name: str, data: bytes) -> bytes:
    return zip_bytes({name: data})


def _forged_zip(data: bytes, method: int = zipfile.ZIP_DEFLATED, **fields: int) -> bytes:
    """A one-member .npz whose zip headers (local and central) were edited after writing: `usize`,
    `csize` or `flags`, at their offsets in each header."""
    raw = bytearray(zip_bytes({"input.npy": data}, method))
    offsets = {"local": (raw.find(b"PK\x03\x04"), {"flags": 6, "csize": 18, "usize": 22}),
               "central": (raw.find(b"PK\x01\x02"), {"flags": 8, "csize": 20, "usize": 24})}
    for start, where in offsets.values():
        for name, value in fields.items():
            size = 2 if name == "flags" else 4
            raw[start + where[name]:start + where[name] + size] = value.to_bytes(size, "little")
    return bytes(raw)


def _npy_with_header(text: str) -> bytes:
    header = text.encode() + b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(64)


def _bomb(shape: tuple[int, ...]) -> bytes:
    """A legitimate deflated member of zeros: about 1000 times smaller than what it holds."""
    header = npy_header(shape)
    size = int(np.prod(shape)) * 4
    buffer = __import__("io").BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("input.npy", "w", force_zip64=True) as member:
            member.write(header)
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return buffer.getvalue()


def _png_with_trns_palette() -> bytes:
    from hostile import png_chunk

    raw = __import__("zlib").compress(b"".join(b"\x00" + bytes(5) for _ in range(4)))
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 8, 3, 0, 0, 0))
    return (b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"PLTE", bytes(3)) + png_chunk(b"tRNS", b"\x00")
            + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b""))


# name -> (file builder, extra arguments with {path}, expected fragment)
FILE_CASES = {
    "rank2.npy": (lambda p: _npy_bytes(np.zeros((4, 4), np.float32)), ["--input", "{path}"],
                  "has rank 2; layout NHWC expects rank 4"),
    "rank5.npy": (lambda p: _npy_bytes(np.zeros((1, 1, 4, 4, 3), np.float32)), ["--input", "{path}"],
                  "has rank 5; layout NHWC expects rank 4"),
    "rank3-as-nchw.npy": (lambda p: _npy_bytes(np.zeros((3, 4, 4), np.float32)),
                          ["--input", "{path}", "--input-layout", "NCHW"], "has rank 3; layout NCHW expects rank 4"),
    "complex.npy": (lambda p: _npy_bytes(np.zeros((1, 4, 4, 3), np.complex64)), ["--input", "{path}"],
                    "has dtype complex64; expected a numeric array"),
    "strings.npy": (lambda p: _npy_bytes(np.array([["ab"] * 3] * 4)), ["--input", "{path}"],
                    "has dtype <U2; expected a numeric array"),
    "object.npy": (lambda p: _npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True),
                   ["--input", "{path}"], "holds pickled objects, which convdiff refuses to load"),
    "pickle.npy": (lambda p: pickle.dumps({"x": [1, 2, 3]}), ["--input", "{path}"],
                   "holds pickled objects, which convdiff refuses to load"),
    "object.npz": (lambda p: _npz(p, input=np.array([None, 1], dtype=object)), ["--input", "{path}"],
                   "holds pickled objects"),
    "truncated.npy": (lambda p: _npy_bytes(np.zeros((1, 8, 8, 3), np.float32))[:200], ["--input", "{path}"],
                      "declares shape 1x8x8x3 float32 (768 B) but holds only 72 B of data: truncated or corrupt"),
    "header-only.npy": (lambda p: _npy_bytes(np.zeros((1, 8, 8, 3), np.float32))[:60], ["--input", "{path}"],
                        "is not a valid .npy/.npz file"),
    "zero-dim.npy": (lambda p: _npy_bytes(np.zeros((1, 0, 4, 3), np.float32)), ["--input", "{path}"],
                     "is empty (shape 1x0x4x3)"),
    # A 128-byte file declaring 112 GiB: refused from its header, never allocated.
    "huge-header.npy": (lambda p: _huge_header(), ["--input", "{path}"],
                        "declares shape 1x100000x100000x3 float32 (112 GiB) but holds only 0 B"),
    "huge-member.npz": (lambda p: _zip_member("input.npy", _huge_header()), ["--input", "{path}"],
                        "(array 'input') declares shape 1x100000x100000x3"),
    "not-a-zip.npz": (lambda p: b"PK\x03\x04 definitely not a zip", ["--input", "{path}"],
                      "is not a valid .npy/.npz file"),
    "two-keys.npz": (lambda p: _npz(p, a=np.zeros((1, 4, 4, 3)), b=np.zeros((1, 4, 4, 3))), ["--input", "{path}"],
                     "has no 'input' array and more than one array (keys found: a, b)"),
    "nothing.npz": (lambda p: _npz(p), ["--input", "{path}"], "holds no arrays"),
    "no-kernel.npz": (lambda p: _npz(p, weights=np.zeros((3, 3, 3, 8)), bias=np.zeros(8)), ["--weights", "{path}"],
                      "has no 'kernel' array (keys found: bias, weights"),
    "kernel-rank3.npy": (lambda p: _npy_bytes(np.zeros((3, 3, 3), np.float32)), ["--weights", "{path}"],
                         "holds a kernel of rank 3"),
    "kernel-empty.npy": (lambda p: _npy_bytes(np.zeros((3, 3, 3, 0), np.float32)), ["--weights", "{path}"],
                         "holds an empty kernel"),
    "kernel-wrong-channels.npy": (lambda p: _npy_bytes(np.zeros((3, 3, 5, 8), np.float32)),
                                  ["--weights", "{path}", "--shape", "1,8,8,3"], "has 5 input channel(s), the input has 3"),
    "fake.png": (lambda p: b"GIF89a this is not a png", ["--input", "{path}"], "is not a decodable PNG/JPEG image"),
    "truncated.png": (lambda p: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ["--input", "{path}"],
                      "is not a decodable PNG/JPEG image"),
    "fake.jpg": (lambda p: b"\xff\xd8\xff garbage", ["--input", "{path}"], "is not a decodable PNG/JPEG image"),
    "not-utf8.toml": (lambda p: b'name = "\xff\xfe"\n', ["run", "{path}"], "could not be read"),
    # Zip archives checked from their directory before any member is decompressed.
    "member-not-npy.npz": (lambda p: zip_bytes({"input.txt": b"hello"}), ["--input", "{path}"],
                           "(array 'input.txt') is not an array (an .npz holds only .npy members)"),
    "member-directory.npz": (lambda p: zip_bytes({"input/": b""}), ["--input", "{path}"], "is not an array"),
    "member-bzip2.npz": (lambda p: zip_bytes({"input.npy": _npy_bytes(np.zeros((1, 4, 4, 1), np.float32))},
                                             zipfile.ZIP_BZIP2), ["--input", "{path}"],
                         "uses zip compression method 12; NumPy writes only stored or deflated members"),
    "member-lzma.npz": (lambda p: zip_bytes({"input.npy": _npy_bytes(np.zeros((1, 4, 4, 1), np.float32))},
                                            zipfile.ZIP_LZMA), ["--input", "{path}"], "uses zip compression method 14"),
    "member-encrypted.npz": (lambda p: _forged_zip(_npy_bytes(np.zeros((1, 4, 4, 1), np.float32)), flags=1),
                             ["--input", "{path}"], "(array 'input') is encrypted"),
    # A directory claiming 2 GiB from a few hundred deflated bytes: more than DEFLATE can produce.
    "member-forged-size.npz": (lambda p: _forged_zip(_npy_bytes(np.zeros((1, 4, 4, 1), np.float32)), usize=2**31),
                               ["--input", "{path}"], "more than DEFLATE can produce: a forged or corrupt archive"),
    "member-stored-sizes.npz": (lambda p: _forged_zip(_npy_bytes(np.zeros((1, 4, 4, 1), np.float32)),
                                                      zipfile.ZIP_STORED, usize=10**6),
                                ["--input", "{path}"], "is a stored member whose sizes disagree"),
    # A real compression bomb (64 MiB of zeros in 64 KiB): refused from its header, never decompressed.
    "bomb.npz": (lambda p: _bomb((1, 2048, 2048, 4)), ["--input", "{path}", "--max-memory", "10MB"],
                 "this comparison needs an estimated"),
    "member-truncated.npz": (lambda p: zip_bytes({"input.npy": _npy_bytes(np.zeros((1, 8, 8, 3), np.float32))[:300]}),
                             ["--input", "{path}"], "(array 'input') declares shape 1x8x8x3 float32"),
    "many-members.npz": (lambda p: zip_bytes({f"a{i}.npy": b"" for i in range(65)}), ["--input", "{path}"],
                         "holds 65 members; convdiff reads at most 64"),
    "weights-junk-member.npz": (lambda p: zip_bytes({"kernel.npy": _npy_bytes(np.zeros((3, 3, 3, 2), np.float32)),
                                                     "junk.npy": _huge_header()}), ["--weights", "{path}", *SMALL[:2]],
                                "declares shape 1x100000x100000x3"),
    "weights-extra-array.npz": (lambda p: _npz(p, kernel=np.zeros((3, 3, 3, 2), np.float32), extra=np.zeros(2)),
                                ["--weights", "{path}", *SMALL[:2]], "has unexpected arrays extra"),
    "input-rank2.npz": (lambda p: _npz(p, input=np.zeros((8, 8), np.float32)), ["--input", "{path}"],
                        "has rank 2; layout NHWC expects rank 4"),
    "input-strings.npz": (lambda p: _npz(p, input=np.array([["a"] * 3] * 8)), ["--input", "{path}"],
                          "has dtype <U1; expected a numeric array"),
    # .npy headers: every field checked before a byte of data is read.
    "structured.npy": (lambda p: _npy_bytes(np.zeros((1, 4, 4, 1), dtype=[("a", "<f4")])), ["--input", "{path}"],
                       "expected a numeric array"),
    "datetime.npy": (lambda p: _npy_bytes(np.zeros((1, 4, 4, 1), dtype="M8[s]")), ["--input", "{path}"],
                     "has dtype datetime64[s]; expected a numeric array"),
    "scalar.npy": (lambda p: _npy_bytes(np.float32(3)), ["--input", "{path}"], "has rank 0; layout NHWC expects rank 4"),
    "huge-dims.npy": (lambda p: npy_header((2**62, 2**62, 1, 1)), ["--input", "{path}"], "truncated or corrupt"),
    "negative-dims.npy": (lambda p: _npy_bytes(np.zeros((1, 4, 4, 1), np.float32)).replace(b"(1, 4, 4, 1)", b"(1, -4, 4, 1)"),
                          ["--input", "{path}"], "declares an invalid shape (1, -4, 4, 1)"),
    "version-9.npy": (lambda p: b"\x93NUMPY\x09\x00" + _npy_bytes(np.zeros((1, 4, 4, 1), np.float32))[8:],
                      ["--input", "{path}"], "unknown .npy format version 9.0"),
    "empty.npy": (lambda p: b"", ["--input", "{path}"], "is not a valid .npy/.npz file"),
    # A header is parsed as a literal, never evaluated (the scratch directory would show the new file).
    "header-eval.npy": (lambda p: _npy_with_header(f"{{'descr': __import__('os').system('touch {p}.pwned'), "
                                                   "'fortran_order': False, 'shape': (1, 4, 4, 1)}"),
                        ["--input", "{path}"], "is not a valid .npy/.npz file"),
    # Images: the size from the header (PNG IHDR, JPEG SOF), refused before anything is decoded.
    "huge.png": (lambda p: png_bytes(20000, 20000, idat=b""), ["--input", "{path}"], "this comparison needs an estimated"),
    "huge.jpg": (lambda p: jpeg_header(60000, 60000), ["--input", "{path}"], "this comparison needs an estimated"),
    "too-wide.png": (lambda p: png_bytes(100000, 1, idat=b""), ["--input", "{path}"], "more than 65536 a side"),
    "zero-size.png": (lambda p: png_bytes(0, 0, idat=b""), ["--input", "{path}"], "its header declares 0x0 pixels"),
    "empty.png": (lambda p: b"", ["--input", "{path}"], "starts with neither the PNG signature"),
    "gif-named.png": (lambda p: b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", ["--input", "{path}"],
                      "starts with neither the PNG signature nor a JPEG start-of-image marker"),
    "bad-colour.png": (lambda p: png_bytes(4, 4, colour=5, idat=b""), ["--input", "{path}"], "colour type 5"),
    "lying.png": (lambda p: png_bytes(8, 8, idat=b"not zlib data"), ["--input", "{path}"],
                  "is not a decodable PNG/JPEG image"),
    "cmyk.jpg": (lambda p: jpeg_header(8, 8, components=4), ["--input", "{path}"], "it has 4 colour components"),
    "no-frame.jpg": (lambda p: b"\xff\xd8\xff\xd9", ["--input", "{path}"], "no frame header (SOF)"),
    "zero-size.jpg": (lambda p: jpeg_header(0, 8), ["--input", "{path}"], "its header declares 0x8 pixels"),
    "shape-mismatch.png": (lambda p: png_bytes(8, 8), ["--input", "{path}", "--shape", "1,9,9,3"],
                           "has shape 1x8x8x3, the spec expects 1x9x9x3"),
    "palette-alpha.png": (lambda p: _png_with_trns_palette(), ["--input", "{path}", "--shape", "1,4,5,3"],
                          "has shape 1x4x5x4, the spec expects 1x4x5x3"),
    "shape-mismatch.npy": (lambda p: _npy_bytes(np.zeros((1, 8, 8, 3), np.float32)), ["--input", "{path}", "--shape",
                                                                                      "1,9,9,3"],
                           "has shape 1x8x8x3, the spec expects 1x9x9x3"),
    "bias-rank2.npy": (lambda p: _npy_bytes(np.zeros((2, 1), np.float32)),
                       ["--weights", str(Path("{dir}") / "k.npy"), "--bias", "{path}", *SMALL[:2]], "has shape 2x1"),
    "experiment-too-large.toml": (lambda p: b"#" * (1 << 20) + b"\n", ["run", "{path}"],
                                  "is larger than 1 MiB, the limit for experiment files"),
    "grid-too-large.toml": (lambda p: b"#" * (1 << 20) + b"\n", ["sweep", "--grid", "{path}"],
                            "is larger than 1 MiB, the limit for grid files"),
    "experiment-deep.toml": (lambda p: b"a = " + b"[" * 100000 + b"]" * 100000 + b"\n", ["run", "{path}"],
                             "nested more than 32 levels deep"),
    "grid-deep.toml": (lambda p: b"[sweep]\nkernel_size = " + b"[" * 40 + b"3" + b"]" * 40 + b"\n",
                       ["sweep", "--grid", "{path}"], "nested more than 32 levels deep"),
    "experiment-bigint.toml": (lambda p: b"[[case]]\nseed = " + b"9" * 5000 + b"\n", ["run", "{path}"],
                               "invalid TOML: Exceeds the limit (4300 digits)"),
}


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_bad_array_files(cli_runner, tmp_path, name):
    build, extra, fragment = FILE_CASES[name]
    path = tmp_path / name
    path.write_bytes(build(path))
    np.save(tmp_path / "k.npy", np.zeros((3, 3, 3, 2), np.float32))
    args = [a.replace("{path}", str(path)).replace("{dir}", str(tmp_path)) for a in extra]
    command = args if args[0] in ("run", "sweep") else ["compare", *args]
    before = tree_state(tmp_path)
    assert_one_line_error(cli_runner.invoke(cli, command), fragment)
    assert tree_state(tmp_path) == before


# --- tampered bundles: every one refused (exit 2) before anything runs ------------------------------


def _manifest(edit):  # noqa: ANN001, ANN202
    """A mutation of bundle.json: `edit(manifest, first_case)` changes the parsed document in place."""
    def mutate(bundle: Path) -> None:
        doc = json.loads((bundle / "bundle.json").read_text())
        edit(doc, doc["cases"][0])
        (bundle / "bundle.json").write_text(json.dumps(doc))
    return mutate


def _raw_manifest(text: str):  # noqa: ANN202
    return lambda bundle: (bundle / "bundle.json").write_text(text)


def _arrays(**changes):  # noqa: ANN003, ANN202
    """A mutation of case-001.npz: arrays replaced, added, or removed (None)."""
    def mutate(bundle: Path) -> None:
        with np.load(bundle / "case-001.npz", allow_pickle=False) as saved:
            arrays = {k: saved[k] for k in saved.files}
        for key, value in changes.items():
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value(arrays[key]) if callable(value) else value
        np.savez(bundle / "case-001.npz", **arrays)
    return mutate


def _flip_one(array: np.ndarray) -> np.ndarray:
    changed = array.copy()
    changed.flat[0] = np.nextafter(changed.flat[0], np.inf)
    return changed


def _set(path: str, value):  # noqa: ANN001, ANN202
    """Set a dotted path of the first case (`options.top_k`) to `value`."""
    def edit(doc, case):  # noqa: ANN001
        *parents, last = path.split(".")
        node = case
        for key in parents:
            node = node[key]
        node[last] = value
    return _manifest(edit)


def _delete(path: str):  # noqa: ANN202
    def edit(doc, case):  # noqa: ANN001
        *parents, last = path.split(".")
        node = case
        for key in parents:
            node = node[key]
        del node[last]
    return _manifest(edit)


def _move_out(bundle: Path) -> None:
    shutil.copy(bundle / "case-001.npz", bundle.parent / "outside.npz")
    _set("arrays", "../outside.npz")(bundle)


def _symlinked_arrays(bundle: Path) -> None:
    (bundle / "case-001.npz").rename(bundle.parent / "real.npz")
    os.symlink(bundle.parent / "real.npz", bundle / "case-001.npz")


def _fifo(name: str):  # noqa: ANN202
    def mutate(bundle: Path) -> None:
        (bundle / name).unlink()
        os.mkfifo(bundle / name)
    return mutate


BUNDLE_CASES = {
    # The examples.
    "cases-5": (_manifest(lambda d, c: d.update(cases=5)), "bundle.json: cases: 5 is not of type 'array'"),
    "reference-a-string": (_set("reference", "nn"), "cases[0].reference: 'nn' is not of type 'object'"),
    "top-k-abc": (_set("options.top_k", "abc"), "cases[0].options.top_k: 'abc' is not of type 'integer'"),
    "missing-rtol": (_delete("options.rtol"), "cases[0].options: 'rtol' is a required property"),
    "list-valued-option": (_set("options.equal_nan", [True]), "options.equal_nan: [True] is not of type 'boolean'"),
    "list-valued-tolerance": (_set("options.tolerance", ["bound"]), "options.tolerance: ['bound'] is not one of"),
    "deep-json": (_raw_manifest("[" * 100000 + "]" * 100000), "nested more than 32 levels deep"),
    "16x16-input-under-8x8": (_arrays(input=np.zeros((1, 16, 16, 2), np.float32)),
                              "array 'input' has shape 1x16x16x2, its spec gives 1x6x6x2"),
    "spec-10-12": (_manifest(lambda d, c: [c[w]["spec"].update(input_shape=[1, 10**6, 10**6, 2]) for w in
                                           ("reference", "candidate")]), "the recorded output_shape"),
    "spec-10-12-consistent": (_manifest(lambda d, c: [c[w]["spec"].update(input_shape=[1, 10**6, 10**6, 2],
                                                                          output_shape=[1, 10**6, 10**6, 2])
                                                      for w in ("reference", "candidate")]),
                              "array 'input' has shape 1x6x6x2, its spec gives 1x1000000x1000000x2"),
    "unknown-verdict": (_set("verdict", "fine"), "cases[0].verdict: 'fine' is not one of"),
    "wrong-array-name": (_arrays(input=None, inputs=np.zeros((1, 6, 6, 2), np.float32)),
                         "holds an array 'inputs' that no bundle has"),
    "extra-array": (_arrays(extra=np.zeros(3, np.float32)), "holds an array 'extra' that no bundle has"),
    "missing-array": (_arrays(candidate_output=None), "case-001.npz lacks candidate_output"),
    "path-leaves-bundle": (_move_out, "cases[0].arrays: '../outside.npz' does not match"),
    "absolute-path": (_set("arrays", "/etc/passwd"), "cases[0].arrays: '/etc/passwd' does not match"),
    "string-array": (_arrays(input=np.array([["a"] * 2] * 6)), "has dtype <U1; expected a numeric array"),
    "2-d-input": (_arrays(input=np.zeros((6, 6), np.float32)), "array 'input' has shape 6x6, its spec gives 1x6x6x2"),
    "2-d-kernel": (_arrays(reference_kernel=np.zeros((3, 3), np.float32)), "array 'reference_kernel' has shape 3x3"),
    "5-d-output": (_arrays(candidate_output=np.zeros((1, 1, 6, 6, 2), np.float32)), "array 'candidate_output' has"),
    # Data changed after the bundle was written: the fingerprints say so.
    "input-one-ulp": (_arrays(input=_flip_one), "array 'input' of case-001.npz does not match its recorded sha256"),
    "kernel-one-ulp": (_arrays(candidate_kernel=_flip_one), "array 'candidate_kernel' of case-001.npz does not match"),
    "output-one-ulp": (_arrays(reference_output=_flip_one), "array 'reference_output' of case-001.npz does not"),
    "bias-one-ulp": (_arrays(reference_bias=_flip_one), "array 'reference_bias' of case-001.npz does not match"),
    "input-as-float64": (_arrays(input=lambda a: a.astype(np.float64)), "array 'input' has dtype float64"),
    "fingerprint-edited": (_set("arrays_sha256.input", "0" * 64), "array 'input' of case-001.npz does not match"),
    "input-fingerprint-edited": (_manifest(lambda d, c: [c[w].update(input_sha256="0" * 64) for w in ("reference", "candidate")]),
                                 "the reference input does not match its recorded input_sha256"),
    "fingerprint-missing": (_delete("arrays_sha256.input"), "the recorded fingerprints name"),
    "fingerprints-gone": (_delete("arrays_sha256"), "'arrays_sha256' is a required property"),
    "bad-fingerprint": (_set("arrays_sha256.input", "not-a-hash"), "does not match '^[0-9a-f]{64}$'"),
    # The manifest's own structure.
    "incomplete": (_manifest(lambda d, c: d.update(complete=False)), "is incomplete: the run that wrote it was"),
    "version-9": (_manifest(lambda d, c: d.update(version=9)), "format version 9 is not one this convdiff reads"),
    "version-true": (_manifest(lambda d, c: d.update(version=True)), "lacks convdiff's signature"),
    "no-signature": (_manifest(lambda d, c: d.pop("format")), "lacks convdiff's signature"),
    "not-an-object": (_raw_manifest("[1, 2, 3]"), "lacks convdiff's signature"),
    "not-json": (_raw_manifest("{cases: }"), "bundle.json: invalid JSON"),
    "nan-literal": (_raw_manifest('{"format": "convdiff-bundle", "version": 3, "x": NaN}'), "NaN is not a JSON number"),
    "huge-number": (_raw_manifest('{"format": "convdiff-bundle", "version": 3, "x": 1e999}'), "is out of range"),
    "huge-integer": (_raw_manifest('{"format": "convdiff-bundle", "version": 3, "x": ' + "9" * 5000 + "}"),
                     "invalid JSON"),
    "no-cases": (_manifest(lambda d, c: d.update(cases=[], planned=0)), "holds no cases"),
    "extra-top-key": (_manifest(lambda d, c: d.update(note="hi")), "Additional properties are not allowed ('note'"),
    "extra-case-key": (_set("script", "rm -rf /"), "Additional properties are not allowed ('script'"),
    "unknown-backend": (_set("reference.backend", "tensorflow"), "unknown backend 'tensorflow'"),
    "backend-path": (_set("reference.backend", "../../evil"), "'../../evil' does not match"),
    "seed-huge": (_set("reference.spec.seed", 10**30), "is greater than the maximum of 4294967295"),
    "filters-string": (_set("reference.spec.filters", "2"), "spec.filters: '2' is not of type 'integer'"),
    "filters-zero": (_set("reference.spec.filters", 0), "spec.filters: 0 is less than the minimum of 1"),
    "unknown-spec-field": (_set("reference.spec.groups_of", 2), "unknown spec field 'groups_of'"),
    "padding-negative": (_set("reference.spec.padding", [[-1, 1], [1, 1]]), "is less than the minimum of 0"),
    "initializer-eval": (_set("reference.spec.initializer", "__import__('os').system('x')"), "malformed initializer"),
    "dtype-unknown": (_set("reference.dtype", "float8"), "reference.dtype: 'float8' is not one of"),
    "kernel-dtype-lie": (_set("reference.kernel_dtype", "float64"), "array 'reference_kernel' has dtype float32, the "
                                                                    "manifest gives float64"),
    "output-dtype-lie": (_set("candidate.output_dtype", "float16"), "array 'candidate_output' has dtype float32"),
    "atol-without-rtol": (_manifest(lambda d, c: c["options"].update(atol=1e-3, rtol=None)),
                          "options atol and rtol must be given together"),
    "atol-negative": (_set("options.atol", -1), "options.atol: -1 is less than the minimum of 0"),
    "top-k-huge": (_set("options.top_k", 10**9), "is greater than the maximum of 1000000"),
    "shared-kernel-string": (_set("options.shared_kernel", "no"), "options.shared_kernel: 'no' is not of type 'boolean'"),
    "name-a-list": (_set("name", ["a"]), "cases[0].name: ['a'] is not of type 'string'"),
    "verdict-null": (_set("verdict", None), "cases[0].verdict: None is not one of"),
    "spec-edited-padding": (_set("reference.spec.padding", "valid"), "the recorded"),
    "spec-edited-kernel": (_manifest(lambda d, c: [c[w]["spec"].update(kernel_size=[1, 1], output_shape=[1, 8, 8, 2])
                                                   for w in ("reference", "candidate")]),
                           "array 'reference_kernel' has shape 3x3x2x2, its spec gives 1x1x2x2"),
    "two-cases-one-file": (_manifest(lambda d, c: d.update(cases=[c, c], planned=2)),
                           "two cases name the same arrays file"),
    # Files of the bundle directory.
    "foreign-file": (lambda b: (b / "notes.txt").write_text("mine"), "holds files convdiff did not write (notes.txt)"),
    "foreign-subdirectory": (lambda b: (b / "sub").mkdir(), "holds files convdiff did not write (sub)"),
    "symlinked-arrays": (_symlinked_arrays, "holds files convdiff did not write (case-001.npz)"),
    "fifo-manifest": (_fifo("bundle.json"), "holds files convdiff did not write (bundle.json)"),
    "fifo-arrays": (_fifo("case-001.npz"), "holds files convdiff did not write (case-001.npz)"),
    "arrays-not-zip": (lambda b: (b / "case-001.npz").write_bytes(npy_bytes(np.zeros(3))),
                       "case-001.npz is a .npy file, not an .npz archive"),
    "arrays-garbage": (lambda b: (b / "case-001.npz").write_bytes(b"PK\x03\x04garbage"), "is not a valid .npy/.npz file"),
    "arrays-missing": (lambda b: (b / "case-001.npz").unlink(), "bundle arrays file"),
    "manifest-too-large": (_raw_manifest(" " * (16 << 20) + "{}"), "is larger than 16 MiB"),
    "arrays-pickled": (lambda b: np.savez(b / "case-001.npz", input=np.array([{"x": 1}], dtype=object)), "pickled"),
}


@pytest.mark.parametrize("name", sorted(BUNDLE_CASES))
def test_tampered_bundles_are_refused(cli_runner, valid_bundle, tmp_path, monkeypatch, name):
    mutate, fragment = BUNDLE_CASES[name]
    bundle = tmp_path / "okb"
    shutil.copytree(valid_bundle, bundle)
    mutate(bundle)
    monkeypatch.chdir(tmp_path)
    before = tree_state(tmp_path)
    assert_one_line_error(cli_runner.invoke(cli, ["run", "okb"]), fragment)
    assert tree_state(tmp_path) == before


def test_the_valid_bundle_replays(cli_runner, valid_bundle):
    result = cli_runner.invoke(cli, ["run", str(valid_bundle)])
    assert result.exit_code == 0, result.output


def test_bias_file_of_the_wrong_length(cli_runner, tmp_path):
    kernel, bias = tmp_path / "k.npy", tmp_path / "b.npy"
    np.save(kernel, np.zeros((3, 3, 3, 8), np.float32))
    np.save(bias, np.zeros(5, np.float32))
    result = cli_runner.invoke(cli, ["compare", "--weights", str(kernel), "--bias", str(bias), "--shape", "1,8,8,3"])
    assert_one_line_error(result, "has shape 5; the kernel (HWIO) has 8 output channels")


@pytest.mark.parametrize("args", [
    ["compare", "--shape", "1,100000,100000,3"],
    ["compare", "--seed", "-1"],
    ["run", str(CORPUS / "syntax-missing-equals.toml")],
    ["compare", "--top", "-1"],
], ids=["huge-shape", "negative-seed", "toml-syntax", "usage-error"])
def test_real_process_prints_one_line_on_stderr(args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "convdiff", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convdiff: error: "), proc.stderr
