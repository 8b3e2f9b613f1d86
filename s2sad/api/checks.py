"""`check_grads`: s2sad's derivatives against central finite differences.

Checks reverse mode (a vector-Jacobian product with a random cotangent) and
forward mode (a Jacobian-vector product along a random direction) against
central differences of the function itself, and for `order > 1` the same
for the derivative functions, recursively, as JAX's `check_grads` does.
"""

import numpy as np

from . import transforms as api
from ..normalize import pytree
from ..errors import S2SADError


def _is_float(leaf):
    return isinstance(leaf, (float, np.floating)) or (isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f")


def _as_float64(arg):
    """`arg` with its float leaves in float64 (finite differences need it); other leaves, such as
    a loop count, are left as they are and not differentiated."""
    def leaf(v):
        if not _is_float(v):
            return v
        return np.asarray(v, dtype=float) if isinstance(v, np.ndarray) else float(v)
    return pytree.tree_map(leaf, arg)


def _random_like(x, rng):
    return rng.standard_normal(np.shape(x)) if np.ndim(x) else float(rng.standard_normal())


def _direction(arg, rng):
    """A random tangent for `arg`'s float leaves (0.0 for its other leaves); None if it has none."""
    if not any(_is_float(v) for v in pytree.tree_leaves(arg)):
        return None
    return pytree.tree_map(lambda v: _random_like(v, rng) if _is_float(v) else 0.0, arg)


def _flat(tree):
    """A value of any structure (a scalar, an array, a pytree of them) as one float vector."""
    return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in pytree.tree_leaves(tree)])


def _moved(args, direction, step):
    return [a if d is None else pytree.tree_map(lambda v, t: v + step * t if _is_float(v) else v, a, d)
            for a, d in zip(args, direction)]


def _directional_fd(f, args, direction, eps):
    return (_flat(f(*_moved(args, direction, eps))) - _flat(f(*_moved(args, direction, -eps)))) / (2 * eps)


def _close(name, got, want, atol, rtol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol):
        diff = np.max(np.abs(got - want)) if got.shape == want.shape else "shape mismatch"
        raise AssertionError(f"{name} does not match finite differences (atol={atol}, rtol={rtol}):\n"
                             f"  s2sad:              {got!r}\n  finite differences: {want!r}\n"
                             f"  max abs difference: {diff}")


def check_grads(f, args, order, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Raise AssertionError unless s2sad's derivatives of `f` at `args` match finite differences.

    The float leaves of `args` (floats, float arrays, and those inside dicts/lists/tuples) are
    differentiated; other arguments, such as a loop count, are passed through as they are."""
    args = [_as_float64(a) for a in args]
    atol = 1e-5 if atol is None else atol
    rtol = 1e-5 if rtol is None else rtol
    eps = 1e-6 if eps is None else eps
    rng = np.random.default_rng(0)
    direction = [_direction(a, rng) for a in args]
    if all(d is None for d in direction):
        raise S2SADError(f"check_grads: no argument of {getattr(f, '__name__', f)} is a float or float array, "
                         "so there is nothing to differentiate\n  hint: pass floats, e.g. 1.0 instead of 1")
    fd = _directional_fd(f, args, direction, eps)
    if "fwd" in modes:
        _, tangent = api.jvp(f, args, direction)
        _close(f"jvp of {getattr(f, '__name__', f)}", _flat(tangent), fd, atol, rtol)
    if "rev" in modes:
        out, vjp_fn = api.vjp(f, *args)
        cotangent = pytree.tree_map(lambda o: _random_like(o, rng), out)
        cotangents = vjp_fn(cotangent)
        projected = sum(np.dot(_flat(c), _flat(d)) for c, d in zip(cotangents, direction) if d is not None)
        _close(f"vjp of {getattr(f, '__name__', f)}", projected, np.dot(_flat(cotangent), fd), atol, rtol)
    if order > 1:
        out = f(*args)
        if pytree.is_container(out) or np.ndim(out) != 0:
            raise ValueError("check_grads with order > 1 needs a scalar-valued function")
        for i, d in enumerate(direction):
            if d is not None:
                # derivatives of the gradient are checked in forward mode: forward over reverse
                check_grads(api.grad(f, argnums=i), args, order - 1, ("fwd",), atol, rtol, eps)
