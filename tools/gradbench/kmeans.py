"""GradBench eval `kmeans`: cost(P, C) = sum_i min_j |C_j - P_i|^2 and the Newton
direction dir = J / diag(H): J the gradient in C, H's diagonal (H is diagonal)
obtained as the forward-mode derivative of the gradient along all ones."""

import numpy as np

import s2sad
from common import array, pick, primal, tolist


def cost_fn(points, centroids):
    n = points.shape[0]
    d = points.shape[1]
    k = centroids.shape[0]
    total = 0.0
    for i in range(n):
        best = 0.0
        for j in range(k):
            dist = 0.0
            for t in range(d):  # a loop over coordinates: no array per (point, centroid) pair
                diff = points[i, t] - centroids[j, t]
                dist = dist + diff * diff
            if j == 0 or dist < best:
                best = dist
        total = total + best
    return total


def cost_of_centroids(centroids, points):
    return cost_fn(points, centroids)


F = {}


def _make_dir(backend):
    g = s2sad.grad(cost_of_centroids, backend=backend)

    def direction(points, centroids):
        # Forward over reverse. points gets a zero tangent: s2sad's jvp
        # differentiates with respect to every float argument.
        jac, hdiag = s2sad.jvp(g, (centroids, points),
                               (np.ones_like(centroids), np.zeros_like(points)), backend=backend)
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
