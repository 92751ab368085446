"""The Keras layer of every kind, with `kernel_initializer`, through `Model.predict` or called directly:
Conv1D/2D/3D (with `groups`), DepthwiseConv1D/2D (groups = channels, 1-D and 2-D), Conv1D/2D/3DTranspose,
each with its `data_format`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from convdiff.backends.base import SideResult, Weights
from convdiff.backends.registry import backend_info
from convdiff.backends.tf_common import run_framework
from convdiff.spec import geometry
from convdiff.spec.convspec import ConvSpec, PaddingMode
from convdiff.spec.dtypes import lower_precision
from convdiff.spec.layouts import conversion, for_rank, from_canonical, input_layout_for, to_canonical


def _uses_depthwise_layer(spec: ConvSpec) -> bool:
    """Keras has DepthwiseConv1D and DepthwiseConv2D; a 3-D depthwise convolution is Conv3D(groups=C)."""
    return spec.depthwise and spec.rank <= 2 and not spec.transposed


def keras_layer(keras: Any, spec: ConvSpec, inits: dict[str, Any]) -> tuple[Any, list[Any], list[Any], list[str]]:
    """The layer of `spec`, with the ZeroPadding in front / Cropping behind that explicit pads need.

    Returns:
        (layer, layers before it, layers after it, notes).
    """
    d = spec.rank
    fmt = spec.data_format
    padding = spec.padding.mode.value
    before, after, notes = [], [], []
    common = dict(strides=spec.strides, dilation_rate=spec.dilation, use_bias=spec.use_bias, data_format=fmt,
                  dtype=spec.dtype)
    if spec.transposed:
        # Keras' output size: SAME gives input x stride (output_padding None); VALID with an explicit
        # output_padding gives (input - 1) x stride + dilated kernel + output_padding (None would instead
        # give max(dilated kernel, stride) at the end).
        output_padding = None if spec.padding.mode is PaddingMode.SAME else tuple(spec.output_padding)
        if spec.padding.mode is PaddingMode.EXPLICIT:
            # ConvTranspose knows same/valid only: explicit pads are a Cropping after a VALID layer, with the
            # output padding still missing at the end (if any) kept on it.
            extra, crops = geometry.valid_then_crop(spec.padding.pads, spec.output_padding)
            output_padding, padding = extra, "valid"
            if d == 1:  # Cropping1D has no data_format: it crops axis 1, so channels_first goes round it
                cropping = keras.layers.Cropping1D(crops[0], dtype=spec.dtype)
                turn = [keras.layers.Permute((2, 1), dtype=spec.dtype) for _ in range(2)]
                after.extend([turn[0], cropping, turn[1]]
                             if spec.channels_first else [cropping])
            else:
                after.append(getattr(keras.layers, f"Cropping{d}D")(crops, data_format=fmt, dtype=spec.dtype))
            notes.append(f"explicit pads as Cropping{d}D({crops[0] if d == 1 else crops}) after a VALID "
                         f"Conv{d}DTranspose(output_padding={extra})")
        layer = getattr(keras.layers, f"Conv{d}DTranspose")(spec.filters, spec.kernel_size, padding=padding,
                                                            output_padding=output_padding, **common, **inits)
        return layer, before, after, notes
    if spec.padding.mode is PaddingMode.EXPLICIT:
        # Keras convolutions only know same/valid: explicit pads are a ZeroPadding in front, as users write it.
        pads = spec.padding.pads
        before.append(getattr(keras.layers, f"ZeroPadding{d}D")(pads[0] if d == 1 else pads, data_format=fmt,
                                                               dtype=spec.dtype))
        padding = "valid"
    if _uses_depthwise_layer(spec):
        inits = {("depthwise_initializer" if k == "kernel_initializer" else k): v for k, v in inits.items()}
        layer = getattr(keras.layers, f"DepthwiseConv{d}D")(spec.kernel_size, padding=padding,
                                                            depth_multiplier=spec.multiplier, **common, **inits)
        notes.append(f"DepthwiseConv{d}D(depth_multiplier={spec.multiplier}): kernel "
                     f"{conversion('HWCM' if d == 2 else 'WCM', spec.kernel_layout)}")
        return layer, before, after, notes
    layer = getattr(keras.layers, f"Conv{d}D")(spec.filters, spec.kernel_size, padding=padding, groups=spec.groups,
                                               **common, **inits)
    return layer, before, after, notes


class KerasPredictBackend:
    name = "keras"
    summary = "Keras convolution layers in a keras.Model, run through predict()"
    requires: tuple[str, ...] = ()
    install_hint = ""
    call_directly = False

    def run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        backend_info(self.name).check_spec(spec)
        return run_framework(self.name, lambda: self._run(spec, x, weights), spec.device)

    def _keras(self) -> Any:
        """The Keras module this backend builds with (Keras 3 on TensorFlow here; other engines override it)."""
        from convdiff.frameworks import import_keras

        return import_keras()

    def _initializers(self, keras: Any, spec: ConvSpec, weights: Weights | None) -> dict[str, Any]:
        """The layer's initializer arguments: the spec's, seeded (`default` passes none)."""
        from convdiff.spec.initializers import parse_initializer

        # `default` passes nothing, so the layer's own default initializer (unseeded) is what runs.
        inits = {key: parse_initializer(text) for key, text in
                 (("kernel_initializer", spec.initializer), ("bias_initializer", spec.bias_initializer))}
        if any(init.is_default for init in inits.values()):
            # The default initializers are unseeded and draw from Keras' global seed generator:
            # seeding it keeps a run reproducible without changing which initializer runs.
            keras.utils.set_random_seed(spec.seed)
        return {key: init.keras(spec.seed) for key, init in inits.items() if not init.is_default}

    def _run(self, spec: ConvSpec, x: np.ndarray, weights: Weights | None) -> SideResult:
        keras = self._keras()
        start = time.perf_counter()
        layer, before, after, notes = keras_layer(keras, spec, self._initializers(keras, spec, weights))
        to_layer = conversion(input_layout_for(spec.rank), input_layout_for(spec.rank, True))
        if spec.channels_first:
            # The layer computes channels_first: it is given NCHW data, as users of such a model do.
            x = np.ascontiguousarray(to_layer.apply(x))
            notes.append(f"data_format channels_first: input {to_layer}; output transposed back")

        def stack(tensor: Any) -> Any:
            for pre in before:
                tensor = pre(tensor)
            tensor = layer(tensor)
            for post in after:
                tensor = post(tensor)
            return tensor

        compute_dtype = layer.compute_dtype
        if self.call_directly:
            tensor = keras.ops.convert_to_tensor(x)
            shape = (None, *x.shape[1:])
            for pre in before:  # the layer sees the zero-padded input: build it for that shape, not the raw one
                shape = pre.compute_output_shape(shape)
            layer.build(shape)
            self._assign(layer, weights, spec)
            out = keras.ops.convert_to_numpy(stack(tensor))
            if x.dtype != np.dtype(spec.dtype):
                notes.append(f"input is {x.dtype}: the layer casts it to its compute dtype {spec.dtype}")
        else:
            inp = keras.Input(shape=x.shape[1:], batch_size=x.shape[0], dtype=spec.dtype)
            model = keras.Model(inp, stack(inp))
            self._assign(layer, weights, spec)
            out = model.predict(x, batch_size=x.shape[0], verbose=0)
            floatx = keras.config.floatx()
            if x.dtype.kind == "f" and x.dtype != np.dtype(floatx):
                # predict's data adapter casts float arrays to floatx before the model sees them, so a
                # float64 model still only ever gets float32-rounded inputs: that is its real precision.
                notes.append(f"input is {x.dtype}: Model.predict casts float inputs to keras floatx ({floatx}) "
                             f"before the model's {spec.dtype} layer")
                compute_dtype = lower_precision(compute_dtype, floatx)
        out = np.asarray(out)
        if spec.channels_first:
            back = conversion(input_layout_for(spec.rank, True), input_layout_for(spec.rank))
            out = np.ascontiguousarray(back.apply(out))
        bias = keras.ops.convert_to_numpy(layer.bias) if spec.use_bias else None
        return SideResult(self.name, out, self._canonical_kernel(keras, layer, spec), bias,
                          compute_dtype=compute_dtype, notes=tuple(notes), seconds=time.perf_counter() - start)

    @staticmethod
    def _kernel_variable(layer: Any) -> Any:
        return layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel

    @classmethod
    def _canonical_kernel(cls, keras: Any, layer: Any, spec: ConvSpec) -> np.ndarray:
        kernel = keras.ops.convert_to_numpy(cls._kernel_variable(layer))
        if _uses_depthwise_layer(spec):  # DepthwiseConv1D/2D hold (*k, C, M)
            return to_canonical(kernel, for_rank("HWCM", spec.rank), spec.rank)[0]
        return kernel

    @classmethod
    def _assign(cls, layer: Any, weights: Weights | None, spec: ConvSpec) -> None:
        if weights is None:
            return
        variable = cls._kernel_variable(layer)
        kernel = np.asarray(weights.kernel)
        if _uses_depthwise_layer(spec):
            kernel = from_canonical(kernel, for_rank("HWCM", spec.rank), spec.rank, channels=spec.in_channels)[0]
        variable.assign(kernel.astype(variable.dtype))
        if spec.use_bias and weights.bias is not None:
            layer.bias.assign(weights.bias.astype(layer.bias.dtype))


class KerasCallBackend(KerasPredictBackend):
    name = "keras-call"
    summary = "the Keras convolution layers called directly on a tensor"
    call_directly = True
