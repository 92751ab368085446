"""The accumulation precision each backend declares (`Capabilities.accumulation`), measured.

A float16 or bfloat16 convolution that sums in float32 and rounds its result once lands on the exact
result rounded to its dtype almost everywhere (off by one ulp only where the float32 sum straddles a
rounding boundary); one that sums in its own precision is off at most elements. K = 4608 makes the
difference plain: a float16 sum is bit-equal to the rounded exact result at about 40% of the outputs.
"""

import numpy as np
import pytest

from convdiff.analysis.bound import ulp_distance
from convdiff.backends import REGISTRY, Weights, backend_info, get_backend
from convdiff.reference.convolution import conv2d_nhwc, convolve
from convdiff.spec import ConvSpec, parse_padding
from convdiff.spec.dtypes import np_dtype

LOW = ("float16", "bfloat16")


def measured(backend, dtype):
    spec = ConvSpec(input_shape=(1, 8, 8, 512), filters=8, dtype=dtype, use_bias=False,
                    padding=parse_padding("valid" if backend == "caffe" else "same"))
    rng = np.random.default_rng(1)
    t = np_dtype(dtype)
    x = rng.standard_normal(spec.input_shape).astype(t)
    w = (rng.standard_normal(spec.kernel_shape) / np.sqrt(spec.dot_length)).astype(t)
    out = get_backend(backend).run(spec, x, Weights(w, None)).output
    rounded_once = convolve(x, w, spec).astype(t)
    return float(np.mean(np.asarray(out).astype(t) == rounded_once)), ulp_distance(rounded_once, out, dtype).max


CASES = [(name, dtype) for name in REGISTRY for dtype in LOW if dtype in backend_info(name).can.dtypes
         and not backend_info(name).missing()]


@pytest.mark.parametrize(("backend", "dtype"), CASES, ids=[f"{b}-{d}" for b, d in CASES])
def test_declared_accumulation_is_what_the_backend_does(backend, dtype):
    declared = backend_info(backend).can.accumulates_in(dtype)
    equal, max_ulps = measured(backend, dtype)
    if declared == "float64":  # the numpy reference: exact, rounded once
        assert equal == 1.0
    else:
        assert declared == "float32"
        assert equal >= 0.98 and max_ulps <= 1, (equal, max_ulps)  # measured 0.99-1.0, at most 1 ulp


def test_the_measurement_tells_a_float16_sum_apart():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 10, 10, 512)).astype(np.float16)
    w = (rng.standard_normal((3, 3, 512, 8)) / 68).astype(np.float16)
    exact = conv2d_nhwc(x, w, (1, 1), ((1, 1), (1, 1)))
    summed_in_float16 = conv2d_nhwc(x, w, (1, 1), ((1, 1), (1, 1)), dtype=np.float16)
    assert np.mean(exact.astype(np.float16) == summed_in_float16) < 0.9  # measured 0.41


def test_caffe_accumulates_float32_in_float32():
    assert backend_info("caffe").can.accumulates_in("float32") == "float32"
    assert backend_info("numpy").can.accumulates_in("tf32") == "float64"
