"""Every file convdiff opens or writes goes through here, so that nothing it did not create is lost and
nothing it reads can hang it or exhaust its memory.

Reading: a path is checked by type before it is opened (a FIFO would block `open` forever, /dev/zero
never ends, a directory is not a file), text files have a size cap, and TOML/JSON documents a
nesting cap. Writing: a temporary file beside the target, renamed into place, so a reader never sees
half a file and a full disk or a signal leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from convdiff.errors import BadFileError, BadInputError

MAX_TEXT_BYTES = 1 << 20
"""Experiment and grid files: 1 MiB (the largest built-in experiment is under 4 KiB)."""
MAX_MANIFEST_BYTES = 16 << 20
"""A bundle's bundle.json: 16 MiB (a manifest is about 3 KiB per case)."""
MAX_NESTING = 32
"""TOML tables/arrays and JSON objects/arrays nested deeper than this are refused (a spec needs 4)."""
LOCK_WAIT_SECONDS = 10.0
"""How long a save waits for another convdiff saving beside it before giving up (with one line)."""

# Kernel pseudo-filesystems: writing there changes the system, never a file a user asked for.
_PSEUDO_FILESYSTEMS = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs",
                                 "securityfs", "tracefs", "configfs", "bpf", "pstore", "efivarfs", "fusectl"})


# --- reading ---------------------------------------------------------------------------------------


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, words in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return None if stat.S_ISREG(mode) else "not a regular file"


def _link_note(path: str | Path) -> str:
    try:
        return f" (a symbolic link to '{os.readlink(path)}')" if os.path.islink(path) else ""
    except OSError:
        return ""


def check_regular_file(path: str | Path, what: str) -> os.stat_result:
    """The file's stat, when `path` is a regular file (symbolic links followed); else one line (exit 2).

    Decided from the file's type, before it is opened: a FIFO would block the open, /dev/zero and
    /dev/urandom never end, and "not found" would be the wrong words for a directory.

    Raises:
        BadFileError: missing, not a regular file, or not readable.
    """
    name = f"{what} file '{path}'"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise BadFileError(f"{name} is a symbolic link to '{os.readlink(path)}', which does not exist") from None
        raise BadFileError(f"{name} not found") from None
    except NotADirectoryError:
        raise BadFileError(f"{name} not found (a part of the path is a file, not a directory)") from None
    except PermissionError:
        raise BadFileError(f"{name} cannot be read: permission denied") from None
    except (OSError, ValueError) as exc:  # a loop of links, a name too long, a NUL byte
        raise BadFileError(f"{name} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        raise BadFileError(f"{name} is {kind}{_link_note(path)}, not a regular file")
    return info


@contextlib.contextmanager
def open_regular(path: str | Path, what: str) -> Iterator[BinaryIO]:
    """Open a regular file for reading, checked by type first and again once open (the path may change)."""
    check_regular_file(path, what)
    try:
        # O_NONBLOCK: should the path have become a FIFO since the check, the open must not block.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadFileError(f"{what} file '{path}' cannot be read: {exc.strerror or exc}") from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise BadFileError(f"{what} file '{path}' is {kind}, not a regular file")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_text_file(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file of at most `limit` bytes (exit 2 otherwise, before reading more than that)."""
    with open_regular(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise BadFileError(f"{what} file '{path}' cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        from convdiff.data.memory import format_size

        raise BadFileError(f"{what} file '{path}' is larger than {format_size(limit)}, the limit for {what} files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadFileError(f"{what} file '{path}' could not be read: it is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None


def nesting_depth(doc: Any, limit: int = MAX_NESTING) -> int:
    """How deeply lists and dicts nest in `doc` (iteratively: no recursion to exhaust); stops past `limit`."""
    deepest, stack = 0, [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((v, depth) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _too_deep(where: str) -> BadInputError:
    return BadInputError(f"{where}: nested more than {MAX_NESTING} levels deep (tables, arrays or objects "
                         "within each other); convdiff's files need far fewer")


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """A TOML document, with one-line errors, refused when nested deeper than MAX_NESTING."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{where}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise _too_deep(where) from None
    except ValueError as exc:  # an integer of more than 4300 digits, say
        raise BadInputError(f"{where}: invalid TOML: {' '.join(str(exc).split())[:160]}") from None
    if nesting_depth(doc) > MAX_NESTING:
        raise _too_deep(where)
    return doc


def read_toml_file(path: str | Path, what: str) -> dict[str, Any]:
    return parse_toml(read_text_file(path, what), str(path))


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_json(text: str, where: str) -> Any:
    """Strict JSON (no NaN/Infinity, no number that overflows a float), at most MAX_NESTING deep."""
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep(where) from None
    except ValueError as exc:  # JSONDecodeError, a refused constant, an integer with too many digits
        raise BadInputError(f"{where}: invalid JSON: {str(exc)[:200]}") from None
    if nesting_depth(doc) > MAX_NESTING:
        raise _too_deep(where)
    return doc


# --- writing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then deliver them.

    Around the few renames that put an output in place: interrupted half-way they would leave a
    temporary next to the target, or the previous version set aside and never restored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, lambda s, f: pending.append(s))
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _strerror(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    return exc.strerror or str(exc)


def write_failed(what: str, path: str | Path, exc: OSError, kept: str = "") -> BadInputError:
    """The one-line error of a write that failed (exit 2), saying what was kept."""
    return BadInputError(f"cannot write {what} '{path}': {_strerror(exc)}{kept}")


def write_atomically(path: str | Path, data: bytes, what: str = "file") -> None:
    """Write `data` to `path` through a temporary file beside it, renamed into place.

    An existing file at `path` is replaced only once the new one is complete and on disk: a full
    disk, a write error or a signal leaves the previous file as it was, and no temporary behind.
    """
    check_output_path(path, what)
    target = os.path.abspath(path)
    kept = "; the previous file is unchanged" if os.path.exists(target) else ""
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".convdiff-", suffix=".tmp")
    except OSError as exc:
        raise write_failed(what, path, exc, kept) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before it replaces anything: a crash keeps one whole version
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would otherwise become the file's mode
        with signals_deferred():
            os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise write_failed(what, path, exc, kept) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def filesystem_type(path: str | Path) -> str | None:
    """The type of the file system holding `path` (from /proc/self/mounts), or None when unknown."""
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return None
    best, kind = "", None
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def _name_too_long(path: str) -> bool:
    name = os.path.basename(os.path.abspath(path)).encode(errors="surrogateescape")
    try:
        limit = os.pathconf(os.path.dirname(os.path.abspath(path)) or "/", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    return len(name) > limit or len(os.path.abspath(path).encode(errors="surrogateescape")) >= 4096


def _pseudo(path: str) -> bool:
    kind = filesystem_type(path)
    if kind is not None:
        return kind in _PSEUDO_FILESYSTEMS
    real = os.path.realpath(path)
    return any(real == p or real.startswith(p + "/") for p in ("/proc", "/sys"))


def check_output_path(path: str | Path, what: str = "file") -> None:
    """Refuse (exit 2), before any work, an output path that cannot or must not be written."""
    try:
        _check_output_path(path, what)
    except (OSError, RuntimeError) as exc:
        raise BadInputError(f"cannot write {what} '{path}': {getattr(exc, 'strerror', None) or exc}") from None


def _check_output_path(path: str | Path, what: str) -> None:
    text = str(path)
    if not text.strip():
        raise BadInputError(f"cannot write {what}: the file name is empty")
    if "\0" in text:
        raise BadInputError(f"cannot write {what} '{path}': the file name holds a NUL byte")
    target = os.path.abspath(text)
    directory = os.path.dirname(target)
    if os.path.isdir(target):
        raise BadInputError(f"cannot write {what} '{path}': it is a directory")
    if not os.path.isdir(directory):
        raise BadInputError(f"cannot write {what} '{path}': directory '{directory}' does not exist")
    if _name_too_long(target):
        raise BadInputError(f"cannot write {what} '{path}': the name is longer than the file system allows")
    if _pseudo(directory):
        raise BadInputError(f"cannot write {what} '{path}': '{directory}' is a kernel pseudo-file system "
                            f"({filesystem_type(directory) or 'proc/sys'}), not a place for files")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write {what} '{path}': directory '{directory}' is not writable")
    if os.path.lexists(target):
        try:
            kind = _kind(os.stat(target).st_mode)
        except OSError:
            kind = None  # a dangling link: replaced by the new file
        if kind is not None:
            raise BadInputError(f"cannot write {what} '{path}': it exists and is {kind}, not a regular file")


def check_output_directory(path: str | Path, what: str) -> Path:
    """Refuse (exit 2) a directory to create or replace that is the working directory, one of its parents,
    a mount point, or on a pseudo-file system; returns its absolute, resolved path."""
    try:
        return _check_output_directory(path, what)
    except (OSError, RuntimeError) as exc:  # a name too long, a loop of symbolic links
        raise BadInputError(f"cannot save {what} '{path}': {getattr(exc, 'strerror', None) or exc}") from None


def _check_output_directory(path: str | Path, what: str) -> Path:
    text = str(path)
    if not text.strip():
        raise BadInputError(f"cannot save {what}: the directory name is empty")
    if "\0" in text:
        raise BadInputError(f"cannot save {what} '{path}': the name holds a NUL byte")
    if _name_too_long(text):
        raise BadInputError(f"cannot save {what} '{path}': the name is longer than the file system allows")
    target = Path(text).resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise BadInputError(f"cannot save {what}: '{path}' is the working directory or one of its parents")
    if target.exists() and os.path.ismount(target):
        raise BadInputError(f"cannot save {what}: '{path}' is a mount point")
    if not target.parent.is_dir():
        raise BadInputError(f"cannot save {what}: directory '{target.parent}' does not exist")
    if _pseudo(target.parent):
        raise BadInputError(f"cannot save {what}: '{target.parent}' is a kernel pseudo-file system, "
                            "not a place for files")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot save {what}: directory '{target.parent}' is not writable")
    return target


@contextlib.contextmanager
def directory_lock(directory: Path, what: str, wait: float | None = None) -> Iterator[None]:
    """An exclusive lock on `directory` (flock on the directory itself: no lock file is left behind).

    Two convdiff processes installing outputs into the same directory take turns; one that cannot
    get the lock within `wait` seconds gives up with one line. Where the file system has no flock,
    the block runs unlocked (the renames stay atomic).
    """
    import fcntl

    wait = LOCK_WAIT_SECONDS if wait is None else wait
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BadInputError(f"cannot save {what}: another process kept '{directory}' locked for "
                                        f"{wait:.0f} s; nothing was written") from None
                time.sleep(0.05)
            except OSError:  # no flock here (some network file systems): go on unlocked
                break
        yield
    finally:
        os.close(fd)  # releases the lock


def check_not_an_input(path: str | Path | None, what: str, inputs: list[str | Path | None]) -> None:
    """Refuse (exit 2) an output path that is one of the command's own input files: writing the heatmap
    over the input it was computed from would destroy it."""
    if path is None or not os.path.exists(path):
        return
    for source in inputs:
        try:
            same = source is not None and os.path.exists(source) and os.path.samefile(path, source)
        except (OSError, ValueError):  # an unreadable or malformed path is not this output
            same = False
        if same:
            raise BadInputError(f"cannot write {what} '{path}': it is an input file of this command "
                                f"('{source}'), which would be lost")
