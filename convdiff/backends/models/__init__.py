"""Whole-model sources, one module per framework behind `ModelSource`: Keras (`.keras`, `.h5`, or a live
`keras.Model`), ONNX (`.onnx` or a live `onnx.ModelProto`, run by ONNX Runtime), TFLite (`.tflite`, run by
TensorFlow's TFLite interpreter), PyTorch (a live `torch.nn.Module`). `open_model` picks one; nothing runs
until `ModelSource.run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convdiff.backends.models.types import Captured, ModelLayer, ModelRun, ModelSource
from convdiff.errors import BadInputError

MODEL_SUFFIXES = {".keras": "Keras", ".h5": "Keras", ".hdf5": "Keras", ".onnx": "ONNX", ".tflite": "TFLite"}
"""Model files `convdiff models` runs, by extension (the other formats of `convdiff layers` hold weights only,
or code: a pickled PyTorch module is never run)."""


def open_model(model: Any, side: str) -> ModelSource:
    """The source for a model file path or a live model object.

    Raises:
        BadInputError: a path that is not a model file convdiff runs, or an object of no known framework.
    """
    if isinstance(model, (str, Path)):
        return _open_file(str(model), side)
    module = type(model).__module__.split(".")[0]
    if module == "torch" or _is_torch_module(model):
        from convdiff.backends.models.torch_model import TorchModel

        return TorchModel(model)
    if module in ("keras", "tf_keras") or _has_keras_base(model):
        from convdiff.backends.models.keras_model import KerasModel

        return KerasModel(model)
    if type(model).__name__ == "ModelProto" and module == "onnx":
        from convdiff.backends.models.onnx_model import OnnxModel

        return OnnxModel(model, f"onnx.ModelProto '{model.graph.name or 'graph'}'")
    raise BadInputError(f"the {side} is a {type(model).__name__}: give a model file (.keras, .h5, .onnx, .tflite), a "
                        "keras.Model, a torch.nn.Module or an onnx.ModelProto")


def _open_file(path: str, side: str) -> ModelSource:
    suffix = Path(path).suffix.lower()
    framework = MODEL_SUFFIXES.get(suffix)
    if framework is None:
        hint = ""
        if suffix in (".pt", ".pth", ".bin", ".safetensors"):
            hint = (" (a PyTorch file holds weights or pickled code, which convdiff never runs: pass the "
                    "torch.nn.Module to convdiff.compare_models from Python)")
        raise BadInputError(f"{side} model '{path}': not a model file convdiff runs (.keras, .h5, .onnx, .tflite)"
                            f"{hint}")
    if framework == "Keras":
        from convdiff.backends.models.keras_model import load_file

        return load_file(path)
    if framework == "TFLite":
        from convdiff.backends.models.tflite_model import load_file as load_tflite

        return load_tflite(path)
    from convdiff.backends.models.onnx_model import load_file as load_onnx

    return load_onnx(path)


def _is_torch_module(model: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(model).__mro__)


def _has_keras_base(model: Any) -> bool:
    return any(c.__module__.split(".")[0] in ("keras", "tf_keras") for c in type(model).__mro__)


__all__ = ["MODEL_SUFFIXES", "Captured", "ModelLayer", "ModelRun", "ModelSource", "open_model"]
