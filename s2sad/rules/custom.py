"""User-defined derivative rules: `custom_vjp` and `custom_jvp`, with JAX's conventions.

    @s2sad.custom_vjp
    def f(x): ...
    def f_fwd(x): return f(x), residuals
    def f_bwd(residuals, g): return (x_bar,)
    f.defvjp(f_fwd, f_bwd)

    @s2sad.custom_jvp
    def f(x): ...
    @f.defjvp
    def f_jvp(primals, tangents): return f(*primals), tangent_out

A definition adds a rule to the rule table. The functions it names are
plain Python: generated code calls them by name, so they are themselves
differentiated when generated code is transformed again.
"""

import functools
import inspect
import math

import numpy as np

from .. import rules, runtime
from ..ir import types as T

# names generated code uses for users' rule functions -> the functions
NAMES = {}


def register_name(stem, fn, avoid=()):
    """A name for `fn` in generated modules, distinct from other registered names and `avoid`."""
    if not stem.isidentifier():  # a lambda
        stem = "rule"
    name = stem
    n = 1
    while (name in NAMES and NAMES[name] is not fn) or name in avoid:
        n += 1
        name = f"{stem}{n}"
    NAMES[name] = fn
    return name


class _Custom:
    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.params = list(inspect.signature(fun).parameters)
        self.primal_name = register_name(f"{fun.__name__}_primal", fun)

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def _rule(self, adjoint, tangent, joint_tangent=None):
        rule = rules.Rule(", ".join(self.params), adjoint, tangent, lambda a, c: T.UNKNOWN)
        rule.joint_tangent = rules.template(joint_tangent) if joint_tangent else None
        rule.primal = self.fun
        rules.RULES[rules.key(self)] = rule
        return rule


class custom_vjp(_Custom):
    """A function whose reverse-mode derivative is given by the user."""

    def defvjp(self, fwd, bwd):
        fwd_name = register_name(_stem(fwd, f"{self.fun.__name__}_fwd"), fwd)
        bwd_name = register_name(_stem(bwd, f"{self.fun.__name__}_bwd"), bwd)
        args = ", ".join(self.params)
        adjoint = {p: f"{bwd_name}({fwd_name}({args})[1], g)[{i}]" for i, p in enumerate(self.params)}
        # forward mode from the reverse rule: exact for a scalar output (J x_dot = sum(J^T 1 * x_dot))
        tangent = {p: f"scalar_output_tangent({bwd_name}({fwd_name}({args})[1], 1.0)[{i}], {p}_dot, ans)"
                   for i, p in enumerate(self.params)}
        self._rule(adjoint, tangent).tangent_from_vjp = True
        return self


class custom_jvp(_Custom):
    """A function whose forward-mode derivative is given by the user."""

    def defjvp(self, jvp_rule):
        name = register_name(getattr(jvp_rule, "__name__", "jvp_rule"), jvp_rule)
        args = ", ".join(self.params)
        dots = ", ".join(f"{p}_dot" for p in self.params)
        joint = f"{name}(({args},), ({dots},))[1]"
        # reverse mode by transposing the user's linear rule one input direction at a time
        adjoint = {p: f"jvp_transpose({name}, ({args},), {i}, g)" for i, p in enumerate(self.params)}
        self._rule(adjoint, {p: "0.0" for p in self.params}, joint)
        return jvp_rule


def _stem(fn, fallback):
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else fallback


def scalar_output_tangent(row, x_dot, ans):
    """J @ x_dot for a function with a scalar output, from its gradient row J^T 1."""
    if np.ndim(ans) != 0:
        raise ValueError("forward mode through a custom_vjp function needs a scalar output; "
                         "define a custom_jvp for it instead")
    return np.sum(row * x_dot)


def jvp_transpose(rule, primals, i, g):
    """The adjoint for input i of a custom_jvp function: J_i^T g, one unit tangent per element."""
    x = primals[i]
    zeros = tuple(np.zeros_like(p, dtype=float) if np.ndim(p) else 0.0 for p in primals)
    if np.ndim(x) == 0:
        tangents = tuple(1.0 if k == i else z for k, z in enumerate(zeros))
        return np.sum(np.asarray(g) * rule(primals, tangents)[1])
    out = np.zeros(np.shape(x))
    for index in np.ndindex(np.shape(x)):
        unit = np.zeros(np.shape(x))
        unit[index] = 1.0
        tangents = tuple(unit if k == i else z for k, z in enumerate(zeros))
        out[index] = np.sum(np.asarray(g) * rule(primals, tangents)[1])
    return out


def module_names():
    """The names every generated module has before the user's globals join it: NumPy, math, the
    runtime's helpers and the custom rules generated code calls."""
    names = {"np": np, "math": math}
    names.update(runtime.HELPERS)
    names.update(NAMES)
    names["scalar_output_tangent"] = scalar_output_tangent
    names["jvp_transpose"] = jvp_transpose
    return names
