"""Reading arrays from .npy/.npz files: no pickles, headers checked before NumPy allocates anything."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from convdiff.errors import BadInputError
from convdiff.spec.parse import fmt_values as _fmt


def load_npy(path: str | Path, what: str = "input") -> np.ndarray:
    """np.load without pickles, with one-line errors for every way a file can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{what} file '{path}' not found")
    check_declared_sizes(path, what)
    try:
        data = np.load(path, allow_pickle=False)
    except MemoryError:
        raise BadInputError(f"{what} file '{path}' is too large to load into memory") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise BadInputError(f"{what} file '{path}' holds pickled objects, which convdiff refuses to load") from None
        raise BadInputError(f"{what} file '{path}' is not a valid .npy/.npz file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise BadInputError(f"{what} file '{path}' could not be read: {exc}") from None
    except zipfile.BadZipFile as exc:  # starts like an .npz (PK\x03\x04) but is no zip archive
        raise BadInputError(f"{what} file '{path}' is not a valid .npy/.npz file: {exc}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        return data  # type: ignore[return-value]
    if data.dtype.kind not in "fiub":
        raise BadInputError(f"{what} file '{path}' has dtype {data.dtype}; expected a numeric array")
    return data


def check_declared_sizes(path: Path, what: str = "input") -> None:
    """Refuse a .npy (or .npz member) whose header declares more data than the file holds.

    NumPy allocates the array its header declares before reading a byte of data: a 60-byte file
    declaring 1x100000x100000x3 float32 would ask for 112 GiB. Reading the header first makes a
    truncated or forged file a one-line error instead of a MemoryError (or the OOM killer).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.filename.endswith(".npy"):
                        with archive.open(info) as member:
                            _check_header(member, info.file_size, f"{what} file '{path}' (array "
                                          f"'{info.filename[:-4]}')")
            return
        with open(path, "rb") as handle:
            _check_header(handle, path.stat().st_size, f"{what} file '{path}'")
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInputError(f"{what} file '{path}' could not be read: {exc}") from None


def _check_header(handle, size: int, where: str) -> None:  # noqa: ANN001
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = reader(handle) if version in ((1, 0), (2, 0)) else fmt._read_array_header(handle, version)
    except (ValueError, EOFError, SyntaxError, TypeError):
        return  # not a well-formed header: np.load says why, as a one-line error
    if dtype.hasobject:
        return  # refused as pickled objects by np.load(allow_pickle=False)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    available = size - handle.tell()
    if declared > available:
        from convdiff.data.memory import format_size

        raise BadInputError(f"{where} declares shape {_fmt(shape)} {dtype} ({format_size(declared)}) but holds "
                            f"only {format_size(max(available, 0))} of data: truncated or corrupt")




def npz_arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of a .npz (or {"": array} for a .npy), read eagerly; numeric dtypes only."""
    data = load_npy(path, what)
    if not isinstance(data, np.lib.npyio.NpzFile):
        return {"": data}
    try:
        with data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise BadInputError(f"{what} file '{path}' holds pickled objects, which convdiff refuses to load") from None
        raise BadInputError(f"{what} file '{path}' is not a valid .npz file: {exc}") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "fiub":
            raise BadInputError(f"{what} file '{path}': array '{key}' has dtype {array.dtype}; expected numbers")
    return arrays


def load_array(path: str | Path, what: str, key: str | None = None) -> np.ndarray:
    """One array of a .npy, or of a .npz: `key` when given (`FILE.npz` with `key` named), else its only array.

    Raises:
        BadInputError: a missing key, several arrays and no key, anything `load_npy` refuses.
    """
    arrays = npz_arrays(path, what)
    if "" in arrays:
        return arrays[""]
    if key is not None and key in arrays:
        return arrays[key]
    if len(arrays) == 1:
        (array,) = arrays.values()
        return array
    keys = ", ".join(sorted(arrays)) or "none"
    raise BadInputError(f"{what} file '{path}' " + (f"has no '{key}' array" if key else "holds no single array")
                        + f" (keys found: {keys})")


def load_channels_last(path: str | Path, what: str, layout: str | None = None, key: str | None = None) -> np.ndarray:
    """An array file read in `layout` (NHWC, NCHW, NWC, NCDHW, ...; default: channels-last of its rank),
    returned channels-last (N, spatial..., C)."""
    from convdiff.spec.layouts import input_layout_for, layout_rank, parse_input_layout, to_channels_last

    array = load_array(path, what, key)
    if array.ndim not in (3, 4, 5):
        raise BadInputError(f"{what} file '{path}' has rank {array.ndim} (shape {_fmt(array.shape)}); expected N, "
                            "1 to 3 spatial axes and C")
    layout = parse_input_layout(layout) if layout else input_layout_for(array.ndim - 2)
    if len(layout) != array.ndim or "N" not in layout:
        raise BadInputError(f"{what} file '{path}' has rank {array.ndim} (shape {_fmt(array.shape)}); layout "
                            f"{layout} expects rank {len(layout)} with a batch axis")
    if array.size == 0:
        raise BadInputError(f"{what} file '{path}' is empty (shape {_fmt(array.shape)})")
    return to_channels_last(array, layout, layout_rank(layout))[0]
