"""Calibration of `convdiff.compare_models`: false alarms on correct ports, misses of real porting mistakes.

    python benchmarks/calibrate_models.py [--quick] [--no-mobilenet]

Measured on real frameworks (Keras 3 on TensorFlow, PyTorch CPU, ONNX Runtime CPU); nothing is downloaded.

False alarms. The small CNN (`convdiff.suites.builtin.small_cnn.keras_cnn(seed, input_hw)`) against its
correct hand-written ports (torch_port, onnx_port, keras_port), over seeds (20; --quick 5), inputs (standard
normal, uniform [0, 1), normal * 1e-3, normal * 1e3, all zeros, a photo-like image / 255), spatial sizes
15x15, 16x16, 17x17, 32x32 and batches 1 and 3. A false alarm is a case with any layer "diverges" or a first
divergence; a case whose final outputs fail their elementwise comparison (`bool(result)` False for that
reason alone) is counted apart. Then MobileNetV2 (keras.applications, weights=None, 96x96; 224x224 in full
mode; seeded BatchNormalization) against its node-by-node ONNX export (benchmarks/keras_onnx.py), 52 layers.

Misses. Every mistake of small_cnn.MISTAKES at every layer of MISTAKE_LAYERS, in every port that has it,
per seed, on even and odd sizes (a symmetric pad where TF SAME is symmetric already is no mistake, and is
skipped): a miss is no first divergence, one at another layer, or another cause than the expected one.
Then the resolution: one output channel of one layer's kernel scaled by (1 + eps), eps = 1e-2 .. 1e-5, in
the torch port (a miss only for eps >= 1e-3; below, the change may be under the layer's rounding bound,
and the smallest eps found is reported). Then mistakes injected into MobileNetV2's ONNX export in the
middle of the network (a stride-2 node's pads made symmetric, a stride-1 node's pads shifted, a kernel's
H and W swapped, a bias added where the reference has none), each to be localised to its node.

Exit 1 when a false alarm or a miss occurs. Final outputs failing their elementwise tolerance (the dtype's
default, atol 1e-5, rtol 1.3e-6, which does not scale with the values: measured failing on correct ports at
inputs of 1e3) are counted per input kind and reported, not counted as false alarms of the layer rule.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import convdiff.frameworks  # noqa: E402, F401 - sets TensorFlow's log level before it is imported

from convdiff.analysis.models import LayerVerdict  # noqa: E402
from convdiff.data.inputs import synthetic_image  # noqa: E402
from convdiff.pipeline.models import compare_models  # noqa: E402
from convdiff.suites.builtin import small_cnn as sc  # noqa: E402

PORTS = ("torch", "onnx", "keras")
SIZES = ((15, 15), (16, 16), (17, 17), (32, 32))
BATCHES = (1, 3)
CAUSES = {"symmetric_pad": "padding", "depthwise_order": "channel_order",
          "kernel_not_transposed": "kernel_transposed_hw", "dropped_bias": "bias_missing", "float16": "dtype"}
CAUSE_AT = {("symmetric_pad", "up"): "output_shifted"}
EPSILONS = (1e-2, 1e-3, 1e-4, 1e-5)
EPS_MUST_FIND = 1e-3
"""Channel scalings at least this large must be found; smaller ones may be below the bound's resolution."""
TORCH_ATTR = {"c1": "stem", "dw": "depthwise", "up": "upsample", "head": "classifier"}


def make_input(kind: str, seed: int, hw: tuple[int, int], batch: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    shape = (batch, *hw, channels)
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "uniform":
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    if kind == "normal*1e-3":
        return (rng.standard_normal(shape) * 1e-3).astype(np.float32)
    if kind == "normal*1e3":
        return (rng.standard_normal(shape) * 1e3).astype(np.float32)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "image":
        return (synthetic_image(shape).astype(np.float64) / 255.0).astype(np.float32)
    raise ValueError(kind)


INPUTS = ("normal", "uniform", "normal*1e-3", "normal*1e3", "zeros", "image")


@dataclass
class Row:
    scenario: str
    cases: int = 0
    bad: int = 0
    """False alarms or misses, as the scenario counts them."""
    final_failing: int = 0
    """(False-alarm scenarios) cases whose final outputs fail their elementwise comparison."""
    final_by_input: Counter = field(default_factory=Counter)
    largest: float = 0.0
    """(False-alarm scenarios) the largest added error / bound of any layer."""
    examples: list[str] = field(default_factory=list)
    extra: str = ""

    def fail(self, what: str) -> None:
        self.bad += 1
        if len(self.examples) < 8:
            self.examples.append(what)


def false_alarm(result) -> bool:  # noqa: ANN001 - a ModelsResult
    return result.first_divergence is not None or any(r.verdict is LayerVerdict.DIVERGES for r in result.layers)


def check_correct(row: Row, result, label: str, input_kind: str) -> None:  # noqa: ANN001
    row.cases += 1
    ratios = [r.added_ratio for r in result.layers if r.added_ratio is not None]
    row.largest = max([row.largest, *ratios])
    unmeasured = [r.pair.reference for r in result.layers if r.verdict is LayerVerdict.NOT_MEASURED]
    if false_alarm(result) or unmeasured:
        diverging = [(r.pair.reference, f"{r.added_ratio:.3g}") for r in result.layers
                     if r.verdict is LayerVerdict.DIVERGES]
        row.fail(f"{label}: diverging {diverging}, not measured {unmeasured}"
                 + (f"; first: {result.first_divergence.line}" if result.first_divergence else ""))
    if not result.final:
        row.final_failing += 1
        row.final_by_input[input_kind] += 1
        if len(row.examples) < 8:
            row.examples.append(f"{label}: final outputs fail (max abs diff "
                                f"{float(result.final.max_abs_diff):.3g}) {result.note}")


def port(kind: str, model, mistake=None, layer=None):  # noqa: ANN001, ANN201
    return getattr(sc, f"{kind}_port")(model, mistake, layer)


# --- the small CNN --------------------------------------------------------------------------------------


def small_cnn_correct(seeds: range, rows: dict[str, Row]) -> None:
    for seed in seeds:
        for hw in SIZES:
            model = sc.keras_cnn(seed, input_hw=hw)
            ports = {kind: port(kind, model) for kind in PORTS}
            for kind in PORTS:
                row = rows.setdefault(kind, Row(f"correct {kind} port"))
                for batch in BATCHES:
                    for name in INPUTS:
                        x = make_input(name, seed, hw, batch)
                        result = compare_models(model, ports[kind], x)
                        check_correct(row, result, f"seed {seed} {hw[0]}x{hw[1]} batch {batch} {name}", name)


def mistake_changes_something(model, mistake: str, layer: str) -> bool:  # noqa: ANN001
    if mistake != "symmetric_pad" or layer == "up":
        return True
    conv = {c.name: c for c in sc.conv_layers(model)}[layer]
    return any(a != b for a, b in conv.same_pads())


MISTAKE_SIZES = ((16, 16), (17, 17), (32, 32))
MISTAKE_INPUTS = ("normal", "image")


def small_cnn_mistakes(seeds: range, rows: dict[str, Row]) -> None:
    for seed in seeds:
        for hw in MISTAKE_SIZES:
            model = sc.keras_cnn(seed, input_hw=hw)
            for mistake in sc.MISTAKES:
                row = rows.setdefault(mistake, Row(f"mistake {mistake}"))
                for layer in sc.MISTAKE_LAYERS[mistake]:
                    if not mistake_changes_something(model, mistake, layer):
                        row.extra = "symmetric pad at odd sizes' c1 skipped (TF SAME pads (1, 1) there)"
                        continue
                    for kind in PORTS:
                        if kind == "keras" and (mistake, layer) == ("symmetric_pad", "up"):
                            continue
                        candidate = port(kind, model, mistake, layer)
                        for name in MISTAKE_INPUTS:
                            x = make_input(name, seed, hw, 1)
                            result = compare_models(model, candidate, x)
                            row.cases += 1
                            expected = CAUSE_AT.get((mistake, layer), CAUSES[mistake])
                            first = result.first_divergence
                            label = f"seed {seed} {hw[0]}x{hw[1]} {kind} at {layer} {name}"
                            if first is None:
                                row.fail(f"{label}: no first divergence ({result.note or 'passes'})")
                            elif first.reference_layer != layer:
                                row.fail(f"{label}: first divergence at {first.reference_layer}: {first.line}")
                            elif first.cause != expected:
                                row.fail(f"{label}: cause {first.cause}, expected {expected}: {first.line}")


def small_cnn_resolution(seeds: range) -> tuple[Row, dict[float, Counter]]:
    """One output channel of one layer's kernel scaled by (1 + eps) in the torch port."""
    import torch

    row = Row("torch: one channel x (1 + eps)")
    found: dict[float, Counter] = {eps: Counter() for eps in EPSILONS}
    for seed in seeds:
        model = sc.keras_cnn(seed)
        x = make_input("normal", seed, (16, 16), 1)
        for layer, attr in TORCH_ATTR.items():
            for eps in EPSILONS:
                candidate = sc.torch_port(model)
                conv = getattr(candidate, attr)
                with torch.no_grad():
                    if layer == "up":  # (in, out, kh, kw)
                        conv.weight[:, 0] *= 1 + eps
                    else:
                        conv.weight[0] *= 1 + eps
                result = compare_models(model, candidate, x)
                first = result.first_divergence
                hit = first is not None and first.reference_layer == layer
                found[eps]["cases"] += 1
                found[eps]["found"] += hit
                if first is not None and first.reference_layer != layer:
                    found[eps]["elsewhere"] += 1
                if eps >= EPS_MUST_FIND:
                    row.cases += 1
                    if not hit:
                        row.fail(f"seed {seed} {layer} eps {eps:g}: "
                                 + (first.line if first is not None else f"not found ({result.note or 'passes'})"))
                elif first is not None and not hit:
                    row.cases += 1
                    row.fail(f"seed {seed} {layer} eps {eps:g}: found at another layer: {first.line}")
    return row, found


# --- MobileNetV2 --------------------------------------------------------------------------------------


def mobilenet(size: int, seed: int):  # noqa: ANN201 - (keras.Model, onnx.ModelProto)
    import keras_onnx

    keras = sc._keras()
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3))
    keras_onnx.randomize_batchnorm(model, seed)
    return model, keras_onnx.export(model)


def mobilenet_correct(size: int, seeds: range, row: Row) -> None:
    for seed in seeds:
        model, proto = mobilenet(size, seed)
        rng = np.random.default_rng(seed)
        inputs = {
            "uniform [-1, 1)": rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32),
            "image, preprocessed": (synthetic_image((1, size, size, 3)).astype(np.float32) / 127.5 - 1.0),
        }
        for name, x in inputs.items():
            result = compare_models(model, proto, x)
            layers = len(result.layers)
            row.extra = f"{layers} paired layers each"
            check_correct(row, result, f"seed {seed} {size}x{size} {name}", name)


def _conv_nodes(proto):  # noqa: ANN001, ANN202
    from onnx import helper

    out = []
    for i, node in enumerate(proto.graph.node):
        if node.op_type == "Conv":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            out.append((i, node, attrs))
    return out


def _set_attr(node, name: str, value) -> None:  # noqa: ANN001
    from onnx import helper

    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _initializer(proto, name: str):  # noqa: ANN001, ANN202
    for init in proto.graph.initializer:
        if init.name == name:
            return init
    raise KeyError(name)


def mobilenet_mistakes(size: int, seeds: range, row: Row) -> None:
    from onnx import numpy_helper

    for seed in seeds:
        model, proto = mobilenet(size, seed)
        x = np.random.default_rng(seed).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
        convs = _conv_nodes(proto)
        middle = len(convs) // 2
        # candidates for each mistake, the first from the middle of the network on
        later = convs[middle:] + convs[:middle]
        producer = {out: node for node in proto.graph.node for out in node.output}
        # MobileNetV2's stride-2 depthwise layers pad (0, 1) with a ZeroPadding2D (an ONNX Pad node) first
        stride2 = next(c for c in later if c[2].get("strides") == [2, 2] and c[1].input[0] in producer
                       and producer[c[1].input[0]].op_type == "Pad")
        stride1 = next(c for c in later if c[2].get("strides") == [1, 1] and c[2]["kernel_shape"] == [3, 3])
        square = next(c for c in later if c[2]["kernel_shape"] == [3, 3] and c[2].get("group", 1) > 1)
        no_bias = next(c for c in later if len(c[1].input) == 2)
        mistakes = {}

        def edit(label, which, change):  # noqa: ANN001, ANN202
            candidate = copy.deepcopy(proto)
            node = candidate.graph.node[which[0]]
            change(candidate, node)
            mistakes[label] = (candidate, node.name)

        def symmetric_pad(p, n):  # noqa: ANN001, ANN202 - the Pad node's (0, 1) made (1, 1), as padding=1 pads
            pad_node = next(m for m in p.graph.node if n.input[0] in m.output)
            init = _initializer(p, pad_node.input[1])
            pads = numpy_helper.to_array(init).copy()
            rank = len(pads) // 2
            pads[2:rank] = np.maximum(pads[2:rank], pads[rank + 2:])
            pads[rank + 2:] = pads[2:rank]
            init.CopyFrom(numpy_helper.from_array(pads, init.name))

        edit("stride-2 pad (0, 1) before the node made (1, 1)", stride2, symmetric_pad)
        edit("stride-1 pads shifted by one", stride1, lambda p, n: _set_attr(n, "pads", [0, 0, 2, 2]))

        def swap(p, n):  # noqa: ANN001, ANN202
            init = _initializer(p, n.input[1])
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w.transpose(0, 1, 3, 2)), init.name))

        edit("depthwise kernel H and W swapped", square, swap)

        def add_bias(p, n):  # noqa: ANN001, ANN202
            w = numpy_helper.to_array(_initializer(p, n.input[1]))
            bias = np.random.default_rng(seed).uniform(-0.5, 0.5, w.shape[0]).astype(np.float32)
            name = f"{n.name}.injected_bias"
            p.graph.initializer.append(numpy_helper.from_array(bias, name))
            n.input.append(name)

        edit("a bias added (the reference has none)", no_bias, add_bias)
        for label, (candidate, node_name) in mistakes.items():
            result = compare_models(model, candidate, x)
            row.cases += 1
            first = result.first_divergence
            if first is None:
                row.fail(f"seed {seed} {label} at {node_name}: no first divergence ({result.note or 'passes'})")
            elif first.candidate_layer != node_name:
                row.fail(f"seed {seed} {label} at {node_name}: first divergence at {first.candidate_layer}: "
                         f"{first.line}")
            elif len(row.examples) < 8:
                row.examples.append(f"ok: seed {seed} {label}: {first.line}")


# --- the table ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 seeds, MobileNetV2 at 96x96 (a few minutes)")
    parser.add_argument("--seeds", type=int, help="seeds of the small CNN (default 20; --quick 5)")
    parser.add_argument("--no-mobilenet", action="store_true", help="skip MobileNetV2")
    args = parser.parse_args(argv)
    seeds = range(args.seeds if args.seeds is not None else (5 if args.quick else 20))
    size = 96 if args.quick else 224
    mobilenet_seeds = range(1 if args.quick else 2)
    sc._keras()
    start = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(name: str, fn, *a) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        fn(*a)
        seconds[name] = time.perf_counter() - t0

    correct: dict[str, Row] = {}
    timed("small CNN, correct ports", small_cnn_correct, seeds, correct)
    mistakes: dict[str, Row] = {}
    timed("small CNN, mistakes", small_cnn_mistakes, seeds, mistakes)
    t0 = time.perf_counter()
    resolution, found = small_cnn_resolution(seeds)
    seconds["small CNN, channel scaling"] = time.perf_counter() - t0
    mobile_correct = Row(f"MobileNetV2 {size}x{size} vs its ONNX export")
    mobile_mistakes = Row(f"MobileNetV2 {size}x{size}, ONNX mistakes")
    if not args.no_mobilenet:
        timed("MobileNetV2, correct", mobilenet_correct, size, mobilenet_seeds, mobile_correct)
        timed("MobileNetV2, mistakes", mobilenet_mistakes, size, mobilenet_seeds, mobile_mistakes)

    command = "python benchmarks/calibrate_models.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds is not None else "") + (" --no-mobilenet" if args.no_mobilenet else "")
    print(f"$ {command}")
    print(f"small CNN: seeds {seeds.start}..{seeds.stop - 1}; correct ports on sizes "
          f"{', '.join(f'{h}x{w}' for h, w in SIZES)}, batches {BATCHES}, inputs {', '.join(INPUTS)}; "
          f"mistakes on {', '.join(f'{h}x{w}' for h, w in MISTAKE_SIZES)}, inputs {', '.join(MISTAKE_INPUTS)}\n")
    print("| scenario | cases | false alarms | final outputs failing | largest added / bound |")
    print("|---|---|---|---|---|")
    alarm_rows = [*correct.values()] + ([mobile_correct] if not args.no_mobilenet else [])
    for r in alarm_rows:
        by_input = ", ".join(f"{k}: {v}" for k, v in r.final_by_input.items())
        print(f"| {r.scenario} | {r.cases} | {r.bad} | {r.final_failing}{f' ({by_input})' if by_input else ''} "
              f"| {r.largest:.3f} |")
    print("\n| scenario | cases | misses |")
    print("|---|---|---|")
    miss_rows = [*mistakes.values(), resolution] + ([mobile_mistakes] if not args.no_mobilenet else [])
    for r in miss_rows:
        print(f"| {r.scenario} | {r.cases} | {r.bad} |")
    print("\nresolution (torch port, one output channel's kernel x (1 + eps), found at its layer / cases):")
    print("| eps | found | found elsewhere | cases |")
    print("|---|---|---|---|")
    for eps, c in found.items():
        print(f"| {eps:g} | {c['found']} | {c['elsewhere']} | {c['cases']} |")
    smallest = min((eps for eps, c in found.items() if c["found"] == c["cases"]), default=None)
    print(f"smallest eps found in every case: {smallest if smallest is not None else 'none'}")
    for r in alarm_rows + miss_rows:
        notes = r.examples + ([r.extra] if r.extra else [])
        if notes:
            print(f"\n{r.scenario}:")
            for e in notes:
                print(f"  {e}")
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
          + f"; total {time.perf_counter() - start:.0f}")
    alarms = sum(r.bad for r in alarm_rows)
    misses = sum(r.bad for r in miss_rows)
    met = not alarms and not misses
    print(f"false alarms: {alarms}; misses: {misses}; targets (0 and 0): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
