"""GradBench eval `lse`: LogSumExp with the max trick, and its gradient."""

import numpy as np

from common import array, grad, primal, tolist


def lse_fn(x):
    a = np.max(x)
    return a + np.log(np.sum(np.exp(x - a)))


F = {}


def define():
    sample = (np.array([0.5, -1.0, 2.0]),)
    F["primal"] = primal("lse.primal", lse_fn, sample)
    F["gradient"] = grad("lse.gradient", lse_fn, sample)


def prepare(inp):
    return (array(inp["x"]),)


FUNCTIONS = {
    "primal": (prepare, "primal", float),
    "gradient": (prepare, "gradient", tolist),
}
