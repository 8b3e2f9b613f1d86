"""Pytrees: nested dicts, lists and tuples of scalars and arrays.

At the boundary of a transformed function, container arguments are
flattened into their leaves, and the function's constant-key reads
(`params['W']`, `layers[0]['b']`) become plain parameters, one per leaf,
so generated code sees only scalars and arrays. Gradients come back in
the arguments' own structure.
"""


import gast

from ..errors import UnsupportedSyntaxError
from . import copy_ir


def is_container(x):
    return isinstance(x, (dict, list, tuple))


def tree_flatten(tree):
    """(leaves, treedef): leaves in a fixed order (dict keys sorted as JAX does)."""
    if isinstance(tree, dict):
        keys = sorted(tree)
        leaves, defs = [], []
        for k in keys:
            sub, d = tree_flatten(tree[k])
            leaves += sub
            defs.append(d)
        return leaves, ("dict", tuple(keys), tuple(defs))
    if isinstance(tree, (list, tuple)):
        leaves, defs = [], []
        for item in tree:
            sub, d = tree_flatten(item)
            leaves += sub
            defs.append(d)
        return leaves, (type(tree).__name__, len(tree), tuple(defs))
    return [tree], None


def tree_unflatten(treedef, leaves):
    leaves = iter(leaves)

    def build(d):
        if d is None:
            return next(leaves)
        kind, keys, defs = d
        if kind == "dict":
            return {k: build(sub) for k, sub in zip(keys, defs)}
        items = [build(sub) for sub in defs]
        return tuple(items) if kind == "tuple" else items
    return build(treedef)


def tree_leaves(tree):
    return tree_flatten(tree)[0]


def tree_map(f, tree, *rest):
    leaves, treedef = tree_flatten(tree)
    others = [tree_flatten(r)[0] for r in rest]
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def leaf_paths(treedef, prefix=()):
    if treedef is None:
        return [prefix]
    kind, keys, defs = treedef
    names = keys if kind == "dict" else range(keys)
    out = []
    for k, d in zip(names, defs):
        out += leaf_paths(d, prefix + (k,))
    return out


def flatten_params(ir, treedefs, where):
    """Rewrite `ir` so that each container parameter becomes one parameter per leaf.

    treedefs: one per parameter (None for a plain scalar/array). Returns the
    new FunctionDef and, per original parameter, the list of its leaf names.
    """
    ir = copy_ir(ir)
    taken = {n.id for n in gast.walk(ir) if isinstance(n, gast.Name)}
    new_args, leaves_of, paths = [], [], {}
    for arg, treedef in zip(ir.args.args, treedefs):
        if treedef is None:
            new_args.append(arg)
            leaves_of.append([arg.id])
            continue
        names = []
        for path in leaf_paths(treedef):
            stem = "_".join([arg.id] + [str(k) for k in path])
            stem = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
            leaf = stem
            while leaf in taken:
                leaf += "_"
            taken.add(leaf)
            names.append(leaf)
            new_args.append(gast.Name(id=leaf, ctx=gast.Param(), annotation=None, type_comment=None))
        leaves_of.append(names)
        paths[arg.id] = dict(zip(leaf_paths(treedef), names)), treedef
    ir.args.args = new_args
    containers = {name: () for name in paths}  # local name -> (root parameter, path so far)
    containers = {name: (name, ()) for name in paths}

    lengths = {}  # names that hold a known int here: a list or tuple argument's len(), and min/max of those

    def sequence_length(e):
        """`len(c)`, c a list or tuple (part of) an argument -> its length, else None."""
        if not (isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and e.func.id == "len"
                and len(e.args) == 1 and isinstance(e.args[0], gast.Name) and e.args[0].id in containers):
            return None
        root, path = containers[e.args[0].id]
        sub = _subtree(paths[root][1], path)
        return sub[1] if sub is not None and sub[0] in ("list", "tuple") else None

    def rewrite(body):
        out = []
        for s in body:
            if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
                n = sequence_length(s.value)
                if n is not None:  # the length is part of the argument's structure: a constant here
                    s.value = gast.Constant(value=n, kind=None)
                else:
                    n = _known_int(s.value, lengths)
                lengths.pop(s.targets[0].id, None)
                if n is not None:
                    lengths[s.targets[0].id] = n
            if isinstance(s, gast.For) and _reads_by_index(s, containers):
                trips = _constant_range(s.iter, lengths)
                if trips is not None:
                    out += rewrite(_unrolled(s, trips, where, taken))
                    continue
            if isinstance(s, (gast.If, gast.For, gast.While)):  # what it assigns is known no more
                for n in gast.walk(s):
                    if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                        lengths.pop(n.id, None)
            if isinstance(s, gast.Assign) and isinstance(s.value, gast.Subscript) \
                    and isinstance(s.value.value, gast.Name) and s.value.value.id in containers:
                root, path = containers[s.value.value.id]
                key = s.value.slice
                if not isinstance(key, gast.Constant):
                    raise UnsupportedSyntaxError(
                        "indexing a dict/list argument with a computed key (a list or tuple argument is read "
                        "by a loop over it only when the loop runs to its end)", where(s),
                        "index containers with constant keys, e.g. params['W'], or loop over a list or tuple "
                        "argument with `for x in xs` or `for i in range(len(xs))`, without break, continue or "
                        "return in the loop")
                full = path + (key.value,)
                leaves, _ = paths[root]
                target = s.targets[0]
                if full in leaves:
                    s.value = gast.Name(id=leaves[full], ctx=gast.Load(), annotation=None, type_comment=None)
                elif any(p[:len(full)] == full for p in leaves) and isinstance(target, gast.Name):
                    containers[target.id] = (root, full)
                    continue
                else:
                    raise UnsupportedSyntaxError(f"the key {key.value!r}, which the argument does not have",
                                                 where(s), "check the key")
            for field in ("body", "orelse"):
                if isinstance(getattr(s, field, None), list):
                    setattr(s, field, rewrite(getattr(s, field)))
            out.append(s)
        return out
    ir.body = rewrite(ir.body)
    for node in gast.walk(ir):
        if isinstance(node, gast.Name) and node.id in containers and isinstance(node.ctx, gast.Load):
            raise UnsupportedSyntaxError(f"a use of the container argument `{node.id}` other than a constant-key read",
                                         where(node), "read its leaves with constant keys, e.g. params['W']")
    return ir, leaves_of


def _subtree(treedef, path):
    for key in path:
        if treedef is None:
            return None
        kind, keys, defs = treedef
        names = list(keys) if kind == "dict" else list(range(keys))
        if key not in names:
            return None
        treedef = defs[names.index(key)]
    return treedef


def _reads_by_index(loop, containers):
    """Does the loop's body read a container argument at its loop variable (`a = xs[i]`)?"""
    i = loop.target.id if isinstance(loop.target, gast.Name) else None
    return any(isinstance(n, gast.Subscript) and isinstance(n.value, gast.Name) and n.value.id in containers
               and isinstance(n.slice, gast.Name) and n.slice.id == i for n in gast.walk(loop))


def _known_int(e, known):
    """The int value of `e` (a constant, a name in `known`, min or max of those), else None."""
    if isinstance(e, gast.Constant) and type(e.value) is int:
        return e.value
    if isinstance(e, gast.Name):
        return known.get(e.id)
    if isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and e.func.id in ("min", "max") and e.args \
            and not e.keywords:
        values = [_known_int(a, known) for a in e.args]
        if None not in values:
            return min(values) if e.func.id == "min" else max(values)
    return None


def _constant_range(it, lengths):
    """`range(a, b, c)` whose bounds are constants or known lengths -> the list of its values."""
    if not (isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "range"):
        return None
    bounds = [_known_int(a, lengths) for a in it.args]
    return None if None in bounds else list(range(*bounds))


def _unrolled(loop, trips, where, taken):
    """A loop over a list or tuple argument as one copy of its body per element: each copy reads
    its element with a constant key, and the elements may differ in shape (as in JAX, where
    such a loop runs while tracing). A name each trip assigns before reading it gets a name of
    its own in every copy but the last, so that no variable holds arrays of two shapes."""
    exit_ = next((n for n in gast.walk(loop) if isinstance(n, (gast.Break, gast.Continue, gast.Return))),
                 loop if loop.orelse else None)
    if exit_ is not None:
        raise UnsupportedSyntaxError("a `break`, `continue`, `return` or `else` in a loop over a list or tuple "
                                     "argument", where(exit_), "compute a flag in the loop and use it after the loop")
    i = loop.target.id
    own = _assigned_before_read(loop.body)
    out = []
    for j, k in enumerate(trips):
        renamed = {}
        if j < len(trips) - 1:
            for v in sorted(own):
                new = f"{v}_{k}"
                while new in taken:
                    new += "_"
                taken.add(new)
                renamed[v] = new
        out.append(gast.copy_location(gast.Assign(targets=[gast.Name(id=i, ctx=gast.Store(), annotation=None,
                                                                     type_comment=None)],
                                                  value=gast.Constant(value=k, kind=None), type_comment=None), loop))
        for s in loop.body:
            s = copy_ir(s)
            for n in gast.walk(s):
                if isinstance(n, gast.Subscript) and isinstance(n.slice, gast.Name) and n.slice.id == i:
                    n.slice = gast.Constant(value=k, kind=None)
                elif isinstance(n, gast.Name) and n.id in renamed:
                    n.id = renamed[n.id]
            out.append(s)
    return out


def _assigned_before_read(body):
    """Names whose first mention in `body` is as the target of a plain assignment at its top level."""
    seen, own = set(), set()
    for s in body:
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
            seen |= {n.id for n in gast.walk(s.value) if isinstance(n, gast.Name)}
            v = s.targets[0].id
            if v not in seen:
                own.add(v)
            seen.add(v)
        else:
            seen |= {n.id for n in gast.walk(s) if isinstance(n, gast.Name)}
    return own
