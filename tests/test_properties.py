"""Property-based tests (hypothesis) over random specs and argument strings, with real backends.

Deterministic and bounded: every test runs with `derandomize=True` and a fixed example count, so CI
runs the same examples every time (EXAMPLES below: 165 in all, agrees_with_float64 once per backend).

The comparator's mismatch counts against `np.isclose` are already a property test in
tests/test_compare.py (test_mismatch_count_matches_isclose); it is not repeated here.
"""

from __future__ import annotations

import json


import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convdiff.cli import cli
from convdiff.errors import BadInputError
from helpers import strip_timings

EXAMPLES = {"agrees_with_float64": 25, "deterministic": 10, "invalid_fields": 40, "random_argv": 40,
            "invalid_toml": 25}


def budget(name: str):  # noqa: ANN201
    return settings(max_examples=EXAMPLES[name], derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# --- random valid specs --------------------------------------------------------------------------


@st.composite
def valid_fields(draw) -> dict:
    """Small specs of every padding kind; specs the validator refuses are skipped with `assume`."""
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # TensorFlow's CPU kernels take strides or dilation, not both (refused by the TF backends).
    dilation = (1, 1) if strides != (1, 1) else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2).map(str),
                             st.tuples(*[st.integers(0, 2)] * 4).map(lambda p: ",".join(map(str, p)))))
    return {
        "input_shape": (draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)),
                        draw(st.integers(1, 4))),
        "filters": draw(st.integers(1, 4)),
        "kernel_size": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "strides": strides,
        "dilation": dilation,
        "padding": padding,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "bias_initializer": "random_normal",
    }


def build(fields: dict):  # noqa: ANN201
    from convdiff.data.specs import build_spec
    from convdiff.spec.fields import parse_fields

    try:
        return build_spec(parse_fields(fields))
    except BadInputError:
        assume(False)


def float32_dot_bound(spec, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Per output element: a float32 dot product of length K (plus the bias) is within
    gamma * sum(|x_i| |w_i|) of the exact value, gamma = (K + 2) u / (1 - (K + 2) u), u = 2^-24
    (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1), whatever the summation order.
    The magnitudes are themselves a convolution, computed exactly enough in float64.

    An independent, hand-written cross-check of the product's bound verdict.
    """
    from convdiff.reference.convolution import conv2d_nhwc

    k = spec.dot_length + 2
    u = 2.0**-24
    gamma = k * u / (1 - k * u)
    magnitude = conv2d_nhwc(np.abs(x), np.abs(kernel), spec.strides, spec.pads, spec.dilation,
                            None if bias is None else np.abs(bias))
    # 2x: oneDNN may use Winograd-style algorithms whose error constant exceeds plain summation's.
    return 2 * gamma * magnitude + np.finfo(np.float32).tiny


@pytest.mark.parametrize("candidate", ["nn", "keras-call"])
@budget("agrees_with_float64")
@given(fields=valid_fields())
def test_tensorflow_backends_agree_with_the_float64_reference(candidate, fields):
    from convdiff.data.inputs import make_input
    from convdiff.compare import RuleKind as ToleranceMode
    from convdiff.pipeline import SideConfig
    from helpers import run_case

    spec = build(fields)
    case = run_case("property", SideConfig("numpy", spec), SideConfig(candidate, spec))
    # Attributes first: same kernel drawn on both sides, same input, same output shape.
    np.testing.assert_array_equal(case.reference.kernel, case.candidate.kernel)
    assert case.inputs_identical
    assert case.candidate.output.shape == case.reference.output.shape == spec.output_shape
    # The product's verdict: every element within the float32 rounding bound (the default rule).
    assert case.tolerance_mode is ToleranceMode.BOUND
    assert case, (spec, case.verdict, case.output.max_ratio)
    # And the rigorous worst-case bound written out by hand, independently of convdiff's precision module.
    bound = float32_dot_bound(spec, make_input(spec), case.reference.kernel, case.reference.bias)
    diff = np.abs(case.candidate.output.astype(np.float64) - case.reference.output)
    assert np.all(diff <= bound), (spec, float((diff / bound).max()))


@budget("deterministic")
@given(fields=valid_fields(), pair=st.sampled_from([("numpy", "nn"), ("nn", "keras-call"), ("numpy", "caffe")]),
       zero_tolerance=st.booleans())
def test_reports_are_deterministic(fields, pair, zero_tolerance):
    from convdiff.backends import environment
    from convdiff.cli.compare import make_case
    from convdiff.compare import Tolerance
    from convdiff.pipeline import CaseOptions, execute
    from convdiff.report.json import case_to_json
    from convdiff.report.tables import verdict_line

    if pair[1] == "caffe":
        fields = {**fields, "padding": "1"}  # caffe pads symmetrically
    build(fields)
    from convdiff.spec.fields import parse_fields

    # A zero tolerance makes most cases mismatch, so the diagnosis and regions are covered too.
    options = CaseOptions(tolerance=Tolerance(0.0, 0.0) if zero_tolerance else None)
    results = [execute(make_case(*pair, parse_fields(fields), options)) for _ in range(2)]
    docs = [json.dumps(strip_timings(case_to_json(r, environment.collect(), verdict_line(r))), sort_keys=True)
            for r in results]
    assert docs[0] == docs[1]


# --- random invalid specs and argument strings: always exit 2, one line, never a traceback ---------

POISON = st.text(alphabet="$?`", min_size=1, max_size=3)
JUNK = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@st.composite
def invalid_argv(draw) -> list[str]:
    """Valid small arguments with exactly one field made invalid."""
    base = {"--shape": "1,6,6,2", "--filters": "2", "--kernel-size": "3", "--strides": "1", "--padding": "same",
            "--dilation": "1", "--seed": "0", "--init": "ones", "--dtype": "float32", "--input": "random",
            "--input-layout": "NHWC", "--weights-layout": "HWIO"}
    option = draw(st.sampled_from(sorted(base)))
    numeric = option in ("--shape", "--filters", "--kernel-size", "--strides", "--dilation", "--seed")
    bad = draw(st.one_of(
        POISON.flatmap(lambda p: JUNK.map(lambda j: j + p)),                 # garbage with a poison character
        st.integers(-10**6, 0).map(str) if numeric and option != "--seed" else st.just("$"),  # zero or negative
        st.integers(2**32, 2**70).map(str) if option == "--seed" else st.just("?"),        # out of range
        st.just("") if option != "--padding" else st.just("1,2,3"),
        st.just("-3") if option not in ("--init",) else st.just("glorot_uniform(seed=)"),
        st.sampled_from(["9" * 30, "1e3", "0x10", "1.5"]) if numeric else st.just("nonsense_name"),
    ))
    args = {**base, option: bad}
    return ["compare", *[a for kv in args.items() for a in kv]]


def _assert_exit_2(result) -> None:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convdiff: error: "), result.output


@budget("invalid_fields")
@given(argv=invalid_argv())
def test_invalid_fields_always_exit_2(argv):
    from click.testing import CliRunner

    _assert_exit_2(CliRunner().invoke(cli, argv))


@budget("random_argv")
@given(tokens=st.lists(JUNK.filter(lambda t: t not in ("-h", "--help")), max_size=4), poison=POISON,
       where=st.integers(0, 4), command=st.sampled_from(["compare", "run"]))
def test_random_argument_strings_exit_2(tokens, poison, where, command):
    from click.testing import CliRunner

    # A bare `run` word list is experiment names: a poison token is never one.
    tokens.insert(min(where, len(tokens)), poison)
    _assert_exit_2(CliRunner().invoke(cli, [command, *tokens]))


@budget("invalid_toml")
@given(text=st.text(max_size=80), key=st.sampled_from(["input_shape", "padding", "strides", "initializer", "top"]),
       value=st.one_of(POISON.map(json.dumps), st.integers(-5, 0).map(str), st.just("[1, 2.5]"), st.just("true")))
def test_random_experiment_files_exit_2(tmp_path_factory, text, key, value):
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("toml")
    garbage, field = folder / "garbage.toml", folder / "field.toml"
    garbage.write_text(text, encoding="utf-8")
    if key == "top" and value == "true":
        value = "-1"
    field.write_text(f'[[case]]\nname = "x"\ncandidate = "nn"\nexpect = "equivalent"\n{key} = {value}\n')
    for path in (garbage, field):
        result = CliRunner().invoke(cli, ["run", str(path)])
        _assert_exit_2(result)
