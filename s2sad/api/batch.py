"""The loop over a batch that vmap's compiled runners generate: on the CPU (`vmap`, Numba) and
on the GPU (`vmap_cuda`, a kernel)."""

import functools
import types

from . import transforms as api


def is_jvp_partial(fun):
    return (isinstance(fun, functools.partial) and fun.func is api.jvp and len(fun.args) == 1
            and not fun.keywords)


def loop_source(plan, name, header, index_lines):
    """Source of the loop over the batch: `header` opens it, `index_lines` pick sample i."""
    ins = [f"x{k}" for k in range(len(plan.params))]
    outs = [f"out{k}" for k in range(len(plan.out_exprs))]
    lines = [f"def {name}(n, {', '.join(ins + outs)}):"] + header
    call = ", ".join(f"x{k}[i]" if b else f"x{k}" for k, b in enumerate(plan.batched))
    lines.append(f"{index_lines}_r = _s2sad_sample({call})")
    for k, e in enumerate(plan.out_exprs):
        lines.append(f"{index_lines}out{k}[i] = {e}")
    return "\n".join(lines) + "\n"


def generated_functions(namespace):
    """The functions a loaded batch module defines (not those it imports)."""
    return [name for name, obj in namespace.items()
            if isinstance(obj, types.FunctionType) and obj.__globals__ is namespace]
