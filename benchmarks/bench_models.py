"""`convdiff.compare_models` on a MobileNetV2-sized model against itself exported to ONNX, and where the time goes.

    python benchmarks/bench_models.py [--repeat 3] [--size 224]

The model is `keras.applications.MobileNetV2(weights=None)` with `keras.utils.set_random_seed(0)` and seeded
BatchNormalization statistics (nothing is downloaded); the candidate is the same model exported node by node
to ONNX (`benchmarks/keras_onnx.py`, node names `node_<i>`, so the 52 convolutions pair by weights alone) and
run by ONNX Runtime. In each of --repeat rounds, measured in this one run, taking turns:
- the baseline: the Keras model called once on the input, and the ONNX model run once by ONNX Runtime with
  its one output (what running both models costs);
- `compare_models(keras_model, onnx_model, x)`: both runs with every convolution's input and output captured,
  pairing, the float64 recomputation of every paired layer (added and propagated error under its bound),
  and the final comparison. Its own timings say how long the recomputation took.
Printed: medians, and the ratio the issue sets (target <= 1.5):
    convdiff total / (both plain runs + the float64 recomputation)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)

    import convdiff.frameworks as frameworks

    keras = frameworks.import_keras()
    import onnxruntime as ort

    import keras_onnx
    from convdiff.pipeline.models import compare_models

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(args.size, args.size, 3))
    keras_onnx.randomize_batchnorm(model)
    proto = keras_onnx.export(model)
    x = np.random.default_rng(0).uniform(-1, 1, (1, args.size, args.size, 3)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = proto.SerializeToString()

    def baseline() -> float:
        start = time.perf_counter()
        np.asarray(model(x, training=False))
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        session.run(None, {session.get_inputs()[0].name: x})
        return time.perf_counter() - start

    baseline()  # warm both frameworks up
    plain, totals, parts = [], [], []
    result = None
    for _ in range(args.repeat):
        plain.append(baseline())
        start = time.perf_counter()
        result = compare_models(model, proto, x)
        totals.append(time.perf_counter() - start)
        parts.append(result.timings)
    assert result is not None
    median = statistics.median
    recompute = median(p["recomputation"] + p["diagnosis"] for p in parts)
    total, base = median(totals), median(plain)
    ratio = total / (base + recompute)
    print(f"MobileNetV2 {args.size}x{args.size} (Keras) vs its ONNX export (ONNX Runtime), {args.repeat} rounds, medians")
    print(f"  paired layers: {len(result.pairing.pairs)} (by weights: "
          f"{sum(p.paired_by.value == 'weights' for p in result.pairing.pairs)}), verdict: "
          f"{'equivalent' if result else 'mismatch'}, first divergence: "
          f"{result.first_divergence.line if result.first_divergence else 'none'}")
    print(f"  both models, plain:             {base:8.3f} s")
    for key in ("reference run", "candidate run", "recomputation", "diagnosis"):
        print(f"  convdiff {key + ':':<22}{median(p[key] for p in parts):8.3f} s")
    other = total - median(sum(p.values()) for p in parts)
    print(f"  convdiff rest (load, pairing, final): {other:6.3f} s")
    print(f"  convdiff total:                 {total:8.3f} s")
    print(f"  ratio total / (plain runs + recomputation): {ratio:.2f}x (target <= {TARGET}x)")
    if result.estimated_bytes:
        print(f"  memory estimate checked before the runs: {result.estimated_bytes / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
