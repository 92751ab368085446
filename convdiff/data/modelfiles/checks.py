"""Checks every model-file reader makes before it reads: a regular file, and sizes that fit in memory."""

from __future__ import annotations

from pathlib import Path

from convdiff.errors import BadInputError

# A reader may hold a file's bytes and the arrays parsed from them at once: refuse files (or declared
# arrays) above this share of the memory available, before allocating anything.
MEMORY_FRACTION = 0.5


def regular_file(path: str, what: str) -> Path:
    """`path` as a Path, when it is an existing regular file (not a directory, FIFO or device)."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"{what} '{path}' not found")
    if not p.is_file():
        raise BadInputError(f"{what} '{path}' is not a regular file")
    return p


def fits_memory(nbytes: int, where: str) -> None:
    """Refuse `nbytes` (a file to read whole, or an array a header declares) that would not fit in memory."""
    from convdiff.data.memory import available_memory, format_size

    available = available_memory()
    if available is not None and nbytes > available * MEMORY_FRACTION:
        raise BadInputError(f"{where} needs {format_size(nbytes)}, more than {MEMORY_FRACTION:.0%} of the "
                            f"{format_size(available)} of memory available")
