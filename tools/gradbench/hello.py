"""GradBench eval `hello`: square(x) = x * x and double = its gradient."""

from common import grad, primal


def square_fn(x):
    return x * x


F = {}


def define():
    F["square"] = primal("hello.square", square_fn, (1.5,))
    F["double"] = grad("hello.double", square_fn, (1.5,))


FUNCTIONS = {
    "square": (lambda inp: (float(inp),), "square", float),
    "double": (lambda inp: (float(inp),), "double", float),
}
