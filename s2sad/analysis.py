"""Analysis of normalized code: types, activity, and where names live.

In: a normalized FunctionDef and the abstract types of its arguments.
Out: `Analysis` with
  types    name -> Ty, from the argument signature (flow-insensitive join)
  active   names that depend on the differentiated inputs (varied) and
           reach the output (useful); only these get adjoints or tangents
  assigns  name -> number of assignment statements, and whether one is in a loop
  scope    name -> the innermost block holding every mention of the name
Next stage: `reverse` or `forward`.
"""

import inspect

import gast
import numpy as np

from . import rules, runtime
from .errors import NonDifferentiableError, UnsupportedSyntaxError
from .ir import meta
from .ir import types as T
from .normalize import DerivedNames, assign, copy_ir, make_call, name
from .rules import definitions
from .rules.definitions import DEFINITIONS, INTEGER_ARGUMENTS

_BINOPS = {gast.Add: "add", gast.Sub: "sub", gast.Mult: "mul", gast.Div: "truediv", gast.Pow: "pow",
           gast.Mod: "mod", gast.FloorDiv: "floordiv", gast.MatMult: "matmul"}


def binop_func(op):
    import operator
    return getattr(operator, _BINOPS[type(op)])


def call_func(call):
    """The object a call calls (its `meta.Binding`), else None."""
    b = meta.binding(call)
    return b.obj if b is not None and not b.is_global else None


def is_user_call(node):
    b = meta.binding(node) if isinstance(node, gast.Call) else None
    return b is not None and b.user


def is_nested_call(node):
    """A call of a transformed function (`grad(f)(x)`) inside differentiated code."""
    b = meta.binding(node) if isinstance(node, gast.Call) else None
    return b is not None and b.nested


def names_in(node):
    return [n.id for n in gast.walk(node) if isinstance(n, gast.Name) and not meta.is_global(n)]


def atom_name(node):
    return node.id if isinstance(node, gast.Name) and not meta.is_global(node) else None


class Analysis:
    def __init__(self, fn, arg_types, wrt, compiler, aux=False):
        self.aux = aux  # the function returns (value, auxiliary data): only the value is differentiated
        self.fn = fn
        self.compiler = compiler  # for the result types of calls to user functions
        self.params = [a.id for a in fn.args.args]
        self.types = dict(zip(self.params, arg_types))
        self.wrt = set(wrt)
        self.assign_count, self.assigned_in_loop = {}, set()
        self.scope = {}
        self._count_assignments(fn.body, False)
        self._scopes()
        self._infer_types()
        self.active = self._activity()
        overflow = self.integer_products_as_data()
        if overflow and compiler is not None and hasattr(compiler, "not_for_numba"):
            compiler.not_for_numba.append(overflow)

    # ---- assignments and scopes ---------------------------------------
    def _count_assignments(self, body, in_loop):
        for s in body:
            targets = []
            if isinstance(s, gast.Assign):
                t = s.targets[0]
                targets = [e.id for e in t.elts] if isinstance(t, gast.Tuple) else \
                          [t.id] if isinstance(t, gast.Name) else []
            elif isinstance(s, gast.For):
                targets = [s.target.id]
            for v in targets:
                self.assign_count[v] = self.assign_count.get(v, 0) + 1
                if in_loop or isinstance(s, gast.For):
                    self.assigned_in_loop.add(v)
            if isinstance(s, gast.If):
                self._count_assignments(s.body, in_loop)
                self._count_assignments(s.orelse, in_loop)
            elif isinstance(s, (gast.For, gast.While)):
                self._count_assignments(s.body, True)

    def overwritten(self, v):
        """May `v` be assigned while an older value of it is still needed?"""
        return v in self.params or self.assign_count.get(v, 0) > 1 or v in self.assigned_in_loop

    def _scopes(self):
        """Innermost block (by path of block ids) that holds every mention of each name."""
        paths = {}

        def visit(body, path):
            for s in body:
                here = []
                for node in gast.walk(s) if not isinstance(s, (gast.If, gast.For, gast.While)) else \
                        [n for part in _headers(s) for n in gast.walk(part)]:
                    if isinstance(node, gast.Name):
                        here.append(node.id)
                for v in here:
                    paths[v] = path if v not in paths else _common(paths[v], path)
                if isinstance(s, gast.If):
                    visit(s.body, path + (id(s.body),))
                    visit(s.orelse, path + (id(s.orelse),))
                elif isinstance(s, (gast.For, gast.While)):
                    visit(s.body, path + (id(s.body),))
        for p in self.params:
            paths[p] = ()
        visit(self.fn.body, ())
        self.scope = {v: (p[-1] if p else None) for v, p in paths.items()}

    # ---- types ------------------------------------------------------------
    def _infer_types(self):
        for _ in range(8):
            before = dict(self.types)
            self._types_block(self.fn.body)
            if before == self.types:
                break

    def _set(self, v, ty):
        self.types[v] = T.join(self.types.get(v), ty)

    def _types_block(self, body):
        for s in body:
            if isinstance(s, gast.Assign):
                t = s.targets[0]
                if isinstance(t, gast.Name):
                    self._set(t.id, self.type_of(s.value))
                elif isinstance(t, gast.Tuple):
                    ty = self.type_of(s.value)
                    for i, e in enumerate(t.elts):
                        self._set(e.id, ty.items[i] if ty.kind == "tuple" and i < len(ty.items) else T.UNKNOWN)
            elif isinstance(s, gast.If):
                self._types_block(s.body)
                self._types_block(s.orelse)
            elif isinstance(s, gast.For):
                self._set(s.target.id, T.INT)
                self._types_block(s.body)
            elif isinstance(s, gast.While):
                self._types_block(s.body)

    def type_of(self, node):
        if isinstance(node, gast.Constant):
            return T.of_value(node.value)
        if meta.is_global(node):
            return T.of_value(meta.binding(node).obj)
        if isinstance(node, gast.Name):
            return self.types.get(node.id, T.UNKNOWN) if node.id in self.types else T.UNKNOWN
        if isinstance(node, gast.BinOp):
            rule = rules.lookup(binop_func(node.op))
            args = {"x": self.type_of(node.left), "y": self.type_of(node.right)}
            if isinstance(node.op, (gast.FloorDiv, gast.Mod)) and all(a.kind == "i" for a in args.values()):
                return T.broadcast(*args.values())
            if isinstance(node.op, gast.Pow) and all(a.kind == "i" for a in args.values()):
                return T.broadcast(*args.values())
            return rule.result(args, {})
        if isinstance(node, gast.UnaryOp):
            if isinstance(node.op, gast.Not):
                return T.BOOL
            return self.type_of(node.operand)
        if isinstance(node, (gast.Compare, gast.BoolOp)):
            tys = [self.type_of(v) for v in (node.values if isinstance(node, gast.BoolOp)
                                             else [node.left] + node.comparators)]
            return T.broadcast(*tys, kind="b") if all(t.numeric for t in tys) else T.BOOL
        if isinstance(node, (gast.Tuple, gast.List)):
            return T.tuple_of(self.type_of(e) for e in node.elts)
        if isinstance(node, gast.Attribute):
            base = self.type_of(node.value)
            if node.attr == "shape":
                return T.tuple_of([T.INT] * base.ndim) if base.numeric else T.UNKNOWN
            if node.attr in ("size", "ndim"):
                return T.INT
            return T.OBJ
        if isinstance(node, gast.Subscript):
            return self._subscript_type(self.type_of(node.value), node.slice)
        if isinstance(node, gast.Call):
            return self._call_type(node)
        return T.UNKNOWN

    def _subscript_type(self, base, index):
        if base.kind == "tuple":
            if isinstance(index, gast.Constant) and isinstance(index.value, int):
                return base.items[index.value] if -len(base.items) <= index.value < len(base.items) else T.UNKNOWN
            items = set(base.items)
            return items.pop() if len(items) == 1 else T.UNKNOWN
        if not base.is_array:
            return T.UNKNOWN
        parts = index.elts if isinstance(index, gast.Tuple) else [index]
        ndim = base.ndim
        for p in parts:
            if isinstance(p, gast.Slice) or isinstance(p, gast.Constant) and p.value is Ellipsis:
                continue    # keeps its axes (`...` all those the other parts leave)
            if isinstance(p, gast.Constant) and p.value is None:
                ndim += 1
                continue
            t = self.type_of(p)
            if t.is_scalar:
                ndim -= 1
            elif t.is_array:
                if t.kind == "b":
                    ndim = ndim - t.ndim + 1
                else:
                    ndim = ndim - 1 + t.ndim
            else:
                return T.UNKNOWN
        return T.array(base.kind, ndim)

    def _call_type(self, node):
        func = call_func(node)
        if is_nested_call(node):
            types = [self.type_of(a) for a in node.args]
            if func.kind == "jvp":  # (out, tangent_out) of f at the primals
                out = self.compiler.result_type(func.fun, types[:len(types) // 2])
                return T.tuple_of([out, out])
            return nested_result_type(func, types)
        rule = rules.lookup(func)
        if rule is not None and getattr(rule, "primal", None) is not None:  # custom rules: the primal's type
            return self.compiler.result_type(rule.primal, [self.type_of(a) for a in node.args])
        if is_user_call(node):
            return self.compiler.result_type(func, [self.type_of(a) for a in node.args])
        rule = rules.lookup(func)
        table = rule.result if rule else rules.nondiff(func)
        if table is None:
            return T.UNKNOWN
        params = rule.params if rule else tuple(f"a{i}" for i in range(len(node.args)))
        if not rule and node.args:
            params = ("x", "shape")[:1] + params[1:]  # nondiff tables name their first argument x or shape
        args, consts = {}, {}
        names = list(params)
        for i, a in enumerate(node.args):
            key = names[i] if i < len(names) else f"a{i}"
            args[key] = self.type_of(a)
            if isinstance(a, gast.Constant):
                consts[key] = a.value
        for kw in node.keywords:
            args[kw.arg] = self.type_of(kw.value)
            if isinstance(kw.value, gast.Constant):
                consts[kw.arg] = kw.value.value
        if rule:
            for k, v in rule.defaults.items():
                args.setdefault(k, T.of_value(v))
                consts.setdefault(k, v)
        elif "shape" not in args and "x" in args:
            args["shape"] = args["x"]
        try:
            return table(args, consts)
        except (KeyError, IndexError, AttributeError, TypeError):
            return T.UNKNOWN

    # ---- activity -----------------------------------------------------------
    def differentiable_operands(self, rhs):
        """Names whose derivative flows into the value of `rhs`."""
        if isinstance(rhs, gast.Name):
            return [rhs.id] if atom_name(rhs) else []
        if isinstance(rhs, gast.BinOp):
            return [n for n in (atom_name(rhs.left), atom_name(rhs.right)) if n]
        if isinstance(rhs, gast.UnaryOp):
            return [] if isinstance(rhs.op, gast.Not) else [n for n in [atom_name(rhs.operand)] if n]
        if isinstance(rhs, (gast.Tuple, gast.List)):
            return [n for n in map(atom_name, rhs.elts) if n]
        if isinstance(rhs, gast.Subscript):
            return [n for n in [atom_name(rhs.value)] if n]
        if isinstance(rhs, gast.Call):
            if is_user_call(rhs) or is_nested_call(rhs):
                return [n for n in map(atom_name, rhs.args) if n]
            rule = rules.lookup(call_func(rhs))
            if rule is None:
                return []
            bound = rules.bind(rule, rhs)
            params = list(rule.adjoint) + [p for p in rule.tangent if p not in rule.adjoint]
            return [atom_name(bound[p]) for p in params if p in bound and atom_name(bound[p])]
        return []

    def unknown_calls(self, rhs):
        """A call with no rule, not a user function and not declared non-differentiable."""
        if isinstance(rhs, gast.Call) and not is_user_call(rhs) and not is_nested_call(rhs):
            func = call_func(rhs)
            if rules.lookup(func) is None and rules.nondiff(func) is None:
                return True
        return False

    def _activity(self):
        assigns = list(_assignments(self.fn.body))
        tapes = {targets[0] for targets, _, stmt in assigns if isinstance(stmt, gast.Expr)}  # pushed onto
        def operands(rhs):
            # `v = pop(tape, like)` reads the tape; `push(tape, v)` appears as an assignment `tape = v`:
            # the tape stands for every value pushed, so activity flows from a push to every pop of it
            if _is_tape_call(rhs, runtime.pop) or _is_tape_call(rhs, runtime.tape_get, 3):
                return [rhs.args[0].id]
            return self.differentiable_operands(rhs)
        varied = {p for p in self.wrt}
        changed = True
        while changed:
            changed = False
            for target_names, rhs, _ in assigns:
                if any(n in varied for n in operands(rhs)) or \
                        (isinstance(rhs, gast.Call) and self.unknown_calls(rhs)
                         and any(n in varied for n in names_in(rhs))):
                    for v in target_names:
                        if v not in varied and (self._can_carry(v) or v in tapes):
                            varied.add(v)
                            changed = True
        ret = self.fn.body[-1].value
        if self.aux and isinstance(ret, gast.Tuple):
            ret = ret.elts[0]
        useful = set(names_in(ret))
        changed = True
        while changed:
            changed = False
            for target_names, rhs, _ in assigns:
                if any(v in useful for v in target_names):
                    for n in operands(rhs) + (names_in(rhs) if self.unknown_calls(rhs) else []):
                        if n not in useful:
                            useful.add(n)
                            changed = True
        self.varied, self.useful = varied, useful
        return {v for v in varied & useful if self._can_carry(v)}

    def integer_products_as_data(self):
        """Why Numba would compute a wrong number here, or None: a product or power of integer
        variables (`n * m`, `n ** k`) that reaches a float value or the result. Numba computes it
        in 64 bits, which wrap around where Python's integers grow; code that only indexes or
        counts with such products is not affected (an index that large fails either way)."""
        def int_scalar(node):
            ty = self.type_of(node)
            return ty.kind == "i" and ty.ndim == 0

        grown, line = set(), None
        for targets, rhs, stmt in _assignments(self.fn.body):
            if not all(self.types.get(t, T.UNKNOWN).kind == "i" for t in targets) or len(targets) != 1:
                continue
            if isinstance(rhs, gast.BinOp) and isinstance(rhs.op, (gast.Mult, gast.Pow, gast.LShift)) \
                    and int_scalar(rhs.left) and int_scalar(rhs.right) and not _small_growth(rhs):
                grown.add(targets[0])
                line = line or getattr(stmt, "lineno", None)
            elif any(n in grown for n in names_in(rhs)) and int_scalar(gast.Name(id=targets[0], ctx=gast.Load(),
                                                                                  annotation=None, type_comment=None)):
                grown.add(targets[0])  # (an array of such numbers, np.arange(n * m), is as large: it fails first)
        if not grown:
            return None
        ret = self.fn.body[-1].value
        data = [n for n in names_in(ret) if n in grown] if ret is not None else []
        for targets, rhs, stmt in _assignments(self.fn.body):
            if data:
                break
            if isinstance(rhs, gast.Subscript):
                continue  # an index
            if any(self.types.get(t, T.UNKNOWN).kind in ("f", "?") for t in targets):
                data = [n for n in names_in(rhs) if n in grown]
        if not data:
            return None
        return (f"{self.fn.name} (line {line}) multiplies or raises integer variables and uses the result as a "
                "number: Numba computes it in 64 bits, wrapping around where Python's integers grow, so the code "
                "runs as Python (convert a factor to float, `float(n) * m`, to compile it)")

    def dropped_derivatives(self, rhs, targets):
        """The differentiated names `rhs` reads but passes no derivative from, where the value it
        gives a target flows to the result and can carry one: the derivative would be dropped."""
        if not any(t in self.useful and _carries_float(self.types.get(t, T.UNKNOWN)) for t in targets):
            return []
        if isinstance(rhs, gast.Attribute) and rhs.attr in ("shape", "size", "ndim", "dtype"):
            return []
        rule = None
        if isinstance(rhs, gast.Call) and not is_user_call(rhs) and not is_nested_call(rhs):
            func = call_func(rhs)
            if rules.ignores_values(func) or self.unknown_calls(rhs):  # the latter: check_differentiable
                return []
            rule = rules.lookup(func)
            if rule is not None and not rule.adjoint and not rule.tangent:
                return []  # declared piecewise constant: a zero derivative
        passed = set(self.differentiable_operands(rhs))
        if isinstance(rhs, gast.Call) and rule is not None:  # read for its shape: a zero derivative
            passed.update(atom_name(v) for p, v in rules.bind(rule, rhs).items() if p in rule.constant)
        return [n for n in dict.fromkeys(names_in(rhs)) if n in self.varied and n not in passed and self._can_carry(n)]

    def _can_carry(self, v):
        ty = self.types.get(v, T.UNKNOWN)
        return ty.kind not in ("i", "b", "obj")


def nested_result_type(transformed, arg_types):
    """What `grad(f, argnums)(*args)` returns: the float type of each differentiated argument."""
    if not transformed.is_gradient(arg_types):  # jacfwd/jacrev count when the function is scalar-valued
        return T.UNKNOWN
    def of(i):
        t = arg_types[i]
        return T.array("f", t.ndim) if t.numeric else T.UNKNOWN
    if isinstance(transformed.argnums, int):
        return of(transformed.argnums)
    return T.tuple_of(of(i) for i in transformed.argnums)


def _headers(s):
    if isinstance(s, gast.If):
        return [s.test]
    if isinstance(s, gast.For):
        return [s.target, s.iter]
    return [s.test]


def _common(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


def _assignments(body):
    """(target names, rhs, statement) for every assignment, array writes and tape pushes included.

    A push `push(tape, v)` in generated code is listed as if it were `tape = v`.
    """
    for s in body:
        if isinstance(s, gast.Assign):
            t = s.targets[0]
            if isinstance(t, gast.Name):
                yield [t.id], s.value, s
            elif isinstance(t, gast.Tuple):
                yield [e.id for e in t.elts], s.value, s
            elif isinstance(t, gast.Subscript):
                yield [t.value.id], s.value, s
        elif isinstance(s, gast.Expr) and _is_tape_call(s.value, runtime.push):
            yield [s.value.args[0].id], s.value.args[1], s
        elif isinstance(s, gast.Expr) and _is_tape_call(s.value, runtime.tape_put, 3):  # a push into a slot
            yield [s.value.args[0].id], s.value.args[2], s
        elif isinstance(s, gast.If):
            yield from _assignments(s.body)
            yield from _assignments(s.orelse)
        elif isinstance(s, (gast.For, gast.While)):
            yield from _assignments(s.body)


def _is_tape_call(node, func, arity=2):
    return isinstance(node, gast.Call) and not is_user_call(node) and not is_nested_call(node) \
        and call_func(node) is func and len(node.args) == arity and isinstance(node.args[0], gast.Name)


def _carries_float(ty):
    """Can a value of this type carry a derivative (a float, or something not known)?"""
    if ty.kind == "tuple":
        return any(_carries_float(t) for t in ty.items)
    return ty.kind not in ("i", "b", "obj")


def _small_growth(binop):
    """An integer product that stays small for any integer a program counts to: a constant factor,
    a square (`k * 3`, `k ** 2`); a variable factor or a larger power may pass 2**63."""
    left, right = binop.left, binop.right
    if isinstance(binop.op, gast.Mult):
        return isinstance(left, gast.Constant) or isinstance(right, gast.Constant)
    if isinstance(binop.op, gast.Pow):
        return isinstance(right, gast.Constant) and right.value in (0, 1, 2) or \
            isinstance(left, gast.Constant) and left.value in (0, 1)
    return False


def check_differentiable(analysis, where):
    """Refuse a call without a derivative rule that receives an active value, and any expression
    whose value depends on a differentiated value through something with no derivative (`np.r_`
    read as an index, an argument a rule does not differentiate): never a silent zero."""
    for targets, rhs, stmt in _assignments(analysis.fn.body):
        dropped = analysis.dropped_derivatives(rhs, targets)
        if dropped:
            what = gast.unparse(rhs.func) if isinstance(rhs, gast.Call) and hasattr(gast, "unparse") else None
            passes = f"`{what}` has no derivative with respect to the argument" if what else \
                "s2sad has no derivative for how this expression uses"
            raise NonDifferentiableError(
                f"{where(stmt)}: {passes} `{dropped[0]}`, which depends on the differentiated inputs\n"
                f"    {where(stmt).line.strip()}\n  hint: wrap the value in s2sad.stop_gradient if no derivative "
                "should flow through it, or write the computation with functions that have derivative rules "
                "(docs/rules.md)")
        if analysis.unknown_calls(rhs) and any(v in analysis.active for v in targets):
            func = call_func(rhs)
            spelled = gast.unparse(rhs.func) if hasattr(gast, "unparse") else getattr(func, "__name__", "?")
            raise NonDifferentiableError(
                f"{where(stmt)}: s2sad has no derivative rule for `{spelled}` and it is not a Python "
                f"function s2sad can read\n    {where(stmt).line.strip()}\n  hint: give it a derivative with "
                "s2sad.custom_vjp or s2sad.custom_jvp, write it as a Python function of NumPy calls s2sad "
                "knows (docs/rules.md), or wrap the value in s2sad.stop_gradient if it should not be "
                "differentiated")


def check_indexing(analysis, where):
    """Refuse an index into a number (`x[0]` where x is a float): Python raises TypeError there,
    and generated code, which holds NumPy floats, would fail inside itself."""
    for targets, rhs, stmt in _assignments(analysis.fn.body):
        subscripts = [rhs] + [t for t in getattr(stmt, "targets", ()) if isinstance(t, gast.Subscript)]
        for sub in subscripts:
            if not isinstance(sub, gast.Subscript):
                continue
            base = analysis.type_of(sub.value)
            if base.numeric and base.ndim == 0:
                raise UnsupportedSyntaxError(
                    f"an index into `{gast.unparse(sub.value) if hasattr(gast, 'unparse') else '?'}`, a number "
                    f"({base!r}) here", where(stmt), "pass an array (np.array([...])) where the function indexes one")


def check(analysis, where):
    """Every check of analyzed code before it is differentiated."""
    check_differentiable(analysis, where)
    check_rule_arguments(analysis, where)
    check_indexing(analysis, where)
    check_aliasing(analysis, where)


def _float_dtype(node):
    value = node.value if isinstance(node, gast.Constant) else meta.binding(node).obj if meta.is_global(node) else None
    try:
        return value is not None and np.dtype(value).kind == "f"
    except TypeError:
        return False


def check_rule_arguments(analysis, where):
    """Refuse a call that passes an argument its derivative rule does not take (np.linalg.norm's
    `axis`): the rule would differentiate another function, silently."""
    for targets, rhs, stmt in _assignments(analysis.fn.body):
        if is_user_call(rhs) and call_func(rhs) in INTEGER_ARGUMENTS:
            _check_integer_argument(analysis, rhs, where(stmt))
        if is_user_call(rhs) and call_func(rhs) in _ALONG_AN_AXIS:
            _check_axis_argument(analysis, rhs, where(stmt))
        if not (isinstance(rhs, gast.Call) and not is_user_call(rhs) and not is_nested_call(rhs)):
            continue
        rule = rules.lookup(call_func(rhs))
        if rule is None or not any(atom_name(a) in analysis.active for a in rhs.args + [k.value for k in rhs.keywords]):
            continue
        # a float dtype changes no derivative (np.array(x, dtype=np.float64)); an int one would
        extra = [k.arg for k in rhs.keywords if k.arg not in rule.params
                 and not (k.arg == "dtype" and _float_dtype(k.value))]
        if len(rhs.args) > len(rule.params):
            extra.insert(0, f"{len(rhs.args)} positional arguments")
        if extra:
            spelled = gast.unparse(rhs.func) if hasattr(gast, "unparse") else getattr(call_func(rhs), "__name__", "?")
            raise NonDifferentiableError(
                f"{where(stmt)}: s2sad's derivative of `{spelled}` takes ({', '.join(rule.params)}) and this call "
                f"passes {', '.join(f'`{e}`' if ' ' not in e else e for e in extra)}\n    {where(stmt).line.strip()}\n"
                "  hint: write the computation out with the arguments s2sad takes (docs/rules.md), e.g. "
                "`np.sqrt(np.sum(x * x, axis=1))` for a norm along an axis")


def _argument_type(analysis, call, param):
    """The type of the argument a call of a definition (a user call: every argument bound by
    position) passes for its parameter `param`."""
    return analysis.type_of(call.args[list(inspect.signature(call_func(call)).parameters).index(param)])


_ALONG_AN_AXIS = {how.along: numpy_function for numpy_function, how in DEFINITIONS.items() if how.along}


def _check_axis_argument(analysis, call, where):
    """A definition along an axis takes an integer axis: one given through a name (`axis=ax`) that
    holds None or anything else is refused (the call as written picked this definition)."""
    definition = call_func(call)
    ty = _argument_type(analysis, call, "axis")
    if ty.known and not (ty.kind in ("i", "b") and ty.ndim == 0):
        spelled = f"np.{_ALONG_AN_AXIS[definition].__name__}"
        raise NonDifferentiableError(
            f"{where}: s2sad differentiates {spelled} along one integer axis given through a name, and this "
            f"call's axis is {'None' if ty.value is None and ty.kind == 'obj' else repr(ty)}\n"
            f"    {where.line.strip()}\n  hint: write the axis in the call (`axis=None`, `axis=1`) or leave it "
            "out for the default")


def _check_integer_argument(analysis, call, where):
    """np.repeat and np.tile are differentiated for a number of repeats, not a sequence of them."""
    definition = call_func(call)
    param = INTEGER_ARGUMENTS[definition]
    ty = _argument_type(analysis, call, param)
    if ty.known and not (ty.kind in ("i", "b") and ty.ndim == 0):
        numpy_name = definition.__name__.split("_")[0]
        raise NonDifferentiableError(
            f"{where}: s2sad differentiates np.{numpy_name} for one integer `{param}`, and this call "
            f"passes a {ty!r}\n    {where.line.strip()}\n"
            "  hint: give one integer, or pick the elements wanted with an index array instead "
            "(`x[np.array([0, 0, 1])]`)")


FRESH_CALLS = ("np.zeros", "np.ones", "np.empty", "np.full", "np.zeros_like", "np.ones_like", "np.empty_like",
               "np.copy", "np.array", "np.eye", "np.arange", "np.linspace", "astype")


def check_aliasing(analysis, where):
    """Refuse in-place writes whose effect NumPy would show through another name.

    s2sad gives `y[i] = v` and `y += x` their meaning for an array that only
    the name `y` refers to. Refused, with a hint, never differentiated wrongly:
    a write into an argument (the caller's array); a write through a name
    that shares another array (`z = y` or a slice view `z = y[1:3]`); and a
    read of such a name after its array was written.
    """
    fresh_param = _first_top_level_assignment(analysis.fn.body)
    params = {p for p in analysis.params if not fresh_param.get(p, False)}

    def is_array(v):
        return analysis.types.get(v, T.UNKNOWN).kind not in ("tuple", "obj", "i", "b") or \
            analysis.types.get(v, T.UNKNOWN).is_array

    def share_source(stmt):
        t, rhs = stmt.targets[0], stmt.value
        if not isinstance(t, gast.Name):
            return None
        ty = analysis.types.get(t.id, T.UNKNOWN)
        if not (ty.is_array or not ty.known):
            return None
        if isinstance(rhs, gast.Name) and atom_name(rhs):
            return rhs.id
        return view_source(rhs, analysis)

    def written_name(stmt):
        t = stmt.targets[0]
        if isinstance(t, gast.Subscript):
            return t.value.id
        if meta.get(stmt, meta.Inplace) is not None and analysis.types.get(t.id, T.UNKNOWN).is_array:
            return t.id
        return None

    def helper_result(stmt):
        """The helper whose result the statement binds, where the helper takes an array (its result
        may be that array, or a view of it)."""
        rhs = stmt.value
        if not (isinstance(rhs, gast.Call) and (is_user_call(rhs) or is_nested_call(rhs))) \
                or call_func(rhs) in VIEW_FUNCTIONS or call_func(rhs) in DEFINITIONS_COPYING:
            return None
        if any(analysis.type_of(a).is_array for a in rhs.args if isinstance(a, gast.Name)):
            return getattr(call_func(rhs), "__name__", "the helper")
        return None

    def run(body, views, dirty):
        """views: name -> the array it shares; dirty: views whose array was written since."""
        for stmt in body:
            if isinstance(stmt, gast.If):
                v1, d1 = run(stmt.body, dict(views), set(dirty))
                v2, d2 = run(stmt.orelse, dict(views), set(dirty))
                views, dirty = {**v1, **v2}, d1 | d2
                continue
            if isinstance(stmt, (gast.For, gast.While)):
                for _ in range(2):  # twice: a write late in one iteration reaches reads early in the next
                    views, dirty = run(stmt.body, views, dirty)
                continue
            if not isinstance(stmt, gast.Assign):
                continue
            for n in names_in(stmt.value):
                if n in dirty and not n.startswith("_view"):  # s2sad's own copies' sources: shape reads only
                    raise UnsupportedSyntaxError(
                        f"a read of `{n}`, which shares the array `{views[n]}` written since", where(stmt),
                        f"make `{n}` a copy (`{n} = ....copy()`) if it should keep the old values, or index "
                        f"`{views[n]}` directly")
            y = written_name(stmt)
            if y is not None:
                if y in returned_by:
                    raise UnsupportedSyntaxError(
                        f"an in-place write into `{y}`, the result of `{returned_by[y]}(...)`, which may be one of "
                        "its array arguments or share its memory", where(stmt),
                        f"make a copy (`{y} = {returned_by[y]}(...).copy()`) so that each name owns its array")
                if y in params:
                    raise UnsupportedSyntaxError(
                        f"a write into the argument `{y}`", where(stmt),
                        f"copy it first (`{y} = {y}.copy()`): s2sad does not change its caller's arrays")
                if y in views:
                    raise UnsupportedSyntaxError(
                        f"an in-place write into `{y}`, which shares the array `{views[y]}`", where(stmt),
                        f"make a copy (`{y} = {views[y]}.copy()`) so that each name owns its array")
                dirty |= {z for z, base in views.items() if base == y}
                continue
            t = stmt.targets[0]
            helper = helper_result(stmt)
            for v in ([t.id] if isinstance(t, gast.Name) else [e.id for e in t.elts]
                      if isinstance(t, gast.Tuple) else []):
                views.pop(v, None)
                dirty.discard(v)
                returned_by.pop(v, None)
                if helper is not None:
                    returned_by[v] = helper
            source = share_source(stmt)
            if source is not None:
                views[t.id] = views.get(source, source)
        return views, dirty

    views, returned_by = {}, {}   # returned_by: name -> the helper whose result it holds
    run(analysis.fn.body, views, set())


def _first_top_level_assignment(body):
    """For each name, whether it is reassigned at the top level before anything else mentions it."""
    seen, fresh = set(), {}
    for s in body:
        if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name) \
                and meta.get(s, meta.Inplace) is None:  # `x += e` writes into x's own array
            v = s.targets[0].id
            if v not in seen:
                fresh[v] = True
                seen.add(v)
        for n in gast.walk(s):
            if isinstance(n, gast.Name) and n.id not in seen:
                seen.add(n.id)
                fresh.setdefault(n.id, False)
    return fresh


# NumPy functions whose result may share its first argument's memory (a view): a write into that
# argument shows through the result. The normalizer spells methods (`M.T`, `M.reshape(...)`) so.
VIEW_FUNCTIONS = {np.transpose, np.reshape, np.ravel, np.squeeze, np.expand_dims, np.swapaxes, np.moveaxis,
                  np.atleast_1d, np.atleast_2d, np.atleast_3d, np.asarray, np.asanyarray, np.ascontiguousarray,
                  np.diagonal, np.broadcast_to, np.real, np.flip, np.flipud, np.fliplr,
                  # NumPy's flips are views; s2sad computes them by definitions (definitions.py)
                  definitions.flip_all, definitions.flip_along, definitions.flipud, definitions.fliplr}


# definitions whose result is a new array, as NumPy's is (np.var, np.roll, np.sort, ...)
DEFINITIONS_COPYING = {d for how in DEFINITIONS.values() for d in (how.plain, how.along, how.flat)
                       if d is not None} - VIEW_FUNCTIONS


def view_source(rhs, analysis):
    """The array name whose memory the value `rhs` may share (`y[1:3]`, `y[0]` of a 2-d y,
    `y[None]`, `np.transpose(y)`, `np.reshape(y, s)`, ...), else None."""
    if isinstance(rhs, gast.Subscript) and atom_name(rhs.value):
        parts = rhs.slice.elts if isinstance(rhs.slice, gast.Tuple) else [rhs.slice]
        basic = [p for p in parts if not isinstance(p, gast.Slice)
                 and not (isinstance(p, gast.Constant) and p.value in (None, Ellipsis))]
        if all(analysis.type_of(p).is_scalar for p in basic):
            return rhs.value.id  # basic indexing returns a view
    if isinstance(rhs, gast.Call) and rhs.args and atom_name(rhs.args[0]) and (
            call_func(rhs) in VIEW_FUNCTIONS or call_func(rhs) is runtime.astype and any(
                k.arg == "copy" and isinstance(k.value, gast.Constant) and not k.value.value for k in rhs.keywords)):
        return rhs.args[0].id
    return None


def copy_views_of_written_arrays(fn, analysis):
    """`v = y[i]` becomes `v = np.copy(y[i])` when y is written in place somewhere.

    A view's contents change when its array is written. The forward program
    never reads such a view after the write (`check_aliasing` refuses that),
    but the reverse sweep does: it tapes and reuses values later. A copy has
    the same value at every read the program makes, and keeps it.
    Returns `fn` itself when nothing needs copying.
    """
    written = {t.value.id for t in gast.walk(fn) if isinstance(t, gast.Subscript) and isinstance(t.ctx, gast.Store)}
    if not written:
        return fn
    fn = copy_ir(fn)
    names = DerivedNames(fn, "view")

    def rewrite(body):
        out = []
        for s in body:
            if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name) \
                    and view_source(s.value, analysis) in written and not analysis.type_of(s.value).is_scalar:
                view = names.fresh("view")
                first = gast.copy_location(assign(view, s.value), s)
                second = gast.copy_location(assign(s.targets[0].id, make_call("np.copy", [name(view)], np.copy, s)), s)
                out += [first, second]
                continue
            for field in ("body", "orelse"):
                if isinstance(getattr(s, field, None), list):
                    setattr(s, field, rewrite(getattr(s, field)))
            out.append(s)
        return out
    fn.body = rewrite(fn.body)
    return fn
