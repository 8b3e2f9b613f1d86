"""Optimize generated code: drop statements whose results nobody reads.

In: a generated FunctionDef. Out: the same, without assignments to
generated temporaries (names starting with `_`) that are never read, so
the emitted code carries no dead statements.
"""

import gast


def _reads(fn):
    return {n.id for n in gast.walk(fn) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}


def drop_dead(fn):
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
