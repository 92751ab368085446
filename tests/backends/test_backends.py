"""Backend behaviours beyond conformance (tests/backends/test_conformance.py): dtypes, shared kernels, notes."""

import numpy as np
import pytest

from convdiff.compare import Verdict
from convdiff.errors import BadInputError
from convdiff.pipeline import CaseOptions, SideConfig
from helpers import run_case
from convdiff.spec.convspec import ConvSpec, parse_padding

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


def test_a_channels_first_bias_on_the_columns_is_caught_and_named():
    """Found by the conformance grid: Keras 3's TensorFlow `ops.add` turns the layer's bias add into
    `tf.nn.bias_add` and guesses NHWC when the last dimension equals the bias length, so an eagerly called
    channels_first layer whose output has as many columns as filters adds the bias along the columns
    (Model.predict traces without static shapes and is right). Whatever the installed Keras does, convdiff
    must either find the outputs equivalent or name the cause."""
    spec = ConvSpec(input_shape=(2, 7, 8, 3), filters=4, strides=(2, 2), data_format="channels_first",
                    bias_initializer="glorot_uniform", seed=7)
    assert spec.output_shape[2] == spec.filters
    assert run_case("predict", SideConfig("numpy", spec), SideConfig("keras", spec)).output
    called = run_case("call", SideConfig("numpy", spec), SideConfig("keras-call", spec))
    if not called.output:
        assert [f.cause for f in called.diagnosis if f.confirmed] == ["bias_axis"]


def test_readme_lists_every_backend_with_what_it_supports():
    """The README's backend table and its capability table name every backend of the registry."""
    from pathlib import Path

    from convdiff.backends import REGISTRY

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    backends = readme.split("## Backends", 1)[1].split("\n## ", 1)[0]
    capabilities = readme.split("### What each backend can express", 1)[1].split("\n## ", 1)[0]
    for name in REGISTRY:
        assert f"| `{name}` |" in backends, name
        assert f"`{name}`" in capabilities.split("\n\n**", 1)[0], name
        if REGISTRY[name].can.same_lower:
            assert f"`{name}`" in capabilities.split("**`same_lower`**", 1)[1].split("\n\n", 1)[0], name


def test_a_missing_framework_names_the_install_command_that_works_from_a_checkout():
    from convdiff.backends import REGISTRY

    for name, info in REGISTRY.items():
        if info.requires:
            assert info.install_hint.startswith("pip install -e '.[") and "checkout" in info.install_hint, name
