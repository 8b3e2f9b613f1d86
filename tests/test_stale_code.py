"""The number s2sad returns belongs to the program Python runs: recursion loaded from the disk
cache, globals changed after the first call, files edited after import, decorated functions,
and cache files that are not what s2sad wrote."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import s2sad
from s2sad import cache


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("S2SAD_CACHE_DIR", str(d))
    monkeypatch.delenv("S2SAD_CACHE", raising=False)
    cache._warned.clear()
    return d


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
