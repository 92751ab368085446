"""One small class per suspected cause of a mismatch. Each proposes recomputations of the float64
reference with the mistake applied to the reference side's input, kernel or settings; `diagnose`
confirms a recomputation when it matches the candidate under the same rounding model as the
verdict (the rounding bound of the candidate's arithmetic, computed for that recomputation).

Pure: arrays and specs in, trials out. A hypothesis that does not apply says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from convdiff.reference.convolution import conv2d_nhwc
from convdiff.reference.rounding import precision_of
from convdiff.spec.convspec import ConvSpec, Padding
from convdiff.spec.dtypes import np_dtype
from convdiff.spec.geometry import Pads, output_sizes
from convdiff.spec.layouts import WEIGHTS_LAYOUTS, from_hwio, to_hwio


@dataclass(frozen=True)
class Operands:
    """What a recomputation convolved: the rounding bound of the trial is built from these."""

    x: np.ndarray
    kernel: np.ndarray
    pads: Pads
    bias: np.ndarray | None


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

    def operands(self, x: np.ndarray | None = None, kernel: np.ndarray | None = None, pads: Pads | None = None,
                 bias: np.ndarray | None | str = "same") -> Operands:
        return Operands(self.x if x is None else x, self.kernel if kernel is None else kernel,
                        self.spec.pads if pads is None else pads, self.bias if isinstance(bias, str) else bias)

    def conv(self, operands: Operands) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return conv2d_nhwc(operands.x, operands.kernel, self.spec.strides, operands.pads, self.spec.dilation,
                               operands.bias)

    def trial(self, detail: str, operands: Operands, precision: str | None = None) -> Trial:
        spec = self.spec
        if min(output_sizes(operands.x.shape[1:3], operands.pads, operands.kernel.shape[:2], spec.strides,
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
                   empty: str) -> list[Trial] | NotApplicable:
    """One trial per mistaken kernel; a mistake that leaves the kernel as it was explains nothing."""
    trials = [ctx.trial(detail, ctx.operands(kernel=kernel)) for detail, kernel in variants
              if not np.array_equal(kernel, ctx.kernel)]
    return trials or NotApplicable(empty)


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


class PaddingHypothesis(Hypothesis):
    """The candidate's pads, TF SAME's, either side's mirrored, symmetric (k-1)//2 and k//2, VALID."""

    cause = "padding"

    def context_text(self, ctx: Context) -> str:
        return (f"reference pads {_fmt_pads(ctx.spec.pads)} (padding {ctx.spec.padding}), "
                f"candidate {_fmt_pads(ctx.candidate_spec.pads)} (padding {ctx.candidate_spec.padding})")

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        spec = ctx.spec
        (t, b), (l, r) = spec.pads
        (ct, cb), (cl, cr) = ctx.candidate_spec.pads
        kh, kw = spec.dilated_kernel
        options: list[tuple[Pads, str]] = [
            (ctx.candidate_spec.pads, "the candidate's pads"),
            (Padding.same().resolve(spec.spatial_shape, spec.kernel_size, spec.strides, spec.dilation),
             "TF SAME (the extra row/column at the bottom/right)"),
            (((b, t), (r, l)), "the reference's pads mirrored (the extra padding on the other side)"),
            (((cb, ct), (cr, cl)), "the candidate's pads mirrored"),
            ((((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2), "symmetric pads (k-1)//2"),
            (((kh // 2,) * 2, (kw // 2,) * 2), "symmetric pads k//2"),
            (((0, 0), (0, 0)), "no padding (VALID)"),
        ]
        trials, seen = [], {spec.pads}
        for pads, what in options:
            pads = tuple(tuple(p) for p in pads)
            if pads in seen:
                continue  # the first (most specific) name of a pad set is kept
            seen.add(pads)
            trials.append(ctx.trial(f"recomputed with {_fmt_pads(pads)} ({what})", ctx.operands(pads=pads)))
        return trials or NotApplicable("no other padding to try")


class KernelTransposedHypothesis(Hypothesis):
    cause = "kernel_transposed_hw"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _kernel_trials(ctx, [(
            "kernel H and W swapped (transpose(1, 0, 2, 3), as a bare np.transpose of the spatial axes does)",
            ctx.kernel.transpose(1, 0, 2, 3))], UNCHANGED_KERNEL)


class KernelRotatedHypothesis(Hypothesis):
    cause = "kernel_rotated_180"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _kernel_trials(ctx, [("kernel rotated 180 degrees (true convolution instead of cross-correlation)",
                                     ctx.kernel[::-1, ::-1])], UNCHANGED_KERNEL)


class WeightsPermutedHypothesis(Hypothesis):
    """Every other transpose of the 4-D weights that keeps their shape, and weights reshaped, not transposed."""

    cause = "weights_permuted"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        return _kernel_trials(ctx, self._variants(ctx.kernel),
                              "no other permutation or reinterpretation of the 4-D weights keeps their shape and "
                              "changes their values")

    @staticmethod
    def _variants(k: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        for perm in itertools.permutations(range(4)):
            if perm in ((0, 1, 2, 3), (1, 0, 2, 3)) or tuple(k.shape[p] for p in perm) != k.shape:
                continue
            yield f"kernel transpose{perm}", k.transpose(perm)
        for layout in WEIGHTS_LAYOUTS[1:]:
            stored = from_hwio(k, layout)[0]
            yield f"{layout} weights reshaped (not transposed) to HWIO", np.ascontiguousarray(stored).reshape(k.shape)
            as_layout = np.ascontiguousarray(k).reshape(stored.shape)
            yield f"HWIO weights read as {layout} and converted", to_hwio(as_layout, layout)[0]


class InputLayoutHypothesis(Hypothesis):
    cause = "input_layout"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        n, h, w, c = ctx.x.shape
        if c == 1:
            return NotApplicable("the input has one channel: NCHW and NHWC read the same")
        variants = [("NCHW input read as NHWC (reshaped, not transposed)",
                     np.ascontiguousarray(ctx.x.transpose(0, 3, 1, 2)).reshape(ctx.x.shape)),
                    ("NHWC input read as NCHW and converted",
                     np.ascontiguousarray(ctx.x).reshape(n, c, h, w).transpose(0, 2, 3, 1))]
        trials = [ctx.trial(detail, ctx.operands(x=x)) for detail, x in variants
                  if not np.array_equal(x, ctx.x)]  # a constant input reads the same in any layout
        return trials or NotApplicable("the input is unchanged by a layout mix-up (a constant input)")


class InputTransposedHypothesis(Hypothesis):
    """The input read with H and W swapped (an NCHW tensor permuted with (0, 3, 2, 1) instead of
    (0, 2, 3, 1)): the convolution then runs on the W x H image, with the padding that shape gets."""

    cause = "input_transposed_hw"

    def context_text(self, ctx: Context) -> str:
        h, w = ctx.x.shape[1:3]
        if h == w:
            return ""
        (rh, rw), (ch, cw) = ctx.base.shape[1:3], ctx.candidate.shape[1:3]
        if (rh, rw) == (cw, ch) and rh != rw:
            return (f"the outputs' rows and columns are swapped (reference {rh}x{rw}, candidate {ch}x{cw}): a shape "
                    "mismatch, as reading the input with H and W swapped gives")
        return ""

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        swapped = np.ascontiguousarray(ctx.x.transpose(0, 2, 1, 3))
        if swapped.shape == ctx.x.shape and np.array_equal(swapped, ctx.x):
            return NotApplicable("the input is symmetric in H and W: swapping them changes nothing")
        spec = ctx.spec
        pads = spec.padding.resolve(swapped.shape[1:3], spec.kernel_size, spec.strides, spec.dilation)
        if min(output_sizes(swapped.shape[1:3], pads, spec.kernel_size, spec.strides, spec.dilation)) < 1:
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
    """The output shifted by one position (rows, columns or both), compared on the overlap."""

    cause = "output_shifted"

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        base, cand = ctx.base, ctx.candidate
        if base.shape != cand.shape:
            return NotApplicable("outputs have different shapes")
        h, w = base.shape[1:3]
        trials = []
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)):
            if h - abs(dy) < 2 or w - abs(dx) < 2:
                continue
            rows = slice(max(0, -dy), h - max(0, dy))
            cols = slice(max(0, -dx), w - max(0, dx))
            source = (slice(None), slice(rows.start + dy, rows.stop + dy), slice(cols.start + dx, cols.stop + dx))
            what = (f"candidate[y, x] = reference[y{dy:+d}, x{dx:+d}] on the {rows.stop - rows.start}x"
                    f"{cols.stop - cols.start} overlap (output shifted by one position, e.g. a stride offset)")
            trials.append(Trial(what, base[source], ctx.operands(), cand[:, rows, cols], source))
        return trials or NotApplicable("outputs are too small to shift")


class OutputSizeHypothesis(Hypothesis):
    """Different output shapes: the common region, top-left or bottom-right aligned (floor vs ceil)."""

    cause = "output_size"
    structural = False

    def trials(self, ctx: Context) -> list[Trial] | NotApplicable:
        base, cand = ctx.base, ctx.candidate
        if base.shape == cand.shape:
            return NotApplicable("both outputs have the same shape")
        if base.ndim != 4 or cand.ndim != 4 or (base.shape[0], base.shape[3]) != (cand.shape[0], cand.shape[3]):
            return NotApplicable("the outputs differ in batch or channels, not in rows and columns")
        (rh, rw), (ch, cw) = base.shape[1:3], cand.shape[1:3]
        if (rh, rw) == (cw, ch):
            return NotApplicable(f"the outputs' rows and columns are swapped (reference {rh}x{rw}, candidate "
                                 f"{ch}x{cw}), not cut short: see input_transposed_hw")
        h, w = min(rh, ch), min(rw, cw)
        why = ("floor vs ceil output size" if abs(rh - ch) <= 1 and abs(rw - cw) <= 1
               else "more than one row or column apart: not floor vs ceil rounding of the output size")
        extra = f"reference {rh}x{rw}, candidate {ch}x{cw} ({why})"
        top_left = (slice(None), slice(0, h), slice(0, w))
        bottom_right = (slice(None), slice(rh - h, rh), slice(rw - w, rw))
        return [
            Trial(f"{extra}; the common {h}x{w} region compared top-left aligned", base[top_left], ctx.operands(),
                  cand[:, :h, :w], top_left),
            Trial(f"{extra}; the common {h}x{w} region compared bottom-right aligned", base[bottom_right],
                  ctx.operands(), cand[:, ch - h:, cw - w:], bottom_right),
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


def _fmt_pads(pads: Pads) -> str:
    return f"rows {tuple(pads[0])}, columns {tuple(pads[1])}"


# In report order. tf32 is handled by `diagnose` itself: it is a consistency check, not a recomputation.
HYPOTHESES: tuple[Hypothesis, ...] = (
    DtypeHypothesis(), OverflowHypothesis(), PaddingHypothesis(), KernelTransposedHypothesis(),
    KernelRotatedHypothesis(), WeightsPermutedHypothesis(), InputLayoutHypothesis(), InputTransposedHypothesis(),
    BiasMissingHypothesis(), BiasDoubledHypothesis(), OutputShiftedHypothesis(), OutputSizeHypothesis(),
    WeightsDifferHypothesis(),
)
