"""s2sad demo: reverse-mode derivatives of plain Python + NumPy functions.

Every gradient printed here is checked against a reference s2sad did not
compute (a closed form or a central finite difference). The script prints
"ok" or "MISMATCH" per check and exits 1 if any check fails.

Run:  python examples/demo.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, rtol=1e-7, atol=1e-9):
    """Print one comparison and remember whether it held."""
    ok = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: s2sad = {_fmt(got)}, reference = {_fmt(want)}")
    if not ok:
        FAILURES.append(label)


def _fmt(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return np.array2string(np.asarray(v), precision=10) if np.ndim(v) else f"{float(v):.10g}"


def central_difference(f, args, i, h=1e-6):
    """(f(.., x+h, ..) - f(.., x-h, ..)) / 2h for the scalar argument i."""
    plus, minus = list(args), list(args)
    plus[i] = args[i] + h
    minus[i] = args[i] - h
    return (f(*plus) - f(*minus)) / (2 * h)


# ---- 1. a NumPy ufunc -------------------------------------------------------
def demo_tanh():
    print("1. grad(np.tanh) against 1 - tanh(x)**2")
    dtanh = s2sad.grad(np.tanh)
    for x in (0.0, 0.5, 2.0):
        check(f"d/dx tanh({x})", dtanh(x), 1 - np.tanh(x) ** 2)


# ---- 2. a polynomial -------------------------------------------------------
def cubic(x):
    return x ** 3 + 2 * x ** 2 - 3 * x + 1


def demo_cubic():
    print("2. grad of x**3 + 2*x**2 - 3*x + 1 (derivative 3x**2 + 4x - 3)")
    dcubic = s2sad.grad(cubic)
    check("d/dx cubic(1.0)", dcubic(1.0), 4.0)
    check("d/dx cubic(-2.0)", dcubic(-2.0), 3 * 4.0 - 8.0 - 3.0)
    value, g = s2sad.value_and_grad(cubic)(2.0)
    check("value_and_grad(cubic)(2.0)", (value, g), (cubic(2.0), 17.0))


# ---- 3. argnums --------------------------------------------------------------
def product(x, y):
    return x * y


def demo_argnums():
    print("3. argnums picks the argument(s) to differentiate")
    check("grad(product, argnums=0)(3.0, 4.0)", s2sad.grad(product)(3.0, 4.0), 4.0)
    check("grad(product, argnums=1)(3.0, 4.0)", s2sad.grad(product, argnums=1)(3.0, 4.0), 3.0)
    check("grad(product, argnums=(0, 1))(3.0, 4.0)",
          s2sad.grad(product, argnums=(0, 1))(3.0, 4.0), (4.0, 3.0))


# ---- 4. linear regression ------------------------------------------------------
def rms(w, b, xs, ys):
    return np.sqrt(np.mean((w * xs + b - ys) ** 2))


def demo_rms():
    print("4. root-mean-square error of a linear model, gradient w.r.t. (w, b)")
    xs, ys = np.array([42.0]), np.array([500.0])
    gw, gb = s2sad.grad(rms, argnums=(0, 1))(13.0, 0.0, xs, ys)
    # 13 * 42 = 546 > 500, so rms = w*42 + b - 500 locally: gradient (42, 1)
    check("grad(rms, argnums=(0, 1))(13.0, 0.0, [42.], [500.])", (gw, gb), (42.0, 1.0))
    check("  ... w-component against a central difference", gw,
          central_difference(rms, (13.0, 0.0, xs, ys), 0), rtol=1e-6)


# ---- 5. stop_gradient --------------------------------------------------------
def half_frozen(x):
    return s2sad.stop_gradient(x) * x


def demo_stop_gradient():
    print("5. stop_gradient: d/dx [stop_gradient(x) * x] treats the first factor as a constant")
    check("grad(half_frozen)(3.0)", s2sad.grad(half_frozen)(3.0), 3.0)


# ---- 6. a loop with a branch: explicit Euler ODE integration --------------------
def decay(k, y0, dt, steps):
    """Integrate y' = -k*y + f(t) with explicit Euler; f switches on halfway."""
    y = y0
    t = 0.0
    for i in range(steps):
        if t < 0.5 * steps * dt:
            forcing = 0.0
        else:
            forcing = np.sin(t)
        y = y + dt * (-k * y + forcing)
        t = t + dt
    return y * y


def demo_euler():
    print("6. explicit Euler integrator (a `for` loop with an `if`), d/dk of y(T)**2")
    dk = s2sad.grad(decay)
    args = (0.7, 2.0, 0.01, 400)
    g = dk(*args)
    check("grad(decay)(k=0.7, y0=2.0, dt=0.01, steps=400)", g,
          central_difference(decay, args, 0), rtol=1e-6)
    dboth = s2sad.grad(decay, argnums=(0, 1))
    gk, gy0 = dboth(*args)
    check("  ... d/dy0 against a central difference", gy0, central_difference(decay, args, 1), rtol=1e-6)
    return dk, dboth


def main():
    demo_tanh()
    demo_cubic()
    demo_argnums()
    demo_rms()
    demo_stop_gradient()
    dk, dboth = demo_euler()
    print()
    print("Generated code for d/dk alone (s2sad.source): with respect to one float, grad runs")
    print("in forward mode, a tangent carried beside each value through one sweep:")
    print("-" * 72)
    print(s2sad.source(dk))
    print("-" * 72)
    print("Generated reverse-mode code for d/dk and d/dy0 together (s2sad.source): a forward")
    print("sweep that records what the backward sweep needs, then the backward sweep:")
    print("-" * 72)
    print(s2sad.source(dboth))
    print("-" * 72)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
