"""Every backend in the registry against the float64 reference, on one shared grid.

A config a backend declares it cannot express (its `Capabilities`) must be refused before anything
runs, with exit code 2; every other config must give the reference's kernel, the spec's output shape
and an output within the rounding bound of the float64 reference.
"""

import itertools

import pytest

from convdiff.backends import REGISTRY, BackendRefusedError, backend_info
from convdiff.spec import ConvSpec, parse_padding
from helpers import run_case
from convdiff.pipeline import SideConfig

KERNELS = [(1, 1), (3, 3), (2, 3)]
STRIDES = [(1, 1), (2, 2)]
PADDINGS = ["same", "valid", "1", "0,1,1,2"]

# Sizes alternate odd and even: TF SAME pads asymmetrically on even inputs with stride 2.
CONFIGS = [dict(kernel=k, strides=s, size=7 + i % 2, padding=p, dilation=(1, 1), bias=i % 2 == 0)
           for i, (k, s, p) in enumerate(itertools.product(KERNELS, STRIDES, PADDINGS))] + [
    dict(kernel=(3, 3), strides=(1, 1), size=8, padding="same", dilation=(2, 2), bias=True),
    dict(kernel=(2, 2), strides=(1, 1), size=9, padding="1", dilation=(2, 1), bias=False),
    dict(kernel=(3, 3), strides=(2, 2), size=9, padding="1", dilation=(2, 2), bias=True),
]


def spec_for(kernel, strides, size, padding, dilation, bias):
    return ConvSpec(input_shape=(2, size, size + 1, 3), filters=4, kernel_size=kernel, strides=strides,
                    padding=parse_padding(padding), dilation=dilation, use_bias=bias,
                    bias_initializer="glorot_uniform" if bias else "zeros", seed=7)


def config_id(c):
    return f"k{c['kernel'][0]}x{c['kernel'][1]}-s{c['strides'][0]}-in{c['size']}-{c['padding']}-d{c['dilation'][0]}"


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("backend", [name for name in REGISTRY if name != "numpy"])
def test_backend_conforms_to_the_float64_reference(backend, config):
    spec = spec_for(**config)
    reason = backend_info(backend).refusal(spec)
    if reason is not None:
        with pytest.raises(BackendRefusedError) as refused:
            run_case("grid", SideConfig("numpy", spec), SideConfig(backend, spec))
        assert str(refused.value) == reason and "\n" not in reason
        return
    result = run_case("grid", SideConfig("numpy", spec), SideConfig(backend, spec))
    if backend.startswith("v1-"):
        # TF1 draws from the graph-level seed stream: a different draw of the same law.
        assert result.kernel_distribution.verdict == "same distribution, different draws"
        result = _shared(backend, spec)
    assert result.kernels_identical, "the same initializer and seed (or a shared kernel) give the same kernel"
    assert result.output.reference_shape == result.output.candidate_shape == spec.output_shape
    assert result.output, result.output


def _shared(backend, spec):
    from convdiff.pipeline import CaseOptions

    # The TF1 side's own kernel, handed to the reference: only the convolution ops are compared.
    return run_case("grid", SideConfig(backend, spec), SideConfig("numpy", spec), CaseOptions(shared_kernel=True))


@pytest.mark.parametrize("backend", [name for name in REGISTRY if name != "numpy"])
def test_the_grid_holds_configs_each_backend_refuses_and_runs(backend):
    refused = [c for c in CONFIGS if REGISTRY[backend].refusal(spec_for(**c))]
    assert 0 < len(refused) < len(CONFIGS)


def test_a_wrong_reference_is_caught():
    """The grid can fail: an explicit pad against SAME's asymmetric one is a mismatch."""
    spec = spec_for((3, 3), (2, 2), 8, "same", (1, 1), False)
    other = spec.replace(padding=parse_padding("1"))
    assert not run_case("wrong", SideConfig("numpy", other), SideConfig("nn", spec))
