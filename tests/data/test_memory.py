"""Memory: estimated from the specs before anything is allocated, refused above --max-memory (exit 2)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.errors import BadInputError
from convdiff.data.memory import available_memory, check_memory, estimate_case, estimate_side, parse_size
from convdiff.spec.convspec import ConvSpec, Padding


@pytest.mark.parametrize(("text", "expected"), [
    ("4GiB", 4 * 1024**3),
    ("500MB", 500 * 1000**2),
    ("1.5 kB", 1500),
    ("1e9", 10**9),
    ("2g", 2 * 1000**3),
    ("1024", 1024),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GB", "12XB", "0", "1..2MB", "nan"])
def test_parse_size_rejects(text):
    with pytest.raises(BadInputError):
        parse_size(text)


def test_estimate_counts_every_array():
    spec = ConvSpec(input_shape=(2, 10, 12, 3), filters=4, kernel_size=(3, 3), padding=Padding.same())
    side = estimate_side(spec)
    n_in, n_out = 2 * 10 * 12 * 3, 2 * 10 * 12 * 4
    assert side.inputs == n_in * (4 + 8)                                  # float32 input + its float64 draw
    assert side.outputs == n_out * (4 + 8)                                # float32 output + float64 copy
    assert side.kernels == (3 * 3 * 3 * 4 + 4) * (4 + 8)
    # float64: padded input, the input's float64 copy, one tap slice and its product
    assert side.working == (2 * 12 * 14 * 3 + 2 * 10 * 12 * 3 + 2 * 10 * 12 * (3 + 4)) * 8
    both = estimate_case(spec, spec)
    assert both.total == 2 * side.total


def test_estimate_covers_what_the_reference_really_allocates():
    # The float64 reference's peak (input, padded copy, a tap slice, output) stays under the estimate.
    import tracemalloc

    from convdiff.reference.convolution import conv2d_nhwc
    from convdiff.data.inputs import make_input

    spec = ConvSpec(input_shape=(1, 64, 64, 8), filters=16, kernel_size=(5, 5))
    tracemalloc.start()
    x = make_input(spec)
    conv2d_nhwc(x, np.ones(spec.kernel_shape, np.float32), spec.strides, spec.pads, spec.dilation)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= estimate_side(spec).total


def test_refusal_is_instant_for_a_shape_no_machine_holds():
    spec = ConvSpec(input_shape=(1, 100000, 100000, 3))
    start = time.perf_counter()
    with pytest.raises(BadInputError) as info:
        check_memory(spec, spec, None)
    assert time.perf_counter() - start < 0.5
    assert "needs an estimated 4.87 TiB" in str(info.value) and "the default, 50% of the" in str(info.value)


def test_explicit_limit_is_named():
    spec = ConvSpec(input_shape=(1, 8, 8, 3))
    with pytest.raises(BadInputError, match=r"above the limit of 1000 B \(--max-memory\)"):
        check_memory(spec, spec, 1000)
    assert check_memory(spec, spec, 10**9).total > 0


def test_available_memory_is_known_here():
    assert available_memory() is not None and available_memory() > 0


def test_max_memory_lets_a_small_comparison_run(cli_runner):
    result = cli_runner.invoke(cli, ["compare", "--reference", "numpy", "--candidate", "caffe", "--padding", "1",
                                     "--shape", "1,6,6,2", "--max-memory", "64MiB"])
    assert result.exit_code == 0, result.output


def test_run_checks_every_case_before_running_any(cli_runner, tmp_path):
    path = tmp_path / "two.toml"
    path.write_text('[[case]]\nname = "small"\nreference = "numpy"\ncandidate = "caffe"\npadding = 1\n'
                    'input_shape = "1,6,6,2"\nexpect = "equivalent"\n\n'
                    '[[case]]\nname = "big"\nreference = "numpy"\ncandidate = "caffe"\npadding = 1\n'
                    'input_shape = "1,2000,2000,3"\nexpect = "equivalent"\n')
    result = cli_runner.invoke(cli, ["run", str(path), "--max-memory", "100MB"])
    assert result.exit_code == 2
    assert "case 'big': this comparison needs an estimated" in result.output
    assert "cases as expected" not in result.output  # nothing ran: no summary


@pytest.mark.parametrize("fields", [
    {"input_shape": (1, 24, 24, 8), "filters": 16, "groups": 4},
    {"input_shape": (1, 24, 24, 8), "filters": 16, "groups": 8},
    {"input_shape": (1, 24, 24, 8), "filters": 16, "transposed": True, "strides": (2, 2)},
    {"rank": 3, "input_shape": (1, 8, 12, 12, 4), "filters": 8},
    {"rank": 1, "input_shape": (4, 512, 16), "filters": 16, "kernel_size": (9,)},
])
def test_estimate_covers_every_kind(fields):
    import tracemalloc

    from convdiff.backends.factory import initial_weights
    from convdiff.data.inputs import make_input
    from convdiff.reference.convolution import convolve

    spec = ConvSpec(initializer="ones", **fields)
    tracemalloc.start()
    x = make_input(spec)
    weights = initial_weights(spec)
    convolve(x, weights.kernel, spec, weights.bias)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= estimate_side(spec).total
