"""GradBench eval `det`: determinant by expansion along the first row, recursive
on the minors (as in cmpad's det_by_minor), and its gradient.

define() differentiates the recursive function (s2sad.grad, reverse mode) on a
3x3 sample and checks the result against the closed form det(A) inv(A)^T,
refusing rather than answering if they disagree."""

import numpy as np

from common import Unsupported, array, grad, primal, tolist


def det_of_minor(a, m):
    if m == 1:
        return a[0, 0]
    total = 0.0
    sign = 1.0
    for j in range(m):
        minor = np.zeros((m - 1, m - 1))
        for r in range(1, m):
            cc = 0
            for c in range(m):
                if c != j:
                    minor[r - 1, cc] = a[r, c]
                    cc = cc + 1
        total = total + sign * a[0, j] * det_of_minor(minor, m - 1)
        sign = -sign
    return total


F = {}


def define():
    a = np.array([[2.0, 0.5, 0.1], [0.3, 1.5, -0.2], [0.4, 0.1, 1.0]])
    F["primal"] = primal("det.primal", det_of_minor, (a, 3), helpers=("det_of_minor",))
    try:
        g = grad("det.gradient", det_of_minor, (a, 3))
        got = g(a, 3)
    except Exception as e:  # noqa: BLE001
        raise Unsupported("s2sad cannot differentiate the recursive det_of_minor: "
                          f"{type(e).__name__}: {e}") from None
    want = np.linalg.det(a) * np.linalg.inv(a).T
    if not np.allclose(got, want, rtol=1e-8, atol=1e-10):
        raise Unsupported(f"s2sad's gradient of the recursive det_of_minor is wrong: {got} != {want}")
    F["gradient"] = g


def prepare(inp):
    ell = int(inp["ell"])
    return (array(inp["A"]).reshape(ell, ell), ell)


FUNCTIONS = {
    "primal": (prepare, "primal", float),
    "gradient": (prepare, "gradient", lambda g: g.ravel().tolist()),
}
