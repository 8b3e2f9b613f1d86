"""Backends: run generated code compiled by Numba (the default) or as plain Python.

`backend=` on a transform picks one; otherwise `S2SAD_BACKEND` does, else
"numba". Where Numba cannot compile a function, s2sad warns once and runs
the Python version, unless Numba was asked for explicitly or
`S2SAD_STRICT=1`, which make it an error.
"""

import os

import numpy as np


def default():
    return os.environ.get("S2SAD_BACKEND", "numba")


def prepare(namespace, name, module, backend):
    explicit = backend is not None
    backend = backend or default()
    if backend == "python":
        return numpy_scalars(namespace[name])
    if backend == "numba":
        from . import numba_backend
        return numba_backend.compile_module(namespace, name, module, explicit=explicit)
    raise ValueError(f"unknown backend {backend!r}; choose 'python' or 'numba'")


def numpy_scalars(fn):
    """`fn` taking its Python float arguments as NumPy floats: generated code then divides by zero
    as NumPy does (a derivative `g / x` at x = 0 is inf, with NumPy's warning), as the Numba
    backend does with error_model="numpy", where a Python float raised ZeroDivisionError."""
    def call(*args):
        return fn(*[np.float64(a) if type(a) is float else a for a in args])
    call.__wrapped__ = fn
    return call
