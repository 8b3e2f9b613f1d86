"""Higher-order derivatives by stacking `s2sad.grad`, as in JAX's autodiff tutorial.

- grad(grad(grad(np.tanh))) at 2.0, against the closed forms of tanh's
  derivatives and against the numbers JAX prints (0.070650816, -0.13621868,
  0.25265405).
- The cubic x**3 + 2*x**2 - 3*x + 1: its 1st..4th derivatives at 1.0 are
  4, 10, 6, 0.
- The generated code of the 2nd derivative (s2sad.source).

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/higher_derivatives.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, atol=1e-7, rtol=0.0):
    ok = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: s2sad = {float(got):.10g}, reference = {float(want):.10g}")
    if not ok:
        FAILURES.append(label)


def cubic(x):
    return x ** 3 + 2 * x ** 2 - 3 * x + 1


def main():
    print("1. tanh and its derivatives at x = 2.0")
    d1 = s2sad.grad(np.tanh)
    d2 = s2sad.grad(d1)
    d3 = s2sad.grad(d2)
    x = 2.0
    t = np.tanh(x)
    # closed forms: t' = 1 - t^2, t'' = -2 t (1 - t^2), t''' = (1 - t^2)(6 t^2 - 2)
    closed = (1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2))
    jax_numbers = (0.070650816, -0.13621868, 0.25265405)   # printed by JAX's tutorial (float32)
    for order, (f, c, j) in enumerate(zip((d1, d2, d3), closed, jax_numbers), start=1):
        got = f(x)
        check(f"order {order} tanh derivative at 2.0 vs closed form", got, c, atol=1e-12)
        check(f"order {order} tanh derivative at 2.0 vs JAX's {j}", got, j, atol=1e-7)

    print("2. cubic x**3 + 2*x**2 - 3*x + 1 at x = 1.0 (derivatives 3x^2+4x-3, 6x+4, 6, 0)")
    c1 = s2sad.grad(cubic)
    c2 = s2sad.grad(c1)
    c3 = s2sad.grad(c2)
    c4 = s2sad.grad(c3)
    for order, (f, want) in enumerate(zip((c1, c2, c3, c4), (4.0, 10.0, 6.0, 0.0)), start=1):
        check(f"order {order} derivative of cubic at 1.0", f(1.0), want, atol=1e-12)
    check("order 2 derivative of cubic at -0.5 (6x + 4)", c2(-0.5), 1.0, atol=1e-12)

    print()
    print("Generated code of the 2nd derivative of the cubic (s2sad.source(grad(grad(cubic)))):")
    print("-" * 72)
    print(s2sad.source(c2))
    print("-" * 72)

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
