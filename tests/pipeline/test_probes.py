"""The invariance probes: real backends on CPU, and the verdict of a difference beyond the bound."""

import dataclasses

import numpy as np
import pytest

from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import backend_info, get_backend
from convdiff.errors import BadInputError
from convdiff.pipeline.probe import ProbeVerdict, judge, probe_batch, probe_channels
from convdiff.reference.rounding import BoundForm
from convdiff.spec import ConvSpec, parse_padding

SPEC = ConvSpec(input_shape=(4, 12, 12, 8), filters=6, seed=3, bias_initializer="glorot_uniform")
BACKENDS = ["numpy", "nn", "keras", "torch", "keras-jax", "keras-torch", "jax", "flax", "onnxruntime"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_batch_probe_is_within_the_bound_on_cpu(backend):
    result = probe_batch(backend, SPEC.replace(padding=parse_padding("1")))
    assert result, result.comparison
    assert result.comparison.total == 4 * 12 * 12 * 6
    assert result.verdict in (ProbeVerdict.IDENTICAL, ProbeVerdict.WITHIN_BOUND)
    assert (result.verdict is ProbeVerdict.IDENTICAL) == (result.differing == 0)
    if backend == "numpy":  # float64 arithmetic per sample: the batch changes nothing
        assert result.verdict is ProbeVerdict.IDENTICAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_channels_probe_is_within_the_bound_on_cpu(backend):
    result = probe_channels(backend, SPEC.replace(padding=parse_padding("1")), (1, 4))
    assert result, result.comparison
    assert result.channels == (1, 4) and result.comparison.total == 4 * 12 * 12 * 2
    assert result.spec.filters == 6  # the full layer is the one reported


def test_the_channels_probe_slices_a_transposed_kernel_on_its_output_axis():
    spec = ConvSpec(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2, seed=1)
    result = probe_channels("numpy", spec, (0, 3))
    assert result.verdict is ProbeVerdict.IDENTICAL, result.comparison


def test_a_difference_beyond_the_bound_is_reported_as_such():
    spec = SPEC
    x = np.random.default_rng(0).random(spec.input_shape).astype(np.float32)
    weights = initial_weights(spec)
    run = get_backend("numpy").run(spec.replace(dtype="float32"), x, weights)
    shifted = np.array(run.output, copy=True)
    shifted[1, 2, 3, 4] += 1e-3  # far beyond a float32 rounding error of a K=72 dot product
    candidate = dataclasses.replace(run, output=shifted, compute_dtype="float32")
    result = judge("batch", "nn", spec, "reference", "candidate", np.asarray(run.output), candidate, x,
                   BoundForm.PROBABILISTIC)
    assert not result and result.verdict is ProbeVerdict.BEYOND_BOUND
    assert result.comparison.mismatched == 1 and result.comparison.max_ratio_index == (1, 2, 3, 4)
    assert result.differing == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda: probe_batch("numpy", SPEC, 1), "at least 2"),
    (lambda: probe_channels("numpy", SPEC.replace(input_shape=(1, 8, 8, 4), groups=2)), "groups=1"),
    (lambda: probe_channels("numpy", SPEC, (0, 6)), "0..5"),
    (lambda: probe_channels("numpy", SPEC, tuple(range(6))), "every output channel"),
    (lambda: probe_batch("caffe", SPEC), backend_info("caffe").refusal(SPEC) or "never"),
])
def test_bad_probes_are_refused_before_anything_runs(call, message):
    with pytest.raises(BadInputError) as raised:
        call()
    assert message in str(raised.value)


def test_the_default_batch_of_a_single_image_is_four():
    assert probe_batch("numpy", SPEC.replace(input_shape=(1, 6, 6, 2))).spec.input_shape[0] == 4
