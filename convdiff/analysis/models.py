"""Two models, layer by layer: for every paired convolution layer the error it ADDS (the candidate layer
recomputed in float64 from the reference's captured input, teacher-forced, against the reference layer's
output) and the error it INHERITS (the candidate's captured output against the reference's), each as a
fraction of that layer's rounding bound; then the first layer, in the reference's order, whose added error
exceeds its bound, diagnosed with the single-layer hypotheses on its captured input.

A layer whose inherited error is large while its added error is within the bound amplifies what earlier
layers did; it is not a cause. The bound is the one of two computations of the reference layer at the
reference's own precision (`convdiff.reference.rounding`): a candidate layer that computes at a lower
precision adds more than that, and is named for it.

Pure: captured arrays and layers in, frozen results out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from convdiff.analysis.diagnose import Finding, diagnose
from convdiff.analysis.pairing import LayerPair
from convdiff.backends.models.types import Captured, ModelLayer
from convdiff.compare import Comparison, Rule, Tolerance, compare_arrays
from convdiff.data.modelfiles.configuration import spec_fields
from convdiff.data.modelfiles.types import fmt_dims
from convdiff.errors import BadInputError
from convdiff.reference.convolution import convolve
from convdiff.reference.rounding import Arithmetic, BoundForm, rounding_bound
from convdiff.spec.convspec import ConvSpec, Padding
from convdiff.spec.dtypes import np_dtype

PRECISIONS = ("float64", "float32", "bfloat16", "float16")


class LayerVerdict(StrEnum):
    WITHIN = "within"
    """The layer adds no more than its rounding bound, and what it inherits is within it too."""
    AMPLIFIES = "amplifies"
    """The layer adds no more than its bound, but its output inherits more from earlier layers."""
    DIVERGES = "diverges"
    """The layer itself adds more than its rounding bound."""
    NOT_MEASURED = "not measured"
    """The added error cannot be measured (`LayerResult.note` says why)."""


@dataclass(frozen=True)
class LayerResult:
    """One paired layer."""

    pair: LayerPair
    verdict: LayerVerdict
    added: Comparison | None = field(repr=False)
    """Teacher-forced candidate (float64 from the reference's input) against the reference's output, under the bound."""
    propagated: Comparison | None = field(repr=False)
    """The candidate's captured output against the reference's, under the same bound."""
    reference_dtype: str
    candidate_dtype: str
    note: str = ""
    """Why the added error was not measured, or what was assumed (a pad folded in, an activation applied)."""
    position: int = 0
    """Index in the reference's execution order."""

    @property
    def added_ratio(self) -> float | None:
        return _ratio(self.added)

    @property
    def propagated_ratio(self) -> float | None:
        return _ratio(self.propagated)


@dataclass(frozen=True)
class FirstDivergence:
    """The first layer whose own error exceeds its bound, and why."""

    reference_layer: str
    candidate_layer: str
    added_error_ratio: float
    diagnosis: tuple[Finding, ...] = field(repr=False)
    cause: str | None
    """The confirmed cause named (the most specific one), or None when no hypothesis is confirmed."""
    line: str
    """One line: the layers, the cause confirmed, the fix in the candidate's terms."""


@dataclass(frozen=True)
class _Operands:
    """A layer's convolution as convdiff recomputes it."""

    spec: ConvSpec
    x: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str
    output: np.ndarray | None = None
    """The candidate's teacher-forced recomputation before its activation, stored in its dtype (widened)."""


def compare_layer(position: int, pair: LayerPair, reference: ModelLayer, candidate: ModelLayer,
                  ref_captured: Captured, cand_captured: Captured, form: BoundForm = BoundForm.PROBABILISTIC,
                  equal_nan: bool = False, top_k: int = 3) -> tuple[LayerResult, _Operands | None, _Operands | None]:
    """The added and the propagated error of one paired layer.

    Returns:
        The result, and the reference's and the teacher-forced candidate's operands (for the diagnosis);
        None where the layer could not be recomputed.
    """
    ref_dtype, cand_dtype = _precision(ref_captured.output), _precision(cand_captured.output)

    def unmeasured(why: str) -> tuple[LayerResult, None, None]:
        return LayerResult(pair, LayerVerdict.NOT_MEASURED, None, None, ref_dtype, cand_dtype, why, position), None, None

    x_ref = np.asarray(ref_captured.input)
    try:
        ref_spec = layer_spec(reference, x_ref.shape, ref_dtype)
    except BadInputError as exc:
        return unmeasured(f"the reference layer cannot be recomputed: {exc}")
    y_ref = np.asarray(ref_captured.output)
    exact_shape = _output_shape(ref_spec)
    notes: list[str] = []
    if tuple(y_ref.shape) != exact_shape:
        # A transposed layer whose module crops its own output (as a candidate's may): folded in the same way.
        ref_crops = _inner_crops(ref_spec, x_ref, reference, y_ref) if ref_spec.transposed else None
        if ref_crops is None:
            return unmeasured(f"the reference layer's output {fmt_dims(y_ref.shape)} is not what its settings give "
                              f"({fmt_dims(exact_shape)}): a layer convdiff reads differently from its framework")
        ref_spec = layer_spec(reference, x_ref.shape, ref_dtype, extra_crops=ref_crops)
        notes.append(f"the reference crops its output by {_fmt_pads(ref_crops)} inside the layer: folded into "
                     "its crops")
    x_cand = np.asarray(cand_captured.input)
    pads = None
    if x_cand.shape != x_ref.shape:
        pads = _folded_pads(x_ref, x_cand)
        if pads is None:
            return unmeasured(f"the candidate layer receives {fmt_dims(x_cand.shape)} where the reference's receives "
                              f"{fmt_dims(x_ref.shape)}, and not as a zero-padded copy of it")
        notes.append(f"the candidate pads its input by {_fmt_pads(pads)} before the layer: folded into its padding")
    crops = None
    try:
        own = layer_spec(candidate, x_cand.shape, cand_dtype)
    except BadInputError as exc:
        return unmeasured(f"the candidate layer cannot be recomputed: {exc}")
    y_own = np.asarray(cand_captured.output)
    if tuple(y_own.shape) != tuple(own.output_shape):
        crops = _inner_crops(own, x_cand, candidate, y_own) if own.transposed else None
        if crops is None:
            return unmeasured(f"the candidate layer outputs {fmt_dims(y_own.shape)} where its settings give "
                              f"{fmt_dims(own.output_shape)}: it does more than its convolution")
        notes.append(f"the candidate crops its output by {_fmt_pads(crops)} inside the layer: folded into its crops")
    try:
        cand_spec = layer_spec(candidate, x_ref.shape, cand_dtype, extra_pads=pads, extra_crops=crops)
    except BadInputError as exc:
        return unmeasured(f"the candidate layer cannot be recomputed on the reference's input: {exc}")
    # A framework that fuses the activation into the layer (Keras activation=, TFLite's fused ReLU) is compared
    # after it; the side that does not fuse it is taken to apply it next, and gets it applied here.
    activation = candidate.activation if candidate.activation != "linear" else reference.activation
    for side, fused, other in (("reference", reference, candidate), ("candidate", candidate, reference)):
        if fused.activation != "linear" and other.activation == "linear":
            notes.append(f"the {side} applies {fused.activation} inside the layer; applied to the other side's "
                         "output too (its next step)")
    y_ref = apply_activation(y_ref, activation) if reference.activation == "linear" and activation != "linear" \
        else y_ref
    x_stored = np.asarray(x_ref).astype(np_dtype(cand_dtype) if cand_dtype != "float64" else np.float64)
    ref_ops = _Operands(ref_spec, x_ref, np.asarray(reference.kernel), reference.bias, reference.activation)
    cand_ops = _Operands(cand_spec, x_stored, np.asarray(candidate.kernel), candidate.bias, activation)
    with np.errstate(over="ignore", invalid="ignore"):
        z64 = convolve(x_stored, cand_ops.kernel, cand_spec, cand_ops.bias)
        # The same operands and settings: the candidate's float64 recomputation is the reference's exact output,
        # which the bound needs (one float64 convolution fewer per layer in the common case).
        exact = z64 if _same_operands(ref_ops, cand_ops) else None
        z_cand = _stored(z64, cand_dtype)
        del z64
        arithmetic = Arithmetic.computing_in(ref_dtype)
        bound, model = rounding_bound(x_ref, ref_ops.kernel, ref_spec, (arithmetic, arithmetic), form, reference.bias,
                                      exact=exact)
        rule = Rule.bound(model, Tolerance(0.0, 0.0, equal_nan))
        added = compare_arrays(y_ref, apply_activation(z_cand, activation), rule=rule,
                               bound=bound if z_cand.shape == y_ref.shape else None, top_k=top_k)
        y_cand = np.asarray(cand_captured.output)
        if candidate.activation == "linear" and activation != "linear":
            y_cand = apply_activation(y_cand, activation)
        propagated = compare_arrays(y_ref, y_cand, rule=rule, bound=bound if y_cand.shape == y_ref.shape else None,
                                    top_k=top_k)
    if not added:
        verdict = LayerVerdict.DIVERGES
    elif not propagated:
        verdict = LayerVerdict.AMPLIFIES
    else:
        verdict = LayerVerdict.WITHIN
    result = LayerResult(pair, verdict, added, propagated, ref_dtype, cand_dtype, "; ".join(notes), position)
    return result, ref_ops, _Operands(cand_spec, x_stored, cand_ops.kernel, cand_ops.bias, activation, z_cand)


def diagnose_divergence(result: LayerResult, reference: _Operands, candidate: _Operands, candidate_layer: ModelLayer,
                        candidate_framework: str, form: BoundForm = BoundForm.PROBABILISTIC) -> FirstDivergence:
    """Run the single-layer diagnosis on the first diverging layer: the reference's captured input and both
    layers' weights and settings; the candidate output is the teacher-forced recomputation before its
    activation, stored in the candidate's dtype."""
    z = candidate.output
    if z is None:
        with np.errstate(over="ignore", invalid="ignore"):
            z = _stored(convolve(candidate.x, candidate.kernel, candidate.spec, candidate.bias), result.candidate_dtype)
    ratio = result.added_ratio if result.added_ratio is not None else math.inf
    findings = diagnose(reference.spec, candidate.spec, reference.x, reference.kernel, reference.bias,
                        z.astype(np_dtype(result.candidate_dtype)) if result.candidate_dtype != "float64" else z,
                        reference_dtype=result.reference_dtype, candidate_dtype=result.candidate_dtype,
                        candidate_kernel=candidate.kernel, candidate_bias=candidate.bias, form=form)
    confirmed = [f for f in findings if f.confirmed]
    if not confirmed and "linear" not in (reference.activation, candidate.activation) \
            and reference.activation != candidate.activation:
        line = (f"{result.pair.reference} -> {result.pair.candidate}: the candidate applies {candidate.activation} "
                f"where the reference applies {reference.activation} after the convolution: use "
                f"{reference.activation}")
        return FirstDivergence(result.pair.reference, result.pair.candidate, ratio, findings, "activation", line)
    cause = min(confirmed, key=lambda f: _PRIORITY.index(f.cause) if f.cause in _PRIORITY else len(_PRIORITY),
                default=None)
    line = _one_line(result, cause, confirmed, reference, candidate, candidate_layer, candidate_framework, ratio)
    return FirstDivergence(result.pair.reference, result.pair.candidate, ratio, findings,
                           None if cause is None else cause.cause, line)


# The most specific cause names the mistake: a padding, a kernel's arrangement or a bias before a precision,
# and "the weights differ" (true of every kernel mistake) last.
_PRIORITY = ("padding", "even_kernel_same", "output_size", "output_shifted", "kernel_transposed_hw",
             "kernel_rotated_180", "convention", "channel_order", "transposed_in_out", "transposed_cropping",
             "groups", "grouped_replicated", "bias_missing", "bias_doubled", "input_layout", "input_transposed_hw",
             "weights_permuted", "dtype", "tf32", "overflow", "weights_differ")


def layer_spec(layer: ModelLayer, input_shape: tuple[int, ...], dtype: str,
               extra_pads: tuple[tuple[int, int], ...] | None = None,
               extra_crops: tuple[tuple[int, int], ...] | None = None) -> ConvSpec:
    """The layer's convolution as a spec on a channels-last input of `input_shape`.

    Args:
        extra_pads: zeros the model adds before the layer (a ZeroPad2d, an ONNX Pad node), folded into its pads.
        extra_crops: what a transposed layer crops from its own output beyond its settings (a module whose
            forward crops), folded into its crops.
    """
    fields = spec_fields(layer.record, layer.name, tuple(input_shape))
    fields.pop("data_format", None)  # the arrays here are channels-last whatever the layer computes in
    fields.pop("use_bias", None)
    spec = ConvSpec(input_shape=tuple(input_shape), dtype=dtype if dtype in PRECISIONS else "float32",
                    use_bias=layer.bias is not None, **fields)
    if extra_pads is None and extra_crops is None:
        return spec
    if spec.transposed and extra_pads is not None:
        raise BadInputError("a transposed layer whose input the candidate pads first")
    folded = tuple((a + pa, b + pb) for (a, b), (pa, pb) in zip(spec.pads, extra_pads or extra_crops))
    fields["padding"] = Padding.from_pairs(folded)
    return ConvSpec(input_shape=tuple(input_shape), dtype=spec.dtype, use_bias=layer.bias is not None, **fields)


def apply_activation(values: np.ndarray, name: str) -> np.ndarray:
    """A layer's activation in float64 (each of these moves two values closer or keeps their distance)."""
    v = np.asarray(values, dtype=np.float64)
    if name == "linear":
        return v
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "relu":
            return np.maximum(v, 0.0)
        if name == "relu6":
            return np.clip(v, 0.0, 6.0)
        if name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-v))
        if name == "tanh":
            return np.tanh(v)
        if name == "elu":
            return np.where(v > 0, v, np.expm1(np.minimum(v, 0.0)))
        if name == "softplus":
            return np.logaddexp(0.0, v)
        if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
            return np.clip(v + 3.0, 0.0, 6.0) / 6.0
        if name == "leaky_relu":  # Keras 3's default negative slope
            return np.where(v >= 0, v, 0.2 * v)
    raise BadInputError(f"no recomputation of activation '{name}'")


def _ratio(comparison: Comparison | None) -> float | None:
    if comparison is None:
        return None
    if not comparison.shape_match:
        return math.inf
    return float(comparison.max_ratio)


def _precision(values: np.ndarray) -> str:
    name = np.asarray(values).dtype.name
    return name if name in PRECISIONS else "float32"


def _stored(values: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 recomputation as a layer computing in `dtype` stores it (then widened back)."""
    if dtype == "float64":
        return values
    return values.astype(np_dtype(dtype)).astype(np.float64)


def _same_operands(a: _Operands, b: _Operands) -> bool:
    return (a.spec.pads == b.spec.pads and a.spec.strides == b.spec.strides and a.spec.dilation == b.spec.dilation
            and a.spec.groups == b.spec.groups and a.spec.transposed == b.spec.transposed
            and a.spec.output_shape == b.spec.output_shape and a.spec.convention == b.spec.convention
            and a.kernel.shape == b.kernel.shape and np.array_equal(a.kernel, b.kernel)
            and ((a.bias is None) == (b.bias is None)) and (a.bias is None or np.array_equal(a.bias, b.bias))
            and np.array_equal(a.x, b.x))


def _output_shape(spec: ConvSpec) -> tuple[int, ...]:
    return tuple(spec.output_shape)


def _folded_pads(x_ref: np.ndarray, x_cand: np.ndarray) -> tuple[tuple[int, int], ...] | None:
    """The zeros the candidate added around the reference's input before the layer, if that is what it did."""
    nonzero = int(np.count_nonzero(x_cand))
    # A window is the reference's input only where everything outside it is a zero.
    found = _best_window(x_cand, x_ref, keep=lambda interior: int(np.count_nonzero(interior)) == nonzero)
    if found is None or found[1] > 0.25 * max(_finite_max_abs(x_ref), np.finfo(np.float32).tiny):
        return None
    return found[0]


def _inner_crops(spec: ConvSpec, x: np.ndarray, layer: ModelLayer, output: np.ndarray
                 ) -> tuple[tuple[int, int], ...] | None:
    """What a transposed layer cropped from the output its settings give, found on its own input and output."""
    full = tuple(spec.output_shape)
    if output.ndim != len(full) or output.shape[0] != full[0] or output.shape[-1] != full[-1]:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        z = convolve(np.asarray(x, dtype=np.float64), np.asarray(layer.kernel), spec, layer.bias)
    found = _best_window(z, output)
    # The layer's own input and output: they agree to the rounding of its precision, far below 1%.
    if found is None or not found[1] <= 1e-2 * max(_finite_max_abs(z), np.finfo(np.float32).tiny):
        return None
    return found[0]


def _best_window(big: np.ndarray, small: np.ndarray, keep=None):  # noqa: ANN001, ANN202
    """The spatial window of `big` closest to `small` (same batch and channels): ((before, after) per axis,
    max |difference|), or None when the shapes do not nest (or no window passes `keep`)."""
    if big.ndim != small.ndim or big.shape[0] != small.shape[0] or big.shape[-1] != small.shape[-1]:
        return None
    extra = [b - s for b, s in zip(big.shape[1:-1], small.shape[1:-1])]
    if any(e < 0 for e in extra) or math.prod(e + 1 for e in extra) > 4096:
        return None
    best, best_diff = None, math.inf
    for befores in itertools.product(*(range(e + 1) for e in extra)):
        window = big[(slice(None), *(slice(b, b + n) for b, n in zip(befores, small.shape[1:-1])), slice(None))]
        if keep is not None and not keep(window):
            continue
        diff = _max_gap(window, small)
        if diff < best_diff:
            best, best_diff = befores, diff
    if best is None:
        return None
    return tuple((b, e - b) for b, e in zip(best, extra)), best_diff


def _finite_max_abs(values: np.ndarray) -> float:
    finite = np.abs(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def _max_gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |a - b|, NaN and infinities matched by position (inf when their positions differ): the
    captured values of an input that holds NaN or inf still locate a pad or a crop."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.abs(a - b))
    return math.inf if np.isnan(gap).any() else float(gap.max())


def _fmt_pads(pads: tuple[tuple[int, int], ...]) -> str:
    if len(set(pads)) == 1:
        return str(tuple(pads[0]))
    return ", ".join(str(tuple(p)) for p in pads)



# -- the one line ------------------------------------------------------------------------------------------

def _one_line(result: LayerResult, cause: Finding | None, confirmed: list[Finding], reference: _Operands,
              candidate: _Operands, layer: ModelLayer, framework: str, ratio: float) -> str:
    where = f"{result.pair.reference} -> {result.pair.candidate}"
    added = result.added
    if added is not None and ratio <= 1 and (added.reference_nan or added.candidate_nan):
        return (f"{where}: NaN at {max(added.reference_nan, added.candidate_nan):,} positions of the layer's output "
                f"({'at the same positions on both sides' if added.nan_positions_agree else 'at different positions'}"
                "), and NaN equals nothing unless --equal-nan is given; elsewhere it adds "
                f"{_times(ratio)} its rounding bound")
    if cause is None:
        return (f"{where}: adds {_times(ratio)} its rounding bound; no single cause confirmed by recomputing "
                "(see the diagnosis)")
    same = [f.cause for f in confirmed if f is not cause and f.cause in cause.same_as]
    also = f" (indistinguishable here from: {', '.join(same)})" if same else ""
    return f"{where}: {_fix(cause, reference, candidate, layer, framework, result)}{also}"


def _fix(cause: Finding, reference: _Operands, candidate: _Operands, layer: ModelLayer, framework: str,
         result: LayerResult) -> str:
    ref, cand = reference.spec, candidate.spec
    name = cause.cause
    if name in ("padding", "even_kernel_same"):
        why = ""
        if ref.padding.mode.value == "same":
            steps = [s for s in ref.strides if s > 1]
            why = " (TF SAME" + (f" at stride {steps[0]}" if steps else "") + ")"
        folded = " (with the zeros it adds before the layer)" if "folded into its padding" in result.note else ""
        return (f"candidate pads {_fmt_pads(cand.pads)}{folded} where the reference pads {_fmt_pads(ref.pads)}{why}: "
                f"{_pad_fix(ref.pads, framework, ref.padding.mode.value == 'same')}")
    if name in ("output_shifted", "transposed_cropping", "output_size") and ref.transposed and ref.pads != cand.pads:
        crop = _fmt_pads(ref.pads)
        how = ""
        if framework == "PyTorch" and len(ref.pads) == 2:
            (t, b), (l, r) = ref.pads
            rows = f"{t}:{'-' + str(b) if b else ''}"
            cols = f"{l}:{'-' + str(r) if r else ''}"
            how = f": padding=0, output_padding=0, then keep y[..., {rows}, {cols}]"
        elif framework == "ONNX":
            how = f": pads={[p[0] for p in ref.pads] + [p[1] for p in ref.pads]} on the node"
        return (f"the candidate's transposed layer crops {_fmt_pads(cand.pads)} where the reference crops {crop}"
                f"{' (TF SAME)' if ref.padding.mode.value == 'same' else ''}: crop {crop}{how}")
    if name == "kernel_transposed_hw":
        return ("the candidate's kernel has H and W swapped: " +
                ("copy a Keras kernel into PyTorch as kernel.transpose(3, 2, 0, 1) (HWIO to OIHW; HWOI to IOHW)"
                 if framework == "PyTorch" else "swap the kernel's H and W axes back when copying it"))
    if name == "kernel_rotated_180":
        return "the candidate's kernel is rotated 180 degrees: flip its spatial axes back when copying it"
    if name == "channel_order":
        g = ref.groups
        per = ref.filters // g
        return (f"the candidate numbers the depthwise outputs m-major (m * {g} + c) where the reference numbers them "
                f"c-major (c * {per} + m): " +
                (f"copy a Keras (k, k, C, M) kernel as kernel.transpose(2, 3, 0, 1).reshape({g * per}, 1, k, k)"
                 if framework in ("PyTorch", "ONNX") else "reorder the kernel's output channels c * M + m"))
    if name == "bias_missing":
        n = 0 if reference.bias is None else int(np.asarray(reference.bias).size)
        return (f"the candidate adds no bias: give layer '{layer.name}' the reference's bias ({n} values"
                + (", bias=True)" if framework == "PyTorch" else ")"))
    if name == "bias_doubled":
        return "the candidate adds the bias twice: drop the extra add"
    if name == "dtype":
        return (f"the candidate computes in {result.candidate_dtype} where the reference computes in "
                f"{result.reference_dtype}: run layer '{layer.name}' in {result.reference_dtype}")
    if name == "weights_differ" and reference.kernel.shape == candidate.kernel.shape and np.array_equal(
            reference.kernel, candidate.kernel):
        if reference.bias is None or not np.any(reference.bias):
            return (f"the candidate adds a bias the reference does not have: give layer '{layer.name}' no bias"
                    + (" (bias=False)" if framework == "PyTorch" else ""))
        return ("the candidate's bias is not the reference's (the kernels are identical): copy the reference "
                "layer's bias")
    if name == "weights_differ":
        return ("the candidate's kernel is not the reference's" +
                (" (paired by order and shape)" if result.pair.paired_by.value != "weights" else "") +
                ": copy the reference layer's weights")
    detail = cause.detail.rstrip(".")
    return f"{name.replace('_', ' ')}: {detail}"


def _pad_fix(pads: tuple[tuple[int, int], ...], framework: str, same: bool = False) -> str:
    if framework == "PyTorch" and len(pads) == 2:
        (t, b), (l, r) = pads
        return f"pad {_fmt_pads(pads)} explicitly: nn.ZeroPad2d(({l}, {r}, {t}, {b})) before the conv, padding=0"
    if framework == "ONNX":
        onnx = [p[0] for p in pads] + [p[1] for p in pads]
        return f"pad {_fmt_pads(pads)} explicitly: pads={onnx} on the node" + (" (or auto_pad SAME_UPPER)" if same else "")
    return f"pad {_fmt_pads(pads)} explicitly"


def _times(ratio: float) -> str:
    if math.isinf(ratio):
        return "infinitely more than"
    return f"{ratio:.3g}x"
