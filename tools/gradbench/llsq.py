"""GradBench eval `llsq`: linear least squares objective of cmpad, and its gradient.

y(x) = 1/2 sum_i (s_i - sum_j x_j t_i^j)^2, t_i = -1 + 2 i / (n - 1), s_i = sign(t_i).
"""

import numpy as np

from common import array, grad, primal, tolist


def llsq_fn(x, n):
    m = x.shape[0]
    total = 0.0
    for i in range(n):
        ti = -1.0 + (i * 2.0) / (n - 1.0)
        si = 0.0
        if ti > 0.0:
            si = 1.0
        elif ti < 0.0:
            si = -1.0
        r = si
        p = 1.0
        for j in range(m):
            r = r - x[j] * p
            p = p * ti
        total = total + r * r
    return total / 2.0


F = {}


def define():
    sample = (np.array([0.1, -0.2, 0.3]), 5)
    F["primal"] = primal("llsq.primal", llsq_fn, sample)
    F["gradient"] = grad("llsq.gradient", llsq_fn, sample)


def prepare(inp):
    return (array(inp["x"]), int(inp["n"]))


FUNCTIONS = {
    "primal": (prepare, "primal", float),
    "gradient": (prepare, "gradient", tolist),
}
