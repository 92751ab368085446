"""The GPU checks of issue 15, prepared for a machine with a GPU (at most 10 minutes; never run in CI).

    PYTHONPATH=. python benchmarks/gpu_checks.py [--skip-large] [--cpu-dry-run]

Without a GPU it says so in one line ("no GPU: ...") and exits 0 having run nothing. With one:

1. **TF32, pytorch#153698**: `Conv1d(31, 1, 3)` (weights all ones, no bias) on an input whose channel c,
   position l holds (c+1)*(l+1), so the window of output 64 reaches 31*67 = 2077, above TF32's last exactly
   held integer (2048). With `torch.backends.cudnn.allow_tf32 = True` the output at index 64 differs from
   the exact float64 value; with it off, float32 holds every product and sum exactly. The check prints the
   three values and whether convdiff's CPU TF32 emulation (`reference.rounding.tf32_reference`) predicts the
   TF32 one. (The issue reports 993 against 992 at index 64 with its own scaling of the same layer.)
2. **The batch probe with TF32 on and off** (`convdiff probe batch --backend torch --device gpu`).
3. **GPU against CPU** for nn, torch and the JAX engine (keras-jax; `jax` too where the registry has it) on a
   realistic layer (1x224x224x64 -> 64, 3x3, SAME), through `pipeline.execute`: the CPU run is the
   reference, under the bound rule of both sides' arithmetic.

`--cpu-dry-run` runs every check with the GPU replaced by the CPU, so the script itself is known to work
on a machine without one (its figures then say nothing about a GPU). Each check prints one line per measurement; the README's "GPU checks" section says where the results go.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def visible_gpus() -> dict[str, str]:
    """What each framework sees: a GPU name, or 'none' (or why it could not be asked)."""
    seen: dict[str, str] = {}
    try:
        import torch

        seen["torch"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        seen["torch"] = "not installed"
    try:
        from convdiff.frameworks import import_tensorflow

        gpus = import_tensorflow().config.list_physical_devices("GPU")
        seen["tensorflow"] = gpus[0].name if gpus else "none"
    except ImportError:
        seen["tensorflow"] = "not installed"
    try:
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        seen["jax"] = gpus[0].device_kind if gpus else "none"
    except (ImportError, RuntimeError):
        seen["jax"] = "none"
    return seen


DEVICE = {"torch": "cuda", "spec": "gpu"}
"""Where the checks run; --cpu-dry-run sets both to the CPU."""


def tf32_conv1d() -> None:
    import numpy as np
    import torch

    from convdiff.reference.rounding import tf32_reference
    from convdiff.spec import ConvSpec, parse_padding

    c_in, length, index = 31, 128, 64
    x = np.fromfunction(lambda c, l: (c + 1) * (l + 1), (c_in, length)).astype(np.float32)[None]  # (1, C, L)
    w = np.ones((1, c_in, 3), np.float32)
    spec = ConvSpec(rank=1, input_shape=(1, length, c_in), filters=1, kernel_size=3, padding=parse_padding("valid"),
                    use_bias=False)
    x_nwc, w_wio = np.transpose(x, (0, 2, 1)), np.transpose(w, (2, 1, 0))
    exact = float(np.einsum("ncl,ocl->", x.astype(np.float64)[:, :, index:index + 3], w.astype(np.float64)))
    emulated = float(tf32_reference(x_nwc.astype(np.float64), w_wio.astype(np.float64), spec)[0, index, 0])
    values = {}
    for allow in (True, False):
        torch.backends.cudnn.allow_tf32 = allow
        with torch.no_grad():
            device = DEVICE["torch"]
            out = torch.nn.functional.conv1d(torch.from_numpy(x).to(device), torch.from_numpy(w).to(device))
        values[allow] = float(out[0, 0, index].cpu())
    torch.backends.cudnn.allow_tf32 = True
    print(f"tf32 conv1d(31,1,3) index {index}: exact {exact:.1f}; TF32 on {values[True]:.1f} "
          f"({'differs' if values[True] != exact else 'exact'}); TF32 off {values[False]:.1f} "
          f"({'exact' if values[False] == exact else 'DIFFERS'}); convdiff's TF32 emulation {emulated:.1f} "
          f"({'predicts it' if emulated == values[True] else 'does not predict it'})")


def batch_probe_tf32() -> None:
    import torch

    from convdiff.pipeline.probe import probe_batch
    from convdiff.report.probe import probe_verdict_line
    from convdiff.spec import ConvSpec

    spec = ConvSpec(input_shape=(8, 64, 64, 32), filters=64, device=DEVICE["spec"])
    for allow in (True, False):
        torch.backends.cudnn.allow_tf32 = allow
        result = probe_batch("torch", spec)
        print(f"batch probe, torch on {DEVICE['spec']}, allow_tf32={allow}: {probe_verdict_line(result)}")
    torch.backends.cudnn.allow_tf32 = True


def gpu_against_cpu(large: bool) -> None:
    from convdiff.backends.registry import REGISTRY
    from convdiff.pipeline import Case, CaseOptions, SideConfig, execute
    from convdiff.report.tables import verdict_line
    from convdiff.spec import ConvSpec

    shape = (1, 224, 224, 64) if large else (1, 56, 56, 64)
    spec = ConvSpec(input_shape=shape, filters=64)
    for backend in [b for b in ("nn", "torch", "keras-jax", "jax") if b in REGISTRY]:
        start = time.perf_counter()
        gpu = spec.replace(device=DEVICE["spec"])
        case = Case(f"{backend}-gpu-vs-cpu", SideConfig(backend, spec), SideConfig(backend, gpu),
                    CaseOptions())
        result = execute(case)
        print(f"{backend} {DEVICE['spec']} against cpu, {'x'.join(map(str, shape))} -> 64, 3x3 SAME "
              f"({time.perf_counter() - start:.1f} s): {verdict_line(result)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="GPU against CPU on 56x56 instead of 224x224.")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="Run every check on the CPU instead (to check the script, not the GPU).")
    args = parser.parse_args()
    seen = visible_gpus()
    if args.cpu_dry_run:
        DEVICE.update(torch="cpu", spec="cpu")
        print("CPU dry run: every check on the CPU; the figures say nothing about a GPU")
        tf32_conv1d()
        batch_probe_tf32()
        gpu_against_cpu(not args.skip_large)
        return 0
    if all(v in ("none", "not installed") for v in seen.values()):
        print("no GPU: " + ", ".join(f"{k} sees {v}" for k, v in seen.items())
              + "; the GPU checks need one, nothing was run")
        return 0
    print("GPUs: " + ", ".join(f"{k}: {v}" for k, v in seen.items()))
    if seen.get("torch") not in ("none", "not installed"):
        tf32_conv1d()
        batch_probe_tf32()
    gpu_against_cpu(not args.skip_large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
