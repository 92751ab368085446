"""`convdiff --help` wall time, and `convdiff compare` end to end against a hand-written script doing the same work.

    python benchmarks/bench_cli.py [--repeat 5] [--shape 1,224,224,64] [--filters 64]

Every measurement is a fresh subprocess (interpreter start and imports included), the commands taking
turns in each of --repeat rounds (a load spike hits both), all in this one run. Times are medians; peak
memory is each child's peak resident set size as the kernel reports it to `os.wait4` (ru_maxrss), median
over the rounds.
- `python -m convdiff --help` against `python -c pass` (target: under 0.3 s).
- `python -m convdiff compare --reference nn --candidate keras --shape SHAPE --filters F --no-bias`
  against a script that does the same work by hand: draws the input and a Glorot-uniform kernel,
  runs `tf.nn.conv2d`, builds a `keras.layers.Conv2D` in a Model with the same weights and runs it
  through `predict` (what the `keras` backend runs), then checks the outputs with `np.allclose` and
  prints the max abs diff. TensorFlow's import is in both. Targets: time <= 1.10x, peak memory <= 1.15x.
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
TIME_TARGET, MEMORY_TARGET = 1.10, 1.15

HAND = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import keras
n, h, w, c = (int(d) for d in sys.argv[1].split(","))
filters = int(sys.argv[2])
x = np.random.default_rng(42).random((n, h, w, c)).astype(np.float32)
kernel = keras.initializers.GlorotUniform(seed=42)((3, 3, c, filters), dtype="float32")
a = tf.nn.conv2d(x, tf.Variable(kernel), strides=1, padding="SAME").numpy()
inp = keras.Input(shape=(h, w, c), batch_size=n)
layer = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
model = keras.Model(inp, layer(inp))
layer.set_weights([np.asarray(kernel)])
b = model.predict(x, batch_size=n, verbose=0)
print(np.allclose(b, a, rtol=1e-5, atol=1e-6), np.abs(a - b).max())
"""


def once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh child process running `argv`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {stderr.decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measured(*argvs: list[str], repeat: int) -> list[tuple[float, float]]:
    """Median (seconds, peak MiB) of each command; the commands alternate within every round."""
    samples: list[list[tuple[float, float]]] = [[] for _ in argvs]
    for _ in range(repeat):
        for argv, runs in zip(argvs, samples):
            runs.append(once(argv))
    return [(statistics.median(t for t, _ in runs), statistics.median(m for _, m in runs)) for runs in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shape", default="1,224,224,64", help="NHWC input shape of the end-to-end case")
    parser.add_argument("--filters", type=int, default=64)
    args = parser.parse_args()
    py = sys.executable
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; medians of {args.repeat} runs each")
    (bare, _), (help_s, _) = measured([py, "-c", "pass"], [py, "-m", "convdiff", "--help"], repeat=args.repeat)
    print(f"python -c pass          {bare:7.3f} s")
    print(f"convdiff --help         {help_s:7.3f} s   (target < 0.3 s; {help_s - bare:.3f} s over bare Python)")
    command = [py, "-m", "convdiff", "compare", "--reference", "nn", "--candidate", "keras",
               "--shape", args.shape, "--filters", str(args.filters), "--no-bias"]
    (ours_s, ours_mib), (hand_s, hand_mib) = measured(command, [py, "-c", HAND, args.shape, str(args.filters)],
                                                      repeat=args.repeat)
    time_ratio, memory_ratio = ours_s / hand_s, ours_mib / hand_mib
    print(f"end to end, shape {args.shape}, {args.filters} filters, 3x3, no bias:")
    print(f"  hand-written script   {hand_s:7.3f} s  {hand_mib:7.0f} MiB peak RSS")
    print(f"  convdiff compare      {ours_s:7.3f} s  {ours_mib:7.0f} MiB peak RSS")
    print(f"  time ratio   {time_ratio:.2f}x (target <= {TIME_TARGET:.2f}x: {'met' if time_ratio <= TIME_TARGET else 'missed'})")
    print(f"  memory ratio {memory_ratio:.2f}x (target <= {MEMORY_TARGET:.2f}x: "
          f"{'met' if memory_ratio <= MEMORY_TARGET else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
