"""The Python backend: generated code run as it is, on NumPy."""

import numpy as np


def numpy_scalars(fn):
    """`fn` taking its Python float arguments as NumPy floats: generated code then divides by zero
    as NumPy does (a derivative `g / x` at x = 0 is inf, with NumPy's warning), as the Numba
    backend does with error_model="numpy", where a Python float raised ZeroDivisionError."""
    def call(*args):
        return fn(*[np.float64(a) if type(a) is float else a for a in args])
    call.__wrapped__ = fn
    return call
