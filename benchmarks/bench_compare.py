"""How fast is `compare_arrays` on two large float32 arrays, against baselines from the same run?

    python benchmarks/bench_compare.py [--mb 256] [--sweep] [--scenarios]

The arrays are NHWC convolution outputs, (N, 512, 512, 16); the candidate is the reference plus
small noise on 1% of the elements, so there are mismatches.
Baselines: the memory floor (`a.sum(); b.sum()`, reading both arrays once) and
`np.testing.assert_allclose` with the same tolerance. Times are medians of 3 runs (one run for
assert_allclose, which is slow); peak extra memory is measured with tracemalloc, to which NumPy
reports its allocations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.compare import DEFAULT_CHUNK_SIZE, compare_arrays, default_tolerance  # noqa: E402


def timed(*functions, repeat: int = 3, clock=time.perf_counter) -> list[float]:
    """Median time of each function over `repeat` rounds, in seconds.

    The functions take turns within a round, so a burst of load on a shared machine weighs on
    all of them rather than on one.
    """
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for function, samples in zip(functions, times):
            start = clock()
            function()
            samples.append(clock() - start)
    return [statistics.median(samples) for samples in times]


def output_shape(mb: int) -> tuple[int, ...]:
    """An NHWC convolution output of `mb` MiB: batches of 512x512x16, else one flat axis."""
    n = mb * (1 << 20) // 4
    image = 512 * 512 * 16
    return (n // image, 512, 512, 16) if n % image == 0 else (n,)


def make_arrays(mb: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    shape = output_shape(mb)
    n = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(n, dtype=np.float32)
    candidate = reference.copy()
    noisy = rng.choice(n, size=n // 100, replace=False)
    candidate[noisy] += rng.standard_normal(noisy.size, dtype=np.float32) * np.float32(1e-3)
    return reference.reshape(shape), candidate.reshape(shape)


def peak_extra_mib(function) -> float:
    tracemalloc.start()
    try:
        function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / (1 << 20)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of each array in MiB")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--sweep", action="store_true", help="also time chunk sizes 2^14..2^20")
    parser.add_argument("--scenarios", action="store_true",
                        help="also time other pairs: identical, all differing, all failing")
    args = parser.parse_args(argv)

    reference, candidate = make_arrays(args.mb)
    tol = default_tolerance("float32")
    print(f"arrays: 2 x float32 {reference.shape}, {reference.size:,} elements "
          f"({args.mb} MiB each), 1% noisy; atol={tol.atol:g} rtol={tol.rtol:g}")

    def compare(chunk_size: int = args.chunk_size):
        return compare_arrays(reference, candidate, tolerance=tol, top_k=10,
                              chunk_size=chunk_size)

    def floor_pass():
        return reference.sum(), candidate.sum()

    compare()  # warm up: first-touch of buffers, imports
    floor, ours = timed(floor_pass, compare)
    # Process time is steadier than wall time where other jobs share the cores.
    floor_cpu, ours_cpu = timed(floor_pass, compare, clock=time.process_time)
    start = time.perf_counter()
    try:
        np.testing.assert_allclose(candidate, reference, rtol=tol.rtol, atol=tol.atol)
    except AssertionError:
        pass
    allclose = time.perf_counter() - start
    peak = peak_extra_mib(compare)
    result = compare()

    print(f"result: {result.verdict.value}, {result.mismatched:,} of {result.total:,} mismatched, "
          f"max_abs_diff {result.max_abs_diff:.3g} at {result.max_abs_diff_index}")
    print(f"memory floor (a.sum(); b.sum()): {floor * 1e3:8.1f} ms")
    print(f"comparator (top_k=10, chunk {args.chunk_size}): {ours * 1e3:8.1f} ms")
    print(f"np.testing.assert_allclose (1 run): {allclose * 1e3:8.1f} ms")
    print(f"comparator / floor: {ours / floor:.2f}x (target <= 2x)")
    print(f"comparator / floor in process time: {ours_cpu / floor_cpu:.2f}x")
    print(f"assert_allclose / comparator: {allclose / ours:.1f}x (target >= 20x)")
    print(f"peak extra memory: {peak:.1f} MiB (target <= 64 MiB)")

    print(f"load average (1 min) on {os.cpu_count()} cores: {os.getloadavg()[0]:.2f}")

    if args.sweep:
        for power in range(14, 21):
            floor, seconds = timed(floor_pass, lambda: compare(1 << power))
            print(f"chunk 2^{power}: {seconds * 1e3:8.1f} ms  ({seconds / floor:.2f}x floor)")
    if args.scenarios:
        scenarios = {
            "identical": reference.copy(),
            "rounding noise everywhere": reference * (1 + np.float32(1e-7) * np.sign(reference)),
            "every element off": reference + np.float32(1e-3),
        }
        for name, other in scenarios.items():
            floor, seconds = timed(floor_pass, lambda: compare_arrays(reference, other))
            print(f"{name}: {seconds * 1e3:8.1f} ms  ({seconds / floor:.2f}x floor)")
            del other
        wide = reference.astype(np.float64)
        floor, seconds = timed(floor_pass, lambda: compare_arrays(wide, reference))
        print(f"float64 reference vs float32: {seconds * 1e3:8.1f} ms  ({seconds / floor:.2f}x floor)")


if __name__ == "__main__":
    main()
