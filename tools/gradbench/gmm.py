"""GradBench eval `gmm`: Gaussian mixture log-likelihood with a Wishart prior
(ADBench's objective) and its gradient with respect to alpha, mu, q (log-diagonal
of the Cholesky factors) and l (their strictly lower part).

The objective is written the way GradBench's JAX and PyTorch tools write it:
vectorized over the n points, one component at a time, with each component's
triangular factor as a d x d matrix. (An earlier version looped over points,
components and matrix entries, as ADBench's C++ does; its gradient took 25 times
JAX's.) tests/test_gradbench.py checks it against that loop formulation.

Inputs come in GradBench's current format (`mu`, `q`, `l`) or the older
ADBench one (`means`, `icf` with q and l concatenated per row)."""

import math

import numpy as np
from common import array, check_fd, grad, primal


def logsumexp(v):
    mx = np.max(v)
    return mx + np.log(np.sum(np.exp(v - mx)))


def lower_placement(d):
    """The (d*d, d(d-1)/2) matrix P of zeros and ones such that (P @ l_k).reshape(d, d) is the
    strictly lower triangle holding l_k's entries column by column (ADBench's layout)."""
    placement = np.zeros((d * d, d * (d - 1) // 2))
    idx = 0
    for i in range(d):
        for j in range(i + 1, d):
            placement[j * d + i, idx] = 1.0
            idx += 1
    return placement


def gmm_fn(alpha, mu, q, l, x, gamma, m, log_gamma_distrib, placement):
    n = x.shape[0]
    d = x.shape[1]
    k = alpha.shape[0]
    constant = -n * d * 0.5 * math.log(2.0 * math.pi)
    qdiags = np.exp(q)
    sum_qs = np.sum(q, axis=1)
    lower = l @ placement.T            # row ik: component ik's strictly lower factor, flattened
    main_term = np.zeros((n, k))
    for ik in range(k):
        xc = x - mu[ik]
        qx = xc * qdiags[ik] + xc @ lower[ik].reshape((d, d)).T    # Q_k (x_i - mu_k) for every point i
        main_term[:, ik] = alpha[ik] + sum_qs[ik] - 0.5 * np.sum(qx * qx, axis=1)
    mx = np.max(main_term, axis=1)
    slse = np.sum(mx + np.log(np.sum(np.exp(main_term - mx[:, None]), axis=1)))
    err = constant + slse - n * logsumexp(alpha)
    # log Wishart prior
    nw = d + m + 1
    c = nw * d * (math.log(gamma) - 0.5 * math.log(2.0)) - log_gamma_distrib
    frobenius = np.sum(qdiags * qdiags) + np.sum(l * l)
    out = 0.5 * gamma * gamma * frobenius - m * np.sum(sum_qs)
    return err - out + k * c


def log_gamma_distrib(a, p):
    out = 0.25 * p * (p - 1) * math.log(math.pi)
    for j in range(1, p + 1):
        out += math.lgamma(a + 0.5 * (1 - j))
    return out


F = {}


def _sample():
    rng = np.random.default_rng(0)
    d, k, n = 3, 2, 4
    return (rng.normal(size=k), rng.normal(size=(k, d)), rng.normal(size=(k, d)),
            rng.normal(size=(k, d * (d - 1) // 2)), rng.normal(size=(n, d)), 1.0, 0,
            log_gamma_distrib(0.5 * (d + 1), d), lower_placement(d))


def define():
    sample = _sample()
    F["objective"] = primal("gmm.objective", gmm_fn, sample, helpers=("logsumexp",))
    jac = grad("gmm.jacobian", gmm_fn, sample, argnums=(0, 1, 2, 3))
    check_fd("gmm_fn", gmm_fn, jac, sample, (0, 1, 2, 3), "see NEEDS.md")
    F["jacobian"] = jac


def prepare(inp):
    d, k = int(inp["d"]), int(inp["k"])
    if "icf" in inp:
        icf = array(inp["icf"]).reshape(k, -1)
        mu = array(inp["means"]).reshape(k, d)
        q, l = icf[:, :d].copy(), icf[:, d:].copy()
    else:
        mu = array(inp["mu"]).reshape(k, d)
        q = array(inp["q"]).reshape(k, d)
        l = array(inp["l"]).reshape(k, d * (d - 1) // 2)
    x = array(inp["x"]).reshape(-1, d)
    m = int(inp["m"])
    return (array(inp["alpha"]), mu, q, l, x, float(inp["gamma"]), m,
            log_gamma_distrib(0.5 * (d + m + 1), d), lower_placement(d))


def _post_jacobian_for(inp):
    if "icf" in inp:   # old ADBench layout: one flat vector alpha, means, icf
        def post(g):
            ga, gmu, gq, gl = g
            return np.concatenate([ga.ravel(), gmu.ravel(),
                                   np.concatenate([gq, gl], axis=1).ravel()]).tolist()
    else:              # current layout (cpp/gradbench/evals/gmm.hpp to_json)
        def post(g):
            ga, gmu, gq, gl = g
            return {"alpha": ga.tolist(), "mu": gmu.tolist(), "q": gq.tolist(), "l": gl.tolist()}
    return post


FUNCTIONS = {
    "objective": (prepare, "objective", float),
    "jacobian": (prepare, "jacobian", _post_jacobian_for),
}
