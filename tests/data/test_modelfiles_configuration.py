"""The one mapping from a model file's layer to spec fields (`convdiff.data.modelfiles.configuration`)."""

from __future__ import annotations

import pytest

from convdiff.data.modelfiles.configuration import agreement, kind_fields, layer_input_shape, spec_fields
from convdiff.data.modelfiles.types import LayerConfig, LayerKind, LayerPadding, LayerRecord, PadMode
from convdiff.errors import BadInputError
from convdiff.spec import fields as field_table
from convdiff.spec.convspec import Padding
from convdiff.spec.parse import parse_bool, parse_positive_int


def record(kind=LayerKind.CONV, rank=2, padding=LayerPadding(PadMode.VALID), groups=1,  # noqa: ANN001, ANN201
           framework="ONNX", output_padding=None, data_format="channels_first", kernel=(3, 3), strides=(1, 1),
           dilation=(1, 1)):
    config = LayerConfig(tuple(kernel), tuple(strides), padding, tuple(dilation), groups, 8, True, output_padding,
                         data_format)
    return LayerRecord("l", kind, rank, framework, "Conv", (8, 4, *kernel), "OIHW", (8,), config, 4 * groups)


@pytest.mark.parametrize("padding, shape, expected", [
    (LayerPadding(PadMode.EXPLICIT, ((0, 2), (1, 1))), None, Padding.explicit(0, 2, 1, 1)),
    (LayerPadding(PadMode.SAME), None, Padding.same()),
    (LayerPadding(PadMode.VALID), None, Padding.valid()),
    # SAME_LOWER: SAME's total with the odd pad first. 11 wide, k 4, stride 2: total 3 -> (2, 1); 10 high: (1, 1)
    (LayerPadding(PadMode.SAME_LOWER), (1, 10, 11, 4), Padding.explicit(1, 1, 2, 1)),
])
def test_padding_in_spec_terms(padding, shape, expected):
    layer = record(padding=padding, kernel=(4, 4), strides=(2, 2))
    assert spec_fields(layer, "m.onnx#l", shape)["padding"] == expected


def test_same_lower_needs_the_input_size():
    with pytest.raises(BadInputError, match="SAME_LOWER pads depend on the input size"):
        spec_fields(record(padding=LayerPadding(PadMode.SAME_LOWER)), "m.onnx#l", None)


def test_keras_causal_is_all_the_reach_before():
    layer = record(rank=1, padding=LayerPadding(PadMode.CAUSAL), kernel=(3,), strides=(1,), dilation=(2,),
                   framework="Keras")
    from convdiff.data.modelfiles import configuration

    assert configuration._padding(layer, "m.keras#l", None) == [[4, 0]]


def test_valid_and_zero_pads_agree_but_other_values_do_not():
    agreement({"padding": Padding.valid()}, {"padding": Padding.explicit(0, 0, 0, 0)}, "f#l")
    with pytest.raises(BadInputError, match="strides 2,2 disagrees with --from f#l, whose layer has strides 1,1"):
        agreement({"strides": (2, 2)}, {"strides": (1, 1)}, "f#l")


def test_input_shape_from_the_file_else_the_layer_channels():
    layer = record()
    assert layer_input_shape(layer, (1, 32, 32, 3)) == (1, 32, 32, 4)
    assert layer_input_shape(LayerRecord(**{**layer.__dict__, "input_shape": (2, 9, 9, 4)}),
                             (1, 32, 32, 3)) == (2, 9, 9, 4)


KINDS = [  # (record, the fields it needs)
    (record(kind=LayerKind.DEPTHWISE, groups=8), {"groups": 8}),
    (record(kind=LayerKind.TRANSPOSED, output_padding=(1, 1), framework="Keras", data_format="channels_last"),
     {"transposed": True, "output_padding": [1, 1]}),
    (record(rank=3, kernel=(2, 3, 3), strides=(1, 1, 1), dilation=(1, 1, 1)), {"rank": 3}),
    (record(framework="Keras", data_format="channels_first"), {"data_format": "channels_first"}),
]


@pytest.mark.parametrize("layer, needed", KINDS)
def test_kinds_set_their_fields(layer, needed):
    assert kind_fields(layer, configuration=True) == needed
    # Reading only the kernel (--weights) needs neither output_padding nor data_format.
    assert kind_fields(layer, configuration=False) == {k: v for k, v in needed.items()
                                                       if k not in ("output_padding", "data_format")}
    # ...and the field table parses what the mapping sets.
    field_table.parse_fields(dict(needed), where=" of a test layer")


@pytest.mark.parametrize("layer, needed", KINDS)
def test_a_kind_whose_field_is_missing_is_refused_not_run_as_another(monkeypatch, layer, needed):
    name = next(iter(needed))
    monkeypatch.delitem(field_table.BY_NAME, name)
    with pytest.raises(BadInputError, match=f"cannot run it yet \\(it needs the spec fields? {name}"):
        kind_fields(layer, configuration=True)


def test_agreement_spells_values_out_per_rank():
    agreement({"strides": (1,)}, {"strides": (1, 1)}, "f#l")          # one stride for every axis agrees
    agreement({"strides": 1}, {"strides": (1, 1, 1), "rank": 3}, "f#l")
    with pytest.raises(BadInputError, match="strides 2,2 disagrees with --from f#l, whose layer has strides 1,1"):
        agreement({"strides": (2,)}, {"strides": (1, 1)}, "f#l")
