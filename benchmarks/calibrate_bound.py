"""Calibration of the rounding bound: false alarms, misses and the margin, per dtype.

    python benchmarks/calibrate_bound.py [--quick] [--no-images]

Correct computations (K = 1 .. 9216, kernels 1..19, all-positive and mixed-sign data, input magnitudes
1e-3 .. 1e4, every backend pair that runs the dtype) must all pass, using at most half of the bound
(margin <= 0.5); injected mistakes (all-zero output, one-pixel shift, H/W-swapped kernel, rot180,
missing and doubled bias, one channel scaled by 1.01, a symmetric pad against SAME, NCHW read as NHWC)
must all fail, or pass saying "cannot be distinguished from rounding at this precision". Then the
ones-filter question with 9x9 .. 19x19 kernels on two 427x640 images (nn, float64, against keras'
predict, float32). The grid is `convdiff.suites.calibration`; tests/suites/test_calibration.py runs a
slice of it with the same assertions. Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.suites import calibration as cal  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small slice of the grid (CI size, under a minute)")
    parser.add_argument("--no-images", action="store_true", help="skip the 2x427x640 ones-filter sweep")
    args = parser.parse_args()
    start = time.perf_counter()
    names = ("numpy", "nn", "keras-call", "caffe", "torch") if args.quick else None
    correct = [r for config in cal.correct_grid(args.quick) for r in cal.run_correct(config, names)]
    t_correct = time.perf_counter() - start
    mistakes = cal.run_mistakes(cal.mistake_grid(args.quick))
    t_mistakes = time.perf_counter() - start - t_correct
    table = cal.summarize(correct, mistakes)

    print(f"correct comparisons: {len(correct)} ({t_correct:.0f} s); injected mistakes: {len(mistakes)} "
          f"({t_mistakes:.0f} s)\n")
    print("| dtype | correct | false alarms | margin (largest ratio) | margin, K >= 64 | mistakes | caught "
          "| cannot be distinguished | misses |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in table.values():
        print(f"| {s.dtype} | {s.comparisons} | {s.false_alarms} ({s.false_alarm_rate:.0%}) | {s.margin:.3f} "
              f"| {s.margin_long:.3f} | {s.mistakes} | {s.caught} | {len(s.flagged)} | {len(s.misses)} "
              f"({s.miss_rate:.0%}) |")
    print("\nlargest ratio per dtype at:")
    for s in table.values():
        print(f"  {s.dtype}: {s.worst}")
    flagged = [m for s in table.values() for m in s.flagged]
    if flagged:
        print("\npassing, said to be indistinguishable from rounding at their precision:")
        for m in flagged:
            print(f"  {m.config.name}, {m.reference} -> {m.candidate}: {m.mistake} changes an output channel "
                  f"by {m.effect:.2%} of its largest value, at most {m.effect_ratio:.2f} of the bound; "
                  f"resolution {m.resolution:.2%}")
    misses = [m for s in table.values() for m in s.misses]
    for m in misses:
        print(f"MISS {m.config.name}, {m.reference} -> {m.candidate}: {m.mistake} ({m.verdict}, max ratio "
              f"{m.max_ratio:.3g}, effect {m.effect_ratio:.2f} of the bound)")
    ok = all(s.ok for s in table.values())
    if not args.no_images:
        kernels = (15,) if args.quick else cal.ONES_FILTER_KERNELS
        print("\nones-filter, nn (float64) vs keras (predict, float32), 2x427x640 image, ones kernel:")
        print("| kernel | K | verdict | max diff / bound | seconds |")
        print("|---|---|---|---|---|")
        for r in cal.ones_filter_sweep(kernels):
            print(f"| {r.kernel}x{r.kernel} | {r.K} | {r.verdict} | {r.max_ratio:.3f} | {r.seconds:.1f} |")
            ok &= r.verdict in ("identical", "equivalent") and r.max_ratio <= cal.TARGET_MARGIN
    print(f"\ntotal {time.perf_counter() - start:.0f} s; targets (0 false alarms, margin <= "
          f"{cal.TARGET_MARGIN}, 0 misses): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
