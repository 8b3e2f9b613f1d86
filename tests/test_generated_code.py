"""Generated code is a product: it cites the user's lines in every mode and order, keeps the user's
names, holds no function nothing calls, and breaks no line that fits in 120 columns."""

import ast
import inspect

import numpy as np

import s2sad


def tanh_poly(x):
    y = x ** 3 - 2.0 * x
    return np.tanh(y + 0.5)


def logreg(w, X, y):
    z = X @ w
    return np.sum(np.log(1.0 + np.exp(-y * z)))


def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


RNG = np.random.default_rng(0)
CASES = [
    ("forward", s2sad.grad(tanh_poly, backend="python"), (0.3,)),
    ("forward over reverse", s2sad.grad(s2sad.grad(tanh_poly, backend="python")), (0.3,)),
    ("hessian", s2sad.hessian(logreg, backend="python"), (RNG.normal(size=3), RNG.normal(size=(5, 3)), np.ones(5))),
    ("jacfwd of a loop", s2sad.jacfwd(rosenbrock, backend="python"), (np.linspace(0.1, 1.0, 4),)),
    ("reverse", s2sad.grad(logreg, backend="python"), (RNG.normal(size=3), RNG.normal(size=(5, 3)), np.ones(5))),
]
SOURCE_LINES = inspect.getsource(inspect.getmodule(tanh_poly)).splitlines()


def generated(case):
    _, f, args = case
    f(*args)
    return s2sad.source(f)


def test_every_mode_and_order_cites_the_users_lines():
    for case in CASES:
        source = generated(case)
        cited = [line.strip()[2:] for line in source.splitlines() if line.strip().startswith("# line ")]
        assert cited, f"{case[0]}: no comment cites a line of the user's code\n{source}"
        for c in cited:
            number, text = c[len("line "):].split(": ", 1)
            assert SOURCE_LINES[int(number) - 1].strip() == text, f"{case[0]}: `{c}` is not this file's line"


def test_a_second_derivatives_module_holds_only_what_it_calls():
    for case in CASES[1:3]:
        tree = ast.parse(generated(case))
        defined = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]
        called = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        entry = defined[-1]
        assert all(name in called for name in defined if name != entry), (case[0], defined)


def test_wrappers_keep_the_users_parameter_names():
    source = generated(CASES[2])
    assert "def logreg_vjp_grad_jvp(w, X, y, w_dot):" in source
    assert "a0" not in source


def test_no_line_is_broken_that_fits_in_120_columns():
    for case in CASES:
        source = generated(case)
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.For, ast.If, ast.While)) \
                    and node.end_lineno > node.lineno:
                indent = len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())
                assert indent + len(ast.unparse(node)) > 120, f"{case[0]}: broken line {node.lineno}\n{source}"


def logs_in_a_loop(x, w):
    h = np.log(x)
    s = 0.0
    for i in range(3):
        h = np.tanh(h * w)
        s = s + np.sum(h)
    return s


def shifted_on_a_branch(x):
    a = np.log(x)
    b = a * 2.0
    if np.sum(x) > 0:
        b = b + 1.0
    return np.sum(b ** 2)


def test_no_dead_store_no_self_assignment_no_value_computed_for_its_shape():
    from fd import numerical_grad
    for f, args in ((logs_in_a_loop, (np.array([1.5, 2.0, 3.0]), 0.5)), (shifted_on_a_branch, (np.array([1.5, 2.0]),))):
        g = s2sad.grad(f, backend="python")
        np.testing.assert_allclose(g(*args), numerical_grad(f, args, 0), rtol=1e-6)
        body = s2sad.source(g).split("# reverse sweep")[-1]
        assert "np.zeros_like(h_bar)" not in body and "np.zeros_like(b_bar)" not in body  # resets never read
        assert "b_bar = b_bar\n" not in body
        if f is shifted_on_a_branch:
            assert "sum_adjoint(_out_bar, b, None)" in body   # b's shape, not b ** 2 computed again


def grows_in_a_loop(x, c):
    s = 0.0
    b = np.sin(x)
    for i in range(3):
        s = s + np.sum(b) * c
        b = b + c
        s = 2.0 - s
    return s


def test_an_update_by_a_number_passes_its_adjoint_through():
    """`b = b + c` with c a number: b's adjoint is the result's, c's is its sum; no copy, no reset."""
    from fd import numerical_grad
    args = (np.array([0.3, -1.2, 0.8]), 0.7)
    for backend in ("python", "numba"):
        got = s2sad.grad(grows_in_a_loop, argnums=(0, 1), backend=backend)(*args)
        for i in (0, 1):
            np.testing.assert_allclose(got[i], numerical_grad(grows_in_a_loop, args, i), rtol=1e-7)
    g = s2sad.grad(grows_in_a_loop, argnums=(0, 1), backend="python")
    g(*args)
    body = s2sad.source(g).split("# reverse sweep")[-1]
    assert "b_bar = b_bar\n" not in body and "np.zeros_like(b_bar" not in body
