"""Random differentiable programs, checked against central finite differences.

A hypothesis strategy draws the text of a module: a few helper functions and a
function `f(x, y, v)` of two float scalars and a 1-D float array, built from
arithmetic, NumPy/math calls, `if` on data, `for`/`while` loops with
`break`/`continue`, early returns, augmented assignment, tuple swaps, helper
calls with keyword arguments (helpers returning arrays they fill element by
element among them), writes into a local array and slice reads.
Values are kept bounded (tanh, safe denominators, exp of tanh) so that
float64 central differences are a good reference.  Where a branch or a kink
lies within the finite-difference step, two step sizes disagree and the
example is discarded rather than compared.

Known s2sad bugs found by this generator are kept below as xfail(strict=True)
tests (see tests/BUGS_random.md; none is confirmed at the time of writing).
"""

import importlib.util
import itertools
import math
import os
import sys
import tempfile
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import s2sad

RTOL, ATOL = 1e-4, 1e-6
_DIR = tempfile.mkdtemp(prefix="s2sad_random_")
_count = itertools.count()


def load(text):
    """Write `text` to a fresh .py file and import it under a unique name."""
    name = f"s2sad_random_{next(_count)}_{uuid.uuid4().hex[:8]}"
    path = os.path.join(_DIR, name + ".py")
    with open(path, "w") as fh:
        fh.write(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------
# The program generator.

SCALARS = ["s0", "s1", "s2"]

# Constructs the generator can steer around when a known s2sad bug would otherwise
# fail most examples and hide other bugs (add the name here, with an xfail reproducer).
#   "aug_subscript": `w[i] += e` / `w[i] *= e`  (BUGS_random.md #1); emitted as `w[i] = w[i] + e`
#   "return_in_nested_loop": `return` inside two nested loops (BUGS_random.md #2)
#   "while_in_for": a `while` loop nested in a `for` loop (BUGS_random.md #3)
#   "break_in_for_elem": `break` in `for a in v` (BUGS_random.md #4)
# None of these reproduces on the committed s2sad (see BUGS_random.md), so nothing is avoided.
AVOID = set()


class Gen:
    def __init__(self, draw, helpers=()):
        self.draw = draw
        self.helpers = list(helpers)      # (name, kind) of helpers defined so far
        self.counter = 0                  # unique names for loop variables

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def const(self):
        return repr(self.draw(st.sampled_from([0.5, 1.0, 2.0, 0.25, 1.5, 0.1, 3.0])))

    # -- expressions: all scalar-valued and float (or float-compatible) ------
    def atom(self, env):
        choices = ["var", "var", "var", "const"]
        if env.get("v", True):
            choices += ["vidx", "reduce"]
        if env["ints"]:
            choices.append("int")
        kind = self.pick(choices)
        if kind == "var":
            return self.pick(env["floats"])
        if kind == "const":
            return self.const()
        if kind == "int":
            return f"(0.1 * {self.pick(env['ints'])})"
        arrays = ["v", "w"] if env.get("w", True) else ["v"]
        if kind == "vidx":
            if env.get("w", True) and self.draw(st.booleans()):
                idx = self.pick(env["idx"]) if env["idx"] and self.draw(st.booleans()) else str(self.integer(0, 2))
                return f"M[{self.integer(0, 1)}, {idx}]"
            if env["idx"] and self.draw(st.booleans()):
                return f"{self.pick(arrays)}[{self.pick(env['idx'])}]"
            return f"{self.pick(arrays)}[{self.integer(0, 2)}]"
        reductions = ["np.sum(v)", "np.dot(v, v)", "np.sum(v[1:3])", "np.sum(np.sin(v))", "np.sum(v[-2:])"]
        if env.get("w", True):
            reductions += ["np.sum(w)", "np.dot(w, v)", "np.sum(v[:2] * w[1:3])", "np.sum(w[::2])"]
        return self.pick(reductions)

    def expr(self, env, depth):
        if depth <= 0 or self.integer(0, 3) == 0:
            return self.atom(env)
        a = lambda: self.expr(env, depth - 1)  # noqa: E731
        kind = self.pick(["add", "sub", "mul", "div", "pow", "sin", "cos", "tanh", "exp", "msin",
                          "sqrt", "max", "neg", "helper", "mcos", "rec", "ngrad", "sigmoid"])
        if kind == "add":
            return f"({a()} + {a()})"
        if kind == "sub":
            return f"({a()} - {a()})"
        if kind == "mul":
            return f"({a()} * {a()})"
        if kind == "div":
            z = a()
            return f"({a()} / (1.0 + {z} * {z}))"
        if kind == "pow":
            return f"np.tanh({a()}) ** {self.integer(2, 3)}"
        if kind == "sin":
            return f"np.sin({a()})"
        if kind == "cos":
            return f"np.cos({a()})"
        if kind == "tanh":
            return f"np.tanh({a()})"
        if kind == "exp":
            return f"np.exp(np.tanh({a()}))"
        if kind == "sigmoid":  # the spellings normalize recognizes as one function, logistic
            return self.pick([f"(1.0 / (1.0 + np.exp(-{a()})))", f"(1 / (np.exp({a()}) + 1))",
                              f"(1.0 / (1.0 + math.exp(-np.tanh({a()}))))"])
        if kind == "msin":
            return f"math.sin({a()})"
        if kind == "mcos":
            return f"math.cos({a()})"
        if kind == "sqrt":
            z = a()
            return f"np.sqrt(1.0 + {z} * {z})"
        if kind == "max":
            return f"np.maximum({a()}, {a()})"
        if kind == "neg":
            return f"(-{a()})"
        if kind == "rec":
            return f"rec(np.tanh({a()}), {self.integer(0, 3)})"
        if kind == "ngrad":
            h = self.pick(["hg"] + [h for h, k in self.helpers if k == "scalar"])
            return f"s2sad.grad({h})(np.tanh({a()}))"
        # helper call
        scalar_helpers = [h for h, k in self.helpers if k == "scalar"]
        # helpers of an array: a scalar, or (elements) an array built element by element
        array_helpers = [(h, k) for h, k in self.helpers if k in ("array", "elements")]
        if array_helpers and env.get("v", True) and self.draw(st.booleans()):
            h, k = self.pick(array_helpers)
            arr = self.pick(["v", "w", "v * 0.5"] if env.get("w", True) else ["v", "v * 0.5"])
            call = f"{h}({arr}, c={a()})" if self.draw(st.booleans()) else f"{h}({arr})"
            return f"np.dot({call}, v)" if k == "elements" else call
        if scalar_helpers:
            h = self.pick(scalar_helpers)
            form = self.integer(0, 2)
            if form == 0:
                return f"{h}({a()})"
            if form == 1:
                return f"{h}({a()}, q={a()})"
            return f"{h}(q={a()}, p={a()})"
        return f"np.tanh({a()})"

    def cond(self, env, joined=True):
        # joined conditions short-circuit: normalize spells `a and b` and `lo < e <= hi` with an `if`
        kind = self.integer(0, 5 if joined else 2)
        if kind == 3:
            return f"{self.pick(['-0.5', '-1.0', '0.1'])} < {self.expr(env, 1)} <= {self.pick(['0.3', '0.8', '1.5'])}"
        if kind == 4:
            return f"{self.cond(env, False)} and {self.cond(env, False)}"
        if kind == 5:
            return f"{self.cond(env, False)} or not {self.cond(env, False)}"
        if kind == 0:
            return f"{self.expr(env, 1)} > {self.pick(['0.0', '0.2', '-0.3', '0.5'])}"
        if kind == 1:
            return f"{self.expr(env, 1)} < {self.expr(env, 1)}"
        return f"np.sin({self.expr(env, 1)}) >= 0.1"

    # -- statements ----------------------------------------------------------
    def bounded(self, env, depth=2):
        e = self.expr(env, depth)
        return f"np.tanh({e})" if env["loop"] or self.draw(st.booleans()) else e

    def block(self, env, pad, nest, n_max=3):
        n = self.integer(1, n_max)
        return [line for _ in range(n) for line in self.stmt(env, pad, nest)]

    def stmt(self, env, pad, nest):
        kinds = ["assign", "assign", "aug", "aug", "swap", "write", "write",
                 "local_arr", "mat_row", "mat_elem", "row_view", "matvec", "overwrite", "overwrite"]
        if env["loop"]:
            kinds += ["local_arr"]              # arrays created inside a loop, then written
        if nest > 0:
            kinds += ["if", "for_range", "for_elem", "enumerate", "zip", "while_data"]
            if not ("while_in_for" in AVOID and env.get("depth", 0) >= 1):
                kinds += ["while"]
        if env["loop"]:
            kinds += ["continue"]
            if not ("break_in_for_elem" in AVOID and env.get("elem")):
                kinds += ["break"]
        if env["returns"] and not ("return_in_nested_loop" in AVOID and env.get("depth", 0) >= 2):
            kinds += ["return"]
        kind = self.pick(kinds)
        t = self.pick(SCALARS)
        if kind == "assign":
            return [f"{pad}{t} = {self.bounded(env)}"]
        if kind == "aug":
            op = self.pick(["+=", "-=", "*="])
            if op == "*=":
                return [f"{pad}{t} *= (1.0 + 0.5 * np.tanh({self.expr(env, 2)}))"]
            return [f"{pad}{t} {op} {self.bounded(env)}"]
        if kind == "overwrite":
            # a result written over one of its own operands, an argument among them (`x = np.hypot(x, e)`):
            # the operand's old value and the new result are both read by the rules of hypot and
            # power (forward mode once read the new value for the old, silently)
            u = self.pick(SCALARS + ["x", "y"])
            e = self.expr(env, 1)
            forms = [f"{u} = np.hypot({u}, {e})", f"{u} = np.hypot({e}, {u})", f"{u} = {u} * np.tanh({e})",
                     f"{u} = np.tanh({u}) * {u}", f"{u} = np.sqrt(np.hypot({u}, 0.5)) * {u}"]
            if not env["loop"]:  # powers of the written name: bounded once, not repeated in a loop
                forms += [f"{u} = np.hypot({u}, 0.3) ** {self.pick(['y', 'x', '1.5', e])}",
                          f"{u} = (1.2 + np.tanh({e})) ** {u}", f"{u} = np.power(1.0 + {u} * {u}, {u})"]
            return [f"{pad}{self.pick(forms)}"]
        if kind == "swap":
            u = self.pick([s for s in SCALARS if s != t])
            return [f"{pad}{t}, {u} = {u}, np.tanh({t} + {self.expr(env, 1)})"]
        if kind == "write":
            idx = self.pick(env["idx"]) if env["idx"] and self.draw(st.booleans()) else str(self.integer(0, 2))
            op = self.pick(["=", "+=", "*="])
            if op == "*=":
                rhs = f"np.tanh({self.expr(env, 2)})"
            else:
                rhs = self.bounded(env)
            if op != "=" and "aug_subscript" in AVOID:
                return [f"{pad}w[{idx}] = w[{idx}] {op[0]} {rhs}"]
            return [f"{pad}w[{idx}] {op} {rhs}"]
        if kind == "local_arr":
            # a 1-D array created here (inside a loop, often) and written in place
            self.counter += 1
            q = f"q{self.counter}"
            idx = self.pick(env["idx"]) if env["idx"] and self.draw(st.booleans()) else str(self.integer(0, 2))
            base = self.pick(["v", "w", "np.sin(v)"])
            lines = [f"{pad}{q} = {base} * {self.bounded(env, 1)}",
                     f"{pad}{q}[{idx}] = {q}[{idx}] + {self.bounded(env)}"]
            if self.draw(st.booleans()):
                lines.append(f"{pad}{q}[{self.integer(0, 2)}] = np.tanh({q}[{idx}] * {self.expr(env, 1)})")
            red = self.pick([f"np.sum({q})", f"np.dot({q}, v)", f"np.sum(np.sin({q}[1:]))"])
            return lines + [f"{pad}{t} = np.tanh({t} + {red})"]
        if kind == "mat_row":
            r = self.integer(0, 1)
            rhs = self.pick([f"np.tanh(v * {self.expr(env, 1)})", f"np.sin(w + {self.expr(env, 1)})",
                             f"np.tanh(M[{1 - r}] + {self.expr(env, 1)})"])
            return [f"{pad}M[{r}] = {rhs}"]
        if kind == "mat_elem":
            idx = self.pick(env["idx"]) if env["idx"] and self.draw(st.booleans()) else str(self.integer(0, 2))
            r = self.integer(0, 1)
            if self.draw(st.booleans()):
                return [f"{pad}M[{r}, {idx}] = M[{r}, {idx}] + {self.bounded(env)}"]
            return [f"{pad}M[{r}, {idx}] = {self.bounded(env)}"]
        if kind == "row_view":
            # read through a view of a row, then rewrite the row; the view is never read again
            # (s2sad refuses reads of a view after its array is written: see test_row_view_read_after_write_is_refused)
            self.counter += 1
            row, r = f"row{self.counter}", self.integer(0, 1)
            k1, k2 = self.integer(0, 2), self.integer(0, 2)
            return [f"{pad}{row} = M[{r}]",
                    f"{pad}{t} = np.tanh({t} + {row}[{k1}] * {self.expr(env, 1)} + np.sum({row}) * 0.1)",
                    f"{pad}M[{r}] = np.tanh({row} * {self.const()} + {row}[{k2}] + {self.expr(env, 1)})"]
        if kind == "matvec":
            # a matrix product with M (in a loop, its adjoint is added into M's in place)
            arr = self.pick(["v", "w", "np.sin(v)"])
            prod = self.pick([f"M @ {arr}", f"{arr} @ M.T", f"np.dot(M, {arr} * {self.expr(env, 1)})"])
            return [f"{pad}{t} = np.tanh({t} + np.sum(np.tanh({prod}) * {self.expr(env, 1)}))"]
        if kind == "break":
            return [f"{pad}if {self.cond(env)}:", f"{pad}    break"]
        if kind == "continue":
            return [f"{pad}if {self.cond(env)}:", f"{pad}    continue"]
        if kind == "return":
            return [f"{pad}if {self.cond(env)}:", f"{pad}    return {self.expr(env, 2)}"]
        inner = pad + "    "
        if kind == "if":
            lines = [f"{pad}if {self.cond(env)}:"] + self.block(env, inner, nest - 1)
            if self.draw(st.booleans()):
                lines += [f"{pad}else:"] + self.block(env, inner, nest - 1)
            return lines
        self.counter += 1
        c = self.counter
        if kind == "for_range":
            i = f"i{c}"
            bound = self.pick(["len(v)", "3", "2", "len(v) - 1"])
            body_env = dict(env, loop=True, depth=env.get("depth", 0) + 1, ints=env["ints"] + [i], idx=env["idx"] + [i])
            header = f"reversed(range({bound}))" if self.draw(st.booleans()) else f"range({bound})"
            return [f"{pad}for {i} in {header}:"] + self.block(body_env, inner, nest - 1)
        if kind == "for_elem":
            a = f"a{c}"
            arr = self.pick(["v", "v", "w", "v[1:]", "reversed(v)"])
            body_env = dict(env, loop=True, elem=True, depth=env.get("depth", 0) + 1, floats=env["floats"] + [a])
            return [f"{pad}for {a} in {arr}:"] + self.block(body_env, inner, nest - 1)
        if kind == "enumerate":
            i, a = f"i{c}", f"a{c}"
            arr = self.pick(["v", "w", "np.sin(v)"])
            body_env = dict(env, loop=True, elem=True, depth=env.get("depth", 0) + 1,
                            ints=env["ints"] + [i], idx=env["idx"] + [i], floats=env["floats"] + [a])
            return [f"{pad}for {i}, {a} in enumerate({arr}):"] + self.block(body_env, inner, nest - 1)
        if kind == "zip":
            a, b = f"a{c}", f"b{c}"
            pair = self.pick(["v, w", "w, v", "v[1:], v[:-1]", "v, np.cos(v)"])
            body_env = dict(env, loop=True, elem=True, depth=env.get("depth", 0) + 1,
                            floats=env["floats"] + [a, b])
            if self.draw(st.booleans()):   # counted too
                i = f"i{c}"
                body_env = dict(body_env, ints=env["ints"] + [i], idx=env["idx"] + [i])
                return [f"{pad}for {i}, ({a}, {b}) in enumerate(zip({pair})):"] + self.block(body_env, inner, nest - 1)
            return [f"{pad}for {a}, {b} in zip({pair}):"] + self.block(body_env, inner, nest - 1)
        if kind == "while_data":
            # a while loop whose exit depends on data (a counter only bounds it)
            k, z = f"k{c}", f"z{c}"
            body_env = dict(env, loop=True, depth=env.get("depth", 0) + 1, ints=env["ints"] + [k],
                            floats=env["floats"] + [z])
            return ([f"{pad}{k} = 0", f"{pad}{z} = {self.bounded(env, 1)}",
                     f"{pad}while {z} < {self.pick(['1.0', '1.7', '2.5'])} and {k} < 8:",
                     f"{inner}{k} += 1",
                     f"{inner}{z} = {z} + 0.4 + 0.3 * np.tanh({self.expr(body_env, 1)})"]
                    + self.block(body_env, inner, nest - 1, 2) + [f"{pad}{t} = {t} + np.tanh({z})"])
        # while: counter-guarded
        k = f"k{c}"
        body_env = dict(env, loop=True, depth=env.get("depth", 0) + 1, ints=env["ints"] + [k])
        guard = f"{k} < {self.integer(1, 4)}"
        if self.draw(st.booleans()):
            guard += f" and ({self.cond(env)})"   # (parenthesized: a cond may be `a or not b`)
        return ([f"{pad}{k} = 0", f"{pad}while {guard}:", f"{inner}{k} += 1"]
                + self.block(body_env, inner, nest - 1))


@st.composite
def programs(draw, max_nest=2, max_stmts=5):
    gen = Gen(draw)
    lines = ["import math", "import numpy as np", "import s2sad", "", "",
             "def rec(p, n):", "    if n == 0:", "        return p", "    return np.sin(p) * rec(p, n - 1)", "", "",
             "def hg(p):", "    return np.sin(p) * np.tanh(p)", "", ""]
    for j in range(draw(st.integers(0, 2))):
        name = f"h{j}"
        if draw(st.booleans()):
            env = {"floats": ["p", "q"], "ints": [], "idx": [], "loop": False, "returns": False, "w": False, "v": False}
            body = [f"    t = {gen.bounded(env)}"]
            if draw(st.booleans()):
                body += [f"    if {gen.cond(dict(env, floats=['p', 'q', 't']))}:",
                         f"        t = {gen.expr(dict(env, floats=['p', 'q', 't']), 1)}"]
            body += [f"    return t * {gen.expr(dict(env, floats=['p', 'q', 't']), 1)}"]
            lines += [f"def {name}(p, q=0.5):"] + body + ["", ""]
            gen.helpers.append((name, "scalar"))
        else:
            op = draw(st.sampled_from(["np.sum(np.sin(u) * c)", "np.dot(u, np.tanh(u * c))",
                                       "np.sum(u[1:] - u[:-1]) * c", "c * np.sum(u * u)"]))
            lines += [f"def {name}(u, c=1.0):", f"    return {op}", "", ""]
            gen.helpers.append((name, "array"))
    if draw(st.booleans()):
        # an array built element by element: when only its adjoint is wanted, the helper's vjp
        # drops the loop that fills it (unless the loop reads it back)
        step = draw(st.sampled_from(["u[i] * np.tanh(u[i - 1]) * c", "np.sin(u[i]) * c + 0.5 * z[i - 1]",
                                     "np.tanh(u[i] * u[i - 1]) + c"]))
        lines += ["def e0(u, c=1.0):", "    z = np.zeros(len(u))", "    z[0] = np.tanh(u[0]) * c",
                  "    for i in range(1, len(u)):", f"        z[i] = {step}", "    return z", "", ""]
        gen.helpers.append(("e0", "elements"))
    env = {"floats": ["x", "y", "s0", "s1", "s2"], "ints": [], "idx": [], "loop": False, "returns": True}
    top = {"floats": ["x", "y"], "ints": [], "idx": [], "loop": False, "returns": False, "w": False}
    body = [f"    s0 = {gen.expr(top, 1)}", f"    s1 = {gen.expr(top, 1)}", "    s2 = 0.0",
            "    w = np.zeros(len(v))", "    M = np.zeros((2, len(v)))"]
    if draw(st.booleans()):
        body += ["    w[1] = x", "    w[2] = np.tanh(y)"]
    body += gen.block(env, "    ", max_nest, max_stmts)
    final = draw(st.sampled_from(["s0 + s1 * s2", "s0 * s1 + s2", "np.tanh(s0 + s1) + s2 * np.sum(w)",
                                  "s0 + s1 + s2 + np.dot(w, v)", "np.sum(w * v) + s0",
                                  "s0 * s2 + np.sum(M[0] * v) + np.tanh(np.sum(M[1]))",
                                  "s1 + np.sum(np.sin(M)) * s0"]))
    body += [f"    return {final}"]
    lines += ["def f(x, y, v):"] + body
    return "\n".join(lines) + "\n"


# Hypothesis favours 0.0 and other round values, where a branch such as `x * M[0, 2] < s1` sits exactly
# on its boundary: f is continuous there but takes the branch that is constant around it, so neither
# s2sad's nor any AD tool's derivative matches the difference quotient.  Small distinct irrational
# offsets keep the drawn points off such ties (a measure-zero set) without narrowing what is drawn.
OFFSETS = (0.0123 * math.sqrt(2.0), -0.0171 * math.sqrt(3.0), 0.0057 * math.sqrt(5.0))
arguments = st.tuples(
    st.floats(-1.5, 1.5), st.floats(-1.5, 1.5),
    st.integers(3, 5).flatmap(lambda n: st.lists(st.floats(-1.5, 1.5), min_size=n, max_size=n)),
).map(lambda t: (float(t[0]) + OFFSETS[0], float(t[1]) + OFFSETS[1],
                 np.array(t[2], dtype=float) + OFFSETS[2] * np.arange(1.0, len(t[2]) + 1.0)))


# ----------------------------------------------------------------------------
# The check.

def fd_grads(f, args, eps=1e-6):
    """Forward and backward differences w.r.t. x, y and each v[k]: two lists of [gx, gy, gv]."""
    def at(argnum, k, step):
        a = [args[0], args[1], args[2].copy()]
        if argnum < 2:
            a[argnum] = a[argnum] + step
        else:
            a[2][k] += step
        return float(f(*a))

    f0 = float(f(args[0], args[1], args[2].copy()))
    fwd, bwd = [], []
    for argnum in range(3):
        ks = [None] if argnum < 2 else range(len(args[2]))
        up, down = [], []
        for k in ks:
            x = args[argnum] if argnum < 2 else args[2][k]
            h = eps * max(1.0, abs(x))
            up.append((at(argnum, k, h) - f0) / h)
            down.append((f0 - at(argnum, k, -h)) / h)
        fwd.append(up[0] if argnum < 2 else np.array(up))
        bwd.append(down[0] if argnum < 2 else np.array(down))
    return fwd, bwd


def close(a, b):
    return all(np.allclose(p, q, rtol=RTOL, atol=ATOL) for p, q in zip(a, b))


def check_program(text, args, second=True):
    module = load(text)
    f = module.f
    value = f(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    assume(np.isfinite(value) and abs(value) < 1e6)
    fwd, bwd = fd_grads(f, args)
    # A branch flip or a kink (np.maximum, a comparison) within the step makes
    # the one-sided differences disagree: finite differences are no reference there.
    assume(all(np.allclose(p, q, rtol=1e-3, atol=1e-4) for p, q in zip(fwd, bwd)))
    fd = [(p + q) / 2 for p, q in zip(fwd, bwd)]
    # Where f'' jumps (np.maximum at a tie, say) the central difference is only first-order
    # accurate: compare it with one of twice the step and keep only points where they agree.
    fwd2, bwd2 = fd_grads(f, args, eps=2e-6)
    fd2 = [(p + q) / 2 for p, q in zip(fwd2, bwd2)]
    assume(all(np.allclose(p, q, rtol=1e-5, atol=1e-7 + 1e-9 * abs(value)) for p, q in zip(fd, fd2)))
    try:
        g = s2sad.grad(f, argnums=(0, 1, 2))(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    except Exception as exc:  # noqa: BLE001 - every crash is a finding
        raise AssertionError(f"s2sad crashed with {type(exc).__name__}: {exc}\n"
                             f"args = {args!r}\nprogram:\n{text}") from exc
    g = [float(g[0]), float(g[1]), np.asarray(g[2], dtype=float)]
    assert close(g, fd), (f"gradient mismatch\nargs = {args!r}\ns2sad = {g!r}\nfd    = {fd!r}\n"
                          f"program:\n{text}")
    check_forward(f, text, args, g, fd)
    if second:
        check_second(module, text, args)


def tangents_for(args):
    """Directions: along x, along y, along v (a fixed, non-axis direction), and all together."""
    n = len(args[2])
    d = np.cos(np.arange(1.0, n + 1.0))
    zero = np.zeros(n)
    return [(1.0, 0.0, zero), (0.0, 1.0, zero), (0.0, 0.0, d), (0.5, -1.0, -d)]


def check_forward(f, text, args, g, fd):
    """jvp along each direction agrees with the reverse gradient's projection (1e-10 relative) and with FD."""
    for t in tangents_for(args):
        try:
            value, tangent = s2sad.jvp(f, [args[0], args[1], args[2].copy()], list(t))
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"s2sad.jvp crashed with {type(exc).__name__}: {exc}\n"
                                 f"args = {args!r}, tangents = {t!r}\nprogram:\n{text}") from exc
        terms = [g[0] * t[0], g[1] * t[1], g[2] * t[2]]
        projected = float(terms[0] + terms[1] + np.sum(terms[2]))
        # relative to the size of the terms summed, so cancellation in the dot product is not blamed on s2sad
        scale = abs(terms[0]) + abs(terms[1]) + float(np.sum(np.abs(terms[2])))
        assert abs(float(tangent) - projected) <= 1e-10 * scale + 1e-12, (
            f"jvp != grad . t\nargs = {args!r}\ntangents = {t!r}\njvp = {float(tangent)!r}\n"
            f"grad . t = {projected!r}\nprogram:\n{text}")
        fd_projected = float(fd[0] * t[0] + fd[1] * t[1] + np.dot(fd[2], t[2]))
        assert np.isclose(float(tangent), fd_projected, rtol=RTOL, atol=ATOL * (1 + np.sum(np.abs(t[2])))), (
            f"jvp != finite differences\nargs = {args!r}\ntangents = {t!r}\njvp = {float(tangent)!r}\n"
            f"fd = {fd_projected!r}\nprogram:\n{text}")


# Second derivatives are compared with central differences of s2sad's first derivative (itself
# checked against finite differences of f above): the step 1e-5 gives an O(h^2) ~ 1e-10 truncation
# error and an O(eps_mach * |f'| / h) ~ 1e-11 rounding error, so rtol 1e-4 / atol 1e-5 leaves a wide
# margin while still catching any wrong term.  The smoothness filters of the first-order check are
# applied to the derivative: one-sided differences must agree, and so must central differences at
# two step sizes (the third derivative may jump at a tie, or a branch may flip, inside the step).
RTOL2, ATOL2 = 1e-4, 1e-5

# Second-order failures this generator found (B5-B9 in tests/BUGS_random.md) are fixed and pinned
# by regression tests. An open bug may be excused here by its exact exception while it is fixed
# (a hypothesis event records each skip); none is open.
KNOWN_SECOND_ORDER = {}


def known_second_order(exc):
    for name, (kind, text) in KNOWN_SECOND_ORDER.items():
        if type(exc) is kind and text in str(exc):
            return name
    return None


def fd_of(fun, args, argnum, eps):
    """Forward, backward and central differences of a scalar function in a scalar argument."""
    def at(step):
        a = [args[0], args[1], args[2].copy()]
        a[argnum] = a[argnum] + step
        return float(fun(*a))
    h = eps * max(1.0, abs(args[argnum]))
    f0, up, down = at(0.0), at(h), at(-h)
    return (up - f0) / h, (f0 - down) / h, (up - down) / (2 * h)


def second_order_or_known(compute, what, text, args):
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001
        name = known_second_order(exc)
        if name is None:
            raise AssertionError(f"s2sad {what} crashed with {type(exc).__name__}: {exc}\n"
                                 f"args = {args!r}\nprogram:\n{text}") from exc
        event(f"{what} skipped: known bug {name}")
        return None


def check_second(module, text, args):
    f = module.f
    first = {0: s2sad.grad(f, argnums=0), 1: s2sad.grad(f, argnums=1)}
    d2 = {(0, 0): s2sad.grad(first[0], argnums=0), (0, 1): s2sad.grad(first[0], argnums=1)}
    got = second_order_or_known(
        lambda: {k: float(fn(args[0], args[1], args[2].copy())) for k, fn in d2.items()}, "grad-of-grad", text, args)
    for (inner, outer), value in (got or {}).items():
        fwd, bwd, central = fd_of(first[inner], args, outer, 1e-5)
        *_, central2 = fd_of(first[inner], args, outer, 2e-5)
        if not (np.isclose(fwd, bwd, rtol=1e-2, atol=1e-3) and np.isclose(central, central2, rtol=1e-4, atol=1e-6)):
            event("second order: point not smooth enough for the reference")
            continue
        assert np.isclose(value, central, rtol=RTOL2, atol=ATOL2), (
            f"second derivative d/d{'xy'[outer]} d/d{'xy'[inner]} mismatch\nargs = {args!r}\n"
            f"s2sad = {value!r}\nfd of s2sad's gradient = {central!r}\nprogram:\n{text}")
    # The Hessian in the small vector argument v (f is the scalar-output function): symmetric.
    H = second_order_or_known(
        lambda: np.asarray(s2sad.hessian(f, argnums=2)(args[0], args[1], args[2].copy()), dtype=float),
        "hessian", text, args)
    if H is not None:
        scale = 1.0 + np.max(np.abs(H))
        assert np.allclose(H, H.T, rtol=0, atol=1e-9 * scale), f"asymmetric Hessian\n{H!r}\nprogram:\n{text}"


MAX_DEFAULT = 15  # each example generates reverse, forward and second-order code: about a minute on two cores

COMMON = dict(deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])


@settings(max_examples=MAX_DEFAULT, **COMMON)
@given(programs(), arguments)
def test_random_programs_match_finite_differences(text, args):
    check_program(text, args, second=False)  # reverse and forward mode against finite differences


@settings(max_examples=MAX_DEFAULT, **COMMON)
@given(programs(), arguments)
def test_random_programs_second_derivatives(text, args):
    check_program(text, args)


@pytest.mark.slow
@settings(max_examples=80 if os.environ.get("S2SAD_FULL_SWEEPS") else 40, **COMMON)   # --full: all 80
@given(programs(max_nest=3, max_stmts=6), arguments)
def test_random_programs_match_finite_differences_many(text, args):
    check_program(text, args, second=False)


# ----------------------------------------------------------------------------
# Regression programs for constructs that crashed s2sad while the generator was
# being written, on a transient uncommitted tree (tests/BUGS_random.md).  They
# pass on the committed code; confirmed bugs go here as xfail(strict=True).

BUG_PROGRAMS = {
    "aug_subscript": """import numpy as np


def f(x, y, v):
    w = np.zeros(3)
    w[0] += x
    return np.sum(w)
""",
    "return_in_nested_loop": """import numpy as np


def f(x, y, v):
    for i in range(2):
        for j in range(2):
            return x
    return y
""",
    "while_in_for": """import numpy as np


def f(x, y, v):
    s = x
    for i in range(2):
        k = 0
        while k < 2:
            k += 1
            s = s * y
    return s
""",
    "break_in_for_elem": """import numpy as np


def f(x, y, v):
    s = x
    for a in v:
        if a > 5.0:
            break
        s = s * a
    return s
""",
}

BUG_ARGS = (0.3, -0.7, np.array([0.5, -1.2, 0.8]))


def check_fixed_args(text, args=BUG_ARGS):
    f = load(text).f
    g = s2sad.grad(f, argnums=(0, 1, 2))(*args)
    fwd, bwd = fd_grads(f, args)
    fd = [(p + q) / 2 for p, q in zip(fwd, bwd)]
    assert close([float(g[0]), float(g[1]), np.asarray(g[2], dtype=float)], fd), text


def test_bug_augmented_assignment_to_subscript():
    check_fixed_args(BUG_PROGRAMS["aug_subscript"])


def test_bug_return_in_nested_loops():
    check_fixed_args(BUG_PROGRAMS["return_in_nested_loop"])


def test_bug_while_inside_for():
    check_fixed_args(BUG_PROGRAMS["while_in_for"])


def test_bug_break_in_for_over_array():
    check_fixed_args(BUG_PROGRAMS["break_in_for_elem"])


# ----------------------------------------------------------------------------
# The view rule: s2sad refuses a read of a view after its array is written, with a hint.
# The generator only writes programs that respect it; this checks the refusal itself.

@settings(max_examples=10, **COMMON)
@given(st.integers(0, 1), st.integers(0, 2), arguments)
def test_row_view_read_after_write_is_refused(r, k, args):
    text = f"""import numpy as np


def f(x, y, v):
    M = np.zeros((2, len(v)))
    M[{r}] = v * x
    row = M[{r}]
    M[{r}] = np.tanh(row * y)
    return row[{k}] + np.sum(M)
"""
    f = load(text).f
    with pytest.raises(s2sad.UnsupportedSyntaxError) as info:
        s2sad.grad(f, argnums=(0, 1, 2))(args[0], args[1], args[2].copy())
    assert "shares the array `M`" in str(info.value) and "hint:" in str(info.value)


# ----------------------------------------------------------------------------
# Numba: generated code compiled by Numba gives the Python backend's gradients.

@pytest.mark.slow
@settings(max_examples=8, **COMMON)
@given(programs(max_nest=2, max_stmts=4), arguments)
def test_random_programs_numba_matches_python(text, args):
    f = load(text).f
    value = f(args[0], args[1], args[2].copy())
    assume(np.isfinite(value) and abs(value) < 1e6)
    want = s2sad.grad(f, argnums=(0, 1, 2), backend="python")(args[0], args[1], args[2].copy())
    try:
        got = s2sad.grad(f, argnums=(0, 1, 2), backend="numba")(args[0], args[1], args[2].copy())
    except s2sad.S2SADError as exc:
        # Known limitation: a live nested grad is called as a Python object from the forward
        # sweep, which Numba cannot compile; asked for explicitly, the backend says so clearly.
        if "s2sad.grad(" in text and "Numba cannot compile" in str(exc):
            return
        raise AssertionError(f"numba backend crashed with {type(exc).__name__}: {exc}\nprogram:\n{text}") from exc
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"numba backend crashed with {type(exc).__name__}: {exc}\nprogram:\n{text}") from exc
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=text)


# ----------------------------------------------------------------------------
# Confirmed second-order bugs found by the extended generator (tests/BUGS_random.md #5-#7).

SECOND_ORDER_BUGS = {
    "B5": """import numpy as np
import s2sad


def hs(p):
    return np.sin(p) * p


def f(x, y, v):
    w = np.zeros(3)
    w[0] = x
    return s2sad.grad(hs)(x * y) + np.sum(w)
""",
    "B6": """import numpy as np


def f(x, y, v):
    M = np.zeros((2, 3))
    M[0] = v * y
    row = M[0]
    t = row[1] * 2.0
    M[0] = v * x
    return t * x + np.sum(M)
""",
    "B7": """import numpy as np


def f(x, y, v):
    s2 = 0.0
    for a in v:
        if x < a:
            break
        s2 = np.tanh(x)
    return x + s2
""",
    "B9": """import math
import numpy as np


def rec(p, n):
    if n == 0:
        return p
    return np.sin(p) * rec(p, n - 1)


def f(x, y, v):
    s0 = x
    s1 = (x + x)
    s2 = 0.0
    w = np.zeros(len(v))
    M = np.zeros((2, len(v)))
    w[1] = x
    w[2] = np.tanh(y)
    for a1, b1 in zip(v, w):
        s0 = np.tanh((x + np.exp(np.tanh(b1))))
        s0 *= (1.0 + 0.5 * np.tanh(rec(np.tanh((M[0, 0] - x)), 1)))
        s0, s1 = s1, np.tanh(s0 + (s1 * b1))
    k2 = 0
    z2 = np.tanh(y) ** 3
    while z2 < 2.5 and k2 < 8:
        k2 += 1
        z2 = z2 + 0.4 + 0.3 * np.tanh(np.tanh(x))
        row3 = M[1]
        s2 = np.tanh(s2 + row3[2] * z2 + np.sum(row3) * 0.1)
        M[1] = np.tanh(row3 * 3.0 + row3[0] + 2.0)
    s1 = s1 + np.tanh(z2)
    for i4, a4 in enumerate(np.sin(v)):
        w[i4] += np.tanh(np.tanh(np.sqrt(1.0 + w[1] * w[1])))
    return s0 + s1 + s2 + np.dot(w, v)
""",
}
B7_ARGS = (0.3, -0.7, np.array([0.1, -1.2, 0.8]))
B9_ARGS = (-0.4, -0.964212428888027, np.array([-0.6696, 4.1e-296, 1.4e-139]))


def check_grad_of_grad(text, args=BUG_ARGS):
    f = load(text).f
    first = s2sad.grad(f, argnums=0)
    for outer in (0, 1):
        got = float(s2sad.grad(first, argnums=outer)(args[0], args[1], args[2].copy()))
        *_, want = fd_of(first, args, outer, 1e-5)
        assert np.isclose(got, want, rtol=RTOL2, atol=ATOL2), (outer, got, want)


def test_bug_grad_of_grad_nested_grad_and_array_write():
    check_grad_of_grad(SECOND_ORDER_BUGS["B5"])


def test_bug_grad_of_grad_row_view_then_rewrite():
    check_grad_of_grad(SECOND_ORDER_BUGS["B6"])


def test_bug_hessian_loop_with_break():
    f = load(SECOND_ORDER_BUGS["B7"]).f
    H = s2sad.hessian(f, argnums=2)(*B7_ARGS)
    assert np.allclose(H, np.zeros((3, 3)))


def test_bug_grad_of_grad_through_restored_array_elements():
    # B9: the tangents of array elements restored from the tape were lost (was -1.727 vs -1.376)
    check_grad_of_grad(SECOND_ORDER_BUGS["B9"], B9_ARGS)
