"""The rounding model term by term, on numbers worked out by hand (no TensorFlow)."""

import math

import numpy as np
import pytest

from convdiff.reference.convolution import convolve
from convdiff.reference.rounding import (PROBABILISTIC_C, UNIT_ROUNDOFF, Arithmetic, BoundForm, RoundingModel,
                                         abs_convolution, gamma, precision_of, rounding_bound, ulp)
from convdiff.spec import ConvSpec

U32, U16, UBF = UNIT_ROUNDOFF["float32"], UNIT_ROUNDOFF["float16"], UNIT_ROUNDOFF["bfloat16"]
EXACT = Arithmetic.exact()
F32 = Arithmetic("float32", "float32", "float32")
F16 = Arithmetic("float16", "float32", "float16")  # a CPU framework: float16 storage, float32 sums


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (1.0, "float32", 2.0**-23),  # the spacing just above 1
        (1.999, "float32", 2.0**-23),
        (2.0, "float32", 2.0**-22),
        (1.0, "float16", 2.0**-10),
        (1.0, "bfloat16", 2.0**-7),
        (1.0, "tf32", 2.0**-10),
        (-3.0, "float16", 2.0**-9),  # the magnitude counts
        (0.0, "float16", 2.0**-24),  # float16's subnormal spacing
        (1e-6, "float16", 2.0**-24),  # still subnormal
        (0.0, "float32", 2.0**-149),
        (math.inf, "float32", math.inf),  # no bound where the value is infinite
    ],
)
def test_ulp(value, precision, expected):
    assert float(ulp(value, precision)) == expected


def test_ulp_matches_numpy_spacing():
    v = np.random.default_rng(0).standard_normal(1000) * np.logspace(-30, 30, 1000)
    np.testing.assert_array_equal(ulp(v, "float32"), np.spacing(np.abs(v).astype(np.float32)).astype(np.float64))
    np.testing.assert_array_equal(ulp(v[:500] * 1e-20, "float16"),
                                  np.spacing(np.abs(v[:500] * 1e-20).astype(np.float16)).astype(np.float64))


def test_precision_of():
    assert precision_of(np.float16) == "float16" and precision_of("bfloat16") == "bfloat16"
    assert precision_of(np.int64) == "float64"  # integers are held exactly
    with pytest.raises(ValueError, match="no rounding model"):
        precision_of(np.complex128)


# (what, model, S, y, b, expected bound). K = 100, so sqrt(K) = 10; c = PROBABILISTIC_C.
C = PROBABILISTIC_C
TERMS = [
    # The float64 reference alone: only its own float64 accumulation.
    ("float64 throughout", RoundingModel(BoundForm.PROBABILISTIC, 100, (EXACT,)), 4.0, 2.0, None,
     UNIT_ROUNDOFF["float64"] * (C * 10 * 4.0 + 100 * 2.0)),
    # float32 side on float32 operands: accumulation only (its output precision is its accumulation's).
    ("float32, no bias", RoundingModel(BoundForm.PROBABILISTIC, 100, (F32,), "float32", "float32"), 4.0, 2.0, None,
     U32 * (C * 10 * 4.0 + 100 * 2.0)),
    # The same side reading float64 input and kernel: two operand roundings, 2 u each, of S.
    ("float32 on float64 operands", RoundingModel(BoundForm.PROBABILISTIC, 100, (F32,)), 4.0, 2.0, None,
     2 * 2 * U32 * 4.0 + U32 * (C * 10 * 4.0 + 100 * 2.0)),
    # float16 storage with float32 sums: the output rounded to float16 (one ulp of |t| = 2: 2^-9).
    ("float16 output", RoundingModel(BoundForm.PROBABILISTIC, 100, (F16,), "float16", "float16"), 4.0, 2.0, None,
     U32 * (C * 10 * 4.0 + 100 * 2.0) + 2.0**-9),
    # With a bias: t = y - b = 2 rounded to float16, then the bias add rounded (one ulp of |y| = 3: 2^-9).
    ("float16 output and bias add", RoundingModel(BoundForm.PROBABILISTIC, 100, (F16,), "float16", "float16"), 4.0,
     3.0, 1.0, U32 * (C * 10 * 4.0 + 100 * 2.0) + 2.0**-9 + 2.0**-9),
    # Both sides: their bounds add up.
    ("two float16 sides", RoundingModel(BoundForm.PROBABILISTIC, 100, (F16, F16), "float16", "float16"), 4.0, 2.0,
     None, 2 * (U32 * (C * 10 * 4.0 + 100 * 2.0) + 2.0**-9)),
    # Worst case: gamma_K S, no K|t| term.
    ("worst case", RoundingModel(BoundForm.WORST_CASE, 100, (F32,), "float32", "float32"), 4.0, 2.0, None,
     100 * U32 / (1 - 100 * U32) * 4.0),
    # A bias in float64 rounded to a float16 side's operands: 2 u |b| besides the kernel's 2 u S.
    ("float16 side, float64 kernel and bias", RoundingModel(BoundForm.PROBABILISTIC, 100, (F16,), "float16", "float64"),
     4.0, 3.0, 1.0, 2 * U16 * 4.0 + 2 * U16 * 1.0 + U32 * (C * 10 * 4.0 + 100 * 2.0) + 2.0**-9 + 2.0**-9),
]


@pytest.mark.parametrize(("what", "model", "S", "y", "b", "expected"), TERMS, ids=[t[0] for t in TERMS])
def test_bound_terms(what, model, S, y, b, expected):
    bias = None if b is None else np.array([b])
    got = float(model.bound(np.array([S]), np.array([y]), bias)[0])
    assert got == pytest.approx(expected, rel=1e-12)


def test_model_names_the_coarsest_precision_any_side_rounds_to():
    assert RoundingModel(BoundForm.PROBABILISTIC, 9, (EXACT, F16), "float16", "float16").dtype == "float16"
    assert RoundingModel(BoundForm.PROBABILISTIC, 9, (EXACT, F32), "float64", "float64").dtype == "float32"
    assert RoundingModel(BoundForm.PROBABILISTIC, 9, (EXACT,)).dtype == "float64"
    tf32 = Arithmetic("tf32", "float64", "float64")  # the numpy emulation: TF32 operands, float64 sums
    assert RoundingModel(BoundForm.PROBABILISTIC, 9, (tf32, F32), "float32", "float32").dtype == "tf32"


def test_c_holds_its_stated_probability():
    # Higham & Mary 2019: failure probability at most 2 K exp(-c^2 (1-u)^2 / 2) per element.
    def failure(K, u=U32):
        return 2 * K * math.exp(-PROBABILISTIC_C**2 * (1 - u) ** 2 / 2)

    assert failure(9216) < 2.4e-10
    assert failure(9216) * 2 * 427 * 640 < 1.3e-4  # a whole 2x427x640 layer, by a union bound
    assert gamma(9216, "float32").value == pytest.approx(PROBABILISTIC_C * 96 * U32)


def test_rounding_bound_builds_from_the_reference_convolution():
    spec = ConvSpec(input_shape=(1, 5, 6, 3), filters=2, use_bias=True)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(spec.input_shape).astype(np.float16)
    w = rng.standard_normal(spec.kernel_shape).astype(np.float16)
    b = rng.standard_normal(2).astype(np.float16)
    bound, model = rounding_bound(x, w, spec, (EXACT, "float16"), bias=b)
    assert (model.input_precision, model.kernel_precision) == ("float16", "float16")
    assert model.sides == (EXACT, F16) and model.K == 27
    expected = model.bound(abs_convolution(x, w, spec), convolve(x, w, spec, b), b)
    np.testing.assert_array_equal(bound, expected)
    # Held values override the arrays' dtypes (values rounded to float16 but stored in float64).
    _, held = rounding_bound(x.astype(np.float64), w.astype(np.float64), spec, F16, precisions=("float16", "float16"))
    assert (held.input_precision, held.kernel_precision) == ("float16", "float16")


def test_a_bound_that_overflows_float64_is_infinite():
    spec = ConvSpec(input_shape=(1, 4, 4, 2), filters=1, kernel_size=(1, 1), use_bias=False)
    x = np.zeros(spec.input_shape)
    x[..., 0], x[..., 1] = 1.5e308, -1.5e308  # the products cancel, their magnitudes overflow
    bound, _ = rounding_bound(x, np.ones(spec.kernel_shape), spec, (EXACT, F32))
    assert np.isinf(bound).all()


def test_complex_values_are_refused_not_cast():
    # (pyproject makes a ComplexWarning raised from convdiff's code an error in tests)
    from convdiff import precision

    spec = ConvSpec(input_shape=(1, 4, 4, 1), filters=1, use_bias=False)
    z = np.ones(spec.input_shape, dtype=complex)
    w = np.ones(spec.kernel_shape)
    calls = [lambda: precision.rounding_bound(z, w, spec, "float32"), lambda: precision.round_to_tf32(z),
             lambda: precision.tf32_consistency(np.ones((1, 4, 4, 1), complex), np.ones(spec.input_shape), w, spec),
             lambda: precision.side_error(np.ones((1, 4, 4, 1), complex), np.ones(spec.input_shape), w, None, spec,
                                          "float32"),
             lambda: precision.ulp_distance(np.ones(3, complex), np.ones(3), "float32")]
    for call in calls:
        with pytest.raises(ValueError, match="complex"):
            call()


def test_the_float32_magnitude_of_a_large_convolution_is_an_upper_bound_of_the_float64_one():
    from convdiff.reference.rounding import FLOAT32_MAGNITUDE_FROM, magnitude_upper

    spec = ConvSpec(input_shape=(1, 96, 96, 32), filters=32, use_bias=False)
    assert int(np.prod(spec.output_shape)) * spec.dot_length >= FLOAT32_MAGNITUDE_FROM  # the float32 path
    rng = np.random.default_rng(5)
    x = rng.standard_normal(spec.input_shape).astype(np.float32)
    w = rng.standard_normal(spec.kernel_shape).astype(np.float32)
    exact = abs_convolution(x, w, spec)
    upper = magnitude_upper(x, w, spec)
    assert np.all(upper >= exact)
    K = spec.dot_length
    assert np.all(upper <= exact * (1 + 4 * K * 2.0 ** -24))  # looser by at most about 2 gamma_2K
    assert not np.array_equal(upper, exact)  # it did take the float32 path
    # Where float32 could overflow or underflow, or the operands are float64, it is the float64 convolution.
    for a, b in ((x * np.float32(1e36), w), (x * np.float32(1e-30), w * np.float32(1e-10)),
                 (x.astype(np.float64), w)):
        np.testing.assert_array_equal(magnitude_upper(a, b, spec), abs_convolution(a, b, spec))
