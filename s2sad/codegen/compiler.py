"""The pipeline, top to bottom, for one function and one argument signature.

    parse -> fence -> normalize -> analyze -> reverse -> emit -> load

A `Module` collects every generated function a derivative needs (the
normalized primal of each user helper it calls, and their `_vjp`s) and
turns them into one Python module: readable source, then live functions.
"""

import copy
import linecache
import operator
import sys

import gast

from .. import analysis as analysis_mod
from .. import cache, frontend, normalize
from ..errors import S2SADError
from ..frontend import fence
from ..ir import emit, meta
from ..ir import types as T
from ..normalize import pytree
from ..rules import custom, helpers  # noqa: F401  (registers the rules of the runtime's helpers)
from ..transform import forward, reverse


class Function:
    """A user function parsed, fenced and normalized once."""

    _cache = {}

    def __init__(self, fn):
        self.fn = fn
        self.parsed = frontend.parse(fn)
        fence.check(self.parsed)
        self.ir = normalize.normalize(self.parsed)
        self.name = self.parsed.name if fn is None or fn.__name__ != "<lambda>" else "lambda_"
        self._watch_variables(fn)

    def _watch_variables(self, fn):
        """Note the globals and closure variables fn's code reads, with the values the parse saw."""
        code, namespace = getattr(fn, "__code__", None), self.parsed.namespace
        self.scope, names, self.cells_read = {}, (), ()
        if code is not None:  # else a NumPy ufunc or a custom_vjp/custom_jvp, parsed from a one-line source
            self.scope = fn.__globals__
            # co_names also holds attribute names (`sum` of `np.sum`): only the globals count
            names = tuple(name for name in code.co_names if name in self.scope and name in namespace)
            self.cells_read = tuple((cell, namespace[name]) for name, cell in zip(code.co_freevars, fn.__closure__ or ())
                                    if name in namespace)
        # one C-level read and tuple comparison per check (a single name twice: itemgetter gives a tuple)
        self.read_globals = operator.itemgetter(*(names * 2 if len(names) == 1 else names)) if names else _nothing
        self.globals_seen = self.read_globals(namespace)
        self.attributes_read = _module_attributes(self.parsed.tree, code, namespace)
        self.spec = getattr(fn, "s2sad_spec", None)  # generated for a derivative: stale when that one is

    def stale(self):
        """Has a global or closure variable this function reads been rebound since it was parsed?
        Generated code holds their values (a float folded into an expression, an array in the
        module's namespace, a helper's derivative), so it would go on computing with the old ones.
        Checked at every call of a derivative, so kept cheap: a tuple comparison, which compares
        items by identity first (an equal number rebound compares equal: nothing to regenerate)."""
        try:
            if self.read_globals(self.scope) != self.globals_seen:
                return True
        except Exception:  # noqa: BLE001 - a global deleted (KeyError), an array compared (ValueError)
            return True
        for cell, value in self.cells_read:
            try:
                now = cell.cell_contents
            except ValueError:  # emptied (`del` in the enclosing function)
                return True
            if now is not value and not _same_value(now, value):
                return True
        for where, read, seen in self.attributes_read:  # `helpers.scale`: rebound, or the module reloaded
            try:
                if read(where) != seen:
                    return True
            except Exception:  # noqa: BLE001 - an attribute deleted, an array compared
                return True
        return self.spec is not None and self.spec.stale()

    def with_flat_params(self, treedefs):
        """This function with each container parameter replaced by its leaves."""
        if all(t is None for t in treedefs):
            self.leaves_of = [[a.id] for a in self.ir.args.args]
            return self
        flat = copy.copy(self)
        flat.ir, flat.leaves_of = pytree.flatten_params(self.ir, treedefs, self.parsed.where)
        return flat

    @classmethod
    def of(cls, fn):
        key = id(fn)
        hit = cls._cache.get(key)
        if hit is None or hit.fn is not fn or hit.stale():
            hit = cls._cache[key] = cls(fn)
        return hit

    def analyze(self, arg_types, wrt, module, aux=False):
        return analysis_mod.Analysis(self.ir, arg_types, wrt, module, aux)


def _nothing(scope):
    return ()


# modules whose attributes nobody rebinds: not watched (np.sum is read everywhere)
_LIBRARIES = {"numpy", "math", "cmath", "scipy", "numba", "s2sad", "builtins", "operator", "functools"}


def _module_attributes(tree, code, namespace):
    """The attributes of the user's modules a function reads (`helpers.scale`, `pkg.sub.fn`), as
    (the module's dict or the module, getter, values seen): generated code holds them (a number folded in, a helper's
    derivative), and rebinding one or reloading the module does not rebind a global."""
    local = set(code.co_varnames) | set(code.co_cellvars) if code is not None else set()
    chains = {}
    for node in gast.walk(tree):
        if not isinstance(node, gast.Attribute):
            continue
        parts, base = [node.attr], node.value
        while isinstance(base, gast.Attribute):
            parts.append(base.attr)
            base = base.value
        if not isinstance(base, gast.Name) or base.id in local:
            continue
        module = namespace.get(base.id)
        if not isinstance(module, type(sys)) or module.__name__.partition(".")[0] in _LIBRARIES:
            continue
        parts.reverse()  # the longest chain that names an object (`helpers.V.shape`: helpers.V)
        obj, kept = module, []
        for part in parts:
            if not isinstance(obj, type(sys)) or not hasattr(obj, part):
                break
            obj = getattr(obj, part)
            kept.append(part)
        if kept:
            chains.setdefault(id(module), (module, set()))[1].add(".".join(kept))
    watched = []
    for module, names in chains.values():
        # plain names: C-level lookups in the module's dict (which a reload refills); dotted: getattr
        for source, names, getter in ((vars(module), [n for n in names if "." not in n], operator.itemgetter),
                                      (module, [n for n in names if "." in n], operator.attrgetter)):
            if names:
                names = sorted(names)
                read = getter(*(names * 2 if len(names) == 1 else names))
                watched.append((source, read, read(source)))
    return tuple(watched)


def drop_returned_value(tree):
    """Make the generated vjp `tree` return None for the value, `return None, (x_bar, ...)`, so that
    dead-code elimination drops what only computed it. False when its return is not of that form."""
    ret = tree.body[-1]
    if not (isinstance(ret, gast.Return) and isinstance(ret.value, gast.Tuple) and len(ret.value.elts) == 2):
        return False
    ret.value.elts[0] = gast.Constant(value=None, kind=None)
    return True


class Module:
    """Generated functions for one top-level derivative, and how to load them."""

    def __init__(self):
        self.functions = []      # gast FunctionDefs in definition order
        self.primals = {}        # id(fn) -> emitted primal name (unique in the module)
        # every function name defined in the module; a user's function named like one of the
        # module's own helpers (`unbroadcast`, `inside`) gets another name, not the helper's
        self.taken = set(module_names()) | {"scipy"}
        self.vjps = {}           # (id(fn), arg types, wrt) -> name
        self.results = {}        # (id(fn), arg types) -> Ty of the output
        self.namespace = {}      # user globals the generated code refers to
        self.in_progress = set()
        self.recursive = set()
        self.tangent_from_vjp = False  # forward mode went through a custom_vjp's reverse rule
        self.not_for_numba = []  # why Numba would run this code wrongly, where it would (it runs as Python)
        self.sources = {}        # id -> each Function whose code the module holds (see `stale`)

    def stale(self):
        """Has a variable read by one of the module's functions been rebound since it was generated?"""
        return any(func.stale() for func in self.sources.values())

    # ---- used by analysis and reverse for calls to user functions ---------------
    def result_type(self, fn, arg_types):
        """The type a user function returns for these argument types (recursion: by fixpoint)."""
        key = (id(fn), tuple(arg_types))
        if key in self.results:
            return self.results[key]
        if key in self.in_progress:
            self.recursive.add(key)
            return T.BOTTOM  # no information yet: the other return paths decide
        self.in_progress.add(key)
        func = Function.of(fn)
        ret = func.ir.body[-1].value
        for _ in range(4):
            ty = func.analyze(arg_types, [], self).type_of(ret)
            settled = key not in self.recursive or self.results.get(key) == ty
            self.results[key] = ty
            if settled:
                break
        self.in_progress.discard(key)
        self.primal(fn)
        return self.results[key]

    def primal(self, fn):
        """The name of fn's (normalized) copy in this module.

        Two functions of one name (closures, lambdas, or s2sad's own generated functions when a
        derivative is differentiated again) get distinct names; `source` renames the calls."""
        if id(fn) not in self.primals:
            func = Function.of(fn)
            name = self._unique(func.name)
            self.primals[id(fn)] = name
            tree = copy.copy(func.ir)
            tree.name = name
            self.add(func, tree)
        return self.primals[id(fn)]

    def vjp_name(self, fn, arg_types, wrt_positions, aux=False, treedefs=None):
        """The generated vjp of `fn` for these argument types; `treedefs` marks a top-level call."""
        helper = treedefs is None
        key = (id(fn), tuple(arg_types), tuple(wrt_positions), aux, helper)
        if key not in self.vjps:
            func = Function.of(fn)
            if not helper:
                func = func.with_flat_params(treedefs)
            name = self._unique(f"{func.name}_vjp")
            self.vjps[key] = name
            if helper:
                self.primal(fn)  # the caller's forward sweep calls the primal
            params = [a.id for a in func.ir.args.args]
            wrt = [params[i] for i in wrt_positions]
            tree = self.reverse(func, arg_types, wrt, name, aux)
            if helper:
                # a helper's vjp is called from its caller's reverse sweep, which reads only the
                # adjoints (the forward sweep called the primal): what only computes the value is
                # dead code (a recursive function's top-level vjp is a separate copy)
                drop_returned_value(tree)
            self.add(func, tree)
        return self.vjps[key]

    def jvp_name(self, fn, arg_types, wrt_positions, treedefs=None):
        """The generated jvp of `fn`: tangents for the arguments at `wrt_positions`."""
        key = ("jvp", id(fn), tuple(arg_types), tuple(wrt_positions))
        if key not in self.vjps:
            func = Function.of(fn)
            if treedefs is not None:
                func = func.with_flat_params(treedefs)
            name = self._unique(f"{func.name}_jvp")
            self.vjps[key] = name
            if treedefs is None:
                self.primal(fn)
            params = [a.id for a in func.ir.args.args]
            wrt = [params[i] for i in wrt_positions]
            an = func.analyze(arg_types, wrt, self)
            analysis_mod.check(an, func.parsed.where)
            self.add(func, forward.transform(func.ir, an, self, func.parsed, name, wrt))
        return self.vjps[key]

    def call_generated(self, stmt, types):
        """`v = grad(f)(*args)` (a nested call, `types` its arguments' types) calling the generated
        function that computes it (its copy in this module) in place of the transformed Python
        object, which Numba cannot call; `stmt` itself where s2sad generates no such function."""
        call = stmt.value
        transformed = analysis_mod.call_func(call)
        if transformed.kind not in ("grad", "jacrev", "jacfwd") or call.keywords:
            return stmt
        try:
            wrapper = transformed.as_function(types)
        except S2SADError:
            return stmt  # called as the Python object it is (Numba then falls back, saying why)
        self.result_type(wrapper, types)  # analyzed: the functions it calls join the module
        new = gast.Call(func=gast.Name(id=self.primal(wrapper), ctx=gast.Load(), annotation=None, type_comment=None),
                        args=[copy.deepcopy(a) for a in call.args], keywords=[])
        meta.put(new, meta.Binding(wrapper, user=True))
        return gast.copy_location(gast.Assign(targets=stmt.targets, value=new, type_comment=None), stmt)

    def _unique(self, base):
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.taken.add(name)
        return name

    def reverse(self, func, arg_types, wrt, name, aux=False):
        an = func.analyze(arg_types, wrt, self, aux)
        analysis_mod.check(an, func.parsed.where)
        ir = analysis_mod.copy_views_of_written_arrays(func.ir, an)
        if ir is not func.ir:
            an = analysis_mod.Analysis(ir, arg_types, wrt, self, aux)
        return reverse.transform(ir, an, self, func.parsed, name, aux)

    def add(self, func, tree):
        """Add a generated function; the globals it reads join the module's namespace.

        Functions from different places may read different values under one global name (two
        closures over `scale`, say): the later one reads a renamed copy (`scale_2`)."""
        self.sources[id(func)] = func
        local = {a.id for a in tree.args.args} | {n.id for n in gast.walk(tree)
                                                   if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
        reserved = module_names()
        renames = {}

        def renamed(node):  # a user's global under a name of its own in this module?
            if node.id in reserved:  # the module's helper, unless the user's code named its own global so
                return meta.is_global(node) and node.id in renames
            return node.id in renames

        for node in gast.walk(tree):
            if isinstance(node, gast.Name) and node.id not in local and node.id not in ("np", "math", "scipy"):
                if node.id not in func.parsed.namespace or node.id in renames:
                    continue
                value = func.parsed.namespace[node.id]
                if node.id in reserved:
                    if meta.is_global(node) and value is not reserved[node.id]:
                        renames[node.id] = self._global_name(node.id, value)
                elif node.id not in self.namespace:
                    self.namespace[node.id] = value
                elif not _same_value(self.namespace[node.id], value):
                    renames[node.id] = self._global_name(node.id, value)
        if renames:
            tree = normalize.copy_ir(tree)  # the IR is shared with other modules: rename a copy
            for node in gast.walk(tree):
                if isinstance(node, gast.Name) and node.id not in local and renamed(node):
                    node.id = renames[node.id]
        self.functions.append(tree)

    def _global_name(self, base, value):
        n = 2
        while f"{base}_{n}" in self.namespace and not _same_value(self.namespace[f"{base}_{n}"], value):
            n += 1
        self.namespace[f"{base}_{n}"] = value
        return f"{base}_{n}"

    def keep_called_by(self, entry):
        """Keep only the functions `entry` calls, directly or not: a Hessian's module generates the
        gradient it differentiates, and then calls that gradient's derivative alone."""
        by_name = {t.name: t for t in self.functions}
        kept, todo = set(), [entry]
        while todo:
            name = todo.pop()
            if name in kept or name not in by_name:
                continue
            kept.add(name)
            for node in gast.walk(by_name[name]):
                if isinstance(node, gast.Name):
                    todo.append(node.id)
                elif isinstance(node, gast.Call) and id(analysis_mod.call_func(node)) in self.primals:
                    todo.append(self.primals[id(analysis_mod.call_func(node))])   # as call_primals_by_name spells it
        self.taken -= {t.name for t in self.functions if t.name not in kept}
        self.functions = [t for t in self.functions if t.name in kept]
        # what was dropped is generated again if a later wrapper (jacobian_wrapper) asks for it
        self.primals = {k: n for k, n in self.primals.items() if n in kept}
        self.vjps = {k: n for k, n in self.vjps.items() if n in kept}

    # ---- output -----------------------------------------------------------------
    def source(self, header=""):
        parts = [header] if header else []
        functions = [emit.to_source(self.call_primals_by_name(tree)) for tree in self.functions]
        uses_scipy = any(isinstance(n, gast.Name) and n.id == "scipy" for t in self.functions for n in gast.walk(t))
        parts.append("import math\n\nimport numpy as np\n" + ("import scipy.special\n" if uses_scipy else ""))
        return "\n\n".join(parts + functions)

    def call_primals_by_name(self, tree):
        """`tree` with each call of a user function spelled with its primal's name in this module."""
        def renames(t):
            return [c for c in gast.walk(t) if analysis_mod.is_user_call(c) and isinstance(c.func, gast.Name)
                    and self.primals.get(id(analysis_mod.call_func(c)), c.func.id) != c.func.id]
        if not renames(tree):
            return tree
        tree = normalize.copy_ir(tree)  # the IR is shared with other modules: rename a copy
        for call in renames(tree):
            call.func = gast.Name(id=self.primals[id(analysis_mod.call_func(call))], ctx=gast.Load(),
                                  annotation=None, type_comment=None)
        return tree

    def load(self, source, filename):
        namespace = module_names()
        if "scipy.special" in sys.modules:  # generated code calls scipy.special only where the user's did
            namespace["scipy"] = sys.modules["scipy"]
        namespace.update(self.namespace)
        cached = cache.load(source, namespace)  # a content-hashed file, so Numba can cache compiled code
        if cached is not None:
            return cached
        # register the source so that inspect (and so s2sad itself) can read generated functions
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec")
        exec(code, namespace)
        return namespace


module_names = custom.module_names


def _same_value(a, b):
    if a is b:
        return True
    try:
        return type(a) is type(b) and isinstance(a, (bool, int, float, complex, str)) and a == b
    except Exception:  # noqa: BLE001 - values that cannot be compared are different
        return False
