"""GradBench eval `lse`: LogSumExp with the max trick, and its gradient."""

import numpy as np

import s2sad

from common import array, grad, primal, tolist


def lse_fn(x):
    # The shift by the maximum is there for floating point alone: the value does not depend on
    # it, so neither does the gradient (its two contributions through `a` cancel). JAX's and
    # PyTorch's logsumexp stop the gradient there; so does this one.
    a = s2sad.stop_gradient(np.max(x))
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
