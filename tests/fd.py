"""Reference derivatives that s2sad does not compute: central finite differences in float64."""

import numpy as np


def numerical_grad(f, args, argnum=0, eps=1e-6):
    """d f(*args) / d args[argnum] by central differences; args[argnum] a float or float array."""
    args = list(args)
    x = args[argnum]
    if np.ndim(x) == 0:
        def at(v):
            a = list(args)
            a[argnum] = v
            return float(f(*a))
        h = eps * max(1.0, abs(float(x)))
        return (at(float(x) + h) - at(float(x) - h)) / (2 * h)
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        h = eps * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        a, b = list(args), list(args)
        a[argnum], b[argnum] = up, down
        g[k] = (float(f(*a)) - float(f(*b))) / (2 * h)
    return g


def assert_grad_matches(grad_value, f, args, argnum=0, rtol=1e-5, atol=1e-7):
    reference = numerical_grad(f, args, argnum)
    np.testing.assert_allclose(grad_value, reference, rtol=rtol, atol=atol)
