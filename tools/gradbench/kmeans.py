"""GradBench eval `kmeans`: cost(P, C) = sum_i min_j |C_j - P_i|^2 and the Newton
direction dir = J / diag(H): J the gradient in C, H's diagonal (H is diagonal)
obtained as the forward-mode derivative of the gradient along all ones."""

import numpy as np

import s2sad
from common import array, pick, primal, tolist


def cost_fn(points, centroids):
    n = points.shape[0]
    d = points.shape[1]
    # Each point's nearest centroid, from all the squared distances at once by a matrix product
    # (as GradBench's JAX tool computes them). Only the choice is kept: an integer, which
    # carries no derivative, so s2sad's derivative code does none of this work.
    p2 = np.sum(points * points, axis=1)
    c2 = np.sum(centroids * centroids, axis=1)
    d2 = p2[:, None] + c2[None, :] - 2.0 * (points @ centroids.T)
    nearest = np.argmin(d2, axis=1)
    # The cost itself, each distance computed exactly (the expanded square above can round a
    # small distance to a slightly negative number); a loop over coordinates makes no array
    # per point.
    total = 0.0
    for i in range(n):
        j = nearest[i]
        for t in range(d):
            diff = points[i, t] - centroids[j, t]
            total = total + diff * diff
    return total


def cost_of_centroids(centroids, points):
    return cost_fn(points, centroids)


F = {}


def _make_dir(backend):
    g = s2sad.grad(cost_of_centroids, backend=backend)

    def direction(points, centroids):
        # Forward over reverse; points are held constant (a None tangent).
        jac, hdiag = s2sad.jvp(g, (centroids, points), (np.ones_like(centroids), None), backend=backend)
        return jac / hdiag
    return direction


def define():
    points = np.array([[0.0, 0.1], [1.0, 1.1], [0.2, -0.1], [0.9, 1.0]])
    centroids = np.array([[0.1, 0.0], [1.0, 1.0]])
    F["cost"] = primal("kmeans.cost", cost_fn, (points, centroids))
    F["dir"] = pick("kmeans.dir", _make_dir, (points, centroids))


def prepare(inp):
    return (array(inp["points"]), array(inp["centroids"]))


FUNCTIONS = {
    "cost": (prepare, "cost", float),
    "dir": (prepare, "dir", tolist),
}
