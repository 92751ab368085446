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


# --- the layouts of the other kinds ------------------------------------------------------------------------

from convdiff.spec.layouts import (KERNEL_CONVENTIONS, for_rank, from_canonical, input_layout_for,  # noqa: E402
                                   kernel_layout_for, to_canonical, to_channels_last)


@pytest.mark.parametrize(
    ("source", "target", "channels", "text"),
    [
        ("HWCM", "HWIO", None, "HWCM -> HWIO: reshape (kh, kw, C, M) to (kh, kw, 1, C*M) (output channel c*M + m)"),
        ("HWIO", "HWCM", 3, "HWIO -> HWCM: reshape (kh, kw, 1, C*M) to (kh, kw, C, M) with C = 3 "
                            "(output channel c*M + m)"),
        ("IOHW", "HWOI", None, "IOHW -> HWOI: transpose(2, 3, 1, 0)"),  # PyTorch ConvTranspose2d -> Keras / TF
        ("OIW", "WIO", None, "OIW -> WIO: transpose(2, 1, 0)"),  # PyTorch Conv1d -> Keras Conv1D
        ("OIDHW", "DHWIO", None, "OIDHW -> DHWIO: transpose(2, 3, 4, 1, 0)"),
        ("NCDHW", "NDHWC", None, "NCDHW -> NDHWC: transpose(0, 2, 3, 4, 1)"),
        ("WC", "NWC", None, "WC -> NWC: add N axis of size 1"),
    ],
)
def test_conversions_of_every_kind_describe_themselves(source, target, channels, text):
    assert str(conversion(source, target, channels)) == text


def test_pytorch_depthwise_and_keras_depthwise_are_the_same_canonical_kernel():
    # PyTorch Conv2d(C, C*M, groups=C): weight (C*M, 1, k, k), output channel c*M + m; Keras DepthwiseConv2D:
    # (k, k, C, M). Both are the canonical (k, k, 1, C*M).
    c, m = 3, 2
    keras = np.random.default_rng(2).random((3, 3, c, m))
    torch_weight = keras.transpose(2, 3, 0, 1).reshape(c * m, 1, 3, 3)
    a, _ = to_canonical(keras, "HWCM")
    b, _ = to_canonical(torch_weight, "OIHW")
    np.testing.assert_array_equal(a, b)
    back, _ = from_canonical(a, "HWCM", channels=c)
    np.testing.assert_array_equal(back, keras)


def test_transposed_conventions_round_trip():
    kernel = np.arange(3 * 3 * 2 * 5).reshape(3, 3, 2, 5)  # HWOI: (k, k, C_out/g = 2, C_in = 5)
    for layout in ("IOHW", "OIHW", "HWIO"):
        stored, _ = from_canonical(kernel, layout, transposed=True)
        np.testing.assert_array_equal(to_canonical(stored, layout, transposed=True)[0], kernel)
    assert from_canonical(kernel, "IOHW", transposed=True)[0].shape == (5, 2, 3, 3)  # PyTorch (in, out/g, k, k)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_layouts_for_every_rank(rank):
    assert input_layout_for(rank) == ("NWC", "NHWC", "NDHWC")[rank - 1]
    assert input_layout_for(rank, True) == ("NCW", "NCHW", "NCDHW")[rank - 1]
    assert kernel_layout_for(rank) == for_rank("HWIO", rank) and kernel_layout_for(rank, True) == for_rank("HWOI", rank)
    x = np.random.default_rng(rank).random((2, 3, *range(4, 4 + rank)))  # channels-first
    last, _ = to_channels_last(x, input_layout_for(rank, True), rank)
    assert last.shape == (2, *range(4, 4 + rank), 3)


@pytest.mark.parametrize("text", ["WIO", "DHWIO", "OIDHW", "HWCM", "WCM", "HWOI", "IODHW"])
def test_weights_layouts_of_other_kinds_parse(text):
    assert parse_weights_layout(text.lower()) == text


@pytest.mark.parametrize("text", ["DWIO", "HWCO", "HWIOM", "DHHWIO"])
def test_mixed_up_weights_layouts_are_refused(text):
    with pytest.raises(BadInputError, match="unknown weights layout"):
        parse_weights_layout(text)


def test_fitting_layouts_of_other_kinds():
    assert fitting_layouts((6, 1, 3, 3), 3, (3, 3), groups=3) == ["OIHW"]  # PyTorch depthwise, multiplier 2
    assert fitting_layouts((3, 3, 3, 2), 3, groups=3) == ["HWCM"]  # Keras DepthwiseConv2D
    assert fitting_layouts((5, 4, 3, 3), 5, transposed=True) == ["IOHW"]  # PyTorch ConvTranspose2d
    assert fitting_layouts((9, 8, 4), 8, (9,), rank=1) == ["WIO"]


def test_every_named_convention_is_a_valid_layout():
    for convention in KERNEL_CONVENTIONS:
        assert parse_weights_layout(convention.layout) == convention.layout
