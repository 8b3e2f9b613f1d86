#!/usr/bin/env python3
"""Side-by-side timing of the s2sad GradBench tool's lstm against a PyTorch version of
the same objective (GradBench's PyTorch tool is the reference tool for lstm), in one
process, on inputs shaped like GradBench's.

    python3 tools/gradbench/compare_torch.py [--no-pin] [--threads N]

- inputs: evals/lstm/data/gen_data.py's recipe: l in (2, 4) layers, c in (1024,
  4096) characters, each character as its b = 7 bits (0/1), and state, main and
  extra parameters uniform in [0, 1). GradBench reads its characters from a text
  file that is not public here; these are drawn at random from printable ASCII,
  which gives the same sizes and the same b.
- s2sad: `lstm.define()`, then `F["objective"]` and `F["jacobian"]` on the prepared
  arrays, exactly as run.py calls them;
- PyTorch: ADBench's diagonal LSTM written with torch operations (float64), the
  gradient from one `backward()` of the scalar loss, as GradBench's tool does;
- outputs compared with GradBench's tolerance |x - y| / max(1, |x| + |y|) <= 1e-4
  before timing; timing: best of N alternating calls after a warm-up.

By default the process is pinned to one CPU and PyTorch to one thread, as
compare_jax.py does for JAX; --no-pin and --threads change that.
"""

import argparse
import math
import os
import string
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np
from compare_jax import fmt_ms, max_difference, time_pair

SEED = 31337


def lstm_input(layers, chars, rng):
    text = "".join(rng.choice(list(string.ascii_letters + string.digits + " .,;'!?\n"), size=chars))
    bits = int(np.ceil(np.log2(max(ord(ch) for ch in text))))
    sequence = [[int(b) for b in bin(ord(ch))[2:].zfill(bits)] for ch in text]
    return {
        "main_params": rng.random((2 * layers, 4 * bits)).tolist(),
        "extra_params": rng.random((3, bits)).tolist(),
        "state": rng.random((2 * layers, bits)).tolist(),
        "sequence": sequence,
    }


def make_torch():
    import torch

    def lstm_objective(main_params, extra_params, state, sequence):
        layers = main_params.shape[0] // 2
        b = sequence.shape[1]
        hidden = [state[2 * k] for k in range(layers)]
        cell = [state[2 * k + 1] for k in range(layers)]
        total = torch.zeros((), dtype=torch.float64)
        for t in range(sequence.shape[0] - 1):
            inp = sequence[t] * extra_params[0]
            for k in range(layers):
                w, bias = main_params[2 * k], main_params[2 * k + 1]
                forget = torch.sigmoid(inp * w[:b] + bias[:b])
                ingate = torch.sigmoid(hidden[k] * w[b:2 * b] + bias[b:2 * b])
                outgate = torch.sigmoid(inp * w[2 * b:3 * b] + bias[2 * b:3 * b])
                change = torch.tanh(hidden[k] * w[3 * b:] + bias[3 * b:])
                cell[k] = cell[k] * forget + ingate * change
                hidden[k] = outgate * torch.tanh(cell[k])
                inp = hidden[k]
            ypred = inp * extra_params[1] + extra_params[2]
            lse = torch.log(torch.sum(torch.exp(ypred)) + 2.0)
            total = total + torch.sum(sequence[t + 1] * (ypred - lse))
        return -total / ((sequence.shape[0] - 1) * b)

    def prepare(inp):
        main = torch.tensor(inp["main_params"], dtype=torch.float64, requires_grad=True)
        extra = torch.tensor(inp["extra_params"], dtype=torch.float64, requires_grad=True)
        state = torch.tensor(inp["state"], dtype=torch.float64)
        sequence = torch.tensor(inp["sequence"], dtype=torch.float64)
        return main, extra, state, sequence

    def objective(main, extra, state, sequence):
        with torch.no_grad():
            return float(lstm_objective(main, extra, state, sequence))

    def jacobian(main, extra, state, sequence):
        main.grad = extra.grad = None
        lstm_objective(main, extra, state, sequence).backward()
        return torch.cat([main.grad.flatten(), extra.grad.flatten()]).tolist()

    return torch, prepare, {"objective": objective, "jacobian": jacobian}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--chars", type=int, nargs="+", default=[1024, 4096])
    args = ap.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, [cpu])
        print(f"pinned to CPU {cpu}")
    try:
        torch, torch_prepare, T = make_torch()
    except ImportError:
        print("PyTorch is not installed: nothing to compare (pip install torch)")
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    import lstm
    t0 = time.perf_counter()
    lstm.define()
    print(f"s2sad define (compile) {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(SEED)
    rows, totals = [], {"s2sad": 0.0, "torch": 0.0}
    for layers in args.layers:
        for chars in args.chars:
            inp = lstm_input(layers, chars, rng)
            for fn, (prepare, key, post) in lstm.FUNCTIONS.items():
                s_args, t_args = prepare(inp), torch_prepare(inp)
                f_s, f_t = lstm.F[key], T[fn]
                diff = max_difference(post(f_s(*s_args)), f_t(*t_args))
                assert diff <= 1e-4, (layers, chars, fn, diff)
                # exactly 3 alternating runs each (no time budget: PyTorch's calls take seconds)
                best_s, best_t, _ = time_pair(f_s, s_args, f_t, t_args, max_reps=3, budget_s=math.inf,
                                              finish=lambda out: out)
                totals["s2sad"] += best_s
                totals["torch"] += best_t
                rows.append((f"l={layers} c={chars}", fn, best_s, best_t, diff))
                print(f"  {rows[-1][0]:<14} {fn:<10} s2sad {fmt_ms(best_s):>9} ms   torch {fmt_ms(best_t):>9} ms"
                      f"   ratio {best_s / best_t:6.3f}   max diff {diff:.1e}", flush=True)
    print(f"\ntotal: s2sad {fmt_ms(totals['s2sad'])} ms, torch {fmt_ms(totals['torch'])} ms, "
          f"s2sad/torch {totals['s2sad'] / totals['torch']:.3f}")


if __name__ == "__main__":
    main()
