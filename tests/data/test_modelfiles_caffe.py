"""Caffe files through convdiff's caffe.proto subset: every convolution layer Caffe can hold, both file
kinds, the old V1 format, and the damaged files."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.data.modelfiles import find_layer, read_layer, read_model
from convdiff.data.modelfiles.types import LayerKind, PadMode
from convdiff.errors import BadInputError
from convdiff.spec.layer_ref import split_layer_ref
from model_builders import caffe_layer, caffe_net, rng


def ref(path, layer):  # noqa: ANN001, ANN201
    return split_layer_ref(f"{path}#{layer}")


@pytest.fixture(scope="module")
def arrays():
    r = rng(1)
    return {
        "conv1": r.standard_normal((8, 3, 5, 3)).astype(np.float32),
        "conv1_bias": r.standard_normal(8).astype(np.float32),
        "dw": r.standard_normal((8, 1, 3, 3)).astype(np.float32),
        "grouped": r.standard_normal((4, 4, 3, 3)).astype(np.float32),
        "up": r.standard_normal((4, 3, 4, 4)).astype(np.float32),
        "up_bias": r.standard_normal(6).astype(np.float32),
        "vol": r.standard_normal((2, 3, 2, 3, 3)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def caffemodel(tmp_path_factory, arrays):
    net = caffe_net()
    data = net.layer.add(name="data", type="Input")
    data.top.append("data")
    data.input_param.shape.add().dim.extend([1, 3, 20, 18])
    caffe_layer(net, "conv1", num_output=8, kernel_h=5, kernel_w=3, pad_h=2, pad_w=1, stride_h=2, stride_w=1,
                blobs=(arrays["conv1"], arrays["conv1_bias"]))
    caffe_layer(net, "dw", bottom="conv1", num_output=8, kernel_size=[3], pad=[1], group=8, dilation=[2],
                bias_term=False, blobs=(arrays["dw"],))
    caffe_layer(net, "grouped", bottom="dw", num_output=4, kernel_size=[3], group=2, bias_term=False,
                blobs=(arrays["grouped"],))
    caffe_layer(net, "up", kind="Deconvolution", bottom="grouped", num_output=6, kernel_size=[4], stride=[2],
                pad=[1], group=2, blobs=(arrays["up"], arrays["up_bias"]))
    caffe_layer(net, "vol", bottom="x3d", num_output=2, kernel_size=[2, 3, 3], pad=[0, 1, 1], bias_term=False,
                blobs=(arrays["vol"],))
    relu = net.layer.add(name="relu1", type="ReLU")
    relu.bottom.append("conv1")
    path = tmp_path_factory.mktemp("caffe") / "net.caffemodel"
    path.write_bytes(net.SerializeToString())
    return path


def test_every_caffe_layer_kind_is_read_with_its_layout(caffemodel):
    model = read_model(str(caffemodel))
    by_name = {r.name: r for r in model.layers}
    assert list(by_name) == ["conv1", "dw", "grouped", "up", "vol"]
    conv1 = by_name["conv1"]
    assert (conv1.kind, conv1.kernel_layout, conv1.kernel_shape, conv1.bias_shape) == (LayerKind.CONV, "OIHW",
                                                                                      (8, 3, 5, 3), (8,))
    c = conv1.config
    assert (c.kernel_size, c.strides, c.padding.pads, c.dilation, c.groups, c.filters) == (
        (5, 3), (2, 1), ((2, 2), (1, 1)), (1, 1), 1, 8)
    assert conv1.input_shape == (1, 20, 18, 3)  # the Input layer's NCHW shape, as NHWC
    dw = by_name["dw"]
    assert (dw.kind, dw.config.groups, dw.config.dilation, dw.in_channels, dw.bias_shape) == (
        LayerKind.DEPTHWISE, 8, (2, 2), 8, None)
    assert (by_name["grouped"].kind, by_name["grouped"].in_channels) == (LayerKind.GROUPED, 8)
    up = by_name["up"]  # Deconvolution stores (C_in, num_output / group, kh, kw)
    assert (up.kind, up.kernel_layout, up.in_channels, up.config.filters, up.config.groups) == (
        LayerKind.TRANSPOSED, "IOHW", 4, 6, 2)
    vol = by_name["vol"]
    assert (vol.rank, vol.kernel_layout, vol.config.kernel_size, vol.config.padding.pads) == (
        3, "OIDHW", (2, 3, 3), ((0, 0), (1, 1), (1, 1)))
    assert model.others == {"data": "an Input layer", "relu1": "a ReLU layer"}


def test_caffe_weights_come_back_exactly(caffemodel, arrays):
    conv1 = read_layer(ref(caffemodel, "conv1"))
    np.testing.assert_array_equal(conv1.kernel, arrays["conv1"])
    np.testing.assert_array_equal(conv1.bias, arrays["conv1_bias"])
    up = read_layer(ref(caffemodel, "up"))
    np.testing.assert_array_equal(up.kernel, arrays["up"])
    assert read_layer(ref(caffemodel, "dw")).bias is None
    assert not conv1.kernel.flags.writeable  # shared by a cache: nobody may change it


def test_v1_layers_and_legacy_blob_dimensions(tmp_path):
    from convdiff.data.modelfiles.caffe_proto import V1_CONVOLUTION, V1_DECONVOLUTION
    from model_builders import add_blob

    net = caffe_net()
    net.input.append("data")
    net.input_dim.extend([1, 2, 9, 9])
    kernel = rng(2).standard_normal((3, 2, 3, 3)).astype(np.float32)
    old = net.layers.add(name="conv1", type=V1_CONVOLUTION)
    old.bottom.append("data")
    old.convolution_param.num_output = 3
    old.convolution_param.kernel_size.append(3)
    add_blob(old, kernel, legacy=True)
    add_blob(old, np.ones(3, np.float32), legacy=True)  # (1, 1, 1, 3) as old Caffe wrote biases
    deconv = net.layers.add(name="deconv", type=V1_DECONVOLUTION)
    deconv.convolution_param.num_output = 2
    deconv.convolution_param.kernel_size.append(2)
    deconv.convolution_param.bias_term = False
    add_blob(deconv, np.zeros((3, 2, 2, 2), np.float32))
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(net.SerializeToString())
    model = read_model(str(path))
    assert [(r.name, r.kind, r.input_shape) for r in model.layers] == [
        ("conv1", LayerKind.CONV, (1, 9, 9, 2)), ("deconv", LayerKind.TRANSPOSED, None)]
    layer = read_layer(ref(path, "conv1"))
    np.testing.assert_array_equal(layer.kernel, kernel)
    assert layer.bias.shape == (3,)


def test_prototxt_gives_configuration_without_weights(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text('name: "n"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'
                    'layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" param { lr_mult: 1 }\n'
                    '  convolution_param { num_output: 16 kernel_size: 3 stride: 2 pad: 1 engine: CAFFE\n'
                    '    weight_filler { type: "msra" } } include { phase: TEST } }\n'
                    'layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"\n'
                    '  convolution_param { num_output: 8 kernel_size: 1 } }\n'
                    'layer { name: "pool" type: "Pooling" bottom: "c2" top: "p" pooling_param { pool: MAX } }\n')
    model = read_model(str(path))
    c1, c2 = model.layers
    assert not c1.has_weights
    assert (c1.kernel_shape, c1.input_shape, c1.config.strides, c1.config.padding.pads) == (
        (16, 3, 3, 3), (1, 32, 32, 3), (2, 2), ((1, 1), (1, 1)))
    assert c2.kernel_shape == (8, None, 1, 1)  # its input channels are not declared in the file
    with pytest.raises(BadInputError, match="holds no weights"):
        read_layer(ref(path, "c1"))
    with pytest.raises(BadInputError, match=r"not a convolution \(a Pooling layer; convolution layers: c1, c2\)"):
        find_layer(ref(path, "pool"))


def test_a_wrong_layer_name_lists_the_layers(caffemodel):
    with pytest.raises(BadInputError) as info:
        find_layer(ref(caffemodel, "conv9"))
    assert str(info.value) == (f"no convolution layer 'conv9' in {caffemodel} (convolution layers: conv1, dw, "
                               "grouped, up, vol)")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "blob count", "text as binary", "binary as text"])
def test_damaged_caffe_files_are_one_line_exit_2(cli_runner, tmp_path, caffemodel, damage):
    data = caffemodel.read_bytes()
    name = "bad.caffemodel"
    if damage == "truncated":
        data = data[: len(data) // 2 + 3]
    elif damage == "garbage":
        data = bytes(rng(3).integers(0, 256, 4000, dtype=np.uint8))
    elif damage == "blob count":  # a blob whose shape says more values than it holds
        net = caffe_net()
        caffe_layer(net, "c", num_output=2, kernel_size=[3], blobs=(np.zeros((2, 1, 3, 3), np.float32),))
        net.layer[0].blobs[0].data.pop()
        data = net.SerializeToString()
    elif damage == "text as binary":
        data = b'layer { name: "c" type: "Convolution" }'
    else:
        name, data = "bad.prototxt", data
    (tmp_path / name).write_bytes(data)
    result = cli_runner.invoke(cli, ["layers", str(tmp_path / name)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("convdiff: error: ") and result.output.count("\n") == 1, result.output


def test_compare_from_a_caffemodel_runs_caffes_semantics(cli_runner, caffemodel):
    # conv1's own configuration (kernel 5x3, pad (2, 1), stride (2, 1)) on its declared 20x18x3 input.
    result = cli_runner.invoke(cli, ["compare", "--reference", "caffe", "--candidate", "numpy", "--from",
                                     f"{caffemodel}#conv1", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.output)["comparisons"][0]
    assert doc["verdict"] in ("identical", "equivalent")
    assert doc["spec"]["input_shape"] == [1, 20, 18, 3] and doc["spec"]["pads"] == [[2, 2], [1, 1]]
    assert doc["spec"]["strides"] == [2, 1] and doc["spec"]["weights_layout"] == "OIHW"
    assert any("Caffe Convolution, stored OIHW" in n for n in doc["reference"]["notes"])


def test_from_refuses_kinds_this_spec_cannot_express_yet(cli_runner, caffemodel):
    from convdiff.spec.fields import BY_NAME

    for layer, kind, field in (("dw", "2-D depthwise convolution", "groups"),
                               ("up", "2-D transposed convolution", "transposed"),
                               ("vol", "3-D convolution", "rank")):
        if field in BY_NAME:
            continue  # the convolution-kinds fields exist: this layer is expressible
        result = cli_runner.invoke(cli, ["compare", "--from", f"{caffemodel}#{layer}"])
        assert result.exit_code == 2, result.output
        assert f"{layer} is a {kind} (Caffe" in result.output and field in result.output, result.output
        assert result.output.count("\n") == 1


def test_pad_mode_of_caffe_is_always_explicit(caffemodel):
    assert all(r.config.padding.mode is PadMode.EXPLICIT for r in read_model(str(caffemodel)).layers)
