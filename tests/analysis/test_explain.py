"""explain finds the one semantic that produced an output made by a real backend, and nothing else.

The outputs come from the backends through compare's own path (tests/explain_cases.py); the search
sees only the arrays, as the files hold them.
"""

import numpy as np
import pytest

from convdiff.analysis.explain import Hints, explain
from convdiff.errors import BadInputError
from convdiff.spec.convspec import parse_padding
from explain_cases import BIAS, CASES, DEFAULTS, KERNEL, X, filled, produce, write_files


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("explain"))




@pytest.mark.parametrize("name, backend, args, expected", CASES, ids=[c[0] for c in CASES])
def test_explain_finds_exactly_the_semantic_of_a_real_backend(paths, name, backend, args, expected):
    args = filled(args, paths)
    output = produce(backend, args)
    from convdiff.data.arrays import load_array, npz_arrays

    def value_of(option):
        return args[args.index(option) + 1] if option in args else None

    weights = npz_arrays(value_of("--weights"), "weights")
    kernel = weights.get("kernel", weights.get(""))
    bias_file = expected.get("bias_file", value_of("--bias"))
    bias = load_array(bias_file.format(**paths), "bias") if bias_file else weights.get("bias")
    result = explain(load_array(value_of("--input"), "input"), kernel, output, bias)

    best = result.best
    assert best is not None, [(c.residual, c.bound_ratio) for c in result.candidates[:3]]
    want = {**DEFAULTS, **{k: v for k, v in expected.items() if k != "bias_file"}}
    got = {k: getattr(best, k) for k in want}
    assert got == want
    # Exactly it: no other variant is confirmed in its arithmetic, and no finer arithmetic fits.
    assert result.indistinguishable == ()
    assert best.within[0] == expected["arithmetic"]
    assert all(c.residual > 1e-2 for c in result.candidates
               if (c.weights_layout, c.input_layout, c.convention, c.bias, c.pads, c.strides, c.dilation)
               != (best.weights_layout, best.input_layout, best.convention, best.bias, best.pads, best.strides,
                   best.dilation))
    assert result.tried == len(result.candidates) > 1


def test_dilation_is_searched_only_when_dilation_1_explains_nothing(paths):
    output = produce("nn", filled(["--input", "{x}", "--weights", "{w_hwio}", "--padding", "same"], paths))
    result = explain(X, KERNEL, output, BIAS)
    assert result.best.dilation == (1, 1)
    assert {c.dilation for c in result.candidates} == {(1, 1)}


def test_hints_restrict_the_search(paths):
    output = produce("nn", filled(["--input", "{x}", "--weights", "{w_hwio}", "--strides", "2", "--padding", "same"],
                                  paths))
    free = explain(X, KERNEL, output, BIAS)
    hinted = explain(X, KERNEL, output, BIAS, Hints(strides=(2,), padding=parse_padding("same"),
                                                    convention="correlation", weights_layout="HWIO",
                                                    input_layout="NHWC", dtype="float32"))
    assert hinted.best is not None and hinted.best.pads == free.best.pads == ((0, 1), (0, 1))
    assert hinted.tried < free.tried
    assert {c.convention for c in hinted.candidates} == {"correlation"}
    # A wrong hint explains nothing.
    wrong = explain(X, KERNEL, output, BIAS, Hints(padding=parse_padding("1")))
    assert not wrong and wrong.best is None


def test_a_random_output_is_not_explained():
    rng = np.random.default_rng(5)
    output = rng.random((1, 12, 12, 6)).astype(np.float32)
    result = explain(X, KERNEL, output, BIAS)
    assert not result
    assert result.tried > 0 and result.confirmed == ()
    assert min(c.residual for c in result.candidates) > 0.1


def test_no_shape_fits():
    result = explain(X, KERNEL, np.zeros((1, 40, 40, 6), np.float32))
    assert not result and result.tried == 0 and result.notes


@pytest.mark.parametrize("x, kernel, output, message", [
    (X, KERNEL, np.zeros((12, 6), np.float32), "expected N, 1 to 3 spatial axes"),
    (X[0], KERNEL, np.zeros((1, 10, 10, 6), np.float32), "the input has 3 dimensions"),
    (X, KERNEL[0], np.zeros((1, 10, 10, 6), np.float32), "the kernel has 3 dimensions"),
])
def test_arrays_no_convolution_relates(x, kernel, output, message):
    with pytest.raises(BadInputError, match=message):
        explain(x, kernel, output)


def test_bias_of_the_wrong_length():
    with pytest.raises(BadInputError, match="the bias has 5 values"):
        explain(X, KERNEL, np.zeros((1, 10, 10, 6), np.float32), np.ones(5))


def test_other_ranks_and_depthwise_kernels():
    from convdiff.reference.convolution import conv_nd

    rng = np.random.default_rng(1)
    # Conv1D, an NCW input, stride 2, pads (2, 1): the after-pad is never read, so (2, 0) is the same computation.
    x = rng.random((2, 30, 5)).astype(np.float32)
    k = rng.uniform(-0.5, 0.5, (4, 5, 7)).astype(np.float32)
    found = explain(x.transpose(0, 2, 1), k, conv_nd(x, k, (2,), ((2, 1),)).astype(np.float32)).best
    assert (found.input_layout, found.weights_layout, found.strides, found.pads) == ("NCW", "WIO", (2,), ((2, 0),))
    # A depthwise kernel as Keras stores it, (kh, kw, C, M).
    x = rng.random((1, 10, 10, 4)).astype(np.float32)
    k = rng.uniform(-0.5, 0.5, (3, 3, 4, 2)).astype(np.float32)
    y = conv_nd(x, k.reshape(3, 3, 1, 8), (1, 1), ((1, 1), (1, 1)), groups=4).astype(np.float32)
    found = explain(x, k, y)
    assert (found.best.weights_layout, found.best.groups, found.best.padding) == ("HWCM", 4, "same")
    assert found.indistinguishable == ()
    # Conv3D with TF SAME on an even depth: (0, 1) there.
    x = rng.random((1, 6, 7, 8, 3)).astype(np.float32)
    k = rng.uniform(-0.5, 0.5, (2, 3, 3, 3, 4)).astype(np.float32)
    found = explain(x, k, conv_nd(x, k, (1, 1, 1), ((0, 1), (1, 1), (1, 1))).astype(np.float32)).best
    assert (found.weights_layout, found.padding, found.arithmetic) == ("DHWIO", "same", "float32")
