"""Derivative rules of the runtime helpers that generated adjoint code calls.

Higher-order derivatives transform generated code again, so every helper
the reverse sweep calls needs a rule of its own. Most are linear in the
adjoint they carry (`g`); the tape operations are handled by the forward
transform itself (a parallel tape carries the tangents).
"""

from .. import rules, runtime
from ..ir import types as T
from . import rule


def _same(param):
    return lambda a, c: a[param] if a[param].numeric else T.UNKNOWN


def _like(param):
    return lambda a, c: T.array("f", a[param].ndim) if a[param].numeric else T.UNKNOWN


rule(runtime.unbroadcast, params="g, x", adjoint={}, tangent={"g": "unbroadcast(g_dot, x)"},
     constant="x", result=_like("x"))
rule(runtime.sum_adjoint, params="g, x, axis", adjoint={}, tangent={"g": "sum_adjoint(g_dot, x, axis)"},
     constant="x", result=_like("x"))
rule(runtime.extreme_adjoint, params="g, x, extreme, axis", adjoint={},
     tangent={"g": "extreme_adjoint(g_dot, x, extreme, axis)"}, constant="x, extreme", result=_like("x"))
rule(runtime.cumsum_adjoint, params="g, x, axis", adjoint={}, tangent={"g": "cumsum_adjoint(g_dot, x, axis)"},
     constant="x", result=_like("x"))
rule(runtime.take_along_axis_adjoint, params="g, x, indices, axis", adjoint={},
     tangent={"g": "take_along_axis_adjoint(g_dot, x, indices, axis)"}, constant="x", result=_like("x"))
rule(runtime.diag_adjoint, params="g, v, k", adjoint={}, tangent={"g": "diag_adjoint(g_dot, v, k)"},
     constant="v", result=_like("v"))
rule(runtime.dot_adjoint_x, params="g, x, y", adjoint={},
     tangent={"g": "dot_adjoint_x(g_dot, x, y)", "y": "dot_adjoint_x(g, x, y_dot)"}, constant="x", result=_like("x"))
rule(runtime.dot_adjoint_y, params="g, x, y", adjoint={},
     tangent={"g": "dot_adjoint_y(g_dot, x, y)", "x": "dot_adjoint_y(g, x_dot, y)"}, constant="y", result=_like("y"))
rule(runtime.matmul_adjoint_x, params="g, x, y", adjoint={},
     tangent={"g": "matmul_adjoint_x(g_dot, x, y)", "y": "matmul_adjoint_x(g, x, y_dot)"},
     constant="x", result=_like("x"))
rule(runtime.matmul_adjoint_y, params="g, x, y", adjoint={},
     tangent={"g": "matmul_adjoint_y(g_dot, x, y)", "x": "matmul_adjoint_y(g, x_dot, y)"},
     constant="y", result=_like("y"))
_ADD_DOT_X = {"acc": "acc_dot", "g": "dot_adjoint_x(g_dot, x, y)", "y": "dot_adjoint_x(g, x, y_dot)"}
_ADD_DOT_Y = {"acc": "acc_dot", "g": "dot_adjoint_y(g_dot, x, y)", "x": "dot_adjoint_y(g, x_dot, y)"}
rule(runtime.add_dot_adjoint_x, params="acc, g, x, y", adjoint={}, tangent=_ADD_DOT_X, constant="x", result=_like("x"))
rule(runtime.add_dot_adjoint_y, params="acc, g, x, y", adjoint={}, tangent=_ADD_DOT_Y, constant="y", result=_like("y"))
# a stashed outer product: its tangent is added at once (the stash is the primal's alone; the
# accumulator is read only after add_outer_rows, by when both are whole)
rule(runtime.later_dot_adjoint_x, params="stash, acc, g, x, y", adjoint={}, tangent=_ADD_DOT_X,
     constant="stash, x", result=_like("x"))
rule(runtime.later_dot_adjoint_y, params="stash, acc, g, x, y", adjoint={}, tangent=_ADD_DOT_Y,
     constant="stash, y", result=_like("y"))
rule(runtime.add_outer_rows, params="acc, stash", adjoint={}, tangent={"acc": "acc_dot"},
     constant="stash", result=_same("acc"))
rule(runtime.reshape, params="x, shape", adjoint={}, tangent={"x": "reshape(x_dot, shape)"},
     result=lambda a, c: T.UNKNOWN if a["shape"].kind != "tuple" else T.array("f", len(a["shape"].items)))
rule(runtime.transpose_adjoint, params="g, axes", adjoint={}, tangent={"g": "transpose_adjoint(g_dot, axes)"},
     result=_same("g"))
rule(runtime.split_like, params="g, xs, axis", adjoint={}, tangent={"g": "split_like(g_dot, xs, axis)"},
     constant="xs", result=_same("xs"))
rule(runtime.hstack_adjoint, params="g, xs", adjoint={}, tangent={"g": "hstack_adjoint(g_dot, xs)"},
     result=_same("xs"))
rules.RULES[rules.key(runtime.hstack_adjoint)].constant = frozenset({"xs"})   # read for its items' shapes
rule(runtime.unstack, params="g, xs, axis", adjoint={}, tangent={"g": "unstack(g_dot, xs, axis)"},
     constant="xs", result=_same("xs"))
rule(runtime.vstack_adjoint, params="g, xs", adjoint={}, tangent={"g": "vstack_adjoint(g_dot, xs)"},
     constant="xs", result=_same("xs"))
rule(runtime.solve_adjoint_a, params="g, a, solved", adjoint={},
     tangent={"g": "solve_adjoint_a(g_dot, a, solved)", "solved": "solve_adjoint_a(g, a, solved_dot)",
              "a": "-solve_adjoint_a(np.swapaxes(a_dot, -1, -2) @ np.linalg.solve(np.swapaxes(a, -1, -2), g), "
                   "a, solved)"},
     result=_like("a"))
# np.inner's adjoints are linear in g and in the other operand; the operand itself is read for its shape
rule(runtime.inner_adjoint_x, params="g, x, y", adjoint={},
     tangent={"g": "inner_adjoint_x(g_dot, x, y)", "y": "inner_adjoint_x(g, x, y_dot)"}, result=_like("x"))
rule(runtime.inner_adjoint_y, params="g, x, y", adjoint={},
     tangent={"g": "inner_adjoint_y(g_dot, x, y)", "x": "inner_adjoint_y(g, x_dot, y)"}, result=_like("y"))
for _helper, _shape_only in ((runtime.inner_adjoint_x, "x"), (runtime.inner_adjoint_y, "y")):
    rules.RULES[rules.key(_helper)].constant = frozenset({_shape_only})   # read for its shape alone
# np.prod's adjoint is linear in g; along x it is prod_adjoint_dot, itself linear in g and in x's tangent
rule(runtime.prod_adjoint, params="g, x, axis", adjoint={},
     tangent={"g": "prod_adjoint(g_dot, x, axis)", "x": "prod_adjoint_dot(g, x, x_dot, axis)"}, result=_like("x"))
rule(runtime.prod_adjoint_dot, params="g, x, t, axis", adjoint={},
     tangent={"g": "prod_adjoint_dot(g_dot, x, t, axis)", "t": "prod_adjoint_dot(g, x, t_dot, axis)"},
     result=_like("x"))
rule(runtime.add_at, params="target, index, g", adjoint={},
     tangent={"target": "np.copy(target_dot)", "g": "add_at(np.zeros_like(target), index, g_dot)"},
     result=_like("target"))
def _picked(a, c):
    g, index = a["g"], a["index"]
    if not g.numeric:
        return T.UNKNOWN
    if index.is_scalar:
        return T.array("f", g.ndim - 1)
    if index.is_array and index.kind == "i" and index.ndim == 1:
        return T.array("f", g.ndim)
    return T.UNKNOWN


rule(runtime.scatter_adjoint, params="g, index", adjoint={}, tangent={"g": "scatter_adjoint(g_dot, index)"},
     result=_picked)
# linear in both: one tangent for both (forward mode would add two terms with `+`, which joins tuples)
rule(runtime.add_tuples, params="a, b", adjoint={}, tangent={"a": "a_dot", "b": "b_dot"}, result=_same("a"))
rules.RULES[rules.key(runtime.add_tuples)].joint_tangent = rules.template("add_tuples(a_dot, b_dot)")
rule(runtime.astype, params="x, dtype", adjoint={"x": "g"}, tangent={"x": "np.copy(x_dot)"}, result=_like("x"))
# the user's 1 / (1 + exp(-x)), recognized by normalize
rules.E(runtime.logistic)("x", x="ans * (1 - ans)")
# piecewise constant: zero derivative wherever it exists
rule(runtime.max_share, params="x, y", adjoint={}, tangent={}, result=lambda a, c: T.broadcast(*a.values()))
rule(runtime.inside, params="x, lo, hi", adjoint={}, tangent={}, result=lambda a, c: T.broadcast(*a.values()))

# tape operations: the forward transform mirrors them on a tangent tape (forward.py)
rules.NONDIFF[rules.key(runtime.pop)] = lambda a, c: a.get("a1", T.UNKNOWN)
rules.NONDIFF[rules.key(runtime.push)] = lambda a, c: T.OBJ
rules.NONDIFF[rules.key(runtime.pop_shape)] = lambda a, c: a.get("a1", T.UNKNOWN)
rules.NONDIFF[rules.key(runtime.push_shape)] = lambda a, c: T.OBJ
rules.NONDIFF[rules.key(runtime.tape_get)] = lambda a, c: a.get("a2", T.UNKNOWN)
rules.NONDIFF[rules.key(runtime.tape_put)] = lambda a, c: T.OBJ
rules.NONDIFF[rules.key(runtime.tape_reserve)] = lambda a, c: T.INT
rules.NONDIFF[rules.key(runtime.tape_release)] = lambda a, c: T.INT

rules.NONDIFF[rules.key(runtime.outer_rows)] = lambda a, c: T.OBJ
for _f, _r in [(runtime.zeros_like, lambda a, c: _like("x")(a, c)), (runtime.reversed_range, lambda a, c: T.OBJ),
               (runtime.reversed_first, lambda a, c: T.INT),
               (runtime.Tape, lambda a, c: T.OBJ)]:
    rules.NONDIFF[rules.key(_f)] = _r
rules.value_free(runtime.pop, runtime.push, runtime.pop_shape, runtime.push_shape, runtime.tape_get, runtime.tape_put,
                 runtime.tape_reserve, runtime.tape_release, runtime.outer_rows, runtime.zeros_like,
                 runtime.reversed_range, runtime.reversed_first, runtime.Tape)
