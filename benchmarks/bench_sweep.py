"""Sweep throughput on small configs, against a hand-written loop doing the same convolutions.

    python benchmarks/bench_sweep.py [--configs 96] [--pairs numpy:nn,nn:keras-call,nn:keras]

Configs: 1x16x16x4 inputs, 3x3 kernels, 4 filters; the grid sweeps strides 1,2, padding same,valid
and seeds (to reach --configs). For each backend pair the same configs run twice in one process,
after a warm-up: through `convdiff.sweep.run_sweep` (build spec, input, both backends, kernels
then outputs compared, verdict line, cause) and through a minimal loop that builds the same two
convolutions with the same seeded initializer and takes `np.abs(a - b).max()`. Times are the
median of --repeat runs. Target: >= 100 configs/s on 2 cores and <= 1.3x the loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.suites.sweep import SweepPlan, make_grid, run_sweep, split_values  # noqa: E402
from convdiff.frameworks import import_keras, import_tensorflow  # noqa: E402

SHAPE = (1, 16, 16, 4)


def grid(n_configs: int):
    seeds = list(range(max(1, n_configs // 4)))
    return make_grid({"strides": split_values("1,2"), "padding": split_values("same,valid"), "seed": seeds},
                     {"input_shape": SHAPE, "filters": 4, "kernel_size": (3, 3)})


def hand_side(backend: str, x: np.ndarray, strides: int, padding: str, seed: int) -> np.ndarray:
    """The same convolution as convdiff's backend, written the way a user would, with no checks."""
    tf = import_tensorflow()
    keras = import_keras()
    if backend == "numpy":
        from convdiff.backends.numpy_ref import conv2d_nhwc
        from convdiff.spec.convspec import Padding

        kernel = keras.initializers.GlorotUniform(seed=seed)((3, 3, 4, 4), dtype="float32").numpy()
        pads = (Padding.same() if padding == "same" else Padding.valid()).resolve((16, 16), (3, 3), (strides,) * 2, (1, 1))
        return conv2d_nhwc(x, kernel, (strides, strides), pads)
    if backend == "nn":
        kernel = tf.Variable(keras.initializers.GlorotUniform(seed=seed)((3, 3, 4, 4), dtype="float32"))
        bias = tf.Variable(tf.zeros((4,)))
        y = tf.nn.conv2d(tf.convert_to_tensor(x), kernel, strides=[1, strides, strides, 1], padding=padding.upper())
        return tf.nn.bias_add(y, bias).numpy()
    layer = keras.layers.Conv2D(4, 3, strides=strides, padding=padding,
                                kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    if backend == "keras-call":
        return layer(x).numpy()
    inp = keras.Input(shape=SHAPE[1:], batch_size=1)
    return keras.Model(inp, layer(inp)).predict(x, batch_size=1, verbose=0)


def hand_loop(reference: str, candidate: str, configs) -> float:
    worst = 0.0
    for c in configs:
        f = c.fields
        x = np.random.default_rng(f["seed"]).random(SHAPE).astype(np.float32)
        s, p = f["strides"][0], str(f["padding"])
        a = hand_side(reference, x, s, p, f["seed"])
        b = hand_side(candidate, x, s, p, f["seed"])
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pairs", default="numpy:nn,nn:keras-call,nn:keras")
    args = parser.parse_args()
    g = grid(args.configs)
    configs = list(g.configs())
    print(f"{len(configs)} configs of {'x'.join(map(str, SHAPE))} input, 3x3 kernel, 4 filters; "
          f"median of {args.repeat} runs")
    print(f"{'pair':<18} {'convdiff sweep':>16} {'hand loop':>12} {'configs/s':>10} {'ratio':>7}")
    for pair in args.pairs.split(","):
        reference, candidate = pair.split(":")
        plan = SweepPlan(g, reference, candidate)
        run_sweep(SweepPlan(make_grid({"seed": [0]}, dict(configs[0].fields)), reference, candidate))  # warm-up
        hand_loop(reference, candidate, configs[:2])
        outcomes = run_sweep(plan)
        assert all(o.status == "passed" for o in outcomes), [o.verdict_line for o in outcomes if o.status != "passed"]
        # Alternate the two, so a load spike from elsewhere hits both alike.
        sweeps, hands = [], []
        for _ in range(args.repeat):
            sweeps.append(timed(lambda: run_sweep(plan), 1))
            hands.append(timed(lambda: hand_loop(reference, candidate, configs), 1))
        t_sweep, t_hand = statistics.median(sweeps), statistics.median(hands)
        print(f"{pair:<18} {t_sweep:>14.3f} s {t_hand:>10.3f} s {len(configs) / t_sweep:>10.1f} "
              f"{t_sweep / t_hand:>6.2f}x")


if __name__ == "__main__":
    main()
