"""Sensitivity of an ODE solution: reverse mode through an explicit RK4 loop.

A damped oscillator driven by a force that switches on at t_on:

    x'' = -k x - c x' + F(t),   F(t) = 0 for t < t_on, F0 cos(2t) afterwards

is integrated with classical Runge-Kutta (a `for` loop over time steps; the
acceleration helper has an `if` on the time). The quantity of interest is the
final mechanical energy E = v**2/2 + k x**2/2, and s2sad.grad gives
dE/d(k, c, F0) in one reverse sweep through all the steps. Each derivative
is checked against a central difference of the plain Python function.

Then the same gradient is timed with backend="python" (the default) and
backend="numba" (the generated code compiled with numba.njit; its first
call includes the compile time, the later calls do not).

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/ode_sensitivity.py    (add --no-numba to skip the numba part,
      whose compile takes tens of seconds)
"""

import sys
import time

import numpy as np

import s2sad

FAILURES = []


def report(label, ok, detail):
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: {detail}")
    if not ok:
        FAILURES.append(label)


def accel(x, v, t, k, c, F0, t_on):
    if t < t_on:
        force = 0.0
    else:
        force = F0 * np.cos(2.0 * t)
    return -k * x - c * v + force


def final_energy(k, c, F0, x0, v0, t_on, dt, steps):
    x = x0
    v = v0
    t = 0.0
    for i in range(steps):
        a1 = accel(x, v, t, k, c, F0, t_on)
        x2 = x + 0.5 * dt * v
        v2 = v + 0.5 * dt * a1
        a2 = accel(x2, v2, t + 0.5 * dt, k, c, F0, t_on)
        x3 = x + 0.5 * dt * v2
        v3 = v + 0.5 * dt * a2
        a3 = accel(x3, v3, t + 0.5 * dt, k, c, F0, t_on)
        x4 = x + dt * v3
        v4 = v + dt * a3
        a4 = accel(x4, v4, t + dt, k, c, F0, t_on)
        x = x + dt / 6.0 * (v + 2.0 * v2 + 2.0 * v3 + v4)
        v = v + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        t = t + dt
    return 0.5 * v * v + 0.5 * k * x * x


def central_difference(f, args, i, h=1e-6):
    plus, minus = list(args), list(args)
    plus[i] = args[i] + h
    minus[i] = args[i] - h
    return (f(*plus) - f(*minus)) / (2 * h)


def timed(f, args, repeat):
    start = time.perf_counter()
    first = f(*args)
    first_time = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeat):
        f(*args)
    return first, first_time, (time.perf_counter() - start) / repeat


def main():
    # k, c, F0, x0, v0, t_on, dt, steps: 2000 RK4 steps up to t = 10
    args = (4.0, 0.3, 1.5, 1.0, 0.0, 5.0, 0.005, 2000)
    print("damped oscillator k = 4, c = 0.3, F0 = 1.5, x0 = 1, v0 = 0, force on at t = 5, "
          "RK4 with dt = 0.005 for 2000 steps")
    print(f"final energy E = {final_energy(*args):.10g}")

    print("1. dE/d(k, c, F0) by s2sad.grad(final_energy, argnums=(0, 1, 2)) vs central differences (h = 1e-6)")
    grad_py = s2sad.grad(final_energy, argnums=(0, 1, 2))
    grads = grad_py(*args)
    for name, i, g in zip(("k", "c", "F0"), range(3), grads):
        fd = central_difference(final_energy, args, i)
        report(f"dE/d{name}", np.isclose(g, fd, rtol=1e-6, atol=1e-9),
               f"s2sad = {g:.10g}, central difference = {fd:.10g}")

    print("2. timing the gradient: backend='python' vs backend='numba'")
    _, py_first, py_each = timed(s2sad.grad(final_energy, argnums=(0, 1, 2)), args, 3)
    print(f"  python: first call {py_first * 1e3:8.1f} ms (a fresh grad object: includes code generation), "
          f"then {py_each * 1e3:8.2f} ms per call")
    try:
        import numba  # noqa: F401
    except ImportError:
        numba = None
    if "--no-numba" in sys.argv[1:]:
        print("  numba: skipped (--no-numba)")
    elif numba is None:
        print("  numba is not installed: skipping the numba backend")
    else:
        grad_nb = s2sad.grad(final_energy, argnums=(0, 1, 2), backend="numba")
        nb_grads, nb_first, nb_each = timed(grad_nb, args, 20)
        print(f"  numba:  first call {nb_first * 1e3:8.1f} ms (includes numba compile), "
              f"then {nb_each * 1e3:8.2f} ms per call ({py_each / nb_each:.0f}x the python backend)")
        report("numba gradients equal python-backend gradients",
               np.allclose(nb_grads, grads, rtol=1e-12, atol=1e-14),
               f"{tuple(float(g) for g in nb_grads)}")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
