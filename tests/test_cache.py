"""The disk cache of generated modules (s2sad.cache): atomic writes, tamper and
foreign-file detection, permissions, warm loads in a fresh process, clear_cache."""

import glob
import inspect
import os
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import s2sad
from s2sad import cache


def poly(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * x[i] * 1.5
    return s


def cubic(x):
    return x * x * x


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("S2SAD_CACHE_DIR", str(d))
    monkeypatch.delenv("S2SAD_CACHE", raising=False)
    cache._warned.clear()
    return d


def files(d):
    return sorted(glob.glob(os.path.join(str(d), "s2sad_*.py")))


def test_directory_created_user_only_and_file_written(cdir):
    x = np.linspace(0.0, 1.0, 5)
    g = s2sad.grad(poly, backend="python")(x)
    np.testing.assert_allclose(g, 3.0 * x)
    assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o700
    (path,) = files(cdir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert f.readline().startswith(cache.HEADER)
    assert s2sad.cache_dir() == str(cdir)
    assert not glob.glob(os.path.join(str(cdir), ".tmp-*"))


def test_generated_functions_come_from_the_file_and_inspect_reads_them(cdir):
    gf = s2sad.grad(poly, backend="python")
    gf(np.ones(3))
    fn = gf.last.namespace[gf.last.name]
    assert fn.__code__.co_filename == files(cdir)[0]
    assert "def poly_vjp" in inspect.getsource(fn)


def test_grad_of_grad_works_from_cached_modules(cdir):
    assert s2sad.grad(s2sad.grad(cubic))(2.0) == pytest.approx(12.0)


def test_same_source_same_file(cdir):
    s2sad.grad(poly)(np.ones(3))
    s2sad.grad(poly)(np.ones(4))  # same types, new Transformed: same generated source
    assert len(files(cdir)) == 1


def test_injected_globals_are_part_of_the_key():
    src = "def f(x):\n    return x * C\n"
    assert cache.key(src, {"C": 2.0}) != cache.key(src, {"C": 3.0})
    # a global array is an argument of the compiled code: its type is part of the key, its values not
    assert cache.key(src, {"C": np.ones(3)}) == cache.key(src, {"C": np.zeros(4)})
    assert cache.key(src, {"C": np.ones(3)}) != cache.key(src, {"C": np.ones((3, 1))})
    assert cache.key(src, {"C": np.ones(3)}) != cache.key(src, {"C": np.ones(3, dtype=np.float32)})
    # inside a tuple, Numba may compile the values in
    assert cache.key(src, {"C": (np.ones(3),)}) != cache.key(src, {"C": (np.zeros(3),)})
    assert cache.key(src, {"h": poly}) == cache.key(src, {"h": poly})
    assert cache.key(src, {"h": poly}) != cache.key(src, {"h": cubic})
    assert cache.key(src, {"C": 2.0}) != cache.key(src + " ", {"C": 2.0})


MARK = "S2SAD_TAMPER_MARK"


def _tamper(path, marker):
    with open(path) as f:
        lines = f.readlines()
    payload = f"import os\nopen({str(marker)!r}, 'w').write('ran')\n"
    return lines, payload


@pytest.mark.parametrize("how", ["edited_body", "edited_with_valid_header", "truncated", "garbage", "empty"])
def test_tampered_file_is_regenerated_not_executed(cdir, tmp_path, how, caplog):
    x = np.linspace(0.0, 1.0, 4)
    s2sad.grad(poly)(x)
    (path,) = files(cdir)
    good = open(path, "rb").read()
    marker = tmp_path / "executed"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    header, _, body = good.partition(b"\n")
    if how == "edited_body":
        data = header + b"\n" + payload + body
    elif how == "edited_with_valid_header":  # a consistent header does not make a foreign body trusted
        import hashlib
        new_body = payload + body
        data = cache.HEADER.encode() + hashlib.sha256(new_body).hexdigest().encode() + b"\n" + new_body
    elif how == "truncated":
        data = good[: len(good) // 2]
    elif how == "garbage":
        data = payload
    else:
        data = b""
    with open(path, "wb") as f:
        f.write(data)
    caplog.set_level("WARNING", logger="s2sad")
    g = s2sad.grad(poly)(x)
    np.testing.assert_allclose(g, 3.0 * x)
    assert not marker.exists()
    assert open(path, "rb").read() == good
    assert any("regenerating" in r.getMessage() for r in caplog.records)


def test_file_of_another_owner_is_not_executed(cdir, tmp_path, monkeypatch):
    x = np.ones(3)
    s2sad.grad(poly)(x)
    (path,) = files(cdir)
    real = os.getuid()
    # pretend the file (and only the file) belongs to someone else
    orig_safe = cache._safe

    def safe(st):
        if stat.S_ISREG(st.st_mode) and st.st_ino == os.stat(path).st_ino:
            return False
        return orig_safe(st)

    monkeypatch.setattr(cache, "_safe", safe)
    ns = s2sad.grad(poly)
    np.testing.assert_allclose(ns(x), 3.0 * x)
    # it was replaced by a file we wrote (a new inode), which is trusted again
    assert os.stat(path).st_uid == real


def test_world_writable_file_is_replaced(cdir):
    x = np.ones(3)
    s2sad.grad(poly)(x)
    (path,) = files(cdir)
    os.chmod(path, 0o666)
    np.testing.assert_allclose(s2sad.grad(poly)(x), 3.0 * x)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_symlink_is_not_followed(cdir, tmp_path):
    x = np.ones(3)
    s2sad.grad(poly)(x)
    (path,) = files(cdir)
    evil = tmp_path / "evil.py"
    evil.write_bytes(open(path, "rb").read())
    os.unlink(path)
    os.symlink(evil, path)
    np.testing.assert_allclose(s2sad.grad(poly)(x), 3.0 * x)
    assert not os.path.islink(path)


def test_insecure_directory_is_not_used(cdir, caplog):
    s2sad.grad(poly)(np.ones(3))
    os.chmod(cdir, 0o777)
    try:
        caplog.set_level("WARNING", logger="s2sad")
        gf = s2sad.grad(poly)
        np.testing.assert_allclose(gf(np.ones(2)), 3.0 * np.ones(2))
        assert gf.last.namespace[gf.last.name].__code__.co_filename.startswith("<s2sad")
        assert any("not using cache directory" in r.getMessage() for r in caplog.records)
    finally:
        os.chmod(cdir, 0o700)


def test_cache_can_be_turned_off(cdir, monkeypatch):
    monkeypatch.setenv("S2SAD_CACHE", "0")
    s2sad.grad(poly)(np.ones(3))
    assert not files(cdir)


def test_concurrent_writers_leave_one_complete_file(cdir):
    src = "def f(x):\n    return x + 1.0\n" + "# pad\n" * 2000
    errors = []

    def work():
        try:
            for _ in range(20):
                ns = cache.load(src, {"np": np})
                assert ns["f"](1.0) == 2.0
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(files(cdir)) == 1
    assert not glob.glob(os.path.join(str(cdir), ".tmp-*"))


def test_concurrent_processes(cdir):
    code = textwrap.dedent("""
        import numpy as np
        from s2sad import cache
        src = "def f(x):\\n    return x + 1.0\\n" + "# pad\\n" * 5000
        for _ in range(30):
            assert cache.load(src, {"np": np})["f"](1.0) == 2.0
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(s2sad.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(files(cdir)) == 1


def test_clear_cache(cdir):
    s2sad.grad(poly)(np.ones(3))
    assert files(cdir)
    assert s2sad.clear_cache() >= 1
    assert not files(cdir)
    assert s2sad.clear_cache() == 0
    np.testing.assert_allclose(s2sad.grad(poly)(np.ones(3)), 3.0 * np.ones(3))


WARM = textwrap.dedent("""
    import numpy as np, s2sad
    def poly(x):
        s = 0.0
        for i in range(x.shape[0]):
            s = s + x[i] * x[i] * 1.5
        return s
    g = s2sad.grad(poly, backend="numba")
    out = g(np.linspace(0.0, 1.0, 5))
    assert np.allclose(out, 3.0 * np.linspace(0.0, 1.0, 5)), out
    stats = g.last.call.dispatcher.stats
    print("HITS", sum(stats.cache_hits.values()), "MISSES", sum(stats.cache_misses.values()))
""")


def test_fresh_process_loads_numba_code_from_the_cache(cdir, tmp_path):
    pytest.importorskip("numba")
    root = os.path.dirname(os.path.dirname(os.path.abspath(s2sad.__file__)))
    env = dict(os.environ, S2SAD_CACHE_DIR=str(cdir),
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    env.pop("NUMBA_DISABLE_JIT", None)
    script = tmp_path / "warm.py"  # s2sad reads the function's source: it must live in a file
    script.write_text(WARM)
    first = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "HITS 0 MISSES 1" in first.stdout
    second = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "HITS 1 MISSES 0" in second.stdout
