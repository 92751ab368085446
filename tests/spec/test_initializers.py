"""Initializer names -> specs, and the shared seeded kernel factory (real Keras draws, no mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convdiff.errors import BadInputError
from convdiff.backends.factory import make_kernel
from convdiff.spec.initializers import InitializerSpec, initializer_names, parse_initializer

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = [
    "ones", "zeros", "constant", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "random_uniform", "random_normal", "truncated_normal", "orthogonal", "variance_scaling",
]


# --- parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("glorot_uniform", "glorot_uniform"),
    ("  he_normal  ", "he_normal"),                                         # surrounding blanks
    ("HE_NORMAL", "he_normal"),                                             # case-insensitive
    ("GlorotUniform", "glorot_uniform"),                                    # Keras class spelling
    ("glorot_uniform()", "glorot_uniform"),                                 # empty parens dropped
    ("constant(0.5)", "constant(value=0.5)"),                               # positional
    ("constant(value=-2)", "constant(value=-2.0)"),                         # unary minus, int -> float
    ("constant", "constant(value=0.0)"),                                    # Keras' default value
    ("random_uniform", "random_uniform(minval=-0.05, maxval=0.05)"),        # Keras defaults filled in
    ("random_uniform(-1, maxval=+1)", "random_uniform(minval=-1.0, maxval=1.0)"),  # mixed, unary plus
    ("random_normal", "random_normal(mean=0.0, stddev=0.05)"),
    ("truncated_normal(stddev=0.1)", "truncated_normal(mean=0.0, stddev=0.1)"),
    ("truncated_normal(stddev=0.1, mean=1)", "truncated_normal(mean=1.0, stddev=0.1)"),  # keyword order
    ("truncated_normal(1e-3, 1e-5)", "truncated_normal(mean=0.001, stddev=1e-05)"),
    ("orthogonal", "orthogonal(gain=1.0)"),
    ("variance_scaling", 'variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal")'),
    ("variance_scaling(2, 'FAN_AVG', 'Uniform')", 'variance_scaling(scale=2.0, mode="fan_avg", distribution="uniform")'),
    ('variance_scaling(distribution="normal")',                             # Keras maps normal -> truncated_normal
     'variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal")'),
])
def test_canonical_text(text, canonical):
    spec = parse_initializer(text)
    assert str(spec) == canonical
    assert parse_initializer(str(spec)) == spec


@pytest.mark.parametrize("text, canonical", [
    ("xavier", "glorot_uniform"),
    ("xavier_uniform", "glorot_uniform"),
    ("xavier_normal", "glorot_normal"),
    ("xavier(uniform=True)", "glorot_uniform"),
    ("xavier(uniform=False)", "glorot_normal"),
    ("xavier_initializer(uniform=False)", "glorot_normal"),                 # tf.contrib spelling
    # TF1 spellings: the `_initializer` suffix goes; defaults are still Keras'.
    ("glorot_uniform_initializer()", "glorot_uniform"),
    ("glorot_normal_initializer", "glorot_normal"),
    ("truncated_normal_initializer(stddev=0.1)", "truncated_normal(mean=0.0, stddev=0.1)"),
    ("truncated_normal_initializer()", "truncated_normal(mean=0.0, stddev=0.05)"),  # TF1's own default is 1.0
    ("random_normal_initializer(0.0, 0.02)", "random_normal(mean=0.0, stddev=0.02)"),
    ("random_uniform_initializer(-0.1, 0.1)", "random_uniform(minval=-0.1, maxval=0.1)"),
    ("orthogonal_initializer(gain=2)", "orthogonal(gain=2.0)"),
    ("OrthogonalInitializer", "orthogonal(gain=1.0)"),
    ("variance_scaling_initializer(scale=2.0)",
     'variance_scaling(scale=2.0, mode="fan_in", distribution="truncated_normal")'),
    ("constant_initializer(3)", "constant(value=3.0)"),
    ("ones_initializer()", "ones"),
    ("zeros_initializer", "zeros"),
])
def test_aliases_and_tf1_spellings(text, canonical):
    assert str(parse_initializer(text)) == canonical


def test_spec_built_directly_is_normalized():
    assert InitializerSpec("truncated_normal") == parse_initializer("truncated_normal(stddev=0.05)")
    assert InitializerSpec("orthogonal", (("gain", 2),)).args == (("gain", 2.0),)
    assert parse_initializer(InitializerSpec("he_normal")) == InitializerSpec("he_normal")
    with pytest.raises(BadInputError):
        InitializerSpec("truncated_normal", (("stddev", 0.0),))
    with pytest.raises(BadInputError):
        InitializerSpec("bogus")


def test_spec_properties():
    spec = parse_initializer("truncated_normal(stddev=0.1)")
    assert spec.name == "truncated_normal"
    assert spec.args == (("mean", 0.0), ("stddev", 0.1))
    assert spec.kwargs() == {"mean": 0.0, "stddev": 0.1}
    assert spec.is_random
    assert [parse_initializer(n).is_random for n in ("ones", "zeros", "constant(2)")] == [False] * 3


def test_initializer_names_lists_every_name_and_alias():
    rows = initializer_names()
    names = [name for name, _ in rows]
    assert names[:len(CANONICAL)] == CANONICAL
    assert {"xavier", "xavier_uniform", "xavier_normal"} <= set(names)
    for name, description in rows:
        parse_initializer(name)
        assert description and "\n" not in description
    assert "stddev=0.05" in dict(rows)["truncated_normal"]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
specs = st.one_of(
    st.sampled_from(["ones", "zeros", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                     "lecun_uniform", "lecun_normal"]).map(InitializerSpec),
    finite.map(lambda v: InitializerSpec("constant", (("value", v),))),
    st.lists(finite, min_size=2, max_size=2, unique=True).map(sorted).map(
        lambda lh: InitializerSpec("random_uniform", (("minval", lh[0]), ("maxval", lh[1])))),
    st.tuples(st.sampled_from(["random_normal", "truncated_normal"]), finite, positive).map(
        lambda t: InitializerSpec(t[0], (("mean", t[1]), ("stddev", t[2])))),
    positive.map(lambda g: InitializerSpec("orthogonal", (("gain", g),))),
    st.tuples(positive, st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
              st.sampled_from(["truncated_normal", "untruncated_normal", "uniform"])).map(
        lambda t: InitializerSpec("variance_scaling", (("scale", t[0]), ("mode", t[1]), ("distribution", t[2])))),
)


@settings(max_examples=300, deadline=None)
@given(specs)
def test_str_round_trips(spec):
    assert parse_initializer(str(spec)) == spec


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ("glorot", "unknown initializer 'glorot'"),                              # unknown name
    ("", "empty initializer"),
    ("truncated_normal(stddev=-0.1)", "stddev must be > 0"),                # negative stddev
    ("truncated_normal(stddev=0)", "stddev must be > 0"),
    ("random_normal(stddev='big')", "stddev must be a number"),             # bad arg type
    ("constant(True)", "value must be a number"),                           # a bool is not a number
    ("constant(1e999)", "must be finite"),
    ("random_uniform(1, -1)", "minval < maxval"),
    ("random_uniform(0.5, 0.5)", "minval < maxval"),
    ("truncated_normal(sigma=0.1)", "unknown keyword 'sigma' for truncated_normal (valid keywords: mean, stddev)"),
    ("glorot_uniform(scale=2)", "unknown keyword 'scale' for glorot_uniform"),
    ("glorot_uniform(1)", "glorot_uniform takes no arguments"),
    ("truncated_normal(0, 0.1, 3)", "takes at most 2 arguments"),
    ("truncated_normal(0.1, mean=0)", "two values for 'mean'"),
    ("glorot_uniform(seed=1)", "the seed is not part of the initializer"),
    ("variance_scaling(mode='fan_sum')", "mode must be one of fan_in, fan_out, fan_avg"),
    ("variance_scaling(distribution=1)", "distribution must be one of"),
    ("orthogonal(gain=-1)", "gain must be > 0"),
    ("xavier(uniform=0)", "xavier uniform must be True or False"),
    ("xavier_uniform(uniform=False)", "unknown keyword 'uniform'"),
    ("__import__('os')", "unknown initializer"),                            # code: a call, but not ours
    ("__import__('os').system('true')", "malformed initializer"),           # attribute access on a call
    ("tf.keras.initializers.GlorotUniform()", "malformed initializer"),     # attribute access
    ("keras.initializers.he_normal", "malformed initializer"),
    ("constant(constant(1))", "literal numbers, booleans or strings"),      # nested call
    ("constant(1 + 1)", "literal numbers, booleans or strings"),            # arithmetic
    ("constant(x)", "literal numbers, booleans or strings"),                # a name as argument
    ("constant(*[1])", "literal numbers, booleans or strings"),             # star-args
    ("truncated_normal(**{'stddev': 1})", "keyword expansion"),
    ("constant(None)", "literal numbers, booleans or strings"),
    ("glorot_uniform; import os", "malformed initializer"),                  # statements
    ("lambda: 0", "malformed initializer"),
    ("glorot_uniform(\n", "malformed initializer"),                          # newline in input: one-line message
    ("[glorot_uniform]", "malformed initializer"),
    ("x" * 300, "too long"),
])
def test_bad_input_is_a_one_line_error_listing_valid_names(text, fragment):
    with pytest.raises(BadInputError) as info:
        parse_initializer(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "valid initializers: ones, zeros, constant, glorot_uniform" in message
    assert "xavier" in message


def test_non_text_is_rejected():
    with pytest.raises(BadInputError, match="must be given as text"):
        parse_initializer(3)  # type: ignore[arg-type]


# --- the kernel factory --------------------------------------------------------------------------

SHAPE = (3, 3, 4, 8)


def test_same_seed_is_bit_identical_and_seeds_differ():
    a = make_kernel("glorot_uniform", SHAPE, "float32", 42)
    b = make_kernel("glorot_uniform", SHAPE, "float32", 42)
    c = make_kernel("glorot_uniform", SHAPE, "float32", 43)
    assert a.shape == SHAPE and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", [n for n in CANONICAL if n not in ("ones", "zeros", "constant")])
def test_every_random_initializer_is_deterministic(name):
    a = make_kernel(name, SHAPE, "float32", 7)
    assert a.tobytes() == make_kernel(name, SHAPE, "float32", 7).tobytes()
    assert not np.array_equal(a, make_kernel(name, SHAPE, "float32", 8))


def test_make_kernel_is_the_keras_draw():
    import keras

    spec = parse_initializer("glorot_uniform")
    drawn = keras.ops.convert_to_numpy(spec.keras(42)(SHAPE))
    assert drawn.tobytes() == make_kernel(spec, SHAPE, "float32", 42).tobytes()
    assert isinstance(spec.keras(42), keras.initializers.GlorotUniform)


@pytest.mark.parametrize("text, cls, attrs", [
    ("truncated_normal(stddev=0.1)", "TruncatedNormal", {"mean": 0.0, "stddev": 0.1}),
    ("random_uniform(-1, 1)", "RandomUniform", {"minval": -1.0, "maxval": 1.0}),
    ("variance_scaling(2, 'fan_out', 'uniform')", "VarianceScaling",
     {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}),
    ("orthogonal(gain=3)", "Orthogonal", {"gain": 3.0}),
    ("constant(0.5)", "Constant", {}),
    ("he_normal", "HeNormal", {}),
])
def test_keras_initializer_carries_the_arguments(text, cls, attrs):
    import keras

    init = parse_initializer(text).keras(1)
    assert isinstance(init, getattr(keras.initializers, cls))
    for key, value in attrs.items():
        assert getattr(init, key) == value


@pytest.mark.parametrize("name, dtype", [
    (name, dtype)
    for name in ("he_normal", "random_uniform", "orthogonal")
    for dtype in ("float16", "bfloat16", "float32", "float64")
    if (name, dtype) != ("orthogonal", "bfloat16")  # Keras cannot: see test_make_kernel_rejects_bad_input
])
def test_every_dtype_is_drawn_as_keras_draws_it(name, dtype):
    # The Keras and tf.nn backends draw through .keras(seed) in the spec's dtype: the NumPy side
    # must hold the very same numbers.
    import keras

    from convdiff.spec.dtypes import np_dtype

    kernel = make_kernel(name, SHAPE, dtype, 3)
    assert kernel.dtype == np_dtype(dtype)
    drawn = keras.ops.convert_to_numpy(parse_initializer(name).keras(3)(SHAPE, dtype=dtype))
    assert kernel.tobytes() == drawn.tobytes()


def test_make_kernel_matches_a_keras_layer_of_that_dtype():
    import keras

    layer = keras.layers.Conv2D(8, 3, kernel_initializer=parse_initializer("glorot_uniform").keras(9), dtype="float64")
    layer.build((None, 5, 5, 4))
    assert np.array_equal(keras.ops.convert_to_numpy(layer.kernel), make_kernel("glorot_uniform", SHAPE, "float64", 9))


@pytest.mark.parametrize("text, dtype, value", [
    ("ones", "float32", 1.0),
    ("zeros", "float16", 0.0),
    ("constant(0.25)", "bfloat16", 0.25),
    ("constant(-3)", "float64", -3.0),
])
def test_constant_kernels(text, dtype, value):
    kernel = make_kernel(text, SHAPE, dtype, 0)
    assert kernel.shape == SHAPE and str(kernel.dtype) == dtype
    assert (kernel.astype(np.float64) == value).all()


def test_constant_kernels_never_import_tensorflow():
    code = textwrap.dedent("""
        import sys
        from convdiff.backends.factory import make_kernel
        from convdiff.spec.initializers import parse_initializer, initializer_names
        from convdiff.analysis.kernels import check_distribution, theoretical
        parse_initializer("truncated_normal(stddev=0.1)"); initializer_names()
        theoretical("glorot_uniform", (3, 3, 4, 8))
        for name in ("ones", "zeros", "constant(2)"):
            assert check_distribution(make_kernel(name, (3, 3, 4, 8), "bfloat16", 1), name).consistent
        leaked = sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)
        assert not leaked, leaked
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kwargs, fragment", [
    ({"dtype": "float8"}, "unknown kernel dtype 'float8'"),
    ({"dtype": "int32"}, "unknown kernel dtype"),
    ({"shape": (3, 0, 4)}, "kernel shape must be positive integers"),
    ({"shape": (3, 3.0)}, "kernel shape must be positive integers"),
    ({"shape": 3}, "kernel shape must be positive integers"),
    ({"seed": -1}, "seed must be an integer in [0, 2**32)"),
    ({"seed": 2**32}, "seed must be an integer"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": True}, "seed must be an integer"),
    ({"init": "orthogonal", "shape": (5,)}, "orthogonal needs a kernel of at least 2 dimensions"),
    ({"init": "constant(1e5)", "dtype": "float16"}, "overflows float16"),
    ({"init": "nope"}, "unknown initializer 'nope'"),
    # TensorFlow's QR has no bfloat16 kernel: Keras itself cannot make this kernel.
    # orthogonal in bfloat16 is the framework failing (exit 3), not bad input: see
    # tests/test_backend_failures.py::test_make_kernel_framework_failure_is_a_framework_error.
])
def test_make_kernel_rejects_bad_input(kwargs, fragment):
    args = {"init": "glorot_uniform", "shape": SHAPE, "dtype": "float32", "seed": 0, **kwargs}
    with pytest.raises(BadInputError) as info:
        make_kernel(**args)
    assert fragment in str(info.value)


# --- TF1 -----------------------------------------------------------------------------------------

def _draw_tf1(spec_text: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow()
    with tf.Graph().as_default():
        var = tf.compat.v1.get_variable("kernel", shape, dtype=tf.float32,
                                        initializer=parse_initializer(spec_text).tf1(seed))
        with tf.compat.v1.Session() as session:
            session.run(var.initializer)
            return session.run(var)


def test_tf1_glorot_uniform_in_graph_mode():
    a = _draw_tf1("glorot_uniform", SHAPE, 5)
    limit = np.sqrt(6.0 / (3 * 3 * 4 + 3 * 3 * 8))
    assert a.shape == SHAPE and a.dtype == np.float32
    assert np.abs(a).max() <= limit
    assert np.array_equal(a, _draw_tf1("glorot_uniform", SHAPE, 5))  # op seed + default graph seed: reproducible
    assert not np.array_equal(a, _draw_tf1("glorot_uniform", SHAPE, 6))


def test_tf1_initializer_classes():
    import tensorflow as tf

    v1 = tf.compat.v1
    assert isinstance(parse_initializer("glorot_uniform").tf1(1), v1.glorot_uniform_initializer)
    assert isinstance(parse_initializer("truncated_normal(stddev=0.1)").tf1(1), v1.truncated_normal_initializer)
    he = parse_initializer("he_normal").tf1(1)
    assert isinstance(he, v1.variance_scaling_initializer)
    assert (he.scale, he.mode, he.distribution) == (2.0, "fan_in", "truncated_normal")
    # Every argument is passed explicitly, so TF1's stddev=1.0 default never applies.
    assert parse_initializer("truncated_normal_initializer()").tf1(1).stddev == 0.05


def test_tf1_works_with_legacy_keras_too():
    """tf1() must not care whether the caller set TF_USE_LEGACY_KERAS=1 (tf.compat.v1.layers needs it)."""
    code = textwrap.dedent("""
        import numpy as np
        from convdiff.spec.initializers import parse_initializer
        from convdiff.frameworks import import_tensorflow
        tf = import_tensorflow()
        assert "tf_keras" in tf.keras.__name__, tf.keras.__name__
        names = ["ones", "zeros", "constant(2)", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                 "lecun_uniform", "lecun_normal", "random_uniform", "random_normal", "truncated_normal",
                 "orthogonal", "variance_scaling"]
        with tf.Graph().as_default():
            x = tf.compat.v1.placeholder(tf.float32, (1, 8, 8, 3))
            for i, name in enumerate(names):
                tf.compat.v1.layers.conv2d(x, 4, 3, name=f"conv{i}", kernel_initializer=parse_initializer(name).tf1(1))
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                kernels = session.run(tf.compat.v1.trainable_variables())
        assert len(kernels) == 2 * len(names) and all(np.isfinite(k).all() for k in kernels)
    """)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
