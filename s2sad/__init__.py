"""s2sad: source-to-source automatic differentiation for plain Python and NumPy."""

from .api import grad, source, stop_gradient, value_and_grad
from .pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from .errors import NonDifferentiableError, S2SADError, UnsupportedSyntaxError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "source", "stop_gradient", "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map",
           "S2SADError", "UnsupportedSyntaxError", "NonDifferentiableError"]
