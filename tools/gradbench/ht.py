"""GradBench eval `ht`: ADBench's hand tracking. A skinned hand model (bones
with base relative and inverse base absolute 4x4 transforms, a parent per
bone, homogeneous base vertex positions, per-vertex bone weights) is posed by
theta (26 numbers: global rotation (angle-axis), global translation, and 4
angles for each of the 5 fingers); the residuals are, for each data point,
the point minus its corresponding model position (3 per point):

- simple variant (`us` empty): the model position is vertex correspondences[i];
- complicated variant: it is the point of triangle correspondences[i] with
  barycentric coordinates us[i] = (u0, u1): u0 v0 + u1 v1 + (1 - u0 - u1) v2.

objective: the 3 n residuals, flat (point-major). jacobian: the 3n x 26
Jacobian in theta (simple), or the 3n x (2 + 26) Jacobian (complicated)
whose first two columns hold d err_i / d us[i] (the us part is block
diagonal, 3x2 blocks, so it is reported compressed, as in gradbench's
tools/manual and tools/pytorch). Both come from one s2sad.jacfwd: of the
objective in theta (simple), and of the objective with every us[i] shifted by
the same du (a 2-vector, evaluated at du = 0) in (du, theta) for the
complicated variant: since err_i depends on us[i] only, d err_i / d du is
exactly d err_i / d us[i] (the compressed Jacobian by seeding)."""

import numpy as np
from common import BACKENDS, Unsupported, array, pick  # first: puts s2sad on sys.path

import s2sad


def to_pose_params(theta, n_bones):
    """theta (26) -> (n_bones + 3) x 3: global rotation, scale (ones),
    global translation, then one row of Euler angles (x, z, y) per bone: the
    first two angles of each finger's first bone and the first angle of its
    next two (the fixed order of ADBench's hand; needs n_bones >= 21)."""
    pose = np.zeros((n_bones + 3, 3))
    for j in range(3):
        pose[0, j] = theta[j]
        pose[1, j] = 1.0
        pose[2, j] = theta[3 + j]
    i_theta = 6
    i_pose = 5
    for finger in range(5):
        for k in range(3):
            pose[i_pose, 0] = theta[i_theta]
            i_theta = i_theta + 1
            if k == 0:
                pose[i_pose, 1] = theta[i_theta]
                i_theta = i_theta + 1
            i_pose = i_pose + 1
        i_pose = i_pose + 1
    return pose


def euler_to_transform(tx, tz, ty):
    """The 4x4 homogeneous transform of Rz(tz) Ry(ty) Rx(tx) (angles stored x, z, y)."""
    cx = np.cos(tx)
    sx = np.sin(tx)
    cy = np.cos(ty)
    sy = np.sin(ty)
    cz = np.cos(tz)
    sz = np.sin(tz)
    rx = np.eye(3)
    rx[1, 1] = cx
    rx[2, 1] = sx
    rx[1, 2] = -sx
    rx[2, 2] = cx
    ry = np.eye(3)
    ry[0, 0] = cy
    ry[0, 2] = sy
    ry[2, 0] = -sy
    ry[2, 2] = cy
    rz = np.eye(3)
    rz[0, 0] = cz
    rz[1, 0] = sz
    rz[0, 1] = -sz
    rz[1, 1] = cz
    r = (rz @ ry) @ rx
    tr = np.eye(4)
    for i in range(3):
        for j in range(3):
            tr[i, j] = r[i, j]
    return tr


def angle_axis_to_rotation(aa):
    """Rodrigues' formula; the identity below an angle of 1e-4 (as ADBench)."""
    norm = np.sqrt(aa[0] * aa[0] + aa[1] * aa[1] + aa[2] * aa[2])
    r = np.eye(3)
    if norm >= 0.0001:
        x = aa[0] / norm
        y = aa[1] / norm
        z = aa[2] / norm
        s = np.sin(norm)
        c = np.cos(norm)
        r[0, 0] = x * x + (1.0 - x * x) * c
        r[0, 1] = x * y * (1.0 - c) - z * s
        r[0, 2] = x * z * (1.0 - c) + y * s
        r[1, 0] = x * y * (1.0 - c) + z * s
        r[1, 1] = y * y + (1.0 - y * y) * c
        r[1, 2] = y * z * (1.0 - c) - x * s
        r[2, 0] = x * z * (1.0 - c) - y * s
        r[2, 1] = z * y * (1.0 - c) + x * s
        r[2, 2] = z * z + (1.0 - z * z) * c
    return r


def skinned_vertices(theta, parents, base_relatives, inverse_base_absolutes,
                     base_positions, weights, mirror):
    """The posed model's vertex positions, n_vertices x 3 (linear blend skinning,
    then the mirror factor on x, then the global rotation, scale and translation)."""
    n_bones = parents.shape[0]
    n_verts = base_positions.shape[0]
    pose = to_pose_params(theta, n_bones)
    absolutes = np.zeros((n_bones, 4, 4))
    positions = np.zeros((n_verts, 3))
    for b in range(n_bones):
        tr = euler_to_transform(pose[b + 3, 0], pose[b + 3, 1], pose[b + 3, 2])
        rel = base_relatives[b] @ tr
        if parents[b] == -1:
            absolutes[b] = rel
        else:
            absolutes[b] = absolutes[parents[b]] @ rel
        transform = absolutes[b] @ inverse_base_absolutes[b]
        curr = base_positions @ transform.T
        positions = positions + weights[:, b:b + 1] * curr[:, 0:3]
    flip = np.ones(3)
    flip[0] = mirror
    rot = angle_axis_to_rotation(pose[0]) * pose[1]
    out = (positions * flip) @ rot.T + pose[2]
    return out


def objective_simple(theta, parents, base_relatives, inverse_base_absolutes, base_positions,
                     weights, mirror, points, correspondences):
    verts = skinned_vertices(theta, parents, base_relatives, inverse_base_absolutes,
                             base_positions, weights, mirror)
    return (points - verts[correspondences]).ravel()


def objective_complicated(theta, us, parents, base_relatives, inverse_base_absolutes,
                          base_positions, weights, mirror, points, correspondences, triangles):
    verts = skinned_vertices(theta, parents, base_relatives, inverse_base_absolutes,
                             base_positions, weights, mirror)
    tri = triangles[correspondences]
    u0 = us[:, 0:1]
    u1 = us[:, 1:2]
    hand = u0 * verts[tri[:, 0]] + u1 * verts[tri[:, 1]] + (1.0 - u0 - u1) * verts[tri[:, 2]]
    return (points - hand).ravel()


def objective_shifted(du, theta, us, parents, base_relatives, inverse_base_absolutes,
                      base_positions, weights, mirror, points, correspondences, triangles):
    """objective_complicated with every us[i] replaced by us[i] + du; its
    derivative in du at du = 0 is the compressed us part of the Jacobian.
    (du is broadcast by a product with ones: s2sad's forward mode gives
    `inactive + active` the active operand's tangent unbroadcast; NEEDS.md 8.)"""
    shifted = us + np.ones((us.shape[0], 1)) * du
    return objective_complicated(theta, shifted, parents, base_relatives, inverse_base_absolutes,
                                 base_positions, weights, mirror, points, correspondences, triangles)


HELPERS = ("to_pose_params", "euler_to_transform", "angle_axis_to_rotation", "skinned_vertices")

_JIT = {}


def _primal(backend, name):
    """The undifferentiated objective: the Python function, or for Numba one
    numba.njit(cache=True) copy of it and of its helpers (in a copy of this
    module's globals, shared by both objectives; like common.primal, but cached
    on disk, since compiling them takes 10-20 s)."""
    if backend != "numba":
        return globals()[name]
    if not _JIT:
        import types

        import numba
        glb = dict(globals())
        for h in HELPERS + ("objective_simple", "objective_complicated"):
            glb[h] = numba.njit(cache=True)(types.FunctionType(globals()[h].__code__, glb, h))
            _JIT[h] = glb[h]
    return _JIT[name]


F = {}


def objective(theta, us, model, points, correspondences):
    if us.shape[0] == 0:
        return F["objective_simple"](theta, *model[:-1], points, correspondences)
    return F["objective_complicated"](theta, us, *model[:-1], points, correspondences, model[-1])


def jacobian(theta, us, model, points, correspondences):
    n = points.shape[0]
    if us.shape[0] == 0:
        return F["jacobian_simple"](theta, *model[:-1], points, correspondences)   # 3n x 26
    jdu, jtheta = F["jacobian_complicated"](np.zeros(2), theta, us, *model[:-1], points,
                                             correspondences, model[-1])
    out = np.empty((3 * n, 2 + theta.shape[0]))
    out[:, :2] = jdu
    out[:, 2:] = jtheta
    return out


def _model(n_bones=22, n_verts=6, seed=0):
    """The define sample's model: a random tree of 22 bones (each parent
    earlier) with orthogonal-plus-offset relative transforms, homogeneous vertices and
    normalized random weights."""
    rng = np.random.default_rng(seed)
    parents = np.array([-1] + [int(rng.integers(0, b)) for b in range(1, n_bones)], dtype=np.int64)
    base_relatives = np.zeros((n_bones, 4, 4))
    for b in range(n_bones):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        base_relatives[b, :3, :3] = q
        base_relatives[b, :3, 3] = rng.normal(scale=0.3, size=3)
        base_relatives[b, 3, 3] = 1.0
    absolutes = np.zeros_like(base_relatives)
    for b in range(n_bones):
        absolutes[b] = base_relatives[b] if parents[b] < 0 else absolutes[parents[b]] @ base_relatives[b]
    inverse_base_absolutes = np.array([np.linalg.inv(a) for a in absolutes])
    base_positions = np.ones((n_verts, 4))
    base_positions[:, :3] = rng.normal(size=(n_verts, 3))
    weights = rng.uniform(size=(n_verts, n_bones))
    weights /= weights.sum(axis=1, keepdims=True)
    triangles = np.array([[v, (v + 1) % n_verts, (v + 2) % n_verts] for v in range(n_verts)], dtype=np.int64)
    return (parents, base_relatives, inverse_base_absolutes, base_positions, weights, 1.0, triangles)


def _sample(n_pts=3):
    rng = np.random.default_rng(1)
    model = _model()
    theta = rng.normal(scale=0.3, size=26)
    us = rng.uniform(0.0, 0.5, size=(n_pts, 2))
    points = rng.normal(size=(n_pts, 3))
    corr = np.arange(n_pts, dtype=np.int64) % model[3].shape[0]
    return theta, us, model, points, corr


def define():
    theta, us, model, points, corr = _sample()
    simple = (theta, *model[:-1], points, corr)
    complicated = (theta, us, *model[:-1], points, corr, model[-1])
    shifted = (np.zeros(2),) + complicated
    F["objective_simple"] = pick("ht.objective_simple", lambda b: _primal(b, "objective_simple"), simple)
    F["objective_complicated"] = pick("ht.objective_complicated",
                                      lambda b: _primal(b, "objective_complicated"), complicated)
    F["jacobian_simple"] = pick("ht.jacobian_simple",
                                lambda b: s2sad.jacfwd(objective_simple, argnums=0, backend=b), simple)
    F["jacobian_complicated"] = pick("ht.jacobian_complicated",
                                     lambda b: s2sad.jacfwd(objective_shifted, argnums=(0, 1), backend=b),
                                     shifted)
    F["objective"] = objective
    F["jacobian"] = jacobian
    _check(theta, us, model, points, corr)
    BACKENDS["ht.jacobian"] = "assembled in Python from the s2sad.jacfwd columns above"


def _check(theta, us, model, points, corr):
    """Refuse rather than answer with a wrong Jacobian: compare both variants
    with central differences of the objective on the define sample."""
    for u in (np.zeros((0, 2)), us):
        got = jacobian(theta, u, model, points, corr)
        want = np.zeros_like(got)
        off = 0 if u.shape[0] == 0 else 2
        for k in range(theta.shape[0]):
            tp, tm = theta.copy(), theta.copy()
            tp[k] += 1e-6
            tm[k] -= 1e-6
            want[:, off + k] = (objective(tp, u, model, points, corr) - objective(tm, u, model, points, corr)) / 2e-6
        for k in range(off):
            up, um = u.copy(), u.copy()
            up[:, k] += 1e-6
            um[:, k] -= 1e-6
            want[:, k] = (objective(theta, up, model, points, corr) - objective(theta, um, model, points, corr)) / 2e-6
        if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
            variant = "simple" if off == 0 else "complicated"
            raise Unsupported(f"s2sad's Jacobian of the ht objective ({variant}) is off by up to "
                              f"{np.max(np.abs(got - want)):.3g} against central differences; see NEEDS.md 7")


def prepare(inp):
    data = inp["data"]
    m = data["model"]
    parents = np.asarray(m["parents"], dtype=np.int64)
    nb = parents.shape[0]
    base_relatives = array(m["base_relatives"]).reshape(nb, 4, 4)
    inverse_base_absolutes = array(m["inverse_base_absolutes"]).reshape(nb, 4, 4)
    base_positions = array(m["base_positions"])
    if base_positions.shape[1] == 3:   # not homogeneous: append the ones
        base_positions = np.concatenate([base_positions, np.ones((base_positions.shape[0], 1))], axis=1)
    weights = array(m["weights"]).reshape(base_positions.shape[0], nb)
    triangles = np.asarray(m.get("triangles", []), dtype=np.int64).reshape(-1, 3)
    mirror = -1.0 if m.get("is_mirrored", False) else 1.0
    model = (parents, np.ascontiguousarray(base_relatives), np.ascontiguousarray(inverse_base_absolutes),
             np.ascontiguousarray(base_positions), np.ascontiguousarray(weights), mirror, triangles)
    points = array(data["points"]).reshape(-1, 3)
    corr = np.asarray(data["correspondences"], dtype=np.int64)
    us = array(inp.get("us", [])).reshape(-1, 2)
    return (array(inp["theta"]), us, model, points, corr)


def post_objective(err):
    return np.asarray(err).tolist()


def post_jacobian(jac):
    return np.asarray(jac).tolist()


FUNCTIONS = {
    "objective": (prepare, "objective", post_objective),
    "jacobian": (prepare, "jacobian", post_jacobian),
}
