"""Keras: `.keras` (a zip of config.json and model.weights.h5) and legacy `.h5` (HDF5 with the model
config as the JSON attribute `model_config`).

The configuration is read as JSON and the weights with h5py; the model is never deserialised (no
`keras.models.load_model`), so no Lambda layer or custom object can run. Keras stores kernels
channels-last whatever the layer's data_format: Conv (*k, in / groups, filters) `HWIO`, Conv*Transpose
(*k, filters, in) `HWOI`, DepthwiseConv (*k, C, multiplier) `HWCM`; a SeparableConv is listed as its
two steps, `NAME/depthwise` (`HWCM`, no bias) and `NAME/pointwise` (1x1 `HWIO`, with the layer's bias).
Layers of nested models are named `outer/inner`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convdiff.data.modelfiles.checks import fits_memory, regular_file
from convdiff.data.modelfiles.types import (SPATIAL, a, conv_kind, float_array, LayerConfig, LayerKind, LayerPadding,
                                            LayerRecord, LayerWeights, ModelFile, PadMode)
from convdiff.errors import BackendUnavailableError, BadInputError, ConvdiffError

# class name -> (family, rank); the Convolution* names are the aliases older files use.
CLASSES: dict[str, tuple[str, int]] = {}
for _rank in (1, 2, 3):
    for _prefix in ("Conv", "Convolution"):
        CLASSES[f"{_prefix}{_rank}D"] = ("conv", _rank)
        CLASSES[f"{_prefix}{_rank}DTranspose"] = ("transposed", _rank)
for _rank in (1, 2):
    CLASSES[f"DepthwiseConv{_rank}D"] = ("depthwise", _rank)
    CLASSES[f"SeparableConv{_rank}D"] = ("separable", _rank)
    CLASSES[f"SeparableConvolution{_rank}D"] = ("separable", _rank)
MODEL_CLASSES = {"Sequential", "Functional", "Model"}
MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""config.json is text describing layers: anything larger is not a Keras config (a zip bomb, say)."""


def read(path: str) -> ModelFile:
    with _opened(path) as (config, weights):
        return _model_file(path, config, weights)


def read_layer(path: str, name: str) -> LayerWeights:
    with _opened(path) as (config, weights):
        model = _model_file(path, config, weights)
        record = model.find(name)
        datasets = _step_arrays(_datasets(path, config, weights), name)
        where = f"{path}#{name}"
        try:
            arrays = {}
            for role, dataset in datasets.items():
                fits_memory(int(dataset.size) * dataset.dtype.itemsize, f"{where} ({role}, {dataset.name})")
                arrays[role] = float_array(dataset[()], f"{where} ({role})")
        except OSError as exc:
            raise BadInputError(f"{where}: the weights could not be read: {exc} (truncated or corrupt?)") from None
        return LayerWeights(record, arrays["kernel"], arrays.get("bias"))


# --- opening -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(path: str) -> Iterator[tuple[dict[str, Any], Any]]:
    """(the model config, the h5py root holding the weights), for .keras and legacy .h5 alike."""
    file = regular_file(path, "Keras model file")
    if path.lower().endswith(".keras"):
        with _keras_zip(path, file) as (config, h5_path):
            with _h5(h5_path, f"{path} (model.weights.h5)") as h5:
                yield config, _Weights(h5, legacy=False)
        return
    with _h5(file, path) as h5:
        raw = h5.attrs.get("model_config")
        if raw is None:
            hint = " (a weights-only file from save_weights?)" if "layers" in h5 or "model_weights" not in h5 else ""
            raise BadInputError(f"'{path}' holds no Keras model configuration (no 'model_config' attribute){hint}; "
                                "convdiff reads models saved with model.save()")
        if "model_weights" not in h5:
            raise BadInputError(f"'{path}' holds a model configuration but no weights (no 'model_weights' group)")
        yield _json(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw), path), _Weights(
            h5["model_weights"], legacy=True)


@contextlib.contextmanager
def _h5(file: Path | str, where: str) -> Iterator[Any]:
    try:
        import h5py
    except ImportError:  # a TensorFlow dependency: missing only in a broken environment
        raise BackendUnavailableError("reading Keras files needs h5py (pip install h5py)") from None
    try:
        handle = h5py.File(file, "r")
    except OSError as exc:
        raise BadInputError(f"'{where}' is not a readable HDF5 file: {exc} (truncated or corrupt?)") from None
    try:
        yield handle
    except ConvdiffError:
        raise
    except (KeyError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise BadInputError(f"'{where}': malformed Keras weights ({type(exc).__name__}: {exc})") from None
    finally:
        handle.close()


@contextlib.contextmanager
def _keras_zip(path: str, file: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """The config of a .keras archive, and its weights extracted to a temporary file (HDF5 needs seeks)."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInputError(f"'{path}' is not a .keras archive (a zip file): {exc}") from None
    with archive:
        names = set(archive.namelist())
        for member in ("config.json", "model.weights.h5"):
            if member not in names:
                raise BadInputError(f"'{path}' is not a complete .keras archive: it has no {member} "
                                    f"(members: {', '.join(sorted(names)) or 'none'})")
        info = archive.getinfo("config.json")
        if info.file_size > MAX_CONFIG_BYTES:
            raise BadInputError(f"'{path}': config.json declares {info.file_size} bytes, too large for a model config")
        try:
            config = _json(archive.read("config.json").decode("utf-8"), f"{path} (config.json)")
            weights = archive.getinfo("model.weights.h5")
            with tempfile.TemporaryDirectory(prefix="convdiff-keras-") as tmp:
                if weights.file_size > shutil.disk_usage(tmp).free:
                    raise BadInputError(f"'{path}': model.weights.h5 declares {weights.file_size} bytes, more than the "
                                        f"free space of {tmp}")
                target = Path(tmp) / "model.weights.h5"
                with archive.open(weights) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                yield config, target
        except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as exc:
            raise BadInputError(f"'{path}' is a damaged .keras archive: {exc}") from None


def _json(text: str, where: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadInputError(f"{where}: the model config is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise BadInputError(f"{where}: the model config is not a JSON object")
    return config


class _Weights:
    """The h5py group of the weights, with how the file addresses a layer's arrays."""

    def __init__(self, root: Any, legacy: bool):
        self.root = root
        self.legacy = legacy


# --- the config ----------------------------------------------------------------------------------------


def _layers(model: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(name path, layer entry) of every layer, nested models entered (their own entries not yielded)."""
    layers = (model.get("config") or {}).get("layers") if isinstance(model.get("config"), dict) else None
    if not isinstance(layers, list):
        return
    for entry in layers:
        if not isinstance(entry, dict):
            raise BadInputError("malformed model config: a layer entry is not an object")
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = config.get("name", entry.get("name"))
        if not isinstance(name, str):
            raise BadInputError("malformed model config: a layer has no name")
        if entry.get("class_name") in MODEL_CLASSES or isinstance(config.get("layers"), list):
            yield from _layers(entry, (*path, name))
        else:
            yield (*path, name), entry


def _model_file(path: str, config: dict[str, Any], weights: _Weights) -> ModelFile:
    shapes = {name: {role: tuple(d.shape) for role, d in found.items()}
              for name, found in _datasets(path, config, weights).items()}
    records, others = [], {}
    for names, entry in _layers(config):
        name, cls = "/".join(names), entry.get("class_name")
        if cls not in CLASSES:
            others[name] = f"{a(str(cls))} layer"
            continue
        records.extend(_records(path, name, entry, shapes.get(name)))
        if CLASSES[cls][0] == "separable":
            others[name] = f"{a(str(cls))}: its steps are {name}/depthwise and {name}/pointwise"
    return ModelFile(path, "keras", tuple(records), others)


def _datasets(path: str, config: dict[str, Any], weights: _Weights) -> dict[str, dict[str, Any]]:
    """Layer name -> {role: h5py dataset}: kernel and bias, or depthwise, pointwise and bias for a
    separable layer."""
    found: dict[str, dict[str, Any]] = {}
    for names, entry in _layers(config):
        if entry.get("class_name") not in CLASSES:
            continue
        name = "/".join(names)
        arrays = _legacy_arrays(weights.root, names) if weights.legacy else _keras3_arrays(weights.root, config, names)
        if arrays is None:
            raise BadInputError(f"{path}: no weights for layer '{name}' in the file (truncated or corrupt?)")
        found[name] = arrays
    return found


def _step_arrays(found: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """{kernel, bias} of a record: a layer's own, or one step of a separable layer (`sep/depthwise`)."""
    if name in found:
        return found[name]
    layer, _, step = name.rpartition("/")
    arrays = found[layer]
    if step == "depthwise":
        return {"kernel": arrays["depthwise"]}
    return {k: v for k, v in (("kernel", arrays.get("pointwise")), ("bias", arrays.get("bias"))) if v is not None}


def _legacy_arrays(root: Any, names: tuple[str, ...]) -> dict[str, Any] | None:
    """Legacy HDF5: model_weights/<top layer> lists its arrays in the `weight_names` attribute."""
    if names[0] not in root:
        return None
    group = root[names[0]]
    arrays: dict[str, Any] = {}
    for raw in group.attrs.get("weight_names", []):
        weight = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        owner, _, leaf = weight.rpartition("/")
        if owner not in ("/".join(names), names[-1]):
            continue
        role = leaf.split(":")[0]
        role = {"kernel": "kernel", "depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise",
                "bias": "bias"}.get(role)
        if role is not None:
            arrays[role] = group[weight]
    return arrays or None


def _snake_case(name: str) -> str:
    """Keras' `naming.to_snake_case`: how a .keras file names a layer's group (Conv2D -> conv2d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_arrays(root: Any, config: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    """Keras 3: layers/<group>/vars/0, 1, ... in the layer's weight order; the group of a layer is
    found by the `name` attribute of its vars, or else as Keras names it (class name in snake case,
    `_1`, `_2`... for repeats within one model)."""
    group, model = root, config
    for name in names:
        entries = [e for e in (model.get("config") or {}).get("layers", []) if isinstance(e, dict)]
        children = group.get("layers")
        if children is None:
            return None
        chosen = None
        for key in children:
            vars_ = children[key].get("vars")
            label = vars_.attrs.get("name") if vars_ is not None else None
            if (label.decode() if isinstance(label, bytes) else label) == name:
                chosen = children[key]
                break
        entry = next((e for e in entries if (e.get("config") or {}).get("name", e.get("name")) == name), None)
        if chosen is None and entry is not None:
            used: dict[str, int] = {}
            for e in entries:
                base = _snake_case(str(e.get("class_name", "")))
                label = base if base not in used else f"{base}_{used[base] + 1}"
                used[base] = used[base] + 1 if base in used else 0
                if e is entry:
                    chosen = children.get(label)
                    break
        if chosen is None or entry is None:
            return None
        group, model = chosen, entry
    vars_ = group.get("vars")
    if vars_ is None:
        return None
    ordered = [vars_[k] for k in sorted(vars_, key=lambda k: int(k) if k.isdigit() else 1 << 30)]
    family = CLASSES[str(model.get("class_name"))][0]
    roles = ("depthwise", "pointwise", "bias") if family == "separable" else ("kernel", "bias")
    return dict(zip(roles, ordered))


# --- records ---------------------------------------------------------------------------------------------


def _per_axis(value: Any, rank: int, what: str, where: str) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) else value
    if (not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            or len(values) not in (1, rank)):
        raise BadInputError(f"{where}: malformed {what} {value!r} in the model config")
    return tuple(values) * (rank if len(values) == 1 else 1)


def _input_shape(entry: dict[str, Any], rank: int, channels_first: bool) -> tuple[int, ...] | None:
    build = entry.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    if not isinstance(shape, list) or len(shape) != rank + 2:
        return None
    batch, rest = shape[0] if isinstance(shape[0], int) else 1, shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in rest):
        return None
    if channels_first:
        rest = [*rest[1:], rest[0]]
    return (batch, *rest)


def _records(path: str, name: str, entry: dict[str, Any],
             shapes: dict[str, tuple[int, ...]] | None) -> list[LayerRecord]:
    cls = str(entry["class_name"])
    family, rank = CLASSES[cls]
    cfg = entry.get("config") or {}
    where = f"{path}#{name}"
    kernel_size = _per_axis(cfg.get("kernel_size"), rank, "kernel_size", where)
    strides = _per_axis(cfg.get("strides", 1), rank, "strides", where)
    dilation = _per_axis(cfg.get("dilation_rate", 1), rank, "dilation_rate", where)
    padding_text = str(cfg.get("padding", "valid")).lower()
    if padding_text not in ("same", "valid", "causal"):
        raise BadInputError(f"{where}: unknown padding {cfg.get('padding')!r} in the model config")
    padding = LayerPadding(PadMode(padding_text))
    data_format = cfg.get("data_format") or "channels_last"
    use_bias = bool(cfg.get("use_bias", True))
    activation = cfg.get("activation")
    notes = ()
    if activation not in (None, "linear"):
        notes = (f"the layer applies activation {activation!r} after the convolution; the comparison covers the "
                 "convolution and bias only",)
    input_shape = _input_shape(entry, rank, data_format == "channels_first")
    shapes = shapes or {}
    spatial = SPATIAL[rank]

    def kernel(role: str, expect_rank: int) -> tuple[int, ...]:
        shape = shapes.get(role)
        if shape is None or len(shape) != expect_rank:
            what = role.replace("kernel", "kernel array")
            raise BadInputError(f"{where}: the file holds no {rank}-D {what} for this {cls} layer (found {shape}): "
                                "truncated or corrupt")
        return shape

    def bias(count: int) -> tuple[int, ...] | None:
        shape = shapes.get("bias")
        if not use_bias:
            return None
        if shape != (count,):
            raise BadInputError(f"{where}: the bias has shape {shape}, the layer has {count} outputs: corrupt file")
        return shape

    def check(shape: tuple[int, ...], k: tuple[int, ...], filters: int | None, filters_axis: int) -> None:
        if tuple(shape[:rank]) != k or (filters is not None and shape[filters_axis] != filters):
            raise BadInputError(f"{where}: the kernel {'x'.join(map(str, shape))} does not match the config "
                                f"(kernel_size {'x'.join(map(str, k))}, filters {filters}): corrupt file")

    def make(record_name: str, kind: LayerKind, shape: tuple[int, ...], layout: str, bias_shape: tuple[int, ...] | None,
             config: LayerConfig, in_channels: int, shape_in: tuple[int, ...] | None,
             extra: tuple[str, ...] = ()) -> LayerRecord:
        return LayerRecord(record_name, kind, rank, "Keras", cls, shape, layout, bias_shape, config, in_channels,
                           shape_in, notes=notes + extra)

    if family == "conv":
        shape = kernel("kernel", rank + 2)
        filters, groups = int(cfg.get("filters", shape[-1])), int(cfg.get("groups", 1) or 1)
        check(shape, kernel_size, filters, -1)
        config = LayerConfig(kernel_size, strides, padding, dilation, groups, filters, use_bias,
                             data_format=data_format)
        in_channels = shape[-2] * groups
        return [make(name, conv_kind(groups, in_channels), shape, spatial + "IO", bias(filters), config, in_channels,
                     input_shape)]
    if family == "transposed":
        shape = kernel("kernel", rank + 2)
        filters = int(cfg.get("filters", shape[-2]))
        check(shape, kernel_size, filters, -2)
        output_padding = cfg.get("output_padding")
        if output_padding is not None:
            output_padding = _per_axis(output_padding, rank, "output_padding", where)
        config = LayerConfig(kernel_size, strides, padding, dilation, 1, filters, use_bias, output_padding, data_format)
        return [make(name, LayerKind.TRANSPOSED, shape, spatial + "OI", bias(filters), config, shape[-1], input_shape)]
    if family == "depthwise":
        shape = kernel("kernel", rank + 2)
        check(shape, kernel_size, None, -1)
        channels, multiplier = shape[-2], shape[-1]
        if int(cfg.get("depth_multiplier", multiplier)) != multiplier:
            raise BadInputError(f"{where}: the kernel's multiplier {multiplier} differs from depth_multiplier "
                                f"{cfg.get('depth_multiplier')}: corrupt file")
        config = LayerConfig(kernel_size, strides, padding, dilation, channels, channels * multiplier, use_bias,
                             data_format=data_format)
        return [make(name, LayerKind.DEPTHWISE, shape, spatial + "CM", bias(channels * multiplier), config, channels,
                     input_shape)]
    # A separable convolution: depthwise (no bias), then pointwise 1x1 (the layer's bias).
    depthwise = kernel("depthwise", rank + 2)
    check(depthwise, kernel_size, None, -1)
    channels, multiplier = depthwise[-2], depthwise[-1]
    filters = int(cfg.get("filters", 0))
    shapes = {**shapes, "kernel": shapes.get("pointwise")}
    pointwise = kernel("kernel", rank + 2)
    check(pointwise, (1,) * rank, filters, -1)
    depth_config = LayerConfig(kernel_size, strides, padding, dilation, channels, channels * multiplier, False,
                               data_format=data_format)
    point_config = LayerConfig((1,) * rank, (1,) * rank, LayerPadding(PadMode.VALID), (1,) * rank, 1, filters,
                               use_bias, data_format=data_format)
    step = (f"the depthwise step of SeparableConv '{name}' (no bias: Keras' separable layer has one bias, "
            "after the pointwise step)",)
    return [make(f"{name}/depthwise", LayerKind.SEPARABLE_DEPTHWISE, depthwise, spatial + "CM", None, depth_config,
                 channels, input_shape, step),
            make(f"{name}/pointwise", LayerKind.SEPARABLE_POINTWISE, pointwise, spatial + "IO", bias(filters),
                 point_config, channels * multiplier, None, (f"the 1x1 pointwise step of SeparableConv '{name}'",))]

