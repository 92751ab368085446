"""How fast is `compare_arrays` against the memory floor and against the usual tools, in one run?

    python benchmarks/bench_compare.py [--mb 64] [--repeat 5] [--no-anchors]

Four scenarios on two NHWC-like arrays of --mb MiB each (float32; the reference float64 in the third):
- 1% of elements perturbed (sparse real differences),
- rounding noise in every element (two float32 paths: the common case),
- a float64 reference against a float32 candidate (`numpy` as the reference),
- identical arrays.
Baselines measured in the same run: the memory floor (`a.sum(); b.sum()`, reading both arrays once),
`np.testing.assert_allclose`, `torch.testing.assert_close` (when torch is installed) and Polygraphy's
`CompareFunc.simple` (when installed), each with the same float32 tolerance. Times are medians of
--repeat rounds in which every function takes a turn (a load spike hits all of them); peak extra
memory is measured with tracemalloc, to which NumPy reports its allocations. The first call of the
comparator is a warm-up: in a new process it loads the compiled loop from numba's cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convdiff.compare import compare_arrays, default_tolerance  # noqa: E402

TOL = default_tolerance("float32")
MISSING: set[str] = set()  # anchors left out because their package is not installed
TARGETS = {"1% perturbed": 2.0, "noise everywhere": 2.0, "float64 vs float32": 2.0, "identical": 1.2}


def timed(functions: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median wall time of each function over `repeat` rounds, the functions taking turns."""
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for function, times in zip(functions, samples):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in samples]


def peak_extra_mib(function: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / (1 << 20)


def scenarios(mb: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    n = mb * (1 << 20) // 4
    rng = np.random.default_rng(0)
    shape = (n // (512 * 512), 512, 512) if n % (512 * 512) == 0 else (n,)
    reference = rng.standard_normal(n, dtype=np.float32).reshape(shape)
    perturbed = reference.copy()
    where = rng.choice(n, n // 100, replace=False)
    perturbed.reshape(-1)[where] += rng.standard_normal(where.size, dtype=np.float32) * np.float32(1e-3)
    noise = (reference * (1 + rng.standard_normal(n, dtype=np.float32).reshape(shape) * np.float32(6e-8)))
    return {
        "1% perturbed": (reference, perturbed),
        "noise everywhere": (reference, noise.astype(np.float32)),
        "float64 vs float32": (reference.astype(np.float64) * (1 + 1e-8), reference),
        "identical": (reference, reference.copy()),
    }


def anchors(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Callable[[], object]]:
    out: dict[str, Callable[[], object]] = {}

    def allclose() -> None:
        try:
            np.testing.assert_allclose(candidate, reference, rtol=TOL.rtol, atol=TOL.atol)
        except AssertionError:
            pass

    out["np.testing.assert_allclose"] = allclose
    try:
        import torch
    except ImportError:
        torch = None
        MISSING.add("torch")
    if torch is not None:
        ref_t, cand_t = torch.from_numpy(reference), torch.from_numpy(candidate)

        def assert_close() -> None:
            try:
                torch.testing.assert_close(cand_t, ref_t, rtol=TOL.rtol, atol=TOL.atol, check_dtype=False)
            except AssertionError:
                pass

        out["torch.testing.assert_close"] = assert_close
    try:
        from polygraphy.comparator import CompareFunc  # type: ignore[import-not-found]
    except ImportError:
        MISSING.add("polygraphy")
    else:
        compare = CompareFunc.simple(atol=TOL.atol, rtol=TOL.rtol)
        out["polygraphy CompareFunc.simple"] = lambda: compare({"out": candidate}, {"out": reference})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of each float32 array in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-anchors", action="store_true", help="skip assert_allclose & co. (slow)")
    args = parser.parse_args(argv)
    print(f"2 x {args.mb} MiB arrays; float32 tolerance atol={TOL.atol:g} rtol={TOL.rtol:g}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'scenario':22s} {'convdiff':>10s} {'floor':>9s} {'ratio':>7s} {'target':>7s} {'peak MiB':>9s}  anchors")
    met = True
    for name, (reference, candidate) in scenarios(args.mb).items():
        def ours() -> object:
            return compare_arrays(reference, candidate, top_k=10)

        def floor() -> object:
            return reference.sum(), candidate.sum()

        ours()  # warm-up
        extra = {} if args.no_anchors else anchors(reference, candidate)
        times = timed([floor, ours, *extra.values()], args.repeat if not extra else max(1, args.repeat // 2))
        floor_s, ours_s, anchor_s = times[0], times[1], times[2:]
        ratio = ours_s / floor_s
        met &= ratio <= TARGETS[name]
        peak = peak_extra_mib(ours)
        text = ", ".join(f"{a} {s * 1e3:.0f} ms ({s / ours_s:.1f}x convdiff)" for a, s in zip(extra, anchor_s))
        print(f"{name:22s} {ours_s * 1e3:8.1f}ms {floor_s * 1e3:7.1f}ms {ratio:6.2f}x {TARGETS[name]:6.1f}x "
              f"{peak:9.1f}  {text}")
    if MISSING and not args.no_anchors:
        print(f"not installed, so not measured: {', '.join(sorted(MISSING))}")
    print("all four targets met" if met else "a target was missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
