"""Logistic regression, as in JAX's autodiff tutorial ("Taking gradients").

The model and loss are the tutorial's, written in plain NumPy:

    predict(W, b, inputs) = sigmoid(inputs @ W + b)
    loss(W, b) = -sum(log(probability of each true label))

on the tutorial's fixed inputs and boolean targets, with W and b drawn from a
seeded NumPy RNG. Every s2sad gradient is compared with the closed form
worked out by hand below:

    d loss / dz_i = sigmoid(z_i) - y_i                 (z = inputs @ W + b)
    d loss / dW   = inputs.T @ (sigmoid(z) - y)
    d loss / db   = sum(sigmoid(z) - y)

Shows: grad with argnums=0, (0, 1) and 1; dict parameters {'W': ..., 'b': ...};
value_and_grad; a central finite difference of one coordinate; and
s2sad.check_grads(loss, (W, b), order=2) (forward-over-reverse second order).

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/logistic_regression.py
"""

import sys

import numpy as np

import s2sad

FAILURES = []


def check(label, got, want, rtol=1e-10, atol=1e-12):
    got_leaves, got_def = s2sad.tree_flatten(got)
    want_leaves, want_def = s2sad.tree_flatten(want)
    ok = got_def == want_def and all(np.shape(g) == np.shape(w) and np.allclose(g, w, rtol=rtol, atol=atol)
                                     for g, w in zip(got_leaves, want_leaves))
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}:\n      s2sad     = {_fmt(got)}\n      reference = {_fmt(want)}")
    if not ok:
        FAILURES.append(label)


def _fmt(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_fmt(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return np.array2string(np.asarray(v), precision=8) if np.ndim(v) else f"{float(v):.10g}"


# ---- the tutorial's model ------------------------------------------------------

inputs = np.array([[0.52, 1.12, 0.77],
                   [0.88, -1.08, 0.15],
                   [0.52, 0.06, -1.30],
                   [0.74, -2.49, 1.39]])
targets = np.array([True, True, False, True])


def sigmoid(x):
    return 0.5 * (np.tanh(x / 2) + 1)


def predict(W, b, inputs):
    """Probability that each label is True."""
    return sigmoid(np.dot(inputs, W) + b)


def loss(W, b):
    """Negative log-likelihood of the training labels."""
    preds = predict(W, b, inputs)
    label_probs = preds * targets + (1 - preds) * (1 - targets)
    return -np.sum(np.log(label_probs))


def loss_dict(params):
    """The same loss with its parameters in a dict."""
    return loss(params['W'], params['b'])


# ---- closed forms, by hand -------------------------------------------------------

def closed_form_grads(W, b):
    residual = 1.0 / (1.0 + np.exp(-(inputs @ W + b))) - targets.astype(float)
    return inputs.T @ residual, float(np.sum(residual))


def main():
    rng = np.random.default_rng(0)
    W = rng.standard_normal(3)
    b = float(rng.standard_normal())
    print(f"W = {np.array2string(W, precision=8)}  (np.random.default_rng(0).standard_normal(3))")
    print(f"b = {b:.8f}  (the next draw)")
    print(f"loss(W, b) = {loss(W, b):.10g}")
    gW_ref, gb_ref = closed_form_grads(W, b)

    print("1. grad(loss, argnums=0)(W, b)  -- d loss / dW")
    check("W_grad", s2sad.grad(loss, argnums=0)(W, b), gW_ref)

    print("2. grad(loss, argnums=(0, 1))(W, b)  -- a tuple (dW, db)")
    gW, gb = s2sad.grad(loss, argnums=(0, 1))(W, b)
    check("(W_grad, b_grad)", (gW, gb), (gW_ref, gb_ref))

    print("3. grad(loss, argnums=1)(W, b)  -- d loss / db")
    check("b_grad", s2sad.grad(loss, argnums=1)(W, b), gb_ref)

    print("4. grad(loss_dict)({'W': W, 'b': b})  -- gradients in the same dict structure")
    g = s2sad.grad(loss_dict)({'W': W, 'b': b})
    ok_struct = isinstance(g, dict) and sorted(g) == ['W', 'b']
    print(f"  [{'ok' if ok_struct else 'MISMATCH'}] result is a dict with keys ['W', 'b']: {type(g).__name__} {sorted(g) if isinstance(g, dict) else ''}")
    if not ok_struct:
        FAILURES.append("dict structure")
    else:
        check("grads", g, {'W': gW_ref, 'b': gb_ref})

    print("5. value_and_grad(loss, argnums=(0, 1))(W, b)")
    value, (vW, vb) = s2sad.value_and_grad(loss, argnums=(0, 1))(W, b)
    check("loss value", value, loss(W, b))
    check("(W_grad, b_grad)", (vW, vb), (gW_ref, gb_ref))

    print("6. central finite difference of d loss / dW[1], h = 1e-5")
    h = 1e-5
    e = np.zeros(3)
    e[1] = h
    fd = (loss(W + e, b) - loss(W - e, b)) / (2 * h)
    check("W_grad[1] vs (loss(W + h e1) - loss(W - h e1)) / 2h", gW[1], fd, rtol=1e-7, atol=1e-9)

    print("7. s2sad.check_grads(loss, (W, b), order=2)  (jvp, vjp, and forward-over-reverse)")
    try:
        s2sad.check_grads(loss, (W, b), order=2)
        print("  [ok] check_grads passed")
    except AssertionError as err:
        print(f"  [MISMATCH] check_grads: {err}")
        FAILURES.append("check_grads")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
