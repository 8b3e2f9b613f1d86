"""examples/inspect.ipynb runs in a real Jupyter kernel and shows the right code and numbers."""

import importlib.util
import os
import re

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pygments")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "inspect.ipynb")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_inspect_notebook",
                                                  os.path.join(ROOT, "tools", "gen_inspect_notebook.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def executed(monkeypatch_module):
    from nbclient import NotebookClient
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    # the kernel imports s2sad from this checkout: cwd is the repo root and it is on PYTHONPATH
    monkeypatch_module.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch_module.setenv("S2SAD_BACKEND", "python")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    return nb


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _cell(nb, start):
    hits = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start)]
    assert hits, f"no code cell starting with {start!r}"
    return hits[0]


def _html(cell):
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def _stdout(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def test_committed_notebook_matches_its_generator():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    want = [c.source for c in _generator().build().cells]
    assert [c.source for c in nb.cells] == want, "run: python tools/gen_inspect_notebook.py --execute"


def test_every_cell_runs_without_error(executed):
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def _highlighted_def(html):
    # pygments with inline styles: the keyword is its own styled span
    return re.search(r'<span style="[^"]+">def</span>', html) is not None


def test_normalized_stage_is_highlighted_html_with_the_user_names(executed):
    html = _html(_cell(executed, 's2sad.show(euler_decay, stage="normalized")'))
    assert _highlighted_def(html)
    for name in ("euler_decay", "decay", "state", "rate", "step"):
        assert name in html
    assert "class=" not in html.replace('class="highlight"', "")  # inline styles, no stylesheet needed


def test_transformed_function_before_its_first_call_shows_a_note(executed):
    html = _html(_cell(executed, "d_euler = s2sad.grad(euler_decay)"))
    assert "grad(euler_decay)" in html and "reverse (forward for a single float) mode" in html
    assert "1st-order" in html
    assert "first call" in html
    assert "def</span>" not in html


def test_transformed_function_after_its_call_shows_generated_code(executed):
    cells = [c for c in executed.cells if c.cell_type == "code" and c.source == "d_euler"]
    html = _html(cells[0])
    assert "grad(euler_decay)" in html and "backend=python" in html
    assert _highlighted_def(html)
    # with respect to one float: forward mode
    assert "forward mode" in html and "euler_decay_jvp" in html and "state_dot" in html and "decay_dot" in html


def test_adjoint_tangent_and_diff_stages(executed):
    adjoint = _html(_cell(executed, 's2sad.show(d_euler, stage="adjoint")'))
    tangent = _html(_cell(executed, 's2sad.show(d_euler, stage="tangent")'))
    diff = _html(_cell(executed, 's2sad.show(d_euler, stage="diff")'))
    assert _highlighted_def(adjoint) and "euler_decay_vjp" in adjoint and "_jvp" not in adjoint
    assert _highlighted_def(tangent) and "euler_decay_jvp" in tangent and "state_dot" in tangent
    assert "<table" in diff and diff.count("<td") == 2
    assert "euler_decay_jvp" in diff and "normalized primal" in diff  # what ran


def test_gradient_of_the_loop_matches_the_closed_form(executed):
    out = _stdout(_cell(executed, "decay, y0, dt, steps"))
    got = float(re.search(r"s2sad gradient: (\S+)", out).group(1))
    decay, y0, dt, steps = 0.5, 2.0, 0.1, 20
    want = -y0 * steps * dt * (1 - dt * decay) ** (steps - 1)
    assert got == pytest.approx(want, rel=1e-10)
    assert float(re.search(r"closed form: +(\S+)", out).group(1)) == pytest.approx(want, rel=1e-10)


def test_second_derivative_and_its_header(executed):
    cell = _cell(executed, "def cubic(x):")
    assert float(re.search(r"second derivative at 1.5: (\S+)", _stdout(cell)).group(1)) == pytest.approx(9.0)
    html = _html(cell)
    assert "grad(grad(cubic))" in html and "2nd-order" in html and "forward mode" in html


def test_training_loss_goes_down_to_the_least_squares_fit(executed):
    out = _stdout(_cell(executed, "def mse("))
    losses = [float(v) for v in re.findall(r"step +\d+ +loss (\S+)", out)]
    assert len(losses) == 7
    assert losses[0] > 1.0 and losses[-1] < 1e-3
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    final = re.search(r"final loss (\S+) +weight (\S+) +bias (\S+)", out)
    loss, weight, bias = map(float, final.groups())
    assert loss < 2e-4
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1.0, 1.0, size=50)
    ys = 3.0 * xs + 1.0 + 0.01 * rng.standard_normal(50)
    w_ls, b_ls = np.polyfit(xs, ys, 1)
    assert weight == pytest.approx(w_ls, abs=1e-3) and bias == pytest.approx(b_ls, abs=1e-3)
    assert "value_and_grad(mse)" in _html(_cell(executed, "loss_and_grad"))
