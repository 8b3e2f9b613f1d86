"""Backends: run generated code as plain Python or compiled by Numba."""

import os


def prepare(namespace, name, module, backend):
    explicit = backend is not None
    backend = backend or os.environ.get("S2SAD_BACKEND", "python")
    if backend == "python":
        return namespace[name]
    if backend == "numba":
        from . import numba_backend
        return numba_backend.compile_module(namespace, name, module, explicit=explicit)
    raise ValueError(f"unknown backend {backend!r}; choose 'python' or 'numba'")
