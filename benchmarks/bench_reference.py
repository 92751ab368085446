"""The float64 NumPy reference convolution against TensorFlow's float64 ops, same input and kernel, for a
realistic layer of every kind.

    python benchmarks/bench_reference.py [--repeat 5] [--only NAME] [--threads N]

Layers (target for each: NumPy at most 3x TF):
  conv2d      1x224x224x64, 3x3x64x64, SAME (tf.nn.conv2d)
  depthwise   1x112x112x96, 3x3, multiplier 1, SAME (tf.nn.depthwise_conv2d)
  transposed  1x56x56x64 -> 128, 3x3, stride 2, SAME (tf.nn.conv2d_transpose)
  conv3d      1x16x56x56x32 -> 32, 3x3x3, SAME (tf.nn.conv3d)
  conv1d      8x4096x64 -> 64, kernel 9, SAME (tf.nn.conv1d)
Median of --repeat runs after one warm-up each; the outputs are checked to agree first. --threads N limits
both sides to N threads (OpenBLAS for NumPy, the intra-op pool for TensorFlow): on a machine shared with
other work, single-threaded ratios are the stable ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __name__ == "__main__" and "--threads" in sys.argv:  # before NumPy loads its BLAS
    _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.frameworks import import_tensorflow  # noqa: E402
from convdiff.reference.convolution import convolve  # noqa: E402
from convdiff.spec.convspec import ConvSpec, Padding  # noqa: E402


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layers(tf):  # noqa: ANN001, ANN201
    """(name, spec, the TF op on (x, kernel)) per layer; kernels in convdiff's canonical layout."""
    same = Padding.same()
    return [
        ("conv2d", ConvSpec(input_shape=(1, 224, 224, 64), filters=64, padding=same),
         lambda x, k: tf.nn.conv2d(x, k, strides=1, padding="SAME")),
        ("depthwise", ConvSpec(input_shape=(1, 112, 112, 96), filters=96, groups=96, padding=same),
         lambda x, k: tf.nn.depthwise_conv2d(x, tf.reshape(k, (3, 3, 96, 1)), [1, 1, 1, 1], "SAME")),
        ("transposed", ConvSpec(input_shape=(1, 56, 56, 64), filters=128, transposed=True, strides=(2, 2),
                                padding=same),
         lambda x, k: tf.nn.conv2d_transpose(x, k, (1, 112, 112, 128), 2, "SAME")),
        ("conv3d", ConvSpec(rank=3, input_shape=(1, 16, 56, 56, 32), filters=32, padding=same),
         lambda x, k: tf.nn.conv3d(x, k, [1] * 5, "SAME")),
        ("conv1d", ConvSpec(rank=1, input_shape=(8, 4096, 64), filters=64, kernel_size=(9,), padding=same),
         lambda x, k: tf.nn.conv1d(x, k, 1, "SAME")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=None, help="run one layer: conv2d, depthwise, transposed, conv3d, conv1d")
    parser.add_argument("--threads", type=int, default=None, help="threads of both sides (default: their own)")
    args = parser.parse_args()
    tf = import_tensorflow()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    threads = f"{args.threads} thread(s) each" if args.threads else f"{os.cpu_count()} CPUs, default threads"
    print(f"{threads}; NumPy {np.__version__}, TensorFlow {tf.__version__}; float64; median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'layer':<11} {'numpy':>10} {'tf.nn':>10} {'ratio':>7}  target <= 3x  (max abs diff)")
    for name, spec, op in layers(tf):
        if args.only and name != args.only:
            continue
        x = rng.random(spec.input_shape)
        k = rng.standard_normal(spec.kernel_shape) * 0.05
        ours = lambda: convolve(x, k, spec)  # noqa: E731
        xt, kt = tf.constant(x), tf.constant(k)
        theirs = lambda: op(xt, kt).numpy()  # noqa: E731
        diff = float(np.abs(ours() - theirs()).max())
        assert diff < 1e-9, (name, diff)
        t_np, t_tf = timed(ours, args.repeat), timed(theirs, args.repeat)
        ratio = t_np / t_tf
        print(f"{name:<11} {t_np * 1000:8.1f}ms {t_tf * 1000:8.1f}ms {ratio:6.2f}x  "
              f"{'met' if ratio <= 3 else 'MISSED':<12}  ({diff:.1e})")


if __name__ == "__main__":
    main()
