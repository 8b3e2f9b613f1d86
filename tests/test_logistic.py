"""The logistic sigmoid written out, `1 / (1 + np.exp(-x))`, is differentiated as one function.

normalize recognizes the expression and generated code calls `logistic`, whose derivative is
ans * (1 - ans). References: central differences and the closed form s (1 - s).
"""

import math

import numpy as np
import pytest

import s2sad
from fd import numerical_grad

W = np.array([0.3, -2.0, 1.5, -0.7])
X = np.array([1.0, 2.0, -1.0, 0.5])


def neuron(w, x):
    return np.sum(1.0 / (1.0 + np.exp(-(w * x))) * x)


def every_spelling(z):
    return (1 / (1 + math.exp(-z)) + 1.0 / (math.exp(-z) + 1.0)
            + 1 / (1 + np.exp(z)) + 1 / (1 + np.exp(-2.0 * z)))


def not_a_sigmoid(z):
    return 2.0 / (1.0 + np.exp(-z)) + 1.0 / (1.0 - np.exp(-z)) + 1.0 / (2.0 + np.exp(-z))


def exp(z):  # a user function that happens to be called exp
    return z * z


def own_exp(z):
    return 1.0 / (1.0 + exp(-z))


def deep(w, x):
    return np.sum(1.0 / (1.0 + np.exp(-(w * x))))


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_gradient_matches_finite_differences_and_the_closed_form(backend):
    g = s2sad.grad(neuron, backend=backend)
    got = g(W, X)
    s = 1 / (1 + np.exp(-W * X))
    np.testing.assert_allclose(got, s * (1 - s) * X * X, rtol=1e-12)
    np.testing.assert_allclose(got, numerical_grad(neuron, (W, X)), rtol=1e-6)
    assert "logistic(" in s2sad.source(g)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_every_spelling_forward_and_reverse_and_second_order(backend):
    z = 0.37
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    d1 = 2 * s(z) * (1 - s(z)) - s(-z) * (1 - s(-z)) + 2 * s(2 * z) * (1 - s(2 * z))
    assert s2sad.grad(every_spelling, backend=backend)(z) == pytest.approx(d1, rel=1e-12)
    rev = s2sad.jacrev(lambda v: every_spelling(v[0]) * v[1], backend=backend)(np.array([z, 1.0]))
    assert rev[0] == pytest.approx(d1, rel=1e-12)
    d2 = numerical_grad(s2sad.grad(every_spelling, backend="python"), (z,))
    assert s2sad.grad(s2sad.grad(every_spelling, backend=backend), backend=backend)(z) == pytest.approx(d2, rel=1e-6)
    g = s2sad.grad(every_spelling, backend=backend)
    g(z)
    code = "\n".join(line for line in s2sad.source(g).splitlines() if not line.strip().startswith("#"))
    assert code.count("logistic(") >= 4 and "np.exp" not in code and "math.exp" not in code


def test_look_alikes_are_left_alone():
    g = s2sad.grad(not_a_sigmoid)
    assert g(0.8) == pytest.approx(numerical_grad(not_a_sigmoid, (0.8,)), rel=1e-6)
    assert "logistic" not in s2sad.source(g)
    h = s2sad.grad(own_exp)
    assert h(0.8) == pytest.approx(numerical_grad(own_exp, (0.8,)), rel=1e-6)
    assert "logistic" not in s2sad.source(h)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_finite_where_exp_overflows(backend):
    # through exp, + and / the chain rule gives 0 * inf = NaN at w x = -800; the derivative is 0
    w = np.array([800.0, -800.0, 0.5])
    x = np.ones(3)
    with np.errstate(over="ignore"):
        got = s2sad.grad(deep, backend=backend)(w, x)
        s = 1 / (1 + np.exp(-w))
    np.testing.assert_allclose(got, s * (1 - s), rtol=1e-12)
    assert got[0] == 0.0 and got[1] == 0.0


def test_math_exp_overflow_gives_the_limit():
    # math.exp(800) raises OverflowError; the function's value there is 0, and so is its slope
    assert s2sad.value_and_grad(every_spelling, backend="python")(-800.0) == (1.0, 0.0)
