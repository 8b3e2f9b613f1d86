"""Nested AD: `grad` called inside the function being differentiated (forward over reverse)."""

import numpy as np
import pytest

import s2sad
from fd import numerical_grad


def inner(x, y):
    return np.sum(np.sin(x) * y ** 2) + x[0] * x[1] * y


inner_grad = s2sad.grad(inner)


def squared_gradient_norm(x, y):
    g = inner_grad(x, y)
    return np.sum(g * g) + y


def inline_grad_in_a_loop(x, y):
    total = 0.0
    for k in range(3):
        g = s2sad.grad(inner, argnums=1)(x * (k + 1.0), y)
        total = total + g * g * x[0]
    return total


X, Y = np.array([0.3, 0.8]), 1.7
CASES = [squared_gradient_norm, inline_grad_in_a_loop]


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("argnum", [0, 1])
def test_reverse_over_a_nested_grad_matches_finite_differences(f, argnum):
    g = s2sad.grad(f, argnums=argnum)(X, Y)
    np.testing.assert_allclose(g, numerical_grad(f, (X, Y), argnum), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_forward_over_a_nested_grad_agrees_with_reverse(f):
    rev = s2sad.grad(f, argnums=(0, 1))(X, Y)
    _, t = s2sad.jvp(f, (X, Y), (np.array([1.0, 0.0]), 0.0))
    assert t == pytest.approx(rev[0][0], rel=1e-10)
    _, t = s2sad.jvp(f, (X, Y), (np.zeros(2), 1.0))
    assert t == pytest.approx(rev[1], rel=1e-10)


def saddle_objective(p1, p2):
    return np.sum(p1 * p1) - np.sum(p2 * p2) + np.sum(p1 * p2)


def best_response_value(p1):
    """The inner player's gradient step: an objective that itself calls grad (GradBench's saddle)."""
    p2 = np.array([0.5, -0.5])
    for step in range(3):
        p2 = p2 + 0.1 * s2sad.grad(saddle_objective, argnums=1)(p1, p2)
    return saddle_objective(p1, p2)


def test_gradient_through_an_inner_gradient_descent_loop():
    p1 = np.array([0.2, 0.7])
    g = s2sad.grad(best_response_value)(p1)
    np.testing.assert_allclose(g, numerical_grad(best_response_value, (p1,), 0), rtol=1e-6, atol=1e-8)


def surface(x, y):
    return np.sin(x) * y ** 2 + x * y


def directional_derivative_times_value(x, y):
    out, tangent = s2sad.jvp(surface, (x, y), (1.0, 0.5))  # jvp inside differentiated code
    return tangent * out


def test_grad_of_jvp_matches_finite_differences_and_forward_mode():
    args = (0.3, 1.2)
    gx, gy = s2sad.grad(directional_derivative_times_value, argnums=(0, 1))(*args)
    assert gx == pytest.approx(numerical_grad(directional_derivative_times_value, args, 0), rel=1e-6)
    assert gy == pytest.approx(numerical_grad(directional_derivative_times_value, args, 1), rel=1e-6)
    _, t = s2sad.jvp(directional_derivative_times_value, args, (1.0, 0.0))
    assert t == pytest.approx(gx, rel=1e-10)


def bilinear(a, b):
    return a[0] * b[0] + a[1] * b[1] ** 2


bilinear_jacfwd = s2sad.jacfwd(bilinear, argnums=1)  # the gradient of a scalar function, by forward mode


def inner_jacfwd_in_a_loop(a, b):
    x = b
    for k in range(2):
        x = x - 0.1 * bilinear_jacfwd(a, x)
    return x[0] + x[1]


def test_reverse_and_forward_over_a_nested_jacfwd_of_a_scalar_function():
    a, b = np.array([0.5, 1.5]), np.array([1.0, 2.0])
    for argnum in (0, 1):
        reference = numerical_grad(inner_jacfwd_in_a_loop, (a, b), argnum)
        np.testing.assert_allclose(s2sad.grad(inner_jacfwd_in_a_loop, argnums=argnum)(a, b), reference, rtol=1e-6)
        np.testing.assert_allclose(s2sad.jacfwd(inner_jacfwd_in_a_loop, argnums=argnum)(a, b), reference,
                                   rtol=1e-6)


def with_defaults(p, q=0.5):
    return p * p * q


def nested_grads_with_default_and_keyword_arguments(x, y):
    return s2sad.grad(with_defaults)(np.tanh(x)) * y + s2sad.grad(with_defaults, argnums=1)(x, q=y)


def test_nested_grad_binds_defaults_and_keywords():
    args = (0.3, 0.7)
    g = s2sad.grad(nested_grads_with_default_and_keyword_arguments, argnums=(0, 1))(*args)
    for i in range(2):
        assert g[i] == pytest.approx(numerical_grad(nested_grads_with_default_and_keyword_arguments, args, i),
                                     rel=1e-6)


def _make_helper(scale):
    def helper(p):  # every helper made here has the same name
        return np.sin(scale * p) * p
    return helper


helper_a, helper_b = _make_helper(1.0), _make_helper(2.0)


def inner_sum(u):
    return np.sum(np.sin(u) * u)


def several_nested_grads(x, v):
    # two different functions named `helper`, one transform at two call sites, and one
    # nested grad taken at a scalar and at an array: one generated module holds them all
    s = s2sad.grad(helper_a)(np.tanh(x)) + s2sad.grad(helper_b)(np.tanh(x * v[0]))
    s = s + s2sad.grad(helper_a)(np.tanh(v[1])) * helper_b(x)
    g = s2sad.grad(inner_sum)(v * x)
    return s * np.sum(g * v) + s2sad.grad(inner_sum)(v[:2]) @ v[1:]


def test_hessian_through_several_nested_grads_of_like_named_functions():
    # B8: generated functions of one name overwrote each other in the module of a Hessian
    x, v = 0.3, np.array([0.5, -1.2, 0.8])
    grad_v = s2sad.grad(several_nested_grads, argnums=1)
    np.testing.assert_allclose(grad_v(x, v), numerical_grad(several_nested_grads, (x, v), 1), rtol=1e-6)
    H = s2sad.hessian(several_nested_grads, argnums=1)(x, v)
    np.testing.assert_allclose(H, H.T, atol=1e-10)
    h = 1e-5
    columns = [(grad_v(x, v + h * e) - grad_v(x, v - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(H, np.array(columns).T, rtol=1e-5, atol=1e-7)
    d2 = s2sad.grad(s2sad.grad(several_nested_grads))(x, v)
    assert d2 == pytest.approx(numerical_grad(s2sad.grad(several_nested_grads), (x, v), 0), rel=1e-5)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_nested_grad_compiles_under_numba(f):
    # the forward sweep calls the generated function computing grad(f)(x), not the Python object:
    # backend="numba" (strict: an error, not a fallback, if Numba cannot compile) gives the same numbers
    want = s2sad.grad(f, argnums=(0, 1), backend="python")(X, Y)
    got = s2sad.grad(f, argnums=(0, 1), backend="numba")(X, Y)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1] == pytest.approx(want[1], rel=1e-12)
    p1 = np.array([0.3, -0.2])
    np.testing.assert_allclose(s2sad.grad(best_response_value, backend="numba")(p1),
                               numerical_grad(best_response_value, (p1,), 0), rtol=1e-6)


def inner_scalar(p):
    return np.sin(p) * np.tanh(p)


def nested_grad_of_a_constant_argument(x, y):
    c = s2sad.grad(inner_scalar)(np.tanh(y))  # no tangent flows here under jacfwd in x
    return np.sin(x) * c + s2sad.grad(inner_scalar)(x * y)


def test_forward_mode_over_a_nested_grad_compiles_under_numba():
    want = numerical_grad(nested_grad_of_a_constant_argument, (0.4, -0.7), 0)
    assert s2sad.jacfwd(nested_grad_of_a_constant_argument, backend="numba")(0.4, -0.7) == pytest.approx(want, rel=1e-6)
    assert s2sad.grad(nested_grad_of_a_constant_argument, backend="numba")(0.4, -0.7) == pytest.approx(want, rel=1e-6)


def slope_of_tanh_times(a):
    return s2sad.grad(np.tanh)(a) * a + s2sad.grad(np.arctan2)(a, 2.0)


def test_grad_of_a_numpy_function_inside_differentiated_code():
    # the nested call was bound to np.tanh's whole signature (out=, where=, ...): eight arguments
    # for a derivative that takes one, an error naming a line of generated code
    a = 0.4
    t = np.tanh(a)
    want = (1 - t * t) - 2 * a * t * (1 - t * t) - 4.0 * a / (a * a + 4.0) ** 2
    for backend in ("python", "numba"):
        assert s2sad.grad(slope_of_tanh_times, backend=backend)(a) == pytest.approx(want, rel=1e-12)
    assert s2sad.jacfwd(slope_of_tanh_times)(a) == pytest.approx(want, rel=1e-12)
