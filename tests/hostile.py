"""What the bad-input and fault tests share: a scratch directory of hostile files, a fingerprint of a
directory tree (to prove that a refused command changed nothing), and the one-line-error assertion."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (links not followed, FIFOs never opened): type, mode and content hash."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                state[rel] = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = ("dir", stat.S_IMODE(info.st_mode), info.st_ino)
            else:
                state[rel] = ("special", stat.S_IFMT(info.st_mode))
    return state


def assert_one_line_error(result, fragment: str, code: int = 2) -> None:  # noqa: ANN001
    """Exit `code`, one line `convdiff: error: ...` holding `fragment`, never a traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("convdiff: error: "), lines[0]
    assert fragment in lines[0], lines[0]


def npy_bytes(array: np.ndarray, **kw) -> bytes:  # noqa: ANN003
    buffer = io.BytesIO()
    np.save(buffer, array, **kw)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A .npy header alone, declaring `shape`: no data follows."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, colour: int = 2, depth: int = 8, idat: bytes | None = None) -> bytes:
    """A PNG of `width` x `height` (zero pixels unless `idat` is given: a header that lies about its data)."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if idat is None:
        channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour, 1)
        idat = zlib.compress(b"".join(b"\x00" + bytes(width * channels) for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_header(width: int, height: int, components: int = 3) -> bytes:
    """A JPEG start of image and frame header claiming `width` x `height`, and nothing else."""
    sof = struct.pack(">HBHHB", 8 + 3 * components, 8, height, width, components)
    sof += b"".join(bytes((i + 1, 0x11, 0)) for i in range(components))
    return b"\xff\xd8\xff\xc0" + sof + b"\xff\xd9"


def make_scratch(root: Path, bundle: Path | None = None) -> Path:
    """Hostile and valid files in `root`: arrays, images, special files, links, and a valid bundle `okb`."""
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.random((1, 8, 8, 3)).astype(np.float32))
    np.save(root / "k.npy", rng.random((3, 3, 3, 2)).astype(np.float32))
    np.save(root / "b.npy", np.zeros(2, np.float32))
    (root / "x.png").write_bytes(png_bytes(8, 8))
    (root / "notes.txt").write_text("a file convdiff never wrote\n")
    os.mkfifo(root / "fifo.npy")
    os.mkfifo(root / "fifo.png")
    os.mkfifo(root / "fifo.toml")
    os.mkdir(root / "dir.npy")
    os.mkdir(root / "dir.png")
    os.mkdir(root / "dir.toml")
    (root / "dir.npy" / "inside.txt").write_text("keep")
    for name, target in (("zero.npy", "/dev/zero"), ("urandom.toml", "/dev/urandom"), ("zero.png", "/dev/zero"),
                         ("linkdir.npy", "dir.npy"), ("linkfifo.npy", "fifo.npy"), ("dangling.npy", "nowhere.npy"),
                         ("loop.npy", "loop.npy"), ("null.png", "/dev/null")):
        os.symlink(target, root / name)
    if bundle is not None:
        shutil.copytree(bundle, root / "okb")
    return root
