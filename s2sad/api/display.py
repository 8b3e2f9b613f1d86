"""Notebook inspection: transformed functions and their code, displayed.

`Transformed._repr_html_` (a transformed function as the last expression
of a Jupyter cell) shows a one-line header and the highlighted generated
module. `show(f, stage=...)` gives a displayable object for one stage of
the pipeline:

    normalized  the user's function in A-normal form (also for plain functions)
    adjoint     the generated reverse-mode functions (`*_vjp`)
    tangent     the generated forward-mode functions (`*_jvp`)
    generated   the whole generated module, exactly what `s2sad.source` returns
    diff        the normalized primal next to its generated derivative

Every object has `_repr_html_` (Pygments with inline styles, so it survives
notebook viewers that strip stylesheets) and a plain-text `__str__`.
"""

import difflib
import html

from .. import backends
from ..codegen import compiler
from ..errors import S2SADError
from ..ir import emit, nested

STAGES = ("normalized", "adjoint", "tangent", "generated", "diff")
_NOT_YET = ("Code is generated at the first call, for the argument types of that call: "
            "call it once, then display it again.")


# ---- highlighting ----------------------------------------------------------------

def highlight(source):
    """Python source as an HTML <div> with inline styles (plain <pre> without Pygments)."""
    try:
        from pygments import highlight as _hl
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments is a test dependency
        return f"<pre>{html.escape(source)}</pre>"
    return _hl(source, PythonLexer(), HtmlFormatter(noclasses=True, nowrap=False))


def _header_html(title):
    return f'<div style="font-family: monospace; font-weight: bold; margin-bottom: 4px">{html.escape(title)}</div>'


class Code:
    """A titled piece of Python source that displays highlighted in Jupyter."""

    def __init__(self, title, source, stage=None, note=None):
        self.title, self.source, self.stage, self.note = title, source, stage, note

    def __str__(self):
        parts = [f"# {self.title}"]
        if self.note:
            parts.append(f"# {self.note}")
        if self.source:
            parts.append(self.source.rstrip("\n"))
        return "\n".join(parts) + "\n"

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self):
        parts = [_header_html(self.title)]
        if self.note:
            parts.append(f'<div style="font-style: italic">{html.escape(self.note)}</div>')
        if self.source:
            parts.append(highlight(self.source))
        return "<div>" + "".join(parts) + "</div>"


class SideBySide:
    """The normalized primal next to its generated derivative.

    HTML: a two-column table, each column highlighted. Text: a unified diff,
    which shows what the transformation added around the primal statements.
    """

    def __init__(self, title, left, right, left_title="normalized primal", right_title="derivative"):
        self.title, self.left, self.right = title, left, right
        self.left_title, self.right_title = left_title, right_title

    def diff(self):
        return "".join(difflib.unified_diff(self.left.splitlines(True), self.right.splitlines(True),
                                            fromfile=self.left_title, tofile=self.right_title))

    def __str__(self):
        return f"# {self.title}\n{self.diff()}"

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self):
        cell = 'style="vertical-align: top; text-align: left; padding: 0 8px"'
        return (f"<div>{_header_html(self.title)}<table><tr>"
                f"<th {cell}>{html.escape(self.left_title)}</th><th {cell}>{html.escape(self.right_title)}</th></tr>"
                f"<tr><td {cell}>{highlight(self.left)}</td><td {cell}>{highlight(self.right)}</td></tr>"
                f"</table></div>")


# ---- describing a transformed function ------------------------------------------

def _is_transformed(f):
    return nested.is_transformed(f)


def innermost(f):
    """The user's function under any number of transforms."""
    while _is_transformed(f):
        f = f.fun
    return f


def order(f):
    """Derivative order: how many transforms are nested."""
    n = 0
    while _is_transformed(f):
        n, f = n + 1, f.fun
    return n


def _ordinal(n):
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def mode(t):
    """The mode of the latest call's code; before any call, what the arguments will decide."""
    if t.last is not None:
        return t.last.mode
    if t.kind == "jacfwd" or t.nested:
        return "forward"
    if t.kind in ("grad", "value_and_grad") and not t.has_aux:
        return "reverse (forward for a single float)"
    return "reverse"


def backend(t):
    return t.backend or backends.default()


def _name(f):
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


def describe(t):
    """One line: what was differentiated, mode, derivative order, backend."""
    kinds = []
    f = t
    while _is_transformed(f):
        kinds.append(f.kind)
        f = f.fun
    chain = "(".join(kinds) + f"({_name(f)})" + ")" * (len(kinds) - 1)
    text = (f"s2sad {chain} w.r.t. argnums={t.argnums}: {mode(t)} mode, "
            f"{_ordinal(order(t))}-order derivative, backend={backend(t)}")
    if t.last is not None:
        text += f", for argument types ({', '.join(map(repr, t.last.types))})"
    return text


def transformed_html(t):
    """What Jupyter displays for a transformed function."""
    if t.last is None:
        return Code(describe(t), "", note=_NOT_YET)._repr_html_()
    return Code(describe(t), t.last.source, stage="generated")._repr_html_()


# ---- stages -------------------------------------------------------------------------

def normalized_source(fn):
    return emit.to_source(compiler.Function.of(fn).ir)


def _generated_functions(spec, which):
    """Source of the generated functions of `spec.module` of one kind: 'reverse' or 'forward'."""
    names = {name for key, name in spec.module.vjps.items() if (key[0] == "jvp") == (which == "forward")}
    trees = [tree for tree in spec.module.functions if tree.name in names]
    return "\n\n".join(emit.to_source(tree) for tree in trees)


def _require_called(t, stage):
    if t.last is None:
        raise S2SADError(f"{_name(t)} has not been called yet, so there is no {stage} code: " + _NOT_YET)


def show(f, stage=None, side_by_side=False):
    """A displayable view (HTML in Jupyter, text in print) of one stage of `f`.

    `f` is a transformed function (`s2sad.grad(...)`, ...) or, for
    stage="normalized", also a plain Python function. The default stage is
    "generated" for a transformed function and "normalized" for a plain one.
    `side_by_side=True` is the same as stage="diff".
    """
    if side_by_side:
        stage = "diff"
    if stage is None:
        stage = "generated" if _is_transformed(f) else "normalized"
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    user = innermost(f)
    if stage == "normalized":
        return Code(f"{_name(user)}: normalized (A-normal form)", normalized_source(user), stage)
    if not _is_transformed(f):
        raise S2SADError(f"stage={stage!r} needs a function transformed by s2sad (e.g. s2sad.grad(f)), "
                         f"called once; {_name(f)} is a plain function: only stage='normalized' applies")
    if f.last is None and stage == "generated":
        return Code(describe(f), "", stage, note=_NOT_YET)
    _require_called(f, stage)
    if stage == "generated":
        return Code(describe(f), f.last.source, stage)
    if stage == "adjoint":
        return Code(f"{describe(f)} - adjoint (reverse-mode) code",
                    _generated_functions(f.in_mode("reverse"), "reverse"), stage)
    if stage == "tangent":
        return Code(f"{describe(f)} - tangent (forward-mode) code",
                    _generated_functions(f.in_mode("forward"), "forward"), stage)
    # diff: the function that was differentiated, normalized, next to the top generated function
    spec = f.last
    top = [tree for tree in spec.module.functions if tree.name == spec.name][0]
    try:
        left = normalized_source(innermost(f))
    except Exception as e:  # a NumPy ufunc or builtin: no Python source
        left = f"# no normalized source for {_name(innermost(f))}: {e}\n"
    return SideBySide(describe(f), left, emit.to_source(top),
                      left_title=f"normalized primal: {_name(innermost(f))}", right_title=f"derivative: {spec.name}")
