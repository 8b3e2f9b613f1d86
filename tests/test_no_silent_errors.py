"""No silently wrong derivative: where s2sad has no derivative it says so, with the user's line.

Each case here once returned a number (a zero gradient, a dropped check, a derivative of
something else) where it had to return the true derivative or refuse.
"""

import inspect
import warnings

import numpy as np
import pytest

import s2sad
from fd import numerical_grad


# ---- np.r_, np.c_ and np.linspace are differentiated, not given a zero gradient ---------
def joined_by_r(x, y):
    return np.sum(np.r_[x, y, 2.0, x] ** 2 * np.arange(8.0))


def joined_by_c(x, y):
    return np.sum(np.c_[x, y, x * y] * np.arange(9.0).reshape(3, 3))


def spaced(x, y):
    return np.sum(np.sin(np.linspace(x, y, 5)) * np.arange(1.0, 6.0))


def spaced_open(x, y):
    return np.sum(np.linspace(x, y, num=4, endpoint=False) ** 2)


def spaced_once(x, y):
    return np.sum(np.linspace(x, y, 1)) * y


JOINS = [(joined_by_r, (np.array([0.3, -1.2, 0.8]), 0.7)),
         (joined_by_c, (np.array([0.3, -1.2, 0.8]), np.array([1.1, 0.4, -0.6]))),
         (spaced, (0.3, 1.9)), (spaced_open, (0.3, 1.9)), (spaced_once, (0.3, 1.9))]


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("f, args", JOINS, ids=lambda v: getattr(v, "__name__", ""))
def test_index_tricks_and_linspace_in_both_modes_match_central_differences(f, args, backend):
    reference = [numerical_grad(f, args, k) for k in (0, 1)]
    reverse = s2sad.grad(f, argnums=(0, 1), backend=backend)(*args)
    forward = s2sad.jacfwd(f, argnums=(0, 1), backend=backend)(*args)
    for k in (0, 1):
        np.testing.assert_allclose(reverse[k], reference[k], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(forward[k], reference[k], rtol=1e-6, atol=1e-8)


def test_the_issue_repros_give_the_true_gradient():
    def r(x):
        return np.sum(np.r_[x, x] * np.arange(6.0))
    np.testing.assert_allclose(s2sad.grad(r)(np.ones(3)), [3.0, 5.0, 7.0])

    def endpoint(x):
        return np.sum(np.linspace(x, 3.4, 5))
    np.testing.assert_allclose(s2sad.grad(endpoint)(0.5), 2.5)


def test_linspace_gives_numpys_values():
    got = s2sad.value_and_grad(lambda a, b: np.linspace(a, b, 7), argnums=1)
    del got  # a vector output: its value is checked through vjp
    def values(a, b):
        return np.linspace(a, b, 7)
    out, _ = s2sad.vjp(values, 0.1, 2.3)
    np.testing.assert_array_equal(out, np.linspace(0.1, 2.3, 7))


# ---- a differentiated value passed where no derivative flows is refused -------------------
def arange_from(x):
    return np.sum(np.arange(x, x + 3.0))  # MARK


def range_of_r(x):
    return np.sum(np.r_[0.0:x:0.5])  # MARK


def line_of(f):
    lines, first = inspect.getsourcelines(f)
    return first + next(i for i, line in enumerate(lines) if "# MARK" in line)


@pytest.mark.parametrize("f", [arange_from, range_of_r], ids=lambda f: f.__name__)
def test_a_value_with_no_derivative_that_reaches_the_result_is_refused_with_its_line(f):
    for transform in (s2sad.grad, s2sad.jacfwd):
        with pytest.raises(s2sad.NonDifferentiableError) as info:
            transform(f)(1.5)
        assert f"{__file__}:{line_of(f)}:" in str(info.value)
        assert "hint:" in str(info.value)


def test_values_read_for_their_shape_pass_through():
    def f(x):
        return np.sum(np.zeros_like(x) + np.full_like(x, 2.0) * x + np.r_[0:3] * x) + len(x)
    np.testing.assert_allclose(s2sad.grad(f)(np.ones(3)), [2.0, 3.0, 4.0])


# ---- complex numbers are refused by every transform --------------------------------------
def exp_of(x):
    return np.exp(x)


def complex_inside(x):
    return np.sum(x * (1 + 2j))


@pytest.mark.parametrize("call", [
    lambda: s2sad.grad(exp_of)(0.4 - 0.1j),
    lambda: s2sad.jacrev(exp_of)(0.4 - 0.1j),
    lambda: s2sad.jacfwd(exp_of)(0.4 - 0.1j),
    lambda: s2sad.vjp(exp_of, 0.4 - 0.1j),
    lambda: s2sad.vjp(np.exp, 0.4 - 0.1j),
    lambda: s2sad.vjp(exp_of, 0.4)[1](1.0 + 1j),
    lambda: s2sad.jvp(exp_of, (0.4 - 0.1j,), (1.0,)),
    lambda: s2sad.jvp(exp_of, (0.4,), (1j,)),
    lambda: s2sad.grad(exp_of)(np.array([0.4 + 0j])),
], ids=["grad", "jacrev", "jacfwd", "vjp", "vjp-ufunc", "vjp-cotangent", "jvp", "jvp-tangent", "grad-array"])
def test_complex_inputs_are_refused_alike(call):
    with pytest.raises(s2sad.NonDifferentiableError, match="is complex"):
        call()


def test_a_complex_number_inside_the_function_is_refused_with_its_line():
    for transform in (s2sad.grad, s2sad.jacfwd):
        with pytest.raises(s2sad.S2SADError, match="complex number") as info:
            transform(complex_inside)(np.ones(2))
        assert f"{__file__}:" in str(info.value)


# ---- assertions, returns and auxiliary data ------------------------------------------------
def asserts(x, y):
    assert np.all(x > 0), "x must be positive"
    s = 0.0
    for i in range(3):
        assert s < 100.0
        s = s + np.sum(np.log(x) * y)
    return s


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_assertions_are_checked_by_derivative_code(backend):
    x, y = np.array([1.0, 2.0]), 0.5
    np.testing.assert_allclose(s2sad.grad(asserts, backend=backend)(x, y), numerical_grad(asserts, (x, y), 0))
    np.testing.assert_allclose(s2sad.jacfwd(asserts, argnums=1, backend=backend)(x, y),
                               numerical_grad(asserts, (x, y), 1))
    with pytest.raises(AssertionError, match="x must be positive"):
        s2sad.grad(asserts, backend=backend)(-x, y)
    with pytest.raises(AssertionError, match="s < 100.0"):
        s2sad.jacfwd(asserts, argnums=1, backend=backend)(x * 20.0, 40.0)


def no_return(x):
    y = x * 2.0  # noqa: F841


def none_on_a_path(x):
    if x > 0:
        return x * 2.0


def returns_none(x):
    if x > 0:
        return x
    return None


def returns_a_string(x):
    return "abc"


@pytest.mark.parametrize("f", [no_return, none_on_a_path, returns_none, returns_a_string], ids=lambda f: f.__name__)
def test_a_function_that_returns_no_number_is_refused(f):
    for transform in (s2sad.grad, s2sad.value_and_grad, s2sad.jacfwd):
        with pytest.raises(s2sad.UnsupportedSyntaxError, match="return") as info:
            transform(f)(-1.0)
        assert f"{__file__}:" in str(info.value)


def every_path_returns(x):
    if x > 0:
        return x * 2.0
    else:
        return x * 3.0


def test_a_function_returning_on_every_path_is_accepted():
    assert s2sad.grad(every_path_returns)(-1.0) == 3.0
    assert s2sad.grad(every_path_returns)(1.0) == 2.0


def three_outputs(x):
    return np.sum(x * 2.0), 1.0, 2.0


@pytest.mark.parametrize("call", [
    lambda: s2sad.grad(three_outputs, has_aux=True)(np.ones(2)),
    lambda: s2sad.value_and_grad(three_outputs, has_aux=True)(np.ones(2)),
    lambda: s2sad.jacrev(three_outputs, has_aux=True)(np.ones(2)),
    lambda: s2sad.jacfwd(three_outputs, has_aux=True)(np.ones(2)),
    lambda: s2sad.vjp(three_outputs, np.ones(2), has_aux=True),
], ids=["grad", "value_and_grad", "jacrev", "jacfwd", "vjp"])
def test_has_aux_requires_a_pair(call):
    with pytest.raises(s2sad.S2SADError, match="must return a pair"):
        call()


# ---- integers: Python's, not int64's -------------------------------------------------------
def big_power(x, n):
    k = n ** 40
    return x * k


def products_as_indices(x, v, n):
    s = 0.0
    for i in range(n):
        for j in range(n):
            s = s + x * v[(i * n + j) % n]
    return s


def test_an_integer_product_that_numba_would_wrap_runs_as_python(monkeypatch):
    exact = float(3 ** 40)  # 1.2e19: past int64, where Numba's product wraps around
    monkeypatch.setenv("S2SAD_BACKEND", "numba")   # the default backend: a warning, and Python's number
    with pytest.warns(RuntimeWarning, match="integer variables"):
        assert s2sad.grad(big_power)(2.0, 3) == exact
    with pytest.raises(s2sad.S2SADError, match="integer variables"):
        s2sad.grad(big_power, backend="numba")(2.0, 3)


def test_integer_products_used_as_indices_compile():
    v = np.arange(1.0, 4.0)
    reference = numerical_grad(products_as_indices, (2.0, v, 3), 0)
    np.testing.assert_allclose(s2sad.grad(products_as_indices, backend="numba")(2.0, v, 3), reference, rtol=1e-8)


# ---- writes NumPy would show through another name are refused -----------------------------
def bump(a):
    a += 1.0
    return 0.0


def helper_changes_its_argument(x):
    y = x * 1.0
    s = bump(y)
    return np.sum(y * y) + s


def adds_into_the_argument(x):
    x += 1.0
    return np.sum(x * x)


def ident(t):
    return t


def writes_into_a_helpers_result(x):
    a = np.sin(x)
    b = ident(a)
    b[0] = 7.0
    return np.sum(a * x)


def writes_into_a_flip(x):
    a = np.sin(x)
    b = np.flip(a)
    b[0] = 5.0
    return np.sum(a * a)


def writes_into_a_contiguous_copy(x):
    a = np.sin(x)
    b = np.ascontiguousarray(a)
    b[0] = 5.0
    return np.sum(a * a)


SHARED = np.ones(3)


def writes_into_a_global(x):
    SHARED[0] = x[0]
    return np.sum(SHARED * x)


@pytest.mark.parametrize("f", [helper_changes_its_argument, adds_into_the_argument, writes_into_a_helpers_result,
                               writes_into_a_flip, writes_into_a_contiguous_copy, writes_into_a_global],
                         ids=lambda f: f.__name__)
def test_in_place_writes_seen_through_another_name_are_refused(f):
    x = np.array([0.3, -0.5, 0.8])
    for transform in (s2sad.grad, s2sad.jacfwd, s2sad.jacrev):
        with pytest.raises(s2sad.UnsupportedSyntaxError, match="write") as info:
            transform(f)(x.copy())
        assert f"{__file__}:" in str(info.value)


def writes_into_a_helpers_copy(x):
    a = np.sin(x)
    b = np.copy(ident(a))
    b[0] = 7.0
    return np.sum(a * x) + np.sum(b)


def test_a_copy_of_a_helpers_result_may_be_written():
    x = np.array([0.3, -0.5, 0.8])
    np.testing.assert_allclose(s2sad.grad(writes_into_a_helpers_copy)(x),
                               numerical_grad(writes_into_a_helpers_copy, (x,), 0), rtol=1e-7)


def largest_square(x):
    return max(x * x)


def test_builtin_max_of_a_vector_is_its_largest_element():
    x = np.array([0.5, -2.0, 1.0])
    np.testing.assert_allclose(s2sad.grad(largest_square)(x), [0.0, -4.0, 0.0])
    np.testing.assert_allclose(s2sad.jacfwd(largest_square)(x), [0.0, -4.0, 0.0])


def differences(x):
    return np.diff(x)


def test_jacobian_of_an_empty_output_is_empty():
    for transform in (s2sad.jacrev, s2sad.jacfwd):
        assert np.shape(transform(differences)(np.array([0.5]))) == (0, 1)


def test_a_cotangent_of_another_shape_is_refused():
    def outer(x):
        return np.outer(x, x[:3] * 2.0)
    out, vjp_fn = s2sad.vjp(outer, np.ones(2 * 3)[:2] * 0.5 + np.arange(2.0))
    del out
    for wrong in (np.ones(3), np.ones((1, 3)), 1.0):
        with pytest.raises(s2sad.S2SADError, match="cotangent"):
            vjp_fn(wrong)


# ---- a derivative that divides by zero is inf or NaN, as NumPy divides, on both backends ----
def log_of(x):
    return np.log(x)


def std_of_one(x):
    return np.std(x, ddof=1)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_derivative_dividing_by_zero_follows_numpy(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NumPy's own warnings, as for np.log(0.0)
        assert s2sad.grad(log_of, backend=backend)(0.0) == np.inf      # 1 / x at 0, NumPy's value
        assert s2sad.jvp(log_of, (0.0,), (1.0,), backend=backend)[1] == np.inf
        assert np.isnan(s2sad.grad(std_of_one, backend=backend)(np.array([2.0]))).all()  # np.std is NaN too


# ---- a NumPy or SciPy function itself, as autograd and JAX differentiate jnp.std -------------
@pytest.mark.parametrize("backend", ["python", "numba"])
def test_library_functions_differentiated_as_their_rules(backend):
    import scipy.special
    x = np.array([1.0, 2.0, 4.0, -0.5])
    for fn in (np.std, np.var, np.sum, np.prod, np.linalg.norm, scipy.special.logsumexp):
        got = s2sad.grad(fn, backend=backend)(x)
        np.testing.assert_allclose(got, numerical_grad(fn, (x,), 0), rtol=1e-6, atol=1e-9, err_msg=fn.__name__)
    np.testing.assert_allclose(s2sad.grad(scipy.special.erf, backend=backend)(0.3),
                               2 / np.sqrt(np.pi) * np.exp(-0.09), rtol=1e-12)
    np.testing.assert_allclose(s2sad.jacrev(np.cumsum, backend=backend)(x), np.tril(np.ones((4, 4))))


def test_library_function_without_a_rule_is_refused():
    with pytest.raises(s2sad.NonDifferentiableError, match="no derivative rule for `fft`"):
        s2sad.jacrev(np.fft.fft, backend="python")(np.ones(3))


# ---- internal errors on valid input, found trying the README's claims --------------------------
def solve_through_literal_matrix(x):
    M = np.array([[2.0, 1.0], [1.0, 3.0]]) * x      # a matrix built from nested lists
    return np.sum(np.linalg.solve(M, np.array([1.0, 2.0])))


def nested_containers_out(x):
    return np.sin(x), [2 * x, {"q": x ** 2}]


def tuples_in_tuples_out(x):
    return (x, x * x), x


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_solve_with_a_vector_and_nested_outputs(backend):
    want = numerical_grad(solve_through_literal_matrix, (0.7,), 0)
    assert np.isclose(s2sad.vjp(solve_through_literal_matrix, 0.7, backend=backend)[1](1.0)[0], want, rtol=1e-7)
    assert np.isclose(s2sad.jacrev(solve_through_literal_matrix, backend=backend)(0.7), want, rtol=1e-7)
    out, vjp_fn = s2sad.vjp(nested_containers_out, 0.7, backend=backend)
    (g,) = vjp_fn((1.0, [1.0, {"q": 1.0}]))
    assert np.isclose(g, np.cos(0.7) + 2 + 1.4, rtol=1e-12)
    out, vjp_fn = s2sad.vjp(tuples_in_tuples_out, 0.7, backend=backend)
    assert np.isclose(vjp_fn(((1.0, 2.0), 3.0))[0], 1 + 2 * 1.4 + 3, rtol=1e-12)


def indexes_its_argument(x):
    return x[::-1][0] * 2.0


def test_an_index_into_a_number_is_refused_with_its_line():
    with pytest.raises(s2sad.UnsupportedSyntaxError,
                       match=r"test_no_silent_errors.py:\d+.*an index into `x`, a number"):
        s2sad.grad(indexes_its_argument, backend="python")(0.5)


# ---- an axis given through a name ------------------------------------------------------------
def var_along_a_named_axis(X, axis=1):
    return np.sum(np.var(X, axis=axis) * np.arange(1.0, 4.0))


def var_along_a_name_holding_none(X, axis=None):
    return np.sum(np.var(X, axis=axis))


def test_an_axis_through_a_name_is_differentiated_or_refused_with_its_line():
    X = np.arange(12.0).reshape(3, 4) ** 1.5 / 10
    got = s2sad.grad(var_along_a_named_axis, backend="python")(X)
    np.testing.assert_allclose(got, numerical_grad(var_along_a_named_axis, (X,), 0), rtol=1e-6)
    with pytest.raises(s2sad.NonDifferentiableError, match=r"test_no_silent_errors.py:\d+.*axis is None"):
        s2sad.grad(var_along_a_name_holding_none, backend="python")(X)   # was an internal TypeError


def star_args(*args):
    return args[0] * args[1] ** 2


def test_star_args_are_refused_whatever_the_argnums():
    for argnums in (0, 1):   # argnums=1 was "the function takes 1 arguments"
        with pytest.raises(s2sad.UnsupportedSyntaxError, match=r"\*args"):
            s2sad.grad(star_args, argnums=argnums, backend="python")(2.0, 3.0)
    with pytest.raises(TypeError, match="by position"):   # a keyword was dropped without a word
        s2sad.grad(np.tanh, backend="python")(x=0.5)
