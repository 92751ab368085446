"""A recorded side in the one execute(): a backend's own output, recorded and read back, is that backend."""

from __future__ import annotations

import numpy as np
import pytest

from convdiff.data.outputs import load_recorded_output
from convdiff.data.specs import build_spec
from convdiff.errors import BadInputError
from convdiff.pipeline import Case, CaseOptions, SideConfig, execute
from convdiff.spec.fields import parse_fields


@pytest.fixture
def spec(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(3).random((1, 9, 9, 2)).astype(np.float32))
    np.save(tmp_path / "w.npy", np.random.default_rng(4).uniform(-1, 1, (3, 3, 2, 5)).astype(np.float32))
    return build_spec(parse_fields({"input": str(tmp_path / "x.npy"), "weights": str(tmp_path / "w.npy"),
                                    "padding": "same", "filters": 5, "kernel_size": 3}))


def test_recorded_output_of_a_backend_is_identical_to_it(spec, tmp_path):
    live = execute(Case("live", SideConfig("numpy", spec), SideConfig("nn", spec)))
    np.save(tmp_path / "nn.npy", live.candidate.output)
    recorded = SideConfig.from_recorded(spec, load_recorded_output(str(tmp_path / "nn.npy")))
    result = execute(Case("recorded", SideConfig("nn", spec), recorded))
    assert result.verdict.value == "identical" and result.kernels_identical and result.not_possible == ()
    # Against the float64 reference the recording gets the same verdict, bound and three-way as nn did.
    again = execute(Case("recorded", SideConfig("numpy", spec), recorded))
    assert again.verdict is live.verdict and again.output.max_ratio == live.output.max_ratio
    assert again.tolerance_mode is live.tolerance_mode


def test_recorded_side_takes_the_arrays_dtype(spec, tmp_path):
    np.save(tmp_path / "y16.npy", np.zeros(spec.output_shape, np.float16))
    config = SideConfig.from_recorded(spec, load_recorded_output(str(tmp_path / "y16.npy")))
    assert config.spec.dtype == "float16" and config.backend == "recorded"
    result = execute(Case("f16", SideConfig("numpy", spec), config))
    assert result.candidate.compute_dtype == "float16" and result.compute_dtype == "float16"


def test_shape_other_than_the_spec_output_is_bad_input(spec, tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((1, 7, 7, 5), np.float32))
    config = SideConfig.from_recorded(spec, load_recorded_output(str(tmp_path / "small.npy")))
    with pytest.raises(BadInputError, match="has shape 1x7x7x5 \\(NHWC\\); the spec's output shape is 1x9x9x5"):
        execute(Case("shape", SideConfig("numpy", spec), config))


def test_random_input_is_not_assumed_to_be_the_recordings(spec, tmp_path):
    np.save(tmp_path / "y.npy", np.zeros(spec.output_shape, np.float32))
    random = spec.replace(input="random")
    config = SideConfig.from_recorded(random, load_recorded_output(str(tmp_path / "y.npy")))
    result = execute(Case("gaps", SideConfig("numpy", random), config))
    assert result.tolerance_mode.value == "elementwise" and "the input (--input FILE)" in result.not_possible[0]
    assert not any("kernel" in gap for gap in result.not_possible)  # the weights file is known
    with pytest.raises(BadInputError, match="--tolerance bound is not possible"):
        from convdiff.compare import RuleKind

        execute(Case("gaps", SideConfig("numpy", random), config, CaseOptions(mode=RuleKind.BOUND)))
