"""The user's entry points: `grad`, `value_and_grad`, `source`, `stop_gradient`.

A transformed function specializes lazily: at each call it computes the
abstract signature of its arguments, and the first call with a new
signature runs the pipeline (`compiler`) and loads the generated module.
"""

import functools
import inspect
import itertools

import numpy as np

from . import display
from .. import backends, frontend, optimize, rules
from ..codegen import compiler
from ..ir import meta, nested
from ..ir import types as T
from ..normalize import pytree
from ..errors import NonDifferentiableError, S2SADError
from ..runtime import stop_gradient

_counter = itertools.count(1)


def _register_stop_gradient():
    # no derivative flows through it; its value is its argument's
    rules.NONDIFF[rules.key(stop_gradient)] = lambda args, consts: next(iter(args.values()))
    rules.value_free(stop_gradient)


_register_stop_gradient()


_AS_FUNCTION = {}  # (transform identity, argument types) -> generated function


class Transformed:
    """A derivative of `fun`, generated and compiled per argument signature.

    kind: "grad", "value_and_grad", "jacfwd" or "jacrev". When `fun` is itself
    a transformed function, s2sad transforms the code generated for it, in
    forward mode (forward-over-reverse for Hessians and grad of grad).
    """

    def __init__(self, fun, argnums, has_aux, kind, backend):
        if isinstance(fun, Transformed) and has_aux:
            raise S2SADError("has_aux is supported on the innermost transform only")
        self.fun = fun
        self.argnums = argnums
        self.has_aux = has_aux
        self.kind = kind
        self.backend = backend if backend is not None else getattr(fun, "backend", None)
        self.specializations = {}
        self.scalar_valued = {}  # argument types -> the type fun returns for them
        self.last = None
        functools.update_wrapper(self, fun, updated=())
        self.signature = fun.signature if isinstance(fun, Transformed) else _signature(fun)

    @property
    def with_value(self):
        return self.kind == "value_and_grad"

    @property
    def nested(self):
        return isinstance(self.fun, Transformed)

    def _bind(self, args, kwargs):
        if self.signature is None and kwargs:
            raise TypeError(f"{self.__name__} takes its arguments by position here; got keyword(s) "
                            f"{', '.join(kwargs)}")
        if self.signature is None or (not kwargs and len(args) == len(self.signature.parameters)):
            return list(args)  # the common case, without inspect's binding
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return list(bound.arguments.values())

    def argnum_tuple(self):
        return (self.argnums,) if isinstance(self.argnums, int) else tuple(self.argnums)

    def __call__(self, *args, **kwargs):
        args = self._bind(args, kwargs)
        argnums = self.argnum_tuple()
        for i in argnums:
            if i >= len(args):
                raise TypeError(f"argnums={self.argnums} but the function takes {len(args)} arguments")
            for leaf in (pytree.tree_leaves(args[i]) if pytree.is_container(args[i]) else [args[i]]):
                _check_real(leaf, i, self.signature, self.kind)
        flat, treedefs, positions = _flatten(args, argnums)
        if self.kind == "jacfwd" or self.nested or self._one_float(flat, argnums, tuple(treedefs), positions):
            return self._forward_call(flat, treedefs, positions, argnums)
        if self.kind == "jacrev":
            return self._jacrev_call(flat, treedefs, positions, argnums)
        spec = self.specialize(flat, argnums, tuple(treedefs), positions, "reverse")
        out, grads = spec.call(*flat, spec.seed(1.0))
        if spec.value_dropped:  # a scalar function's gradient: its value was not computed
            return self._pick(grads, treedefs, positions, argnums)
        out = spec.rebuild(out)
        if self.has_aux:
            _check_aux(out, self.__name__)
        value = out[0] if self.has_aux else out
        if np.ndim(value) != 0:
            raise TypeError(f"grad requires a scalar output; {self.__name__} returned an array of shape "
                            f"{np.shape(value)}. Use jacrev/jacfwd/vjp for non-scalar outputs.")
        picked = self._pick(grads, treedefs, positions, argnums)
        if self.has_aux:
            return ((value, out[1]), picked) if self.with_value else (picked, out[1])
        return (value, picked) if self.with_value else picked

    def _one_float(self, flat, argnums, treedefs, positions):
        """Is this a gradient with respect to a single float, to compute in forward mode? One
        sweep that carries a tangent beside each value needs no tape and no second sweep, where
        reverse mode records the values its backward sweep reads. Not where the function calls
        a custom_vjp (its rule is the user's reverse-mode derivative), nor through a primitive
        that has a reverse-mode rule only. (The forward code is what `s2sad.source` shows;
        `s2sad.show(f, "adjoint")` still gives the reverse-mode one.)"""
        if self.kind not in ("grad", "value_and_grad") or self.has_aux:
            return False
        wrt = [k for i in argnums for k in positions[i]]
        if len(wrt) != 1 or type(flat[wrt[0]]) is not float:
            return False
        try:
            spec = self.specialize(flat, argnums, treedefs, positions, "forward")
        except NonDifferentiableError:  # a primitive with a reverse rule only: reverse mode then
            return False
        return not spec.module.tangent_from_vjp

    def _pick(self, flat_grads, treedefs, positions, argnums):
        def of(i):
            p = positions[i]
            if treedefs[i] is None:
                return flat_grads[p[0]]
            return pytree.tree_unflatten(treedefs[i], [flat_grads[k] for k in p])
        return of(argnums[0]) if isinstance(self.argnums, int) else tuple(of(i) for i in argnums)

    def _forward_call(self, flat, treedefs, positions, argnums):
        """Derivatives by forward mode, one basis tangent per input element."""
        if any(t is not None for t in treedefs) and self.nested:
            raise S2SADError("higher-order derivatives of functions of dicts/lists are not supported yet: "
                             "pass arrays")
        wrt = tuple(k for i in argnums for k in positions[i])
        spec = self.specialize(flat, argnums, tuple(treedefs), positions, "forward")
        zeros = [np.zeros_like(flat[k], dtype=float) if isinstance(flat[k], np.ndarray) else 0.0 for k in wrt]
        out, tree, columns, aux = None, None, {}, None
        for j, k in enumerate(wrt):
            x = flat[k]
            cols = []  # per input element: the output tangent's leaves
            for index in (np.ndindex(x.shape) if isinstance(x, np.ndarray) else [()]):
                dots = list(zeros)
                dots[j] = _unit(x, index) if isinstance(x, np.ndarray) else 1.0
                value, tangent = spec.call(*flat, *dots)
                if self.has_aux:
                    aux = _check_aux(spec.rebuild(value), self.__name__)[1]
                    value, tangent = value[0], tangent[0]
                out = value
                tree, leaves = _output_leaves(spec, tangent, self.has_aux)
                cols.append(leaves)
            columns[k] = [_stack(list(c), np.shape(x)) for c in zip(*cols)]
        if self.kind in ("grad", "value_and_grad") and np.ndim(out) != 0:
            raise TypeError(f"grad requires a scalar output; {self.__name__} returned an array of shape "
                            f"{np.shape(out)}. Use jacrev/jacfwd/vjp for non-scalar outputs.")
        if spec.out_treedef is not None and not self.has_aux:
            out = spec.rebuild(out)
        picked = self._assemble(columns, tree, treedefs, positions, argnums)
        if self.has_aux:  # only jacfwd gets here with aux: (Jacobian, aux), as jacrev and JAX return
            return picked, aux
        return (out, picked) if self.with_value else picked

    def _assemble(self, columns, tree, treedefs, positions, argnums):
        """JAX's layout: the output's structure outermost, then the argnums, then each input's."""
        n_leaves = len(next(iter(columns.values())))
        per_leaf = [self._pick({k: c[leaf] for k, c in columns.items()}, treedefs, positions, argnums)
                    for leaf in range(n_leaves)]
        return per_leaf[0] if tree is None else pytree.tree_unflatten(tree, per_leaf)

    def _jacrev_call(self, flat, treedefs, positions, argnums):
        """Jacobian by reverse mode, one basis cotangent per output element."""
        spec = self.specialize(flat, argnums, tuple(treedefs), positions, "reverse")
        probe = fun_output(self.fun, _unflatten(flat, treedefs, positions), self.has_aux)
        tree, leaves = _output_leaves(spec, probe if self.has_aux else spec.flatten_output(probe), self.has_aux)
        leaves = [np.asarray(v, dtype=float) for v in leaves]
        wrt = [k for i in argnums for k in positions[i]]
        rows = {k: [[] for _ in leaves] for k in wrt}
        for leaf, v in enumerate(leaves):
            for index in (np.ndindex(v.shape) if v.ndim else [()]):
                seeds = [np.zeros_like(u) if u.ndim else 0.0 for u in leaves]
                seeds[leaf] = _unit(v, index) if v.ndim else 1.0
                seed = seeds[0] if tree is None else tuple(seeds)
                _, grads = spec.call(*flat, seed)
                for k in wrt:
                    rows[k][leaf].append(np.asarray(grads[k], dtype=float))
        columns = {k: [_stack_rows(r, leaves[leaf].shape, np.shape(flat[k])) for leaf, r in enumerate(rows[k])]
                   for k in wrt}
        picked = self._assemble(columns, tree, treedefs, positions, argnums)
        if self.has_aux:
            return picked, spec.rebuild(spec.call(*flat, 0.0)[0])[1]
        return picked

    def specialize(self, flat_args, argnums, treedefs, positions, mode):
        """The generated code for arguments like `flat_args` (values, or their abstract types)."""
        types = tuple(a if isinstance(a, T.Ty) else T.of_value(a) for a in flat_args)
        key = (types, argnums, treedefs, mode)
        spec = self.specializations.get(key)
        if spec is None or spec.stale():  # stale: a global it read was rebound since; generate again
            if spec is not None:
                self.scalar_valued.clear()  # the output's type may have changed with it
            wrt = tuple(k for i in argnums for k in positions[i])
            fun = self.fun.as_function(types) if self.nested else self.fun
            spec = self.specializations[key] = Specialization(self, fun, types, wrt, treedefs, mode)
        self.last = spec
        return spec

    def is_gradient(self, types):
        """Is this a gradient: grad, or jacfwd/jacrev of a scalar-valued function (a plain one)?"""
        if self.nested or self.has_aux:
            return False
        if self.kind == "grad":
            return True
        if self.kind not in ("jacfwd", "jacrev"):
            return False
        return self._result_type(types).is_scalar

    def _result_type(self, types):
        """The type `fun` returns for these argument types (values or `typesys.Ty`s)."""
        key = tuple(t if isinstance(t, T.Ty) else T.of_value(t) for t in types)
        if key not in self.scalar_valued:  # typing the function takes a module of its own: once
            self.scalar_valued[key] = compiler.Module().result_type(self.fun, list(key))
        return self.scalar_valued[key]

    def as_function(self, flat_args):
        """A generated Python function computing this derivative for arguments like `flat_args`.

        `flat_args` holds values or their abstract types (`typesys.Ty`)."""
        flat_args = [a if isinstance(a, T.Ty) else T.of_value(a) for a in flat_args]
        # `s2sad.grad(h)(x)` written at several places makes several equal transforms: share one
        # generated function, so a module that calls them all defines it once
        key = (self._identity(), tuple(flat_args))
        try:
            hit = _AS_FUNCTION.get(key)
        except TypeError:  # an unhashable callable: no sharing
            return self._as_function(flat_args)
        if hit is None or hit[1].stale():
            hit = _AS_FUNCTION[key] = (self._as_function(flat_args), self.last)
        self.last = hit[1]  # the specialization that generated it (its module, its source)
        return hit[0]

    def _identity(self):
        inner = self.fun._identity() if self.nested else self.fun
        return (self.kind, self.argnum_tuple(), isinstance(self.argnums, int), self.has_aux, inner)

    def _as_function(self, flat_args):
        argnums = self.argnum_tuple()
        positions = [[i] for i in range(len(flat_args))]
        treedefs = tuple(None for _ in flat_args)
        if self.kind not in ("grad", "jacrev", "jacfwd"):
            raise S2SADError(f"s2sad cannot yet differentiate {self.kind} again")
        for i in argnums:
            t = flat_args[i]
            if not t.numeric:  # a container: its leaves would be a parameter each
                what = f"a {type(t.value).__name__}" if t.value is not None else repr(t)
                raise S2SADError(f"higher-order derivatives of functions of dicts/lists are not supported yet: "
                                 f"argument {i} of {self.__name__} is {what}\n  hint: pass arrays")
        if self.nested or (self.kind == "jacfwd" and not self.is_gradient(flat_args)):
            spec = self.specialize(list(flat_args), argnums, treedefs, positions, "forward")
            return spec.gradient_wrapper(flat_args, argnums, self.argnums, "forward")
        out = self._result_type(flat_args)
        if not out.is_scalar and (self.kind != "jacrev" or not out.is_array):
            what = f"an array of rank {out.ndim}" if out.is_array else f"a value of type {out!r}"
            raise S2SADError(
                f"s2sad cannot differentiate this {self.kind} of {self.__name__} again: it returns {what} for "
                f"argument types ({', '.join(map(repr, flat_args))}); a {self.kind} differentiated again (or "
                "called inside differentiated code) needs " + ("a scalar output" if self.kind == "grad" else
                                                              "a scalar or one float array as output")
                + "\n  hint: return one array (np.concatenate the parts), or use jacfwd for the inner transform")
        spec = self.specialize(list(flat_args), argnums, treedefs, positions, "reverse")
        if out.is_array:  # one reverse sweep per output element: seeding 1.0 would sum the rows
            return spec.jacobian_wrapper(self.fun, flat_args, argnums, self.argnums, out.ndim)
        return spec.gradient_wrapper(flat_args, argnums, self.argnums, "reverse")

    @property
    def source(self):
        if self.last is None:
            raise S2SADError(f"{self.__name__} has not been called yet: s2sad generates code for the "
                             "argument types of the first call")
        return self.last.source

    def __repr__(self):
        return f"<s2sad.{self.kind} of {getattr(self.fun, '__name__', self.fun)}>"

    def _repr_html_(self):
        return display.transformed_html(self)

    def in_mode(self, wanted):
        """A specialization in mode `wanted` ("reverse" or "forward") for the types of the latest call:
        the latest one if its mode matches; otherwise (the adjoint of a function only used in
        forward mode, say) a fresh one for the same types."""
        spec = self.last
        if spec.mode == wanted:
            return spec
        types, argnums, treedefs, _ = next(key for key, s in self.specializations.items() if s is spec)
        other = (types, argnums, treedefs, wanted)
        if other in self.specializations:
            return self.specializations[other]
        if self.nested:
            raise S2SADError(f"{self.__qualname__} is a higher-order derivative computed in {spec.mode} mode; "
                             f"s2sad.show cannot regenerate it in {wanted} mode")
        wrt = [k for k, name in spec.module.vjps.items() if name == spec.name][0]
        wrt = wrt[3] if wrt[0] == "jvp" else wrt[2]
        self.specializations[other] = Specialization(self, self.fun, types, wrt, treedefs, wanted)
        return self.specializations[other]


def _output_leaves(spec, out, has_aux):
    """(structure, leaves) of an output: a pytree output's leaves, a tuple's items, or the value."""
    if spec.out_treedef is not None and not has_aux:
        return spec.out_treedef, list(out)
    if isinstance(out, tuple):
        return ("tuple", len(out), (None,) * len(out)), list(out)
    return None, [out]


def _stack(parts, in_shape):
    """Columns d out / d x[index], in x's index order, into out.shape + x.shape."""
    parts = [np.asarray(p, dtype=float) for p in parts]
    stacked = np.stack(parts, axis=-1).reshape(np.shape(parts[0]) + tuple(in_shape))
    return stacked if stacked.ndim else float(stacked)


def _stack_rows(rows, out_shape, in_shape):
    """Rows d out[index] / d x, in out's index order, into out.shape + x.shape."""
    if not rows:  # an empty output: an empty Jacobian
        return np.zeros(tuple(out_shape) + tuple(in_shape))
    stacked = np.stack(rows).reshape(tuple(out_shape) + tuple(in_shape))
    return stacked if stacked.ndim else float(stacked)


def fun_output(fun, args, has_aux):
    """The function's value at `args` (for the output's structure); its value part with has_aux."""
    out = fun(*args)
    return _check_aux(out, getattr(fun, "__name__", "the function"))[0] if has_aux else out


def _check_aux(out, name):
    """With has_aux=True the function returns a pair (value, auxiliary data), as in JAX."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        what = f"a tuple of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise S2SADError(f"with has_aux=True, {name} must return a pair (value, auxiliary data); it returned "
                         f"{what}\n  hint: return `value, (aux1, aux2)` to pass several auxiliary values")
    return out


def _unit(x, index):
    e = np.zeros(np.shape(x))
    e[index] = 1.0
    return e


def _unflatten(flat, treedefs, positions):
    """The arguments `_flatten` took apart, each container rebuilt: what the user's function takes."""
    return [flat[p[0]] if treedef is None else pytree.tree_unflatten(treedef, [flat[k] for k in p])
            for treedef, p in zip(treedefs, positions)]


def _flatten(args, argnums):
    flat, treedefs, positions = [], [], []
    for i, a in enumerate(args):
        leaves, treedef = pytree.tree_flatten(a) if pytree.is_container(a) else ([a], None)
        treedefs.append(treedef)
        positions.append(list(range(len(flat), len(flat) + len(leaves))))
        if i in argnums:
            leaves = [float(v) if isinstance(v, (float, np.floating)) else v for v in leaves]
        flat += leaves
    return flat, treedefs, positions


class Specialization:
    """The generated module of one derivative, for one argument signature."""

    def __init__(self, transformed, fun, types, wrt, treedefs, mode):
        module = compiler.Module()
        if mode == "reverse":
            name = module.vjp_name(fun, list(types), wrt, aux=transformed.has_aux, treedefs=treedefs)
        else:
            name = module.jvp_name(fun, list(types), wrt, treedefs=treedefs)
        self.value_dropped = mode == "reverse" and _drop_value(transformed, fun, types, treedefs, module, name)
        for tree in module.functions:
            optimize.run(tree)
        module.keep_called_by(name)
        what = "reverse" if mode == "reverse" else "forward"
        header = (f"# Generated by s2sad: {what} mode of {getattr(fun, '__qualname__', fun)}\n"
                  f"# with respect to argument(s) {wrt}, for argument types "
                  f"({', '.join(map(repr, types))}).\n")
        self.module, self.name, self.types, self.mode = module, name, types, mode
        self.out_treedef = _out_treedef(compiler.Function.of(fun))
        self.has_aux = transformed.has_aux
        self.header = header
        self.source = module.source(header)
        self.filename = f"<s2sad {name} {next(_counter)}>"
        self.namespace = module.load(self.source, self.filename)
        self.call = backends.prepare(self.namespace, name, module, transformed.backend)
        self.wrappers = {}

    def stale(self):
        """Was a global or closure variable the generated code depends on rebound since?"""
        return self.module.stale()

    def rebuild(self, out):
        """The output in the structure the function returns (dicts and nested containers)."""
        if self.out_treedef is None:
            return out
        return pytree.tree_unflatten(self.out_treedef, list(out))

    def flatten_output(self, value):
        if self.out_treedef is None:
            return value
        return tuple(pytree.tree_leaves(value))

    def seed(self, cotangent):
        """The output cotangent as generated code takes it (with has_aux: the value's alone)."""
        return cotangent if self.has_aux else self.flatten_output(cotangent)

    def _params(self, n):
        """The wrapper's parameters: the generated function's own (the user's names), where they are
        plain names that nothing in a wrapper uses, else a0, a1, ..."""
        entry = next((t for t in self.module.functions if t.name == self.name), None)
        names = [a.id for a in entry.args.args[:n]] if entry is not None else []
        taken = {"np", "math", "stop_gradient", self.name, f"{self.name}_grad", f"{self.name}_jac"}
        if len(names) == n and len(set(names)) == n and not any(p.startswith("_") or p in taken for p in names):
            return names
        return [f"a{i}" for i in range(n)]

    def gradient_wrapper(self, flat_args, argnums, argnums_spec, mode):
        """Generated source for `grad(f)(*args)` itself, so it can be differentiated again."""
        key = (argnums, mode)
        if key in self.wrappers:
            return self.wrappers[key]
        params = self._params(len(flat_args))
        call_args = ", ".join(params)
        lines = [f"def {self.name}_grad({call_args}):"]
        if mode == "reverse":
            picks = [f"_r[1][{i}]" for i in argnums]
            lines.append(f"    _r = {self.name}({call_args}, 1.0)")
        else:
            picks = []
            for j, i in enumerate(argnums):
                if flat_args[i].is_array:
                    raise S2SADError(
                        f"s2sad cannot yet differentiate a derivative again with respect to an array (argument {i}) "
                        "inside generated code, as a compiled vmap of a Hessian or a third derivative of a "
                        "function of arrays would\n  hint: vmap it with backend='python' (a Python loop over "
                        "the Hessian compiled by Numba)")
                dots = ", ".join("1.0" if jj == j else "0.0" for jj in range(len(argnums)))
                lines.append(f"    _r{j} = {self.name}({call_args}, {dots})")
                picks.append(f"_r{j}[1]")
        result = picks[0] if isinstance(argnums_spec, int) else "(" + ", ".join(picks) + ",)"
        lines.append(f"    return {result}")
        source = "\n".join(lines) + "\n"
        wrapper = self.wrappers[key] = self._load_wrapper(self.source, source, f"{self.name}_grad")
        return wrapper

    def jacobian_wrapper(self, fun, flat_args, argnums, argnums_spec, out_ndim):
        """Generated source for `jacrev(f)(*args)` of an array-valued f, so it can be differentiated
        again: one reverse sweep per output element, seeded with that element's unit cotangent, each
        giving a row of the Jacobian (shape out.shape + in.shape, as at the top level)."""
        key = (argnums, "jacobian")
        if key in self.wrappers:
            return self.wrappers[key]
        # the output's shape is known only at run time: the primal's value gives it (its arguments
        # held constant, so that differentiating the wrapper adds no tangent code for it)
        primal = self.module.primal(fun)
        params = self._params(len(flat_args))
        held = [f"stop_gradient({p})" if t.kind == "f" else p for p, t in zip(params, flat_args)]
        out_shape = [f"_y.shape[{d}]" for d in range(out_ndim)]
        lines = [f"def {self.name}_jac({', '.join(params)}):",
                 f"    _y = {primal}({', '.join(held)})",
                 "    _n = _y.size"]
        for j, i in enumerate(argnums):  # the rows of each Jacobian, flattened: out.size x in.size
            lines.append(f"    _J{j} = np.zeros((_n, {params[i]}.size))" if flat_args[i].is_array else
                         f"    _J{j} = np.zeros(_n)")
        lines += ["    for _k in range(_n):",
                  "        _e = np.zeros(_n)",
                  "        _e[_k] = 1.0",
                  f"        _r = {self.name}({', '.join(params)}, _e.reshape(_y.shape))"]
        results = []
        for j, i in enumerate(argnums):
            if flat_args[i].is_array:
                lines.append(f"        _J{j}[_k] = _r[1][{i}].reshape({params[i]}.size)")
                in_shape = [f"{params[i]}.shape[{d}]" for d in range(flat_args[i].ndim)]
            else:
                lines.append(f"        _J{j}[_k] = _r[1][{i}]")
                in_shape = []
            results.append(f"_J{j}.reshape(({', '.join(out_shape + in_shape)},))")
        result = results[0] if isinstance(argnums_spec, int) else "(" + ", ".join(results) + ",)"
        lines.append(f"    return {result}")
        wrapper = self._load_wrapper(self.module.source(self.header), "\n".join(lines) + "\n", f"{self.name}_jac")
        self.wrappers[key] = wrapper
        return wrapper

    def _load_wrapper(self, module_source, source, name):
        namespace = self.module.load(module_source + "\n\n" + source, f"<s2sad {name} {next(_counter)}>")
        wrapper = namespace[name]
        wrapper.s2sad_spec = self  # code generated from the wrapper is stale when this is (Function.stale)
        return wrapper


def _drop_value(transformed, fun, types, treedefs, module, name):
    """For `grad` of a function statically known to return a scalar, make the generated vjp return
    None for the value, so that what only computed the value (a loop's running sum, say) is
    dropped as dead code. True when it did."""
    if transformed.kind != "grad" or transformed.has_aux or any(t is not None for t in treedefs):
        return False
    func = compiler.Function.of(fun)
    if _out_treedef(func) is not None:
        return False
    if not func.analyze(list(types), [], module).type_of(func.ir.body[-1].value).is_scalar:
        return False  # an array (grad refuses it after the call) or a type not known here
    return compiler.drop_returned_value(next(t for t in module.functions if t.name == name))


def _out_treedef(func):
    """The structure of the container `func` (a compiler.Function) returns, else None."""
    returned = meta.get(func.ir, meta.OutTreedef)
    return returned.treedef if returned is not None else None


def _signature(fun):
    if isinstance(fun, np.ufunc):
        return None
    if frontend.library_function(fun):
        return frontend.library_signature(fun)
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        return None   # `*args`: arguments by position (the frontend refuses the function itself, clearly)
    return signature


def _check_real(value, i, signature, transform="grad"):
    label = f"argument {i}"
    if signature is not None:
        names = list(signature.parameters)
        if i < len(names):
            label = f"argument {i} ('{names[i]}')"
    # NonDifferentiableError is a TypeError too, as these were before they were s2sad's own errors
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (int, np.integer)):
        raise NonDifferentiableError(f"{transform} requires real-valued (float) inputs; {label} is an integer "
                                     f"({value!r}). Pass a float, e.g. 1.0 instead of 1.")
    _check_not_complex(value, label, transform)
    if isinstance(value, np.ndarray) and value.dtype.kind != "f":
        raise NonDifferentiableError(f"{transform} requires real-valued (float) inputs; {label} is an array of dtype "
                                     f"{value.dtype}. Convert it with .astype(float).")


def _check_not_complex(value, label, transform="grad"):
    """Every transform refuses complex numbers alike (s2sad differentiates real functions): a complex
    value would otherwise be differentiated as a constant, or fail inside generated code."""
    if isinstance(value, (complex, np.complexfloating)) or isinstance(value, np.ndarray) and value.dtype.kind == "c":
        raise NonDifferentiableError(f"{transform} requires real-valued (float) inputs; {label} is complex "
                                     f"({value!r}). Pass its real part (float(z.real)), or the real and "
                                     "imaginary parts as two float arguments.")


def _check_leaves_not_complex(values, what, transform):
    for i, v in enumerate(values):
        for leaf in (pytree.tree_leaves(v) if pytree.is_container(v) else [v]):
            _check_not_complex(leaf, f"{what} {i}", transform)


def _transform(fun, argnums, has_aux, kind, backend):
    if fun is None:
        return lambda f: _transform(f, argnums, has_aux, kind, backend)
    return Transformed(fun, argnums, has_aux, kind, backend)


def grad(fun=None, argnums=0, has_aux=False, backend=None):
    """The gradient of a scalar function, as a function of the same arguments.

    Usable as `grad(f)`, `@grad` and `@grad(argnums=(0, 1))`. A tuple of
    argnums gives a tuple of gradients.
    """
    return _transform(fun, argnums, has_aux, "grad", backend)


def value_and_grad(fun=None, argnums=0, has_aux=False, backend=None):
    """Like `grad`, but returns `(value, gradient)`."""
    return _transform(fun, argnums, has_aux, "value_and_grad", backend)


def jacfwd(fun, argnums=0, has_aux=False, backend=None):
    """The Jacobian by forward mode: shape `out.shape + in.shape`."""
    return Transformed(fun, argnums, has_aux, "jacfwd", backend)


def jacrev(fun, argnums=0, has_aux=False, backend=None):
    """The Jacobian by reverse mode: shape `out.shape + in.shape`."""
    return Transformed(fun, argnums, has_aux, "jacrev", backend)


def hessian(fun, argnums=0, backend=None):
    """Second derivatives, forward over reverse: `jacfwd(jacrev(fun))`."""
    return jacfwd(jacrev(fun, argnums, backend=backend), argnums, backend=backend)


def jvp(fun, primals, tangents, backend=None):
    """(fun(*primals), the directional derivative of fun at primals along tangents).

    A tangent given as None holds its primal constant: no tangent code is generated for what
    depends on it alone (JAX would need a closure over that argument)."""
    primals, tangents = list(primals), list(tangents)
    if len(primals) != len(tangents):
        raise TypeError("jvp needs one tangent per primal")
    _check_leaves_not_complex(primals, "primal", "jvp")
    _check_leaves_not_complex(tangents, "tangent", "jvp")
    base = fun.as_function(primals) if isinstance(fun, Transformed) else fun
    flat, treedefs, positions = _flatten(primals, tuple(range(len(primals))))
    flat_dots, constant = [], set()
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if t is None:
            constant.update(positions[i])
            flat_dots += [None] * len(positions[i])
            continue
        leaves = pytree.tree_leaves(t) if pytree.is_container(p) else [t]
        flat_dots += [np.asarray(v, dtype=float) if isinstance(v, np.ndarray) else float(v) for v in leaves]
    wrt = tuple(k for k, v in enumerate(flat) if k not in constant and (isinstance(v, (float, np.floating))
                or (isinstance(v, np.ndarray) and v.dtype.kind == "f")))
    spec = jvp_spec(base, flat, wrt, tuple(treedefs), backend)
    out, out_dot = spec.call(*flat, *[flat_dots[k] for k in wrt])
    return spec.rebuild(out), spec.rebuild(out_dot)


_JVP_CACHE = {}


def jvp_spec(fun, flat, wrt, treedefs, backend):
    types = tuple(T.of_value(a) for a in flat)
    key = (id(fun), types, wrt, treedefs, backend)
    spec = _JVP_CACHE.get(key)
    if spec is None or spec[0] is not fun or spec[1].stale():
        holder = Transformed(fun, 0, False, "jacfwd", backend)
        spec = (fun, Specialization(holder, fun, types, wrt, treedefs, "forward"))
        _JVP_CACHE[key] = spec
    return spec[1]


class JvpOf:
    """`jvp(fun, primals, tangents)` written inside differentiated code, as one callable:
    `JvpOf(fun)(*primals, *tangents) -> (out, tangent_out)`. Its generated code is
    plain forward-mode code, which either mode differentiates again."""

    kind = "jvp"
    nested = False
    has_aux = False

    def __init__(self, fun):
        self.fun = fun
        self.__name__ = f"{getattr(fun, '__name__', 'f')}_jvp"

    def __call__(self, *args):
        n = len(args) // 2
        return jvp(self.fun, args[:n], args[n:], backend="python")

    def as_function(self, types):
        """A generated plain function `(*primals, *tangents) -> (out, tangent_out)` for these types."""
        types = [t if isinstance(t, T.Ty) else T.of_value(t) for t in types]
        n = len(types) // 2
        key = tuple(types)
        cache = self.__dict__.setdefault("_functions", {})
        if key not in cache or cache[key].s2sad_spec.stale():
            holder = Transformed(self.fun, 0, False, "jacfwd", "python")
            spec = Specialization(holder, self.fun, tuple(types[:n]), tuple(range(n)), (None,) * n, "forward")
            params = [f"a{i}" for i in range(2 * n)]
            source = (f"def {spec.name}_all({', '.join(params)}):\n"
                      f"    return {spec.name}({', '.join(params)})\n")
            namespace = spec.module.load(spec.source + "\n\n" + source, f"<s2sad {spec.name}_all {next(_counter)}>")
            cache[key] = namespace[f"{spec.name}_all"]
            cache[key].s2sad_spec = spec
        return cache[key]


def vjp(fun, *primals, has_aux=False, backend=None):
    """`(fun(*primals), vjp_fn)`, where `vjp_fn(cotangent)` gives one cotangent per primal.

    With `has_aux=True`, fun returns `(value, aux)` and vjp returns `(value, vjp_fn, aux)`."""
    _check_leaves_not_complex(primals, "primal", "vjp")
    flat, treedefs, positions = _flatten(list(primals), tuple(range(len(primals))))
    holder = Transformed(fun, 0, has_aux, "jacrev", backend)
    spec = holder.specialize(flat, tuple(range(len(primals))), tuple(treedefs), positions, "reverse")
    # the primal's value gives the zero cotangent's structure; it takes the containers themselves
    primal = fun(*_unflatten(flat, treedefs, positions)) if not isinstance(fun, Transformed) else None
    zero = _zero_like(lambda *a: primal[0] if has_aux else primal, flat) if primal is not None \
        else _zero_like(fun, flat)
    out, _ = spec.call(*flat, spec.seed(zero))
    out = spec.rebuild(out)
    if has_aux:
        _check_aux(out, getattr(fun, "__name__", "the function"))

    def vjp_fn(cotangent):
        _check_leaves_not_complex([cotangent], "cotangent", "vjp")
        _check_cotangent(cotangent, zero)
        _, grads = spec.call(*flat, spec.seed(cotangent))
        per_arg = []
        for i, p in enumerate(positions):
            leaves = [grads[k] for k in p]
            per_arg.append(leaves[0] if treedefs[i] is None else pytree.tree_unflatten(treedefs[i], leaves))
        return tuple(per_arg)
    if has_aux:
        return out[0], vjp_fn, out[1]
    return out, vjp_fn


def _check_cotangent(cotangent, like):
    """A cotangent has the output's structure and shapes (JAX's rule): one that NumPy would broadcast
    gives the vjp of another output, silently."""
    def leaves(v):
        return pytree.tree_leaves(v) if pytree.is_container(v) else [v]
    got, want = leaves(cotangent), leaves(like)
    if len(got) != len(want) or any(np.shape(g) != np.shape(w) for g, w in zip(got, want)):
        shapes = lambda vs: ", ".join(str(np.shape(v)) for v in vs)  # noqa: E731
        raise S2SADError(f"vjp: the cotangent must have the output's structure and shapes ({shapes(want)}); "
                         f"got {shapes(got)}")


def _zero_like(fun, flat):
    """A zero cotangent of the right structure: run the primal once to learn it."""
    out = fun(*flat) if not isinstance(fun, Transformed) else None
    zero = lambda o: np.zeros_like(o, dtype=float) if np.ndim(o) else 0.0  # noqa: E731
    # every container, tuples inside tuples too (a tuple of numbers is not an array here)
    return pytree.tree_map(zero, out) if pytree.is_container(out) else zero(out)


def source(f):
    """The generated Python source of a transformed function."""
    if isinstance(f, Transformed):
        return f.source
    raise S2SADError(f"{f!r} is not a function transformed by s2sad")


def default_backend():
    return backends.default()


nested.declare((Transformed, JvpOf), {"grad": grad, "value_and_grad": value_and_grad, "jacfwd": jacfwd,
                                      "jacrev": jacrev, "jvp": jvp}, JvpOf)
