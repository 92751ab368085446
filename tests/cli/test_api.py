"""The Python API for test suites: convdiff.compare_arrays and convdiff.testing.assert_conv_close."""

import subprocess
import sys

import numpy as np
import pytest

import convdiff
from convdiff.cli import cli
from convdiff.spec.convspec import ConvSpec
from convdiff.testing import assert_conv_close


def test_import_convdiff_stays_light():
    code = ("import sys, convdiff\nassert 'convdiff.compare.core' not in sys.modules\n"
            "assert callable(convdiff.compare_arrays)\nassert 'tensorflow' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_compare_arrays_is_exported():
    a = np.arange(6, dtype=np.float32)
    result = convdiff.compare_arrays(a, a + np.float32(1e-3), atol=1e-2, rtol=0)
    assert result and result.verdict is convdiff.Verdict.EQUIVALENT
    assert not convdiff.compare_arrays(a, a + 1, atol=1e-2, rtol=0)
    with pytest.raises(AttributeError):
        convdiff.no_such_name  # noqa: B018


def test_assert_conv_close_passes_and_returns_the_comparison():
    a = np.linspace(0, 1, 12).reshape(1, 2, 2, 3)
    assert assert_conv_close(a, a.copy()).verdict.value == "identical"


def test_assert_conv_close_message_is_the_report():
    a = np.zeros((1, 2, 2, 1))
    b = a.copy()
    b[0, 1, 0, 0] = 0.5
    with pytest.raises(AssertionError) as info:
        assert_conv_close(a, b, atol=1e-3, rtol=0)
    message = str(info.value)
    assert "mismatch: elementwise atol=0.001, rtol=0: 1 / 4 mismatched (25%), max abs diff 0.5 at (0, 1, 0, 0)" in message
    assert "Worst 1 positions" in message and "\x1b[" not in message  # plain text, no colour codes


def test_assert_conv_close_with_backends_matches_the_cli_text(cli_runner):
    spec = ConvSpec(input_shape=(1, 6, 6, 2), filters=2, input="image", input_dtype="float64")
    with pytest.raises(AssertionError) as info:
        assert_conv_close("nn", "keras", spec=spec, atol=0, rtol=0)
    result = cli_runner.invoke(cli, ["compare", "--reference", "nn", "--candidate", "keras", "--shape", "1,6,6,2",
                                     "--filters", "2", "--input", "image", "--input-dtype", "float64",
                                     "--atol", "0", "--rtol", "0"])
    assert result.exit_code == 1
    # Seconds differ between runs; everything else is the same text.
    strip = lambda text: [ln for ln in text.strip().splitlines() if "seconds" not in ln]  # noqa: E731
    assert strip(str(info.value)) == strip(result.output)
    assert assert_conv_close("nn", "keras", spec={"input_shape": [1, 6, 6, 2], "filters": 2}).kernels_identical
