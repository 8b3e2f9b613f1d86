"""examples/demo.py runs as a user would run it and prints the right numbers."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "demo.py")


def run_demo():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("S2SAD_BACKEND", None)  # the demo runs as a user runs it: the Numba backend
    return subprocess.run([sys.executable, DEMO], capture_output=True, text=True, env=env, timeout=120)


def test_demo_exits_zero_and_every_check_is_ok():
    proc = run_demo()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "MISMATCH" not in out
    assert "all checks ok" in out
    assert len(re.findall(r"\[ok\]", out)) >= 13


def test_demo_prints_the_tutorial_numbers_and_generated_code():
    out = run_demo().stdout
    assert "d/dx tanh(2.0): s2sad = 0.07065082485" in out
    assert "d/dx cubic(1.0): s2sad = 4," in out
    assert "grad(product, argnums=(0, 1))(3.0, 4.0): s2sad = (4, 3)" in out
    assert "s2sad = (42, 1), reference = (42, 1)" in out
    assert "grad(half_frozen)(3.0): s2sad = 3," in out
    assert re.search(r"grad\(decay\)\(k=0\.7.*s2sad = -0\.04728867", out)
    assert "def decay_jvp(k, y0, dt, steps, k_dot):" in out  # d/dk alone: forward mode
    assert "def decay_vjp(k, y0, dt, steps, _out_bar):" in out  # argnums=(0, 1): reverse mode
