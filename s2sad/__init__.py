"""s2sad: source-to-source automatic differentiation for plain Python and NumPy."""

from .api import grad, source, stop_gradient, value_and_grad
from .errors import NonDifferentiableError, S2SADError, UnsupportedSyntaxError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "source", "stop_gradient",
           "S2SADError", "UnsupportedSyntaxError", "NonDifferentiableError"]
