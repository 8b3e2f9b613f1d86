"""Loops over list and tuple arguments, and names that hold arrays of different shapes in turn.

A list or tuple argument's length is part of the signature s2sad specializes for, so a loop
over it (`for W, b in layers:`, `for i in range(len(xs))`, `zip(xs, ys)`) is unrolled into
one copy of its body per element, each reading its element with a constant key, as JAX's
tracing does. Its elements may differ in shape, so the loop's names may hold arrays of
different shapes from one copy to the next; so may any name the user rebinds
(`h = x; h = np.tanh(W @ h)`). Every gradient is checked against central differences,
reverse and forward mode, on both backends.
"""

import numpy as np
import pytest

import s2sad
from s2sad.normalize import pytree


def fd_tree(f, args, argnum, eps=1e-6):
    """Central differences of f with respect to every leaf of args[argnum], in its structure."""
    leaves, treedef = pytree.tree_flatten(args[argnum])
    out = []
    for j, leaf in enumerate(leaves):
        g = np.zeros(np.shape(leaf))
        for idx in np.ndindex(g.shape):
            def at(d):
                moved = [np.array(x, dtype=float) for x in leaves]
                moved[j][idx] += d
                changed = list(args)
                changed[argnum] = pytree.tree_unflatten(treedef, moved)
                return f(*changed)
            g[idx] = (at(eps) - at(-eps)) / (2 * eps)
        out.append(g)
    return pytree.tree_unflatten(treedef, out)


def check(f, args, argnum, backend):
    got = s2sad.grad(f, argnums=argnum, backend=backend)(*args)
    want = fd_tree(f, args, argnum)
    got_leaves, got_def = pytree.tree_flatten(got)
    want_leaves, want_def = pytree.tree_flatten(want)
    assert got_def == want_def
    for a, b in zip(got_leaves, want_leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def mlp(layers, x):
    h = x
    for W, b in layers:
        h = np.tanh(W @ h + b)
    return np.sum(h * h)


def mlp_of_dicts(layers, x):
    h = x
    for i, layer in enumerate(layers):
        h = np.tanh(layer["W"] @ h + layer["b"]) * (1.0 + 0.1 * i)
    return np.sum(h)


def dot_pairs(xs, ys):
    s = 0.0
    for a, b in zip(xs, ys):
        s = s + np.sum(a * b)
    return s * len(xs)


def by_index(xs):
    s = 0.0
    for i in range(len(xs)):
        s = s + np.sum(np.sin(xs[i]) * xs[i])
    return s


def rebinds(W1, W2, x):
    h = x
    h = np.tanh(W1 @ h)
    h = np.tanh(W2 @ h)
    return np.sum(h * h)


rng = np.random.default_rng(11)
LAYERS = [(rng.standard_normal((4, 3)), rng.standard_normal(4)), (rng.standard_normal((2, 4)), rng.standard_normal(2))]
DICT_LAYERS = [{"W": W, "b": b} for W, b in LAYERS]
X = rng.standard_normal(3)
XS = [rng.standard_normal(2), rng.standard_normal(3), rng.standard_normal(1)]
YS = (rng.standard_normal(2), rng.standard_normal(3), rng.standard_normal(1))


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_loop_over_a_list_of_layers_of_different_shapes(backend):
    check(mlp, (LAYERS, X), 0, backend)
    check(mlp, (LAYERS, X), 1, backend)
    check(mlp_of_dicts, (DICT_LAYERS, X), 0, backend)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_zip_range_len_and_len_of_list_arguments(backend):
    check(dot_pairs, (XS, YS), 0, backend)
    check(dot_pairs, (XS, YS), 1, backend)
    check(by_index, (XS,), 0, backend)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_name_rebound_to_arrays_of_other_shapes(backend):
    W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    for argnum in range(3):
        check(rebinds, (W1, W2, X), argnum, backend)


def test_forward_mode_through_the_unrolled_loop_agrees():
    J = s2sad.jacfwd(mlp, argnums=1)(LAYERS, X)
    np.testing.assert_allclose(J, fd_tree(mlp, (LAYERS, X), 1), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(J, s2sad.grad(mlp, argnums=1)(LAYERS, X), rtol=1e-12)


def test_a_list_of_another_length_is_another_specialization():
    g = s2sad.grad(by_index)
    assert len(g(XS[:2])) == 2 and len(g(XS)) == 3
    check(by_index, (XS[:2],), 0, "python")


def stops_early(xs):
    s = 0.0
    for a in xs:
        if np.sum(a) > 10.0:
            break
        s = s + np.sum(a)
    return s


def test_a_loop_over_a_list_that_may_stop_early_is_refused_with_a_hint():
    with pytest.raises(s2sad.UnsupportedSyntaxError, match="list or tuple argument") as err:
        s2sad.grad(stops_early)(XS)
    assert "hint:" in str(err.value) and "break" in str(err.value)
