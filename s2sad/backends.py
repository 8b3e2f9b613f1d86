"""Backends: run generated code compiled by Numba (the default) or as plain Python.

`backend=` on a transform picks one; otherwise `S2SAD_BACKEND` does, else
"numba". Where Numba cannot compile a function, s2sad warns once and runs
the Python version, unless Numba was asked for explicitly or
`S2SAD_STRICT=1`, which make it an error.
"""

import os


def default():
    return os.environ.get("S2SAD_BACKEND", "numba")


def prepare(namespace, name, module, backend):
    explicit = backend is not None
    backend = backend or default()
    if backend == "python":
        return namespace[name]
    if backend == "numba":
        from . import numba_backend
        return numba_backend.compile_module(namespace, name, module, explicit=explicit)
    raise ValueError(f"unknown backend {backend!r}; choose 'python' or 'numba'")
