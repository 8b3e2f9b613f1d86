"""Print s2sad's import graph layer by layer, and fail on a cycle or an import that goes up.

    python tools/layers.py          # exit status 1 on a cycle or a back edge

Every `import`/`from ... import` of an s2sad module counts, at module level or inside a
function. The layers are those of the import-linter contract in pyproject.toml
([tool.importlinter]), top first; a module belongs to the layer of its package (`s2sad.api.vmap`
to `api`). An import from a layer to a higher one is a back edge. Imports within one layer are
allowed but may not form a cycle, and no module may import one that imports it back.
"""

import ast
import os
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "s2sad")


def modules():
    """{dotted name: path} of every module of s2sad."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(folder, f)
    return found


def imports(name, path, known):
    """The s2sad modules `name` imports, each with the line of the import."""
    is_package = path.endswith("__init__.py")
    package = name.split(".") if is_package else name.split(".")[:-1]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = {}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod (and runs pkg's __init__ first, which
            # is not an import pkg.mod chose); `from mod import name` imports mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:   # `from s2sad.x import f`: the module s2sad.x
                t = t.rpartition(".")[0]
            if t and t != name and t != "s2sad":
                out.setdefault(t, node.lineno)
    return out


def declared_layers():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        if tomllib is not None:
            config = tomllib.load(f)["tool"]["importlinter"]["contracts"][0]
            return [[m.strip() for m in layer.split("|")] for layer in config["layers"]]
    raise SystemExit("tools/layers.py needs Python 3.11+ (tomllib)")


def layer_of(module, layers):
    parts = module.split(".")[1:]
    for i, layer in enumerate(layers):
        for member in layer:
            if parts[:len(member.split("."))] == member.split("."):
                return i
    return None


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    layers = declared_layers()
    bad = 0
    print("layers (top first), each with its modules and what they import from lower layers:")
    for i, layer in enumerate(layers):
        members = sorted(m for m in known if layer_of(m, layers) == i)
        print(f"  {' | '.join(layer)}")
        for m in members:
            below = sorted(t for t in graph[m] if layer_of(t, layers) != i)
            print(f"      {m}" + (f" -> {', '.join(t.replace('s2sad.', '') for t in below)}" if below else ""))
    unplaced = sorted(m for m in known if layer_of(m, layers) is None and m.count(".") >= 1)
    unplaced = [m for m in unplaced if m not in ("s2sad.__main__",)]
    for m in unplaced:
        print(f"error: {m} is in no layer of the contract")
        bad += 1
    for m, targets in sorted(graph.items()):
        lm = layer_of(m, layers)
        for t, line in sorted(targets.items()):
            lt = layer_of(t, layers)
            if lm is not None and lt is not None and lt < lm:
                print(f"error: back edge {m} -> {t} ({known[m]}:{line}): a lower layer imports a higher one")
                bad += 1
    for component in cycles(graph):
        print(f"error: import cycle among {', '.join(component)}")
        bad += 1
    print("ok: no cycle, no back edge" if not bad else f"{bad} error(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
