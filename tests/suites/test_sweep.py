"""Sweeps: grid expansion and order, shards, skipped configs, grouping, JSON, JUnit XML, exit codes."""

import json
import xml.etree.ElementTree as ET

import pytest

from convdiff.cli import cli
from convdiff.errors import BadInputError
from convdiff.data.specs import build_spec
from convdiff.suites.sweep import in_shard, make_grid, parse_shard, split_values

FAST = ["sweep", "--reference", "numpy", "--candidate", "nn", "--channels", "2", "--filters", "2"]


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1,2,3", ["1", "2", "3"]),
        ("same,valid,1,0x1x0x1", ["same", "valid", "1", "0x1x0x1"]),  # pairs written with x
        ("same;1,2", ["same", "1,2"]),  # a ';' anywhere: split on ';' so values may hold commas
        ("3", ["3"]),
    ],
)
def test_split_values(text, values):
    assert split_values(text) == values


def test_grid_is_the_cartesian_product_in_axis_order():
    # Given in another order, the axes still vary in the fixed order (last fastest).
    grid = make_grid({"strides": split_values("1,2"), "kernel_size": split_values("1,3,5"), "input_size": split_values("7,8")})
    configs = list(grid.configs())
    assert grid.size == len(configs) == 12
    assert [a.name for a in grid.axes] == ["input_size", "kernel_size", "strides"]
    assert configs[0].params == (("input_size", "7"), ("kernel_size", "1"), ("strides", "1"))
    assert configs[1].params == (("input_size", "7"), ("kernel_size", "1"), ("strides", "2"))
    assert configs[-1].params == (("input_size", "8"), ("kernel_size", "5"), ("strides", "2"))
    assert configs[5].fields["input_shape"] == (1, 7, 7, 3)  # input_size sets H = W of the default shape
    assert build_spec(configs[5].fields).kernel_size == (5, 5)  # one value for every spatial axis
    assert len({c.label for c in configs}) == 12


def test_padding_values_parse_with_both_separators():
    a = make_grid({"padding": split_values("same,valid,1,1x2")})
    b = make_grid({"padding": split_values("same;valid;1;1,2")})
    assert [c.fields["padding"] for c in a.configs()] == [c.fields["padding"] for c in b.configs()]
    assert str(list(a.configs())[3].fields["padding"].pads) == "((1, 1), (2, 2))"


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_grid_exactly(n):
    grid = make_grid({"kernel_size": split_values("1,3,5"), "strides": split_values("1,2"), "dilation": split_values("1,2"),
                      "input_size": split_values("7,8,9")})
    indices = [c.index for c in grid.configs()]
    shards = [[i for i in indices if in_shard(i, (k, n))] for k in range(1, n + 1)]
    assert sorted(i for s in shards for i in s) == indices  # every config exactly once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "1", "1/2/3", "-1/2"])
def test_bad_shards(text):
    with pytest.raises(BadInputError):
        parse_shard(text)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"colour": split_values("red")}, "unknown sweep axis"),
        ({"kernel_size": split_values("1,1")}, "repeats a value"),
        ({"kernel_size": split_values("x")}, "malformed kernel size"),
        ({"shape": split_values("1x8x8x3"), "input_size": split_values("7")}, "not both"),
    ],
)
def test_bad_grids(axes, message):
    with pytest.raises(BadInputError, match=message):
        make_grid(axes)


def test_sweep_passes_and_skips_invalid_configs(cli_runner):
    result = invoke(cli_runner, [*FAST, "--kernel-size", "1,9", "--strides", "1,2", "--dilation", "1,2",
                                 "--padding", "valid", "--input-size", "7", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["summary"] == {**doc["summary"], "total": 8, "failed": 0}
    statuses = {c["name"]: c["status"] for c in doc["configs"]}
    # kernel 9 > padded input 7: skipped by spec validation; stride 2 with dilation 2: refused by nn.
    assert doc["summary"]["skipped"] == 5 and doc["summary"]["passed"] == 3, statuses
    reasons = " ".join(s["reason"] for s in doc["skipped"])
    assert "larger than the padded input" in reasons and "cannot combine strides" in reasons
    assert [c["index"] for c in doc["configs"]] == list(range(8))
    assert {"python", "numpy", "tensorflow", "onednn", "device", "intra_op_threads"} <= set(doc["environment"])


def test_sweep_groups_failures_and_writes_junit(cli_runner, tmp_path):
    junit = tmp_path / "sweep.xml"
    # A float64 input makes tf.nn.conv2d compute in float64 while Keras casts to float32: with a zero
    # tolerance those configs fail, the float32 ones are bitwise identical.
    result = invoke(cli_runner, ["sweep", "--reference", "nn", "--candidate", "keras-call", "--channels", "2",
                                 "--filters", "2", "--input-size", "5", "--kernel-size", "1,3",
                                 "--input-dtype", "float32,float64", "--atol", "0", "--rtol", "0",
                                 "--junit", str(junit), "--format", "json"])
    assert result.exit_code == 1, result.output
    (group,) = json.loads(result.stdout)["groups"]
    assert f"wrote the JUnit report to {junit}" in result.stderr
    # The diagnosis names the cause: float64 vs float32 arithmetic, confirmed by recomputation.
    assert group["cause"] == "dtype" and group["count"] == 2
    assert group["description"] == "2 configs, all with input stored as float64"
    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 4 and root.get("tests") == "4" and root.get("failures") == "2"
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 2
    assert all("input_dtype=float64" in c.get("name") for c in failures)
    message = failures[0].find("failure").get("message")
    assert message.startswith("mismatch: elementwise atol=0, rtol=0")
    assert "cause: dtype" in failures[0].find("failure").text


def test_sweep_expect_changes_the_exit_code(cli_runner):
    args = [*FAST, "--kernel-size", "3", "--input-size", "6"]
    assert invoke(cli_runner, args).exit_code == 0
    assert invoke(cli_runner, [*args, "--expect", "identical"]).exit_code == 1  # float32 vs float64: not bitwise
    assert invoke(cli_runner, [*args, "--expect", "equivalent"]).exit_code == 0


def test_sweep_shard_runs_its_share(cli_runner):
    args = [*FAST, "--kernel-size", "1,3,5", "--input-size", "6", "--format", "json"]
    docs = [json.loads(invoke(cli_runner, [*args, "--shard", f"{k}/2"]).output) for k in (1, 2)]
    assert [c["index"] for c in docs[0]["configs"]] == [0, 2]
    assert [c["index"] for c in docs[1]["configs"]] == [1]
    assert docs[0]["grid"] == {**docs[0]["grid"], "size": 3, "shard": "1/2"}


def test_sweep_grid_file(cli_runner, tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('reference = "numpy"\ncandidate = "nn"\nexpect = ["equivalent"]\n'
                    '[spec]\ninput_shape = [1, 6, 6, 2]\nfilters = 2\n'
                    '[sweep]\nkernel_size = [1, 3]\npadding = ["same", [1, 2]]\n')
    result = invoke(cli_runner, ["sweep", "--grid", str(path), "--strides", "1,2", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["grid"]["axes"] == {"kernel_size": [1, 3], "strides": ["1", "2"], "padding": ["same", "1x2"]}
    assert doc["summary"]["total"] == 8 and doc["expect"] == ["equivalent"]
    assert doc["configs"][0]["spec"]["input_shape"] == [1, 6, 6, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--shard", "3/2", "--kernel-size", "1"], "invalid shard"),
        (["sweep", "--kernel-size", "1,,3"], "empty value"),
        (["sweep", "--padding", "same,sideways"], "malformed padding"),
        (["sweep", "--expect", "close", "--kernel-size", "1"], "unknown expected verdict"),
        (["sweep", "--grid", "missing.toml"], "not found"),
        (["sweep"], "nothing to sweep"),
    ],
)
def test_sweep_bad_input_exits_2(cli_runner, args, message):
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_progress_bar_only_on_a_terminal():
    import io

    from rich.console import Console

    from convdiff.cli.sweep import _progress
    from convdiff.suites.sweep import make_grid

    configs = list(make_grid({"kernel_size": split_values("1,3")}).configs())
    for terminal in (True, False):
        stream = io.StringIO()
        console = Console(file=stream, force_terminal=terminal, width=100)
        with _progress(console, len(configs)) as advance:
            for config in configs:
                advance(config)
        assert bool(stream.getvalue()) is terminal


def test_sweep_groups_failures_by_diagnosis_with_per_side_settings(tmp_path):
    """Caffe's symmetric pad 1 against TF SAME: only stride 2 on even inputs differs, diagnosed as padding."""
    from click.testing import CliRunner

    from convdiff.cli import cli

    result = CliRunner().invoke(cli, ["sweep", "--reference", "caffe", "--candidate", "nn", "--kernel-size", "3",
                                      "--strides", "1,2", "--input-size", "7,8", "--padding", "same",
                                      "--set", "reference.padding=1", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    failed = [c for c in doc["configs"] if c["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["cause"] == "padding"
    assert doc["groups"][0]["description"] == "1 config: even inputs, stride 2"
