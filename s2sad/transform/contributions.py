"""The first contribution to an adjoint, written as an assignment.

Reverse mode zeroes each adjoint where its variable's life begins in the reverse
sweep (at the top of a block, and again after an assignment that gives the
variable an older value) and adds each contribution to it (`v_bar = v_bar + e`).
Once the sweep is generated, and before what it reads is settled (which values go on
the tape, which shapes), `first_contributions` writes its final form, block by
block, in the order the sweep runs:

- a contribution that finds its adjoint still zero (nothing has read it since it
  was zeroed) is assigned, `v_bar = e`, and the zeroing goes. For an array adjoint
  zeroed as `np.zeros_like(a, ...)` this is written only where `e` is an array of
  a's shape that v_bar may hold (reverse mode marks an elementwise adjoint with its
  operand's shape, `meta.ShapedLike`; an adjoint helper returns one) without
  sharing memory that is written into in place;
- an adjoint zeroed twice with nothing reading it between loses the first zeroing;
- at the top level, a zeroing nothing reads afterwards (the reset after the first
  assignment of a variable, the last one the sweep meets) goes;
- an array adjoint that receives its contributions slice by slice, into slices that
  cannot overlap (an LSTM's gates), has each first one stored (`first_slice_contributions`).

Without this, every first `0.0 + e` would stay an add in compiled code (IEEE:
0.0 + -0.0 is 0.0, so no compiler may fold it), and for an array the zeroing
would allocate an array only to copy it.
"""

import copy

import gast

from ..ir import meta
from ..ir.names import assigns, mentions, names_in

# adjoint helpers that return a new array shaped like one of their arguments (its position)
SHAPED_LIKE = {"unbroadcast": 1, "sum_adjoint": 1, "dot_adjoint_x": 1, "dot_adjoint_y": 2}


def zeros_like_of(s):
    """`v = np.zeros_like(a, ...)` -> a's name, else None."""
    if not (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)):
        return None
    call, f = s.value, getattr(s.value, "func", None)
    if isinstance(call, gast.Call) and isinstance(f, gast.Attribute) and isinstance(f.value, gast.Name) \
            and f.value.id == "np" and f.attr == "zeros_like" and call.args and isinstance(call.args[0], gast.Name):
        return call.args[0].id
    return None


def is_zero_float(s):
    """`v = 0.0`?"""
    return (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and isinstance(s.value, gast.Constant) and type(s.value.value) is float and s.value.value == 0.0)


def accumulation(s):
    """`v = v + e` -> (v, e), else None."""
    if (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Name)
            and isinstance(s.value, gast.BinOp) and isinstance(s.value.op, gast.Add)
            and isinstance(s.value.left, gast.Name) and s.value.left.id == s.targets[0].id
            and s.targets[0].id not in names_in(s.value.right)):
        return s.targets[0].id, s.value.right
    return None


def written_in_place(fn):
    """Arrays a function may change in place, each with the statements that may: `A[i] = ...`
    targets, and every name passed to a call in a statement of its own (a helper such as add_at
    writes into its argument)."""
    writers = {}
    for s in gast.walk(fn):
        if isinstance(s, gast.Assign):
            names = set().union(*(names_in(t.value) for t in s.targets if isinstance(t, gast.Subscript)))
        elif isinstance(s, gast.Call) and isinstance(s.func, gast.Name) and s.func.id == "add_at":
            names = names_in(s)
        elif isinstance(s, gast.Expr) and isinstance(s.value, gast.Call):
            names = names_in(s.value)
        else:
            continue
        for v in names:
            writers.setdefault(v, []).append(s)
    return writers


def done_writing(stmts, j, v, writers):
    """From statement j of a block on, is array `v` never written into in place? True when every
    in-place write of v is in stmts[:j], after v is bound anew in this block (in a loop body, the
    next trip writes into the new array)."""
    if v not in writers:
        return True
    mine = {id(w) for w in writers[v]}
    seen, first = 0, None
    for k, s in enumerate(stmts[:j]):
        hits = sum(id(n) in mine for n in gast.walk(s))
        if hits and first is None:
            first = k
        seen += hits
    if seen < len(mine):   # a write elsewhere: later in the function, or in another block
        return False
    return any(isinstance(s, gast.Assign) and any(isinstance(t, gast.Name) and t.id == v for t in s.targets)
               for s in stmts[:first])


def fresh_like(e, a, v, writers, done):
    """May `v = e` replace `v = zeros_like(a); v = v + e`: is `e` an array of a's shape that v
    may hold without sharing memory that is written into in place (`writers`: the names written
    in place anywhere; `done(name)`: none of them from here on)?"""
    shaped = meta.get(e, meta.ShapedLike)
    if shaped is not None and shaped.name == a:
        if isinstance(e, gast.Name):
            return v not in writers and done(e.id)
        return not isinstance(e, (gast.Subscript, gast.Attribute))  # else a new array
    if not (isinstance(e, gast.Call) and isinstance(e.func, gast.Name) and e.func.id in SHAPED_LIKE):
        return False
    k = SHAPED_LIKE[e.func.id]
    if len(e.args) <= k or not (isinstance(e.args[k], gast.Name) and e.args[k].id == a):
        return False
    # unbroadcast(g, x) hands back g itself when the shapes agree: v and g then share one array,
    # harmless while neither is written into in place (gates_bar in an LSTM's reverse loop is
    # filled slice by slice, then handed to the adjoints of `Wx @ x + Wh @ h` to read)
    return e.func.id != "unbroadcast" or not isinstance(e.args[0], gast.Name) \
        or v not in writers and done(e.args[0].id)


def rewrite_blocks(stmts, rewrite):
    """`rewrite` (a list of statements -> a new list) applied to the block `stmts` and to each
    block inside it, inner blocks first, in place: the reverse sweep is new code of its own."""
    for s in stmts:
        if isinstance(s, (gast.For, gast.While, gast.If)):
            s.body, s.orelse = rewrite_blocks(s.body, rewrite), rewrite_blocks(s.orelse, rewrite)
    stmts[:] = rewrite(stmts)
    return stmts


def first_contributions(sweep, zeroed, writers, live_out):
    """The statements `sweep` (a reverse sweep), with the blocks inside them changed in place, in
    their final form (see the module docstring). `zeroed(s)`: is statement s one of the sweep's
    zeroings of an adjoint? `writers`: written_in_place of the function. `live_out`: the
    adjoints the function returns."""
    def block(stmts, top):
        out = []
        pending = {}   # adjoint -> (index in out of its zeroing, the name whose shape it has or None)
        for s in stmts:
            if isinstance(s, (gast.For, gast.While, gast.If)):
                s.body = block(s.body, False) or [gast.Pass()]
                s.orelse = block(s.orelse, False)
            if zeroed(s) and (is_zero_float(s) or zeros_like_of(s) is not None):
                v = s.targets[0].id
                for u in names_in(s.value) & pending.keys():   # `v_bar = np.zeros_like(v_bar)` reads v_bar
                    del pending[u]
                if v in pending:
                    out[pending[v][0]] = None   # zeroed again before anything read it
                pending[v] = (len(out), zeros_like_of(s))
                out.append(s)
                continue
            acc = accumulation(s)
            if acc is not None and acc[0] in pending:
                v, e = acc
                k, like = pending.pop(v)

                def done(u):   # the block's statements so far
                    kept = [x for x in out if x is not None]
                    return done_writing(kept, len(kept), u, writers)
                if like is None or fresh_like(e, like, v, writers, done):
                    out[k] = None
                    s = copy.copy(s)
                    s.value = e
            for v in names_in(s) & pending.keys():   # read (by the contribution too)
                del pending[v]
            out.append(s)
        if top:   # zeroed for contributions that never come
            for v, (k, _) in pending.items():
                if v not in live_out:
                    out[k] = None
        return [s for s in out if s is not None]
    return block(sweep, True)


def first_slice_contributions(sweep):
    """An array adjoint's first contributions, slice by slice, in the blocks of `sweep`:
    `A = zeros_like(x) ... A[a:b] = A[a:b] + e` -> `... A[a:b] = e`, where no statement between
    mentions A but such sums into slices that cannot overlap this one.

    A value cut into slices (an LSTM's gates: `gates[0:n]`, `gates[n:2 * n]`, ...) gets its
    adjoint back slice by slice, each sum reading zeros and making a new array to copy in
    (LSTM, h = 32: 4 a step, about 0.2 ms of 4.4). The slices' bounds must be multiples
    k * n (k >= 0, written out or in a temporary the block computes) of one name n that
    nothing reassigns meanwhile, or constants: slices [p * n:q * n] with p <= q that are apart
    for n >= 0 stay apart for n < 0, where all but one of them are empty."""
    def block(stmts):
        out = list(stmts)
        for i, s in enumerate(stmts):
            if zeros_like_of(s) is None:
                continue
            v, unit, taken, first = s.targets[0].id, None, [], None
            for j in range(i + 1, len(stmts)):
                later = stmts[j]
                sliced = _slice_accumulation(later, v)
                bounds = sliced and _multiples(sliced, stmts, j)
                if bounds is None:
                    if mentions(later, v):
                        break
                    continue
                (p, q), its_unit, since = bounds
                if its_unit is not None and unit not in (None, its_unit) or p > q \
                        or any(p < b and a < q for a, b in taken) \
                        or any(assigns(stmts[k], its_unit) for k in range(min(since, first or j), j)):
                    break   # (n must keep one value from the first slice's bounds to this one's)
                unit, first = its_unit or unit, first or j
                taken.append((p, q))
                out[j] = copy.copy(later)
                out[j].value = later.value.right
        return out
    return rewrite_blocks(sweep, block)


def _slice_accumulation(s, v):
    """`v[a:b] = v[a:b] + e` (e not mentioning v) -> the slice, else None."""
    if not (isinstance(s, gast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], gast.Subscript)
            and isinstance(s.value, gast.BinOp) and isinstance(s.value.op, gast.Add)):
        return None
    t, left = s.targets[0], s.value.left
    if not (isinstance(t.value, gast.Name) and t.value.id == v and isinstance(t.slice, gast.Slice)
            and t.slice.step is None and gast.dump(left) == gast.dump(gast.Subscript(
                value=t.value, slice=t.slice, ctx=gast.Load())) and not mentions(s.value.right, v)):
        return None
    return t.slice


def _multiples(sl, stmts, j):
    """The bounds of slice `sl` (in stmts[j]) as ((p, q), n, since) for [p * n:q * n], p and q
    constants >= 0, n the name they count (None for [0:0], "1" for constants), `since` the
    first statement read for them (temporaries computed in the block), else None."""
    since = j

    def bound(e, k):
        nonlocal since
        if e is None:
            return 0, None
        if isinstance(e, gast.Constant) and type(e.value) is int and e.value >= 0:
            return e.value, None
        if isinstance(e, gast.BinOp) and isinstance(e.op, gast.Mult):
            for c, n in ((e.left, e.right), (e.right, e.left)):
                if isinstance(c, gast.Constant) and type(c.value) is int and c.value >= 0 \
                        and isinstance(n, gast.Name):
                    return c.value, n.id
        if not isinstance(e, gast.Name):
            return None
        for m in range(k - 1, -1, -1):   # its last assignment before stmts[k], in this block
            if assigns(stmts[m], e.id):
                s = stmts[m]
                plain = isinstance(s, gast.Assign) and len(s.targets) == 1 and \
                    isinstance(s.targets[0], gast.Name) and s.targets[0].id == e.id
                multiple = bound(s.value, m) if plain and not mentions(s.value, e.id) else None
                since = min(since, m if multiple else m + 1)
                return multiple or (1, e.id)   # a temporary k * n, else a name of its own
        return 1, e.id

    lo, hi = bound(sl.lower, j), bound(sl.upper, j)
    if lo is None or hi is None or sl.upper is None:
        return None
    names = {lo[1], hi[1]} - {None}
    if len(names) > 1 or names and (lo[0] and lo[1] is None or hi[0] and hi[1] is None):
        return None   # two names, or a name and a nonzero constant: no order known
    return (lo[0], hi[0]), (names.pop() if names else "1" if lo[0] or hi[0] else None), since
