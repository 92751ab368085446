"""One small class per suspected cause of a mismatch. Each proposes recomputations of the float64
reference with the mistake applied to the reference side's input, kernel or settings; `diagnose`
confirms a recomputation when it matches the candidate under the same rounding model as the
verdict (the rounding bound of the candidate's arithmetic, computed for that recomputation).

Every recomputation goes through the one N-D reference routine (`convdiff.reference.convolution`), so
each hypothesis holds for every kind: 1-D, 2-D and 3-D, grouped and depthwise, transposed.

Pure: arrays and specs in, trials out. A hypothesis that does not apply says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from convdiff.analysis.regions import AXIS_NAMES
from convdiff.reference.convolution import conv_nd
from convdiff.reference.rounding import precision_of
from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.geometry import Pads
from convdiff.spec.layouts import WEIGHTS_LAYOUTS, for_rank, from_canonical, to_canonical



@dataclass(frozen=True)
class Operands:
    """What a recomputation convolved: the rounding bound of the trial is built from these."""

    x: np.ndarray
    kernel: np.ndarray
    pads: Pads
    bias: np.ndarray | None
    groups: int | None = None
    """Groups of the recomputation (None: the reference spec's)."""
    flip: bool | None = None
    """True convolution (None: the reference spec's convention)."""


@dataclass(frozen=True)
class Trial:
    """One recomputation: `output` should equal the candidate (or `candidate`, a region of it)."""

    detail: str
    output: np.ndarray | None
    """The recomputed output (or the region compared); None when the shapes cannot be compared."""
    operands: Operands
    candidate: np.ndarray | None = None
    """The candidate region compared, when not the whole candidate."""
    region: tuple[slice, ...] | None = None
    """The slice of the recomputation's bound that `output` covers, when a region is compared."""
    precision: str | None = None
    """The precision the recomputation rounded its operands and output to: the confirmation then allows
    the rounding of a side computing in it (default: the candidate's own arithmetic)."""
    nonfinite_only: bool = False
    """The recomputation may be confirmed by its NaN/inf pattern alone (an overflow): other trials need
    finite outputs to compare."""


@dataclass(frozen=True)
class NotApplicable:
    why: str


class Context:
    """The reference side of a failing case, in float64, and what the candidate produced."""

    def __init__(self, spec: ConvSpec, candidate_spec: ConvSpec, x: np.ndarray, kernel: np.ndarray,
                 bias: np.ndarray | None, candidate: np.ndarray, reference_dtype: str, candidate_dtype: str,
                 candidate_kernel: np.ndarray | None, candidate_bias: np.ndarray | None):
        self.spec = spec
        self.candidate_spec = candidate_spec
        self.given_x, self.given_kernel = x, kernel
        """The input and kernel as the reference side holds them (their dtypes)."""
        self.input_precision = precision_of(np.asarray(x).dtype)
        """Precision of the reference side's input values (a side rounding them coarser pays for it)."""
        self.kernel_precision = precision_of(np.asarray(kernel).dtype)
        self.x = np.asarray(x, dtype=np.float64)
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64)
        self.candidate = np.asarray(candidate, dtype=np.float64)
        self.reference_dtype = reference_dtype
        self.candidate_dtype = candidate_dtype
        self.output_dtype = str(np.asarray(candidate).dtype)
        self.candidate_kernel = candidate_kernel
        self.candidate_bias = candidate_bias

    @property
    def rank(self) -> int:
        return self.spec.rank

    def operands(self, x: np.ndarray | None = None, kernel: np.ndarray | None = None, pads: Pads | None = None,
                 bias: np.ndarray | None | str = "same", groups: int | None = None,
                 flip: bool | None = None) -> Operands:
        return Operands(self.x if x is None else x, self.kernel if kernel is None else kernel,
                        self.spec.pads if pads is None else pads, self.bias if isinstance(bias, str) else bias,
                        groups, flip)

    def groups_of(self, operands: Operands) -> int:
        return self.spec.groups if operands.groups is None else operands.groups

    def flip_of(self, operands: Operands) -> bool:
        return (self.spec.convention == "convolution") if operands.flip is None else operands.flip

    def conv(self, operands: Operands) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a result (inf), not a warning
            return conv_nd(operands.x, operands.kernel, self.spec.strides, operands.pads, self.spec.dilation,
                           groups=self.groups_of(operands), transposed=self.spec.transposed,
                           flip=self.flip_of(operands), bias=operands.bias)

    def magnitude(self, operands: Operands) -> np.ndarray:
        """|x| (*) |w| of the recomputation: what its rounding bound is built from."""
        return self.conv(Operands(np.abs(operands.x), np.abs(operands.kernel), operands.pads, None,
                                  operands.groups, operands.flip))

    def dot_length(self, operands: Operands) -> int:
        spec = self.spec
        return geometry.dot_length(spec.kernel_size, spec.in_channels, self.groups_of(operands),
                                   transposed=spec.transposed, strides=spec.strides, dilation=spec.dilation)

    def kernel_reach(self, operands: Operands) -> float:
        """The largest sum of |w| any output channel reads (over taps and input channels): with max |x|, a
        bound on every output magnitude."""
        out_axis = self.kernel.ndim - (2 if self.spec.transposed else 1)
        axes = tuple(a for a in range(operands.kernel.ndim) if a != out_axis)
        return float(np.abs(operands.kernel).sum(axis=axes).max())

    def trial(self, detail: str, operands: Operands, precision: str | None = None) -> Trial:
        spec = self.spec
        rank = operands.x.ndim - 2
        if not spec.transposed and min(geometry.output_sizes(operands.x.shape[1:-1], operands.pads,
                                                             operands.kernel.shape[:rank], spec.strides,
                                                             spec.dilation)) < 1:
            return Trial(detail, None, operands, precision=precision)  # the kernel does not fit: nothing to compare
        out = self.conv(operands)
        return Trial(detail, out if out.shape == self.candidate.shape else None, operands, precision=precision)

    @cached_property
    def base(self) -> np.ndarray:
        """The reference recomputed in float64 with no mistake."""
        return self.conv(self.operands())

    @property
    def declared(self) -> list[str]:
        """The lower precisions a side declares (its compute dtype or its output's dtype)."""
        return [d for d in ("float32", "float16", "bfloat16")
                if d in (self.reference_dtype, self.candidate_dtype, self.output_dtype)]

    def rounded_recomputation(self, precision: str) -> tuple[Operands, np.ndarray]:
        """Input, kernel, bias and output rounded to `precision`: a float64 recomputation of a side storing them there."""
        t = np_dtype(precision)

        def rounded(a: np.ndarray | None) -> np.ndarray | None:
            with np.errstate(over="ignore", invalid="ignore"):
                return None if a is None else a.astype(t).astype(np.float64)

        operands = self.operands(x=rounded(self.x), kernel=rounded(self.kernel), bias=rounded(self.bias))
        return operands, rounded(self.conv(operands))


class Hypothesis:
    cause: ClassVar[str]
    structural: ClassVar[bool] = True
    """A mistake in how the convolution was built (not its precision): an equivalent result that its
    recomputation also fits cannot be told apart from it at this precision (`resolution`)."""

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        raise NotImplementedError

    def context_text(self, ctx: Context) -> str:
        return ""


UNCHANGED_KERNEL = ("this mistake leaves the kernel's values unchanged (e.g. a 1x1 or symmetric kernel), so it "
                    "cannot be told apart")


def _kernel_trials(ctx: Context, variants: Iterator[tuple[str, np.ndarray]] | list[tuple[str, np.ndarray]],
                   empty: str, **settings: int | bool) -> list[Trial] | NotApplicable:
    """One trial per mistaken kernel; a mistake that leaves the kernel as it was explains nothing."""
    trials = [ctx.trial(detail, ctx.operands(kernel=kernel, **settings)) for detail, kernel in variants
              if kernel.shape != ctx.kernel.shape or not np.array_equal(kernel, ctx.kernel)]
    return trials or NotApplicable(empty)


def _spatial_flip(rank: int) -> tuple[slice, ...]:
    return (slice(None, None, -1),) * rank


class DtypeHypothesis(Hypothesis):
    """Input, kernel and output rounded to a precision a side declares (float32, float16, bfloat16)."""

    cause = "dtype"
    structural = False

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        # Only the precisions a side declares (its compute dtype or its output's dtype) are tried: a
        # coarser precision the sides never use would "explain" small structural differences too.
        declared = ctx.declared
        if not declared:
            return NotApplicable(f"both sides compute in {ctx.reference_dtype}")
        trials = []
        for d in declared:
            operands, out = ctx.rounded_recomputation(d)
            if _overflows(out, ctx.base):
                continue  # an overflow is its own cause (`overflow`), not a rounding difference
            if ctx.reference_dtype == ctx.candidate_dtype == d:
                what = f"both sides compute in {d}: only {d} rounding (summation order) separates them"
            else:
                what = (f"reference computes in {ctx.reference_dtype}, candidate in {ctx.candidate_dtype}: input, "
                        f"kernel and output rounded to {d} (K={ctx.spec.dot_length})")
            trials.append(Trial(what, out if out.shape == ctx.candidate.shape else None, operands, precision=d))
        return trials or NotApplicable(f"the recomputation in {' and '.join(declared)} overflows: see overflow")


def _finfo(precision: str):  # noqa: ANN202 - numpy's or ml_dtypes' finfo
    if precision == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(np_dtype(precision))


def _overflows(rounded: np.ndarray, exact: np.ndarray) -> bool:
    """Whether rounding turned finite outputs into infinities."""
    return rounded.shape == exact.shape and bool(np.any(~np.isfinite(rounded) & np.isfinite(exact)))


class OverflowHypothesis(Hypothesis):
    """The recomputation in a declared lower precision overflows where the candidate does (float16's
    largest value is 65504): an overflow, not a mistake in the convolution."""

    cause = "overflow"
    structural = False

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        declared = ctx.declared
        trials = []
        for d in declared:
            operands, out = ctx.rounded_recomputation(d)
            if not _overflows(out, ctx.base):
                continue
            over = int(np.count_nonzero(~np.isfinite(out) & np.isfinite(ctx.base)))
            largest = float(_finfo(d).max)
            detail = (f"recomputed with input, kernel and output in {d}: {over:,} of {out.size:,} outputs exceed "
                      f"{d}'s largest value {largest:.6g} and overflow (overflow in {d})")
            trials.append(Trial(detail, out if out.shape == ctx.candidate.shape else None, operands, precision=d,
                                nonfinite_only=True))
        if not trials:
            return NotApplicable(f"no output overflows {' or '.join(declared)}" if declared
                                 else f"both sides compute in {ctx.reference_dtype}")
        return trials


def even_kernel_pads(ctx: Context) -> list[tuple[Pads, str]]:
    """The pads an even kernel's "same" gets from a symmetric pad (k//2 or (k-1)//2 both sides, where TF
    SAME pads (k//2 - 1, k//2)), or TF's own pads mirrored: one set per variant, the other axes as the
    reference pads them."""
    spec = ctx.spec
    if spec.transposed:
        return []
    if PaddingMode.SAME not in (spec.padding.mode, ctx.candidate_spec.padding.mode):
        return []
    same = geometry.resolve_same(spec.spatial_shape, spec.kernel_size, spec.strides, spec.dilation)
    even = [i for i, k in enumerate(spec.dilated_kernel) if k % 2 == 0]
    if not even:
        return []
    out = []
    for what, pick in (("symmetric k//2", lambda k, s: (k // 2, k // 2)),
                       ("symmetric (k-1)//2", lambda k, s: ((k - 1) // 2, (k - 1) // 2)),
                       ("TF SAME mirrored (the extra pad at the start)", lambda k, s: (s[1], s[0]))):
        pads = list(spec.pads)
        for i in even:
            pads[i] = pick(spec.dilated_kernel[i], same[i])
        out.append((tuple(tuple(p) for p in pads), what))
    return out


class PaddingHypothesis(Hypothesis):
    """The candidate's pads, TF SAME's, either side's mirrored, symmetric (k-1)//2 and k//2, VALID."""

    cause = "padding"

    def context_text(self, ctx: Context) -> str:
        return (f"reference pads {_fmt_pads(ctx.spec.pads)} (padding {ctx.spec.padding}), "
                f"candidate {_fmt_pads(ctx.candidate_spec.pads)} (padding {ctx.candidate_spec.padding})")

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.transposed:
            return NotApplicable("a transposed convolution crops rather than pads: see transposed_cropping and "
                                 "output_padding")
        pads, cand = spec.pads, ctx.candidate_spec.pads
        rank = spec.rank
        kernels = spec.dilated_kernel
        options: list[tuple[Pads, str]] = [
            (cand, "the candidate's pads"),
            (geometry.resolve_same(spec.spatial_shape, spec.kernel_size, spec.strides, spec.dilation),
             "TF SAME (the extra row/column at the bottom/right)"),
            (tuple((b, a) for a, b in pads), "the reference's pads mirrored (the extra padding on the other side)"),
            (tuple((b, a) for a, b in cand) if len(cand) == rank else pads, "the candidate's pads mirrored"),
            (tuple(((k - 1) // 2,) * 2 for k in kernels), "symmetric pads (k-1)//2"),
            (tuple((k // 2,) * 2 for k in kernels), "symmetric pads k//2"),
            (((0, 0),) * rank, "no padding (VALID)"),
        ]
        # An even kernel's "same" against a symmetric pad has its own name (even_kernel_same): the first,
        # most specific name of a pad set is kept.
        trials, seen = [], {pads, *(p for p, _ in even_kernel_pads(ctx))}
        for option, what in options:
            option = tuple(tuple(p) for p in option)
            if option in seen or len(option) != rank:
                continue
            seen.add(option)
            trials.append(ctx.trial(f"recomputed with {_fmt_pads(option)} ({what})", ctx.operands(pads=option)))
        return trials or NotApplicable("no other padding to try")


class KernelTransposedHypothesis(Hypothesis):
    cause = "kernel_transposed_hw"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if ctx.rank == 1:
            return NotApplicable("a 1-D kernel has no H and W to swap")
        h = ctx.rank - 2  # the H axis; W follows it
        perm = list(range(ctx.kernel.ndim))
        perm[h], perm[h + 1] = perm[h + 1], perm[h]
        return _kernel_trials(ctx, [(
            f"kernel H and W swapped (transpose{tuple(perm)}, as a bare np.transpose of the spatial axes does)",
            ctx.kernel.transpose(perm))], UNCHANGED_KERNEL)


class KernelRotatedHypothesis(Hypothesis):
    cause = "kernel_rotated_180"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if ctx.spec.transposed:
            return NotApplicable("for a transposed convolution an unflipped kernel is its own cause: see "
                                 "kernel_not_flipped")
        if ctx.spec.convention != ctx.candidate_spec.convention:
            return NotApplicable("the sides declare different conventions, which rotates the kernel: see convention")
        return _kernel_trials(ctx, [(f"kernel rotated 180 degrees{' in every spatial axis' if ctx.rank != 2 else ''} "
                                     "(true convolution instead of cross-correlation)",
                                     ctx.kernel[_spatial_flip(ctx.rank)])], UNCHANGED_KERNEL)


class WeightsPermutedHypothesis(Hypothesis):
    """Every other transpose of the weights that keeps their shape, and weights reshaped, not transposed."""

    cause = "weights_permuted"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _kernel_trials(ctx, self._variants(ctx),
                              "no other permutation or reinterpretation of the weights keeps their shape and "
                              "changes their values")

    @staticmethod
    def _variants(ctx: Context) -> Iterator[tuple[str, np.ndarray]]:
        k = ctx.kernel
        spec = ctx.spec
        identity = tuple(range(k.ndim))
        hw_swap = list(identity)
        if ctx.rank >= 2:
            hw_swap[ctx.rank - 2], hw_swap[ctx.rank - 1] = hw_swap[ctx.rank - 1], hw_swap[ctx.rank - 2]
        # The H/W swap and the spatial rotation have their own names; the kernel's in/out swap of a transposed
        # convolution too (transposed_in_out).
        excluded = {identity, tuple(hw_swap)}
        if spec.transposed:
            excluded.add((*identity[:-2], identity[-1], identity[-2]))
        for perm in itertools.permutations(identity):
            if perm in excluded or tuple(k.shape[p] for p in perm) != k.shape:
                continue
            yield f"kernel transpose{perm}", k.transpose(perm)
        canonical = spec.kernel_layout
        swapped = canonical[:-2] + canonical[-1] + canonical[-2]
        for layout in (for_rank(name, ctx.rank) for name in WEIGHTS_LAYOUTS):
            if layout == canonical or (spec.transposed and layout == swapped):
                continue
            stored = from_canonical(k, layout, ctx.rank, spec.transposed)[0]
            yield (f"{layout} weights reshaped (not transposed) to {canonical}",
                   np.ascontiguousarray(stored).reshape(k.shape))
            as_layout = np.ascontiguousarray(k).reshape(stored.shape)
            yield f"{canonical} weights read as {layout} and converted", to_canonical(as_layout, layout, ctx.rank,
                                                                                         spec.transposed)[0]


def _channels_first_shape(x: np.ndarray) -> tuple[int, ...]:
    return (x.shape[0], x.shape[-1], *x.shape[1:-1])


class InputLayoutHypothesis(Hypothesis):
    """Channels-first data read as channels-last (NCHW as NHWC, NCW as NWC, NCDHW as NDHWC), and the reverse."""

    cause = "input_layout"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        x = ctx.x
        if x.shape[-1] == 1:
            return NotApplicable("the input has one channel: channels-first and channels-last read the same")
        first = "NC" + "DHW"[3 - ctx.rank:]
        last = "N" + "DHW"[3 - ctx.rank:] + "C"
        to_first = (0, x.ndim - 1, *range(1, x.ndim - 1))
        to_last = (0, *range(2, x.ndim), 1)
        variants = [(f"{first} input read as {last} (reshaped, not transposed)",
                     np.ascontiguousarray(x.transpose(to_first)).reshape(x.shape)),
                    (f"{last} input read as {first} and converted",
                     np.ascontiguousarray(x).reshape(_channels_first_shape(x)).transpose(to_last))]
        trials = [ctx.trial(detail, ctx.operands(x=v)) for detail, v in variants
                  if not np.array_equal(v, x)]  # a constant input reads the same in any layout
        return trials or NotApplicable("the input is unchanged by a layout mix-up (a constant input)")


class InputTransposedHypothesis(Hypothesis):
    """The input read with H and W swapped (an NCHW tensor permuted with (0, 3, 2, 1) instead of
    (0, 2, 3, 1)): the convolution then runs on the W x H image, with the padding that shape gets."""

    cause = "input_transposed_hw"

    def context_text(self, ctx: Context) -> str:
        if ctx.rank != 2:
            return ""
        h, w = ctx.x.shape[1:3]
        if h == w:
            return ""
        (rh, rw), (ch, cw) = ctx.base.shape[1:3], ctx.candidate.shape[1:3]
        if (rh, rw) == (cw, ch) and rh != rw:
            return (f"the outputs' rows and columns are swapped (reference {rh}x{rw}, candidate {ch}x{cw}): a shape "
                    "mismatch, as reading the input with H and W swapped gives")
        return ""

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if ctx.rank != 2:
            return NotApplicable("only a 2-D input has an H and a W to swap")
        swapped = np.ascontiguousarray(ctx.x.transpose(0, 2, 1, 3))
        if swapped.shape == ctx.x.shape and np.array_equal(swapped, ctx.x):
            return NotApplicable("the input is symmetric in H and W: swapping them changes nothing")
        spec = ctx.spec
        pads = spec.padding.resolve(swapped.shape[1:3], spec.kernel_size, spec.strides, spec.dilation)
        if min(geometry.output_sizes(swapped.shape[1:3], pads, spec.kernel_size, spec.strides, spec.dilation)) < 1:
            return NotApplicable("the kernel does not fit the input with H and W swapped")
        return [ctx.trial(f"input read with H and W swapped (transpose(0, 2, 1, 3), as a (0, 3, 2, 1) permutation of "
                          f"an NCHW tensor does): a {swapped.shape[1]}x{swapped.shape[2]} image, pads {_fmt_pads(pads)}",
                          ctx.operands(x=swapped, pads=pads))]


def _zero_bias(ctx: Context) -> NotApplicable | None:
    if ctx.bias is None or not np.any(ctx.bias):
        return NotApplicable("the reference adds no (or a zero) bias")
    return None


class BiasMissingHypothesis(Hypothesis):
    cause = "bias_missing"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _zero_bias(ctx) or [ctx.trial("recomputed without the bias", ctx.operands(bias=None))]


class BiasDoubledHypothesis(Hypothesis):
    cause = "bias_doubled"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _zero_bias(ctx) or [ctx.trial("recomputed with the bias added twice",
                                             ctx.operands(bias=2 * ctx.bias))]


class OutputShiftedHypothesis(Hypothesis):
    """The output shifted by one position (along each spatial axis, or all at once), compared on the overlap."""

    cause = "output_shifted"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        base, cand = ctx.base, ctx.candidate
        if base.shape != cand.shape:
            return NotApplicable("outputs have different shapes")
        sizes = base.shape[1:-1]
        rank = ctx.rank
        names = AXIS_NAMES[rank]
        shifts = []
        for axis in range(rank):
            for step in (1, -1):
                shift = [0] * rank
                shift[axis] = step
                shifts.append(tuple(shift))
        if rank > 1:
            shifts += [(1,) * rank, (-1,) * rank]
        trials = []
        for shift in shifts:
            if any(n - abs(s) < 2 for n, s in zip(sizes, shift)):
                continue
            target = tuple(slice(max(0, -s), n - max(0, s)) for n, s in zip(sizes, shift))
            source = (slice(None), *(slice(t.start + s, t.stop + s) for t, s in zip(target, shift)))
            letters = "xyz"[:rank] if rank != 2 else "yx"
            index = ", ".join(letters[::-1] if rank == 3 else letters)
            moved = ", ".join(f"{c}{s:+d}" for c, s in zip(letters[::-1] if rank == 3 else letters, shift))
            overlap = "x".join(str(t.stop - t.start) for t in target)
            along = "" if rank == 2 else f" ({', '.join(n for n, s in zip(names, shift) if s)})"
            what = (f"candidate[{index}] = reference[{moved}] on the {overlap} overlap{along} (output shifted by one "
                    "position, e.g. a stride offset)")
            trials.append(Trial(what, base[source], ctx.operands(), cand[(slice(None), *target)], source))
        return trials or NotApplicable("outputs are too small to shift")


class OutputSizeHypothesis(Hypothesis):
    """Different output shapes: the common region, top-left or bottom-right aligned (floor vs ceil)."""

    cause = "output_size"
    structural = False

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        base, cand = ctx.base, ctx.candidate
        if base.shape == cand.shape:
            return NotApplicable("both outputs have the same shape")
        if base.ndim != cand.ndim or (base.shape[0], base.shape[-1]) != (cand.shape[0], cand.shape[-1]):
            return NotApplicable("the outputs differ in batch or channels, not in their spatial size")
        ref_sizes, cand_sizes = base.shape[1:-1], cand.shape[1:-1]
        if len(ref_sizes) == 2 and tuple(ref_sizes) == tuple(reversed(cand_sizes)) and ref_sizes[0] != ref_sizes[1]:
            (rh, rw), (ch, cw) = ref_sizes, cand_sizes
            return NotApplicable(f"the outputs' rows and columns are swapped (reference {rh}x{rw}, candidate "
                                 f"{ch}x{cw}), not cut short: see input_transposed_hw")
        common = tuple(min(a, b) for a, b in zip(ref_sizes, cand_sizes))
        size = "x".join(map(str, common))
        why = ("floor vs ceil output size" if all(abs(a - b) <= 1 for a, b in zip(ref_sizes, cand_sizes))
               else "more than one position apart: not floor vs ceil rounding of the output size")
        extra = f"reference {'x'.join(map(str, ref_sizes))}, candidate {'x'.join(map(str, cand_sizes))} ({why})"
        first = (slice(None), *(slice(0, n) for n in common))
        last_ref = (slice(None), *(slice(r - n, r) for r, n in zip(ref_sizes, common)))
        last_cand = (slice(None), *(slice(c - n, c) for c, n in zip(cand_sizes, common)))
        corner = ("top-left", "bottom-right") if ctx.rank >= 2 else ("start", "end")
        return [
            Trial(f"{extra}; the common {size} region compared {corner[0]} aligned", base[first], ctx.operands(),
                  cand[first], first),
            Trial(f"{extra}; the common {size} region compared {corner[1]} aligned", base[last_ref],
                  ctx.operands(), cand[last_cand], last_ref),
        ]


class WeightsDifferHypothesis(Hypothesis):
    """The candidate's own kernel and bias, when they differ from the reference's."""

    cause = "weights_differ"
    structural = False

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        kernel, bias = ctx.candidate_kernel, ctx.candidate_bias
        if kernel is None or np.shape(kernel) != ctx.kernel.shape:
            return NotApplicable("the candidate's kernel is unknown or of another shape")
        k = np.asarray(kernel, dtype=np.float64)
        b = None if bias is None else np.asarray(bias, dtype=np.float64)
        same_bias = (b is None and ctx.bias is None) or (
            b is not None and ctx.bias is not None and b.shape == ctx.bias.shape and np.array_equal(b, ctx.bias))
        if np.array_equal(k, ctx.kernel) and same_bias:
            return NotApplicable("the candidate used the reference's kernel and bias")
        with np.errstate(invalid="ignore"):
            gap = float(np.nanmax(np.abs(k - ctx.kernel)))
        return [ctx.trial(f"recomputed with the candidate's own kernel and bias (kernel max abs diff {gap:.3g}; "
                          "the weights differ before the convolution)", ctx.operands(kernel=k, bias=b))]


# --- the mistakes of the other kinds: convention, even kernels, groups, transposed, separable ---------------


class ConventionHypothesis(Hypothesis):
    """True convolution against cross-correlation: the sides declare different conventions (MATLAB conv2 and
    scipy.signal.convolve rotate the kernel 180 degrees in every spatial axis; frameworks do not)."""

    cause = "convention"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        ref, cand = ctx.spec.convention, ctx.candidate_spec.convention
        if ref == cand:
            return NotApplicable(f"both sides compute {ref} (a rotated kernel is kernel_rotated_180)")
        if _symmetric(ctx.kernel, ctx.rank):
            return NotApplicable(UNCHANGED_KERNEL)
        return [ctx.trial(f"the candidate computes {cand} where the reference computes {ref}: the kernel rotated 180 "
                          "degrees in every spatial axis (MATLAB conv2 / scipy.signal.convolve against a framework's "
                          "cross-correlation)", ctx.operands(flip=cand == "convolution"))]


def _symmetric(kernel: np.ndarray, rank: int) -> bool:
    return np.array_equal(kernel, kernel[_spatial_flip(rank)])


class EvenKernelSameHypothesis(Hypothesis):
    """An even kernel with "same": TF pads (k//2 - 1, k//2) (e.g. (1, 2) for k = 4), which no symmetric pad
    reproduces; a port with padding k//2 or (k-1)//2 on both sides (or the extra pad at the start) differs."""

    cause = "even_kernel_same"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if ctx.spec.transposed:
            return NotApplicable("a transposed convolution crops rather than pads: see transposed_cropping")
        if PaddingMode.SAME not in (ctx.spec.padding.mode, ctx.candidate_spec.padding.mode):
            return NotApplicable("neither side pads 'same'")
        variants = [(p, w) for p, w in even_kernel_pads(ctx) if p != ctx.spec.pads]
        if not variants:
            return NotApplicable("every (dilated) kernel size is odd: TF SAME pads it symmetrically")
        same = geometry.resolve_same(ctx.spec.spatial_shape, ctx.spec.kernel_size, ctx.spec.strides,
                                     ctx.spec.dilation)
        tf = ", ".join(f"{tuple(p)}" for p, k in zip(same, ctx.spec.dilated_kernel) if k % 2 == 0)
        return [ctx.trial(f"recomputed with {_fmt_pads(p)} ({what}; TF SAME pads the even kernel {tf})",
                          ctx.operands(pads=p)) for p, what in variants]


def _per_group(ctx: Context) -> tuple[int, int]:
    """(input channels, output channels) per group of the reference."""
    spec = ctx.spec
    return spec.in_channels // spec.groups, spec.filters // spec.groups


class ChannelOrderHypothesis(Hypothesis):
    """A grouped or depthwise kernel's output channels in the wrong order: m-major (m * C + c) where the layer
    numbers them c-major (c * M + m), as when PyTorch's (C*M, 1, k, k) is reshaped to Keras' (k, k, C, M) in
    the wrong order."""

    cause = "channel_order"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.groups == 1 or spec.transposed:
            return NotApplicable("not a grouped (or depthwise) forward convolution")
        _, per_out = _per_group(ctx)
        if per_out == 1:
            return NotApplicable("one output channel per group: their order cannot be wrong")
        g = spec.groups
        k = ctx.kernel
        # Output channel G * per_out + j holds the reference's channel j * groups + G.
        m_major = k.reshape(*k.shape[:-1], per_out, g).swapaxes(-1, -2).reshape(k.shape)
        c_major = k.reshape(*k.shape[:-1], g, per_out).swapaxes(-1, -2).reshape(k.shape)
        name = "depthwise multiplier" if spec.depthwise else "per-group"
        trials = _kernel_trials(ctx, [
            (f"output channels m-major (m * {g} + c) instead of c-major (c * {per_out} + m): the kernel's "
             f"{name} and group axes interleaved the wrong way (e.g. (C*M, 1, k, k) reshaped as (M, C) for "
             "Keras' (k, k, C, M))", m_major),
            ("output channels read c-major where the reference numbers them m-major", c_major)],
            "the reordering leaves the kernel unchanged")
        if isinstance(trials, NotApplicable) or ctx.bias is None:
            return trials
        # The same reordering applied to the bias too (a port that reshaped both).
        bias_m = ctx.bias.reshape(per_out, g).T.reshape(-1)
        return trials + [ctx.trial("kernel and bias both m-major", ctx.operands(kernel=m_major, bias=bias_m))]


class GroupedReplicatedHypothesis(Hypothesis):
    """A grouped kernel made dense by replicating each group's kernel over every input channel instead of
    placing it block-diagonally (zeros outside the group), e.g. when porting to a framework without groups."""

    cause = "grouped_replicated"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.groups == 1 or spec.transposed:
            return NotApplicable("not a grouped (or depthwise) forward convolution")
        tiled = np.tile(ctx.kernel, (1,) * spec.rank + (spec.groups, 1))
        return [ctx.trial(f"a dense kernel with each group's {ctx.kernel.shape[-2]} input channel(s) replicated over "
                          f"all {spec.in_channels} (groups=1) instead of block-diagonal",
                          ctx.operands(kernel=tiled, groups=1))]


def _restrict_groups(kernel: np.ndarray, groups: int, new_groups: int, rank: int) -> np.ndarray:
    """A `groups`-grouped canonical forward kernel as a kernel of `new_groups` (a multiple of `groups`) keeping
    only its diagonal blocks: what a layer with too many groups reads from the same dense weights."""
    per_in = kernel.shape[-2]
    c_in, c_out = per_in * groups, kernel.shape[-1]
    dense = np.zeros((*kernel.shape[:rank], c_in, c_out))
    per_out = c_out // groups
    for g in range(groups):
        dense[..., g * per_in:(g + 1) * per_in, g * per_out:(g + 1) * per_out] = \
            kernel[..., :, g * per_out:(g + 1) * per_out]
    new_in, new_out = c_in // new_groups, c_out // new_groups
    out = np.zeros((*kernel.shape[:rank], new_in, c_out))
    for g in range(new_groups):
        out[..., :, g * new_out:(g + 1) * new_out] = dense[..., g * new_in:(g + 1) * new_in,
                                                           g * new_out:(g + 1) * new_out]
    return out


class GroupsHypothesis(Hypothesis):
    """Groups inferred wrongly: the candidate's layer has more groups than the reference's (e.g. a grouped or
    dense convolution taken for a depthwise one), so it keeps only the diagonal blocks of the kernel."""

    cause = "groups"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.transposed:
            return NotApplicable("groups of transposed convolutions are not inferred from a kernel shape")
        g = spec.groups
        c_in, c_out = spec.in_channels, spec.filters
        options = [h for h in range(g + 1, c_in + 1) if h % g == 0 and c_in % h == 0 and c_out % h == 0]
        declared = ctx.candidate_spec.groups
        if declared in options:
            options.remove(declared)
            options.insert(0, declared)
        if not options:
            return NotApplicable(f"no larger group count divides both {c_in} input and {c_out} output channels")
        trials = []
        for h in options:
            what = "depthwise" if h == c_in else f"groups={h}"
            source = " (the candidate's)" if h == declared else ""
            trials.append(ctx.trial(f"{what}{source} instead of groups={g}: only the diagonal blocks of the kernel "
                                    "kept", ctx.operands(kernel=_restrict_groups(ctx.kernel, g, h, spec.rank),
                                                         groups=h)))
        return trials


class TransposedInOutHypothesis(Hypothesis):
    """A transposed convolution's kernel with its in and out axes swapped: (k, in, out) where the layer reads
    (k, out, in) (Keras' Conv2DTranspose) or the reverse (PyTorch's ConvTranspose2d is (in, out/g, k, k))."""

    cause = "transposed_in_out"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if not ctx.spec.transposed:
            return NotApplicable("not a transposed convolution (weights_permuted covers a forward kernel's axes)")
        k = ctx.kernel
        per_out, c_in = k.shape[-2:]
        variants = []
        if per_out == c_in:
            variants.append(("the kernel's in and out axes swapped (transpose of the last two axes)",
                             k.swapaxes(-1, -2)))
        variants.append((f"the kernel's bytes read with in and out swapped ({c_in}, {per_out} as {per_out}, {c_in}, "
                         "reshaped, not transposed)",
                         np.ascontiguousarray(k).reshape(*k.shape[:-2], c_in, per_out).swapaxes(-1, -2).copy()))
        return _kernel_trials(ctx, variants, "swapping in and out leaves the kernel unchanged")


def _crop_trials(ctx: Context, options: list[tuple[Pads, str]], named_elsewhere: list[Pads] = ()) -> list[Trial]:
    """One trial per new set of crops; the first (most specific) name of a set is kept."""
    trials, seen = [], {ctx.spec.pads, *named_elsewhere}
    for crops, what in options:
        crops = tuple(tuple(c) for c in crops)
        if crops in seen:
            continue
        seen.add(crops)
        trials.append(ctx.trial(f"recomputed with crops {_fmt_pads(crops)} ({what})", ctx.operands(pads=crops)))
    return trials


class TransposedCroppingHypothesis(Hypothesis):
    """A transposed convolution cropped on the wrong side: e.g. kernel 3, stride 2, "same": TensorFlow crops
    (0, 1), PyTorch's padding=1, output_padding=1 crops (1, 0) (and Keras 3 on torch crops one pixel where
    TensorFlow crops none, keras PR #22876)."""

    cause = "transposed_cropping"

    def context_text(self, ctx: Context) -> str:
        if not ctx.spec.transposed:
            return ""
        return (f"reference crops {_fmt_pads(ctx.spec.pads)} (padding {ctx.spec.padding}), candidate "
                f"{_fmt_pads(ctx.candidate_spec.pads)} (padding {ctx.candidate_spec.padding})")

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if not ctx.spec.transposed:
            return NotApplicable("not a transposed convolution")
        crops, cand = ctx.spec.pads, ctx.candidate_spec.pads
        options = [(tuple((b, a) for a, b in crops), "the reference's crops mirrored: cropped on the wrong side")]
        for axis in range(ctx.rank) if ctx.rank > 1 else ():
            one = list(crops)
            one[axis] = (crops[axis][1], crops[axis][0])
            options.append((tuple(one), f"mirrored on the {AXIS_NAMES[ctx.rank][axis]} only"))
        if ctx.candidate_spec.transposed and len(cand) == ctx.rank:
            options += [(cand, "the candidate's crops"),
                        (tuple((b, a) for a, b in cand), "the candidate's crops mirrored")]
        # A set of crops that only moves the output padding is named output_padding.
        trials = _crop_trials(ctx, options, [tuple(tuple(c) for c in p) for p, _ in output_padding_crops(ctx)])
        return trials or NotApplicable("the crops are symmetric: mirroring them changes nothing")


def output_padding_crops(ctx: Context) -> list[tuple[Pads, str]]:
    """The crops of a transposed convolution with its output_padding missing, added, or at the start."""
    spec = ctx.spec
    if not spec.transposed:
        return []
    crops, own = spec.pads, spec.output_padding
    cand = ctx.candidate_spec.output_padding if ctx.candidate_spec.transposed else own
    options: list[tuple[Pads, str]] = []
    if any(own):
        options.append((tuple((b, a + op) for (b, a), op in zip(crops, own)), f"output_padding {tuple(own)} missing"))
        options.append((tuple((b - op, a + op) for (b, a), op in zip(crops, own)),
                        f"output_padding {tuple(own)} at the start instead of the end"))
    base = tuple((b, a + op) for (b, a), op in zip(crops, own))  # the crops without any output padding
    tries = [tuple(cand)] if tuple(cand) != tuple(own) else []
    tries += [tuple(op if i == axis else 0 for i in range(spec.rank)) for axis in range(spec.rank)
              for op in range(1, geometry.max_output_padding(spec.strides[axis], spec.dilation[axis]) + 1)]
    if spec.rank > 1:
        tries += [tuple(op for _ in range(spec.rank)) for op in
                  range(1, min(geometry.max_output_padding(s, d) for s, d in zip(spec.strides, spec.dilation)) + 1)]
    for ops in dict.fromkeys(tries):
        if ops == tuple(own):
            continue
        options.append((tuple((b, a - op) for (b, a), op in zip(base, ops)), f"output_padding {ops}"))
        options.append((tuple((b - op, a) for (b, a), op in zip(base, ops)), f"output_padding {ops} at the start"))
    return options


class OutputPaddingHypothesis(Hypothesis):
    """A transposed convolution's output_padding missing, added, or on the wrong side (at the start)."""

    cause = "output_padding"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if not ctx.spec.transposed:
            return NotApplicable("not a transposed convolution")
        trials = _crop_trials(ctx, output_padding_crops(ctx))
        return trials or NotApplicable("no other output padding to try")


class KernelNotFlippedHypothesis(Hypothesis):
    """A transposed convolution with its kernel not flipped: Flax's ConvTranspose without transpose_kernel=True
    correlates the dilated input with the kernel as given, where TensorFlow's and PyTorch's (the gradient of a
    convolution) use it rotated 180 degrees."""

    cause = "kernel_not_flipped"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        if not ctx.spec.transposed:
            return NotApplicable("not a transposed convolution (a forward kernel rotated 180 is kernel_rotated_180)")
        return _kernel_trials(ctx, [("the kernel rotated 180 degrees in every spatial axis (not flipped, as Flax's "
                                     "ConvTranspose computes without transpose_kernel=True)",
                                     ctx.kernel[_spatial_flip(ctx.rank)])], UNCHANGED_KERNEL)


class SameLowerHypothesis(Hypothesis):
    """ONNX's SAME_LOWER against TF's SAME (= SAME_UPPER): the same total pad with the odd one at the start
    instead of the end (onnxruntime#9370: a TF model converted with SAME_LOWER, or the reverse)."""

    cause = "same_lower"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.transposed:
            return NotApplicable("a transposed convolution crops rather than pads: see transposed_cropping")
        modes = {spec.padding.mode, ctx.candidate_spec.padding.mode}
        if not modes & {PaddingMode.SAME, PaddingMode.SAME_LOWER}:
            return NotApplicable("neither side pads 'same' or 'same_lower'")
        if PaddingMode.EXPLICIT in modes:
            # Explicit pads are compared as they are written (the padding cause); this cause is a framework or
            # converter placing SAME's odd pad on the other side than the spec says.
            return NotApplicable("one side gives its pads explicitly: see padding")
        upper, lower = (geometry.resolve_same(spec.spatial_shape, spec.kernel_size, spec.strides, spec.dilation,
                                              lower=low) for low in (False, True))
        if upper == lower:
            return NotApplicable("every axis pads an even total: SAME_LOWER and SAME (SAME_UPPER) pad alike")
        if spec.pads == lower:
            return [ctx.trial(f"recomputed with TF SAME's (SAME_UPPER's) pads {_fmt_pads(upper)}, the odd pad at the "
                              f"end, where the reference pads SAME_LOWER's {_fmt_pads(lower)}",
                              ctx.operands(pads=upper))]
        return [ctx.trial(f"recomputed with ONNX SAME_LOWER's pads {_fmt_pads(lower)}, the odd pad at the start, "
                          f"where TF SAME pads {_fmt_pads(upper)} (onnxruntime#9370)", ctx.operands(pads=lower))]


class OnnxPadsOrderHypothesis(Hypothesis):
    """Explicit pads written in the wrong order for ONNX: its `pads` is `[begin_1, ..., begin_n, end_1, ...,
    end_n]` ([t, l, b, r] in 2-D), read (or written) as (before, after) pairs per axis ([t, b, l, r])."""

    cause = "onnx_pads_order"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        if spec.transposed:
            return NotApplicable("a transposed convolution crops rather than pads: see transposed_cropping")
        if spec.rank == 1:
            return NotApplicable("one spatial axis: [begin, end] and (before, after) are the same order")
        pads = spec.pads
        pairs_flat = [p for pair in pads for p in pair]
        variants = [
            (geometry.from_onnx_pads(pairs_flat),
             f"(before, after) pairs {pairs_flat} read as ONNX's [begins..., ends...]"),
            (tuple((a, b) for a, b in zip(geometry.onnx_pads(pads)[::2], geometry.onnx_pads(pads)[1::2])),
             f"ONNX's [begins..., ends...] {geometry.onnx_pads(pads)} read as (before, after) pairs"),
        ]
        trials, seen = [], {pads}
        for option, what in variants:
            if option in seen:
                continue
            seen.add(option)
            trials.append(ctx.trial(f"recomputed with {_fmt_pads(option)}: {what}", ctx.operands(pads=option)))
        return trials or NotApplicable("these pads read the same in either order")


class SeparableBiasHypothesis(Hypothesis):
    """The outputs differ by a constant per output channel that is not the bias itself: a bias folded through a
    later linear step is missing, as when a separable convolution's depthwise bias is dropped (Keras'
    SeparableConv2D has none, so the pointwise kernel times the depthwise bias is lost)."""

    cause = "separable_bias"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        base, cand = ctx.base, ctx.candidate
        if base.shape != cand.shape:
            return NotApplicable("outputs have different shapes")
        positions = int(np.prod(base.shape[:-1]))
        if positions < 4:
            return NotApplicable("too few output positions per channel to tell an offset from any difference")
        with np.errstate(invalid="ignore", over="ignore"):
            diff = (cand - base).reshape(-1, base.shape[-1])
            if not np.isfinite(diff).all():
                return NotApplicable("the difference is not finite")
            offset = np.median(diff, axis=0)
            spread = float(np.abs(diff - offset).max())
        if float(np.abs(offset).max()) <= 10 * spread:
            return NotApplicable("no constant per-channel offset stands out above the rest of the difference")
        if ctx.bias is not None and np.any(ctx.bias):
            for sign, cause in ((-1, "bias_missing"), (1, "bias_doubled")):
                if np.allclose(offset, sign * ctx.bias, rtol=1e-3, atol=spread):
                    return NotApplicable(f"the offset is {'minus ' if sign < 0 else ''}the bias: see {cause}")
        bias = offset if ctx.bias is None else ctx.bias + offset
        top = int(np.argmax(np.abs(offset)))
        return [ctx.trial(f"a constant offset per output channel (up to {offset[top]:.3g} at channel {top}), not the "
                          "bias itself: a bias folded through a later linear step is missing, e.g. a separable "
                          "convolution's depthwise bias dropped (pointwise kernel x depthwise bias; Keras' "
                          "SeparableConv2D has no depthwise bias)", ctx.operands(bias=bias))]


class BiasAxisHypothesis(Hypothesis):
    """The bias added along the wrong axis of a channels-first output: its last spatial axis (W) taken for the
    channels because it has as many positions as there are filters, as Keras 3's TensorFlow `ops.add` does when
    it rewrites a broadcast add into `tf.nn.bias_add` and guesses NHWC from the last dimension."""

    cause = "bias_axis"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        skip = _zero_bias(ctx)
        if skip is not None:
            return skip
        width, channels = ctx.candidate.shape[-2], ctx.candidate.shape[-1]
        if width != channels or ctx.base.shape != ctx.candidate.shape:
            return NotApplicable("the output's last spatial axis is not as long as its channels")
        without = ctx.conv(ctx.operands(bias=None))
        output = without + ctx.bias.reshape(channels, 1)
        # The bound of the add: every bias value may be added anywhere, so the largest one bounds its rounding.
        operands = ctx.operands(bias=np.full(channels, float(np.abs(ctx.bias).max())))
        return [Trial("the bias added along the last spatial axis (columns of a channels-first output, as long as "
                      "the channels here) instead of the channels", output, operands)]


def _fmt_pads(pads: Pads) -> str:
    names = AXIS_NAMES.get(len(pads), tuple(f"axis {i}" for i in range(len(pads))))
    return ", ".join(f"{name} {tuple(p)}" for name, p in zip(names, pads))


# In report order. tf32 is handled by `diagnose` itself: it is a consistency check, not a recomputation.
HYPOTHESES: tuple[Hypothesis, ...] = (
    DtypeHypothesis(), OverflowHypothesis(), PaddingHypothesis(), KernelTransposedHypothesis(),
    KernelRotatedHypothesis(), WeightsPermutedHypothesis(), InputLayoutHypothesis(), InputTransposedHypothesis(),
    BiasMissingHypothesis(), BiasDoubledHypothesis(), OutputShiftedHypothesis(), OutputSizeHypothesis(),
    WeightsDifferHypothesis(),
    ConventionHypothesis(), EvenKernelSameHypothesis(), ChannelOrderHypothesis(), GroupedReplicatedHypothesis(),
    GroupsHypothesis(), TransposedInOutHypothesis(), TransposedCroppingHypothesis(), OutputPaddingHypothesis(),
    KernelNotFlippedHypothesis(), SameLowerHypothesis(), OnnxPadsOrderHypothesis(), SeparableBiasHypothesis(), BiasAxisHypothesis(),
)
