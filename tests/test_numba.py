"""The Numba backend: generated code compiled by numba.njit in nopython mode.

Every case runs compiled for real (not NUMBA_DISABLE_JIT) and is compared with
the Python backend (to 1e-12 relative) and with finite differences. Compiles
cost seconds, so the grad objects live at module level and are shared.
"""

import functools
import math
import warnings

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import s2sad  # noqa: E402
from s2sad import runtime  # noqa: E402
from fd import numerical_grad  # noqa: E402

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="needs Numba's compiler, not NUMBA_DISABLE_JIT")


# ---- functions under test ---------------------------------------------------------
def loop_branch(x, y):
    s = 0.0
    for i in range(len(x)):
        if x[i] > 0.5:
            s = s + np.sin(x[i]) * y
        else:
            s = s - x[i] * x[i]
    return s


def while_loop(x):
    s = x
    n = 0
    while s < 10.0:
        s = s * 1.5 + 0.1
        n = n + 1
    return s * n


def array_writes(x):
    y = np.zeros(len(x))
    for i in range(1, len(x)):
        y[i] = y[i - 1] * 0.5 + np.cos(x[i])
    return np.sum(y * y)


def reductions(x):
    return np.sum(np.exp(x)) + np.max(x) + np.mean(x * x) + np.sum(np.cumsum(x) ** 2)


def sum_axis(a):
    return np.sum(np.sum(a * a, axis=0) * np.sum(a, axis=1)[0])


def matmul(a, b):
    return np.sum(np.tanh(a @ b))


def helper(a, b):
    return a * np.exp(-b)


def helper_in_loop(x):
    s = 0.0
    for i in range(len(x)):
        s = s + helper(x[i], s)
    return s


def broadcasting(a, v):
    return np.sum((a + v) ** 2 * v)


def array_loop(x):
    y = x
    for i in range(3):
        y = np.sin(y) * 1.1
    return np.sum(y)


def elementwise_helpers(x):
    return np.sum(np.clip(x, 0.2, 0.6) * np.maximum(x, 0.5))


def scalar_builtins(x):
    s = 0.0
    for i in range(len(x)):
        s = s + max(x[i], 0.5) + abs(x[i]) ** 1.5 + math.erf(x[i])
    return s


@s2sad.custom_jvp
def softplus(x):
    return np.log1p(np.exp(x))


@softplus.defjvp
def softplus_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return softplus(x), x_dot / (1.0 + np.exp(-x))


def not_numba(x):
    # reverse mode of a custom_jvp rule calls the user's Python rule: not compilable in nopython mode
    return np.sum(softplus(x))


X = np.linspace(0.13, 0.91, 5)  # no entry on a branch boundary (0.5) or a clip bound
A = np.arange(12.0).reshape(4, 3) / 7 + 0.1

CASES = {
    "loop_branch": (loop_branch, (X, 2.0), (0, 1)),
    "while_loop": (while_loop, (1.3,), 0),
    "array_writes": (array_writes, (X,), 0),
    "reductions": (reductions, (X,), 0),
    "matmul": (matmul, (A, np.ones((3, 2)) * 0.2), (0, 1)),
    "helper_in_loop": (helper_in_loop, (X,), 0),
    "broadcasting": (broadcasting, (A, X[:3]), (0, 1)),
    "array_loop": (array_loop, (X,), 0),
    "elementwise_helpers": (elementwise_helpers, (X,), 0),
    "scalar_builtins": (scalar_builtins, (X,), 0),
    "sum_axis": (sum_axis, (A,), 0),
}
SLOW = {"sum_axis", "matmul"}  # about 10 s or more to compile on a loaded 2-core machine

NUMBA = {k: s2sad.grad(f, argnums=n, backend="numba") for k, (f, args, n) in CASES.items()}
PYTHON = {k: s2sad.grad(f, argnums=n, backend="python") for k, (f, args, n) in CASES.items()}


def _params():
    return [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in CASES]


def _as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


@pytest.mark.parametrize("case", _params())
def test_numba_matches_python_and_fd(case):
    f, args, argnums = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn: fail instead
        got = NUMBA[case](*args)
    spec = NUMBA[case].last
    assert spec.call.compiled, f"{case} was not compiled by Numba"
    want = PYTHON[case](*args)
    positions = argnums if isinstance(argnums, tuple) else (argnums,)
    for g, w, i in zip(_as_tuple(got), _as_tuple(want), positions):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g, numerical_grad(f, args, i), rtol=1e-5, atol=1e-7)


def test_numba_second_call_reuses_compiled_code():
    f, args, _ = CASES["loop_branch"]
    g = NUMBA["loop_branch"]
    first = g(*args)
    call = g.last.call
    x2 = np.linspace(-1.0, 1.0, 17)
    second = g(x2, 3.0)
    assert g.last.call is call and call.compiled
    for a, b in zip(second, PYTHON["loop_branch"](x2, 3.0)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert first is not None


def test_tape_push_pop_roundtrip_under_njit():
    from s2sad.backends import numba as numba_backend

    @numba.njit
    def roundtrip(a, x, n, b):
        tape = numba_backend.Tape()
        for _ in range(40):  # past the initial 64 slots: the buffers grow
            runtime.push(tape, a)
            runtime.push(tape, x)
            runtime.push(tape, n)
            runtime.push(tape, b)
        for _ in range(40):
            b2 = runtime.pop(tape, b)
            n2 = runtime.pop(tape, n)
            x2 = runtime.pop(tape, x)
            a2 = runtime.pop(tape, a)
        return a2, x2, n2, b2, tape.nfloats, tape.nints

    a = np.arange(6.0).reshape(2, 3)
    a2, x2, n2, b2, nf, ni = roundtrip(a, 2.5, 7, True)
    np.testing.assert_array_equal(a2, a)
    assert (x2, n2, b2, nf, ni) == (2.5, 7, True, 0, 0)


def test_a_taped_shape_comes_back_without_an_allocation_when_it_is_unchanged():
    # pop_shape's array is read for its shape alone: the variable's own array serves when it
    # has the taped shape, and only a changed shape makes a new (unset) array
    from s2sad.backends import numba as numba_backend

    def restore(tape, earlier, now):
        runtime.push_shape(tape, earlier)
        back = runtime.pop_shape(tape, now)
        return back, back.shape

    compiled = numba.njit(restore)
    now = np.ones((2, 3))
    for impl, tape in ((compiled, numba_backend.Tape()), (restore, runtime.Tape())):
        same, shape = impl(tape, np.zeros((2, 3)), now)
        assert shape == (2, 3) and same.ctypes.data == now.ctypes.data
        new, shape = impl(tape, np.zeros((4, 1)), now)
        assert shape == (4, 1) and new.ctypes.data != now.ctypes.data


def test_fallback_warns_once_and_is_right(monkeypatch):
    monkeypatch.setenv("S2SAD_BACKEND", "numba")
    monkeypatch.delenv("S2SAD_STRICT", raising=False)
    g = s2sad.grad(not_numba)  # backend from the environment, not asked for explicitly
    with pytest.warns(RuntimeWarning, match="Numba cannot compile") as record:
        got = g(X)
    assert any("jvp_transpose" in str(w.message) or "softplus" in str(w.message) for w in record)
    want = s2sad.grad(not_numba, backend="python")(X)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got, numerical_grad(not_numba, (X,)), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(g(X * 2), s2sad.grad(not_numba, backend="python")(X * 2), rtol=1e-12)


def test_explicit_numba_backend_raises():
    g = s2sad.grad(not_numba, backend="numba")
    with pytest.raises(s2sad.S2SADError, match="Numba cannot compile"):
        g(X)


def test_strict_env_raises(monkeypatch):
    monkeypatch.setenv("S2SAD_BACKEND", "numba")
    monkeypatch.setenv("S2SAD_STRICT", "1")
    with pytest.raises(s2sad.S2SADError, match="Numba cannot compile"):
        s2sad.grad(not_numba)(X)


def positive_squares(X):
    return np.sum(X[X > 0] ** 2)


def mismatched_product(x, y):
    return np.sum(np.dot(x, y))


def test_an_internal_error_of_numba_compiling_is_a_fallback_too(monkeypatch):
    # Numba types a boolean mask of two axes and then fails an assertion lowering it: that too
    # is "Numba cannot compile" (a warning and the Python version, or an S2SADError when strict)
    monkeypatch.setenv("S2SAD_BACKEND", "numba")
    monkeypatch.delenv("S2SAD_STRICT", raising=False)
    M = np.array([[0.5, -1.0, 2.0], [-0.3, 0.8, 1.5]])
    with pytest.warns(RuntimeWarning, match="AssertionError inside Numba's compiler"):
        got = s2sad.jacfwd(positive_squares)(M)
    np.testing.assert_allclose(got, 2 * M * (M > 0), rtol=1e-12)
    with pytest.raises(s2sad.S2SADError, match="AssertionError inside Numba's compiler"):
        s2sad.jacfwd(positive_squares, backend="numba")(M)
    # an error of the compiled code running (here NumPy's shape check) is the user's to see
    g = s2sad.grad(mismatched_product, backend="numba")
    g(np.ones(3), np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            g(np.ones(3), np.ones(4))


def test_python_backend_untouched_by_numba_import():
    from s2sad.backends import numba as numba_backend  # noqa: F401  (registers the overloads)
    tape = runtime.Tape()
    runtime.push(tape, np.ones((2, 2)))
    runtime.push(tape, 3)
    assert runtime.pop(tape, 0) == 3
    assert runtime.pop(tape, np.empty((0, 0))).shape == (2, 2)
    assert isinstance(tape, runtime.Tape) and not isinstance(runtime.Tape, numba.core.types.Type)


def strided_loops(x, v):
    s = 0.0
    for j in range(1, v.shape[0]):         # reversed as range(n - 1, 0, -1)
        s = s + np.sin(x * v[j]) * v[j - 1]
    for j in range(v.shape[0] - 1, -1, -2):  # reversed through reversed_range
        s = s * np.cos(0.1 * s + v[j])
    return s


def test_forward_over_reverse_of_strided_loops_compiles_under_numba():
    # the reverse of `range(1, n)` and of a stride-2 range, transformed again by forward mode:
    # Numba could not index the `reversed_range` object (GradBench kmeans ran on Python)
    v = np.array([0.5, -1.2, 0.8, 0.3, 1.1])
    g = s2sad.grad(strided_loops, backend="numba")
    assert g(0.7, v) == pytest.approx(numerical_grad(strided_loops, (0.7, v), 0), rel=1e-6)
    d2 = s2sad.grad(g, backend="numba")(0.7, v)
    assert d2 == pytest.approx(numerical_grad(s2sad.grad(strided_loops), (0.7, v), 0), rel=1e-5)
    assert d2 == pytest.approx(s2sad.grad(s2sad.grad(strided_loops, backend="python"), backend="python")(0.7, v),
                               rel=1e-12)


def list_display_of_scalars(x, y):
    pair = [x * y, np.sin(x)]
    return np.sum(np.array(pair) ** 2)


def test_adjoint_of_a_list_display_compiles():
    # zeros_like of a list of floats had no Numba implementation: the gradient fell back to Python
    g = s2sad.grad(list_display_of_scalars, argnums=(0, 1), backend="numba")(0.4, -1.3)
    want = s2sad.grad(list_display_of_scalars, argnums=(0, 1), backend="python")(0.4, -1.3)
    assert g == pytest.approx(want, rel=1e-12)
    assert g[0] == pytest.approx(numerical_grad(list_display_of_scalars, (0.4, -1.3), 0), rel=1e-7)


def side_by_side(x, A):
    return np.sum(np.hstack((x, x * x)) * np.arange(10.0)) + np.sum(np.sin(np.hstack((A, A * 2.0))))


def test_the_adjoint_of_hstack_compiles():
    # its rule read np.ndim, which Numba lacks: the gradient ran as Python
    x, A = X, np.arange(6.0).reshape(2, 3) / 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = s2sad.grad(side_by_side, argnums=(0, 1), backend="numba")(x, A)
    want = s2sad.grad(side_by_side, argnums=(0, 1), backend="python")(x, A)
    for i in range(2):
        np.testing.assert_allclose(g[i], want[i], rtol=1e-12)
        np.testing.assert_allclose(g[i], numerical_grad(side_by_side, (x, A), i), rtol=1e-6, atol=1e-8)


def pair_of(p, q):
    return np.sin(p) * q, p + q * q


def unpacks_a_helper_pair(x, y):
    a, b = pair_of(x, y)
    return a * b


def test_adjoint_of_a_helpers_tuple_of_floats_compiles():
    # zeros_like of a tuple of floats had no Numba implementation (found by random programs under Numba)
    want = s2sad.grad(unpacks_a_helper_pair, argnums=(0, 1), backend="python")(0.4, -1.3)
    assert s2sad.grad(unpacks_a_helper_pair, argnums=(0, 1), backend="numba")(0.4, -1.3) == pytest.approx(want, rel=1e-12)
    assert want[0] == pytest.approx(numerical_grad(unpacks_a_helper_pair, (0.4, -1.3), 0), rel=1e-7)


def early_return_in_a_loop(x, v):
    s = x * v[0]
    if s > 0.5:
        return -s
    for a in v:
        if a * s > 0.5:
            return np.sin(s) * a
        s = np.tanh(s + a)
    return s * x


def test_forward_mode_with_early_returns_compiles():
    # `_retval` and its tangent were set only inside branches: Numba refused the jvp
    v = np.array([0.1, 0.4, 2.0])
    for x in (0.3, 1.4):
        want = numerical_grad(early_return_in_a_loop, (x, v), 0)
        assert s2sad.jacfwd(early_return_in_a_loop, backend="numba")(x, v) == pytest.approx(want, rel=1e-6)
        assert s2sad.grad(early_return_in_a_loop, backend="numba")(x, v) == pytest.approx(want, rel=1e-6)


# ---- the adjoint loop's shape: preallocated tapes, fused accumulations -------------------------
def iir_from(x, a, start):
    """A recurrence over x[start:]: y is overwritten every trip, so its old values are taped."""
    y = 0.0
    s = 0.0
    for i in range(start, x.shape[0]):
        y = a * y + (1.0 - a) * x[i]
        s = s + y * y
    return s


def paths(sigma, z):
    """Monte-Carlo-like: each outer trip restarts s (taped per path), the inner loop tapes s per step."""
    total = 0.0
    for p in range(z.shape[0]):
        s = 1.0
        for t in range(z.shape[1]):
            s = s * (1.0 + sigma * z[p, t])
        if s > 1.0:
            total = total + (s - 1.0) * s
    return total


IIR_X = np.array([0.3, -1.2, 0.8, 2.0, -0.4, 0.05])
PATHS_Z = np.array([[0.3, -0.2, 0.5], [-0.4, 0.1, -0.3], [0.6, 0.2, 0.1], [0.0, -0.5, 0.4]])


def test_a_loops_taped_values_are_addressed_by_trip():
    # y, taped once per trip, goes to slots reserved before the loop (tape_reserve), written and read
    # by trip: the generated code keeps no push or pop, and every backend and order agrees with FD
    g = s2sad.grad(iir_from, argnums=(0, 1))
    for start in (0, 2, 6):  # 6: no trips at all
        args = (IIR_X, 0.7, start)
        got = g(*args)
        np.testing.assert_allclose(got[0], numerical_grad(iir_from, args, 0), rtol=1e-6, atol=1e-9)
        assert got[1] == pytest.approx(numerical_grad(iir_from, args, 1), rel=1e-6, abs=1e-9)
        compiled = s2sad.grad(iir_from, argnums=(0, 1), backend="numba")(*args)
        np.testing.assert_allclose(compiled[0], got[0], rtol=1e-12, atol=1e-15)
        assert compiled[1] == pytest.approx(got[1], rel=1e-12, abs=1e-15)
    source = s2sad.source(g)
    assert "push(" not in source and "pop(" not in source
    assert "tape_reserve(_tape, _t" in source and "tape_get(_tape, _base" in source
    # second order through the slots: forward over reverse mirrors them on a tangent tape
    ga = s2sad.grad(iir_from, argnums=1)
    args = (IIR_X, 0.7, 2)
    want = numerical_grad(ga, args, 1)
    assert s2sad.grad(ga, argnums=1)(*args) == pytest.approx(want, rel=1e-6)
    assert s2sad.jvp(lambda a: ga(IIR_X, a, 2), (0.7,), (1.0,))[1] == pytest.approx(want, rel=1e-6)
    assert s2sad.jacfwd(ga, argnums=1, backend="numba")(*args) == pytest.approx(want, rel=1e-6)


def test_an_inner_loops_slots_are_reserved_on_every_outer_trip():
    # the inner loop's trips tape s in slots reserved per path; the outer loop's trips push and pop
    # s and the branch around them: both kinds on one tape, in one order
    g = s2sad.grad(paths)
    for sigma in (0.3, 0.9):
        want = numerical_grad(paths, (sigma, PATHS_Z), 0)
        assert g(sigma, PATHS_Z) == pytest.approx(want, rel=1e-7)
        assert s2sad.grad(paths, backend="numba")(sigma, PATHS_Z) == pytest.approx(want, rel=1e-7)
        second = numerical_grad(g, (sigma, PATHS_Z), 0)
        assert s2sad.grad(g)(sigma, PATHS_Z) == pytest.approx(second, rel=1e-6)
        assert s2sad.grad(g, backend="numba")(sigma, PATHS_Z) == pytest.approx(second, rel=1e-6)
    source = s2sad.source(g)
    assert "tape_put(" in source and "push(" in source


def test_contributions_to_one_adjoint_are_added_before_accumulating():
    # `y * y` gives y_bar two contributions and a reads twice: one add on the running adjoint each
    g = s2sad.grad(iir_from, argnums=(0, 1))
    g(IIR_X, 0.7, 0)
    source = s2sad.source(g)
    assert "y_bar = y_bar + (_t" in source
    assert source.count("y_bar = y_bar +") == 1


def checked_grad(f, x, *rest):
    """grad(f) with respect to x, checked at (x, *rest) against central differences and against
    the Numba backend; returns the transformed function."""
    g = s2sad.grad(f, backend="python")
    got = g(x, *rest)
    np.testing.assert_allclose(got, numerical_grad(f, (x, *rest), 0), rtol=1e-6)
    np.testing.assert_allclose(s2sad.grad(f, backend="numba")(x, *rest), got, rtol=1e-12)
    return g


def checked_hessian_vector(g, x, v):
    """Forward over reverse: the jvp along v of `g`, a gradient as a function of x alone (a lambda
    s2sad can read), checked against central differences of g; returns it."""
    hv = s2sad.jvp(g, (x,), (v,))[1]
    h = 1e-6
    np.testing.assert_allclose(hv, (g(x + h * v) - g(x - h * v)) / (2 * h), rtol=1e-6)
    return hv


def euler_steps(x, steps):
    """Each trip overwrites k and d, arrays the reverse sweep reads only for their shapes."""
    y = np.zeros(x.shape[0])
    for step in range(steps):
        k = np.sin(x * y) + x
        d = 0.1 * k
        y = y + d
    return np.sum(y * y)


def test_an_overwritten_array_read_for_its_shape_only_tapes_its_shape():
    x = np.array([0.3, -0.7, 1.1])
    g = checked_grad(euler_steps, x, 4)
    source = s2sad.source(g)
    assert "push_shape(_tape, d)" in source and "d = pop_shape(_tape, d)" in source
    assert "push(_tape, y)" in source  # y's values are read: taped whole
    # forward over reverse through the restored shapes
    v = np.array([1.0, -0.5, 0.25])
    hv = checked_hessian_vector(lambda x: g(x, 4), x, v)
    np.testing.assert_allclose(s2sad.jacfwd(g, backend="numba")(x, 4) @ v, hv, rtol=1e-9)


def triangular_update(l, x):
    """gmm's inner loop: array items overwritten and an int counter, per trip of a nested loop."""
    d = x.shape[0]
    q = x * 1.5
    idx = 0
    for i in range(d):
        for j in range(i + 1, d):
            q[j] = q[j] + l[idx] * x[i]
            idx = idx + 1
    return np.sum(q * q)


def test_array_items_go_to_slots_and_ints_stay_on_the_stack():
    l = np.array([0.3, -0.2, 0.5, 0.7, -0.1, 0.4])
    x = np.array([0.9, -0.4, 0.3, 1.2])
    g = s2sad.grad(triangular_update, argnums=(0, 1))
    got = g(l, x)
    for k in (0, 1):
        np.testing.assert_allclose(got[k], numerical_grad(triangular_update, (l, x), k), rtol=1e-6)
        np.testing.assert_allclose(s2sad.grad(triangular_update, argnums=(0, 1), backend="numba")(l, x)[k],
                                   got[k], rtol=1e-12)
    source = s2sad.source(g)
    assert "q[j])" in source and "tape_put(_tape, _base" in source and "push(_tape, idx)" in source
    gx = s2sad.grad(triangular_update, argnums=1)
    v = np.array([1.0, 0.5, -0.5, 0.25])
    checked_hessian_vector(lambda x: gx(l, x), x, v)


def sum_of_squares_per_trip(x, steps):
    s = 0.0
    y = x * 1.0
    for step in range(steps):
        y = np.sin(y) * 1.1
        sq = y * y
        s = s + np.sum(sq)
    return s


def test_a_sums_adjoint_reads_the_summed_arrays_shape_only():
    g = checked_grad(sum_of_squares_per_trip, np.array([0.3, -0.7, 1.1]), 3)
    assert "push_shape(_tape, sq)" in s2sad.source(g)


def shifted_products(x, y):
    """A helper that builds its result element by element (GradBench's ode right-hand side)."""
    n = x.shape[0]
    z = np.zeros(n)
    z[0] = x[0]
    for i in range(1, n):
        z[i] = x[i] * y[i - 1]
    return z


def euler_with_helper(x, steps):
    y = np.zeros(x.shape[0])
    for step in range(steps):
        y = y + 0.5 * shifted_products(x, y)
    return np.sum(y * y)


def passes_its_buffer(x):
    buf = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        buf[i] = x[i] * 2.0
    return np.sum(shifted_products(x, buf))


def test_a_helpers_vjp_does_not_recompute_its_value():
    # the caller's reverse sweep reads only the adjoints of shifted_products: its vjp keeps the
    # array z for its shape and drops the loop that filled it
    x = np.array([0.3, -0.7, 1.1, 0.4])
    g = checked_grad(euler_with_helper, x, 3)
    source = s2sad.source(g)
    helper = source[source.index("def shifted_products_vjp"):]
    helper = helper[:helper.index("\ndef ")]
    code = [line.strip() for line in helper.splitlines() if not line.strip().startswith("#")]
    assert not any(line.startswith(("z[i] =", "z[0] =")) for line in code) and "return None, (" in helper
    # value and gradient together still give the value, and second order goes through
    value, _ = s2sad.value_and_grad(euler_with_helper)(x, 3)
    assert value == pytest.approx(euler_with_helper(x, 3), rel=1e-15)
    checked_hessian_vector(lambda x: g(x, 3), x, np.array([1.0, 0.5, -0.5, 0.25]))


def test_element_writes_stay_when_the_array_is_read():
    # buf's elements are read (by the helper call), so its writes stay
    x = np.array([0.3, -0.7, 1.1, 0.4])
    g = s2sad.grad(passes_its_buffer)
    np.testing.assert_allclose(g(x), numerical_grad(passes_its_buffer, (x,), 0), rtol=1e-6)
    assert "    buf[i] = " in s2sad.source(g)


def log_sum_exp(x):
    a = np.max(x)
    return a + np.log(np.sum(np.exp(x - a)))


def shifted_softplus(x, c):
    # x - c broadcasts a column against a row: its adjoints need unbroadcast; 0.5 * x does not
    return np.sum(np.log(1.0 + np.exp(0.5 * x - c)))


def test_an_elementwise_chain_is_one_expression():
    # x - a feeds only exp: with a scalar a, its adjoint has x's shape (no unbroadcast, nothing
    # on the tape), so the temporary goes back into one expression that Numba fuses into one loop
    x = np.array([0.3, -0.7, 1.1, 0.4])
    g = checked_grad(log_sum_exp, x)
    source = s2sad.source(g)
    assert "np.exp(x - a)" in source and "unbroadcast(" not in source
    checked_hessian_vector(g, x, np.array([1.0, 0.5, -0.5, 0.25]))


def test_broadcasting_operands_keep_their_unbroadcast():
    x, c = np.array([[0.3, -0.7, 1.1]]), np.array([[0.2], [-0.4]])
    g = checked_grad(shifted_softplus, x, c)
    source = s2sad.source(g)
    assert "unbroadcast(" in source and "np.exp(0.5 * x - c)" in source
    gc = s2sad.grad(shifted_softplus, argnums=1)
    np.testing.assert_allclose(gc(x, c), numerical_grad(shifted_softplus, (x, c), 1), rtol=1e-6)


def solve_energy(A, b):
    return np.sum(np.linalg.solve(A, b) ** 2)


def test_second_order_through_max_and_solve_adjoints():
    # forward over reverse through the adjoint helpers whose third argument is the primal result
    # (the max, the solution): a rule's own `ans` once shadowed that argument
    A = np.array([[2.0, 0.3], [0.1, 1.5]])
    b = np.array([0.4, -1.2])
    g = checked_grad(solve_energy, A, b)
    checked_hessian_vector(lambda A: g(A, b), A, np.array([[1.0, -0.5], [0.25, 0.75]]))
    x = np.array([0.3, -0.7, 1.1, 0.4])
    checked_hessian_vector(s2sad.grad(log_sum_exp), x, np.array([1.0, 0.5, -0.5, 0.25]))


def nearest_squared_distance(centroids, points):
    d2 = np.sum(points * points, axis=1)[:, None] - 2.0 * (points @ centroids.T)
    nearest = np.argmin(d2, axis=1)
    total = 0.0
    for i in range(points.shape[0]):
        j = nearest[i]
        for t in range(points.shape[1]):
            diff = points[i, t] - centroids[j, t]
            total = total + diff * diff
    return total


def test_an_index_chosen_by_argmin_along_an_axis_is_an_int_array():
    # argmin(d2, axis=1) gives one int per row: the loop that reads it is typed, its values need
    # no tape, and the search that chose them is not differentiated at all
    points = np.array([[0.0, 0.1], [1.0, 1.1], [0.2, -0.1], [0.9, 1.0], [0.4, 0.6]])
    centroids = np.array([[0.1, 0.0], [1.0, 1.0]])
    g = checked_grad(nearest_squared_distance, centroids, points)
    source = s2sad.source(g)
    assert "push(" not in source and "tape" not in source.lower()


def test_large_tape_buffers_are_reused_across_calls_but_never_shared():
    # a tape's float buffer from 1 MiB up comes from a pool: the next call gets the same memory
    # (its pages mapped already), a second tape alive at the same time does not
    from s2sad.backends import numba as nb

    @numba.njit
    def two_at_once():
        a = nb._grow_floats(np.empty(4), nb._POOL_FROM)
        b = nb._grow_floats(np.empty(4), nb._POOL_FROM)
        a[:] = 1.0
        b[:] = 2.0
        return a.ctypes.data != b.ctypes.data and a[0] == 1.0

    @numba.njit
    def one(n):
        return nb._grow_floats(np.arange(4.0), n).ctypes.data

    nb.release_tape_buffers()
    assert two_at_once()
    assert one(nb._POOL_FROM) == one(nb._POOL_FROM)
    grown = nb._grow_floats(np.arange(4.0), nb._POOL_FROM)
    assert grown.shape[0] >= nb._POOL_FROM and list(grown[:4]) == [0.0, 1.0, 2.0, 3.0]
    # a gradient with a large tape, twice: same numbers
    x = np.random.default_rng(5).uniform(-1.0, 1.0, 300_000)
    g = s2sad.grad(iir_from)
    np.testing.assert_array_equal(g(x, 0.9, 0), g(x, 0.9, 0))
    np.testing.assert_allclose(g(x[:6], 0.9, 0), numerical_grad(iir_from, (x[:6], 0.9, 0), 0), rtol=1e-6)
    nb.release_tape_buffers()


def tiny_rnn(W, U, xs):
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h * h)


def test_a_weight_adjoint_in_a_loop_is_added_in_place_and_right():
    # W's and U's adjoints take an outer product each trip: added into their arrays in place
    rng = np.random.default_rng(3)
    W, U, xs = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((3, 2)) * 0.5, rng.standard_normal((6, 2))
    g = checked_grad(tiny_rnn, W, U, xs)
    # ... or rather stashed, and added after the loop in one matrix product (optimize.defer_outer_products)
    assert "W_bar = later_dot_adjoint_x(W_bar_rows, W_bar, " in s2sad.source(g)
    assert "W_bar = add_outer_rows(W_bar, W_bar_rows)" in s2sad.source(g)
    np.testing.assert_allclose(s2sad.grad(tiny_rnn, argnums=1)(W, U, xs), numerical_grad(tiny_rnn, (W, U, xs), 1),
                               rtol=1e-6)
    # twice in a row (the in-place sums start from fresh zeros each call), and forward over reverse
    np.testing.assert_array_equal(s2sad.grad(tiny_rnn)(W, U, xs), s2sad.grad(tiny_rnn)(W, U, xs))
    checked_hessian_vector(lambda W: g(W, U, xs), W, rng.standard_normal((3, 3)))
    numba_g = s2sad.grad(tiny_rnn, backend="numba")
    hv_numba = s2sad.jvp(lambda W: numba_g(W, U, xs), (W,), (np.ones((3, 3)),))[1]
    hv_python = s2sad.jvp(lambda W: g(W, U, xs), (W,), (np.ones((3, 3)),))[1]
    np.testing.assert_allclose(hv_numba, hv_python, rtol=1e-12)


def sines(x, W):
    for t in range(4):
        x = np.sin(W @ x)
    return np.sum(x)


def test_a_factor_a_matrix_product_reads_for_its_rank_alone_tapes_only_its_shape():
    # x's adjoint through W @ x is W.T @ g: the old x is read for its rank, not its values
    x, W = np.array([0.3, -0.2, 0.5]), np.random.default_rng(0).standard_normal((3, 3))
    g = checked_grad(sines, x, W)
    assert "push_shape(_tape, x)" in s2sad.source(g) and "push(_tape, x)" not in s2sad.source(g)
    checked_hessian_vector(lambda x: g(x, W), x, np.array([1.0, -0.5, 0.25]))
    numba_g = s2sad.grad(sines, backend="numba")
    np.testing.assert_allclose(s2sad.jvp(lambda x: numba_g(x, W), (x,), (np.ones(3),))[1],
                               s2sad.jvp(lambda x: g(x, W), (x,), (np.ones(3),))[1], rtol=1e-12)


def test_an_outer_product_added_to_an_accumulator_of_another_shape_broadcasts_as_numpy():
    # numba_backend._add_outer's fallback (a loop: NumPy's array expression took 2.4 s to compile)
    from s2sad.backends.numba import _add_outer
    rng = np.random.default_rng(0)
    for acc_shape, m, k in [((1, 4), 3, 4), ((3, 1), 3, 4), ((1, 1), 3, 4), ((3, 4), 1, 4), ((3, 4), 3, 1),
                            ((3, 4), 1, 1), ((3, 4), 3, 4)]:
        acc, a, b = rng.standard_normal(acc_shape), rng.standard_normal(m), rng.standard_normal(k)
        expected = acc + np.outer(a, b)
        np.testing.assert_array_equal(_add_outer(acc.copy(), a, b), expected)
    with pytest.raises(ValueError, match="broadcast"):
        _add_outer(np.zeros((2, 3)), np.ones(3), np.ones(3))


def rnn_both_sides(W, V, xs):
    """W's adjoint gains g h^T a trip (W @ h), V's gains h g^T (h @ V)."""
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(0.5 * (W @ h) + 0.5 * (h @ V) + xs[t])
    return np.sum(h * h)


@pytest.mark.parametrize("n, trips", [(3, 5), (200, 170)])
def test_stashed_outer_products_fill_and_empty_their_stash(n, trips):
    # n = 200: a stash holds runtime.OUTER_ROWS_BUDGET // 400 = 163 trips, so it is added once
    # when full and once after the loop; both backends, both sides of a product, against
    # central differences and against the sum of the outer products written out
    rng = np.random.default_rng(7)
    W, V = rng.standard_normal((n, n)) * 0.6 / np.sqrt(n), rng.standard_normal((n, n)) * 0.6 / np.sqrt(n)
    xs = rng.standard_normal((trips, n))
    assert (runtime.OUTER_ROWS_BUDGET // (2 * n) < trips) == (n == 200)
    g = s2sad.grad(rnn_both_sides, argnums=(0, 1), backend="numba")
    got = g(W, V, xs)
    assert "later_dot_adjoint_y(V_bar_rows, V_bar, " in s2sad.source(g)
    python = s2sad.grad(rnn_both_sides, argnums=(0, 1), backend="python")(W, V, xs)
    # by hand: the same recurrence's adjoint, with each trip's outer product added at once
    hs = [np.zeros(n)]
    for t in range(trips):
        hs.append(np.tanh(0.5 * (W @ hs[-1]) + 0.5 * (hs[-1] @ V) + xs[t]))
    W_bar, V_bar, h_bar = np.zeros((n, n)), np.zeros((n, n)), 2 * hs[-1]
    for t in range(trips - 1, -1, -1):
        a_bar = h_bar * (1 - hs[t + 1] ** 2) * 0.5
        W_bar += np.outer(a_bar, hs[t])
        V_bar += np.outer(hs[t], a_bar)
        h_bar = W.T @ a_bar + V @ a_bar
    for mine, numba_value, python_value in zip((W_bar, V_bar), got, python):
        np.testing.assert_allclose(numba_value, mine, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(python_value, mine, rtol=1e-10, atol=1e-12)
    if n == 3:
        for k in (0, 1):
            np.testing.assert_allclose(got[k], numerical_grad(rnn_both_sides, (W, V, xs), k), rtol=1e-6)


def iir_whole(x, a):
    y = 0.0
    s = 0.0
    for i in range(len(x)):
        y = a * y + (1.0 - a) * x[i]
        s = s + y * y
    return s


def test_a_gradient_written_whole_by_a_loop_is_not_zeroed_first():
    x = np.random.default_rng(4).uniform(-1.0, 1.0, 50)
    g = checked_grad(iir_whole, x, 0.9)
    assert "x_bar = np.empty_like(x" in s2sad.source(g)
    # from a start the code cannot see, the elements before it may stay unwritten: zeroed first
    g2 = s2sad.grad(iir_from, backend="numba")
    got = g2(x, 0.9, 7)
    assert "x_bar = np.zeros_like(x" in s2sad.source(g2)
    assert np.all(got[:7] == 0.0)
    np.testing.assert_allclose(got, numerical_grad(iir_from, (x, 0.9, 7), 0), rtol=1e-6, atol=1e-8)


def test_llvm_unswitching_budget_is_raised_while_s2sad_compiles_and_restored_after(monkeypatch):
    # Numba's broadcasting loops vectorize only when LLVM unswitches them (numba_backend); the
    # raised budget is process-wide LLVM state, so it must hold for s2sad's compiles alone
    import llvmlite.binding as llvm
    from s2sad.backends import numba as numba_backend
    settings = []
    real = llvm.set_option
    monkeypatch.setattr(llvm, "set_option", lambda name, option: (settings.append(option), real(name, option)))
    monkeypatch.setenv("S2SAD_CACHE", "0")  # compile for real, not from Numba's cache

    def centered(x, y):
        return np.sum(np.exp(2.0 * (x + 1.0) - y[None, :]))

    x, y = np.full((6, 3), 0.1), np.array([0.3, -0.2, 0.5])
    got = s2sad.grad(centered, backend="numba")(x, y)
    np.testing.assert_allclose(got, numerical_grad(centered, (x, y), 0), rtol=1e-7)
    assert settings == [f"-unswitch-threshold={numba_backend.UNSWITCH_THRESHOLD}", "-unswitch-threshold=50"]
    numba.njit(lambda a: a + 1.0)(x)  # the user's own compile leaves LLVM's setting alone

    def flat(v):
        return np.sum(np.exp(2.0 * v))

    v = np.linspace(0.0, 1.0, 5)
    np.testing.assert_allclose(s2sad.grad(flat, backend="numba")(v), 2.0 * np.exp(2.0 * v), rtol=1e-12)
    assert len(settings) == 2   # 1-D loops vectorize without it: no dearer compile for them


def axes_added(x, y, w):
    outer = x[None, :] * y[:, None]                 # (3, 4)
    return np.sum(np.tanh(outer) * w[..., None]) + np.sum(w[None] * w[None, ...])


def test_the_adjoint_of_an_added_axis_is_a_view_and_right():
    x, y, w = np.linspace(-1.0, 1.0, 4), np.array([0.5, -0.3, 0.8]), np.array([0.2, 0.1, -0.4])
    g = s2sad.grad(axes_added, argnums=(0, 1, 2), backend="numba")
    got = g(x, y, w)
    for i in range(3):
        np.testing.assert_allclose(got[i], numerical_grad(axes_added, (x, y, w), i), rtol=1e-7, atol=1e-10)
    source = s2sad.source(g)
    assert "_bar[None" not in source and "_bar[:, None" not in source   # no slice assignment
    assert "[0, :]" in source and "[:, 0]" in source and "[..., 0]" in source


@functools.lru_cache(maxsize=None)
def _compiled_unbroadcast():
    from s2sad.backends import numba as numba_backend  # noqa: F401  (registers the Numba versions of the helpers)
    return numba.njit(lambda g, x: runtime.unbroadcast(g, x))


@pytest.mark.parametrize("g_shape, x_shape", [
    ((1000, 25), (1, 25)), ((1000, 25), (1000, 1)), ((1000, 25), (25,)), ((1000, 25), (1, 1)),
    ((3, 4, 5), (4, 1)), ((3, 4, 5), (3, 1, 5)), ((3, 4, 5), (1, 4, 1)), ((2, 3), ()), ((5,), (1,)),
    ((0, 3), (1, 3)), ((4, 3), (3,)), ((4, 3), (4, 3)), ((5,), (5,)), ((0,), (1,)), ((4, 3), (1,)),
    ((0, 3), (3,)), ((4, 1), (1,)), ((1, 3), (1, 3)), ((4, 1), (4, 1)), ((1, 1), (1, 1)), ((4, 3), (1, 1))])
def test_unbroadcast_under_numba_sums_what_numpy_broadcast(g_shape, x_shape):
    # the compiled unbroadcast adds rows of g's last axis; the reference is its NumPy version
    g = np.random.default_rng(1).standard_normal(g_shape)
    for layout in (g, np.asfortranarray(g)):
        got = _compiled_unbroadcast()(layout, np.zeros(x_shape))
        want = runtime.unbroadcast(layout, np.zeros(x_shape))
        assert np.shape(got) == np.shape(want) == x_shape
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
        # and against the sum written out: g summed over its leading axes and x's length-1 axes
        lead = len(g_shape) - len(x_shape)
        axes = tuple(range(lead)) + tuple(lead + d for d, n in enumerate(x_shape) if n == 1)
        np.testing.assert_allclose(got, np.sum(g, axis=axes).reshape(x_shape), rtol=1e-13, atol=1e-13)
