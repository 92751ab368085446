"""Captured activations kept on disk: the same values back, read-only; the directory is convdiff's own and
goes away; a full disk is one line (exit 2), the directory removed."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from convdiff.data import spill as spill_module
from convdiff.data.spill import Spill
from convdiff.errors import BadInputError


def test_kept_arrays_come_back_equal_read_only_and_the_directory_goes():
    values = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
    with Spill() as store:
        kept = store.keep(values)
        assert store.path.name.startswith("convdiff-activations-") and store.path.is_dir()
        np.testing.assert_array_equal(kept, values)
        assert kept.dtype == values.dtype and not kept.flags.writeable
        assert store.bytes == values.nbytes
    assert not store.path.exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(monkeypatch):
    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    store = Spill()
    monkeypatch.setattr(spill_module.np, "save", full)
    with pytest.raises(BadInputError, match="No space left on device"):
        store.keep(np.zeros(3))
    assert not store.path.exists()
