"""The built-in experiments reproduce the two questions they are named after; the file schema is enforced."""

import pytest

from convdiff.errors import BadInputError
from convdiff.suites.experiments import builtin_names, parse_experiment


@pytest.fixture(scope="module")
def ones_filter(builtin_cases):
    return {case: o for (experiment, case), o in builtin_cases.items() if experiment == "ones-filter"}


def test_ones_filter_float64_input(ones_filter):
    o = ones_filter["float64-input"]
    assert o.as_expected, o.got
    r = o.result
    assert (r.reference.compute_dtype, r.candidate.compute_dtype) == ("float64", "float32")
    assert r.kernels_identical
    # Of order 1 summed over 427x640 outputs, max of order 1e-5..1e-4: float32 rounding, not a bug.
    assert 0.1 < r.output.sum_abs_diff < 100, r.output.sum_abs_diff
    assert 1e-6 < r.output.max_abs_diff < 1e-3, r.output.max_abs_diff
    assert r.output.total == 427 * 640


def test_ones_filter_float32_input_is_exactly_zero(ones_filter):
    o = ones_filter["float32-input"]
    assert o.as_expected
    assert o.result.output.sum_abs_diff == 0.0


def test_xavier_kernel(builtin_cases):
    outcomes = [o for (experiment, _), o in builtin_cases.items() if experiment == "xavier-kernel"]
    assert len(outcomes) == 2
    assert all(o.as_expected for o in outcomes), [(o.case.name, o.got) for o in outcomes]
    first = outcomes[0].result
    assert first.kernels_identical and first.output.verdict.value == "identical"
    limit = (6 / (3 * 3 * 32 * 2)) ** 0.5  # Glorot uniform bound sqrt(6/(fan_in+fan_out))
    assert abs(first.reference.kernel).max() <= limit


def test_every_builtin_parses():
    from convdiff.suites.experiments import load_builtin

    for name in builtin_names():
        assert load_builtin(name).cases


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\n[[case]\n", "invalid TOML"),
        ("name = 'x'\n", "no cases"),
        ("colour = 'x'\n[[case]]\ncandidate='nn'\nexpect='identical'\n", "unknown key 'colour'"),
        ("[[case]]\ncandidate='nn'\n", "missing required key 'expect'"),
        ("[[case]]\nexpect='identical'\n", "candidate: missing required key"),
        ("[[case]]\ncandidate='nn'\nexpect='sameish'\n", "unknown expect 'sameish'"),
        ("[[case]]\ncandidate='tpu'\nexpect='identical'\n", "unknown backend 'tpu'"),
        ("[[case]]\ncandidate='nn'\nexpect='identical'\natol=1e-3\n", "atol and rtol together"),
        ("[[case]]\ncandidate='nn'\nexpect='identical'\nfilters='many'\n", "filters"),
        ("[[case]]\ncandidate='nn'\nexpect='identical'\nkernel_size=99\ninput_shape=[1,4,4,1]\npadding='valid'\n",
         "larger than the padded input"),
        ("[[case]]\ncandidate='nn'\nexpect=3\n", "'expect' must be str"),
    ],
)
def test_malformed_experiment_files(text, message):
    with pytest.raises(BadInputError, match=message) as info:
        parse_experiment(text, "bad.toml")
    assert "\n" not in str(info.value)


def test_tolerance_keys_in_experiment_files():
    exp = parse_experiment("[[case]]\ncandidate='nn'\nexpect='equivalent'\ntolerance='bound'\n"
                           "bound_form='worst-case'\natol=0\nrtol=0\n", "ok.toml")
    options = exp.cases[0].options
    assert options.tolerance_mode.value == "bound" and options.bound_form.value == "worst-case"
    # atol/rtol without a tolerance key keep their old meaning: the elementwise rule decides.
    legacy = parse_experiment("[[case]]\ncandidate='nn'\nexpect='equivalent'\natol=0\nrtol=0\n", "ok.toml")
    assert legacy.cases[0].options.tolerance_mode.value == "elementwise"


@pytest.mark.parametrize(("text", "message"), [
    ("[[case]]\ncandidate='nn'\nexpect='identical'\ntolerance='fuzzy'\n", "unknown tolerance mode 'fuzzy'"),
    ("[[case]]\ncandidate='nn'\nexpect='identical'\nbound_form='tight'\n", "unknown bound form 'tight'"),
])
def test_malformed_tolerance_keys(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_experiment(text, "bad.toml")
