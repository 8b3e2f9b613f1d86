"""The CUDA backend of `vmap`: one generated derivative per thread, via numba-cuda.

Design (docs/gpu.md): a thread runs the generated derivative of a function of
scalars without any tape, so there is nothing to bound and nothing to
overflow: the reverse-mode code where it needs no tape (straight-line code:
one pass gives every partial), else forward mode, one tangent pass per input. Every
generated function becomes a `cuda.jit(device=True)` function, and a generated
kernel maps `_s2sad_sample` over the batch, one thread per sample.

Functions that cannot run in a kernel (array allocation, list displays, calls
that are neither `math`/scalar NumPy functions nor the user's own scalar
helpers) are refused before compiling, with an `S2SADError` naming the line.
"""

import ast
import inspect
import itertools
import math
import re
import textwrap
import types as pytypes

import numpy as np

from . import transforms as api
from .batch import generated_functions, is_jvp_partial, loop_source
from ..backends.jit import jit_each
from ..errors import S2SADError
from ..normalize import pytree

_counter = itertools.count(1)

# NumPy scalar functions and their `math` equivalents in device code
NP_TO_MATH = {"sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
              "arctan2": "atan2", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "arcsinh": "asinh",
              "arccosh": "acosh", "arctanh": "atanh", "exp": "exp", "expm1": "expm1", "log": "log",
              "log1p": "log1p", "log10": "log10", "log2": "log2", "sqrt": "sqrt", "abs": "fabs",
              "fabs": "fabs", "floor": "floor", "ceil": "ceil", "hypot": "hypot", "power": "pow",
              "copysign": "copysign", "erf": "erf", "erfc": "erfc"}
NP_SCALAR_OK = set(NP_TO_MATH) | {"maximum", "minimum", "sign", "float64", "int64", "pi", "e", "inf", "nan",
                                  "isnan", "isinf", "isfinite", "where", "square", "clip"}
NP_ALLOCATING = {"zeros", "ones", "empty", "full", "array", "asarray", "arange", "linspace", "zeros_like",
                 "ones_like", "empty_like", "full_like", "stack", "concatenate", "vstack", "hstack", "eye",
                 "outer", "dot", "matmul", "copy"}
BUILTINS_OK = {"abs", "min", "max", "float", "int", "bool", "range", "round", "len"}


def _logistic(x):
    return 1.0 / (1.0 + math.exp(-x))


# runtime helpers that generated code of scalars may call, as device functions
DEVICE_HELPERS = {"logistic": _logistic}


def _numpy_compat():
    """numba-cuda 0.30 types `np.row_stack`, which NumPy 2.5 removed (it was an alias of vstack)."""
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


def available():
    _numpy_compat()
    try:
        import numba.cuda  # noqa: F401
    except Exception:
        return False
    return True


def _cuda():
    _numpy_compat()
    try:
        from numba import cuda
    except ImportError as exc:
        raise S2SADError("vmap backend='cuda' needs the numba-cuda package: pip install numba-cuda "
                         f"(or pip install 's2sad[cuda]'); import failed: {exc}") from None
    return cuda


def is_device_array(x):
    return not isinstance(x, np.ndarray) and (hasattr(x, "__cuda_array_interface__") or hasattr(x, "copy_to_host"))


# ---- refusing what cannot run in a kernel -------------------------------------------------
def innermost(fun):
    if is_jvp_partial(fun):
        fun = fun.args[0]
    while isinstance(fun, api.Transformed):
        fun = fun.fun
    return fun


def check_kernel_source(fn, seen=None):
    """Raise S2SADError naming file:line for a construct of `fn` (or its helpers) that a kernel cannot run."""
    seen = set() if seen is None else seen
    if id(fn) in seen or not isinstance(fn, pytypes.FunctionType):
        return
    seen.add(id(fn))
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return  # no source: the compiler reports that itself
    filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    tree = ast.parse(textwrap.dedent("".join(lines)))
    env = dict(fn.__globals__)
    if fn.__closure__:
        env.update(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))

    def fail(node, why):
        line = first + node.lineno - 1
        code = lines[node.lineno - 1].strip() if node.lineno - 1 < len(lines) else ""
        raise S2SADError(f"{filename}:{line}: `{code}` cannot run in a CUDA kernel: {why}. "
                         "vmap backend='cuda' differentiates functions of scalars (loops, branches, math, "
                         "helper calls); use backend='parallel' or 'numba' for array code.")

    def resolve(node):
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            import builtins
            return getattr(builtins, node.id, None)
        if isinstance(node, ast.Attribute):
            base = resolve(node.value)
            return getattr(base, node.attr, None) if base is not None else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.ListComp, ast.Dict, ast.DictComp, ast.Set, ast.SetComp)):
            fail(node, "it builds a list/dict/set (kernels cannot allocate)")
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            fail(node, "it writes into an array")
        if not isinstance(node, ast.Call):
            continue
        target = resolve(node.func)
        name = ast.unparse(node.func)
        if target is None:
            continue  # a local variable or something the compiler will report
        if isinstance(target, np.ufunc) or getattr(target, "__module__", None) in ("numpy", "numpy.core.numeric"):
            short = getattr(target, "__name__", name.split(".")[-1])
            if short in NP_ALLOCATING:
                fail(node, f"{name} allocates an array")
            if short not in NP_SCALAR_OK:
                fail(node, f"{name} is not supported on scalars in device code")
            continue
        if getattr(target, "__module__", None) == "math" or target in vars(math).values():
            continue
        if getattr(target, "__module__", None) == "builtins":
            if getattr(target, "__name__", "") not in BUILTINS_OK:
                fail(node, f"the builtin {name} is not supported in device code")
            continue
        if target is api.stop_gradient:
            continue
        if isinstance(target, pytypes.FunctionType):
            check_kernel_source(target, seen)
            continue
        fail(node, f"{name} is not a math function or a user helper of scalars")


def to_device_source(source):
    """Generated source with NumPy scalar math spelled as `math` (which every CUDA target has)."""
    return re.sub(r"\bnp\.(\w+)\(", lambda m: f"math.{NP_TO_MATH[m.group(1)]}("
                  if m.group(1) in NP_TO_MATH else m.group(0), source)


def check_generated(source, where):
    tree = ast.parse(source)
    for node in ast.walk(tree):
        bad = None
        if isinstance(node, ast.Name) and node.id in ("Tape", "push", "pop"):
            bad = "it uses a tape"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "np"
              and node.func.attr not in NP_SCALAR_OK):
            bad = f"np.{node.func.attr} is not available in device code"
        if bad:
            line = source.splitlines()[node.lineno - 1].strip()
            raise S2SADError(f"{where}: generated line {node.lineno} `{line}` cannot run in a CUDA kernel: {bad}")


# ---- the kernel -----------------------------------------------------------------------------------
class KernelRunner:
    def __init__(self, plan, fun):
        cuda = _cuda()
        self.plan = plan
        user = innermost(fun)
        check_kernel_source(user)
        for k, (s, b) in enumerate(zip(_plan_sample(plan), plan.batched)):
            if isinstance(s, np.ndarray):
                raise S2SADError(f"vmap backend='cuda' maps functions of scalars: argument leaf {k} is an array "
                                 f"of shape {s.shape} per sample (batch a 1-D array along in_axes, or use "
                                 "backend='parallel')")
        for shape in plan.out_shapes:
            if shape != ():
                raise S2SADError("vmap backend='cuda': every output of a sample must be a scalar")
        kernel = loop_source(plan, "_s2sad_kernel", ["    i = cuda.grid(1)", "    if i < n:"], "        ")
        device = to_device_source(plan.base_source + "\n\n" + plan.sample_source)
        check_generated(device, getattr(user, "__qualname__", repr(user)))
        self.source = device + "\n\n" + kernel
        ns = plan.module.load(self.source, f"<s2sad cuda {next(_counter)}>")
        ns["cuda"] = cuda
        dev_ns = jit_each(generated_functions(ns), ns, dict(ns),
                          lambda name, fn: cuda.jit(fn) if name == "_s2sad_kernel" else cuda.jit(device=True)(fn))
        for name, fn in DEVICE_HELPERS.items():
            dev_ns[name] = cuda.jit(device=True)(fn)
        self.kernel = dev_ns["_s2sad_kernel"]
        self.compiled = False

    def run(self, leaves, n, device):
        cuda = _cuda()
        plan = self.plan
        ins = []
        for x, b in zip(leaves, plan.batched):
            if b and not device:
                ins.append(cuda.to_device(np.ascontiguousarray(x)))
            else:
                ins.append(x)
        outs = [cuda.device_array(n, dtype=d) for d in plan.out_dtypes]
        tpb = self.plan.vm.threads_per_block
        blocks = (n + tpb - 1) // tpb
        try:
            self.kernel[blocks, tpb](n, *ins, *outs)
        except Exception as exc:
            if self.compiled:
                raise
            from ..backends.numba import failure_reason  # Numba on first use (s2sad.backends)
            raise S2SADError(f"numba-cuda cannot compile the generated kernel:\n{failure_reason(exc)}\n"
                             "(see .source of the vmap'ed function)") from None
        self.compiled = True
        if device:
            return outs
        return [o.copy_to_host() for o in outs]


def _plan_sample(plan):
    return plan.sample


def call_device(vm, leaves, axes, treedefs):
    """vmap over CUDA device arrays: outputs stay on the device."""
    n = None
    for x, a in zip(leaves, axes):
        if a is None:
            continue
        if len(x.shape) != 1:
            raise S2SADError("vmap backend='cuda' with device arrays: batched arguments must be 1-D")
        if n is not None and x.shape[0] != n:
            raise ValueError(f"vmap got batched arguments of different sizes: {n} and {x.shape[0]}")
        n = x.shape[0]
    outs, out_def = vm.compiled_call(leaves, axes, treedefs, n, device=True)
    for a in pytree.tree_leaves(vm.out_axes):
        if a not in (0, -1):
            raise S2SADError("vmap backend='cuda' with device arrays supports out_axes=0 only")
    return pytree.tree_unflatten(out_def, outs) if out_def is not None else outs[0]
