"""The user-facing transforms on inputs they got wrong before: higher derivatives of vector-valued
functions, jacfwd's aux, functions of one container, check_grads on pytrees and loop counts,
complex arguments, and module globals rebound after the first call."""

import sys

import numpy as np
import pytest

import s2sad
from fd import numerical_grad
from s2sad.errors import S2SADError

THIS = sys.modules[__name__]


# ---- Hessians of vector-valued functions: one per output, not their sum ------------------------
def powers(a):  # R -> R^3: (a, a^2, a^3)
    y = np.zeros(3)
    for i in range(3):
        y[i] = a ** (i + 1)
    return y


def sin_scaled(x):  # R^2 -> R^2
    return np.sin(x) * x[0]


def sin_scaled_jacobian(x):  # its Jacobian in closed form, d g_i / d x_j
    return np.diag(np.cos(x) * x[0]) + np.outer(np.sin(x), [1.0, 0.0])


def jacobian_by_differences(jac, x):
    """d jac(x)[i, j] / d x[k] by central differences of a closed-form Jacobian: shape out + in + in."""
    J = jac(x)
    H = np.zeros(J.shape + x.shape)
    for index in np.ndindex(J.shape):
        H[index] = numerical_grad(lambda v: jac(v)[index], (x,))
    return H


def test_second_derivative_of_a_vector_valued_function_is_one_per_output():
    a = 0.7
    expected = [0.0, 2.0, 6 * a]
    for transform in (s2sad.hessian, lambda f: s2sad.jacfwd(s2sad.jacrev(f)),
                      lambda f: s2sad.jacfwd(s2sad.jacfwd(f)), lambda f: s2sad.jacrev(s2sad.jacfwd(f))):
        np.testing.assert_allclose(transform(powers)(a), expected, rtol=1e-12, atol=1e-12)


def test_hessian_of_a_vector_function_of_a_vector_has_shape_out_in_in():
    x = np.array([0.3, -0.4])
    H = s2sad.hessian(sin_scaled)(x)
    assert H.shape == (2, 2, 2)
    np.testing.assert_allclose(H, jacobian_by_differences(sin_scaled_jacobian, x), rtol=1e-6, atol=1e-8)


def test_hessian_with_several_argnums_of_a_vector_function_gives_every_block():
    def f(a, x):
        return np.sin(x) * a ** 2
    a, x = 0.6, np.array([0.3, -0.4])
    (Haa, Hax), (Hxa, Hxx) = s2sad.hessian(f, argnums=(0, 1))(a, x)
    np.testing.assert_allclose(Haa, 2 * np.sin(x), rtol=1e-10)
    np.testing.assert_allclose(Hax, 2 * a * np.diag(np.cos(x)), rtol=1e-10)
    np.testing.assert_allclose(Hxa, Hax, rtol=1e-10)
    expected_xx = np.zeros((2, 2, 2))
    expected_xx[[0, 1], [0, 1], [0, 1]] = -np.sin(x) * a ** 2
    np.testing.assert_allclose(Hxx, expected_xx, atol=1e-12)


def test_jvp_of_jacrev_gives_the_jacobian_and_its_directional_derivative():
    x, v = np.array([0.3, -0.4]), np.array([0.5, -2.0])
    J, dJ = s2sad.jvp(s2sad.jacrev(sin_scaled), (x,), (v,))
    np.testing.assert_allclose(J, sin_scaled_jacobian(x), rtol=1e-12)
    np.testing.assert_allclose(dJ, jacobian_by_differences(sin_scaled_jacobian, x) @ v, rtol=1e-6, atol=1e-8)


def weighted_jacobian(a):
    """Calls jacrev of a vector-valued function inside differentiated code."""
    J = s2sad.jacrev(powers)(a)
    return np.sum(J * np.array([1.0, -2.0, 0.5]))


def test_jacrev_of_a_vector_function_inside_differentiated_code_is_the_full_jacobian():
    a = 0.7
    assert weighted_jacobian(a) == pytest.approx(1.0 - 4 * a + 1.5 * a ** 2, rel=1e-12)
    expected = numerical_grad(weighted_jacobian, (a,))
    assert s2sad.grad(weighted_jacobian)(a) == pytest.approx(expected, rel=1e-6)
    assert s2sad.jvp(weighted_jacobian, (a,), (1.0,))[1] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_vmap_of_jacrev_of_a_vector_function_gives_a_jacobian_per_sample():
    a = np.array([0.5, 0.7])
    expected = np.stack([np.ones(2), 2 * a, 3 * a ** 2], axis=1)
    for backend in ("python", "numba"):
        got = s2sad.vmap(s2sad.jacrev(powers, backend="numba"), backend=backend)(a)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.slow
def test_hessian_of_a_vector_function_compiles_under_numba():
    x = np.array([0.3, -0.4])
    H = s2sad.hessian(sin_scaled, backend="numba")(x)
    np.testing.assert_allclose(H, jacobian_by_differences(sin_scaled_jacobian, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(s2sad.hessian(powers, backend="numba")(0.7), [0.0, 2.0, 4.2], rtol=1e-12)


def test_grad_of_a_vector_valued_inner_grad_is_refused_not_summed():
    with pytest.raises(S2SADError, match="scalar output"):
        s2sad.grad(s2sad.grad(powers))(0.7)


# ---- jacfwd with has_aux ---------------------------------------------------------------------
def energy_with_aux(x):
    y = np.sin(x)
    return np.sum(y ** 2), {"y": y}


def test_jacfwd_with_has_aux_returns_the_jacobian_and_the_aux_like_jacrev():
    x = np.array([0.3, -0.4, 0.8])
    J, aux = s2sad.jacfwd(energy_with_aux, has_aux=True)(x)
    np.testing.assert_allclose(J, numerical_grad(lambda v: energy_with_aux(v)[0], (x,)), rtol=1e-6)
    np.testing.assert_allclose(aux["y"], np.sin(x), rtol=1e-15)
    J_rev, aux_rev = s2sad.jacrev(energy_with_aux, has_aux=True)(x)
    np.testing.assert_allclose(J, J_rev, rtol=1e-12)
    assert aux.keys() == aux_rev.keys()


# ---- jacrev and vjp of a function of one container --------------------------------------------
def layer_of_dict(p):
    return np.tanh(p["W"] @ p["x"]) * p["c"]


def layer_of_list(p):
    return np.tanh(p[0] @ p[1]) * p[2]


W, X = np.array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]]), np.array([0.3, -0.4, 0.8])


@pytest.mark.parametrize("f, p, keys", [
    (layer_of_dict, {"W": W, "x": X, "c": 0.9}, ["W", "x", "c"]),
    (layer_of_list, [W, X, 0.9], [0, 1, 2]),
    (layer_of_list, (W, X, 0.9), [0, 1, 2]),
], ids=["dict", "list", "tuple"])
def test_jacrev_and_vjp_of_a_function_of_one_container(f, p, keys):
    def with_leaf(k, v):
        q = dict(p) if isinstance(p, dict) else list(p)
        q[k] = v
        return q if isinstance(p, (dict, list)) else tuple(q)

    J_rev, J_fwd = s2sad.jacrev(f)(p), s2sad.jacfwd(f)(p)
    out, vjp_fn = s2sad.vjp(f, p)
    np.testing.assert_allclose(out, f(p), rtol=1e-15)
    cotangent = np.array([1.5, -0.5])
    (pulled,) = vjp_fn(cotangent)
    for k in keys:
        reference = np.stack([numerical_grad(lambda v: f(with_leaf(k, v))[i], (p[k],)) for i in range(2)])
        np.testing.assert_allclose(J_rev[k], reference, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(J_fwd[k], J_rev[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(pulled[k], np.tensordot(cotangent, reference, axes=1), rtol=1e-6, atol=1e-9)


# ---- check_grads on pytrees and with loop counts ----------------------------------------------
def dict_loss(params, x):
    return np.sum(np.tanh(params["W"] @ x + params["b"]) ** 2)


def sum_of_squares_n_times(x, n):
    s = 0.0
    for i in range(n):
        s = s + x[i % 3] ** 2
    return s


def test_check_grads_differentiates_the_leaves_of_a_dict_argument():
    params = {"W": np.array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]]), "b": np.array([0.1, -0.2])}
    s2sad.check_grads(dict_loss, (params, X), order=1)


def test_check_grads_passes_an_int_argument_through_undifferentiated():
    s2sad.check_grads(sum_of_squares_n_times, (X, 4), order=2)


@s2sad.custom_vjp
def scaled_wrongly(x):
    return x * 1.0


def scaled_wrongly_fwd(x):
    return x * 1.0, None


def scaled_wrongly_bwd(residuals, g):
    return (2.0 * g,)  # wrong: the derivative is 1


scaled_wrongly.defvjp(scaled_wrongly_fwd, scaled_wrongly_bwd)


def repeated_wrong_rule(params, n):
    s = 0.0
    for i in range(n):
        s = s + np.sum(scaled_wrongly(params["x"]))
    return s


def test_check_grads_with_a_dict_and_an_int_still_catches_a_wrong_derivative():
    with pytest.raises(AssertionError, match="finite differences"):
        s2sad.check_grads(repeated_wrong_rule, ({"x": X}, 3), order=1, modes=("rev",))


def test_check_grads_without_a_float_argument_says_so():
    with pytest.raises(S2SADError, match="nothing to differentiate"):
        s2sad.check_grads(np.tanh, (1,), order=1)


# ---- complex arguments ---------------------------------------------------------------------------
def mixed(x, a):
    return np.sum(np.sin(x) * a) + a ** 3


def test_a_complex_scalar_argument_is_refused_like_a_complex_array():
    for args, argnum in [((X, 0.7 + 0j), 1), ((X, np.complex128(0.7)), 1), ((X.astype(complex), 0.7), 0)]:
        with pytest.raises(S2SADError, match="real-valued") as raised:
            s2sad.grad(mixed, argnums=argnum)(*args)
        assert isinstance(raised.value, TypeError)  # as before, for code that caught TypeError
    assert s2sad.grad(mixed, argnums=1)(X, 0.7) == pytest.approx(numerical_grad(mixed, (X, 0.7), 1), rel=1e-7)


# ---- module globals rebound after the first call -------------------------------------------------
SCALE = 1.5
WEIGHTS = np.array([1.0, 2.0])


def weighted_helper(x):
    return np.sum(WEIGHTS * x)


def uses_globals(x):
    return np.sum(x ** 2) * SCALE + weighted_helper(x)


def expected_gradient(x):
    return 2 * THIS.SCALE * x + THIS.WEIGHTS


@pytest.mark.parametrize("backend", ["python", pytest.param("numba", marks=pytest.mark.slow)])
def test_a_rebound_global_float_or_array_is_seen_by_existing_and_new_derivatives(monkeypatch, backend):
    x = np.array([0.3, -0.4])
    g = s2sad.grad(uses_globals, backend=backend)
    np.testing.assert_allclose(g(x), expected_gradient(x), rtol=1e-12)
    monkeypatch.setattr(THIS, "SCALE", 4.0)
    np.testing.assert_allclose(g(x), expected_gradient(x), rtol=1e-12)
    np.testing.assert_allclose(s2sad.grad(uses_globals, backend=backend)(x), expected_gradient(x), rtol=1e-12)
    monkeypatch.setattr(THIS, "WEIGHTS", np.array([3.0, -5.0]))  # read by a helper it calls
    np.testing.assert_allclose(g(x), expected_gradient(x), rtol=1e-12)
    np.testing.assert_allclose(g(x), numerical_grad(uses_globals, (x,)), rtol=1e-6)


def test_a_rebound_global_is_seen_by_a_hessian_and_a_nested_grad(monkeypatch):
    x = np.array([0.3, -0.4])
    H = s2sad.hessian(uses_globals)
    nested = s2sad.grad(lambda v: s2sad.grad(uses_globals)(v)[0] * v[0])
    np.testing.assert_allclose(H(x), 2 * 1.5 * np.eye(2), rtol=1e-12)
    nested(x)
    monkeypatch.setattr(THIS, "SCALE", 4.0)
    np.testing.assert_allclose(H(x), 2 * 4.0 * np.eye(2), rtol=1e-12)
    np.testing.assert_allclose(nested(x), [4 * 4.0 * x[0] + 1.0, 0.0], rtol=1e-12)


def test_a_redefined_helper_is_seen_by_an_existing_derivative(monkeypatch):
    x = np.array([0.3, -0.4])
    g = s2sad.grad(uses_globals)
    g(x)

    def weighted_helper(x):  # as a notebook cell run again with a new body would define it
        return np.sum(WEIGHTS * x ** 2)
    monkeypatch.setattr(THIS, "weighted_helper", weighted_helper)
    np.testing.assert_allclose(g(x), 2 * SCALE * x + 2 * WEIGHTS * x, rtol=1e-12)
