"""How long does `convdiff explain` search on a realistic layer, in units of one float64 reference convolution?

    python benchmarks/bench_explain.py [--repeat 3] [--shape 1,64,64,32] [--filters 64]

Layer: a 1x64x64x32 input, a 3x3x32x64 kernel. Three recorded outputs of known semantics (float64
arithmetic emulated by the reference itself, rounded as a backend would store them):
- PyTorch's pad 1, stride 2, kernel stored OIHW, float16 arithmetic, bias missing;
- TF SAME, stride 1, HWIO, float32, bias once (the common correct port);
- a true convolution, valid, float32, bias doubled.
Baseline measured in the same run: one float64 reference convolution of the layer with the output's
strides and pads (`convdiff.reference.convolution.convolve`), what confirming a single guess costs.
Prints the search's median time, variants tried, and the ratio to the baseline; medians of --repeat
rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.analysis.explain import explain  # noqa: E402
from convdiff.reference.convolution import conv_nd, convolve  # noqa: E402
from convdiff.spec.convspec import ConvSpec, Padding  # noqa: E402


def median_time(function, repeat: int) -> tuple[float, object]:  # noqa: ANN001
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", default="1,64,64,32")
    parser.add_argument("--filters", type=int, default=64)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    kernel = rng.uniform(-0.5, 0.5, (3, 3, shape[-1], args.filters)).astype(np.float32)
    bias = rng.uniform(0.1, 0.5, args.filters).astype(np.float32)
    h16 = np.float16
    cases = {
        "torch pad 1 s2 OIHW float16 no bias": (
            conv_nd(x.astype(h16), kernel.astype(h16), (2, 2), ((1, 1), (1, 1))).astype(h16),
            kernel.transpose(3, 2, 0, 1), ((2, 2), ((1, 1), (1, 1)))),
        "TF SAME s1 HWIO float32 bias": (
            (conv_nd(x, kernel, (1, 1), ((1, 1), (1, 1))) + bias).astype(np.float32), kernel, ((1, 1), ((1, 1),) * 2)),
        "true convolution valid float32 bias x2": (
            (conv_nd(x, kernel, (1, 1), ((0, 0), (0, 0)), flip=True) + 2 * bias).astype(np.float32), kernel,
            ((1, 1), ((0, 0),) * 2)),
    }
    print(f"layer: input {'x'.join(map(str, shape))}, kernel 3x3x{shape[-1]}x{args.filters}; "
          f"median of {args.repeat}")
    for name, (output, file_kernel, (strides, pads)) in cases.items():
        spec = ConvSpec(input_shape=shape, filters=args.filters, kernel_size=(3, 3), strides=strides,
                        padding=Padding.from_pairs(pads))
        baseline, _ = median_time(lambda: convolve(x, kernel, spec), args.repeat)
        seconds, result = median_time(lambda: explain(x, file_kernel, output, bias), args.repeat)
        best = result.best
        found = "NOT EXPLAINED" if best is None else (
            f"{best.weights_layout} {best.convention} s{best.strides[0]} {best.padding} {best.pads} bias "
            f"{best.bias} {best.arithmetic}")
        print(f"{name:40s} explain {seconds:6.2f} s  ({result.tried} variants, {result.structures} full "
              f"convolutions, {result.checked} checked)  one reference convolution {1e3 * baseline:7.1f} ms  "
              f"ratio {seconds / baseline:6.1f}x  -> {found}")


if __name__ == "__main__":
    main()
