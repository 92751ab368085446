"""Recorded output files: which array is read, in which layout, and every bad file a one-line error.
No TensorFlow: arrays in, arrays (or BadInputError) out."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.data.inputs import channels_first_suspicion
from convdiff.data.outputs import layouts_explaining, load_recorded_output, read_array, shape_error, split_array_ref
from convdiff.errors import BadInputError

NHWC = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "y.npy", NHWC)
    np.save(tmp_path / "nchw.npy", NHWC.transpose(0, 3, 1, 2))
    np.savez(tmp_path / "one.npz", blob=NHWC)
    np.savez(tmp_path / "two.npz", a=NHWC, b=NHWC + 1)
    np.savez(tmp_path / "named.npz", output=NHWC, other=NHWC + 1)
    return tmp_path


@pytest.mark.parametrize(("ref", "offset"), [
    ("y.npy", 0),             # a plain .npy
    ("one.npz", 0),           # a single-array .npz, whatever its key
    ("two.npz#b", 1),         # a key names one of several
    ("named.npz", 0),         # several, one of them named `output`
])
def test_which_array_is_read(files, ref, offset):
    np.testing.assert_array_equal(read_array(str(files / ref)), NHWC + offset)


def test_split_array_ref_only_splits_npz():
    assert split_array_ref("a/b.npz#conv1") == ("a/b.npz", "conv1")
    assert split_array_ref("a#b.npy") == ("a#b.npy", None)
    assert split_array_ref("a.npy#k") == ("a.npy", "k")  # refused when read: a .npy holds one array


def test_nchw_file_is_turned_channels_last(files):
    recorded = load_recorded_output(str(files / "nchw.npy"), "NCHW")
    np.testing.assert_array_equal(recorded.array, NHWC)
    assert (recorded.layout, recorded.file_shape, recorded.dtype) == ("NCHW", (2, 5, 3, 4), "float32")


def test_a_layout_without_batch_reads_one_item(tmp_path):
    np.save(tmp_path / "chw.npy", NHWC[0].transpose(2, 0, 1))
    assert load_recorded_output(str(tmp_path / "chw.npy"), "CHW").array.shape == (1, 3, 4, 5)


@pytest.mark.parametrize(("make", "ref", "fragment"), [
    (lambda p: np.savez(p / "two.npz", a=NHWC, b=NHWC), "two.npz", "holds 2 arrays (a, b): name one as"),
    (lambda p: np.savez(p / "two.npz", a=NHWC), "two.npz#zz", "has no array 'zz' (arrays: a)"),
    (lambda p: np.save(p / "y.npy", NHWC), "y.npy#k", "a .npy file holds one array"),
    (lambda p: np.save(p / "i.npy", NHWC.astype(np.int32)), "i.npy", "dtype int32; a convolution's output is floating"),
    (lambda p: np.save(p / "e.npy", np.zeros((1, 0, 2, 2), np.float32)), "e.npy", "is empty"),
    (lambda p: np.save(p / "r.npy", NHWC[0]), "r.npy", "has rank 3 (shape 3x4x5); layout NHWC expects rank 4"),
    (lambda p: (p / "t.npy").write_bytes(_npy_bytes()[:300]), "t.npy", "truncated or corrupt"),
    (lambda p: (p / "h.npy").write_bytes(_npy_bytes()[:100]), "h.npy", "not a valid .npy/.npz file"),
    (lambda p: (p / "z.npz").write_bytes(b"PK\x03\x04" + b"\0" * 20), "z.npz", "z.npz"),
    (lambda p: (p / "c.npy").write_bytes(b"not an array at all"), "c.npy", "recorded output file"),
    (lambda p: np.save(p / "o.npy", np.array([{}], dtype=object)), "o.npy", "pickled objects"),
    (lambda p: (p / "y.txt").write_text("1 2 3"), "y.txt", "is not a .npy or .npz file"),
    (lambda p: None, "missing.npy", "not found"),
])
def test_bad_recorded_files(tmp_path, make, ref, fragment):
    make(tmp_path)
    with pytest.raises(BadInputError, match=None) as info:
        load_recorded_output(str(tmp_path / ref))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _npy_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, NHWC)
    return buffer.getvalue()


def test_the_layout_that_fits_is_named(files):
    recorded = load_recorded_output(str(files / "nchw.npy"))  # NCHW read as NHWC: 2x5x3x4
    assert layouts_explaining(recorded.file_shape, NHWC.shape, "NHWC", 2) == ["NCHW"]
    message = str(shape_error(recorded, NHWC.shape, 2, "the spec's output shape is"))
    assert message.endswith("looks like the expected output in NCHW (give --output-layout NCHW)")
    assert layouts_explaining((7, 7, 7, 7), NHWC.shape, "NHWC", 2) == []


# (shape of an input file read NHWC, whether it is refused as NCHW): the rule of README `--input-layout`.
@pytest.mark.parametrize(("shape", "refused"), [
    ((1, 3, 32, 32), True),      # the example: RGB 32x32 saved NCHW
    ((1, 1, 28, 28), True),      # a grayscale MNIST image saved NCHW
    ((3, 32, 32), True),         # CHW without the batch axis
    ((1, 32, 32, 3), False),     # a real NHWC image
    ((1, 4, 8, 64), False),      # a deep NHWC feature map: 4 rows, 8 columns, 64 channels (not square)
    ((1, 4, 4, 4), False),       # too small to tell: read as it is
    ((1, 16, 32, 32), False),    # dim 1 is no image channel count
    ((8, 8, 8), False),          # HWC with 8 rows
])
def test_channels_first_suspicion(shape, refused):
    assert (channels_first_suspicion("x.npy", shape) is not None) is refused
