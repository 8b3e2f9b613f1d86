"""s2sad: source-to-source automatic differentiation for plain Python and NumPy."""

from .api import grad, hessian, jacfwd, jacrev, jvp, source, stop_gradient, value_and_grad, vjp
from .pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from .checks import check_grads
from .custom import custom_jvp, custom_vjp
from .display import show
from .vmap import vmap
from .errors import NonDifferentiableError, S2SADError, UnsupportedSyntaxError

__version__ = "0.1.0"
__all__ = ["grad", "vmap", "value_and_grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "source", "stop_gradient", "check_grads", "custom_vjp", "custom_jvp", "show", "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map",
           "S2SADError", "UnsupportedSyntaxError", "NonDifferentiableError"]

from .cache import cache_dir, clear_cache  # noqa: E402

__all__ += ["cache_dir", "clear_cache"]
