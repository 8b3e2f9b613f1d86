"""Node metadata: what one stage notes on a gast node for a later stage to read.

Each kind of information is a frozen dataclass declared here (`KINDS`), whose
docstring says which stage puts it on which nodes and which stages read it. A
node holds at most one instance of each kind:

    meta.put(node, Binding(np.sin))     attach (replacing one of the same kind)
    meta.get(node, Binding)             the instance, or None
    meta.drop(node, Upward)             remove

A kind not declared here is refused (TypeError), on reading as on writing.

The instances live in a dict in the node's `_meta` attribute, which `put` and
`drop` replace rather than update: a shallow copy of a node (`copy.copy`) keeps
what the node held when it was copied, and a later change to either one does
not show in the other. A deep copy of a node copies its metadata too, with the
gast nodes that holds (a recomputed statement, loop bounds); a `Binding` or an
`OutTreedef` is shared as it is, so that the copy refers to the very object the
original does (generated code looks functions up by identity, and a deep copy of
an array or of a transform object would be another object).
"""

from dataclasses import dataclass

import gast


class _Shared:
    """Metadata that a deep copy of its node shares: it holds no gast node, and the Python object
    it holds must stay that object."""

    def __deepcopy__(self, memo):
        return self


# ---- what names and calls refer to (normalize) ------------------------------------------
@dataclass(frozen=True)
class Binding(_Shared):
    """What a global name or a call refers to.

    Put by normalize on a module-level value it reads (a Name or Attribute: `np.pi`, a global
    array; `is_global`) and on every call of a known function (`obj` is the function called);
    by codegen.compiler on the call that replaces a nested transform with generated code.
    Read by analysis (types, activity, calls' rules), transform.reverse/forward (rules,
    user and nested calls), optimize and codegen.compiler (the functions a module calls).

    user: a call of a user function (or of a NumPy function's definition), which gets a
    derivative generated of its own; nested: a call of a transformed function inside
    differentiated code (`grad(f)(x)`, `jvp(f, (x,), (dx,))`)."""
    obj: object
    is_global: bool = False
    user: bool = False
    nested: bool = False


@dataclass(frozen=True)
class Inplace:
    """An assignment the user wrote as `y += x` (to a name): on an array it updates y's array in
    place. Put by normalize; read by analysis (aliasing checks, first assignments)."""


@dataclass(frozen=True)
class OutTreedef(_Shared):
    """The structure of the container a function returns (a dict, nested tuples), whose leaves
    the normalized function returns. Put by normalize on the FunctionDef of a function that
    returns one; read by api.transforms to rebuild the container from the leaves."""
    treedef: object


# ---- the reverse sweep's markers (transform.reverse) ------------------------------------------
@dataclass(frozen=True)
class Restore:
    """A placeholder `pass` in the reverse sweep where a value the forward sweep overwrote is
    restored from the tape, if the reverse sweep reads it: `kind` "name", `what` a variable's
    name; `kind` "item", `what` (array name, index node). Put by transform.reverse
    (restore_marker); read there once every read is known (settle, resolve_restores)."""
    kind: str
    what: object
    stmt: int = 0   # id() of the primal statement whose reverse this is


@dataclass(frozen=True)
class Remat:
    """A placeholder `pass` at the top of a reverse loop body where `stmt`, an assignment of the
    primal loop body, is recomputed instead of taped; `needed` once the reverse sweep reads its
    target. Put and read by transform.reverse (loop_body, settle, resolve_restores)."""
    stmt: gast.stmt
    needed: bool = False


@dataclass(frozen=True)
class Branch:
    """An `if` of the reverse sweep (the adjoint of a primal `if`); `needed` once its branches
    do some work, so that it stays and its condition is read. Put and read by transform.reverse
    (reverse_stmt, settle, resolve_restores)."""
    needed: bool = False


@dataclass(frozen=True)
class AdjointInit:
    """The zeroing of an adjoint (`v_bar = 0.0`): at the top of its block (no work by itself), or,
    `reset`, after an assignment of the variable, before contributions to its older value arrive.
    Put by transform.reverse (init_adjoints, reset); read there (does_work) and by
    transform.contributions, which writes the first contribution after it as an assignment.
    `shape_of`: the variable whose (older) value's shape the zeros take, where the zeroing reads
    it (transform.reverse reads that shape, so tapes it, only for the zeroings that stay)."""
    reset: bool = False
    shape_of: str = None


@dataclass(frozen=True)
class ShapedLike:
    """An elementwise adjoint expression that has the shape of the operand named `name`. Put by
    transform.reverse; read by transform.contributions (`v = e` may then replace
    `v = zeros_like(name); v = v + e`)."""
    name: str


@dataclass(frozen=True)
class Upward:
    """A reverse `for` loop over `range(stop - 1, start - 1, -1)`, the reverse of the primal's
    `range(start, stop)`: its bounds upward. Put by transform.reverse (reverse_for); read by
    optimize, which runs the loop upward when its trips commute (and then drops this)."""
    start: gast.expr
    stop: gast.expr


@dataclass(frozen=True)
class ForwardOf:
    """A forward-sweep `for` loop made from the primal loop whose id() is `loop`. Put and read by
    transform.reverse (address_tapes_by_trip pairs it with its reverse loop)."""
    loop: int


@dataclass(frozen=True)
class ReverseOf:
    """A reverse-sweep `for` loop made from the primal loop whose id() is `loop`. Put and read by
    transform.reverse (address_tapes_by_trip)."""
    loop: int


# ---- what emit prints above statements -----------------------------------------------------------
@dataclass(frozen=True)
class Cites:
    """The user's source line a generated statement comes from (`line 12: s = s + x[i]`). Put by
    transform.reverse and transform.forward on every statement made from one user statement (and
    by a later stage on what replaces one); read by emit, which prints it as a comment above the
    first of a run of statements citing it. A statement the optimizer drops takes its citation
    with it: no comment stands above nothing."""
    text: str


@dataclass(frozen=True)
class Section:
    """The part of a generated function a top-level statement belongs to (`reverse sweep`),
    printed by emit as a comment above the first statement of the part, like `Cites`. Put by
    transform.reverse."""
    text: str


def carry(new, old):
    """`new`, a statement that replaces `old`, with old's citation and section; `new`."""
    for kind in (Cites, Section):
        info = get(old, kind)
        if info is not None:
            put(new, info)
    return new


KINDS = frozenset({Binding, Inplace, OutTreedef, Restore, Remat, Branch, AdjointInit, ShapedLike, Upward,
                   ForwardOf, ReverseOf, Cites, Section})

_NONE = {}


def _declared(kind):
    if kind not in KINDS:
        raise TypeError(f"{kind!r} is not a kind of node metadata declared in s2sad.ir.meta")
    return kind


def put(node, info):
    """Attach `info` (an instance of a declared kind) to `node`, replacing one of its kind; `node`."""
    if not isinstance(node, gast.AST):
        raise TypeError(f"node metadata goes on gast nodes, not on {type(node).__name__}")
    kind = _declared(type(info))
    node._meta = {**getattr(node, "_meta", _NONE), kind: info}
    return node


def get(node, kind):
    """The `kind` metadata of `node`, or None."""
    return getattr(node, "_meta", _NONE).get(_declared(kind))


def drop(node, kind):
    """Remove the `kind` metadata of `node`, if any."""
    held = getattr(node, "_meta", _NONE)
    if _declared(kind) in held:
        node._meta = {k: v for k, v in held.items() if k is not kind}


def binding(node):
    """What `node` refers to (its Binding), or None."""
    return get(node, Binding)


def is_global(node):
    """Is `node` a module-level value (np.pi, a global array) that normalize resolved?"""
    b = get(node, Binding)
    return b is not None and b.is_global
