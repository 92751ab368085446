"""`FILE#LAYER`: one layer of a model file, as `--weights`, `--from` and `weights = ...` write it.

Pure syntax: which file suffixes are model files, and where the file ends and the layer begins. Reading
the file is `convdiff.data.modelfiles`' job.
"""

from __future__ import annotations

from dataclasses import dataclass

from convdiff.errors import BadInputError

# Suffix -> the format that reads it (the names `convdiff.data.modelfiles` dispatches on).
MODEL_SUFFIXES: dict[str, str] = {
    ".caffemodel": "caffe",
    ".prototxt": "caffe",
    ".pt": "torch",
    ".pth": "torch",
    ".safetensors": "safetensors",
    ".keras": "keras",
    ".h5": "keras",
    ".hdf5": "keras",
    ".onnx": "onnx",
}


@dataclass(frozen=True)
class LayerRef:
    """A layer of a model file."""

    path: str
    layer: str

    def __str__(self) -> str:
        return f"{self.path}#{self.layer}"


def model_format(path: str) -> str | None:
    """The format of a model file by its suffix (`caffe`, `torch`, ...), or None for any other file."""
    lowered = path.lower()
    for suffix, name in MODEL_SUFFIXES.items():
        if lowered.endswith(suffix):
            return name
    return None


def split_layer_ref(text: str) -> LayerRef | None:
    """`model.caffemodel#conv1` -> LayerRef; None when `text` names no layer of a model file.

    The file part ends at the first `#` that follows a model-file suffix, so a `#` elsewhere in a
    path (or in a layer's name) is kept where it belongs.

    Raises:
        BadInputError: a model file with `#` but no layer name after it.
    """
    start = 0
    while (at := text.find("#", start)) != -1:
        path, layer = text[:at], text[at + 1:]
        if model_format(path):
            if not layer.strip():
                raise BadInputError(f"'{text}' names no layer after '#' (write FILE#LAYER; `convdiff layers "
                                    f"{path}` lists them)")
            return LayerRef(path, layer)
        start = at + 1
    return None


def parse_weights(value: object) -> str:
    """The `weights` field: a .npy/.npz path, or FILE#LAYER of a model file (checked for a layer name)."""
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"weights must be a file path or FILE#LAYER, got {value!r}")
    text = value.strip()
    split_layer_ref(text)
    return text
