"""exp, log and tanh of float64s that LLVM vectorizes, for the Numba backend.

NumPy evaluates these ufuncs with SIMD code; Numba calls the C library's scalar
function once per element, 3 to 10 times slower on a large array (measured:
np.tanh of 64,000 floats 0.87 ms in Numba against 0.13 ms in NumPy). Models spend
much of their time there (an MLP's tanh, a mixture's exp and log), so the Numba
backend gives generated code a `np` in which these three are the functions below.

Each scalar kernel is branch-free arithmetic (selects, no calls), so the loop over
an array is vectorized. Accuracy: within 2 units in the last place of the
correctly rounded result over the whole range (tests/test_numba_math.py measures
it), with infinities, NaN, zeros and subnormals handled as the C library does.

- exp: x = k ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln2), exp(r)
  by its Taylor series to r^13 (the first term left out is below 1e-17), and 2^k
  built from its bits in two halves, so that results near overflow and in the
  subnormal range need no special case.
- log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) = log1p(f) through
  s = f / (2 + f) and a polynomial in s^2 (the reduction and coefficients of
  fdlibm's e_log.c).
- tanh: a rational function of degree (7, 6) where |x| < 0.625 (Cephes' tanh.c;
  1 - 2 / (exp(2|x|) + 1) would cancel near 0), 1 - 2 / (exp(2|x|) + 1) beyond, the
  two sharing one division: 64,000 floats in 0.18 ms (0.27 ms with the Taylor series
  to x^45 used before; NumPy 0.14 ms).

exp, log and the logistic function 1 / (1 + exp(-x)) (generated code's `logistic`) are
ufuncs (Numba DUFuncs), so that Numba fuses them with the elementwise
arithmetic around them into one loop; tanh of a float64 array is a loop of its own
(its kernel is too large to inline). A float64 (array element or scalar) goes through
the kernel; other dtypes and complex values go to Numba's own np.exp/np.log/np.tanh.
"""

import math
import types as pytypes

import numpy as np
from llvmlite import ir
from numba import njit, types, vectorize
from numba.extending import intrinsic, overload

from . import numba_reductions


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64, as an int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose IEEE-754 bits are the int64 `i`."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _div(typingctx, a, b):
    """a / b for float64s as IEEE-754 has it (inf or NaN where b is 0), without the check for a
    zero divisor that Numba's `/` makes: a branch that would keep the loop from vectorizing."""
    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1])
    return types.float64(types.float64, types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # ln 2 rounded to 32 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10   # ln 2 - _LN2_HI
_INF = math.inf


@njit(inline="always")
def _pow2(k):
    """2.0 ** k for an integer k in [-1022, 1023], from its bits."""
    return _from_bits((k + 1023) << 52)


@njit(inline="always")
def _exp_reduced(r):
    """exp(r) for |r| <= ln2 / 2: Taylor series to r^13, by Horner's rule."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r + 1.0


@njit(inline="always")
def exp_kernel(x):
    # clamp so that k stays an integer in [-1076, 1024]; overflow to inf and underflow to 0
    # still happen in the final products, and NaN is put back at the end
    xc = max(min(x, 710.0), -746.0)
    k = math.floor(xc * _LOG2E + 0.5)
    kf = float(k)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    half = k >> 1                   # 2^k = 2^half * 2^(k - half): each factor is a normal number
    y = _exp_reduced(r) * _pow2(half) * _pow2(k - half)
    return x if math.isnan(x) else y


_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SMALLEST_NORMAL = 2.2250738585072014e-308
_TWO54 = 18014398509481984.0
_SQRT2 = 1.4142135623730951


@njit(inline="always")
def log_kernel(x):
    subnormal = x < _SMALLEST_NORMAL
    xs = x * _TWO54 if subnormal else x          # scale subnormals up to normal numbers
    bits = _bits(xs)
    e = (bits >> 52) - (1023 + 54 if subnormal else 1023)
    m = _from_bits((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)   # xs = 2^e m, m in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = _div(f, 2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    ef = float(e)
    y = ef * _LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + ef * _LN2_LO)) - f)
    # 0 -> -inf, negative or NaN -> NaN, inf -> inf
    special = -_INF if x == 0.0 else (x if x == _INF else math.nan)
    return y if x > 0.0 and x < _INF else special


# tanh(a) = a + a^3 P(a^2) / Q(a^2) for |a| < 0.625: the rational approximation of Cephes'
# tanh.c (Moshier), here with Q's leading coefficient 1
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


@njit(inline="always")
def tanh_kernel(x):
    a = abs(x)
    near0 = a < 0.625
    z = a * a
    p = (_TANH_P[0] * z + _TANH_P[1]) * z + _TANH_P[2]
    q = ((z + _TANH_Q[0]) * z + _TANH_Q[1]) * z + _TANH_Q[2]
    # beyond 0.625, 1 - 2 / (exp(2a) + 1) (exp overflows to inf for large a: 1). Both branches
    # end in a division; picking its operands first makes it one division, not two
    r = _div(a * z * p if near0 else 2.0, q if near0 else exp_kernel(2.0 * a) + 1.0)
    t = a + r if near0 else 1.0 - r
    return x if math.isnan(x) else math.copysign(t, x)


@njit(inline="always")
def logistic_kernel(x):
    return _div(1.0, 1.0 + exp_kernel(-x))   # exp(-x) = inf: 0; NaN stays NaN


# exp and log are ufuncs of Numba's own (DUFuncs): Numba fuses a ufunc call with the arithmetic
# around it in one expression (`np.exp(x - a) * g`) into a single loop over the elements, the
# kernel inlined, where an opaque function would need a new array for each step. Each compiles
# a loop per input type on first use, cached on disk. A float64 element goes through the kernel
# above, anything else (other float widths, complex values) through Numba's own
# np.exp/np.log/np.tanh; integers and booleans through the kernel, as float64.
def _exp_one(v):
    return np.exp(v)


def _log_one(v):
    return np.log(v)


def _tanh_one(v):
    return np.tanh(v)


def _logistic_one(v):
    return 1.0 / (1.0 + np.exp(-v))


_logistic_fallback = njit(_logistic_one)   # the same formula, compiled with Numba's np.exp


def _per_type(one, kernel, fallback):
    @overload(one)
    def _ov(v):
        if v == types.float64:
            return lambda v: kernel(v)
        if isinstance(v, (types.Integer, types.Boolean)):
            return lambda v: kernel(float(v))
        return lambda v: fallback(v)


_per_type(_exp_one, exp_kernel, np.exp)
_per_type(_log_one, log_kernel, np.log)
_per_type(_tanh_one, tanh_kernel, np.tanh)
_per_type(_logistic_one, logistic_kernel, _logistic_fallback)


@vectorize(cache=True)
def exp(v):
    return _exp_one(v)


@vectorize(cache=True)
def log(v):
    return _log_one(v)


@vectorize(cache=True)
def logistic(v):   # runtime.logistic: the user's 1 / (1 + np.exp(-x)), recognized by normalize
    return _logistic_one(v)


# tanh's kernel is too large for LLVM to inline into a fused loop: called once per element it
# does not vectorize (measured: 1.7 ms for 64,000 floats, against 0.21 ms as a loop of its own).
# So tanh of a float64 array is that loop, in a function compiled once and cached on disk
# (error_model="numpy": no zero-divisor branch), and tanh is not fused with its neighbours.
@njit(cache=True, error_model="numpy")
def _tanh_each(src, dst):
    for k in range(src.size):
        dst[k] = tanh_kernel(src[k])


# An array's elements as a 1-d array in C order, copied only where they must be: a 1-d array is
# itself, a C-contiguous one a reshaped view, any other Numba's ravel (a copy). For 32 floats the
# copy and reshapes were a third of tanh's time, and a quarter of a push on the tape.
@njit(inline="always")
def _itself(a):
    return a


@njit(inline="always")
def _reshaped(a):
    return a.reshape(a.size)


@njit(inline="always")
def _raveled(a):
    return a.ravel()


def flat_elements(array_type):
    """The function (one of the three above) that flattens arrays of Numba type `array_type`."""
    return _itself if array_type.ndim == 1 else _reshaped if array_type.layout == "C" else _raveled


def tanh(x):
    return np.tanh(x)


@overload(tanh)
def _tanh_ov(x):
    if isinstance(x, types.Array) and x.dtype == types.float64:
        flat, flat_out = flat_elements(x), flat_elements(x.copy(layout="C"))   # out is C-contiguous

        def impl(x):
            out = np.empty(x.shape)
            _tanh_each(flat(x), flat_out(out))
            return out
        return impl
    return lambda x: _tanh_one(x)


def numpy_namespace():
    """A stand-in for the `numpy` module in compiled generated code: NumPy itself, but for the
    vectorized exp, log and tanh above, and the whole-array reductions of numba_reductions."""
    ns = pytypes.ModuleType("numpy")
    ns.__dict__.update(np.__dict__)
    ns.exp, ns.log, ns.tanh = exp, log, tanh
    ns.__dict__.update(numba_reductions.STAND_INS)
    # functions Numba lacks, or lacks for some arguments (numba_reductions)
    for name in ("hstack", "matmul", "inner", "array", "clip", "dot", "squeeze", "vdot"):
        setattr(ns, name, getattr(numba_reductions, name))
    ns.linalg = pytypes.ModuleType("numpy.linalg")
    ns.linalg.__dict__.update(np.linalg.__dict__)
    ns.linalg.norm = numba_reductions.norm
    return ns
