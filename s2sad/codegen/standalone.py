"""Standalone derivative modules: generated code that runs without s2sad.

`emit_module` runs the compiler on a function for an abstract signature and
returns the source of one Python module holding the derivative function(s),
the source of every runtime helper they call (copied from `s2sad.runtime`,
and with `numba=True` the Numba implementations from
`s2sad.numba_backend`), a convenience entry point (`grad_f`, `jvp_f` or
`d2_f`) and a header comment saying what was differentiated and how. The
module imports NumPy only (math/scipy only where the generated code calls
them, numba with `numba=True`).
"""

import ast
import builtins
import importlib
import inspect
import io
import itertools
import keyword
import os
import re
import tokenize

import numpy as np

from . import compiler
from ..ir import emit
from .. import optimize, runtime
from ..ir import types as T
from ..errors import S2SADError

_counter = itertools.count(1)


class UsageError(S2SADError):
    """A malformed command-line option (exit status 2)."""


# ---- argument types --------------------------------------------------------------
_SCALARS = {"float": "f", "float64": "f", "float32": "f", "double": "f", "f8": "f",
            "int": "i", "int64": "i", "int32": "i", "intp": "i", "i8": "i",
            "bool": "b", "bool_": "b", "boolean": "b"}


def parse_type(text):
    """`float` -> FLOAT, `int` -> INT, `float64[:, :]` -> a 2-d float array, ..."""
    text = text.strip()
    match = re.fullmatch(r"(?:np\.|numpy\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(\[([^\]]*)\])?", text)
    if not match or match.group(1) not in _SCALARS:
        raise UsageError(f"unknown type {text!r}: use float, int, bool, or an array type such as "
                         "float64[:] (1-d) or float64[:, :] (2-d)")
    kind = _SCALARS[match.group(1)]
    if match.group(2) is None:
        return T.array(kind, 0)
    dims = [d.strip() for d in match.group(3).split(",")]
    if not all(d == ":" for d in dims):
        raise UsageError(f"bad array type {text!r}: write one ':' per dimension, e.g. float64[:, :]")
    return T.array(kind, len(dims))


def parse_signature(text, params):
    """`"x: float, A: float64[:, :]"` (or `"float, float64[:, :]"`) -> one Ty per parameter."""
    items = _split_top(text)
    if len(items) != len(params):
        raise UsageError(f"--signature gives {len(items)} type(s) but the function takes {len(params)} "
                         f"argument(s) ({', '.join(params)})")
    types = [None] * len(params)
    for k, item in enumerate(items):
        if ":" in item.split("[")[0]:
            name, ty = item.split(":", 1)
            name = name.strip()
            if name not in params:
                raise UsageError(f"--signature names {name!r}, which is not a parameter of the function "
                                 f"({', '.join(params)})")
            types[params.index(name)] = parse_type(ty)
        else:
            types[k] = parse_type(item)
    if any(t is None for t in types):
        missing = [p for p, t in zip(params, types) if t is None]
        raise UsageError(f"--signature gives no type for {', '.join(missing)}")
    return types


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def default_types(fn):
    """Types from the function's annotations where they are plain types; float otherwise."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        ann = p.annotation
        if ann is float or ann is inspect.Parameter.empty:
            out.append(T.FLOAT)
        elif ann is int:
            out.append(T.INT)
        elif ann is bool:
            out.append(T.BOOL)
        elif isinstance(ann, str):
            try:
                out.append(parse_type(ann))
            except UsageError:
                out.append(T.FLOAT)
        else:
            out.append(T.FLOAT)
    return out


def type_text(ty):
    if ty.ndim == 0:
        return {"f": "float", "i": "int", "b": "bool"}.get(ty.kind, repr(ty))
    base = {"f": "float64", "i": "int64", "b": "bool"}.get(ty.kind, "float64")
    return f"{base}[{', '.join(':' * ty.ndim)}]"


# ---- generating the derivative -----------------------------------------------------
class Generated:
    """The compiler's output for one request: functions, names, and what it means."""

    def __init__(self, fn, params, types, argnums, mode, order):
        self.fn, self.params, self.types = fn, params, list(types)
        self.argnums, self.mode, self.order = tuple(argnums), mode, order
        self.fname = fn.__name__
        for i in self.argnums:
            if not (types[i].kind == "f"):
                raise UsageError(f"argument {i} ({params[i]!r}) has type {type_text(types[i])}: s2sad "
                                 "differentiates with respect to float arguments only (see --signature)")
        if order < 1:
            raise UsageError("--order must be at least 1")
        if order > 1 and (len(self.argnums) != 1 or types[self.argnums[0]].ndim != 0):
            raise UsageError("--order > 1 is supported for one scalar float argument only "
                             "(e.g. --argnums 0 with x: float)")
        self.module = compiler.Module()
        treedefs = tuple(None for _ in types)
        if mode == "reverse":
            self.name = self.module.vjp_name(fn, list(types), self.argnums, treedefs=treedefs)
        else:
            self.name = self.module.jvp_name(fn, list(types), self.argnums, treedefs=treedefs)
        self._tidy()
        self.user_names = _user_names(self.module)
        self.renamed = {k: v for k, v in self.user_names.items() if k != v}  # every stage's
        # higher orders: differentiate the generated derivative again, in forward mode
        self.stage_names = [self.name]
        for stage in range(2, order + 1):
            self._raise_order(stage)

    def _tidy(self):
        for tree in self.module.functions:
            optimize.run(tree)

    def _raise_order(self, stage):
        """Wrap the current derivative into `f_d(x)` (like Specialization.gradient_wrapper) and jvp it."""
        prev, name = self.module, self.name
        params = ", ".join(self.params)
        k = self.argnums[0]
        if stage == 2 and self.mode == "reverse":
            pick = f"{name}({params}, 1.0)[1][{k}]"
        else:
            pick = f"{name}({params}, 1.0)[1]"
        wrapper_name = f"{self.fname}_d{stage - 1}"
        source = prev.source("") + f"\n\ndef {wrapper_name}({params}):\n    return {pick}\n"
        filename = f"<s2sad standalone {wrapper_name} {next(_counter)}>"
        namespace = prev.load(source, filename)
        wrapper = namespace[wrapper_name]
        self.module = compiler.Module()
        self.name = self.module.jvp_name(wrapper, list(self.types), self.argnums,
                                         treedefs=tuple(None for _ in self.types))
        self._tidy()
        self.user_names = _user_names(self.module, self.user_names)
        self.renamed.update((k, v) for k, v in self.user_names.items() if k != v)
        self.stage_names.append(self.name)

    # ---- the convenience entry point ----
    def _free(self, name):
        """`name`, or `name2`, ... where the user's file has a function of that name too."""
        taken = {tree.name for tree in self.module.functions} | set(self.user_names.values())
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        return name

    def entry(self):
        """(name, source) of the convenience function."""
        params = ", ".join(self.params)
        f = self.fname
        if self.order > 1:
            name = self._free(f"d{self.order}_{f}")
            doc = (f"The order-{self.order} derivative of {f} with respect to "
                   f"{self.params[self.argnums[0]]}.")
            body = f"return {self.name}({params}, 1.0)[1]"
            return name, _fn(name, params, doc, body)
        if self.mode == "reverse":
            name = self._free(f"grad_{f}")
            picks = [f"_r[{i}]" for i in self.argnums]
            wrt = ", ".join(self.params[i] for i in self.argnums)
            if len(picks) == 1:
                doc = f"The gradient of {f} with respect to {wrt}."
                body = f"_r = {self.name}({params}, 1.0)[1]\n    return {picks[0]}"
            else:
                doc = f"The gradients of {f} with respect to ({wrt}), as a tuple."
                body = f"_r = {self.name}({params}, 1.0)[1]\n    return ({', '.join(picks)},)"
            return name, _fn(name, params, doc, body)
        name = self._free(f"jvp_{f}")
        dots = [f"{self.params[i]}_dot" for i in self.argnums]
        allp = ", ".join(self.params + dots)
        doc = (f"({f}(...), its derivative along the tangent(s) {', '.join(dots)}) "
               "(forward mode).")
        return name, _fn(name, allp, doc, f"return {self.name}({allp})")

    def describe(self):
        what = {"reverse": "reverse mode (vjp)", "forward": "forward mode (jvp)"}[self.mode]
        if self.order > 1:
            what = f"order {self.order}: {what}, then forward mode over it {self.order - 1} time(s)"
        return what


def _fn(name, params, doc, body):
    return f'def {name}({params}):\n    """{doc}"""\n    {body}\n'


def _user_names(module, previous=None):
    """{name of a user function's copy in `module`: the name the user gave it}. The compiler names
    a copy apart from s2sad's runtime helpers (a user's `logistic` is `logistic2` there); an emitted
    module gives the helper another name instead. `previous`: the same for the module that the
    functions of this one were loaded from (--order > 1 differentiates generated code)."""
    out = {}
    for func in module.sources.values():
        name = module.primals.get(id(func.fn))
        if name is not None:
            out[name] = (previous or {}).get(func.name, func.name)
    return out


# ---- copying runtime helpers ------------------------------------------------------------
def _top_level_defs(module):
    """{name: (source, ast node)} of the module's top-level functions, classes and `NAME = ...`
    assignments (constants the functions read), in order."""
    source = inspect.getsource(module)
    tree = ast.parse(source)
    lines = source.splitlines(True)
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = ("".join(lines[first - 1:node.end_lineno]), node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            names = [target] if isinstance(target, ast.Name) else getattr(target, "elts", [])
            for name in names:   # `A, B = ...` is one definition of both names
                if isinstance(name, ast.Name):
                    out[name.id] = ("".join(lines[node.lineno - 1:node.end_lineno]), node)
    return out


def _with_imported_defs(module):
    """`_top_level_defs(module)`, preceded by the defs it imports from s2sad's other modules
    (`from .numba_reductions import split_shape`) and the ones those refer to there."""
    out = {}
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            source = importlib.import_module(f".{node.module}", module.__package__)
            defs = _top_level_defs(source)
            for name in _closure([a.name for a in node.names], defs):
                out.setdefault(name, defs[name])
    out.update(_top_level_defs(module))
    return out


def _names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
           {n.value.id + "." + n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}


def _closure(roots, defs, extra_names=lambda name: set()):
    """`roots` and every top-level def they refer to, transitively, in definition order."""
    need, todo = set(), [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in need:
            continue
        need.add(name)
        refs = _names_in(defs[name][1]) | extra_names(name)
        todo += [r for r in refs if r in defs and r not in need]
    return [name for name in defs if name in need]


def _used_names(source):
    return _names_in(ast.parse(source))


_NUMBA_IMPORTS = [
    ("numba", "import numba"),
    ("types", "from numba import types"),
    ("njit", "from numba import njit"),
    ("objmode", "from numba import objmode"),
    ("jitclass", "from numba.experimental import jitclass"),
    ("overload", "from numba.extending import overload"),
    ("intrinsic", "from numba.extending import intrinsic"),
    ("ir", "from llvmlite import ir"),
    ("as_dtype", "from numba.np.numpy_support import as_dtype"),
    ("to_fixed_tuple", "from numba.np.unsafe.ndarray import to_fixed_tuple"),
]


# Defs that replace numba_backend's in an emitted module. Numba's object-mode block in
# _grow_floats (which takes a large tape buffer from a pool kept between calls) looks up its
# globals by importing the function's module, and a module run with runpy.run_path is not
# importable once it has run (NameError: _pooled_floats): emitted code grows its tapes afresh.
_STANDALONE_DEFS = {name: (text, ast.parse(text).body[0]) for name, text in [
    ("_grow_floats", "_grow_floats = _grow\n"),
]}


def _runtime_part(used, use_numba):
    """Source of the runtime helpers named in `used` (and their numba overloads), and warnings."""
    rt = _top_level_defs(runtime)
    helpers = [name for name in runtime.HELPERS if name in used]
    chunks, warnings = [], []
    if not use_numba:
        for name in _closure(helpers, rt):
            chunks.append(rt[name][0])
        return chunks, warnings
    from ..backends import numba as numba_backend  # Numba on first use (s2sad.backends)
    nb = _with_imported_defs(numba_backend)
    nb.update(_STANDALONE_DEFS)
    overloads = {}   # runtime helper name -> overload function name in numba_backend
    for name, (_, node) in nb.items():
        for dec in getattr(node, "decorator_list", []):
            if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "overload" and dec.args:
                target = dec.args[0]
                if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "runtime":
                    overloads[target.attr] = name

    # the Python versions are the targets the overloads attach to; the jitclass Tape replaces Tape
    py_need = [n for n in _closure([h for h in helpers if h != "Tape"], rt)]
    # numba implementations of the helpers used, and of helpers they call (runtime.X inside impls)
    def refs_runtime(name):
        node = nb[name][1]
        return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                and getattr(n.value, "id", None) == "runtime"}
    want = set(helpers)
    todo = list(helpers)
    while todo:
        h = todo.pop()
        if h in overloads:
            for r in refs_runtime(overloads[h]):
                if r not in want:
                    want.add(r)
                    todo.append(r)
                    py_need = _closure(set(py_need) | {r}, rt)
    nb_roots = [overloads[h] for h in want if h in overloads]
    if "Tape" in helpers:
        nb_roots.append("Tape")
    nb_need = _closure(nb_roots, nb)
    missing = sorted(h for h in want if h not in overloads and h != "Tape"
                     and inspect.isfunction(runtime.HELPERS.get(h)))
    if missing:
        warnings.append(f"s2sad has no Numba implementation of {', '.join(missing)}: numba.njit may fail "
                        "to compile the emitted code")
    for name in py_need:
        if name in nb_need:
            continue  # the numba version (e.g. the njit _grow) serves both
        chunks.append(rt[name][0])
    for name in nb_need:
        chunk = re.sub(r"\bruntime\.", "", nb[name][0])
        if chunk not in chunks:     # `A, B = ...` defines two names
            chunks.append(chunk)
    return chunks + _along_axis_part(used | _used_names("\n".join(chunks)), chunks), warnings


def _along_axis_part(used, have):
    """np.max(x, axis) and the like, which Numba lacks: the overloads s2sad registers for them,
    and the call that registers them for the ones `used`."""
    from ..backends import numba_reductions  # Numba on first use (s2sad.backends)
    names = [name for name in numba_reductions.ALONG if f"np.{name}" in used]
    if not names:
        return []
    defs = _top_level_defs(numba_reductions)
    chunks = []
    for name in _closure(["overload_along_axis"], defs):
        if defs[name][0] not in have + chunks:
            chunks.append(defs[name][0])
    quoted = ", ".join(f'"{name}"' for name in names)
    return chunks + [f"overload_along_axis([{quoted}])\n"]


# ---- user globals ---------------------------------------------------------------------------
def _global_source(name, value):
    """A line defining the user global `name` in the emitted module, or None if it cannot be copied."""
    if isinstance(value, (bool, int, float, complex, str, type(None))):
        return f"{name} = {value!r}"
    if isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str, type(None))) for v in value):
        return f"{name} = {value!r}"
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return f"{name} = np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    if isinstance(value, np.generic):
        return f"{name} = np.{value.dtype.name}({value.item()!r})"
    return None


def _globals_part(module, defined):
    lines = []
    for name, value in sorted(module.namespace.items()):
        if name in defined or name in ("np", "math", "scipy"):
            continue
        if hasattr(builtins, name) and getattr(builtins, name) is value:
            continue
        line = _global_source(name, value)
        if line is None:
            raise S2SADError(f"cannot emit a standalone module: the generated code refers to the global "
                             f"{name!r} ({type(value).__name__}), which s2sad cannot copy into the file; "
                             "make it a number or an array, or a function in the same file")
        lines.append(line)
    return lines


# ---- does Numba compile it? -------------------------------------------------------------------
def numba_reason(source, gen):
    """Why Numba cannot compile the emitted module's entry for the signature's argument types,
    or None if it can (an emitted module has no Python fallback: better said now than when it
    is called)."""
    import importlib.util
    import tempfile

    import numba

    def numba_type(t):
        if t.kind == "tuple" or not t.numeric:
            return None
        scalar = {"f": numba.float64, "i": numba.int64, "b": numba.boolean}[t.kind]
        return numba.types.Array(scalar, t.ndim, "C") if t.ndim else scalar

    sig = [numba_type(t) for t in gen.types]
    if gen.mode == "forward" and gen.order == 1:
        sig += [sig[i] for i in gen.argnums]    # jvp_f(x, ..., x_dot, ...)
    if None in sig:
        return None     # (a tuple argument: not checked)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s2sad_emitted_check.py")
        with open(path, "w") as fh:
            fh.write(source)
        spec = importlib.util.spec_from_file_location("s2sad_emitted_check", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            getattr(module, gen.entry()[0]).compile(tuple(sig))
        except Exception as exc:  # noqa: BLE001 - compiling runs nothing: Numba's errors, typing or internal
            from ..backends.numba import failure_reason  # Numba on first use (s2sad.backends)
            return failure_reason(exc, lines=6)
    return None


# ---- the module ------------------------------------------------------------------------------
def emit_module(gen, *, numba=False, header_lines=(), version="", standalone=True):
    """The source of the emitted module for `gen` (a `Generated`); returns (source, warnings)."""
    trees = [gen.module.call_primals_by_name(tree) for tree in gen.module.functions]
    funcs = [emit.to_source(tree).rstrip() + "\n" for tree in trees]
    entry_name, entry = gen.entry()
    if numba:
        funcs = ["@numba.njit\n" + f for f in funcs]
        entry = "@numba.njit\n" + entry
    generated = "\n\n".join(funcs + [entry])
    defined = {tree.name for tree in trees} | {entry_name}
    used = _used_names(generated)
    warnings = []
    helper_chunks = []
    if standalone:
        helper_chunks, warnings = _runtime_part(used, numba)
    globals_lines = _globals_part(gen.module, defined)
    # the user's names and the helpers' never meet: the user's functions and globals keep the
    # names they have in the user's file, and a helper of the same name gets another
    user_renames, helper_renames = _separate_names(gen, defined, globals_lines, helper_chunks, used)
    helper_used = _used_names("\n".join(helper_chunks))   # as the helpers spell them
    reserved = set(compiler.module_names())
    generated = _rename(generated, {**{k: v for k, v in helper_renames.items() if k in reserved},
                                    **user_renames})
    globals_lines = [_rename(line, user_renames) for line in globals_lines]
    helper_chunks = [_rename(chunk, helper_renames) for chunk in helper_chunks]
    body = "\n\n".join(c.rstrip() + "\n" for c in helper_chunks)
    # np, math, scipy and numba serve both parts; sys, threading and Numba's names the helpers only
    shared = _used_names(generated + "\n" + "\n".join(globals_lines)) | helper_used

    def needs(name, among):
        return name in among or any(n.startswith(name + ".") for n in among)

    def alias(name):
        return f"{name} as {helper_renames[name]}" if name in helper_renames else name
    # isort order (ruff's I001): stdlib, then third party, `import x` before `from x import y`
    stdlib = [f"import {alias(m)}" for m in ("math", "sys", "threading")
              if needs(m, shared if m == "math" else helper_used)]
    plain = ["import numpy as np"]
    if needs("scipy", shared):
        plain.append("import scipy.special")
    froms = {}
    if numba:
        for key, line in _NUMBA_IMPORTS:
            if needs(key, shared if key == "numba" else helper_used):
                if line.startswith("import "):
                    plain.append(line)
                else:
                    mod = line.split()[1]
                    froms.setdefault(mod, []).append(key)
    plain.sort(key=lambda line: line.split()[1])
    plain += [f"from {mod} import {', '.join(alias(k) for k in sorted(keys))}"
              for mod, keys in sorted(froms.items())]
    imports = stdlib + ([""] if stdlib else []) + plain
    types = ", ".join(f"{p}: {type_text(t)}" for p, t in zip(gen.params, gen.types))
    wrt = ", ".join(gen.params[i] for i in gen.argnums)
    generated_names = ", ".join(user_renames.get(t.name, t.name) for t in trees)
    head = [f"# Generated by s2sad {version}: derivative of {gen.fname}".rstrip(),
            *[f"# {line}" for line in header_lines],
            f"# mode: {gen.describe()}",
            f"# with respect to: {wrt} (argnums {', '.join(map(str, gen.argnums))})",
            f"# argument types: {types}",
            f"# backend: {'numba (every function is numba.njit)' if numba else 'plain Python + NumPy'}",
            f"# entry point: {entry_name}; generated: {generated_names}",
            ]
    if gen.order > 1:
        head.append(f"# order > 1 is supported for one scalar argument: {entry_name} returns the "
                    f"order-{gen.order} derivative")
    if standalone:
        head.append("# Runs without s2sad installed: the runtime helpers it calls are copied below.")
    if helper_renames:
        head.append("# Runtime helpers named like the user's functions or globals are renamed:")
        head += [f"#   {a} -> {b}" for a, b in sorted(helper_renames.items())]
    if any(line.startswith("command:") for line in header_lines):
        head.append("# Do not edit: regenerate with the command above.")
    parts = ["\n".join(head) + "\n", "\n".join(imports) + "\n"]
    if globals_lines:
        parts.append("\n".join(globals_lines) + "\n")
    parts.append(generated)
    if helper_chunks:
        parts.append("# ---- runtime helpers, copied from s2sad.runtime"
                     + (" and s2sad.numba_backend" if numba else "") + " ----\n\n\n" + body)
    source = "\n\n".join(p.rstrip() + "\n" for p in parts)
    return source, warnings


# names the helpers' imports bind (np, math and numba are shared with the generated code, and the
# compiler keeps the user's names off them)
_HELPER_IMPORTS = {"sys", "threading"} | {key for key, line in _NUMBA_IMPORTS if line.startswith("from ")}


def _separate_names(gen, defined, globals_lines, helper_chunks, used):
    """({generated name: the user's name}, {helper name: its new name}) for an emitted module.

    The compiler names user functions and globals apart from s2sad's runtime helpers (`logistic2`
    for a user's `logistic`, `unbroadcast_2` for a global); in a module of its own the user's names
    come back and the helpers give way. A name the helpers define and the user's code defines too
    (a user function `split_shape`, a global `types`) also gives way on the helpers' side."""
    reserved = compiler.module_names()
    global_names = {line.split(" = ", 1)[0] for line in globals_lines}
    user_top = set(defined) | global_names
    renames = {}
    for emitted, original in sorted(gen.user_names.items()):
        if emitted != original and emitted in user_top and original not in user_top \
                and original not in renames.values():
            renames[emitted] = original
    funcs = list(gen.module.sources.values())
    for name in sorted(global_names):
        match = re.fullmatch(r"(.+)_\d+", name)
        if match is None:
            continue
        base, value = match.group(1), gen.module.namespace.get(name)
        if base in reserved and base not in user_top and base not in renames.values() and any(
                base in func.parsed.namespace and func.parsed.namespace[base] is value for func in funcs):
            renames[name] = base
    # and a derivative keeps the name it has from the user's function (`logistic2_jvp`: logistic_jvp)
    for name in sorted(defined):
        for emitted, original in gen.renamed.items():
            match = re.fullmatch(re.escape(emitted) + r"((?:_jvp|_vjp)+)", name)
            if match and name not in renames and original + match.group(1) not in user_top | set(renames.values()):
                renames[name] = original + match.group(1)
    user_final = {renames.get(n, n) for n in user_top}
    helper_defs = (_HELPER_IMPORTS & _used_names("\n".join(helper_chunks))) | (used & set(reserved))
    for chunk in helper_chunks:
        for node in ast.parse(chunk).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                helper_defs.add(node.name)
            elif isinstance(node, ast.Assign):
                helper_defs |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    taken = user_final | helper_defs | _used_names("\n".join(helper_chunks)) | set(gen.module.namespace) \
        | {n for tree in gen.module.functions for n in _used_names(emit.to_source(tree))}
    helper_renames = {}
    for name in sorted(user_final & helper_defs):
        base = ("_s2sad_" if name.startswith("_") else "s2sad_") + name.lstrip("_")
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base}{n}"
        taken.add(new)
        helper_renames[name] = new
    return renames, helper_renames


def _rename(source, mapping):
    """`source` with every name in `mapping` replaced (all at once, so a swap works); attributes
    (`tape.values`), strings and comments are left alone."""
    if not mapping:
        return source
    lines = source.splitlines(True)
    edits, prev = [], None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.string in mapping and not (
                prev is not None and prev.type == tokenize.OP and prev.string == "."):
            edits.append((tok.start, tok.end, mapping[tok.string]))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            prev = tok
    for (row, col), (row_end, col_end), new in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[col_end:]
    return "".join(lines)


def is_identifier(name):
    return name.isidentifier() and not keyword.iskeyword(name)
