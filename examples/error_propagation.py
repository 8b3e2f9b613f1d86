"""Propagation of uncertainty with a forward-mode Jacobian.

For independent measurements x +- dx and y +- dy, the first-order
uncertainty of q(x, y) is

    sigma_q = sqrt((dq/dx * dx)**2 + (dq/dy * dy)**2)

computed here as sqrt(sum((jacfwd(q, argnums=(0, 1))(x, y) * (dx, dy))**2))
and compared with the textbook formulas:

    q = x + y        sigma = sqrt(dx**2 + dy**2)
    q = x * y        sigma = |q| sqrt((dx/x)**2 + (dy/y)**2)
    q = x / y        sigma = |q| sqrt((dx/x)**2 + (dy/y)**2)
    q = x**a * y**b  sigma = |q| sqrt((a dx/x)**2 + (b dy/y)**2)

at x = 2, y = 3, dx = dy = 0.1, a = 2, b = 0.5.

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/error_propagation.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, rtol=1e-12, atol=1e-14):
    ok = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: s2sad = {float(got):.12g}, formula = {float(want):.12g}")
    if not ok:
        FAILURES.append(label)


def q_sum(x, y):
    return x + y


def q_product(x, y):
    return x * y


def q_quotient(x, y):
    return x / y


def q_power(x, y, a, b):
    return x ** a * y ** b


def sigma(q, x, y, dx, dy, *rest):
    """First-order uncertainty of q(x, y, *rest) from a forward-mode Jacobian."""
    jac = s2sad.jacfwd(q, argnums=(0, 1))(x, y, *rest)      # (dq/dx, dq/dy)
    return np.sqrt(np.sum((np.array(jac) * np.array([dx, dy])) ** 2))


def main():
    x, y, dx, dy, a, b = 2.0, 3.0, 0.1, 0.1, 2.0, 0.5
    print(f"x = {x} +- {dx}, y = {y} +- {dy}, a = {a}, b = {b}")

    print("q = x + y")
    check(f"sigma (q = {q_sum(x, y):.6g})", sigma(q_sum, x, y, dx, dy), np.sqrt(dx ** 2 + dy ** 2))

    print("q = x * y")
    q = q_product(x, y)
    check(f"sigma (q = {q:.6g})", sigma(q_product, x, y, dx, dy),
          abs(q) * np.sqrt((dx / x) ** 2 + (dy / y) ** 2))

    print("q = x / y")
    q = q_quotient(x, y)
    check(f"sigma (q = {q:.6g})", sigma(q_quotient, x, y, dx, dy),
          abs(q) * np.sqrt((dx / x) ** 2 + (dy / y) ** 2))

    print("q = x**a * y**b")
    q = q_power(x, y, a, b)
    check(f"sigma (q = {q:.6g})", sigma(q_power, x, y, dx, dy, a, b),
          abs(q) * np.sqrt((a * dx / x) ** 2 + (b * dy / y) ** 2))

    print("the Jacobian itself for q = x**a * y**b: (a q / x, b q / y)")
    jx, jy = s2sad.jacfwd(q_power, argnums=(0, 1))(x, y, a, b)
    check("dq/dx", jx, a * q / x)
    check("dq/dy", jy, b * q / y)

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
