"""Every differentiable rule in `s2sad.rules`, in reverse mode, against central finite differences.

Each case is a function that reduces to a scalar through a fixed random
weight (so the adjoint reaching the rule is not all ones), inputs inside the
function's domain and away from its kinks, and the argument numbers to
differentiate. The reverse-mode gradient must match float64 central
differences (tests/fd.py) with rtol=1e-5, and have the argument's shape.
"""

import builtins
import dis
import math
import operator
import os

import numpy as np
import pytest
import scipy.special
from fd import assert_grad_matches

import s2sad
from s2sad import rules, runtime

rng = np.random.default_rng(20240607)


def weights(*shape):
    """A fixed random weight, bounded away from zero and from one."""
    w = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return float(w) if shape == () else w


def uniform(lo, hi, *shape):
    x = rng.uniform(lo, hi, shape)
    return float(x) if shape == () else x


def case(id, f, *args, argnums=(0,)):
    return pytest.param(f, args, argnums, id=id)


# Domains: each elementwise function sees inputs where it is smooth.
GENERAL = (-1.3, 1.2)
POSITIVE = (0.3, 2.5)
UNIT = (-0.85, 0.85)
ABOVE_MINUS_ONE = (-0.7, 1.5)


def _away_from_zero(lo, hi, *shape):
    x = uniform(0.2, max(abs(lo), abs(hi)), *shape)
    return x * (rng.choice([-1.0, 1.0], shape) if shape else -1.0)


# ---- Python operators ---------------------------------------------------------
def op_add(x, y, w):
    return np.sum((x + y) * w)


def op_sub(x, y, w):
    return np.sum((x - y) * w)


def op_mul(x, y, w):
    return np.sum((x * y) * w)


def op_truediv(x, y, w):
    return np.sum((x / y) * w)


def op_pow(x, y, w):
    return np.sum((x ** y) * w)


def op_mod(x, y, w):
    return np.sum((x % y) * w)


def op_floordiv(x, y, w):
    return np.sum((x // y) * w + x * y)


def np_floor_divide(x, y, w):
    return np.sum(np.floor_divide(x, y) * w + x * y)


def op_neg(x, w):
    return np.sum(-x * w)


def op_pos_then_neg(x, w):
    return np.sum(-(+x) * w)


def op_abs(x, w):
    return np.sum(abs(x) * w)


def op_pow_int_constant(x, w):
    return np.sum(x ** 3 * w)


def op_pow_float_constant(x, w):
    return np.sum(x ** 2.5 * w)


def op_constant_pow(x, w):
    return np.sum(2.0 ** x * w)


def op_constant_minus(x, w):
    return np.sum((3.0 - x) * w)


def op_constant_over(x, w):
    return np.sum((1.5 / x) * w)


def op_mod_constant(x, w):
    return np.sum((x % 1.5) * w)


def builtin_min(x, y, w):
    return min(x, y) * w


def builtin_max(x, y, w):
    return max(x, y) * w


def builtin_pow(x, y, w):
    return pow(x, y) * w


def builtin_float(x, w):
    return float(x) * w


def builtin_float_of_item(x, w):
    return float(x[1]) * w


def builtin_round(x, w):
    return round(x) * w + x


# operator cases over every shape combination: (name, f, x domain, y domain)
BINARY_OPERATORS = [
    ("x+y", op_add, GENERAL, GENERAL),
    ("x-y", op_sub, GENERAL, GENERAL),
    ("x*y", op_mul, GENERAL, GENERAL),
    ("x/y", op_truediv, GENERAL, "nonzero"),
    ("x**y", op_pow, POSITIVE, GENERAL),
    ("x%y", op_mod, (-3.0, 3.0), (0.6, 1.7)),
]

# shape combinations exercising broadcasting: (id, x shape, y shape)
SHAPES = [
    ("scalar,scalar", (), ()),
    ("1d,1d", (4,), (4,)),
    ("scalar,1d", (), (4,)),
    ("1d,scalar", (4,), ()),
    ("(3,1),(1,4)", (3, 1), (1, 4)),
    ("2d,1d", (3, 4), (4,)),
    ("1d,2d", (4,), (3, 4)),
]


def _draw(domain, shape):
    if domain == "nonzero":
        return _away_from_zero(-2.0, 2.0, *shape)
    return uniform(*domain, *shape)


def _result_shape(*shapes):
    return np.broadcast_shapes(*shapes)


def binary_cases(entries, prefix=""):
    out = []
    for label, f, xdom, ydom in entries:
        for shape_id, xs, ys in SHAPES:
            x, y = _draw(xdom, xs), _draw(ydom, ys)
            out.append(case(f"{prefix}{label}[{shape_id}]", f, x, y, weights(*_result_shape(xs, ys)),
                            argnums=(0, 1)))
    return out


OPERATOR_CASES = binary_cases(BINARY_OPERATORS) + [
    case("-x[scalar]", op_neg, 0.7, weights()),
    case("-x[1d]", op_neg, uniform(*GENERAL, 4), weights(4)),
    case("-(+x)[1d]", op_pos_then_neg, uniform(*GENERAL, 4), weights(4)),
    case("abs(x)[negative scalar]", op_abs, -0.7, weights()),
    case("abs(x)[positive scalar]", op_abs, 0.7, weights()),
    case("abs(x)[1d]", op_abs, _away_from_zero(-2, 2, 5), weights(5)),
    case("x**3[negative base]", op_pow_int_constant, np.array([-1.3, -0.4, 0.6, 1.1]), weights(4)),
    case("x**2.5", op_pow_float_constant, uniform(*POSITIVE, 4), weights(4)),
    case("2.0**x", op_constant_pow, uniform(*GENERAL, 4), weights(4)),
    case("3.0-x", op_constant_minus, uniform(*GENERAL, 4), weights(4)),
    case("1.5/x", op_constant_over, _away_from_zero(-2, 2, 4), weights(4)),
    case("x%1.5", op_mod_constant, np.array([-2.9, -0.4, 0.6, 2.2]), weights(4)),
    case("x//y is piecewise constant", op_floordiv, np.array([-2.9, -0.4, 0.6, 2.2]), np.array([0.7, 1.3, 0.9, 1.7]),
         weights(4), argnums=(0, 1)),
    case("np.floor_divide is piecewise constant", np_floor_divide, np.array([-2.9, -0.4, 0.6, 2.2]),
         np.array([0.7, 1.3, 0.9, 1.7]), weights(4), argnums=(0, 1)),
    case("min(x,y)[x smaller]", builtin_min, 0.3, 0.9, weights(), argnums=(0, 1)),
    case("min(x,y)[y smaller]", builtin_min, 0.9, 0.3, weights(), argnums=(0, 1)),
    case("max(x,y)[x larger]", builtin_max, 0.9, 0.3, weights(), argnums=(0, 1)),
    case("max(x,y)[y larger]", builtin_max, 0.3, 0.9, weights(), argnums=(0, 1)),
    case("pow(x,y)", builtin_pow, 1.7, -0.6, weights(), argnums=(0, 1)),
    case("float(x)", builtin_float, 0.8, weights()),
    case("float(x[1])", builtin_float_of_item, np.array([0.2, 0.8, 1.3]), weights()),
    case("round(x) is piecewise constant", builtin_round, 1.3, weights()),
]


# ---- math module (scalars) ------------------------------------------------------
def make_math_unary(fn):
    def f(x, w):
        return fn(x) * w
    return f


def make_math_binary(fn):
    def f(x, y, w):
        return fn(x, y) * w
    return f


def math_floor(x, w):
    return math.floor(x) * w + x


def math_ceil(x, w):
    return math.ceil(x) * w + x


MATH_UNARY = [
    (math.sin, GENERAL), (math.cos, GENERAL), (math.tan, GENERAL),
    (math.asin, UNIT), (math.acos, UNIT), (math.atan, GENERAL),
    (math.sinh, GENERAL), (math.cosh, GENERAL), (math.tanh, GENERAL),
    (math.exp, GENERAL), (math.expm1, GENERAL), (math.log, POSITIVE), (math.log1p, ABOVE_MINUS_ONE),
    (math.log2, POSITIVE), (math.log10, POSITIVE), (math.sqrt, POSITIVE), (math.fabs, "nonzero"),
    (math.erf, GENERAL), (math.erfc, GENERAL),
    (math.asinh, GENERAL), (math.acosh, (1.2, 3.0)), (math.atanh, UNIT), (math.radians, GENERAL),
    (math.degrees, GENERAL),
]
MATH_BINARY = [
    (math.atan2, GENERAL, GENERAL), (math.pow, POSITIVE, GENERAL), (math.hypot, GENERAL, GENERAL),
]

MATH_CASES = [case(f"math.{fn.__name__}", make_math_unary(fn), _draw(dom, ()), weights())
              for fn, dom in MATH_UNARY]
MATH_CASES += [case("math.fabs[positive]", make_math_unary(math.fabs), 0.6, weights())]
MATH_CASES += [case(f"math.{fn.__name__}", make_math_binary(fn), _draw(xd, ()), _draw(yd, ()), weights(),
                    argnums=(0, 1)) for fn, xd, yd in MATH_BINARY]
MATH_CASES += [
    case("math.atan2[second quadrant]", make_math_binary(math.atan2), 0.8, -1.1, weights(), argnums=(0, 1)),
    case("math.fmod[positive x]", make_math_binary(math.fmod), 5.3, 1.7, weights(), argnums=(0, 1)),
    case("math.fmod[negative x truncates]", make_math_binary(math.fmod), -5.3, 1.7, weights(), argnums=(0, 1)),
    case("math.floor is piecewise constant", math_floor, 1.3, weights()),
    case("math.ceil is piecewise constant", math_ceil, 1.3, weights()),
]


# ---- NumPy / SciPy elementwise ---------------------------------------------------
def make_unary(fn):
    def f(x, w):
        return np.sum(fn(x) * w)
    return f


def make_binary(fn):
    def f(x, y, w):
        return np.sum(fn(x, y) * w)
    return f


def np_sign_times_x(x, w):
    return np.sum(np.sign(x) * x * w)


def np_clip(x, lo, hi, w):
    return np.sum(np.clip(x, lo, hi) * w)


def np_clip_method(x, lo, hi, w):
    return np.sum(x.clip(lo, hi) * w)


def np_where(c, x, y, w):
    return np.sum(np.where(c, x, y) * w)


def np_where_of_comparison(x, y, w):
    return np.sum(np.where(x > 0.0, x * x, y) * w)


NP_UNARY = [
    (np.sin, GENERAL), (np.cos, GENERAL), (np.tan, GENERAL),
    (np.arcsin, UNIT), (np.arccos, UNIT), (np.arctan, GENERAL),
    (np.sinh, GENERAL), (np.cosh, GENERAL), (np.tanh, GENERAL),
    (np.exp, GENERAL), (np.expm1, GENERAL), (np.log, POSITIVE), (np.log1p, ABOVE_MINUS_ONE),
    (np.log2, POSITIVE), (np.log10, POSITIVE), (np.sqrt, POSITIVE), (np.square, GENERAL),
    (np.cbrt, "nonzero"), (np.abs, "nonzero"), (np.absolute, "nonzero"), (np.fabs, "nonzero"),
    (np.negative, GENERAL), (np.sign, "nonzero"),
    (np.floor, (0.1, 0.9)), (np.ceil, (0.1, 0.9)), (np.round, (0.1, 0.4)), (np.rint, (0.1, 0.4)),
    (np.trunc, (0.1, 0.9)),
    (np.arcsinh, GENERAL), (np.arccosh, (1.2, 3.0)), (np.arctanh, UNIT), (np.exp2, GENERAL),
    (np.reciprocal, "nonzero"), (np.deg2rad, GENERAL), (np.radians, GENERAL), (np.rad2deg, GENERAL),
    (np.degrees, GENERAL), (np.positive, GENERAL), (np.real, GENERAL), (np.conjugate, GENERAL),
    (np.conj, GENERAL), (np.imag, GENERAL), (np.angle, "nonzero"),
    (scipy.special.erf, GENERAL), (scipy.special.erfc, GENERAL), (scipy.special.expit, GENERAL),
]
NP_BINARY = [
    (np.add, GENERAL, GENERAL), (np.subtract, GENERAL, GENERAL), (np.multiply, GENERAL, GENERAL),
    (np.divide, GENERAL, "nonzero"), (np.true_divide, GENERAL, "nonzero"), (np.power, POSITIVE, GENERAL),
    (np.mod, (-3.0, 3.0), (0.6, 1.7)), (np.remainder, (-3.0, 3.0), (0.6, 1.7)), (np.fmod, (-3.0, 3.0), (0.6, 1.7)),
    (np.maximum, GENERAL, GENERAL), (np.minimum, GENERAL, GENERAL),
    (np.fmax, GENERAL, GENERAL), (np.fmin, GENERAL, GENERAL),
    (np.logaddexp, GENERAL, GENERAL), (np.logaddexp2, GENERAL, GENERAL), (np.arctan2, GENERAL, GENERAL), (np.hypot, GENERAL, GENERAL),
]


def _np_name(fn):
    module = "scipy.special" if fn in (scipy.special.erf, scipy.special.erfc, scipy.special.expit) else "np"
    return f"{module}.{fn.__name__}"


NP_UNARY_CASES = []
for _fn, _dom in NP_UNARY:
    NP_UNARY_CASES.append(case(f"{_np_name(_fn)}[scalar]", make_unary(_fn), _draw(_dom, ()), weights()))
    NP_UNARY_CASES.append(case(f"{_np_name(_fn)}[1d]", make_unary(_fn), _draw(_dom, (5,)), weights(5)))
NP_UNARY_CASES.append(case("np.square[2d]", make_unary(np.square), _draw(GENERAL, (2, 3)), weights(2, 3)))
NP_UNARY_CASES.append(case("np.sign(x)*x", np_sign_times_x, _away_from_zero(-2, 2, 5), weights(5)))

NP_BINARY_CASES = binary_cases([(_np_name(fn), make_binary(fn), xd, yd) for fn, xd, yd in NP_BINARY])

_X_CLIP = np.array([-1.4, -0.3, 0.2, 0.9, 1.6])
NP_SPECIAL_CASES = [
    case("np.clip[scalar bounds]", np_clip, _X_CLIP, -0.5, 1.0, weights(5), argnums=(0, 1, 2)),
    case("np.clip[array bounds]", np_clip, _X_CLIP, np.full(5, -0.5), np.full(5, 1.0), weights(5),
         argnums=(0, 1, 2)),
    case("np.clip[scalar x]", np_clip, 0.4, -0.5, 1.0, weights(), argnums=(0, 1, 2)),
    case("np.clip[scalar x below]", np_clip, -0.9, -0.5, 1.0, weights(), argnums=(0, 1, 2)),
    case("x.clip(lo,hi)", np_clip_method, _X_CLIP, -0.5, 1.0, weights(5), argnums=(0, 1, 2)),
    case("np.where[1d]", np_where, np.array([True, False, True, False]), uniform(*GENERAL, 4),
         uniform(*GENERAL, 4), weights(4), argnums=(1, 2)),
    case("np.where[broadcast scalar y]", np_where, np.array([True, False, True, False]), uniform(*GENERAL, 4),
         0.7, weights(4), argnums=(1, 2)),
    case("np.where[(3,1) cond,(1,4) x,2d y]", np_where, np.array([[True], [False], [True]]),
         uniform(*GENERAL, 1, 4), uniform(*GENERAL, 3, 4), weights(3, 4), argnums=(1, 2)),
    case("np.where[condition from comparison]", np_where_of_comparison, np.array([-0.8, 0.3, -0.2, 1.1]),
         uniform(*GENERAL, 4), weights(4), argnums=(0, 1)),
]


# ---- reductions ----------------------------------------------------------------
def np_sum(x, w):
    return np.sum(x) * w


def np_sum_axis0(x, w):
    return np.sum(np.sum(x, axis=0) * w)


def np_sum_axis1(x, w):
    return np.sum(np.sum(x, axis=1) * w)


def np_sum_axis_minus1(x, w):
    return np.sum(np.sum(x, axis=-1) * w)


def method_sum(x, w):
    return x.sum() * w


def method_sum_axis0(x, w):
    return np.sum(x.sum(axis=0) * w)


def np_mean(x, w):
    return np.mean(x) * w


def np_mean_axis0(x, w):
    return np.sum(np.mean(x, axis=0) * w)


def np_mean_axis1(x, w):
    return np.sum(np.mean(x, axis=1) * w)


def method_mean_axis1(x, w):
    return np.sum(x.mean(axis=1) * w)


def np_prod(x, w):
    return np.prod(x) * w


def np_prod_axis0(x, w):
    return np.sum(np.prod(x, axis=0) * w)


def np_prod_axis1(x, w):
    return np.sum(np.prod(x, axis=1) * w)


def method_prod_axis0(x, w):
    return np.sum(x.prod(axis=0) * w)


def np_max(x, w):
    return np.max(x) * w


def np_max_axis0(x, w):
    return np.sum(np.max(x, axis=0) * w)


def np_max_axis1(x, w):
    return np.sum(np.max(x, axis=1) * w)


def method_max_axis1(x, w):
    return np.sum(x.max(axis=1) * w)


def np_amax(x, w):
    return np.amax(x) * w


def np_min(x, w):
    return np.min(x) * w


def np_min_axis0(x, w):
    return np.sum(np.min(x, axis=0) * w)


def np_min_axis1(x, w):
    return np.sum(np.min(x, axis=1) * w)


def method_min(x, w):
    return x.min() * w


def np_amin(x, w):
    return np.amin(x) * w


def np_cumsum(x, w):
    return np.sum(np.cumsum(x) * w)


def np_cumsum_axis0(x, w):
    return np.sum(np.cumsum(x, axis=0) * w)


def np_cumsum_axis1(x, w):
    return np.sum(np.cumsum(x, axis=1) * w)


def method_cumsum(x, w):
    return np.sum(x.cumsum() * w)


def logsumexp_all(x, w):
    return scipy.special.logsumexp(x) * w


def logsumexp_axis0(x, w):
    return np.sum(scipy.special.logsumexp(x, axis=0) * w)


def logsumexp_axis1(x, w):
    return np.sum(scipy.special.logsumexp(x, axis=1) * w)


_V = uniform(0.4, 1.8, 5) * np.array([1, -1, 1, 1, -1])   # nonzero entries for prod
_M = uniform(0.4, 1.8, 3, 4) * rng.choice([-1.0, 1.0], (3, 4))
REDUCTION_CASES = [
    case("np.sum[1d]", np_sum, _V, weights()),
    case("np.sum[2d]", np_sum, _M, weights()),
    case("np.sum(axis=0)", np_sum_axis0, _M, weights(4)),
    case("np.sum(axis=1)", np_sum_axis1, _M, weights(3)),
    case("np.sum(axis=-1)", np_sum_axis_minus1, _M, weights(3)),
    case("x.sum()", method_sum, _M, weights()),
    case("x.sum(axis=0)", method_sum_axis0, _M, weights(4)),
    case("np.mean[1d]", np_mean, _V, weights()),
    case("np.mean[2d]", np_mean, _M, weights()),
    case("np.mean(axis=0)", np_mean_axis0, _M, weights(4)),
    case("np.mean(axis=1)", np_mean_axis1, _M, weights(3)),
    case("x.mean(axis=1)", method_mean_axis1, _M, weights(3)),
    case("np.prod[1d]", np_prod, _V, weights()),
    case("np.prod[2d]", np_prod, _M, weights()),
    case("np.prod(axis=0)", np_prod_axis0, _M, weights(4)),
    case("np.prod(axis=1)", np_prod_axis1, _M, weights(3)),
    case("x.prod(axis=0)", method_prod_axis0, _M, weights(4)),
    case("np.prod[scalar]", np_prod, 0.7, weights()),
    case("np.prod[one zero entry]", np_prod, np.array([0.0, 1.3, -0.6, 2.0]), weights()),
    case("np.prod[two zero entries]", np_prod, np.array([0.0, 1.3, 0.0, 2.0]), weights()),
    case("np.prod(axis=1)[zero entries]", np_prod_axis1, np.array([[0.0, 1.3, -0.6], [0.7, 1.1, 0.0]]), weights(2)),
    case("np.prod(axis=0)[zero entry]", np_prod_axis0, np.array([[0.0, 1.3, -0.6], [0.7, 1.1, 0.9]]), weights(3)),
    case("np.max[1d]", np_max, _V, weights()),
    case("np.max[2d]", np_max, _M, weights()),
    case("np.max(axis=0)", np_max_axis0, _M, weights(4)),
    case("np.max(axis=1)", np_max_axis1, _M, weights(3)),
    case("x.max(axis=1)", method_max_axis1, _M, weights(3)),
    case("np.amax", np_amax, _V, weights()),
    case("np.min[1d]", np_min, _V, weights()),
    case("np.min[2d]", np_min, _M, weights()),
    case("np.min(axis=0)", np_min_axis0, _M, weights(4)),
    case("np.min(axis=1)", np_min_axis1, _M, weights(3)),
    case("x.min()", method_min, _M, weights()),
    case("np.amin", np_amin, _V, weights()),
    case("np.cumsum[1d]", np_cumsum, _V, weights(5)),
    case("np.cumsum[2d flattens]", np_cumsum, _M, weights(12)),
    case("np.cumsum(axis=0)", np_cumsum_axis0, _M, weights(3, 4)),
    case("np.cumsum(axis=1)", np_cumsum_axis1, _M, weights(3, 4)),
    case("x.cumsum()", method_cumsum, _V, weights(5)),
    case("logsumexp[1d]", logsumexp_all, _V, weights()),
    case("logsumexp[2d]", logsumexp_all, _M, weights()),
    case("logsumexp(axis=0)", logsumexp_axis0, _M, weights(4)),
    case("logsumexp(axis=1)", logsumexp_axis1, _M, weights(3)),
]


# ---- products -----------------------------------------------------------------
def np_dot(x, y, w):
    return np.sum(np.dot(x, y) * w)


def method_dot(x, y, w):
    return np.sum(x.dot(y) * w)


def op_matmul(x, y, w):
    return np.sum((x @ y) * w)


def np_matmul(x, y, w):
    return np.sum(np.matmul(x, y) * w)


def np_outer(x, y, w):
    return np.sum(np.outer(x, y) * w)


def np_inner(x, y, w):
    return np.sum(np.inner(x, y) * w)


def np_vdot(x, y, w):
    return np.vdot(x, y) * w


PRODUCT_SHAPES = [
    ("1d.1d", (4,), (4,), ()),
    ("2d.1d", (3, 4), (4,), (3,)),
    ("1d.2d", (3,), (3, 4), (4,)),
    ("2d.2d", (3, 4), (4, 2), (3, 2)),
]
PRODUCT_CASES = []
for _label, _f in (("np.dot", np_dot), ("x.dot", method_dot), ("x@y", op_matmul), ("np.matmul", np_matmul)):
    for _sid, _xs, _ys, _rs in PRODUCT_SHAPES:
        PRODUCT_CASES.append(case(f"{_label}[{_sid}]", _f, uniform(*GENERAL, *_xs), uniform(*GENERAL, *_ys),
                                  weights(*_rs), argnums=(0, 1)))
# stacks of matrices (more than two axes): np.dot sums x's last axis against y's second to
# last, over every pair of leading indices; matmul multiplies the stacks' matrices pairwise,
# broadcasting their leading axes
STACKED_SHAPES = [("3d.1d", (2, 3, 4), (4,)), ("1d.3d", (4,), (2, 4, 3)), ("3d.2d", (2, 3, 4), (4, 2)),
                  ("2d.3d", (3, 4), (2, 4, 5)), ("3d.3d", (2, 3, 4), (2, 4, 3))]
for _label, _f, _product, _more in (
        ("np.dot", np_dot, np.dot, [("4d.3d", (2, 1, 3, 4), (2, 4, 2))]),
        ("x@y", op_matmul, np.matmul, [("broadcast", (1, 3, 4), (2, 4, 2)), ("4d.3d", (2, 1, 3, 4), (3, 4, 2))])):
    for _sid, _xs, _ys in STACKED_SHAPES + _more:
        _x, _y = uniform(*GENERAL, *_xs), uniform(*GENERAL, *_ys)
        PRODUCT_CASES.append(case(f"{_label}[{_sid}]", _f, _x, _y, weights(*np.shape(_product(_x, _y))),
                                  argnums=(0, 1)))
PRODUCT_CASES += [
    case("np.dot[scalar.1d]", np_dot, 0.7, uniform(*GENERAL, 4), weights(4), argnums=(0, 1)),
    # np.outer flattens its arguments: result is (x.size, y.size)
    case("np.outer[1d.1d]", np_outer, uniform(*GENERAL, 3), uniform(*GENERAL, 4), weights(3, 4), argnums=(0, 1)),
    case("np.outer[2d.1d]", np_outer, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 4), weights(6, 4),
         argnums=(0, 1)),
    case("np.outer[1d.2d]", np_outer, uniform(*GENERAL, 3), uniform(*GENERAL, 2, 2), weights(3, 4),
         argnums=(0, 1)),
    case("np.outer[2d.2d]", np_outer, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 2, 2), weights(6, 4),
         argnums=(0, 1)),
    # np.inner contracts the last axes: result shape x.shape[:-1] + y.shape[:-1]
    case("np.inner[1d.1d]", np_inner, uniform(*GENERAL, 4), uniform(*GENERAL, 4), weights(), argnums=(0, 1)),
    case("np.inner[2d.1d]", np_inner, uniform(*GENERAL, 3, 4), uniform(*GENERAL, 4), weights(3), argnums=(0, 1)),
    case("np.inner[1d.2d]", np_inner, uniform(*GENERAL, 4), uniform(*GENERAL, 3, 4), weights(3), argnums=(0, 1)),
    case("np.inner[2d.2d]", np_inner, uniform(*GENERAL, 3, 4), uniform(*GENERAL, 2, 4), weights(3, 2),
         argnums=(0, 1)),
    # np.vdot flattens both arguments, which need the same size only
    case("np.vdot[1d.1d]", np_vdot, uniform(*GENERAL, 4), uniform(*GENERAL, 4), weights(), argnums=(0, 1)),
    case("np.vdot[2d.1d]", np_vdot, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 6), weights(), argnums=(0, 1)),
    case("np.vdot[1d.2d]", np_vdot, uniform(*GENERAL, 6), uniform(*GENERAL, 3, 2), weights(), argnums=(0, 1)),
    case("np.vdot[2d.2d]", np_vdot, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 2, 3), weights(), argnums=(0, 1)),
]


# ---- shape manipulation -------------------------------------------------------
def np_reshape(x, w):
    return np.sum(np.reshape(x, (3, 2)) * w)


def np_reshape_minus1(x, w):
    return np.sum(np.reshape(x, (-1, 3)) * w)


def method_reshape_tuple(x, w):
    return np.sum(x.reshape((3, 2)) * w)


def method_reshape_varargs(x, w):
    return np.sum(x.reshape(3, 2) * w)


def np_transpose(x, w):
    return np.sum(np.transpose(x) * w)


def np_transpose_axes(x, w):
    return np.sum(np.transpose(x, (1, 2, 0)) * w)


def method_transpose_varargs(x, w):
    return np.sum(x.transpose(2, 0, 1) * w)


def attribute_T(x, w):
    return np.sum(x.T * w)


def np_swapaxes(x, w):
    return np.sum(np.swapaxes(x, 0, 2) * w)


def method_swapaxes(x, w):
    return np.sum(x.swapaxes(0, 1) * w)


def np_expand_dims(x, w):
    return np.sum(np.expand_dims(x, 0) * w)


def np_expand_dims_last(x, w):
    return np.sum(np.expand_dims(x, axis=-1) * w)


def np_squeeze(x, w):
    return np.sum(np.squeeze(x) * w)


def np_squeeze_axis(x, w):
    return np.sum(np.squeeze(x, axis=0) * w)


def np_ravel(x, w):
    return np.sum(np.ravel(x) * w)


def method_ravel(x, w):
    return np.sum(x.ravel() * w)


def method_flatten(x, w):
    return np.sum(x.flatten() * w)


def np_concatenate(x, y, w):
    return np.sum(np.concatenate((x, y)) * w)


def np_concatenate_list(x, y, w):
    return np.sum(np.concatenate([x, y]) * w)


def np_concatenate_axis1(x, y, w):
    return np.sum(np.concatenate((x, y), axis=1) * w)


def np_concatenate_same_twice(x, w):
    return np.sum(np.concatenate((x, x)) * w)


def np_stack(x, y, w):
    return np.sum(np.stack((x, y)) * w)


def np_stack_axis1(x, y, w):
    return np.sum(np.stack((x, y), axis=1) * w)


def np_hstack(x, y, w):
    return np.sum(np.hstack((x, y)) * w)


def np_vstack(x, y, w):
    return np.sum(np.vstack((x, y)) * w)


def np_atleast_1d_number(x, w):
    return np.sum(np.atleast_1d(x) * w)


def np_atleast_1d_matrix(x, w):
    return np.sum(np.atleast_1d(x) * w)


def np_r_(x, y, w):
    return np.sum(np.r_[x, y, 2.0, x] * w)


def np_c_(x, y, w):
    return np.sum(np.c_[x, y, x * y] * w)


def np_c_matrix(x, y, w):
    return np.sum(np.c_[x, y] * w)


def np_linspace(x, y, w):
    return np.sum(np.linspace(x, y, 5) * w)


def np_linspace_open(x, y, w):
    return np.sum(np.linspace(x, y, num=4, endpoint=False) * w)


SHAPE_CASES = [
    case("np.atleast_1d[number]", np_atleast_1d_number, uniform(*GENERAL), weights(1)),
    case("np.atleast_1d[2d]", np_atleast_1d_matrix, uniform(*GENERAL, 2, 3), weights(2, 3)),
    case("np.r_", np_r_, uniform(*GENERAL, 3), uniform(*GENERAL), weights(8), argnums=(0, 1)),
    case("np.c_[1d]", np_c_, uniform(*GENERAL, 3), uniform(*GENERAL, 3), weights(3, 3), argnums=(0, 1)),
    case("np.c_[2d]", np_c_matrix, uniform(*GENERAL, 3, 2), uniform(*GENERAL, 3), weights(3, 3), argnums=(0, 1)),
    case("np.linspace", np_linspace, uniform(*GENERAL), uniform(*GENERAL), weights(5), argnums=(0, 1)),
    case("np.linspace(endpoint=False)", np_linspace_open, uniform(*GENERAL), uniform(*GENERAL), weights(4),
         argnums=(0, 1)),
    case("np.reshape", np_reshape, uniform(*GENERAL, 2, 3), weights(3, 2)),
    case("np.reshape[-1]", np_reshape_minus1, uniform(*GENERAL, 6), weights(2, 3)),
    case("x.reshape((3,2))", method_reshape_tuple, uniform(*GENERAL, 6), weights(3, 2)),
    case("x.reshape(3,2)", method_reshape_varargs, uniform(*GENERAL, 2, 3), weights(3, 2)),
    case("np.transpose[2d]", np_transpose, uniform(*GENERAL, 2, 3), weights(3, 2)),
    case("np.transpose[3d]", np_transpose, uniform(*GENERAL, 2, 3, 4), weights(4, 3, 2)),
    case("np.transpose(axes)", np_transpose_axes, uniform(*GENERAL, 2, 3, 4), weights(3, 4, 2)),
    case("x.transpose(2,0,1)", method_transpose_varargs, uniform(*GENERAL, 2, 3, 4), weights(4, 2, 3)),
    case("x.T", attribute_T, uniform(*GENERAL, 2, 3), weights(3, 2)),
    case("np.swapaxes", np_swapaxes, uniform(*GENERAL, 2, 3, 4), weights(4, 3, 2)),
    case("x.swapaxes", method_swapaxes, uniform(*GENERAL, 2, 3), weights(3, 2)),
    case("np.expand_dims", np_expand_dims, uniform(*GENERAL, 3), weights(1, 3)),
    case("np.expand_dims(axis=-1)", np_expand_dims_last, uniform(*GENERAL, 3), weights(3, 1)),
    case("np.squeeze", np_squeeze, uniform(*GENERAL, 1, 3, 1), weights(3)),
    case("np.squeeze(axis=0)", np_squeeze_axis, uniform(*GENERAL, 1, 3), weights(3)),
    case("np.ravel", np_ravel, uniform(*GENERAL, 2, 3), weights(6)),
    case("x.ravel()", method_ravel, uniform(*GENERAL, 2, 3), weights(6)),
    case("x.flatten()", method_flatten, uniform(*GENERAL, 2, 3), weights(6)),
    case("np.concatenate[1d]", np_concatenate, uniform(*GENERAL, 3), uniform(*GENERAL, 2), weights(5),
         argnums=(0, 1)),
    case("np.concatenate[list]", np_concatenate_list, uniform(*GENERAL, 3), uniform(*GENERAL, 2), weights(5),
         argnums=(0, 1)),
    case("np.concatenate(axis=1)", np_concatenate_axis1, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 2, 1),
         weights(2, 4), argnums=(0, 1)),
    case("np.concatenate[same array twice]", np_concatenate_same_twice, uniform(*GENERAL, 3), weights(6)),
    case("np.stack", np_stack, uniform(*GENERAL, 3), uniform(*GENERAL, 3), weights(2, 3), argnums=(0, 1)),
    case("np.stack(axis=1)", np_stack_axis1, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 2, 3), weights(2, 2, 3),
         argnums=(0, 1)),
    case("np.hstack[1d]", np_hstack, uniform(*GENERAL, 3), uniform(*GENERAL, 2), weights(5), argnums=(0, 1)),
    case("np.hstack[2d]", np_hstack, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 2, 1), weights(2, 4),
         argnums=(0, 1)),
    case("np.vstack[1d]", np_vstack, uniform(*GENERAL, 3), uniform(*GENERAL, 3), weights(2, 3), argnums=(0, 1)),
    case("np.vstack[2d]", np_vstack, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 1, 3), weights(3, 3),
         argnums=(0, 1)),
    case("np.vstack[2d,1d]", np_vstack, uniform(*GENERAL, 2, 3), uniform(*GENERAL, 3), weights(3, 3),
         argnums=(0, 1)),
]


# ---- indexing, copies, allocation ----------------------------------------------
FANCY_INDEX = np.array([0, 0, 3])


def index_constant(x, w):
    return x[2] * w


def index_negative(x, w):
    return x[-1] * w


def index_variable(x, i, w):
    return x[i] * w


def index_row(x, w):
    return np.sum(x[1] * w)


def index_pair(x, w):
    return x[1, 2] * w


def index_pair_variable(x, i, j, w):
    return x[i, j] * w


def index_slice(x, w):
    return np.sum(x[1:4] * w)


def index_step(x, w):
    return np.sum(x[::2] * w)


def index_column(x, w):
    return np.sum(x[:, 0] * w)


def index_block(x, w):
    return np.sum(x[1:3, 2:] * w)


def index_repeated(x, w):
    return (x[0] * x[1] + x[0]) * w


def index_fancy_repeated(x, w):
    return np.sum(x[FANCY_INDEX] * w)


def np_copy(x, w):
    return np.sum(np.copy(x) * w)


def method_copy(x, w):
    return np.sum(x.copy() * w)


def np_array(x, w):
    return np.sum(np.array(x) * w)


def np_asarray(x, w):
    return np.sum(np.asarray(x) * w)


def method_astype(x, w):
    return np.sum(x.astype(float) * w)


def np_full(x, w):
    return np.sum(np.full((2, 3), x) * w)


def np_full_like(x, w):
    return np.sum(np.full_like(w, x) * w * x)


INDEX_CASES = [
    case("x[2]", index_constant, uniform(*GENERAL, 5), weights()),
    case("x[-1]", index_negative, uniform(*GENERAL, 5), weights()),
    case("x[i]", index_variable, uniform(*GENERAL, 5), 3, weights()),
    case("x[1][2d row]", index_row, uniform(*GENERAL, 3, 4), weights(4)),
    case("x[1,2]", index_pair, uniform(*GENERAL, 3, 4), weights()),
    case("x[i,j]", index_pair_variable, uniform(*GENERAL, 3, 4), 2, 1, weights()),
    case("x[1:4]", index_slice, uniform(*GENERAL, 5), weights(3)),
    case("x[::2]", index_step, uniform(*GENERAL, 5), weights(3)),
    case("x[:,0]", index_column, uniform(*GENERAL, 3, 4), weights(3)),
    case("x[1:3,2:]", index_block, uniform(*GENERAL, 3, 4), weights(2, 2)),
    case("x[[0,0,3]] repeated fancy index", index_fancy_repeated, uniform(*GENERAL, 5), weights(3)),
    case("x[0]*x[1]+x[0]", index_repeated, uniform(*GENERAL, 3), weights()),
    case("np.copy", np_copy, uniform(*GENERAL, 4), weights(4)),
    case("x.copy()", method_copy, uniform(*GENERAL, 4), weights(4)),
    case("np.array", np_array, uniform(*GENERAL, 4), weights(4)),
    case("np.asarray", np_asarray, uniform(*GENERAL, 4), weights(4)),
    case("x.astype(float)", method_astype, uniform(*GENERAL, 2, 3), weights(2, 3)),
    case("np.full(shape,x)", np_full, 0.7, weights(2, 3)),
    case("np.full_like(w,x)", np_full_like, 0.7, weights(2, 3), argnums=(0, 1)),
]


# ---- linear algebra -------------------------------------------------------------
def np_trace(x, w):
    return np.trace(x) * w


def linalg_norm(x, w):
    return np.linalg.norm(x) * w


def linalg_det(x, w):
    return np.linalg.det(x) * w


def linalg_inv(x, w):
    return np.sum(np.linalg.inv(x) * w)


def linalg_solve(a, b, w):
    return np.sum(np.linalg.solve(a, b) * w)


def np_diag(x, w):
    return np.sum(np.diag(x) * w) + np.sum(np.diag(x, 1) ** 2)


def take_along_axis(x, w):
    # the order np.argsort finds, reversed along the rows (an index array that is constant)
    return np.sum(np.take_along_axis(x, np.argsort(x, axis=1)[:, ::-1], axis=1) * w)


def _well_conditioned(n):
    return uniform(*GENERAL, n, n) + 3.0 * np.eye(n)


LINALG_CASES = [
    case("np.trace", np_trace, uniform(*GENERAL, 3, 3), weights()),
    case("np.linalg.norm[1d]", linalg_norm, uniform(*GENERAL, 4), weights()),
    case("np.linalg.norm[2d Frobenius]", linalg_norm, uniform(*GENERAL, 3, 4), weights()),
    case("np.linalg.det", linalg_det, _well_conditioned(3), weights()),
    case("np.linalg.det[negative]", linalg_det, _well_conditioned(3)[::-1].copy(), weights()),
    case("np.linalg.inv", linalg_inv, _well_conditioned(3), weights(3, 3)),
    case("np.diag[vector]", np_diag, uniform(*GENERAL, 3), weights(3, 3)),
    case("np.diag[matrix]", np_diag, uniform(*GENERAL, 3, 4), weights(3)),
    case("np.take_along_axis", take_along_axis, uniform(*GENERAL, 3, 4), weights(3, 4)),
    case("np.linalg.solve[1d b]", linalg_solve, _well_conditioned(3), uniform(*GENERAL, 3), weights(3),
         argnums=(0, 1)),
    case("np.linalg.solve[2d b]", linalg_solve, _well_conditioned(3), uniform(*GENERAL, 3, 2), weights(3, 2),
         argnums=(0, 1)),
]


ALL_CASES = (OPERATOR_CASES + MATH_CASES + NP_UNARY_CASES + NP_BINARY_CASES + NP_SPECIAL_CASES
             + REDUCTION_CASES + PRODUCT_CASES + SHAPE_CASES + INDEX_CASES + LINALG_CASES)


@pytest.mark.parametrize("f, args, argnums", ALL_CASES)
def test_reverse_gradient_matches_central_differences(f, args, argnums):
    assert np.ndim(f(*args)) == 0, "the function under test must reduce to a scalar"
    grads = s2sad.grad(f, argnums=argnums)(*args)
    assert len(grads) == len(argnums)
    for i, g in zip(argnums, grads):
        assert np.shape(g) == np.shape(args[i]), f"gradient of argument {i} has the wrong shape"
        assert_grad_matches(g, f, args, i)


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
              "%": operator.mod, "//": operator.floordiv, "@": operator.matmul}


def _referenced(f):
    """The functions `f` calls: globals and their attributes, closure cells, methods, operators."""
    from s2sad.normalize import METHODS
    found, current = [], None
    for ins in dis.get_instructions(f):
        if ins.opname == "LOAD_GLOBAL":
            current = f.__globals__.get(ins.argval, getattr(builtins, ins.argval, None))
        elif ins.opname == "LOAD_DEREF":
            current = f.__closure__[f.__code__.co_freevars.index(ins.argval)].cell_contents
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
            if current is None:  # an attribute of a local array
                current = METHODS.get(ins.argval, np.transpose if ins.argval == "T" else "astype")
            else:
                current = getattr(current, ins.argval, None)
        else:
            if ins.opname == "BINARY_OP":
                found.append(_OPERATORS.get(ins.argrepr))
            elif ins.opname == "UNARY_NEGATIVE":
                found.append(operator.neg)
            current = None
        found.append(current)
    return found


def _rule_name(key):
    for prefix, module in (("np", np), ("np.linalg", np.linalg), ("math", math), ("scipy.special", scipy.special),
                           ("operator", operator), ("builtins", builtins)):
        for name in dir(module):
            if id(getattr(module, name)) == key:
                return f"{prefix}.{name}"
    return repr(key)


def test_every_rule_in_the_table_has_a_case():
    exercised = {rules.key(obj) for param in ALL_CASES for obj in _referenced(param.values[0])}
    # rules of the runtime helpers serve higher-order derivatives of generated code, not user code
    helpers = {rules.key(obj) for obj in vars(runtime).values()}
    # rules users add with custom_vjp/custom_jvp (other tests register some) are not the shipped table
    shipped = [key for key, rule in rules.RULES.items() if getattr(rule, "primal", None) is None]
    missing = sorted(_rule_name(key) for key in shipped if key not in exercised and key not in helpers)
    assert not missing, f"rules without a finite-difference case: {missing}"


def test_scipy_is_imported_by_the_users_code_not_by_s2sad(tmp_path):
    # importing SciPy costs a third of a second: s2sad's rules and Numba versions for scipy.special
    # are added once the user's code has imported it, even after s2sad was imported and used
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import s2sad
        assert "scipy.special" not in sys.modules, "import s2sad imported scipy.special"

        def f(x):
            return np.sum(np.tanh(x))

        s2sad.grad(f, backend="numba")(np.ones(3))
        assert "scipy.special" not in sys.modules, "a gradient without scipy.special imported it"
    """)
    code += textwrap.dedent("""
        import scipy.special

        def g(x):
            return np.sum(scipy.special.expit(x) * scipy.special.erf(x))

        x = np.array([0.3, -1.2, 2.0])
        got = s2sad.grad(g, backend="numba")(x)
        h = 1e-6
        want = [(g(x + h * e) - g(x - h * e)) / (2 * h) for e in np.eye(3)]
        assert np.allclose(got, want, rtol=1e-7), (got, want)
        print("ok")
    """)
    script = tmp_path / "uses_scipy_late.py"  # s2sad reads the functions' source from a file
    script.write_text(code)
    root = os.path.dirname(os.path.dirname(os.path.abspath(s2sad.__file__)))
    env = dict(os.environ, S2SAD_STRICT="1", S2SAD_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([root] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def linalg_on_stacks(x):
    # np.linalg's functions and np.trace on stacks of matrices, np.prod along an axis, a trace
    # of a matrix that is not square
    a = x[:, :, :3] + 3.0 * np.eye(3)
    return (np.sum(np.linalg.det(a) ** 2) + np.sum(np.sin(np.linalg.inv(a))) + np.sum(np.trace(x) ** 2)
            + np.trace(x[0]) + np.sum(np.prod(x, axis=1) ** 2))


def test_stacks_of_matrices_in_linalg_trace_and_products_along_an_axis():
    x = uniform(*GENERAL, 2, 3, 4)
    g = s2sad.grad(linalg_on_stacks)(x)
    assert_grad_matches(g, linalg_on_stacks, (x,))
    np.testing.assert_allclose(s2sad.jacfwd(linalg_on_stacks)(x), g, rtol=1e-9, atol=1e-12)


def stacked_attention(q, k, v):
    # scores of every query against every key, per head: stacks of matrices on both sides of @
    s = np.tanh(q @ np.swapaxes(k, -1, -2))
    return np.sum(np.sin(s @ v)) + np.sum(np.dot(q, k[0, 0]) ** 2)


def test_stacks_of_matrices_agree_in_both_modes_and_to_second_order():
    q, k, v = uniform(*GENERAL, 2, 3, 4), uniform(*GENERAL, 2, 5, 4), uniform(*GENERAL, 2, 5, 3)
    args = (q, k, v)
    grads = s2sad.grad(stacked_attention, argnums=(0, 1, 2))(*args)
    for i in range(3):
        assert_grad_matches(grads[i], stacked_attention, args, i)
    # forward mode: the same gradient, column by column
    np.testing.assert_allclose(s2sad.jacfwd(stacked_attention)(*args), grads[0], rtol=1e-10, atol=1e-12)
    # second order: forward over reverse through matmul_adjoint_x/_y, against differences of the gradient
    hessian = s2sad.hessian(stacked_attention)(*args)
    assert hessian.shape == q.shape * 2
    d = uniform(-1.0, 1.0, *q.shape)
    gq = s2sad.grad(stacked_attention)
    eps = 1e-6
    want = (gq(q + eps * d, k, v) - gq(q - eps * d, k, v)) / (2 * eps)
    np.testing.assert_allclose(np.tensordot(hessian, d, axes=3), want, rtol=1e-6, atol=1e-8)


def test_templates_fold_what_a_constant_operand_decides():
    """With a number for an operand (x ** 2, 2.0 ** y), no expanded template keeps a comparison of
    two numbers or a guard that the number turns off: x ** 2 differentiates to `2 * x`."""
    import gast
    seen = 0
    for rule in {id(r): r for r in rules.RULES.values()}.values():
        if not rule.broadcasts or len(rule.params) != 2:
            continue
        for const_param in rule.params:
            mapping = {p: gast.Name(id=p, ctx=gast.Load(), annotation=None, type_comment=None)
                       for p in (*rule.params, "g", "ans", *(f"{p}_dot" for p in rule.params))}
            mapping[const_param] = gast.Constant(value=2, kind=None)
            for templates in (rule.adjoint, rule.tangent):
                for template in templates.values():
                    expr = rules.expand(template, mapping)
                    seen += 1
                    for node in gast.walk(expr):
                        if isinstance(node, gast.Compare):
                            assert not all(isinstance(e, gast.Constant) for e in [node.left, *node.comparators]), \
                                gast.dump(expr)
                        if isinstance(node, gast.Constant):
                            assert node.value is not False, gast.dump(expr)
    assert seen > 50
    x = gast.Name(id="x", ctx=gast.Load(), annotation=None, type_comment=None)
    g = gast.Name(id="g", ctx=gast.Load(), annotation=None, type_comment=None)
    power = rules.RULES[id(np.power)]
    folded = rules.expand(power.adjoint["x"], {"x": x, "y": gast.Constant(value=2, kind=None), "g": g, "ans": x})
    import ast
    assert ast.unparse(gast.gast_to_ast(folded)) == "g * (2 * x)"
