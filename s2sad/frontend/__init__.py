"""Frontend: a Python function object -> its gast tree and the names it sees.

In: a function (module-level, nested, closure, lambda) or a NumPy ufunc.
Out: a `Parsed` holding a `gast.FunctionDef` whose line numbers are the
user's file lines, and the namespace (globals, closure cells, builtins) in
which its free names resolve. Next stage: `fence`.
"""

import ast
import builtins
import inspect
import linecache
import re
import textwrap

import gast
import numpy as np

from ..errors import Location, S2SADError, UnsupportedSyntaxError
from ..rules.custom import _Custom


class Parsed:
    def __init__(self, fn, tree, namespace, filename, col_shift):
        self.fn = fn
        self.tree = tree
        self.namespace = namespace
        self.filename = filename
        self.col_shift = col_shift  # columns removed by dedent
        # code s2sad generated (a derivative differentiated again): its comments cite the user's lines
        self.generated = filename.startswith("<s2sad") or \
            (getattr(fn, "__globals__", None) or {}).get("__name__", "").startswith("s2sad_")

    @property
    def name(self):
        return self.tree.name

    def where(self, node):
        return Location(self.filename, getattr(node, "lineno", None) or self.tree.lineno,
                        (getattr(node, "col_offset", 0) or 0) + self.col_shift)

    def cites(self, node):
        """The comment generated code puts above the derivative of `node`: `line N: <its line>` of
        the user's file; in generated code, the user's line that the comment above it cites."""
        lineno = getattr(node, "lineno", None)
        lines = linecache.getlines(self.filename) if self.filename else []
        if lineno is None or not 0 < lineno <= len(lines):
            return None
        if not self.generated:
            text = lines[lineno - 1].strip()
            return f"line {lineno}: {text}" if text else None
        for k in range(lineno - 2, -1, -1):   # the nearest comment above it, within its function
            cited = _CITES.match(lines[k])
            if cited:
                return cited.group(1)
            if lines[k].lstrip().startswith("def "):
                return None
        return None


_CITES = re.compile(r"^\s*# (line \d+: .*?)\s*$")


def parse(fn):
    """Parse `fn` into a `Parsed`; raise S2SADError if its source is unavailable."""
    if isinstance(fn, np.ufunc):
        return _parse_ufunc(fn)
    if isinstance(fn, _Custom):   # grad(f) of a custom_vjp/custom_jvp f: a function that calls it
        return _parse_call_of(fn, fn.__name__, fn.params, {fn.__name__: fn}, f"{fn.__name__}, a custom rule")
    if library_function(fn):
        return _parse_library_function(fn)
    if not inspect.isfunction(fn):
        raise S2SADError(f"s2sad differentiates Python functions; got {fn!r} of type {type(fn).__name__}")
    try:
        lines, first, filename = _source_lines(fn)
    except (OSError, TypeError) as err:
        raise S2SADError(
            f"cannot read the source of {fn.__qualname__} ({err}); s2sad needs the function's "
            "source code: define it in a file, or in a notebook cell") from None
    source = "".join(lines)
    lambda_ = fn.__code__.co_name == "<lambda>"  # (functools.wraps gives a wrapper its function's __name__)
    if not lambda_:
        check_source_runs(fn, source, filename, first)
    dedented = textwrap.dedent(source)
    col_shift = _indent(source) - _indent(dedented)
    if lambda_:
        tree, lambda_source = _find_lambda(fn, dedented, first, col_shift)
        check_source_runs(fn, lambda_source, filename, tree.lineno)
    else:
        module = gast.parse(dedented)
        gast.increment_lineno(module, first - 1)
        tree = module.body[0]
        if isinstance(tree, gast.AsyncFunctionDef):
            raise UnsupportedSyntaxError("an `async def`", Location(filename, tree.lineno, tree.col_offset + col_shift),
                                         "use a plain function")
        if not isinstance(tree, gast.FunctionDef):
            raise S2SADError(f"{filename}:{first}: expected a def of {fn.__name__}")
        tree.decorator_list = []
        if (tree.args.vararg or tree.args.kwarg) and hasattr(fn, "__wrapped__"):
            tree = _wrapper_with_parameters(fn, tree, Location(filename, tree.lineno, tree.col_offset + col_shift))
    return Parsed(fn, tree, namespace_of(fn), filename, col_shift)


def _wrapper_with_parameters(fn, tree, where):
    """A decorator's wrapper, `def wrapper(*args, **kwargs): return 10 * func(*args, **kwargs)`,
    made by functools.wraps: the code that runs when the decorated function is called. s2sad
    differentiates it with the parameters of the function it wraps (`inspect.signature` reads
    them through `__wrapped__`, as the call does): `def wrapper(x): return 10 * func(x)`. Where
    the wrapper does more with `args`/`kwargs` than pass them on, it is refused, naming the
    decorator: never is the wrapped function differentiated in its place."""
    qualname = getattr(fn.__code__, "co_qualname", fn.__qualname__)
    decorator = qualname.split(".<locals>.")[0] if ".<locals>." in qualname else qualname

    def refuse(why):
        raise S2SADError(
            f"{where}: {fn.__qualname__} is decorated by {decorator}, whose wrapper {qualname} is the code that "
            f"runs; s2sad differentiates it, but {why}\n    {where.line.strip()}\n"
            "  hint: let the wrapper take the parameters by name (def wrapper(x, y)) and pass them on, "
            "or differentiate the undecorated function (its __wrapped__) if the decorator does not change "
            "the value")

    args = tree.args
    if args.args or args.posonlyargs or args.kwonlyargs:
        refuse("it takes named parameters besides *args/**kwargs")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        refuse("the signature of the function it wraps cannot be read")
    if any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
        refuse("the function it wraps has *args, **kwargs or keyword-only parameters")
    names = [p.name for p in params]
    star = args.vararg.id if args.vararg else None
    stars = args.kwarg.id if args.kwarg else None
    used = {n.id for n in gast.walk(tree) if isinstance(n, gast.Name)} - {star, stars}
    if used & set(names):
        refuse(f"its body uses the names of the wrapped function's parameters ({', '.join(sorted(used & set(names)))})")
    for node in gast.walk(tree):
        if isinstance(node, gast.Call):
            spread = []
            for a in node.args:
                if isinstance(a, gast.Starred) and isinstance(a.value, gast.Name) and a.value.id == star:
                    spread += [gast.copy_location(
                        gast.Name(id=n, ctx=gast.Load(), annotation=None, type_comment=None), a) for n in names]
                else:
                    spread.append(a)
            node.args = spread
            node.keywords = [k for k in node.keywords
                             if not (k.arg is None and isinstance(k.value, gast.Name) and k.value.id == stars)]
    left = [n for n in gast.walk(tree) if isinstance(n, gast.Name) and n.id in (star, stars)
            and n is not args.vararg and n is not args.kwarg]
    if left:
        refuse(f"it uses `{left[0].id}` otherwise than passing it on as *{star} or **{stars}")
    args.args = [gast.copy_location(gast.Name(id=n, ctx=gast.Param(), annotation=None, type_comment=None), tree)
                 for n in names]
    args.vararg = args.kwarg = None
    return tree


def check_source_runs(fn, source, filename, first):
    """Raise S2SADError unless `source` (the def of `fn` as its file reads now) compiles to the code
    Python runs for `fn`: a file edited after it was imported gives the new source while the old
    code runs, and s2sad would differentiate a function that is not the one called."""
    code = fn.__code__
    if "@pytest_ar" in code.co_names:
        return  # pytest rewrote the function's asserts: its code is not the source's (not decidable)
    compiled = _compile_in_place(fn, source)
    if compiled is None or _same_code(compiled, code):
        return  # the same code; or the source could not be compiled as it stood (not decidable: let it be)
    raise S2SADError(
        f"{filename}:{first}: the source of {fn.__qualname__} in this file is not the code Python runs "
        f"for it: the file was edited after {fn.__module__} was imported (or the function was made "
        "from other source), and s2sad differentiates the source it reads\n"
        f"  hint: reload the module (importlib.reload({fn.__module__.rpartition('.')[2]})) or restart, "
        "so that the function called is the one in the file")


def _compile_in_place(fn, source):
    """`source` compiled as it stands in its file: in the classes and functions its __qualname__
    names (name mangling, super()), its free variables cells of an enclosing function, at its own
    indentation (an indented string literal keeps its spaces), with the module's __future__ flags.
    None where that cannot be rebuilt."""
    import __future__
    code = fn.__code__
    qualname = getattr(code, "co_qualname", fn.__qualname__)  # a decorator's wraps() renames the function
    parts = qualname.split(".")[:-1]
    scopes = []  # ("def" | "class", name) from the outside in
    i = 0
    while i < len(parts):
        if i + 1 < len(parts) and parts[i + 1] == "<locals>":
            scopes.append(("def", parts[i]))
            i += 2
        else:
            scopes.append(("class", parts[i]))
            i += 1
    if any(not name.isidentifier() for _, name in scopes):
        return None
    # free variables: locals of the innermost enclosing function (super()'s __class__: of a class)
    free = [v for v in code.co_freevars if v != "__class__" or all(kind != "class" for kind, _ in scopes)]
    outer = None
    if free:
        outer = max((i for i, (kind, _) in enumerate(scopes) if kind == "def"), default=None)
        if outer is None:
            scopes.insert(0, ("def", "_s2sad_scope"))
            outer = 0
    indent = _indent(source)
    if len(scopes) > indent:
        return None  # no room for the enclosing blocks at one column each
    lines = [] if scopes or not indent else ["if 1:"]  # a def indented in an `if` at the top level
    for depth, (kind, name) in enumerate(scopes):
        lines.append(f"{' ' * depth}{kind} {name}{'()' if kind == 'def' else ''}:")
        if depth == outer:  # at the column of what follows in that block
            lines.append(f"{' ' * (depth + 1 if depth + 1 < len(scopes) else indent)}{' = '.join(free)} = None")
    text = "".join(line + "\n" for line in lines) + source
    # CPython compiles `m.f(x)` differently where `m` was bound by an import at the module's top level
    imported = _imported_names(code.co_filename, fn.__globals__)
    if imported:
        text = "".join(f"import _s2sad_ as {name}\n" for name in sorted(imported)) + text
    flags = code.co_flags & sum(getattr(__future__, f).compiler_flag for f in __future__.all_feature_names)
    try:
        module = compile(text, code.co_filename, "exec", flags=flags, dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    prefix = "_s2sad_scope.<locals>." if scopes and scopes[0][1] == "_s2sad_scope" else ""
    return _find_code(module, code.co_name, prefix + qualname)


_IMPORTED = {}


def _imported_names(filename, module_globals):
    """The names the file's module scope binds with `import` (in `if`/`try` blocks too)."""
    import ast
    text = "".join(linecache.getlines(filename, module_globals))
    hit = _IMPORTED.get(filename)
    if hit is not None and hit[0] == text:
        return hit[1]
    names = set()
    try:
        todo = list(ast.parse(text).body)
    except (SyntaxError, ValueError):
        todo = []
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name.partition(".")[0]) for a in node.names if a.name != "*")
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt) or hasattr(n, "body"))
    _IMPORTED[filename] = (text, names)
    return names


def _find_code(code, name, qualname):
    """The code object of the function `qualname` defined somewhere inside `code`."""
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            if const.co_name == name and getattr(const, "co_qualname", qualname) == qualname:
                return const
            found = _find_code(const, name, qualname)
            if found is not None:
                return found
    return None


def _same_code(a, b):
    """The same bytecode, names and constants (nested code objects alike); line numbers aside."""
    if (a.co_code != b.co_code or a.co_names != b.co_names or a.co_varnames != b.co_varnames
            or a.co_freevars != b.co_freevars or a.co_cellvars != b.co_cellvars
            or a.co_argcount != b.co_argcount or a.co_kwonlyargcount != b.co_kwonlyargcount
            or len(a.co_consts) != len(b.co_consts)):
        return False
    return all(_same_const(x, y) for x, y in zip(a.co_consts, b.co_consts))


def _same_const(x, y):
    if type(x) is not type(y):
        return False
    if hasattr(x, "co_code"):
        return _same_code(x, y)
    if isinstance(x, tuple):
        return len(x) == len(y) and all(_same_const(u, v) for u, v in zip(x, y))
    if isinstance(x, frozenset):  # its repr's order is its hashes'
        return x == y
    return repr(x) == repr(y)  # 0.0 and -0.0, NaN


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


_DEF_LINE = re.compile(r"^(\s*def\s)|(\s*async\s+def\s)|(.*(?<!\w)lambda(:|\s))|^(\s*@)")


def _source_lines(fn):
    """The lines of `fn`'s own code object, their first line number and the file. As
    inspect.getsourcelines(fn.__code__) reads them (inspect.getsourcelines(fn) would follow a
    decorator's __wrapped__ to the function it wraps, which is not the code that runs), without
    its search for the code's module through every module loaded (50 ms in a process that has
    imported Numba)."""
    code = fn.__code__
    filename = inspect.getsourcefile(fn) or code.co_filename
    linecache.checkcache(filename)   # a file edited since: its new lines (check_source_runs refuses them)
    lines = linecache.getlines(filename, fn.__globals__)
    if not lines:
        raise OSError("could not get source code")
    start = code.co_firstlineno - 1
    if start >= len(lines):
        raise OSError("lineno is out of bounds")
    while start > 0 and not _DEF_LINE.match(lines[start]):
        start -= 1
    return inspect.getblock(lines[start:]), start + 1, filename


def _indent(text):
    first = next((line for line in text.splitlines() if line.strip()), "")
    return len(first) - len(first.lstrip())


def _parse_ufunc(ufunc):
    params = ["x"] if ufunc.nin == 1 else [f"x{i}" for i in range(ufunc.nin)]
    if getattr(np, ufunc.__name__, None) is ufunc:
        return _parse_call_of(ufunc, f"np.{ufunc.__name__}", params, {"np": np}, f"numpy.{ufunc.__name__}")
    return _parse_call_of(ufunc, ufunc.__name__, params, {ufunc.__name__: ufunc}, ufunc.__name__)


def library_function(fn):
    """A NumPy or SciPy function other than a ufunc: `grad(np.std)` differentiates a call of it
    (its rule), never the library's own source."""
    return (callable(fn) and not isinstance(fn, np.ufunc)
            and (getattr(fn, "__module__", None) or "").split(".")[0] in ("numpy", "scipy"))


def library_signature(fn):
    """The parameters `grad(np.std)` takes: the required positional ones (the others keep their
    defaults)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise S2SADError(f"cannot read the parameters of {fn.__module__}.{fn.__name__}; differentiate "
                         f"a function that calls it: `lambda x: {fn.__name__}(x)`") from None
    return signature.replace(parameters=[
        p for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty])


def _parse_library_function(fn):
    params = list(library_signature(fn).parameters)
    spelled = next((f"{prefix}.{fn.__name__}" for prefix, module in (("np", np), ("np.linalg", np.linalg))
                    if getattr(module, fn.__name__, None) is fn), None)
    if spelled is not None:
        return _parse_call_of(fn, spelled, params, {"np": np}, f"{fn.__module__}.{fn.__name__}")
    return _parse_call_of(fn, fn.__name__, params, {fn.__name__: fn}, f"{fn.__module__}.{fn.__name__}")


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
    """Pick the lambda node of `fn` among all lambdas in its source lines: (a FunctionDef that
    returns its body, the lambda alone as source for check_source_runs).

    Several lambdas may share a line (`f, g = lambda x: x, lambda x: 2 * x`),
    so candidates are matched by parameter names and, where the interpreter
    records them (3.11+), by the source positions of the code object.
    """
    code = fn.__code__
    params = code.co_varnames[:code.co_argcount]
    candidates = _lambdas(_parse_fragment(source), first, params)
    if not candidates:
        # its first line starts inside a larger expression (`"f": lambda x: ...` in a dict
        # display): parse from each `lambda` of that line on
        head = source.split("\n", 1)[0]
        for m in re.finditer(r"\blambda\b", head):
            try:
                module = _parse_fragment(source[m.start():])
            except SyntaxError:
                continue
            for node in gast.walk(module):   # columns as in `source`
                if getattr(node, "lineno", None) == 1:
                    node.col_offset += m.start()
                    if getattr(node, "end_lineno", None) == 1:
                        node.end_col_offset += m.start()
            candidates += _lambdas(module, first, params)
    if len(candidates) > 1 and hasattr(code, "co_positions"):
        spans = {(p[0], p[2] - col_shift if p[2] is not None else None) for p in code.co_positions()}
        candidates = [c for c in candidates if (c.body.lineno, c.body.col_offset) in spans] or candidates
    if len(candidates) > 1:  # Python 3.10, or positions that did not decide: compare compiled code
        candidates = sorted(candidates, key=lambda c: -_code_likeness(c, code))
    if not candidates:
        raise S2SADError(f"{code.co_filename}:{first}: could not find the source of this lambda")
    node = candidates[0]
    text = ast.unparse(gast.gast_to_ast(gast.Expression(body=node)))
    body = gast.Return(value=node.body)
    gast.copy_location(body, node.body)
    tree = gast.FunctionDef(name="lambda_", args=node.args, body=[body], decorator_list=[],
                            returns=None, type_comment=None, type_params=[])
    gast.copy_location(tree, node)
    # the lambda alone, as an assignment check_source_runs can compile in the lambda's scopes
    depth = code.co_qualname.count(".") if hasattr(code, "co_qualname") else fn.__qualname__.count(".")
    return tree, f"{' ' * (depth + bool(code.co_freevars))}_s2sad_lambda = ({text})\n"


def _lambdas(module, first, params):
    """The lambdas of `module` (parsed from source lines starting at line `first`) with these
    parameter names."""
    gast.increment_lineno(module, first - 1)
    return [node for node in gast.walk(module) if isinstance(node, gast.Lambda)
            and tuple(a.id for a in node.args.args) == params]


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
