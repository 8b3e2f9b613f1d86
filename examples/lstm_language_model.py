"""A one-layer LSTM language model in plain NumPy, trained with s2sad.

The parameters are a dict: an embedding E (vocab x embed), the input and
recurrent weights of the four gates Wx (embed x 4H), Wh (H x 4H) and their
bias b (4H), and the output layer Wy (H x vocab), by (vocab). The loss is
the negative log-likelihood of each next token, with a log-softmax computed
by subtracting the max logit. The loop over time steps, the gate slices and
the embedding lookups E[token] are differentiated as written. (The helper
lstm_step takes the parameter arrays, not the dict: s2sad reads a dict
argument only through constant keys such as params['E'], and rejects
passing the dict itself on to another function with a clear error.)

Training is plain gradient descent:

    loss, grads = s2sad.value_and_grad(loss_fn)(params, tokens)
    params = s2sad.tree_map(lambda p, g: p - lr * g, params, grads)

on the sequence [4, 8, 15, 16, 23, 42] (vocabulary 43, hidden size 16),
300 steps with lr = 0.5. Before training, one gradient coordinate of each
parameter is checked against a central difference; after training, greedy
sampling from token 4 must reproduce the sequence.

Prints "ok" or "MISMATCH" per check and exits 1 if any check fails.
Run:  python examples/lstm_language_model.py
"""

import sys
import time

import numpy as np

import s2sad

FAILURES = []
VOCAB, EMBED, HIDDEN = 43, 8, 16
SEQUENCE = [4, 8, 15, 16, 23, 42]


def report(label, ok, detail):
    print(f"  [{'ok' if ok else 'MISMATCH'}] {label}: {detail}")
    if not ok:
        FAILURES.append(label)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step(E, Wx, Wh, b, token, h, c):
    """One LSTM cell step: gates i, f, o (sigmoid) and candidate g (tanh)."""
    hidden = h.shape[0]
    z = np.dot(E[token], Wx) + np.dot(h, Wh) + b
    i = sigmoid(z[0:hidden])
    f = sigmoid(z[hidden:2 * hidden])
    o = sigmoid(z[2 * hidden:3 * hidden])
    g = np.tanh(z[3 * hidden:4 * hidden])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new


def log_softmax(logits):
    shifted = logits - np.max(logits)
    return shifted - np.log(np.sum(np.exp(shifted)))


def loss_fn(params, tokens):
    """Mean negative log-likelihood of tokens[1:] given the prefix."""
    hidden = params['Wh'].shape[0]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    total = 0.0
    n = tokens.shape[0]
    for t in range(n - 1):
        h, c = lstm_step(params['E'], params['Wx'], params['Wh'], params['b'], tokens[t], h, c)
        logits = np.dot(h, params['Wy']) + params['by']
        logp = log_softmax(logits)
        total = total - logp[tokens[t + 1]]
    return total / (n - 1)


def init_params(rng):
    scale = 0.1
    return {
        'E': scale * rng.standard_normal((VOCAB, EMBED)),
        'Wx': scale * rng.standard_normal((EMBED, 4 * HIDDEN)),
        'Wh': scale * rng.standard_normal((HIDDEN, 4 * HIDDEN)),
        'b': np.zeros(4 * HIDDEN),
        'Wy': scale * rng.standard_normal((HIDDEN, VOCAB)),
        'by': np.zeros(VOCAB),
    }


def greedy_sample(params, first, length):
    """Feed each predicted token back in; plain NumPy, no s2sad."""
    h, c = np.zeros(HIDDEN), np.zeros(HIDDEN)
    out = [first]
    for _ in range(length - 1):
        h, c = lstm_step(params['E'], params['Wx'], params['Wh'], params['b'], out[-1], h, c)
        out.append(int(np.argmax(np.dot(h, params['Wy']) + params['by'])))
    return out


def check_gradient_coordinates(params, tokens):
    print("1. one gradient coordinate per parameter vs a central difference (h = 1e-6), before training")
    grads = s2sad.grad(loss_fn)(params, tokens)
    same_keys = sorted(grads) == sorted(params)
    report("gradient is a dict with the parameters' keys", same_keys, str(sorted(grads)))
    coords = {'E': (8, 3), 'Wx': (2, 40), 'Wh': (5, 7), 'b': (20,), 'Wy': (3, 15), 'by': (16,)}
    eps = 1e-6
    for name, idx in coords.items():
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[name][idx] += eps
        minus[name][idx] -= eps
        fd = (loss_fn(plus, tokens) - loss_fn(minus, tokens)) / (2 * eps)
        got = grads[name][idx]
        ok = grads[name].shape == params[name].shape and np.isclose(got, fd, rtol=1e-5, atol=1e-9)
        report(f"d loss / d {name}{list(idx)}", ok, f"s2sad = {got:.10g}, central difference = {fd:.10g}")


def main():
    rng = np.random.default_rng(0)
    params = init_params(rng)
    tokens = np.array(SEQUENCE)
    print(f"sequence {SEQUENCE}, vocabulary {VOCAB}, embedding {EMBED}, hidden {HIDDEN}")
    check_gradient_coordinates(params, tokens)

    steps, lr = 300, 0.5
    print(f"2. training: {steps} steps of gradient descent, lr = {lr}")
    value_and_grad = s2sad.value_and_grad(loss_fn)
    start = time.perf_counter()
    first_loss = None
    for step in range(steps + 1):
        loss, grads = value_and_grad(params, tokens)
        if first_loss is None:
            first_loss = float(loss)
        if step % 50 == 0:
            print(f"  step {step:4d}  loss {float(loss):.6f}")
        if step < steps:
            params = s2sad.tree_map(lambda p, g: p - lr * g, params, grads)
    print(f"  ({time.perf_counter() - start:.2f} s for {steps + 1} value_and_grad calls, backend=python)")
    report("initial loss is about log(43) = 3.76", abs(first_loss - np.log(VOCAB)) < 0.1, f"{first_loss:.6f}")
    report("final loss below 0.1", float(loss) < 0.1, f"{float(loss):.6f}")
    report("final loss equals loss_fn(params) in plain NumPy",
           abs(float(loss) - loss_fn(params, tokens)) < 1e-6, f"{loss_fn(params, tokens):.6f}")

    print("3. greedy sampling from token 4")
    sample = greedy_sample(params, SEQUENCE[0], len(SEQUENCE))
    report("greedy sample reproduces the sequence", sample == SEQUENCE, f"sample = {sample}")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
