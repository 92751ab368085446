"""The float64 NumPy reference convolution against tf.nn.conv2d in float64, same input and kernel.

    python benchmarks/bench_reference.py [--repeat 5]

1x224x224x64 input, 3x3x64x64 kernel, SAME, stride 1, float64 (target: NumPy at most 3x TF).
Median of --repeat runs after one warm-up each; the outputs are checked to agree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.reference.convolution import conv2d_nhwc  # noqa: E402
from convdiff.spec.convspec import Padding  # noqa: E402
from convdiff.frameworks import import_tensorflow  # noqa: E402


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tf = import_tensorflow()
    rng = np.random.default_rng(0)
    x = rng.random((1, 224, 224, 64))
    k = rng.standard_normal((3, 3, 64, 64)) * 0.05
    pads = Padding.same().resolve((224, 224), (3, 3), (1, 1), (1, 1))
    ours = lambda: conv2d_nhwc(x, k, (1, 1), pads)  # noqa: E731
    xt, kt = tf.constant(x), tf.constant(k)
    theirs = lambda: tf.nn.conv2d(xt, kt, strides=1, padding="SAME").numpy()  # noqa: E731
    diff = np.abs(ours() - theirs()).max()
    assert diff < 1e-9, diff
    t_np, t_tf = timed(ours, args.repeat), timed(theirs, args.repeat)
    print(f"threads: {os.cpu_count()} CPUs; NumPy {np.__version__}, TensorFlow {tf.__version__}; max abs diff {diff:.1e}")
    print(f"numpy reference  {t_np * 1000:8.1f} ms")
    print(f"tf.nn.conv2d     {t_tf * 1000:8.1f} ms")
    print(f"ratio            {t_np / t_tf:8.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
