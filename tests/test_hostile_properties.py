"""Property tests (hypothesis) of hostile files: valid bundle manifests, bundle arrays, experiment files and
grid files, each mutated at random, go through the real CLI.

Every mutation is refused with exit 2 and one line, or runs to an honest result: a bundle replays to the
verdict it records (never a pass on data that changed: a changed array is always refused), a sweep that
passes compared something. Never a traceback.

Deterministic and bounded: `derandomize=True` and a fixed example count per test (EXAMPLES: 270 in all, the
manifest test once per bundle),
so CI runs the same examples every time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from convdiff.cli import cli

EXAMPLES = {"manifest": 70, "arrays": 25, "experiment": 40, "grid": 40, "typed": 25}

QUICK = ["--reference", "numpy", "--candidate", "caffe", "--padding", "1", "--shape", "1,6,6,2", "--filters", "2"]


def budget(name: str):  # noqa: ANN201
    return settings(max_examples=EXAMPLES[name], derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _runner():  # noqa: ANN202
    from click.testing import CliRunner

    return CliRunner()


def _assert_honest(result) -> None:  # noqa: ANN001
    """Exit 0 or 1 with a result, or exit 2 with one line; never a traceback, never another code."""
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics shows how many ran, how many were refused
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convdiff: error: "), result.output[-2000:]


# --- bundles --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Two valid bundles: one equivalent, one mismatch (a zero elementwise tolerance)."""
    root = tmp_path_factory.mktemp("bundles")
    made = {}
    for name, extra in (("equivalent", []), ("mismatch", ["--atol", "0", "--rtol", "0"])):
        result = _runner().invoke(cli, ["compare", *QUICK, *extra, "--save-bundle", str(root / name)])
        assert result.exit_code in (0, 1), result.output
        made[name] = root / name
    return made


PLAUSIBLE = ["identical", "equivalent", "mismatch", "shape_mismatch", "empty", "bound", "elementwise",
             "probabilistic", "worst-case", "numpy", "nn", "caffe", "keras", "float16", "bfloat16", "float32",
             "float64", "tf32", "same", "valid", "case-001.npz", "case-002.npz", "../case-001.npz", "", 0, 1, 2, 3,
             -1, 10**12, 1e-5, 0.5, True, False, None, [1, 1], [[1, 1], [1, 1]], [1, 6, 6, 2], {}, []]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (keys and indices), containers included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.extend(_paths(value, (*prefix, i)))
    return out


@st.composite
def manifest_mutation(draw, manifest: dict) -> tuple[str, dict]:
    """A mutated copy of `manifest` and a description: a value replaced (plausible or random), a key
    deleted or added, a list element duplicated or dropped."""
    doc = json.loads(json.dumps(manifest))
    paths = _paths(doc)[1:]
    path = draw(st.sampled_from(paths))
    *parent_path, last = path
    parent = doc
    for key in parent_path:
        parent = parent[key]
    op = draw(st.sampled_from(["plausible", "same-type", "same-type", "random", "delete", "add", "duplicate"]))
    old = parent[last]
    if op == "same-type" and isinstance(old, (bool, int, float, str)) and old is not None:
        # The mutations a schema cannot catch: a flag flipped, a number nudged, another valid-looking word.
        if isinstance(old, bool):
            parent[last] = not old
        elif isinstance(old, int):
            parent[last] = old + draw(st.sampled_from([-1, 1, 2]))
        elif isinstance(old, float):
            parent[last] = old * draw(st.sampled_from([0.0, 0.5, 2.0, 1e6]))
        else:
            parent[last] = draw(st.sampled_from([p for p in PLAUSIBLE if isinstance(p, str) and p != old]))
    elif op in ("plausible", "same-type"):
        parent[last] = draw(st.sampled_from(PLAUSIBLE))
    elif op == "random":
        parent[last] = draw(JSON_VALUES)
    elif op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
    elif isinstance(parent, list):
        parent.insert(last, parent[last])
    else:
        parent[last] = [parent[last]]
    return f"{op} at {'/'.join(map(str, path))}", doc


@pytest.mark.parametrize("kind", ["equivalent", "mismatch"])
@budget("manifest")
@given(data=st.data())
def test_mutated_manifests_are_refused_or_replay_to_their_verdict(bundles, tmp_path_factory, kind, data):
    source = bundles[kind]
    manifest = json.loads((source / "bundle.json").read_text())
    what, mutated = data.draw(manifest_mutation(manifest))
    target = tmp_path_factory.mktemp("m") / "b"
    shutil.copytree(source, target)
    (target / "bundle.json").write_text(json.dumps(mutated))
    result = _runner().invoke(cli, ["run", str(target), "--format", "json"])
    _assert_honest(result)
    if result.exit_code in (0, 1):
        doc = json.loads(result.output)
        for case, entry in zip(doc["cases"], mutated["cases"]):
            # Replayed from the unchanged arrays, judged against what the (mutated) manifest records.
            assert case["expected"].split(",")[0] == entry["verdict"], what
            if case["as_expected"]:
                assert case["verdict"] == entry["verdict"], what
        assert (result.exit_code == 0) == all(c["as_expected"] for c in doc["cases"]), what


@st.composite
def array_mutation(draw, arrays: dict[str, np.ndarray]) -> tuple[str, dict[str, np.ndarray]]:
    name = draw(st.sampled_from(sorted(arrays)))
    array = arrays[name].copy()
    op = draw(st.sampled_from(["value", "value", "reshape", "dtype", "drop-dim"]))
    if op == "value":
        index = draw(st.integers(0, array.size - 1))
        old = array.flat[index]
        new = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, float(np.nextafter(old, np.inf)),
                                    float(np.nextafter(old, -np.inf)), 1e30]))
        if np.array(new, array.dtype).tobytes() == np.array(old, array.dtype).tobytes():
            new = float(np.nextafter(old, np.inf)) if np.isfinite(old) else 0.0
        array.flat[index] = new
    elif op == "reshape":
        array = array.reshape(-1) if array.ndim > 1 else array.reshape(1, -1)
    elif op == "dtype":
        array = array.astype(np.float64 if array.dtype != np.float64 else np.float32)
    else:
        array = array[..., 0] if array.ndim > 1 else array[:-1]
    return f"{op} of {name}", {**arrays, name: array}


@budget("arrays")
@given(data=st.data())
def test_changed_arrays_are_always_refused(bundles, tmp_path_factory, data):
    source = bundles["equivalent"]
    with np.load(source / "case-001.npz", allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    what, mutated = data.draw(array_mutation(arrays))
    target = tmp_path_factory.mktemp("a") / "b"
    shutil.copytree(source, target)
    np.savez(target / "case-001.npz", **mutated)
    result = _runner().invoke(cli, ["run", str(target)])
    _assert_honest(result)
    assert result.exit_code == 2, (what, result.output)  # never replayed, let alone passed


# --- experiment files and grid files --------------------------------------------------------------------

EXPERIMENT = """\
name = "prop"
title = "a valid experiment, mutated"

[spec]
input_shape = [1, 6, 6, 2]
filters = 2
initializer = "ones"
padding = 1

[[case]]
name = "same"
reference = "numpy"
candidate = "caffe"
expect = "equivalent"
shared_kernel = false
equal_nan = false
top = 3

[[case]]
name = "tight"
reference = "numpy"
candidate = "caffe"
atol = 0.0
rtol = 0.0
expect = "mismatch"
"""

GRID = """\
reference = "numpy"
candidate = "caffe"
expect = ["identical", "equivalent"]
shared_kernel = false
equal_nan = false

[spec]
input_shape = [1, 6, 6, 2]
filters = 2
initializer = "ones"
padding = 1

[sweep]
kernel_size = [1, 3]
seed = [1, 2]
"""

TOML_VALUES = st.sampled_from(['"false"', '"no"', '"2"', "true", "false", "0", "-1", "2", "1.5", "inf", "nan", "[]",
                               "[1, 2]", '["a"]', "{}", '"sparkly"', '""', "99999999999999999999", "1979-05-27",
                               '"same"', '"valid"', '"numpy"', '"nn"', '"mismatch"', '"identical"', '"ones"',
                               "[[1, 1], [1, 1]]", '"1,6,6,2"', "[1, 0, 6, 2]", '"../x.npy"', '"/dev/zero"'])


@st.composite
def toml_mutation(draw, text: str) -> str:
    """A mutated TOML text: one value replaced, one line deleted or duplicated, a key renamed, or a
    character inserted."""
    lines = text.splitlines()
    assignments = [i for i, line in enumerate(lines) if " = " in line]
    op = draw(st.sampled_from(["value", "value", "value", "delete", "duplicate", "rename", "insert"]))
    i = draw(st.sampled_from(assignments))
    key = lines[i].split(" = ")[0]
    if op == "value":
        lines[i] = f"{key} = {draw(TOML_VALUES)}"
    elif op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "rename":
        lines[i] = f"{key}{draw(st.sampled_from(['s', '_', 'x']))} = {lines[i].split(' = ', 1)[1]}"
    else:
        pos = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:pos] + draw(st.sampled_from(["[", "]", '"', "=", "\\", "\x00", "#", "{"])) + lines[i][pos:]
    return "\n".join(lines) + "\n"


@budget("experiment")
@given(data=st.data())
def test_mutated_experiment_files_exit_with_one_line_or_run(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("e") / "prop.toml"
    path.write_text(data.draw(toml_mutation(EXPERIMENT)), encoding="utf-8")
    result = _runner().invoke(cli, ["run", str(path)])
    _assert_honest(result)


@budget("grid")
@given(data=st.data())
def test_mutated_grid_files_never_pass_without_comparing(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("g") / "grid.toml"
    path.write_text(data.draw(toml_mutation(GRID)), encoding="utf-8")
    result = _runner().invoke(cli, ["sweep", "--grid", str(path), "--format", "json"])
    _assert_honest(result)
    if result.exit_code == 0:
        summary = json.loads(result.output)["summary"]
        assert summary["compared"] > 0 and summary["failed"] == 0, summary


# A string where a boolean or number belongs is refused, whichever key and spelling.
TYPED_KEYS = {"shared_kernel": "bool", "equal_nan": "bool", "use_bias": "bool", "top": "int", "filters": "int",
              "seed": "int", "atol": "number"}


@budget("typed")
@given(key=st.sampled_from(sorted(TYPED_KEYS)), spelling=st.sampled_from(
    ['"false"', '"true"', '"no"', '"yes"', '"0"', '"1"', '"2"', '"1e-3"', '" 3 "', '"off"']))
def test_a_string_is_never_taken_for_a_boolean_or_a_number(tmp_path_factory, key, spelling):
    path = tmp_path_factory.mktemp("t") / "typed.toml"
    extra = f"{key} = {spelling}\n" + ("rtol = 0\n" if key == "atol" else "")
    path.write_text('[[case]]\nname = "a"\nreference = "numpy"\ncandidate = "caffe"\npadding = 1\n'
                    f'input_shape = [1, 6, 6, 2]\ninitializer = "ones"\nexpect = "equivalent"\n{extra}')
    result = _runner().invoke(cli, ["run", str(path)])
    _assert_honest(result)
    assert result.exit_code == 2 and "case 'a'" in result.output and key.split("_")[0] in result.output, result.output
