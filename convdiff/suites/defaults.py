"""Which initializer does a layer use when none is given? Asked live, then confirmed by a draw.

For each API: read the initializer the framework actually attaches (the layer's
`kernel_initializer` / `bias_initializer`, or for `tf.compat.v1.get_variable` the one its variable
store picks, `_VariableStore._get_default_initializer`), draw real weights through the API with no
initializer given, and test the draw against the law of what was declared (`check_distribution`).
Nothing here is a table typed in by hand.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from convdiff.analysis.kernels import DistributionCheck, check_distribution
from convdiff.spec.initializers import parse_initializer

KERNEL_INPUT = (16, 16, 32)
FILTERS = 64


@dataclass(frozen=True)
class DefaultInitializer:
    """One weight of one API, created with no initializer given."""

    api: str
    """e.g. "keras.layers.Conv2D"."""
    weight: str
    """"kernel" or "bias"."""
    declared: str
    """What the framework attaches, as it names it (class and config)."""
    initializer: str | None
    """The convdiff name of `declared` (e.g. "glorot_uniform"); None when it has none."""
    shape: tuple[int, ...]
    """Shape of the drawn weight."""
    check: DistributionCheck | None
    """The drawn weight against `initializer`'s law."""

    @property
    def confirmed(self) -> bool:
        return self.check is not None and self.check.consistent


@dataclass(frozen=True)
class DefaultsReport:
    rows: tuple[DefaultInitializer, ...]
    unavailable: tuple[tuple[str, str], ...]
    """(api, why) for the APIs that could not be asked here."""


def _describe(init: Any) -> tuple[str, str | None]:
    """(declared text, convdiff name) of a framework initializer object."""
    cls = type(init).__name__
    try:
        config = init.get_config()
    except Exception:  # noqa: BLE001 - a description must never fail
        config = {}
    config = {k: v for k, v in config.items() if k not in ("seed", "dtype") and v is not None}
    args = ", ".join(f"{k}={v!r}" for k, v in config.items())
    declared = f"{type(init).__module__.split('.')[0]}:{cls}({args})"
    try:
        name = str(parse_initializer(cls))
    except Exception:  # noqa: BLE001 - not in our registry: shown, not checked
        name = None
    return declared, name


def _row(api: str, weight: str, declared: Any, values: np.ndarray) -> DefaultInitializer:
    text, name = _describe(declared)
    check = check_distribution(values, name) if name is not None else None
    return DefaultInitializer(api, weight, text, name, tuple(values.shape), check)


def keras_defaults(seed: int) -> list[DefaultInitializer]:
    from convdiff.frameworks import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)  # the defaults are unseeded: make the draw reproducible
    rows = []
    conv = keras.layers.Conv2D(FILTERS, 3)
    conv.build((None, *KERNEL_INPUT))
    dense = keras.layers.Dense(FILTERS)
    dense.build((None, 9 * KERNEL_INPUT[-1]))
    for api, layer in (("keras.layers.Conv2D", conv), ("keras.layers.Dense", dense)):
        rows.append(_row(api, "kernel", layer.kernel_initializer, keras.ops.convert_to_numpy(layer.kernel)))
        rows.append(_row(api, "bias", layer.bias_initializer, keras.ops.convert_to_numpy(layer.bias)))
    return rows


def tf1_defaults(seed: int) -> list[DefaultInitializer]:
    import warnings

    from convdiff.frameworks import import_tensorflow

    tf = import_tensorflow(legacy=True)
    v1 = tf.compat.v1
    from tensorflow.python.ops import variable_scope  # the store get_variable consults

    rows = []
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`tf.layers.\w+` is deprecated", category=UserWarning)
        v1.set_random_seed(seed)
        store = variable_scope._VariableStore()  # noqa: SLF001 - the live answer; no public API exposes it
        gv_default = {w: store._get_default_initializer(w, dtype=tf.float32)[0] for w in ("kernel", "bias")}  # noqa: SLF001
        kshape = (3, 3, KERNEL_INPUT[-1], FILTERS)
        with v1.variable_scope("get_variable"):
            gv = {"kernel": v1.get_variable("kernel", shape=kshape), "bias": v1.get_variable("bias", shape=(FILTERS,))}
        x = v1.placeholder(tf.float32, (1, *KERNEL_INPUT))
        conv = v1.layers.Conv2D(FILTERS, 3, name="conv2d")
        conv(x)
        dense = v1.layers.Dense(FILTERS, name="dense")
        dense(v1.placeholder(tf.float32, (1, 9 * KERNEL_INPUT[-1])))
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(init)
        for weight in ("kernel", "bias"):
            rows.append(_row("tf.compat.v1.get_variable", weight, gv_default[weight], session.run(gv[weight])))
        for api, layer in (("tf.compat.v1.layers.conv2d", conv), ("tf.compat.v1.layers.dense", dense)):
            for weight in ("kernel", "bias"):
                declared = getattr(layer, f"{weight}_initializer")
                if declared is None:  # the layer passes None: get_variable's default decides
                    declared = gv_default[weight]
                rows.append(_row(api, weight, declared, session.run(getattr(layer, weight))))
    return rows


def collect_defaults(seed: int = 42) -> DefaultsReport:
    """Ask every available API for its default kernel and bias initializers, and confirm by drawing.

    The TF1 APIs need tf-keras and TensorFlow imported in legacy mode; when TensorFlow was already
    imported without it (e.g. inside a test process) they are listed as unavailable, with the reason.
    """
    from convdiff.backends import backend_info
    from convdiff.frameworks import LEGACY_ENV

    info = backend_info("v1-layers")
    tf1_ok = not info.missing()
    unavailable = []
    if tf1_ok and "tensorflow" in sys.modules and __import__("os").environ.get(LEGACY_ENV) != "1":
        tf1_ok = False
        unavailable.append(("tf.compat.v1", "TensorFlow was already imported without TF_USE_LEGACY_KERAS=1 "
                                            "in this process; run `convdiff defaults` on its own"))
    elif not tf1_ok:
        unavailable.append(("tf.compat.v1", f"needs {', '.join(info.missing())}: {info.install_hint}"))
    if tf1_ok:
        from convdiff.frameworks import import_tensorflow

        import_tensorflow(legacy=True)  # before Keras imports TensorFlow
    rows = keras_defaults(seed)
    if tf1_ok:
        rows += tf1_defaults(seed)
    return DefaultsReport(tuple(rows), tuple(unavailable))
