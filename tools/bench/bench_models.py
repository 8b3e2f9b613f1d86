"""Vectorized-model benchmarks: s2sad (numba and python backends) against JAX jit(grad) and PyTorch.

Run: python tools/bench/bench_models.py [--repeat 5]
Models: logistic regression, a 2-layer MLP, a GMM log-likelihood (d=10, K=25,
N=1000) and an LSTM over 1024 steps. Every gradient is checked against the
s2sad python backend (and JAX when installed) before timing; times are
best-of-N after a warm-up call, measured side by side in this one run.
JAX and PyTorch are optional (pip install 's2sad[bench]'); missing ones are
skipped with a message.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from timing import best  # tools/bench/timing.py, beside this script

import s2sad  # noqa: E402


def logreg(w, X, y):
    z = X @ w
    return np.sum(np.log(1.0 + np.exp(-y * z)))


def mlp(W1, W2, X, y):
    h = np.tanh(X @ W1)
    out = h @ W2
    return np.mean((out - y) ** 2)


def gmm(mu, X, logw):
    # log-likelihood of N points under K isotropic unit Gaussians with means mu (K, d)
    d2 = np.sum(X * X, axis=1)[:, None] - 2.0 * (X @ mu.T) + np.sum(mu * mu, axis=1)[None, :]
    a = logw[None, :] - 0.5 * d2
    # the shift by the row maximum is for floating point alone: the gradient does not depend on
    # it, and JAX's logsumexp (used by gmm_j below) stops the gradient there too
    m = s2sad.stop_gradient(np.max(a, axis=1))
    return np.sum(m + np.log(np.sum(np.exp(a - m[:, None]), axis=1)))


def lstm(Wx, Wh, xs):
    n = Wh.shape[1]
    h = np.zeros(n)
    c = np.zeros(n)
    for t in range(xs.shape[0]):
        gates = Wx @ xs[t] + Wh @ h
        i = 1.0 / (1.0 + np.exp(-gates[0:n]))
        f = 1.0 / (1.0 + np.exp(-gates[n:2 * n]))
        o = 1.0 / (1.0 + np.exp(-gates[2 * n:3 * n]))
        g = np.tanh(gates[3 * n:4 * n])
        c = f * c + i * g
        h = o * np.tanh(c)
    return np.sum(h * h)


def problems(rng):
    X = rng.standard_normal((1000, 20))
    return [
        ("logistic regression", logreg, (rng.standard_normal(20) * 0.1, X, np.sign(rng.standard_normal(1000)))),
        ("mlp 20-64-1", mlp, (rng.standard_normal((20, 64)) * 0.1, rng.standard_normal(64) * 0.1, X,
                              rng.standard_normal(1000))),
        ("gmm d=10 K=25 N=1000", gmm, (rng.standard_normal((25, 10)), rng.standard_normal((1000, 10)),
                                       np.log(np.full(25, 1 / 25)))),
        ("lstm h=32 T=1024", lstm, (rng.standard_normal((128, 16)) * 0.2, rng.standard_normal((128, 32)) * 0.2,
                                    rng.standard_normal((1024, 16)))),
    ]


def jax_versions():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def logreg_j(w, X, y):
        return jnp.sum(jnp.log(1.0 + jnp.exp(-y * (X @ w))))

    def mlp_j(W1, W2, X, y):
        return jnp.mean((jnp.tanh(X @ W1) @ W2 - y) ** 2)

    def gmm_j(mu, X, logw):
        d2 = jnp.sum(X * X, axis=1)[:, None] - 2.0 * (X @ mu.T) + jnp.sum(mu * mu, axis=1)[None, :]
        return jnp.sum(jax.nn.logsumexp(logw[None, :] - 0.5 * d2, axis=1))

    def lstm_j(Wx, Wh, xs):
        n = Wh.shape[1]

        def step(carry, x):
            h, c = carry
            gates = Wx @ x + Wh @ h
            i, f, o = (jax.nn.sigmoid(gates[k * n:(k + 1) * n]) for k in range(3))
            c = f * c + i * jnp.tanh(gates[3 * n:])
            h = o * jnp.tanh(c)
            return (h, c), None
        (h, _), _ = jax.lax.scan(step, (jnp.zeros(n), jnp.zeros(n)), xs)
        return jnp.sum(h * h)

    def wrap(f):
        g = jax.jit(jax.grad(f))
        return lambda *a: np.asarray(g(*a).block_until_ready())
    return {"logistic regression": wrap(logreg_j), "mlp 20-64-1": wrap(mlp_j),
            "gmm d=10 K=25 N=1000": wrap(gmm_j), "lstm h=32 T=1024": wrap(lstm_j)}


def torch_versions():
    import torch
    torch.set_default_dtype(torch.float64)

    def logreg_t(w, X, y):
        return torch.sum(torch.log(1.0 + torch.exp(-y * (X @ w))))

    def mlp_t(W1, W2, X, y):
        return torch.mean((torch.tanh(X @ W1) @ W2 - y) ** 2)

    def gmm_t(mu, X, logw):
        d2 = torch.sum(X * X, 1)[:, None] - 2.0 * (X @ mu.T) + torch.sum(mu * mu, 1)[None, :]
        return torch.sum(torch.logsumexp(logw[None, :] - 0.5 * d2, 1))

    def lstm_t(Wx, Wh, xs):
        n = Wh.shape[1]
        h = torch.zeros(n)
        c = torch.zeros(n)
        for t in range(xs.shape[0]):
            gates = Wx @ xs[t] + Wh @ h
            i, f, o = (torch.sigmoid(gates[k * n:(k + 1) * n]) for k in range(3))
            c = f * c + i * torch.tanh(gates[3 * n:])
            h = o * torch.tanh(c)
        return torch.sum(h * h)

    def wrap(f):
        def g(first, *rest):
            w = torch.tensor(first, requires_grad=True)
            f(w, *[torch.from_numpy(np.asarray(r)) for r in rest]).backward()
            return w.grad.numpy()
        return g
    return {"logistic regression": wrap(logreg_t), "mlp 20-64-1": wrap(mlp_t),
            "gmm d=10 K=25 N=1000": wrap(gmm_t), "lstm h=32 T=1024": wrap(lstm_t)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    others = {}
    for label, make in (("jax", jax_versions), ("torch", torch_versions)):
        try:
            others[label] = make()
        except ImportError:
            print(f"{label} not installed: skipping its column (pip install 's2sad[bench]')")
    rows = []
    for label, f, fargs in problems(np.random.default_rng(0)):
        ref = s2sad.grad(f, backend="python")(*fargs)
        nb = s2sad.grad(f, backend="numba")
        t0 = time.perf_counter()
        note = ""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = nb(*fargs)
        first = time.perf_counter() - t0
        if caught or not getattr(nb.last.call, "compiled", True):
            note = "numba fell back to python: " + (str(caught[0].message).splitlines()[-1][:80] if caught else "")
        np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-12)
        t = {"numba": best(nb, *fargs, repeat=args.repeat),
             "python": best(s2sad.grad(f, backend="python"), *fargs, repeat=args.repeat)}
        for name, impls in others.items():
            np.testing.assert_allclose(impls[label](*fargs), ref, rtol=1e-7, atol=1e-10)
            t[name] = best(impls[label], *fargs, repeat=args.repeat)
        rows.append((label, t, first, note))
    cols = ["numba", "python"] + list(others)
    print(f"best of {args.repeat} after warm-up; gradient w.r.t. the first argument; times in ms")
    print(f"{'model':22}" + "".join(f"{'s2sad ' + c if c in ('numba', 'python') else c:>14}" for c in cols)
          + "".join(f"{'numba/' + c:>14}" for c in cols[1:]) + f"{'1st call s':>11}")
    for label, t, first, note in rows:
        print(f"{label:22}" + "".join(f"{t[c] * 1e3:14.3f}" for c in cols)
              + "".join(f"{t['numba'] / t[c]:14.2f}" for c in cols[1:]) + f"{first:11.2f}")
        if note:
            print("    " + note)


if __name__ == "__main__":
    main()
