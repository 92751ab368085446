"""A deterministic slice of the calibration study (benchmarks/calibrate_bound.py), with its assertions:
every correct comparison passes using at most half of the bound, every injected mistake fails or is said
to be indistinguishable from rounding at its precision (and then its own effect is within the bound)."""

import pytest

from convdiff.suites import calibration as cal

BACKENDS = ("numpy", "nn", "keras-call", "torch")


@pytest.mark.parametrize("dtype", cal.DTYPES)
def test_correct_computations_pass_with_margin(dtype):
    configs = [c for c in cal.correct_grid(quick=True) if c.dtype == dtype and c.kernel < 15]
    assert set(cal.DATA) <= {c.data for c in configs} and {c.magnitude for c in configs} == set(cal.MAGNITUDES)
    results = [r for c in configs for r in cal.run_correct(c, BACKENDS)]
    assert len(results) >= len(configs)  # at least one pair per config
    summary = cal.summarize(results, [])[dtype]
    assert summary.false_alarms == 0, [(r.config.name, r.reference, r.candidate, r.max_ratio)
                                       for r in results if not r.passed]
    assert summary.margin <= cal.TARGET_MARGIN, summary.worst


@pytest.mark.parametrize("dtype", cal.DTYPES)
def test_injected_mistakes_are_caught_or_said_to_be_indistinguishable(dtype):
    configs = [c for c in cal.mistake_grid(quick=True) if c.dtype == dtype][:2]
    results = cal.run_mistakes(configs)
    assert {m.mistake for m in results} == set(cal.MISTAKES)
    summary = cal.summarize([], results)[dtype]
    assert not summary.misses, [(m.config.name, m.mistake, m.reference, m.candidate, m.max_ratio)
                                for m in summary.misses]
    for m in summary.flagged:  # genuinely at the rounding level: its own effect fits in the bound
        assert m.effect_ratio <= 1.5, (m.config.name, m.mistake, m.effect_ratio)
    assert summary.caught >= 0.9 * summary.mistakes


def test_a_mistake_is_flagged_where_two_bfloat16_sides_round():
    # One channel scaled by 1.01 (1% of its values) against two bfloat16 sides whose results may differ by
    # two ulps (0.8-1.6%): the verdict passes and says it cannot be distinguished from rounding.
    config = next(c for c in cal.mistake_grid(quick=True) if c.dtype == "bfloat16" and c.data == "image-mixed")
    result = cal.run_mistake(config, cal.MISTAKE_TABLE["channel_scaled"], ("nn", "keras-call"))
    assert result.flagged and not result.caught and result.resolution > 0.01
    assert result.effect_ratio < 1
    # Against the float64 reference the same mistake on mixed-sign data is caught.
    normal = next(c for c in cal.mistake_grid(quick=True) if c.dtype == "bfloat16" and c.data == "normal")
    assert cal.run_mistake(normal, cal.MISTAKE_TABLE["channel_scaled"], ("numpy", "nn")).caught


def test_operands_are_deterministic_and_stored_in_the_dtype():
    config = cal.correct_grid(quick=True)[0]
    (x1, w1, b1), (x2, w2, b2) = cal.operands(config), cal.operands(config)
    assert (x1 == x2).all() and (w1 == w2).all()
    assert x1.dtype.name == w1.dtype.name == config.storage
