"""`keras.layers.Conv2D` with `kernel_initializer`, through `Model.predict` or called directly."""

from __future__ import annotations

import time

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.spec.dtypes import lower_precision
from convdiff.backends.registry import backend_info
from convdiff.backends.tf_common import run_framework
from convdiff.spec.convspec import ConvSpec, PaddingMode


class KerasPredictBackend:
    name = "keras"
    summary = "keras.layers.Conv2D in a keras.Model, run through predict()"
    requires: tuple[str, ...] = ()
    install_hint = ""
    call_directly = False

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        return run_framework(self.name, lambda: self._run(spec, x, weights))

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        from convdiff.spec.initializers import parse_initializer
        from convdiff.frameworks import import_keras

        keras = import_keras()
        start = time.perf_counter()
        padding = spec.padding.mode.value
        pre = None
        if spec.padding.mode is PaddingMode.EXPLICIT:
            # Conv2D only knows same/valid: explicit pads are a ZeroPadding2D in front, as users write it.
            pre = keras.layers.ZeroPadding2D(spec.padding.pads, dtype=spec.dtype)
            padding = "valid"
        # `default` passes nothing, so the layer's own default initializer (unseeded) is what runs.
        inits = {key: parse_initializer(text) for key, text in
                 (("kernel_initializer", spec.initializer), ("bias_initializer", spec.bias_initializer))}
        if any(init.is_default for init in inits.values()):
            # The default initializers are unseeded and draw from Keras' global seed generator:
            # seeding it keeps a run reproducible without changing which initializer runs.
            keras.utils.set_random_seed(spec.seed)
        layer = keras.layers.Conv2D(
            spec.filters, spec.kernel_size, strides=spec.strides, padding=padding,
            dilation_rate=spec.dilation, use_bias=spec.use_bias,
            **{key: init.keras(spec.seed) for key, init in inits.items() if not init.is_default},
            dtype=spec.dtype)
        notes = []
        compute_dtype = layer.compute_dtype
        if self.call_directly:
            shape = (None, *x.shape[1:])
            if pre:  # the layer sees the zero-padded input: build it for that shape, not the raw one
                (t, b), (l, r) = spec.padding.pads
                shape = (None, x.shape[1] + t + b, x.shape[2] + l + r, x.shape[3])
            layer.build(shape)
            self._assign(layer, weights, spec)
            tensor = keras.ops.convert_to_tensor(x)
            y = layer(pre(tensor) if pre else tensor)
            out = keras.ops.convert_to_numpy(y)
            if x.dtype != np.dtype(spec.dtype):
                notes.append(f"input is {x.dtype}: the layer casts it to its compute dtype {spec.dtype}")
        else:
            inp = keras.Input(shape=x.shape[1:], batch_size=x.shape[0], dtype=spec.dtype)
            model = keras.Model(inp, layer(pre(inp) if pre else inp))
            self._assign(layer, weights, spec)
            out = model.predict(x, batch_size=x.shape[0], verbose=0)
            floatx = keras.config.floatx()
            if x.dtype.kind == "f" and x.dtype != np.dtype(floatx):
                # predict's data adapter casts float arrays to floatx before the model sees them, so a
                # float64 model still only ever gets float32-rounded inputs: that is its real precision.
                notes.append(f"input is {x.dtype}: Model.predict casts float inputs to keras floatx ({floatx}) "
                             f"before the model's {spec.dtype} layer")
                compute_dtype = lower_precision(compute_dtype, floatx)
        bias = keras.ops.convert_to_numpy(layer.bias) if spec.use_bias else None
        return SideResult(self.name, np.asarray(out), keras.ops.convert_to_numpy(layer.kernel), bias,
                          compute_dtype=compute_dtype, notes=tuple(notes),
                          seconds=time.perf_counter() - start)

    @staticmethod
    def _assign(layer, weights: Weights | None, spec: ConvSpec) -> None:
        if weights is None:
            return
        layer.kernel.assign(weights.kernel.astype(layer.kernel.dtype))
        if spec.use_bias and weights.bias is not None:
            layer.bias.assign(weights.bias.astype(layer.bias.dtype))


class KerasCallBackend(KerasPredictBackend):
    name = "keras-call"
    summary = "keras.layers.Conv2D called directly on a tensor"
    call_directly = True
