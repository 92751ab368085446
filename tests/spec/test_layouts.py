"""Layout conversions: every layout round-trips, conversions describe themselves, bad names are one-line errors."""

import itertools

import numpy as np
import pytest

from convdiff.errors import BadInputError
from convdiff.spec.layouts import (INPUT_LAYOUTS, WEIGHTS_LAYOUTS, conversion, fitting_layouts, from_hwio,
                              parse_input_layout, parse_weights_layout, reverse, to_hwio, to_nhwc)

ALL_WEIGHTS_ORDERS = ["".join(p) for p in itertools.permutations("HWIO")]


@pytest.mark.parametrize("layout", ALL_WEIGHTS_ORDERS)
def test_weights_round_trip(layout):
    kernel = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # HWIO with distinct sizes: a wrong axis shows
    stored, _ = from_hwio(kernel, layout)
    assert stored.shape == tuple(dict(zip("HWIO", kernel.shape))[c] for c in layout)
    back, _ = to_hwio(stored, layout)
    np.testing.assert_array_equal(back, kernel)


@pytest.mark.parametrize("layout", INPUT_LAYOUTS)
def test_input_round_trip(layout):
    dims = {"N": 1, "H": 3, "W": 4, "C": 1} if len(layout) == 2 else {"N": 1, "H": 3, "W": 4, "C": 2}
    x = np.random.default_rng(0).random([dims[c] for c in layout])
    nhwc, _ = to_nhwc(x, layout)
    assert nhwc.shape == (1, 3, 4, dims["C"])
    np.testing.assert_array_equal(reverse(nhwc, "NHWC", layout), x)


@pytest.mark.parametrize(
    ("source", "target", "text"),
    [
        ("OIHW", "HWIO", "OIHW -> HWIO: transpose(2, 3, 1, 0)"),  # the Caffe/PyTorch -> TF conversion
        ("HWIO", "OIHW", "HWIO -> OIHW: transpose(3, 2, 0, 1)"),
        ("OIWH", "HWIO", "OIWH -> HWIO: transpose(3, 2, 1, 0)"),  # the wrong transpose: H and W swapped
        ("NCHW", "NHWC", "NCHW -> NHWC: transpose(0, 2, 3, 1)"),
        ("HW", "NHWC", "HW -> NHWC: add N, C axes of size 1; transpose(0, 2, 3, 1)"),
        ("CHW", "NHWC", "CHW -> NHWC: add N axis of size 1; transpose(0, 2, 3, 1)"),
        ("HWIO", "HWIO", "HWIO -> HWIO: none (already HWIO)"),
    ],
)
def test_conversion_describes_itself(source, target, text):
    assert str(conversion(source, target)) == text


def test_caffe_weights_become_tf_weights():
    caffe = np.random.default_rng(1).random((96, 1, 5, 5))
    tf_kernel, _ = to_hwio(caffe, "OIHW")
    np.testing.assert_array_equal(tf_kernel, caffe.transpose(2, 3, 1, 0))


def test_wrong_rank_is_refused():
    with pytest.raises(BadInputError, match="rank 3 cannot be read as OIHW"):
        to_hwio(np.zeros((2, 3, 4)), "OIHW")


@pytest.mark.parametrize(("parse", "value", "message"), [
    (parse_input_layout, "NWHC", "unknown input layout"),
    (parse_weights_layout, "HWOO", "unknown weights layout"),
    (parse_weights_layout, "OIHWX", "unknown weights layout"),
])
def test_bad_layout_names(parse, value, message):
    with pytest.raises(BadInputError, match=message):
        parse(value)


def test_named_layouts_and_lowercase():
    assert parse_weights_layout("oihw") == "OIHW" and parse_input_layout("chw") == "CHW"
    assert set(WEIGHTS_LAYOUTS) == {"HWIO", "OIHW", "OHWI", "IOHW"}


def test_fitting_layouts():
    assert fitting_layouts((96, 1, 5, 5), 1) == ["OIHW"]
    assert fitting_layouts((7, 6, 5, 4), 3) == []
