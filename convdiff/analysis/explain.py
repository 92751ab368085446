"""Which convolution produced a recorded output? Search the semantics a port can get wrong, recompute each
with the float64 reference, and confirm the ones at rounding level.

The search space (each axis pruned by what the arrays' shapes allow before anything is computed):

- the input's layout (channels-last or channels-first);
- the kernel's layout: every order of its letters (H/W transposes and OIHW read as HWIO included), and
  depthwise (C, M) orders; the groups follow from the layout (C_in / the kernel's input channels);
- correlation or true convolution (the kernel rotated 180 degrees: `ConvSpec.convention`);
- strides and pads per axis: every (stride, before, after) with before, after < the dilated kernel that
  gives the recorded output size (`convdiff.spec.geometry.output_size`); named TF SAME, SAME_LOWER (the
  odd pad first), symmetric, valid or explicit;
- dilation 1, then 2 and 3 only if nothing at dilation 1 is confirmed;
- the bias: missing, added once or twice (when the files hold one);
- the arithmetic: float64, float32, TF32, float16, bfloat16.

Budget. Pads and strides only select which windows a convolution reads, so one float64 convolution at
stride 1 with the largest pads tried holds every (stride, pad) variant as a strided slice; variants whose
after-pad is never read are the same computation and counted once. Every variant gets a residual
`max |output - recomputed| / max |output|`; the `CONFIRM_LIMIT` smallest are recomputed through the
spec (`convdiff.reference.convolution.convolve`) and checked under the rounding bound of each arithmetic
(`convdiff.reference.rounding`, the bound the verdicts use; TF32 against its emulated reference as
`convdiff.analysis.bound.tf32_consistency` does). A variant is confirmed in the finest arithmetic
whose bound it meets.

Pure: arrays in, frozen results out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from convdiff.analysis.bound import bound_comparison
from convdiff.compare import Rule, Tolerance, compare_arrays
from convdiff.errors import BadInputError
from convdiff.reference.convolution import conv_nd, convolve
from convdiff.reference.rounding import (Arithmetic, BoundForm, RoundingModel, abs_convolution, precision_of,
                                         require_real, round_to_tf32)
from convdiff.spec import geometry
from convdiff.spec.convspec import CONVENTIONS, ConvSpec, Padding, check_positive_ints
from convdiff.spec.geometry import Pads
from convdiff.spec.layouts import conversion, input_layout_for, kernel_layout_for, spatial_letters

ARITHMETICS = ("float64", "float32", "tf32", "float16", "bfloat16")
"""The arithmetics tried, finest first: a variant is explained by the first whose bound it meets."""
MAX_STRIDE = 4
"""Strides tried per axis when none is given."""
DILATION_TIERS: tuple[tuple[int, ...], ...] = ((1,), (2, 3))
"""Dilations tried per axis (the same on every axis), a tier only when the ones before confirmed nothing."""
CONFIRM_LIMIT = 8
"""How many variants (smallest residuals first) are checked under the rounding bound."""
BIAS_FACTORS = {"none": 0, "once": 1, "twice": 2}


@dataclass(frozen=True)
class Hints:
    """What the user already knows: each given field restricts its axis of the search to that value."""

    strides: tuple[int, ...] | None = None
    padding: Padding | None = None
    dilation: tuple[int, ...] | None = None
    groups: int | None = None
    convention: str | None = None
    dtype: str | None = None
    input_layout: str | None = None
    weights_layout: str | None = None
    use_bias: bool | None = None
    kernel_size: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        # A hint the spec itself would refuse is bad input, not a search axis with no values.
        for name, values in (("strides", self.strides), ("dilation", self.dilation),
                             ("kernel size", self.kernel_size), ("groups", None if self.groups is None else (self.groups,))):
            if values is not None:
                check_positive_ints(name, values)


@dataclass(frozen=True)
class Candidate:
    """One semantic tried: how it reads the files, what it computes, and what recomputing it showed."""

    input_layout: str
    """The layout the input file is read in (NHWC, NCHW, ...)."""
    weights_layout: str
    """The layout the kernel file is read in (HWIO, OIHW, WHIO, HWCM, ...)."""
    groups: int
    convention: str
    """`correlation` or `convolution` (true convolution: the kernel rotated 180 degrees)."""
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: Pads
    """The (before, after) pads per axis of the padding named."""
    padding: str
    """`same` (TF SAME), `valid`, `same_lower` (the odd pad first, ONNX SAME_LOWER), `symmetric` or `explicit`."""
    also: tuple[str, ...]
    """Other paddings that compute exactly the same here (their extra after-pad is never read)."""
    bias: str
    """`none`, `once`, `twice`, or `absent` (the files hold no bias)."""
    residual: float
    """max |output - recomputed| / max |output| (in float64, exact arithmetic)."""
    checked: bool = False
    """Whether it was checked under the rounding bounds (only the `CONFIRM_LIMIT` smallest residuals are)."""
    arithmetic: str | None = None
    """The finest arithmetic whose rounding bound the output meets; None when none does (or not checked)."""
    within: tuple[str, ...] = ()
    """Every arithmetic whose rounding bound the output meets."""
    bound_ratio: float | None = None
    """Largest |output - recomputed| / bound, in `arithmetic` (or the coarsest tried when none is met); when
    `screened`, a lower bound of it."""
    screened: bool = False
    """Checked without recomputing the bound: the largest difference exceeds the largest bound any output
    can have in every arithmetic."""

    @property
    def confirmed(self) -> bool:
        return self.arithmetic is not None

    @property
    def rank(self) -> int:
        return len(self.strides)

    @property
    def unusual(self) -> int:
        """How far it is from what a framework does by default (ties between confirmed variants go to the least)."""
        return sum((self.input_layout != input_layout_for(self.rank),
                    self.weights_layout != kernel_layout_for(self.rank),
                    self.convention != "correlation", self.bias == "twice", self.padding == "explicit",
                    any(d != 1 for d in self.dilation)))

    def spec(self, input_shape: tuple[int, ...], filters: int, kernel_size: tuple[int, ...],
             dtype: str | None = None) -> ConvSpec:
        """The spec of this variant (channels-last input shape, canonical kernel size)."""
        return ConvSpec(input_shape=input_shape, filters=filters, kernel_size=kernel_size, strides=self.strides,
                        padding=padding_of(self), dilation=self.dilation, groups=self.groups,
                        convention=self.convention, use_bias=self.bias in ("once", "twice"),
                        dtype=dtype or self.arithmetic or "float64", rank=self.rank,
                        input_layout=self.input_layout, weights_layout=self.weights_layout)


def padding_of(candidate: Candidate) -> Padding:
    """The spec padding of a candidate: `same` and `valid` by name, the others as explicit pads."""
    if candidate.padding == "same":
        return Padding.same()
    if candidate.padding == "valid":
        return Padding.valid()
    return Padding.from_pairs(candidate.pads)


@dataclass(frozen=True)
class Explanation:
    """Every variant tried, best first, and which are confirmed."""

    candidates: tuple[Candidate, ...]
    """Every variant tried: confirmed ones first (finest arithmetic, then closest to the defaults), then by residual."""
    tried: int
    """Distinct variants whose output was recomputed (pad variants that compute the same counted once)."""
    structures: int
    """Distinct (input layout, kernel layout, convention, dilation) convolutions computed in full."""
    checked: int
    """Variants checked under the rounding bounds."""
    input_shape: tuple[int, ...]
    """The input's shape as the file holds it."""
    output_shape: tuple[int, ...]
    """The output's shape channels-last, the one every variant had to produce."""
    kernel_shape: tuple[int, ...]
    """The kernel's shape as the file holds it."""
    has_bias: bool
    """Whether the files held a bias (only then are missing and doubled biases searched)."""
    form: BoundForm = BoundForm.PROBABILISTIC
    notes: tuple[str, ...] = ()
    """What the search could not try (and why)."""
    channels_last_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """The input's channels-last shape per input layout tried."""

    @property
    def confirmed(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.confirmed)

    @property
    def best(self) -> Candidate | None:
        """The explanation: the first confirmed variant, or None."""
        return self.candidates[0] if self.candidates and self.candidates[0].confirmed else None

    def __bool__(self) -> bool:
        return self.best is not None

    @property
    def indistinguishable(self) -> tuple[Candidate, ...]:
        """Other variants confirmed in the same arithmetic as the best: this data cannot tell them apart."""
        best = self.best
        if best is None:
            return ()
        return tuple(c for c in self.confirmed[1:] if c.arithmetic == best.arithmetic)

    def spec_of(self, candidate: Candidate) -> ConvSpec:
        """The spec of a variant, for its own arithmetic (float64 when it is not confirmed)."""
        x_shape = self.channels_last_shapes[candidate.input_layout]
        kernel_size = _kernel_size(self.kernel_shape, candidate.weights_layout, candidate.rank)
        return candidate.spec(x_shape, self.output_shape[-1], kernel_size)


def explain(x: np.ndarray, kernel: np.ndarray, output: np.ndarray, bias: np.ndarray | None = None,
            hints: Hints | None = None, form: BoundForm = BoundForm.PROBABILISTIC) -> Explanation:
    """Search for the convolution semantics under which `x` and `kernel` (and `bias`) give `output`.

    Args:
        x: the input as its file holds it (N, then the spatial axes and C in a layout to be found).
        kernel: the kernel as its file holds it (its layout is searched).
        output: the recorded output, channels-last (N, spatial..., C_out).
        bias: the bias the files hold (1-D, C_out), or None.
        hints: fields the user gave; each restricts its axis of the search.
        form: the form of the rounding bound.

    Returns:
        An `Explanation`; truthy when some variant is confirmed at rounding level.

    Raises:
        BadInputError: arrays of ranks or shapes no convolution relates.
    """
    hints = hints or Hints()
    x = require_real(np.asarray(x), "input values")
    kernel = require_real(np.asarray(kernel), "kernel values")
    output = require_real(np.asarray(output), "output values")
    rank = output.ndim - 2
    if rank not in (1, 2, 3):
        raise BadInputError(f"the output has {output.ndim} dimensions; expected N, 1 to 3 spatial axes and C")
    if x.ndim != output.ndim:
        raise BadInputError(f"the input has {x.ndim} dimensions and the output {output.ndim}: they must both be "
                            f"N, {rank} spatial axes and C")
    if kernel.ndim != rank + 2:
        raise BadInputError(f"the kernel has {kernel.ndim} dimensions; a rank-{rank} convolution's has {rank + 2}")
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bias.size != output.shape[-1]:
            raise BadInputError(f"the bias has {bias.size} values; the output has {output.shape[-1]} channels")
    search = _Search(x, kernel, output, bias, hints, form, rank)
    return search.run()


def _kernel_size(file_shape: tuple[int, ...], layout: str, rank: int) -> tuple[int, ...]:
    dims = dict(zip(layout, file_shape))
    return tuple(dims[c] for c in spatial_letters(rank))


def _residual(output: np.ndarray, recomputed: np.ndarray, scale: float) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.abs(output - recomputed)
    finite = diff[np.isfinite(diff)]
    if finite.size == 0:
        return math.inf
    return float(finite.max()) / scale


@dataclass(frozen=True)
class _Structure:
    input_layout: str
    weights_layout: str
    groups: int
    convention: str
    dilation: tuple[int, ...]
    x: np.ndarray = field(repr=False)
    """The input channels-last."""
    kernel: np.ndarray = field(repr=False)
    """The kernel canonical."""


@dataclass(frozen=True)
class _AxisOption:
    stride: int
    before: int
    afters: tuple[int, ...]
    """Every after-pad that gives the output size; the windows never read past the first, so all compute the same."""


class _Search:
    def __init__(self, x: np.ndarray, kernel: np.ndarray, output: np.ndarray, bias: np.ndarray | None,
                 hints: Hints, form: BoundForm, rank: int):
        self.x, self.kernel, self.bias, self.hints, self.form, self.rank = x, kernel, bias, hints, form, rank
        self.output = output
        with np.errstate(over="ignore", invalid="ignore"):
            self.output64 = np.asarray(output, dtype=np.float64)
        finite = np.abs(self.output64[np.isfinite(self.output64)])
        self.scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        self.notes: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run(self) -> Explanation:
        candidates: list[Candidate] = []
        structures = tried = 0
        data: dict[Candidate, _Structure] = {}
        for tier in self._dilation_tiers():
            for structure in self._structures(tier):
                found = self._variants(structure)
                structures += 1 if found else 0
                tried += len(found)
                for c in found:
                    data[c] = structure
                candidates.extend(found)
            checked = self._check(candidates, data)
            if any(c.confirmed for c in checked):
                candidates = checked
                break
            candidates = checked
        if not structures:
            self.notes.append("no layout of the input and kernel, stride and pad gives the output's shape "
                              f"{'x'.join(map(str, self.output.shape))}")
        order = sorted(candidates, key=_order)
        return Explanation(tuple(order), tried, structures, sum(c.checked for c in order), self.x.shape,
                           self.output.shape, self.kernel.shape, self.bias is not None, self.form,
                           tuple(self.notes), dict(self.shapes))

    # --- what the shapes allow ---------------------------------------------------------------------

    def _dilation_tiers(self) -> list[list[tuple[int, ...]]]:
        if self.hints.dilation is not None:
            d = self.hints.dilation
            return [[tuple(d) * self.rank if len(d) == 1 else tuple(d)]]
        return [[(d,) * self.rank for d in tier] for tier in DILATION_TIERS]

    def _input_layouts(self) -> list[tuple[str, np.ndarray]]:
        from convdiff.spec.layouts import to_channels_last

        names = ([self.hints.input_layout] if self.hints.input_layout else
                 [input_layout_for(self.rank), input_layout_for(self.rank, channels_first=True)])
        layouts = []
        for name in names:
            if len(name) != self.x.ndim:
                raise BadInputError(f"input layout {name} has {len(name)} axes, the input {self.x.ndim}")
            x = np.ascontiguousarray(to_channels_last(self.x, name, self.rank)[0])
            if x.shape[0] == self.output.shape[0]:
                layouts.append((name, x))
                self.shapes[name] = tuple(x.shape)
        return layouts

    def _kernel_layouts(self, c_in: int) -> list[tuple[str, int]]:
        """(layout, groups) under which the file's kernel fits `c_in` input channels and the output's."""
        c_out = self.output.shape[-1]
        spatial = spatial_letters(self.rank)
        if self.hints.weights_layout:
            orders = [self.hints.weights_layout]
        else:
            orders = ["".join(p) for letters in (spatial + "IO", spatial + "CM")
                      for p in itertools.permutations(letters)]
        fits = []
        for layout in orders:
            if len(layout) != self.kernel.ndim:
                continue
            dims = dict(zip(layout, self.kernel.shape))
            if "M" in dims:
                groups, ok = c_in, dims["C"] == c_in and dims["C"] * dims["M"] == c_out and c_in > 1
            else:
                groups = c_in // dims["I"] if c_in % dims["I"] == 0 else 0
                ok = groups > 0 and dims["O"] == c_out and c_out % groups == 0
            if not ok or (self.hints.groups is not None and groups != self.hints.groups):
                continue
            if self.hints.kernel_size is not None:
                size = self.hints.kernel_size
                size = size * self.rank if len(size) == 1 else size
                if tuple(dims[c] for c in spatial) != tuple(size):
                    continue
            fits.append((layout, groups))
        return fits

    def _structures(self, dilations: list[tuple[int, ...]]):  # noqa: ANN202 - generator of _Structure
        conventions = [self.hints.convention] if self.hints.convention else list(CONVENTIONS)
        for input_layout, x in self._input_layouts():
            for layout, groups in self._kernel_layouts(x.shape[-1]):
                conv = conversion(layout, kernel_layout_for(self.rank), x.shape[-1] if "M" in layout else None)
                kernel = np.ascontiguousarray(conv.apply(self.kernel))
                for dilation in dilations:
                    for convention in conventions:
                        yield _Structure(input_layout, layout, groups, convention, dilation, x, kernel)

    def _axis_options(self, structure: _Structure) -> list[list[_AxisOption]]:
        sizes = structure.x.shape[1:-1]
        taps = structure.kernel.shape[:self.rank]
        targets = self.output.shape[1:-1]
        strides = self.hints.strides
        if strides is not None:
            strides = tuple(strides) * self.rank if len(strides) == 1 else tuple(strides)
        hinted = self._hinted_pads(sizes, taps, strides, structure.dilation)
        per_axis = []
        for axis, (n, k, d, target) in enumerate(zip(sizes, taps, structure.dilation, targets)):
            span = geometry.dilated_size(k, d)
            options = []
            for s in ([strides[axis]] if strides is not None else range(1, MAX_STRIDE + 1)):
                for before in range(span):
                    afters = tuple(after for after in range(span)
                                   if geometry.output_size(n, (before, after), k, s, d) == target
                                   and s <= n + before + after and span <= n + before + after
                                   and (hinted is None or hinted[axis] == (before, after)))
                    if afters:
                        options.append(_AxisOption(s, before, afters))
            per_axis.append(options)
        return per_axis

    def _hinted_pads(self, sizes: Sequence[int], taps: Sequence[int], strides: tuple[int, ...] | None,
                     dilation: tuple[int, ...]) -> Pads | None:
        padding = self.hints.padding
        if padding is None:
            return None
        padding = padding.for_rank(self.rank)
        if padding.mode.value == "same":
            if strides is None:
                return None  # SAME's pads depend on the stride: checked per variant (`_named`)
            return geometry.resolve_same(sizes, taps, strides, dilation)
        return padding.resolve(tuple(sizes), tuple(taps), strides or (1,) * self.rank, dilation)

    # --- the residuals -----------------------------------------------------------------------------

    def _variants(self, structure: _Structure) -> list[Candidate]:
        per_axis = self._axis_options(structure)
        if not all(per_axis):
            return []
        spans = [geometry.dilated_size(k, d) for k, d in zip(structure.kernel.shape[:self.rank], structure.dilation)]
        full_pads = tuple((s - 1, s - 1) for s in spans)
        with np.errstate(over="ignore", invalid="ignore"):
            full = conv_nd(structure.x, structure.kernel, (1,) * self.rank, full_pads, structure.dilation,
                           groups=structure.groups, flip=structure.convention == "convolution")
        biases = self._bias_variants()
        found = []
        sizes = structure.x.shape[1:-1]
        taps = structure.kernel.shape[:self.rank]
        targets = self.output.shape[1:-1]
        for combo in itertools.product(*per_axis):
            named = _named(combo, sizes, taps, structure.dilation)
            if named is None:
                continue
            padding, pads, also = named
            if self.hints.padding is not None and self.hints.padding.mode.value == "same" and padding != "same":
                continue
            window = tuple(slice(span - 1 - o.before, span - 1 - o.before + o.stride * (t - 1) + 1, o.stride)
                           for o, span, t in zip(combo, spans, targets))
            recomputed = full[(slice(None), *window, slice(None))]
            for name, factor in biases:
                with np.errstate(over="ignore", invalid="ignore"):
                    value = recomputed if factor == 0 else recomputed + factor * self.bias
                found.append(Candidate(structure.input_layout, structure.weights_layout, structure.groups,
                                       structure.convention, tuple(o.stride for o in combo), structure.dilation,
                                       pads, padding, also, name, _residual(self.output64, value, self.scale)))
        return found

    def _bias_variants(self) -> list[tuple[str, int]]:
        if self.bias is None:
            return [("absent", 0)]
        if self.hints.use_bias is False:
            return [("none", 0)]
        if self.hints.use_bias:
            return [("once", 1), ("twice", 2)]
        return list(BIAS_FACTORS.items())

    # --- the rounding bounds -----------------------------------------------------------------------

    def _check(self, candidates: list[Candidate], data: dict[Candidate, _Structure]) -> list[Candidate]:
        chosen = sorted((c for c in candidates if not c.checked), key=lambda c: c.residual)[:CONFIRM_LIMIT]
        checked = {id(c): self._confirm(c, data[c]) for c in chosen}
        out = []
        for c in candidates:
            new = checked.get(id(c), c)
            if new is not c:
                data[new] = data[c]
            out.append(new)
        return out

    def _confirm(self, candidate: Candidate, structure: _Structure) -> Candidate:
        x, kernel = structure.x, structure.kernel
        spec = candidate.spec(x.shape, self.output.shape[-1], kernel.shape[:self.rank], "float64")
        bias = None if candidate.bias in ("none", "absent") else BIAS_FACTORS[candidate.bias] * self.bias
        held = (precision_of(x.dtype), precision_of(kernel.dtype))
        arithmetics = [self.hints.dtype] if self.hints.dtype else list(ARITHMETICS)
        # Screen first: no output can have a bound above the bound of the largest S = |x| (*) |w| there is,
        # so an arithmetic whose largest bound is below the largest difference cannot explain it.
        largest = self._largest_bounds(arithmetics, spec, x, kernel, bias, held)
        difference = candidate.residual * self.scale
        plausible = [a for a in arithmetics if not largest[a] < difference]
        if not plausible:
            return _replace(candidate, checked=True, screened=True,
                            bound_ratio=difference / max(largest.values()) if max(largest.values()) > 0 else None)
        with np.errstate(over="ignore", invalid="ignore"):
            exact = convolve(x, kernel, spec, bias)
            magnitude = abs_convolution(x, kernel, spec)
        within, ratios = [], {}
        for name in plausible:
            if name == "tf32":
                comparison = self._tf32(x, kernel, spec, bias)
            else:
                model = RoundingModel(self.form, spec.dot_length, (Arithmetic.computing_in(name),), *held)
                rule = Rule.bound(model, Tolerance(0.0, 0.0))
                comparison = compare_arrays(exact, self.output, rule=rule, bound=model.bound(magnitude, exact, bias),
                                            top_k=0)
            ratios[name] = comparison.max_ratio
            if comparison:
                within.append(name)
        arithmetic = within[0] if within else None
        ratio = ratios[arithmetic] if arithmetic else ratios[plausible[-1]]
        return _replace(candidate, checked=True, arithmetic=arithmetic, within=tuple(within),
                        bound_ratio=None if ratio is None or math.isnan(ratio) else float(ratio))

    def _largest_bounds(self, arithmetics: list[str], spec: ConvSpec, x: np.ndarray, kernel: np.ndarray,
                        bias: np.ndarray | None, held: tuple[str, str]) -> dict[str, float]:
        """The largest bound any output can have in each arithmetic (inf where the arrays are not finite).

        Every term of the bound grows with S, |t| and |y|: S <= max |x| * the largest sum of |w| of an output
        channel, |t| <= S and |y| <= S + max |b|. TF32 is screened with float16's bound, which holds its
        operand rounding (both round 10 mantissa bits) and more.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            per_channel = np.abs(kernel.astype(np.float64)).reshape(-1, kernel.shape[-1]).sum(axis=0)
            s = float(np.abs(x.astype(np.float64)).max() * per_channel.max())
            b = None if bias is None else np.array(float(np.abs(bias).max()))
        if not math.isfinite(s):
            return {a: math.inf for a in arithmetics}
        largest = {}
        for name in arithmetics:
            model = RoundingModel(self.form, spec.dot_length,
                                  (Arithmetic.computing_in("float16" if name == "tf32" else name),), *held)
            y = np.array(s + (0.0 if b is None else float(b)))
            largest[name] = float(model.bound(np.array(s), y, b))
        return largest

    def _tf32(self, x: np.ndarray, kernel: np.ndarray, spec: ConvSpec, bias: np.ndarray | None):  # noqa: ANN202
        """The output against the float64 convolution of TF32-rounded operands, under float32 rounding
        (`convdiff.analysis.bound.tf32_consistency`'s first comparison)."""
        x_tf32, k_tf32 = round_to_tf32(x), round_to_tf32(kernel)
        with np.errstate(over="ignore", invalid="ignore"):
            emulated = convolve(x_tf32, k_tf32, spec, bias)
        plain = Arithmetic.computing_in("float32")
        as_tf32 = Arithmetic("float32", plain.accumulation, plain.output)
        return bound_comparison(emulated, self.output, x_tf32, k_tf32, spec, as_tf32, self.form, bias, top_k=0,
                                exact=emulated)


def _replace(candidate: Candidate, **changes: object) -> Candidate:
    import dataclasses

    return dataclasses.replace(candidate, **changes)


_ARITHMETIC_ORDER = {name: i for i, name in enumerate(ARITHMETICS)}


def _order(c: Candidate) -> tuple:
    if c.confirmed:
        return (0, _ARITHMETIC_ORDER[c.arithmetic], c.unusual, c.residual)
    return (1, 0, 0, c.residual)


def _named(combo: Sequence[_AxisOption], sizes: Sequence[int], taps: Sequence[int],
           dilation: Sequence[int]) -> tuple[str, Pads, tuple[str, ...]] | None:
    """The padding a combination of axis options is best called, its pads, and the other names it has."""
    same = [geometry.same_pads(n, k, o.stride, d) for o, n, k, d in zip(combo, sizes, taps, dilation)]
    names: list[tuple[str, Pads]] = []
    if all(o.before == a and b in o.afters for o, (a, b) in zip(combo, same)):
        names.append(("same", tuple(same)))
    if all(o.before == 0 and 0 in o.afters for o in combo):
        names.append(("valid", tuple((0, 0) for _ in combo)))
    if all(o.before in o.afters for o in combo):
        names.append(("symmetric", tuple((o.before, o.before) for o in combo)))
    if all(o.before == b and a in o.afters for o, (a, b) in zip(combo, same)) and any(a != b for a, b in same):
        names.append(("same_lower", tuple((b, a) for a, b in same)))
    if not names:
        names.append(("explicit", tuple((o.before, o.afters[0]) for o in combo)))
    first, pads = names[0]
    return first, pads, tuple(n for n, _ in names[1:])
