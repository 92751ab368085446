"""The spec: parsing what users type, and the one place that says whether a convolution is valid."""

import pytest

from convdiff.errors import BadInputError
from convdiff.data.specs import build_spec
from convdiff.spec import ConvSpec, Padding, PaddingMode, parse_fields, parse_padding, parse_shape


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        (8, 3, 1, 1, (1, 1)),  # odd kernel, stride 1: symmetric
        (8, 2, 1, 1, (0, 1)),  # even kernel: the extra pixel goes bottom/right
        (8, 3, 2, 1, (0, 1)),  # stride 2 on an even input: asymmetric, unlike Caffe's pad 1
        (7, 3, 2, 1, (1, 1)),  # stride 2 on an odd input: symmetric
        (8, 3, 1, 2, (2, 2)),  # dilation 2: effective kernel 5
        (5, 7, 1, 1, (3, 3)),  # kernel larger than input: SAME still pads
        (4, 1, 3, 1, (0, 0)),  # pad total would be negative: clipped at 0
    ],
)
def test_same_padding_matches_tensorflow_formula(size, kernel, stride, dilation, expected):
    pads = Padding.same().resolve((size, size), (kernel, kernel), (stride, stride), (dilation, dilation))
    assert pads == (expected, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("same", Padding.same()),
        ("VALID", Padding.valid()),
        ("1", Padding.explicit(1, 1, 1, 1)),
        (2, Padding.explicit(2, 2, 2, 2)),
        ("1,2", Padding.explicit(1, 1, 2, 2)),  # pad_h, pad_w as in a Caffe prototxt
        ("0,1,0,1", Padding.explicit(0, 1, 0, 1)),  # top, bottom, left, right
        ([[0, 1], [2, 3]], Padding.explicit(0, 1, 2, 3)),
    ],
)
def test_parse_padding(text, expected):
    assert parse_padding(text) == expected


def test_padding_str_round_trips():
    for text in ("same", "valid", "1", "1,2", "0,1,0,1"):
        assert str(parse_padding(text)) == text


@pytest.mark.parametrize("text", ["32,32,3", "32x32x3", "1x32x32x3", "[1, 32, 32, 3]"])
def test_parse_shape_forms(text):
    # H,W,C is the 2-D shorthand of a single image: the spec completes it (the rank decides what 3 values mean).
    assert ConvSpec(input_shape=parse_shape(text)).input_shape == (1, 32, 32, 3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_shape": (1, 0, 8, 3)}, "input shape must be positive"),
        ({"filters": -1}, "filters must be positive"),
        ({"kernel_size": (9, 9), "input_shape": (1, 8, 8, 3), "padding": Padding.valid()}, "larger than the padded input"),
        ({"kernel_size": (3, 3), "dilation": (4, 4), "input_shape": (1, 8, 8, 3), "padding": Padding.valid()},
         "dilated 9x9"),
        ({"dtype": "float8"}, "unknown dtype"),
    ],
)
def test_invalid_specs_are_refused_in_one_line(fields, message):
    with pytest.raises(BadInputError, match=message) as info:
        ConvSpec(**fields)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input_shape": "1,a,3,3"}, "malformed input shape"),
        ({"input_shape": "1,2"}, "expected N,H,W,C"),
        ({"padding": "sometimes"}, "malformed padding"),
        ({"padding": "-1"}, "must not be negative"),
        ({"kernel_size": "1,2,3,4"}, "malformed kernel size"),  # at most one per axis of a 3-D convolution
        ({"filters": "0"}, "filters must be a positive integer"),
        ({"use_bias": "maybe"}, "malformed use_bias"),
        ({"colour": "red"}, "unknown spec field 'colour'"),
    ],
)
def test_malformed_fields(raw, message):
    with pytest.raises(BadInputError, match=message):
        parse_fields(raw, typed_text=True)  # what a user typed on the command line


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"filters": "8"}, "filters must be an integer, got str '8'"),   # a TOML string where a number belongs
        ({"seed": "42"}, "seed must be an integer, got str '42'"),
        ({"use_bias": "false"}, "use_bias must be true or false, got str 'false'"),  # would read as true elsewhere
        ({"use_bias": 1}, "use_bias must be true or false, got int 1"),
        ({"filters": True}, "filters must be an integer, got bool True"),
        ({"initializer": 3}, "must be a name"),
    ],
)
def test_file_values_are_taken_at_their_own_type(raw, message):
    with pytest.raises(BadInputError, match=message):
        parse_fields(raw)


def test_command_line_text_may_spell_numbers_and_booleans():
    assert parse_fields({"filters": "8", "use_bias": "false", "seed": "7"}, typed_text=True) == {
        "filters": 8, "use_bias": False, "seed": 7}


def test_output_shape_and_dot_length():
    spec = ConvSpec(input_shape=(2, 9, 8, 5), filters=7, kernel_size=(3, 2), strides=(2, 3),
                    padding=Padding.valid())
    assert spec.output_shape == (2, 4, 3, 7)
    assert spec.dot_length == 3 * 2 * 5
    assert spec.kernel_shape == (3, 2, 5, 7)


def test_build_spec_takes_shape_from_source():
    assert build_spec({"input": "image"}).input_shape == (1, 427, 640, 3)
    assert build_spec({}).input_shape == (1, 32, 32, 3)
    assert build_spec({}).padding.mode is PaddingMode.SAME
