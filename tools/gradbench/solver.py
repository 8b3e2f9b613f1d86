"""The gradient-descent solver of GradBench's saddle and particle evals, as in
gradbench's tools/futhark/solver.fut (Pearlmutter and Siskind's
multivariate-argmin): step x - eta g while it lowers f, doubling eta after 10
accepted steps in a row and halving it after a rejected one; stop when |g| or
the step is at most 1e-5, starting from eta = 1e-5.

This copy takes f and its gradient as Python callables and is only used for
the OUTER optimisation, which is not itself differentiated. The inner solvers
(inside the differentiated objectives) are written out in saddle.py and
particle.py, because s2sad does not differentiate calls of local variables."""

import numpy as np


def argmin(f, g, x):
    x = np.asarray(x, dtype=np.float64)
    fx = f(x)
    gx = np.asarray(g(x), dtype=np.float64)
    eta = 1e-5
    i = 0
    while True:
        if np.sqrt(np.sum(gx * gx)) <= 1e-5:
            return x
        if i == 10:
            eta = 2.0 * eta
            i = 0
            continue
        xp = x - eta * gx
        if np.sqrt(np.sum((x - xp) ** 2)) <= 1e-5:
            return x
        fxp = f(xp)
        if fxp < fx:
            x, fx, gx, i = xp, fxp, np.asarray(g(xp), dtype=np.float64), i + 1
        else:
            eta = eta / 2.0
            i = 0
