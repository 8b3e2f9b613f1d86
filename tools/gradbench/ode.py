"""GradBench eval `ode`: fourth-order Runge-Kutta with s steps on
y_0' = x_0, y_i' = x_i y_{i-1}; primal is y(2), gradient is d y_{n-1}(2) / dx.

Each Runge-Kutta step is one loop over the components. Component i of every
stage reads only component i - 1 of the stage before, so the loop carries that
component's four stage inputs from one trip to the next and updates y in place:
no array per stage, and a loop that s2sad's reverse mode tapes four floats per
trip of (GradBench's JAX tool builds whole stage vectors, which XLA fuses)."""

import numpy as np

from common import array, grad, primal, tolist


def ode_primal(x, s):
    n = x.shape[0]
    h = 2.0 / s
    y = np.zeros(n)
    for step in range(s):
        # component 0: y_0' = x_0 at every stage
        y_prev = y[0]
        k1_prev = x[0]
        k2_prev = x[0]
        k3_prev = x[0]
        y[0] = y[0] + h * x[0]
        for i in range(1, n):
            # y_i' = x_i y_{i-1}: each stage reads component i - 1 at the stage before
            k1 = x[i] * y_prev
            k2 = x[i] * (y_prev + h * k1_prev / 2.0)
            k3 = x[i] * (y_prev + h * k2_prev / 2.0)
            k4 = x[i] * (y_prev + h * k3_prev)
            y_prev = y[i]
            k1_prev = k1
            k2_prev = k2
            k3_prev = k3
            y[i] = y[i] + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return y


def ode_last(x, s):
    y = ode_primal(x, s)
    return y[x.shape[0] - 1]


F = {}


def define():
    sample = (np.array([0.3, 0.2, 0.1, 0.4]), 3)
    F["primal"] = primal("ode.primal", ode_primal, sample)
    F["gradient"] = grad("ode.gradient", ode_last, sample)


def prepare(inp):
    return (array(inp["x"]), int(inp["s"]))


FUNCTIONS = {
    "primal": (prepare, "primal", tolist),
    "gradient": (prepare, "gradient", tolist),
}
