"""The geometry table: pads, output sizes and dot-product lengths of every kind, against each framework's own
formula written out by hand. Pure arithmetic, no framework."""

import pytest

from convdiff.errors import BadInputError
from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, parse_padding


def spec(**fields):
    fields["padding"] = parse_padding(fields.get("padding", "same"))
    return ConvSpec(**fields)


def torch_transposed_size(size, k, s, p, op, d=1):
    """torch.nn.ConvTranspose docs: (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def keras_valid_transposed_size(size, k, s, op, d=1):
    """keras' backend_utils._get_output_shape_given_tf_padding: (in - 1) * stride + dilated kernel + output_padding."""
    return (size - 1) * s + ((k - 1) * d + 1) + op


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "crops"),
    [
        (5, 3, 2, 1, (0, 1)),   # the decoder case: TF crops the extra position at the end, PyTorch's p=1, op=1 at the start
        (5, 4, 2, 1, (1, 1)),   # even kernel, stride 2: total 2, symmetric
        (5, 1, 2, 1, (0, -1)),  # a kernel shorter than the stride: the last output receives no tap
        (6, 3, 1, 1, (1, 1)),   # stride 1: SAME keeps the size
        (4, 3, 3, 1, (0, 0)),   # kernel == stride: tiles exactly
        (4, 3, 2, 2, (1, 2)),   # dilated kernel 5, stride 2: total 3, the odd one at the end
    ],
)
def test_transposed_same_gives_size_times_stride(size, kernel, stride, dilation, crops):
    assert geometry.transposed_same_crops(size, kernel, stride, dilation) == crops
    assert geometry.transposed_output_size(size, crops, kernel, stride, dilation) == size * stride


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "output_padding", "dilation"),
    [(5, 3, 2, 1, 1, 1), (5, 3, 2, 0, 0, 1), (7, 4, 3, 2, 2, 1), (6, 3, 1, 1, 0, 2), (3, 5, 2, 2, 1, 1),
     (6, 2, 1, 0, 1, 2)],  # op 1 < dilation 2 with stride 1: PyTorch's rule
)
def test_transposed_explicit_is_pytorchs_formula(size, kernel, stride, padding, output_padding, dilation):
    crops = geometry.transposed_explicit_crops((padding, padding), output_padding)
    assert geometry.transposed_output_size(size, crops, kernel, stride, dilation) == torch_transposed_size(
        size, kernel, stride, padding, output_padding, dilation)
    assert output_padding <= geometry.max_output_padding(stride, dilation)


@pytest.mark.parametrize(("size", "kernel", "stride", "output_padding"), [(5, 3, 2, 0), (5, 3, 2, 1), (4, 2, 3, 2)])
def test_transposed_valid_is_keras_formula_with_output_padding(size, kernel, stride, output_padding):
    s = spec(rank=1, input_shape=(1, size, 2), kernel_size=kernel, strides=stride, transposed=True, padding="valid",
             output_padding=output_padding)
    assert s.output_shape[1] == keras_valid_transposed_size(size, kernel, stride, output_padding)


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "taps"),
    [(3, 2, 1, 2),   # taps 0 and 2 reach even outputs, tap 1 odd ones
     (4, 2, 1, 2), (3, 1, 1, 3), (5, 3, 1, 2), (3, 2, 2, 3),  # dilation 2, stride 2: every tap in one class
     (1, 2, 1, 1)],
)
def test_taps_per_output_of_a_transposed_convolution(kernel, stride, dilation, taps):
    assert geometry.taps_per_output(kernel, stride, dilation) == taps


@pytest.mark.parametrize(
    ("fields", "K"),
    [
        ({"input_shape": (1, 8, 8, 16), "filters": 4}, 3 * 3 * 16),
        ({"input_shape": (1, 8, 8, 16), "filters": 32, "groups": 4}, 3 * 3 * 4),
        ({"input_shape": (1, 8, 8, 16), "filters": 32, "groups": 16}, 3 * 3),  # depthwise: taps only
        ({"rank": 1, "input_shape": (1, 40, 8), "filters": 4, "kernel_size": 9}, 9 * 8),
        ({"rank": 3, "input_shape": (1, 6, 8, 8, 5), "filters": 4}, 27 * 5),
        ({"input_shape": (1, 5, 5, 6), "filters": 4, "transposed": True, "strides": 2}, 2 * 2 * 6),
        ({"input_shape": (1, 5, 5, 6), "filters": 4, "transposed": True, "strides": 2, "groups": 2}, 2 * 2 * 3),
        ({"input_shape": (1, 5, 5, 6), "filters": 4, "transposed": True}, 3 * 3 * 6),
    ],
)
def test_dot_length(fields, K):
    assert spec(**fields).dot_length == K


@pytest.mark.parametrize(
    ("fields", "output_shape", "kernel_shape"),
    [
        ({"rank": 1, "input_shape": (2, 17, 3), "filters": 4, "kernel_size": 4}, (2, 17, 4), (4, 3, 4)),
        ({"rank": 1, "input_shape": (2, 17, 3), "filters": 4, "strides": 2, "padding": "valid"}, (2, 8, 4), (3, 3, 4)),
        ({"rank": 3, "input_shape": (1, 5, 6, 7, 2), "filters": 3, "strides": (1, 2, 3), "padding": "1"},
         (1, 5, 3, 3, 3), (3, 3, 3, 2, 3)),
        ({"input_shape": (1, 9, 9, 8), "filters": 16, "groups": 8}, (1, 9, 9, 16), (3, 3, 1, 16)),
        ({"input_shape": (1, 5, 6, 8), "filters": 4, "transposed": True, "strides": 2}, (1, 10, 12, 4), (3, 3, 4, 8)),
        ({"input_shape": (1, 5, 6, 8), "filters": 4, "groups": 2, "transposed": True, "strides": 2, "padding": "1",
          "output_padding": 1}, (1, 10, 12, 4), (3, 3, 2, 8)),
    ],
)
def test_shapes_of_every_kind(fields, output_shape, kernel_shape):
    s = spec(**fields)
    assert s.output_shape == output_shape and s.kernel_shape == kernel_shape


@pytest.mark.parametrize(
    ("text", "rank", "pads"),
    [
        ("1", 1, ((1, 1),)), ("1,2", 1, ((1, 2),)),  # rank 1: two integers are (before, after)
        ("1,2", 2, ((1, 1), (2, 2))),  # rank 2: one per axis, as in a prototxt
        ("0,1,2,3", 2, ((0, 1), (2, 3))),
        ("1,2,3", 3, ((1, 1), (2, 2), (3, 3))), ("1", 3, ((1, 1),) * 3),
        ("0,1,1,0,2,2", 3, ((0, 1), (1, 0), (2, 2))),
    ],
)
def test_explicit_pads_are_read_for_the_rank(text, rank, pads):
    shape = {1: (1, 9, 2), 2: (1, 9, 9, 2), 3: (1, 9, 9, 9, 2)}[rank]
    assert spec(rank=rank, input_shape=shape, padding=text).pads == pads


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rank": 1, "input_shape": (1, 9, 2), "padding": "0,1,0,1"}, "malformed padding '0,1,0,1' for rank 1"),
        ({"rank": 3, "input_shape": (1, 8, 8, 2)}, "expected N,D,H,W,C for rank 3; 4 dimensions are a rank-2 shape"),
        ({"rank": 2, "input_shape": (1, 4, 8, 8, 2)}, "expected N,H,W,C (or H,W,C) for rank 2; 5 dimensions"),
        ({"input_shape": (1, 8, 8, 6), "groups": 4}, "groups 4 must divide the input channels (6)"),
        ({"input_shape": (1, 8, 8, 4), "groups": 4, "filters": 6}, "(depthwise: filters = channels x multiplier)"),
        ({"input_shape": (1, 8, 8, 4), "output_padding": 1}, "output padding applies to transposed convolutions"),
        ({"input_shape": (1, 8, 8, 4), "transposed": True, "output_padding": 1},
         "output padding cannot be combined with padding same"),
        ({"input_shape": (1, 8, 8, 4), "transposed": True, "strides": 2, "padding": "valid", "output_padding": 2},
         "must be smaller than the stride or the dilation"),
        ({"input_shape": (1, 2, 2, 4), "transposed": True, "padding": "3", "kernel_size": 1},
         "crops the transposed output"),
        ({"input_shape": (1, 8, 8, 4), "kernel_size": (3, 3, 3)}, "kernel size needs 2 values"),
        ({"input_shape": (1, 8, 8, 4), "data_format": "NCHW"}, "unknown data_format 'NCHW'"),
        ({"input_shape": (1, 8, 8, 4), "weights_layout": "DHWIO"}, "weights layout DHWIO has 3 spatial axes"),
        ({"input_shape": (1, 8, 8, 4), "weights_layout": "HWCM"}, "(C, M) is a depthwise kernel"),
        ({"rank": 4}, "rank must be 1, 2 or 3"),
        ({"input_shape": (1, 8, 8, 4), "transposed": True, "padding": "same_lower"},
         "padding same_lower applies to forward convolutions only"),
        ({"input_shape": (1, 8, 8, 4), "ort_optimization": "fast"}, "unknown ort_optimization 'fast'"),
        ({"input_shape": (1, 8, 8, 4), "transpose_kernel": "no"}, "transpose_kernel must be true or false"),
    ],
)
def test_invalid_kinds_are_refused_in_one_line(fields, message):
    fields.setdefault("padding", "same")
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        spec(**fields)
    assert "\n" not in str(info.value)


def test_the_two_d_defaults_are_unchanged():
    s = ConvSpec()
    assert (s.input_shape, s.kernel_size, s.strides, s.dilation, s.pads) == ((1, 32, 32, 3), (3, 3), (1, 1), (1, 1),
                                                                              ((1, 1), (1, 1)))
    assert (s.rank, s.groups, s.transposed, s.output_padding, s.data_format, s.convention) == (
        2, 1, False, (0, 0), "channels_last", "correlation")
    assert (s.input_layout, s.weights_layout) == ("NHWC", "HWIO")
    assert ConvSpec(transposed=True).weights_layout == "HWOI"
    assert ConvSpec(rank=3).input_layout == "NDHWC" and ConvSpec(rank=1).weights_layout == "WIO"


def onnxruntime_same_pads(size, kernel, stride, dilation, lower):
    """onnxruntime/core/providers/common.h ComputePadAndOutputShape, written out: out = ceil(in / stride),
    pad_needed = (out - 1) * stride + dilated kernel - in; SAME_LOWER: head = (pad_needed + 1) / 2,
    SAME_UPPER: head = pad_needed / 2; tail = pad_needed - head."""
    out = -(-size // stride)
    needed = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    head = (needed + 1) // 2 if lower else needed // 2
    return (head, needed - head)


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize(("size", "kernel", "stride", "dilation"),
                         [(8, 3, 2, 1), (7, 3, 2, 1), (9, 4, 1, 1), (10, 3, 1, 2), (5, 1, 2, 1), (6, 2, 3, 1)])
def test_same_upper_and_lower_are_onnx_runtimes(size, kernel, stride, dilation, lower):
    assert geometry.same_pads(size, kernel, stride, dilation, lower=lower) == onnxruntime_same_pads(
        size, kernel, stride, dilation, lower)


@pytest.mark.parametrize(("text", "mode"), [("same", "same"), ("SAME_UPPER", "same"), ("same_upper", "same"),
                                            ("same_lower", "same_lower"), (" Same_Lower ", "same_lower"),
                                            ("valid", "valid")])
def test_onnx_auto_pad_names_are_paddings(text, mode):
    assert parse_padding(text).mode.value == mode


def test_same_lower_puts_the_odd_pad_first():
    upper, lower = spec(input_shape=(1, 8, 9, 2), strides=2), spec(input_shape=(1, 8, 9, 2), strides=2,
                                                                    padding="same_lower")
    assert upper.pads == ((0, 1), (1, 1)) and lower.pads == ((1, 0), (1, 1))
    assert upper.output_shape == lower.output_shape


def test_onnx_pads_order():
    pads = ((0, 2), (1, 3))  # (top, bottom), (left, right)
    assert geometry.onnx_pads(pads) == [0, 1, 2, 3]  # [t, l, b, r]
    assert geometry.from_onnx_pads([0, 1, 2, 3]) == pads
    assert geometry.from_onnx_pads(geometry.onnx_pads(((1, 2), (3, 4), (5, 6)))) == ((1, 2), (3, 4), (5, 6))
