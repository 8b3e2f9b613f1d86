"""`check_grads`: s2sad's derivatives against central finite differences.

Checks reverse mode (a vector-Jacobian product with a random cotangent) and
forward mode (a Jacobian-vector product along a random direction) against
central differences of the function itself, and for `order > 1` the same
for the derivative functions, recursively, as JAX's `check_grads` does.
"""

import numpy as np

from . import api


def _random_like(x, rng):
    return rng.standard_normal(np.shape(x)) if np.ndim(x) else float(rng.standard_normal())


def _directional_fd(f, args, direction, eps):
    plus = [a + eps * d for a, d in zip(args, direction)]
    minus = [a - eps * d for a, d in zip(args, direction)]
    return (np.asarray(f(*plus), dtype=float) - np.asarray(f(*minus), dtype=float)) / (2 * eps)


def _close(name, got, want, atol, rtol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol):
        diff = np.max(np.abs(got - want)) if got.shape == want.shape else "shape mismatch"
        raise AssertionError(f"{name} does not match finite differences (atol={atol}, rtol={rtol}):\n"
                             f"  s2sad:              {got!r}\n  finite differences: {want!r}\n"
                             f"  max abs difference: {diff}")


def check_grads(f, args, order, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Raise AssertionError unless s2sad's derivatives of `f` at `args` match finite differences."""
    args = [float(a) if np.ndim(a) == 0 else np.asarray(a, dtype=float) for a in args]
    atol = 1e-5 if atol is None else atol
    rtol = 1e-5 if rtol is None else rtol
    eps = 1e-6 if eps is None else eps
    rng = np.random.default_rng(0)
    direction = [_random_like(a, rng) for a in args]
    fd = _directional_fd(f, args, direction, eps)
    if "fwd" in modes:
        _, tangent = api.jvp(f, args, direction)
        _close(f"jvp of {getattr(f, '__name__', f)}", tangent, fd, atol, rtol)
    if "rev" in modes:
        out, vjp_fn = api.vjp(f, *args)
        cotangent = _random_like(out, rng)
        cotangents = vjp_fn(cotangent)
        projected = sum(np.sum(c * d) for c, d in zip(cotangents, direction))
        _close(f"vjp of {getattr(f, '__name__', f)}", projected, np.sum(np.asarray(cotangent) * fd), atol, rtol)
    if order > 1:
        if np.ndim(f(*args)) != 0:
            raise ValueError("check_grads with order > 1 needs a scalar-valued function")
        for i in range(len(args)):
            # derivatives of the gradient are checked in forward mode: forward over reverse
            check_grads(api.grad(f, argnums=i), args, order - 1, ("fwd",), atol, rtol, eps)
