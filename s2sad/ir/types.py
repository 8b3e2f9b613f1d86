"""Abstract types of values, as much as code generation needs to know.

A value is a scalar or an array of a kind ('f' float, 'i' int, 'b' bool) and
a rank, a tuple of such, some other object (a module, a string, None), or
unknown. Generated code is specialized on these: a scalar's adjoint starts
at `0.0`, an array's at `np.zeros_like(x)`; integer values carry no
derivative.
"""

import numpy as np


class Ty:
    __slots__ = ("kind", "ndim", "items", "value")

    def __init__(self, kind, ndim=0, items=None, value=None):
        self.kind, self.ndim, self.items, self.value = kind, ndim, items, value

    # kind: 'f' 'i' 'b' numeric; 'tuple'; 'obj'; '?' unknown
    @property
    def numeric(self):
        return self.kind in ("f", "i", "b")

    @property
    def is_array(self):
        return self.numeric and self.ndim > 0

    @property
    def is_scalar(self):
        return self.numeric and self.ndim == 0

    @property
    def is_float(self):
        return self.kind == "f"

    @property
    def known(self):
        return self.kind != "?"

    @property
    def mixed(self):
        """Unknown because a name holds values of different ranks in turn (a number, then an
        array), not for want of information."""
        return self.kind == "?" and self.value == "mixed"

    def __eq__(self, other):
        return isinstance(other, Ty) and (self.kind, self.ndim, self.items) == (other.kind, other.ndim, other.items)

    def __hash__(self):
        return hash((self.kind, self.ndim, self.items))

    def __repr__(self):
        if self.kind == "tuple":
            return "tuple(" + ", ".join(map(repr, self.items)) + ")"
        if self.numeric:
            name = {"f": "float", "i": "int", "b": "bool"}[self.kind]
            return name if self.ndim == 0 else f"{name}[{self.ndim}d]"
        return {"obj": "object", "?": "unknown", "bottom": "bottom"}[self.kind]


FLOAT, INT, BOOL, UNKNOWN, OBJ = Ty("f"), Ty("i"), Ty("b"), Ty("?"), Ty("obj")
MIXED = Ty("?", value="mixed")     # numbers and arrays, or arrays of different ranks, in turn
BOTTOM = Ty("bottom")  # no information yet (a recursive call being inferred): joins to the other type


def array(kind, ndim):
    return Ty(kind, ndim) if ndim > 0 else Ty(kind)


def tuple_of(items):
    return Ty("tuple", items=tuple(items))


def of_value(value):
    """The abstract type of a concrete argument value."""
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return INT
    if isinstance(value, (float, np.floating)):
        return FLOAT
    if isinstance(value, np.ndarray):
        return array(_kind(value.dtype), value.ndim)
    if isinstance(value, tuple):
        return tuple_of(of_value(v) for v in value)
    return Ty("obj", value=value)


def _kind(dtype):
    if dtype.kind == "f":
        return "f"
    if dtype.kind in "iu":
        return "i"
    if dtype.kind == "b":
        return "b"
    return "?"


def join(a, b):
    """The type of a variable that may hold either."""
    if a is not None and a.mixed or b is not None and b.mixed:
        return MIXED
    if a is None or a.kind == "bottom":
        return b
    if b is None or b.kind == "bottom" or a == b:
        return a
    if a.numeric and b.numeric:
        return Ty(max_kind(a.kind, b.kind), a.ndim) if a.ndim == b.ndim else MIXED
    if a.kind == b.kind == "tuple" and len(a.items) == len(b.items):
        return tuple_of(join(x, y) for x, y in zip(a.items, b.items))
    return UNKNOWN


def placeholder(ty):
    """Source text of a value of type `ty` (a bool, int or float scalar or array), for a generated
    variable that must be bound on every path before its real value (Numba types a variable only
    where every path defines it); None for other types."""
    if ty.kind == "tuple":   # the parts of np.concatenate/np.stack, taped in a loop
        items = [placeholder(t) for t in ty.items]
        return None if not items or None in items else "(" + ", ".join(items) + ",)"
    dtype = {"f": ("0.0", "np.float64"), "i": ("0", "np.int64"), "b": ("False", "np.bool_")}.get(ty.kind)
    if dtype is None or not ty.numeric:
        return None
    return dtype[0] if ty.ndim == 0 else f"np.empty({(0,) * ty.ndim}, dtype={dtype[1]})"


def max_kind(*kinds):
    order = "bif"
    return max(kinds, key=order.index) if all(k in order for k in kinds) else "?"


def broadcast(*tys, kind=None):
    """Elementwise result of numeric operands."""
    if any(t.kind == "bottom" for t in tys):
        return BOTTOM
    if not all(t.numeric for t in tys):
        return UNKNOWN
    return array(kind or max_kind(*(t.kind for t in tys)), max(t.ndim for t in tys))
