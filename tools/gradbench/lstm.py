"""GradBench eval `lstm`: ADBench's diagonal LSTM loss and its gradient with
respect to main_params (2 l rows of 4 b: weights then biases per layer) and
extra_params (3 rows of b: input weight, output weight, output bias)."""

import numpy as np

from common import array, check_fd, grad, primal, tolist


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm_fn(main_params, extra_params, state, sequence):
    nl = main_params.shape[0] // 2
    b = sequence.shape[1]
    c = sequence.shape[0]
    hidden = np.zeros((nl, b))
    cell = np.zeros((nl, b))
    for layer in range(nl):
        hidden[layer] = state[2 * layer]
        cell[layer] = state[2 * layer + 1]
    total = 0.0
    count = 0
    for t in range(c - 1):
        inp = sequence[t] * extra_params[0]
        for layer in range(nl):
            w = main_params[2 * layer]
            bias = main_params[2 * layer + 1]
            forget = sigmoid(inp * w[0:b] + bias[0:b])
            ingate = sigmoid(hidden[layer] * w[b:2 * b] + bias[b:2 * b])
            outgate = sigmoid(inp * w[2 * b:3 * b] + bias[2 * b:3 * b])
            change = np.tanh(hidden[layer] * w[3 * b:4 * b] + bias[3 * b:4 * b])
            cell[layer] = cell[layer] * forget + ingate * change
            hidden[layer] = outgate * np.tanh(cell[layer])
            inp = hidden[layer]
        ypred = inp * extra_params[1] + extra_params[2]
        lse = np.log(np.sum(np.exp(ypred)) + 2.0)
        total = total + np.sum(sequence[t + 1] * (ypred - lse))
        count = count + b
    return -total / count


F = {}


def _sample():
    rng = np.random.default_rng(0)
    nl, b, c = 2, 3, 4
    return (rng.normal(size=(2 * nl, 4 * b)), rng.normal(size=(3, b)),
            rng.normal(size=(2 * nl, b)), rng.normal(size=(c, b)))


def define():
    F["objective"] = primal("lstm.objective", lstm_fn, _sample(), helpers=("sigmoid",))
    jac = grad("lstm.jacobian", lstm_fn, _sample(), argnums=(0, 1))
    check_fd("lstm_fn", lstm_fn, jac, _sample(), (0, 1),
             "cause not yet minimised (row writes hidden[layer] = ... into 2-D local arrays "
             "inside nested loops); see NEEDS.md")
    F["jacobian"] = jac


def prepare(inp):
    return (array(inp["main_params"]), array(inp["extra_params"]),
            array(inp["state"]), array(inp["sequence"]))


def post_jacobian(g):
    return np.concatenate([g[0].ravel(), g[1].ravel()]).tolist()


FUNCTIONS = {
    "objective": (prepare, "objective", float),
    "jacobian": (prepare, "jacobian", post_jacobian),
}
