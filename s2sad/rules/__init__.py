"""Derivative rules: one line per primitive, both modes side by side.

Elementwise primitives are given by their partial derivatives, written in
the primitive's own argument names and `ans` (the result). From a partial
`p` of argument `x`, reverse mode emits `x_bar += unbroadcast(g * p, x)` and
forward mode emits `ans_dot = ... + x_dot * p`.

Other primitives give their adjoint (in terms of the output adjoint `g`)
and their tangent (in terms of `x_dot`) per argument. Anything larger than
one expression is a helper function in `runtime`.

Templates are Python source, parsed once and spliced into generated code
with the names replaced, so generated code reads like the table.
"""

import ast
import builtins
import math
import operator
import sys

import gast
import numpy as np

from ..ir import types as T


# ---- template machinery --------------------------------------------------
def _parse_params(text):
    names, defaults = [], {}
    for part in text.split(","):
        part = part.strip()
        if "=" in part:
            k, v = part.split("=")
            names.append(k.strip())
            defaults[k.strip()] = eval(v)  # a literal: None or a number
        else:
            names.append(part)
    return tuple(names), defaults


def template(text):
    return gast.parse(text, mode="eval").body


def bind(rule, call):
    """Map a normalized Call's atoms to the rule's parameter names."""
    values = dict(zip(rule.params, call.args))
    for kw in call.keywords:
        values[kw.arg] = kw.value
    for k, v in rule.defaults.items():
        values.setdefault(k, gast.Constant(value=v, kind=None))
    return values


class _Substitute(gast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            value = _copy(self.mapping[node.id])
            if isinstance(value, gast.Name):
                value.ctx = gast.Load()  # `ans` may be the assignment's own target: here it is read
            return value
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        # `f(x, axis=None)` -> `f(x)`: NumPy's default, spelled so Numba accepts it
        node.keywords = [k for k in node.keywords
                         if not (isinstance(k.value, gast.Constant) and k.value.value is None)]
        return node


def _copy(node):
    import copy
    return copy.deepcopy(node)


def expand(template, mapping):
    """Splice atoms into a template expression, folding what the constants decide."""
    return _Fold().visit(_Substitute(mapping).visit(_copy(template)))


class _Fold(gast.NodeTransformer):
    """`2 * x ** (2 - 1)` -> `2 * x`: arithmetic and comparisons on constants, `e ** 1`, `e * 1`,
    `1 * e`, and a guard a constant turns off: `x + (x == 0) * (2 == 0)` -> `x`."""

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1 and is_number(node.left) and is_number(node.comparators[0]):
            ops = {gast.Eq: operator.eq, gast.NotEq: operator.ne, gast.Lt: operator.lt, gast.LtE: operator.le,
                   gast.Gt: operator.gt, gast.GtE: operator.ge}
            if type(node.ops[0]) in ops:
                return gast.Constant(value=ops[type(node.ops[0])](node.left.value, node.comparators[0].value),
                                     kind=None)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(node.op, gast.Mult) and (isinstance(left, gast.Compare) and _is_false(right)
                                               or _is_false(left) and isinstance(right, gast.Compare)):
            return gast.Constant(value=0, kind=None)  # a mask times False: the guard is off
        if isinstance(node.op, gast.Add) and _is_false(right) and not _is_false(left):
            return left
        lc = left.value if is_number(left) else None
        rc = right.value if is_number(right) else None
        if lc is not None and rc is not None and not isinstance(node.op, (gast.Div, gast.FloorDiv, gast.Mod)):
            ops = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul, gast.Pow: operator.pow}
            if type(node.op) in ops:
                return gast.Constant(value=ops[type(node.op)](lc, rc), kind=None)
        if isinstance(node.op, gast.Pow) and rc == 1:
            return left
        if isinstance(node.op, gast.Mult) and rc == 1:
            return left
        if isinstance(node.op, gast.Mult) and lc == 1:
            return right
        return node


def _is_false(node):
    """The constant False, or the 0 a guard folds to."""
    return isinstance(node, gast.Constant) and node.value is not True and node.value == 0 \
        and isinstance(node.value, (int, bool))


def is_number(node):
    return isinstance(node, gast.Constant) and isinstance(node.value, (int, float)) \
        and not isinstance(node.value, bool)


class Rule:
    """How one primitive is differentiated.

    params: argument names in call order, with defaults for keywords.
    adjoint: {param: template of the contribution to param's adjoint}
    tangent: {param: template of the contribution of param_dot to ans_dot}
    result: (arg types by name, constant values by name) -> result Ty
    broadcasts: contributions must be summed back to the argument's shape.
    stacked_adjoint, stacked_tangent: templates for operands that are stacks of matrices (more
        than two axes, or of a rank not known), where those differ from `adjoint` and `tangent`.
    constant: params read for their shape, or as a mask constant almost everywhere, whose derivative
        is zero. Any other param that has no template receives no differentiated value: analysis
        refuses the call where one does.
    """

    def __init__(self, params, adjoint, tangent, result, broadcasts=False, stacked_adjoint=None,
                 stacked_tangent=None, constant=""):
        self.params, self.defaults = _parse_params(params)
        self.constant = frozenset(p.strip() for p in constant.split(",") if p.strip())
        self.adjoint = {k: template(v) for k, v in adjoint.items()}
        self.tangent = {k: template(v) for k, v in tangent.items()}
        self.result = result
        self.broadcasts = broadcasts
        self.stacked_adjoint = {k: template(v) for k, v in (stacked_adjoint or {}).items()}
        self.stacked_tangent = {k: template(v) for k, v in (stacked_tangent or {}).items()}

    @property
    def differentiable(self):
        return tuple(self.adjoint)

    def adjoint_for(self, bound, ty):
        """The adjoint templates for this call: `bound` its operands by parameter, `ty` their types."""
        return self.stacked_adjoint if self.stacked_adjoint and _stacked(bound, ty) else self.adjoint

    def tangent_for(self, bound, ty):
        """The tangent templates for this call, as adjoint_for."""
        return self.stacked_tangent if self.stacked_tangent and _stacked(bound, ty) else self.tangent


def _stacked(bound, ty):
    """Is an operand a stack of matrices, or of a rank not known?"""
    types = [ty(b) for b in bound.values() if b is not None and not isinstance(b, gast.Constant)]
    return not all(t.known and t.ndim <= 2 for t in types)


RULES = {}          # function object -> Rule
NONDIFF = {}        # function object -> result type function (no derivative: ints, shapes, allocation)


def key(f):
    return id(f)


def lookup(func):
    rule = RULES.get(key(func))
    if rule is None and register_scipy_special():
        rule = RULES.get(key(func))
    return rule


def nondiff(func):
    return NONDIFF.get(key(func))


VALUE_FREE = set()  # non-differentiable functions whose result depends on its arguments' shapes alone


def value_free(*funcs):
    """Declare that the results of `funcs` do not depend on the values of their arguments (their
    shapes, a tape's bookkeeping, stop_gradient's cut): a differentiated value may pass through."""
    VALUE_FREE.update(key(f) for f in funcs)


def ignores_values(func):
    return key(func) in VALUE_FREE


def _register(funcs, rule):
    for f in funcs:
        RULES[key(f)] = rule


# ---- result types -------------------------------------------------------
def elementwise_type(kind="f"):
    def result(args, consts):
        # (an optional argument left out, np.round's `decimals`, is None: not an operand)
        tys = [t for t in args.values() if not (t.kind == "obj" and t.value is None)]
        if kind == "keep":
            return T.broadcast(*tys)
        return T.broadcast(*tys, kind="f") if all(t.numeric for t in tys) else T.UNKNOWN
    return result


def same_as(param):
    return lambda args, consts: args[param] if args[param].numeric else T.UNKNOWN


def float_same_as(param):
    def result(args, consts):
        t = args[param]
        return T.array("f", t.ndim) if t.numeric else T.UNKNOWN
    return result


def reduction(args, consts):
    """A number, or along an axis an array of one rank less. An axis held in a variable (a
    definition's `axis` parameter) is known by its type: an int is an axis, None is none."""
    x = args["x"]
    along = _along_an_axis(args, consts)
    if not x.numeric or along is None:
        return T.UNKNOWN
    return T.array("f", x.ndim - 1) if along else T.FLOAT


def _along_an_axis(args, consts):
    """Does the call give an axis (True), or none (False); None where that is not known. An int
    variable is an axis whatever `consts` says (analysis puts the parameter's default there)."""
    axis = args.get("axis")
    if axis is not None and axis.kind == "i" and axis.ndim == 0:
        return True
    if "axis" in consts:
        return consts["axis"] is not None
    if axis is None or (axis.kind == "obj" and axis.value is None):
        return False
    return None


def scalar_result(args, consts):
    return T.FLOAT


def dot_result(args, consts):
    a, b = args[list(args)[0]], args[list(args)[1]]
    if not (a.numeric and b.numeric):
        return T.UNKNOWN
    if a.ndim == 0 or b.ndim == 0:
        return T.array("f", max(a.ndim, b.ndim))
    return T.array("f", a.ndim + b.ndim - 2)


def matmul_result(args, consts):
    a, b = args[list(args)[0]], args[list(args)[1]]
    if not (a.numeric and b.numeric) or a.ndim == 0 or b.ndim == 0:
        return dot_result(args, consts)
    # a vector is a one-row (a) or one-column (b) matrix whose axis the result drops
    return T.array("f", max(a.ndim, b.ndim, 2) - (a.ndim == 1) - (b.ndim == 1))


def with_ndim(ndim_of):
    def result(args, consts):
        n = ndim_of(args, consts)
        return T.UNKNOWN if n is None else T.array("f", n)
    return result


def _shape_len(t, value=None):
    if t.kind == "tuple":
        return len(t.items)
    if t.kind in ("i",) and t.ndim == 0:
        return 1
    return None


# ---- elementwise: partial derivatives ------------------------------------
def _times(seed, d):
    """`seed * d` as source. A quotient `c / e` becomes `seed * c / e`: dividing the seed (a
    NumPy float) by zero gives inf as NumPy does, where `1 / e` of a Python zero raises."""
    if d in ("1", "-1"):
        return seed if d == "1" else f"-{seed}"
    e = ast.parse(d, mode="eval").body
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Div):
        c = ast.unparse(e.left)
        scaled = seed if c == "1" else f"-{seed}" if c == "-1" else f"{seed} * ({c})"
        return f"{scaled} / ({ast.unparse(e.right)})"
    return f"{seed} * ({d})"


def elementwise(*funcs, keep_kind=False):
    def define(params, **partials):
        adjoint, tangent = {}, {}
        for p, d in partials.items():
            adjoint[p] = _times("g", d)
            tangent[p] = _times(f"{p}_dot", d)
        _register(funcs, Rule(params, adjoint, tangent, elementwise_type("keep" if keep_kind else "f"),
                              broadcasts=True))
    return define


E = elementwise
E(operator.add, np.add, keep_kind=True)("x, y", x="1", y="1")
E(operator.sub, np.subtract, keep_kind=True)("x, y", x="1", y="-1")
E(operator.mul, np.multiply, keep_kind=True)("x, y", x="y", y="x")
E(operator.truediv, np.divide, np.true_divide)("x, y", x="1 / y", y="-ans / y")
# at x = 0: 0 ** y (y > 0) is 0 for every y, so its y-partial is 0 (log(x + 1) = 0 there, where
# ans * log(x) would be 0 * -inf = NaN), and x ** 0 is 1 for every x, so at y = 0 its x-partial is 0
# (x + 1 = 1 there: 0 ** -1 would be inf, or a ZeroDivisionError for Python floats)
E(operator.pow, np.power, math.pow, builtins.pow)("x, y", x="y * (x + (x == 0) * (y == 0)) ** (y - 1)",
                                                  y="ans * np.log(x + (x == 0))")
E(operator.mod, np.mod, np.remainder)("x, y", x="1", y="-np.floor(x / y)")
E(math.fmod, np.fmod)("x, y", x="1", y="-np.trunc(x / y)")
E(operator.neg, np.negative, keep_kind=True)("x", x="-1")
E(builtins.abs, np.abs, np.fabs, math.fabs, keep_kind=True)("x", x="np.sign(x)")
E(builtins.float)("x", x="1")
E(np.square)("x", x="2 * x")
E(np.sin, math.sin)("x", x="np.cos(x)")
E(np.cos, math.cos)("x", x="-np.sin(x)")
E(np.tan, math.tan)("x", x="1 + ans * ans")
E(np.arcsin, math.asin)("x", x="1 / np.sqrt(1 - x * x)")
E(np.arccos, math.acos)("x", x="-1 / np.sqrt(1 - x * x)")
E(np.arctan, math.atan)("x", x="1 / (1 + x * x)")
E(np.sinh, math.sinh)("x", x="np.cosh(x)")
E(np.cosh, math.cosh)("x", x="np.sinh(x)")
E(np.tanh, math.tanh)("x", x="1 - ans * ans")
E(np.exp, math.exp)("x", x="ans")
E(np.expm1, math.expm1)("x", x="ans + 1")
E(np.log, math.log)("x", x="1 / x")
E(np.log1p, math.log1p)("x", x="1 / (1 + x)")
E(np.log2, math.log2)("x", x="1 / (x * np.log(2.0))")
E(np.log10, math.log10)("x", x="1 / (x * np.log(10.0))")
E(np.sqrt, math.sqrt)("x", x="0.5 / ans")
E(np.cbrt)("x", x="1 / (3 * ans * ans)")
E(np.arctan2, math.atan2)("y, x", y="x / (x * x + y * y)", x="-y / (x * x + y * y)")
E(np.hypot, math.hypot)("x, y", x="x / ans", y="y / ans")
E(np.logaddexp)("x, y", x="np.exp(x - ans)", y="np.exp(y - ans)")
E(np.arcsinh, math.asinh)("x", x="1 / np.sqrt(x * x + 1)")
E(np.arccosh, math.acosh)("x", x="1 / np.sqrt(x * x - 1)")
E(np.arctanh, math.atanh)("x", x="1 / (1 - x * x)")
E(np.exp2)("x", x="ans * 0.6931471805599453")                       # ln 2
E(np.logaddexp2)("x, y", x="np.exp2(x - ans)", y="np.exp2(y - ans)")
E(np.reciprocal)("x", x="-ans * ans")
E(np.deg2rad, np.radians, math.radians)("x", x="0.017453292519943295")   # pi / 180
E(np.rad2deg, np.degrees, math.degrees)("x", x="57.29577951308232")      # 180 / pi
E(np.positive, np.real, np.conjugate, np.conj, keep_kind=True)("x", x="1")   # on real numbers: x itself
E(math.erf)("x", x="1.1283791670955126 * np.exp(-x * x)")
E(math.erfc)("x", x="-1.1283791670955126 * np.exp(-x * x)")
E(np.maximum, builtins.max, np.fmax, keep_kind=True)("x, y", x="max_share(x, y)", y="max_share(y, x)")
E(np.minimum, builtins.min, np.fmin, keep_kind=True)("x, y", x="max_share(y, x)", y="max_share(x, y)")
E(np.clip, keep_kind=True)("x, lo, hi", x="inside(x, lo, hi)", lo="(x < lo) * 1.0", hi="(x > hi) * 1.0")
# piecewise constant: the derivative is zero wherever it exists
for _f in (np.sign, np.floor, np.ceil, np.round, np.rint, np.trunc, operator.floordiv, np.floor_divide,
           math.floor, math.ceil, builtins.round, np.imag, np.angle):
    RULES[key(_f)] = Rule("x, y=None", {}, {}, elementwise_type())


# ---- everything else: adjoint and tangent per argument -------------------
def rule(*funcs, params, adjoint, tangent, result, broadcasts=False, stacked_adjoint=None, stacked_tangent=None,
         constant=""):
    # templates say `ans` for the call's result (and `g` for its adjoint in reverse mode): a
    # parameter of that name would be shadowed by it
    assert "ans" not in _parse_params(params)[0], f"{funcs}: a rule's parameter may not be named `ans`"
    _register(funcs, Rule(params, adjoint, tangent, result, broadcasts, stacked_adjoint, stacked_tangent, constant))


rule(np.sum, params="x, axis=None",
     adjoint={"x": "sum_adjoint(g, x, axis)"},
     tangent={"x": "np.sum(x_dot, axis=axis)"}, result=reduction)
# g has the mean's shape: scaled before it is spread over x, the factor costs one multiply per
# element of the mean, not of x (the same product for each element of x)
rule(np.mean, params="x, axis=None",
     adjoint={"x": "sum_adjoint(g * (np.size(g) / np.size(x)), x, axis)"},
     tangent={"x": "np.mean(x_dot, axis=axis)"}, result=reduction)
rule(np.prod, params="x, axis=None",
     adjoint={"x": "prod_adjoint(g, x, axis)"},
     tangent={"x": "np.sum(prod_adjoint(1.0, x, axis) * x_dot, axis=axis)"}, result=reduction)
rule(np.max, np.amax, params="x, axis=None",
     adjoint={"x": "extreme_adjoint(g, x, ans, axis)"},
     tangent={"x": "np.sum(extreme_adjoint(1.0, x, ans, axis) * x_dot, axis=axis)"}, result=reduction)
rule(np.min, np.amin, params="x, axis=None",
     adjoint={"x": "extreme_adjoint(g, x, ans, axis)"},
     tangent={"x": "np.sum(extreme_adjoint(1.0, x, ans, axis) * x_dot, axis=axis)"}, result=reduction)
rule(np.cumsum, params="x, axis=None",
     adjoint={"x": "cumsum_adjoint(g, x, axis)"},
     tangent={"x": "np.cumsum(x_dot, axis=axis)"},
     result=lambda a, c: T.array("f", a["x"].ndim if _along_an_axis(a, c) else 1))
rule(np.dot, params="x, y",
     adjoint={"x": "dot_adjoint_x(g, x, y)", "y": "dot_adjoint_y(g, x, y)"},
     tangent={"x": "np.dot(x_dot, y)", "y": "np.dot(x, y_dot)"}, result=dot_result)
# matmul is np.dot on vectors and matrices; on stacks of matrices it multiplies them pairwise
rule(operator.matmul, np.matmul, params="x, y",
     adjoint={"x": "dot_adjoint_x(g, x, y)", "y": "dot_adjoint_y(g, x, y)"},
     stacked_adjoint={"x": "matmul_adjoint_x(g, x, y)", "y": "matmul_adjoint_y(g, x, y)"},
     tangent={"x": "x_dot @ y", "y": "x @ y_dot"}, result=matmul_result)
rule(np.inner, params="x, y",
     adjoint={"x": "inner_adjoint_x(g, x, y)", "y": "inner_adjoint_y(g, x, y)"},
     tangent={"x": "np.inner(x_dot, y)", "y": "np.inner(x, y_dot)"}, result=dot_result)
rule(np.vdot, params="x, y",
     adjoint={"x": "np.reshape(g * y, np.shape(x))", "y": "np.reshape(g * x, np.shape(y))"},
     tangent={"x": "np.vdot(x_dot, y)", "y": "np.vdot(x, y_dot)"}, result=scalar_result)
rule(np.outer, params="x, y",
     adjoint={"x": "reshape(np.dot(g, np.ravel(y)), np.shape(x))",
              "y": "reshape(np.dot(np.ravel(x), g), np.shape(y))"},
     tangent={"x": "np.outer(x_dot, y)", "y": "np.outer(x, y_dot)"}, result=lambda a, c: T.array("f", 2))
rule(np.reshape, params="x, shape",
     adjoint={"x": "reshape(g, np.shape(x))"},
     tangent={"x": "reshape(x_dot, shape)"},
     result=with_ndim(lambda a, c: _shape_len(a["shape"])))
rule(np.ravel, params="x",
     adjoint={"x": "reshape(g, np.shape(x))"},
     tangent={"x": "np.ravel(x_dot)"}, result=lambda a, c: T.array("f", 1))
rule(np.transpose, params="x, axes=None",
     adjoint={"x": "transpose_adjoint(g, axes)"},
     tangent={"x": "np.transpose(x_dot, axes)"}, result=same_as("x"))
rule(np.swapaxes, params="x, axis1, axis2",
     adjoint={"x": "np.swapaxes(g, axis1, axis2)"},
     tangent={"x": "np.swapaxes(x_dot, axis1, axis2)"}, result=same_as("x"))
rule(np.atleast_1d, params="x",
     adjoint={"x": "unbroadcast(g, x)"},
     tangent={"x": "np.atleast_1d(x_dot)"}, result=lambda a, c: T.array("f", max(1, a["x"].ndim)))
rule(np.expand_dims, params="x, axis",
     adjoint={"x": "reshape(g, np.shape(x))"},
     tangent={"x": "np.expand_dims(x_dot, axis)"}, result=lambda a, c: T.array("f", a["x"].ndim + 1))
rule(np.squeeze, params="x, axis=None",
     adjoint={"x": "reshape(g, np.shape(x))"},
     tangent={"x": "reshape(x_dot, np.shape(ans))"}, result=lambda a, c: squeezed(a, c))


def squeezed(args, consts):
    """np.squeeze along a given axis drops it; without one, the axes of length 1 are not known from
    the argument types (which know ranks, not shapes)."""
    x, axis = args["x"], consts.get("axis")
    if not x.numeric or axis is None and not _along_an_axis(args, consts):
        return T.UNKNOWN
    return T.array("f", x.ndim - (len(axis) if isinstance(axis, tuple) else 1))
def array_of(args, consts):
    """np.array of an array copies it; of a list/tuple of equal items, stacks them on a new axis."""
    def ndim(t):  # of nested lists/tuples of one shape (np.array([[2.0, x], [x, 3.0]])); None if not
        if t.numeric:
            return t.ndim
        inner = {ndim(i) for i in t.items} if t.kind == "tuple" and t.items else {None}
        return None if None in inner or len(inner) > 1 else inner.pop() + 1
    n = ndim(args["x"])
    return T.UNKNOWN if n is None else T.array("f", n)


# (np.array, not np.copy, in the tangent: of a tuple of tangents, Numba stacks them only there)
rule(np.copy, np.array, np.asarray, params="x",
     adjoint={"x": "g"},
     tangent={"x": "np.array(x_dot)"}, result=array_of)
rule(np.concatenate, params="xs, axis=0",
     adjoint={"xs": "split_like(g, xs, axis)"},
     tangent={"xs": "np.concatenate(xs_dot, axis=axis)"},
     result=lambda a, c: a["xs"].items[0] if a["xs"].kind == "tuple" else T.UNKNOWN)
rule(np.stack, params="xs, axis=0",
     adjoint={"xs": "unstack(g, xs, axis)"},
     tangent={"xs": "np.stack(xs_dot, axis=axis)"},
     result=lambda a, c: T.array("f", a["xs"].items[0].ndim + 1) if a["xs"].kind == "tuple" else T.UNKNOWN)
def hstack_of(args, consts):
    """np.hstack of a tuple: its items' kind; of one array: a vector from a vector or a matrix."""
    xs = args["xs"]
    if xs.kind == "tuple":
        return xs.items[0]
    return T.array("f", 1 if xs.ndim <= 2 else xs.ndim) if xs.numeric else T.UNKNOWN


rule(np.hstack, params="xs",
     adjoint={"xs": "hstack_adjoint(g, xs)"},
     tangent={"xs": "np.hstack(xs_dot)"}, result=hstack_of)
rule(np.vstack, params="xs",
     adjoint={"xs": "vstack_adjoint(g, xs)"},
     tangent={"xs": "np.vstack(xs_dot)"},
     result=lambda a, c: T.array("f", 2))
rule(np.full, params="shape, fill_value",
     adjoint={"fill_value": "np.sum(g)"},
     tangent={"fill_value": "np.full(shape, fill_value_dot)"},
     result=with_ndim(lambda a, c: _shape_len(a["shape"])))
rule(np.full_like, params="x, fill_value",
     adjoint={"fill_value": "np.sum(g)"},
     tangent={"fill_value": "np.full(np.shape(x), fill_value_dot)"}, constant="x", result=same_as("x"))
# the trace of a stack of matrices (more than two axes) is an array: x's first two axes summed
rule(np.trace, params="x",
     adjoint={"x": "g * np.eye(np.shape(x)[0], np.shape(x)[1])"},
     stacked_adjoint={"x": "np.multiply.outer(np.eye(np.shape(x)[0], np.shape(x)[1]), g)"},
     tangent={"x": "np.trace(x_dot)"}, result=lambda a, c: T.array("f", max(a["x"].ndim - 2, 0)))
# x may be a list or tuple of numbers (np.linalg.norm([x, y])): np.asarray makes it an array
rule(np.linalg.norm, params="x",
     adjoint={"x": "g * np.asarray(x) / ans"},
     tangent={"x": "np.sum(np.asarray(x) * np.asarray(x_dot)) / ans"}, result=scalar_result)
# np.linalg's functions take stacks of matrices too (the last two axes), one matrix at a time
rule(np.linalg.det, params="x",
     adjoint={"x": "g * ans * np.transpose(np.linalg.inv(x))"},
     stacked_adjoint={"x": "(g * ans)[..., None, None] * np.swapaxes(np.linalg.inv(x), -1, -2)"},
     tangent={"x": "ans * np.trace(np.linalg.solve(x, x_dot))"},
     stacked_tangent={"x": "ans * np.trace(np.linalg.solve(x, x_dot), axis1=-2, axis2=-1)"},
     result=lambda a, c: T.array("f", max(a["x"].ndim - 2, 0)))
rule(np.linalg.inv, params="x",
     adjoint={"x": "-(np.transpose(ans) @ g @ np.transpose(ans))"},
     stacked_adjoint={"x": "-(np.swapaxes(ans, -1, -2) @ g @ np.swapaxes(ans, -1, -2))"},
     tangent={"x": "-(ans @ x_dot @ ans)"}, result=same_as("x"))
rule(np.linalg.solve, params="a, b",
     adjoint={"a": "solve_adjoint_a(g, a, ans)", "b": "np.linalg.solve(np.transpose(a), g)"},
     stacked_adjoint={"a": "solve_adjoint_a(g, a, ans)", "b": "np.linalg.solve(np.swapaxes(a, -1, -2), g)"},
     tangent={"a": "-np.linalg.solve(a, a_dot @ ans)", "b": "np.linalg.solve(a, b_dot)"},
     result=same_as("b"))
# forward mode selects (a NaN tangent of the branch not taken, sqrt's at a negative x, stays out
# of the result, as in JAX); reverse mode masks, and the branch not taken gets a zero adjoint
rule(np.where, params="c, x, y",
     adjoint={"x": "g * ((c != 0) * 1.0)", "y": "g * ((c == 0) * 1.0)"},
     tangent={"x": "np.where(c, x_dot, 0.0)", "y": "np.where(c, 0.0, y_dot)"},
     result=elementwise_type("keep"), broadcasts=True)
# the index arrays are constants: argsort's result, wherever a sort is differentiable
rule(np.take_along_axis, params="x, indices, axis",
     adjoint={"x": "take_along_axis_adjoint(g, x, indices, axis)"},
     tangent={"x": "np.take_along_axis(x_dot, indices, axis)"},
     result=lambda a, c: T.array("f", 1 if "axis" in c and c["axis"] is None else a["x"].ndim))
rule(np.diag, params="v, k=0",
     adjoint={"v": "diag_adjoint(g, v, k)"},
     tangent={"v": "np.diag(v_dot, k)"}, result=lambda a, c: T.array("f", 3 - a["v"].ndim))
rule("astype", params="x, dtype",
     adjoint={"x": "g"}, tangent={"x": "np.copy(x_dot)"}, result=float_same_as("x"))




# ---- scipy.special: registered once a user's code has imported it --------------------------
# (importing SciPy costs a third of a second; s2sad's own import should not pay it)
_scipy_registered = False


def register_scipy_special():
    """Add the scipy.special rules if scipy.special is imported; True when this call added them."""
    global _scipy_registered
    special = sys.modules.get("scipy.special")
    if _scipy_registered or special is None:
        return False
    _scipy_registered = True
    _register([special.erf], lookup(math.erf))
    _register([special.erfc], lookup(math.erfc))
    E(special.expit)("x", x="ans * (1 - ans)")
    rule(special.logsumexp, params="x, axis=None",
         adjoint={"x": "sum_adjoint(g, x, axis) * np.exp(x - sum_adjoint(ans, x, axis))"},
         tangent={"x": "np.sum(x_dot * np.exp(x - sum_adjoint(ans, x, axis)), axis=axis)"}, result=reduction)
    return True


# ---- no derivative: integer, boolean and shape-valued functions, allocation ---
def _alloc(args, consts):
    shape = args.get("shape")
    n = _shape_len(shape) if shape is not None else None
    return T.UNKNOWN if n is None else T.array("f", n)


def _like(args, consts):
    x = args.get("x")
    return T.array("f", x.ndim) if x is not None and x.numeric else T.UNKNOWN


def _arg_extreme(args, consts):
    """argmax/argmin: an int, or along an axis an int array of one rank less."""
    axis = "axis" if "axis" in args else "a1" if "a1" in args else None
    if axis is None or (axis in consts and consts[axis] is None):
        return T.INT
    x = args.get("x")
    return T.array("i", x.ndim - 1) if x is not None and x.numeric else T.UNKNOWN


for _f, _r in [
    (builtins.len, lambda a, c: T.INT), (builtins.int, lambda a, c: T.INT), (builtins.bool, lambda a, c: T.BOOL),
    (builtins.range, lambda a, c: T.OBJ), (builtins.print, lambda a, c: T.OBJ),
    (np.shape, lambda a, c: T.tuple_of([T.INT] * a["x"].ndim) if a["x"].numeric else T.UNKNOWN), (np.ndim, lambda a, c: T.INT), (np.size, lambda a, c: T.INT),
    (np.zeros, _alloc), (np.ones, _alloc), (np.empty, _alloc),
    (np.zeros_like, _like), (np.ones_like, _like), (np.empty_like, _like),
    (np.eye, lambda a, c: T.array("f", 2)), (np.identity, lambda a, c: T.array("f", 2)),
    (np.arange, lambda a, c: T.array(T.max_kind("i", *(t.kind for t in a.values())), 1)),
    (np.argmax, _arg_extreme), (np.argmin, _arg_extreme), (np.argsort, lambda a, c: T.array("i", 1)),
    (np.isnan, lambda a, c: T.broadcast(*a.values(), kind="b")),
    (np.isfinite, lambda a, c: T.broadcast(*a.values(), kind="b")),
    (np.any, lambda a, c: T.BOOL), (np.all, lambda a, c: T.BOOL),
    (math.isnan, lambda a, c: T.BOOL), (math.isfinite, lambda a, c: T.BOOL),
]:
    NONDIFF[key(_f)] = _r
value_free(builtins.len, builtins.print, builtins.range, np.shape, np.ndim, np.size, np.zeros, np.ones, np.empty,
           np.zeros_like, np.ones_like, np.empty_like, np.eye, np.identity)
NONDIFF_NAMES = "len, int, bool, range, np.shape, np.ndim, np.size, np.zeros, np.ones, np.empty, " \
                "np.zeros_like, np.ones_like, np.empty_like, np.eye, np.arange, np.argmax, ..."


