"""The probe behind `saddle` and `particle`: both evals take a gradient inside
the function being differentiated (nested AD). define() of those modules runs
this probe and fails with s2sad's own error while it does not compile."""

import s2sad
from common import Unsupported


def inner(x, y):
    return x * x * y


inner_dy = s2sad.grad(inner, argnums=1)


def outer(x):
    return inner_dy(x, 2.0) * x     # d/dy (x^2 y) * x = x^3, so d/dx = 3 x^2


def probe(eval_name):
    try:
        got = s2sad.grad(outer)(1.5)
    except Exception as e:  # noqa: BLE001
        raise Unsupported(f"{eval_name} needs grad called inside a differentiated function "
                          f"(nested AD); s2sad: {type(e).__name__}: {e}") from None
    if abs(got - 3 * 1.5 ** 2) > 1e-9:
        raise Unsupported(f"{eval_name}: s2sad's nested gradient is wrong ({got} != {3 * 1.5 ** 2})")
    raise Unsupported(f"{eval_name}: nested grad now works in s2sad, but this tool's "
                      f"{eval_name} module is not written yet")
