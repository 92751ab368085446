"""The built-in experiments of the other kinds, from public cases: a MobileNet depthwise port, a transposed
"same" decoder, Conv1D with an even kernel, and tensorflow#11864 (TF against MATLAB conv2). Each case comes
out as its file expects (verdict, kernels, diagnosis), and the numbers of the public case are reproduced."""

from importlib import resources

import numpy as np
import pytest

from convdiff.suites.builtin import weights

EXPERIMENTS = ("mobilenet-depthwise", "transposed-decoder", "conv1d-even-same", "tensorflow-11864")


@pytest.mark.parametrize("name", sorted(weights.FILES))
def test_shipped_arrays_are_what_the_generator_makes(name):
    with np.load(str(resources.files("convdiff.suites.builtin") / name), allow_pickle=False) as shipped:
        made = weights.FILES[name]()
        assert sorted(shipped.files) == sorted(made)
        for key, array in made.items():
            assert shipped[key].dtype == array.dtype
            np.testing.assert_array_equal(shipped[key], array)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_case_comes_out_as_expected(builtin_cases, experiment):
    outcomes = {case: o for (name, case), o in builtin_cases.items() if name == experiment}
    assert outcomes, experiment
    for case, outcome in outcomes.items():
        assert outcome.as_expected, (case, outcome.got, outcome.confirmed_causes)


def test_tensorflow_11864_reproduces_both_rows(builtin_cases):
    # MATLAB: c = conv2(x(:,:,1), k(:,:,1), 'same') + ... over the 3 channels; TF: tf.nn.conv2d(..., 'SAME').
    outcome = builtin_cases[("tensorflow-11864", "matlab-conv2-vs-tf")]
    matlab, tf = outcome.result.reference.output, outcome.result.candidate.output
    assert matlab[0, 0, :, 0].tolist() == [87, 186, 249, 225]
    assert tf[0, 0, :, 0].tolist() == [333, 534, 651, 435]
    assert matlab[0, :, :, 0].tolist()[-1] == [789, 1338, 1455, 1095]  # the last MATLAB row
    assert outcome.confirmed_causes == ["convention"]
    three = outcome.result.three_way
    assert three is not None and "asked for different convolutions" in three.summary


def test_the_mobilenet_channel_order_mistake_is_only_visible_in_the_values(builtin_cases):
    outcome = builtin_cases[("mobilenet-depthwise", "channel-order")]
    assert outcome.result.reference.kernel.shape == outcome.result.candidate.kernel.shape == (3, 3, 1, 32)
    detail = {f.cause: f for f in outcome.result.diagnosis}["channel_order"].detail
    assert "m-major" in detail and "matches the candidate to rounding level" in detail


def test_the_decoder_crops_on_the_other_side(builtin_cases):
    outcome = builtin_cases[("transposed-decoder", "torch-padding1-output-padding1")]
    ref, cand = (run.config.spec for run in outcome.result.sides)
    assert ref.pads == ((0, 1), (0, 1)) and cand.pads == ((1, 0), (1, 0))
    assert ref.output_shape == cand.output_shape == (1, 32, 32, 8)


def test_the_even_kernel_is_padded_1_2_by_tensorflow(builtin_cases):
    outcome = builtin_cases[("conv1d-even-same", "symmetric-pad-2")]
    detail = {f.cause: f for f in outcome.result.diagnosis}["even_kernel_same"].detail
    assert "TF SAME pads the even kernel (1, 2)" in detail
    assert outcome.result.regions is not None and outcome.result.regions.axes[0].extra == 1
