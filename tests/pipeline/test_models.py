"""`convdiff.compare_models` on the small CNN and its hand-written ports (real Keras, PyTorch and ONNX
Runtime): the correct ports pass with every layer within its bound; each injected mistake is localised to
its layer (the first divergence) with its cause named, and the layers before it stay within their bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convdiff.analysis.models import LayerVerdict
from convdiff.analysis.pairing import PairedBy
from convdiff.errors import BadInputError
from convdiff.pipeline.models import compare_models
from convdiff.suites.builtin import small_cnn as sc

PORTS = ("torch", "onnx", "keras")
# The cause each mistake must be diagnosed as (at 'up', the symmetric crop of a transposed SAME layer shows
# as the output shifted by one position: that is what the wrong crop does).
CAUSES = {"symmetric_pad": "padding", "depthwise_order": "channel_order", "kernel_not_transposed": "kernel_transposed_hw",
          "dropped_bias": "bias_missing", "float16": "dtype"}
CAUSE_AT = {("symmetric_pad", "up"): "output_shifted"}
CASES = [(port, m, layer) for port in PORTS for m in sc.MISTAKES for layer in sc.MISTAKE_LAYERS[m]
         if not (port == "keras" and (m, layer) == ("symmetric_pad", "up"))]  # Keras' transposed layer has no pads


@pytest.fixture(scope="module")
def reference():
    sc._keras()
    return sc.keras_cnn(), sc.example_input()


def port(kind: str, model, mistake=None, layer=None):  # noqa: ANN001, ANN201
    return getattr(sc, f"{kind}_port")(model, mistake, layer)


@pytest.mark.parametrize("kind", PORTS)
def test_a_correct_port_passes_with_every_layer_within_its_bound(reference, kind):
    model, x = reference
    result = compare_models(model, port(kind, model), x)
    assert result, [(r.pair.reference, r.verdict, r.added_ratio) for r in result.layers]
    assert [p.reference for p in result.pairing.pairs] == list(sc.KERAS_LAYERS)
    assert [p.candidate for p in result.pairing.pairs] == [sc.PORT_NAMES[n] for n in sc.KERAS_LAYERS]
    assert all(p.paired_by is PairedBy.WEIGHTS and p.kernel_identical for p in result.pairing.pairs)
    assert not result.pairing.unpaired_reference and not result.pairing.unpaired_candidate
    # Every layer adds no more than its bound; the last one may pass on more than its own bound of what the
    # earlier layers' float32 rounding left (an amplifier, not a cause).
    assert all(r.verdict in (LayerVerdict.WITHIN, LayerVerdict.AMPLIFIES) for r in result.layers)
    assert all(0 <= r.added_ratio <= 1 for r in result.layers)
    assert result.layers[0].verdict is LayerVerdict.WITHIN
    assert result.first_divergence is None and bool(result.final)


@pytest.mark.parametrize("kind, mistake, layer", CASES)
def test_an_injected_mistake_is_the_first_divergence_with_its_cause_named(reference, kind, mistake, layer):
    model, x = reference
    result = compare_models(model, port(kind, model, mistake, layer), x)
    assert not result
    first = result.first_divergence
    assert first is not None, result.note
    assert first.reference_layer == layer
    assert first.candidate_layer == sc.PORT_NAMES[layer]
    assert first.cause == CAUSE_AT.get((mistake, layer), CAUSES[mistake]), first.line
    assert first.added_error_ratio > 1
    assert first.line.startswith(f"{layer} -> {sc.PORT_NAMES[layer]}: ")
    position = sc.KERAS_LAYERS.index(layer)
    before = result.layers[:position]
    assert all(r.verdict is not LayerVerdict.DIVERGES and r.added_ratio <= 1 for r in before), \
        [(r.pair.reference, r.verdict) for r in before]
    assert result.layers[position].verdict is LayerVerdict.DIVERGES


def test_a_later_layer_that_only_inherits_the_error_amplifies(reference):
    model, x = reference
    result = compare_models(model, sc.torch_port(model, "dropped_bias", "c1"), x)
    after = result.layers[1:]
    assert any(r.verdict is LayerVerdict.AMPLIFIES for r in after)
    for r in after:
        if r.verdict is LayerVerdict.AMPLIFIES:
            assert r.added_ratio <= 1 < r.propagated_ratio


def test_the_fixes_are_in_the_candidates_terms(reference):
    model, x = reference
    line = compare_models(model, sc.torch_port(model, "symmetric_pad", "c1"), x).first_divergence.line
    assert "candidate pads (1, 1) where the reference pads (0, 1)" in line
    assert "nn.ZeroPad2d((0, 1, 0, 1))" in line
    line = compare_models(model, sc.onnx_port(model, "symmetric_pad", "c1"), x).first_divergence.line
    assert "pads=[0, 0, 1, 1]" in line
    line = compare_models(model, sc.torch_port(model, "symmetric_pad", "up"), x).first_divergence.line
    assert "crops (1, 0) where the reference crops (0, 1)" in line


def test_kernel_mistakes_show_in_the_pairing_table(reference):
    model, x = reference
    pairs = {p.reference: p for p in compare_models(model, sc.torch_port(model, "depthwise_order", "dw"), x).pairing.pairs}
    assert pairs["dw"].paired_by is PairedBy.WEIGHTS and not pairs["dw"].kernel_identical
    assert "depthwise channel order" in pairs["dw"].kernel
    pairs = {p.reference: p for p in compare_models(model, sc.torch_port(model, "kernel_not_transposed", "c1"),
                                                    x).pairing.pairs}
    assert pairs["c1"].kernel == "H and W swapped"
    pairs = {p.reference: p for p in compare_models(model, sc.torch_port(model, "float16", "dw"), x).pairing.pairs}
    assert pairs["dw"].kernel == "identical up to float16 rounding"


def test_weights_that_match_nothing_fall_back_to_order_and_shape(reference):
    import torch

    model, x = reference
    candidate = sc.torch_port(model)
    with torch.no_grad():
        candidate.depthwise.weight.mul_(-1.5)  # another layer's weights, same shape
    result = compare_models(model, candidate, x)
    pair = {p.reference: p for p in result.pairing.pairs}["dw"]
    assert pair.paired_by is PairedBy.ORDER and pair.kernel == "different"
    assert result.first_divergence.reference_layer == "dw"
    assert result.first_divergence.cause == "weights_differ"


def test_pair_overrides_the_pairing_and_unknown_names_are_one_line(reference):
    model, x = reference
    result = compare_models(model, sc.torch_port(model), x, pairs=(("c1", "stem"),))
    assert {p.reference: p for p in result.pairing.pairs}["c1"].paired_by is PairedBy.USER
    with pytest.raises(BadInputError, match="the candidate has no convolution layer 'nope'"):
        compare_models(model, sc.torch_port(model), x, pairs=(("c1", "nope"),))
    with pytest.raises(BadInputError, match="paired twice"):
        compare_models(model, sc.torch_port(model), x, pairs=(("c1", "stem"), ("dw", "stem")))


def test_no_pairable_layers_is_bad_input(reference):
    import torch

    model, x = reference
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 2), torch.nn.ReLU(), torch.nn.Conv2d(5, 7, 2))
    with pytest.raises(BadInputError, match="no pairable convolution layers"):
        compare_models(model, other, x)
    with pytest.raises(BadInputError, match="has no convolution layer convdiff compares"):
        compare_models(model, torch.nn.Sequential(torch.nn.ReLU()), x)


def test_unpaired_layers_are_listed(reference):
    import torch

    model, x = reference
    extra = torch.nn.Sequential(sc.torch_port(model), torch.nn.Conv2d(2, 3, 5, padding=2))
    result = compare_models(model, extra, x)
    assert result.pairing.unpaired_candidate == ("1",)
    assert len(result.pairing.pairs) == 4


def test_memory_is_refused_before_anything_runs(reference):
    model, x = reference
    with pytest.raises(BadInputError, match="above the limit"):
        compare_models(model, sc.onnx_port(model), x, max_memory=1000)


def test_input_layouts(reference):
    model, x = reference
    nchw = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    assert compare_models(model, sc.onnx_port(model), nchw, input_layout="NCHW")
    with pytest.raises(BadInputError, match="the reference model takes input"):
        compare_models(model, sc.onnx_port(model), nchw)  # read as NHWC: 3x16 rows of 16 channels
    with pytest.raises(BadInputError, match="floating point"):
        compare_models(model, sc.onnx_port(model), x.astype(np.int32))
    with pytest.raises(BadInputError, match="3 to 5 axes"):
        compare_models(model, sc.onnx_port(model), x[0, 0])


def test_results_serialise_and_render(reference):
    import json

    from convdiff.report.json import SCHEMA_VERSION
    from convdiff.report.models import models_json, render_models, verdict_line

    model, x = reference
    result = compare_models(model, sc.onnx_port(model, "dropped_bias", "up"), x)
    doc = models_json(result, SCHEMA_VERSION)
    json.dumps(doc, allow_nan=False)
    assert [layer["reference_layer"] for layer in doc["layers"]] == list(sc.KERAS_LAYERS)
    assert doc["first_divergence"]["reference_layer"] == "up"
    assert doc["first_divergence"]["candidate_layer"] == "upsample"
    assert doc["first_divergence"]["added_error_ratio"] > 1
    assert any(f["cause"] == "bias_missing" and f["confirmed"] for f in doc["first_divergence"]["diagnosis"])
    assert verdict_line(result).startswith("mismatch: first divergence at up -> upsample")
    from rich.console import Console

    console = Console(width=140, record=True, color_system=None)
    console.print(render_models(result))
    text = console.export_text()
    assert "first divergence: up -> upsample" in text and "diverges" in text
    assert not math.isnan(doc["layers"][0]["added_error_ratio"])


def _ratios(result):  # noqa: ANN001, ANN202
    return [(r.pair.reference, r.verdict, r.added_ratio, r.propagated_ratio) for r in result.layers]


@pytest.mark.parametrize("kind", ["onnx", "torch"])
def test_activations_kept_on_disk_give_the_same_result_and_leave_nothing_behind(reference, kind, tmp_path,
                                                                                  monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    model, x = reference
    candidate = port(kind, model, "dropped_bias", "up")
    in_memory = compare_models(model, candidate, x, spill=False)
    import convdiff.pipeline.models as pipeline_models
    from convdiff.data.spill import Spill

    made = []

    class Recorded(Spill):
        def keep(self, array):  # noqa: ANN001, ANN202
            made.append(self.path)
            kept = super().keep(array)
            assert isinstance(kept, np.memmap) and not kept.flags.writeable
            return kept

    monkeypatch.setattr(pipeline_models, "Spill", Recorded)
    on_disk = compare_models(model, candidate, x, spill=True)
    assert len(made) == 16 and made[0].parent == tmp_path and not made[0].exists()  # 4 layers x 2 arrays x 2 sides
    assert not in_memory.spilled and on_disk.spilled
    assert _ratios(on_disk) == _ratios(in_memory)
    assert on_disk.first_divergence.line == in_memory.first_divergence.line
    assert list(tmp_path.glob("convdiff-*")) == []  # the spill directory is gone (frameworks leave their own)
    assert on_disk.spilled


def test_activations_go_to_disk_by_themselves_when_both_models_would_not_fit(reference):
    model, x = reference
    plan_limit = compare_models(model, sc.onnx_port(model), x).estimated_bytes
    # A limit between one run's activations (plus one layer's recomputation) and both runs' ones.
    result = compare_models(model, sc.onnx_port(model), x, max_memory=plan_limit - 1)
    assert result.spilled and result
    with pytest.raises(BadInputError, match=r"one run's captured layer inputs and outputs \(the rest on disk\)"):
        compare_models(model, sc.onnx_port(model), x, max_memory=plan_limit // 4)
    # A torch.nn.Module reference: its sizes are known once it ran, and its activations move to disk then.
    torch_first = compare_models(sc.torch_port(model), model, x, max_memory=plan_limit - 1)
    assert torch_first.spilled and torch_first
