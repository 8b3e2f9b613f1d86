"""NumPy functions that s2sad differentiates through a definition in plain NumPy.

A call of one of these in a user's function is read as a call of a definition
here, which s2sad parses and differentiates like the user's own helpers (and
Numba compiles like them), so the derivative needs no rule of its own and is
exactly the derivative of what the definition computes. A NumPy function with an
`axis` has two definitions, over all elements and along an axis, chosen by the
call as written: Numba compiles both branches of an `if axis is None`.
"""

import numpy as np


def var_all(a, ddof=0):
    """np.var(a): the mean squared deviation from the mean, over `count - ddof`."""
    d = a - np.mean(a)
    return np.sum(d * d) / (np.size(a) - ddof)


def var_along(a, axis, ddof=0):
    """np.var(a, axis)."""
    d = a - np.expand_dims(np.mean(a, axis=axis), axis)
    s = np.sum(d * d, axis=axis)
    return s / (np.size(a) // np.size(s) - ddof)


def std_all(a, ddof=0):
    """np.std(a): the square root of np.var (its derivative is infinite where all values are equal)."""
    return np.sqrt(var_all(a, ddof))


def std_along(a, axis, ddof=0):
    """np.std(a, axis)."""
    return np.sqrt(var_along(a, axis, ddof))


def diff_last(a, n=1):
    """np.diff(a, n): differences of neighbours along the last axis, n times over."""
    b = a
    for _ in range(n):
        b = b[..., 1:] - b[..., :-1]
    return b


def diff_along(a, n=1, axis=-1):
    """np.diff(a, n, axis)."""
    return np.swapaxes(diff_last(np.swapaxes(a, axis, -1), n), axis, -1)


# NumPy function -> (its definition where the call gives no axis, or the axis named, the one
# along an axis, the axis argument's position)
DEFINITIONS = {np.var: (var_all, var_along, 1, None), np.std: (std_all, std_along, 1, None),
               np.diff: (diff_last, diff_along, 2, -1)}
