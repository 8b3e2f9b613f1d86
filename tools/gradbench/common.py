"""Shared helpers for the s2sad GradBench tool: backend choice and repeated runs."""

import os
import sys
import time
import warnings

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import numpy as np

import s2sad

# Why each compiled function runs on the backend it runs on: name -> text.
BACKENDS = {}

# S2SAD_GRADBENCH_BACKEND=python forces the plain-Python backend everywhere.
FORCE = os.environ.get("S2SAD_GRADBENCH_BACKEND")


class Unsupported(Exception):
    """The eval needs a compiler feature s2sad lacks; the message says which."""


def _trial(fn, sample):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*sample)


def pick(name, make, sample):
    """Build `make(backend)` for Numba, run it on `sample` with warnings as errors,
    and fall back to the Python backend (recording why) when that fails."""
    if FORCE != "python":
        try:
            fn = make("numba")
            _trial(fn, sample)
            BACKENDS[name] = "numba"
            return fn
        except Exception as e:  # noqa: BLE001 - any failure means: fall back
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            BACKENDS[name] = f"python (numba failed: {reason[:300]})"
    else:
        BACKENDS[name] = "python (forced)"
    fn = make("python")
    fn(*sample)
    return fn


def primal(name, fun, sample, helpers=()):
    """The undifferentiated function: numba.njit where it compiles, else Python.
    `helpers` names the module-level functions `fun` calls; they are jitted too
    (in a copy of the module's globals, so the Python originals stay as they are).
    They compile as s2sad's Numba backend compiles generated code: with its Numba
    versions of NumPy functions Numba lacks (reductions along an axis) and its
    vectorized exp, log and tanh."""
    def make(backend):
        if backend != "numba":
            return fun
        import types

        import numba

        from s2sad.backends import numba as numba_backend
        glb = dict(fun.__globals__)
        glb["np"] = numba_backend.NUMPY
        for h in helpers:
            glb[h] = numba.njit(types.FunctionType(fun.__globals__[h].__code__, glb, h))
        return numba.njit(types.FunctionType(fun.__code__, glb, fun.__name__))
    return pick(name, make, sample)


def grad(name, fun, sample, **kw):
    return pick(name, lambda backend: s2sad.grad(fun, backend=backend, **kw), sample)


def multiple_runs(compute, args, input):
    """Run `compute(*args)` at least min_runs times and until min_seconds have passed.
    Returns (last result, timings). Inputs without the fields run once."""
    min_runs = int(input.get("min_runs", 1)) if isinstance(input, dict) else 1
    min_seconds = float(input.get("min_seconds", 0)) if isinstance(input, dict) else 0.0
    timings = []
    total = 0
    result = None
    while len(timings) < max(min_runs, 1) or total < min_seconds * 1e9:
        t0 = time.perf_counter_ns()
        result = compute(*args)
        t1 = time.perf_counter_ns()
        timings.append({"name": "evaluate", "nanoseconds": t1 - t0})
        total += t1 - t0
    return result, timings


def tolist(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def array(v):
    return np.asarray(v, dtype=np.float64)


def check_fd(name, fun, jac, sample, argnums, why):
    """Raise Unsupported when s2sad's gradient `jac` disagrees with central
    differences of `fun` on `sample`: the tool refuses rather than report it."""
    got = jac(*sample)
    for pos, a in enumerate(argnums):
        x = sample[a]
        want = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += 1e-6
            xm[i] -= 1e-6
            want[i] = (fun(*sample[:a], xp, *sample[a + 1:]) - fun(*sample[:a], xm, *sample[a + 1:])) / 2e-6
        if not np.allclose(got[pos], want, rtol=1e-5, atol=1e-6):
            raise Unsupported(f"s2sad's gradient of {name} is wrong (argument {a} off by up to "
                              f"{np.max(np.abs(got[pos] - want)):.3g} against central differences): {why}")
