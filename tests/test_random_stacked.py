"""Random programs over stacks of matrices, checked against central finite differences.

A hypothesis strategy draws the text of a straight-line function `f(A, B, C, D, u, w)` of
stacks of matrices A (2, 3, 4), B (2, 4, 3) and D (1, 4, 4) (square matrices, where a
transpose forgotten gives numbers of the right shape; a leading axis of length one, which
broadcasts), a matrix C (3, 4) and vectors u (4,) and w (3,), which mixes:

* `X @ Y` and `np.matmul(X, Y)` with a stack on one side or both: stack @ stack, stack @
  matrix, matrix @ stack, stack @ vector and vector @ stack, and stacks whose leading axes
  broadcast (`np.expand_dims(X, 0)`, `X[:, None]` give axes of length one);
* `np.dot(X, Y)` with an operand of three or more axes on either side and a partner of
  one, two or three axes (np.dot sums X's last axis against Y's second to last);
* `np.swapaxes(X, -1, -2)`, tanh and sin, `*`, `+` and `-` with broadcasting, and sums and
  means along an axis,

ending in a scalar to which every value made contributes. The shape of every value is
found while drawing by running the expression on arrays of zeros, so every program is
valid NumPy, and every program holds at least one product of a stack of matrices.

Every example checks that reverse mode (the gradient in all six arguments) agrees with
central differences and that forward mode (`jvp` along a random direction) gives the
gradient's projection on it; fewer examples check second order: forward over reverse
(`jvp` of `grad`, and `hessian` in one stack) against central differences of the gradient.
These reach dot_adjoint_x/_y and matmul_adjoint_x/_y (Rule.stacked_adjoint) and, to second order,
their own derivatives. Python backend only: Numba's np.dot and @ take no stacks.
"""

import itertools

import numpy as np
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import s2sad
from test_random_arrays import build, reference   # build writes the text to a file: s2sad reads source

ARGS = {"A": (2, 3, 4), "B": (2, 4, 3), "C": (3, 4), "D": (1, 4, 4), "u": (4,), "w": (3,)}
NAMES = tuple(ARGS)
MAX_SIZE, MAX_NDIM = 48, 4          # values stay small: finite differences cost two calls per element
_count = itertools.count()

COMMON = dict(deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _shape(expr, env):
    """The shape of expr run on zeros of the pool's shapes; None if NumPy rejects it or it is
    too big or a scalar."""
    try:
        with np.errstate(all="ignore"):
            value = eval(expr, {"np": np}, {k: np.zeros(s) for k, s in env.items()})  # noqa: S307
    except (ValueError, IndexError, TypeError):
        return None
    shape = np.shape(value)
    if len(shape) == 0 or len(shape) > MAX_NDIM or int(np.prod(shape)) > MAX_SIZE:
        return None
    return shape


@st.composite
def programs(draw):
    """(source text, name, the kinds of its products with a stack of matrices as an operand)."""
    env = dict(ARGS)                    # name -> shape of every value so far
    made, lines = [], []
    stacked = []                        # e.g. "np.dot 3d,1d" for each stacked product

    def product_candidates():
        out = []
        for x, y in itertools.product(env, repeat=2):
            if max(len(env[x]), len(env[y])) < 3:
                continue
            kinds = f"{len(env[x])}d,{len(env[y])}d"
            for form, op in (("{x} @ {y}", "@"), ("np.matmul({x}, {y})", "np.matmul"), ("np.dot({x}, {y})", "np.dot")):
                expr = form.format(x=x, y=y)
                if _shape(expr, env) is not None:
                    out.append((expr, f"{op} {kinds}"))
        return out

    def emit(expr, kind=None):
        shape = _shape(expr, env)
        assert shape is not None, expr     # the strategy only draws valid expressions
        name = f"t{len(lines)}"
        lines.append(f"{name} = {expr}")
        env[name] = shape
        made.append(name)
        if kind:
            stacked.append(kind)

    def product():
        candidates = product_candidates()
        # an operator and operand ranks first, then operands: every pairing turns up, not
        # mostly those of the arguments, which every program has
        kind = draw(st.sampled_from(sorted({k for _, k in candidates})))
        expr = draw(st.sampled_from([e for e, k in candidates if k == kind]))
        # keep magnitudes moderate: chains of products grow by up to the contracted length
        wrap = draw(st.sampled_from(["{}", "np.tanh({})", "0.5 * ({})"]))
        emit(wrap.format(expr), kind)

    for _ in range(draw(st.integers(1, 7))):
        names = list(env)
        X = draw(st.sampled_from(names))
        choice = draw(st.integers(0, 9))
        if choice <= 3:
            product()                   # of arguments or of values made: adjoints feed adjoints
        elif choice == 4 and len(env[X]) >= 2:
            emit(f"np.swapaxes({X}, -1, -2)")
        elif choice == 5:
            fn = draw(st.sampled_from(["tanh", "sin"]))
            emit(f"np.{fn}({X})")
        elif choice == 6:
            op = draw(st.sampled_from(["*", "+", "-"]))
            partners = [Y for Y in names if _shape(f"{X} {op} {Y}", env) is not None]
            emit(f"{X} {op} {draw(st.sampled_from(partners))}")     # X itself always qualifies
        elif choice == 7 and len(env[X]) >= 2:
            how = draw(st.sampled_from(["sum", "mean"]))
            axis = draw(st.integers(-len(env[X]), len(env[X]) - 1))
            emit(f"np.{how}({X}, axis={axis})")
        elif choice == 8 and len(env[X]) <= 3:
            # an axis of length one: a stack whose matrices broadcast against another's
            form = draw(st.sampled_from(["np.expand_dims({}, 0)", "{}[None]", "{}[:, None]"]))
            emit(form.format(X))
        else:
            partners = [Y for Y in names if _shape(f"np.tanh({X}) * {Y}", env) is not None]
            emit(f"np.tanh({X}) * {draw(st.sampled_from(partners))}")
    if not stacked:
        product()
    # every value made reaches the result: nothing is dead code for the optimizer to drop
    terms = [f"np.sum(np.sin({t}))" for t in made]
    name = f"stacked_{next(_count)}"
    text = "\n".join([f"def {name}({', '.join(NAMES)}):"] + [f"    {s}" for s in lines]
                     + [f"    return {' + '.join(terms)}"])
    return text, name, stacked


def inputs(seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.uniform(-1, 1, s) for s in ARGS.values())


def direction(seed):
    rng = np.random.default_rng(seed + 1_000_003)
    return [rng.uniform(-1, 1, s) for s in ARGS.values()]


def _copies(args):
    return [a.copy() for a in args]


def _run(program, seed, bound):
    """(text, function, its arguments, its value) of a drawn program, its value finite and
    below `bound`."""
    text, name, stacked = program
    assert stacked, text                # every program multiplies a stack of matrices
    for kind in stacked:
        event(kind)
    f = build(text, name)
    args = inputs(seed)
    value = f(*args)
    assume(np.isfinite(value) and abs(value) < bound)
    return text, f, args, value


@settings(max_examples=40, **COMMON)
@given(programs(), st.integers(0, 10_000))
def test_reverse_and_forward_agree_with_finite_differences(program, seed):
    text, f, args, value = _run(program, seed, 1e6)
    fd = reference(f, args)
    assume(fd is not None)
    g = s2sad.grad(f, argnums=tuple(range(len(args))), backend="python")(*_copies(args))
    for i, arg in enumerate(NAMES):
        assert np.shape(g[i]) == ARGS[arg], f"gradient in {arg} has shape {np.shape(g[i])}\n{text}"
        np.testing.assert_allclose(g[i], fd[i], rtol=1e-5, atol=1e-7,
                                   err_msg=f"gradient in {arg}, seed {seed}\n{text}")
    # forward mode: the directional derivative is the gradient's projection on the direction
    t = direction(seed)
    value_fwd, tangent = s2sad.jvp(f, _copies(args), t, backend="python")
    np.testing.assert_allclose(value_fwd, value, rtol=1e-12, err_msg=text)
    projected = sum(float(np.sum(gi * ti)) for gi, ti in zip(g, t))
    scale = sum(float(np.sum(np.abs(gi * ti))) for gi, ti in zip(g, t))
    assert abs(float(tangent) - projected) <= 1e-9 * scale + 1e-12, (
        f"jvp {float(tangent)!r} != grad . t {projected!r}, seed {seed}\n{text}")


def _gradient_differences(grad_f, args, d, eps):
    up = grad_f(*[a + eps * di for a, di in zip(args, d)])
    down = grad_f(*[a - eps * di for a, di in zip(args, d)])
    return [(u - v) / (2 * eps) for u, v in zip(up, down)]


@settings(max_examples=15, **COMMON)
@given(programs(), st.integers(0, 10_000))
def test_second_order_agrees_with_differences_of_the_gradient(program, seed):
    text, f, args, _ = _run(program, seed, 1e4)
    everything = tuple(range(len(args)))
    grad_f = s2sad.grad(f, argnums=everything, backend="python")
    d = direction(seed)
    fine = _gradient_differences(grad_f, args, d, 1e-5)
    coarse = _gradient_differences(grad_f, args, d, 2e-5)
    assume(all(np.allclose(a, b, rtol=1e-6, atol=1e-8) for a, b in zip(fine, coarse)))
    # forward over reverse, every argument moving: H d with the mixed second derivatives
    _, hvp = s2sad.jvp(grad_f, _copies(args), d, backend="python")
    for i, arg in enumerate(NAMES):
        np.testing.assert_allclose(hvp[i], fine[i], rtol=1e-6, atol=1e-8,
                                   err_msg=f"Hessian-vector product in {arg}, seed {seed}\n{text}")
    # the Hessian in one stack of matrices, contracted with that stack's part of the direction
    k = (0, 1, 3)[seed % 3]             # A, B or D
    H = s2sad.hessian(f, argnums=k, backend="python")(*_copies(args))
    shape = ARGS[NAMES[k]]
    assert np.shape(H) == shape * 2, text
    grad_k = s2sad.grad(f, argnums=k, backend="python")
    only = [di if i == k else np.zeros_like(di) for i, di in enumerate(d)]
    want = _gradient_differences(lambda *a: (grad_k(*a),), args, only, 1e-5)[0]
    np.testing.assert_allclose(np.tensordot(H, d[k], axes=len(shape)), want, rtol=1e-6, atol=1e-8,
                               err_msg=f"Hessian in {NAMES[k]}, seed {seed}\n{text}")
