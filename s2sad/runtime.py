"""Runtime helpers that generated code calls.

Each helper is plain NumPy, so the Python backend runs generated code as it
is; `numba_support` registers Numba implementations of the same helpers so
that generated code also compiles in nopython mode.

Here the tape is a Python list of values.  The Numba backend's tape
(numba_backend.py) is typed: a stack of float64 values and one of int64
values (ints, booleans, array shapes), preallocated and grown by doubling;
`pop(tape, like)` takes a value of the popped value's type as the witness
that picks the stack, which Numba's type unification keeps consistent with
the push.
"""

import math

import numpy as np


class Tape:
    """The Python backend's tape: a plain stack of values, exact whatever their types."""

    def __init__(self):
        self.values = []  # push and pop
        self.slots = []  # tape_reserve's blocks, apart: a tangent tape reserves the same, at the same index
        self.nslots = 0  # slots in use; those released keep their values until reserved again


def push(tape, value):
    # arrays are copied: the forward sweep may write into them after the push
    tape.values.append(value.copy() if isinstance(value, np.ndarray) else value)


def pop(tape, like):
    """The last value pushed; `like` (a value of its type) is the witness Numba's typed tape needs."""
    return tape.values.pop()


def push_shape(tape, value):
    """Tape only an array's shape: the reverse sweep reads nothing else of it (unbroadcast, zeros_like)."""
    tape.values.append(np.shape(value))


def pop_shape(tape, like):
    """An array of the shape last taped by push_shape, its values unset: only its shape is read,
    so `like` itself serves when it has that shape."""
    shape = tape.values.pop()
    return like if np.shape(like) == shape else np.empty(shape, dtype=like.dtype)


# A loop that tapes the same floats on every trip reserves them all at once: its trips write and
# read their slots by index (reverse.py, address_tapes_by_trip), with no count to update per value.
def tape_reserve(tape, trips, per_trip):
    """Reserve `per_trip` slots per trip on top of the tape; the first slot's index."""
    base = tape.nslots
    tape.nslots += per_trip * max(trips, 0)
    tape.slots.extend([0.0] * (tape.nslots - len(tape.slots)))
    return base


def tape_put(tape, slot, value):
    tape.slots[slot] = value


def tape_release(tape, trips, per_trip):
    """Give back what `tape_reserve(tape, trips, per_trip)` took; the first slot's index.

    The reverse loop reads the slots after this: they keep their values until reserved again."""
    tape.nslots -= per_trip * max(trips, 0)
    return tape.nslots


def tape_get(tape, slot, like):
    return tape.slots[slot]


def stop_gradient(x):
    """The value of `x`, through which no derivative flows."""
    return x


def logistic(x):
    """1 / (1 + exp(-x)), which the user wrote: normalize recognizes that expression.

    Its derivative is ans * (1 - ans), so the reverse sweep keeps one value (the result) where
    the chain rule through exp, + and / keeps three, and it is 0, not NaN, where exp(-x)
    overflows (the chain rule there multiplies 0 by inf)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return 1.0 / (1.0 + np.exp(-x))
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:  # math.exp raises where np.exp gives inf (and so the result 0)
        return 0.0


def reversed_range(start, stop, step):
    """range(start, stop, step) backwards: range(reversed_first(...), start - step, -step)."""
    return range(reversed_first(start, stop, step), start - step, -step)


def reversed_first(start, stop, step):
    """The last value of range(start, stop, step) (start - step if it is empty)."""
    n = len(range(start, stop, step))
    return start + (n - 1) * step


class TupleAdjoint(tuple):
    """The adjoint of a tuple of arrays (the `xs` of concatenate/stack).

    Generated code accumulates adjoints with `+`, which would concatenate
    plain tuples; adjoints add item by item.
    """

    def __add__(self, other):
        return TupleAdjoint(a + b for a, b in zip(self, other))

    __radd__ = __add__


def add_tuples(a, b):
    """The sum of two adjoints of a tuple, item by item (`a + b` would join them): generated
    code accumulates a tuple's adjoint with it, the compiled code's tuples being plain ones."""
    return TupleAdjoint(add_tuples(x, y) if isinstance(x, tuple) else x + y for x, y in zip(a, b))


def zeros_like(x):
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape)
    if isinstance(x, (tuple, list)):
        return TupleAdjoint(zeros_like(item) for item in x)
    return 0.0


def unbroadcast(g, x):
    """Sum `g` down to the shape of `x`: the adjoint of NumPy broadcasting."""
    if not isinstance(x, np.ndarray):
        return np.sum(g)
    g = np.asarray(g)
    if g.shape == x.shape:
        return g
    while g.ndim > x.ndim:
        g = g.sum(axis=0)
    for axis, size in enumerate(x.shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g.reshape(x.shape) if g.shape != x.shape else g


def sum_adjoint(g, x, axis):
    """Spread the adjoint of a sum back over the summed array."""
    if axis is None or np.ndim(g) == 0:   # a scalar g: the same for every element (a tangent's 1.0)
        return g + np.zeros(np.shape(x))
    return np.expand_dims(g, axis) + np.zeros(np.shape(x))


def prod_adjoint(g, x, axis):
    """Adjoint of prod: g times the product of the *other* entries.

    `ans / x` would be nan at a zero entry, so multiply exclusive running
    products from the left and from the right instead.
    """
    a = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1) if axis is not None else np.ravel(x)
    one = np.ones(a.shape[:-1] + (1,))
    left = np.cumprod(np.concatenate((one, a[..., :-1]), axis=-1), axis=-1)
    right = np.flip(np.cumprod(np.concatenate((one, np.flip(a, -1)[..., :-1]), axis=-1), axis=-1), -1)
    others = np.moveaxis(left * right, -1, axis) if axis is not None else np.reshape(left * right, np.shape(x))
    return sum_adjoint(g, x, axis) * others


def prod_adjoint_dot(g, x, t, axis):
    """The tangent of prod_adjoint(g, x, axis) along a tangent `t` of x (a Hessian of np.prod):
    g times, for each entry i, the sum over the other entries j of t_j times the product of the
    entries other than i and j, without dividing (x may hold zeros). Row i of `b` is x with its
    entry i set to 1, and of `tb`, t with its entry i set to 0."""
    a = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1) if axis is not None else np.ravel(x)
    ta = np.moveaxis(np.asarray(t, dtype=np.float64), axis, -1) if axis is not None else np.ravel(t)
    eye = np.eye(a.shape[-1], dtype=bool)
    b = np.where(eye, 1.0, a[..., None, :])
    tb = np.where(eye, 0.0, ta[..., None, :])
    others_dot = np.sum(tb * prod_adjoint(1.0, b, -1), axis=-1)
    back = np.moveaxis(others_dot, -1, axis) if axis is not None else np.reshape(others_dot, np.shape(x))
    return sum_adjoint(g, x, axis) * back


def extreme_adjoint(g, x, ans, axis):
    """Adjoint of max/min: to the extreme entries, split evenly among ties."""
    hits = (x == sum_adjoint(ans, x, axis)) * 1.0
    count = np.sum(hits, axis=axis) if axis is not None else np.sum(hits)
    return sum_adjoint(g / count, x, axis) * hits


def cumsum_adjoint(g, x, axis):
    if axis is None:
        return np.reshape(np.cumsum(g[::-1])[::-1], np.shape(x))
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


def dot_adjoint_x(g, x, y):
    """np.dot(x, y) sums x's last axis against y's second to last: g has the shape
    x.shape[:-1] + y.shape[:-2] + y.shape[-1:], and x's adjoint contracts g's axes after x's
    own leading ones with every axis of y but that one."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        return unbroadcast(g * y, x)
    if y.ndim == 1:
        return np.multiply.outer(g, y) if x.ndim > 1 or np.ndim(g) > 0 else g * y
    if y.ndim == 2:
        return np.dot(y, g) if x.ndim == 1 else np.dot(g, y.T)
    y_axes = [d for d in range(y.ndim) if d != y.ndim - 2]
    return np.tensordot(g, y, axes=(list(range(x.ndim - 1, np.ndim(g))), y_axes))


def dot_adjoint_y(g, x, y):
    """As dot_adjoint_x: y's adjoint contracts x's leading axes with g's, and puts the axis
    of x's last in the place of y's second to last."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        return unbroadcast(g * x, y)
    if x.ndim == 1 and y.ndim <= 2:
        return np.multiply.outer(x, g) if y.ndim > 1 else g * x
    if x.ndim == 2 and y.ndim <= 2:
        return np.dot(x.T, g)
    lead = list(range(x.ndim - 1))
    product = np.tensordot(x, g, axes=(lead, lead))      # x's last axis, then g's others
    return np.moveaxis(product, 0, -2) if y.ndim > 1 else product


def matmul_adjoint_x(g, x, y):
    """x @ y with a stack of matrices on either side (more than two axes): the matrices of the
    stacks multiply pairwise, their leading axes broadcast, and a vector stands for one row
    (x) or column (y). Either adjoint is the matrix adjoint in the stack, summed back over
    what broadcast."""
    x, y = np.asarray(x), np.asarray(y)
    g = _as_matrices(g, x, y)
    ys = y[:, None] if y.ndim == 1 else y
    return unbroadcast(g @ np.swapaxes(ys, -1, -2), x[None, :] if x.ndim == 1 else x).reshape(x.shape)


def matmul_adjoint_y(g, x, y):
    """As matmul_adjoint_x."""
    x, y = np.asarray(x), np.asarray(y)
    g = _as_matrices(g, x, y)
    xs = x[None, :] if x.ndim == 1 else x
    return unbroadcast(np.swapaxes(xs, -1, -2) @ g, y[:, None] if y.ndim == 1 else y).reshape(y.shape)


def _as_matrices(g, x, y):
    """g with the axes NumPy's matmul drops for a vector operand put back (length 1)."""
    g = np.asarray(g, dtype=np.float64)
    if x.ndim == 1:
        g = np.expand_dims(g, -1 if y.ndim == 1 else -2)
    if y.ndim == 1:
        g = np.expand_dims(g, -1)
    return g


def add_dot_adjoint_x(acc, g, x, y):
    """acc + dot_adjoint_x(g, x, y), added into acc itself where the shapes agree. Generated
    code calls it only on an accumulator that no other name refers to (optimize.accumulate_in_place)."""
    return _add_into(acc, dot_adjoint_x(g, x, y))


def add_dot_adjoint_y(acc, g, x, y):
    """acc + dot_adjoint_y(g, x, y), as add_dot_adjoint_x."""
    return _add_into(acc, dot_adjoint_y(g, x, y))


def _add_into(acc, d):
    if isinstance(acc, np.ndarray) and acc.dtype == np.float64 and acc.flags.writeable \
            and np.shape(d) == acc.shape:
        acc += d
        return acc
    return acc + d


# A weight's adjoint in a loop gains an outer product a trip (`W_bar = add_dot_adjoint_x(W_bar,
# g, W, h)` for `W @ h`): a pass over all of W_bar each trip. optimize.defer_outer_products
# stashes the two vectors instead, as rows of two matrices, and adds them all at once with one
# matrix product G.T @ H after the loop (or when the stash is full): BLAS's blocked product, not
# one read and write of W_bar per trip. The sum is the same, added in another order.
OUTER_ROWS_BUDGET = 1 << 16   # floats a stash holds (512 KiB): it stays in the cache


def outer_rows(acc, trips):
    """An empty stash for outer products to add into the matrix `acc` over `trips` trips: rows
    of the left and of the right vectors, and their count."""
    m, k = np.shape(acc) if np.ndim(acc) == 2 else (0, 0)
    rows = max(1, min(trips, OUTER_ROWS_BUDGET // max(m + k, 1)))
    return np.empty((rows, m)), np.empty((rows, k)), np.zeros(1, dtype=np.int64)


def later_dot_adjoint_x(stash, acc, g, x, y):
    """add_dot_adjoint_x(acc, g, x, y), the outer product g y^T of a matrix-vector product
    stashed for add_outer_rows to add; at once where it is no such product."""
    if np.ndim(x) == 2 and np.ndim(y) == 1 and np.ndim(g) == 1 and _stashable(stash, acc, g, y):
        return _stash_outer(stash, acc, g, y)
    return add_dot_adjoint_x(acc, g, x, y)


def later_dot_adjoint_y(stash, acc, g, x, y):
    """add_dot_adjoint_y(acc, g, x, y), as later_dot_adjoint_x: the outer product x g^T of `x @ W`."""
    if np.ndim(x) == 1 and np.ndim(y) == 2 and np.ndim(g) == 1 and _stashable(stash, acc, x, g):
        return _stash_outer(stash, acc, x, g)
    return add_dot_adjoint_y(acc, g, x, y)


def _stashable(stash, acc, a, b):
    left, right, _ = stash
    return isinstance(acc, np.ndarray) and acc.dtype == np.float64 and acc.flags.writeable \
        and acc.shape == (left.shape[1], right.shape[1]) == (len(a), len(b))


def _stash_outer(stash, acc, a, b):
    left, right, count = stash
    left[count[0]], right[count[0]] = a, b
    count[0] += 1
    return add_outer_rows(acc, stash) if count[0] == len(left) else acc


def add_outer_rows(acc, stash):
    """acc plus the outer products in the stash, added into acc; the stash is emptied."""
    left, right, count = stash
    if count[0]:
        acc += left[:count[0]].T @ right[:count[0]]
        count[0] = 0
    return acc


def inner_adjoint_x(g, x, y):
    """np.inner contracts the last axes: g has shape x.shape[:-1] + y.shape[:-1],
    so x's adjoint contracts g's trailing axes with y's leading ones."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        return unbroadcast(g * y, x)
    k = y.ndim - 1
    return np.tensordot(g, y, axes=(list(range(np.ndim(g) - k, np.ndim(g))), list(range(k))))


def inner_adjoint_y(g, x, y):
    """Like inner_adjoint_x: y's adjoint contracts g's leading axes with x's leading ones."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        return unbroadcast(g * x, y)
    k = x.ndim - 1
    return np.tensordot(g, x, axes=(list(range(k)), list(range(k))))


def take_along_axis_adjoint(g, x, indices, axis):
    """x's adjoint from np.take_along_axis(x, indices, axis): g added at the places its elements
    were taken from (by np.add.at: indices may name a place twice)."""
    out = np.zeros(np.shape(x))
    if axis is None:
        np.add.at(out.reshape(-1), indices, g)
        return out
    at = list(np.indices(np.shape(indices), sparse=True))
    at[axis] = indices
    np.add.at(out, tuple(at), g)
    return out


def diag_adjoint(g, v, k):
    """v's adjoint from np.diag(v, k): of a vector (set on the k-th diagonal of a matrix), g's
    k-th diagonal; of a matrix (whose k-th diagonal is read), a matrix holding g there."""
    if np.ndim(v) == 1:
        return np.diag(g, k)
    out = np.zeros(np.shape(v))
    i = np.arange(np.size(g))
    out[i + max(-k, 0), i + max(k, 0)] = g
    return out


def reshape(x, shape):
    return np.reshape(np.ascontiguousarray(x), shape)


def transpose_adjoint(g, axes):
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort(axes))


def split_like(g, xs, axis):
    parts, start = [], 0
    for x in xs:
        n = np.shape(x)[axis]
        index = [slice(None)] * g.ndim
        index[axis] = slice(start, start + n)
        parts.append(g[tuple(index)])
        start += n
    return tuple(parts)


def hstack_adjoint(g, xs):
    """xs's adjoint from np.hstack(xs): g split into xs's items, along the first axis where they are
    vectors, else along the second. Of one array (whose items are its rows), g reshaped to it where
    it is a vector or a matrix (its rows end to end), else split along the second axis and stacked."""
    if isinstance(xs, np.ndarray):
        if xs.ndim <= 2:
            return np.reshape(g, xs.shape)
        return np.stack(split_like(g, tuple(xs), 1))
    return split_like(g, xs, 0 if np.ndim(xs[0]) <= 1 else 1)


def unstack(g, xs, axis):
    return tuple(np.take(g, i, axis=axis) for i in range(len(xs)))


def vstack_adjoint(g, xs):
    parts = split_like(g, tuple(np.atleast_2d(x) for x in xs), 0)
    return tuple(np.reshape(p, np.shape(x)) for p, x in zip(parts, xs))


def solve_adjoint_a(g, a, ans):
    """The adjoint of `a` in `ans = np.linalg.solve(a, b)`: -solve(a^T, g) ans^T, for a matrix or a
    stack of them, and `b` a vector (NumPy's rule: b.ndim == 1) or a matrix (or a stack of them)."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(ans) == np.ndim(a) - 1:  # b a vector
        b_bar = np.linalg.solve(at, g[..., None])[..., 0]
        return -(b_bar[..., :, None] * ans[..., None, :])
    return -(np.linalg.solve(at, g) @ np.swapaxes(ans, -1, -2))


def max_share(x, y):
    """d max(x, y) / dx: 1 where x wins, 1/2 on a tie, 0 where y wins."""
    return (x > y) * 1.0 + (x == y) * 0.5


def inside(x, lo, hi):
    return ((x >= lo) & (x <= hi)) * 1.0


def add_at(target, index, g):
    out = np.array(target, copy=True)
    np.add.at(out, index, g)
    return out


def scatter_adjoint(g, index):
    """The adjoint of `value` in `y[index] = value`: g[index], but 0 where the index names an
    element again later on, since NumPy keeps one write of each element (the last one; the
    same assignment decides here which write that is)."""
    picked = np.asarray(g)[index]
    order = np.arange(picked.size, dtype=np.int64).reshape(np.shape(picked))
    writer = np.full(np.shape(g), -1, dtype=np.int64)
    writer[index] = order
    return np.where(writer[index] == order, picked, 0.0)


def astype(x, dtype):
    return np.asarray(x).astype(dtype)


HELPERS = {name: obj for name, obj in globals().items()
           if callable(obj) and not name.startswith("_") and name not in ("np",)}

# helpers that read one argument for its shape alone (its position): a matrix product's adjoint
# with respect to one factor multiplies by the other and needs only the rank of its own
SHAPE_ARGS = {"unbroadcast": 1, "sum_adjoint": 1, "dot_adjoint_x": 1, "dot_adjoint_y": 2,
              "inner_adjoint_x": 1, "inner_adjoint_y": 2, "add_dot_adjoint_x": 2, "add_dot_adjoint_y": 3,
              "later_dot_adjoint_x": 3, "later_dot_adjoint_y": 4, "matmul_adjoint_x": 1, "matmul_adjoint_y": 2}
