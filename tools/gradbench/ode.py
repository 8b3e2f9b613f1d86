"""GradBench eval `ode`: fourth-order Runge-Kutta with s steps on
y_0' = x_0, y_i' = x_i y_{i-1}; primal is y(2), gradient is d y_{n-1}(2) / dx."""

import numpy as np

from common import array, grad, primal, tolist


def ode_fun(x, y):
    n = x.shape[0]
    z = np.zeros(n)
    z[0] = x[0]
    for i in range(1, n):
        z[i] = x[i] * y[i - 1]
    return z


def ode_primal(x, s):
    n = x.shape[0]
    h = 2.0 / s
    yf = np.zeros(n)
    for step in range(s):
        k1 = ode_fun(x, yf)
        k2 = ode_fun(x, yf + h * k1 / 2.0)
        k3 = ode_fun(x, yf + h * k2 / 2.0)
        k4 = ode_fun(x, yf + h * k3)
        yf = yf + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return yf


def ode_last(x, s):
    y = ode_primal(x, s)
    return y[x.shape[0] - 1]


F = {}


def define():
    sample = (np.array([0.3, 0.2, 0.1, 0.4]), 3)
    F["primal"] = primal("ode.primal", ode_primal, sample, helpers=("ode_fun",))
    F["gradient"] = grad("ode.gradient", ode_last, sample)


def prepare(inp):
    return (array(inp["x"]), int(inp["s"]))


FUNCTIONS = {
    "primal": (prepare, "primal", tolist),
    "gradient": (prepare, "gradient", tolist),
}
