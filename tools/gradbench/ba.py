"""GradBench eval `ba`: ADBench's bundle adjustment. The input is one camera
(11 parameters: Rodrigues rotation, center, focal length, principal point,
two radial distortion coefficients), one point, one weight and one feature,
replicated to n cameras, m points and p observations; observation i sees
camera i mod n and point i mod m (as in gradbench's tools/futhark/ba.py).

objective: the reprojection errors w_i (project(cam, X) - feat_i) (2 per
observation) and the weight errors 1 - w_i^2, reported in GradBench's
compressed form (the first element and how many there are, since every
replica is equal). jacobian: the sparse (3p) x (11n + 3m + p) Jacobian in CSR
form (rows = row pointers, cols, vals), assembled block by block: each
observation's 2 x 15 block is s2sad.jacrev of the per-observation residual
in its 15 parameters (camera, point, weight), each weight row is
s2sad.grad of 1 - w^2."""

import numpy as np

import s2sad
from common import BACKENDS, pick, primal


def reproj_err(prm, feat):
    """prm = camera (11), point (3), weight (1): the weighted 2-D reprojection error."""
    r0 = prm[0]
    r1 = prm[1]
    r2 = prm[2]
    p0 = prm[11] - prm[3]
    p1 = prm[12] - prm[4]
    p2 = prm[13] - prm[5]
    sqtheta = r0 * r0 + r1 * r1 + r2 * r2
    if sqtheta != 0.0:
        theta = np.sqrt(sqtheta)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        w0 = r0 / theta
        w1 = r1 / theta
        w2 = r2 / theta
        tmp = (w0 * p0 + w1 * p1 + w2 * p2) * (1.0 - costheta)
        x0 = costheta * p0 + sintheta * (w1 * p2 - w2 * p1) + tmp * w0
        x1 = costheta * p1 + sintheta * (w2 * p0 - w0 * p2) + tmp * w1
        x2 = costheta * p2 + sintheta * (w0 * p1 - w1 * p0) + tmp * w2
    else:
        x0 = p0 + (r1 * p2 - r2 * p1)
        x1 = p1 + (r2 * p0 - r0 * p2)
        x2 = p2 + (r0 * p1 - r1 * p0)
    u = x0 / x2
    v = x1 / x2
    rsq = u * u + v * v
    big_l = 1.0 + prm[9] * rsq + prm[10] * rsq * rsq
    out = np.zeros(2)
    out[0] = prm[14] * (prm[7] + prm[6] * big_l * u - feat[0])
    out[1] = prm[14] * (prm[8] + prm[6] * big_l * v - feat[1])
    return out


def weight_err(w):
    return 1.0 - w * w


def objective(cams, xs, ws, obs, feats):
    p = ws.shape[0]
    reproj = np.zeros((p, 2))
    werr = np.zeros(p)
    prm = np.zeros(15)
    for i in range(p):
        prm[0:11] = cams[obs[i, 0]]
        prm[11:14] = xs[obs[i, 1]]
        prm[14] = ws[i]
        reproj[i] = reproj_err(prm, feats[i])
        werr[i] = weight_err(ws[i])
    return reproj, werr


F = {}


def _make_jacobian(block, dw):
    def jacobian(cams, xs, ws, obs, feats):
        n, m, p = cams.shape[0], xs.shape[0], ws.shape[0]
        rows = np.concatenate([15 * np.arange(2 * p), 30 * p + np.arange(p + 1)])
        cols = np.zeros(30 * p + p, dtype=np.int64)
        vals = np.zeros(30 * p + p)
        prm = np.zeros(15)
        for i in range(p):
            ci, pi = obs[i, 0], obs[i, 1]
            prm[0:11] = cams[ci]
            prm[11:14] = xs[pi]
            prm[14] = ws[i]
            jb = block(prm, feats[i])          # 2 x 15
            idx = np.concatenate([11 * ci + np.arange(11), 11 * n + 3 * pi + np.arange(3), [11 * n + 3 * m + i]])
            for r in range(2):
                k = 30 * i + 15 * r
                cols[k:k + 15] = idx
                vals[k:k + 15] = jb[r]
        for i in range(p):
            cols[30 * p + i] = 11 * n + 3 * m + i
            vals[30 * p + i] = dw(float(ws[i]))
        return rows, cols, vals
    return jacobian


def _sample():
    return prepare({"n": 2, "m": 3, "p": 4, "cam": [0.1, -0.2, 0.3, 1.0, 2.0, -3.0, 100.0, 0.5, -0.5, 0.01, 0.001],
                    "x": [0.3, -0.4, 5.0], "w": 0.9, "feat": [1.0, 2.0]})


def define():
    cam = np.array([0.1, -0.2, 0.3, 1.0, 2.0, -3.0, 100.0, 0.5, -0.5, 0.01, 0.001])
    prm = np.concatenate([cam, [0.3, -0.4, 5.0, 0.9]])
    feat = np.array([1.0, 2.0])
    block = pick("ba.block", lambda b: s2sad.jacrev(reproj_err, backend=b), (prm, feat))
    dw = pick("ba.dweight", lambda b: s2sad.grad(weight_err, backend=b), (0.9,))
    F["objective"] = primal("ba.objective", objective, _sample(), helpers=("reproj_err", "weight_err"))
    F["jacobian"] = _make_jacobian(block, dw)
    F["jacobian"](*_sample())
    BACKENDS["ba.jacobian"] = "python loop over observations calling the blocks above"


def prepare(inp):
    n, m, p = int(inp["n"]), int(inp["m"]), int(inp["p"])
    cams = np.tile(np.asarray(inp["cam"], dtype=np.float64), (n, 1))
    xs = np.tile(np.asarray(inp["x"], dtype=np.float64), (m, 1))
    ws = np.full(p, float(inp["w"]))
    feats = np.tile(np.asarray(inp["feat"], dtype=np.float64), (p, 1))
    obs = np.zeros((p, 2), dtype=np.int64)
    obs[:, 0] = np.arange(p) % n
    obs[:, 1] = np.arange(p) % m
    return (cams, xs, ws, obs, feats)


def post_objective(r):
    reproj, werr = r
    return {"reproj_error": {"elements": reproj[0].tolist(), "repeated": int(reproj.shape[0])},
            "w_err": {"element": float(werr[0]), "repeated": int(werr.shape[0])}}


def post_jacobian(r):
    rows, cols, vals = r
    return {"rows": rows.tolist(), "cols": cols.tolist(), "vals": vals.tolist()}


FUNCTIONS = {
    "objective": (prepare, "objective", post_objective),
    "jacobian": (prepare, "jacobian", post_jacobian),
}
