"""Each script in examples/ runs as a user would run it and prints the right numbers.

Every script checks its own numbers against references s2sad did not compute
(closed forms, central differences, hand-written gradients) and exits 1 on a
mismatch; these tests run them in a subprocess and also pin key numbers.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import s2sad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *argv, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["S2SAD_BACKEND"] = "python"  # the examples that time Numba ask for it themselves
    env.pop("S2SAD_VMAP_BACKEND", None)
    proc = subprocess.run([sys.executable, os.path.join("examples", name), *argv], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=timeout)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "MISMATCH" not in out, out
    assert "all checks ok" in out, out
    return out


def test_higher_derivatives():
    out = run_example("higher_derivatives.py")
    assert "order 1 tanh derivative at 2.0 vs closed form: s2sad = 0.07065082485" in out
    assert "order 2 tanh derivative at 2.0 vs closed form: s2sad = -0.1362186874" in out
    assert "order 3 tanh derivative at 2.0 vs closed form: s2sad = 0.2526540651" in out
    for order, value in ((1, 4), (2, 10), (3, 6), (4, 0)):
        assert f"order {order} derivative of cubic at 1.0: s2sad = {value}, reference = {value}" in out
    assert "def cubic_vjp_jvp(x, _out_bar, x_dot):" in out   # the printed source of the 2nd derivative
    assert len(re.findall(r"\[ok\]", out)) == 11


def test_logistic_regression():
    out = run_example("logistic_regression.py")
    assert "W = [ 0.12573022 -0.13210486  0.64042265]" in out
    assert "loss(W, b) = 1.590095833" in out
    assert "s2sad     = ([-0.50457387  0.50678356 -1.0573756 ], -0.6189295871)" in out
    assert "s2sad     = {'W': [-0.50457387  0.50678356 -1.0573756 ], 'b': -0.6189295871}" in out
    assert "[ok] check_grads passed" in out
    assert len(re.findall(r"\[ok\]", out)) == 9


def test_stop_gradient_and_product():
    out = run_example("stop_gradient_and_product.py")
    assert "grad(product, argnums=1)(3., 4.): s2sad = 3, reference = 3" in out
    assert "grad(td_loss)(theta, s_tm1, r_t, s_t): s2sad = [ 1.2  2.4 -1.2]" in out
    assert "without stop_gradient (the full gradient): s2sad = [-1.2  1.2 -1.2]" in out
    assert "grad(straight_through_f)(3.2): s2sad = 1, reference = 1" in out


def test_error_propagation():
    out = run_example("error_propagation.py")
    for sigma in ("0.141421356237", "0.360555127546", "0.0400616808385", "0.702376916857"):
        assert f"s2sad = {sigma}, formula = {sigma}" in out
    assert len(re.findall(r"\[ok\]", out)) == 6


def test_linear_regression():
    out = run_example("linear_regression.py")
    assert "grad(rms)({'w': 13.0, 'b': 0.0}, [42.], [500.]) = {'b': 1, 'w': 42}" in out
    assert re.search(r"\n\s+15\s+11\.908000\s+-0\.026000\s+500\.110000\n", out)      # rms, lr = 2e-3
    assert re.search(r"\n\s+15\s+11\.906978\s+-0\.026024\s+500\.067038\n", out)      # mse, lr = 1e-4
    assert out.count("max |s2sad - reference| = 0 over 45 numbers") == 2


def test_lstm_language_model():
    out = run_example("lstm_language_model.py")
    assert len(re.findall(r"\[ok\] d loss / d \w+\[", out)) == 6
    assert "step    0  loss 3.761411" in out
    assert "step  300  loss" in out
    assert "sample = [4, 8, 15, 16, 23, 42]" in out


@pytest.mark.skipif(not hasattr(s2sad, "vmap"), reason="s2sad.vmap is not available")
def test_per_sample_gradients():
    out = run_example("per_sample_gradients.py")
    assert "0.0098660372 0.0706508249 0.4199743416 1." in out
    assert "TypeError: grad requires a scalar output" in out
    assert len(re.findall(r"\[ok\]", out)) == 4


def test_ode_sensitivity_python_backend():
    out = run_example("ode_sensitivity.py", "--no-numba")
    assert "final energy E = 3.669371053" in out
    assert "dE/dk: s2sad = -2.097360741" in out
    assert "dE/dc: s2sad = -8.46680322" in out
    assert "dE/dF0: s2sad = 4.668062435" in out
    assert "numba: skipped (--no-numba)" in out


@pytest.mark.slow
def test_ode_sensitivity_with_numba_backend():
    pytest.importorskip("numba")
    out = run_example("ode_sensitivity.py", timeout=600)
    assert "numba:  first call" in out
    assert "[ok] numba gradients equal python-backend gradients" in out


# ---- a bug found while writing examples/lstm_language_model.py ---------------------

def _two_outputs(w, h, c):
    return w * h, c + h


def _reassign_from_helper(w):
    h, c = _two_outputs(w, 0.5, 0.1)
    h, c = _two_outputs(w, h, c)      # the targets are also arguments of the call
    return h * c


def test_reverse_mode_of_tuple_unpacking_a_helper_into_its_own_arguments():
    # d/dw of (w * (w * 0.5)) * (0.1 + 0.5 + w * 0.5) = 0.7875 at w = 0.7
    want = 0.7875
    assert np.isclose(s2sad.jacfwd(_reassign_from_helper)(0.7), want, rtol=1e-12)
    assert np.isclose(s2sad.grad(_reassign_from_helper)(0.7), want, rtol=1e-12)
