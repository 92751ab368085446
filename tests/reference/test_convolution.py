"""The float64 NumPy reference against an independent direct loop (no TensorFlow)."""

import numpy as np
import pytest

from convdiff.reference.convolution import conv2d_nhwc


def direct_conv(x, w, strides, pads, dilation):
    """Six nested loops, the textbook definition of cross-correlation."""
    (t, b), (l, r) = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    n, h, wd, cin = xp.shape
    kh, kw, _, cout = w.shape
    sh, sw = strides
    dh, dw = dilation
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (wd - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for c in range(kw):
                    out[:, i, j, :] += xp[:, i * sh + a * dh, j * sw + c * dw, :] @ w[a, c]
    return out


@pytest.mark.parametrize(
    ("shape", "kernel", "strides", "pads", "dilation"),
    [
        ((1, 7, 7, 2), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
        ((2, 8, 9, 3), (2, 3), (2, 1), ((0, 1), (1, 1)), (1, 1)),  # even kernel, asymmetric pads
        ((1, 9, 9, 1), (3, 3), (1, 1), ((0, 0), (0, 0)), (2, 2)),  # dilation
        ((1, 8, 8, 4), (1, 1), (3, 3), ((0, 0), (0, 0)), (1, 1)),  # 1x1, stride larger than kernel
        ((1, 5, 6, 2), (5, 5), (2, 2), ((2, 3), (0, 4)), (1, 1)),  # explicit uneven pads
    ],
)
def test_reference_matches_direct_loops(shape, kernel, strides, pads, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3], 3))
    np.testing.assert_allclose(conv2d_nhwc(x, w, strides, pads, dilation), direct_conv(x, w, strides, pads, dilation),
                               rtol=1e-12, atol=1e-12)


def test_bias_is_added_per_channel():
    x = np.zeros((1, 4, 4, 1))
    w = np.ones((3, 3, 1, 2))
    out = conv2d_nhwc(x, w, (1, 1), ((1, 1), (1, 1)), bias=np.array([0.5, -2.0]))
    assert np.all(out[..., 0] == 0.5) and np.all(out[..., 1] == -2.0)
