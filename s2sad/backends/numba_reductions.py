"""Sum, mean, max and min of float64 arrays, whole or along an axis, that LLVM vectorizes, for the
Numba backend.

Numba's own np.sum adds the elements one after another into a single total: every add
waits for the one before (4 cycles each), and the loop cannot be vectorized without
reordering the sum, which LLVM may not do. Its np.max and np.min test each element for NaN
in a branch. On 1.28 million floats (measured): np.sum 1.04 ms in Numba against 0.22 ms in
NumPy, np.max 0.69 ms against 0.12 ms.

Here the sum keeps eight partial totals (as NumPy's pairwise sum does within a block), so
eight adds run at a time and LLVM packs them into vector adds: 0.18 ms. The rounding differs
from Numba's running total and is not worse (each partial total adds an eighth of the
elements). max and min keep four running values with a select each, and note a NaN apart:
0.25 ms. A NaN anywhere gives NaN, and an empty array raises ValueError, as in NumPy.

Along one axis (`np.sum(x, axis=1)`), the array is seen as [outer, n, inner] around the axis and
reduced with the inner index innermost, so each step is a vector operation over a contiguous
run of `inner` elements; along the last axis (inner = 1) each row goes to the whole-array
kernels above, and short rows are added in line. Numba's own np.sum(x, axis) keeps its running
total (29 us for 1000 x 25 along the rows, against 8 us here) and takes 1.3-1.6 s to compile
(an axis check whose error message formats the axis); np.max, np.min, np.mean and np.prod
with an integer axis, which Numba lacks, are these same loops.

The functions below stand in for np.sum, np.mean, np.max/np.amax and np.min/np.amin in the
`np` that compiled generated code sees (numba_math.numpy_namespace): a float64 array takes
the fast paths; any other call (a dtype, another element type) goes to the NumPy function
under Numba as before. np.swapaxes of a vector or a matrix stands in the same way (a
transpose: Numba's own takes seconds to compile), and np.argsort takes an axis (np.sort's
definition needs one).
"""

import numpy as np
from numba import njit, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype
from numba.np.unsafe.ndarray import to_fixed_tuple

from .. import runtime


def _no_arg(t):
    """Was an optional argument left out (or given as None)?"""
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


def _fast(a, axis, dtype=None):
    return isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C" and a.ndim >= 1 \
        and _no_arg(axis) and _no_arg(dtype)


@njit
def _sum_c(a):
    return _sum_1d(a.reshape(a.size))


@njit
def _sum_1d(f):
    n = f.shape[0]
    r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = 0.0
    k = 0
    while k + 8 <= n:
        r0 += f[k]
        r1 += f[k + 1]
        r2 += f[k + 2]
        r3 += f[k + 3]
        r4 += f[k + 4]
        r5 += f[k + 5]
        r6 += f[k + 6]
        r7 += f[k + 7]
        k += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while k < n:
        total += f[k]
        k += 1
    return total


def _extreme_1d(larger):
    """The max (larger=True) or min of a contiguous 1-D float64 array."""
    @njit
    def extreme(f):
        n = f.shape[0]
        if n == 0:
            raise ValueError("zero-size array to reduction operation which has no identity")
        m0 = m1 = m2 = m3 = f[0]
        nan = False
        k = 0
        while k + 4 <= n:
            v0, v1, v2, v3 = f[k], f[k + 1], f[k + 2], f[k + 3]
            if larger:
                m0, m1, m2, m3 = (v0 if v0 > m0 else m0, v1 if v1 > m1 else m1,
                                  v2 if v2 > m2 else m2, v3 if v3 > m3 else m3)
            else:
                m0, m1, m2, m3 = (v0 if v0 < m0 else m0, v1 if v1 < m1 else m1,
                                  v2 if v2 < m2 else m2, v3 if v3 < m3 else m3)
            nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
            k += 4
        while k < n:
            v = f[k]
            if larger:
                m0 = v if v > m0 else m0
            else:
                m0 = v if v < m0 else m0
            nan |= v != v
            k += 1
        if nan:
            return np.nan
        if larger:
            m0, m2 = (m1 if m1 > m0 else m0), (m3 if m3 > m2 else m2)
            return m2 if m2 > m0 else m0
        m0, m2 = (m1 if m1 < m0 else m0), (m3 if m3 < m2 else m2)
        return m2 if m2 < m0 else m0
    return extreme


_max_1d, _min_1d = _extreme_1d(True), _extreme_1d(False)


@njit
def _max_c(a):
    return _max_1d(a.reshape(a.size))


@njit
def _min_c(a):
    return _min_1d(a.reshape(a.size))


# ---- along one axis --------------------------------------------------------------------------
@njit
def split_shape(shape, axis):
    """(outer, n, inner): a C-ordered array of `shape` seen as [outer, n, inner] around `axis`."""
    outer = 1
    inner = 1
    for d in range(len(shape)):
        if d < axis:
            outer *= shape[d]
        elif d > axis:
            inner *= shape[d]
    return outer, shape[axis], inner


@njit
def drop_axis(shape, axis):
    """`shape` without `axis`, as an array (to_fixed_tuple makes it a tuple)."""
    out = np.empty(len(shape) - 1, dtype=np.int64)
    k = 0
    for d in range(len(shape)):
        if d != axis:
            out[k] = shape[d]
            k += 1
    return out


SUM, MAX, MIN, MEAN, PROD, ARGSORT = range(6)   # ARGSORT: no reduction, a per-row sort
_ROW = {SUM: _sum_1d, MAX: _max_1d, MIN: _min_1d, MEAN: _sum_1d}   # a whole row of float64, vectorized
_LONG_ROW = 32   # shorter rows are reduced in line: a call per row costs more than the vector adds save


def _result_dtype(kind, dtype):
    """NumPy's: a mean is float64 unless of floats; a sum or product of booleans or small
    integers is of the platform's integer (int64 here; uint64 for unsigned ones)."""
    if kind == MEAN:
        return dtype if dtype.kind == "f" else np.dtype(np.float64)
    if kind in (SUM, PROD) and dtype.kind in "bi":
        return np.dtype(np.int64)
    if kind in (SUM, PROD) and dtype.kind == "u":
        return np.dtype(np.uint64)
    return dtype


def along_axis(kind, a):
    """The Numba implementation of reduction `kind` of array type `a` along an integer axis."""
    if kind == ARGSORT:
        return _argsort_along(a)
    nd, m = a.ndim, a.ndim - 1
    dtype = _result_dtype(kind, as_dtype(a.dtype))
    row = _ROW.get(kind) if a.dtype == types.float64 else None
    fold = kind in (MAX, MIN)     # no identity: start from the first element
    identity = 1 if kind == PROD else 0

    if nd == 1:     # the whole array (not through the stand-ins below: this travels to emitted modules)
        whole = row if row is not None and kind != MEAN else \
            {SUM: np.sum, MAX: np.max, MIN: np.min, MEAN: np.mean, PROD: np.prod}[kind]

        def impl1(a, axis=None):
            if axis != 0 and axis != -1:
                raise ValueError("axis is out of bounds for the array")
            return whole(a)
        return impl1

    if nd == 2:     # a matrix, nearly every call: 2-d loops compile in a third of the time
        return _along_matrix(kind, dtype, row, fold, identity)

    def impl(a, axis=None):
        ax = axis + nd if axis < 0 else axis
        if ax < 0 or ax >= nd:
            raise ValueError("axis is out of bounds for the array")
        outer, n, inner = split_shape(a.shape, ax)
        if fold and n == 0 and outer * inner > 0:
            raise ValueError("zero-size array to reduction operation which has no identity")
        src = np.ascontiguousarray(a).reshape((outer, n, inner))
        out = np.empty((outer, inner), dtype=dtype)
        start = 1 if fold else 0
        rows = src.reshape((outer, n * inner))
        for o in range(outer):
            if inner == 1:      # along the last axis: a contiguous row each
                if row is not None and n >= _LONG_ROW:
                    out[o, 0] = row(rows[o])
                    continue
                acc = rows[o, 0] if fold else identity
                for j in range(start, n):
                    acc = _combine(kind, acc, rows[o, j])
                out[o, 0] = acc
            else:               # the inner index innermost: vector operations over a row of out
                for i in range(inner):
                    out[o, i] = src[o, 0, i] if fold else identity
                for j in range(start, n):
                    for i in range(inner):
                        out[o, i] = _combine(kind, out[o, i], src[o, j, i])
        if kind == MEAN:
            out /= n
        return out.reshape(to_fixed_tuple(drop_axis(a.shape, ax), m))
    return impl


def _along_matrix(kind, dtype, row, fold, identity):
    start = 1 if fold else 0

    def impl2(a, axis=None):
        ax = axis + 2 if axis < 0 else axis
        if ax != 0 and ax != 1:
            raise ValueError("axis is out of bounds for the array")
        n, other = a.shape[ax], a.shape[1 - ax]
        if fold and n == 0 and other > 0:
            raise ValueError("zero-size array to reduction operation which has no identity")
        out = np.empty(other, dtype=dtype)
        if ax == 1:     # along the rows
            for o in range(other):
                if row is not None and n >= _LONG_ROW:
                    out[o] = row(a[o])
                    continue
                acc = a[o, 0] if fold else identity
                for j in range(start, n):
                    acc = _combine(kind, acc, a[o, j])
                out[o] = acc
        else:           # down the columns: row j of a combined into out, a vector operation
            for i in range(other):
                out[i] = a[0, i] if fold else identity
            for j in range(start, n):
                for i in range(other):
                    out[i] = _combine(kind, out[i], a[j, i])
        if kind == MEAN:
            out /= n
        return out
    return impl2


@njit
def _combine(kind, acc, v):
    if kind == MAX:
        return v if v > acc or v != v else acc     # a NaN, once in, stays
    if kind == MIN:
        return v if v < acc or v != v else acc
    if kind == PROD:
        return acc * v
    return acc + v


def _sum_along(a, axis=None):
    return np.sum(a, axis=axis)


@overload(_sum_along)
def _sum_along_ov(a, axis=None):
    return along_axis(SUM, a)


def _overload_along(fn, kind):
    """np.max etc. with an integer axis (Numba has np.sum's alone); other calls go to Numba's own."""
    def ov(a, axis=None):
        if isinstance(a, types.Array) and isinstance(axis, types.Integer):
            return along_axis(kind, a)
        return None
    overload(fn)(ov)


# ---- the stand-ins: Python functions for the Python semantics, overloads for Numba ----------
def sum(a, axis=None, dtype=None):  # noqa: A001  (np.sum's name in the stand-in namespace)
    return np.sum(a, axis=axis, dtype=dtype)


def mean(a, axis=None, dtype=None):
    return np.mean(a, axis=axis, dtype=dtype)


def max(a, axis=None):  # noqa: A001
    return np.max(a, axis=axis)


def min(a, axis=None):  # noqa: A001
    return np.min(a, axis=axis)


@overload(sum)
def _sum_ov(a, axis=None, dtype=None):
    if _fast(a, axis, dtype):
        return lambda a, axis=None, dtype=None: _sum_c(a)
    if isinstance(a, types.Array) and a.dtype == types.float64 and isinstance(axis, types.Integer) \
            and _no_arg(dtype):
        return lambda a, axis=None, dtype=None: _sum_along(a, axis)
    if _no_arg(dtype):
        if _no_arg(axis):
            return lambda a, axis=None, dtype=None: np.sum(a)
        return lambda a, axis=None, dtype=None: np.sum(a, axis=axis)
    if _no_arg(axis):
        return lambda a, axis=None, dtype=None: np.sum(a, dtype=dtype)
    return lambda a, axis=None, dtype=None: np.sum(a, axis=axis, dtype=dtype)


@overload(mean)
def _mean_ov(a, axis=None, dtype=None):
    if _fast(a, axis, dtype):
        return lambda a, axis=None, dtype=None: _sum_c(a) / a.size if a.size else np.mean(a)
    if _no_arg(dtype) and _no_arg(axis):
        return lambda a, axis=None, dtype=None: np.mean(a)
    if _no_arg(dtype):
        return lambda a, axis=None, dtype=None: np.mean(a, axis=axis)
    return None


def _extreme_ov(fast, slow):
    def ov(a, axis=None):
        if _fast(a, axis):
            return lambda a, axis=None: fast(a)
        if _no_arg(axis):
            return lambda a, axis=None: slow(a)
        return lambda a, axis=None: slow(a, axis)
    return ov


overload(max)(_extreme_ov(_max_c, np.max))
overload(min)(_extreme_ov(_min_c, np.min))

def _argsort_along(a):
    """np.argsort(a, axis) (np.sort's definition calls it; Numba sorts a vector's one axis only):
    row by row, the axis moved last."""
    if a.ndim == 1:
        def impl1(a, axis=None):
            if axis != 0 and axis != -1:
                raise ValueError("axis is out of bounds for the array")
            return np.argsort(a)
        return impl1

    if a.ndim == 2:     # by rows or by columns (np.swapaxes takes Numba seconds to compile)
        def impl2(a, axis=None):
            ax = axis + 2 if axis < 0 else axis
            if ax < 0 or ax > 1:
                raise ValueError("axis is out of bounds for the array")
            out = np.empty(a.shape, np.intp)
            # (element by element: a slice assignment brings Numba's shape-error message, 1.6 s to compile)
            for k in range(a.shape[1 - ax]):
                order = np.argsort(np.ascontiguousarray(a[k] if ax == 1 else a[:, k]))
                for m in range(order.shape[0]):
                    if ax == 1:
                        out[k, m] = order[m]
                    else:
                        out[m, k] = order[m]
            return out
        return impl2

    def impl(a, axis=None):
        last = a.ndim - 1
        ax = axis + a.ndim if axis < 0 else axis
        if ax < 0 or ax > last:
            raise ValueError("axis is out of bounds for the array")
        b = np.ascontiguousarray(np.swapaxes(a, ax, last))
        n = b.shape[last]
        out = np.zeros(b.shape, np.intp)
        if n > 0:
            rows, ranks = b.reshape((b.size // n, n)), out.reshape((b.size // n, n))
            for i in range(rows.shape[0]):
                ranks[i] = np.argsort(rows[i])
        return np.swapaxes(out, ax, last)
    return impl


# the NumPy functions given an integer-axis version, by their name in np
ALONG = {"max": MAX, "amax": MAX, "min": MIN, "amin": MIN, "mean": MEAN, "prod": PROD, "argsort": ARGSORT}


def overload_along_axis(names):
    """Give each np.<name> of `names` its integer-axis version under Numba; the CLI's emitted
    modules call this too, for the ones their code uses."""
    done = []
    for name in names:
        fn = getattr(np, name)
        if fn not in done:      # one function under two names (np.amax is np.max before NumPy 2)
            done.append(fn)
            _overload_along(fn, ALONG[name])


overload_along_axis(ALONG)

# ---- Numba versions of runtime helpers that reduce along an axis ----------------------------------
def _none(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


@njit
def _others_dot_row(a, t, out):
    """out[i] = the sum over j != i of t[j] times the product of a's entries other than i and j:
    running products from the left and from the right that skip i."""
    n = a.shape[0]
    right = np.empty(n)
    for i in range(n):
        acc = 1.0
        for j in range(n - 1, -1, -1):
            right[j] = acc
            if j != i:
                acc *= a[j]
        left = 1.0
        s = 0.0
        for j in range(n):
            if j != i:
                s += t[j] * left * right[j]
                left *= a[j]
        out[i] = s


@overload(runtime.prod_adjoint_dot)
def _prod_adjoint_dot_ov(g, x, t, axis):
    if not isinstance(x, types.Array):
        return lambda g, x, t, axis: 0.0 * g   # the product of one number: its adjoint g is constant in x
    if _none(axis):
        def whole(g, x, t, axis):
            a = np.ascontiguousarray(x).reshape(x.size).astype(np.float64)
            out = np.empty(a.size)
            _others_dot_row(a, np.ascontiguousarray(t).reshape(t.size).astype(np.float64), out)
            return (g * out).reshape(x.shape)
        return whole
    if not isinstance(axis, types.Integer):
        return None
    nd = x.ndim

    def along(g, x, t, axis):
        ax = axis + nd if axis < 0 else axis
        outer, n, inner = split_shape(x.shape, ax)
        a3 = np.ascontiguousarray(x).reshape((outer, n, inner)).astype(np.float64)
        t3 = np.ascontiguousarray(t).reshape((outer, n, inner)).astype(np.float64)
        out = np.empty((outer, n, inner))
        row, trow, orow = np.empty(n), np.empty(n), np.empty(n)
        for o in range(outer):
            for i in range(inner):
                for j in range(n):
                    row[j] = a3[o, j, i]
                    trow[j] = t3[o, j, i]
                _others_dot_row(row, trow, orow)
                for j in range(n):
                    out[o, j, i] = orow[j]
        return runtime.sum_adjoint(g, x, axis) * out.reshape(x.shape)
    return along


@njit
def _as_matrix(g, rows, cols):
    return np.ascontiguousarray(g).reshape((rows, cols))


def _inner_adjoint(x_side):
    """np.inner(x, y) = X Y^T with X, Y their matrices of last-axis rows: X's adjoint G Y, Y's G^T X."""
    def ov(g, x, y):
        if not (isinstance(x, types.Array) and isinstance(y, types.Array)):
            if x_side:
                return lambda g, x, y: runtime.unbroadcast(g * y, x)
            return lambda g, x, y: runtime.unbroadcast(g * x, y)
        g_number = not isinstance(g, types.Array)

        def impl(g, x, y):
            n = x.shape[-1]
            rows_x, rows_y = x.size // n, y.size // n
            gm = np.full((rows_x, rows_y), g) if g_number else _as_matrix(g, rows_x, rows_y)
            if x_side:
                return np.dot(gm, _as_matrix(y, rows_y, n)).reshape(x.shape)
            return np.dot(gm.T, _as_matrix(x, rows_x, n)).reshape(y.shape)
        return impl
    return ov


overload(runtime.inner_adjoint_x)(_inner_adjoint(True))
overload(runtime.inner_adjoint_y)(_inner_adjoint(False))


@overload(runtime.hstack_adjoint)
def _hstack_adjoint_ov(g, xs):
    if isinstance(xs, types.Array):
        if xs.ndim <= 2:
            return lambda g, xs: np.ascontiguousarray(g).reshape(xs.shape)
        return None
    if isinstance(xs, types.BaseTuple):
        axis = 0 if getattr(xs.types[0], "ndim", 0) <= 1 else 1
        return lambda g, xs: runtime.split_like(g, xs, axis)
    return None


def matmul(a, b):
    return np.matmul(a, b)


@overload(matmul)
def _matmul_ov(a, b):
    """np.matmul(a, b) is `a @ b` (Numba has the operator, not the function)."""
    return lambda a, b: a @ b


def inner(a, b):
    return np.inner(a, b)


@overload(inner)
def _inner_ov(a, b):
    """np.inner (which Numba lacks): the last axes contracted, X Y^T of the matrices of last-axis rows."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        return lambda a, b: a * b
    if a.ndim == 1 and b.ndim == 1:
        return lambda a, b: np.dot(a, b)

    def impl(a, b):
        n = a.shape[-1]
        product = np.dot(_as_matrix(a, a.size // n, n), _as_matrix(b, b.size // n, n).T)
        return product.reshape(a.shape[:-1] + b.shape[:-1])
    return impl


def array(object, dtype=None):  # noqa: A002  (np.array's parameter name)
    return np.array(object, dtype=dtype)


@overload(array)
def _array_ov(object, dtype=None):  # noqa: A002
    """np.array of an array is a copy, of a tuple of arrays their stack (Numba's takes lists and
    tuples of numbers only)."""
    if _no_arg(dtype):
        if isinstance(object, types.Array):
            return lambda object, dtype=None: object.copy()
        if isinstance(object, types.UniTuple) and isinstance(object.dtype, types.Array):
            return lambda object, dtype=None: np.stack(object)
        return lambda object, dtype=None: np.array(object)
    return lambda object, dtype=None: np.array(object, dtype)


def clip(a, a_min, a_max):
    return np.clip(a, a_min, a_max)


@overload(clip)
def _clip_ov(a, a_min, a_max):
    """np.clip of numbers (Numba's takes an array)."""
    if all(isinstance(t, types.Number) for t in (a, a_min, a_max)):
        return lambda a, a_min, a_max: a_min if a < a_min else a_max if a > a_max else a
    return lambda a, a_min, a_max: np.clip(a, a_min, a_max)


def dot(a, b):
    return np.dot(a, b)


@overload(dot)
def _dot_ov(a, b):
    """np.dot with a number on either side (a product), or of a stack (more than two axes) with a
    vector or matrix (its last axis against the other's first): Numba's takes vectors and matrices."""
    if not isinstance(a, types.Array) or not isinstance(b, types.Array):
        return lambda a, b: a * b
    if a.ndim > 2 and b.ndim <= 2:
        def stacked(a, b):
            n = a.shape[-1]
            product = np.dot(_as_matrix(a, a.size // n, n), b)
            return product.reshape(a.shape[:-1] + b.shape[1:])
        return stacked
    return lambda a, b: np.dot(a, b)


def norm(x):
    return np.linalg.norm(x)


@overload(norm)
def _norm_ov(x):
    """np.linalg.norm of a tuple of numbers (a list in the user's code): Numba's takes arrays only."""
    if isinstance(x, types.BaseTuple):
        return lambda x: np.linalg.norm(np.array(x))
    return lambda x: np.linalg.norm(x)


def squeeze(a, axis=None):
    return np.squeeze(a, axis=axis)


@overload(squeeze)
def _squeeze_ov(a, axis=None):
    """np.squeeze along a given axis (Numba has no np.squeeze; without an axis the result's rank
    depends on the shape, which Numba's types do not know)."""
    if isinstance(a, types.Array) and isinstance(axis, types.Integer):
        nd, m = a.ndim, a.ndim - 1

        def impl(a, axis=None):
            ax = axis + nd if axis < 0 else axis
            if a.shape[ax] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
            return np.ascontiguousarray(a).reshape(to_fixed_tuple(drop_axis(a.shape, ax), m))
        return impl
    return None


def vdot(a, b):
    return np.vdot(a, b)


@overload(vdot)
def _vdot_ov(a, b):
    """np.vdot of arrays of any rank (their elements in order): Numba's takes vectors."""
    if isinstance(a, types.Array) and isinstance(b, types.Array):
        return lambda a, b: np.dot(np.ascontiguousarray(a).reshape(a.size), np.ascontiguousarray(b).reshape(b.size))
    return None


def hstack(tup):
    return np.hstack(tup)


@overload(hstack)
def _hstack_ov(tup):
    """np.hstack of one array (its items are its rows): Numba's takes a tuple of arrays only."""
    if isinstance(tup, types.Array):
        if tup.ndim == 1:
            return lambda tup: tup.copy()
        if tup.ndim == 2:
            return lambda tup: np.ascontiguousarray(tup).reshape(tup.size)
        return None
    return lambda tup: np.hstack(tup)


def swapaxes(a, axis1, axis2):
    return np.swapaxes(a, axis1, axis2)


@overload(swapaxes)
def _swapaxes_ov(a, axis1, axis2):
    """A vector's or a matrix's axes swapped (s2sad's definitions along an axis swap it first):
    a view, as NumPy's, through .T, which Numba compiles at once; Numba's own np.swapaxes takes
    3-4 s to compile. Other ranks go to Numba's."""
    if not isinstance(a, types.Array) or a.ndim > 2:
        return lambda a, axis1, axis2: np.swapaxes(a, axis1, axis2)
    nd = a.ndim

    def impl(a, axis1, axis2):
        i = axis1 + nd if axis1 < 0 else axis1
        j = axis2 + nd if axis2 < 0 else axis2
        if i < 0 or i >= nd or j < 0 or j >= nd:
            raise ValueError("axis is out of bounds for the array")
        return a.T if i != j else a.T.T
    return impl


def reshape(a, shape):
    return np.reshape(a, shape)


@overload(reshape)
def _reshape_ov(a, shape):
    """NumPy reshapes any array, copying where it cannot give a view; Numba's takes contiguous
    arrays only (np.c_[A[:, 0], ...] reshapes a column of a matrix): one that is not is copied
    first."""
    if isinstance(a, types.Array) and a.layout != "C":
        return lambda a, shape: np.reshape(np.ascontiguousarray(a), shape)
    return lambda a, shape: np.reshape(a, shape)


def atleast_1d(a):
    return np.atleast_1d(a)


@overload(atleast_1d)
def _atleast_1d_ov(a):
    """A number as an array of one element (np.r_[x, 1.0]); Numba's np.atleast_1d takes arrays only."""
    if isinstance(a, types.Number):
        dtype = np.float64 if isinstance(a, types.Float) else np.int64

        def impl(a):
            out = np.empty(1, dtype=dtype)
            out[0] = a
            return out
        return impl
    return lambda a: np.atleast_1d(a)


STAND_INS = {"sum": sum, "mean": mean, "max": max, "amax": max, "min": min, "amin": min, "swapaxes": swapaxes,
             "atleast_1d": atleast_1d, "reshape": reshape}
