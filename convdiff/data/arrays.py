"""Reading arrays from .npy/.npz files: no pickles, and every header checked before a byte of data is read.

NumPy allocates the array a header declares before it reads the data: a 128-byte file declaring
1x100000x100000x3 float32 asks for 112 GiB. So the headers come first (`array_headers`: shape,
dtype and size of every array, from the .npy header and, in an .npz, the zip directory), callers check
them against what they expect and against the memory limit, and only then `read_arrays` reads the
arrays they asked for, nothing else.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convdiff.data.files import open_regular
from convdiff.errors import BadFileError
from convdiff.spec.parse import fmt_values as _fmt

NUMERIC_KINDS = "fiub"
"""Floating point, signed and unsigned integers, booleans."""
MAX_MEMBERS = 64
"""An .npz convdiff reads holds a handful of arrays (a bundle case: at most 8)."""
MAX_HEADER_BYTES = 10_000
"""NumPy's own default cap on a .npy header."""
DEFLATE_MAX_RATIO = 1032
"""DEFLATE cannot expand data by more than about 1032:1; a member claiming more is forged or corrupt."""


@dataclass(frozen=True)
class ArrayHeader:
    """What a .npy header (or an .npz member's) declares, read without reading the data."""

    name: str
    """The .npz key ('' for a .npy file)."""
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n * self.dtype.itemsize

    def describe(self) -> str:
        return f"shape {_fmt(self.shape) or 'scalar'} {self.dtype}"


def _where(path: Path, what: str, name: str = "") -> str:
    return f"{what} file '{path}'" + (f" (array '{name}')" if name else "")


def _read_header(handle: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    fmt = np.lib.format
    start = handle.read(1)
    handle.seek(-len(start), 1)
    if start == b"\x80":  # a pickle's protocol marker: what np.save(allow_pickle=True) of objects, or pickle.dump, write
        raise BadFileError(f"{where} holds pickled objects, which convdiff refuses to load")
    try:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(handle, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(handle, max_header_size=MAX_HEADER_BYTES)
        elif version == (3, 0):
            shape, fortran, dtype = _read_header_3_0(handle)
        else:
            raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError,
            UnicodeDecodeError) as exc:
        text = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise BadFileError(f"{where} is not a valid .npy/.npz file: {text}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadFileError(f"{where} could not be read: {' '.join(str(exc).split())[:160]}") from None
    if dtype.hasobject:
        raise BadFileError(f"{where} holds pickled objects, which convdiff refuses to load")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in NUMERIC_KINDS:
        raise BadFileError(f"{where} has dtype {dtype}; expected a numeric array")
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise BadFileError(f"{where} declares an invalid shape {shape!r}")
    return tuple(shape), dtype, bool(fortran)


def _read_header_3_0(handle: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Format 3.0 is 2.0 with a UTF-8 header (NumPy has no public reader for it): parsed the same way,
    as a literal, never evaluated."""
    import ast
    import struct

    raw = handle.read(4)
    if len(raw) != 4:
        raise EOFError("the header length is cut off")
    (length,) = struct.unpack("<I", raw)
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"header of {length} bytes is longer than {MAX_HEADER_BYTES}")
    text = handle.read(length)
    if len(text) != length:
        raise EOFError("the header is cut off")
    header = ast.literal_eval(text.decode("utf-8"))
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError("the header is not a dict of descr, fortran_order and shape")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape) or not isinstance(fortran, bool):
        raise ValueError(f"shape {shape!r} or fortran_order {fortran!r} is malformed")
    return shape, fortran, np.lib.format.descr_to_dtype(header["descr"])


def _check_size(header: ArrayHeader, available: int, where: str) -> None:
    if header.nbytes > available:
        from convdiff.data.memory import format_size

        raise BadFileError(f"{where} declares {header.describe()} ({format_size(header.nbytes)}) but holds only "
                           f"{format_size(max(available, 0))} of data: truncated or corrupt")


def _is_zip(handle: BinaryIO) -> bool:
    start = handle.read(4)
    handle.seek(0)
    return start in (b"PK\x03\x04", b"PK\x05\x06")


def _members(archive: zipfile.ZipFile, path: Path, what: str) -> dict[str, zipfile.ZipInfo]:
    """The .npz members by key, after the zip directory itself was checked."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BadFileError(f"{_where(path, what)} holds {len(infos)} members; convdiff reads at most {MAX_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        where = _where(path, what, name[:-4] if name.endswith(".npy") else name)
        if info.is_dir() or not name.endswith(".npy"):
            raise BadFileError(f"{where} is not an array (an .npz holds only .npy members)")
        if info.flag_bits & 0x1:
            raise BadFileError(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadFileError(f"{where} uses zip compression method {info.compress_type}; NumPy writes only "
                               "stored or deflated members")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > info.compress_size * DEFLATE_MAX_RATIO + 1024:
            raise BadFileError(f"{where} claims {info.file_size} bytes from {info.compress_size} compressed, more "
                               "than DEFLATE can produce: a forged or corrupt archive")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise BadFileError(f"{where} is a stored member whose sizes disagree: a forged or corrupt archive")
        key = name[:-4]
        if key in members:
            raise BadFileError(f"{_where(path, what)} holds array '{key}' twice")
        members[key] = info
    return members


@contextlib.contextmanager
def _open_arrays(path: str | Path, what: str) -> Iterator[tuple[dict[str, ArrayHeader], Callable[[str], np.ndarray]]]:
    """Headers of every array in the file, and a reader for one of them by key."""
    path = Path(path)
    with open_regular(path, what) as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        try:
            if not _is_zip(handle):
                shape, dtype, fortran = _read_header(handle, _where(path, what))
                header = ArrayHeader("", shape, dtype, fortran)
                _check_size(header, size - handle.tell(), _where(path, what))

                def read_npy(key: str) -> np.ndarray:
                    handle.seek(0)
                    return _read_array(handle, header, _where(path, what))

                yield {"": header}, read_npy
                return
            try:
                archive = zipfile.ZipFile(handle)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
                raise BadFileError(f"{_where(path, what)} is not a valid .npy/.npz file: "
                                   f"{' '.join(str(exc).split())[:160]}") from None
            with archive:
                members = _members(archive, path, what)
                headers = {}
                for key, info in members.items():
                    where = _where(path, what, key)
                    try:
                        with archive.open(info) as member:
                            shape, dtype, fortran = _read_header(member, where)
                            headers[key] = ArrayHeader(key, shape, dtype, fortran)
                            _check_size(headers[key], info.file_size - member.tell(), where)
                    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                        if isinstance(exc, BadFileError):
                            raise
                        raise BadFileError(f"{where} could not be read: {' '.join(str(exc).split())[:160]}") from None

                def read_member(key: str) -> np.ndarray:
                    where = _where(path, what, key)
                    try:
                        with archive.open(members[key]) as member:
                            return _read_array(member, headers[key], where)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise BadFileError(f"{where} could not be read: {' '.join(str(exc).split())[:160]}") from None

                yield headers, read_member
        except OSError as exc:
            raise BadFileError(f"{_where(path, what)} could not be read: {exc.strerror or exc}") from None


def _read_array(handle: BinaryIO, header: ArrayHeader, where: str) -> np.ndarray:
    try:
        array = np.lib.format.read_array(handle, allow_pickle=False, max_header_size=MAX_HEADER_BYTES)
    except MemoryError:
        raise BadFileError(f"{where} is too large to load into memory ({header.describe()})") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise BadFileError(f"{where} holds pickled objects, which convdiff refuses to load") from None
        raise BadFileError(f"{where} is not a valid .npy file: {' '.join(str(exc).split())[:160]}") from None
    if array.shape != header.shape or array.dtype != header.dtype:  # pragma: no cover - NumPy reads what it declared
        raise BadFileError(f"{where} changed while being read")
    return array


def array_headers(path: str | Path, what: str) -> dict[str, ArrayHeader]:
    """Every array's header in a .npy ({"": header}) or .npz ({key: header}), reading no array data.

    Raises:
        BadFileError: not a regular file, not a valid .npy/.npz, pickled or non-numeric arrays, a
            header declaring more data than the file holds, a forged zip directory.
    """
    with _open_arrays(path, what) as (headers, _):
        return headers


def read_arrays(path: str | Path, what: str, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays named by `keys` (all when None), read after every header of the file was checked."""
    with _open_arrays(path, what) as (headers, read):
        wanted = list(headers) if keys is None else list(keys)
        missing = [k for k in wanted if k not in headers]
        if missing:
            raise BadFileError(f"{_where(Path(path), what)} has no array '{missing[0]}' "
                               f"(keys found: {', '.join(sorted(headers)) or 'none'})")
        return {key: read(key) for key in wanted}


def load_npy(path: str | Path, what: str = "input") -> np.ndarray:
    """The single array of a .npy file, checked like every other (kept for callers that know it is one)."""
    with _open_arrays(path, what) as (headers, read):
        if list(headers) != [""]:
            raise BadFileError(f"{_where(Path(path), what)} is an .npz archive; expected a .npy file")
        return read("")


def npz_arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of a .npz (or {"": array} for a .npy), headers checked first; numeric dtypes only."""
    return read_arrays(path, what)


def fits_in_memory(headers: Iterable[ArrayHeader], limit: int | None, where: str) -> None:
    """Refuse (exit 2) arrays whose data would exceed `limit` bytes, from their headers alone."""
    from convdiff.data.memory import default_limit, format_size

    total = sum(h.nbytes for h in headers)
    if limit is None:
        limit = default_limit()
    if limit is not None and total > limit:
        raise BadFileError(f"{where} holds {format_size(total)} of array data, above the memory limit of "
                           f"{format_size(limit)}; use --max-memory to raise it")
