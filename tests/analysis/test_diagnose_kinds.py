"""The diagnosis of the mistakes of every kind (1-D and 3-D, grouped and depthwise, transposed, channels-first,
true convolution): each mistake injected -> its cause is confirmed (and only the causes that describe the same
recomputation), and the cause is not claimed on a case made with another mistake.

Pure NumPy: the candidate outputs are made with the float64 reference routine and rounded to float32, as a
float32 backend would return them.
"""

import numpy as np
import pytest

from convdiff.analysis.diagnose import CAUSES, diagnose
from convdiff.reference.convolution import conv_nd
from convdiff.spec.convspec import ConvSpec, parse_padding

RNG = np.random.default_rng(21)


def spec(**fields):
    fields.setdefault("padding", "same")
    fields["padding"] = parse_padding(fields["padding"])
    return ConvSpec(**fields)


def f32(a):
    return np.asarray(a).astype(np.float32)


def data(s):
    return RNG.random(s.input_shape), RNG.uniform(-0.5, 0.5, s.kernel_shape), RNG.uniform(0.2, 0.5, s.filters)


def run(s, x, k, b, *, pads=None, groups=None, flip=None, bias="same"):
    """The reference routine with the spec's settings, some replaced: the mistaken computation."""
    return conv_nd(x, k, s.strides, s.pads if pads is None else pads, s.dilation,
                   groups=s.groups if groups is None else groups, transposed=s.transposed,
                   flip=(s.convention == "convolution") if flip is None else flip, bias=b if isinstance(bias, str) else bias)


def confirmed(ref_spec, cand_spec, x, k, b, candidate, **kwargs):
    findings = diagnose(ref_spec, cand_spec, x, k, b, candidate, reference_dtype="float64",
                        candidate_dtype="float32", **kwargs)
    assert [f.cause for f in findings] == list(CAUSES)
    return {f.cause for f in findings if f.confirmed}, {f.cause: f for f in findings}


# --- true convolution against correlation (tensorflow#11864) -----------------------------------------------


MATLAB = spec(input_shape=(1, 6, 7, 3), filters=2, convention="convolution")


def test_convolution_against_correlation_is_named():
    x, k, b = data(MATLAB)
    framework = MATLAB.replace(convention="correlation")
    got, findings = confirmed(MATLAB, framework, x, k, b, f32(run(MATLAB, x, k, b, flip=False)))
    assert got == {"convention"}, findings["convention"].detail
    assert "rotated 180 degrees in every spatial axis" in findings["convention"].detail


def test_convention_is_not_claimed_for_a_rotated_kernel_under_one_convention():
    s = MATLAB.replace(convention="correlation")
    x, k, b = data(s)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k[::-1, ::-1], b)))
    assert got == {"kernel_rotated_180"}
    assert "not applicable" in findings["convention"].detail


# --- an even kernel with "same" ----------------------------------------------------------------------------


CONV1D = spec(rank=1, input_shape=(2, 17, 3), filters=4, kernel_size=4)


def test_even_kernel_same_against_a_symmetric_pad_is_named():
    x, k, b = data(CONV1D)
    assert CONV1D.pads == ((1, 2),)  # TF SAME on an even kernel
    ported = CONV1D.replace(padding=parse_padding("2"))
    got, findings = confirmed(CONV1D, ported, x, k, b, f32(run(CONV1D, x, k, b, pads=((2, 2),))))
    # One output longer: the common region also matches end-aligned (output_size describes the same thing).
    assert got == {"even_kernel_same", "output_size"}, findings["even_kernel_same"].detail
    assert "TF SAME pads the even kernel (1, 2)" in findings["even_kernel_same"].detail
    assert not findings["padding"].confirmed  # the even-kernel pad sets are named even_kernel_same only


def test_even_kernel_same_is_not_claimed_for_an_odd_kernel():
    s = CONV1D.replace(kernel_size=(3,), input_shape=(2, 16, 3), strides=(2,))
    x, k, b = data(s)
    got, findings = confirmed(s, s.replace(padding=parse_padding("1")), x, k, b, f32(run(s, x, k, b, pads=((1, 1),))))
    assert got == {"padding"}
    assert "not applicable" in findings["even_kernel_same"].detail


# --- grouped and depthwise -----------------------------------------------------------------------------------


DEPTHWISE = spec(input_shape=(1, 7, 8, 3), filters=6, groups=3)  # multiplier 2


def m_major(k, groups):
    *lead, out = k.shape
    return k.reshape(*lead, out // groups, groups).swapaxes(-1, -2).reshape(k.shape)


def test_depthwise_channel_order_is_named():
    x, k, b = data(DEPTHWISE)
    got, findings = confirmed(DEPTHWISE, DEPTHWISE, x, k, b, f32(run(DEPTHWISE, x, m_major(k, 3), b)))
    assert got == {"channel_order"}, findings["channel_order"].detail
    assert "m-major" in findings["channel_order"].detail


def test_channel_order_needs_a_multiplier():
    s = DEPTHWISE.replace(filters=3)
    x, k, b = data(s)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k, b, bias=None)))
    assert got == {"bias_missing"}
    assert "one output channel per group" in findings["channel_order"].detail


GROUPED = spec(input_shape=(1, 7, 8, 4), filters=4, groups=2)


def test_grouped_kernel_replicated_instead_of_block_diagonal_is_named():
    x, k, b = data(GROUPED)
    dense = np.tile(k, (1, 1, 2, 1))
    got, findings = confirmed(GROUPED, GROUPED, x, k, b, f32(run(GROUPED, x, dense, b, groups=1)))
    assert got == {"grouped_replicated"}, findings["grouped_replicated"].detail


def test_replication_is_not_claimed_for_a_channel_order_mistake():
    x, k, b = data(GROUPED)
    got, findings = confirmed(GROUPED, GROUPED, x, k, b, f32(run(GROUPED, x, m_major(k, 2), b)))
    assert got == {"channel_order"}
    assert not findings["grouped_replicated"].confirmed


DENSE = spec(input_shape=(1, 7, 8, 4), filters=4)


def test_groups_inferred_wrongly_is_named():
    # A dense 4 -> 4 convolution taken for a depthwise one: only the diagonal of its kernel is used.
    x, k, b = data(DENSE)
    diagonal = np.stack([k[:, :, c, c] for c in range(4)], axis=-1)[:, :, None, :]
    got, findings = confirmed(DENSE, DENSE, x, k, b, f32(run(DENSE, x, diagonal, b, groups=4)))
    assert got == {"groups"}, findings["groups"].detail
    assert "depthwise instead of groups=1" in findings["groups"].detail


def test_groups_is_not_claimed_for_a_dense_mistake():
    x, k, b = data(DENSE)
    got, findings = confirmed(DENSE, DENSE, x, k, b, f32(run(DENSE, x, k[:, ::-1], b)))
    assert "groups" not in got


# --- transposed ----------------------------------------------------------------------------------------------


DECODER = spec(input_shape=(1, 5, 6, 4), filters=4, transposed=True, strides=2)  # k3 s2 "same"


def test_transposed_in_out_swapped_is_named():
    x, k, b = data(DECODER)
    got, findings = confirmed(DECODER, DECODER, x, k, b, f32(run(DECODER, x, k.swapaxes(-1, -2), b)))
    assert got == {"transposed_in_out"}, findings["transposed_in_out"].detail
    assert not findings["weights_permuted"].confirmed


def test_cropping_on_the_wrong_side_is_named():
    # TF crops (0, 1) for kernel 3, stride 2, "same"; PyTorch's padding=1, output_padding=1 crops (1, 0).
    x, k, b = data(DECODER)
    assert DECODER.pads == ((0, 1), (0, 1))
    torch_port = DECODER.replace(padding=parse_padding("1"), output_padding=(1, 1))
    assert torch_port.pads == ((1, 0), (1, 0)) and torch_port.output_shape == DECODER.output_shape
    got, findings = confirmed(DECODER, torch_port, x, k, b, f32(run(DECODER, x, k, b, pads=torch_port.pads)))
    # The whole output moves by one position: output_shifted describes the same recomputation on the overlap.
    assert got == {"transposed_cropping", "output_shifted"}, findings["transposed_cropping"].detail
    assert "reference crops rows (0, 1), columns (0, 1)" in findings["transposed_cropping"].detail


def test_cropping_is_not_claimed_for_an_unflipped_kernel():
    x, k, b = data(DECODER)
    got, findings = confirmed(DECODER, DECODER, x, k, b, f32(run(DECODER, x, k[::-1, ::-1], b)))
    assert got == {"kernel_not_flipped"}, findings["kernel_not_flipped"].detail
    assert not findings["transposed_cropping"].confirmed
    assert "not applicable" in findings["kernel_rotated_180"].detail  # a forward mistake's name


VALID_OP = spec(rank=1, input_shape=(2, 6, 3), filters=4, transposed=True, strides=2, padding="valid",
                output_padding=1)


def test_output_padding_missing_is_named():
    x, k, b = data(VALID_OP)
    without = VALID_OP.replace(output_padding=(0,))
    got, findings = confirmed(VALID_OP, without, x, k, b, f32(run(VALID_OP, x, k, b, pads=without.pads)))
    assert got == {"output_padding", "output_size"}, findings["output_padding"].detail


def test_output_padding_at_the_start_is_named_output_padding_not_cropping():
    x, k, b = data(VALID_OP)
    (before, after), = VALID_OP.pads
    got, findings = confirmed(VALID_OP, VALID_OP, x, k, b, f32(run(VALID_OP, x, k, b, pads=((before - 1, after + 1),))))
    assert "output_padding" in got and "transposed_cropping" not in got, findings["output_padding"].detail
    assert "at the start" in findings["output_padding"].detail


def test_output_padding_is_not_claimed_for_swapped_axes():
    s = VALID_OP.replace(filters=3)
    x, k, b = data(s)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k.swapaxes(-1, -2), b)))
    assert got == {"transposed_in_out"}
    assert not findings["output_padding"].confirmed


def test_kernel_not_flipped_is_not_claimed_for_a_forward_convolution():
    s = spec(input_shape=(1, 6, 7, 3), filters=2)
    x, k, b = data(s)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k[::-1, ::-1], b)))
    assert got == {"kernel_rotated_180"}
    assert "not applicable" in findings["kernel_not_flipped"].detail


# --- biases --------------------------------------------------------------------------------------------------


def test_a_separable_convolutions_dropped_depthwise_bias_is_named():
    # The pointwise kernel times the depthwise bias, a constant per output channel, is missing.
    s = spec(input_shape=(1, 7, 8, 3), filters=5)
    x, k, b = data(s)
    folded = RNG.uniform(0.5, 1.0, 5)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k, b - folded)))
    assert got == {"separable_bias"}, findings["separable_bias"].detail
    assert "SeparableConv2D" in findings["separable_bias"].detail


def test_separable_bias_is_not_claimed_for_the_bias_itself_missing():
    s = spec(input_shape=(1, 7, 8, 3), filters=5)
    x, k, b = data(s)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, x, k, b, bias=None)))
    assert got == {"bias_missing"}
    assert "see bias_missing" in findings["separable_bias"].detail


WIDE = spec(input_shape=(2, 6, 4, 3), filters=4)  # 4 columns, 4 filters


def test_bias_on_the_columns_of_a_channels_first_output_is_named():
    x, k, b = data(WIDE)
    got, findings = confirmed(WIDE, WIDE, x, k, b, f32(run(WIDE, x, k, b, bias=None) + b.reshape(4, 1)))
    assert got == {"bias_axis"}, findings["bias_axis"].detail


def test_bias_axis_is_not_claimed_for_a_doubled_bias():
    x, k, b = data(WIDE)
    got, findings = confirmed(WIDE, WIDE, x, k, b, f32(run(WIDE, x, k, b, bias=2 * b)))
    assert got == {"bias_doubled"}
    assert not findings["bias_axis"].confirmed


# --- the 2-D causes in other ranks ---------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 3])
def test_channels_first_data_read_as_channels_last_in_every_rank(rank):
    s = spec(rank=rank, input_shape=(2, 9, 3) if rank == 1 else (1, 4, 5, 6, 3), filters=2)
    x, k, b = data(s)
    first = (0, x.ndim - 1, *range(1, x.ndim - 1))
    misread = np.ascontiguousarray(x.transpose(first)).reshape(x.shape)
    got, findings = confirmed(s, s, x, k, b, f32(run(s, misread, k, b)))
    assert got == {"input_layout"}, findings["input_layout"].detail
    assert ("NCW input read as NWC" if rank == 1 else "NCDHW input read as NDHWC") in findings["input_layout"].detail


def test_3d_kernel_with_h_and_w_swapped():
    s = spec(rank=3, input_shape=(1, 5, 6, 7, 2), filters=3, kernel_size=(3, 2, 3))
    s = s.replace(kernel_size=(3, 3, 3))
    x, k, b = data(s)
    got, _ = confirmed(s, s, x, k, b, f32(run(s, x, k.transpose(0, 2, 1, 3, 4), b)))
    assert got == {"kernel_transposed_hw"}


def test_1d_output_shifted():
    x, k, b = data(CONV1D)
    out = run(CONV1D, x, k, b)
    shifted = np.zeros_like(out)
    shifted[:, 1:] = out[:, :-1]
    got, findings = confirmed(CONV1D, CONV1D, x, k, b, f32(shifted))
    assert got == {"output_shifted"}, findings["output_shifted"].detail
    assert "(positions)" in findings["output_shifted"].detail


def test_3d_padding_names_each_axis():
    s = spec(rank=3, input_shape=(1, 6, 7, 8, 2), filters=2, strides=2)
    x, k, b = data(s)
    ported = s.replace(padding=parse_padding("1"))
    got, findings = confirmed(s, ported, x, k, b, f32(run(s, x, k, b, pads=ported.pads)))
    assert "padding" in got
    assert "depth (1, 1), rows (1, 1), columns (1, 1)" in findings["padding"].detail
