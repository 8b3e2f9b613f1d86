"""Optimize generated code: drop statements whose results nobody reads.

In: a generated FunctionDef. Out: the same, without assignments to
generated temporaries (names starting with `_`) that are never read, so
the emitted code carries no dead statements, and with an adjoint's first
accumulation after its zeroing written as a plain assignment.
"""

import gast


def _reads(fn):
    return {n.id for n in gast.walk(fn) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}


def drop_dead(fn):
    first_accumulations(fn)
    drop_dead_stores(fn)
    while True:
        reads = _reads(fn)
        removed = [False]

        def clean(stmts):
            out = []
            for s in stmts:
                if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name):
                    v = s.targets[0].id
                    if v.startswith("_") and v not in reads and v != "_tape" and _pure(s.value):
                        removed[0] = True
                        continue
                for field in ("body", "orelse"):
                    if isinstance(getattr(s, field, None), list) and not isinstance(s, gast.FunctionDef):
                        new = clean(getattr(s, field))
                        setattr(s, field, new or ([gast.Pass()] if field == "body" else []))
                out.append(s)
            return out
        fn.body = clean(fn.body)
        if not removed[0]:
            return fn


def _pure(expr):
    """Only drop what cannot have an effect: no calls except pop (whose tape effect we must keep)."""
    return not any(isinstance(n, gast.Call) for n in gast.walk(expr))


def drop_dead_stores(fn):
    """Remove top-level assignments that nothing after them reads (e.g. a final adjoint reset)."""
    live = set()
    kept = []
    for s in reversed(fn.body):
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                and s.targets[0].id not in live and _pure(s.value) and _comment_text(s) is None:
            continue
        if isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name) \
                and not any(isinstance(n, (gast.For, gast.While)) for n in [s]):
            live.discard(s.targets[0].id)
        live.update(n.id for n in gast.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load))
        kept.append(s)
    fn.body = list(reversed(kept))
    return fn


def _comment_text(s):
    from .emit import _MARK
    if isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant) and isinstance(s.value.value, str) \
            and s.value.value.startswith(_MARK):
        return s.value.value
    return None


def tidy_comments(fn):
    """One comment per run of statements from the same source line; none above nothing."""
    def tidy(stmts):
        out, last = [], None
        for i, s in enumerate(stmts):
            text = _comment_text(s)
            if text is not None:
                following = stmts[i + 1] if i + 1 < len(stmts) else None
                if following is None or _comment_text(following) is not None or text == last:
                    continue
                last = text
            for field in ("body", "orelse"):
                if isinstance(getattr(s, field, None), list):
                    setattr(s, field, tidy(getattr(s, field)) or ([gast.Pass()] if field == "body" else []))
            out.append(s)
        return out
    fn.body = tidy(fn.body)
    return fn


def _mentions(stmt, v):
    return any(isinstance(n, gast.Name) and n.id == v for n in gast.walk(stmt))


def _is_zero_init(s):
    return (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and isinstance(s.value, gast.Constant) and type(s.value.value) is float and s.value.value == 0.0)


def _accumulation(s, v):
    """`v = v + e` -> e, else None."""
    if (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and s.targets[0].id == v and isinstance(s.value, gast.BinOp) and isinstance(s.value.op, gast.Add)
            and isinstance(s.value.left, gast.Name) and s.value.left.id == v and not _mentions(s.value.right, v)):
        return s.value.right
    return None


def first_accumulations(fn):
    """`v = 0.0 ... v = v + e` (v untouched between, in one block) -> `... v = e`.

    Adjoints are zeroed, then accumulated; without this, every first `0.0 + e` stays an add
    in compiled code (IEEE: 0.0 + -0.0 is 0.0, so no compiler may fold it). Scalars only: for
    an array, `v = e` would make v share e's memory."""
    def block(stmts):
        drop = set()
        for i, s in enumerate(stmts):
            for field in ("body", "orelse"):
                if isinstance(getattr(s, field, None), list):
                    setattr(s, field, block(getattr(s, field)))
            if not _is_zero_init(s):
                continue
            v = s.targets[0].id
            for later in stmts[i + 1:]:
                e = _accumulation(later, v)
                if e is not None:
                    later.value = e
                    drop.add(i)
                    break
                if _mentions(later, v):
                    break
        return [s for i, s in enumerate(stmts) if i not in drop]
    fn.body = block(fn.body)
    return fn
