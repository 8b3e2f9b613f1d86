"""Derivatives called inside differentiated code: `grad(f)(x)`, `jvp(f, (x,), (dx,))`.

Normalize meets these calls and reverse mode differentiates them again, but
the transforms themselves are the user API, the top of the pipeline. So the
API declares them here when it is imported (`declare`), and the stages below
ask here: nothing below `s2sad.api` imports it.
"""

_transformed = ()   # the classes of transformed functions (a `grad(f)` object, a jvp of f)
_transforms = {}    # "grad", "value_and_grad", "jacfwd", "jacrev", "jvp" -> the user's function
_jvp_of = None      # JvpOf: the callable a `jvp(f, ...)` call inside differentiated code becomes


def declare(transformed, transforms, jvp_of):
    """Called once by s2sad.api.transforms."""
    global _transformed, _jvp_of
    _transformed = tuple(transformed)
    _transforms.update(transforms)
    _jvp_of = jvp_of


def is_transformed(obj):
    """A transformed function (s2sad.grad(f), ...): generated code calls its derivative."""
    return isinstance(obj, _transformed)


def is_transform(obj, *names):
    """Is `obj` the transform (s2sad.grad, s2sad.jvp, ...) named by one of `names`?"""
    return any(obj is _transforms.get(n) for n in names)


def transform(name):
    """The transform itself: transform("grad")(f, argnums=...)."""
    return _transforms[name]


def jvp_of(fun):
    """`jvp(fun, primals, tangents)` as one callable of primals and tangents."""
    return _jvp_of(fun)
