"""vmap semantics (in_axes/out_axes) against a Python loop, composed with the derivative transforms,
on the python, numba and parallel backends."""

import math

import numpy as np
import pytest

import s2sad


def tanh(x):
    return np.tanh(x)


def helper(x, y):
    return x * math.exp(-y)


def scal(x, y):
    s = 0.0
    for i in range(3):
        if x > 0.5:
            s = s + helper(x, y) * i
        else:
            s = s + np.sin(x * y)
    return s + np.tanh(x)


def arr(w, x):
    return np.sum(np.tanh(w * x) ** 2)


def lin(a, x):
    return a * x + 1.0


def pair(x, y):
    return x * y, x + y


XS = np.linspace(-1.2, 1.3, 7)
YS = np.linspace(0.1, 0.9, 7)
CPU = ["python", "numba", "parallel"]


@pytest.mark.parametrize("backend", CPU)
def test_per_sample_tanh_gradient(backend):
    g = s2sad.vmap(s2sad.grad(np.tanh), backend=backend)
    np.testing.assert_allclose(g(XS), 1 - np.tanh(XS) ** 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("kind", ["grad", "value_and_grad", "jacfwd", "jacrev"])
def test_compose_scalar(backend, kind):
    t = getattr(s2sad, kind)(scal, argnums=(0, 1))
    got = s2sad.vmap(t, backend=backend)(XS, YS)
    want = [t(float(x), float(y)) for x, y in zip(XS, YS)]
    if kind == "value_and_grad":
        np.testing.assert_allclose(got[0], [w[0] for w in want], atol=1e-12)
        got, want = got[1], [w[1] for w in want]
    for k in range(2):
        np.testing.assert_allclose(got[k], [w[k] for w in want], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_grad_of_grad(backend):
    h = s2sad.vmap(s2sad.grad(s2sad.grad(tanh)), backend=backend)
    t = np.tanh(XS)
    np.testing.assert_allclose(h(XS), -2 * t * (1 - t ** 2), atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_in_axes_none_and_arrays(backend):
    w = np.linspace(0.2, 0.8, 4)
    batch = np.linspace(-1, 1, 12).reshape(3, 4)
    g = s2sad.vmap(s2sad.grad(arr), in_axes=(None, 0), backend=backend)
    want = np.stack([s2sad.grad(arr)(w, x) for x in batch])
    np.testing.assert_allclose(g(w, batch), want, atol=1e-12)
    # batch along axis 1 of the second argument, output batch on axis 1
    g1 = s2sad.vmap(s2sad.grad(arr), in_axes=(None, 1), out_axes=1, backend=backend)
    np.testing.assert_allclose(g1(w, batch.T.copy()), want.T, atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_jvp_composition(backend):
    from functools import partial
    f = s2sad.vmap(partial(s2sad.jvp, scal), backend=backend)
    ts = np.linspace(0.5, 1.5, 7)
    out, tangent = f((XS, YS), (ts, 2 * ts))
    for i in range(len(XS)):
        v, d = s2sad.jvp(scal, (float(XS[i]), float(YS[i])), (float(ts[i]), float(2 * ts[i])))
        assert abs(out[i] - v) < 1e-12 and abs(tangent[i] - d) < 1e-12


@pytest.mark.parametrize("backend", CPU)
def test_plain_function(backend):
    np.testing.assert_allclose(s2sad.vmap(scal, backend=backend)(XS, YS),
                               [scal(float(x), float(y)) for x, y in zip(XS, YS)], atol=1e-12)


def _loop(f, in_axes, args):
    n = [np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None][0]
    outs = [f(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, in_axes)]) for i in range(n)]
    return outs


def test_in_axes_semantics_against_loop():
    a = np.arange(6.0).reshape(2, 3)
    x = np.arange(12.0).reshape(3, 4) / 10
    f = s2sad.vmap(lin, in_axes=(None, 1))
    want = np.stack(_loop(lin, (None, 1), (a[0, 0], x)))
    np.testing.assert_allclose(f(a[0, 0], x), want)
    f = s2sad.vmap(lin, in_axes=0)
    np.testing.assert_allclose(f(x, x), np.stack(_loop(lin, (0, 0), (x, x))))
    f = s2sad.vmap(lin, in_axes=(0, -1), out_axes=-1)
    want = np.stack(_loop(lin, (0, 1), (np.ones((4, 3)), x)), axis=-1)
    np.testing.assert_allclose(f(np.ones((4, 3)), x), want)


def test_tuple_outputs_and_out_axes():
    f = s2sad.vmap(pair, in_axes=(0, None), out_axes=(0, None))
    with pytest.raises(ValueError, match="varies"):
        f(XS, 2.0)
    prod, tot = s2sad.vmap(pair, in_axes=(0, None), out_axes=(0, 0))(XS, 2.0)
    np.testing.assert_allclose(prod, XS * 2.0)
    np.testing.assert_allclose(tot, XS + 2.0)


def test_pytree_in_axes():
    def f(p, x):
        return p["a"] * x + p["b"]
    p = {"a": np.array([1.0, 2.0, 3.0]), "b": 0.5}
    out = s2sad.vmap(f, in_axes=({"a": 0, "b": None}, 0))(p, XS[:3])
    np.testing.assert_allclose(out, p["a"] * XS[:3] + 0.5)


def test_errors():
    with pytest.raises(ValueError, match="different sizes"):
        s2sad.vmap(lin)(XS, XS[:3])
    with pytest.raises(ValueError, match="at least one batched"):
        s2sad.vmap(lin, in_axes=None)(1.0, 2.0)
    with pytest.raises(ValueError, match="2 entries"):
        s2sad.vmap(lin, in_axes=(0, 0))(XS)
    with pytest.raises(ValueError, match="scalar"):
        s2sad.vmap(lin)(1.0, XS)
    with pytest.raises(ValueError, match="unknown vmap backend"):
        s2sad.vmap(lin, backend="tpu")
