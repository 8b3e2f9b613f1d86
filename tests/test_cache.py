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
    assert cache.key(src, {"C": (np.ones(3), 2.0)}) == cache.key(src, {"C": (np.zeros(3), 2.0)})
    assert cache.key(src, {"C": (np.ones(3), 2.0)}) != cache.key(src, {"C": (np.ones(3), 3.0)})
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


# ---- Numba's files: checked before loading, modes, locations ---------------------------------------

TWO = textwrap.dedent("""
    import numpy as np, s2sad
    def f(x):
        return np.sum(x * x)
    def g(x):
        return np.sum(3.0 * x)
    gf, gg = s2sad.grad(f, backend="numba"), s2sad.grad(g, backend="numba")
    x = np.array([1.0, 2.0])
    print("F", gf(x).tolist(), "G", gg(x).tolist())
    hits = sum(sum(t.last.call.dispatcher.stats.cache_hits.values()) for t in (gf, gg))
    print("HITS", hits)
""")


def _run_two(tmp_path, env=None, umask=None):
    script = tmp_path / "two.py"
    script.write_text(TWO)
    root = os.path.dirname(os.path.dirname(os.path.abspath(s2sad.__file__)))
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    full.pop("NUMBA_DISABLE_JIT", None)
    full.update(env or {})
    out = subprocess.run([sys.executable, str(script)], env=full, capture_output=True, text=True, timeout=300,
                         preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    assert out.returncode == 0, out.stderr[-3000:]
    words = out.stdout.split()
    grads = eval(" ".join(words[1:words.index("G")])), eval(" ".join(words[words.index("G") + 1:words.index("HITS")]))
    np.testing.assert_allclose(grads[0], [2.0, 4.0])   # 2x
    np.testing.assert_allclose(grads[1], [3.0, 3.0])
    return int(words[-1]), out.stderr


def _numba_files(cdir, fn, ext):
    return glob.glob(os.path.join(str(cdir), "__pycache__", f"s2sad_*.{fn}_vjp-*{ext}"))


@pytest.mark.parametrize("which", ["nbc", "nbi", "truncated"])
def test_numba_file_copied_over_anothers_is_not_loaded(cdir, tmp_path, which):
    env = {"S2SAD_CACHE_DIR": str(cdir)}
    assert _run_two(tmp_path, env)[0] == 0
    assert _run_two(tmp_path, env)[0] == 2  # both loaded from the disk
    ext = ".nbi" if which == "nbi" else ".1.nbc"
    (src,), (dst,) = _numba_files(cdir, "f", ext), _numba_files(cdir, "g", ext)
    if which == "truncated":
        data = open(dst, "rb").read()
        open(dst, "wb").write(data[:len(data) // 2])
    else:
        open(dst, "wb").write(open(src, "rb").read())  # f's compiled gradient where g's was
    hits, err = _run_two(tmp_path, env)   # g's gradient is g's (checked in _run_two)
    assert hits == 1 and "not loading Numba's cache file" in err
    assert _run_two(tmp_path, env)[0] == 2  # compiled again and written back whole


def test_group_writable_umask_keeps_the_cache(cdir, tmp_path):
    env = {"S2SAD_CACHE_DIR": str(cdir)}
    assert _run_two(tmp_path, env, umask=0o002)[0] == 0
    hits, err = _run_two(tmp_path, env, umask=0o002)
    assert hits == 2 and "not using cache directory" not in err
    for path in [str(cdir / "__pycache__")] + glob.glob(os.path.join(str(cdir), "**", "s2sad_*"), recursive=True):
        assert not os.stat(path).st_mode & 0o077, path


def test_numba_cache_dir_does_not_take_s2sads_files(cdir, tmp_path):
    numba_dir = tmp_path / "numba-cache"
    env = {"S2SAD_CACHE_DIR": str(cdir), "NUMBA_CACHE_DIR": str(numba_dir)}
    _run_two(tmp_path, env)
    assert _run_two(tmp_path, env)[0] == 2
    assert len(_numba_files(cdir, "f", ".nbi")) == 1
    assert not [p for p in numba_dir.rglob("*") if p.is_file()]


def test_numba_cache_dir_leftovers_are_listed_and_cleared(cdir, tmp_path, monkeypatch):
    numba_dir = tmp_path / "numba-cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(numba_dir))
    s2sad.grad(poly, backend="python")(np.ones(2))
    left = cache._numba_leftovers(str(cdir))
    os.makedirs(left)
    planted = os.path.join(left, "s2sad_0123.poly_vjp-3.py311.nbi")
    open(planted, "w").write("old")
    open(os.path.join(left, "someone_else.nbi"), "w").write("not s2sad's")
    assert planted in [p for p, _ in cache.cache_files()]
    assert s2sad.clear_cache() == 2   # the module and the leftover
    assert not os.path.exists(planted) and os.path.exists(os.path.join(left, "someone_else.nbi"))


def test_home_not_writable_falls_back_to_a_private_temporary_directory(tmp_path):
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"HOME": str(home), "TMPDIR": str(tmp), "S2SAD_CACHE_DIR": "", "XDG_CACHE_HOME": ""}
    _, err = _run_two(tmp_path, env)
    fallback = tmp / f"s2sad-{os.getuid()}"
    assert err.count("caching generated code in") == 1 and str(fallback) in err
    assert stat.S_IMODE(os.stat(fallback).st_mode) == 0o700 and glob.glob(str(fallback / "s2sad_*.py"))
    assert _run_two(tmp_path, env)[0] == 2   # a second process finds it


def test_fallback_directory_of_another_kind_is_refused(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp / f"s2sad-{os.getuid()}")
    monkeypatch.setattr(cache.tempfile, "gettempdir", lambda: str(tmp))
    monkeypatch.delenv("S2SAD_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(cache.os.path, "expanduser", lambda p: "~")   # HOME unset, no password entry
    cache._warned.clear()
    assert cache.usable_dir() is None   # a symlink there is not a private directory: no cache, no error
    np.testing.assert_allclose(s2sad.grad(poly, backend="python")(np.ones(2)), 3.0 * np.ones(2))


def test_clear_never_follows_a_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "project"
    (victim / "__pycache__").mkdir(parents=True)
    (victim / "__pycache__" / "module.cpython-311.pyc").write_text("theirs")
    (victim / "s2sad_notes.py").write_text("theirs")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.symlink(victim, shared / "cache")   # planted: the cache directory is a link to someone's project
    monkeypatch.setenv("S2SAD_CACHE_DIR", str(shared / "cache"))
    with pytest.raises(s2sad.S2SADError, match="symbolic link"):
        s2sad.clear_cache()
    # links inside a real cache directory: removed as links, never followed
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(victim / "__pycache__", real / "__pycache__")
    os.symlink(victim / "s2sad_notes.py", real / "s2sad_link.py")
    monkeypatch.setenv("S2SAD_CACHE_DIR", str(real))
    assert s2sad.clear_cache() == 1
    assert not os.path.lexists(real / "s2sad_link.py")
    assert (victim / "__pycache__" / "module.cpython-311.pyc").exists() and (victim / "s2sad_notes.py").exists()


def test_cli_cache_clear_refuses_a_symlinked_directory(tmp_path):
    victim = tmp_path / "project"
    (victim / "__pycache__").mkdir(parents=True)
    (victim / "__pycache__" / "s2sad_x.nbi").write_text("theirs")
    os.symlink(victim, tmp_path / "cache")
    root = os.path.dirname(os.path.dirname(os.path.abspath(s2sad.__file__)))
    env = dict(os.environ, S2SAD_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=root)
    r = subprocess.run([sys.executable, "-m", "s2sad", "cache", "clear"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "symbolic link" in r.stderr and "Traceback" not in r.stderr
    assert (victim / "__pycache__" / "s2sad_x.nbi").exists()
