"""Random vectorized programs on 2-d arrays, checked against central finite differences.

A hypothesis strategy draws the text of a function `f(A, B, v)` of two (m, n) float arrays
and an (n,) float array, written the way NumPy models are: elementwise arithmetic with
broadcasting (`X * v[None, :]`, `X - r[:, None]`), exp/tanh/log of bounded values, sums,
means and maxima along an axis (`np.sum(X, axis=1)`), matrix products (`X @ v`, `X.T @ Y`),
rearrangements (np.flip, np.roll, np.sort, np.cumprod, np.repeat, np.tile along an axis),
and a scalar result. Reverse mode is compared with finite differences and with forward
mode (`jvp`) on every example; compiled by Numba, the gradient must equal the Python
backend's on a few (`slow`: each compile takes seconds).

These are the paths of the Numba backend's unbroadcast, reductions along an axis and the
view adjoint of `x[None, :]`, which the loop-program generator (test_random_programs.py,
scalars and 1-d arrays) does not reach.
"""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import s2sad
from fd import numerical_grad
from test_random_programs import load   # writes the text to a file: s2sad reads source

M, N = 4, 3
_count = itertools.count()


@st.composite
def programs(draw):
    """(source text, name): a straight-line function of A, B (M x N) and v (N,)."""
    mats, rows, cols = ["A", "B"], [], ["v"]     # (M, N) values, (M,) values, (N,) values
    lines = []

    def new(kind):
        name = f"{kind}{len(lines)}"
        {"X": mats, "r": rows, "c": cols}[kind].append(name)
        return name

    for _ in range(draw(st.integers(2, 7))):
        X, Y = draw(st.sampled_from(mats)), draw(st.sampled_from(mats))
        choice = draw(st.integers(0, 13))
        if choice == 0:
            op = draw(st.sampled_from(["+", "-", "*"]))
            lines.append(f"{new('X')} = {X} {op} {Y}")
        elif choice == 1:
            c, axis = draw(st.sampled_from(cols)), draw(st.sampled_from(["None", "np.newaxis"]))
            lines.append(f"{new('X')} = {X} * {c}[{axis}, :] + {c}")
        elif choice == 2 and rows:
            r, axis = draw(st.sampled_from(rows)), draw(st.sampled_from(["None", "np.newaxis"]))
            lines.append(f"{new('X')} = {X} - {r}[:, {axis}]")
        elif choice == 3:
            f = draw(st.sampled_from(["np.tanh", "np.arcsinh", "np.exp2", "np.reciprocal(2.0 + np.cos"]))
            lines.append(f"{new('X')} = {f}({X})" + (")" if "(" in f else ""))
        elif choice == 4:
            lines.append(f"{new('X')} = np.exp(np.tanh({X})) * {Y}")
        elif choice == 5:
            lines.append(f"{new('X')} = np.log(1.0 + {X} * {X})")
        elif choice == 6:
            how = draw(st.sampled_from(["sum", "mean"]))
            lines.append(f"{new('r')} = np.{how}({X}, axis=1)")
        elif choice == 7:
            how = draw(st.sampled_from(["sum", "mean", "max"]))
            lines.append(f"{new('c')} = np.{how}({X}, axis=0)")
        elif choice == 8:
            c = draw(st.sampled_from(cols))
            lines.append(f"{new('r')} = np.tanh({X} @ {c})")
        elif choice == 9:
            lines.append(f"{new('X')} = {X} @ (np.tanh({X}.T @ {Y}) * 0.5)")
        elif choice == 10 and rows:
            r = draw(st.sampled_from(rows))
            lines.append(f"{new('X')} = {X} * np.expand_dims({r}, 1)")
        elif choice == 12:
            # rearrangements (definitions.py): each element moves, or is multiplied along an axis
            axis = draw(st.sampled_from([0, 1, -1]))
            shift = draw(st.integers(-3, 3))
            how = draw(st.sampled_from([
                f"np.flip({X}, axis={axis})", f"np.roll({X}, {shift}, axis={axis})", f"np.sort({X}, axis={axis})",
                f"np.cumprod(1.0 + 0.5 * np.tanh({X}), axis={axis})", f"np.repeat({X}, 2, axis=0)[1::2]",
                f"np.repeat({X}, 3, axis=1)[:, ::3]", f"np.tile({X}, 2)[:, 1:{N + 1}]"]))
            lines.append(f"{new('X')} = {how}")
        elif choice == 11:
            # joins and spaced values (np.c_, np.r_, np.linspace), and a value with no derivative
            # rule (np.arange from a float): differentiated right, or refused, never a zero
            how = draw(st.integers(0, 3))
            if how == 0:
                lines.append(f"{new('X')} = np.c_[{X}[:, 0], {Y}[:, 1:]]")
            elif how == 1:
                c = draw(st.sampled_from(cols))
                lines.append(f"{new('c')} = np.r_[{c}[1:], {X}[0, 0]] * {c}")
            elif how == 2:
                lines.append(f"{new('r')} = np.linspace({X}[0, 0], {Y}[1, 1], {M})")
            else:
                lines.append(f"{new('r')} = np.arange({X}[0, 0], {X}[0, 0] + {M - 0.5})")
        elif choice == 13:
            # a name updated by a number that depends on the inputs: its adjoint passes through
            c = draw(st.sampled_from(cols))
            how = draw(st.sampled_from([f"{X} + np.sum({c})", f"np.mean({Y}) + {X}", f"{X} - np.sum({c} * {c})"]))
            lines.append(f"{X} = {how}")
        else:
            lines.append(f"{new('r')} = np.max({X}, axis=1) + np.sum({X} * {Y}, axis=-1)")
    # every value made reaches the result: nothing is dead code for the optimizer to drop
    terms = [f"np.sum({X} * {X})" for X in mats[2:] or ["A"]] + [f"np.sum(np.tanh({r}))" for r in rows + cols]
    name = f"arrays_{next(_count)}"
    text = "\n".join([f"def {name}(A, B, v):"] + [f"    {s}" for s in lines]
                     + [f"    return {' + '.join(terms)}"])
    return text, name


def inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (M, N)), rng.uniform(-1, 1, (M, N)), rng.uniform(-1, 1, N)


def build(text, name):
    return getattr(load("import numpy as np\n\n\n" + text + "\n"), name)


def reference(f, args):
    """Central differences at two step sizes; None where they disagree (too rough a point: a
    max's tie nearby)."""
    fine = [numerical_grad(f, args, i, eps=1e-6) for i in range(len(args))]
    coarse = [numerical_grad(f, args, i, eps=4e-6) for i in range(len(args))]
    if not all(np.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(fine, coarse)):
        return None
    return fine


def check(text, name, seed, backend):
    f = build(text, name)
    args = inputs(seed)
    value = f(*args)
    assume(np.isfinite(value) and abs(value) < 1e6)
    fd = reference(f, args)
    assume(fd is not None)
    if "np.arange(" in text:  # no derivative rule for a float start: refused, with the line
        with pytest.raises(s2sad.NonDifferentiableError, match="np.arange"):
            s2sad.grad(f, argnums=(0, 1, 2), backend=backend)(*[a.copy() for a in args])
        assume(False)
    g = s2sad.grad(f, argnums=(0, 1, 2), backend=backend)(*[a.copy() for a in args])
    for i in range(3):
        np.testing.assert_allclose(g[i], fd[i], rtol=1e-5, atol=1e-7,
                                   err_msg=f"argument {i}, backend {backend}, seed {seed}\n{text}")
    return f, args, g


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 10_000))
def test_reverse_and_forward_agree_with_finite_differences(program, seed):
    text, name = program
    f, args, g = check(text, name, seed, "python")
    t = [np.cos(np.arange(M * N)).reshape(M, N), np.sin(np.arange(M * N)).reshape(M, N), np.cos(np.arange(N))]
    _, tangent = s2sad.jvp(f, list(args), t, backend="python")
    projected = sum(float(np.sum(gi * ti)) for gi, ti in zip(g, t))
    scale = sum(float(np.sum(np.abs(gi * ti))) for gi, ti in zip(g, t))
    assert abs(float(tangent) - projected) <= 1e-10 * scale + 1e-12, text


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 10_000))
def test_numba_gives_the_python_backends_numbers(program, seed):
    text, name = program
    _, args, compiled = check(text, name, seed, "numba")
    plain = s2sad.grad(build(text, name), argnums=(0, 1, 2), backend="python")(*[a.copy() for a in args])
    for a, b in zip(compiled, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=text)
