"""Latency benchmark: how long until the first derivative value, and where that time goes.

Run: python tools/bench/bench_latency.py [--n 100000] [--repeat 20] [--keep]
(about 45 s on a 2-core machine: 15 child processes, run one at a time)

For five derivatives (a scalar function, a Python-loop kernel, a vectorized
model and two second-order derivatives) it prints one table row with:

codegen ms
    s2sad alone: parse, fence, normalize, analyze, transform, emit the
    generated module, write it to the disk cache and exec it. Measured in this
    process as the construction of the internal `Specialization` (what the
    first call of a transformed function does before running anything), via
    `Transformed.specialize` with `backend="python"`, so Numba neither imports
    nor compiles and no generated code runs. Each of 3 tries starts from an
    empty cache directory and empty per-process memos (`compiler.Function._cache`
    of parsed functions, and `api._AS_FUNCTION` / `api._JVP_CACHE` of generated
    inner derivatives where present), as a fresh process would; best of 3.
    One throw-away function is specialized first so that one-time lazy
    imports are not charged to the first row.
gen lines
    Lines of the generated module (the derivative and every helper it needs).
cold 1st s
    The first call with `backend="numba"` in a fresh Python process with a
    fresh, empty `S2SAD_CACHE_DIR`: codegen + Numba compile + one run. Timed
    inside the child around the call alone (imports are reported apart).
    Being in a fresh process, it also pays Numba's once-per-process context
    initialization (see `w/o init s`).
primal s
    For scale: `numba.njit` of the primal function itself, its first call
    (compile + run), timed in the third process described under `w/o init s`
    after everything else there (Numba's context initialized; the derivative
    came from the cache, so none of it was compiled in that process).
warm 1st s
    The same child run again, in another fresh process, on the cache
    directory the cold run filled: s2sad regenerates the code (codegen is not
    cached), finds the content-hashed module file, and Numba
    (`njit(cache=True)`) loads machine code from `<cache dir>/__pycache__`.
    The `hits/miss` column counts Numba cache hits and misses over the
    generated functions' dispatchers in the warm child (a hit and 0 misses =
    the disk cache worked).
warm/cold
    warm 1st / cold 1st.
w/o init s
    The warm first call once more, in a third fresh process that first
    initializes Numba's typing and target contexts (`cpu_target.*_context.refresh()`,
    timed apart: the `numba context init` line). Numba does that lazily at the
    first compile or cache load of each process, and it is most of a warm first
    call; what is left is s2sad's codegen plus loading the cached machine code.
steady ms
    Best of --repeat calls after the first, in the warm child, for reference
    (hessian: jacfwd over jacrev, one generated-code call per input element).
jax 1st s, jax ms
    JAX `jit(grad(f))` (or `jit(hessian(f))`, `jit(grad(grad(f)))`) of the same
    function written with `jax.numpy` (the loop with `lax.fori_loop`), on the
    same inputs, float64 on the CPU: the first call (trace + XLA compile + run)
    and the best steady-state call. JAX's one-time backend start-up is taken by
    a throw-away jit first and reported on its own line. Skipped with a message
    when JAX is not installed.
cold/jax1st
    cold 1st / jax 1st.

Every derivative is checked against a closed form (rtol 1e-9 for s2sad,
1e-7 for JAX): s2sad's in the child right after the timed first call (that
first call is what is checked) and before its steady-state timing; JAX's before
its steady-state timing. The import times of s2sad and of Numba (importing
`s2sad.backends.numba`, which every numba-backend process needs) are measured
in each child and reported apart from the first call. Children run one at a
time; times are wall-clock `time.perf_counter`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402

T_NUMPY = time.perf_counter()

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)
from timing import best  # tools/bench/timing.py, beside this script

import s2sad  # noqa: E402

T_S2SAD = time.perf_counter()

MARK = "@@bench_latency "


# ---- the functions, in plain Python + NumPy ----------------------------------------------
def tanh_poly(x):
    return np.tanh(x ** 3 - 2.0 * x + 0.5)


def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def logreg(w, X, y):
    z = X @ w
    return np.sum(np.log(1.0 + np.exp(-y * z)))


def _warmup_fn(a):
    return np.sin(a) * a


# ---- inputs and closed forms ---------------------------------------------------------------
def inputs(n):
    """The same inputs in every process (seeded)."""
    rng = np.random.default_rng(0)
    return {"x0": 0.7, "xs": rng.uniform(-1.0, 1.0, n),
            "w": rng.standard_normal(20) * 0.1, "X": rng.standard_normal((1000, 20)),
            "y": np.sign(rng.standard_normal(1000))}


def d_tanh_poly(x):
    p, dp = x ** 3 - 2.0 * x + 0.5, 3.0 * x ** 2 - 2.0
    return (1.0 - np.tanh(p) ** 2) * dp


def dd_tanh_poly(x):
    p, dp, ddp = x ** 3 - 2.0 * x + 0.5, 3.0 * x ** 2 - 2.0, 6.0 * x
    t = np.tanh(p)
    return (1.0 - t ** 2) * ddp - 2.0 * t * (1.0 - t ** 2) * dp ** 2


def d_rosenbrock(x):
    g = np.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[1:] += 200.0 * d
    g[:-1] += -400.0 * d * x[:-1] - 2.0 * (1.0 - x[:-1])
    return g


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def d_logreg(w, X, y):
    return X.T @ (-y * _sigmoid(-y * (X @ w)))


def h_logreg(w, X, y):
    yz = y * (X @ w)
    return X.T @ ((_sigmoid(yz) * _sigmoid(-yz))[:, None] * X)


def cases(data):
    """label -> (make(backend) -> transformed function, args, reference value, the primal)."""
    x0, xs, w, X, y = data["x0"], data["xs"], data["w"], data["X"], data["y"]
    return {
        "tanh(poly) grad": (lambda b: s2sad.grad(tanh_poly, backend=b), (x0,), d_tanh_poly(x0), tanh_poly),
        f"rosenbrock loop n={xs.shape[0]}": (lambda b: s2sad.grad(rosenbrock, backend=b), (xs,), d_rosenbrock(xs),
                                              rosenbrock),
        "logreg 1000x20 grad": (lambda b: s2sad.grad(logreg, backend=b), (w, X, y), d_logreg(w, X, y), logreg),
        "tanh(poly) grad(grad)": (lambda b: s2sad.grad(s2sad.grad(tanh_poly, backend=b), backend=b), (x0,),
                                  dd_tanh_poly(x0), tanh_poly),
        "logreg hessian 20x20": (lambda b: s2sad.hessian(logreg, backend=b), (w, X, y), h_logreg(w, X, y), logreg),
    }


def jax_cases(data):
    """The same derivatives in JAX: label -> (jitted derivative, args)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def tanh_poly_j(x):
        return jnp.tanh(x ** 3 - 2.0 * x + 0.5)

    def rosen_j(x):
        def body(i, s):
            return s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
        return lax.fori_loop(0, x.shape[0] - 1, body, 0.0)

    def logreg_j(w, X, y):
        return jnp.sum(jnp.log(1.0 + jnp.exp(-y * (X @ w))))

    x0, xs, w, X, y = data["x0"], data["xs"], data["w"], data["X"], data["y"]
    labels = list(cases(data))
    fns = [(jax.grad(tanh_poly_j), (x0,)), (jax.grad(rosen_j), (xs,)), (jax.grad(logreg_j), (w, X, y)),
           (jax.grad(jax.grad(tanh_poly_j)), (x0,)), (jax.hessian(logreg_j), (w, X, y))]
    out = {}
    for label, (f, args) in zip(labels, fns):
        jf = jax.jit(f)
        out[label] = (lambda *a, jf=jf: np.asarray(jf(*a).block_until_ready()), args)
    return out


def check(label, got, ref, rtol, who):
    try:
        np.testing.assert_allclose(np.asarray(got, dtype=float), ref, rtol=rtol, atol=1e-12)
    except AssertionError as exc:
        raise SystemExit(f"{who}: wrong derivative for {label}:\n{exc}") from None


# ---- codegen alone (this process) -------------------------------------------------------------
def specialize(transformed, args):
    """What a first call does before running anything: build the Specialization (codegen + load)."""
    from s2sad.api import transforms as api
    argnums = transformed.argnum_tuple()
    flat, treedefs, positions = api._flatten(list(args), argnums)
    mode = "forward" if (transformed.kind == "jacfwd" or transformed.nested) else "reverse"
    return transformed.specialize(flat, argnums, tuple(treedefs), positions, mode)


def clear_process_caches():
    """Forget what s2sad memoizes per process (parsed functions, generated inner derivatives)."""
    from s2sad.api import transforms as api
    from s2sad.codegen import compiler
    compiler.Function._cache.clear()
    for name in ("_AS_FUNCTION", "_JVP_CACHE"):  # module-level memo dicts, where this version has them
        memo = getattr(api, name, None)
        if isinstance(memo, dict):
            memo.clear()


def codegen_time(make, args, tries=3):
    times = []
    for _ in range(tries):
        d = tempfile.mkdtemp(prefix="s2sad-latency-codegen-")
        os.environ["S2SAD_CACHE_DIR"] = d
        clear_process_caches()
        t = make("python")
        t0 = time.perf_counter()
        spec = specialize(t, args)
        times.append(time.perf_counter() - t0)
        lines = spec.source.count("\n")
        shutil.rmtree(d, ignore_errors=True)
    return min(times), lines


# ---- the child: one fresh process, one first call -----------------------------------------------
def child(label, n, repeat, preinit=False):
    t0 = time.perf_counter()
    import s2sad.backends.numba  # noqa: F401  (imports numba and registers s2sad's overloads)
    t_numba = time.perf_counter() - t0
    t_init = float("nan")
    if preinit:  # what Numba otherwise does lazily inside the first compile or cache load of a process
        from numba.core.registry import cpu_target
        t0 = time.perf_counter()
        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
        t_init = time.perf_counter() - t0
    data = inputs(n)
    make, args, ref, primal = cases(data)[label]
    f = make("numba")
    t0 = time.perf_counter()
    got = f(*args)
    first = time.perf_counter() - t0
    check(label, got, ref, 1e-9, "s2sad (numba)")
    spec = f.last
    compiled = spec.call
    hits = misses = 0
    glb = compiled.dispatcher.py_func.__globals__
    for tree in spec.module.functions:
        d = glb.get(tree.name)
        if hasattr(d, "stats"):
            hits += sum(d.stats.cache_hits.values())
            misses += sum(d.stats.cache_misses.values())
    steady = best(f, *args, repeat=repeat, warmup=False)  # the first call ran above
    t_primal = float("nan")
    if preinit:  # reference: Numba compiling the primal itself (context initialized, nothing else compiled)
        import numba
        jp = numba.njit(primal)
        t0 = time.perf_counter()
        jp(*args)
        t_primal = time.perf_counter() - t0
    print(MARK + json.dumps({"import_s2sad": T_S2SAD - T_NUMPY, "import_numpy": T_NUMPY - T_START,
                             "import_numba": t_numba, "init": t_init, "first": first, "primal": t_primal,
                             "steady": steady, "hits": hits, "misses": misses,
                             "compiled": bool(compiled.compiled)}), flush=True)


def run_child(label, n, repeat, cache, preinit=False):
    env = dict(os.environ, S2SAD_CACHE_DIR=cache, S2SAD_CACHE="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", label, "--n", str(n),
                           "--repeat", str(repeat)] + (["--preinit"] if preinit else []),
                          env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"child for {label!r} failed (exit {proc.returncode})")
    out = json.loads(lines[-1][len(MARK):])
    out["wall"] = wall
    return out


# ---- the parent ----------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000, help="Rosenbrock's array length")
    parser.add_argument("--repeat", type=int, default=20, help="steady-state calls (best of)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache directories")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--preinit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n, args.repeat, args.preinit)
    t_all = time.perf_counter()
    data = inputs(args.n)
    table = cases(data)
    saved_dir = os.environ.get("S2SAD_CACHE_DIR")

    # 1. codegen alone, after one throw-away specialization (lazy imports)
    os.environ["S2SAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="s2sad-latency-codegen-")
    specialize(s2sad.grad(_warmup_fn, backend="python"), (0.3,))
    shutil.rmtree(os.environ["S2SAD_CACHE_DIR"], ignore_errors=True)
    codegen = {label: codegen_time(make, fargs) for label, (make, fargs, _, _) in table.items()}
    if saved_dir is None:
        os.environ.pop("S2SAD_CACHE_DIR", None)
    else:
        os.environ["S2SAD_CACHE_DIR"] = saved_dir

    # 2 + 3 + 4. cold and warm first calls, each in a fresh process; steady state in the warm one
    cold, warm, pre, dirs = {}, {}, {}, []
    for label in table:
        d = tempfile.mkdtemp(prefix="s2sad-latency-cache-")
        dirs.append(d)
        cold[label] = run_child(label, args.n, args.repeat, d)
        warm[label] = run_child(label, args.n, args.repeat, d)
        pre[label] = run_child(label, args.n, args.repeat, d, preinit=True)

    # JAX, in this process
    jax_first, jax_steady, jax_note = {}, {}, ""
    try:
        t0 = time.perf_counter()
        import jax
        jax.config.update("jax_enable_x64", True)
        t_jax_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.jit(lambda v: v + 1.0)(np.zeros(3)).block_until_ready()
        t_jax_init = time.perf_counter() - t0
        jaxes = jax_cases(data)
        for label, (jf, fargs) in jaxes.items():
            t0 = time.perf_counter()
            got = jf(*fargs)
            jax_first[label] = time.perf_counter() - t0
            check(label, got, table[label][2], 1e-7, "jax")
            jax_steady[label] = best(jf, *fargs, repeat=args.repeat, warmup=False)
        jax_note = (f"jax {jax.__version__}: import {t_jax_import:.2f} s, backend start-up (first trivial jit) "
                    f"{t_jax_init:.2f} s, not included in 'jax 1st'")
    except ImportError:
        jax_note = "JAX not installed: skipping the JAX columns (pip install 's2sad[bench]')"

    import numba
    nan = float("nan")
    print(f"latency of the first derivative call; n={args.n}; steady = best of {args.repeat}; "
          f"python {sys.version.split()[0]}, numpy {np.__version__}, numba {numba.__version__}, "
          f"{os.cpu_count()} CPUs")
    head = (f"{'derivative':24} {'codegen ms':>10} {'gen lines':>9} {'cold 1st s':>10} {'primal s':>8} "
            f"{'warm 1st s':>10} {'warm/cold':>9} {'w/o init s':>10} {'hits/miss':>9} {'steady ms':>9} "
            f"{'jax 1st s':>9} {'jax ms':>8} {'cold/jax1st':>11}")
    print(head)
    for label in table:
        cg, lines = codegen[label]
        c, w = cold[label], warm[label]
        jf, js = jax_first.get(label, nan), jax_steady.get(label, nan)
        hm = f"{w['hits']}/{w['misses']}"
        print(f"{label:24} {cg * 1e3:10.1f} {lines:9d} {c['first']:10.2f} {pre[label]['primal']:8.2f} "
              f"{w['first']:10.2f} {w['first'] / c['first']:9.2f} {pre[label]['first']:10.3f} {hm:>9} "
              f"{w['steady'] * 1e3:9.3f} {jf:9.2f} {js * 1e3:8.3f} {c['first'] / jf:11.1f}")
    children = list(cold.values()) + list(warm.values()) + list(pre.values())
    imp_s = [r["import_s2sad"] for r in children]
    imp_nb = [r["import_numba"] for r in children]
    imp_np = [r["import_numpy"] for r in children]
    inits = [r["init"] for r in pre.values()]
    walls_c = [r["wall"] for r in cold.values()]
    walls_w = [r["wall"] for r in warm.values()]
    print(f"child imports (median over {len(imp_s)} fresh processes): numpy {np.median(imp_np):.2f} s, "
          f"s2sad {np.median(imp_s):.2f} s, numba + s2sad.backends.numba {np.median(imp_nb):.2f} s "
          "(not in the '1st' columns)")
    print(f"numba context init (median over {len(inits)} processes, measured apart for 'w/o init'): "
          f"{np.median(inits):.2f} s; it is inside 'cold 1st' and 'warm 1st'")
    print(f"whole child process, launch to exit (median; with Python start-up, the checks and the steady-state "
          f"loop): cold {np.median(walls_c):.2f} s, warm {np.median(walls_w):.2f} s")
    cold_misses = {label: (r["hits"], r["misses"]) for label, r in cold.items()}
    print("cold children hits/miss: " + ", ".join(f"{k}: {h}/{m}" for k, (h, m) in cold_misses.items()))
    if any(not r["compiled"] for r in children):
        print("WARNING: some first call did not run Numba-compiled code")
    if any(r["misses"] or not r["hits"] for r in list(warm.values()) + list(pre.values())):
        print("NOTE: a warm child missed Numba's disk cache (hits/miss column): it compiled again")
    print(jax_note)
    if args.keep:
        print("cache directories kept: " + " ".join(dirs))
    else:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    print(f"total benchmark time {time.perf_counter() - t_all:.1f} s")


if __name__ == "__main__":
    main()
