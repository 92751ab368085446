"""Which convolution layer of the candidate model is which layer of the reference: paired by their weights,
so that two models written independently (a Keras model and a hand-written PyTorch copy, a model and its
ONNX export) pair without any naming convention.

A kernel's values are the same multiset under every layout transform (HWIO/OIHW, depthwise C*M order,
H/W swaps, flips), so the sorted values are a fingerprint that finds the pair first, and the arrangement
is named after: identical, identical up to rounding to a lower precision, or the transform that maps
one onto the other. Layers whose weights match nothing fall back to order and shape; what is left is
listed as unpaired, never dropped. Pure: kernels in, a frozen `Pairing` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from convdiff.errors import BadInputError


class PairedBy(StrEnum):
    USER = "--pair"
    WEIGHTS = "weights"
    ORDER = "order and shape"


@dataclass(frozen=True)
class KernelView:
    """What pairing reads of one layer."""

    name: str
    kernel: np.ndarray
    """Canonical for its kind (HWIO; HWOI transposed; depthwise groups = C)."""
    groups: int = 1
    transposed: bool = False


@dataclass(frozen=True)
class LayerPair:
    reference: str
    candidate: str
    paired_by: PairedBy
    kernel: str
    """How the kernels relate: "identical", "identical up to float16 rounding", the transform that maps the
    candidate's onto the reference's ("H and W swapped", ...), "same values, another arrangement", "different"."""

    @property
    def kernel_identical(self) -> bool:
        return self.kernel == "identical"


@dataclass(frozen=True)
class Pairing:
    pairs: tuple[LayerPair, ...]
    """In the reference's order."""
    unpaired_reference: tuple[str, ...]
    unpaired_candidate: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.pairs)


_UNIT_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def pair_layers(reference: Sequence[KernelView], candidate: Sequence[KernelView],
                forced: Sequence[tuple[str, str]] = ()) -> Pairing:
    """Pair the layers of two models.

    Args:
        reference: the reference's convolution layers, in its order.
        candidate: the candidate's, in its order.
        forced: (reference layer, candidate layer) pairs the user gave (`--pair`); they win.

    Raises:
        BadInputError: a forced pair names a layer that is not there, or a layer twice.
    """
    ref_names, cand_names = [v.name for v in reference], [v.name for v in candidate]
    chosen: dict[int, tuple[int, PairedBy]] = {}
    taken: set[int] = set()
    for ref_name, cand_name in forced:
        for name, names, side in ((ref_name, ref_names, "reference"), (cand_name, cand_names, "candidate")):
            if name not in names:
                shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
                raise BadInputError(f"--pair {ref_name}={cand_name}: the {side} has no convolution layer '{name}' "
                                    f"(its convolution layers: {shown or 'none'})")
        r, c = ref_names.index(ref_name), cand_names.index(cand_name)
        if r in chosen or c in taken:
            raise BadInputError(f"--pair {ref_name}={cand_name}: a layer paired twice")
        chosen[r] = (c, PairedBy.USER)
        taken.add(c)
    prints = [_fingerprint(v.kernel) for v in candidate]
    for r, view in enumerate(reference):
        if r in chosen:
            continue
        mine = _fingerprint(view.kernel)
        matches = [c for c in range(len(candidate)) if c not in taken and _same_values(mine, prints[c])]
        if not matches:
            continue
        # Several layers holding the same values (a constant initializer): prefer one of the same arrangement,
        # then the nearest in order.
        exact = [c for c in matches if _arrangement(view, candidate[c]) in ("identical",)]
        pick = min(exact or matches, key=lambda c: abs(c - r))
        chosen[r] = (pick, PairedBy.WEIGHTS)
        taken.add(pick)
    # Order and shape: between the layers paired around it, the next unpaired candidate of the same kernel shape.
    for r, view in enumerate(reference):
        if r in chosen:
            continue
        before = max((c for rr, (c, _) in chosen.items() if rr < r), default=-1)
        after = min((c for rr, (c, _) in chosen.items() if rr > r), default=len(candidate))
        for c in range(before + 1, after):
            other = candidate[c]
            if (c not in taken and other.kernel.shape == view.kernel.shape and other.groups == view.groups
                    and other.transposed == view.transposed):
                chosen[r] = (c, PairedBy.ORDER)
                taken.add(c)
                break
    pairs = tuple(LayerPair(reference[r].name, candidate[c].name, how, _arrangement(reference[r], candidate[c]))
                  for r, (c, how) in sorted(chosen.items()))
    return Pairing(pairs, tuple(v.name for r, v in enumerate(reference) if r not in chosen),
                   tuple(v.name for c, v in enumerate(candidate) if c not in taken))


@dataclass(frozen=True)
class _Fingerprint:
    values: np.ndarray
    dtype: str
    scale: float


def _fingerprint(kernel: np.ndarray) -> _Fingerprint:
    values = np.sort(np.asarray(kernel, dtype=np.float64).ravel())
    finite = values[np.isfinite(values)]
    return _Fingerprint(values, np.asarray(kernel).dtype.name, float(np.abs(finite).max()) if finite.size else 0.0)


def _tolerance(a: _Fingerprint | np.ndarray, b: _Fingerprint | np.ndarray, scale: float) -> float:
    """How far two kernels' values may be apart and still be the same weights: rounding to the coarser precision."""
    dtypes = [x.dtype if isinstance(x, _Fingerprint) else x.dtype.name for x in (a, b)]
    u = max(_UNIT_ROUNDOFF.get(d, 2.0 ** -24) for d in dtypes)
    if all(d == dtypes[0] for d in dtypes):
        return 0.0  # the same precision: the same weights are the same bits
    return u * scale


def _same_values(a: _Fingerprint, b: _Fingerprint) -> bool:
    # Sorting moves no value further than the largest elementwise difference: sorted values within the
    # rounding of the coarser dtype are the same weights rounded, in whatever arrangement.
    if a.values.shape != b.values.shape:
        return False
    if a.scale == 0.0 and b.scale == 0.0:
        return bool(np.array_equal(a.values, b.values))
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(a.values - b.values) <= _tolerance(a, b, max(a.scale, b.scale))))


def _arrangement(reference: KernelView, candidate: KernelView) -> str:
    """How the candidate's kernel relates to the reference's."""
    a = np.asarray(reference.kernel)
    b = np.asarray(candidate.kernel)
    for name, transformed in _transforms(b, candidate):
        if transformed.shape != a.shape:
            continue
        if np.array_equal(np.asarray(transformed, dtype=np.float64), np.asarray(a, dtype=np.float64)):
            return "identical" if name == "" else name
        scale = float(np.nanmax(np.abs(a))) if a.size else 0.0
        tol = _tolerance(a, b, scale)
        if tol > 0:
            with np.errstate(invalid="ignore"):
                close = np.all(np.abs(np.asarray(transformed, np.float64) - np.asarray(a, np.float64)) <= tol)
            if close:
                coarser = max((a.dtype.name, b.dtype.name), key=lambda d: _UNIT_ROUNDOFF.get(d, 0.0))
                return f"identical up to {coarser} rounding" if name == "" else f"{name}, up to {coarser} rounding"
    if _same_values(_fingerprint(a), _fingerprint(b)):
        return "same values, another arrangement"
    return "different"


def _transforms(kernel: np.ndarray, view: KernelView):  # noqa: ANN202 - (name, array) pairs
    """The candidate's kernel under the mistakes a port makes, named for what the candidate did."""
    rank = kernel.ndim - 2
    spatial = tuple(range(rank))
    yield "", kernel
    if rank >= 2:
        swapped = np.swapaxes(kernel, rank - 2, rank - 1)
        yield "H and W swapped", swapped
    flipped = np.flip(kernel, axis=spatial)
    yield "rotated 180 degrees (flipped)", flipped
    if rank >= 2:
        yield "H and W swapped and flipped", np.flip(np.swapaxes(kernel, rank - 2, rank - 1), axis=spatial)
    yield "input and output channels swapped", np.swapaxes(kernel, -1, -2)
    g = view.groups
    if g > 1 and not view.transposed and kernel.shape[-1] % g == 0 and kernel.shape[-1] // g > 1:
        per = kernel.shape[-1] // g
        # The candidate numbers output channels m-major (m * G + c); the reference's c-major (c * M + m).
        back = kernel.reshape(*kernel.shape[:-1], per, g).swapaxes(-1, -2).reshape(kernel.shape)
        yield "output channels m-major (depthwise channel order)", back
        yield "output channels c-major where the reference is m-major", \
            kernel.reshape(*kernel.shape[:-1], g, per).swapaxes(-1, -2).reshape(kernel.shape)
