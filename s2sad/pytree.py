"""Pytrees: nested dicts, lists and tuples of scalars and arrays.

At the boundary of a transformed function, container arguments are
flattened into their leaves, and the function's constant-key reads
(`params['W']`, `layers[0]['b']`) become plain parameters, one per leaf,
so generated code sees only scalars and arrays. Gradients come back in
the arguments' own structure.
"""


import gast

from .errors import UnsupportedSyntaxError


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
    from .normalize import copy_ir
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

    def rewrite(body):
        out = []
        for s in body:
            if isinstance(s, gast.Assign) and isinstance(s.value, gast.Subscript) \
                    and isinstance(s.value.value, gast.Name) and s.value.value.id in containers:
                root, path = containers[s.value.value.id]
                key = s.value.slice
                if not isinstance(key, gast.Constant):
                    raise UnsupportedSyntaxError("indexing a dict/list argument with a computed key",
                                                 where(s), "index containers with constant keys, e.g. params['W']")
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
