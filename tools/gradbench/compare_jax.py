#!/usr/bin/env python3
"""Side-by-side timing of the s2sad GradBench tool against a port of GradBench's
JAX tool, in one process, on the inputs GradBench's evals send.

    python3 tools/gradbench/compare_jax.py [--evals lse,llsq,...] [--big] [--no-pin]

For each of gmm, ode, kmeans, lse, llsq:

- the input is built the way GradBench's eval builds it (python/gradbench/
  gradbench/evals/<eval>/run.py: same generator, same seed, same order of draws),
  as the JSON-like dict the tool receives;
- s2sad: `mod.define()`, then exactly what run.py does for `evaluate`:
  `prepare, key, post = mod.FUNCTIONS[function]; args = prepare(input)`, and the
  timed call is `mod.F[key](*args)`;
- JAX: a port of GradBench's JAX tool for the eval (python/gradbench/gradbench/
  tools/jax/<eval>.py): float64, `jax.jit` of the objective and of its
  `jax.grad` (kmeans: jvp of grad), the same argument preparation, timed with
  `block_until_ready` (GradBench's wrapper does not block; we do, so the
  JAX numbers include the computation);
- both outputs are compared with GradBench's tolerance
  |x - y| / max(1, |x| + |y|) <= 1e-4 before timing;
- timing: one warm-up call each (JAX's first call, i.e. trace + compile + run,
  is reported separately), then best of N alternating s2sad and JAX calls
  (N between 3 and 20, fewer when a call is slow).

Like GradBench's JAX tool (tools/jax/run.py without --multithreaded), the
process pins itself to one CPU so that neither side uses more than one core
(s2sad's Numba code is single-threaded anyway); --no-pin leaves the affinity
alone.  PyTorch is compared on lstm by compare_torch.py.
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

EVAL_NAMES = ("gmm", "ode", "kmeans", "lse", "llsq")
SEED = 31337


# --------------------------------------------------------------------------
# Inputs, as GradBench's evals generate them.
# --------------------------------------------------------------------------

def gmm_input(d, k, n, m=0, gamma=1.0, seed=SEED):
    """evals/gmm/run.py generate(): one default_rng(seed) per input, draws in
    the order x, mu, q, l, alpha."""
    rng = np.random.default_rng(seed=seed)
    return {
        "d": d, "k": k, "n": n,
        "x": [list(rng.normal(size=d)) for _ in range(n)],
        "m": m, "gamma": gamma,
        "mu": [list(rng.uniform(size=d)) for _ in range(k)],
        "q": [list(rng.normal(size=d)) for _ in range(k)],
        "l": [list(rng.normal(size=d * (d - 1) // 2)) for _ in range(k)],
        "alpha": list(rng.normal(size=k)),
    }


def ode_inputs(wanted, ns=(1000, 10000, 100000), ss=(1, 10, 100)):
    """evals/ode/run.py: np.random.seed(31337), then for (n, s) sorted by n*s,
    x = np.random.rand(n).  The whole default sequence is drawn so that the
    selected inputs are the ones GradBench sends."""
    np.random.seed(SEED)
    out = {}
    for n, s in sorted([(n, s) for n in ns for s in ss], key=lambda v: v[0] * v[1]):
        x = np.random.rand(n)
        if (n, s) in wanted:
            out[(n, s)] = {"x": x.tolist(), "s": s}
    return [((n, s), out[(n, s)]) for (n, s) in wanted]


LSE_NS = (2500, 5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000)


def lse_inputs(wanted):
    """evals/lse/run.py: np.random.seed(31337), then x = np.random.rand(n) per n."""
    np.random.seed(SEED)
    out = {}
    for n in LSE_NS:
        x = np.random.rand(n)
        if n in wanted:
            out[n] = {"x": x.tolist()}
    return [(n, out[n]) for n in wanted]


LLSQ_NS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8196, 16392)


def llsq_inputs(wanted, m=128):
    """evals/llsq/run.py: np.random.seed(31337), (n, m) sorted by n*m, x = rand(m)."""
    np.random.seed(SEED)
    out = {}
    for n in LLSQ_NS:
        x = np.random.rand(m)
        if n in wanted:
            out[n] = {"x": x.tolist(), "n": n}
    return [(n, out[n]) for n in wanted]


def kmeans_input(k, n, d, rng):
    """evals/kmeans/run.py: points = np.random.rand(n, d) (GradBench does not seed
    it; we use a seeded generator), centroids = the last k points."""
    points = rng.random((n, d)).tolist()
    return {"points": points, "centroids": points[-k:]}


# --------------------------------------------------------------------------
# JAX ports of GradBench's tools/jax/<eval>.py
# --------------------------------------------------------------------------

def make_jax():
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp as jlogsumexp
    from jax.scipy.special import multigammaln
    from functools import partial

    jax.config.update("jax_enable_x64", True)
    J = {}

    # ---- lse: jit(logsumexp) and jit(grad(logsumexp)); input np.array(x).
    def lse(x):
        mx = jnp.max(x)
        return jnp.log(jnp.sum(jnp.exp(x - mx))) + mx

    J["lse"] = {
        "prepare": lambda inp: (np.array(inp["x"], dtype=np.float64),),
        "primal": jax.jit(lse),
        "gradient": jax.jit(jax.grad(lse)),
    }

    # ---- llsq: vmap over i of the residual with a cumprod of powers; n static.
    @partial(jax.jit, static_argnums=[1])
    def llsq(x, n):
        m = x.shape[0]

        def term(i):
            ti = -1.0 + (i * 2.0) / (n - 1.0)
            powers = jnp.cumprod(jnp.full(m, ti).at[0].set(1.0))
            return (jnp.sign(ti) + jnp.sum(-x * powers)) ** 2

        return jnp.sum(jax.vmap(term)(jnp.arange(n))) / 2.0

    @partial(jax.jit, static_argnums=[1])
    def llsq_grad(x, n):
        return jax.grad(llsq, argnums=0)(x, n)

    J["llsq"] = {
        "prepare": lambda inp: (np.array(inp["x"], dtype=np.float64), inp["n"]),
        "primal": llsq,
        "gradient": llsq_grad,
    }

    # ---- ode: RK4 by lax.scan (collecting the trajectory, as GradBench's tool
    # does), f vectorised with vmap over (i, x_i, roll(y)_i); s static.
    def ode_rhs(x):
        idx = jnp.arange(x.shape[0])

        def f(y):
            y_prev = jnp.roll(y, 1)
            return jax.vmap(lambda i, xi, yi: jnp.where(i == 0, xi, xi * yi))(idx, x, y_prev)
        return f

    def rk4(f, y0, tf, s):
        h = tf / s

        def step(y, _):
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + (2 * k2 + 2 * k3 + k4))
            return y, y

        _, traj = jax.lax.scan(step, y0, None, length=s)
        return traj[-1]

    @partial(jax.jit, static_argnums=[1])
    def ode(x, s):
        return rk4(ode_rhs(x), jnp.zeros_like(x), 2.0, s)

    @partial(jax.jit, static_argnums=[1])
    def ode_grad(x, s):
        return jax.grad(lambda z: ode(z, s)[-1])(x)

    J["ode"] = {
        "prepare": lambda inp: (np.array(inp["x"], dtype=np.float64), inp["s"]),
        "primal": ode,
        "gradient": ode_grad,
    }

    # ---- kmeans: all-pairs squared distances by a matmul, min over centroids;
    # dir = jvp of grad along ones, J / H.
    def kcost(points, centroids):
        p2 = jnp.sum(points ** 2, 1)[None, :]
        c2 = jnp.sum(centroids ** 2, 1)[:, None]
        cross = jnp.matmul(points, centroids.T).T
        return jnp.min(p2 + c2 - 2 * cross, axis=0).sum()

    @jax.jit
    def kmeans_cost(points, centroids):
        return kcost(points, centroids)

    @jax.jit
    def kmeans_dir(points, centroids):
        g = jax.grad(lambda cs: kcost(points, cs))
        jac, hes = jax.jvp(g, [centroids], [jnp.ones(shape=centroids.shape)])
        return jac / hes

    J["kmeans"] = {
        "prepare": lambda inp: (np.array(inp["points"], dtype=np.float64),
                                np.array(inp["centroids"], dtype=np.float64)),
        "cost": kmeans_cost,
        "dir": kmeans_dir,
    }

    # ---- gmm: vectorised ADBench objective (einsum with the k lower-triangular
    # factors), jit with d, k static; jacobian = grad w.r.t. {alpha, mu, q, l}.
    def gmm_objective(*, d, k, n, x, m, gamma, alpha, mu, q, l):
        qdiags = jnp.exp(q)
        sum_qs = jnp.sum(q, axis=1)
        # l is the strictly lower part, column by column (as the s2sad module
        # and GradBench's tools read it).
        rows = np.array([r for c in range(d - 1) for r in range(c + 1, d)], dtype=np.int64)
        cols = np.array([c for c in range(d - 1) for r in range(c + 1, d)], dtype=np.int64)
        Ls = jnp.zeros((k, d, d), dtype=l.dtype).at[:, rows, cols].set(l)
        xc = x[:, None, :] - mu[None, ...]
        Lxc = qdiags * xc + jnp.einsum("ijk,mik->mij", Ls, xc)
        inner = alpha + sum_qs - 0.5 * jnp.sum(Lxc ** 2, axis=2)
        slse = jnp.sum(jlogsumexp(inner, axis=1))
        const = -n * d * 0.5 * math.log(2 * math.pi)
        nw = d + m + 1
        prior_out = jnp.sum(0.5 * gamma * gamma
                            * (jnp.sum(qdiags ** 2, axis=1) + jnp.sum(l ** 2, axis=1))
                            - m * sum_qs)
        c = nw * d * jnp.log(gamma / math.sqrt(2))
        prior = -prior_out + k * (c - multigammaln(0.5 * nw, d))
        return const + slse - n * jlogsumexp(alpha, axis=0) + prior

    @partial(jax.jit, static_argnames=["d", "k"])
    def gmm_obj(independent, **fixed):
        return gmm_objective(**fixed, **independent)

    @partial(jax.jit, static_argnames=["d", "k"])
    def gmm_jac(independent, **fixed):
        return jax.grad(lambda ind: gmm_objective(**fixed, **ind))(independent)

    def gmm_prepare(inp):
        fixed = {"d": inp["d"], "k": inp["k"], "n": inp["n"], "x": jnp.array(inp["x"]),
                 "m": inp["m"], "gamma": inp["gamma"]}
        independent = {name: jnp.array(inp[name]) for name in ("alpha", "mu", "q", "l")}
        return fixed, independent

    J["gmm"] = {
        "prepare": gmm_prepare,
        "objective": lambda fixed, ind: gmm_obj(ind, **fixed),
        "jacobian": lambda fixed, ind: gmm_jac(ind, **fixed),
    }
    return jax, J


# --------------------------------------------------------------------------
# Comparison and timing
# --------------------------------------------------------------------------

def as_arrays(out):
    """JSON-like output (float, list, dict of lists) -> {key: flat float64 array}."""
    if isinstance(out, dict):
        return {k: np.asarray(v, dtype=np.float64).ravel() for k, v in out.items()}
    return {"": np.asarray(out, dtype=np.float64).ravel()}


def jax_to_json(out):
    if isinstance(out, dict):
        return {k: np.asarray(v).tolist() for k, v in out.items()}
    a = np.asarray(out)
    return a.item() if a.ndim == 0 else a.tolist()


def max_difference(a, b):
    """Largest GradBench difference |x-y| / max(1, |x|+|y|) (inf on a shape/key mismatch)."""
    A, B = as_arrays(a), as_arrays(b)
    if set(A) != set(B):
        return math.inf
    worst = 0.0
    for key in A:
        x, y = A[key], B[key]
        if x.shape != y.shape:
            return math.inf
        if x.size:
            d = np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), 1.0)
            worst = max(worst, float(np.max(d)) if np.all(np.isfinite(d)) else math.inf)
    return worst


def block(x):
    if isinstance(x, dict):
        for v in x.values():
            v.block_until_ready()
    else:
        x.block_until_ready()
    return x


def time_pair(f_s, args_s, f_j, args_j, max_reps=20, budget_s=1.5, finish=block):
    """Best-of-N wall times (seconds) of f_s(*args_s) and finish(f_j(*args_j)),
    alternating, after one warm-up call of each (done by the caller). `finish`
    waits for the peer's result (JAX dispatches asynchronously)."""
    best_s = best_j = math.inf
    reps = 0
    spent = 0.0
    while reps < max_reps and (reps < 3 or spent < budget_s):
        t0 = time.perf_counter()
        f_s(*args_s)
        t1 = time.perf_counter()
        finish(f_j(*args_j))
        t2 = time.perf_counter()
        best_s = min(best_s, t1 - t0)
        best_j = min(best_j, t2 - t1)
        spent += t2 - t0
        reps += 1
        if reps >= 1 and spent > 3 * budget_s:   # very slow calls: stop early
            break
    return best_s, best_j, reps


def cases(big):
    """(eval, size label, GradBench input) in the order they run."""
    out = []
    gmm_sizes = [(2, 5), (10, 25), (20, 50)] + ([(32, 50), (64, 100)] if big else [])
    for d, k in gmm_sizes:
        out.append(("gmm", f"d={d} k={k} n=1000", gmm_input(d, k, 1000)))
    ode_sizes = [(1000, 1), (1000, 100), (100000, 1), (10000, 100)] + ([(100000, 100)] if big else [])
    for (n, s), inp in ode_inputs(ode_sizes):
        out.append(("ode", f"n={n} s={s}", inp))
    rng = np.random.default_rng(SEED)
    km_sizes = [(10, 1000, 8), (100, 1000, 16), (100, 10000, 16)] + ([(1000, 10000, 16)] if big else [])
    for k, n, d in km_sizes:
        out.append(("kmeans", f"k={k} n={n} d={d}", kmeans_input(k, n, d, rng)))
    for n, inp in lse_inputs([2500, 40000, 1280000]):
        out.append(("lse", f"n={n}", inp))
    for n, inp in llsq_inputs([16, 1024, 16392]):
        out.append(("llsq", f"n={n} m=128", inp))
    return out


def fmt_ms(t):
    ms = t * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", default=",".join(EVAL_NAMES),
                    help="comma-separated subset of " + ",".join(EVAL_NAMES))
    ap.add_argument("--big", action="store_true",
                    help="add the larger default sizes (gmm d=32/64, ode n=1e5 s=100, "
                         "kmeans k=1000): several more minutes")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the process to one CPU")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = ap.parse_args()
    wanted = [e for e in args.evals.split(",") if e]
    for e in wanted:
        if e not in EVAL_NAMES:
            ap.error(f"unknown eval {e!r}")

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, [cpu])
        print(f"pinned to CPU {cpu} (as GradBench's JAX tool does without --multithreaded)")
    try:
        import torch  # noqa: F401
        print("PyTorch is installed but not compared by this script")
    except ImportError:
        print("PyTorch: not installed, skipped")

    t_start = time.perf_counter()
    jax, J = make_jax()
    import importlib
    import common
    print(f"jax {jax.__version__} ({jax.default_backend()}), x64={jax.config.jax_enable_x64}")

    rows = []
    defined = {}
    for ev, size, inp in cases(args.big):
        if ev not in wanted:
            continue
        if ev not in defined:
            mod = importlib.import_module(ev)
            t0 = time.perf_counter()
            mod.define()
            defined[ev] = mod
            print(f"\n== {ev}: s2sad define (compile) {time.perf_counter() - t0:.1f} s", flush=True)
        mod = defined[ev]
        jprep = J[ev]["prepare"](inp)
        for fn, (prepare, key, post) in mod.FUNCTIONS.items():
            # exactly what run.py does for an evaluate message
            s_args = prepare(inp)
            if post is getattr(mod, "_post_jacobian_for", None):
                post = post(inp)
            f_s = mod.F[key]
            f_j = J[ev][fn]
            backend = common.BACKENDS.get(f"{ev}.{key}", "?")
            # warm-up + correctness check (s2sad), first call = compile (JAX)
            s_out = post(f_s(*s_args))
            t0 = time.perf_counter()
            j_raw = block(f_j(*jprep))
            t_compile = time.perf_counter() - t0
            j_out = jax_to_json(j_raw)
            diff = max_difference(j_out, s_out)
            ok = diff <= 1e-4
            block(f_j(*jprep))   # one more warm call
            ts, tj, reps = time_pair(f_s, s_args, f_j, jprep)
            row = dict(eval=ev, function=fn, size=size, s2sad=ts, jax=tj, ratio=ts / tj,
                       backend=backend.split(" ")[0], backend_full=backend,
                       compile=t_compile, diff=diff, ok=ok, reps=reps)
            rows.append(row)
            print(f"{ev:6s} {fn:9s} {size:22s} s2sad {fmt_ms(ts):>9s} ms  jax {fmt_ms(tj):>9s} ms  "
                  f"s2sad/jax {ts / tj:7.2f}  [{row['backend']}]  jax first call {t_compile:.2f} s  "
                  f"max diff {diff:.1e}{'' if ok else '  OUTPUTS DISAGREE'}  (best of {reps})",
                  flush=True)

    print(f"\ntotal run time {time.perf_counter() - t_start:.0f} s\n")
    hdr = ("| eval | function | input | s2sad ms | JAX ms | s2sad/JAX | s2sad backend "
           "| JAX first call (trace+compile) s | agree (max diff) |")
    lines = [hdr, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['eval']} | {r['function']} | {r['size']} | {fmt_ms(r['s2sad'])} | "
                     f"{fmt_ms(r['jax'])} | {r['ratio']:.2f} | {r['backend']} | {r['compile']:.2f} | "
                     f"{'yes' if r['ok'] else 'NO'} ({r['diff']:.0e}) |")
    # per-eval totals: sum over the rows of each eval
    totals = ["", "| eval | s2sad total ms | JAX total ms | s2sad/JAX | s2sad faster? |", "|---|---|---|---|---|"]
    for ev in wanted:
        rs = [r for r in rows if r["eval"] == ev]
        if not rs:
            continue
        s, j = sum(r["s2sad"] for r in rs), sum(r["jax"] for r in rs)
        totals.append(f"| {ev} | {fmt_ms(s)} | {fmt_ms(j)} | {s / j:.2f} | {'yes' if s < j else 'no'} |")
    print("\n".join(lines + totals))
    bad = [r for r in rows if r["backend_full"] != "numba"]
    for r in bad:
        print(f"note: {r['eval']}.{r['function']} runs on {r['backend_full']}")
    if any(not r["ok"] for r in rows):
        print("WARNING: some outputs disagree with JAX (see 'agree')")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
