"""How much memory a comparison will need, estimated from the specs before anything is allocated.

A shape such as 1x100000x100000x3 is a valid convolution that no machine here can hold: refusing it
with the estimate (exit 2) is better than being killed by the OOM killer half-way through. The
estimate is arithmetic on the specs only, so it is instant whatever the shape.

Per side it counts (bytes, the sizes of the arrays a run actually holds at its peak):

- the input in its stored dtype, and the float64 draw it is made from (`random` draws in float64);
- the kernel in float64 and in the compute dtype;
- the output in the compute dtype and as a float64 copy;
- the float64 reference's working set (`convdiff.reference.convolution.conv_nd`, any rank and kind): the
  input converted to float64, its padded copy, one kernel-tap slice (N x output positions x C_in) and that
  tap's product (N x output positions x F; twice for a grouped convolution, regrouped), an upper bound
  since the forward routine works a block of output rows at a time; a transposed
  convolution holds one tap's input window and its product instead, scattered into the output; the
  diagnosis of a mismatch recomputes the reference the same way, one hypothesis at a time.
  tests/data/test_memory.py checks the estimate against the measured peak.

Both sides are added together: they are alive at the same time while being compared.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from convdiff.errors import BadInputError
from convdiff.spec.convspec import ConvSpec

DEFAULT_FRACTION = 0.5
"""Default limit: this fraction of the memory available when the command starts."""

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "p": 1000**5, "pb": 1000**5,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "pib": 1024**5}
_SIZE = re.compile(r"^\s*(\d{0,40})(?:\.(\d{0,40}))?(?:e([+-]?\d{1,12}))?\s*([a-z]*)\s*$", re.IGNORECASE)
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "tf32": 4, "float64": 8}
MAX_SIZE = 1024**6
"""1 EiB: sizes beyond are refused as typos (`1e400`) rather than computed (`1e999999999` would take hours)."""


def parse_size(text: str) -> int:
    """'4GiB', '500MB', '2g', '1e9' -> bytes. Decimal units (kB, MB, GB) are powers of 1000, KiB... of 1024.

    Exact integer arithmetic on the digits, with the exponent bounded before any power is taken: no
    float overflow, and no hang on an exponent of a billion.
    """
    match = _SIZE.match(str(text))
    unit = match.group(4).lower() if match else ""
    if not match or unit not in _UNITS or not (match.group(1) or match.group(2)):
        raise BadInputError(f"malformed memory size '{text}': expected a number with an optional unit "
                            "(B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 4GiB or 500MB")
    whole, fraction = match.group(1).lstrip("0") or "0", (match.group(2) or "").rstrip("0")
    exponent = int(match.group(3) or 0) - len(fraction)
    digits = int(whole + fraction) if (whole + fraction).strip("0") else 0
    # digits * 10**exponent * unit: bound the size from the digit count before computing it.
    magnitude = len(str(digits)) + exponent if digits else 0
    if magnitude > 19 + len(str(_UNITS[unit])):
        raise BadInputError(f"memory size '{text}' is too large (the limit is {format_size(MAX_SIZE)})")
    if exponent >= 0:
        value = digits * 10**exponent * _UNITS[unit]
    else:
        value = digits * _UNITS[unit] // 10 ** min(-exponent, 400)
    if value < 1:
        raise BadInputError(f"memory size '{text}' must be at least 1 byte")
    if value > MAX_SIZE:
        raise BadInputError(f"memory size '{text}' is too large (the limit is {format_size(MAX_SIZE)})")
    return value


def format_size(n: float) -> str:
    for unit, factor in (("EiB", 1024**6), ("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2),
                         ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{int(n)} B"


def available_memory() -> int | None:
    """Bytes available to a new allocation now: MemAvailable from /proc/meminfo, else sysconf; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes one comparison is expected to hold, by kind."""

    inputs: int
    kernels: int
    outputs: int
    working: int
    """The float64 reference's working set: padded input copies and one tap slice per side."""

    @property
    def total(self) -> int:
        return self.inputs + self.kernels + self.outputs + self.working

    def describe(self) -> str:
        return (f"{format_size(self.total)} (inputs {format_size(self.inputs)}, kernels {format_size(self.kernels)}, "
                f"outputs {format_size(self.outputs)}, reference working set {format_size(self.working)})")


def estimate_side(spec: ConvSpec) -> MemoryEstimate:
    n, c, f = spec.input_shape[0], spec.in_channels, spec.filters
    positions = math.prod(spec.spatial_shape)
    outputs = math.prod(spec.output_shape[1:-1])
    compute = _ITEMSIZE.get(spec.dtype, 8)
    stored = _ITEMSIZE.get(spec.effective_input_dtype, 8)
    # A grouped tap's product is regrouped (transposed) once more before it is added.
    regroup = 2 if spec.groups > 1 else 1
    if spec.transposed:
        # The input in float64, one tap's window of it and its product (N x input positions x F), scattered
        # into a strided view of the output: no dilated copy of the input is made.
        working = (n * positions * c * 2 + n * positions * f * regroup) * 8
    else:
        # The input in float64, its padded copy, one tap's window and its product (N x output positions x F).
        working = (n * math.prod(spec.padded_shape) * c + n * positions * c + n * outputs * (c + f * regroup)) * 8
    return MemoryEstimate(
        inputs=n * positions * c * (stored + 8),
        kernels=math.prod(spec.kernel_shape) * (compute + 8) + f * (compute + 8),
        outputs=n * outputs * f * (compute + 8),
        working=working,
    )


def estimate_case(reference: ConvSpec, candidate: ConvSpec) -> MemoryEstimate:
    """Both sides of one comparison, alive together."""
    a, b = estimate_side(reference), estimate_side(candidate)
    return MemoryEstimate(a.inputs + b.inputs, a.kernels + b.kernels, a.outputs + b.outputs, a.working + b.working)


def default_limit() -> int | None:
    available = available_memory()
    return None if available is None else int(available * DEFAULT_FRACTION)


def check_memory(reference: ConvSpec, candidate: ConvSpec, limit: int | None, where: str = "") -> MemoryEstimate:
    """Refuse (BadInputError, exit 2) a comparison whose estimate exceeds `limit` bytes (None: the default).

    Args:
        reference: the reference side's spec.
        candidate: the candidate side's spec.
        limit: bytes, from `--max-memory`; None for DEFAULT_FRACTION of the available memory.
        where: a prefix for the message (e.g. the experiment and case).

    Returns:
        The estimate, when it fits.
    """
    estimate = estimate_case(reference, candidate)
    explicit = limit is not None
    if limit is None:
        limit = default_limit()
    if limit is not None and estimate.total > limit:
        source = ("--max-memory" if explicit
                  else f"the default, {DEFAULT_FRACTION:.0%} of the {format_size(available_memory() or 0)} available")
        raise BadInputError(f"{where}this comparison needs an estimated {estimate.describe()}, above the limit of "
                            f"{format_size(limit)} ({source}); use a smaller shape or raise --max-memory")
    return estimate
