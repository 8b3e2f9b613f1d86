"""Frontend: a Python function object -> its gast tree and the names it sees.

In: a function (module-level, nested, closure, lambda) or a NumPy ufunc.
Out: a `Parsed` holding a `gast.FunctionDef` whose line numbers are the
user's file lines, and the namespace (globals, closure cells, builtins) in
which its free names resolve. Next stage: `fence`.
"""

import builtins
import inspect
import linecache
import textwrap

import gast
import numpy as np

from .errors import Location, S2SADError


class Parsed:
    def __init__(self, fn, tree, namespace, filename, col_shift):
        self.fn = fn
        self.tree = tree
        self.namespace = namespace
        self.filename = filename
        self.col_shift = col_shift  # columns removed by dedent

    @property
    def name(self):
        return self.tree.name

    def where(self, node):
        return Location(self.filename, getattr(node, "lineno", None) or self.tree.lineno,
                        (getattr(node, "col_offset", 0) or 0) + self.col_shift)


def parse(fn):
    """Parse `fn` into a `Parsed`; raise S2SADError if its source is unavailable."""
    if isinstance(fn, np.ufunc):
        return _parse_ufunc(fn)
    from .custom import _Custom
    if isinstance(fn, _Custom):   # grad(f) of a custom_vjp/custom_jvp f: a function that calls it
        return _parse_call_of(fn, fn.__name__, fn.params, {fn.__name__: fn}, f"{fn.__name__}, a custom rule")
    if not inspect.isfunction(fn):
        raise S2SADError(f"s2sad differentiates Python functions; got {fn!r} of type {type(fn).__name__}")
    try:
        lines, first = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError) as err:
        raise S2SADError(
            f"cannot read the source of {fn.__qualname__} ({err}); s2sad needs the function's "
            "source code: define it in a file, or in a notebook cell") from None
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    col_shift = _indent(source) - _indent(dedented)
    if fn.__name__ == "<lambda>":
        tree = _find_lambda(fn, dedented, first, col_shift)
    else:
        module = gast.parse(dedented)
        gast.increment_lineno(module, first - 1)
        tree = module.body[0]
        if isinstance(tree, gast.AsyncFunctionDef):
            from .errors import UnsupportedSyntaxError
            raise UnsupportedSyntaxError("an `async def`", Location(filename, tree.lineno, tree.col_offset + col_shift),
                                         "use a plain function")
        if not isinstance(tree, gast.FunctionDef):
            raise S2SADError(f"{filename}:{first}: expected a def of {fn.__name__}")
        tree.decorator_list = []
    return Parsed(fn, tree, namespace_of(fn), filename, col_shift)


def namespace_of(fn):
    """Globals, then closure cells (which shadow them), then builtins."""
    ns = dict(vars(builtins))
    ns.update(fn.__globals__)
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                ns[name] = cell.cell_contents
            except ValueError:  # an empty cell: the name is assigned later in the enclosing scope
                pass
    return ns


def _indent(text):
    first = next((line for line in text.splitlines() if line.strip()), "")
    return len(first) - len(first.lstrip())


def _parse_ufunc(ufunc):
    params = ["x"] if ufunc.nin == 1 else [f"x{i}" for i in range(ufunc.nin)]
    return _parse_call_of(ufunc, f"np.{ufunc.__name__}", params, {"np": np}, f"numpy.{ufunc.__name__}")


def _parse_call_of(fn, spelled, params, namespace, what):
    """A one-line function of `params` that returns `spelled(*params)`, for a callable without
    Python source of its own (a NumPy ufunc, a custom_vjp/custom_jvp function)."""
    args = ", ".join(params)
    filename = f"<s2sad: {what}>"
    source = f"def {fn.__name__}({args}):\n    return {spelled}({args})\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = gast.parse(source).body[0]
    return Parsed(None, tree, {**namespace, **vars(builtins)}, filename, 0)


def _find_lambda(fn, source, first, col_shift):
    """Pick the lambda node of `fn` among all lambdas in its source lines.

    Several lambdas may share a line (`f, g = lambda x: x, lambda x: 2 * x`),
    so candidates are matched by parameter names and, where the interpreter
    records them (3.11+), by the source positions of the code object.
    """
    module = _parse_fragment(source)
    gast.increment_lineno(module, first - 1)
    code = fn.__code__
    params = code.co_varnames[:code.co_argcount]
    candidates = [node for node in gast.walk(module) if isinstance(node, gast.Lambda)
                  and tuple(a.id for a in node.args.args) == params]
    if len(candidates) > 1 and hasattr(code, "co_positions"):
        spans = {(p[0], p[2] - col_shift if p[2] is not None else None) for p in code.co_positions()}
        candidates = [c for c in candidates if (c.body.lineno, c.body.col_offset) in spans] or candidates
    if len(candidates) > 1:  # Python 3.10, or positions that did not decide: compare compiled code
        candidates = sorted(candidates, key=lambda c: -_code_likeness(c, code))
    if not candidates:
        raise S2SADError(f"{code.co_filename}:{first}: could not find the source of this lambda")
    node = candidates[0]
    body = gast.Return(value=node.body)
    gast.copy_location(body, node.body)
    tree = gast.FunctionDef(name="lambda_", args=node.args, body=[body], decorator_list=[],
                            returns=None, type_comment=None, type_params=[])
    gast.copy_location(tree, node)
    return tree


def _code_likeness(node, code):
    """How closely the lambda `node`, compiled alone, resembles the code object `code`."""
    import ast
    try:
        text = ast.unparse(gast.gast_to_ast(gast.Expression(body=node)))
        other = compile(text, "<lambda>", "eval").co_consts[0]
    except (SyntaxError, ValueError, IndexError, TypeError):
        return 0
    if not hasattr(other, "co_code"):
        return 0
    score = 0
    score += 4 * (other.co_code == code.co_code)
    score += 2 * (other.co_consts == code.co_consts)
    score += other.co_names == code.co_names
    return score


def _parse_fragment(source):
    """Parse source lines that may be a fragment of a larger statement."""
    text = source
    for _ in range(len(source)):
        try:
            return gast.parse(text)
        except SyntaxError:
            # a lambda inside a call that spans more lines: trim from the end
            text = text[:-1]
            if not text:
                break
    # last resort: wrap in parentheses
    return gast.parse("(" + source.strip().rstrip(",") + ")")
