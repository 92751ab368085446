"""Weights and layer configuration from model files: Caffe, PyTorch state_dicts, Keras, ONNX.

Each format has one module that reads its files with the safest standard library and never runs code
from them; all of them return the same `LayerRecord`s (`types`), and `configuration` maps a record to
spec fields. A layer is named `FILE#LAYER` (`convdiff.spec.layer_ref`).
"""

from __future__ import annotations

import functools
import importlib
import os

from convdiff.data.modelfiles.types import LayerKind, LayerRecord, LayerWeights, ModelFile
from convdiff.errors import BadInputError
from convdiff.spec.layer_ref import MODEL_SUFFIXES, LayerRef, model_format, split_layer_ref

READERS = {"caffe": "caffe", "torch": "torch_state", "safetensors": "torch_state", "keras": "keras_file",
           "onnx": "onnx_file"}


def _reader(path: str):  # noqa: ANN202 - the format's module
    fmt = model_format(path)
    if fmt is None:
        raise BadInputError(f"'{path}' is not a model file convdiff reads (suffixes: {', '.join(MODEL_SUFFIXES)})")
    return importlib.import_module(f"convdiff.data.modelfiles.{READERS[fmt]}")


def _stamp(path: str) -> tuple[int, int]:
    """What makes a cached read stale: the file's modification time and size (0, 0 when it is missing)."""
    try:
        stat = os.stat(path)
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def read_model(path: str) -> ModelFile:
    """The convolution layers of a model file (shapes and settings; no weights are read)."""
    return _read_model(path, _stamp(path))


def find_layer(ref: LayerRef) -> LayerRecord:
    """One layer's record; a name the file lacks is an error listing the layers it has."""
    return read_model(ref.path).find(ref.layer)


def read_layer(ref: LayerRef) -> LayerWeights:
    """One layer's kernel (as stored, in `record.kernel_layout`) and bias, read-only."""
    return _read_layer(ref.path, ref.layer, _stamp(ref.path))


# A comparison reads the same layer several times (building each side's spec, then running it): the
# last few reads are kept, keyed by the file's stamp so that a rewritten file is read again.
@functools.lru_cache(maxsize=8)
def _read_model(path: str, stamp: tuple[int, int]) -> ModelFile:
    return _reader(path).read(path)


@functools.lru_cache(maxsize=4)
def _read_layer(path: str, name: str, stamp: tuple[int, int]) -> LayerWeights:
    return _reader(path).read_layer(path, name)


__all__ = ["LayerKind", "LayerRecord", "LayerRef", "LayerWeights", "ModelFile", "find_layer", "read_layer",
           "read_model", "split_layer_ref"]
