"""NumPy functions that s2sad differentiates through a definition in plain NumPy.

A call of one of these in a user's function is read as a call of a definition
here, which s2sad parses and differentiates like the user's own helpers (and
Numba compiles like them), so the derivative needs no rule of its own and is
exactly the derivative of what the definition computes. A NumPy function with an
`axis` has a definition over all elements and one along an axis (np.sort, whose
default is the last axis, a third for `axis=None`), chosen by the call as written:
Numba compiles both branches of an `if axis is None`.

Most definitions along an axis move that axis first with np.swapaxes (a view, so
its adjoint is a view too), work on the first axis, and move it back.
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
    """np.std(a): the square root of np.var (its derivative is infinite where all values are equal).
    Of one number it is 0 whatever the number, so its derivative is 0 (through the square root it
    would be 0.5 / 0 * 0: NaN); with ddof=1 it is NaN, as in NumPy."""
    if np.size(a) == 1 and ddof == 0:
        return 0.0 * np.sum(a)
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


def flip_all(m):
    """np.flip(m): every axis reversed, which reverses the order of the elements."""
    return np.reshape(np.copy(np.ravel(m)[::-1]), np.shape(m))


def flip_along(m, axis):
    """np.flip(m, axis)."""
    return np.swapaxes(np.swapaxes(m, axis, 0)[::-1], 0, axis)


def flipud(m):
    """np.flipud(m): the first axis reversed."""
    return m[::-1]


def fliplr(m):
    """np.fliplr(m): the second axis reversed."""
    return m[:, ::-1]


def roll_all(a, shift):
    """np.roll(a, shift): the elements in order, shifted `shift` places along, the last ones first."""
    flat = np.ravel(a)
    n = np.size(flat)
    k = n - shift % n
    return np.reshape(np.concatenate((flat[k:], flat[:k])), np.shape(a))


def roll_along(a, shift, axis):
    """np.roll(a, shift, axis)."""
    b = np.swapaxes(a, axis, 0)
    k = b.shape[0] - shift % b.shape[0]
    return np.swapaxes(np.concatenate((b[k:], b[:k])), 0, axis)


def repeat_all(a, repeats):
    """np.repeat(a, repeats) for a number of repeats: each element `repeats` times, in order."""
    flat = np.ravel(a)
    return flat[np.arange(np.size(flat) * repeats) // repeats]


def repeat_along(a, repeats, axis):
    """np.repeat(a, repeats, axis)."""
    b = np.swapaxes(a, axis, 0)
    return np.swapaxes(b[np.arange(b.shape[0] * repeats) // repeats], 0, axis)


def tile(A, reps):
    """np.tile(A, reps) for a number of repeats: A's last axis, `reps` times over."""
    b = np.swapaxes(A, -1, 0)
    return np.swapaxes(b[np.arange(b.shape[0] * reps) % b.shape[0]], 0, -1)


def cumprod_first(a):
    """np.cumprod(a, axis=0): running products, by a loop (dividing a running product by the
    element would fail at a zero)."""
    out = np.copy(a)
    for i in range(1, a.shape[0]):
        out[i] = out[i - 1] * a[i]
    return out


def cumprod_all(a):
    """np.cumprod(a): running products of the elements in order."""
    return cumprod_first(np.ravel(a))


def cumprod_along(a, axis):
    """np.cumprod(a, axis)."""
    return np.swapaxes(cumprod_first(np.swapaxes(a, axis, 0)), 0, axis)


def sort_last(a):
    """np.sort(a): the elements along the last axis in increasing order, taken from `a` by the
    order np.argsort finds (which is constant wherever it is differentiable)."""
    return np.take_along_axis(a, np.argsort(a, axis=-1), axis=-1)


def sort_along(a, axis):
    """np.sort(a, axis)."""
    return np.take_along_axis(a, np.argsort(a, axis=axis), axis=axis)


def sort_all(a):
    """np.sort(a, axis=None): all elements in increasing order."""
    flat = np.ravel(a)
    return flat[np.argsort(flat)]


def linspace(start, stop, num=50, endpoint=True):
    """np.linspace(start, stop, num, endpoint) of two numbers: `num` evenly spaced values, computed
    as NumPy does (the steps from `start`, and the last value `stop` itself)."""
    div = num - 1 if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0 * (stop - start)
    y = np.arange(num) * step + start
    if endpoint and num > 1:
        y[num - 1] = stop
    return y


# arguments the definitions take as one integer only (NumPy also takes a sequence there)
INTEGER_ARGUMENTS = {repeat_all: "repeats", repeat_along: "repeats", tile: "reps"}


class Definition:
    """How a call of a NumPy function is read as a call of a definition: `plain` where the call
    gives no axis (or the default one), `along` where it gives another, `flat` where it gives
    axis=None and that is not the default; the axis is the argument at position `axis_at`."""

    def __init__(self, plain, along=None, axis_at=None, default_axis=None, flat=None):
        self.plain, self.along, self.axis_at, self.default_axis = plain, along, axis_at, default_axis
        self.flat = flat


DEFINITIONS = {
    np.var: Definition(var_all, var_along, 1),
    np.std: Definition(std_all, std_along, 1),
    np.diff: Definition(diff_last, diff_along, 2, -1),
    np.flip: Definition(flip_all, flip_along, 1),
    np.flipud: Definition(flipud),
    np.fliplr: Definition(fliplr),
    np.roll: Definition(roll_all, roll_along, 2),
    np.repeat: Definition(repeat_all, repeat_along, 2),
    np.tile: Definition(tile),
    np.cumprod: Definition(cumprod_all, cumprod_along, 1),
    np.sort: Definition(sort_last, sort_along, 1, -1, flat=sort_all),
    np.linspace: Definition(linspace),
}
