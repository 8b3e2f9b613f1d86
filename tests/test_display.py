"""Notebook display of transformed functions and s2sad.show stages."""

import re

import numpy as np
import pytest

import s2sad
from s2sad.api import display
from s2sad.errors import S2SADError

pytest.importorskip("pygments")


def running_sum(xs, n):
    total = 0.0
    for k in range(n):
        if xs[k] > 0.0:
            total = total + xs[k] * xs[k]
        else:
            total = total - xs[k]
    return total


def poly(x):
    return x ** 3 + 2.0 * x


XS = np.array([1.0, -2.0, 3.0])


def styled_def(html):
    return re.search(r'<span style="[^"]+">def</span>', html) is not None


def test_repr_html_before_the_first_call_is_a_header_and_a_note():
    g = s2sad.grad(running_sum)
    html = g._repr_html_()
    assert "grad(running_sum)" in html and "1st-order" in html
    assert "reverse (forward for a single float) mode" in html  # the arguments decide
    assert "backend=python" in html
    assert "first call" in html and "def" not in html
    assert "first call" in str(s2sad.show(g))


def test_repr_html_after_a_call_is_the_highlighted_generated_module():
    g = s2sad.grad(running_sum)
    np.testing.assert_allclose(g(XS, 3), [2.0, -1.0, 6.0])
    html = g._repr_html_()
    assert styled_def(html)
    assert "running_sum_vjp" in html and "total_bar" in html and "xs_bar" in html
    assert "float[1d], int" in html  # argument types in the header
    assert repr(g) == "<s2sad.grad of running_sum>"  # the plain repr is unchanged


def test_show_normalized_of_a_plain_function():
    view = s2sad.show(running_sum)
    assert view.stage == "normalized"
    text = str(view)
    assert "def running_sum(xs, n):" in text and "range(0, n, 1)" in text
    assert styled_def(view._repr_html_()) and "total" in view._repr_html_()
    assert repr(view) == text


def test_show_normalized_of_a_transformed_function_is_the_user_function():
    assert str(s2sad.show(s2sad.grad(poly), "normalized")) == str(s2sad.show(poly, "normalized"))


def test_show_stages_of_a_called_gradient():
    g = s2sad.grad(running_sum)
    g(XS, 3)
    generated = s2sad.show(g, "generated")
    assert g.last.source in str(generated)
    adjoint = str(s2sad.show(g, "adjoint"))
    assert "def running_sum_vjp(xs, n, _out_bar):" in adjoint and "_jvp" not in adjoint
    tangent = str(s2sad.show(g, "tangent"))  # generated on demand for the same argument types
    assert "def running_sum_jvp(xs, n, xs_dot):" in tangent and "_vjp" not in tangent
    # and the tangent code is right: it is cached as a forward specialization of g
    spec = [s for key, s in g.specializations.items() if key[-1] == "forward"][0]
    value, dot = spec.call(XS, 3, np.array([1.0, 0.0, 0.0]))
    assert value == running_sum(XS, 3) and dot == pytest.approx(2.0)


def test_show_diff_is_a_two_column_table_and_a_unified_diff():
    # grad of one float runs in forward mode, jacrev in reverse mode: the diff shows what runs
    for t, derivative in ((s2sad.grad(poly), "poly_jvp(x, x_dot)"), (s2sad.jacrev(poly), "poly_vjp(x, _out_bar)")):
        t(1.0)
        for view in (s2sad.show(t, "diff"), s2sad.show(t, side_by_side=True)):
            html = view._repr_html_()
            assert "<table" in html and html.count("<td") == 2
            assert "def</span> <span" in html or styled_def(html)
            text = str(view)
            assert "--- normalized primal: poly" in text and f"+++ derivative: {derivative[:8]}" in text
            assert "-def poly(x):" in text and f"+def {derivative}:" in text


def test_higher_order_header_counts_nesting():
    gg = s2sad.grad(s2sad.grad(poly))
    assert gg(2.0) == pytest.approx(12.0)
    assert display.order(gg) == 2
    header = display.describe(gg)
    assert "grad(grad(poly))" in header and "2nd-order" in header and "forward mode" in header
    h = s2sad.hessian(poly)
    assert "jacfwd(jacrev(poly))" in display.describe(h) and "2nd-order" in display.describe(h)
    assert "def poly_vjp_jvp" in str(s2sad.show(gg, "tangent"))
    assert styled_def(gg._repr_html_())


def test_mode_and_backend_in_the_header():
    assert "forward mode" in display.describe(s2sad.jacfwd(poly))
    assert "backend=numba" in display.describe(s2sad.grad(poly, backend="numba"))


def test_errors():
    with pytest.raises(ValueError, match="unknown stage"):
        s2sad.show(poly, "bogus")
    with pytest.raises(S2SADError, match="plain function"):
        s2sad.show(poly, "adjoint")
    with pytest.raises(S2SADError, match="not been called"):
        s2sad.show(s2sad.grad(poly), "adjoint")


def test_highlight_escapes_and_uses_inline_styles():
    html = display.highlight("def f(a):\n    return a < 1 and '<b>'\n")
    assert "<b>" not in html and "&lt;" in html
    assert "style=" in html
