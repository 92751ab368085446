"""Terminals of any width: at 60, 80 and 120 columns no command cuts a number or a name (rich's
ellipsis "…" never appears); tables wrap, switch to narrower layouts, or stack as `column: value`."""

import re
from pathlib import Path

import pytest
from rich.console import Console

from convdiff.cli import cli
from convdiff.report import tables

WIDTHS = (60, 80, 120)
BUILTIN = Path(__file__).resolve().parents[2] / "convdiff" / "suites" / "builtin"
SMALL = ["--shape", "1,8,8,3", "--filters", "4"]
COMMANDS = {
    "compare-pass": ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL],
    "compare-details": ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL, "--details"],
    "compare-fail": ["compare", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn",
                     "--strides", "2", *SMALL],
    "run": ["run", "caffe-port", "ones-filter", "--details"],
    "sweep": ["sweep", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn", "--padding",
              "same", "--kernel-size", "3", "--strides", "1,2", "--input-size", "7,8"],
    "defaults": ["defaults"],
    "propagate": ["propagate", "--init", "truncated_normal(mean=0.0, stddev=0.1)", "--depth", "6"],
    "list": ["list"],
    "layers": ["layers", str(BUILTIN / "caffe-conv1.caffemodel")],
}


class Outputs(dict):
    """(command, width) -> its CliRunner result, run on first use (each xdist worker runs only its own)."""

    def __missing__(self, key):
        from click.testing import CliRunner

        name, width = key
        self[key] = CliRunner().invoke(cli, COMMANDS[name], env={"COLUMNS": str(width)}, catch_exceptions=False)
        return self[key]


@pytest.fixture(scope="module")
def outputs():
    return Outputs()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", COMMANDS)
def test_nothing_is_cut(outputs, name, width):
    result = outputs[(name, width)]
    assert result.exit_code in (0, 1), result.output
    assert "…" not in result.stdout, result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_numbers_and_names_stay_whole(outputs, width):
    defaults = outputs[("defaults", width)].stdout
    for api in ("keras.layers.Conv2D", "tf.compat.v1.get_variable", "tf.compat.v1.layers.conv2d"):
        assert api in defaults
    propagate = outputs[("propagate", width)].stdout
    # Every std of the table is printed whole, exponent included (80 columns once cut 8.414e+06 to 8.414e+…).
    stds = re.findall(r"\b\d\.\d+e[+-]\d\d\b|\b\d+\.\d+\b", propagate)
    assert len(stds) > 18
    run = outputs[("run", width)].stdout
    for case in ("correct-port", "wrong-transpose", "stride2-pad2-vs-same", "float64-input"):
        assert case in run


def test_the_layout_narrows_before_it_stacks(outputs):
    wide, medium, narrow = (outputs[("propagate", w)].stdout for w in (120, 80, 60))
    assert "┃ truncated_normal(mean=0.0, stddev=0.1) std ┃" in wide and "--init" not in wide
    assert "--init std" in medium and "--init = truncated_normal(mean=0.0, stddev=0.1)" in medium
    assert "   --init std: " in narrow and "┃" not in narrow.split("\n", 2)[2]  # stacked: no table rules


@pytest.mark.parametrize("width", WIDTHS)
def test_every_built_in_case_name_is_whole_in_the_run_summary(builtin_run, width):
    outcome, _ = builtin_run
    rows = [tables.SummaryRow(o.experiment, o.case.name, o.expected, o.got, o.as_expected, tables.key_figures(o.result))
            for o in outcome.outcomes]
    console = Console(width=width, record=True, file=None, force_terminal=False, color_system=None)
    with console.capture() as capture:
        console.print(tables.render_summary(rows, outcome.skipped))
    text = capture.get()
    assert "…" not in text
    for o in outcome.outcomes:
        assert o.case.name in text and o.experiment in text
