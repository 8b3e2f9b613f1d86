"""Per-sample derivatives on a GPU: s2sad vmap(grad(...), backend='cuda') against a hand-written
Numba-CUDA kernel of the closed-form derivative and against the 'parallel' CPU backend.

Black-Scholes call price C(S, sigma; K, T, r); the derivatives per option are delta = dC/dS and
vega = dC/dsigma. Usage (on a machine with an NVIDIA GPU and numba-cuda):

    python tools/gpu/bench_gpu.py [--sizes 10000000 100000000] [--cpu-size 10000000]

Checks correctness first (GPU against the CPU numba backend and the closed form, to 1e-12 on a
sample, then the closed form on the whole batch to 1e-9) and prints a table of throughputs.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import s2sad  # noqa: E402
from numba import cuda  # noqa: E402


def _norm_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def call_price(s, sigma, k, t, r):
    d1 = (math.log(s / k) + (r + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    return s * _norm_cdf(d1) - k * math.exp(-r * t) * _norm_cdf(d2)


@cuda.jit
def hand_kernel(s, sigma, k, t, r, delta, vega):
    i = cuda.grid(1)
    if i < s.shape[0]:
        st = math.sqrt(t)
        d1 = (math.log(s[i] / k) + (r + 0.5 * sigma[i] * sigma[i]) * t) / (sigma[i] * st)
        delta[i] = 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))
        vega[i] = s[i] * math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi) * st


def closed_form(s, sigma, k, t, r):
    from scipy.special import erf
    d1 = (np.log(s / k) + (r + 0.5 * sigma ** 2) * t) / (sigma * np.sqrt(t))
    return 0.5 * (1 + erf(d1 / np.sqrt(2))), s * np.exp(-0.5 * d1 ** 2) / np.sqrt(2 * np.pi) * np.sqrt(t)


def timed(fn, repeat=5):
    fn()  # warm-up (compiles)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 100_000_000])
    ap.add_argument("--cpu-size", type=int, default=10_000_000)
    ap.add_argument("--tpb", type=int, default=256)
    args = ap.parse_args()
    K, T, R = 100.0, 1.0, 0.01
    axes = (0, 0, None, None, None)
    gpu = s2sad.vmap(s2sad.grad(call_price, argnums=(0, 1)), in_axes=axes, backend="cuda",
                     threads_per_block=args.tpb)
    par = s2sad.vmap(s2sad.grad(call_price, argnums=(0, 1)), in_axes=axes, backend="parallel")
    nb = s2sad.vmap(s2sad.grad(call_price, argnums=(0, 1)), in_axes=axes, backend="numba")
    dev = cuda.get_current_device()
    name = getattr(dev, "name", "simulator")
    print(f"GPU: {name.decode() if isinstance(name, bytes) else name}; CPU cores: {os.cpu_count()}")

    # correctness on a sample
    rng = np.random.default_rng(0)
    s, sig = rng.uniform(50, 150, 100_000), rng.uniform(0.1, 0.5, 100_000)
    g, c = gpu(s, sig, K, T, R), nb(s, sig, K, T, R)
    cf = closed_form(s, sig, K, T, R)
    err_cpu = max(np.max(np.abs(g[0] - c[0])), np.max(np.abs(g[1] - c[1])))
    err_cf = max(np.max(np.abs(g[0] - cf[0])), np.max(np.abs(g[1] - cf[1])) / 100)
    print(f"check on 1e5 options: max |gpu - cpu numba| = {err_cpu:.2e}, max rel |gpu - closed form| = {err_cf:.2e}")
    assert err_cpu < 1e-12 and err_cf < 1e-9

    rows = []
    for n in args.sizes:
        s, sig = rng.uniform(50, 150, n), rng.uniform(0.1, 0.5, n)
        ds, dsig = cuda.to_device(s), cuda.to_device(sig)
        dd, dv = cuda.device_array(n), cuda.device_array(n)
        blocks = (n + args.tpb - 1) // args.tpb

        def hand():
            hand_kernel[blocks, args.tpb](ds, dsig, K, T, R, dd, dv)
            cuda.synchronize()

        out = {}

        def generated():
            out["r"] = gpu(ds, dsig, K, T, R)
            cuda.synchronize()

        th, tg = timed(hand), timed(generated)
        gd, gv = out["r"][0].copy_to_host(), out["r"][1].copy_to_host()
        hd, hv = dd.copy_to_host(), dv.copy_to_host()
        err = max(np.max(np.abs(gd - hd)), np.max(np.abs(gv - hv)) / 100)
        rows.append((n, "hand-written CUDA kernel (closed form)", th, None))
        rows.append((n, "s2sad vmap(grad) cuda, device arrays", tg, err))
        t_host = timed(lambda: gpu(s, sig, K, T, R), repeat=2)
        rows.append((n, "s2sad vmap(grad) cuda, host arrays (+copies)", t_host, None))
        del ds, dsig, dd, dv, out
    n = args.cpu_size
    s, sig = rng.uniform(50, 150, n), rng.uniform(0.1, 0.5, n)
    t_par = timed(lambda: par(s, sig, K, T, R), 3)
    t_nb = timed(lambda: nb(s, sig, K, T, R), 3)
    p, q = par(s, sig, K, T, R), nb(s, sig, K, T, R)
    err = max(np.max(np.abs(p[0] - q[0])), np.max(np.abs(p[1] - q[1])))
    rows.append((n, f"s2sad vmap(grad) parallel CPU ({os.cpu_count()} cores)", t_par, err))
    rows.append((n, "s2sad vmap(grad) numba CPU (1 core)", t_nb, None))
    print(f"parallel / numba speed-up on {n} options: {t_nb / t_par:.1f}x with {os.cpu_count()} cores")
    print()
    print(f"{'options':>12} | {'implementation':<48} | {'time (ms)':>10} | {'Moptions/s':>11} | max diff vs hand (parallel row: vs numba)")
    print("-" * 110)
    for n, name, t, err in rows:
        e = "" if err is None else f"{err:.1e}"
        print(f"{n:>12} | {name:<48} | {t * 1e3:>10.2f} | {n / t / 1e6:>11.1f} | {e}")


if __name__ == "__main__":
    main()
