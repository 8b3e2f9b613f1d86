"""User-defined rules: custom_vjp and custom_jvp, inside loops and under higher-order transforms."""

import numpy as np
import pytest

import s2sad
from fd import numerical_grad


@s2sad.custom_vjp
def safe_log1pexp(x):
    return np.log1p(np.exp(x))


def safe_log1pexp_fwd(x):
    return np.log1p(np.exp(x)), x


def safe_log1pexp_bwd(x, g):
    return (g / (1.0 + np.exp(-x)),)


safe_log1pexp.defvjp(safe_log1pexp_fwd, safe_log1pexp_bwd)


def softplus_sum(x):
    s = 0.0
    for i in range(4):
        s = s + safe_log1pexp(x * (i + 1.0))
    return s


@s2sad.custom_jvp
def scaled_exp(x, y):
    return x * np.exp(y)


@scaled_exp.defjvp
def scaled_exp_jvp(primals, tangents):
    x, y = primals
    x_dot, y_dot = tangents
    return scaled_exp(x, y), x_dot * np.exp(y) + x * np.exp(y) * y_dot


def uses_scaled_exp(x, y):
    return scaled_exp(x, y) ** 2 + x


@s2sad.custom_vjp
def wrong_square(x):
    return x ** 2


wrong_square.defvjp(lambda x: (x ** 2, x), lambda x, g: (3.0 * x * g,))  # deliberately wrong: 3x


def test_custom_vjp_is_used_in_a_loop_and_matches_finite_differences():
    g = s2sad.grad(softplus_sum)(0.3)
    assert g == pytest.approx(numerical_grad(softplus_sum, (0.3,)), rel=1e-6)


def test_custom_vjp_rule_is_what_reverse_mode_uses():
    assert s2sad.grad(lambda x: wrong_square(x))(2.0) == pytest.approx(6.0)  # the user's (wrong) rule


def test_custom_vjp_under_second_order():
    d2 = s2sad.grad(s2sad.grad(softplus_sum))(0.3)
    assert d2 == pytest.approx(numerical_grad(s2sad.grad(softplus_sum), (0.3,)), rel=1e-5)


def test_custom_jvp_in_forward_and_reverse_mode():
    args = (1.2, 0.4)
    for i in range(2):
        dots = [0.0, 0.0]
        dots[i] = 1.0
        _, t = s2sad.jvp(uses_scaled_exp, args, dots)
        assert t == pytest.approx(numerical_grad(uses_scaled_exp, args, i), rel=1e-6)
    gx, gy = s2sad.grad(uses_scaled_exp, argnums=(0, 1))(*args)
    assert (gx, gy) == pytest.approx((numerical_grad(uses_scaled_exp, args, 0),
                                      numerical_grad(uses_scaled_exp, args, 1)), rel=1e-6)


def test_custom_rules_compile_under_numba():
    # the user's functions that generated code calls as they are (the primal, fwd and bwd rules,
    # a jvp rule) are compiled too, and the custom_vjp object their rules call is its function:
    # no fallback to Python (backend="numba" makes one an error)
    g = s2sad.grad(softplus_sum, backend="numba")
    assert g(0.3) == pytest.approx(numerical_grad(softplus_sum, (0.3,)), rel=1e-6)
    assert g(0.3) == s2sad.grad(softplus_sum, backend="python")(0.3)
    assert s2sad.jacfwd(softplus_sum, backend="numba")(0.3) == pytest.approx(g(0.3), rel=1e-12)
    d2 = s2sad.grad(s2sad.grad(softplus_sum, backend="numba"), backend="numba")(0.3)
    assert d2 == pytest.approx(numerical_grad(s2sad.grad(softplus_sum, backend="python"), (0.3,)), rel=1e-5)
    args = (1.2, 0.4)
    got = s2sad.grad(uses_scaled_exp, argnums=(0, 1), backend="numba")(*args)
    assert got == pytest.approx([numerical_grad(uses_scaled_exp, args, i) for i in range(2)], rel=1e-6)
    assert s2sad.jvp(uses_scaled_exp, args, (0.0, 1.0), backend="numba")[1] == pytest.approx(got[1], rel=1e-12)


def test_a_custom_function_is_differentiated_directly():
    # grad(f) of the decorated function itself, as in JAX (was: "s2sad differentiates Python functions")
    x = 0.3
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    assert s2sad.grad(safe_log1pexp)(x) == pytest.approx(sigmoid, rel=1e-12)
    assert s2sad.jacfwd(safe_log1pexp)(x) == pytest.approx(sigmoid, rel=1e-12)
    assert s2sad.grad(s2sad.grad(safe_log1pexp))(x) == pytest.approx(sigmoid * (1 - sigmoid), rel=1e-9)
    gx, gy = s2sad.grad(scaled_exp, argnums=(0, 1))(1.2, 0.4)
    assert (gx, gy) == pytest.approx((np.exp(0.4), 1.2 * np.exp(0.4)), rel=1e-12)


def test_a_second_derivative_through_a_custom_jvp_is_refused_with_a_hint():
    # reverse mode transposes the rule one input direction at a time (custom.jvp_transpose, which
    # takes the rule as an argument): s2sad once parsed that helper and stopped at its generator
    # expression, naming a line of s2sad's own source
    for second in (lambda: s2sad.grad(s2sad.grad(uses_scaled_exp))(1.2, 0.4),
                   lambda: s2sad.hessian(uses_scaled_exp)(1.2, 0.4)):
        with pytest.raises(s2sad.S2SADError, match="second derivative through a custom_jvp function "
                                                   r"\(its rule `scaled_exp_jvp`\)") as info:
            second()
        assert "hint: define the function's derivative with s2sad.custom_vjp" in str(info.value)


def test_check_grads_catches_a_wrong_custom_rule():
    with pytest.raises(AssertionError, match="finite differences"):
        s2sad.check_grads(lambda x: wrong_square(x), (1.3,), order=1, modes=("rev",))
    s2sad.check_grads(softplus_sum, (0.3,), order=2)
