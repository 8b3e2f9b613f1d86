"""Linear regression by gradient descent with dict parameters and tree_map.

The model is y = w * x + b with params = {'w': ..., 'b': ...}, fitted to a
single point (x, y) = (42, 500) from w = 13, b = 0 (so the first prediction
is 546). Each step is

    grads = s2sad.grad(loss)(params, xs, ys)           # a dict like params
    params = s2sad.tree_map(lambda p, g: p - lr * g, params, grads)

Two standard losses are trained for 15 steps:

- root-mean-square error with lr = 2e-3: its gradient is sign(r) * (42, 1)
  (r = w*42 + b - 500), so each step moves the prediction by
  lr * (42**2 + 1) = 3.53; after 13 steps the prediction reaches 500.11 and
  then oscillates 500.11 -> 496.58 -> 500.11: the prediction after 15 steps
  is 500.11. This is the variant that reproduces "about 500.11".
- mean squared error with lr = 1e-4: r shrinks by a factor
  1 - 2 lr (42**2 + 1) = 0.647 per step: the prediction after 15 steps is
  500.067.

Each trajectory is compared step by step with the same loop run with
gradients written out by hand.

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/linear_regression.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, rtol=1e-12, atol=1e-9):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    ok = bool(got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol))
    if got.ndim > 1:
        detail = f"max |s2sad - reference| = {np.max(np.abs(got - want)):.3g} over {got.size} numbers"
    else:
        detail = f"s2sad = {np.round(got, 6)}, reference = {np.round(want, 6)}"
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: {detail}")
    if not ok:
        FAILURES.append(label)


def rms(params, xs, ys):
    return np.sqrt(np.mean((params['w'] * xs + params['b'] - ys) ** 2))


def mse(params, xs, ys):
    return np.mean((params['w'] * xs + params['b'] - ys) ** 2)


def rms_grads_by_hand(params, xs, ys):
    r = params['w'] * xs + params['b'] - ys
    root = np.sqrt(np.mean(r ** 2))
    return {'w': float(np.mean(r * xs) / root), 'b': float(np.mean(r) / root)}


def mse_grads_by_hand(params, xs, ys):
    r = params['w'] * xs + params['b'] - ys
    return {'w': float(np.mean(2 * r * xs)), 'b': float(np.mean(2 * r))}


def train(grad_fn, lr, xs, ys, steps=15):
    """Gradient descent from w = 13, b = 0; returns the (w, b, prediction) trajectory."""
    params = {'w': 13.0, 'b': 0.0}
    trajectory = []
    for _ in range(steps):
        grads = grad_fn(params, xs, ys)
        params = s2sad.tree_map(lambda p, g: p - lr * g, params, grads)
        w, b = float(params['w']), float(params['b'])
        trajectory.append((w, b, w * xs[0] + b))
    return np.array(trajectory)


def run(name, loss, by_hand, lr, xs, ys, expected_prediction):
    print(f"{name}, lr = {lr:g}, 15 steps")
    traj = train(s2sad.grad(loss), lr, xs, ys)
    ref = train(by_hand, lr, xs, ys)
    print("  step        w            b       prediction")
    for i, (w, b, p) in enumerate(traj, start=1):
        print(f"  {i:4d} {w:12.6f} {b:12.6f} {p:12.6f}")
    check("trajectory (w, b, prediction) vs hand-written gradients", traj, ref)
    check("prediction after 15 steps", traj[-1, 2], expected_prediction, atol=5e-3)
    return traj


def main():
    xs, ys = np.array([42.0]), np.array([500.0])
    g = s2sad.grad(rms)({'w': 13.0, 'b': 0.0}, xs, ys)
    print(f"grad(rms)({{'w': 13.0, 'b': 0.0}}, [42.], [500.]) = {{'b': {float(g['b']):g}, 'w': {float(g['w']):g}}}")
    check("first gradient (a dict)", [g['w'], g['b']], [42.0, 1.0])
    run("root-mean-square error", rms, rms_grads_by_hand, 2e-3, xs, ys, 500.11)
    run("mean squared error", mse, mse_grads_by_hand, 1e-4, xs, ys, 500.067)

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
