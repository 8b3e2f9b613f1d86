"""Forward mode: normalized code -> tangent code.

In: a normalized FunctionDef and its `Analysis` (active = depends on the
inputs that carry tangents). Out: `f_jvp(*params, *param_dots) -> (out,
out_dot)`, where each active statement `v = rhs` is joined by
`v_dot = <sum over active operands of the rule's tangent>`. Control flow is
unchanged. Calls to user functions call their own generated `_jvp`.

Generated adjoint code can itself be transformed: each tape gets a tangent
tape, and every push or pop of a float value is mirrored on it.  Mirroring
goes by type, not activity (an inactive value pushes a zero tangent, an
inactive pop takes one off, unused), because a push and its pop are different
statements whose activity can differ while their tape slots must pair up.
Next stage: `optimize`/`emit`.
"""

import copy

import gast

from .. import rules, runtime
from ..ir import types as T
from ..ir import meta
from ..analysis import atom_name, binop_func, call_func, is_nested_call, is_user_call
from ..errors import NonDifferentiableError
from ..normalize import DerivedNames, assign, const, name

def parse_expr(text):
    return gast.parse(text, mode="eval").body


class Forward:
    def __init__(self, fn, analysis, compiler, parsed):
        self.fn, self.an, self.compiler, self.parsed = fn, analysis, compiler, parsed
        self.names = DerivedNames(fn, "dot")
        self.written = {t.value.id for t in gast.walk(fn) if isinstance(t, gast.Subscript)
                        and isinstance(t.ctx, gast.Store)}

    def dot(self, v):
        return self.names.of(v)

    def fresh(self, stem):
        return self.names.fresh(stem)

    def active(self, node):
        v = atom_name(node)
        return v is not None and v in self.an.active

    def ty(self, node):
        return self.an.type_of(node) if not isinstance(node, str) else self.an.types.get(node, T.UNKNOWN)

    def zero(self, node):
        """A zero tangent of the value `node` (an atom)."""
        if isinstance(node, gast.Constant) and node.value is None:
            return gast.Constant(value=None, kind=None)  # a gradient's dropped value has no tangent
        ty = self.ty(node)
        if ty.is_scalar:
            return const(0.0)
        node = copy.deepcopy(node)
        if isinstance(node, gast.Name):
            node.ctx = gast.Load()  # it may be an assignment's target: here it is read
        if ty.is_array:
            return gast.Call(func=parse_expr("np.zeros_like"), args=[node],
                             keywords=[gast.keyword(arg="dtype", value=parse_expr("np.float64"))])
        return gast.Call(func=name("zeros_like"), args=[node], keywords=[])

    def dot_of(self, node):
        return name(self.dot(node.id)) if self.active(node) else self.zero(node)

    # ---- the whole function --------------------------------------------------
    def run(self, name_, wrt):
        fn = self.fn
        body = self.block(fn.body[:-1])
        ret = fn.body[-1].value
        if isinstance(ret, gast.Tuple):
            out_dot = gast.Tuple(elts=[self.dot_of(e) for e in ret.elts], ctx=gast.Load())
        else:
            out_dot = self.dot_of(ret)
        body.append(gast.Return(value=gast.Tuple(elts=[ret, out_dot], ctx=gast.Load())))
        # a parameter with no tangent of its own that later holds an active value (x in
        # `x = x * a` where only a varies) starts from a zero tangent
        starts = [assign(self.dot(a.id), self.zero(name(a.id))) for a in fn.args.args
                  if a.id not in wrt and a.id in self.an.active]
        body = self.early_return_placeholders() + starts + body
        args = copy.deepcopy(fn.args)
        for p in wrt:
            arg = name(self.dot(p))
            arg.ctx = gast.Param()
            args.args.append(arg)
        new = gast.FunctionDef(name=name_, args=args, body=body, decorator_list=[], returns=None,
                               type_comment=None, type_params=[])
        return gast.copy_location(new, fn)

    def early_return_placeholders(self):
        """`_retval` (and its tangent) set on every path before the returns that set them: Numba
        types a variable only where every path defines it."""
        if "_returned" not in self.an.types or "_retval" not in self.an.types:
            return []
        ty = self.ty("_retval")
        value = T.placeholder(ty)
        if value is None:
            return []
        out = [assign("_retval", parse_expr(value))]
        if "_retval" in self.an.active:
            out.append(assign(self.dot("_retval"), parse_expr(T.placeholder(T.array("f", ty.ndim)))))
        return out

    def block(self, body):
        out = []
        for s in body:
            out += self.stmt(s)
        return out

    def stmt(self, s):
        if isinstance(s, gast.Assign):
            out = self.assign(s)
        elif isinstance(s, gast.Expr):
            out = self.effect(s)
        elif isinstance(s, gast.If):
            out = [gast.If(test=s.test, body=self.block(s.body) or [gast.Pass()], orelse=self.block(s.orelse))]
        elif isinstance(s, gast.For):
            out = [gast.For(target=s.target, iter=s.iter, body=self.block(s.body) or [gast.Pass()], orelse=[],
                            type_comment=None)]
        elif isinstance(s, gast.While):
            out = [gast.While(test=s.test, body=self.block(s.body) or [gast.Pass()], orelse=[])]
        elif isinstance(s, gast.Pass):  # an empty branch of generated code
            return []
        elif isinstance(s, gast.Assert):
            out = [s]
        else:
            raise AssertionError(type(s).__name__)
        note = self.parsed.cites(s)
        for node in out:
            gast.copy_location(node, s)
            if note:
                meta.put(node, meta.Cites(note))
        return out

    def effect(self, s):
        """`push(tape, v)`: v's tangent (zero if v is inactive) goes on the tangent tape."""
        call = s.value
        out = [s]
        func = call_func(call)
        if func in (runtime.push, runtime.tape_put) and self.is_float(call.args[-1]):
            tape, v = call.args[0], call.args[-1]
            tangent = name(self.dot(v.id)) if self.active(v) else self.zero(v)
            slot = [copy.deepcopy(a) for a in call.args[1:-1]]  # tape_put's slot: the same on both tapes
            out.append(gast.Expr(value=gast.Call(func=name(call.func.id), args=[
                name(self.dot(tape.id))] + slot + [tangent], keywords=[])))
        return out

    def is_float(self, node):
        return self.ty(node).kind == "f"

    def assign(self, s):
        target, rhs = s.targets[0], s.value
        if isinstance(target, gast.Subscript):
            y = target.value.id
            if y not in self.an.active:
                return [s]
            store = gast.Subscript(value=name(self.dot(y)), slice=copy.deepcopy(target.slice), ctx=gast.Store())
            value = name(self.dot(rhs.id)) if self.active(rhs) else const(0.0)
            return [assign(store, value), s]
        if isinstance(target, gast.Tuple):
            return self.user_call(s, [e.id for e in target.elts], rhs)
        v = target.id
        func = call_func(rhs) if isinstance(rhs, gast.Call) else None
        if func is runtime.Tape:
            return [s, assign(self.dot(v), gast.Call(func=name("Tape"), args=[], keywords=[]))]
        if func in (runtime.pop, runtime.tape_get) and self.is_float(target):
            # the witness is v, just popped: a float of the tangent's type, bound on every path
            slot = [copy.deepcopy(a) for a in rhs.args[1:-1]]
            pop = gast.Call(func=name(rhs.func.id), args=[name(self.dot(rhs.args[0].id))] + slot + [name(v)],
                            keywords=[])
            # an inactive v's push put a tangent there all the same: it is popped, unused
            return [s, assign(self.dot(v) if v in self.an.active else self.fresh("unused"), pop)]
        if func in (runtime.tape_reserve, runtime.tape_release):
            # the tangent tape holds a float for each float of the tape: its slots have the same indices
            tangent_tape = gast.Call(func=name(rhs.func.id), args=[name(self.dot(rhs.args[0].id))] + [
                copy.deepcopy(a) for a in rhs.args[1:]], keywords=[])
            return [s, assign(self.fresh("unused"), tangent_tape)]  # an assignment: normalize keeps it
        if v not in self.an.active:
            return [self.inactive_nested(s)]
        if is_user_call(rhs) or is_nested_call(rhs):
            return self.user_call(s, [v], rhs)
        # The tangent reads the result as `_ANS` and the operands by their names. Where the result
        # overwrites an operand (`a = a ** b`), the result goes to a fresh name first, so that the
        # tangent reads the operand's old value and the new result both.
        tangent, uses_ans = self.tangent(rhs, name(_ANS), target)
        if tangent is None:  # an active name given an inactive value: its tangent is zero
            return [s, assign(self.dot(v), self.zero(target))]
        tangent, reads_ans = self.match_type(tangent, rhs, target)
        if isinstance(tangent, gast.Name) and tangent.id != self.dot(v) and self.ty(target).is_array \
                and (v in self.written or self.names.source_of(tangent.id) in self.written):
            # `q = v * 1.0` has v's tangent itself (the rule folds `* 1`): a copy, where either array
            # is written in place later (`q[2] = ...` would write into v's tangent too)
            tangent = gast.Call(func=parse_expr("np.copy"), args=[tangent], keywords=[])
        if not (uses_ans or reads_ans):
            if isinstance(tangent, gast.Name) and tangent.id == self.dot(v):
                return [s]  # `v = v + inactive`: v's tangent is unchanged (and `v_dot = v_dot` would alias)
            return [assign(self.dot(v), tangent), s]
        if v in [n.id for n in gast.walk(rhs) if isinstance(n, gast.Name)]:
            ans = self.fresh("ans")
            return [assign(ans, rhs), assign(self.dot(v), _rename(tangent, _ANS, ans)), assign(v, name(ans))]
        return [s, assign(self.dot(v), _rename(tangent, _ANS, v))]

    def match_type(self, tangent, rhs, target):
        """The tangent of an elementwise result gets the result's shape, so `v_dot` keeps v's type.

        The tangent of `a + d` is `d_dot` alone; where the inactive `a` broadcasts the result to a
        larger shape, zeros shaped like `a` are added, and a scalar tangent of an array value is
        broadcast the same way."""
        t_v = self.ty(target.id)
        operands = _elementwise_operands(rhs)
        if not t_v.is_array or operands is None:
            return tangent, False
        active = [n for n in operands if self.active(n)]
        if active and all(self.ty(n).is_scalar for n in active):
            # zeros shaped like an (inactive) array operand of the same rank: available before the
            # statement runs, so the tangent may be computed first even in `v = f(v, ...)`
            shapes = [n for n in operands if n.id != target.id and self.ty(n).is_array and self.ty(n).ndim == t_v.ndim]
            if shapes:
                return gast.BinOp(left=tangent, op=gast.Add(), right=self.zero(shapes[0])), False
            # zeros shaped like the result itself: read after the statement, as `_ANS`
            return gast.BinOp(left=tangent, op=gast.Add(), right=_rename(self.zero(target), target.id, _ANS)), True
        read = {n.id for n in gast.walk(tangent) if isinstance(n, gast.Name)}
        for n in operands:
            if not self.active(n) and self.ty(n).is_array and n.id not in read and n.id != target.id:
                tangent = gast.BinOp(left=tangent, op=gast.Add(), right=self.zero(n))
                read.add(n.id)
        return tangent, False

    def tangent(self, rhs, ans, target):
        """(tangent expression or None, whether it reads `ans`, the result of `target = rhs`)."""
        if isinstance(rhs, gast.Name):
            if not self.active(rhs):
                return None, False
            return name(self.dot(rhs.id)), False  # copied where an array is written in place: see `assign`
        if isinstance(rhs, gast.BinOp):
            return self.apply_rule(rules.lookup(binop_func(rhs.op)), {"x": rhs.left, "y": rhs.right}, ans)
        if isinstance(rhs, gast.UnaryOp):
            if isinstance(rhs.op, gast.USub) and self.active(rhs.operand):
                return gast.UnaryOp(op=gast.USub(), operand=name(self.dot(rhs.operand.id))), False
            return None, False
        if isinstance(rhs, (gast.Tuple, gast.List)):
            if not any(self.active(e) for e in rhs.elts):
                return None, False
            return type(rhs)(elts=[self.dot_of(e) for e in rhs.elts], ctx=gast.Load()), False
        if isinstance(rhs, gast.Subscript):
            if not self.active(rhs.value):
                return None, False
            return gast.Subscript(value=name(self.dot(rhs.value.id)), slice=copy.deepcopy(rhs.slice),
                                  ctx=gast.Load()), False
        if isinstance(rhs, gast.Call):
            rule = rules.lookup(call_func(rhs))
            if rule is None:
                return None, False
            return self.apply_rule(rule, rules.bind(rule, rhs), ans)
        return None, False

    def apply_rule(self, rule, bound, ans):
        if getattr(rule, "tangent_from_vjp", False):
            self.compiler.tangent_from_vjp = True
        mapping = dict(bound)
        mapping["ans"] = ans
        for param, operand in bound.items():
            mapping[f"{param}_dot"] = self.dot_of(operand) if isinstance(operand, gast.Name) else const(0.0)
        active = [p for p, operand in bound.items() if isinstance(operand, gast.Name) and self.active(operand)]
        for p in active:
            if p not in rule.tangent and p in rule.adjoint:
                raise NonDifferentiableError(f"no forward-mode (tangent) rule for argument `{p}` of this call; "
                                             "use reverse mode (grad/vjp/jacrev)")
        if getattr(rule, "joint_tangent", None) is not None:  # custom_jvp: one rule for all tangents
            return (rules.expand(rule.joint_tangent, mapping), False) if active else (None, False)
        terms, uses_ans = [], False
        tangents = rule.tangent_for(bound, self.ty)
        for param in active:
            template = tangents.get(param)
            if template is None:
                continue
            uses_ans = uses_ans or any(isinstance(n, gast.Name) and n.id == "ans" for n in gast.walk(template))
            terms.append(rules.expand(template, mapping))
        if not terms:
            return None, False
        total = terms[0]
        for t in terms[1:]:
            total = gast.BinOp(left=total, op=gast.Add(), right=t)
        return total, uses_ans

    def inactive_nested(self, s):
        """A nested `grad(f)(x)` whose value carries no tangent calls the generated function computing it."""
        if isinstance(s, gast.Assign) and is_nested_call(s.value):
            return self.compiler.call_generated(s, [self.ty(a) for a in s.value.args])
        return s

    def user_call(self, s, targets, call):
        active_args = [i for i, a in enumerate(call.args) if self.active(a)]
        if not any(v in self.an.active for v in targets) or not active_args:
            out = [self.inactive_nested(s)]
            out += [assign(self.dot(v), self.zero(name(v))) for v in targets if v in self.an.active]
            return out
        arg_types = [self.ty(a) for a in call.args]
        callee = call_func(call)
        if is_nested_call(call):  # grad(f)(x), jvp(f, ...): transform the code generated for it
            callee = callee.as_function(arg_types)
        jvp = self.compiler.jvp_name(callee, arg_types, tuple(active_args))
        result = self.fresh("jvp")
        args = [copy.deepcopy(a) for a in call.args] + [name(self.dot(call.args[i].id)) for i in active_args]
        out = [assign(result, gast.Call(func=name(jvp), args=args, keywords=[]))]
        if len(targets) == 1 and not isinstance(s.targets[0], gast.Tuple):
            v = targets[0]
            out += [assign(v, parse_expr(f"{result}[0]")), assign(self.dot(v), parse_expr(f"{result}[1]"))]
        else:
            for k, v in enumerate(targets):
                out.append(assign(v, parse_expr(f"{result}[0][{k}]")))
                if v in self.an.active:
                    out.append(assign(self.dot(v), parse_expr(f"{result}[1][{k}]")))
        return out


_ANS = "\0ans"  # the result, in a tangent expression being built: no Python name can collide


def _rename(tree, old, new):
    for n in gast.walk(tree):
        if isinstance(n, gast.Name) and n.id == old:
            n.id = new
    return tree


def transform(fn, analysis, compiler, parsed, name_, wrt):
    return Forward(fn, analysis, compiler, parsed).run(name_, wrt)


def _elementwise_operands(rhs):
    """The Name operands of a broadcasting elementwise operation (None for anything else)."""
    if isinstance(rhs, gast.BinOp):
        args = [rhs.left, rhs.right]
    elif isinstance(rhs, gast.Call) and not is_user_call(rhs) and not is_nested_call(rhs):
        rule = rules.lookup(call_func(rhs))
        if rule is None or not rule.broadcasts:
            return None
        args = list(rhs.args) + [k.value for k in rhs.keywords]
    else:
        return None
    return [a for a in args if isinstance(a, gast.Name) and atom_name(a)]
