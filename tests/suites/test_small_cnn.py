"""The small CNN and its hand-written ports: the correct ports reproduce the Keras model; each mistake
changes its own layer (and not the layers before it) and the final output. Real Keras, PyTorch and
onnxruntime, on a 16x16x3 input."""

import numpy as np
import pytest

from convdiff.suites.builtin import small_cnn as sc

CORRECT = 1e-5  # max |port - reference| / max |reference| of a float32 port (measured: ~1.3e-7)
CHANGED = {"float16": 1e-4}  # float16 moves the output by ~3e-4 of its range (1e3 times a float32 port's error)
CHANGED_DEFAULT = 1e-2  # every other mistake moves it by more than 0.1
# Every (mistake, layer) pair the ports support; keras_port lacks symmetric_pad at 'up'.
PAIRS = [(m, layer) for m in sc.MISTAKES for layer in sc.MISTAKE_LAYERS[m]]


def relative(candidate, reference):
    return float(np.abs(np.asarray(candidate, np.float64) - reference).max() / np.abs(reference).max())


@pytest.fixture(scope="module")
def reference():
    """(model, input NHWC, output, {layer: output}) with dw's output as Keras gives it (after its fused ReLU)."""
    keras = sc._keras()
    model = sc.keras_cnn()
    x = sc.example_input()
    probe = keras.Model(model.input, [model.get_layer(n).output for n in sc.KERAS_LAYERS])
    layers = dict(zip(sc.KERAS_LAYERS, (np.asarray(a) for a in probe(x))))
    return model, x, np.asarray(model(x)), layers


def nchw(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


def nhwc(a):
    return np.asarray(a, np.float32).transpose(0, 2, 3, 1)


def torch_run(port, x):
    """(output NHWC, [conv module outputs NHWC, in module order]) through forward hooks."""
    import torch

    seen = []
    convs = [m for m in port.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    handles = [c.register_forward_hook(lambda mod, args, out: seen.append(out.float().numpy())) for c in convs]
    try:
        with torch.no_grad():
            out = port(torch.from_numpy(nchw(x))).numpy()
    finally:
        for h in handles:
            h.remove()
    return nhwc(out), [nhwc(s) for s in seen]


def onnx_run(proto, x):
    """(output NHWC, [conv node outputs NHWC, in graph order]): each conv's (float32) output made a graph output."""
    from onnx import TensorProto, helper

    names = [f"{sc.PORT_NAMES[n]}.output" for n in sc.KERAS_LAYERS[:-1]]
    proto.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    out, *layers = sc.onnx_session(proto).run(["y", *names], {"x": nchw(x)})
    return nhwc(out), [nhwc(a) for a in layers] + [nhwc(out)]


def keras_run(port, x):
    """(output, [conv layer outputs]) of a keras_port model (dw's after its fused ReLU)."""
    keras = sc._keras()
    probe = keras.Model(port.input, [port.get_layer(sc.PORT_NAMES[n]).output for n in sc.KERAS_LAYERS])
    return np.asarray(port(x), np.float32), [np.asarray(a, np.float32) for a in probe(x)]


PORTS = {"torch": (sc.torch_port, torch_run), "onnx": (sc.onnx_port, onnx_run), "keras": (sc.keras_port, keras_run)}


def test_reference_is_deterministic_with_nonzero_biases(reference):
    model, x, out, _ = reference
    again = sc.keras_cnn(seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), again.get_weights()))
    assert not np.array_equal(sc.keras_cnn(seed=1).get_weights()[0], model.get_weights()[0])
    for name in sc.KERAS_LAYERS:
        bias = model.get_layer(name).get_weights()[1]
        assert np.abs(bias).min() > 0 and np.abs(bias).max() > 0.1, name
    assert x.shape == (1, 16, 16, 3) and x.dtype == np.float32
    assert out.shape == (1, 16, 16, 2)


def test_no_port_name_is_a_keras_name(reference):
    model = reference[0]
    keras_names = {layer.name for layer in model.layers}
    assert not keras_names & set(sc.PORT_NAMES.values())
    assert {n for n, _ in sc.torch_port(model).named_modules()} >= set(sc.PORT_NAMES.values())
    onnx_names = {node.name for node in sc.onnx_port(model).graph.node}
    assert not keras_names & onnx_names
    assert not keras_names & {layer.name for layer in sc.keras_port(model).layers}


@pytest.mark.parametrize("port", PORTS)
def test_correct_port_reproduces_the_reference_layer_by_layer(reference, port):
    model, x, out, layers = reference
    build, run = PORTS[port]
    got, got_layers = run(build(model), x)
    assert relative(got, out) <= CORRECT
    for name, layer_out in zip(sc.KERAS_LAYERS, got_layers):
        expected = layers[name]
        if name == "dw" and port != "keras":  # the port's depthwise conv comes before the ReLU Keras fuses
            layer_out = np.maximum(layer_out, 0)
        assert layer_out.shape == expected.shape, name
        assert relative(layer_out, expected) <= CORRECT, name


def test_torch_same_equivalents_are_the_modules_hooks_see(reference):
    """c1's (0, 1) pad is a ZeroPad2d before a padding=0 Conv2d; the transposed layer crops (0, 1) itself."""
    import torch

    port = sc.torch_port(reference[0])
    assert isinstance(port.stem_pad, torch.nn.ZeroPad2d) and port.stem_pad.padding == (0, 1, 0, 1)
    assert port.stem.padding == (0, 0) and port.stem.stride == (2, 2)
    assert port.depthwise.padding == (1, 1) and port.depthwise.groups == 8
    assert isinstance(port.upsample, torch.nn.ConvTranspose2d) and port.upsample.padding == (0, 0)
    assert port.upsample.crops == ((0, 1), (0, 1))


def test_pytorchs_symmetric_transposed_padding_is_not_tf_same(reference):
    """padding=1, output_padding=1 gives the right size (16) but is the full scatter shifted by one."""
    model, x, out, layers = reference
    _, got_layers = torch_run(sc.torch_port(model, "symmetric_pad", "up"), x)
    assert got_layers[2].shape == layers["up"].shape
    assert relative(got_layers[2], layers["up"]) > CHANGED_DEFAULT


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize(("mistake", "layer"), PAIRS)
def test_mistake_changes_its_layer_and_the_output_not_the_layers_before(reference, port, mistake, layer):
    model, x, out, _ = reference
    build, run = PORTS[port]
    if port == "keras" and (mistake, layer) == ("symmetric_pad", "up"):
        with pytest.raises(ValueError, match="no symmetric_pad at 'up'"):
            build(model, mistake, layer)
        return
    _, correct_layers = run(build(model), x)
    got, got_layers = run(build(model, mistake, layer), x)
    at = sc.KERAS_LAYERS.index(layer)
    threshold = CHANGED.get(mistake, CHANGED_DEFAULT)
    for before, (a, b) in enumerate(zip(correct_layers[:at], got_layers[:at])):
        assert np.array_equal(a, b), f"{sc.KERAS_LAYERS[before]} changed before {layer}"
    assert relative(got_layers[at], correct_layers[at]) > threshold
    assert relative(got, out) > threshold


def test_default_layers_and_refusals(reference):
    model = reference[0]
    assert all(sc.DEFAULT_LAYER[m] in sc.MISTAKE_LAYERS[m] for m in sc.MISTAKES)
    assert sc.resolve_mistake("depthwise_order", None) == "dw"
    with pytest.raises(ValueError, match="unknown mistake"):
        sc.torch_port(model, "swapped_channels")
    with pytest.raises(ValueError, match="changes nothing at layer 'head'"):
        sc.onnx_port(model, "kernel_not_transposed", "head")
    with pytest.raises(ValueError, match="unknown layer"):
        sc.keras_port(model, "dropped_bias", "stem")


def test_float16_layer_holds_half_weights(reference):
    import torch
    from onnx import TensorProto

    model = reference[0]
    port = sc.torch_port(model, "float16", "up")
    assert port.upsample.weight.dtype == torch.float16 and port.stem.weight.dtype == torch.float32
    proto = sc.onnx_port(model, "float16", "up")
    types = {i.name: i.data_type for i in proto.graph.initializer}
    assert types["upsample.weight"] == TensorProto.FLOAT16 and types["stem.weight"] == TensorProto.FLOAT
    keras_layer = sc.keras_port(model, "float16", "head").get_layer("classifier")
    assert keras_layer.compute_dtype == "float16"


def test_write_example_models(tmp_path, reference):
    import onnx

    keras = sc._keras()
    model, _, out, _ = reference
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    written = sc.write_example_models(tmp_path)
    assert {p.name for p in written.values()} <= set(sc.EXAMPLE_FILES.values())
    assert {"keras", "onnx", "onnx_symmetric_pad", "input"} <= set(written)
    assert other.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in written.values()), "notes.txt"])
    x = np.load(written["input"], allow_pickle=False)
    assert x.shape == (1, 16, 16, 3) and x.dtype == np.float32
    assert np.array_equal(x, sc.example_input())
    loaded = keras.saving.load_model(written["keras"])
    assert np.array_equal(np.asarray(loaded(x)), out)
    if "keras_h5" in written:
        assert np.array_equal(np.asarray(keras.saving.load_model(written["keras_h5"], compile=False)(x)), out)
    correct, _ = onnx_run(onnx.load(written["onnx"]), x)
    wrong, _ = onnx_run(onnx.load(written["onnx_symmetric_pad"]), x)
    assert relative(correct, out) <= CORRECT
    assert relative(wrong, out) > CHANGED_DEFAULT


def test_benchmark_exporter_reproduces_the_small_cnn(reference):
    """benchmarks/keras_onnx.py (the MobileNetV2 exporter) on the small CNN: NHWC in and out, nodes node_<i>."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "keras_onnx.py"
    spec = importlib.util.spec_from_file_location("keras_onnx", path)
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    model, x, out, _ = reference
    proto = exporter.export(model)
    assert [n.name for n in proto.graph.node] == [f"node_{i}" for i in range(len(proto.graph.node))]
    assert [n.op_type for n in proto.graph.node] == [
        "Transpose", "Conv", "Relu", "Conv", "Relu", "ConvTranspose", "Relu", "Conv", "Transpose"]
    got = exporter.run_onnx(proto, x)[0]
    assert got.shape == out.shape
    assert relative(got, out) <= CORRECT
