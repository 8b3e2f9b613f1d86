"""The number s2sad returns belongs to the program Python runs: recursion loaded from the disk
cache, globals changed after the first call, files edited after import, decorated functions,
and cache files that are not what s2sad wrote."""

import functools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import s2sad


def run_script(tmp_path, source, env=None, name="script.py"):
    """Run `source` in a fresh Python process; returns (exit code, stdout, stderr)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **(env or {})}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=full,
                          cwd=str(tmp_path), timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


# ---- 1. recursion loaded from Numba's cache in a second process ---------------------------------

RECURSIVE = """
    import numpy as np
    import s2sad

    def p(x, n):  # x ** n, through a second function
        if n == 0:
            return 1.0
        return x * h(x, n)

    def h(x, n):
        return p(x, n - 1) + 0.0 * x

    def q(v, n):  # np.sum(v) ** (n + 1), calling itself
        return np.sum(v) if n == 0 else np.sum(v) * q(v, n - 1)

    print(repr(float(s2sad.grad(p)(1.5, 3))))
    print(repr(float(s2sad.grad(q)(np.array([0.5, 1.0]), 2)[0])))
"""


def test_recursive_gradient_from_the_disk_cache_in_a_second_process(tmp_path):
    env = {"S2SAD_CACHE_DIR": str(tmp_path / "cache"), "S2SAD_BACKEND": "numba"}
    results = []
    for _ in range(2):
        rc, out, err = run_script(tmp_path, RECURSIVE, env)
        assert rc == 0, (rc, err[-3000:])
        results.append([float(v) for v in out.split()])
    expected = [3 * 1.5 ** 2, 3 * 1.5 ** 2]  # d/dx x^3; d/dv0 (v0 + v1)^3 at v0 + v1 = 1.5
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---- 2. globals changed after the first call ----------------------------------------------------

W = np.array([0.6, 1.0])


def weighted(x):
    return np.sum(W * x)


def through_helper(x):
    return weighted(x) * 2.0


def weighted_scalar(s):
    return np.sum(W * s) * s


PAIR = (np.array([0.6, 1.0]), 2.0)


def through_tuple(x):
    return np.sum(PAIR[0] * x) * PAIR[1]


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_global_array_changed_in_place_after_the_first_call(cdir, backend):
    global W
    W = np.array([0.6, 1.0])
    x = np.array([1.0, 2.0])
    g, gh, gs = (s2sad.grad(f, backend=backend) for f in (weighted, through_helper, weighted_scalar))
    np.testing.assert_allclose(g(x), [0.6, 1.0])
    np.testing.assert_allclose(gh(x), [1.2, 2.0])
    np.testing.assert_allclose(gs(2.0), 2 * 2.0 * 1.6)  # d/ds sum(W) s^2
    W[0] = 6.0  # in place: the same array object
    np.testing.assert_allclose(g(x), [6.0, 1.0])
    np.testing.assert_allclose(gh(x), [12.0, 2.0])
    np.testing.assert_allclose(gs(2.0), 2 * 2.0 * 7.0)
    gt = s2sad.grad(through_tuple, backend=backend)
    np.testing.assert_allclose(gt(x), [1.2, 2.0])
    PAIR[0][0] = 6.0  # an array held by a global tuple, changed in place
    np.testing.assert_allclose(gt(x), [12.0, 2.0])
    PAIR[0][0] = 0.6
    W = np.array([3.0, 4.0])  # rebound
    np.testing.assert_allclose(g(x), [3.0, 4.0])
    np.testing.assert_allclose(gs(0.5), 2 * 0.5 * 7.0)


def _closure_over_array():
    A = np.array([0.6, 1.0])

    def f(x):
        return np.sum(A * x * x)
    return f, A


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_closure_array_changed_in_place(cdir, backend):
    f, A = _closure_over_array()
    g, x = s2sad.grad(f, backend=backend), np.array([1.0, 2.0])
    np.testing.assert_allclose(g(x), 2 * A * x)
    A[0] = 5.0
    np.testing.assert_allclose(g(x), [10.0, 4.0])


HELPERS = """
import numpy as np
scale = 2.0
V = np.array([1.0, 2.0])
def twice(x):
    return scale * x
"""

USER = """
import numpy as np
import {helpers}

def by_scale(x):
    return {helpers}.scale * x * x

def by_vector(x):
    return np.sum({helpers}.V * x)

def by_helper(x):
    return {helpers}.twice(x) * x
"""


def _modules(tmp_path, monkeypatch, tag):
    import importlib
    helpers, user = f"s2sad_test_helpers_{tag}", f"s2sad_test_user_{tag}"
    (tmp_path / f"{helpers}.py").write_text(HELPERS)
    (tmp_path / f"{user}.py").write_text(USER.format(helpers=helpers))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    importlib.invalidate_caches()
    return importlib.import_module(helpers), importlib.import_module(user)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_module_attribute_rebound_and_module_reloaded(cdir, tmp_path, monkeypatch, backend):
    import importlib
    helpers, user = _modules(tmp_path, monkeypatch, backend)
    x = np.array([1.0, 2.0])
    gs, gv, gh = (s2sad.grad(f, backend=backend) for f in (user.by_scale, user.by_vector, user.by_helper))
    assert gs(1.5) == pytest.approx(2 * 2.0 * 1.5)
    np.testing.assert_allclose(gv(x), [1.0, 2.0])
    assert gh(1.5) == pytest.approx(2 * 2.0 * 1.5)
    helpers.scale = 3.0
    helpers.V[1] = 7.0
    assert gs(1.5) == pytest.approx(2 * 3.0 * 1.5)
    np.testing.assert_allclose(gv(x), [1.0, 7.0])
    assert gh(1.5) == pytest.approx(2 * 3.0 * 1.5)
    path = tmp_path / f"{helpers.__name__}.py"
    path.write_text(HELPERS.replace("return scale * x", "return 5.0 * x  # edited") + "\n")
    importlib.reload(helpers)   # scale is 2.0 again, twice is 5x, V a new array
    assert gs(1.5) == pytest.approx(2 * 2.0 * 1.5)
    np.testing.assert_allclose(gv(x), [1.0, 2.0])
    assert gh(1.5) == pytest.approx(2 * 5.0 * 1.5)


GLOBAL_ARRAY_SCRIPT = """
    import os
    import numpy as np
    import s2sad
    W = np.array([float(os.environ["W0"]), 1.0])
    def f(x):
        return np.sum(W * x * x)
    print(repr(s2sad.grad(f)(np.array([1.0, 2.0])).tolist()))
"""


def test_global_array_values_in_a_second_process_come_from_that_process(tmp_path):
    cachedir = tmp_path / "cache"
    for w0 in ("0.5", "4.0"):
        rc, out, err = run_script(tmp_path, GLOBAL_ARRAY_SCRIPT, {"S2SAD_CACHE_DIR": str(cachedir), "W0": w0,
                                                                         "S2SAD_BACKEND": "numba"})
        assert rc == 0, err[-3000:]
        np.testing.assert_allclose(eval(out), [2 * float(w0) * 1.0, 2 * 1.0 * 2.0])
    assert len(list(cachedir.glob("s2sad_*.py"))) == 2  # the generated module and its Numba version, once


# ---- 3. a file edited after it was imported -------------------------------------------------------

EDITED = """
import numpy as np

def cube(x):
    return x * x * x

def calls_helper(x):
    return cube(x) + 1.0


class Model:
    def energy(self, x):
        return x * x * x


def quad(x):
    return x * x * x


lam = lambda x: x * x * x  # noqa: E731
"""


def _import_fresh(tmp_path, monkeypatch, name, text):
    import importlib
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_file_edited_after_import_is_refused_not_mixed(cdir, tmp_path, monkeypatch):
    import importlib
    mod = _import_fresh(tmp_path, monkeypatch, "s2sad_test_edited", EDITED)
    assert s2sad.value_and_grad(mod.quad)(2.0) == (8.0, pytest.approx(12.0))
    (tmp_path / "s2sad_test_edited.py").write_text(EDITED.replace("x * x * x", "x * x * x * x  # edited"))
    # Python still runs the old code objects; s2sad would read the new source
    assert mod.cube(2.0) == 8.0 and mod.quad(2.0) == 8.0
    # read before the edit: the code that runs, value and slope alike
    assert s2sad.value_and_grad(mod.quad)(2.0) == (8.0, pytest.approx(12.0))
    for f, line in ((mod.cube, 4), (mod.calls_helper, 4), (mod.Model().energy, 12)):
        fun = f.__func__ if hasattr(f, "__func__") else f
        with pytest.raises(s2sad.S2SADError) as err:
            s2sad.value_and_grad(fun, argnums=1 if fun is not f else 0)(*((None, 2.0) if fun is not f else (2.0,)))
        message = str(err.value)
        assert f"s2sad_test_edited.py:{line}:" in message and "not the code Python runs" in message
        assert "hint: reload the module" in message
    with pytest.raises(s2sad.S2SADError, match="s2sad_test_edited.py:20: the source of <lambda> .* not the code"):
        s2sad.grad(mod.lam)(2.0)
    importlib.reload(mod)  # now the file is the code: its derivative, checked by a central difference
    value, slope = s2sad.value_and_grad(mod.cube)(2.0)
    assert value == 16.0 and slope == pytest.approx((mod.cube(2.0 + 1e-6) - mod.cube(2.0 - 1e-6)) / 2e-6)


def test_source_check_accepts_the_code_it_runs():
    """The comparison rebuilds each function's context: closures, methods (super(), name mangling),
    __future__ flags, module-level imports, indented defs: no false refusals."""
    import collections
    import fractions
    import json
    import inspect
    from s2sad import frontend
    checked = 0
    for module in (json.decoder, fractions, collections, inspect, frontend):
        for fn in _functions_of(module):
            try:
                lines, _ = inspect.getsourcelines(fn.__code__)
            except (OSError, TypeError):
                continue
            frontend.check_source_runs(fn, "".join(lines), fn.__code__.co_filename, 1)
            checked += 1
    assert checked > 150


def _functions_of(module):
    import inspect
    seen, todo = set(), list(vars(module).values())
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and obj.__name__ != "<lambda>":
            yield obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            todo.extend(vars(obj).values())
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend(f for f in (obj.fget, obj.fset) if f is not None)


# ---- 4. decorated functions ----------------------------------------------------------------------

def times10(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return 10.0 * func(*args, **kwargs)
    return wrapper


def times10_named(func):
    @functools.wraps(func)
    def wrapper(x, y):
        return 10.0 * func(x, y)
    return wrapper


def counted(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        wrapper.calls = len(args)
        return func(*args, **kwargs)
    return wrapper


@times10
def decorated(x, y):
    return x * x * y


@times10_named
def decorated_named(x, y):
    return x * x * y


@times10
def decorated_helper(x, y):
    return x * y


def calls_decorated(x, y):
    return decorated_helper(x, y) + x


@counted
def uses_args(x, y):
    return x * y


def _central(f, x, y, h=1e-6):
    return (f(x + h, y) - f(x - h, y)) / (2 * h)


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("f", [decorated, decorated_named, calls_decorated], ids=lambda f: f.__name__)
def test_decorated_function_is_differentiated_as_it_runs(cdir, f, backend):
    x, y = 1.5, 2.0
    value, slope = s2sad.value_and_grad(f, backend=backend)(x, y)
    assert value == pytest.approx(f(x, y))
    assert slope == pytest.approx(_central(f, x, y), rel=1e-7)  # 10 * 2xy = 60.0 for decorated
    v = np.array([1.5, 0.5])
    grad = s2sad.grad(lambda v: f(v[0], v[1]) * 1.0, backend=backend)(v)
    np.testing.assert_allclose(grad, [_central(f, 1.5, 0.5), _central(lambda y, x: f(x, y), 0.5, 1.5)], rtol=1e-7)


def test_decorator_that_uses_its_arguments_is_refused_by_name(cdir):
    with pytest.raises(s2sad.S2SADError) as err:
        s2sad.grad(uses_args)(1.0, 2.0)
    message = str(err.value)
    assert "decorated by counted" in message and "test_stale_code.py:" in message and "hint:" in message
    with pytest.raises(s2sad.S2SADError, match="decorated by counted"):
        s2sad.grad(lambda x: uses_args(x, 2.0))(1.0)


def test_s2sads_own_decorators_keep_working(cdir):
    @s2sad.custom_vjp
    def clip_grad(x):
        return x * x

    def fwd(x):
        return x * x, x

    def bwd(x, g):
        return (g * 0.5,)

    clip_grad.defvjp(fwd, bwd)

    @times10
    def wraps_custom(x):
        return clip_grad(x)

    assert s2sad.grad(clip_grad)(3.0) == pytest.approx(0.5)        # the rule, not 2x
    assert s2sad.grad(wraps_custom)(3.0) == pytest.approx(5.0)
    assert s2sad.grad(s2sad.grad(lambda x: x * x * x))(2.0) == pytest.approx(12.0)


# a custom rule is compiled by Numba as the user wrote it: an array it reads from outside would be
# compiled in, so it runs as Python (strict: refused), never with the old values
V = np.array([0.6, 1.0])


@s2sad.custom_vjp
def weighted_by_v(x):
    return np.sum(V * x)


def _weighted_fwd(x):
    return np.sum(V * x), x


def _weighted_bwd(x, g):
    return (g * V,)


weighted_by_v.defvjp(_weighted_fwd, _weighted_bwd)


def uses_custom(x):
    return weighted_by_v(x) * 2.0


def test_custom_rule_reading_a_global_array_is_not_frozen(cdir, monkeypatch):
    x = np.array([1.0, 2.0])
    monkeypatch.setenv("S2SAD_BACKEND", "numba")
    monkeypatch.setitem(globals(), "V", np.array([0.6, 1.0]))
    g = s2sad.grad(uses_custom)
    with pytest.warns(RuntimeWarning, match="reads the array V"):
        np.testing.assert_allclose(g(x), 2 * V)
    V[0] = 6.0
    np.testing.assert_allclose(g(x), [12.0, 2.0])
    with pytest.raises(s2sad.S2SADError, match="reads the array V"):
        s2sad.grad(uses_custom, backend="numba")(x)
