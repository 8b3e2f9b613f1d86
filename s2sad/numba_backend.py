"""The Numba backend: generated code compiled by `numba.njit` in nopython mode.

Importing this module registers Numba implementations (`numba.extending.overload`)
of the helpers in `runtime`, so the very same generated source compiles: the
Python versions stay as they are and keep running under the Python backend.
`Tape` is swapped for a jitclass with the same fields.

`compile_module` njits every generated function of a module (user helper
primals and `_vjp`s call each other by name, so each name in the namespace is
replaced by its dispatcher) and returns a callable. Numba compiles on the
first call; if it cannot, s2sad warns once with Numba's reason and runs the
Python version, or raises `S2SADError` when Numba was asked for explicitly
(`backend="numba"`) or `S2SAD_STRICT=1`.
"""

import os
import re
import types as pytypes
import warnings

import numpy as np
import numba
from numba import njit, types
from numba.core import errors as nb_errors
from numba.experimental import jitclass
from numba.extending import overload
from numba.np.numpy_support import as_dtype
from numba.np.unsafe.ndarray import to_fixed_tuple

from . import runtime
from .errors import S2SADError


# ---- the tape -----------------------------------------------------------------
@jitclass([("floats", types.float64[:]), ("nfloats", types.int64),
           ("ints", types.int64[:]), ("nints", types.int64)])
class Tape:
    def __init__(self):
        self.floats = np.empty(64)
        self.nfloats = 0
        self.ints = np.empty(64, dtype=np.int64)
        self.nints = 0


@njit
def _grow(buffer, need):
    size = buffer.shape[0]
    while size < need:
        size *= 2
    new = np.empty(size, dtype=buffer.dtype)
    new[:buffer.shape[0]] = buffer
    return new


def _is_scalar(t):
    return isinstance(t, (types.Number, types.Boolean))


@overload(runtime.push)
def _push(tape, value):
    if isinstance(value, types.Array):
        def impl(tape, value):
            flat = value.ravel()
            n = flat.size
            if tape.nfloats + n > tape.floats.shape[0]:
                tape.floats = _grow(tape.floats, tape.nfloats + n)
            for k in range(n):
                tape.floats[tape.nfloats + k] = flat[k]
            tape.nfloats += n
            nd = value.ndim
            if tape.nints + nd > tape.ints.shape[0]:
                tape.ints = _grow(tape.ints, tape.nints + nd)
            for d in range(nd):
                tape.ints[tape.nints + d] = value.shape[d]
            tape.nints += nd
        return impl
    if isinstance(value, (types.Boolean, types.Integer)):
        def impl(tape, value):
            if tape.nints == tape.ints.shape[0]:
                tape.ints = _grow(tape.ints, tape.nints + 1)
            tape.ints[tape.nints] = value
            tape.nints += 1
        return impl
    if isinstance(value, types.Float):
        def impl(tape, value):
            if tape.nfloats == tape.floats.shape[0]:
                tape.floats = _grow(tape.floats, tape.nfloats + 1)
            tape.floats[tape.nfloats] = value
            tape.nfloats += 1
        return impl
    return None


@overload(runtime.pop)
def _pop(tape, like):
    if isinstance(like, types.Array):
        nd = like.ndim
        dtype = as_dtype(like.dtype)

        def impl(tape, like):
            tape.nints -= nd
            shape = to_fixed_tuple(tape.ints[tape.nints:tape.nints + nd], nd)
            n = 1
            for d in range(nd):
                n *= shape[d]
            tape.nfloats -= n
            out = np.empty(shape, dtype=dtype)
            flat = out.reshape(n)
            for k in range(n):
                flat[k] = tape.floats[tape.nfloats + k]
            return out
        return impl
    if isinstance(like, types.Boolean):
        def impl(tape, like):
            tape.nints -= 1
            return tape.ints[tape.nints] != 0
        return impl
    if isinstance(like, types.Integer):
        def impl(tape, like):
            tape.nints -= 1
            return tape.ints[tape.nints]
        return impl
    if isinstance(like, types.Float):
        def impl(tape, like):
            tape.nfloats -= 1
            return tape.floats[tape.nfloats]
        return impl
    return None


# ---- loops and zeros -----------------------------------------------------------
@overload(runtime.reversed_range)
def _reversed_range(start, stop, step):
    def impl(start, stop, step):
        n = len(range(start, stop, step))
        return range(start + (n - 1) * step, start - step, -step)
    return impl


@overload(runtime.zeros_like)
def _zeros_like(x):
    if isinstance(x, types.Array):
        return lambda x: np.zeros(x.shape)
    if _is_scalar(x):
        return lambda x: 0.0
    return None


# ---- reductions and broadcasting -------------------------------------------------
@njit
def _split(shape, axis):
    """(outer, n, inner): a C-ordered array of `shape` seen as [outer, n, inner] around `axis`."""
    outer = 1
    inner = 1
    for d in range(len(shape)):
        if d < axis:
            outer *= shape[d]
        elif d > axis:
            inner *= shape[d]
    return outer, shape[axis], inner


@overload(runtime.unbroadcast)
def _unbroadcast(g, x):
    if not isinstance(x, types.Array):
        if isinstance(g, types.Array):
            return lambda g, x: np.sum(g)
        if _is_scalar(g):
            return lambda g, x: g
        return None
    if not isinstance(g, types.Array) or g.ndim < x.ndim:
        return None
    gnd, xnd = g.ndim, x.ndim

    def impl(g, x):
        if gnd == xnd:
            same = True
            for d in range(xnd):
                if g.shape[d] != x.shape[d]:
                    same = False
            if same:
                return np.asarray(g, dtype=np.float64)
        out = np.zeros(x.shape)
        flat = out.reshape(out.size)
        lead = gnd - xnd
        for idx in np.ndindex(g.shape):
            k = 0
            for d in range(xnd):
                i = idx[lead + d] if x.shape[d] != 1 else 0
                k = k * x.shape[d] + i
            flat[k] += g[idx]
        return out
    return impl


@overload(runtime.sum_adjoint)
def _sum_adjoint(g, x, axis):
    if axis is None or isinstance(axis, (types.NoneType, types.Omitted)):
        if isinstance(x, types.Array):
            return lambda g, x, axis: g + np.zeros(x.shape)
        if _is_scalar(x):
            return lambda g, x, axis: g + 0.0
        return None
    if not (isinstance(axis, types.Integer) and isinstance(x, types.Array)):
        return None
    if isinstance(g, types.Array):
        if g.ndim != x.ndim - 1:
            return None

        def impl(g, x, axis):
            a = axis + x.ndim if axis < 0 else axis
            outer, n, inner = _split(x.shape, a)
            gf = np.ascontiguousarray(g).reshape(g.size)
            out = np.empty(x.shape)
            of = out.reshape(out.size)
            for o in range(outer):
                for j in range(n):
                    for i in range(inner):
                        of[(o * n + j) * inner + i] = gf[o * inner + i]
            return out
        return impl
    if _is_scalar(g):  # x is 1-d: summing its only axis gave a scalar
        return lambda g, x, axis: g + np.zeros(x.shape)
    return None


@overload(runtime.extreme_adjoint)
def _extreme_adjoint(g, x, ans, axis):
    if not isinstance(x, types.Array):
        return lambda g, x, ans, axis: g * ((x == ans) * 1.0)
    if axis is None or isinstance(axis, (types.NoneType, types.Omitted)):
        def impl(g, x, ans, axis):
            hits = (x == ans) * 1.0
            return (g / np.sum(hits)) * hits
        return impl

    def impl(g, x, ans, axis):
        hits = (x == runtime.sum_adjoint(ans, x, axis)) * 1.0
        count = np.sum(hits, axis=axis)
        return runtime.sum_adjoint(g / count, x, axis) * hits
    return impl


@overload(runtime.cumsum_adjoint)
def _cumsum_adjoint(g, x, axis):
    if not isinstance(g, types.Array):
        return None
    if axis is None or isinstance(axis, (types.NoneType, types.Omitted)):
        if isinstance(x, types.Array):
            def impl(g, x, axis):
                gf = np.ascontiguousarray(g).reshape(g.size)
                out = np.empty(gf.size)
                acc = 0.0
                for k in range(gf.size - 1, -1, -1):
                    acc += gf[k]
                    out[k] = acc
                return out.reshape(x.shape)
            return impl
        return lambda g, x, axis: np.sum(g)

    def impl(g, x, axis):
        a = axis + g.ndim if axis < 0 else axis
        outer, n, inner = _split(g.shape, a)
        gf = np.ascontiguousarray(g).reshape(g.size)
        out = np.empty(g.shape)
        of = out.reshape(out.size)
        for o in range(outer):
            for i in range(inner):
                acc = 0.0
                for j in range(n - 1, -1, -1):
                    k = (o * n + j) * inner + i
                    acc += gf[k]
                    of[k] = acc
        return out
    return impl


# ---- products --------------------------------------------------------------------
def _ndim(t):
    return t.ndim if isinstance(t, types.Array) else 0


@njit
def _f64(a):
    return np.ascontiguousarray(a).astype(np.float64)


@njit
def _outer(a, b):
    """np.multiply.outer for arrays of any rank."""
    return np.outer(np.ascontiguousarray(a).reshape(a.size),
                    np.ascontiguousarray(b).reshape(b.size)).reshape(a.shape + b.shape)


@overload(runtime.dot_adjoint_x)
def _dot_adjoint_x(g, x, y):
    xn, yn, gn = _ndim(x), _ndim(y), _ndim(g)
    if xn == 0 or yn == 0:
        return lambda g, x, y: runtime.unbroadcast(g * y, x)
    if yn == 1:
        if xn > 1 or gn > 0:
            return lambda g, x, y: _outer(g, y)
        return lambda g, x, y: g * y
    if xn == 1:
        return lambda g, x, y: np.dot(_f64(y), _f64(g))
    if xn == 2 and yn == 2:
        return lambda g, x, y: np.dot(_f64(g), _f64(y.T))
    return None


@overload(runtime.dot_adjoint_y)
def _dot_adjoint_y(g, x, y):
    xn, yn = _ndim(x), _ndim(y)
    if xn == 0 or yn == 0:
        return lambda g, x, y: runtime.unbroadcast(g * x, y)
    if xn == 1:
        if yn > 1:
            return lambda g, x, y: _outer(x, g)
        return lambda g, x, y: g * x
    if xn == 2:
        return lambda g, x, y: np.dot(_f64(x.T), _f64(g))
    return None


@overload(runtime.reshape)
def _reshape(x, shape):
    if isinstance(x, types.Array):
        return lambda x, shape: np.ascontiguousarray(x).reshape(shape)
    return None


@overload(runtime.transpose_adjoint)
def _transpose_adjoint(g, axes):
    if not isinstance(g, types.Array):
        return None
    if axes is None or isinstance(axes, (types.NoneType, types.Omitted)):
        return lambda g, axes: np.transpose(g)
    nd = g.ndim

    def impl(g, axes):
        inv = np.empty(nd, dtype=np.int64)
        for d in range(nd):
            a = axes[d] + nd if axes[d] < 0 else axes[d]
            inv[a] = d
        return np.transpose(g, to_fixed_tuple(inv, nd))
    return impl


@overload(runtime.solve_adjoint_a)
def _solve_adjoint_a(g, a, ans):
    if not (isinstance(a, types.Array) and isinstance(ans, types.Array)):
        return None
    if ans.ndim == 1:
        def impl(g, a, ans):
            b_bar = np.linalg.solve(_f64(a.T), _f64(g))
            return -np.outer(b_bar, ans)
        return impl

    def impl(g, a, ans):
        b_bar = np.linalg.solve(_f64(a.T), _f64(g))
        return -np.dot(b_bar, _f64(ans.T))
    return impl


# ---- elementwise helpers -----------------------------------------------------------
@overload(runtime.max_share)
def _max_share(x, y):
    return lambda x, y: (x > y) * 1.0 + (x == y) * 0.5


@overload(runtime.inside)
def _inside(x, lo, hi):
    if isinstance(x, types.Array) or isinstance(lo, types.Array) or isinstance(hi, types.Array):
        return lambda x, lo, hi: ((x >= lo) & (x <= hi)) * 1.0
    return lambda x, lo, hi: 1.0 if (x >= lo and x <= hi) else 0.0


@overload(runtime.add_at)
def _add_at(target, index, g):
    if not isinstance(target, types.Array):
        return None
    if isinstance(index, types.Integer):
        def impl(target, index, g):
            out = target.copy()
            out[index] += g
            return out
        return impl
    if isinstance(index, types.Array) and isinstance(index.dtype, types.Integer) and index.ndim == 1:
        g_is_array = isinstance(g, types.Array)

        def impl(target, index, g):
            out = target.copy()
            n = target.shape[0]
            for k in range(index.shape[0]):
                j = index[k]
                if j < 0:
                    j += n
                if g_is_array:
                    out[j] += g[k]
                else:
                    out[j] += g
            return out
        return impl
    return None


@overload(runtime.astype)
def _astype(x, dtype):
    if isinstance(x, types.Array):
        return lambda x, dtype: x.astype(dtype)
    if _is_scalar(x):
        return lambda x, dtype: np.asarray(x).astype(dtype)
    return None


# ---- compiling a generated module ----------------------------------------------------
def _strict(explicit):
    return explicit or os.environ.get("S2SAD_STRICT", "") not in ("", "0")


def _reason(exc, lines=12):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    text = [t for t in text if t.strip()]
    return "\n".join(text[:lines])


class Compiled:
    """A generated function compiled by Numba, with the Python version to fall back on."""

    def __init__(self, name, dispatcher, python, strict):
        self.name = name
        self.dispatcher = dispatcher
        self.python = python
        self.strict = strict
        self.failed = None

    @property
    def compiled(self):
        return self.failed is None and bool(self.dispatcher.signatures)

    def __call__(self, *args):
        if self.failed is None:
            try:
                return self.dispatcher(*args)
            except nb_errors.NumbaError as exc:
                reason = _reason(exc)
                if self.strict:
                    raise S2SADError(f"Numba cannot compile the generated {self.name}:\n{reason}\n"
                                     "(see s2sad.source(...) for the generated code; backend='python' runs it "
                                     "without Numba)") from None
                self.failed = reason
                warnings.warn(f"s2sad: Numba cannot compile the generated {self.name}; running it as plain "
                              f"Python instead. Numba says:\n{reason}", RuntimeWarning, stacklevel=3)
        return self.python(*args)


def compile_module(namespace, name, module, explicit=False):
    """njit every generated function of `module` and return the one called `name`.

    `namespace` (what the Python backend runs) is left untouched: the compiled
    functions get a copy of it in which `Tape` is the jitclass and each
    generated function's name is its dispatcher.
    """
    names = [tree.name for tree in module.functions]
    nb_namespace = dict(namespace)
    nb_namespace["Tape"] = Tape
    for fn_name in names:
        fn = namespace[fn_name]
        clone = pytypes.FunctionType(fn.__code__, nb_namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        nb_namespace[fn_name] = njit(clone)
    return Compiled(name, nb_namespace[name], namespace[name], _strict(explicit))
