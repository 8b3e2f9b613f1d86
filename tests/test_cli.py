"""The `s2sad` command line, through real subprocesses (`python -m s2sad ...`).

Emitted modules are run in a second subprocess in isolated mode (`-I`), from
a temporary directory, with no PYTHONPATH: s2sad cannot be imported there,
so they must carry everything they need.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER = textwrap.dedent("""\
    import numpy as np

    SCALE = 2.0


    def f(x, y):
        s = 0.0
        for i in range(3):
            if x > 0:
                s = s + np.sin(x * y) * SCALE
            else:
                s = s - x * x * y
        return s


    def loss(w, xs):
        total = 0.0
        for i in range(xs.shape[0]):
            r = w[0] * xs[i] + w[1]
            if r > 0:
                total = total + r * r
            else:
                total = total + 0.5 * r
        return total


    def step(x):
        if x > 1.0:
            return x + 10.0
        return x


    def gen(x):
        for i in range(3):
            yield x * i


    def rnn(W, xs):
        h = np.zeros(W.shape[0])
        for t in range(xs.shape[0]):
            h = np.tanh(W @ h + xs[t]) * (1.0 / (1.0 + np.exp(-xs[t])))
        return np.sum(h)


    def spread(X):
        spread = np.sum(np.sum(X * X, axis=0) * np.sum(np.tanh(X), axis=1)[0])
        return spread + np.sum(np.max(X, axis=1) * np.mean(X, axis=1)) + np.sum(np.prod(X, axis=0))


    def scaled_dot(A):
        return np.sum(np.dot(2.0, A))


    def chain(x):
        s = 0.5
        for i in range(x.shape[0]):
            s = np.sin(s) * x[i] + 0.5
        return s
""")


def f_ref(x, y):
    import math
    return sum(math.sin(x * y) * 2.0 if x > 0 else -x * x * y for _ in range(3))


@pytest.fixture
def user(tmp_path):
    path = tmp_path / "user_fns.py"
    path.write_text(USER)
    return path


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def s2sad(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("S2SAD_TRACEBACK", None)
    return _run([sys.executable, "-m", "s2sad", *map(str, args)], env=env, cwd=cwd, timeout=300)


# s2sad may be installed in the interpreter's site-packages (CI installs it): an import hook
# makes it unimportable, as on a machine without s2sad, while NumPy and Numba stay available
NO_S2SAD = textwrap.dedent("""\
    import sys
    class _NoS2SAD:
        def find_spec(self, name, path=None, target=None):
            if name == "s2sad" or name.startswith("s2sad."):
                raise ModuleNotFoundError("No module named 's2sad'")
            return None
    sys.meta_path.insert(0, _NoS2SAD())
    """)


def run_isolated(code, cwd):
    """Run `code` with `python -I` from `cwd` where s2sad cannot be imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return _run([sys.executable, "-I", "-c", NO_S2SAD + code], env=env, cwd=cwd, timeout=300)


def emit(user, tmp_path, *options, name="out.py"):
    out = tmp_path / "emitted" / name
    out.parent.mkdir(exist_ok=True)
    r = s2sad("emit", f"{user}:{options[0]}", *options[1:], "-o", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return out


def assert_emitted_runs(code, out, tmp_path):
    """`code` (which runs the emitted module `out`) succeeds where s2sad cannot be imported, and
    the module is lint-clean."""
    r = run_isolated(code, cwd=tmp_path / "emitted")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_lint_clean(out)


def assert_lint_clean(path):
    r = _run([sys.executable, "-m", "py_compile", str(path)])
    assert r.returncode == 0, r.stderr
    ruff = shutil.which("ruff")
    if ruff is None:
        try:
            import ruff as _ruff  # noqa: F401
            ruff_cmd = [sys.executable, "-m", "ruff"]
        except ImportError:
            return  # ruff not installed: only the py_compile part
    else:
        ruff_cmd = [ruff]
    r = _run(ruff_cmd + ["check", "--no-cache", str(path)], cwd=path.parent)
    assert r.returncode == 0, r.stdout + r.stderr


CHECK = textwrap.dedent("""\
    import math, runpy, sys
    try:
        import s2sad  # noqa
        print("S2SAD IMPORTABLE"); sys.exit(3)
    except ImportError:
        pass
    ns = runpy.run_path({path!r})
    f = lambda x, y: sum(math.sin(x * y) * 2.0 if x > 0 else -x * x * y for _ in range(3))
    x, y = {x!r}, 1.3
    e = 1e-6
    fd = (f(x + e, y) - f(x - e, y)) / (2 * e)
    {body}
""")


@pytest.mark.parametrize("x", [0.7, -0.4])   # both branches of the `if`
def test_emit_reverse_runs_without_s2sad(user, tmp_path, x):
    out = emit(user, tmp_path, "f", "--wrt", "x", "--mode", "reverse")
    text = out.read_text()
    assert text.startswith("# Generated by s2sad")
    assert "s2sad 0." in text.splitlines()[0]
    assert "reverse" in text and "with respect to: x" in text
    assert not re.search(r"^\s*(import s2sad|from s2sad)", text, re.MULTILINE)
    assert "def grad_f(x, y):" in text and "class Tape" in text and "def push(" in text
    body = "g = ns['grad_f'](x, y)\nassert abs(g - fd) < 1e-5, (g, fd)\nprint('OK', g)"
    r = run_isolated(CHECK.format(path=str(out), x=x, body=body), cwd=tmp_path / "emitted")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout
    assert_lint_clean(out)


def test_emit_reverse_two_arguments(user, tmp_path):
    out = emit(user, tmp_path, "f", "--argnums", "0,1")
    body = textwrap.dedent("""\
        gx, gy = ns['grad_f'](x, y)
        fdy = (f(x, y + e) - f(x, y - e)) / (2 * e)
        assert abs(gx - fd) < 1e-5 and abs(gy - fdy) < 1e-5, (gx, gy, fd, fdy)
        print('OK')""")
    r = run_isolated(CHECK.format(path=str(out), x=0.7, body=body), cwd=tmp_path / "emitted")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("x", [0.7, -0.4])
def test_emit_forward_runs_without_s2sad(user, tmp_path, x):
    out = emit(user, tmp_path, "f", "--wrt", "x", "--mode", "forward")
    text = out.read_text()
    assert "forward" in text and "def jvp_f(x, y, x_dot):" in text
    body = "v, t = ns['jvp_f'](x, y, 1.0)\nassert abs(t - fd) < 1e-5 and abs(v - f(x, y)) < 1e-12\nprint('OK')"
    assert_emitted_runs(CHECK.format(path=str(out), x=x, body=body), out, tmp_path)


def test_emit_array_signature(user, tmp_path):
    out = emit(user, tmp_path, "loss", "--signature", "w: float64[:], xs: float64[:]")
    code = textwrap.dedent(f"""\
        import runpy
        import numpy as np
        ns = runpy.run_path({str(out)!r})
        def loss(w, xs):
            r = w[0] * xs + w[1]
            return float(np.sum(np.where(r > 0, r * r, 0.5 * r)))
        w, xs = np.array([0.8, -0.3]), np.array([1.0, -2.0, 0.1, 3.0])
        g = ns['grad_loss'](w, xs)
        e = 1e-6
        fd = [(loss(w + e * d, xs) - loss(w - e * d, xs)) / (2 * e) for d in np.eye(2)]
        assert np.allclose(g, fd, atol=1e-5), (g, fd)
        print('OK')
    """)
    assert_emitted_runs(code, out, tmp_path)


@pytest.mark.parametrize("x", [0.7, -0.4])
def test_emit_order_2(user, tmp_path, x):
    out = emit(user, tmp_path, "f", "--wrt", "x", "--order", "2")
    text = out.read_text()
    assert "order 2" in text and "def d2_f(x, y):" in text
    body = ("e = 1e-4\nfd2 = (f(x + e, y) - 2 * f(x, y) + f(x - e, y)) / e ** 2\n"
            "h = ns['d2_f'](x, y)\nassert abs(h - fd2) < 1e-4, (h, fd2)\nprint('OK', h)")
    assert_emitted_runs(CHECK.format(path=str(out), x=x, body=body), out, tmp_path)


def test_order_2_needs_a_scalar(user, tmp_path):
    r = s2sad("emit", f"{user}:loss", "--order", "2", "--signature", "w: float64[:], xs: float64[:]")
    assert r.returncode == 2
    assert "scalar" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_emit_numba(user, tmp_path):
    pytest.importorskip("numba")
    out = emit(user, tmp_path, "f", "--wrt", "x", "--numba")
    text = out.read_text()
    assert "@numba.njit\ndef f_vjp(" in text and "@numba.njit\ndef grad_f(" in text
    assert "jitclass" in text
    body = ("g = ns['grad_f'](x, y)\nassert abs(g - fd) < 1e-5, (g, fd)\n"
            "assert ns['grad_f'].signatures, 'not compiled'\nprint('OK')")
    assert_emitted_runs(CHECK.format(path=str(out), x=0.7, body=body), out, tmp_path)


@pytest.mark.slow
def test_emit_numba_of_reductions_along_an_axis(user, tmp_path):
    # the Numba version of sum_adjoint(g, x, axis) calls split_shape, which numba_backend imports
    # from numba_reductions: it travels with the module too; so do the overloads that give
    # np.max, np.mean and np.prod an integer axis under Numba (it has np.sum's alone)
    pytest.importorskip("numba")
    out = emit(user, tmp_path, "spread", "--numba", "--signature", "X: float64[:, :]")
    assert "overload_along_axis([\"max\", \"mean\", \"prod\"])" in out.read_text()
    code = textwrap.dedent(f"""\
        import runpy
        import numpy as np
        ns = runpy.run_path({str(out)!r})
        def spread(X):
            spread = np.sum(np.sum(X * X, axis=0) * np.sum(np.tanh(X), axis=1)[0])
            return spread + np.sum(np.max(X, axis=1) * np.mean(X, axis=1)) + np.sum(np.prod(X, axis=0))
        X = np.random.default_rng(0).standard_normal((4, 3))
        e = 1e-6
        fd = np.array([(spread(X + e * d.reshape(4, 3)) - spread(X - e * d.reshape(4, 3))) / (2 * e)
                       for d in np.eye(12)]).reshape(4, 3)
        g = ns['grad_spread'](X)
        assert np.allclose(g, fd, atol=1e-6), (g, fd)
        assert ns['grad_spread'].signatures, 'not compiled'
        print('OK')
    """)
    assert_emitted_runs(code, out, tmp_path)


@pytest.mark.slow
def test_emit_numba_of_a_weight_used_in_a_loop(user, tmp_path):
    # W's adjoint is stashed each trip and added after the loop (later_dot_adjoint_x, add_outer_rows:
    # their Numba versions flush the stash through add_outer_rows), and the gate is a sigmoid
    # (logistic): their Numba versions and the helpers they use need to travel with the module
    pytest.importorskip("numba")
    out = emit(user, tmp_path, "rnn", "--numba", "--wrt", "W", "--signature", "W: float64[:, :], xs: float64[:, :]")
    assert "later_dot_adjoint_x(W_bar_rows, W_bar" in out.read_text() and "logistic(" in out.read_text()
    code = textwrap.dedent(f"""\
        import runpy
        import numpy as np
        ns = runpy.run_path({str(out)!r})
        def rnn(W, xs):
            h = np.zeros(W.shape[0])
            for t in range(xs.shape[0]):
                h = np.tanh(W @ h + xs[t]) * (1.0 / (1.0 + np.exp(-xs[t])))
            return np.sum(h)
        rng = np.random.default_rng(0)
        W, xs = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((5, 3))
        g = ns['grad_rnn'](W, xs)
        e = 1e-6
        fd = np.array([(rnn(W + e * d.reshape(3, 3), xs) - rnn(W - e * d.reshape(3, 3), xs)) / (2 * e)
                       for d in np.eye(9)]).reshape(3, 3)
        assert np.allclose(g, fd, atol=1e-6), (g, fd)
        assert ns['grad_rnn'].signatures, 'not compiled'
        print('OK')
    """)
    assert_emitted_runs(code, out, tmp_path)


@pytest.mark.slow
def test_emit_numba_of_a_long_tape_run_as_a_script(user, tmp_path):
    # a tape past 1 MiB grows differently inside s2sad (from a pool of buffers, through Numba's
    # object mode, which finds its globals by importing the module: runpy's is gone by then, and
    # the emitted gradient raised NameError); the emitted module grows it afresh
    pytest.importorskip("numba")
    out = emit(user, tmp_path, "chain", "--numba", "--signature", "x: float64[:]")
    code = textwrap.dedent(f"""\
        import runpy
        import numpy as np
        ns = runpy.run_path({str(out)!r})
        x = np.random.default_rng(0).uniform(0.5, 1.0, 300_000)   # 2.4 MB of taped s
        s = np.empty(x.size + 1)
        s[0] = 0.5
        for i in range(x.size):
            s[i + 1] = np.sin(s[i]) * x[i] + 0.5
        ref, s_bar = np.empty(x.size), 1.0        # the adjoint, by hand
        for i in range(x.size - 1, -1, -1):
            ref[i] = s_bar * np.sin(s[i])
            s_bar = s_bar * np.cos(s[i]) * x[i]
        g = ns['grad_chain'](x)
        assert np.allclose(g, ref, rtol=1e-12, atol=1e-300), np.max(np.abs(g - ref))
        print('OK')
    """)
    assert_emitted_runs(code, out, tmp_path)


@pytest.mark.slow
def test_emit_numba_says_when_numba_cannot_compile_the_module(user, tmp_path):
    # an emitted module has no fallback to Python: emit compiles it for the signature and says so
    # (np.dot of a number and an array, which Numba's np.dot does not take)
    pytest.importorskip("numba")
    out = tmp_path / "emitted" / "scaled.py"
    out.parent.mkdir()
    r = s2sad("emit", f"{user}:scaled_dot", "--numba", "--signature", "A: float64[:, :]", "-o", out)
    assert r.returncode == 0 and out.exists(), r.stderr
    assert "warning: Numba cannot compile the emitted grad_scaled_dot for these argument types" in r.stderr
    assert "emit without --numba" in r.stderr and "dot" in r.stderr
    r = s2sad("emit", f"{user}:chain", "--numba", "--signature", "x: float64[:]", "-o", tmp_path / "chain.py")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_emit_to_stdout(user):
    r = s2sad("emit", f"{user}:f")
    assert r.returncode == 0, r.stderr
    assert "def grad_f(x, y):" in r.stdout


def test_show_plain_when_piped(user):
    r = s2sad("show", f"{user}:f")
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    assert "def f_vjp(x, y, _out_bar):" in r.stdout
    r = s2sad("show", f"{user}:f", "--color", "always")
    assert r.returncode == 0 and "\x1b[" in r.stdout


def test_show_stages(user):
    r = s2sad("show", f"{user}:f", "--stage", "normalized")
    assert r.returncode == 0, r.stderr
    assert "def f(x, y):" in r.stdout and "_t1" in r.stdout and "_vjp" not in r.stdout
    r = s2sad("show", f"{user}:f", "--stage", "tangent")
    assert r.returncode == 0, r.stderr
    assert "def f_jvp(x, y, x_dot):" in r.stdout
    r = s2sad("show", f"{user}:f", "--stage", "adjoint")
    assert "def f_vjp(" in r.stdout


def test_check_passes(user):
    r = s2sad("check", f"{user}:loss", "--args", "[0.8, -0.3], [1, -2, 0.1, 3]", "--argnums", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "finite difference" in r.stdout and "abs error" in r.stdout
    assert r.stdout.count("ok") >= 2 and "MISMATCH" not in r.stdout
    r = s2sad("check", f"{user}:f", "--args", "0.7, 1.3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\nx " in r.stdout and "\ny " in r.stdout


def test_check_mismatch_exits_1(user):
    # a jump at x = 1: finite differences see it, the derivative does not
    r = s2sad("check", f"{user}:step", "--args", "1.0")
    assert r.returncode == 1
    assert "MISMATCH" in r.stdout and "differ" in r.stderr and "Traceback" not in r.stderr


def test_check_missing_function(user):
    r = s2sad("check", f"{user}:nope", "--args", "1.0")
    assert r.returncode == 1
    assert "nope" in r.stderr and f"{user}:" in r.stderr and "Traceback" not in r.stderr


def test_cache_info_and_clear(tmp_path):
    cache = tmp_path / "cache"
    (cache / "__pycache__").mkdir(parents=True)
    (cache / "s2sad_0123abcd.py").write_text("x = 1\n")
    (cache / "__pycache__" / "s2sad_0123abcd.nbi").write_text("y = 2\n")
    (cache / "notes.txt").write_text("not s2sad's\n")
    env = dict(os.environ, S2SAD_CACHE_DIR=str(cache), PYTHONPATH=REPO)
    r = _run([sys.executable, "-m", "s2sad", "cache", "info"], env=env)
    assert r.returncode == 0, r.stderr
    assert str(cache) in r.stdout and "files: 2" in r.stdout
    r = _run([sys.executable, "-m", "s2sad", "cache", "clear"], env=env)
    assert r.returncode == 0, r.stderr
    assert not (cache / "s2sad_0123abcd.py").exists()
    assert not (cache / "__pycache__" / "s2sad_0123abcd.nbi").exists()
    assert (cache / "notes.txt").exists()  # only s2sad's files go
    r = _run([sys.executable, "-m", "s2sad", "cache", "info"], env=env)
    assert "files: 0" in r.stdout


# ---- errors: one message on stderr with file:line, no traceback ---------------------------------
def assert_clean_error(r, *needles, code=None):
    assert r.returncode != 0
    if code is not None:
        assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert r.stderr.startswith("s2sad: error:") or "s2sad: error:" in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_error_missing_file(tmp_path):
    r = s2sad("emit", f"{tmp_path / 'nope.py'}:f")
    assert_clean_error(r, "nope.py", "no such file", code=1)


def test_error_missing_function(user):
    r = s2sad("emit", f"{user}:missing")
    assert_clean_error(r, f"{user}:1", "missing", "step", code=1)


def test_error_syntax(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\n\ndef f(x):\n    return x +\n")
    r = s2sad("emit", f"{path}:f")
    assert_clean_error(r, f"{path}:5", "syntax error", code=1)


def test_error_unsupported_construct(user):
    r = s2sad("emit", f"{user}:gen")
    lineno = USER.splitlines().index("        yield x * i") + 1
    assert_clean_error(r, f"{user}:{lineno}", "cannot differentiate", code=1)


def test_error_usage(user):
    assert_clean_error(s2sad("emit", str(user)), "path/to/file.py:function", code=2)
    assert_clean_error(s2sad("emit", f"{user}:f", "--wrt", "z"), "--wrt", code=2)
    assert_clean_error(s2sad("emit", f"{user}:f", "--signature", "x: foo, y: float"), "unknown type", code=2)
    assert_clean_error(s2sad("frobnicate"), code=2)


def test_isolated_environment_cannot_import_s2sad(tmp_path):
    r = run_isolated("import s2sad", cwd=tmp_path)
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr


# ---- -o: never over an input file, a clear error for a missing or wrong place, atomic writes ----------
def test_emit_refuses_to_write_over_its_input_file(user, tmp_path):
    before = user.read_text()
    r = s2sad("emit", f"{user}:f", "-o", user)
    assert_clean_error(r, "-o", str(user), "input file", "hint:", code=2)
    assert user.read_text() == before
    link = tmp_path / "link.py"          # the same file under another name
    link.symlink_to(user)
    r = s2sad("emit", f"{user}:f", "-o", link)
    assert_clean_error(r, "input file", code=2)
    assert user.read_text() == before and link.is_symlink()


def test_emit_refuses_to_write_over_a_module_the_target_imports(tmp_path):
    (tmp_path / "helpers.py").write_text("import numpy as np\n\n\ndef sq(x):\n    return np.sin(x) * x\n")
    (tmp_path / "model.py").write_text("from helpers import sq\n\n\ndef f(x):\n    return sq(x) + x\n")
    (tmp_path / "consts.py").write_text("SCALE = 2.0\n")
    (tmp_path / "model2.py").write_text("from consts import SCALE\n\n\ndef f(x):\n    return SCALE * x\n")
    for model, neighbour in (("model.py", "helpers.py"), ("model2.py", "consts.py")):
        before = (tmp_path / neighbour).read_text()
        r = s2sad("emit", f"{tmp_path / model}:f", "-o", tmp_path / neighbour)
        assert_clean_error(r, neighbour, "input file", code=2)
        assert (tmp_path / neighbour).read_text() == before


def test_emit_into_a_missing_folder_or_a_folder(user, tmp_path):
    r = s2sad("emit", f"{user}:f", "-o", tmp_path / "no" / "such" / "out.py")
    assert_clean_error(r, "-o", "does not exist", "mkdir -p", code=2)
    assert not (tmp_path / "no").exists()
    r = s2sad("emit", f"{user}:f", "-o", tmp_path)
    assert_clean_error(r, "-o", "is a directory", "grad_f.py", code=2)
    r = s2sad("emit", f"{user}:f", "-o", user / "out.py")
    assert_clean_error(r, "-o", "is a file, not a folder", code=2)


def test_emit_writes_atomically_and_keeps_the_permissions(user, tmp_path):
    out = tmp_path / "out" / "grad.py"
    out.parent.mkdir()
    out.write_text("# an older version\n")
    out.chmod(0o640)
    with open(out) as reader:    # a reader of the old file reads all of it: the new one is another file
        r = s2sad("emit", f"{user}:f", "-o", out)
        assert reader.read() == "# an older version\n"
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("# Generated by s2sad") and (out.stat().st_mode & 0o777) == 0o640
    assert os.listdir(out.parent) == ["grad.py"]          # no temporary file left behind
    r = s2sad("emit", f"{user}:gen", "-o", out)            # a failed emit leaves the file as it was
    assert r.returncode == 1 and out.read_text().startswith("# Generated by s2sad")
    assert os.listdir(out.parent) == ["grad.py"]


# ---- check's numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["--eps=0", "--eps=-1e-6", "--eps=nan", "--atol=-1", "--rtol=inf"])
def test_check_rejects_a_step_or_tolerance_out_of_range(user, option):
    r = s2sad("check", f"{user}:f", "--args", "0.7, 1.3", option)
    assert_clean_error(r, option.split("=")[0], "finite number", code=2)


def test_check_says_how_to_write_a_negative_value(user):
    r = s2sad("check", f"{user}:f", "--args", "0.7, 1.3", "--eps", "-1e-6")
    assert_clean_error(r, "--eps", "--eps=-", code=2)


def test_check_where_the_derivative_is_undefined(tmp_path):
    path = tmp_path / "root.py"
    path.write_text("import math\n\n\ndef f(x):\n    return math.sqrt(x)\n")
    r = s2sad("check", f"{path}:f", "--args", "0.0")
    # the derivative at 0 is inf (as NumPy divides); the difference quotient steps outside the domain
    assert_clean_error(r, f"{path}:5", "math domain error", "hint:", code=1)


# ---- a target file that exits or raises while it is imported ---------------------------------------
def test_error_target_calls_sys_exit_at_import(tmp_path):
    path = tmp_path / "script.py"
    path.write_text("import sys\n\n\ndef f(x):\n    return x * x\n\n\nsys.exit(3)\n")
    for command in (["emit", f"{path}:f"], ["show", f"{path}:f"], ["check", f"{path}:f", "--args", "1.0"]):
        r = s2sad(*command)
        assert_clean_error(r, f"{path}:8", "sys.exit(3)", "__main__", code=1)


@pytest.mark.parametrize("statement, error", [("raise ValueError('no data')", "ValueError: no data"),
                                              ("import no_such_module_s2sad", "ModuleNotFoundError"),
                                              ("assert False, 'bad config'", "AssertionError: bad config")])
def test_error_target_raises_at_import(tmp_path, statement, error):
    path = tmp_path / "model.py"
    path.write_text(f"import numpy as np\n\n\ndef f(x):\n    return x * x\n\n\n{statement}\n")
    r = s2sad("emit", f"{path}:f")
    assert_clean_error(r, f"{path}:8", "model.py", error, "hint:", code=1)


def test_what_the_target_prints_at_import_stays_out_of_the_emitted_module(tmp_path):
    path = tmp_path / "noisy.py"
    path.write_text("print('loading the model')\n\n\ndef f(x):\n    return x * x\n")
    r = s2sad("emit", f"{path}:f")
    assert r.returncode == 0, r.stderr
    assert "loading the model" in r.stderr and r.stdout.startswith("# Generated by s2sad")


# ---- every emit option: the emitted module, run on its own, against s2sad in-process and against
# central differences (or a closed form) -------------------------------------------------------------
MODEL = textwrap.dedent("""\
    import numpy as np

    SCALE = 0.5
    push = 0.25                  # a global named like one of s2sad's runtime helpers


    def logistic(z):             # named like s2sad's runtime logistic, which is 1 / (1 + exp(-z))
        return 2 / (1 + np.exp(-z))


    def unbroadcast(v):          # named like another, which takes two arguments
        return v * 3.0


    def poly(x, n: int):         # a loop whose adjoint needs the tape
        s = 1.0
        for i in range(n):
            s = s * x
        return s


    def settle(x):               # a while loop
        s = x
        while s < 10.0:
            s = s * 2.0 + x * SCALE
        return s


    def both(x, y):
        return np.sin(x * y) + poly(x, 3) * y


    def gate(x):                 # the user's logistic and unbroadcast next to the runtime's logistic
        s = logistic(x) ** 2 + 1.0 / (1.0 + np.exp(-x))
        for i in range(3):
            s = s * push + unbroadcast(x) * x
        return s


    def types(v):                # named like numba.types, which an emitted --numba module imports
        return v * 2.0


    def sys(v):                  # and like a module the runtime helpers import
        return v + 1.0


    def modules(x):
        return types(x) * sys(x) + unbroadcast(x)


    def layers(W, b, X):
        h = X
        for k in range(2):
            h = np.tanh(h @ W + b)
        return np.sum(logistic(h) ** 2) + np.sum(1.0 / (1.0 + np.exp(-h)) * h) + push * np.sum(unbroadcast(W) * W)
""")

_rng = np.random.default_rng(7)
ARRAYS = {"W": _rng.standard_normal((3, 3)) * 0.5, "b": _rng.standard_normal(3) * 0.5,
          "X": _rng.standard_normal((4, 3))}
LAYERS_SIG = ["--signature", "W: float64[:, :], b: float64[:], X: float64[:, :]"]
# closed forms of the higher derivatives: x**4 at 1.3; sin(x y) + x**3 y in x at (0.7, -1.2)
CLOSED_FORM = {("poly", 2): 4 * 3 * 1.3 ** 2, ("poly", 3): 4 * 3 * 2 * 1.3,
               ("both", 2): -1.2 ** 2 * np.sin(0.7 * -1.2) + 6 * 0.7 * -1.2}

# id: (function, options, arguments, tangents (forward mode), entry point)
EMIT_CASES = {
    "reverse-for-loop": ("poly", ["--signature", "x: float, n: int"], (1.3, 4), None, "grad_poly"),
    "reverse-while-loop": ("settle", [], (1.5,), None, "grad_settle"),
    "reverse-argnums": ("both", ["--argnums", "0,1"], (0.7, -1.2), None, "grad_both"),
    "reverse-wrt": ("both", ["--wrt", "y"], (0.7, -1.2), None, "grad_both"),
    "reverse-name-clash": ("gate", [], (0.4,), None, "grad_gate"),
    "reverse-module-names": ("modules", [], (1.5,), None, "grad_modules"),
    "reverse-arrays": ("layers", ["--wrt", "W,b"] + LAYERS_SIG, ("W", "b", "X"), None, "grad_layers"),
    "forward-for-loop": ("poly", ["--mode", "forward", "--signature", "x: float, n: int"], (1.3, 4), (1.0,),
                         "jvp_poly"),
    "forward-while-loop": ("settle", ["--mode", "forward"], (1.5,), (1.0,), "jvp_settle"),
    "forward-wrt": ("both", ["--mode", "forward", "--wrt", "y"], (0.7, -1.2), (1.0,), "jvp_both"),
    "forward-name-clash": ("gate", ["--mode", "forward"], (0.4,), (1.0,), "jvp_gate"),
    "forward-arrays": ("layers", ["--mode", "forward", "--wrt", "W"] + LAYERS_SIG, ("W", "b", "X"), ("dW",),
                       "jvp_layers"),
    "order-2-name-clash": ("gate", ["--order", "2"], (0.4,), None, "d2_gate"),
    "order-3-for-loop": ("poly", ["--order", "3", "--signature", "x: float, n: int"], (1.3, 4), None, "d3_poly"),
    "order-2-forward": ("both", ["--order", "2", "--mode", "forward", "--wrt", "x"], (0.7, -1.2), None, "d2_both"),
}
NUMBA_CASES = {
    # (a scalar case: Numba compiles `layers`' gradient in about 15 s, twice; test_emit_numba_of_a_weight_
    # used_in_a_loop compiles one of arrays in a loop)
    "numba-reverse-name-clash": ("gate", ["--numba"], (0.4,), None, "grad_gate"),
    "numba-forward-for-loop": ("poly", ["--numba", "--mode", "forward", "--signature", "x: float, n: int"],
                               (1.3, 4), (1.0,), "jvp_poly"),
}
ARRAYS["dW"] = _rng.standard_normal((3, 3))

RUN_ALL = textwrap.dedent("""\
    import json, runpy, sys
    import numpy as np
    cases = json.loads(sys.argv[1])
    out = {}
    def plain(v):
        if isinstance(v, tuple):
            return [plain(u) for u in v]
        return np.asarray(v, dtype=float).tolist()
    for name, (path, entry, args) in cases.items():
        args = [np.array(a["array"]) if isinstance(a, dict) else a for a in args]
        try:
            fn = runpy.run_path(path)[entry]
            out[name] = [plain(fn(*args)), bool(getattr(fn, "signatures", None))]
        except Exception as exc:  # noqa: BLE001 - reported by the case's test
            out[name] = ["error", f"{type(exc).__name__}: {exc}"]
    print("RESULTS " + json.dumps(out))
""")


def _values(items):
    return tuple(ARRAYS[a] if isinstance(a, str) else a for a in items)


def _emit_all(cases, folder):
    """Emit every case with the real CLI, then run all the emitted modules in one isolated process."""
    model = folder / "model.py"
    model.write_text(MODEL)
    (folder / "emitted").mkdir()
    runs, emitted = {}, {}
    for name, (func, options, args, tangents, entry) in cases.items():
        out = folder / "emitted" / f"{name.replace('-', '_')}.py"
        r = s2sad("emit", f"{model}:{func}", *options, "-o", out)
        emitted[name] = (r, out)
        if r.returncode == 0:
            call = args + (tangents or ())
            runs[name] = (str(out), entry, [{"array": ARRAYS[a].tolist()} if isinstance(a, str) else a for a in call])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    r = _run([sys.executable, "-I", "-c", NO_S2SAD + RUN_ALL, json.dumps(runs)], cwd=folder / "emitted",
             env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(r.stdout.split("RESULTS ", 1)[1])
    spec = importlib.util.spec_from_file_location("s2sad_test_cli_model", model)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, emitted, results


@pytest.fixture(scope="module")
def emitted_plain(tmp_path_factory):
    return _emit_all(EMIT_CASES, tmp_path_factory.mktemp("emit_options"))


@pytest.fixture(scope="module")
def emitted_numba(tmp_path_factory):
    pytest.importorskip("numba")
    return _emit_all(NUMBA_CASES, tmp_path_factory.mktemp("emit_numba"))


def _central(fn, args, k, eps=1e-6):
    """d fn / d args[k] by central differences (an array argument: entry by entry)."""
    x = args[k]
    def at(v):
        return fn(*args[:k], v, *args[k + 1:])
    if np.ndim(x) == 0:
        return (at(x + eps) - at(x - eps)) / (2 * eps)
    out = np.zeros(np.shape(x))
    for i in np.ndindex(np.shape(x)):
        d = np.zeros(np.shape(x))
        d[i] = eps
        out[i] = (at(x + d) - at(x - d)) / (2 * eps)
    return out


def _argnums(func, options):
    params = {"poly": ["x", "n"], "settle": ["x"], "both": ["x", "y"], "gate": ["x"], "modules": ["x"],
              "layers": ["W", "b", "X"]}[func]
    if "--wrt" in options:
        return tuple(params.index(p) for p in options[options.index("--wrt") + 1].split(","))
    if "--argnums" in options:
        return tuple(int(i) for i in options[options.index("--argnums") + 1].split(","))
    return (0,)


def _check_emitted_case(name, cases, emitted_fixture):
    import s2sad
    module, emitted, results = emitted_fixture
    func, options, args, tangents, entry = cases[name]
    r, out = emitted[name]
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "warning" not in r.stderr, r.stderr
    got, compiled = results[name]
    assert got != "error", f"the emitted {entry} raised {compiled}"
    fn, args = getattr(module, func), _values(args)
    argnums = _argnums(func, options)
    order = int(options[options.index("--order") + 1]) if "--order" in options else 1
    if "--numba" in options:
        assert compiled, f"{entry} was not compiled by Numba"
    if order > 1:
        # the reference: a closed form, else the second central difference
        if (func, order) in CLOSED_FORM:
            want = CLOSED_FORM[func, order]
        else:
            assert order == 2
            h = 1e-4
            want = (fn(args[0] + h) - 2 * fn(*args) + fn(args[0] - h)) / h ** 2
        rest = args[1] if len(args) > 1 else None
        d = (lambda x: fn(x)) if rest is None else (lambda x: fn(x, rest))   # the other argument held
        for _ in range(order):
            d = s2sad.grad(d)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5), (got, want)
        assert np.allclose(got, d(args[0]), rtol=1e-9, atol=1e-12), (got, d(args[0]))
        return
    if tangents is None:                                  # reverse mode: the gradient(s)
        want = [_central(fn, args, k) for k in argnums]
        inproc = s2sad.grad(fn, argnums=argnums if len(argnums) > 1 else argnums[0])(*args)
        got_list = got if len(argnums) > 1 else [got]
        inproc = inproc if len(argnums) > 1 else (inproc,)
        for g, w, p in zip(got_list, want, inproc):
            assert np.allclose(g, w, rtol=1e-6, atol=1e-6), (g, w)
            assert np.allclose(g, p, rtol=1e-10, atol=1e-12), (g, p)
        return
    value, tangent = got                                  # forward mode: (value, directional derivative)
    dirs = _values(tangents)
    want = sum(np.sum(_central(fn, args, k) * d) for k, d in zip(argnums, dirs))
    full = [None] * len(args)
    for k, d in zip(argnums, dirs):
        full[k] = d
    in_value, in_tangent = s2sad.jvp(fn, args, tuple(full))
    assert np.allclose(value, fn(*args), rtol=1e-12, atol=1e-12), (value, fn(*args))
    assert np.allclose(tangent, want, rtol=1e-6, atol=1e-6), (tangent, want)
    assert np.allclose(tangent, in_tangent, rtol=1e-10, atol=1e-12) and np.allclose(value, in_value)


@pytest.mark.parametrize("name", list(EMIT_CASES))
def test_emitted_module_matches_in_process_and_central_differences(name, emitted_plain):
    _check_emitted_case(name, EMIT_CASES, emitted_plain)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NUMBA_CASES))
def test_emitted_numba_module_matches_in_process_and_central_differences(name, emitted_numba):
    _check_emitted_case(name, NUMBA_CASES, emitted_numba)


def test_emitted_module_keeps_the_users_names_apart_from_the_runtimes(emitted_plain):
    # the user's logistic and unbroadcast keep their names; the runtime helpers of those names
    # (which the generated code calls too: 1 / (1 + np.exp(-x)) is the runtime's logistic) give way
    _, emitted, _ = emitted_plain
    text = emitted["reverse-name-clash"][1].read_text()
    assert "def logistic(z):\n    return 2 / (1 + np.exp(-z))" in text
    assert "def unbroadcast(v):\n    return v * 3.0" in text
    assert "def s2sad_logistic(x):" in text and "logistic2" not in text
    assert "#   logistic -> s2sad_logistic\n" in text
    text = emitted["reverse-module-names"][1].read_text()   # no import for the helpers to shadow them
    assert "def types(v):" in text and "def sys(v):" in text
    assert not re.search(r"^import sys|^from numba import", text, re.MULTILINE)
    assert_lint_clean(emitted["reverse-name-clash"][1])
    r = s2sad("show", f"{emitted['reverse-name-clash'][1].parent.parent / 'model.py'}:gate")   # the same names
    assert r.returncode == 0, r.stderr
    assert "def logistic(z):" in r.stdout and "= s2sad_logistic(x)" in r.stdout and "logistic2" not in r.stdout
