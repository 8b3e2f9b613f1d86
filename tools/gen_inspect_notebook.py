"""Write examples/inspect.ipynb (cells only; run with --execute to store outputs too).

    python tools/gen_inspect_notebook.py [--execute]
"""

import os
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "examples", "inspect.ipynb")

CELLS = [
    new_markdown_cell(
        "# Inspecting what s2sad generates\n\n"
        "s2sad turns the source of a Python function into the source of its derivative. "
        "In a notebook, a transformed function displays as that generated code, and "
        "`s2sad.show(f, stage=...)` shows each stage of the pipeline: `normalized`, "
        "`adjoint` (reverse mode), `tangent` (forward mode), `generated` (the whole module) "
        "and `diff` (the normalized primal next to its derivative)."),
    new_code_cell("import numpy as np\n\nimport s2sad"),
    new_markdown_cell(
        "## A loop with a branch: explicit Euler for exponential decay\n\n"
        "`dy/dt = -decay * y`, integrated with `steps` Euler steps of size `dt`. While the "
        "state stays positive, `state_n = y0 * (1 - dt * decay) ** steps`, so "
        "`d state_n / d decay = -y0 * steps * dt * (1 - dt * decay) ** (steps - 1)`."),
    new_code_cell(
        "def euler_decay(decay, y0, dt, steps):\n"
        "    state = y0\n"
        "    for step in range(steps):\n"
        "        rate = -decay * state\n"
        "        if state > 0.0:\n"
        "            state = state + dt * rate\n"
        "        else:\n"
        "            state = 0.0\n"
        "    return state"),
    new_markdown_cell("The normalized form (one operation per statement) works on plain functions too:"),
    new_code_cell('s2sad.show(euler_decay, stage="normalized")'),
    new_markdown_cell("Before its first call a transformed function has no code yet: s2sad generates it "
                      "for the argument types of the first call."),
    new_code_cell("d_euler = s2sad.grad(euler_decay)\nd_euler"),
    new_code_cell(
        "decay, y0, dt, steps = 0.5, 2.0, 0.1, 20\n"
        "g = d_euler(decay, y0, dt, steps)\n"
        "closed_form = -y0 * steps * dt * (1 - dt * decay) ** (steps - 1)\n"
        'print(f"s2sad gradient: {g:.12f}")\n'
        'print(f"closed form:    {closed_form:.12f}")'),
    new_markdown_cell("Now it displays as its generated module, with a header saying what was differentiated. "
                      "With respect to one float, `grad` runs in forward mode: one sweep carries each "
                      "value's tangent (`state_dot`) beside it, with no tape."),
    new_code_cell("d_euler"),
    new_markdown_cell("The adjoint (reverse-mode) code of the same derivative, generated on request, then "
                      "the tangent (forward-mode) code that ran:"),
    new_code_cell('s2sad.show(d_euler, stage="adjoint")'),
    new_code_cell('s2sad.show(d_euler, stage="tangent")'),
    new_markdown_cell("Side by side: the normalized primal and its derivative (`print` gives a unified diff)."),
    new_code_cell('s2sad.show(d_euler, stage="diff")'),
    new_markdown_cell("A second derivative nests transforms (forward over reverse):"),
    new_code_cell(
        "def cubic(x):\n"
        "    return x ** 3 - 2.0 * x\n\n"
        "d2_cubic = s2sad.grad(s2sad.grad(cubic))\n"
        'print(f"second derivative at 1.5: {d2_cubic(1.5):.12f}  (6x = {6 * 1.5:.12f})")\n'
        "d2_cubic"),
    new_markdown_cell(
        "## Training: linear regression by gradient descent\n\n"
        "Data from `y = 3 x + 1` plus a little noise; the loss is the mean squared error, "
        "and `s2sad.value_and_grad(..., argnums=(0, 1))` gives the loss and its gradient "
        "with respect to the weight and the bias."),
    new_code_cell(
        "def mse(weight, bias, xs, ys):\n"
        "    residual = weight * xs + bias - ys\n"
        "    return np.mean(residual ** 2)\n\n"
        "rng = np.random.default_rng(0)\n"
        "xs = rng.uniform(-1.0, 1.0, size=50)\n"
        "ys = 3.0 * xs + 1.0 + 0.01 * rng.standard_normal(50)\n\n"
        "loss_and_grad = s2sad.value_and_grad(mse, argnums=(0, 1))\n"
        "weight, bias, learning_rate = 0.0, 0.0, 0.1\n"
        "for step in range(301):\n"
        "    loss, (d_weight, d_bias) = loss_and_grad(weight, bias, xs, ys)\n"
        "    if step % 50 == 0:\n"
        '        print(f"step {step:3d}  loss {loss:.6f}")\n'
        "    weight -= learning_rate * d_weight\n"
        "    bias -= learning_rate * d_bias\n"
        'print(f"final loss {mse(weight, bias, xs, ys):.8f}  weight {weight:.4f}  bias {bias:.4f}")'),
    new_code_cell("loss_and_grad"),
]


def build():
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb, cwd=ROOT, timeout=300):
    """Run every cell in a real kernel, with the repository importable."""
    from nbclient import NotebookClient
    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
    return nb


if __name__ == "__main__":
    nb = build()
    if "--execute" in sys.argv:
        execute(nb)
    nbformat.write(nb, PATH)
    print(f"wrote {PATH}")
