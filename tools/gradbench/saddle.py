"""GradBench eval `saddle` (Pearlmutter and Siskind): min over x of max over y of
f(x, y) = (x1^2 + x2^2) - (y1^2 + y2^2) by nested gradient descent from `start`,
then the argmax in y at that x; output [x, y]. As in gradbench's
tools/futhark/saddle.fut, the objective of the outer argmin is
r1_cost(x) = f(x, argmax_y f(x, y)), whose inner argmax runs a gradient descent
on -f that calls s2sad's gradient: differentiating r1_cost is nested AD.

Functions `rr`, `rf`, `fr`, `ff`: first letter the mode of the outer argmin
(and of the final argmax), second the mode of the inner one; 'r' is
s2sad.grad, 'f' is s2sad.jacfwd (the gradient of a scalar function by forward
mode). The outer solver is plain Python (solver.argmin); the inner one is
written out below, once per inner mode, in the subset s2sad differentiates."""

import numpy as np

import s2sad
import solver
from common import BACKENDS, array


def saddle_f(p1, p2):
    return (p1[0] ** 2 + p1[1] ** 2) - (p2[0] ** 2 + p2[1] ** 2)


def neg_f(p1, p2):
    return -saddle_f(p1, p2)


def neg_f_xy(p1, y0, y1):
    return -((p1[0] ** 2 + p1[1] ** 2) - (y0 ** 2 + y1 ** 2))


# Inner gradients, in p2, of the inner argmax's objective -f.
inner_grad_r = s2sad.grad(neg_f, argnums=1)
inner_grad_f = s2sad.jacfwd(neg_f_xy, argnums=(1, 2))


def inner_argmax_r(p1, start):
    x = start
    fx = neg_f(p1, x)
    gx = inner_grad_r(p1, x)
    eta = 1e-5
    i = 0
    go = True
    while go:
        if np.sqrt(np.sum(gx * gx)) <= 1e-5:
            go = False
        elif i == 10:
            eta = 2.0 * eta
            i = 0
        else:
            xp = x - eta * gx
            if np.sqrt(np.sum((x - xp) ** 2)) <= 1e-5:
                go = False
            else:
                fxp = neg_f(p1, xp)
                if fxp < fx:
                    x = xp
                    fx = fxp
                    gx = inner_grad_r(p1, xp)
                    i = i + 1
                else:
                    eta = eta / 2.0
                    i = 0
    return x


def inner_argmax_f(p1, start):
    # Forward mode: the gradient in (y0, y1) as two directional derivatives.
    # The point is carried as two scalars because s2sad differentiates a
    # forward-mode derivative again only with respect to scalars (NEEDS.md).
    x0 = start[0]
    x1 = start[1]
    fx = neg_f_xy(p1, x0, x1)
    g0, g1 = inner_grad_f(p1, x0, x1)
    eta = 1e-5
    i = 0
    go = True
    while go:
        if np.sqrt(g0 * g0 + g1 * g1) <= 1e-5:
            go = False
        elif i == 10:
            eta = 2.0 * eta
            i = 0
        else:
            xp0 = x0 - eta * g0
            xp1 = x1 - eta * g1
            if np.sqrt((x0 - xp0) ** 2 + (x1 - xp1) ** 2) <= 1e-5:
                go = False
            else:
                fxp = neg_f_xy(p1, xp0, xp1)
                if fxp < fx:
                    x0 = xp0
                    x1 = xp1
                    fx = fxp
                    g0, g1 = inner_grad_f(p1, xp0, xp1)
                    i = i + 1
                else:
                    eta = eta / 2.0
                    i = 0
    return saddle_f(p1, np.array([x0, x1]))


def r1_cost_r(p1, start):
    """max_y f(p1, y), the inner argmax by reverse mode."""
    return saddle_f(p1, inner_argmax_r(p1, start))


def r1_cost_f(p1, start):
    """max_y f(p1, y), the inner argmax by forward mode."""
    return inner_argmax_f(p1, start)


COSTS = {"r": r1_cost_r, "f": r1_cost_f}
OUTER = {"r": s2sad.grad, "f": s2sad.jacfwd}

F = {}
# The outer gradients, variant -> (gradient of r1_cost in p1, gradient of -f in p2).
GRADS = {}


def make(variant):
    outer, inner = variant[0], variant[1]
    cost = COSTS[inner]
    g_cost = OUTER[outer](cost, argnums=0)
    g_last = OUTER[outer](neg_f, argnums=1)

    def run(start):
        r1 = solver.argmin(lambda p: cost(p, start), lambda p: g_cost(p, start), start)
        r2 = solver.argmin(lambda p: neg_f(r1, p), lambda p: g_last(r1, p), start)
        return np.concatenate([r1, r2])
    GRADS[variant] = (g_cost, g_last)
    return run


# Why a variant cannot run (set by define()).
BLOCKED = {}


def define():
    start = np.array([1.0, 1.0])
    for v in ("rr", "rf", "fr", "ff"):
        fn = make(v)
        try:
            fn(start)
        except Exception as e:  # noqa: BLE001 - rf: reverse over a nested jacfwd
            BLOCKED[v] = f"{type(e).__name__}: {e}"
            F[v] = _blocked(v)
            BACKENDS["saddle." + v] = "blocked: " + BLOCKED[v].splitlines()[0]
            continue
        F[v] = fn
        BACKENDS["saddle." + v] = "python (solver loop in Python; nested gradients on s2sad's default backend)"


def _blocked(v):
    def fail(start):
        raise RuntimeError(f"saddle.{v} cannot run: s2sad refuses reverse mode over a nested forward-mode "
                           f"gradient (NEEDS.md): {BLOCKED[v]}")
    return fail


def prepare(inp):
    return (array(inp["start"]),)


FUNCTIONS = {v: (prepare, v, lambda r: r.tolist()) for v in ("rr", "rf", "fr", "ff")}
