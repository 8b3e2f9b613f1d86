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

import itertools
import linecache
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
import types as pytypes
import warnings
import weakref

import gast
import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, objmode, types
from numba.core import errors as nb_errors
from numba.core import event as nb_event
from numba.experimental import jitclass
from numba.extending import intrinsic, overload, typeof_impl
from numba.np.numpy_support import as_dtype
from numba.np.unsafe.ndarray import to_fixed_tuple

from .. import cache, runtime
from ..errors import S2SADError
from ..rules import custom
from . import numba_math
from .jit import jit_each
from . import python as python_backend
from .numba_math import flat_elements
from .numba_reductions import drop_axis, split_shape


# ---- the tape -----------------------------------------------------------------
@jitclass([("floats", types.float64[::1]), ("nfloats", types.int64), ("floats_at", types.intp),
           ("ints", types.int64[::1]), ("nints", types.int64),
           ("slots", types.float64[::1]), ("nslots", types.int64), ("slots_at", types.intp)])
class Tape:
    """Stacks of floats and of ints (push and pop), and the slots loops reserve (tape_reserve).

    `floats_at` and `slots_at` are the addresses of the float buffers, kept beside them: values
    are stored and loaded there directly (see _store_float)."""
    def __init__(self):
        self.floats = np.empty(64)
        self.floats_at = self.floats.ctypes.data
        self.nfloats = 0
        self.ints = np.empty(64, dtype=np.int64)
        self.nints = 0
        self.slots = np.empty(64)
        self.slots_at = self.slots.ctypes.data
        self.nslots = 0


@intrinsic
def _store_float(typingctx, address, slot, value):
    """`value` into the float64 at `address` + 8 `slot`. Through the array object, each store
    also counts a reference to it: a million pushes and pops took 8.9 ms that way, 6.3 ms so."""
    def codegen(context, builder, sig, args):
        address, slot, value = args
        base = builder.inttoptr(address, ir.DoubleType().as_pointer())
        builder.store(value, builder.gep(base, [slot]))
    return types.void(types.intp, types.intp, types.float64), codegen


@intrinsic
def _load_float(typingctx, address, slot):
    def codegen(context, builder, sig, args):
        address, slot = args
        base = builder.inttoptr(address, ir.DoubleType().as_pointer())
        return builder.load(builder.gep(base, [slot]))
    return types.float64(types.intp, types.intp), codegen


@njit
def _grow(buffer, need):
    size = buffer.shape[0]
    while size < need:
        size *= 2
    new = np.empty(size, dtype=buffer.dtype)
    _copy_into(new, buffer)
    return new


@njit
def _copy_into(new, buffer):
    """new[:len(buffer)] = buffer, as a loop (LLVM makes it a memcpy): Numba's slice
    assignment brings its broadcasting checks, whose error messages took 2 s to compile."""
    for k in range(buffer.shape[0]):
        new[k] = buffer[k]


# ---- large float buffers of tapes, kept from one call to the next ---------------------------
# A fresh buffer of many megabytes costs a page fault per 4 KiB page at its first writes: for a
# gradient that tapes 32 MB (GradBench ode, n = 10^4, s = 100) that was about half its time.
# So a tape's float buffers from 1 MiB up come from a small pool of buffers kept between calls,
# their pages already mapped. A buffer is free when nothing but the pool refers to it: a tape
# holding it (through Numba's reference to the array) counts as a reference.
_POOL_FROM = 1 << 17          # floats (1 MiB); a smaller buffer is cheaper to make afresh
_POOL_KEEP = 4                # buffers kept at most
_POOL_UPTO = 1 << 25          # floats (256 MiB): a larger buffer is not kept
_POOL = []
_POOL_LOCK = threading.Lock()


def _pooled_floats(n):
    """A float64 buffer of at least n elements that no tape holds: the smallest free one in the
    pool, else a new one, which the pool then keeps (dropping its oldest free buffer beyond
    _POOL_KEEP; one above _POOL_UPTO floats is not kept)."""
    with _POOL_LOCK:
        free = [b for b in _POOL if b.shape[0] >= n and sys.getrefcount(b) <= 3]  # _POOL, free, b
        if free:
            return min(free, key=lambda b: b.shape[0])
        new = np.empty(n)
        if n > _POOL_UPTO:
            return new
        _POOL.append(new)
        idle = [b for b in _POOL if sys.getrefcount(b) <= 3]
        if len(_POOL) > _POOL_KEEP and idle:
            _POOL.remove(idle[0])
        return new


def release_tape_buffers():
    """Let go of the tape buffers kept for later calls (the memory returns when no tape holds
    them)."""
    with _POOL_LOCK:
        _POOL.clear()


@njit
def _grow_floats(buffer, need):
    """`_grow` for a tape's float64 buffers: from _POOL_FROM floats up, a pooled buffer."""
    size = buffer.shape[0]
    while size < need:
        size *= 2
    if size < _POOL_FROM:
        new = np.empty(size)
    else:
        with objmode(new="float64[::1]"):
            new = _pooled_floats(size)
    _copy_into(new, buffer)
    return new


def _is_scalar(t):
    return isinstance(t, (types.Number, types.Boolean))


@overload(runtime.push)
def _push(tape, value):
    if isinstance(value, types.Array):
        flatten = flat_elements(value)   # a copy only where one is needed

        def impl(tape, value):
            flat = flatten(value)
            n = flat.size
            if tape.nfloats + n > tape.floats.shape[0]:
                tape.floats = _grow_floats(tape.floats, tape.nfloats + n)
                tape.floats_at = tape.floats.ctypes.data
            at, base = tape.floats_at, tape.nfloats  # stores through the address: see _store_float
            for k in range(n):
                _store_float(at, base + k, flat[k])
            tape.nfloats = base + n
            runtime.push_shape(tape, value)  # last pushed, first popped: pop reads the shape first
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
            n = tape.nfloats
            if n == tape.floats.shape[0]:
                tape.floats = _grow_floats(tape.floats, n + 1)
                tape.floats_at = tape.floats.ctypes.data
            _store_float(tape.floats_at, n, float(value))
            tape.nfloats = n + 1
        return impl
    if isinstance(value, types.BaseTuple) and len(value):   # the parts of np.concatenate, in a loop
        scope = {"runtime": runtime}
        exec("def impl(tape, value):\n" + "".join(f"    runtime.push(tape, value[{i}])\n"
                                                  for i in range(len(value))), scope)
        return scope["impl"]
    return None


@overload(runtime.push_shape)
def _push_shape(tape, value):
    nd = value.ndim

    def impl(tape, value):
        if tape.nints + nd > tape.ints.shape[0]:
            tape.ints = _grow(tape.ints, tape.nints + nd)
        for d in range(nd):
            tape.ints[tape.nints + d] = value.shape[d]
        tape.nints += nd
    return impl


def _shape_popper(nd):
    """A function taking the shape of an nd-dimensional array off the tape's int stack."""
    @njit(inline="always")
    def popped_shape(tape):
        tape.nints -= nd
        return to_fixed_tuple(tape.ints[tape.nints:tape.nints + nd], nd)
    return popped_shape


@overload(runtime.pop_shape)
def _pop_shape(tape, like):
    popped_shape = _shape_popper(like.ndim)
    dtype = as_dtype(like.dtype)

    def impl(tape, like):
        shape = popped_shape(tape)
        # only the shape is read (reverse.needs_shape), so the variable's current array serves
        # when it has that shape: no allocation a trip where the shapes do not change (an LSTM's
        # reverse loop restores eight gate slices and products this way every step)
        if like.shape == shape:
            return like
        return np.empty(shape, dtype=dtype)
    return impl


@overload(runtime.pop)
def _pop(tape, like):
    if isinstance(like, types.Array) and like.dtype == types.float64:
        nd, popped_shape = like.ndim, _shape_popper(like.ndim)

        def impl(tape, like):
            # a view of the tape, not a copy: the reverse sweep only pops, so nothing writes
            # there again, and the view keeps the buffer alive should the tape let go of it
            shape = popped_shape(tape)
            n = 1
            for d in range(nd):
                n *= shape[d]
            tape.nfloats -= n
            return tape.floats[tape.nfloats:tape.nfloats + n].reshape(shape)
        return impl
    if isinstance(like, types.Array):
        popped_shape, dtype = _shape_popper(like.ndim), as_dtype(like.dtype)

        def impl(tape, like):  # an array of the taped shape, then its values
            out = np.empty(popped_shape(tape), dtype=dtype)
            n = out.size
            tape.nfloats -= n
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
            return _load_float(tape.floats_at, tape.nfloats)
        return impl
    if isinstance(like, types.BaseTuple) and len(like):     # its items, the last pushed first
        last = len(like) - 1
        impl = _tuple_impl("tape, like", len(like),
                           lambda k: f"    p{last - k} = runtime.pop(tape, like[{last - k}])")
        impl.__globals__["runtime"] = runtime
        return impl
    return None


@overload(runtime.tape_reserve)
def _tape_reserve(tape, trips, per_trip):
    def impl(tape, trips, per_trip):
        base = tape.nslots
        need = base + per_trip * max(trips, 0)
        if need > tape.slots.shape[0]:
            tape.slots = _grow_floats(tape.slots, need)
            tape.slots_at = tape.slots.ctypes.data
        tape.nslots = need
        return base
    return impl


@overload(runtime.tape_put)
def _tape_put(tape, slot, value):
    return lambda tape, slot, value: _store_float(tape.slots_at, slot, float(value))


@overload(runtime.tape_release)
def _tape_release(tape, trips, per_trip):
    def impl(tape, trips, per_trip):
        tape.nslots -= per_trip * max(trips, 0)
        return tape.nslots
    return impl


@overload(runtime.tape_get)
def _tape_get(tape, slot, like):
    return lambda tape, slot, like: _load_float(tape.slots_at, slot)


# ---- loops and zeros -----------------------------------------------------------
@overload(runtime.reversed_range)
def _reversed_range(start, stop, step):
    def impl(start, stop, step):
        return range(runtime.reversed_first(start, stop, step), start - step, -step)
    return impl


@overload(runtime.reversed_first)
def _reversed_first(start, stop, step):
    def impl(start, stop, step):
        return start + (len(range(start, stop, step)) - 1) * step
    return impl


@overload(runtime.stop_gradient)
def _stop_gradient(x):
    return lambda x: x


@overload(runtime.zeros_like)
def _zeros_like(x):
    if isinstance(x, types.Array):
        return lambda x: np.zeros(x.shape)
    if _is_scalar(x):
        return lambda x: 0.0
    if isinstance(x, types.List) and _is_scalar(x.dtype):
        return lambda x: np.zeros(len(x))  # the adjoint of a list of numbers, one entry each
    return None


# ---- reductions and broadcasting -------------------------------------------------
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
    # Vectors and matrices, nearly every call, get loops of their own: the general version below
    # took 0.75 s to compile for two vectors (a third of a logistic regression's gradient).
    if (gnd, xnd) == (1, 1):
        return _unbroadcast_vector
    if (gnd, xnd) == (2, 1):
        return _unbroadcast_rows_to_vector
    if (gnd, xnd) == (2, 2):
        return _unbroadcast_matrix

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
        if xnd == 0:
            flat[0] = np.sum(g)
            return out
        if g.size == 0:
            return out
        # g as rows of its last axis, each added into a row of out (or, where x's last axis has
        # length 1, into one element): a loop LLVM vectorizes, where a loop over np.ndindex(g)
        # took 1.2 ns an element (25 us for 1000 x 25, three times the rest of the sum)
        length = g.shape[gnd - 1]
        rows = np.ascontiguousarray(g).reshape((g.size // length, length))
        lead = gnd - xnd
        whole_rows = x.shape[xnd - 1] != 1
        at = np.zeros(max(gnd - 1, 1), dtype=np.int64)   # the row's index along g's other axes
        for r in range(rows.shape[0]):
            k = 0
            for d in range(xnd - 1):
                k = k * x.shape[d] + (at[lead + d] if x.shape[d] != 1 else 0)
            k *= x.shape[xnd - 1]
            if whole_rows:
                for j in range(length):
                    flat[k + j] += rows[r, j]
            else:
                total = 0.0
                for j in range(length):
                    total += rows[r, j]
                flat[k] += total
            d = gnd - 2
            while d >= 0:
                at[d] += 1
                if at[d] < g.shape[d]:
                    break
                at[d] = 0
                d -= 1
        return out
    return impl


def _unbroadcast_vector(g, x):
    if g.shape[0] == x.shape[0]:
        return np.asarray(g, dtype=np.float64)
    out = np.zeros(1)   # x has length 1 (NumPy broadcast it)
    out[0] = np.sum(g)
    return out


def _unbroadcast_rows_to_vector(g, x):
    out = np.zeros(x.shape[0])
    if x.shape[0] == g.shape[1]:
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                out[j] += g[i, j]
    else:
        out[0] = np.sum(g)
    return out


def _unbroadcast_matrix(g, x):
    rows, cols = x.shape[0] != 1, x.shape[1] != 1
    if rows and cols:   # with a length-1 axis of g as well, (1, 1) from (1, 1)
        return np.asarray(g, dtype=np.float64)
    out = np.zeros(x.shape)
    for i in range(g.shape[0]):
        r = i if rows else 0
        if cols:
            for j in range(g.shape[1]):
                out[r, j] += g[i, j]
        else:
            total = 0.0
            for j in range(g.shape[1]):
                total += g[i, j]
            out[r, 0] += total
    return out


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
            outer, n, inner = split_shape(x.shape, a)
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

    if x.ndim >= 2 and isinstance(g, types.Array) and isinstance(ans, types.Array):
        # loops over x seen as [outer, n, inner] around the axis: the same work as the
        # broadcasting expressions below, which took Numba 5-7 s to compile for three axes
        def loops(g, x, ans, axis):
            outer, n, inner = split_shape(x.shape, axis + x.ndim if axis < 0 else axis)
            xs = np.ascontiguousarray(x).reshape((outer, n, inner))
            tops = np.ascontiguousarray(ans).reshape((outer, inner))
            gs = np.ascontiguousarray(g).reshape((outer, inner))
            out = np.zeros((outer, n, inner))
            for o in range(outer):
                for i in range(inner):
                    count = 0
                    for j in range(n):
                        count += xs[o, j, i] == tops[o, i]
                    share = gs[o, i] / count
                    for j in range(n):
                        if xs[o, j, i] == tops[o, i]:
                            out[o, j, i] = share
            return out.reshape(x.shape)
        return loops

    def impl(g, x, ans, axis):
        hits = (x == runtime.sum_adjoint(ans, x, axis)) * 1.0
        count = np.sum(hits, axis=axis)
        return runtime.sum_adjoint(g / count, x, axis) * hits
    return impl


@overload(runtime.take_along_axis_adjoint)
def _take_along_axis_adjoint(g, x, indices, axis):
    """Vectors, and matrices along either axis: added element by element (an index may repeat)."""
    if not isinstance(x, types.Array) or x.ndim > 2 or not isinstance(axis, types.Integer):
        return None
    if x.ndim == 1:
        def impl1(g, x, indices, axis):
            out = np.zeros(x.shape)
            for k in range(indices.shape[0]):
                out[indices[k]] += g[k]
            return out
        return impl1

    def impl(g, x, indices, axis):
        out = np.zeros(x.shape)
        along_rows = axis == 1 or axis == -1
        for i in range(indices.shape[0]):
            for j in range(indices.shape[1]):
                if along_rows:
                    out[i, indices[i, j]] += g[i, j]
                else:
                    out[indices[i, j], j] += g[i, j]
        return out
    return impl


@overload(runtime.diag_adjoint)
def _diag_adjoint(g, v, k):
    if not isinstance(v, types.Array):
        return None
    if v.ndim == 1:
        return lambda g, v, k: np.diag(g, k)

    def impl(g, v, k):
        out = np.zeros(v.shape)
        row, col = max(-k, 0), max(k, 0)
        for i in range(g.shape[0]):
            out[row + i, col + i] = g[i]
        return out
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
        outer, n, inner = split_shape(g.shape, a)
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


# np.multiply.outer as loops: Numba's np.outer took 1.9 s to compile for two vectors (a third
# of a two-layer perceptron's gradient)
@njit(inline='always')
def _outer_vectors(a, b):
    out = np.empty((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = a[i] * b[j]
    return out


@njit(inline='always')
def _outer_flat(a, b):
    out = _outer_vectors(np.ascontiguousarray(a).reshape(a.size), np.ascontiguousarray(b).reshape(b.size))
    return out.reshape(a.shape + b.shape)


def _outer(a, b):
    """np.multiply.outer(a, b), for the Numba types of a and b."""
    return _outer_vectors if _ndim(a) == 1 and _ndim(b) == 1 else _outer_flat


@overload(runtime.dot_adjoint_x)
def _dot_adjoint_x(g, x, y):
    xn, yn, gn = _ndim(x), _ndim(y), _ndim(g)
    if xn == 0 or yn == 0:
        return lambda g, x, y: runtime.unbroadcast(g * y, x)
    if yn == 1:
        if xn > 1 or gn > 0:
            outer = _outer(g, y)
            return lambda g, x, y: outer(g, y)
        return lambda g, x, y: g * y
    if yn > 2:
        return None   # a stack of matrices: Numba's np.dot takes none
    if xn == 1:
        if _blas_ready(y, g):
            return lambda g, x, y: np.dot(y, g)
        return lambda g, x, y: np.dot(_f64(y), _f64(g))
    if xn == 2 and yn == 2:
        if _blas_ready(g, y):  # y.T of a C array is an F array: BLAS takes it transposed, no copy
            return lambda g, x, y: np.dot(g, y.T)
        return lambda g, x, y: np.dot(_f64(g), _f64(y.T))
    return None


@overload(runtime.dot_adjoint_y)
def _dot_adjoint_y(g, x, y):
    xn, yn = _ndim(x), _ndim(y)
    if xn == 0 or yn == 0:
        return lambda g, x, y: runtime.unbroadcast(g * x, y)
    if xn > 2 or yn > 2:
        return None
    if xn == 1:
        if yn > 1:
            outer = _outer(x, g)
            return lambda g, x, y: outer(x, g)
        return lambda g, x, y: g * x
    if xn == 2:
        if _blas_ready(x, g):
            return lambda g, x, y: np.dot(x.T, g)
        return lambda g, x, y: np.dot(_f64(x.T), _f64(g))
    return None


@overload(runtime.matmul_adjoint_x)
def _matmul_adjoint_x(g, x, y):
    if _ndim(x) <= 2 and _ndim(y) <= 2:   # as np.dot; Numba multiplies no stacks of matrices
        return lambda g, x, y: runtime.dot_adjoint_x(g, x, y)
    return None


@overload(runtime.matmul_adjoint_y)
def _matmul_adjoint_y(g, x, y):
    if _ndim(x) <= 2 and _ndim(y) <= 2:
        return lambda g, x, y: runtime.dot_adjoint_y(g, x, y)
    return None


@overload(runtime.add_dot_adjoint_x)
def _add_dot_adjoint_x(acc, g, x, y):
    if _ndim(x) == 2 and _ndim(y) == 1 and _ndim(g) == 1 and _writable_float64(acc, 2):
        return lambda acc, g, x, y: _add_outer(acc, g, y)  # a weight's adjoint in a loop: no outer product made
    return lambda acc, g, x, y: runtime._add_into(acc, runtime.dot_adjoint_x(g, x, y))


@overload(runtime.add_dot_adjoint_y)
def _add_dot_adjoint_y(acc, g, x, y):
    if _ndim(x) == 1 and _ndim(y) == 2 and _ndim(g) == 1 and _writable_float64(acc, 2):
        return lambda acc, g, x, y: _add_outer(acc, x, g)
    return lambda acc, g, x, y: runtime._add_into(acc, runtime.dot_adjoint_y(g, x, y))


@overload(runtime.outer_rows)
def _outer_rows(acc, trips):
    if isinstance(acc, types.Array) and acc.ndim == 2:
        def impl(acc, trips):
            m, k = acc.shape
            rows = max(1, min(trips, runtime.OUTER_ROWS_BUDGET // max(m + k, 1)))
            return np.empty((rows, m)), np.empty((rows, k)), np.zeros(1, dtype=np.int64)
        return impl
    return lambda acc, trips: (np.empty((1, 0)), np.empty((1, 0)), np.zeros(1, dtype=np.int64))


@overload(runtime.later_dot_adjoint_x)
def _later_dot_adjoint_x(stash, acc, g, x, y):
    if _ndim(x) == 2 and _ndim(y) == 1 and _ndim(g) == 1 and _writable_float64(acc, 2):
        return lambda stash, acc, g, x, y: _stash_or_add_outer(stash, acc, g, y)
    return lambda stash, acc, g, x, y: runtime.add_dot_adjoint_x(acc, g, x, y)


@overload(runtime.later_dot_adjoint_y)
def _later_dot_adjoint_y(stash, acc, g, x, y):
    if _ndim(x) == 1 and _ndim(y) == 2 and _ndim(g) == 1 and _writable_float64(acc, 2):
        return lambda stash, acc, g, x, y: _stash_or_add_outer(stash, acc, x, g)
    return lambda stash, acc, g, x, y: runtime.add_dot_adjoint_y(acc, g, x, y)


@njit(inline='always')
def _stash_or_add_outer(stash, acc, a, b):
    """acc + np.outer(a, b): stashed where it fits the stash, else added now (as add_dot_adjoint_x
    and _y do for these types)."""
    left, right, _ = stash
    if acc.shape[0] == left.shape[1] == a.shape[0] and acc.shape[1] == right.shape[1] == b.shape[0]:
        return _stash_outer(stash, acc, a, b)
    return _add_outer(acc, a, b)


# (element by element below: Numba's row setitem `left[n] = a` and in-place `acc += p` take
# 2.7 s and 0.8 s to compile, these loops 0.1 s)
@njit(inline='always')
def _stash_outer(stash, acc, a, b):
    left, right, count = stash
    n = count[0]
    for k in range(a.shape[0]):
        left[n, k] = a[k]
    for k in range(b.shape[0]):
        right[n, k] = b[k]
    count[0] = n + 1
    return _add_stashed(acc, stash) if n + 1 == left.shape[0] else acc


@njit(inline='always')
def _add_stashed(acc, stash):
    left, right, count = stash
    n = count[0]
    if n:
        product = np.dot(left[:n].T, right[:n])
        for i in range(acc.shape[0]):
            for j in range(acc.shape[1]):
                acc[i, j] += product[i, j]
        count[0] = 0
    return acc


@overload(runtime.add_outer_rows)
def _add_outer_rows(acc, stash):
    if not _writable_float64(acc, 2):
        return lambda acc, stash: acc     # nothing was stashed for it
    return lambda acc, stash: _add_stashed(acc, stash)


def _writable_float64(t, ndim):
    return isinstance(t, types.Array) and t.dtype == types.float64 and t.ndim == ndim and t.mutable


@njit(inline='always')
def _add_outer(acc, a, b):
    """acc + np.outer(a, b), into acc where the shapes agree."""
    if acc.shape[0] != a.shape[0] or acc.shape[1] != b.shape[0]:
        return _broadcast_add_outer(acc, a, b)
    for i in range(a.shape[0]):
        ai = a[i]
        for j in range(b.shape[0]):
            acc[i, j] += ai * b[j]
    return acc


@njit(inline='always')
def _broadcast_add_outer(acc, a, b):
    """acc + np.outer(a, b) as a new array, acc broadcast; loops, where the array expression
    took 2.4 s to compile (in every gradient that adds a weight's outer product)."""
    m = max(acc.shape[0], a.shape[0])
    k = max(acc.shape[1], b.shape[0])
    for n, full in ((acc.shape[0], m), (a.shape[0], m), (acc.shape[1], k), (b.shape[0], k)):
        if n != 1 and n != full:
            raise ValueError("operands could not be broadcast together")
    out = np.empty((m, k))
    for i in range(m):
        ai = a[i if a.shape[0] > 1 else 0]
        row = i if acc.shape[0] > 1 else 0
        for j in range(k):
            out[i, j] = acc[row, j if acc.shape[1] > 1 else 0] + ai * b[j if b.shape[0] > 1 else 0]
    return out


@overload(runtime._add_into)
def _add_into_impl(acc, d):
    if isinstance(acc, types.Array) and isinstance(d, types.Array) and acc.ndim == d.ndim \
            and acc.dtype == types.float64 and acc.mutable:
        nd = acc.ndim

        def impl(acc, d):
            for k in range(nd):
                if acc.shape[k] != d.shape[k]:
                    return acc + d
            acc += d
            return acc
        return impl
    return lambda acc, d: acc + d


def _blas_ready(*arrays):
    """Can np.dot take these as they are: float64 arrays, C or F contiguous? (else copy them with
    _f64: a copy per call, and more code for Numba to compile on the first one)"""
    return all(isinstance(a, types.Array) and a.dtype == types.float64 and a.layout in ("C", "F")
               for a in arrays)


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
    if not (isinstance(a, types.Array) and isinstance(ans, types.Array) and a.ndim == 2):
        return None  # (Numba's np.linalg.solve takes one matrix, not a stack)
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
    if isinstance(index, types.BaseTuple) and len(index) == 2 and target.ndim == 2 \
            and all(_int_vector_or_int(ix) for ix in index) and any(isinstance(ix, types.Array) for ix in index):
        # X[rows, cols] of two index vectors (or one and a number): cross-entropy's X[np.arange(n), y]
        rows_vary, cols_vary, g_is_array = (isinstance(index[0], types.Array), isinstance(index[1], types.Array),
                                            isinstance(g, types.Array))

        def pairs(target, index, g):
            out = target.copy()
            rows, cols = index
            n = rows.shape[0] if rows_vary else cols.shape[0]
            for k in range(n):
                if rows_vary:
                    i = rows[k]
                else:
                    i = rows
                if cols_vary:
                    j = cols[k]
                else:
                    j = cols
                if i < 0:
                    i += target.shape[0]
                if j < 0:
                    j += target.shape[1]
                if g_is_array:
                    out[i, j] += g[k]
                else:
                    out[i, j] += g
            return out
        return pairs
    return None


def _int_vector_or_int(t):
    return isinstance(t, types.Integer) or (isinstance(t, types.Array) and isinstance(t.dtype, types.Integer)
                                            and t.ndim == 1)


@overload(runtime.scatter_adjoint)
def _scatter_adjoint(g, index):
    if not (isinstance(g, types.Array) and isinstance(index, types.Array)
            and isinstance(index.dtype, types.Integer) and index.ndim == 1):
        return None

    def impl(g, index):
        n = g.shape[0]
        last = np.full(n, -1, dtype=np.int64)   # the position in index of each row's last write
        for k in range(index.shape[0]):
            last[index[k] + n if index[k] < 0 else index[k]] = k
        out = np.zeros((index.shape[0],) + g.shape[1:])
        for k in range(index.shape[0]):
            j = index[k] + n if index[k] < 0 else index[k]
            if last[j] == k:
                out[k] = g[j]
        return out
    return impl


@overload(runtime.astype)
def _astype(x, dtype):
    if isinstance(x, types.Array):
        return lambda x, dtype: x.astype(dtype)
    if _is_scalar(x):
        return lambda x, dtype: np.asarray(x).astype(dtype)
    return None


@overload(runtime.logistic)
def _logistic(x):
    # compiled generated code calls numba_math.logistic (compile_module); this one serves code
    # compiled elsewhere (vmap's loops, the CLI's emitted modules)
    if isinstance(x, types.Array) or _is_scalar(x):
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    return None


# ---- scipy.special ---------------------------------------------------------------------
@njit
def _expit(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _elementwise(scalar):
    def ov(x):
        if isinstance(x, types.Array):
            def impl(x):
                out = np.empty(x.shape)
                of = out.reshape(out.size)
                xf = np.ascontiguousarray(x).reshape(x.size)
                for k in range(xf.size):
                    of[k] = scalar(float(xf[k]))
                return out
            return impl
        if _is_scalar(x):
            return lambda x: scalar(float(x))
        return None
    return ov


@njit
def _erf(x):
    return math.erf(x)


@njit
def _erfc(x):
    return math.erfc(x)




@njit
def _lse(xf):
    m = -np.inf
    for k in range(xf.size):
        if xf[k] > m:
            m = xf[k]
    if not np.isfinite(m):
        m = 0.0
    s = 0.0
    for k in range(xf.size):
        s += math.exp(xf[k] - m)
    return m + math.log(s)


def _logsumexp(a, axis=None):
    if not isinstance(a, types.Array):
        return None
    if axis is None or isinstance(axis, (types.NoneType, types.Omitted)) or a.ndim == 1:
        return lambda a, axis=None: _lse(np.ascontiguousarray(a).reshape(a.size).astype(np.float64))
    if not isinstance(axis, types.Integer):
        return None
    nd = a.ndim
    m = nd - 1

    def impl(a, axis=None):
        ax = axis + nd if axis < 0 else axis
        outer, n, inner = split_shape(a.shape, ax)
        src = np.ascontiguousarray(a).reshape((outer, n, inner))
        out = np.empty((outer, inner))
        col = np.empty(n)
        for o in range(outer):
            for i in range(inner):
                for j in range(n):
                    col[j] = src[o, j, i]
                out[o, i] = _lse(col)
        return out.reshape(to_fixed_tuple(drop_axis(a.shape, ax), m))
    return impl


# ---- custom_vjp / custom_jvp ----------------------------------------------------------------
@typeof_impl.register(custom._Custom)
def _typeof_custom(value, context):
    """A custom_vjp/custom_jvp function read by compiled code (its rules call it): its function,
    compiled."""
    compiled = value.__dict__.get("_compiled")
    if compiled is None:
        compiled = value._compiled = njit(value.fun)
    return typeof_impl(compiled, context)


@overload(custom.scalar_output_tangent)
def _scalar_output_tangent(row, x_dot, ans):
    if isinstance(ans, types.Array):
        def refuse(row, x_dot, ans):
            raise ValueError("forward mode through a custom_vjp function needs a scalar output; "
                             "define a custom_jvp for it instead")
        return refuse
    return lambda row, x_dot, ans: np.sum(row * x_dot)


@overload(custom.jvp_transpose)
def _jvp_transpose(rule, primals, i, g):
    """For numbers (arrays take the Python version): the rule's tangent for the unit tangent of input i."""
    if not isinstance(primals, types.BaseTuple) or not all(_is_scalar(p) for p in primals):
        return None
    units = ", ".join(f"1.0 if i == {k} else 0.0" for k in range(len(primals)))
    scope = {"np": np}
    exec(f"def impl(rule, primals, i, g):\n    return np.sum(g * rule(primals, ({units},))[1])\n", scope)
    return scope["impl"]


_scipy_overloaded = False


def overload_scipy_special():
    """Numba versions of the scipy.special functions s2sad differentiates, once scipy.special is
    imported (by the user's code: s2sad does not import SciPy itself, a third of a second)."""
    global _scipy_overloaded
    special = sys.modules.get("scipy.special")
    if _scipy_overloaded or special is None:
        return
    _scipy_overloaded = True
    overload(special.expit)(_elementwise(_expit))
    overload(special.erf)(_elementwise(_erf))
    overload(special.erfc)(_elementwise(_erfc))
    overload(special.logsumexp)(_logsumexp)


overload_scipy_special()


# ---- tuples of arrays: concatenate / stack / vstack adjoints ----------------------------
@njit
def _range_along(g, ax, start, stop):
    """g[..., start:stop, ...] along axis `ax` (a contiguous copy)."""
    outer, n, inner = split_shape(g.shape, ax)
    src = np.ascontiguousarray(g).reshape((outer, n, inner))
    return src[:, start:stop, :].copy()


def _tuple_impl(name, count, body, extra=""):
    """Build `impl` for a tuple of `count` arrays from a per-item expression (Numba needs a fixed arity)."""
    lines = [f"def impl({name}):", extra]
    lines += [body(i) for i in range(count)]
    lines.append("    return (" + "".join(f"p{i}, " for i in range(count)) + ")")
    ns = {"np": np, "_range_along": _range_along, "to_fixed_tuple": to_fixed_tuple, "_put_axis": _put_axis}
    exec("\n".join(lines), ns)
    return ns["impl"]


@njit
def _put_axis(shape, ax, n):
    out = np.empty(len(shape), dtype=np.int64)
    for d in range(len(shape)):
        out[d] = shape[d]
    out[ax] = n
    return out


@overload(runtime.split_like)
def _split_like(g, xs, axis):
    if not isinstance(g, types.Array) or not isinstance(xs, types.BaseTuple) or not isinstance(axis, types.Integer):
        return None
    nd = g.ndim
    for t in xs:
        if not isinstance(t, types.Array) or t.ndim != nd:
            return None

    def body(i):
        return (f"    s{i} = xs[{i}].shape[ax]\n"
                f"    p{i} = _range_along(g, ax, start, start + s{i}).reshape("
                f"to_fixed_tuple(_put_axis(g.shape, ax, s{i}), {nd}))\n"
                f"    start += s{i}")
    return _tuple_impl("g, xs, axis", len(xs), body, f"    ax = axis + {nd} if axis < 0 else axis\n    start = 0")


@overload(runtime.unstack)
def _unstack(g, xs, axis):
    if not isinstance(g, types.Array) or not isinstance(xs, types.BaseTuple) or not isinstance(axis, types.Integer):
        return None
    nd = g.ndim
    if nd == 1:
        return _tuple_impl("g, xs, axis", len(xs), lambda i: f"    p{i} = g[{i}]")

    def body(i):
        return (f"    p{i} = _range_along(g, ax, {i}, {i + 1}).reshape("
                f"to_fixed_tuple(drop_axis(g.shape, ax), {nd - 1}))")
    impl = _tuple_impl("g, xs, axis", len(xs), body, f"    ax = axis + {nd} if axis < 0 else axis")
    impl.__globals__["drop_axis"] = drop_axis
    return impl


@overload(runtime.vstack_adjoint)
def _vstack_adjoint(g, xs):
    if not isinstance(g, types.Array) or g.ndim != 2 or not isinstance(xs, types.BaseTuple):
        return None
    for t in xs:
        if not isinstance(t, types.Array) or t.ndim not in (1, 2):
            return None

    def body(i):
        rows = "xs[%d].shape[0]" % i if xs[i].ndim == 2 else "1"
        return (f"    p{i} = np.ascontiguousarray(g[start:start + {rows}]).reshape(xs[{i}].shape)\n"
                f"    start += {rows}")
    return _tuple_impl("g, xs", len(xs), body, "    start = 0")


@overload(runtime.zeros_like)
def _zeros_like_tuple(x):
    if isinstance(x, types.NoneType):
        return lambda x: None  # a gradient's value that was not computed
    if isinstance(x, types.BaseTuple):  # a helper's results: arrays, numbers, tuples of them, None
        impl = _tuple_impl("x", len(x), lambda i: f"    p{i} = zeros_like(x[{i}])")
        impl.__globals__["zeros_like"] = runtime.zeros_like
        return impl
    return None


@overload(runtime.add_tuples)
def _add_tuples(a, b):
    if isinstance(a, types.Array) and isinstance(b, types.Array):
        return lambda a, b: a + b
    if isinstance(a, types.BaseTuple) and isinstance(b, types.Array):
        # a tuple of numbers and the adjoint of np.array(tuple), an array: item by item
        return _tuple_impl("a, b", len(a), lambda i: f"    p{i} = a[{i}] + b[{i}]")
    if not (isinstance(a, types.BaseTuple) and isinstance(b, types.BaseTuple) and len(a) == len(b)):
        return None
    def item(i):
        return f"    p{i} = " + (f"add_tuples(a[{i}], b[{i}])" if isinstance(a[i], types.BaseTuple) else f"a[{i}] + b[{i}]")
    impl = _tuple_impl("a, b", len(a), item)
    impl.__globals__["add_tuples"] = runtime.add_tuples
    return impl


@overload(runtime.prod_adjoint)
def _prod_adjoint(g, x, axis):
    if not isinstance(x, types.Array):
        if _is_scalar(x):
            return lambda g, x, axis: g * 1.0
        return None
    if axis is None or isinstance(axis, (types.NoneType, types.Omitted)):
        def impl(g, x, axis):
            xf = np.ascontiguousarray(x).reshape(x.size).astype(np.float64)
            n = xf.size
            out = np.empty(n)
            acc = 1.0
            for k in range(n):
                out[k] = acc
                acc *= xf[k]
            acc = 1.0
            for k in range(n - 1, -1, -1):
                out[k] *= acc
                acc *= xf[k]
            return (g * out).reshape(x.shape)
        return impl
    if not isinstance(axis, types.Integer):
        return None
    nd = x.ndim

    def impl(g, x, axis):
        ax = axis + nd if axis < 0 else axis
        outer, n, inner = split_shape(x.shape, ax)
        src = np.ascontiguousarray(x).reshape((outer, n, inner)).astype(np.float64)
        others = np.empty((outer, n, inner))
        for o in range(outer):
            for i in range(inner):
                acc = 1.0
                for j in range(n):
                    others[o, j, i] = acc
                    acc *= src[o, j, i]
                acc = 1.0
                for j in range(n - 1, -1, -1):
                    others[o, j, i] *= acc
                    acc *= src[o, j, i]
        return runtime.sum_adjoint(g, x, axis) * others.reshape(x.shape)
    return impl


# ---- compiling a generated module ----------------------------------------------------
log = logging.getLogger("s2sad")

# a first call (Numba compiling) slower than this logs one INFO line on the "s2sad" logger
SLOW_COMPILE_S = float(os.environ.get("S2SAD_SLOW_COMPILE_S", "2.0"))

def _strict(explicit):
    return explicit or os.environ.get("S2SAD_STRICT", "") not in ("", "0")


def failure_reason(exc, lines=12):
    if not isinstance(exc, nb_errors.NumbaError):   # an internal error of Numba's, often with no message
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return (f"{type(exc).__name__} inside Numba's compiler ({os.path.basename(last.filename)}:{last.lineno}, "
                f"{last.name}) {exc}").strip()
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    text = [t for t in text if t.strip()]
    return "\n".join(text[:lines])


def compile_failure(exc):
    """Was `exc` raised by Numba compiling, not by the compiled code running? Its own errors are
    NumbaErrors; some internal ones come through as they are (an AssertionError lowering a
    boolean mask of two axes), from inside the dispatcher's compile for the arguments."""
    if isinstance(exc, nb_errors.NumbaError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_compile_for_args":
            return True
        tb = tb.tb_next
    return False


class Compiled:
    """A generated function compiled by Numba, with the Python version to fall back on."""

    def __init__(self, name, dispatcher, python, strict):
        self.name = name
        self.dispatcher = dispatcher
        self.python = python
        self.strict = strict
        self.failed = None
        self.refused = None    # why the code must run as Python, known before Numba is tried
        self.watch = True      # time the first call, which compiles
        self.cached = False
        self.uncached_why = "the disk cache is off"
        self.extra = ()        # arguments appended to each call (see `_arrays_as_arguments`)
        self.describe = "generated code"

    @property
    def compiled(self):
        return self.failed is None and bool(self.dispatcher.signatures)

    def __call__(self, *args):
        if self.failed is None and self.refused is not None:
            self._fall_back(self.refused, "s2sad says")
        elif self.failed is None:
            try:
                if self.watch:
                    return self._watched(args)
                if self.extra:  # the global arrays the compiled code reads, passed as they are now
                    return self.dispatcher(*args, *self.extra)
                return self.dispatcher(*args)
            except Exception as exc:
                if not compile_failure(exc):
                    raise   # an error of the computation (generated code reached a NumPy check)
                self._fall_back(failure_reason(exc), "Numba says")
        return self.python(*args)

    def _fall_back(self, reason, who):
        if self.strict:
            raise S2SADError(f"Numba cannot compile the generated {self.name}:\n{reason}\n"
                             "(see s2sad.source(...) for the generated code; backend='python' runs it "
                             "without Numba)") from None
        self.failed = reason
        warnings.warn(f"s2sad: Numba cannot compile the generated {self.name}; running it as plain "
                      f"Python instead. {who}:\n{reason}", RuntimeWarning, stacklevel=4)

    def _watched(self, args):
        """The first call: Numba compiles (or loads from its cache). Log one line if that takes long."""
        where = getattr(self.python, "__code__", None)
        what = (f"s2sad: Numba is compiling {self.name} ({self.describe}); this takes a few seconds once"
                + ("" if self.cached else f" per process ({self.uncached_why})"))
        timer = threading.Timer(SLOW_COMPILE_S, log.info, (what,))
        timer.daemon = True
        t0 = time.perf_counter()
        timer.start()
        try:
            out = self.dispatcher(*args, *self.extra)
        finally:
            timer.cancel()
        self.watch = False
        elapsed = time.perf_counter() - t0
        if elapsed > SLOW_COMPILE_S:
            log.info("s2sad: compiled %s in %.1f s%s", self.name, elapsed,
                     f" (file {where.co_filename})" if where is not None else "")
        return out


NUMPY = numba_math.numpy_namespace()   # numpy, with exp, log and tanh that vectorize


# ---- LLVM's loop-unswitching budget, raised while Numba compiles s2sad's functions ------------------
# Numba lowers an array expression over 2-D operands to a loop nest whose innermost body picks, per
# axis, between stepping and broadcasting an operand (a branch on a loop-invariant stride). The body
# only vectorizes once LLVM's loop unswitching hoists those branches out, and unswitching gives up on
# bodies costlier than `-unswitch-threshold` (50 by default). A gradient's fused expressions (the
# exp kernel inlined, a chain rule multiplied in) exceed that, so their loops stayed scalar: 4-6x
# slower on (1000, 25) arrays. The option is a process-wide LLVM setting, so s2sad raises it only
# while Numba compiles one of its dispatchers for arguments of two or more dimensions (1-D loops
# vectorize without it, and the larger budget costs compile time: about a fifth more), under
# Numba's compiler lock, and puts LLVM's default back afterwards: the user's own @njit code
# compiles as it always did.
UNSWITCH_THRESHOLD = 200      # GMM gradient 500 -> 265 us, LSTM 7.0 -> 6.3 ms
_LLVM_UNSWITCH_DEFAULT = 50


class _UnswitchBudget(nb_event.Listener):
    def __init__(self):
        self.ours = weakref.WeakSet()   # the dispatchers compile_module made
        self.raised = []                # per compile in progress (a gradient compiles its helpers)

    def on_start(self, event):
        if event.data["dispatcher"] not in self.ours:
            return
        wants = not any(self.raised) and any(getattr(t, "ndim", 0) >= 2 for t in event.data["args"])
        if wants:
            llvm.set_option("s2sad", f"-unswitch-threshold={UNSWITCH_THRESHOLD}")
        self.raised.append(wants)

    def on_end(self, event):
        if event.data["dispatcher"] in self.ours and self.raised.pop():
            llvm.set_option("s2sad", f"-unswitch-threshold={_LLVM_UNSWITCH_DEFAULT}")


_unswitch_budget = _UnswitchBudget()
nb_event.register("numba:compile", _unswitch_budget)


def _recursive(module):
    """Names of the module's functions that call themselves, directly or through others."""
    names = {tree.name for tree in module.functions}
    calls = {tree.name: {n.id for n in gast.walk(tree) if isinstance(n, gast.Name) and n.id in names}
             for tree in module.functions}
    def reaches(start):
        seen, todo = set(), list(calls[start])
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += calls[n]
        return seen
    return {n for n in names if n in reaches(n)}


class _NotAsArguments(Exception):
    pass


def _arrays_as_arguments(namespace, name, names):
    """The generated module rewritten so that the global arrays (and tuples of arrays) it reads are
    arguments.

    Numba compiles a global array into the machine code as a constant, so an array the user
    changes in place after the first call (`W[0] = 6.0`) would keep its old values there. Each
    generated function that reads a global array (`W`, or a module's `helpers.V`), directly or
    through the generated functions it calls, takes it as a parameter of the same name instead,
    passed on by keyword at each call; the top-level function's caller (`Compiled`) appends them
    to its arguments: the arrays themselves, so the compiled code reads them as they are at each
    call (rebinding the name makes the derivative stale: it is generated again).

    Returns (source, the values to append), or None when no generated function reads a global
    array. Raises _NotAsArguments where the rewrite cannot be done (a generated function that
    reads one, passed around as a value).
    """
    import ast
    first = namespace[name]
    text = "".join(linecache.getlines(first.__code__.co_filename))
    tree = ast.parse(text)
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names}
    if set(defs) != set(names):
        return None
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    taken |= set(namespace)
    values, param_of_chain = {}, {}
    direct, calls, escaped = {}, {}, set()
    for fname, node in defs.items():
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        direct[fname], calls[fname] = set(), set()
        called = {id(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local:
                if n.id in defs:
                    calls[fname].add(n.id)
                    if id(n) not in called:
                        escaped.add(n.id)
                elif _holds_array(namespace.get(n.id)):
                    direct[fname].add(n.id)
                    values[n.id] = namespace[n.id]
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                chain, base = [n.attr], n.value
                while isinstance(base, ast.Attribute):
                    chain.append(base.attr)
                    base = base.value
                if not isinstance(base, ast.Name) or base.id in local \
                        or not isinstance(namespace.get(base.id), pytypes.ModuleType):
                    continue
                obj = namespace[base.id]
                for part in reversed(chain):
                    obj = getattr(obj, part, None)
                if not _holds_array(obj):
                    continue
                spelled = (base.id, *reversed(chain))
                param = param_of_chain.get(spelled)
                if param is None:
                    param = stem = "_".join(spelled)
                    k = 2
                    while param in taken:
                        param, k = f"{stem}_{k}", k + 1
                    taken.add(param)
                    param_of_chain[spelled] = param
                    values[param] = obj
                direct[fname].add(param)
                n.s2sad_param = param
    needs = {f: set(d) for f, d in direct.items()}
    changed = True
    while changed:  # through the calls, recursion included
        changed = False
        for f in defs:
            for g in calls[f]:
                if not needs[g] <= needs[f]:
                    needs[f] |= needs[g]
                    changed = True
    if not any(needs.values()):
        return None
    if any(needs[g] for g in escaped) or defs[name].args.defaults:
        raise _NotAsArguments("a generated function that reads a global array is passed as a value")

    class Rewrite(ast.NodeTransformer):
        def visit_Attribute(self, n):
            if hasattr(n, "s2sad_param"):
                return ast.copy_location(ast.Name(id=n.s2sad_param, ctx=ast.Load()), n)
            return self.generic_visit(n)

        def visit_Call(self, n):
            self.generic_visit(n)
            if isinstance(n.func, ast.Name) and n.func.id in defs and needs[n.func.id]:
                n.keywords += [ast.keyword(arg=p, value=ast.Name(id=p, ctx=ast.Load()))
                               for p in sorted(needs[n.func.id])]
            return n

    for fname, node in defs.items():
        if needs[fname]:
            Rewrite().visit(node)
            extra = sorted(needs[fname])
            node.args.args += [ast.arg(arg=p) for p in extra]
            if node.args.defaults:  # the new parameters follow defaulted ones: always passed by keyword
                node.args.defaults += [ast.Constant(value=None) for _ in extra]
    source = (f"# {first.__code__.co_filename}, compiled by Numba: the global arrays it reads are "
              "arguments\n" + ast.unparse(ast.fix_missing_locations(tree)) + "\n")
    return source, tuple(values[p] for p in sorted(needs[name]))


def _holds_array(value):
    """An array, or a tuple holding one (Numba compiles either in as a constant)."""
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, tuple) and any(_holds_array(v) for v in value)


def _names_read(code):
    """The global and attribute names a code object (and the code nested in it) reads."""
    names, todo = set(), [code]
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        todo += [k for k in c.co_consts if hasattr(k, "co_code")]
    return names


def _arrays_read(fn, seen=None):
    """The arrays a user function (or a user function it calls) reads from its module, a module's
    attribute or a closure cell: Numba compiles their values in as constants when it compiles the
    function as it is."""
    if not isinstance(fn, pytypes.FunctionType) or (fn.__module__ or "").startswith(("s2sad", "numpy")):
        return []
    seen = set() if seen is None else seen
    if fn in seen:
        return []
    seen.add(fn)
    code = fn.__code__
    names = _names_read(code)
    scope = fn.__globals__
    found = sorted(n for n in names if _holds_array(scope.get(n)))
    for n in sorted(names):
        found += _arrays_read(getattr(scope.get(n), "py_func", scope.get(n)), seen)
    for n in sorted(names):
        module = scope.get(n)
        if isinstance(module, pytypes.ModuleType) and module.__name__.partition(".")[0] not in ("numpy", "math"):
            found += [f"{n}.{a}" for a in sorted(names) if _holds_array(getattr(module, a, None))]
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            if _holds_array(cell.cell_contents):
                found.append(name)
        except ValueError:
            pass
    return found


def _load_for_numba(source, namespace):
    """The rewritten module's namespace: a file of the disk cache when it is on, else exec'd."""
    base = {k: v for k, v in namespace.items() if not k.startswith("__")}
    loaded = cache.load(source, base)
    if loaded is not None:
        return loaded
    filename = f"<s2sad numba {next(_numba_sources)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), base)
    return base


_numba_sources = itertools.count(1)


def compile_module(namespace, name, module, explicit=False):
    """njit every generated function of `module` and return the one called `name`.

    `namespace` (what the Python backend runs) is left untouched: the compiled
    functions get a copy of it in which `Tape` is the jitclass and each
    generated function's name is its dispatcher.
    """
    overload_scipy_special()
    names = [tree.name for tree in module.functions]
    python, extra, refused = python_backend.numpy_scalars(namespace[name]), (), []
    try:
        rewritten = _arrays_as_arguments(namespace, name, names)
    except _NotAsArguments as why:
        rewritten = None
        refused.append(f"{why}, and Numba would compile the array's values in as constants")
    except (SyntaxError, OSError, KeyError) as why:  # the source is not at hand: leave it as it is
        rewritten = None
        if any(isinstance(v, np.ndarray) for v in namespace.values()):
            refused.append(f"the generated source could not be rewritten to take global arrays as arguments ({why})")
    if rewritten is not None:
        namespace = _load_for_numba(rewritten[0], namespace)
        extra = rewritten[1]
    # generated code loaded from a file of the disk cache (s2sad.cache): Numba can cache its machine code too
    cached = bool(namespace.get("__file__")) and namespace.get("__name__", "").startswith("s2sad_")
    if cached:
        # Numba pickles a reference to the functions' module by name and imports it when it loads cached
        # code, so the compiled functions' globals are the dict of a module registered in sys.modules
        nb_module = pytypes.ModuleType(namespace["__name__"])
        nb_module.__dict__.update(namespace)
        sys.modules[nb_module.__name__] = nb_module
        nb_namespace = nb_module.__dict__
    else:
        nb_namespace = dict(namespace)
    # user functions generated code calls as they are (a custom_vjp's primal and rules; a custom_jvp's
    # rule): Numba needs them compiled too
    referenced = set().union(*(_names_read(namespace[n].__code__) for n in names))
    for key, value in list(nb_namespace.items()):
        if isinstance(value, pytypes.FunctionType) and key not in names \
                and not (value.__module__ or "").startswith("s2sad"):
            nb_namespace[key] = njit(value)
        user = value.fun if isinstance(value, custom._Custom) else value
        user = getattr(user, "py_func", user)
        frozen = _arrays_read(user) if key in referenced and key not in names else []
        if frozen:  # compiled as it is, it would keep the values the arrays have now
            refused.append(f"{user.__name__}, a custom rule compiled as it is, reads the array "
                           f"{frozen[0]} from outside, and Numba would compile its present values in "
                           "(pass the array as an argument to have it compiled)")
    nb_namespace["Tape"] = Tape
    nb_namespace["np"] = NUMPY
    nb_namespace["logistic"] = numba_math.logistic   # a ufunc: fused with the arithmetic around it
    # The helpers (the user's functions the derivative calls, and their derivatives) are inlined
    # into their callers: Numba optimizes each compiled function with everything it calls linked
    # in, so a chain of helpers compiled one by one optimized the code at its bottom once per
    # level (np.std along an axis, three levels: 19 s). A recursive one is compiled on its own.
    recursive = _recursive(module)
    inline = set(names) - {name} - recursive
    if recursive:
        # Numba's cache cannot hold recursion: a function that calls itself (or one that calls it,
        # which links its code in) refers to its own symbol as an address resolved in the process
        # that compiled it, and the copy loaded from disk in another process jumped to nothing
        # (a segfault; numba#6061). Such a module compiles in every process.
        cached = False
    def jit(fn_name, clone):
        # error_model="numpy": a division by zero is inf or NaN, as in NumPy (np.log(0.0)'s derivative
        # 1 / x is inf), not a ZeroDivisionError raised inside generated code
        compiled = njit(clone, inline="always" if fn_name in inline else "never", error_model="numpy")
        if cached:  # s2sad's own cache of Numba's files: beside the module, each checked before it is loaded
            disk = cache.numba_cache(clone)
            if disk is not None:
                compiled._cache = disk
        _unswitch_budget.ours.add(compiled)
        return compiled
    jit_each(names, namespace, nb_namespace, jit)
    compiled = Compiled(name, nb_namespace[name], python, _strict(explicit))
    compiled.refused = "\n".join(dict.fromkeys(module.not_for_numba + refused)) or None
    compiled.extra = extra
    compiled.cached = cached
    if recursive:
        compiled.uncached_why = "Numba cannot cache recursive code"
    compiled.describe = (f"{len(names)} generated function(s), "
                         f"{sum(len(t.body) for t in module.functions)} top-level statements")
    return compiled
