"""Every TensorFlow backend against the float64 NumPy reference, on real TensorFlow and Keras."""

import itertools

import numpy as np
import pytest

from convdiff.compare import Verdict
from convdiff.errors import BadInputError
from convdiff.pipeline import CaseOptions, SideConfig
from helpers import run_case
from convdiff.spec.convspec import ConvSpec, parse_padding

KERNELS = [(1, 1), (2, 2), (3, 3), (2, 3)]
STRIDES = [(1, 1), (2, 2)]
SIZES = [7, 8]  # odd and even: TF SAME pads asymmetrically on even inputs with stride 2
PADDINGS = ["same", "valid", "0,1,1,2"]

GRID = [
    pytest.param(k, s, size, p, (1, 1), (i % 2 == 0), id=f"k{k[0]}x{k[1]}-s{s[0]}-in{size}-{p}-bias{i % 2 == 0}")
    for i, (k, s, size, p) in enumerate(itertools.product(KERNELS, STRIDES, SIZES, PADDINGS))
] + [
    pytest.param((3, 3), (1, 1), 8, "same", (2, 2), True, id="dilation2-same"),
    pytest.param((3, 3), (1, 1), 9, "valid", (2, 2), False, id="dilation2-valid"),
    pytest.param((2, 2), (1, 1), 8, "1", (2, 1), True, id="dilation2x1-explicit"),
]


def spec_for(kernel, strides, size, padding, dilation, bias):
    return ConvSpec(input_shape=(2, size, size + 1, 3), filters=4, kernel_size=kernel, strides=strides,
                    padding=parse_padding(padding), dilation=dilation, use_bias=bias,
                    bias_initializer="glorot_uniform" if bias else "zeros", seed=7)


@pytest.mark.parametrize("backend", ["nn", "keras-call"])
@pytest.mark.parametrize(("kernel", "strides", "size", "padding", "dilation", "bias"), GRID)
def test_backend_agrees_with_float64_reference(backend, kernel, strides, size, padding, dilation, bias):
    spec = spec_for(kernel, strides, size, padding, dilation, bias)
    result = run_case("grid", SideConfig("numpy", spec), SideConfig(backend, spec))
    assert result.kernels_identical, "same initializer and seed must give the same kernel"
    assert result.output.shape_match, (result.output.reference_shape, result.output.candidate_shape)
    assert result.output.reference_shape == spec.output_shape
    assert result.output, result.output


@pytest.mark.parametrize(("kernel", "strides", "size", "padding"),
                         [((3, 3), (2, 2), 8, "same"), ((2, 3), (1, 1), 7, "0,1,1,2"), ((3, 3), (2, 2), 7, "valid")])
def test_keras_predict_agrees_with_float64_reference(kernel, strides, size, padding):
    spec = spec_for(kernel, strides, size, padding, (1, 1), True)
    result = run_case("grid", SideConfig("numpy", spec), SideConfig("keras", spec))
    assert result.kernels_identical
    assert result.output


def test_a_wrong_reference_is_caught():
    """The grid above can fail: an asymmetric explicit pad against SAME's is a mismatch."""
    spec = spec_for((3, 3), (2, 2), 8, "same", (1, 1), False)
    other = spec.replace(padding=parse_padding("1"))
    result = run_case("wrong", SideConfig("numpy", other), SideConfig("nn", spec))
    assert result.output.verdict is Verdict.MISMATCH


def test_nn_computes_in_the_input_dtype():
    spec = ConvSpec(input_shape=(1, 16, 16, 3), filters=1, kernel_size=(7, 7), initializer="ones", use_bias=False,
                    input="image", input_dtype="float64")
    result = run_case("dtypes", SideConfig("nn", spec), SideConfig("keras", spec))
    assert result.reference.compute_dtype == "float64"
    assert result.candidate.compute_dtype == "float32"
    assert result.reference.output.dtype == np.float64 and result.candidate.output.dtype == np.float32
    assert any("float64" in note for note in result.reference.notes)
    assert result.output.sum_abs_diff > 0


def test_shared_kernel_gives_the_candidate_the_reference_kernel():
    spec = ConvSpec(input_shape=(1, 8, 8, 3), filters=2, seed=1)
    other_seed = spec.replace(seed=2, input="random")
    independent = run_case("own", SideConfig("nn", spec), SideConfig("keras-call", other_seed))
    assert not independent.kernels_identical
    shared = run_case("shared", SideConfig("nn", spec), SideConfig("keras-call", other_seed),
                      CaseOptions(shared_kernel=True))
    assert shared.kernels_identical
    np.testing.assert_array_equal(shared.reference.kernel, shared.candidate.kernel)


def test_strided_dilation_is_refused_with_a_clear_message():
    spec = ConvSpec(input_shape=(1, 9, 9, 1), strides=(2, 2), dilation=(2, 2))
    with pytest.raises(BadInputError, match="cannot combine strides"):
        run_case("x", SideConfig("numpy", spec), SideConfig("nn", spec))


def test_keras_predict_reports_the_float32_rounding_of_its_inputs():
    """Model.predict casts float inputs to floatx: a float64 model computes on float32-rounded inputs."""
    spec = ConvSpec(input_shape=(1, 8, 8, 3), filters=2, dtype="float64")
    result = run_case("f64", SideConfig("numpy", spec), SideConfig("keras", spec))
    assert result.candidate.compute_dtype == "float32"
    assert any("floatx" in note for note in result.candidate.notes)
    assert result, result.verdict
    direct = run_case("f64", SideConfig("numpy", spec), SideConfig("keras-call", spec))
    assert direct.candidate.compute_dtype == "float64"
