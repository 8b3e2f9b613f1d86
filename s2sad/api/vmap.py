"""`vmap`: map a function (or a derivative of one) over a batch axis.

Semantics follow `jax.vmap`: `in_axes` is an int, None, or a tuple with one
entry per positional argument (an int, None, or a container of ints/None
matching that argument's dicts/lists/tuples); `out_axes` likewise for the
outputs. Backends:

- "python": a Python loop calling `fun` per sample (anything `fun` accepts).
- "numba": one generated loop function, njit'ed, calling the njit'ed
  generated derivative per sample.
- "parallel": the same loop with `numba.prange` over the CPU cores.
- "cuda": the generated forward-mode derivative of a function of scalars
  as a CUDA device function, and a kernel over the batch (`cuda_backend`).

For the compiled backends `fun` must be a function of s2sad (`grad`,
`value_and_grad`, `jacfwd`, `jacrev`, `hessian`, nested), a plain function
(its primal, generated through the same pipeline) or
`functools.partial(s2sad.jvp, f)` called as `(primals, tangents)`.
"""

import functools
import itertools
import os

import numpy as np

from . import transforms as api
from . import vmap_cuda as cuda_backend
from .batch import generated_functions, is_jvp_partial, loop_source
from ..backends.jit import jit_each
from ..normalize import pytree
from ..ir import types as T
from ..errors import S2SADError

BACKENDS = ("python", "numba", "parallel", "cuda")
_counter = itertools.count(1)


def vmap(fun, in_axes=0, out_axes=0, backend=None, threads_per_block=128):
    """Vectorize `fun` over a batch axis of its arguments (see the module docstring)."""
    backend = backend or os.environ.get("S2SAD_VMAP_BACKEND", "python")
    if backend not in BACKENDS:
        raise ValueError(f"unknown vmap backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return Vmapped(fun, in_axes, out_axes, backend, threads_per_block)


class Vmapped:
    def __init__(self, fun, in_axes, out_axes, backend, threads_per_block):
        _check_axes_spec(in_axes, "in_axes")
        _check_axes_spec(out_axes, "out_axes")
        self.fun, self.in_axes, self.out_axes, self.backend = fun, in_axes, out_axes, backend
        self.threads_per_block = threads_per_block
        self.plans = {}
        self.last = None
        functools.update_wrapper(self, fun, updated=()) if hasattr(fun, "__name__") else None

    def __repr__(self):
        return f"<s2sad.vmap of {self.fun!r}, backend={self.backend!r}>"

    @property
    def source(self):
        if self.last is None:
            raise S2SADError("this vmap has not been called yet (code is generated for the first call's types)")
        return self.last.source

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError("vmap'ed functions take positional arguments only")
        leaves, axes, treedefs = _in_leaves(args, self.in_axes)
        if self.backend == "cuda":
            if any(cuda_backend.is_device_array(x) for x in leaves):
                return cuda_backend.call_device(self, leaves, axes, treedefs)
        n = _batch_size(leaves, axes)
        leaves = [np.moveaxis(np.asarray(x), a, 0) if a is not None else x for x, a in zip(leaves, axes)]
        if self.backend == "python":
            outs, out_def = self._python_loop(leaves, axes, treedefs, n)
        else:
            outs, out_def = self.compiled_call(leaves, axes, treedefs, n)
        return _assemble(outs, out_def, self.out_axes)

    # ---- the reference: a Python loop -----------------------------------------
    def _python_loop(self, leaves, axes, treedefs, n):
        rows, out_def = [], None
        for i in range(n):
            out = self.fun(*_sample_args(leaves, axes, treedefs, i))
            flat, d = pytree.tree_flatten(out)
            if out_def is None:
                out_def = d
            elif d != out_def:
                raise S2SADError(f"vmap: the output structure changes between samples ({out_def} vs {d})")
            rows.append(flat)
        return [np.stack([np.asarray(r[k]) for r in rows]) for k in range(len(rows[0]))], out_def

    # ---- the compiled backends -----------------------------------------------------
    def compiled_call(self, leaves, axes, treedefs, n, device=False):
        # a sample's types pick the plan; on the device, reading x[0] would copy it to the host
        # and wait for the GPU at every call, so a zero of the sample's dtype and shape stands in
        sample = [x if a is None else _item(np.zeros(x.shape[1:], dtype=x.dtype)) if device else _item(x[0])
                  for x, a in zip(leaves, axes)]
        key = (tuple(T.of_value(s) for s in sample), tuple(a is not None for a in axes), tuple(treedefs))
        plan = self.plans.get(key)
        if plan is None or plan.module.stale():  # stale: a global its code read was rebound since
            plan = self.plans[key] = Plan(self, sample, axes, treedefs)
        self.last = plan
        return plan.run(leaves, n, device=device), plan.out_def


# ---- axes ---------------------------------------------------------------------------
def _check_axes_spec(spec, what):
    for leaf in pytree.tree_leaves(spec):
        if leaf is not None and not isinstance(leaf, (int, np.integer)):
            raise TypeError(f"vmap {what} must be ints, None or containers of them; got {leaf!r}")


def _in_leaves(args, in_axes):
    if isinstance(in_axes, (tuple, list)) and not isinstance(in_axes, (int, np.integer)):
        if isinstance(in_axes, list):
            in_axes = tuple(in_axes)
        if len(in_axes) != len(args):
            raise ValueError(f"vmap in_axes has {len(in_axes)} entries but the function got {len(args)} "
                             "positional arguments")
        per_arg = in_axes
    elif isinstance(in_axes, dict):
        raise TypeError("vmap in_axes must be an int, None or a tuple with one entry per argument")
    else:
        per_arg = (in_axes,) * len(args)
    leaves, axes, treedefs = [], [], []
    for i, (arg, spec) in enumerate(zip(args, per_arg)):
        arg_leaves, treedef = pytree.tree_flatten(arg)
        if spec is None or isinstance(spec, (int, np.integer)):
            arg_axes = [spec] * len(arg_leaves)
        else:
            arg_axes, spec_def = pytree.tree_flatten(spec)
            if spec_def != treedef:
                raise ValueError(f"vmap in_axes[{i}] = {spec!r} does not match the structure of argument {i}")
        for leaf, a in zip(arg_leaves, arg_axes):
            if a is not None:
                nd = np.ndim(leaf)
                if nd == 0:
                    raise ValueError(f"vmap in_axes[{i}] = {a} but argument {i} has a scalar (rank 0) leaf; "
                                     "use None for arguments that are not batched")
                if not -nd <= a < nd:
                    raise ValueError(f"vmap in_axes[{i}] = {a} is out of range for an array of rank {nd}")
                a = int(a) % nd
            leaves.append(leaf)
            axes.append(a)
        treedefs.append((treedef, len(arg_leaves)))
    if all(a is None for a in axes):
        raise ValueError("vmap needs at least one batched argument (in_axes is None for all of them)")
    return leaves, axes, treedefs


def _batch_size(leaves, axes):
    sizes = {np.shape(x)[a] for x, a in zip(leaves, axes) if a is not None}
    if len(sizes) != 1:
        raise ValueError(f"vmap got batched arguments of different sizes along their in_axes: {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("vmap got an empty batch")
    return n


def _item(x):
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _sample_args(leaves, axes, treedefs, i):
    flat = [_item(x[i]) if a is not None else x for x, a in zip(leaves, axes)]
    args, k = [], 0
    for treedef, count in treedefs:
        args.append(pytree.tree_unflatten(treedef, flat[k:k + count]) if treedef is not None else flat[k])
        k += count
    return args


def _assemble(outs, out_def, out_axes):
    """Stacked output leaves (batch axis first) -> the output structure with `out_axes` applied."""
    if out_axes is None or isinstance(out_axes, (int, np.integer)):
        leaf_axes = [out_axes] * len(outs)
    else:
        leaf_axes, spec_def = pytree.tree_flatten(out_axes)
        if spec_def != out_def:
            raise ValueError(f"vmap out_axes = {out_axes!r} does not match the structure of the output")
    result = []
    for x, a in zip(outs, leaf_axes):
        if a is None:
            x = np.asarray(x)
            if not all(np.array_equal(x[0], x[i]) for i in range(1, x.shape[0])):
                raise ValueError("vmap out_axes=None for an output that varies along the batch")
            result.append(_item(x[0]) if x.ndim == 1 else x[0])
            continue
        nd = np.ndim(x)
        if not -nd <= a < nd:
            raise ValueError(f"vmap out_axes = {a} is out of range for an output of rank {nd - 1}")
        result.append(x if int(a) % nd == 0 else np.moveaxis(x, 0, int(a)))
    return pytree.tree_unflatten(out_def, result) if out_def is not None else result[0]


# ---- what a sample computes, as generated code ----------------------------------------
def forward_chain(fun):
    """The same derivative, every level in forward mode (no tape): for functions of scalars,
    grad = jacfwd = jacrev, and the forward code runs in a CUDA kernel."""
    if not isinstance(fun, api.Transformed):
        return fun
    if fun.has_aux:
        raise S2SADError("vmap with backend='cuda' does not support has_aux")
    return api.Transformed(forward_chain(fun.fun), fun.argnums, False, "jacfwd", "python")


class Plan:
    """The generated per-sample function, its loop, and the compiled loop."""

    def __init__(self, vm, sample, axes, treedefs):
        self.vm = vm
        self.batched = [a is not None for a in axes]
        self.sample = sample
        self.params = [f"a{i}" for i in range(len(sample))]
        fun = vm.fun
        if any(d is not None for d, _ in treedefs) and not is_jvp_partial(fun):
            raise S2SADError(f"vmap backend={vm.backend!r} needs array/scalar arguments; dicts, lists and "
                             "tuples run with backend='python'")
        forward = vm.backend == "cuda"
        base_source, module, body = self._sample_body(fun, sample, treedefs, forward)
        self.module = module
        wrapper = [f"def _s2sad_sample({', '.join(self.params)}):"] + ["    " + b for b in body]
        self.sample_source = "\n".join(wrapper) + "\n"
        probe_ns = module.load(base_source + "\n\n" + self.sample_source, f"<s2sad vmap probe {next(_counter)}>")
        out = probe_ns["_s2sad_sample"](*sample)
        flat, self.out_def = pytree.tree_flatten(out)
        self.out_exprs = _leaf_exprs(out, "_r")
        self.out_shapes = [np.shape(v) for v in flat]
        self.out_dtypes = [np.asarray(v).dtype if np.asarray(v).dtype.kind in "biu" else np.dtype(np.float64)
                           for v in flat]
        self.base_source = base_source
        if forward:
            self.runner = cuda_backend.KernelRunner(self, fun)
        else:
            self.runner = _NumbaRunner(self, parallel=vm.backend == "parallel")
        self.source = self.runner.source

    def _sample_body(self, fun, sample, treedefs, forward):
        """(source of the generated module, Module, body lines of `_s2sad_sample(a0, ...)`)."""
        args = ", ".join(self.params)
        if is_jvp_partial(fun):
            (d0, n0), (d1, n1) = treedefs if len(treedefs) == 2 else (None, None)
            if n0 != n1:
                raise S2SADError("vmap of jvp: primals and tangents must have the same structure")
            primals = sample[:n0]
            wrt = tuple(k for k, v in enumerate(primals) if isinstance(v, float)
                        or (isinstance(v, np.ndarray) and v.dtype.kind == "f"))
            inner = fun.args[0]
            if isinstance(inner, api.Transformed):
                inner = (forward_chain(inner) if forward else inner).as_function(primals)
            spec = api.jvp_spec(inner, primals, wrt, (None,) * n0, "python")
            dots = ", ".join(self.params[n0 + k] for k in wrt)
            call = ", ".join(self.params[:n0])
            return spec.source, spec.module, [f"_r = {spec.name}({call}, {dots})", "return _r[0], _r[1]"]
        if not isinstance(fun, api.Transformed):
            wrt = ()
            spec = api.jvp_spec(fun, list(sample), wrt, (None,) * len(sample), "python")
            return spec.source, spec.module, [f"_r = {spec.name}({args})", "return _r[0]"]
        if fun.has_aux:
            raise S2SADError(f"vmap backend={self.vm.backend!r} does not support has_aux; use backend='python'")
        argnums = fun.argnum_tuple()
        positions = [[i] for i in range(len(sample))]
        nones = tuple(None for _ in sample)
        reverse = None
        if forward and fun.kind in ("grad", "value_and_grad") and not fun.nested:
            reverse = self._tapeless_reverse(fun, sample, argnums, nones, positions)
        if reverse is not None:  # one reverse pass gives every partial: no tape, so kernels can run it
            spec = reverse
            body = [f"_r = {spec.name}({args}, 1.0)"]
            grads = [f"_r[1][{i}]" for i in argnums]
            value = "_r[0]"
        elif forward:
            chain = forward_chain(fun)
            for i in argnums:
                if not isinstance(sample[i], float):
                    raise S2SADError(f"vmap backend='cuda' differentiates functions of scalars; argument {i} "
                                     f"is a {type(sample[i]).__name__} per sample")
            if chain.nested:
                spec = chain.specialize(list(sample), argnums, nones, positions, "forward")
            else:
                spec = chain.specialize(list(sample), argnums, nones, positions, "forward")
            body = []
            for j, _ in enumerate(argnums):
                dots = ", ".join("1.0" if jj == j else "0.0" for jj in range(len(argnums)))
                body.append(f"_r{j} = {spec.name}({args}, {dots})")
            grads = [f"_r{j}[1]" for j in range(len(argnums))]
            value = "_r0[0]"
        elif fun.kind in ("grad", "value_and_grad") and not fun.nested:
            spec = fun.specialize(list(sample), argnums, nones, positions, "reverse")
            body = [f"_r = {spec.name}({args}, 1.0)"]
            grads = [f"_r[1][{i}]" for i in argnums]
            value = "_r[0]"
        else:
            if fun.kind == "value_and_grad":
                raise S2SADError("vmap of a nested value_and_grad runs with backend='python' only")
            f = fun.as_function(list(sample))
            spec = fun.last
            src = "".join(__import__("linecache").getlines(f.__code__.co_filename))
            return src, spec.module, [f"return {f.__name__}({args})"]
        g = grads[0] if isinstance(fun.argnums, int) else "(" + ", ".join(grads) + ",)"
        body.append(f"return {value}, {g}" if fun.kind == "value_and_grad" else f"return {g}")
        return spec.source, spec.module, body

    def _tapeless_reverse(self, fun, sample, argnums, nones, positions):
        """The reverse-mode specialization for a kernel when it needs no tape (straight-line code of
        scalars, say), else None: the kernel then runs one forward pass per input."""
        if not all(isinstance(sample[i], float) for i in argnums):
            return None
        spec = fun.specialize(list(sample), argnums, nones, positions, "reverse")
        try:
            cuda_backend.check_generated(cuda_backend.to_device_source(spec.source), "")
        except S2SADError:
            return None
        return spec

    def run(self, leaves, n, device=False):
        return self.runner.run(leaves, n, device)


def _leaf_exprs(value, prefix):
    if isinstance(value, (tuple, list)):
        out = []
        for k, v in enumerate(value):
            out += _leaf_exprs(v, f"{prefix}[{k}]")
        return out
    if isinstance(value, dict):
        raise S2SADError("vmap with a compiled backend: dict outputs run with backend='python'")
    return [prefix]


class _NumbaRunner:
    def __init__(self, plan, parallel):
        import numba
        from ..backends import numba as numba_backend  # Numba on first use (s2sad.backends)
        self.plan = plan
        loop = "prange" if parallel else "range"
        src = loop_source(plan, "_s2sad_batch", [f"    for i in {loop}(n):"], "        ")
        self.source = plan.base_source + "\n\n" + plan.sample_source + "\n\n" + src
        ns = plan.module.load(self.source, f"<s2sad vmap {next(_counter)}>")
        nb_ns = dict(ns)
        nb_ns["Tape"] = numba_backend.Tape
        nb_ns["prange"] = numba.prange
        jit_each(generated_functions(ns), ns, nb_ns,
                 lambda name, fn: numba.njit(fn, parallel=parallel and name == "_s2sad_batch"))
        self.batch = nb_ns["_s2sad_batch"]

    def run(self, leaves, n, device):
        plan = self.plan
        ins = [np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x for x in leaves]
        outs = [np.empty((n,) + s, dtype=d) for s, d in zip(plan.out_shapes, plan.out_dtypes)]
        try:
            self.batch(n, *ins, *outs)
        except Exception as exc:
            from ..backends.numba import failure_reason, compile_failure  # Numba on first use (s2sad.backends)
            if not compile_failure(exc):
                raise
            raise S2SADError(f"Numba cannot compile the generated vmap loop:\n{failure_reason(exc)}\n"
                             "(see .source of the vmap'ed function; backend='python' runs it without Numba)") from None
        return outs
