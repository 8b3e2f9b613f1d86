"""Loop-kernel benchmarks: s2sad's gradient against the Numba primal and a hand-written Numba adjoint.

Run: python tools/bench/bench_loops.py [--n 1000000] [--repeat 5]
Prints, per kernel, best-of-N times measured in this one run and the ratios
gradient/primal, s2sad/hand-written and s2sad/JAX. Every gradient is checked
against the hand-written Numba adjoint before timing. JAX (jit(grad) with
lax.fori_loop, float64) and autograd are timed when installed
(pip install 's2sad[bench]'), skipped with a message otherwise.
"""

import argparse
import os
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from timing import best  # tools/bench/timing.py, beside this script

import s2sad  # noqa: E402


def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def iir(x, a):
    y = 0.0
    s = 0.0
    for i in range(x.shape[0]):
        y = a * y + (1.0 - a) * x[i]
        s = s + y * y
    return s


def montecarlo(sigma, z):
    """Mean payoff of geometric-Brownian paths (a path loop with a branch), z: (paths, steps) normals."""
    total = 0.0
    for p in range(z.shape[0]):
        s = 1.0
        for t in range(z.shape[1]):
            s = s * (1.0 + 0.01 * 0.05 + sigma * 0.1 * z[p, t])
        if s > 1.0:
            total = total + (s - 1.0)
    return total / z.shape[0]


def euler(k, y0):
    y = y0
    h = 0.0001
    for step in range(100000):
        y = y + h * (-k * y + np.sin(y))
    return y


@numba.njit(cache=False)
def rosenbrock_adjoint(x):
    """Hand-written reverse sweep of `rosenbrock`: no tape needed."""
    g = np.zeros_like(x)
    for i in range(x.shape[0] - 1):
        d = x[i + 1] - x[i] ** 2
        g[i + 1] += 200.0 * d
        g[i] += -400.0 * d * x[i] - 2.0 * (1.0 - x[i])
    return g


@numba.njit(cache=False)
def iir_adjoint(x, a):
    n = x.shape[0]
    ys = np.empty(n)
    y = 0.0
    for i in range(n):
        y = a * y + (1.0 - a) * x[i]
        ys[i] = y
    g = np.zeros(n)
    y_bar = 0.0
    for i in range(n - 1, -1, -1):
        y_bar += 2.0 * ys[i]
        g[i] = (1.0 - a) * y_bar
        y_bar = a * y_bar
    return g


@numba.njit(cache=False)
def euler_adjoint(k, y0):
    h = 0.0001
    n = 100000
    ys = np.empty(n)
    y = y0
    for step in range(n):
        ys[step] = y
        y = y + h * (-k * y + np.sin(y))
    y_bar = 1.0
    k_bar = 0.0
    for step in range(n - 1, -1, -1):
        yo = ys[step]
        k_bar += y_bar * h * (-yo)
        y_bar = y_bar * (1.0 + h * (-k + np.cos(yo)))
    return k_bar


@numba.njit(cache=False)
def montecarlo_adjoint(sigma, z):
    g = 0.0
    for p in range(z.shape[0]):
        s = 1.0
        ds = 0.0
        for t in range(z.shape[1]):
            f = 1.0 + 0.01 * 0.05 + sigma * 0.1 * z[p, t]
            ds = ds * f + s * 0.1 * z[p, t]
            s = s * f
        if s > 1.0:
            g += ds
    return g / z.shape[0]


def jax_versions(n_paths, n_steps):
    """JAX jit(grad) of the same kernels written with lax.fori_loop (the JAX way to write a loop)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    jax.config.update("jax_enable_x64", True)

    def rosen(x):
        def body(i, s):
            return s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
        return lax.fori_loop(0, x.shape[0] - 1, body, 0.0)

    def iir_j(x, a):
        def body(i, c):
            y, s = c
            y = a * y + (1.0 - a) * x[i]
            return y, s + y * y
        return lax.fori_loop(0, x.shape[0], body, (0.0, 0.0))[1]

    def euler_j(k, y0):
        return lax.fori_loop(0, 100000, lambda i, y: y + 0.0001 * (-k * y + jnp.sin(y)), y0)

    def mc_j(sigma, z):
        def path(zp):
            s = lax.fori_loop(0, zp.shape[0], lambda t, s: s * (1.0 + 0.01 * 0.05 + sigma * 0.1 * zp[t]), 1.0)
            return jnp.where(s > 1.0, s - 1.0, 0.0)
        return jnp.mean(jax.vmap(path)(z))

    def wrap(f):
        g = jax.jit(jax.grad(f))
        return lambda *a: np.asarray(g(*a).block_until_ready())
    return {"rosenbrock": wrap(rosen), "iir filter": wrap(iir_j), "euler ode": wrap(euler_j),
            "monte carlo": wrap(mc_j)}


def autograd_versions():
    import autograd
    return {"rosenbrock": autograd.grad(rosenbrock), "iir filter": autograd.grad(iir),
            "euler ode": autograd.grad(lambda k, y0: _euler_ag(k, y0)), "monte carlo": autograd.grad(montecarlo)}


def _euler_ag(k, y0):
    import autograd.numpy as anp
    y = y0
    for step in range(100000):
        y = y + 0.0001 * (-k * y + anp.sin(y))
    return y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--autograd-n", type=int, default=10_000,
                        help="autograd is pure Python: its loops run on this smaller n (timings scaled)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, args.n)
    z = rng.standard_normal((args.paths, args.steps))
    cases = [
        ("rosenbrock", rosenbrock, (x,), 0, rosenbrock_adjoint),
        ("iir filter", iir, (x, 0.9), 0, iir_adjoint),
        ("euler ode", euler, (0.5, 1.0), 0, euler_adjoint),
        ("monte carlo", montecarlo, (0.3, z), 0, montecarlo_adjoint),
    ]
    try:
        jaxes = jax_versions(args.paths, args.steps)
    except ImportError:
        jaxes = {}
        print("JAX not installed: skipping the JAX column (pip install 's2sad[bench]')")
    try:
        ags = autograd_versions()
    except ImportError:
        ags = {}
        print("autograd not installed: skipping the autograd column (pip install 's2sad[bench]')")
    rows = []
    for label, f, fargs, argnum, hand in cases:
        primal = numba.njit(f)
        grad = s2sad.grad(f, argnums=argnum, backend="numba")
        t0 = time.perf_counter()
        g = grad(*fargs)
        first = time.perf_counter() - t0
        ref = hand(*fargs)
        np.testing.assert_allclose(g, ref, rtol=1e-8, atol=1e-10)
        t_primal = best(primal, *fargs, repeat=args.repeat)
        t_grad = best(grad, *fargs, repeat=args.repeat)
        t_hand = best(hand, *fargs, repeat=args.repeat)
        t_jax = t_ag = float("nan")
        if label in jaxes:
            np.testing.assert_allclose(jaxes[label](*fargs), ref, rtol=1e-7, atol=1e-9)
            t_jax = best(jaxes[label], *fargs, repeat=args.repeat)
        if label in ags:
            small = fargs
            scale = 1.0
            if label in ("rosenbrock", "iir filter"):
                small = (fargs[0][:args.autograd_n],) + fargs[1:]
                scale = args.n / args.autograd_n
            elif label == "monte carlo":
                k = max(1, args.paths * args.autograd_n // (args.paths * args.steps))
                small = (fargs[0], fargs[1][:k])
                scale = args.paths / k
            elif label == "euler ode":
                scale = 1.0
            ag = ags[label]
            np.testing.assert_allclose(ag(*small), s2sad.grad(f, argnums=argnum, backend="numba")(*small),
                                       rtol=1e-8, atol=1e-10)
            t_ag = best(ag, *small, repeat=1) * scale
        rows.append((label, t_primal, t_hand, t_grad, t_jax, t_ag, first))
    print(f"n={args.n}, monte carlo {args.paths} paths x {args.steps} steps; best of {args.repeat} after warm-up; "
          "times in ms")
    print(f"{'kernel':12} {'primal':>9} {'hand adj':>9} {'s2sad':>9} {'jax':>9} {'autograd':>10} "
          f"{'s2sad/primal':>12} {'s2sad/hand':>10} {'s2sad/jax':>9} {'1st call s':>10}")
    for label, tp, th, tg, tj, ta, first in rows:
        print(f"{label:12} {tp * 1e3:9.2f} {th * 1e3:9.2f} {tg * 1e3:9.2f} {tj * 1e3:9.2f} {ta * 1e3:10.0f} "
              f"{tg / tp:12.2f} {tg / th:10.2f} {tg / tj:9.2f} {first:10.2f}")
    print("autograd column: pure-Python loops timed on a smaller n and scaled linearly to the full size (once).")


if __name__ == "__main__":
    main()
