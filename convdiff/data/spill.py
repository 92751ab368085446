"""Captured activations kept on disk instead of in memory: `convdiff models` on models whose convolution
inputs and outputs would not fit the memory limit together writes each one, as it is captured, to a
directory of its own under the system's temporary directory, and reads it back memory-mapped, one layer
at a time. The directory is convdiff's own (created here, never a user's path) and is removed when the
comparison ends, however it ends.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from convdiff.errors import BadInputError


class Spill:
    """A private temporary directory of .npy files; `keep(array)` writes one and returns it memory-mapped."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="convdiff-activations-"))
        self.count = 0
        self.bytes = 0

    def keep(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        file = self.path / f"{self.count}.npy"
        self.count += 1
        try:
            np.save(file, np.ascontiguousarray(array), allow_pickle=False)
        except OSError as exc:
            self.close()
            reason = os.strerror(exc.errno) if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else str(exc)
            raise BadInputError(f"cannot keep the captured activations on disk in {self.path.parent} ({reason}); "
                                "free some space there (or set TMPDIR), or use a smaller input") from None
        self.bytes += array.nbytes
        return np.load(file, mmap_mode="r", allow_pickle=False)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
