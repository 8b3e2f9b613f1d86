"""Every derivative rule in the registry, generated into test cases and checked against float64 central
differences.

The registry (`s2sad.rules.RULES`, the rules of the runtime helpers, and `s2sad.definitions`) is
the list of what is tested: each registered function needs an entry in SAMPLES below, which says
how to call it (an expression in the operands a, b, c, d, with axes and index arrays written in)
and where to sample its operands (a domain and a shape per operand). A rule registered without
one fails test_every_registered_rule_has_sampling_info, so a new rule is tested the moment it
is declared.

From each sample form the generator writes functions into one source file (s2sad reads source),

    def f(a, b, w):                 # plain
        return np.sum(w * (np.power(a, b)))
    def f(a, b, w):                 # the result assigned back to an operand's name
        a = np.power(a, b)
        return np.sum(w * a)
    def f(a, b, w):                 # the same in a loop (where op maps a's domain into itself)
        for i in range(2):
            a = np.power(a, b)
        return np.sum(w * a)

(w is a fixed random weight, so the adjoint reaching the rule is not all ones), and checks each
against central differences of the function itself, tests/fd.py:

- first order: every non-empty subset of the operands as argnums, in reverse mode (grad) and
  forward mode (jacfwd), on backend="python"; and on backend="numba" (strict: asked for by name,
  a fallback to Python raises) the plain function with all operands active, in both modes (each
  Numba compile costs seconds);
- second order: hessian (forward over reverse) and jacfwd(jacfwd), per operand, against central
  differences of the first derivative (itself checked above against differences of f); under
  Numba, the hessian in the first operand.

Reverse mode is tested where the rule has adjoints (the runtime helpers' rules are tangents only:
generated adjoint code is differentiated again in forward mode).

By default a sample of the cases runs (seeded per run: --rule-table-seed, or S2SAD_RULE_TABLE_SEED,
else the day's number; the seed is in pytest's header); `pytest --full` runs them all.
"""

import hashlib
import importlib.util
import inspect
import itertools
import math
import operator
import os
import random
import re
import sys
import tempfile
import warnings

import gast
import numpy as np
import pytest
import scipy.special

import s2sad
from fd import numerical_grad
from s2sad import rules, runtime
from s2sad.rules import definitions, helpers as runtime_rules  # noqa: F401  (registers the helpers' rules)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_rules_doc  # noqa: E402  (the registry's names: rules are keyed by id(function))


# ---- domains: where an operand is sampled, and where it stays valid ------------------------
class Domain:
    """Operands drawn uniformly from [lo, hi) (with a random sign where `signed`); `valid` says
    whether a value is still inside the domain (a loop feeds the result back in)."""

    def __init__(self, name, lo, hi, valid, signed=False, offgrid=False, well=False):
        self.name, self.lo, self.hi, self.valid = name, lo, hi, valid
        self.signed, self.offgrid, self.well = signed, offgrid, well

    def sample(self, rng, shape):
        x = rng.uniform(self.lo, self.hi, shape)
        if self.signed:
            x = x * rng.choice([-1.0, 1.0], shape)
        if self.offgrid:   # k + 0.15..0.35 or k + 0.65..0.85: away from integers and halves
            x = np.floor(x) + rng.choice([0.25, 0.75], shape) + rng.uniform(-0.1, 0.1, shape)
        if self.well:      # a well-conditioned square matrix (or a stack of them)
            x = 0.3 * x + 3.0 * np.eye(shape[-1])
        return float(x) if shape == () else x


def _between(lo, hi):
    return lambda x: bool(np.all(np.isfinite(x)) and np.all(np.asarray(x) > lo) and np.all(np.asarray(x) < hi))


def _offgrid(x):
    frac = np.asarray(x) - np.floor(x)
    return bool(np.all(np.abs(frac - 0.5) > 0.05) and np.all(frac > 0.05) and np.all(frac < 0.95))


GENERAL = Domain("general", -1.3, 1.2, _between(-5.0, 5.0))
POSITIVE = Domain("positive", 0.3, 2.5, _between(0.1, 10.0))
UNIT = Domain("unit", -0.85, 0.85, _between(-0.95, 0.95))
ABOVE_MINUS_ONE = Domain("above -1", -0.7, 1.5, _between(-0.9, 10.0))
NONZERO = Domain("nonzero", 0.3, 1.3, lambda x: _between(-5.0, 5.0)(x) and bool(np.all(np.abs(x) > 0.1)),
                 signed=True)
OFFGRID = Domain("off the integers", -2.0, 2.0, lambda x: _between(-5.0, 5.0)(x) and _offgrid(x), offgrid=True)
NEAR_ONE = Domain("near 1", 0.97, 1.03, _between(0.9, 1.1))
ABOVE_ONE = Domain("above 1", 1.2, 3.0, _between(1.05, 10.0))
MOD_X = Domain("mod dividend", 0.2, 0.8, _between(0.05, 1.0))
MOD_Y = Domain("mod divisor", 1.1, 1.9, _between(1.05, 2.0))
LOW = Domain("clip low", -0.5, -0.3, _between(-0.6, -0.2))
HIGH = Domain("clip high", 0.3, 0.5, _between(0.2, 0.6))
WELL = Domain("well-conditioned", -1.0, 1.0, lambda x: bool(np.all(np.linalg.cond(x) < 10.0)), well=True)


class Operand:
    """An operand: sampled from `domain` with `shape`, or the fixed `value` (an edge of a domain)."""

    def __init__(self, domain=None, shape=(), value=None):
        self.domain, self.shape, self.value = domain, tuple(shape), value

    def draw(self, rng):
        if self.value is not None:
            return float(self.value) if np.ndim(self.value) == 0 else np.array(self.value, dtype=float)
        return self.domain.sample(rng, self.shape)

    def valid(self, x):
        if self.value is not None:
            return False   # an edge point is not a domain a loop may feed back into
        return np.shape(x) == self.shape and self.domain.valid(x)


def D(domain, *shape):
    return Operand(domain, shape)


def V(value):
    return Operand(value=value)


class Form:
    """One way to call a registered function: `expr` in the operands a, b, c, d (in order).

    `pre`: statements before it (helpers that take a stash); `active`: the operands that may be
    differentiated (all by default; an edge point where a partial derivative is undefined leaves
    that operand out); `order`: 2 where second derivatives are checked too; `edge`: a fixed point
    on the edge of the domain (its id says which)."""

    def __init__(self, expr, *operands, id=None, pre=(), active=None, order=2, edge=False):
        self.expr, self.operands, self.pre = expr, operands, tuple(pre)
        self.active = tuple(range(len(operands))) if active is None else tuple(active)
        self.order, self.edge = order, edge
        self.id = id or ",".join(_shape_name(o.shape) for o in operands)


def _shape_name(shape):
    return {0: "scalar", 1: "vec", 2: "mat"}.get(len(shape), f"{len(shape)}d") + (
        "" if len(shape) == 0 else "".join(str(s) for s in shape))


OPERAND_NAMES = "abcd"
INFIX = {"operator.add": "({a} + {b})", "operator.sub": "({a} - {b})", "operator.mul": "({a} * {b})",
         "operator.truediv": "({a} / {b})", "operator.pow": "({a} ** {b})", "operator.mod": "({a} % {b})",
         "operator.floordiv": "({a} // {b})", "operator.matmul": "({a} @ {b})", "operator.neg": "(-{a})"}


def call(name, nargs):
    """How generated test code spells a call of `name` on a, b, ...: infix for operators."""
    if name in INFIX:
        return INFIX[name].format(**{n: n for n in OPERAND_NAMES})
    return f"{name}({', '.join(OPERAND_NAMES[:nargs])})"


# ---- shapes ---------------------------------------------------------------------------------
SCALAR = [()]
UNARY_SHAPES = [(), (3,), (2, 3)]
# same shapes, a number with an array, and both sides broadcasting
BINARY_SHAPES = [((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((), (2, 3)), ((2, 3), ()), ((3,), (2, 3)),
                 ((2, 1), (1, 3))]


def unary(name, domain, shapes=UNARY_SHAPES, order=2):
    return [Form(call(name, 1), D(domain, *s), order=order) for s in shapes]


def binary(name, da, db, shapes=BINARY_SHAPES, order=2):
    return [Form(call(name, 2), D(da, *sa), D(db, *sb), order=order) for sa, sb in shapes]


def scalar_only(name):
    return name.startswith("math.") or name in ("abs", "float", "pow", "max", "min", "round")


# ---- the sampling table: every registered function's forms --------------------------------
SAMPLES = {}


def samples(*names):
    """Register forms for `names`; a form builder gets each name in turn."""
    def define(build):
        for name in names:
            SAMPLES[name] = build(name)
        return build
    return define


def _elementwise_unary(domain, *names):
    @samples(*names)
    def build(name):
        return unary(name, domain, SCALAR if scalar_only(name) else UNARY_SHAPES)


_elementwise_unary(GENERAL, "operator.neg", "np.negative", "float", "np.square", "np.sin", "math.sin",
                   "np.cos", "math.cos", "np.arctan", "math.atan", "np.sinh", "math.sinh", "np.cosh",
                   "math.cosh", "np.tanh", "math.tanh", "np.exp", "math.exp", "np.expm1", "math.expm1",
                   "math.erf", "math.erfc", "scipy.special.erf", "scipy.special.erfc",
                   "scipy.special.expit", "runtime.logistic", "np.arcsinh", "math.asinh", "np.exp2",
                   "np.deg2rad", "np.radians", "math.radians", "np.rad2deg", "np.degrees", "math.degrees",
                   "np.positive", "np.real", "np.conjugate", "np.imag")
_elementwise_unary(ABOVE_ONE, "np.arccosh", "math.acosh")
_elementwise_unary(UNIT, "np.arctanh", "math.atanh", "np.tan", "math.tan", "np.arcsin", "math.asin", "np.arccos", "math.acos")
_elementwise_unary(POSITIVE, "np.log", "math.log", "np.log2", "math.log2", "np.log10", "math.log10",
                   "np.sqrt", "math.sqrt")
_elementwise_unary(ABOVE_MINUS_ONE, "np.log1p", "math.log1p")
_elementwise_unary(NONZERO, "np.cbrt", "np.reciprocal", "np.angle")
# piecewise constant: zero derivative away from the jumps
_elementwise_unary(OFFGRID, "np.sign", "np.floor", "np.ceil", "np.round", "np.rint", "np.trunc",
                   "math.floor", "math.ceil", "round")


@samples("abs", "np.absolute", "np.fabs", "math.fabs")
def _abs(name):
    # at 0 the documented derivative is np.sign(0) = 0, which central differences give too
    shapes = SCALAR if scalar_only(name) else UNARY_SHAPES
    return unary(name, NONZERO, shapes) + [Form(call(name, 1), V(0.0), id="at 0", order=1, edge=True)]


def _elementwise_binary(da, db, *names):
    @samples(*names)
    def build(name):
        return binary(name, da, db, [((), ())] if scalar_only(name) else BINARY_SHAPES)


_elementwise_binary(GENERAL, GENERAL, "operator.add", "np.add", "operator.sub", "np.subtract", "operator.mul",
                    "np.multiply", "np.logaddexp", "np.logaddexp2")
_elementwise_binary(GENERAL, NONZERO, "operator.truediv", "np.divide", "np.arctan2", "math.atan2")
_elementwise_binary(NONZERO, NONZERO, "np.hypot", "math.hypot")
_elementwise_binary(MOD_X, MOD_Y, "operator.mod", "np.remainder", "math.fmod", "np.fmod")
_elementwise_binary(OFFGRID, NEAR_ONE, "operator.floordiv", "np.floor_divide")


@samples("operator.pow", "np.power", "math.pow", "pow")
def _power(name):
    forms = binary(name, POSITIVE, GENERAL, [((), ())] if scalar_only(name) else BINARY_SHAPES)
    # at a zero base: 0 ** 2 has derivative 0 in both operands; 0 ** 1.5 in the exponent (in the
    # base, central differences would step below 0); x ** 0 is 1, derivative 0 in x, also at 0
    forms += [Form(call(name, 2), V(0.0), V(2.0), id="0 ** 2", order=1, edge=True),
              Form(call(name, 2), V(0.0), V(1.5), id="0 ** 1.5", order=1, edge=True, active=(1,)),
              Form(call(name, 2), V(0.0), V(0.0), id="0 ** 0", order=1, edge=True, active=(0,))]
    if not scalar_only(name):
        forms += [Form(call(name, 2), V([0.0, 0.0, 1.5]), V([2.0, 1.5, 2.5]), id="zero bases", order=1,
                       edge=True, active=(1,)),
                  Form(call(name, 2), V([0.0, 0.7, 1.5]), V(0.0), id="zero exponent", order=1, edge=True,
                       active=(0,))]
    return forms


@samples("np.maximum", "max", "np.fmax", "np.minimum", "min", "np.fmin")
def _extremes(name):
    # equal arguments: the documented derivative is 1/2 to each, what central differences give
    forms = binary(name, GENERAL, GENERAL, [((), ())] if scalar_only(name) else BINARY_SHAPES)
    forms.append(Form(call(name, 2), V(0.7), V(0.7), id="tie", order=1, edge=True))
    if not scalar_only(name):
        forms.append(Form(call(name, 2), V([0.2, -0.4, 0.9]), V([0.2, 0.3, 0.9]), id="ties", order=1, edge=True))
    return forms


SAMPLES["np.clip"] = [Form("np.clip(a, b, c)", D(GENERAL, *s), D(LOW, *lo), D(HIGH, *hi))
                      for s, lo, hi in [((), (), ()), ((6,), (), ()), ((2, 3), (3,), ()), ((2, 3), (2, 3), (2, 3))]]


def _reduction(name, domain=GENERAL):
    forms = [Form(f"{name}(a)", D(domain)), Form(f"{name}(a)", D(domain, 4)), Form(f"{name}(a)", D(domain, 2, 3))]
    for axis in (0, 1, -1):
        forms.append(Form(f"{name}(a, axis={axis})", D(domain, 2, 3), id=f"mat23,axis={axis}"))
    forms.append(Form(f"{name}(a, axis=1)", D(domain, 2, 3, 4), id="3d234,axis=1"))
    return forms


for _name in ("np.sum", "np.mean", "np.max", "np.amax", "np.min", "np.amin", "scipy.special.logsumexp"):
    SAMPLES[_name] = _reduction(_name)
SAMPLES["np.prod"] = _reduction("np.prod", NONZERO) + [
    Form("np.prod(a)", V([0.5, 0.0, 2.0]), id="a zero", edge=True),
    Form("np.prod(a, axis=1)", V([[0.5, 0.0, 2.0], [0.0, 3.0, 0.0]]), id="zeros,axis=1", edge=True)]
for _name in ("np.max", "np.amax", "np.min", "np.amin"):
    # a tie of two: the documented share is 1/2 each, what central differences give
    SAMPLES[_name] += [Form(f"{_name}(a)", V([0.3, 0.9, 0.9] if "max" in _name else [0.3, 0.3, 0.9]),
                            id="tie", order=1, edge=True)]
SAMPLES["np.cumsum"] = [Form("np.cumsum(a)", D(GENERAL, 4)), Form("np.cumsum(a)", D(GENERAL, 2, 3)),
                        Form("np.cumsum(a, axis=0)", D(GENERAL, 2, 3), id="mat23,axis=0"),
                        Form("np.cumsum(a, axis=1)", D(GENERAL, 2, 3), id="mat23,axis=1")]

PRODUCT_SHAPES = {
    "np.dot": [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((), (3,)), ((2, 3), ()),
               ((2, 2, 3), (3, 4)), ((3,), (2, 3, 4))],
    "matmul": [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (2, 3, 4)),
               ((2, 3), (2, 3, 4)), ((2, 2, 3), (3,))],
    "np.inner": [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)), ((), (3,)), ((2, 2, 3), (3,))],
    "np.vdot": [((3,), (3,)), ((2, 3), (2, 3))],
    "np.outer": [((3,), (2,)), ((2, 2), (3,))],
}
for _name in ("np.dot", "operator.matmul", "np.matmul", "np.inner", "np.vdot", "np.outer"):
    SAMPLES[_name] = binary(_name, GENERAL, GENERAL,
                            PRODUCT_SHAPES["matmul" if "matmul" in _name else _name])

SAMPLES.update({
    "np.reshape": [Form("np.reshape(a, (3, 2))", D(GENERAL, 2, 3)), Form("np.reshape(a, (2, 2))", D(GENERAL, 4)),
                   Form("a.reshape((6,))", D(GENERAL, 2, 3), id="method")],
    "np.ravel": [Form("np.ravel(a)", D(GENERAL, 2, 3)), Form("a.ravel()", D(GENERAL, 3), id="method")],
    "np.transpose": [Form("np.transpose(a)", D(GENERAL, 2, 3)), Form("a.T", D(GENERAL, 3, 2), id="T"),
                     Form("np.transpose(a, (1, 2, 0))", D(GENERAL, 2, 3, 4), id="3d,axes")],
    "np.swapaxes": [Form("np.swapaxes(a, 0, 1)", D(GENERAL, 2, 3)),
                    Form("np.swapaxes(a, 0, 2)", D(GENERAL, 2, 3, 4))],
    "np.expand_dims": [Form("np.expand_dims(a, 0)", D(GENERAL, 3)), Form("np.expand_dims(a, 1)", D(GENERAL, 2, 3))],
    "np.squeeze": [Form("np.squeeze(a)", D(GENERAL, 2, 1, 3)), Form("np.squeeze(a, axis=0)", D(GENERAL, 1, 3))],
    "np.copy": [Form("np.copy(a)", D(GENERAL, 3)), Form("a.copy()", D(GENERAL, 2, 3), id="method")],
    "np.array": [Form("np.array(a)", D(GENERAL, 3)), Form("np.array([a, b])", D(GENERAL), D(GENERAL)),
                 Form("np.array((a, b))", D(GENERAL, 3), D(GENERAL, 3))],
    "np.asarray": [Form("np.asarray(a)", D(GENERAL, 2, 3)), Form("np.asarray([a, b, a])", D(GENERAL), D(GENERAL))],
    "np.concatenate": [Form("np.concatenate((a, b))", D(GENERAL, 2), D(GENERAL, 3)),
                       Form("np.concatenate((a, b), axis=1)", D(GENERAL, 2, 3), D(GENERAL, 2, 2)),
                       Form("np.concatenate([a, b, a])", D(GENERAL, 2), D(GENERAL, 3), id="list")],
    "np.stack": [Form("np.stack((a, b))", D(GENERAL, 3), D(GENERAL, 3)),
                 Form("np.stack((a, b), axis=1)", D(GENERAL, 2, 3), D(GENERAL, 2, 3))],
    "np.hstack": [Form("np.hstack((a, b))", D(GENERAL, 2), D(GENERAL, 3)),
                  Form("np.hstack((a, b))", D(GENERAL, 2, 3), D(GENERAL, 2, 2)),
                  Form("np.hstack(a)", D(GENERAL, 3), id="one vector"),
                  Form("np.hstack(a)", D(GENERAL, 2, 3), id="one matrix")],
    "np.vstack": [Form("np.vstack((a, b))", D(GENERAL, 3), D(GENERAL, 3)),
                  Form("np.vstack((a, b))", D(GENERAL, 2, 3), D(GENERAL, 3))],
    "np.full": [Form("np.full((2, 3), a)", D(GENERAL))],
    "np.full_like": [Form("np.full_like(b, a)", D(GENERAL), D(GENERAL, 2, 3))],
    "np.trace": [Form("np.trace(a)", D(GENERAL, 3, 3)), Form("np.trace(a)", D(GENERAL, 3, 4)),
                 Form("np.trace(a)", D(GENERAL, 3, 3, 2), id="stack")],
    "np.linalg.norm": [Form("np.linalg.norm(a)", D(NONZERO, 3)), Form("np.linalg.norm(a)", D(NONZERO, 2, 3)),
                       Form("np.linalg.norm([a, a + 2.0])", D(GENERAL), id="list")],
    "np.linalg.det": [Form("np.linalg.det(a)", D(WELL, 3, 3)), Form("np.linalg.det(a)", D(WELL, 2, 3, 3))],
    "np.linalg.inv": [Form("np.linalg.inv(a)", D(WELL, 3, 3)), Form("np.linalg.inv(a)", D(WELL, 2, 3, 3))],
    "np.linalg.solve": [Form("np.linalg.solve(a, b)", D(WELL, 3, 3), D(GENERAL, 3)),
                        Form("np.linalg.solve(a, b)", D(WELL, 3, 3), D(GENERAL, 3, 2)),
                        Form("np.linalg.solve(a, b[..., None])", D(WELL, 5, 4, 4), D(GENERAL, 5, 4),
                             id="stack,columns"),
                        Form("np.linalg.solve(a, b)", D(WELL, 2, 3, 3), D(GENERAL, 2, 3, 2), id="stack")],
    "np.where": [Form("np.where(MASK3, a, b)", D(GENERAL, 3), D(GENERAL, 3)),
                 Form("np.where(MASK3, a, b)", D(GENERAL, 3), D(GENERAL)),
                 Form("np.where(MASK23, a, b)", D(GENERAL, 3), D(GENERAL, 2, 3)),
                 Form("np.where(a > 0.0, a, b)", D(NONZERO, 3), D(GENERAL, 3), id="vec,vec,mask of a")],
    "np.take_along_axis": [Form("np.take_along_axis(a, IDX23, 1)", D(GENERAL, 2, 3)),
                           Form("np.take_along_axis(a, IDX23, axis=0)", D(GENERAL, 3, 3), id="mat33,axis=0"),
                           Form("np.take_along_axis(a, np.argsort(a, axis=1), axis=1)", D(GENERAL, 2, 3),
                                id="argsort")],
    "np.diag": [Form("np.diag(a)", D(GENERAL, 3)), Form("np.diag(a)", D(GENERAL, 3, 4)),
                Form("np.diag(a, 1)", D(GENERAL, 3), id="vec,k=1"), Form("np.diag(a, -1)", D(GENERAL, 3, 3),
                                                                           id="mat,k=-1")],
    "ndarray.astype": [Form("a.astype(np.float64)", D(GENERAL, 3))],
    "np.atleast_1d": [Form("np.atleast_1d(a)", D(GENERAL)), Form("np.atleast_1d(a)", D(GENERAL, 3))],
})

# definitions: plain NumPy that s2sad differentiates instead of a rule
SAMPLES.update({
    "np.var": [Form("np.var(a)", D(GENERAL, 4)), Form("np.var(a)", D(GENERAL, 2, 3)),
               Form("np.var(a, axis=0)", D(GENERAL, 2, 3), id="axis=0"),
               Form("np.var(a, ddof=1)", D(GENERAL, 4), id="ddof=1"), Form("np.var(a)", D(GENERAL))],
    "np.std": [Form("np.std(a)", D(GENERAL, 4)), Form("np.std(a, axis=1)", D(GENERAL, 2, 3), id="axis=1"),
               Form("np.std(a, ddof=1)", D(GENERAL, 2, 3), id="ddof=1"),
               # the standard deviation of one number is 0 whatever it is: derivative 0
               Form("np.std(a)", D(GENERAL), id="one number"), Form("np.std(a)", D(GENERAL, 1), id="one element")],
    "np.diff": [Form("np.diff(a)", D(GENERAL, 4)), Form("np.diff(a, 2)", D(GENERAL, 2, 4), id="n=2"),
                Form("np.diff(a, axis=0)", D(GENERAL, 3, 2), id="axis=0")],
    "np.flip": [Form("np.flip(a)", D(GENERAL, 2, 3)), Form("np.flip(a, 1)", D(GENERAL, 2, 3), id="axis=1")],
    "np.flipud": [Form("np.flipud(a)", D(GENERAL, 3, 2))],
    "np.fliplr": [Form("np.fliplr(a)", D(GENERAL, 2, 3))],
    "np.roll": [Form("np.roll(a, 1)", D(GENERAL, 4)), Form("np.roll(a, 2, axis=1)", D(GENERAL, 2, 3), id="axis=1")],
    "np.repeat": [Form("np.repeat(a, 2)", D(GENERAL, 3)), Form("np.repeat(a, 2, axis=0)", D(GENERAL, 2, 3),
                                                               id="axis=0")],
    "np.tile": [Form("np.tile(a, 2)", D(GENERAL, 3)), Form("np.tile(a, 2)", D(GENERAL, 2, 3))],
    "np.cumprod": [Form("np.cumprod(a)", D(NONZERO, 4)), Form("np.cumprod(a, axis=1)", D(NONZERO, 2, 3),
                                                              id="axis=1"),
                   Form("np.cumprod(a)", V([0.5, 0.0, 2.0, 1.5]), id="a zero", edge=True)],
    "np.linspace": [Form("np.linspace(a, b, 5)", D(GENERAL), D(GENERAL)),
                    Form("np.linspace(a, b, 4, endpoint=False)", D(GENERAL), D(GENERAL), id="endpoint=False")],
    "np.sort": [Form("np.sort(a)", D(GENERAL, 4)), Form("np.sort(a, axis=0)", D(GENERAL, 3, 2), id="axis=0"),
                Form("np.sort(a, axis=None)", D(GENERAL, 2, 3), id="axis=None")],
})

# the runtime helpers generated adjoint code calls: their rules are tangents (forward mode
# differentiates generated code again); an operand read for its shape alone has derivative 0
SAMPLES.update({
    "runtime.unbroadcast": [Form("runtime.unbroadcast(a, b)", D(GENERAL, 2, 3), D(GENERAL, 3)),
                            Form("runtime.unbroadcast(a, b)", D(GENERAL, 2, 3), D(GENERAL, 2, 1)),
                            Form("runtime.unbroadcast(a, b)", D(GENERAL, 2, 3), D(GENERAL))],
    "runtime.sum_adjoint": [Form("runtime.sum_adjoint(a, b, 0)", D(GENERAL, 3), D(GENERAL, 2, 3)),
                            Form("runtime.sum_adjoint(a, b, None)", D(GENERAL), D(GENERAL, 2, 3))],
    "runtime.extreme_adjoint": [
        Form("runtime.extreme_adjoint(a, b, np.max(b, axis=0), 0)", D(GENERAL, 3), D(GENERAL, 2, 3)),
        Form("runtime.extreme_adjoint(a, b, np.min(b), None)", D(GENERAL), D(GENERAL, 2, 3))],
    "runtime.prod_adjoint": [Form("runtime.prod_adjoint(a, b, None)", D(GENERAL), D(NONZERO, 4)),
                             Form("runtime.prod_adjoint(a, b, 1)", D(GENERAL, 2), D(NONZERO, 2, 3))],
    # (its derivative along x, a third derivative of np.prod, is refused: x is left out)
    "runtime.prod_adjoint_dot": [Form("runtime.prod_adjoint_dot(a, b, c, None)", D(GENERAL), D(NONZERO, 4), D(GENERAL, 4),
                                      active=(0, 2)),
                                 Form("runtime.prod_adjoint_dot(a, b, c, 1)", D(GENERAL, 2), D(NONZERO, 2, 3),
                                      D(GENERAL, 2, 3), active=(0, 2)),
                                 Form("runtime.prod_adjoint_dot(a, b, c, 0)", D(GENERAL, 3), V([[0.5, 0.0, 2.0],
                                      [0.0, 3.0, 1.5]]), D(GENERAL, 2, 3), id="zeros,axis=0", active=(0, 2))],
    "runtime.cumsum_adjoint": [Form("runtime.cumsum_adjoint(a, b, None)", D(GENERAL, 6), D(GENERAL, 2, 3)),
                               Form("runtime.cumsum_adjoint(a, b, 1)", D(GENERAL, 2, 3), D(GENERAL, 2, 3))],
    "runtime.take_along_axis_adjoint": [
        Form("runtime.take_along_axis_adjoint(a, b, IDX23, 1)", D(GENERAL, 2, 3), D(GENERAL, 2, 3))],
    "runtime.diag_adjoint": [Form("runtime.diag_adjoint(a, b, 0)", D(GENERAL, 3, 3), D(GENERAL, 3)),
                             Form("runtime.diag_adjoint(a, b, 1)", D(GENERAL, 3), D(GENERAL, 3, 4))],
    "runtime.dot_adjoint_x": [Form("runtime.dot_adjoint_x(a, b, c)", D(GENERAL, 2), D(GENERAL, 2, 3), D(GENERAL, 3)),
                              Form("runtime.dot_adjoint_x(a, b, c)", D(GENERAL, 2, 4), D(GENERAL, 2, 3),
                                   D(GENERAL, 3, 4))],
    "runtime.dot_adjoint_y": [Form("runtime.dot_adjoint_y(a, b, c)", D(GENERAL, 2), D(GENERAL, 2, 3), D(GENERAL, 3)),
                              Form("runtime.dot_adjoint_y(a, b, c)", D(GENERAL, 2, 4), D(GENERAL, 2, 3),
                                   D(GENERAL, 3, 4))],
    "runtime.matmul_adjoint_x": [Form("runtime.matmul_adjoint_x(a, b, c)", D(GENERAL, 2, 2, 4), D(GENERAL, 2, 2, 3),
                                      D(GENERAL, 2, 3, 4))],
    "runtime.matmul_adjoint_y": [Form("runtime.matmul_adjoint_y(a, b, c)", D(GENERAL, 2, 2, 4), D(GENERAL, 2, 2, 3),
                                      D(GENERAL, 2, 3, 4))],
    "runtime.inner_adjoint_x": [Form("runtime.inner_adjoint_x(a, b, c)", D(GENERAL, 2, 4), D(GENERAL, 2, 3),
                                     D(GENERAL, 4, 3)),
                                Form("runtime.inner_adjoint_x(a, b, c)", D(GENERAL), D(GENERAL, 3), D(GENERAL, 3))],
    "runtime.inner_adjoint_y": [Form("runtime.inner_adjoint_y(a, b, c)", D(GENERAL, 2, 4), D(GENERAL, 2, 3),
                                     D(GENERAL, 4, 3)),
                                Form("runtime.inner_adjoint_y(a, b, c)", D(GENERAL), D(GENERAL, 3), D(GENERAL, 3))],
    # the accumulator is a copy (a * 1.0): these add into it in place
    "runtime.add_dot_adjoint_x": [Form("runtime.add_dot_adjoint_x(a * 1.0, b, c, d)", D(GENERAL, 2, 3),
                                       D(GENERAL, 2), D(GENERAL, 2, 3), D(GENERAL, 3))],
    "runtime.add_dot_adjoint_y": [Form("runtime.add_dot_adjoint_y(a * 1.0, b, c, d)", D(GENERAL, 3),
                                       D(GENERAL, 2), D(GENERAL, 2, 3), D(GENERAL, 3))],
    "runtime.later_dot_adjoint_x": [Form("runtime.add_outer_rows(runtime.later_dot_adjoint_x(s, a * 1.0, b, c, d), s)",
                                         D(GENERAL, 2, 3), D(GENERAL, 2), D(GENERAL, 2, 3), D(GENERAL, 3),
                                         pre=["s = runtime.outer_rows(a, 4)"])],
    "runtime.later_dot_adjoint_y": [Form("runtime.add_outer_rows(runtime.later_dot_adjoint_y(s, a * 1.0, b, c, d), s)",
                                         D(GENERAL, 3, 2), D(GENERAL, 2), D(GENERAL, 3), D(GENERAL, 3, 2),
                                         pre=["s = runtime.outer_rows(a, 4)"])],
    "runtime.add_outer_rows": [Form("runtime.add_outer_rows(a * 1.0, runtime.outer_rows(a, 4))", D(GENERAL, 2, 3))],
    "runtime.reshape": [Form("runtime.reshape(a, (3, 2))", D(GENERAL, 2, 3))],
    "runtime.transpose_adjoint": [Form("runtime.transpose_adjoint(a, (1, 2, 0))", D(GENERAL, 2, 3, 4)),
                                  Form("runtime.transpose_adjoint(a, None)", D(GENERAL, 2, 3))],
    "runtime.split_like": [Form("runtime.split_like(a, (b, c), 0)[1]", D(GENERAL, 5), D(GENERAL, 2), D(GENERAL, 3)),
                           Form("runtime.split_like(a, (b, c), 1)[0]", D(GENERAL, 2, 5), D(GENERAL, 2, 2),
                                D(GENERAL, 2, 3))],
    "runtime.hstack_adjoint": [Form("runtime.hstack_adjoint(a, (b, c))[1]", D(GENERAL, 5), D(GENERAL, 2), D(GENERAL, 3)),
                               Form("runtime.hstack_adjoint(a, b)", D(GENERAL, 6), D(GENERAL, 2, 3))],
    "runtime.unstack": [Form("runtime.unstack(a, (b, b), 0)[1]", D(GENERAL, 2, 3), D(GENERAL, 3))],
    "runtime.vstack_adjoint": [Form("runtime.vstack_adjoint(a, (b, c))[1]", D(GENERAL, 3, 3), D(GENERAL, 3),
                                    D(GENERAL, 2, 3))],
    "runtime.solve_adjoint_a": [Form("runtime.solve_adjoint_a(a, b, c)", D(GENERAL, 3), D(WELL, 3, 3), D(GENERAL, 3)),
                                Form("runtime.solve_adjoint_a(a, b, c)", D(GENERAL, 3, 2), D(WELL, 3, 3),
                                     D(GENERAL, 3, 2))],
    "runtime.add_at": [Form("runtime.add_at(a, IDX3, b)", D(GENERAL, 4), D(GENERAL, 3))],
    "runtime.scatter_adjoint": [Form("runtime.scatter_adjoint(a, IDX3)", D(GENERAL, 4))],
    "runtime.add_tuples": [Form("runtime.add_tuples((a, b), (c, d))[1]", D(GENERAL, 3), D(GENERAL, 2),
                                D(GENERAL, 3), D(GENERAL, 2))],
    "runtime.astype": [Form("runtime.astype(a, np.float64)", D(GENERAL, 3))],
    "runtime.max_share": [Form("runtime.max_share(a, b) * c", D(GENERAL, 3), D(GENERAL, 3), D(GENERAL, 3))],
    "runtime.inside": [Form("runtime.inside(a, b, c) * a", D(GENERAL, 4), D(LOW), D(HIGH))],
})

# constants the forms read (index arrays and masks), defined in the generated module
CONSTANTS = """\
IDX3 = np.array([0, 2, 2])
IDX23 = np.array([[2, 0, 1], [1, 1, 0]])
MASK3 = np.array([True, False, True])
MASK23 = np.array([[True, False, True], [False, False, True]])
"""


# ---- the registry: what must be tested --------------------------------------------------
def registered():
    """name -> (rule or None, the functions it covers) for every rule the registry ships and every
    definition: a rule added to s2sad shows up here with nobody writing a case."""
    names = gen_rules_doc.names_by_key()
    out = {names[key]: rule for key, rule in gen_rules_doc.builtin_rules().items()}
    for func in definitions.DEFINITIONS:
        out[f"np.{func.__name__}"] = None
    return out


def reverse_mode_applies(rule):
    """A rule with tangents but no adjoints (a runtime helper's) is differentiated in forward mode only."""
    return rule is None or bool(rule.adjoint) or not rule.tangent


# ---- cases --------------------------------------------------------------------------------
class Variant:
    """A generated function: the form as written (`plain`), assigned to operand `target`, or that in a
    loop of two trips."""

    def __init__(self, kind, target=None):
        self.kind, self.target = kind, target
        self.id = kind if target is None else f"{kind} {target}"


class Generated:
    """One form's sampled operands and generated functions."""

    def __init__(self, name, index, form, rng):
        self.name, self.form = name, form
        self.key = f"f{index}"
        self.id = f"{name}[{form.id}]"
        self.args = [o.draw(rng) for o in form.operands]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = self._evaluate(self.args)
        self.weight = _weight(rng, np.shape(value))
        self.variants = [Variant("plain")] + self._aliases()

    def _evaluate(self, args, target=None, trips=1):
        env = dict(MODULE_GLOBALS)
        env.update(zip(OPERAND_NAMES, args))
        for _ in range(trips):
            for stmt in self.form.pre:
                exec(stmt, env)
            value = eval(self.form.expr, env)
            if target is not None:
                env[target] = value
        return value

    def _aliases(self):
        """`a = op(a, b)` for each array or number operand whose type the result keeps (a name keeps
        one type under Numba), and the same in a loop where op maps the operand's domain into itself."""
        out = []
        if self.form.pre:
            return out
        for i in self.form.active:
            name, x = OPERAND_NAMES[i], self.args[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = self._evaluate(self.args, name)
            if np.ndim(value) != np.ndim(x) or isinstance(value, tuple):
                continue
            out.append(Variant("assigned to", name))
            if np.shape(value) == np.shape(x) and self.form.operands[i].valid(value):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        twice = self._evaluate(self.args, name, trips=2)
                except (ArithmeticError, ValueError, np.linalg.LinAlgError):
                    continue   # the second trip leaves the domain
                if np.all(np.isfinite(twice)):
                    out.append(Variant("in a loop, assigned to", name))
        return out

    def source(self, variant):
        params = ", ".join(OPERAND_NAMES[:len(self.form.operands)] + "w")
        lines = [f"def {self.function_name(variant)}({params}):"]
        body = [*self.form.pre]
        if variant.kind == "plain":
            body.append(f"return np.sum(w * ({self.form.expr}))")
        elif variant.kind == "assigned to":
            body += [f"{variant.target} = {self.form.expr}", f"return np.sum(w * {variant.target})"]
        else:
            body += ["for i in range(2):", f"    {variant.target} = {self.form.expr}",
                     f"return np.sum(w * {variant.target})"]
        return "\n".join(lines + ["    " + b for b in body]) + "\n"

    def function_name(self, variant):
        return f"{self.key}_{variant.kind.split()[0][:2]}{variant.target or ''}"


def _weight(rng, shape):
    w = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return float(w) if shape == () else w


MODULE_GLOBALS = {"np": np, "math": math, "scipy": scipy, "runtime": runtime}
exec(CONSTANTS, MODULE_GLOBALS)


def _generate():
    """Sample every form (one fixed seed: the same operands every run) and write all functions into
    one module, so that each is compiled once per process and its source is a file s2sad can read."""
    rng = np.random.default_rng(20261206)
    table = []
    for name in sorted(SAMPLES):
        for form in SAMPLES[name]:
            table.append(Generated(name, len(table), form, rng))
    text = "\n".join(["import math", "", "import numpy as np", "import scipy.special", "",
                      "from s2sad import runtime", "", CONSTANTS]
                     + ["\n" + g.source(v) for g in table for v in g.variants])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), f"s2sad-rule-table-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"rule_table_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(f"rule_table_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return table, module


TABLE, MODULE = _generate()
BY_ID = {g.id: g for g in TABLE}
REGISTRY = registered()


def _subsets(active):
    return [s for r in range(1, len(active) + 1) for s in itertools.combinations(active, r)]


def first_order_cases():
    """(generated id, variant id, argnums, mode, backend) for every case."""
    out = []
    for g in TABLE:
        modes = ("reverse", "forward") if reverse_mode_applies(REGISTRY.get(g.name)) else ("forward",)
        for v in g.variants:
            for argnums in _subsets(g.form.active):
                if v.kind != "plain" and OPERAND_NAMES.index(v.target) not in argnums and len(argnums) > 1:
                    continue   # an alias is about the operand it overwrites: alone, or with all the others
                for mode in modes:
                    out.append((g.id, v.id, argnums, mode, "python"))
                    # Numba compiles each case for seconds: the form as written, all operands active
                    if v.kind == "plain" and argnums == g.form.active:
                        out.append((g.id, v.id, argnums, mode, "numba"))
    return out


def second_order_cases():
    out = []
    for g in TABLE:
        if g.form.order < 2 or g.name.startswith("runtime."):
            continue   # (a helper's second derivative is a primitive's third)
        for i in g.form.active:
            kinds = ("hessian", "jacfwd(jacfwd)") if reverse_mode_applies(REGISTRY.get(g.name)) \
                else ("jacfwd(jacfwd)",)
            for kind in kinds:
                out.append((g.id, "plain", i, kind, "python"))
                if kind == "hessian" and i == g.form.active[0]:
                    out.append((g.id, "plain", i, kind, "numba"))
    return out


def _case_id(case):
    gid, vid, argnums, mode, backend = case
    which = "".join(OPERAND_NAMES[i] for i in argnums) if isinstance(argnums, tuple) else OPERAND_NAMES[argnums]
    return f"{gid}-{vid}-d{which}-{mode}-{backend}"


def _sample(cases, k, seed, salt):
    """k cases drawn with the run's seed, Numba's fewer (each compiles for seconds)."""
    if k >= len(cases):
        return cases
    return random.Random(f"{seed}-{salt}").sample(cases, k)


# Cases that fail for a reason outside the rules (a limitation of s2sad or Numba, with its error),
# by case id (`*` matches anything): expected to fail, strictly, so a fix shows up as an XPASS.
XFAIL = {
    "math.fmod[scalar,scalar]-plain-*-numba": "Numba has no math.fmod (generated code's `math` is Python's module)",
    **dict.fromkeys(["np.dot[3d223,mat34]-plain-dab-reverse-numba", "np.dot[3d223,mat34]-plain-da-hessian-numba"],
                    "dot_adjoint_x's Numba version (numba_backend.py) takes vectors and matrices"),
    "np.dot[vec3,3d234]-plain-*-numba": "Numba's np.dot (and s2sad's stand-in) takes a stack on the left only",
    **dict.fromkeys(["np.linalg.det[3d233]-plain-*-numba", "np.linalg.inv[3d233]-plain-*-numba",
                     "np.linalg.solve[stack*]-plain-*-numba"], "Numba's np.linalg takes one matrix, not a stack"),
    **dict.fromkeys([f"{name}[{shapes}]-plain-*-numba" for name in ("np.matmul", "operator.matmul")
                     for shapes in ("3d223,3d234", "mat23,3d234", "3d223,vec3")],
                    "Numba's @ multiplies vectors and matrices, not stacks"),
    "np.trace[stack]-plain-*-numba": "Numba's np.trace takes a matrix, not a stack",
    "np.vstack[mat23,vec3]-plain-*-numba": "Numba's np.vstack takes arrays of one rank",
    **dict.fromkeys(["runtime.matmul_adjoint_x[3d224,3d223,3d234]-plain-*-numba",
                     "runtime.matmul_adjoint_y[3d224,3d223,3d234]-plain-*-numba"],
                    "the Numba versions of matmul_adjoint_x/y (numba_backend.py) take vectors and matrices"),
    "scipy.special.logsumexp[scalar]-plain-*-numba": "the Numba version of scipy.special.logsumexp "
                                                     "(numba_backend.py) takes an array, not a number",
    "np.squeeze[3d213]-plain-*-numba": "np.squeeze without an axis under Numba: the result's rank depends on the "
                                       "shape, which Numba's types do not know",
    **dict.fromkeys(["np.squeeze[3d213]-plain-da-hessian-python", "np.squeeze[3d213]-plain-da-jacfwd(jacfwd)-*"],
                    "np.squeeze without an axis: the result's rank is not known from the argument types (ranks, "
                    "not shapes), so its derivative is not differentiated again (S2SADError)"),
}


def _marked(case):
    reasons = [r for pattern, r in XFAIL.items()
               if re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), _case_id(case))]
    return pytest.param(case, marks=[pytest.mark.xfail(strict=True, reason=reasons[0])] if reasons else [],
                        id=_case_id(case))


SAMPLED = {"first python": 120, "first numba": 5, "second python": 30, "second numba": 1}


def pytest_generate_tests(metafunc):
    full = metafunc.config.getoption("--full")
    seed = metafunc.config.rule_table_seed
    for fixture, cases in (("first_order_case", first_order_cases()), ("second_order_case", second_order_cases())):
        if fixture not in metafunc.fixturenames:
            continue
        if not full:
            order = fixture.split("_")[0]
            cases = [c for backend in ("python", "numba")
                     for c in _sample([c for c in cases if c[-1] == backend], SAMPLED[f"{order} {backend}"],
                                      seed, f"{order} {backend}")]
        metafunc.parametrize(fixture, [_marked(c) for c in cases])


# ---- the references: central differences --------------------------------------------------
_REFERENCES = {}
_TRANSFORMED = {}


def function(g, vid):
    variant = next(v for v in g.variants if v.id == vid)
    return getattr(MODULE, g.function_name(variant))


def reference_gradient(g, vid, i):
    """d f / d operand i by central differences of f itself (tests/fd.py)."""
    key = (g.id, vid, i)
    if key not in _REFERENCES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _REFERENCES[key] = numerical_grad(function(g, vid), (*g.args, g.weight), argnum=i)
    return _REFERENCES[key]


def transformed(kind, f, argnums, backend):
    """One transformed function per (kind, function, argnums, backend), shared by every test that
    needs it: each Numba compile costs seconds."""
    key = (kind, f.__name__, argnums, backend)
    if key not in _TRANSFORMED:
        if kind == "reverse":
            _TRANSFORMED[key] = s2sad.grad(f, argnums=argnums, backend=backend)
        elif kind == "forward":
            _TRANSFORMED[key] = s2sad.jacfwd(f, argnums=argnums, backend=backend)
        elif kind == "hessian":
            _TRANSFORMED[key] = s2sad.hessian(f, argnums=argnums, backend=backend)
        else:
            _TRANSFORMED[key] = s2sad.jacfwd(s2sad.jacfwd(f, argnums=argnums, backend=backend), argnums=argnums,
                                             backend=backend)
    return _TRANSFORMED[key]


def assert_close(got, want, what, rtol=1e-5, atol=1e-7):
    assert np.shape(got) == np.shape(want), f"{what}: shape {np.shape(got)}, want {np.shape(want)}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


# ---- the tests ------------------------------------------------------------------------------
def test_first_derivative_matches_central_differences(first_order_case):
    gid, vid, argnums, mode, backend = first_order_case
    g = BY_ID[gid]
    f = function(g, vid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NumPy's at an edge (0 * log(0) in a rule)
        got = transformed(mode, f, argnums, backend)(*g.args, g.weight)
    assert isinstance(got, tuple) and len(got) == len(argnums)
    for i, d in zip(argnums, got):
        assert_close(d, reference_gradient(g, vid, i),
                     f"{mode} mode, {backend}: d/d{OPERAND_NAMES[i]} of\n{inspect.getsource(f)}")


def test_second_derivative_matches_central_differences_of_the_first(second_order_case):
    gid, vid, i, kind, backend = second_order_case
    g = BY_ID[gid]
    f = function(g, vid)
    args = [*g.args, g.weight]
    x = np.asarray(args[i], dtype=float)
    # the first derivative, checked against differences of f by test_first_derivative_...
    first = transformed("reverse" if kind == "hessian" else "forward", f, i, "python")
    want = np.zeros(x.shape + x.shape)
    for k in np.ndindex(x.shape):
        h = 1e-5 * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        args_up, args_down = list(args), list(args)
        args_up[i], args_down[i] = (float(up), float(down)) if x.ndim == 0 else (up, down)
        want[(...,) + k] = (np.asarray(first(*args_up)) - np.asarray(first(*args_down))) / (2 * h)
    got = transformed(kind, f, i, backend)(*args)
    assert_close(got, want, f"{kind}, {backend}: d2/d{OPERAND_NAMES[i]}2 of\n{inspect.getsource(f)}",
                 rtol=1e-4, atol=1e-6)


def test_every_registered_rule_has_sampling_info():
    missing = sorted(set(REGISTRY) - set(SAMPLES))
    assert not missing, f"registered without forms in tests/test_rule_table.py SAMPLES (so untested): {missing}"
    stale = sorted(set(SAMPLES) - set(REGISTRY))
    assert not stale, f"forms in SAMPLES for functions the registry does not have: {stale}"


def _axis_given(expr, how):
    """The axis a call of a definition's function gives: "none" (the default), "None", or "other"."""
    call = gast.parse(expr, mode="eval").body
    axis = [k.value for k in call.keywords if k.arg == "axis"]
    if not axis and how.axis_at is not None and len(call.args) > how.axis_at:
        axis = [call.args[how.axis_at]]
    if not axis:
        return "none"
    value = axis[0].value if isinstance(axis[0], gast.Constant) else "other"
    return "None" if value is None else "none" if value == how.default_axis else "other"


def test_every_definition_is_sampled_in_each_of_its_variants():
    # a definition is chosen by the call: no axis (plain), another axis (along), axis=None (flat)
    for func, how in definitions.DEFINITIONS.items():
        given = {_axis_given(f.expr, how) for f in SAMPLES[f"np.{func.__name__}"]}
        wanted = {"none"} | ({"other"} if how.along is not None else set()) | ({"None"} if how.flat else set())
        assert wanted <= given, f"np.{func.__name__}: no form calls its definition {wanted - given}"


def _helpers_called(rule):
    """The runtime helpers a rule's templates call."""
    found = set()
    for templates in (rule.adjoint, rule.tangent, rule.stacked_adjoint, rule.stacked_tangent):
        for template in templates.values():
            for node in gast.walk(template):
                if isinstance(node, gast.Call) and isinstance(node.func, gast.Name) \
                        and node.func.id in runtime.HELPERS:
                    found.add(node.func.id)
    joint = getattr(rule, "joint_tangent", None)
    if joint is not None:
        found |= {n.func.id for n in gast.walk(joint) if isinstance(n, gast.Call) and isinstance(n.func, gast.Name)
                  and n.func.id in runtime.HELPERS}
    return found


def _numba_version(func):
    """Does Numba's typing know `func` (an overload, or a function it compiles)?"""
    from numba.core.registry import cpu_target
    from s2sad.backends import numba as numba_backend  # noqa: F401  (registers the overloads)
    context = cpu_target.typing_context
    context.refresh()
    try:
        return context.resolve_value_type(func) is not None
    except Exception:
        return False


def test_every_helper_has_its_rule_and_its_numba_version():
    # generated code calls a helper where a rule's template names it; it runs under Numba only with a
    # Numba version, and it is differentiated again (second order) only with a rule of its own
    called = set()
    for rule in gen_rules_doc.builtin_rules().values():
        called |= _helpers_called(rule)
    unknown = sorted(n for n in called if n not in runtime.HELPERS)
    assert not unknown, f"rules call helpers runtime.py does not define: {unknown}"
    problems = []
    for name, helper in sorted(runtime.HELPERS.items()):
        if isinstance(helper, type):
            continue   # Tape and TupleAdjoint: classes the backends provide
        has_rule = rules.lookup(helper) is not None or rules.nondiff(helper) is not None
        has_numba = _numba_version(helper)
        if name in called and not has_rule:
            problems.append(f"{name}: rules' templates call it, but it has no rule of its own (second order)")
        if name in called and not has_numba:
            problems.append(f"{name}: rules' templates call it, but it has no Numba version")
        if has_rule != has_numba:
            problems.append(f"{name}: a rule {'without' if has_rule else 'only in'} a Numba version")
    assert not problems, "\n".join(problems)


# ---- stories the table cannot tell ------------------------------------------------------------
def log_plus_sqrt(x):
    return np.log(x) + np.sqrt(x)


def test_log_and_sqrt_at_zero_have_numpys_infinite_derivative_under_numba():
    # at 0 the derivatives 1 / x and 0.5 / sqrt(x) are +inf in NumPy's float64 arithmetic (with a
    # warning); Numba's default error model raised ZeroDivisionError inside generated code instead
    with np.errstate(divide="ignore"):
        want = np.float64(1.0) / np.float64(0.0) + np.float64(0.5) / np.sqrt(np.float64(0.0))
    assert want == np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = s2sad.grad(log_plus_sqrt, backend="numba")(0.0)
    assert got == want
