"""`convdiff --help` wall time, and `convdiff compare` end to end against a minimal hand-written script.

    python benchmarks/bench_cli.py [--repeat 5]

Every measurement is a fresh subprocess (interpreter start and imports included), median of
--repeat runs, all in this one run:
- `python -m convdiff --help` against `python -c pass` (target: under 0.3 s).
- `python -m convdiff compare --reference nn --candidate keras --shape 1,64,64,16 --filters 16
  --format json` against a script that builds the same two convolutions (a tf.nn.conv2d with a
  Glorot-uniform tf.Variable, a keras.layers.Conv2D in a Model run through predict) and prints
  `np.abs(a - b).max()`; TensorFlow's import is in both (target: at most 1.15x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HAND = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(42).random((1, 64, 64, 16)).astype(np.float32)
init = keras.initializers.GlorotUniform(seed=42)
kernel = tf.Variable(init((3, 3, 16, 16), dtype="float32"))
a = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), tf.zeros(16)).numpy()
inp = keras.Input(shape=(64, 64, 16), batch_size=1)
model = keras.Model(inp, keras.layers.Conv2D(16, 3, padding="same", kernel_initializer=init)(inp))
b = model.predict(x, batch_size=1, verbose=0)
print(np.abs(a - b).max())
"""


def once(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def timed(*argvs: list[str], repeat: int) -> list[float]:
    """Median time of each command; the commands alternate, so a load spike hits both alike."""
    times: list[list[float]] = [[] for _ in argvs]
    for _ in range(repeat):
        for i, argv in enumerate(argvs):
            times[i].append(once(argv))
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    bare, helptime = timed([py, "-c", "pass"], [py, "-m", "convdiff", "--help"], repeat=args.repeat)
    print(f"python -c pass          {bare:7.3f} s")
    print(f"convdiff --help         {helptime:7.3f} s   (target < 0.3 s; {helptime - bare:.3f} s over bare Python)")
    compare, hand = timed([py, "-m", "convdiff", "compare", "--reference", "nn", "--candidate", "keras",
                           "--shape", "1,64,64,16", "--filters", "16", "--format", "json"],
                          [py, "-c", HAND], repeat=args.repeat)
    print(f"hand-written script     {hand:7.3f} s")
    print(f"convdiff compare        {compare:7.3f} s   ratio {compare / hand:.2f}x (target <= 1.15x)")


if __name__ == "__main__":
    main()
