"""Every backend in the registry against the float64 reference, on one shared grid per kind.

A config a backend declares it cannot express (its `Capabilities`) must be refused before anything
runs, with exit code 2; every other config must give the reference's kernel, the spec's output shape
and an output within the rounding bound of the float64 reference. The 2-D grid covers paddings,
strides, dilation and even kernels; the kinds grid covers 1-D and 3-D, grouped and depthwise (multiplier
1 and 2), transposed (SAME, VALID with output padding, PyTorch's padding, asymmetric crops, groups,
dilation), channels_first, true convolution, ONNX's SAME_LOWER and a low precision.
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


def kind(**fields):
    fields = {"seed": 7, "bias_initializer": "glorot_uniform", **fields}
    fields["padding"] = parse_padding(fields.get("padding", "same"))
    return ConvSpec(**fields)


# channels_first outputs never have as many columns as filters here: Keras 3 on TensorFlow then adds the bias
# along the columns when a layer is called eagerly (tests/backends/test_backends.py keeps that finding).
KINDS = {
    "conv1d-even-same": kind(rank=1, input_shape=(2, 9, 3), filters=4, kernel_size=4),
    "conv1d-s2-asym": kind(rank=1, input_shape=(2, 10, 3), filters=4, strides=2, padding="0,1"),
    "conv1d-pad1": kind(rank=1, input_shape=(2, 10, 3), filters=4, padding="1", dilation=2),
    "conv3d-same": kind(rank=3, input_shape=(1, 5, 6, 7, 2), filters=3, kernel_size=(3, 2, 3)),
    "conv3d-asym-s2": kind(rank=3, input_shape=(1, 5, 6, 7, 2), filters=3, kernel_size=2, strides=2,
                           padding="1,0,0,1,1,1"),
    # ONNX's SAME_LOWER: the odd pad first (even input, stride 2; an even kernel), where it differs from SAME.
    "conv2d-same-lower": kind(input_shape=(2, 8, 7, 3), filters=4, strides=2, padding="same_lower"),
    "conv1d-same-lower-even": kind(rank=1, input_shape=(2, 9, 3), filters=4, kernel_size=4, padding="same_lower"),
    "conv3d-pad1": kind(rank=3, input_shape=(1, 4, 5, 6, 2), filters=3, padding="1"),
    "grouped-2d": kind(input_shape=(2, 7, 8, 4), filters=6, groups=2),
    "grouped-2d-pad1": kind(input_shape=(2, 7, 8, 4), filters=6, groups=2, padding="1", strides=2),
    "grouped-1d": kind(rank=1, input_shape=(2, 7, 4), filters=6, groups=2, padding="valid"),
    "grouped-3d": kind(rank=3, input_shape=(1, 4, 5, 6, 4), filters=6, groups=2, padding="1"),
    "depthwise-2d-m2": kind(input_shape=(2, 7, 8, 4), filters=8, groups=4, strides=2),
    "depthwise-2d-m1-asym": kind(input_shape=(2, 7, 8, 4), filters=4, groups=4, padding="1,0,1,2"),
    "depthwise-2d-pad1": kind(input_shape=(2, 7, 8, 4), filters=8, groups=4, padding="1"),
    "depthwise-1d": kind(rank=1, input_shape=(2, 9, 3), filters=6, groups=3),
    "depthwise-3d": kind(rank=3, input_shape=(1, 4, 5, 6, 3), filters=3, groups=3, padding="valid"),
    "transposed-2d-same": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2),
    "transposed-2d-valid-op": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2, padding="valid",
                                   output_padding=1),
    "transposed-2d-torch": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2, padding="1",
                                output_padding=1),
    "transposed-2d-asym": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2, padding="0,1,1,0"),
    "transposed-2d-pad1": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2, padding="1"),
    "transposed-1d-even": kind(rank=1, input_shape=(2, 6, 3), filters=4, kernel_size=4, transposed=True, strides=2),
    "transposed-1d-pad1": kind(rank=1, input_shape=(2, 6, 3), filters=4, transposed=True, strides=2, padding="1"),
    "transposed-1d-exp": kind(rank=1, input_shape=(2, 6, 3), filters=4, transposed=True, strides=2, padding="1,0",
                              output_padding=1),
    "transposed-3d-same": kind(rank=3, input_shape=(1, 3, 4, 5, 2), filters=3, transposed=True, strides=2),
    "transposed-3d-pad1": kind(rank=3, input_shape=(1, 3, 4, 5, 2), filters=3, transposed=True, strides=2,
                               padding="1"),
    "transposed-grouped": kind(input_shape=(2, 5, 6, 4), filters=6, groups=2, transposed=True, strides=2,
                               padding="1", output_padding=1),
    "transposed-grouped-pad1": kind(input_shape=(2, 5, 6, 4), filters=6, groups=2, transposed=True, strides=2,
                                    padding="1"),
    "transposed-dilated": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, dilation=2, padding="valid"),
    "channels-first-2d": kind(input_shape=(2, 7, 8, 3), filters=5, data_format="channels_first", strides=2),
    "channels-first-1d": kind(rank=1, input_shape=(2, 9, 3), filters=4, data_format="channels_first",
                              padding="1,2"),
    "channels-first-3d": kind(rank=3, input_shape=(1, 4, 5, 6, 3), filters=4, data_format="channels_first"),
    "channels-first-depthwise": kind(input_shape=(2, 7, 9, 4), filters=8, groups=4, data_format="channels_first"),
    "channels-first-transposed": kind(input_shape=(2, 5, 6, 3), filters=4, transposed=True, strides=2,
                                      data_format="channels_first"),
    "channels-first-transposed-1d": kind(rank=1, input_shape=(2, 6, 3), filters=4, transposed=True, strides=2,
                                         padding="1,0", data_format="channels_first"),
    "true-convolution": kind(input_shape=(1, 6, 7, 2), filters=3, convention="convolution"),
    "true-convolution-transposed": kind(rank=1, input_shape=(1, 6, 2), filters=3, convention="convolution",
                                        transposed=True, strides=2, padding="valid"),
    "float16-depthwise": kind(input_shape=(1, 6, 7, 4), filters=4, groups=4, dtype="float16", padding="1"),
    # float64 end to end: JAX computes a float64 layer in float32 unless x64 is enabled (keras-jax enables it).
    "float64": kind(input_shape=(1, 6, 7, 3), filters=4, dtype="float64", input_dtype="float64"),
}


def spec_for(kernel, strides, size, padding, dilation, bias):
    return ConvSpec(input_shape=(2, size, size + 1, 3), filters=4, kernel_size=kernel, strides=strides,
                    padding=parse_padding(padding), dilation=dilation, use_bias=bias,
                    bias_initializer="glorot_uniform" if bias else "zeros", seed=7)


def config_id(c):
    return f"k{c['kernel'][0]}x{c['kernel'][1]}-s{c['strides'][0]}-in{c['size']}-{c['padding']}-d{c['dilation'][0]}"


BACKENDS = [name for name in REGISTRY if name != "numpy"]


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_conforms_to_the_float64_reference(backend, config):
    _conforms(backend, spec_for(**config))


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kind_a_backend_can_express_conforms(backend, name):
    _conforms(backend, KINDS[name])


def _conforms(backend, spec):
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_grid_holds_configs_each_backend_refuses_and_runs(backend):
    specs = [spec_for(**c) for c in CONFIGS] + list(KINDS.values())
    refused = [s for s in specs if REGISTRY[backend].refusal(s)]
    assert 0 < len(refused) < len(specs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kind_a_backend_claims_is_in_the_grid(backend):
    """What the capabilities table says a backend runs, the kinds grid runs at least once."""
    can = REGISTRY[backend].can
    ran = [s for s in KINDS.values() if REGISTRY[backend].refusal(s) is None]
    for rank in can.ranks:
        assert any(s.rank == rank and not s.transposed for s in ran), rank
    for rank in can.transposed_ranks:
        assert any(s.rank == rank and s.transposed for s in ran), rank
    for rank in can.grouped_ranks:
        assert any(s.rank == rank and s.groups > 1 and not s.transposed for s in ran), rank
    if can.data_formats and "channels_first" in can.data_formats:
        assert any(s.channels_first for s in ran)
    if "convolution" in can.conventions:
        assert any(s.convention == "convolution" for s in ran)
    if can.transposed_ranks and can.transposed_groups:
        assert any(s.transposed and s.groups > 1 for s in ran)


def test_a_wrong_reference_is_caught():
    """The grid can fail: an explicit pad against SAME's asymmetric one is a mismatch."""
    spec = spec_for((3, 3), (2, 2), 8, "same", (1, 1), False)
    other = spec.replace(padding=parse_padding("1"))
    assert not run_case("wrong", SideConfig("numpy", other), SideConfig("nn", spec))
