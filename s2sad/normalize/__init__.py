"""Normalize: desugar the user's function into a small, regular form (the IR).

In: a fenced `Parsed` function. Out: a `gast.FunctionDef` in A-normal form,
where every statement is one of

    name = rhs                      rhs: one operation on atoms
    a, b = call(atoms)              a user function returning a tuple
    name[index] = atom              a write into a local array
    if atom: ... else: ...
    for name in range(atom, atom, atom): ...     (no break/continue/return inside)
    while atom: ...                 (the condition is recomputed at the end of the body)
    return atom | return (atom, ...)     only as the last statement

An atom is a name, a constant, or a global attribute such as `np.pi`.
`break`, `continue` and early `return` become flags that guard the rest of
their block; `for` over arrays, `enumerate` and `zip` become `range` loops;
augmented assignment, chained comparison, `and`/`or`, conditional
expressions and tuple unpacking are spelled out. Calls to known functions
are spelled canonically (`np.sin`, `math.exp`) whatever alias the user
imported, and carry the function object in their `meta.Binding`.
Next stage: `analysis`.
"""

import builtins
import copy
import inspect
import math
import sys
import types

import gast
import numpy as np

from .. import rules, runtime
from ..errors import UnsupportedSyntaxError
from ..ir import meta, nested
from ..rules import custom
from ..rules.definitions import DEFINITIONS

# ndarray methods rewritten to NumPy functions: `x.sum(axis=0)` -> `np.sum(x, axis=0)`
METHODS = {name: getattr(np, name) for name in (
    "sum", "mean", "prod", "max", "min", "dot", "reshape", "transpose", "copy", "ravel",
    "cumsum", "cumprod", "clip", "squeeze", "swapaxes", "std", "var", "repeat", "argmax", "argmin", "any",
    "all")}
METHODS["flatten"] = np.ravel
# attributes kept as they are (all non-differentiable), and those turned into calls
ATTRIBUTES = {"shape", "size", "ndim", "dtype"}
ATTRIBUTE_CALLS = {"T": np.transpose}


def canonical_name(obj):
    """How generated code spells a known function object, or None."""
    if obj is None:
        return None
    if obj is runtime.stop_gradient:
        return "stop_gradient"
    for prefix, module in (("np", np), ("np.linalg", np.linalg), ("math", math)):
        name = getattr(obj, "__name__", None)
        if name and getattr(module, name, None) is obj:
            return f"{prefix}.{name}"
    special = sys.modules.get("scipy.special")  # only code that imported it can call it
    name = getattr(obj, "__name__", None)
    if special is not None and name and getattr(special, name, None) is obj:
        return f"scipy.special.{name}"
    if getattr(builtins, getattr(obj, "__name__", ""), None) is obj:
        return obj.__name__
    return None


class Names:
    """Fresh names that cannot collide with the user's."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.counts = {}

    def fresh(self, stem):
        while True:
            n = self.counts.get(stem, 0) + 1
            self.counts[stem] = n
            name = f"_{stem}{n}"
            if name not in self.taken:
                self.taken.add(name)
                return name


class DerivedNames:
    """Names a transform adds beside the user's: `x_bar` (or `x_dot`) for x, `_t3` for its own values."""

    def __init__(self, fn, suffix):
        self.taken = {n.id for n in gast.walk(fn) if isinstance(n, gast.Name)}
        self.suffix = suffix
        self.derived = {}
        self.counter = 0

    def of(self, v):
        if v not in self.derived:
            candidate = f"{v}_{self.suffix}"
            while candidate in self.taken:
                candidate += "_"
            self.taken.add(candidate)
            self.derived[v] = candidate
        return self.derived[v]

    def source_of(self, derived):
        """The name whose derived name `derived` is, else None."""
        return next((v for v, d in self.derived.items() if d == derived), None)

    def fresh(self, stem):
        while True:
            self.counter += 1
            candidate = f"_{stem}{self.counter}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate


def copy_ir(tree):
    """A deep copy of generated or normalized code; the objects its names and calls refer to
    (their `meta.Binding`: functions, modules, global arrays) are shared, not copied."""
    return copy.deepcopy(tree)


def name(id_, store=False):
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None, type_comment=None)


def const(value):
    return gast.Constant(value=value, kind=None)


def assign(target, value, like=None):
    node = gast.Assign(targets=[target if not isinstance(target, str) else name(target, True)], value=value,
                       type_comment=None)
    if like is not None:
        gast.copy_location(node, like)
    return node


def is_atom(node):
    return isinstance(node, (gast.Name, gast.Constant)) or meta.is_global(node)


def _locals_renamed_off_helpers(fn):
    """`fn`, or a copy of it in which each local variable named like a helper that generated code
    calls (`push`, `unbroadcast`, `logistic`, ...) is renamed (`push_`): else the generated code
    would call the user's value."""
    reserved = set(custom.module_names()) - {"np", "math"}  # a local `np` breaks the user's own code first
    args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    local = {a.id for a in args} | {n.id for n in gast.walk(fn) if isinstance(n, gast.Name)
                                    and isinstance(n.ctx, (gast.Store, gast.Param))}
    clashes = local & reserved
    if not clashes:
        return fn
    taken = {n.id for n in gast.walk(fn) if isinstance(n, gast.Name)} | reserved
    renames = {}
    for v in sorted(clashes):
        new = v + "_"
        while new in taken:
            new += "_"
        taken.add(new)
        renames[v] = new
    fn = copy_ir(fn)
    for n in gast.walk(fn):
        if isinstance(n, gast.Name) and n.id in renames:
            n.id = renames[n.id]
    return fn


class Normalizer:
    def __init__(self, parsed):
        self.parsed = parsed
        self.ns = parsed.namespace
        fn = self.tree = _locals_renamed_off_helpers(parsed.tree)
        self.params = [a.id for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
        self.locals = set(self.params)
        for node in gast.walk(fn):
            if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store):
                self.locals.add(node.id)
        self.names = Names({n.id for n in gast.walk(fn) if isinstance(n, gast.Name)})
        self.loops = []  # stack of {"break": flag or None, "continue": flag or None}
        self.returned = None  # flag name when the function has an early return
        self.out_treedef = None  # structure of a returned dict/nested container, else None
        self.retval = None

    def fresh(self, stem):
        """A new local name: every temporary is a local, never looked up as a global."""
        n = self.names.fresh(stem)
        self.locals.add(n)
        return n

    def error(self, construct, node, hint=""):
        return UnsupportedSyntaxError(construct, self.parsed.where(node), hint)

    # ---- entry ----------------------------------------------------------
    def run(self):
        fn = self.tree
        body = [s for s in fn.body if not _is_dropped(s) or self.is_push_stmt(s)]
        if not _always_returns(body):
            end = fn.body[-1] if fn.body else fn
            raise self.error("a function that can end without a `return` (it would return None)",
                             end, "return the value to differentiate on every path")
        if not _returns_at_tail_only(body):
            self.returned, self.retval = "_returned", "_retval"
            self.locals.update((self.returned, self.retval))
        out = []
        if self.returned:
            out.append(assign(self.returned, const(False), fn))
        out += self.block(body)
        if self.returned:
            ret = gast.Return(value=name(self.retval))
            gast.copy_location(ret, fn)
            out.append(ret)
        if not out or not isinstance(out[-1], gast.Return):
            raise self.error("a function without a `return`", fn, "return the value to differentiate")
        new = gast.FunctionDef(name=fn.name, args=fn.args, body=out, decorator_list=[], returns=None,
                               type_comment=None, type_params=[])
        for a in new.args.args:
            a.annotation = None
        if self.out_treedef is not None:
            meta.put(new, meta.OutTreedef(self.out_treedef))
        if fn.args.defaults or fn.args.kwonlyargs or fn.args.posonlyargs:
            # every parameter becomes positional, in signature order: callers bind by inspect.signature
            new.args = gast.arguments(args=fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs,
                                      posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                                      defaults=[])
        gast.copy_location(new, fn)
        return new

    # ---- statements -----------------------------------------------------
    def block(self, stmts):
        out = []
        stmts = [s for s in stmts if not _is_dropped(s) or self.is_push_stmt(s)]
        for i, s in enumerate(stmts):
            out += self.stmt(s)
            rest = stmts[i + 1:]
            if rest and self.may_jump(s):
                guard = self.guard(s, out)
                inner = self.block(rest)
                if inner:
                    node = gast.If(test=guard, body=inner, orelse=[])
                    gast.copy_location(node, rest[0])
                    out.append(node)
                break
        return out

    def is_push_stmt(self, s):
        return isinstance(s, gast.Expr) and isinstance(s.value, gast.Call) and self.is_tape_push(s.value)

    def may_jump(self, s):
        """Does `s` leave the current block early (break/continue here, or return)?"""
        def search(node, in_loop):
            if isinstance(node, gast.Return):
                return self.returned is not None
            if isinstance(node, (gast.Break, gast.Continue)):
                return not in_loop
            nested = in_loop or isinstance(node, (gast.For, gast.While))
            return any(search(c, nested) for c in gast.iter_child_nodes(node)
                       if isinstance(c, gast.stmt))
        if isinstance(s, (gast.For, gast.While)):
            return self.returned is not None and any(isinstance(n, gast.Return) for n in gast.walk(s))
        return search(s, False)

    def guard(self, like, out):
        flags = []
        if self.loops:
            flags += [f for f in (self.loops[-1]["break"], self.loops[-1]["continue"]) if f]
        if self.returned:
            flags.append(self.returned)
        if len(flags) == 1:
            expr = gast.UnaryOp(op=gast.Not(), operand=name(flags[0]))
        else:
            expr = gast.UnaryOp(op=gast.Not(), operand=gast.BoolOp(op=gast.Or(), values=[name(f) for f in flags]))
        gast.copy_location(expr, like)
        return self.atom(expr, out)

    def stmt(self, s):
        out = []
        method = getattr(self, "stmt_" + type(s).__name__, None)
        if method is None:
            raise self.error(f"a `{type(s).__name__}` statement", s)
        method(s, out)
        for node in out:
            if not hasattr(node, "lineno"):
                gast.copy_location(node, s)
        return out

    def stmt_Pass(self, s, out):
        pass

    def stmt_Expr(self, s, out):
        """Kept only for a tape push in generated code; docstrings and print() are dropped."""
        call = s.value
        if isinstance(call, gast.Call) and self.is_tape_push(call):
            node = make_call(call.func.id, [self.atom(a, out) for a in call.args], self.resolve(call.func), s)
            out.append(gast.copy_location(gast.Expr(value=node), s))

    def is_tape_push(self, call):
        return isinstance(call.func, gast.Name) and self.resolve(call.func) in (runtime.push, runtime.push_shape, runtime.tape_put)

    def stmt_Assert(self, s, out):
        """Kept: a failing assertion raises AssertionError in derivative code too."""
        test = self.atom(s.test, out)
        if isinstance(s.msg, gast.Constant) and isinstance(s.msg.value, str):
            message = s.msg.value
        else:  # a computed message: the assertion as written, and where
            message = f"{self.parsed.where(s)}: {self.parsed.where(s).line.strip()}"
        out.append(gast.copy_location(gast.Assert(test=test, msg=const(message)), s))

    def stmt_Return(self, s, out):
        value = s.value
        if value is None or isinstance(value, gast.Constant) and not isinstance(value.value, (int, float)):
            raise self.error("a `return` without a value" if value is None else
                             f"a `return` of {value.value!r}, which is not a number", s,
                             "return the value to differentiate (a float or an array) on every path")
        if _nested_container(value):  # a pytree output: returned flat, rebuilt by the caller
            leaves, treedef = self.flatten_output(value, out)
            if self.out_treedef is not None and self.out_treedef != treedef:
                raise self.error("returns of differently structured values", s,
                                 "return the same dict/tuple structure on every path")
            self.out_treedef = treedef
            result = gast.Tuple(elts=leaves, ctx=gast.Load())
        elif isinstance(value, gast.Tuple):
            result = gast.Tuple(elts=[self.atom(e, out) for e in value.elts], ctx=gast.Load())
        else:
            result = self.atom(value, out)
        if self.returned:
            out.append(assign(self.retval, result, s))
            out.append(assign(self.returned, const(True), s))
        else:
            ret = gast.Return(value=result)
            gast.copy_location(ret, s)
            out.append(ret)

    def flatten_output(self, value, out):
        """Leaves (atoms) and the pytree structure of a returned container literal."""
        if isinstance(value, gast.Dict):
            if not all(isinstance(k, gast.Constant) for k in value.keys):
                raise self.error("a returned dict with computed keys", value, "use constant keys")
            items = sorted(zip([k.value for k in value.keys], value.values), key=lambda kv: kv[0])
            leaves, defs = [], []
            for _, v in items:
                sub, d = self.flatten_output(v, out)
                leaves += sub
                defs.append(d)
            return leaves, ("dict", tuple(k for k, _ in items), tuple(defs))
        if isinstance(value, (gast.Tuple, gast.List)):
            leaves, defs = [], []
            for v in value.elts:
                sub, d = self.flatten_output(v, out)
                leaves += sub
                defs.append(d)
            return leaves, ("tuple" if isinstance(value, gast.Tuple) else "list", len(value.elts), tuple(defs))
        return [self.atom(value, out)], None

    def stmt_Break(self, s, out):
        out.append(assign(self.loops[-1]["break"], const(True), s))

    def stmt_Continue(self, s, out):
        out.append(assign(self.loops[-1]["continue"], const(True), s))

    def stmt_AugAssign(self, s, out):
        target = s.target
        if isinstance(target, gast.Name):
            value = gast.BinOp(left=name(target.id), op=s.op, right=s.value)
            gast.copy_location(value, s)
            node = assign(target.id, self.rhs(value, out), s)
            meta.put(node, meta.Inplace())  # `y += x` on an array updates it in place: see analysis.check_aliasing
            out.append(node)
            return
        # a[i] += v: evaluate the index once, read, combine, write back
        self.check_local_write(target, s)
        array = self.atom(target.value, out)
        index = self.index(target.slice, out)
        old = self.fresh("t")
        out.append(assign(old, gast.Subscript(value=array, slice=index, ctx=gast.Load()), s))
        value = gast.BinOp(left=name(old), op=s.op, right=s.value)
        gast.copy_location(value, s)
        new = self.atom(value, out)
        out.append(assign(gast.Subscript(value=_store(array), slice=index, ctx=gast.Store()), new, s))

    def check_local_write(self, target, s):
        """`G[0] = v` writes into a global array: its change is not a value s2sad can differentiate."""
        if isinstance(target.value, gast.Name) and target.value.id not in self.locals:
            raise self.error(f"a write into `{target.value.id}`, which is not a local of the function", s,
                             "s2sad differentiates values, not changes to module-level arrays: copy it into a "
                             f"local (`g = {target.value.id}.copy()`) and write into that")

    def stmt_AnnAssign(self, s, out):
        if s.value is not None:
            self.stmt_Assign(gast.Assign(targets=[s.target], value=s.value, type_comment=None,
                                         lineno=s.lineno, col_offset=s.col_offset), out)

    def stmt_Assign(self, s, out):
        value, targets = s.value, s.targets
        if len(targets) > 1:  # a = b = expr
            result = self.atom(value, out)
            for t in targets:
                self.assign_to(t, result, s, out)
            return
        target = targets[0]
        if isinstance(target, (gast.Tuple, gast.List)):
            self.unpack(target, value, s, out)
        elif isinstance(target, gast.Subscript):
            self.check_local_write(target, s)
            array = self.atom(target.value, out)
            index = self.index(target.slice, out)
            result = self.atom(value, out)
            out.append(assign(gast.Subscript(value=_store(array), slice=index, ctx=gast.Store()), result, s))
        else:
            out.append(assign(target.id, self.rhs(value, out), s))

    def assign_to(self, target, atom, s, out):
        if isinstance(target, gast.Name):
            out.append(assign(target.id, atom, s))
        else:
            self.stmt_Assign(gast.Assign(targets=[target], value=atom, type_comment=None,
                                         lineno=s.lineno, col_offset=s.col_offset), out)

    def unpack(self, target, value, s, out):
        names = [e.id for e in target.elts]
        if isinstance(value, (gast.Tuple, gast.List)):
            if len(value.elts) != len(names):
                raise self.error("unpacking with mismatched lengths", s)
            atoms = [self.atom(e, out) for e in value.elts]
            # `a, b = b, a`: copy a right-hand name that an earlier target overwrites
            for i, a in enumerate(atoms):
                if isinstance(a, gast.Name) and a.id in names[:i]:
                    tmp = self.fresh("t")
                    out.append(assign(tmp, a, s))
                    atoms[i] = name(tmp)
            for n, a in zip(names, atoms):
                out.append(assign(n, a, s))
            return
        rhs = self.rhs(value, out)
        b = meta.binding(rhs) if isinstance(rhs, gast.Call) else None
        if b is not None and (b.user or b.nested):
            tup = gast.Tuple(elts=[name(n, True) for n in names], ctx=gast.Store())
            out.append(assign(tup, rhs, s))
            return
        tmp = self.fresh("t")
        out.append(assign(tmp, rhs, s))
        for i, n in enumerate(names):
            out.append(assign(n, gast.Subscript(value=name(tmp), slice=const(i), ctx=gast.Load()), s))

    def stmt_If(self, s, out):
        test = self.atom(s.test, out)
        if isinstance(test, gast.Name) and _assigns(s.body + s.orelse, test.id):
            # `if c: c = ...`: the reverse sweep decides which branch to undo by the test's value
            # after the `if`, so the test is a copy that neither branch assigns
            flag = self.fresh("t")
            out.append(assign(flag, test, s))
            test = name(flag)
        node = gast.If(test=test, body=self.block(s.body) or [gast.Pass()], orelse=self.block(s.orelse))
        gast.copy_location(node, s)
        out.append(node)

    # ---- loops ----------------------------------------------------------
    def loop_flags(self, s):
        def owned(kind):
            def search(node):
                for child in gast.iter_child_nodes(node):
                    if isinstance(child, kind):
                        return True
                    if isinstance(child, (gast.For, gast.While)):
                        continue
                    if search(child):
                        return True
                return False
            return any(search(b) or isinstance(b, kind) for b in s.body)
        return {"break": self.fresh("break") if owned(gast.Break) else None,
                "continue": self.fresh("continue") if owned(gast.Continue) else None}

    def stmt_For(self, s, out):
        start, stop, step, prefix, target = self.range_of(s, out)
        flags = self.loop_flags(s)
        for f in flags.values():
            if f:
                self.locals.add(f)
        self.loops.append(flags)
        exits = flags["break"] or (self.returned and any(isinstance(n, gast.Return) for n in gast.walk(s)))
        body_prefix = list(prefix)
        if flags["continue"]:
            body_prefix.append(assign(flags["continue"], const(False), s))
        if not exits:
            reassigned = any(isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store) and n.id == target
                             for b in s.body for n in gast.walk(b))
            index = self.fresh("i") if reassigned else target
            if reassigned:
                body_prefix.insert(0, assign(target, name(index), s))
            body = body_prefix + self.block(s.body)
            self.loops.pop()
            loop = gast.For(target=name(index, True),
                            iter=make_call("range", [start, stop, step], range), body=body or [gast.Pass()],
                            orelse=[], type_comment=None)
            gast.copy_location(loop, s)
            out.append(loop)
            return
        # a loop that can exit early runs as a while loop over an explicit counter
        counter = self.fresh("i")
        self.locals.add(counter)
        if flags["break"]:
            out.append(assign(flags["break"], const(False), s))
        out.append(assign(counter, start, s))
        body = [assign(target, name(counter), s)] + body_prefix + self.block(s.body)
        self.loops.pop()
        more = self.range_test(counter, stop, step, s)
        cond = self.loop_condition(more, flags, s, out)
        body.append(assign(counter, _binop(name(counter), gast.Add(), step, s), s))
        cond2 = self.loop_condition(self.range_test(counter, stop, step, s), flags, s, body, cond)
        assert cond2 == cond
        loop = gast.While(test=name(cond), body=body, orelse=[])
        gast.copy_location(loop, s)
        out.append(loop)

    def range_test(self, counter, stop, step, like):
        if isinstance(step, gast.Constant):
            op = gast.Lt() if step.value > 0 else gast.Gt()
            expr = gast.Compare(left=name(counter), ops=[op], comparators=[stop])
        else:
            up = gast.BoolOp(op=gast.And(), values=[
                gast.Compare(left=step, ops=[gast.Gt()], comparators=[const(0)]),
                gast.Compare(left=name(counter), ops=[gast.Lt()], comparators=[stop])])
            down = gast.BoolOp(op=gast.And(), values=[
                gast.Compare(left=step, ops=[gast.Lt()], comparators=[const(0)]),
                gast.Compare(left=name(counter), ops=[gast.Gt()], comparators=[stop])])
            expr = gast.BoolOp(op=gast.Or(), values=[up, down])
        for n in gast.walk(expr):
            gast.copy_location(n, like)
        return expr

    def loop_condition(self, test, flags, like, out, cond=None):
        """Emit `cond = test and not break and not returned` into `out`."""
        cond = cond or self.fresh("more")
        self.locals.add(cond)
        value = self.atom(test, out)
        out.append(assign(cond, value, like))
        stops = [f for f in (flags["break"], self.returned) if f]
        for flag in stops:
            # `cond = cond and not flag`, spelled without short-circuit on atoms
            clear = gast.If(test=name(flag), body=[assign(cond, const(False), like)], orelse=[])
            gast.copy_location(clear, like)
            out.append(clear)
        return cond

    def stmt_While(self, s, out):
        flags = self.loop_flags(s)
        for f in flags.values():
            if f:
                self.locals.add(f)
        if flags["break"]:
            out.append(assign(flags["break"], const(False), s))
        cond = self.loop_condition(s.test, flags, s, out)
        self.loops.append(flags)
        body = []
        if flags["continue"]:
            body.append(assign(flags["continue"], const(False), s))
        body += self.block(s.body)
        self.loops.pop()
        self.loop_condition(s.test, flags, s, body, cond)
        loop = gast.While(test=name(cond), body=body, orelse=[])
        gast.copy_location(loop, s)
        out.append(loop)

    def range_of(self, s, out):
        """(start, stop, step, body prefix, index name) of a for loop over anything."""
        it, target = s.iter, s.target
        func = self.resolve(it.func) if isinstance(it, gast.Call) else None
        backwards = func is reversed and len(it.args) == 1 and isinstance(it.args[0], gast.Call) \
            and self.resolve(it.args[0].func) is range
        if func is range or backwards:
            if not isinstance(target, gast.Name):
                raise self.error("unpacking a `range` loop variable", target)
            args = [self.atom(a, out) for a in (it.args[0].args if backwards else it.args)]
            if len(args) == 1:
                args = [const(0)] + args
            if len(args) == 2:
                args.append(const(1))
            if not backwards:
                return args[0], args[1], args[2], [], target.id
        if func is runtime.reversed_range or backwards:
            # `reversed(range(...))`, and generated adjoint code transformed again: a range loop
            start, stop, step = args if backwards else [self.atom(a, out) for a in it.args]
            first, end, back = self.fresh("k"), self.fresh("k"), self.fresh("k")
            out.append(assign(first, make_call("reversed_first", [start, stop, step], runtime.reversed_first), s))
            out.append(assign(end, _binop(start, gast.Sub(), copy.deepcopy(step), s), s))
            out.append(assign(back, gast.UnaryOp(op=gast.USub(), operand=copy.deepcopy(step)), s))
            return name(first), name(end), name(back), [], target.id
        if func is reversed and len(it.args) == 1:   # reversed(xs): xs's items, the last first
            seq = self.hoist(it.args[0], out)
            index, stop, last = self.fresh("i"), self.fresh("n"), self.fresh("k")
            out.append(assign(stop, self.len_of(seq), s))
            out.append(assign(last, _binop(name(stop), gast.Sub(), const(1), s), s))
            return name(last), const(-1), const(-1), self.unpack_item(target, seq, name(index), s), index
        if func is enumerate:
            if not (isinstance(target, gast.Tuple) and len(target.elts) == 2):
                raise self.error("`enumerate` without `i, value` unpacking", target, "write `for i, v in enumerate(xs)`")
            index, value = target.elts
            inner = it.args[0]
            if isinstance(inner, gast.Call) and self.resolve(inner.func) is zip:   # enumerate(zip(xs, ys))
                if not (isinstance(value, gast.Tuple) and len(value.elts) == len(inner.args)):
                    raise self.error("`zip` without one loop variable per sequence", value)
                seqs, values = [self.hoist(a, out) for a in inner.args], value.elts
            else:
                seqs, values = [self.hoist(inner, out)], [value]
            start = self.atom(it.args[1], out) if len(it.args) > 1 else const(0)
            stop = self.shortest(seqs, s, out)

            def unpack(position):
                return [stmt for t, seq in zip(values, seqs) for stmt in self.unpack_item(t, seq, position, s)]
            if isinstance(start, gast.Constant) and start.value == 0:
                return const(0), name(stop), const(1), unpack(name(index.id)), index.id
            shifted = self.fresh("k")
            prefix = [assign(shifted, _binop(name(index.id), gast.Sub(), start, s), s)]
            prefix += unpack(name(shifted))
            end = self.fresh("n")
            out.append(assign(end, _binop(name(stop), gast.Add(), start, s), s))
            return start, name(end), const(1), prefix, index.id
        if func is zip:
            if not (isinstance(target, gast.Tuple) and len(target.elts) == len(it.args)):
                raise self.error("`zip` without one loop variable per sequence", target)
            seqs = [self.hoist(a, out) for a in it.args]
            index = self.fresh("i")
            stop = self.shortest(seqs, s, out)
            prefix = []
            for t, seq in zip(target.elts, seqs):
                prefix += self.unpack_item(t, seq, name(index), s)
            return const(0), name(stop), const(1), prefix, index
        seq = self.hoist(it, out)
        index = self.fresh("i")
        stop = self.fresh("n")
        out.append(assign(stop, self.len_of(seq), s))
        return const(0), name(stop), const(1), self.unpack_item(target, seq, name(index), s), index

    def shortest(self, seqs, s, out):
        """A name bound to the length of the shortest of `seqs` (zip's)."""
        stop = self.fresh("n")
        out.append(assign(stop, self.len_of(seqs[0]), s))
        for other in seqs[1:]:
            length = self.fresh("n")
            out.append(assign(length, self.len_of(other), s))
            out.append(assign(stop, make_call("min", [name(stop), name(length)], min), s))
        return stop

    def hoist(self, expr, out):
        atom = self.atom(expr, out)
        if isinstance(atom, gast.Name):
            return atom
        seq = self.fresh("seq")
        out.append(assign(seq, atom, expr))
        return name(seq)

    def len_of(self, seq):
        return make_call("len", [seq], len)

    def unpack_item(self, target, seq, index, s):
        item = gast.Subscript(value=seq, slice=index, ctx=gast.Load())
        if isinstance(target, gast.Name):
            return [assign(target.id, item, s)]
        tmp = self.fresh("t")
        out = [assign(tmp, item, s)]
        for i, elt in enumerate(target.elts):
            out.append(assign(elt.id, gast.Subscript(value=name(tmp), slice=const(i), ctx=gast.Load()), s))
        return out

    # ---- expressions ----------------------------------------------------
    def atom(self, expr, out):
        """Lower `expr`, emitting statements into `out`; return an atom."""
        if is_atom(expr) and not (isinstance(expr, gast.Name) and self.is_global(expr.id)):
            return expr
        value = self.rhs(expr, out)
        if is_atom(value):
            return value
        tmp = self.fresh("t")
        self.locals.add(tmp)
        out.append(assign(tmp, value, expr))
        return name(tmp)

    def is_global(self, id_):
        return id_ not in self.locals

    def resolve(self, expr):
        """The object a global expression (`np.sin`, `math`, `helper`) refers to, else None."""
        if isinstance(expr, gast.Name):
            if expr.id in self.locals:
                return None
            return self.ns.get(expr.id, _MISSING)
        if isinstance(expr, gast.Attribute):
            base = self.resolve(expr.value)
            if base is None or base is _MISSING:
                return None if base is None else _MISSING
            return getattr(base, expr.attr, _MISSING)
        return None

    def rhs(self, expr, out):
        """Lower `expr` to a single operation on atoms (or an atom)."""
        if isinstance(expr, gast.Constant):
            return expr
        if isinstance(expr, gast.Name):
            if expr.id in self.locals:
                return expr
            return self.global_value(expr)
        if isinstance(expr, gast.BinOp):
            x = self.logistic_argument(expr)
            if x is not None:
                return make_call("logistic", [self.atom(x, out)], runtime.logistic, expr)
            return _binop(self.atom(expr.left, out), expr.op, self.atom(expr.right, out), expr)
        if isinstance(expr, gast.UnaryOp):
            operand = self.atom(expr.operand, out)
            if isinstance(expr.op, gast.UAdd):
                return operand
            if isinstance(expr.op, gast.USub) and isinstance(operand, gast.Constant) \
                    and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
                return gast.copy_location(const(-operand.value), expr)
            node = gast.UnaryOp(op=expr.op, operand=operand)
            return gast.copy_location(node, expr)
        if isinstance(expr, gast.Compare):
            return self.compare(expr, out)
        if isinstance(expr, gast.BoolOp):
            return self.boolop(expr, out)
        if isinstance(expr, gast.IfExp):
            test = self.atom(expr.test, out)
            tmp = self.fresh("t")
            self.locals.add(tmp)
            body, orelse = [], []
            body.append(assign(tmp, self.rhs(expr.body, body), expr))
            orelse.append(assign(tmp, self.rhs(expr.orelse, orelse), expr))
            node = gast.If(test=test, body=body, orelse=orelse)
            out.append(gast.copy_location(node, expr))
            return name(tmp)
        if isinstance(expr, gast.Call):
            return self.call(expr, out)
        if isinstance(expr, gast.Subscript):
            if isinstance(expr.value, gast.Attribute) and self.resolve(expr.value) in (np.r_, np.c_) \
                    and _joins_values(expr.slice):
                return self.rhs(self.index_trick(expr), out)
            value = self.atom(expr.value, out)
            node = gast.Subscript(value=value, slice=self.index(expr.slice, out), ctx=gast.Load())
            return gast.copy_location(node, expr)
        if isinstance(expr, gast.Attribute):
            return self.attribute(expr, out)
        if isinstance(expr, (gast.Tuple, gast.List)):
            # a list display is read as a tuple (s2sad types both so): one kind of value for Numba,
            # which would make a list of it (its parts taped in a loop: a tuple placeholder)
            node = gast.Tuple(elts=[self.atom(e, out) for e in expr.elts], ctx=gast.Load())
            return gast.copy_location(node, expr)
        raise self.error(f"the expression `{type(expr).__name__}`", expr)

    def index_trick(self, expr):
        """`np.r_[a, b]` -> `np.concatenate((np.atleast_1d(a), np.atleast_1d(b)), axis=0)`;
        `np.c_[a, b]` -> the same of `np.reshape(a, (np.shape(a)[0], -1))` (a vector as a column,
        a matrix as it is) along the last axis. With a range (`np.r_[0:5]`) or a string directive
        it stays as written, a value with no derivative (analysis refuses it where one would flow)."""
        items = expr.slice.elts if isinstance(expr.slice, gast.Tuple) else [expr.slice]
        rows = self.resolve(expr.value) is np.r_

        def np_call(attr, args, keywords=()):  # NumPy as the user's code names it (np, numpy, ...)
            func = gast.Attribute(value=copy.deepcopy(expr.value.value), attr=attr, ctx=gast.Load())
            return gast.copy_location(gast.Call(func=func, args=args, keywords=list(keywords)), expr)

        def part(e):
            if rows:
                return np_call("atleast_1d", [e])
            first = gast.Subscript(value=np_call("shape", [e]), slice=const(0), ctx=gast.Load())
            return np_call("reshape", [e, gast.Tuple(elts=[first, const(-1)], ctx=gast.Load())])
        parts = gast.Tuple(elts=[part(e) for e in items], ctx=gast.Load())
        return np_call("concatenate", [parts], [gast.keyword(arg="axis", value=const(0 if rows else -1))])

    def logistic_argument(self, expr):
        """x where `expr` is `1 / (1 + exp(-x))` (either exp, either order of the sum, 1 or 1.0);
        for `1 / (1 + exp(e))`, -e. Else None.

        That is the logistic sigmoid, spelled out: s2sad differentiates it as one function
        (runtime.logistic), whose derivative ans * (1 - ans) needs no exp(-x) kept for the
        reverse sweep and stays finite where exp(-x) overflows."""
        if not (isinstance(expr.op, gast.Div) and _is_one(expr.left)
                and isinstance(expr.right, gast.BinOp) and isinstance(expr.right.op, gast.Add)):
            return None
        a, b = expr.right.left, expr.right.right
        exp = b if _is_one(a) else a if _is_one(b) else None
        if not (isinstance(exp, gast.Call) and len(exp.args) == 1 and not exp.keywords
                and not isinstance(exp.args[0], gast.Starred) and self.resolve(exp.func) in (np.exp, math.exp)):
            return None
        e = exp.args[0]
        if isinstance(e, gast.UnaryOp) and isinstance(e.op, gast.USub):
            return e.operand
        return gast.copy_location(gast.UnaryOp(op=gast.USub(), operand=e), e)

    def global_value(self, expr):
        obj = self.resolve(expr)
        if obj is _MISSING:
            raise self.error(f"the undefined name `{_spell(expr)}`", expr, "define it before calling")
        spelled = canonical_name(obj) if callable(obj) else None
        if isinstance(obj, (int, float, bool)) and not isinstance(obj, np.ndarray):
            return gast.copy_location(const(obj), expr)
        node = _parse_expr(spelled) if spelled else expr
        meta.put(node, meta.Binding(obj, is_global=True))
        return gast.copy_location(node, expr)

    def attribute(self, expr, out):
        obj = self.resolve(expr)
        base = self.resolve(expr.value) if obj is None else None
        if base is not None and base is not _MISSING and getattr(base, expr.attr, _MISSING) is None:
            return gast.copy_location(const(None), expr)   # a global that is None: np.newaxis
        if obj is not None:  # a global: np.pi, math.e, module.CONSTANT
            if obj is _MISSING:
                raise self.error(f"the undefined attribute `{_spell(expr)}`", expr)
            return self.global_value(expr)
        value = self.atom(expr.value, out)
        if expr.attr in ATTRIBUTE_CALLS:
            return make_call(canonical_name(ATTRIBUTE_CALLS[expr.attr]), [value], ATTRIBUTE_CALLS[expr.attr], expr)
        if expr.attr in ATTRIBUTES:
            node = gast.Attribute(value=value, attr=expr.attr, ctx=gast.Load())
            return gast.copy_location(node, expr)
        raise self.error(f"the attribute `.{expr.attr}`", expr,
                         "s2sad knows ndarray attributes .shape .size .ndim .T; call a NumPy function instead")

    def index(self, node, out):
        if isinstance(node, gast.Tuple):
            return gast.Tuple(elts=[self.index(e, out) for e in node.elts], ctx=gast.Load())
        if isinstance(node, gast.Slice):
            parts = [None if p is None else self.atom(p, out) for p in (node.lower, node.upper, node.step)]
            return gast.Slice(lower=parts[0], upper=parts[1], step=parts[2])
        if isinstance(node, gast.Constant):
            return node
        if isinstance(node, gast.List):   # an index list (not a tuple of indices, one per axis)
            return gast.List(elts=[self.atom(e, out) for e in node.elts], ctx=gast.Load())
        return self.atom(node, out)

    def compare(self, expr, out):
        left = self.atom(expr.left, out)
        pieces = []
        for op, right in zip(expr.ops, expr.comparators):
            right = self.atom(right, out)
            pieces.append(gast.Compare(left=left, ops=[op], comparators=[right]))
            left = right
        if len(pieces) == 1:
            return gast.copy_location(pieces[0], expr)
        node = gast.BoolOp(op=gast.And(), values=pieces)
        gast.copy_location(node, expr)
        for p in pieces:
            gast.copy_location(p, expr)
        return self.boolop(node, out)

    def boolop(self, expr, out):
        """`a and b` evaluates b only when a is true: spelled with an `if`."""
        if all(is_atom(v) for v in expr.values):  # atoms have no effects: no need to short-circuit
            node = gast.BoolOp(op=expr.op, values=[self.atom(v, out) for v in expr.values])
            return gast.copy_location(node, expr)
        tmp = self.fresh("t")
        self.locals.add(tmp)
        first = self.atom(expr.values[0], out)
        out.append(assign(tmp, first, expr))
        for value in expr.values[1:]:
            body = []
            body.append(assign(tmp, self.rhs(value, body), expr))
            # the `if` tests a flag of its own, not `tmp`, which its body assigns: the reverse
            # sweep decides which branch to undo by the test's value after the `if`
            flag = self.fresh("t")
            more = name(tmp) if isinstance(expr.op, gast.And) else gast.UnaryOp(op=gast.Not(), operand=name(tmp))
            out.append(assign(flag, more, expr))
            node = gast.If(test=name(flag), body=body, orelse=[])
            out.append(gast.copy_location(node, expr))
        return name(tmp)

    def call(self, expr, out):
        func = expr.func
        if isinstance(func, gast.Attribute) and self.resolve(func) is None:
            # a method on a local value: x.sum(axis=0) -> np.sum(x, axis=0)
            method = METHODS.get(func.attr)
            if func.attr == "astype":
                receiver = self.atom(func.value, out)
                args = [self.atom(a, out) for a in expr.args]
                return make_call("astype", [receiver] + args, "astype", expr)
            if method is None:
                raise self.error(f"the method `.{func.attr}()`", expr,
                                 "call the NumPy function instead, e.g. `np.sum(x)`")
            if method in DEFINITIONS:   # x.var(axis=0): the definition's call, x its first argument
                call = gast.Call(func=gast.Attribute(value=gast.Name(id="np", ctx=gast.Load(), annotation=None,
                                                                   type_comment=None), attr=func.attr, ctx=gast.Load()),
                                 args=[func.value] + expr.args, keywords=expr.keywords)
                return self.defined_call(DEFINITIONS[method], gast.copy_location(call, expr), out)
            receiver = self.atom(func.value, out)
            args = [receiver] + [self.atom(a, out) for a in expr.args]
            if func.attr in ("reshape", "transpose") and len(expr.args) > 1:
                args = [receiver, gast.Tuple(elts=args[1:], ctx=gast.Load())]
                tmp = self.fresh("t")
                out.append(assign(tmp, args[1], expr))
                args[1] = name(tmp)
            keywords = [gast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in expr.keywords]
            return self.reduction(make_call(canonical_name(method), args, method, expr, keywords), out, expr)
        obj = self.transform_object(func) if isinstance(func, gast.Call) else self.resolve(func)
        if obj is None:
            raise self.error("a call of a local variable", expr, "call functions by their global name")
        if obj is _MISSING:
            raise self.error(f"a call of the undefined name `{_spell(func)}`", expr)
        if any(isinstance(a, gast.Starred) for a in expr.args):
            raise self.error("`*args` in a call", expr, "pass the arguments one by one")
        args = [self.atom(a, out) for a in expr.args]
        keywords = [gast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in expr.keywords]
        spelled = canonical_name(obj)
        if obj in DEFINITIONS:
            return self.defined_call(DEFINITIONS[obj], expr, out, args, keywords)
        if obj in (builtins.max, builtins.min) and len(args) == 1 and not keywords:
            # max(v) of a vector: its largest element, as np.max(v)
            reduce = np.max if obj is builtins.max else np.min
            return self.reduction(make_call(f"np.{obj.__name__}", args, reduce, expr), out, expr)
        if obj in (builtins.max, builtins.min) and len(args) > 2 and not keywords:
            # max(a, b, c) -> max(max(a, b), c): the rule takes two
            for _ in range(len(args) - 2):
                tmp = self.fresh("t")
                self.locals.add(tmp)
                out.append(assign(tmp, make_call(obj.__name__, args[:2], obj, expr), expr))
                args = [name(tmp)] + args[2:]
        if obj in (zip, enumerate, reversed):   # the headers of for loops are read apart (range_of)
            raise self.error(f"`{obj.__name__}(...)` other than as a for loop's sequence", expr,
                             "loop over it directly (`for i, (a, b) in enumerate(zip(xs, ys)):`, `for a in "
                             "reversed(xs):`); zip within zip is not supported")
        if obj is custom.jvp_transpose:   # the reverse rule of a custom_jvp function, differentiated again
            rule = _spell(expr.args[0]) if expr.args else "its rule"
            raise self.error(f"a second derivative through a custom_jvp function (its rule `{rule}`): s2sad "
                             "transposes that rule to get the first one, which it cannot differentiate again",
                             expr, "define the function's derivative with s2sad.custom_vjp instead (s2sad "
                             "differentiates its backward rule again), or drop the custom rule")
        if _is_jvp(obj):  # jvp(f, (x, y), (dx, dy)) inside differentiated code: one call of JvpOf(f)
            return self.nested_jvp(expr, out)
        if _is_transformed(obj):  # nested AD: grad(f)(x) inside the function being differentiated
            args = self.bind(obj.fun, args, keywords, expr)  # generated code takes every argument
            return make_call(_spell(func) if not isinstance(func, gast.Call) else self.name_object(obj),
                         args, obj, expr, nested=True)
        if hasattr(obj, "primal_name") and _has_rule(obj):  # custom_vjp/custom_jvp: call the undecorated function
            return make_call(obj.primal_name, args, obj, expr, keywords)
        if spelled is not None or not inspect.isfunction(obj) or _has_rule(obj):
            if spelled is None:
                spelled = _spell(func)
            return self.reduction(make_call(spelled, args, obj, expr, keywords), out, expr)
        positional = self.bind(obj, args, keywords, expr)
        return make_call(_spell(func), positional, obj, expr, user=True)

    def defined_call(self, how, expr, out, args=None, keywords=None):
        """A call of a NumPy function s2sad differentiates through its definition (definitions.py):
        a call of the definition, as of a helper of the user's. `how` (a Definition) says which
        definition the call as written chooses: along an axis only where it gives an axis other
        than the default one."""
        if args is None:
            args = [self.atom(a, out) for a in expr.args]
            keywords = [gast.keyword(arg=k.arg, value=self.atom(k.value, out)) for k in expr.keywords]
        at = how.axis_at
        axis = None if at is None else _axis_argument(args, keywords, at)
        constant = isinstance(axis, gast.Constant)
        if axis is None or constant and axis.value == how.default_axis:
            definition = how.plain
        elif constant and axis.value is None and how.flat is not None:
            definition = how.flat
        else:
            definition = how.along
        if definition is not how.along and at is not None:
            args = args[:at] + args[at + 1:]
            keywords = [k for k in keywords if k.arg != "axis"]
        return make_call(definition.__name__, self.bind(definition, args, keywords, expr), definition, expr, user=True)

    def reduction(self, call, out, expr):
        """A reduction (np.sum, np.max, ...) spelled as its rule takes it: one integer axis at most."""
        b = meta.binding(call)
        if (b.obj if b is not None else None) not in _REDUCTIONS:
            return call
        return self.kept_dims(self.axes_one_by_one(call, out, expr), out, expr)

    def axes_one_by_one(self, call, out, expr):
        """`np.sum(x, axis=(0, 2))` -> `np.sum(np.sum(x, axis=2), axis=0)`: the rules reduce one axis
        (a max of maxima, a mean of means of equal counts, ...). The last axis goes first, so the
        others keep their numbers (for negative ones, the first)."""
        # the axis as written (a tuple display is hoisted into a temporary name in `call`); a
        # method call's arguments (`x.sum(axis=...)`) start one later in `call` than in `expr`
        method = len(expr.args) < len(call.args)
        axis = _axis_argument(expr.args, expr.keywords, 0 if method else 1)
        if not isinstance(axis, gast.Tuple):
            return call
        axes = [_int_constant(e) for e in axis.elts]
        others = [k for k in call.keywords if k.arg not in ("axis", "keepdims")]
        if None in axes or not axes or others or len(call.args) > 2 \
                or not (all(a >= 0 for a in axes) or all(a < 0 for a in axes)):
            raise self.error("a reduction over a tuple of axes other than integers of one sign", expr,
                             "reduce one axis at a time: `np.sum(np.sum(x, axis=2), axis=0)`")
        keep = [k for k in call.keywords if k.arg == "keepdims"]
        if keep and not (isinstance(keep[0].value, gast.Constant) and keep[0].value.value is False):
            raise self.error("`keepdims` with a tuple of axes", expr,
                             "reduce one axis at a time and put it back: `np.expand_dims(np.sum(x, axis=1), 1)`")
        x = call.args[0]
        order = sorted(axes, reverse=axes[0] >= 0)
        for a in order[:-1]:
            tmp = self.fresh("t")
            self.locals.add(tmp)
            out.append(assign(tmp, make_call(_spell(call.func), [x, const(a)], meta.binding(call).obj, expr), expr))
            x = name(tmp)
        return make_call(_spell(call.func), [x, const(order[-1])], meta.binding(call).obj, expr)

    def kept_dims(self, call, out, expr):
        """`np.sum(x, axis=a, keepdims=True)` -> `np.expand_dims(np.sum(x, axis=a), a)`: the reductions'
        rules take no keepdims (softmax code keeps the axis to broadcast against x)."""
        keep = [k for k in call.keywords if k.arg == "keepdims"]
        if not keep:
            return call
        call.keywords = [k for k in call.keywords if k.arg != "keepdims"]
        value = keep[0].value
        if isinstance(value, gast.Constant) and value.value is False:
            return call
        axis = _axis_argument(call.args, call.keywords, 1)
        if not (isinstance(value, gast.Constant) and value.value is True) or axis is None \
                or not (isinstance(axis, gast.Name) or isinstance(axis, gast.Constant) and type(axis.value) is int):
            raise self.error("`keepdims` other than `keepdims=True` with one integer axis", expr,
                             "reduce along one axis and put it back: `np.expand_dims(np.sum(x, axis=1), 1)`")
        tmp = self.fresh("t")
        self.locals.add(tmp)
        out.append(assign(tmp, call, expr))
        return make_call("np.expand_dims", [name(tmp), copy.deepcopy(axis)], np.expand_dims, expr)

    def bind(self, fn, args, keywords, expr):
        """The atoms of a call of a user function, keywords and defaults bound to positions."""
        if isinstance(fn, np.ufunc):   # grad(np.tanh)(x): the inputs alone (not `out=`, `where=`, ...)
            if len(args) != fn.nin or keywords:
                raise self.error(f"a call of the derivative of `np.{fn.__name__}` with other than its "
                                 f"{fn.nin} input(s)", expr)
            return list(args)
        try:
            bound = inspect.signature(fn).bind(*args, **{k.arg: k.value for k in keywords})
        except TypeError as err:
            raise self.error(f"a call of `{fn.__name__}` that does not match its signature ({err})", expr) from None
        bound.apply_defaults()
        return [v if isinstance(v, gast.AST) else self.default_atom(v, expr) for v in bound.arguments.values()]

    def nested_jvp(self, expr, out):
        if len(expr.args) != 3 or expr.keywords or not all(isinstance(a, (gast.Tuple, gast.List))
                                                          for a in expr.args[1:]):
            raise self.error("a `jvp` call inside differentiated code not of the form "
                             "`jvp(f, (x, ...), (dx, ...))`", expr, "pass the primals and tangents as tuples")
        fun = self.resolve(expr.args[0])
        if fun is None or fun is _MISSING or not callable(fun):
            raise self.error("`jvp` of a local value", expr, "differentiate a function defined at module level")
        primals, tangents = expr.args[1].elts, expr.args[2].elts
        if len(primals) != len(tangents):
            raise self.error("`jvp` with different numbers of primals and tangents", expr)
        obj = nested.jvp_of(fun)
        args = [self.atom(a, out) for a in primals + tangents]
        return make_call(self.name_object(obj), args, obj, expr, nested=True)

    def transform_object(self, call):
        """`s2sad.grad(f, argnums=1)` called inline: build the transformed function now."""
        ctor = self.resolve(call.func)
        if not nested.is_transform(ctor, "grad", "value_and_grad", "jacfwd", "jacrev"):
            raise self.error("a call of a call's result", call, "call functions by their global name")
        def value(node):
            if isinstance(node, gast.Constant):
                return node.value
            if isinstance(node, gast.Tuple) and all(isinstance(e, gast.Constant) for e in node.elts):
                return tuple(e.value for e in node.elts)
            obj = self.resolve(node)
            if obj is None or obj is _MISSING:
                raise self.error(f"`{_spell(call.func)}` of a local value", call,
                                 "differentiate a function defined at module level")
            return obj
        return ctor(*[value(a) for a in call.args], **{k.arg: value(k.value) for k in call.keywords})

    def name_object(self, obj):
        """A name for an object generated code calls (registered where generated modules see it)."""
        stem = getattr(getattr(obj, "fun", None), "__name__", "f")
        stem = f"{stem if stem.isidentifier() else 'f'}_{obj.kind}"
        return custom.register_name(stem, obj, avoid=self.ns)

    def default_atom(self, value, like):
        if isinstance(value, (int, float, bool, str)) or value is None:
            return const(value)
        raise self.error(f"a default argument value of type {type(value).__name__}", like,
                         "pass the argument explicitly")


_MISSING = object()


def _is_transformed(obj):
    return nested.is_transformed(obj)


def _is_jvp(obj):
    return nested.is_transform(obj, "jvp")


def _has_rule(obj):
    return rules.lookup(obj) is not None or rules.nondiff(obj) is not None


def _nested_container(value):
    """A returned literal with a dict or list in it: returned as a flat tuple of leaves.

    Tuples alone (`return out, (a_bar, b_bar)`, as generated code does) stay nested tuples."""
    def has_dict_or_list(node):
        if isinstance(node, (gast.Dict, gast.List)):
            return True
        return isinstance(node, gast.Tuple) and any(has_dict_or_list(e) for e in node.elts)
    return has_dict_or_list(value)


def _is_dropped(s):
    if isinstance(s, gast.Expr):
        return True  # docstrings, print(): the fence has refused everything else
    return isinstance(s, gast.Pass)


def _always_returns(body):
    """Does every path through `body` end in a `return`?"""
    for s in body:
        if isinstance(s, gast.Return):
            return True
        if isinstance(s, gast.If) and _always_returns(s.body) and _always_returns(s.orelse):
            return True
        if isinstance(s, gast.While) and isinstance(s.test, gast.Constant) and s.test.value is True \
                and not any(isinstance(n, gast.Break) for n in gast.walk(s)):
            return True  # `while True:` left by a return alone
    return False


def _returns_at_tail_only(body):
    if not isinstance(body[-1], gast.Return):
        return False
    return not any(isinstance(n, gast.Return) for s in body[:-1] for n in gast.walk(s))


def _store(array):
    node = gast.Name(id=array.id, ctx=gast.Store(), annotation=None, type_comment=None)
    return node


def _is_one(node):
    return isinstance(node, gast.Constant) and type(node.value) in (int, float) and node.value == 1


def _binop(left, op, right, like):
    node = gast.BinOp(left=left, op=op, right=right)
    return gast.copy_location(node, like)


_REDUCTIONS = (np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod)


def _int_constant(node):
    """The value of an integer literal, `2` or `-2`, else None."""
    if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub):
        value = _int_constant(node.operand)
        return None if value is None else -value
    return node.value if isinstance(node, gast.Constant) and type(node.value) is int else None


def _assigns(stmts, target):
    """Do `stmts` (at any depth) assign the name `target`?"""
    return any(isinstance(n, gast.Name) and n.id == target and isinstance(n.ctx, gast.Store)
               for s in stmts for n in gast.walk(s))


def _axis_argument(args, keywords, at):
    """A call's `axis` argument, positional at `at` or a keyword; None where it is not given."""
    return args[at] if len(args) > at else next((k.value for k in keywords if k.arg == "axis"), None)


def _joins_values(index):
    """Is `np.r_[index]` a join of values (no range, no string directive)?"""
    items = index.elts if isinstance(index, gast.Tuple) else [index]
    return not any(isinstance(e, gast.Slice) or isinstance(e, gast.Constant) and isinstance(e.value, str)
                   for e in items)


def make_call(spelled, args, obj, like=None, keywords=(), user=False, nested=False):
    """A call of `obj`, spelled `spelled`: a user function's (`user`), a transformed function's (`nested`)."""
    node = gast.Call(func=_parse_expr(spelled), args=list(args), keywords=list(keywords))
    meta.put(node, meta.Binding(obj, user=user, nested=nested))
    if like is not None:
        gast.copy_location(node, like)
    return node


def _parse_expr(text):
    return gast.parse(text, mode="eval").body if hasattr(gast, "parse") else None


def _spell(expr):
    if isinstance(expr, gast.Name):
        return expr.id
    if isinstance(expr, gast.Attribute):
        return _spell(expr.value) + "." + expr.attr
    return "<expression>"


def normalize(parsed):
    return Normalizer(parsed).run()


def function_types():
    return types.FunctionType
