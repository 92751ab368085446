"""Writing files so that a reader never sees half of one and nothing convdiff did not create is lost."""

from __future__ import annotations

import os
import tempfile

from convdiff.errors import BadInputError


def write_atomically(path: str, data: bytes, what: str = "file") -> None:
    """Write `data` to `path` through a temporary file beside it, renamed into place.

    An existing file at `path` is replaced only once the new one is complete: a full disk or an
    interrupt leaves the previous file as it was.
    """
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise BadInputError(f"cannot write {what} '{path}': directory '{directory}' does not exist")
    if os.path.isdir(target):
        raise BadInputError(f"cannot write {what} '{path}': it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".convdiff-", suffix=".tmp")
    except OSError as exc:
        raise BadInputError(f"cannot write {what} '{path}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise become the file's mode
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise BadInputError(f"cannot write {what} '{path}': {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def check_output_path(path: str, what: str = "file") -> None:
    """Refuse (exit 2), before any work, an output path that cannot be written."""
    if not str(path).strip():
        raise BadInputError(f"cannot write {what}: the file name is empty")
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if os.path.isdir(target):
        raise BadInputError(f"cannot write {what} '{path}': it is a directory")
    if not os.path.isdir(directory):
        raise BadInputError(f"cannot write {what} '{path}': directory '{directory}' does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write {what} '{path}': directory '{directory}' is not writable")
    if os.path.exists(target) and not os.path.isfile(target):
        raise BadInputError(f"cannot write {what} '{path}': it exists and is not a regular file")
