"""Pairing by weights, pure (no framework): each row a kernel mistake a port makes and the name it gets."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.analysis.pairing import KernelView, PairedBy, pair_layers
from convdiff.errors import BadInputError

RNG = np.random.default_rng(3)
K = RNG.standard_normal((3, 3, 4, 6)).astype(np.float32)  # HWIO
DW = RNG.standard_normal((3, 3, 1, 8)).astype(np.float32)  # depthwise C=4, M=2, canonical (1, C*M)


def m_major(k: np.ndarray, groups: int) -> np.ndarray:
    per = k.shape[-1] // groups
    return k.reshape(*k.shape[:-1], groups, per).swapaxes(-1, -2).reshape(k.shape)


@pytest.mark.parametrize("candidate, groups, expected", [
    (K, 1, "identical"),  # the same bits
    (K.astype(np.float16), 1, "identical up to float16 rounding"),  # a float16 copy
    (K.astype(np.float64), 1, "identical"),  # widened exactly: the same values
    (np.ascontiguousarray(np.swapaxes(K, 0, 1)), 1, "H and W swapped"),  # OIHW made with (3, 2, 1, 0)
    (np.ascontiguousarray(K[::-1, ::-1]), 1, "rotated 180 degrees (flipped)"),  # a true convolution's kernel
    (np.ascontiguousarray(np.swapaxes(K, 0, 1)[::-1, ::-1]), 1, "H and W swapped and flipped"),
    (m_major(DW, 4), 4, "output channels m-major (depthwise channel order)"),  # (C*M) reshaped as (M, C)
    (RNG.permutation(K.ravel()).reshape(K.shape), 1, "same values, another arrangement"),  # scrambled
])
def test_a_kernel_pairs_by_its_values_and_its_arrangement_is_named(candidate, groups, expected):
    reference = DW if groups > 1 else K
    pairing = pair_layers([KernelView("ref", reference, groups)], [KernelView("cand", candidate, groups)])
    (pair,) = pairing.pairs
    assert pair.paired_by is PairedBy.WEIGHTS
    assert pair.kernel == expected
    assert pair.kernel_identical is (expected == "identical")


def test_two_independent_models_pair_without_names_whatever_their_order():
    a, b, c = (RNG.standard_normal((3, 3, 4, 4)).astype(np.float32) for _ in range(3))
    pairing = pair_layers([KernelView("conv1", a), KernelView("conv2", b), KernelView("conv10", c)],
                          [KernelView("x", c), KernelView("y", a), KernelView("z", b)])
    assert [(p.reference, p.candidate) for p in pairing.pairs] == [("conv1", "y"), ("conv2", "z"), ("conv10", "x")]


def test_order_and_shape_fill_the_gaps_between_weight_pairs_and_the_rest_is_listed():
    a, b, c = (RNG.standard_normal((3, 3, 4, 4)).astype(np.float32) for _ in range(3))
    other = RNG.standard_normal((3, 3, 4, 4)).astype(np.float32)
    odd = RNG.standard_normal((1, 1, 4, 2)).astype(np.float32)
    pairing = pair_layers([KernelView("r1", a), KernelView("r2", b), KernelView("r3", c), KernelView("r4", odd)],
                          [KernelView("c1", a), KernelView("c2", other), KernelView("c3", c), KernelView("c4", K)])
    by = {p.reference: p for p in pairing.pairs}
    assert by["r2"].candidate == "c2" and by["r2"].paired_by is PairedBy.ORDER and by["r2"].kernel == "different"
    assert pairing.unpaired_reference == ("r4",) and pairing.unpaired_candidate == ("c4",)


def test_kernels_of_the_same_values_pair_nearest_in_order():
    ones = np.ones((3, 3, 2, 2), np.float32)
    pairing = pair_layers([KernelView(f"r{i}", ones) for i in range(3)], [KernelView(f"c{i}", ones) for i in range(3)])
    assert [(p.reference, p.candidate) for p in pairing.pairs] == [("r0", "c0"), ("r1", "c1"), ("r2", "c2")]


def test_a_different_kernel_of_another_shape_is_not_paired():
    pairing = pair_layers([KernelView("r", K)], [KernelView("c", RNG.standard_normal((5, 5, 4, 6)))])
    assert not pairing and pairing.unpaired_reference == ("r",)


def test_a_rounding_far_beyond_float16_is_not_the_same_weights():
    assert pair_layers([KernelView("r", K)], [KernelView("c", (K * 1.01).astype(np.float16))]).pairs[0].paired_by \
        is PairedBy.ORDER


def test_forced_pairs_win_and_bad_ones_are_one_line():
    a, b = RNG.standard_normal((2, 3, 3, 2, 2)).astype(np.float32)
    pairing = pair_layers([KernelView("r1", a), KernelView("r2", b)], [KernelView("c1", a), KernelView("c2", b)],
                          forced=[("r1", "c2")])
    assert (pairing.pairs[0].candidate, pairing.pairs[0].paired_by) == ("c2", PairedBy.USER)
    assert pairing.pairs[0].kernel == "different"
    with pytest.raises(BadInputError, match="the reference has no convolution layer 'r9'"):
        pair_layers([KernelView("r1", a)], [KernelView("c1", a)], forced=[("r9", "c1")])
