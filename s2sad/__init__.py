"""s2sad: source-to-source automatic differentiation for plain Python and NumPy.

The pipeline, one package or module per stage, in the order data flows:

    frontend   a function object -> its gast tree, and what its names refer to;
               `fence` refuses what s2sad cannot differentiate, with file:line
    normalize  desugared A-normal form (`pytree`: containers as their leaves)
    analysis   types from the call's argument signature, activity, what to save
    transform  `reverse` (adjoint) or `forward` (tangent) code, from the rules
    optimize   dead code, copy propagation, fused and in-place accumulation
    codegen    the driver (`compiler`) and the generated module; `standalone`
    backends   run it: `python`, or compiled by `numba`
    api        grad, jvp, vjp, jacfwd, jacrev, hessian, vmap, check_grads, show
    cli        `s2sad emit|show|check|cache`

Beside them, lower in the import order: `rules` (a derivative rule per
primitive, the runtime helpers' rules, NumPy functions differentiated through
definitions, custom_vjp/custom_jvp), `runtime` (the helpers generated code
calls), `ir` (types, the source printer, nested transforms), `cache`, `errors`.
Imports go from a layer to lower ones only (pyproject.toml's import-linter
contract; `python tools/layers.py` prints the graph).
"""

from .api.transforms import grad, hessian, jacfwd, jacrev, jvp, source, stop_gradient, value_and_grad, vjp
from .normalize.pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from .api.checks import check_grads
from .rules.custom import custom_jvp, custom_vjp
from .api.display import show
from .api.vmap import vmap
from .errors import NonDifferentiableError, S2SADError, UnsupportedSyntaxError

from .version import __version__  # noqa: F401
__all__ = ["grad", "vmap", "value_and_grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "source", "stop_gradient", "check_grads", "custom_vjp", "custom_jvp", "show", "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map",
           "S2SADError", "UnsupportedSyntaxError", "NonDifferentiableError"]

from .cache import cache_dir, clear_cache  # noqa: E402

__all__ += ["cache_dir", "clear_cache"]
