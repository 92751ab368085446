"""What a whole-model source gives the comparison: its convolution layers (settings and weights) before
anything runs, and, once it has run on an input, each layer's captured input and output.

Every array here is channels-last (N, spatial..., C) and every kernel canonical for its kind (HWIO; HWOI
transposed; depthwise as groups = C), whatever the framework holds, so the comparison never asks which
framework a layer came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Protocol

import numpy as np

from convdiff.data.modelfiles.types import LayerRecord


@dataclass(frozen=True)
class ModelLayer:
    """One convolution layer of a model: its settings as the model states them, and its weights."""

    name: str
    record: LayerRecord
    """Its settings (kernel size, strides, padding, dilation, groups, ...), in `convdiff layers`' terms."""
    kernel: np.ndarray = field(repr=False)
    """Canonical for its kind, in the dtype the model holds it in."""
    bias: np.ndarray | None = field(repr=False)
    activation: str = "linear"
    """The activation the layer applies after its convolution (Keras' `activation=`); 'linear' for none."""

    @property
    def transposed(self) -> bool:
        return self.record.kind.value == "transposed"

    @property
    def groups(self) -> int:
        return self.record.config.groups if self.record.config is not None else 1


@dataclass(frozen=True)
class Captured:
    """What one layer received and produced in a run, channels-last."""

    input: np.ndarray = field(repr=False)
    output: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class ModelRun:
    """One run of a model on an input."""

    order: tuple[str, ...]
    """The convolution layers in the order they ran."""
    captured: dict[str, Captured] = field(repr=False)
    output: np.ndarray = field(repr=False)
    """The model's (first) output, channels-last when it has spatial axes."""
    seconds: float
    """Time of the run itself (capture included)."""


class ModelSource(Protocol):
    """A model convdiff can pair and run: a Keras file or object, an ONNX file, a torch.nn.Module."""

    framework: str
    """Keras, ONNX or PyTorch."""
    description: str
    """The file, or the object's class and name."""
    layers: tuple[ModelLayer, ...]
    """Convolution layers convdiff compares, in the model's own order."""
    skipped: tuple[tuple[str, str], ...]
    """(layer, why it is not compared): a separable layer, a padding mode without a recomputation, ..."""
    channels_first: bool
    """Whether the model takes its input channels-first (NCHW) when nobody says otherwise."""
    input_shape: tuple[int | None, ...] | None
    """The input shape the model declares, in its own layout, when it declares one."""

    def run(self, x: np.ndarray, keep: Callable[[np.ndarray], np.ndarray] | None = None) -> ModelRun:
        """Run on `x` (in the model's own input layout) capturing every layer of `layers`.

        Args:
            keep: what each captured array (channels-last) becomes as it is captured (`convdiff.data.spill`:
                written to disk and memory-mapped); None keeps it in memory.
        """
        ...

    def capture_sizes(self, x_shape: tuple[int, ...]) -> list[int] | None:
        """Bytes each layer's captured input and output take in a run on an input of `x_shape`, when known
        before the run."""
        ...
