"""Per-sample gradients with s2sad.vmap, as in JAX's autodiff tutorial.

grad needs a scalar output: s2sad.grad(np.tanh) applied to a batch raises a
TypeError that says so. s2sad.vmap(s2sad.grad(np.tanh)) maps the scalar
gradient over the batch instead and returns d tanh / dx for each sample,
1 - tanh(x)**2. The same works for a per-example loss with a shared
parameter: vmap(grad(loss), in_axes=(None, 0, 0)) gives one gradient per
example, and their mean is grad of the mean loss.

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/per_sample_gradients.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def report(label, ok, detail):
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: {detail}")
    if not ok:
        FAILURES.append(label)


def example_loss(w, x, y):
    """Squared error of a 1-parameter model tanh(w * x) on one example."""
    return (np.tanh(w * x) - y) ** 2


def mean_loss(w, xs, ys):
    return np.mean((np.tanh(w * xs) - ys) ** 2)


def main():
    if not hasattr(s2sad, "vmap"):
        print("MISMATCH: this s2sad has no s2sad.vmap; per-sample gradients need it")
        return 1
    xs = np.linspace(-3.0, 3.0, 7)
    print(f"xs = {xs}")

    print("1. vmap(grad(np.tanh))(xs) against 1 - tanh(xs)**2")
    per_sample = s2sad.vmap(s2sad.grad(np.tanh))(xs)
    want = 1 - np.tanh(xs) ** 2
    print(f"  s2sad:       {np.array2string(np.asarray(per_sample), precision=10)}")
    print(f"  closed form: {np.array2string(want, precision=10)}")
    report("per-sample derivatives", np.shape(per_sample) == xs.shape and np.allclose(per_sample, want, rtol=1e-12, atol=1e-15),
           f"max abs difference {np.max(np.abs(np.asarray(per_sample) - want)):.3g}")

    print("2. grad(np.tanh)(xs) on the whole batch is an error: grad needs a scalar output")
    try:
        s2sad.grad(np.tanh)(xs)
    except TypeError as err:
        print(f"  TypeError: {err}")
        report("grad of a non-scalar output raises TypeError naming the scalar requirement",
               "scalar" in str(err), "message mentions 'scalar'")
    else:
        report("grad of a non-scalar output raises TypeError", False, "no error was raised")

    print("3. per-example gradients of a loss with a shared parameter: vmap(grad(loss), in_axes=(None, 0, 0))")
    w = 0.8
    ys = 0.5 * np.sin(xs)
    per_example = np.asarray(s2sad.vmap(s2sad.grad(example_loss), in_axes=(None, 0, 0))(w, xs, ys))
    t = np.tanh(w * xs)
    want = 2 * (t - ys) * (1 - t ** 2) * xs
    print(f"  s2sad:       {np.array2string(per_example, precision=10)}")
    print(f"  closed form: {np.array2string(want, precision=10)}")
    report("per-example gradients", per_example.shape == xs.shape and np.allclose(per_example, want, rtol=1e-12, atol=1e-15),
           f"max abs difference {np.max(np.abs(per_example - want)):.3g}")
    full = s2sad.grad(mean_loss)(w, xs, ys)
    report("mean of per-example gradients == grad(mean_loss)", np.isclose(per_example.mean(), full, rtol=1e-12),
           f"{per_example.mean():.12g} vs {full:.12g}")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
