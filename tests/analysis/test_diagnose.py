"""Every diagnosis: the mistake injected -> the diagnosis names it, and no other mistake claims it.

Pure NumPy: the candidate outputs are made with the float64 reference convolution and rounded to
float32, as a float32 backend would return them.
"""

import json
import numpy as np
import pytest

from convdiff.reference.convolution import conv2d_nhwc
from convdiff.analysis.diagnose import CAUSES, diagnose
from convdiff.spec.convspec import ConvSpec, parse_padding

RNG = np.random.default_rng(11)
SPEC = ConvSpec(input_shape=(1, 9, 10, 4), filters=4, kernel_size=(3, 3), padding=parse_padding("same"))
X = RNG.random(SPEC.input_shape)
K = RNG.uniform(-0.5, 0.5, SPEC.kernel_shape)  # C_in == C_out: a swap of I and O keeps the shape
B = RNG.uniform(0.2, 0.5, 4)
OTHER_K = RNG.uniform(-0.5, 0.5, SPEC.kernel_shape)


def conv(x=X, k=K, pads=None, bias=B, strides=(1, 1), spec=SPEC):
    return conv2d_nhwc(x, k, strides, spec.pads if pads is None else pads, (1, 1), bias)


def f32(a):
    return np.asarray(a).astype(np.float32)


def shifted_down(a):
    out = np.zeros_like(a)
    out[:, 1:] = a[:, :-1]
    return out


def extra_row(a):
    return np.concatenate([a, np.zeros_like(a[:, :1])], axis=1)


STRIDED = SPEC.replace(input_shape=(1, 10, 10, 4), strides=(2, 2))  # SAME pads (0, 1) on an even input
X10 = RNG.random(STRIDED.input_shape)

# (mistake, reference spec, candidate spec, reference input, candidate output, kwargs, expected confirmed causes)
MISTAKES = [
    ("float32 candidate", SPEC, SPEC, X, f32(conv()), {}, {"dtype"}),
    ("float16 candidate", SPEC, SPEC, X, conv(f32(X).astype(np.float16), K.astype(np.float16)).astype(np.float16),
     {"candidate_dtype": "float16"}, {"dtype"}),
    ("symmetric pad 1 vs TF SAME (0, 1)", STRIDED, STRIDED.replace(padding=parse_padding("1")), X10,
     f32(conv(X10, pads=((1, 1), (1, 1)), strides=(2, 2), spec=STRIDED)), {}, {"padding"}),
    ("H/W swapped kernel", SPEC, SPEC, X, f32(conv(k=K.transpose(1, 0, 2, 3))), {}, {"kernel_transposed_hw"}),
    ("kernel rotated 180", SPEC, SPEC, X, f32(conv(k=K[::-1, ::-1])), {}, {"kernel_rotated_180"}),
    ("I and O swapped", SPEC, SPEC, X, f32(conv(k=K.transpose(0, 1, 3, 2))), {}, {"weights_permuted"}),
    ("NCHW input read as NHWC", SPEC, SPEC, X, f32(conv(x=X.transpose(0, 3, 1, 2).reshape(X.shape))), {},
     {"input_layout"}),
    ("bias missing", SPEC, SPEC, X, f32(conv(bias=None)), {}, {"bias_missing"}),
    ("bias doubled", SPEC, SPEC, X, f32(conv(bias=2 * B)), {}, {"bias_doubled"}),
    ("output shifted down one row", SPEC, SPEC, X, f32(shifted_down(conv())), {}, {"output_shifted"}),
    ("one extra output row", SPEC, SPEC, X, f32(extra_row(conv())), {}, {"output_size"}),
    ("a different kernel", SPEC, SPEC, X, f32(conv(k=OTHER_K)), {"candidate_kernel": OTHER_K, "candidate_bias": B},
     {"weights_differ"}),
    ("nothing known: noise", SPEC, SPEC, X, f32(conv() + RNG.normal(0, 0.05, conv().shape)), {}, set()),
]


@pytest.mark.parametrize(("mistake", "ref_spec", "cand_spec", "x", "candidate", "kwargs", "expected"), MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_diagnosis_names_the_injected_mistake_and_nothing_else(mistake, ref_spec, cand_spec, x, candidate, kwargs,
                                                               expected):
    kwargs = {"candidate_dtype": "float32", **kwargs}
    hypotheses = diagnose(ref_spec, cand_spec, x, K, B, candidate, reference_dtype="float64", **kwargs)
    assert [h.cause for h in hypotheses] == list(CAUSES)
    confirmed = {h.cause for h in hypotheses if h.confirmed}
    assert confirmed == expected, [(h.cause, h.residual, h.detail) for h in hypotheses]
    for h in hypotheses:
        if h.confirmed:
            assert h.residual is not None and h.residual < 1e-2  # float16 rounding at most


def test_padding_detail_names_each_sides_pads():
    _, _, cand_spec, _, candidate, _, _ = next(m for m in MISTAKES if m[0].startswith("symmetric"))
    h = {h.cause: h for h in diagnose(STRIDED, cand_spec, X10, K, B, candidate, reference_dtype="float64",
                                      candidate_dtype="float32")}["padding"]
    assert "reference pads rows (0, 1), columns (0, 1)" in h.detail
    assert "candidate rows (1, 1), columns (1, 1)" in h.detail


def test_to_json_has_the_documented_keys():
    h = diagnose(SPEC, SPEC, X, K, B, f32(conv(bias=None)), reference_dtype="float64", candidate_dtype="float32")[0]
    from convdiff.report.json import finding_json

    assert set(finding_json(h)) == {"cause", "confirmed", "residual", "detail", "bound_ratio", "same_as"}


def test_rounding_level_separates_float32_from_a_small_real_error():
    # An error of 1e-3 on one element is far above float32 rounding (K = 36): not explained by dtype.
    candidate = f32(conv())
    candidate[0, 4, 4, 0] += 1e-3
    hypotheses = {h.cause: h for h in diagnose(SPEC, SPEC, X, K, B, candidate, reference_dtype="float64",
                                               candidate_dtype="float32")}
    assert not hypotheses["dtype"].confirmed


# --- TF32: what a GPU's tensor cores do to a float32 convolution -------------------------------------


def _tf32_case(rounding):
    from convdiff.reference.convolution import conv2d_nhwc
    from convdiff.reference.rounding import round_to_tf32
    from convdiff.spec.convspec import ConvSpec

    spec = ConvSpec(input_shape=(1, 8, 8, 64), filters=8, kernel_size=(3, 3), use_bias=False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(spec.input_shape).astype(np.float32)
    w = rng.standard_normal(spec.kernel_shape).astype(np.float32)
    if rounding == "tf32":
        out = conv2d_nhwc(round_to_tf32(x), round_to_tf32(w), spec.strides, spec.pads).astype(np.float32)
    else:  # float16 multiplicands: also 10 mantissa bits, but a float16 result
        out = conv2d_nhwc(x.astype(np.float16), w.astype(np.float16), spec.strides, spec.pads).astype(np.float16)
    return spec, x, w, out


def test_tf32_result_is_recognised():
    from convdiff.analysis.diagnose import diagnose

    spec, x, w, out = _tf32_case("tf32")
    hypotheses = {h.cause: h for h in diagnose(spec, spec, x, w, None, out, reference_dtype="float32",
                                                candidate_dtype="float32")}
    assert hypotheses["tf32"].confirmed, hypotheses["tf32"].detail
    assert "consistent with TF32" in hypotheses["tf32"].detail
    assert not hypotheses["dtype"].confirmed  # plain float32 rounding does not explain it


def test_float16_result_is_not_taken_for_tf32():
    from convdiff.analysis.diagnose import diagnose

    spec, x, w, out = _tf32_case("float16")
    hypotheses = {h.cause: h for h in diagnose(spec, spec, x, w, None, out, reference_dtype="float32",
                                                candidate_dtype="float32")}
    assert not hypotheses["tf32"].confirmed, hypotheses["tf32"].detail


def test_tf32_emulation_is_a_numpy_reference_dtype(cli_runner):
    from convdiff.cli import cli

    ok = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--set", "reference.dtype=tf32", "--candidate", "nn",
                                 "--shape", "1,8,8,16", "--filters", "4", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)["comparisons"][0]
    assert doc["reference"]["dtype"] == "tf32" and doc["bound"]["dtype"] == "tf32"
    refused = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "nn", "--dtype", "tf32"])
    assert refused.exit_code == 2
    assert "cannot compute in tf32" in refused.output
