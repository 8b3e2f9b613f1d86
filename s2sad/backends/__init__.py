"""Backends: run a generated module, compiled by Numba (the default) or as plain Python.

In: the namespace of a loaded generated module (s2sad.codegen) and the name of
its entry function. Out: a callable. `backend=` on a transform picks one;
otherwise `S2SAD_BACKEND` does, else "numba". Where Numba cannot compile a
function, s2sad warns once and runs the Python version, unless Numba was asked
for explicitly or `S2SAD_STRICT=1`, which make it an error.

`python` runs the generated source as it is; `numba` compiles it with
`numba.njit`, with Numba versions of the runtime's helpers (`numba`,
`numba_math`, `numba_reductions`). `numba` is imported on first use: importing
Numba costs about 0.3 s, which `import s2sad` does not pay.
"""

import os

from . import python


def default():
    return os.environ.get("S2SAD_BACKEND", "numba")


def prepare(namespace, name, module, backend):
    explicit = backend is not None
    backend = backend or default()
    if backend == "python":
        return python.numpy_scalars(namespace[name])
    if backend == "numba":
        from . import numba as numba_backend   # on first use: see the module's docstring
        return numba_backend.compile_module(namespace, name, module, explicit=explicit)
    raise ValueError(f"unknown backend {backend!r}; choose 'python' or 'numba'")
