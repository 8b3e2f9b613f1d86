"""The one place where a JIT compiler (Numba on the CPU, numba-cuda on the GPU) meets a generated
module: its functions compiled, each bound to a namespace of compiled functions."""

import types


def jit_each(names, namespace, into, jit):
    """Compile the generated functions `names` of `namespace` with `jit(name, function)`, each
    rebound to the namespace `into`, where the compiled versions are put: compiled functions
    call each other (and the compiled runtime helpers put in `into`) through it, as the Python
    versions do through `namespace`."""
    for n in names:
        fn = namespace[n]
        clone = types.FunctionType(fn.__code__, into, fn.__name__, fn.__defaults__, fn.__closure__)
        clone.__qualname__ = fn.__qualname__
        into[n] = jit(n, clone)
    return into
