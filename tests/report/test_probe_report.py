"""The probe renderers on exact text (NumPy only: the numpy backend and arrays changed by hand)."""

import dataclasses

import numpy as np

from convdiff.backends.factory import initial_weights
from convdiff.backends.registry import get_backend
from convdiff.pipeline.probe import judge
from convdiff.reference.rounding import BoundForm
from convdiff.report.probe import EXPECTED, probe_json, probe_verdict_line, render_probe
from convdiff.report.text import fmt, fmt_percent
from convdiff.spec import ConvSpec

SPEC = ConvSpec(input_shape=(2, 6, 6, 3), filters=4, seed=5, initializer="ones")


def _probe(change=None):
    x = np.random.default_rng(0).random(SPEC.input_shape).astype(np.float32)
    run = get_backend("numpy").run(SPEC, x, initial_weights(SPEC))
    out = np.array(run.output, np.float32)
    reference = out.copy()
    if change is not None:
        change(out)
    candidate = dataclasses.replace(run, output=out, compute_dtype="float32")
    return judge("batch", "numpy", SPEC, "2 runs of batch 1", "one run of batch 2", reference, candidate, x,
                 BoundForm.PROBABILISTIC)


def test_identical():
    result = _probe()
    assert probe_verdict_line(result) == ("identical: batch probe of numpy: one run of batch 2 against 2 runs of "
                                          "batch 1, bit for bit (288 elements)")
    assert probe_json(result)["verdict"] == "identical" and probe_json(result)["passed"] is True


def test_within_the_bound_says_it_is_expected_behaviour():
    def nudge(out):
        out[0, 1, 2, 3] = np.nextafter(out[0, 1, 2, 3], np.float32(np.inf))

    result = _probe(nudge)
    c = result.comparison
    assert probe_verdict_line(result) == (
        f"within the rounding bound: batch probe of numpy: one run of batch 2 against 2 runs of batch 1: 1 of 288 "
        f"elements differ, max {fmt_percent(c.max_ratio)} of the bound (max abs diff {fmt(c.max_abs_diff)}); "
        f"{EXPECTED}")
    text = render_probe(result).splitlines()
    assert text[0] == "probe batch: backend numpy"
    assert text[5] == "  differing   1 of 288 elements (bit-identical elsewhere)"
    assert text[-1] == probe_verdict_line(result)
    doc = probe_json(result)
    assert doc["verdict"] == "within-bound" and doc["expected_behaviour"] is True and doc["differing"] == 1


def test_beyond_the_bound():
    def shift(out):
        out[1, 0, 0, 2] += 0.5

    result = _probe(shift)
    c = result.comparison
    assert probe_verdict_line(result) == (
        f"beyond the rounding bound: batch probe of numpy: one run of batch 2 against 2 runs of batch 1: 1 of 288 "
        f"elements exceed the float32 rounding bound (max {fmt(c.max_ratio)} times it at (1, 0, 0, 2)); not "
        "explained by rounding")
    doc = probe_json(result)
    assert doc["verdict"] == "beyond-bound" and doc["passed"] is False and doc["comparison"]["mismatched"] == 1
