"""`FILE#LAYER`: where the model file ends and the layer begins."""

from __future__ import annotations

import pytest

from convdiff.errors import BadInputError
from convdiff.spec.fields import parse_fields
from convdiff.spec.layer_ref import LayerRef, split_layer_ref


@pytest.mark.parametrize("text, expected", [
    ("net.caffemodel#conv1", LayerRef("net.caffemodel", "conv1")),
    ("deploy.prototxt#conv1", LayerRef("deploy.prototxt", "conv1")),
    ("Model.PTH#features.0", LayerRef("Model.PTH", "features.0")),          # suffixes in any case
    ("m.keras#block/inner", LayerRef("m.keras", "block/inner")),            # a nested Keras layer
    ("run#3/m.onnx#conv#2", LayerRef("run#3/m.onnx", "conv#2")),            # '#' in a folder and in a name
    ("w.npy", None),                                                        # an array file: no layer
    ("w#1.npz", None),                                                      # '#' in a plain file's name
    ("m.onnx", None),                                                       # a model file without a layer
])
def test_split_layer_ref(text, expected):
    assert split_layer_ref(text) == expected


def test_a_model_file_with_an_empty_layer_is_an_error():
    with pytest.raises(BadInputError, match="names no layer after '#'"):
        split_layer_ref("m.safetensors#")


def test_the_weights_field_accepts_layer_references():
    assert parse_fields({"weights": "net.caffemodel#conv1"}) == {"weights": "net.caffemodel#conv1"}
    with pytest.raises(BadInputError, match="names no layer"):
        parse_fields({"weights": "net.caffemodel# "})
