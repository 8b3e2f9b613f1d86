"""The s2sad GradBench tool (tools/gradbench): derivatives against central finite
differences on small inputs in each eval's input format (saddle and particle
also against the outputs GradBench's evals expect), and the protocol loop
driven through a real subprocess."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "gradbench")
sys.path.insert(0, TOOL)

import common  # noqa: E402


def fd(f, x, h=1e-6):
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def evaluate(mod, function, inp):
    prepare, key, post = mod.FUNCTIONS[function]
    if post is getattr(mod, "_post_jacobian_for", None):
        post = post(inp)
    result, timings = common.multiple_runs(mod.F[key], prepare(inp), inp)
    return post(result)


@pytest.fixture(scope="module")
def defined():
    cache = {}

    def get(name):
        if name not in cache:
            mod = __import__(name)
            mod.define()
            cache[name] = mod
        return cache[name]
    return get


def test_hello(defined):
    m = defined("hello")
    assert evaluate(m, "square", 3.0) == 9.0
    assert evaluate(m, "double", 3.0) == 6.0


def test_lse(defined):
    m = defined("lse")
    x = [0.3, -1.2, 2.5, 0.0]
    base = {"min_runs": 1, "min_seconds": 0}
    p = evaluate(m, "primal", {"x": x} | base)
    assert p == pytest.approx(np.log(np.sum(np.exp(x))))
    g = evaluate(m, "gradient", {"x": x} | base)
    want = fd(lambda v: evaluate(m, "primal", {"x": v.tolist()} | base), x)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


def test_llsq(defined):
    m = defined("llsq")
    x, n = [0.1, -0.4, 0.2, 0.05], 7
    g = evaluate(m, "gradient", {"x": x, "n": n})
    want = fd(lambda v: evaluate(m, "primal", {"x": v.tolist(), "n": n}), x)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)


def test_ode(defined):
    m = defined("ode")
    x, s = [0.3, 0.5, -0.2, 0.7], 4
    y = evaluate(m, "primal", {"x": x, "s": s})
    assert len(y) == 4 and y[0] == pytest.approx(2.0 * 0.3)
    g = evaluate(m, "gradient", {"x": x, "s": s})
    want = fd(lambda v: evaluate(m, "primal", {"x": v.tolist(), "s": s})[-1], x)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


def rk4_reference(x, s):
    """GradBench's ode as its evals state it: whole stage vectors, f(y) = (x_0, x_i y_{i-1})."""
    x = np.asarray(x, dtype=float)

    def f(y):
        return np.concatenate([x[:1], x[1:] * y[:-1]])
    h, y = 2.0 / s, np.zeros(len(x))
    for _ in range(s):
        k1 = f(y)
        k2 = f(y + h * k1 / 2.0)
        k3 = f(y + h * k2 / 2.0)
        k4 = f(y + h * k3)
        y = y + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return y


def test_ode_loop_over_components_is_runge_kutta(defined):
    m = defined("ode")
    rng = np.random.default_rng(3)
    for n, s in ((1, 3), (2, 1), (7, 5), (30, 12)):
        x = rng.uniform(-1.0, 1.5, n).tolist()
        np.testing.assert_allclose(evaluate(m, "primal", {"x": x, "s": s}), rk4_reference(x, s),
                                   rtol=1e-13, atol=1e-15)


def gmm_input(d=3, k=2, n=5, seed=1):
    rng = np.random.default_rng(seed)
    return {"d": d, "k": k, "n": n, "x": rng.normal(size=(n, d)).tolist(), "m": 1, "gamma": 1.3,
            "mu": rng.uniform(size=(k, d)).tolist(), "q": rng.normal(size=(k, d)).tolist(),
            "l": rng.normal(size=(k, d * (d - 1) // 2)).tolist(), "alpha": rng.normal(size=k).tolist(),
            "min_runs": 1, "min_seconds": 0}


def test_gmm(defined):
    m = defined("gmm")
    inp = gmm_input()
    g = evaluate(m, "jacobian", inp)
    assert set(g) == {"alpha", "mu", "q", "l"}
    for field in ("alpha", "mu", "q", "l"):
        want = fd(lambda v: evaluate(m, "objective", inp | {field: v.tolist()}), inp[field])
        np.testing.assert_allclose(g[field], want, rtol=1e-5, atol=1e-6)


def gmm_loops(alpha, mu, q, l, x, gamma, m, log_gamma_distrib):
    """ADBench's gmm objective entry by entry, as its C++ writes it: a reference for the
    vectorized objective of tools/gradbench/gmm.py."""
    n, d = x.shape
    k = alpha.shape[0]

    def lse(v):
        return max(v) + math.log(sum(math.exp(t - max(v)) for t in v))
    slse = 0.0
    for ix in range(n):
        terms = []
        for ik in range(k):
            xc = [x[ix, j] - mu[ik, j] for j in range(d)]
            qx = [math.exp(q[ik, j]) * xc[j] for j in range(d)]
            idx = 0
            for i in range(d):
                for j in range(i + 1, d):
                    qx[j] += l[ik, idx] * xc[i]
                    idx += 1
            terms.append(alpha[ik] + sum(q[ik]) - 0.5 * sum(v * v for v in qx))
        slse += lse(terms)
    err = -n * d * 0.5 * math.log(2 * math.pi) + slse - n * lse(alpha)
    c = (d + m + 1) * d * (math.log(gamma) - 0.5 * math.log(2.0)) - log_gamma_distrib
    prior = sum(0.5 * gamma ** 2 * (np.sum(np.exp(2 * q[ik])) + np.sum(l[ik] ** 2)) - m * np.sum(q[ik])
                for ik in range(k))
    return err - prior + k * c


@pytest.mark.parametrize("d,k,n", [(1, 1, 3), (3, 2, 5), (5, 4, 7)])
def test_gmm_objective_as_adbench_loops(defined, d, k, n):
    m = defined("gmm")
    inp = gmm_input(d, k, n, seed=d)
    want = gmm_loops(*m.prepare(inp)[:8])
    assert evaluate(m, "objective", inp) == pytest.approx(want, rel=1e-12)


def test_gmm_old_icf_layout():
    import gmm
    m = gmm
    gmm.F["objective"] = gmm.gmm_fn
    gmm.F["jacobian"] = common.grad("test.gmm", gmm.gmm_fn, gmm._sample(), argnums=(0, 1, 2, 3))
    inp = gmm_input()
    old = {k: v for k, v in inp.items() if k not in ("mu", "q", "l")}
    old["means"] = inp["mu"]
    old["icf"] = [q + l for q, l in zip(inp["q"], inp["l"])]
    assert evaluate(m, "objective", old) == pytest.approx(evaluate(m, "objective", inp))
    new = evaluate(m, "jacobian", inp)
    flat = np.concatenate([np.ravel(new["alpha"]), np.ravel(new["mu"]),
                           np.concatenate([new["q"], new["l"]], axis=1).ravel()])
    np.testing.assert_allclose(evaluate(m, "jacobian", old), flat)


def test_kmeans(defined):
    m = defined("kmeans")
    points = [[0.0, 0.1], [1.0, 1.1], [0.2, -0.1], [0.9, 1.3], [0.1, 0.4]]
    cents = [[0.1, 0.0], [1.0, 1.0]]
    inp = {"points": points, "centroids": cents, "min_runs": 1, "min_seconds": 0}
    cost = lambda c: evaluate(m, "cost", inp | {"centroids": c.tolist()})  # noqa: E731
    jac = fd(cost, cents)
    hdiag = fd(lambda c: fd(cost, c)[np.unravel_index(0, c.shape)], cents)  # sanity only
    c0 = np.array(cents)
    h = np.zeros_like(c0)
    for i in np.ndindex(c0.shape):
        e = np.zeros_like(c0)
        e[i] = 1e-4
        h[i] = (cost(c0 + e) - 2 * cost(c0) + cost(c0 - e)) / 1e-8
    assert hdiag.shape == c0.shape
    np.testing.assert_allclose(evaluate(m, "dir", inp), jac / h, rtol=1e-4, atol=1e-6)


def test_lstm(defined):
    m = defined("lstm")
    rng = np.random.default_rng(2)
    nl, b, c = 2, 3, 4
    inp = {"main_params": rng.normal(size=(2 * nl, 4 * b)).tolist(),
           "extra_params": rng.normal(size=(3, b)).tolist(),
           "state": rng.normal(size=(2 * nl, b)).tolist(),
           "sequence": rng.normal(size=(c, b)).tolist(), "min_runs": 1, "min_seconds": 0}
    g = evaluate(m, "jacobian", inp)
    wm = fd(lambda v: evaluate(m, "objective", inp | {"main_params": v.tolist()}), inp["main_params"])
    we = fd(lambda v: evaluate(m, "objective", inp | {"extra_params": v.tolist()}), inp["extra_params"])
    np.testing.assert_allclose(g, np.concatenate([wm.ravel(), we.ravel()]), rtol=1e-5, atol=1e-7)


def test_det(defined):
    m = defined("det")
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 4))
    inp = {"A": a.ravel().tolist(), "ell": 4, "min_runs": 1, "min_seconds": 0}
    assert evaluate(m, "primal", inp) == pytest.approx(np.linalg.det(a), rel=1e-12)
    g = evaluate(m, "gradient", inp)
    want = fd(lambda v: evaluate(m, "primal", inp | {"A": v.tolist()}), inp["A"])
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


# Expected outputs of GradBench's own evals (python/gradbench/gradbench/evals/saddle
# and particle run.py: start [1, 1] and w = 0).
SADDLE_WANT = [8.246324826140356e-06] * 4
PARTICLE_WANT = 0.2071918746486116


@pytest.mark.parametrize("variant", ["rr", "rf", "fr", "ff"])
def test_saddle_matches_gradbench(defined, variant):
    m = defined("saddle")
    out = evaluate(m, variant, {"start": [1.0, 1.0], "min_runs": 1, "min_seconds": 0})
    np.testing.assert_allclose(out, SADDLE_WANT, rtol=1e-9)


def test_saddle_outer_gradient_through_the_inner_solver(defined):
    """The outer derivative of r1_cost (which runs the inner gradient descent
    with s2sad's inner gradient) against central differences, both modes."""
    import saddle
    defined("saddle")
    start = np.array([1.0, 1.0])
    p1 = np.array([0.6, -0.3])
    for v in ("rr", "rf", "fr", "ff"):
        g_cost = saddle.GRADS[v][0]
        cost = saddle.COSTS[v[1]]
        want = fd(lambda p: cost(p, start), p1, h=1e-5)
        np.testing.assert_allclose(g_cost(p1, start), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("variant", ["rr", "rf", "fr", "ff"])
def test_particle_matches_gradbench(defined, variant):
    m = defined("particle")
    out = evaluate(m, variant, {"w": 0.0, "min_runs": 1, "min_seconds": 0})
    assert out == pytest.approx(PARTICLE_WANT, rel=1e-9)


def test_particle_objective_gradient(defined):
    import particle
    defined("particle")
    w = np.array([0.1])
    for outer, inner in (("r", "r"), ("r", "f"), ("f", "r"), ("f", "f")):
        obj = particle.OBJECTIVES[inner]
        np.testing.assert_allclose(particle.OUTER[outer](obj)(w), fd(obj, w), rtol=1e-6, atol=1e-9)


def test_ba(defined):
    m = defined("ba")
    inp = {"n": 2, "m": 3, "p": 5, "cam": [0.2, -0.1, 0.3, 1.0, 2.0, -3.0, 50.0, 0.5, -0.5, 0.01, 0.002],
           "x": [0.3, -0.4, 5.0], "w": 0.8, "feat": [1.0, 2.0], "min_runs": 1, "min_seconds": 0}
    obj = evaluate(m, "objective", inp)
    assert obj["reproj_error"]["repeated"] == 5 and obj["w_err"]["repeated"] == 5
    assert obj["w_err"]["element"] == pytest.approx(1 - 0.8 ** 2)
    jac = evaluate(m, "jacobian", inp)
    rows, cols, vals = jac["rows"], jac["cols"], jac["vals"]
    n, mm, p = 2, 3, 5
    assert len(rows) == 3 * p + 1 and rows[-1] == len(vals) == len(cols) == 31 * p
    dense = np.zeros((3 * p, 11 * n + 3 * mm + p))
    for r in range(3 * p):
        for k in range(rows[r], rows[r + 1]):
            dense[r, cols[k]] += vals[k]
    cams, xs, ws, obsv, feats = m.prepare(inp)

    def residuals(theta):
        c = theta[:11 * n].reshape(n, 11)
        x = theta[11 * n:11 * n + 3 * mm].reshape(mm, 3)
        r, we = m.objective(c, x, theta[11 * n + 3 * mm:], obsv, feats)
        return np.concatenate([r.ravel(), we])
    theta = np.concatenate([cams.ravel(), xs.ravel(), ws])
    want = np.zeros_like(dense)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = 1e-6 * max(1.0, abs(theta[j]))
        want[:, j] = (residuals(theta + e) - residuals(theta - e)) / (2 * e[j])
    np.testing.assert_allclose(dense, want, rtol=1e-6, atol=1e-6)


def run_tool(lines):
    proc = subprocess.run([sys.executable, os.path.join(TOOL, "run.py")],
                          input="".join(json.dumps(m) + "\n" for m in lines),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_protocol_subprocess():
    msgs = [
        {"id": 0, "kind": "start", "eval": "lse", "config": {}},
        {"id": 1, "kind": "define", "module": "lse"},
        {"id": 2, "kind": "evaluate", "module": "lse", "function": "primal",
         "input": {"x": [1.0, 2.0], "min_runs": 5, "min_seconds": 0}, "description": "tiny"},
        {"id": 3, "kind": "evaluate", "module": "lse", "function": "gradient",
         "input": {"x": [1.0, 2.0], "min_runs": 1, "min_seconds": 0.05}},
        {"id": 4, "kind": "evaluate", "module": "lse", "function": "nope",
         "input": {"x": [1.0], "min_runs": 1, "min_seconds": 0}},
        {"id": 5, "kind": "define", "module": "no_such_eval"},
        {"id": 6, "kind": "define", "module": "det"},
        {"id": 7, "kind": "define", "module": "ht"},
        {"id": 8, "kind": "analysis", "of": 2, "valid": True},
        {"id": 9, "kind": "something_new"},
    ]
    resp = run_tool(msgs)
    assert [r["id"] for r in resp] == list(range(10))
    assert resp[0] == {"id": 0, "tool": "s2sad"}
    assert resp[1]["success"] is True
    assert resp[2]["success"] and resp[2]["output"] == pytest.approx(np.log(np.exp(1) + np.exp(2)))
    assert len(resp[2]["timings"]) == 5
    assert all(t["name"] == "evaluate" and t["nanoseconds"] > 0 for t in resp[2]["timings"])
    assert resp[3]["success"] and sum(t["nanoseconds"] for t in resp[3]["timings"]) >= 0.05e9
    assert resp[4]["success"] is False and "nope" in resp[4]["error"]
    assert resp[5] == {"id": 5, "success": False, "error": "not implemented"}
    assert resp[6]["success"] is True and resp[6]["timings"][0]["name"] == "compile"
    assert resp[7]["success"] is True and resp[7]["timings"][0]["name"] == "compile"   # ht
    assert resp[8] == {"id": 8} and resp[9] == {"id": 9}


# ht: a tiny synthetic hand built here. The objective's theta layout (6 global
# values, then 4 angles for each of 5 fingers of 4 bones) needs ADBench's 22
# bones (root, wrist, 5 x 4 finger bones); a handful of vertices and points.
def hand_input(complicated, n_verts=5, n_pts=4, seed=4):
    from scipy.linalg import expm
    rng = np.random.default_rng(seed)
    parents = [-1, 0] + [1 if k == 0 else 2 + 4 * f + k - 1 for f in range(5) for k in range(4)]
    nb = len(parents)
    rel = np.zeros((nb, 4, 4))
    absolute = np.zeros((nb, 4, 4))
    for b in range(nb):
        rel[b, :3, :3] = expm(skew(rng.normal(scale=0.5, size=3)))
        rel[b, :3, 3] = rng.normal(scale=0.3, size=3)
        rel[b, 3, 3] = 1.0
        absolute[b] = rel[b] if parents[b] < 0 else absolute[parents[b]] @ rel[b]
    weights = np.zeros((n_verts, nb))
    for v in range(n_verts):   # each vertex follows two bones, as in ADBench's data
        bones = rng.choice(nb, size=2, replace=False)
        weights[v, bones] = rng.dirichlet([1.0, 1.0])
    base = np.ones((n_verts, 4))
    base[:, :3] = rng.normal(size=(n_verts, 3))
    inp = {"theta": rng.normal(scale=0.4, size=26).tolist(),
           "data": {"model": {"bone_count": nb, "bone_names": [f"b{b}" for b in range(nb)],
                              "parents": parents, "base_relatives": rel.tolist(),
                              "inverse_base_absolutes": np.linalg.inv(absolute).tolist(),
                              "base_positions": base.tolist(), "weights": weights.tolist(),
                              "triangles": [[v, (v + 1) % n_verts, (v + 3) % n_verts] for v in range(n_verts)],
                              "is_mirrored": False},
                    "correspondences": rng.integers(0, n_verts, size=n_pts).tolist(),
                    "points": rng.normal(size=(n_pts, 3)).tolist()},
           "us": rng.uniform(0.0, 0.5, size=(n_pts, 2)).tolist() if complicated else [],
           "min_runs": 1, "min_seconds": 0}
    return inp


def skew(w):
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def hand_reference(inp):
    """An independent reading of ADBench's hand model (rotations as matrix
    exponentials, a loop per vertex), for the objective check."""
    from scipy.linalg import expm
    m, d = inp["data"]["model"], inp["data"]
    theta = np.array(inp["theta"])
    nb = len(m["parents"])
    angles = np.zeros((nb, 3))   # per bone: (x, z, y) Euler angles
    it = 6
    for f in range(5):
        b = 2 + 4 * f
        angles[b, :2] = theta[it:it + 2]
        angles[b + 1, 0], angles[b + 2, 0] = theta[it + 2], theta[it + 3]
        it += 4
    ex, ey, ez = np.eye(3)
    absolute = []
    for b in range(nb):
        tx, tz, ty = angles[b]
        tr = np.eye(4)
        tr[:3, :3] = expm(tz * skew(ez)) @ expm(ty * skew(ey)) @ expm(tx * skew(ex))
        r = np.array(m["base_relatives"][b]) @ tr
        absolute.append(r if m["parents"][b] < 0 else absolute[m["parents"][b]] @ r)
    verts = []
    for v, x in enumerate(m["base_positions"]):
        p = sum(m["weights"][v][b] * (absolute[b] @ np.array(m["inverse_base_absolutes"][b]) @ x)
                for b in range(nb))
        if m["is_mirrored"]:
            p[0] = -p[0]
        verts.append(expm(skew(theta[:3])) @ p[:3] + theta[3:6])
    verts = np.array(verts)
    err = []
    for i, c in enumerate(d["correspondences"]):
        if inp["us"]:
            t = m["triangles"][c]
            u = inp["us"][i]
            hand = u[0] * verts[t[0]] + u[1] * verts[t[1]] + (1 - u[0] - u[1]) * verts[t[2]]
        else:
            hand = verts[c]
        err.append(np.array(d["points"][i]) - hand)
    return np.concatenate(err)


@pytest.fixture(scope="module")
def ht_python():
    """ht defined on the Python backend (fast; the Numba path runs in the protocol tests)."""
    import ht
    saved = common.FORCE
    common.FORCE = "python"
    try:
        ht.define()
    finally:
        common.FORCE = saved
    return ht


@pytest.mark.parametrize("complicated", [False, True], ids=["simple", "complicated"])
def test_ht_objective(ht_python, complicated):
    m = ht_python
    inp = hand_input(complicated)
    out = evaluate(m, "objective", inp)
    assert isinstance(out, list) and len(out) == 3 * 4
    np.testing.assert_allclose(out, hand_reference(inp), rtol=1e-10, atol=1e-12)
    # theta = 0 except a translation t: every transform is the identity, so the
    # model is its base positions moved by t
    t = [0.3, -0.2, 0.5]
    rest = evaluate(m, "objective", inp | {"theta": [0.0] * 3 + t + [0.0] * 20})
    d = inp["data"]
    base = np.array(d["model"]["base_positions"])[:, :3] + t
    if complicated:
        tri = np.array(d["model"]["triangles"])[d["correspondences"]]
        u = np.array(inp["us"])
        hand = u[:, :1] * base[tri[:, 0]] + u[:, 1:] * base[tri[:, 1]] + (1 - u[:, :1] - u[:, 1:]) * base[tri[:, 2]]
    else:
        hand = base[d["correspondences"]]
    np.testing.assert_allclose(rest, (np.array(d["points"]) - hand).ravel(), rtol=1e-12, atol=1e-12)
    mirrored = json.loads(json.dumps(inp))
    mirrored["data"]["model"]["is_mirrored"] = True
    np.testing.assert_allclose(evaluate(m, "objective", mirrored), hand_reference(mirrored), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("complicated", [False, True], ids=["simple", "complicated"])
def test_ht_jacobian(ht_python, complicated):
    m = ht_python
    inp = hand_input(complicated)
    jac = np.array(evaluate(m, "jacobian", inp))
    n = len(inp["data"]["points"])
    off = 2 if complicated else 0
    assert jac.shape == (3 * n, off + 26)

    def objective(**kw):
        return np.array(evaluate(m, "objective", inp | kw))
    want = np.zeros((3 * n, 26))
    theta = np.array(inp["theta"])
    for k in range(26):
        e = np.zeros(26)
        e[k] = 1e-6
        want[:, k] = (objective(theta=(theta + e).tolist()) - objective(theta=(theta - e).tolist())) / 2e-6
    np.testing.assert_allclose(jac[:, off:], want, rtol=1e-6, atol=1e-7)
    if complicated:
        # full central differences in every us[i, k]: block diagonal, 3x2 blocks,
        # and the jacobian's first two columns hold the blocks
        us = np.array(inp["us"])
        full = np.zeros((3 * n, n, 2))
        for i in range(n):
            for k in range(2):
                e = np.zeros_like(us)
                e[i, k] = 1e-6
                full[:, i, k] = (objective(us=(us + e).tolist()) - objective(us=(us - e).tolist())) / 2e-6
        for i in range(n):
            np.testing.assert_allclose(jac[3 * i:3 * i + 3, :2], full[3 * i:3 * i + 3, i], rtol=1e-6, atol=1e-7)
            others = np.delete(full[3 * i:3 * i + 3], i, axis=1)
            assert np.all(others == 0.0)


def test_ht_protocol_subprocess(ht_python, monkeypatch):
    """ht through run.py (Python backend, to stay fast; the Numba define is
    exercised, with its central-difference check, by test_protocol_subprocess)."""
    monkeypatch.setenv("S2SAD_GRADBENCH_BACKEND", "python")
    simple, comp = hand_input(False), hand_input(True)
    msgs = [{"id": 0, "kind": "start", "eval": "ht", "config": {}},
            {"id": 1, "kind": "define", "module": "ht"}]
    for k, (function, inp) in enumerate([("objective", simple), ("jacobian", simple),
                                         ("objective", comp), ("jacobian", comp)]):
        msgs.append({"id": 2 + k, "kind": "evaluate", "module": "ht", "function": function,
                     "input": inp | {"min_runs": 2}, "description": "tiny"})
    resp = run_tool(msgs)
    assert [r["id"] for r in resp] == list(range(6))
    assert resp[1]["success"] is True, resp[1]
    assert all(r["success"] and len(r["timings"]) == 2 for r in resp[2:]), resp
    for r, (function, inp) in zip(resp[2:], [("objective", simple), ("jacobian", simple),
                                             ("objective", comp), ("jacobian", comp)]):
        np.testing.assert_allclose(r["output"], evaluate(ht_python, function, inp), rtol=1e-12, atol=1e-14)
    assert np.shape(resp[3]["output"]) == (12, 26) and np.shape(resp[5]["output"]) == (12, 28)
