"""The subset of Caffe's caffe.proto that convdiff reads, built as a protobuf descriptor in code.

No protoc is needed and no generated module is shipped: the messages below are declared field by
field (names, numbers, types, defaults exactly as in BVLC Caffe's src/caffe/proto/caffe.proto) in a
private descriptor pool, so they never clash with a real `caffe_pb2` in the same process. Every field
convdiff does not declare is skipped by the parsers (binary: kept as unknown bytes; text: skipped
with `allow_unknown_field`).

The field numbers, types and defaults are copied from caffe.proto, which carries this notice:

    COPYRIGHT

    All contributions by the University of California:
    Copyright (c) 2014-2017 The Regents of the University of California (Regents)
    All rights reserved.

    All other contributions:
    Copyright (c) 2014-2017, the respective contributors
    All rights reserved.

    Caffe uses a shared copyright model: each contributor holds copyright over
    their contributions to Caffe. The project versioning records all such
    contribution and copyright details. If a contributor wants to further mark
    their specific copyright on a particular contribution, they should indicate
    their copyright solely in the commit message of the change when it is
    committed.

    LICENSE

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    1. Redistributions of source code must retain the above copyright notice, this
       list of conditions and the following disclaimer.
    2. Redistributions in binary form must reproduce the above copyright notice,
       this list of conditions and the following disclaimer in the documentation
       and/or other materials provided with the distribution.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND
    ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
    WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
    DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR CONTRIBUTORS BE LIABLE FOR
    ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES
    (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;
    LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND
    ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
    (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
    SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

    CONTRIBUTION AGREEMENT

    By contributing to the BVLC/caffe repository through pull-request, comment,
    or otherwise, the contributor releases their content to the
    license and copyright terms herein.
"""

from __future__ import annotations

import functools
from typing import Any

PACKAGE = "caffe"

# (name, number, label, type, type_name or None, default or None, packed)
_O, _R = "optional", "repeated"
MESSAGES: dict[str, list[tuple[str, int, str, str, str | None, str | None, bool]]] = {
    "BlobShape": [
        ("dim", 1, _R, "int64", None, None, True),
    ],
    "BlobProto": [
        ("shape", 7, _O, "message", "BlobShape", None, False),
        ("data", 5, _R, "float", None, None, True),
        ("double_data", 8, _R, "double", None, None, True),
        # 4-D dimensions, deprecated in Caffe in favour of `shape` but still in old caffemodels.
        ("num", 1, _O, "int32", None, "0", False),
        ("channels", 2, _O, "int32", None, "0", False),
        ("height", 3, _O, "int32", None, "0", False),
        ("width", 4, _O, "int32", None, "0", False),
    ],
    "FillerParameter": [
        ("type", 1, _O, "string", None, "constant", False),
        ("value", 2, _O, "float", None, "0", False),
        ("min", 3, _O, "float", None, "0", False),
        ("max", 4, _O, "float", None, "1", False),
        ("mean", 5, _O, "float", None, "0", False),
        ("std", 6, _O, "float", None, "1", False),
        ("variance_norm", 8, _O, "enum", "FillerParameter.VarianceNorm", "FAN_IN", False),
    ],
    "ConvolutionParameter": [
        ("num_output", 1, _O, "uint32", None, None, False),
        ("bias_term", 2, _O, "bool", None, "true", False),
        ("pad", 3, _R, "uint32", None, None, False),
        ("kernel_size", 4, _R, "uint32", None, None, False),
        ("stride", 6, _R, "uint32", None, None, False),
        ("dilation", 18, _R, "uint32", None, None, False),
        ("pad_h", 9, _O, "uint32", None, "0", False),
        ("pad_w", 10, _O, "uint32", None, "0", False),
        ("kernel_h", 11, _O, "uint32", None, None, False),
        ("kernel_w", 12, _O, "uint32", None, None, False),
        ("stride_h", 13, _O, "uint32", None, None, False),
        ("stride_w", 14, _O, "uint32", None, None, False),
        ("group", 5, _O, "uint32", None, "1", False),
        ("weight_filler", 7, _O, "message", "FillerParameter", None, False),
        ("bias_filler", 8, _O, "message", "FillerParameter", None, False),
        ("axis", 16, _O, "int32", None, "1", False),
    ],
    "InputParameter": [
        ("shape", 1, _R, "message", "BlobShape", None, False),
    ],
    "LayerParameter": [
        ("name", 1, _O, "string", None, None, False),
        ("type", 2, _O, "string", None, None, False),
        ("bottom", 3, _R, "string", None, None, False),
        ("top", 4, _R, "string", None, None, False),
        ("blobs", 7, _R, "message", "BlobProto", None, False),
        ("convolution_param", 106, _O, "message", "ConvolutionParameter", None, False),
        ("input_param", 143, _O, "message", "InputParameter", None, False),
    ],
    # DEPRECATED in Caffe ("use LayerParameter"), but the format of many published caffemodels.
    "V1LayerParameter": [
        ("bottom", 2, _R, "string", None, None, False),
        ("top", 3, _R, "string", None, None, False),
        ("name", 4, _O, "string", None, None, False),
        ("type", 5, _O, "enum", "V1LayerParameter.LayerType", None, False),
        ("blobs", 6, _R, "message", "BlobProto", None, False),
        ("convolution_param", 10, _O, "message", "ConvolutionParameter", None, False),
    ],
    "NetParameter": [
        ("name", 1, _O, "string", None, None, False),
        ("input", 3, _R, "string", None, None, False),
        ("input_shape", 8, _R, "message", "BlobShape", None, False),
        ("input_dim", 4, _R, "int32", None, None, False),
        ("layer", 100, _R, "message", "LayerParameter", None, False),
        ("layers", 2, _R, "message", "V1LayerParameter", None, False),
    ],
}

ENUMS: dict[str, dict[str, list[tuple[str, int]]]] = {
    "FillerParameter": {"VarianceNorm": [("FAN_IN", 0), ("FAN_OUT", 1), ("AVERAGE", 2)]},
    # All of V1LayerParameter.LayerType: a text prototxt in the V1 format names other layers' types too.
    "V1LayerParameter": {"LayerType": [
        ("NONE", 0), ("ABSVAL", 35), ("ACCURACY", 1), ("ARGMAX", 30), ("BNLL", 2), ("CONCAT", 3),
        ("CONTRASTIVE_LOSS", 37), ("CONVOLUTION", 4), ("DATA", 5), ("DECONVOLUTION", 39), ("DROPOUT", 6),
        ("DUMMY_DATA", 32), ("EUCLIDEAN_LOSS", 7), ("ELTWISE", 25), ("EXP", 38), ("FLATTEN", 8),
        ("HDF5_DATA", 9), ("HDF5_OUTPUT", 10), ("HINGE_LOSS", 28), ("IM2COL", 11), ("IMAGE_DATA", 12),
        ("INFOGAIN_LOSS", 13), ("INNER_PRODUCT", 14), ("LRN", 15), ("MEMORY_DATA", 29),
        ("MULTINOMIAL_LOGISTIC_LOSS", 16), ("MVN", 34), ("POOLING", 17), ("POWER", 26), ("RELU", 18),
        ("SIGMOID", 19), ("SIGMOID_CROSS_ENTROPY_LOSS", 27), ("SILENCE", 36), ("SOFTMAX", 20),
        ("SOFTMAX_LOSS", 21), ("SPLIT", 22), ("SLICE", 33), ("TANH", 23), ("WINDOW_DATA", 24),
        ("THRESHOLD", 31)]},
}

V1_CONVOLUTION = 4
V1_DECONVOLUTION = 39


@functools.lru_cache(maxsize=1)
def message_classes() -> dict[str, Any]:
    """{message name: class} of the subset, built once per process in a private descriptor pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto  # noqa: N806
    labels = {_O: F.LABEL_OPTIONAL, _R: F.LABEL_REPEATED}
    types = {"int32": F.TYPE_INT32, "int64": F.TYPE_INT64, "uint32": F.TYPE_UINT32, "float": F.TYPE_FLOAT,
             "double": F.TYPE_DOUBLE, "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "message": F.TYPE_MESSAGE,
             "enum": F.TYPE_ENUM}
    proto = descriptor_pb2.FileDescriptorProto(name="convdiff/caffe_subset.proto", package=PACKAGE, syntax="proto2")
    for name, fields in MESSAGES.items():
        message = proto.message_type.add(name=name)
        for enum_name, values in ENUMS.get(name, {}).items():
            enum = message.enum_type.add(name=enum_name)
            for value_name, number in values:
                enum.value.add(name=value_name, number=number)
        for fname, number, label, ftype, type_name, default, packed in fields:
            f = message.field.add(name=fname, number=number, label=labels[label], type=types[ftype])
            if type_name:
                f.type_name = f".{PACKAGE}.{type_name}"
            if default is not None:
                f.default_value = default
            if packed:
                f.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}
