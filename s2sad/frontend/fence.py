"""Fence: refuse, with a clear error, what s2sad cannot differentiate.

In: a `Parsed` function. Out: nothing, or an `UnsupportedSyntaxError` naming
file:line:col, the construct, and what to write instead. Next: `normalize`.
"""

import gast

from .. import runtime
from ..errors import UnsupportedSyntaxError

# construct -> (what it is called, what to write instead)
REFUSED = {
    gast.Yield: ("a generator (`yield`)", "return an array or a tuple instead of yielding values"),
    gast.YieldFrom: ("a generator (`yield from`)", "return an array or a tuple instead"),
    gast.AsyncFunctionDef: ("an `async def`", "use a plain function"),
    gast.Await: ("`await`", "use a plain, synchronous function"),
    gast.AsyncFor: ("`async for`", "use a plain `for` loop"),
    gast.AsyncWith: ("`async with`", "use plain code"),
    gast.Global: ("a `global` declaration", "pass the value in as an argument and return the new value"),
    gast.Nonlocal: ("a `nonlocal` declaration", "pass the value in as an argument and return the new value"),
    gast.Delete: ("`del`", "drop the `del`; a name going out of scope needs no deletion"),
    gast.ClassDef: ("a class defined inside the function", "define the class at module level"),
    gast.Try: ("`try`/`except`", "move error handling outside the differentiated function"),
    gast.With: ("a `with` block", "move the context manager outside the differentiated function"),
    gast.Import: ("an `import` inside the function", "import at module level"),
    gast.ImportFrom: ("an `import` inside the function", "import at module level"),
    gast.ListComp: ("a list comprehension", "write a `for` loop that fills an array: "
                    "`y = np.zeros(n)` then `for i in range(n): y[i] = ...`"),
    gast.SetComp: ("a set comprehension", "write a `for` loop that fills an array"),
    gast.DictComp: ("a dict comprehension", "write a `for` loop"),
    gast.GeneratorExp: ("a generator expression", "write a `for` loop that accumulates the result"),
    gast.Lambda: ("a lambda inside the function", "define the helper as a function at module level"),
    gast.FunctionDef: ("a function defined inside the function", "define the helper at module level "
                       "and call it; s2sad differentiates calls to it"),
    gast.NamedExpr: ("an assignment expression (`:=`)", "assign on a line of its own"),
    gast.Starred: ("a starred expression (`*args`)", "pass the arguments one by one"),
    gast.Set: ("a set", "use a tuple or an array"),
    gast.Dict: ("a dict literal", "s2sad accepts dicts as arguments, and returns them (`return {'loss': l}`); "
                "build other dicts outside the differentiated function"),
    gast.JoinedStr: ("an f-string", "format strings outside the differentiated function"),
    gast.Raise: ("`raise`", "check inputs before calling the differentiated function"),
    gast.Match: ("a `match` statement", "use `if`/`elif`"),
}


def check(parsed):
    """Raise UnsupportedSyntaxError for the first refused construct in `parsed`."""
    fn = parsed.tree
    args = fn.args
    if args.vararg or args.kwarg:
        raise UnsupportedSyntaxError("`*args`/`**kwargs` parameters", parsed.where(fn),
                                     "give every parameter a name")
    returned = _returned_containers(fn)
    for node in _walk_body(fn):
        kind = type(node)
        if kind is gast.Dict and id(node) in returned:
            continue  # a pytree output: `return {"loss": l, "aux": (a, b)}`
        if kind in REFUSED:
            construct, hint = REFUSED[kind]
            raise UnsupportedSyntaxError(construct, parsed.where(node), hint)
        if kind is gast.Constant and isinstance(node.value, complex):
            raise UnsupportedSyntaxError("a complex number", parsed.where(node),
                                         "s2sad differentiates real functions: carry the real and imaginary "
                                         "parts as two float values")
        if isinstance(node, (gast.For, gast.While)) and node.orelse:
            raise UnsupportedSyntaxError(f"an `else` clause on a `{kind.__name__.lower()}` loop",
                                         parsed.where(node), "use a flag variable set before `break`")
        if isinstance(node, gast.Assign) or isinstance(node, gast.AugAssign):
            targets = node.targets if isinstance(node, gast.Assign) else [node.target]
            for target in targets:
                _check_target(parsed, target)
        if isinstance(node, gast.Expr) and not _is_docstring(node) and not _is_ignorable(node) \
                and not _is_tape_push(node, parsed.namespace):
            raise UnsupportedSyntaxError(
                "a call whose result is thrown away", parsed.where(node),
                "s2sad differentiates values, not side effects: assign the result to a name")


def _returned_containers(fn):
    """Container literals that form a returned value (dicts are allowed only there)."""
    ids = set()

    def mark(node):
        if isinstance(node, (gast.Dict, gast.Tuple, gast.List)):
            ids.add(id(node))
            for child in (node.values if isinstance(node, gast.Dict) else node.elts):
                mark(child)
    for node in gast.walk(fn):
        if isinstance(node, gast.Return) and node.value is not None:
            mark(node.value)
    return ids


def _walk_body(fn):
    for stmt in fn.body:
        yield from gast.walk(stmt)


def _check_target(parsed, target):
    if isinstance(target, gast.Attribute):
        raise UnsupportedSyntaxError("an assignment to an attribute", parsed.where(target),
                                     "assign to a local name and return it")
    if isinstance(target, (gast.Tuple, gast.List)):
        for elt in target.elts:
            if not isinstance(elt, gast.Name):
                raise UnsupportedSyntaxError("unpacking into a subscript or nested tuple",
                                             parsed.where(elt), "unpack into plain names first")
    if isinstance(target, gast.Subscript) and not isinstance(target.value, gast.Name):
        raise UnsupportedSyntaxError("a write through a nested subscript (`a[i][j] = ...`)",
                                     parsed.where(target), "write `a[i, j] = ...`")


def _is_docstring(node):
    return isinstance(node.value, gast.Constant) and isinstance(node.value.value, str)


def _is_tape_push(node, namespace):
    """Generated adjoint code pushes onto its tape; transforming it again must keep that."""
    call = node.value
    return isinstance(call, gast.Call) and isinstance(call.func, gast.Name) \
        and namespace.get(call.func.id) in (runtime.push, runtime.push_shape, runtime.tape_put)


def _is_ignorable(node):
    """`print(...)` is allowed and dropped from derivative code."""
    call = node.value
    return isinstance(call, gast.Call) and isinstance(call.func, gast.Name) and call.func.id == "print"
