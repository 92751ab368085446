"""TF1 backends (in-process: the test process imports TensorFlow in legacy mode, see conftest), `defaults`,
`propagate`. What needs a process started without legacy mode runs in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from convdiff.cli import cli

needs_tf_keras = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("tf_keras") is None, reason="tf-keras (convdiff[legacy]) not installed")


def convdiff(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # convdiff must set it itself
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "convdiff", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@needs_tf_keras
def test_xavier_kernel_v1_reproduces_tf1_exactly(builtin_run):
    _, doc = builtin_run
    cases = {c["case"]: c for c in doc["cases"] if c["experiment"] == "xavier-kernel-v1"}
    assert all(c["as_expected"] for c in cases.values())
    tf1 = cases["get_variable-vs-layers.conv2d"]
    assert tf1["kernels_identical"] and tf1["verdict"] == "identical"
    assert tf1["reference"]["kernel_shape"] == [3, 3, 32, 32] == tf1["candidate"]["kernel_shape"]
    # A real Glorot draw: inside the bound sqrt(6 / (288 + 288)), std close to bound / sqrt(3).
    stats = tf1["reference"]["kernel_stats"]
    assert max(abs(stats["min"]), stats["max"]) <= (6 / 576) ** 0.5
    assert abs(stats["std"] - (6 / 576) ** 0.5 / 3 ** 0.5) < 0.003
    seeds = cases["tf1-graph-seed-vs-keras3-seed"]
    assert seeds["kernel_distribution"]["verdict"] == "same distribution, different draws"
    assert seeds["kernel_distribution"]["candidate"]["consistent"] is True


@needs_tf_keras
def test_tf1_and_keras3_backends_mix_in_one_process():
    # A fresh process: convdiff itself must set TF_USE_LEGACY_KERAS before TensorFlow's first import.
    proc = convdiff("compare", "--reference", "v1-layers", "--candidate", "keras", "--shape", "1,8,8,3",
                    "--init", "ones", "--bias-init", "constant(0.5)", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (doc,) = json.loads(proc.stdout)["comparisons"]
    assert doc["environment"]["legacy_keras"] in (True, "1", 1)
    assert doc["kernels_identical"] and doc["kernel_distribution"] is None
    assert doc["verdict"] in ("identical", "equivalent")


NON_LEGACY_THEN = """
import sys
from convdiff.frameworks import import_tensorflow
import_tensorflow()  # TensorFlow without legacy Keras, as a host program might have imported it
sys.argv = ["convdiff"] + sys.argv[1:]
from convdiff.cli import main
main()
"""


def test_tf1_backend_after_tf_was_imported_without_legacy_exits_3():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run([sys.executable, "-c", NON_LEGACY_THEN, "compare", "--reference", "v1-nn", "--shape",
                           "1,8,8,3"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "TF_USE_LEGACY_KERAS" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


BLOCK_TF_KERAS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tf_keras" or name.startswith("tf_keras."):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Block())
import importlib.util
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    if name == "tf_keras" or name.startswith("tf_keras."):
        return None
    return _find_spec(name, package)
importlib.util.find_spec = find_spec
sys.argv = ["convdiff"] + sys.argv[1:]
from convdiff.cli import main
main()
"""


@pytest.mark.parametrize("args", [["compare", "--reference", "v1-nn", "--candidate", "keras", "--shape", "1,8,8,3"],
                                  ["run", "xavier-kernel-v1"]])
def test_without_tf_keras_tf1_backends_exit_3_with_the_install_hint(args):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF_KERAS, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "pip install -e '.[legacy]'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_defaults_match_a_live_keras_layer(cli_runner):
    from convdiff.frameworks import import_keras

    keras = import_keras()
    result = cli_runner.invoke(cli, ["defaults", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {(r["api"], r["weight"]): r for r in doc["defaults"]}
    conv = keras.layers.Conv2D(4, 3)
    for weight in ("kernel", "bias"):
        row = rows[("keras.layers.Conv2D", weight)]
        assert type(getattr(conv, f"{weight}_initializer")).__name__ in row["declared"]
        assert row["confirmed"] is True
    assert rows[("keras.layers.Conv2D", "kernel")]["initializer"] == "glorot_uniform"
    assert rows[("keras.layers.Dense", "bias")]["initializer"] == "zeros"
    assert rows[("keras.layers.Conv2D", "kernel")]["check"]["ks_pvalue"] > 1e-3
    assert not doc["unavailable"]  # legacy mode here: the TF1 APIs were asked too


@needs_tf_keras
def test_defaults_of_the_tf1_apis(cli_runner):
    result = cli_runner.invoke(cli, ["defaults", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {(r["api"], r["weight"]): r for r in json.loads(result.output)["defaults"]}
    assert rows[("tf.compat.v1.layers.conv2d", "kernel")]["initializer"] == "glorot_uniform"
    assert rows[("tf.compat.v1.layers.conv2d", "bias")]["initializer"] == "zeros"
    assert rows[("tf.compat.v1.layers.dense", "kernel")]["initializer"] == "glorot_uniform"
    # get_variable has one default for every float variable, whatever its name: a "bias" is Glorot too.
    assert rows[("tf.compat.v1.get_variable", "bias")]["initializer"] == "glorot_uniform"
    assert all(r["confirmed"] for r in rows.values())


def test_default_initializer_experiment(builtin_run):
    _, doc = builtin_run
    cases = {c["case"]: c for c in doc["cases"] if c["experiment"] == "default-initializer"}
    assert all(c["as_expected"] for c in cases.values())
    assert cases["default-kernel-is-glorot-uniform"]["kernel_distribution"]["verdict"] == \
        "same distribution, different draws"
    assert cases["default-kernel-is-not-he-normal"]["kernel_distribution"]["verdict"] == "different distributions"
    assert cases["default-bias-is-zero"]["verdict"] == "identical"


def test_propagate_flags_the_explosion_for_stddev_0_1_and_not_for_he(cli_runner, tmp_path):
    plot = tmp_path / "std.png"
    result = cli_runner.invoke(cli, ["propagate", "--init", "truncated_normal(stddev=0.1)", "--depth", "30",
                                     "--format", "json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cand, glorot, he = doc["series"]
    assert cand["role"] == "candidate" and he["initializer"] == "he_normal"
    assert cand["first_flag"]["flag"] == "exploding"
    assert 1.5 < cand["measured_growth"] < 2.0 and abs(cand["expected_growth"] - 1.76) < 0.01
    assert cand["layers"][-1]["activation_std"] > 1e6
    assert he["first_flag"] is None
    assert all(0.1 < layer["activation_std"] < 10 for layer in he["layers"])
    assert glorot["first_flag"]["flag"] == "vanishing"  # Glorot halves the ReLU stack's variance each layer
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_propagate_reaches_inf_in_float32(cli_runner):
    result = cli_runner.invoke(cli, ["propagate", "--depth", "200", "--shape", "1,8,8", "--format", "json"])
    assert result.exit_code == 0, result.output
    cand = json.loads(result.output)["series"][0]
    flags = [layer["flag"] for layer in cand["layers"]]
    assert "inf" in flags or "nan" in flags
    assert cand["layers"][-1]["activation_std"] in ("nan", "inf")


BAD_INIT = [
    (["propagate", "--init", "sparkly"], "unknown initializer"),
    (["propagate", "--init", "truncated_normal(stddev=-1)"], "must be > 0"),
    (["propagate", "--init", "__import__('os').system('true')"], "malformed initializer"),
    (["compare", "--init", "xavier(uniform=2)"], "uniform must be True or False"),
    (["compare", "--init", "random_uniform(1, 0)"], "minval < maxval"),
    (["propagate", "--shape", "1,8"], "expected N,H,W"),
    (["propagate", "--depth", "0"], "--depth"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INIT, ids=[" ".join(a) for a, _ in BAD_INIT])
def test_bad_initializer_strings_exit_2(cli_runner, args, message):
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_propagate_reports_no_gradient_once_the_forward_pass_overflows():
    from convdiff.spec.initializers import parse_initializer
    from convdiff.suites.propagate import run_propagation

    result = run_propagation(parse_initializer("truncated_normal(stddev=0.1)"), 170, 5, 32, (1, 16, 16), 42)
    exploding = result.series[0]
    assert any(layer.flag == "inf" for layer in exploding.layers)
    assert all(layer.gradient_std is None for layer in exploding.layers)  # not a misleading 0
    assert all(layer.gradient_std is not None and layer.gradient_std > 0 for layer in result.series[2].layers[:5])
