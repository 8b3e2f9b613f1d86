"""vmap(backend='cuda') against the CPU backends, on the CUDA simulator or a real GPU.

The simulator is chosen by NUMBA_ENABLE_CUDASIM=1 before numba.cuda is
imported, so that it never leaks into other tests' numba: in the normal test
process this module only runs itself again in a subprocess with that variable
set, and the real cases run there.  On a machine with an NVIDIA GPU,
S2SAD_TEST_CUDA=device runs the same cases on the device instead:

    S2SAD_TEST_CUDA=device python -m pytest tests/test_cuda.py
"""

import importlib.util
import math
import os
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
IN_SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
ON_DEVICE = os.environ.get("S2SAD_TEST_CUDA") == "device" and not IN_SIM

pytestmark = pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed (pip install numba-cuda)")

if not (IN_SIM or ON_DEVICE):
    def test_cuda_simulator_cases():
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        assert " passed" in proc.stdout and " skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]

else:
    import s2sad
    from s2sad import S2SADError
    from numba import cuda

    def test_runs_where_asked():
        # A device run that silently fell back to the simulator would prove nothing about the GPU.
        assert cuda.is_available()
        simulated = type(cuda.get_current_device()).__name__.startswith("Fake")
        assert simulated == IN_SIM
        if ON_DEVICE:
            print("device:", cuda.get_current_device().name)

    def helper(x, y):
        return x * math.exp(-y)

    def scal(x, y):
        s = 0.0
        for i in range(3):
            if x > 0.5:
                s = s + helper(x, y) * i
            else:
                s = s + np.sin(x * y)
        k = 0
        while s > 1.0 and k < 10:
            s = s * 0.5
            k = k + 1
        return s + np.tanh(x)

    def euler(x, rate, n):
        for _ in range(n):
            x = x - rate * x * x
        return x

    def allocates(x):
        buf = np.zeros(3)
        return x * buf[0] + x

    def sums(x):
        return np.sum(x * x)

    def _norm_cdf(x):
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    def call_price(s, sigma, k, t, r):
        d1 = (math.log(s / k) + (r + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
        d2 = d1 - sigma * math.sqrt(t)
        return s * _norm_cdf(d1) - k * math.exp(-r * t) * _norm_cdf(d2)

    XS = np.linspace(-1.2, 1.3, 37)
    YS = np.linspace(0.1, 0.9, 37)

    def close(a, b):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=1e-12)

    def test_tanh():
        close(s2sad.vmap(s2sad.grad(np.tanh), backend="cuda")(XS), 1 - np.tanh(XS) ** 2)

    @pytest.mark.parametrize("kind", ["grad", "value_and_grad", "jacfwd", "jacrev"])
    def test_against_cpu(kind):
        t = getattr(s2sad, kind)(scal, argnums=(0, 1))
        gpu = s2sad.vmap(t, backend="cuda")(XS, YS)
        cpu = s2sad.vmap(t, backend="numba")(XS, YS)
        ref = s2sad.vmap(t, backend="python")(XS, YS)
        if kind == "value_and_grad":
            close(gpu[0], cpu[0])
            gpu, cpu, ref = gpu[1], cpu[1], ref[1]
        for k in range(2):
            close(gpu[k], cpu[k])
            close(gpu[k], ref[k])

    def test_int_argument_and_in_axes_none():
        g = s2sad.vmap(s2sad.grad(euler, argnums=(0, 1)), in_axes=(0, None, None), backend="cuda")
        gpu = g(XS * 0.3, 0.1, 5)
        cpu = s2sad.vmap(s2sad.grad(euler, argnums=(0, 1)), in_axes=(0, None, None), backend="parallel")(
            XS * 0.3, 0.1, 5)
        close(gpu[0], cpu[0])
        close(gpu[1], cpu[1])

    def test_black_scholes_delta_vega():
        n = 50
        rng = np.random.default_rng(0)
        s = rng.uniform(50, 150, n)
        sig = rng.uniform(0.1, 0.5, n)
        g = s2sad.vmap(s2sad.grad(call_price, argnums=(0, 1)), in_axes=(0, 0, None, None, None), backend="cuda")
        delta, vega = g(s, sig, 100.0, 1.0, 0.01)
        cpu = s2sad.vmap(s2sad.grad(call_price, argnums=(0, 1)), in_axes=(0, 0, None, None, None),
                         backend="numba")(s, sig, 100.0, 1.0, 0.01)
        close(delta, cpu[0])
        close(vega, cpu[1])

    def sigmoid_neuron(x, w):
        return 1.0 / (1.0 + math.exp(-w * x)) + 1 / (np.exp(x) + 1)

    def test_the_logistic_sigmoid_against_its_closed_form():
        # generated code calls `logistic` (normalize recognizes 1 / (1 + exp(-x))): a device function
        g = s2sad.vmap(s2sad.grad(sigmoid_neuron, argnums=(0, 1)), in_axes=(0, None), backend="cuda")
        dx, dw = g(XS, 0.7)
        s, t = 1 / (1 + np.exp(-0.7 * XS)), 1 / (1 + np.exp(XS))
        close(dx, 0.7 * s * (1 - s) - t * (1 - t))
        close(dw, XS * s * (1 - s))

    def test_grad_of_grad_and_jvp():
        t = np.tanh(XS)
        close(s2sad.vmap(s2sad.grad(s2sad.grad(np.tanh)), backend="cuda")(XS), -2 * t * (1 - t ** 2))
        f = s2sad.vmap(partial(s2sad.jvp, scal), backend="cuda")
        out, tan = f((XS, YS), (YS, XS))
        cpu = s2sad.vmap(partial(s2sad.jvp, scal), backend="numba")((XS, YS), (YS, XS))
        close(out, cpu[0])
        close(tan, cpu[1])

    def test_device_arrays_stay_on_device():
        d = cuda.to_device(XS)
        out = s2sad.vmap(s2sad.grad(np.tanh), backend="cuda")(d)
        assert hasattr(out, 'copy_to_host') and not isinstance(out, np.ndarray)
        close(out.copy_to_host(), 1 - np.tanh(XS) ** 2)

    def test_refuses_allocation_naming_the_line():
        with pytest.raises(S2SADError, match=r"test_cuda.py:\d+: `buf = np.zeros\(3\)`.*allocates"):
            s2sad.vmap(s2sad.grad(allocates), backend="cuda")(XS)

    def test_refuses_array_samples():
        with pytest.raises(S2SADError, match="functions of scalars|allocates|not supported"):
            s2sad.vmap(s2sad.grad(sums), backend="cuda")(np.ones((4, 3)))
