"""PyTorch state_dicts: .pt/.pth through torch.load(weights_only=True) only, .safetensors through the
safetensors library; code in a file is refused, never run."""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from convdiff.cli import cli
from convdiff.data.modelfiles import find_layer, read_layer, read_model
from convdiff.data.modelfiles.types import LayerKind
from convdiff.errors import BackendUnavailableError, BadInputError
from convdiff.spec.layer_ref import split_layer_ref

torch = pytest.importorskip("torch")
ROOT = Path(__file__).parents[2]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2))
        self.dw = torch.nn.Conv2d(8, 8, 3, groups=8, bias=False)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.seq = torch.nn.Conv1d(4, 6, 5)
        self.vol = torch.nn.Conv3d(2, 2, 3)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(4, 2)


@pytest.fixture(scope="module")
def net():
    return Net()


@pytest.fixture(scope="module")
def files(tmp_path_factory, net):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("torch")
    state = net.state_dict()
    torch.save(state, folder / "model.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    torch.save({"epoch": 3, "state_dict": state}, folder / "checkpoint.pth")
    return folder


def ref(path, layer):  # noqa: ANN001, ANN201
    return split_layer_ref(f"{path}#{layer}")


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_state_dict_layers_and_layouts(files, name):
    model = read_model(str(files / name))
    by_name = {r.name: r for r in model.layers}
    assert set(by_name) == {"conv1", "dw", "up", "seq", "vol"}
    conv1 = by_name["conv1"]
    assert (conv1.kind, conv1.rank, conv1.kernel_layout, conv1.kernel_shape, conv1.bias_shape, conv1.config) == (
        LayerKind.CONV, 2, "OIHW", (8, 3, 3, 5), (8,), None)
    # A ConvTranspose2d's bias has the kernel's second dimension: (in, out, kh, kw), IOHW.
    assert (by_name["up"].kind, by_name["up"].kernel_layout, by_name["up"].in_channels) == (
        LayerKind.TRANSPOSED, "IOHW", 8)
    assert (by_name["seq"].kernel_layout, by_name["vol"].kernel_layout) == ("OIW", "OIDHW")
    assert by_name["dw"].bias_shape is None
    assert "bn" in model.others and "fc" in model.others


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_state_dict_tensors_come_back_exactly(files, net, name):
    conv1 = read_layer(ref(files / name, "conv1"))
    np.testing.assert_array_equal(conv1.kernel, net.conv1.weight.detach().numpy())
    np.testing.assert_array_equal(conv1.bias, net.conv1.bias.detach().numpy())


def test_nested_checkpoints_name_layers_by_their_path(files, net):
    layer = read_layer(ref(files / "checkpoint.pth", "state_dict.conv1"))
    np.testing.assert_array_equal(layer.kernel, net.conv1.weight.detach().numpy())


def test_torch_conv2d_from_a_state_dict_end_to_end(files, net):
    """The layer read from the file, run by convdiff's torch backend, is the module's own conv2d."""
    from convdiff.data.specs import build_spec
    from convdiff.pipeline import CaseOptions, SideConfig
    from convdiff.spec.fields import parse_fields
    from helpers import run_case

    fields = parse_fields({"weights": f"{files / 'model.pt'}#conv1", "input_shape": [1, 11, 14, 3],
                           "strides": 2, "padding": [1, 2]})
    spec = build_spec(fields)
    assert spec.weights_layout == "OIHW" and spec.kernel_size == (3, 5) and spec.filters == 8
    result = run_case("torch-file", SideConfig("torch", spec), SideConfig("nn", spec), CaseOptions())
    assert result.verdict.value in ("identical", "equivalent"), result.verdict
    reference = result.side("reference")
    x = torch.from_numpy(np.ascontiguousarray(reference.input.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        expected = net.conv1(x).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(reference.result.output, expected, rtol=1e-5, atol=1e-6)


def test_cli_compare_torch_against_tf_from_a_state_dict(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--reference", "torch", "--candidate", "nn", "--weights",
                                     f"{files / 'model.safetensors'}#conv1", "--shape", "1,12,12,3", "--strides", "2",
                                     "--padding", "1,2", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["comparisons"][0]
    assert doc["kernels_identical"] and doc["spec"]["kernel_size"] == [3, 5]


def test_from_a_state_dict_says_which_options_to_give(cli_runner, files):
    result = cli_runner.invoke(cli, ["compare", "--from", f"{files / 'model.pt'}#conv1"])
    assert result.exit_code == 2
    assert "records no layer configuration" in result.output and "--strides, --padding and --dilation" in result.output
    assert result.output.count("\n") == 1


def test_a_wrong_tensor_name_lists_the_layers(files):
    with pytest.raises(BadInputError, match=r"no convolution layer 'conv2' in .* \(convolution layers: conv1, dw, up"):
        find_layer(ref(files / "model.pt", "conv2"))
    with pytest.raises(BadInputError, match="layer 'bn' of .* is not a convolution"):
        find_layer(ref(files / "model.pt", "bn"))


# --- security and damaged files ---------------------------------------------------------------------------------


class Payload:
    """Unpickling this runs `touch MARKER`: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch.save zip", "raw pickle"])
def test_a_pickle_that_runs_code_is_refused_never_run(cli_runner, tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    obj = {"conv1.weight": torch.zeros(2, 1, 3, 3), "conv1.bias": Payload(marker)}
    if container == "raw pickle":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    else:
        torch.save(obj, path)
    for args in (["layers", str(path)], ["compare", "--weights", f"{path}#conv1"]):
        result = cli_runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "refuses (" in result.output and "GLOBAL" in result.output, result.output
        assert "weights_only set to `False`" not in result.output  # torch's advice is not passed on
        assert result.output.count("\n") == 1
    assert not marker.exists()


def test_every_torch_load_is_weights_only_literally():
    found = 0
    for path in sorted((ROOT / "convdiff").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                found += 1
                kwargs = {k.arg: k.value for k in node.keywords}
                value = kwargs.get("weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{node.lineno}"
    assert found >= 1


@pytest.mark.parametrize("damage", ["truncated zip", "truncated safetensors header", "safetensors garbage",
                                    "not a mapping"])
def test_damaged_state_dicts_are_one_line_exit_2(cli_runner, tmp_path, files, damage):
    if damage == "truncated zip":
        data, name = (files / "model.pt").read_bytes(), "bad.pt"
        data = data[: len(data) // 2]
    elif damage == "truncated safetensors header":
        data, name = (files / "model.safetensors").read_bytes()[:40], "bad.safetensors"
    elif damage == "safetensors garbage":
        data, name = (1 << 40).to_bytes(8, "little") + b"{}", "bad.safetensors"  # a header of 1 TiB declared
    else:
        path = tmp_path / "list.pt"
        torch.save([torch.zeros(2)], path)
        data, name = path.read_bytes(), "list.pt"
    (tmp_path / name).write_bytes(data)
    result = cli_runner.invoke(cli, ["layers", str(tmp_path / name)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("convdiff: error: ") and result.output.count("\n") == 1, result.output


def test_old_torch_is_refused_before_unpickling(monkeypatch, files):
    from convdiff.data.modelfiles import torch_state

    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(BackendUnavailableError, match=r"needs torch >= 2\.10.*CVE-2025-32434"):
        torch_state.read(str(files / "model.pt"))


def test_missing_torch_is_exit_3_with_the_install_command(cli_runner, monkeypatch, files):
    import sys

    from convdiff.data import modelfiles

    modelfiles._read_model.cache_clear()  # read from the file again, not from this process's cache
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = cli_runner.invoke(cli, ["layers", str(files / "model.pt")])
    assert result.exit_code == 3, result.output
    assert "pip install -e '.[torch]'" in result.output
    # a .safetensors state_dict needs no PyTorch at all
    assert cli_runner.invoke(cli, ["layers", str(files / "model.safetensors")]).exit_code == 0
