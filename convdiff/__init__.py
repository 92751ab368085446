"""convdiff: are these two convolutions really the same, and if not, why?

The Python API for test suites: `convdiff.compare_arrays(reference, candidate, ...)` returns a
`Comparison` (truthy when it passes); `convdiff.testing.assert_conv_close(...)` raises
AssertionError with the CLI's report; `convdiff.compare_models(reference, candidate, x)` compares two
whole models layer by layer (a `ModelsResult`). All are loaded on first use, so `import convdiff` stays light.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("convdiff")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

# name -> module that defines it, imported on first attribute access (PEP 562).
_LAZY = {
    "compare_arrays": "convdiff.compare",
    "Comparison": "convdiff.compare",
    "Rule": "convdiff.compare",
    "Tolerance": "convdiff.compare",
    "Verdict": "convdiff.compare",
    "ConvSpec": "convdiff.spec",
    "assert_conv_close": "convdiff.testing",
    "tf32_consistency": "convdiff.analysis.bound",
    "compare_models": "convdiff.pipeline.models",
    "ModelsResult": "convdiff.pipeline.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convdiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
