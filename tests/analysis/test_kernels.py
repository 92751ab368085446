"""Theoretical initializer laws against real Keras (and TF1) draws; no mocks."""

from __future__ import annotations

import json

from convdiff.report.json import distribution_check_json
import math

import numpy as np
import pytest

from convdiff.analysis.kernels import (
    DIFFERENT_DISTRIBUTIONS,
    IDENTICAL,
    SAME_DISTRIBUTION,
    TRUNCATED_STD,
    check_distribution,
    compare_draws,
    fans,
    theoretical,
)
from convdiff.errors import BadInputError
from convdiff.backends.factory import make_kernel
from convdiff.spec.initializers import initializer_names, parse_initializer

SHAPE = (5, 5, 32, 64)
SEEDS = (0, 1, 2)

# Every random name in the registry (aliases included), plus variance_scaling's other branches and
# non-default arguments.
RANDOM = sorted({name for name, _ in initializer_names() if parse_initializer(name).is_random} | {
    "variance_scaling(scale=0.5, mode='fan_avg', distribution='uniform')",
    "variance_scaling(scale=3, mode='fan_out', distribution='untruncated_normal')",
    "random_uniform(0, 3)",
    "random_normal(1, 0.2)",
    "truncated_normal(mean=-1, stddev=0.1)",
    "orthogonal(gain=2)",
})


def test_the_list_covers_every_random_initializer():
    canonical = {parse_initializer(n).name for n in RANDOM}
    assert canonical == {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                         "lecun_normal", "random_uniform", "random_normal", "truncated_normal", "orthogonal",
                         "variance_scaling",
                         "default"}  # the framework default: checked as the glorot_uniform it stands for


# --- fans ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [
    (),                 # scalar: 1, 1
    (7,),               # 1-D: n, n
    (3, 5),             # dense: in, out
    (64, 32),
    (5, 5, 32, 64),     # conv2d HWIO: receptive field 25
    (3, 3, 1, 1),
    (3, 32, 8),         # conv1d
    (3, 3, 3, 16, 8),   # conv3d
])
def test_fans_match_keras_and_tf1(shape):
    from keras.src.initializers.random_initializers import compute_fans
    from tensorflow.python.ops.init_ops import _compute_fans

    assert fans(shape) == tuple(float(f) for f in compute_fans(shape))
    assert fans(shape) == tuple(float(f) for f in _compute_fans(shape))


def test_fans_of_a_conv_kernel():
    assert fans(SHAPE) == (800.0, 1600.0)


# --- every initializer follows its law -----------------------------------------------------------

@pytest.mark.parametrize("name", RANDOM)
def test_keras_draws_are_consistent_with_theory(name):
    law = theoretical(name, SHAPE)
    for seed in SEEDS:
        check = check_distribution(make_kernel(name, SHAPE, "float32", seed), name)
        assert check.consistent, (seed, check)
        assert check and check.within_support and check.ks_pvalue >= 1e-3
        assert check.expected == law
        assert math.isclose(check.std, law.std, rel_tol=0.03), (seed, check.std, law.std)
        assert abs(check.mean - law.mean) < 0.03 * law.std + 1e-12


@pytest.mark.parametrize("name", ["ones", "zeros", "constant(0.1)", "constant(-2.5)"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_constant_kernels_are_consistent(name, dtype):
    check = check_distribution(make_kernel(name, SHAPE, dtype, 0), name)
    assert check.consistent and check.within_support
    assert check.ks_statistic is None and check.ks_pvalue is None
    assert check.expected.family == "constant" and check.std == 0.0


def test_a_constant_checked_against_another_constant_is_not_consistent():
    check = check_distribution(make_kernel("ones", SHAPE, "float32", 0), "constant(1.5)")
    assert not check.consistent and not check.within_support


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "random_normal(1, 0.2)", "truncated_normal(-1, 0.1)"])
def test_low_precision_kernels_are_consistent(name, dtype):
    # TensorFlow draws a bfloat16 uniform from 128 levels: against the continuous law the raw KS
    # distance is ~1/128, which a plain test of 147k values would reject.
    shape = (3, 3, 64, 256)
    check = check_distribution(make_kernel(name, shape, dtype, 4), name)
    assert check.consistent, check
    if dtype == "bfloat16" and "uniform" in name:
        assert check.ks_statistic > 1 / 128


def test_float16_orthogonal_is_caught_drifting():
    # Keras' QR in float16 leaves the "orthonormal" columns ~4.5% too long on a tall kernel: a real
    # departure from the law, not a rounding artefact, and the check says so.
    shape = (3, 3, 512, 256)
    kernel = make_kernel("orthogonal", shape, "float16", 0)
    check = check_distribution(kernel, "orthogonal")
    assert not check.consistent and check.ks_pvalue < 1e-20
    assert check.std > 1.03 * check.expected.std
    assert check_distribution(make_kernel("orthogonal", shape, "float32", 0), "orthogonal").consistent


def test_tf1_draws_follow_the_same_laws():
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    names = RANDOM + ["ones", "constant(0.5)"]
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.get_variable(f"k{i}", SHAPE, dtype=tf.float32,
                                                     initializer=parse_initializer(name).tf1(11))
                     for i, name in enumerate(names)}
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            kernels = session.run(variables)
    for name, kernel in kernels.items():
        assert check_distribution(kernel, name).consistent, name


# --- wrong laws are caught -----------------------------------------------------------------------

@pytest.mark.parametrize("drawn, claimed", [
    ("glorot_uniform", "he_normal"),                         # the case from the brief
    ("glorot_uniform", "glorot_normal"),                     # same std, different shape of law
    ("he_normal", "he_uniform"),
    ("glorot_normal", "he_normal"),                          # same family, std off by sqrt(3)
    ("truncated_normal(stddev=0.1)", "random_normal(stddev=0.1)"),  # truncation ignored
    ("truncated_normal(stddev=0.1)", "truncated_normal(stddev=0.088)"),  # stddev taken as the truncated std
    ("random_normal(stddev=0.05)", "random_uniform"),
    ("orthogonal", "orthogonal(gain=2)"),                    # gain ignored
    ("lecun_normal", "variance_scaling(mode='fan_out')"),    # fan_in vs fan_out
])
def test_a_kernel_checked_against_the_wrong_initializer_is_not_consistent(drawn, claimed):
    check = check_distribution(make_kernel(drawn, SHAPE, "float32", 0), claimed)
    assert not check.consistent
    assert not check


def test_glorot_checked_against_he_normal_reports_why():
    check = check_distribution(make_kernel("glorot_uniform", SHAPE, "float32", 0), "he_normal")
    assert check.initializer == "he_normal"
    assert check.within_support            # the values fit inside ±2σ of He normal ...
    assert check.ks_pvalue < 1e-10         # ... but their distribution is far from it
    assert check.expected.family == "truncated_normal"


def test_values_outside_the_support_are_flagged():
    kernel = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    kernel[0, 0, 0, 0] = 0.051  # the limit is 0.05
    check = check_distribution(kernel, "glorot_uniform")
    assert not check.within_support and not check.consistent
    assert check.ks_pvalue > 1e-3  # one value does not move the KS test; the support check catches it


# --- the laws themselves -------------------------------------------------------------------------

def test_glorot_uniform_law():
    law = theoretical("glorot_uniform", SHAPE)
    assert (law.family, law.low, law.high) == ("uniform", -0.05, 0.05)  # sqrt(6 / (800 + 1600))
    assert law.description == "U(-0.05, 0.05), Glorot uniform limit sqrt(6/(fan_in+fan_out))"
    assert math.isclose(law.std, 0.05 / math.sqrt(3))


def test_truncated_normal_std_correction():
    kernel = make_kernel("truncated_normal(stddev=0.1)", SHAPE, "float32", 0)
    law = theoretical("truncated_normal(stddev=0.1)", SHAPE)
    assert (law.low, law.high) == (-0.2, 0.2)            # ±2 stddev of the underlying normal
    assert math.isclose(law.std, 0.1 * TRUNCATED_STD)    # the values' std is ≈ 0.88 stddev
    assert math.isclose(kernel.std(), 0.088, rel_tol=0.02)
    assert np.abs(kernel).max() <= 0.2


def test_variance_scaling_std_holds_after_truncation():
    # Keras divides by 0.8796... so that the *truncated* std is sqrt(scale / n).
    kernel = make_kernel("he_normal", SHAPE, "float32", 0)
    law = theoretical("he_normal", SHAPE)
    assert math.isclose(law.std, math.sqrt(2 / 800))
    assert math.isclose(law.high, 2 * math.sqrt(2 / 800) / TRUNCATED_STD)
    assert math.isclose(kernel.std(), math.sqrt(2 / 800), rel_tol=0.02)
    assert "sqrt(2/fan_in)" in law.description


def test_orthogonal_law():
    law = theoretical("orthogonal(gain=2)", SHAPE)
    n = 5 * 5 * 32  # rows of the flattened (prod(shape[:-1]), shape[-1]) matrix, the longer side
    assert (law.family, law.vector_length, law.low, law.high) == ("orthogonal", n, -2.0, 2.0)
    assert math.isclose(law.std, 2 / math.sqrt(n))
    assert theoretical("orthogonal", (16, 64)).vector_length == 64  # wide: rows are the unit vectors
    assert theoretical("orthogonal", (7,)) is None                   # Keras refuses rank 1
    assert theoretical("orthogonal", (1, 1)) is None                 # every entry is ±gain


def test_cdfs_are_distributions():
    for name in RANDOM + ["ones"]:
        law = theoretical(name, SHAPE)
        grid = np.linspace(law.mean - 10 * law.std - 1, law.mean + 10 * law.std + 1, 201)
        values = law.cdf(grid)
        assert values[0] == pytest.approx(0.0, abs=1e-9) and values[-1] == pytest.approx(1.0, abs=1e-9), name
        assert (np.diff(values) >= 0).all(), name


# --- comparing two draws -------------------------------------------------------------------------

def test_compare_same_init_different_seeds():
    a = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    b = make_kernel("glorot_uniform", SHAPE, "float32", 1)
    assert compare_draws(a, b, "glorot_uniform") == SAME_DISTRIBUTION == "same distribution, different draws"


def test_compare_different_inits():
    a = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    b = make_kernel("he_normal", SHAPE, "float32", 1)
    assert compare_draws(a, b, "glorot_uniform", "he_normal") == DIFFERENT_DISTRIBUTIONS == "different distributions"
    # Claiming both are glorot_uniform does not help: the two samples themselves disagree.
    assert compare_draws(a, b, "glorot_uniform") == DIFFERENT_DISTRIBUTIONS


def test_compare_equal_arrays():
    a = make_kernel("he_normal", SHAPE, "float32", 0)
    assert compare_draws(a, a.copy(), "he_normal") == IDENTICAL == "identical"
    assert compare_draws(a, a.astype(np.float64), "he_normal") == IDENTICAL  # same numbers, wider dtype


def test_compare_two_names_for_one_law():
    a = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    b = make_kernel("variance_scaling(1.0, 'fan_avg', 'uniform')", SHAPE, "float32", 1)
    assert compare_draws(a, b, "glorot_uniform", "variance_scaling(1.0, 'fan_avg', 'uniform')") == SAME_DISTRIBUTION


def test_compare_keras_with_tf1_draw():
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    with tf.Graph().as_default():
        var = tf.compat.v1.get_variable("k", SHAPE, initializer=parse_initializer("glorot_uniform").tf1(0))
        with tf.compat.v1.Session() as session:
            session.run(var.initializer)
            tf1_kernel = session.run(var)
    keras_kernel = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    assert compare_draws(keras_kernel, tf1_kernel, "glorot_uniform") == SAME_DISTRIBUTION


def test_compare_across_dtypes():
    shape = (3, 3, 64, 256)
    a = make_kernel("glorot_uniform", shape, "float32", 0)
    assert compare_draws(a, make_kernel("glorot_uniform", shape, "bfloat16", 1), "glorot_uniform") == SAME_DISTRIBUTION
    assert compare_draws(a, make_kernel("he_uniform", shape, "bfloat16", 1), "glorot_uniform",
                         "he_uniform") == DIFFERENT_DISTRIBUTIONS


def test_compare_different_shapes_of_one_law():
    a = make_kernel("random_normal", (3, 3, 16, 32), "float32", 0)
    b = make_kernel("random_normal", SHAPE, "float32", 0)
    assert compare_draws(a, b, "random_normal") == SAME_DISTRIBUTION


# --- results as data -----------------------------------------------------------------------------

def test_to_json():
    check = check_distribution(make_kernel("glorot_uniform", SHAPE, "float32", 0), "xavier")
    data = json.loads(json.dumps(distribution_check_json(check), allow_nan=False))
    assert data["initializer"] == "glorot_uniform"
    assert data["shape"] == list(SHAPE)
    assert (data["fan_in"], data["fan_out"]) == (800.0, 1600.0)
    assert data["expected"]["family"] == "uniform" and data["expected"]["high"] == 0.05
    assert data["consistent"] is True and data["within_support"] is True
    assert set(data) >= {"mean", "std", "min", "max", "ks_statistic", "ks_pvalue", "alpha"}


def test_non_finite_kernel_is_inconsistent_and_json_safe():
    kernel = make_kernel("glorot_uniform", SHAPE, "float32", 0)
    kernel[0, 0, 0, 0] = np.nan
    check = check_distribution(kernel, "glorot_uniform")
    assert not check.consistent and not check.within_support
    json.dumps(distribution_check_json(check), allow_nan=False)


@pytest.mark.parametrize("call, fragment", [
    (lambda: check_distribution(np.zeros((0, 3), np.float32), "zeros"), "empty kernel"),
    (lambda: check_distribution(np.ones((2, 2)), "ones", alpha=0.0), "alpha must be a number in (0, 1)"),
    (lambda: check_distribution(np.ones((2, 2)), "ones", alpha=1.5), "alpha must be"),
    (lambda: check_distribution(np.array([["a"]]), "ones"), "kernel must hold numbers"),
    (lambda: check_distribution(np.ones((2, 2)), "nope"), "unknown initializer"),
    (lambda: compare_draws(np.ones(3), np.zeros(3), "ones", "bogus(1)"), "unknown initializer"),
])
def test_bad_input(call, fragment):
    with pytest.raises(BadInputError) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)
