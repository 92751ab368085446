"""A Keras model (a `.keras` or `.h5` file, or a live `keras.Model`): its convolution layers read from the
layer objects, their inputs and outputs captured by one run of a model whose outputs are those tensors.

Files are loaded with Keras' safe mode and no custom objects: a layer Keras does not know, or a Lambda
holding code, is refused rather than run. Each layer's settings go through the same reader as
`convdiff layers FILE.keras` (`convdiff.data.modelfiles.keras_file`), so both agree on what a layer is.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from convdiff.backends.models.common import (ACTIVATIONS, canonical_kernel, channels_last, first_line,
                                             framework_failure)
from convdiff.backends.models.types import Captured, ModelLayer, ModelRun
from convdiff.data.modelfiles.keras_file import CLASSES, _records
from convdiff.data.modelfiles.types import LayerKind
from convdiff.errors import BadInputError, ConvdiffError


def load_file(path: str) -> KerasModel:
    """Check the file as `convdiff layers` does (one line, exit 2, for a bad one), then load it safely."""
    from convdiff.data.modelfiles import read_model
    from convdiff.frameworks import import_keras

    read_model(path)  # validates the archive, its config and its weights before Keras sees it
    keras = import_keras()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except ConvdiffError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever Keras refuses in a file is bad input, one line
        raise BadInputError(f"{path}: Keras cannot load this model safely ({first_line(exc)})") from None
    return KerasModel(model, path)


class KerasModel:
    framework = "Keras"

    def __init__(self, model: Any, description: str | None = None):
        self.model = model
        self.description = description or f"keras.Model '{getattr(model, 'name', '?')}'"
        layers, skipped = [], []
        for layer in _flat_layers(model):
            cls = type(layer).__name__
            if _is_model(layer):
                skipped.append((layer.name, "a nested model: convdiff taps the outer model's own layers only"))
                continue
            if cls not in CLASSES:
                continue
            entry = {"class_name": cls, "config": _as_json(layer.get_config())}
            weights = [np.asarray(w) for w in layer.get_weights()]
            try:
                family = CLASSES[cls][0]
                if family == "separable":
                    skipped.append((layer.name, "a SeparableConv: its depthwise step's output stays inside the "
                                                "layer, so neither step can be captured"))
                    continue
                shapes = {"kernel": weights[0].shape}
                if len(weights) > 1:
                    shapes["bias"] = weights[1].shape
                records = _records(self.description, layer.name, entry, shapes)
            except (BadInputError, IndexError) as exc:
                skipped.append((layer.name, str(exc)))
                continue
            record = records[0]
            where = f"{self.description}#{layer.name}"
            activation = _activation(entry["config"].get("activation"))
            if activation not in ACTIVATIONS:
                skipped.append((layer.name, f"it applies activation {activation!r} after the convolution, which "
                                            f"convdiff does not recompute (it does: {', '.join(ACTIVATIONS)})"))
                continue
            if len(getattr(layer, "_inbound_nodes", [None])) > 1:
                skipped.append((layer.name, "the layer is called more than once: each call has its own input"))
                continue
            bias = weights[1] if record.config is not None and record.config.use_bias and len(weights) > 1 else None
            layers.append(ModelLayer(layer.name, record, canonical_kernel(record, weights[0], where),
                                     None if bias is None else _read_only(bias), activation))
        self.layers = tuple(layers)
        self.skipped = tuple(skipped)
        self._by_name = {layer.name: layer for layer in _flat_layers(model)}
        self.channels_first = any(l.record.config is not None and l.record.config.data_format == "channels_first"
                                  for l in self.layers[:1])
        shape = None
        try:
            shape = tuple(model.inputs[0].shape)
        except (AttributeError, IndexError, TypeError, ValueError):
            pass
        self.input_shape = shape
        try:  # a subclassed model has no graph to tap: refused here, before anything is paired or run
            if not model.inputs:
                raise ValueError("the model has no symbolic inputs")
            for layer in self.layers:
                self._by_name[layer.name].input  # noqa: B018 - raises for a layer outside the model's graph
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - AttributeError or ValueError, by Keras version
            raise BadInputError(f"{self.description}: convdiff cannot tap its layers' inputs and outputs "
                                f"({first_line(exc)}); a functional or Sequential model can be tapped") from None

    def capture_sizes(self, x_shape: tuple[int, ...]) -> list[int] | None:
        sizes = []
        for layer in self.layers:
            obj = self._by_name[layer.name]
            size = 0
            for tensor in (obj.input, obj.output):
                dims = tuple(tensor.shape)[1:]
                if any(d is None for d in dims):
                    return None
                size += math.prod(dims) * x_shape[0] * np.dtype(str(tensor.dtype)).itemsize
            sizes.append(size)
        return sizes

    def run(self, x: np.ndarray, keep=None) -> ModelRun:  # noqa: ANN001
        from convdiff.frameworks import import_keras

        keras = import_keras()
        names = [layer.name for layer in self.layers]
        try:
            taps = [t for name in names for t in (self._by_name[name].input, self._by_name[name].output)]
            capture = keras.Model(self.model.inputs, [*taps, self.model.outputs[0]])
            dtype = np.dtype(str(self.model.inputs[0].dtype))
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model whose layers cannot be tapped (subclassed) is bad input
            raise BadInputError(f"{self.description}: convdiff cannot tap its layers' inputs and outputs "
                                f"({first_line(exc)}); a functional or Sequential model can be tapped") from None
        start = time.perf_counter()
        try:
            values = capture([x.astype(dtype, copy=False)], training=False)  # the structure model.inputs has
            values = [keras.ops.convert_to_numpy(v) for v in values]
        except ConvdiffError:
            raise
        except Exception as exc:  # noqa: BLE001 - the framework failed on a valid input: exit 3
            raise framework_failure("keras", self.description, exc) from None
        seconds = time.perf_counter() - start
        keep = keep or _as_is
        captured = {}
        for i, layer in enumerate(self.layers):
            first = layer.record.config is not None and layer.record.config.data_format == "channels_first"
            captured[layer.name] = Captured(keep(channels_last(values[2 * i], first)),
                                            keep(channels_last(values[2 * i + 1], first)))
            values[2 * i] = values[2 * i + 1] = None  # released as soon as kept
        output = channels_last(values[-1], self.channels_first)
        return ModelRun(tuple(names), captured, output, seconds)


def _as_is(array: np.ndarray) -> np.ndarray:
    return array


def _flat_layers(model: Any) -> list[Any]:
    return list(getattr(model, "layers", []))


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _as_json(value: Any) -> Any:
    """A live layer's config as its file would hold it (tuples as lists), so the file reader reads it."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return value


def _activation(value: Any) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # Keras 3 may serialise a function as {"class_name": ..., "config": ...}
        value = value.get("config", {}).get("name") or value.get("class_name")
    return str(value).lower()


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def is_keras_file(path: str) -> bool:
    return Path(path).suffix.lower() in (".keras", ".h5", ".hdf5")


__all__ = ["KerasModel", "LayerKind", "is_keras_file", "load_file"]
