"""GradBench eval `particle` (Pearlmutter and Siskind): a unit charge starts at
(0, 8) with velocity (0.75, 0) in the potential of two unit charges at (10, 0)
and (10, 10 - w); naive Euler steps (dt = 0.1, force = -grad_x p) until it
would cross the x axis, then linear interpolation to the crossing point; the
control w minimises x(t_f)^2 by gradient descent from the input `w`. Output:
the final w. As in gradbench's tools/futhark/particle.fut; the force inside
the simulated objective is s2sad's gradient of the potential, so
differentiating the objective in w is nested AD.

Functions `rr`, `rf`, `fr`, `ff`: first letter the mode of the argmin
(s2sad.grad or s2sad.jacfwd of the objective in w), second the mode of the
gradient of the potential inside the Euler loop (s2sad.grad in the point, or
s2sad.jacfwd in its two coordinates: Futhark's pgrad_f)."""

import numpy as np

import s2sad
import solver
from common import BACKENDS


def potential(x, w):
    return (1.0 / np.sqrt((x[0] - 10.0) ** 2 + (x[1] - (10.0 - w)) ** 2)
            + 1.0 / np.sqrt((x[0] - 10.0) ** 2 + x[1] ** 2))


def potential_xy(x0, x1, w):
    return (1.0 / np.sqrt((x0 - 10.0) ** 2 + (x1 - (10.0 - w)) ** 2)
            + 1.0 / np.sqrt((x0 - 10.0) ** 2 + x1 ** 2))


force_r = s2sad.grad(potential)                         # reverse, in the point x
force_f = s2sad.jacfwd(potential_xy, argnums=(0, 1))    # forward, in (x0, x1)


def naive_euler_r(wv):
    w = wv[0]
    x = np.array([0.0, 8.0])
    xdot = np.array([0.75, 0.0])
    dt = 0.1
    go = True
    while go:
        xddot = -force_r(x, w)
        x_new = x + dt * xdot
        if x_new[1] > 0.0:
            x = x_new
            xdot = xdot + dt * xddot
        else:
            go = False
    dtf = -x[1] / xdot[1]
    xtf = x[0] + dtf * xdot[0]
    return xtf * xtf


def naive_euler_f(wv):
    w = wv[0]
    x0 = 0.0
    x1 = 8.0
    v0 = 0.75
    v1 = 0.0
    dt = 0.1
    go = True
    while go:
        g0, g1 = force_f(x0, x1, w)
        n0 = x0 + dt * v0
        n1 = x1 + dt * v1
        if n1 > 0.0:
            x0 = n0
            x1 = n1
            v0 = v0 - dt * g0
            v1 = v1 - dt * g1
        else:
            go = False
    dtf = -x1 / v1
    xtf = x0 + dtf * v0
    return xtf * xtf


OBJECTIVES = {"r": naive_euler_r, "f": naive_euler_f}
OUTER = {"r": s2sad.grad, "f": s2sad.jacfwd}

F = {}
BLOCKED = {}


def make(variant):
    obj = OBJECTIVES[variant[1]]
    g = OUTER[variant[0]](obj)

    def run(w0):
        return float(solver.argmin(obj, g, np.array([w0]))[0])
    return run


def _blocked(v):
    def fail(w0):
        raise RuntimeError(f"particle.{v} cannot run: s2sad refuses reverse mode over a nested "
                           f"forward-mode gradient (NEEDS.md): {BLOCKED[v]}")
    return fail


def define():
    for v in ("rr", "rf", "fr", "ff"):
        fn = make(v)
        try:
            fn(0.0)
        except Exception as e:  # noqa: BLE001 - rf: reverse over a nested jacfwd
            BLOCKED[v] = f"{type(e).__name__}: {e}"
            F[v] = _blocked(v)
            BACKENDS["particle." + v] = "blocked: " + BLOCKED[v].splitlines()[0]
            continue
        F[v] = fn
        BACKENDS["particle." + v] = "python (solver loop in Python; nested gradients on s2sad's default backend)"


def prepare(inp):
    return (float(inp["w"]),)


FUNCTIONS = {v: (prepare, v, float) for v in ("rr", "rf", "fr", "ff")}
