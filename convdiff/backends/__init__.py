"""Every way of building a convolution, one module each behind one Protocol, with a registry that
says what each can express. Nothing here imports a framework until a backend is used."""

from convdiff.backends.base import Backend, BackendRefusedError, SideResult, Weights
from convdiff.backends.registry import (REGISTRY, BackendInfo, Capabilities, backend_info, backend_names, get_backend,
                                        prepare_frameworks)

__all__ = ["REGISTRY", "Backend", "BackendInfo", "BackendRefusedError", "Capabilities", "SideResult", "Weights",
           "backend_info", "backend_names", "get_backend", "prepare_frameworks"]
