"""Forward mode, its agreement with reverse mode, and higher-order derivatives."""

import math

import numpy as np
import pytest

import s2sad
from fd import numerical_grad


# ---- a corpus of functions: each is differentiated in both modes --------------
def helper(a, b, scale=2.0):
    return a * np.tanh(b) * scale


def straight(x, y):
    return np.sin(x) * np.exp(-y * y) + x / (1.0 + y * y)


def loop_branch(x, y):
    s = 0.0
    for i in range(5):
        if s < 1.0:
            s = s + np.sin(x * i) * y
        else:
            s = s * 0.5 + x
    return s


def while_loop(x, y):
    t = x
    n = 0
    while t < 10.0 and n < 50:
        t = t * 1.3 + y
        n += 1
    return t


def with_helper(x, y):
    s = 0.0
    for k in range(3):
        s = s + helper(x, y + k, scale=1.5)
    return s


def breaks(x, y):
    s = 0.0
    for i in range(10):
        s = s + x * y
        if s > 2.0:
            break
    return s


def early_return(x, y):
    for i in range(6):
        x = x * 1.4 + y
        if x > 4.0:
            return x * 2.0
    return x


def math_calls(x, y):
    return math.atan2(y, x) + math.hypot(x, y) + math.erf(x * y) + max(x, y) ** 2


def array_writes(v, w):
    y = np.zeros(len(v))
    for i in range(len(v)):
        y[i] = v[i] * w[i] + (y[i - 1] if i > 0 else 0.0)
    return np.sum(y ** 2)


def rnn(W, x):
    h = np.zeros(3)
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + x[t])
    return np.sum(h * h)


def reductions(v, w):
    return np.mean(v * w) + np.max(v) * np.prod(w) + np.linalg.norm(v - w)


RNG = np.random.default_rng(3)
SCALAR_CORPUS = [straight, loop_branch, while_loop, with_helper, breaks, early_return, math_calls]
ARRAY_CORPUS = [
    (array_writes, (RNG.normal(size=4), RNG.normal(size=4))),
    (rnn, (RNG.normal(size=(3, 3)) * 0.4, RNG.normal(size=(4, 3)))),
    (reductions, (RNG.uniform(0.5, 1.5, 4), RNG.uniform(0.5, 1.5, 4))),
]


@pytest.mark.parametrize("f", SCALAR_CORPUS, ids=lambda f: f.__name__)
def test_forward_and_reverse_agree_on_scalar_functions(f):
    args = (0.7, 0.3)
    rev = s2sad.grad(f, argnums=(0, 1))(*args)
    for i in range(2):
        dots = [0.0, 0.0]
        dots[i] = 1.0
        value, tangent = s2sad.jvp(f, args, dots)
        assert value == pytest.approx(f(*args), rel=1e-12)
        assert tangent == pytest.approx(rev[i], rel=1e-10, abs=1e-12)
        assert tangent == pytest.approx(numerical_grad(f, args, i), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("f,args", ARRAY_CORPUS, ids=lambda v: getattr(v, "__name__", ""))
def test_forward_and_reverse_agree_on_array_functions(f, args):
    rev = s2sad.grad(f, argnums=(0, 1))(*args)
    for i in range(2):
        jac = s2sad.jacfwd(f, argnums=i)(*args)
        np.testing.assert_allclose(jac, rev[i], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(jac, numerical_grad(f, args, i), rtol=1e-5, atol=1e-7)


def test_grad_of_tanh_to_third_order_matches_jax():
    g = s2sad.grad
    assert g(np.tanh)(2.0) == pytest.approx(0.070650816, abs=1e-8)
    assert g(g(np.tanh))(2.0) == pytest.approx(-0.13621868, abs=1e-8)
    assert g(g(g(np.tanh)))(2.0) == pytest.approx(0.25265405, abs=1e-7)


def test_polynomial_derivatives_to_fourth_order():
    def f(x):
        return x ** 3 + 2 * x ** 2 - 3 * x + 1
    g = s2sad.grad
    assert [g(f)(1.0), g(g(f))(1.0), g(g(g(f)))(1.0), g(g(g(g(f))))(1.0)] == pytest.approx([4, 10, 6, 0])


def test_higher_order_through_loops_and_branches_matches_finite_differences():
    d2 = s2sad.grad(s2sad.grad(loop_branch))
    reference = numerical_grad(s2sad.grad(loop_branch), (0.7, 0.3), 0)
    assert d2(0.7, 0.3) == pytest.approx(reference, rel=1e-5)
    d3 = s2sad.grad(d2)
    assert d3(0.7, 0.3) == pytest.approx(numerical_grad(d2, (0.7, 0.3), 0), rel=1e-4)


def test_fourth_order_source_is_available_and_readable():
    g4 = s2sad.grad(s2sad.grad(s2sad.grad(s2sad.grad(np.sin))))
    assert g4(0.4) == pytest.approx(np.sin(0.4))
    text = s2sad.source(g4)
    assert "_jvp" in text and "x_dot" in text


def test_error_propagation_with_jacfwd():
    def q(x, y):
        return x * y
    x, y, dx, dy = 2.0, 3.0, 0.1, 0.1
    jx, jy = s2sad.jacfwd(q, argnums=(0, 1))(x, y)
    sigma = math.sqrt((jx * dx) ** 2 + (jy * dy) ** 2)
    assert sigma == pytest.approx(math.sqrt((y * dx) ** 2 + (x * dy) ** 2))


def test_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient():
    x = np.array([0.3, -0.8, 1.1])

    def f(v):
        return np.sum(np.sin(v) * v ** 2) + v[0] * v[1] * v[2]
    H = s2sad.hessian(f)(x)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    grad_f = s2sad.grad(f)
    fd = np.stack([numerical_grad(lambda v: grad_f(v)[k], (x,), 0) for k in range(3)])
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-6)


def test_jacrev_and_jacfwd_have_jax_shapes():
    x = np.array([0.2, 0.4, 0.6])

    def f(v):
        return np.sin(v) * np.sum(v)
    J1, J2 = s2sad.jacrev(f)(x), s2sad.jacfwd(f)(x)
    assert J1.shape == J2.shape == (3, 3)
    np.testing.assert_allclose(J1, J2, rtol=1e-10)
    expected = np.diag(np.cos(x) * np.sum(x)) + np.sin(x)[:, None]
    np.testing.assert_allclose(J1, expected, rtol=1e-10)


def test_vjp_returns_one_cotangent_per_primal():
    def f(a, b):
        return a * np.sin(b)
    out, vjp_fn = s2sad.vjp(f, 2.0, np.array([0.1, 0.2]))
    ga, gb = vjp_fn(np.array([1.0, 1.0]))
    assert ga == pytest.approx(np.sum(np.sin([0.1, 0.2])))
    np.testing.assert_allclose(gb, 2.0 * np.cos([0.1, 0.2]))


def test_jvp_of_grad_is_a_hessian_vector_product():
    x = np.array([0.5, -0.2])

    def f(v):
        return np.sum(v ** 3) + v[0] * v[1]
    _, hv = s2sad.jvp(s2sad.grad(f), (x,), (np.array([1.0, 2.0]),))
    H = np.array([[6 * x[0], 1.0], [1.0, 6 * x[1]]])
    np.testing.assert_allclose(hv, H @ [1.0, 2.0], rtol=1e-10)


def test_check_grads_passes_on_correct_derivatives():
    s2sad.check_grads(loop_branch, (0.7, 0.3), order=2)
    s2sad.check_grads(np.tanh, (0.5,), order=3)


# ---- pytree outputs -------------------------------------------------------------
def loss_with_aux_dict(w, x):
    pred = np.tanh(x * w)
    return np.sum(pred ** 2), {"pred": pred, "range": (np.max(pred), np.min(pred))}


def dict_valued(w, x):
    return {"a": w * x, "b": np.sum(x) * w ** 2}


XS = np.array([0.1, 0.5, -0.3])


def test_has_aux_returns_a_dict_of_auxiliary_values():
    g, aux = s2sad.grad(loss_with_aux_dict, has_aux=True)(0.7, XS)
    assert g == pytest.approx(numerical_grad(lambda w: loss_with_aux_dict(w, XS)[0], (0.7,)), rel=1e-6)
    np.testing.assert_allclose(aux["pred"], np.tanh(XS * 0.7))
    assert aux["range"][0] == pytest.approx(np.max(np.tanh(XS * 0.7)))


def test_jvp_vjp_and_jacfwd_of_a_dict_valued_function():
    out, t = s2sad.jvp(dict_valued, (0.7, XS), (1.0, np.zeros(3)))
    np.testing.assert_allclose(out["a"], 0.7 * XS)
    np.testing.assert_allclose(t["a"], XS)
    assert t["b"] == pytest.approx(2 * 0.7 * np.sum(XS))
    _, vjp_fn = s2sad.vjp(dict_valued, 0.7, XS)
    gw, gx = vjp_fn({"a": np.ones(3), "b": 1.0})
    assert gw == pytest.approx(np.sum(XS) + 2 * 0.7 * np.sum(XS))
    np.testing.assert_allclose(gx, 0.7 + 0.49)
    jw = s2sad.jacfwd(dict_valued)(0.7, XS)
    np.testing.assert_allclose(jw["a"], XS)
    assert jw["b"] == pytest.approx(2 * 0.7 * np.sum(XS))


def test_vjp_with_auxiliary_data():
    value, vjp_fn, aux = s2sad.vjp(loss_with_aux_dict, 0.7, XS, has_aux=True)
    assert value == pytest.approx(loss_with_aux_dict(0.7, XS)[0])
    gw, gx = vjp_fn(1.0)
    assert gw == pytest.approx(s2sad.grad(loss_with_aux_dict, has_aux=True)(0.7, XS)[0])
    np.testing.assert_allclose(aux["pred"], np.tanh(XS * 0.7))


def loop_over_an_array_then_rewrite_it(x, v):
    s0 = x
    s1 = x
    w = np.zeros(len(v))
    w[1] = x
    for b in w:
        s0, s1 = s1, np.tanh(s0 + s1 * b)
    for i in range(3):
        w[i] = w[i] + np.tanh(w[1] * w[1])  # overwrites w: the reverse sweep restores w[i] from the tape
    return s0 + s1 + np.sum(w) + np.dot(w, v)


def test_second_order_through_restored_array_elements():
    # B9: the forward transform of the reverse code dropped the tangent of a taped w[i] (its push was
    # not "useful", its pop was not "varied"): the restored w kept a stale tangent, a wrong Hessian
    v = np.array([-0.6696, 0.3, 0.7])
    g = s2sad.grad(loop_over_an_array_then_rewrite_it)
    for x in (-0.4, 0.35):
        d2 = s2sad.grad(g)(x, v)
        h = 1e-5
        assert d2 == pytest.approx((g(x + h, v) - g(x - h, v)) / (2 * h), rel=1e-6)
        assert s2sad.jvp(g, (x, v), (1.0, np.zeros(3)))[1] == pytest.approx(d2, rel=1e-12)
        assert s2sad.grad(g, backend="numba")(x, v) == pytest.approx(d2, rel=1e-12)
        third = s2sad.grad(s2sad.grad(g))(x, v)
        assert third == pytest.approx((s2sad.grad(g)(x + h, v) - s2sad.grad(g)(x - h, v)) / (2 * h), rel=1e-5)


def h(p):
    return np.sin(p) * p


def h_jvp(p):  # spelled like the generated tangent of h
    return np.cos(p) + p * p * p


def calls_h_jvp(p):
    return h_jvp(p) * 2.0


def names_like_generated_ones(x, y):
    return h(x) * calls_h_jvp(y) + calls_h_jvp(x)


def test_user_functions_named_like_generated_ones():
    # B8: a function's copy was defined under its own name, which a generated derivative could
    # also take: the later definition replaced the earlier (TypeError: missing 'p_dot')
    want = numerical_grad(names_like_generated_ones, (0.3, 0.7), 0)
    assert s2sad.jacfwd(names_like_generated_ones)(0.3, 0.7) == pytest.approx(want, rel=1e-7)
    assert s2sad.grad(names_like_generated_ones)(0.3, 0.7) == pytest.approx(want, rel=1e-7)
    hess = s2sad.hessian(names_like_generated_ones)(0.3, 0.7)
    assert hess == pytest.approx(numerical_grad(s2sad.grad(names_like_generated_ones), (0.3, 0.7), 0), rel=1e-6)


def sum_of_broadcast(a, d):
    return np.sum(a + d) + np.sum(d - a) * 0.5 + np.sum(np.where(a > 0.5, d, a))


def column_of_broadcast(a, d):
    return (a * 1.0 + d)[:, 0]


def test_tangent_of_a_sum_broadcast_by_an_inactive_operand():
    # the tangent of `a + d` was d_dot alone, of d's shape, where a (not differentiated) broadcasts the
    # result to a's shape: jacfwd silently gave [1, 1] for np.sum(a + d) (found by GradBench's ht)
    a, d = np.array([[1.0, 0.2], [0.7, 1.3], [0.1, 0.9]]), np.array([0.4, -0.3])
    want = numerical_grad(sum_of_broadcast, (a, d), 1)
    np.testing.assert_allclose(s2sad.jacfwd(sum_of_broadcast, argnums=1)(a, d), want, rtol=1e-7)
    np.testing.assert_allclose(s2sad.grad(sum_of_broadcast, argnums=1)(a, d), want, rtol=1e-7)
    np.testing.assert_allclose(s2sad.jacfwd(column_of_broadcast, argnums=1)(a, d),
                               s2sad.jacrev(column_of_broadcast, argnums=1)(a, d), rtol=1e-12)
    np.testing.assert_allclose(s2sad.jacfwd(column_of_broadcast, argnums=1)(a, d), [[1.0, 0.0]] * 3)
