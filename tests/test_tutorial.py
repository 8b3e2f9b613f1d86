"""The numbers of JAX's autodiff tutorial, reproduced on plain NumPy."""

import numpy as np
import pytest

import s2sad
from fd import assert_grad_matches


def test_grad_of_tanh_matches_the_closed_form():
    assert s2sad.grad(np.tanh)(2.0) == pytest.approx(1 - np.tanh(2.0) ** 2, rel=1e-12)
    assert s2sad.grad(np.tanh)(2.0) == pytest.approx(0.070650816, abs=1e-8)


def cubic(x):
    return x ** 3 + 2 * x ** 2 - 3 * x + 1


def test_grad_of_a_cubic_is_its_derivative():
    assert s2sad.grad(cubic)(1.0) == pytest.approx(4.0)
    for x in (-2.0, 0.5, 3.0):
        assert s2sad.grad(cubic)(x) == pytest.approx(3 * x ** 2 + 4 * x - 3)


def product(x, y):
    return x * y


def test_argnums_selects_the_argument():
    assert s2sad.grad(product, argnums=1)(3.0, 4.0) == pytest.approx(3.0)
    assert s2sad.grad(product, argnums=(0, 1))(3.0, 4.0) == pytest.approx((4.0, 3.0))


def test_stop_gradient_blocks_the_derivative():
    def f(x):
        return s2sad.stop_gradient(x) * x
    assert s2sad.grad(f)(3.0) == pytest.approx(3.0)
    assert s2sad.grad(lambda x: s2sad.stop_gradient(x ** 2))(3.0) == 0.0


def rms(w, b, xs, ys):
    return np.sqrt(np.mean((w * xs + b - ys) ** 2))


def test_linear_regression_rms_gradient():
    xs, ys = np.array([42.0]), np.array([500.0])
    gw, gb = s2sad.grad(rms, argnums=(0, 1))(13.0, 0.0, xs, ys)
    assert (gw, gb) == pytest.approx((42.0, 1.0))
    assert_grad_matches(gw, rms, (13.0, 0.0, xs, ys), 0)


def test_value_and_grad_returns_both():
    value, g = s2sad.value_and_grad(cubic)(2.0)
    assert value == pytest.approx(cubic(2.0))
    assert g == pytest.approx(3 * 4 + 8 - 3)


def test_non_scalar_output_is_a_type_error_naming_the_shape():
    with pytest.raises(TypeError, match=r"\(3,\)"):
        s2sad.grad(lambda x: x * 2.0)(np.ones(3))


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="integer"):
        s2sad.grad(cubic)(1)


def test_has_aux_returns_the_auxiliary_value():
    def f(x):
        return x ** 2, x + 1.0
    g, aux = s2sad.grad(f, has_aux=True)(3.0)
    assert g == pytest.approx(6.0)
    assert aux == pytest.approx(4.0)


def test_decorator_forms():
    @s2sad.grad
    def f(x):
        return np.sin(x)

    @s2sad.grad(argnums=1)
    def h(x, y):
        return x * np.exp(y)

    assert f(0.3) == pytest.approx(np.cos(0.3))
    assert h(2.0, 0.5) == pytest.approx(2.0 * np.exp(0.5))


def logistic_loss(params, X, y):
    p = 1.0 / (1.0 + np.exp(-(X @ params["W"] + params["b"])))
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_dict_parameters_give_a_dict_gradient():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), (rng.uniform(size=6) > 0.5) * 1.0
    params = {"W": rng.normal(size=3), "b": 0.1}
    g = s2sad.grad(logistic_loss)(params, X, y)
    assert set(g) == {"W", "b"}
    flat = lambda W, b: logistic_loss({"W": W, "b": b}, X, y)  # noqa: E731
    assert_grad_matches(g["W"], flat, (params["W"], params["b"]), 0)
    assert_grad_matches(g["b"], flat, (params["W"], params["b"]), 1)


def test_tree_map_updates_every_leaf():
    params = {"w": np.array([1.0, 2.0]), "b": [3.0, (4.0,)]}
    doubled = s2sad.tree_map(lambda v: v * 2, params)
    assert doubled["b"][1][0] == 8.0 and np.all(doubled["w"] == [2.0, 4.0])
    leaves, treedef = s2sad.tree_flatten(params)
    assert s2sad.tree_unflatten(treedef, leaves)["b"][0] == 3.0
