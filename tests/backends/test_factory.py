"""The one seeded kernel and bias factory: every backend that draws its own weights gets the same ones."""

import numpy as np
import pytest

from convdiff.backends.factory import initial_weights
from convdiff.cli import cli
from convdiff.pipeline import SideConfig
from convdiff.spec import ConvSpec, parse_padding
from helpers import run_case


@pytest.mark.parametrize("bias_init", ["default", "zeros", "constant(0.25)", "glorot_uniform"])
@pytest.mark.parametrize("candidate", ["nn", "caffe", "torch"])
def test_self_drawing_backends_draw_what_the_reference_draws(candidate, bias_init):
    spec = ConvSpec(input_shape=(1, 6, 6, 2), filters=3, padding=parse_padding("1"), bias_initializer=bias_init)
    result = run_case("draw", SideConfig("numpy", spec), SideConfig(candidate, spec))
    np.testing.assert_array_equal(result.reference.kernel, result.candidate.kernel)
    np.testing.assert_array_equal(result.reference.bias, result.candidate.bias)
    assert result, result.output


def test_default_bias_is_zero_everywhere(cli_runner):
    # caffe and torch used to draw a Glorot bias for `default` while numpy/nn/keras used zeros.
    assert not np.any(initial_weights(ConvSpec(bias_initializer="default")).bias)
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "torch", "--padding", "1",
                                     "--bias-init", "default"])
    assert result.exit_code == 0, result.output


def test_default_kernel_is_glorot_uniform():
    spec = ConvSpec(initializer="default")
    np.testing.assert_array_equal(initial_weights(spec).kernel,
                                  initial_weights(spec.replace(initializer="glorot_uniform")).kernel)
