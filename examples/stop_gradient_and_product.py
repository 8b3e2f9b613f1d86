"""argnums and stop_gradient, as in JAX's autodiff tutorials.

- grad(product, argnums=1)(3., 4.) == 3 (and argnums=0, (0, 1)).
- The tutorial's TD(0) update: the TD target r_t + v(s_t) is wrapped in
  stop_gradient, so the update is (target - v(s_tm1)) * s_tm1 = [1.2, 2.4, -1.2];
  without stop_gradient the gradient also flows through the target and gives
  -(target - v(s_tm1)) * (s_t - s_tm1) = [-1.2, 1.2, -1.2].
- The tutorial's straight-through estimator: grad of round(x) is 0, grad of
  x - stop_gradient(x) + stop_gradient(round(x)) is 1.

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/stop_gradient_and_product.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, rtol=1e-12, atol=1e-12):
    ok = bool(np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=rtol, atol=atol))
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: s2sad = {_fmt(got)}, reference = {_fmt(want)}")
    if not ok:
        FAILURES.append(label)


def _fmt(v):
    return np.array2string(np.asarray(v), precision=8) if np.ndim(v) else f"{float(v):.10g}"


def product(x, y):
    return x * y


# ---- TD(0) -------------------------------------------------------------------------

def value_fn(theta, state):
    return np.dot(theta, state)


def td_loss(theta, s_tm1, r_t, s_t):
    v_tm1 = value_fn(theta, s_tm1)
    target = r_t + value_fn(theta, s_t)
    return -0.5 * ((s2sad.stop_gradient(target) - v_tm1) ** 2)


def td_loss_no_stop(theta, s_tm1, r_t, s_t):
    v_tm1 = value_fn(theta, s_tm1)
    target = r_t + value_fn(theta, s_t)
    return -0.5 * ((target - v_tm1) ** 2)


# ---- straight-through estimator ----------------------------------------------------

def f(x):
    return np.round(x)


def straight_through_f(x):
    zero = x - s2sad.stop_gradient(x)
    return zero + s2sad.stop_gradient(f(x))


def main():
    print("1. argnums on product(x, y) = x * y at (3., 4.)")
    check("grad(product, argnums=1)(3., 4.)", s2sad.grad(product, argnums=1)(3.0, 4.0), 3.0)
    check("grad(product)(3., 4.)", s2sad.grad(product)(3.0, 4.0), 4.0)
    gx, gy = s2sad.grad(product, argnums=(0, 1))(3.0, 4.0)
    check("grad(product, argnums=(0, 1))(3., 4.)", np.array([gx, gy]), np.array([4.0, 3.0]))

    print("2. TD(0) update with the target wrapped in stop_gradient")
    theta = np.array([0.1, -0.1, 0.0])
    s_tm1 = np.array([1.0, 2.0, -1.0])
    r_t = 1.0
    s_t = np.array([2.0, 1.0, 0.0])
    td_error = r_t + theta @ s_t - theta @ s_tm1          # 1.2
    print(f"  TD error r_t + v(s_t) - v(s_tm1) = {td_error:.10g}")
    delta_theta = s2sad.grad(td_loss)(theta, s_tm1, r_t, s_t)
    check("grad(td_loss)(theta, s_tm1, r_t, s_t)", delta_theta, td_error * s_tm1)
    check("  ... the tutorial's numbers", delta_theta, np.array([1.2, 2.4, -1.2]))
    full = s2sad.grad(td_loss_no_stop)(theta, s_tm1, r_t, s_t)
    check("without stop_gradient (the full gradient)", full, -td_error * (s_t - s_tm1))
    check("  ... = [-1.2, 1.2, -1.2]", full, np.array([-1.2, 1.2, -1.2]))

    print("3. straight-through estimator")
    check("grad(f)(3.2) with f = round", s2sad.grad(f)(3.2), 0.0)
    check("grad(straight_through_f)(3.2)", s2sad.grad(straight_through_f)(3.2), 1.0)
    check("straight_through_f(3.2) (value is round(3.2))", straight_through_f(3.2), 3.0)

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
