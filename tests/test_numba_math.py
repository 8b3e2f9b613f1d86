"""The Numba backend's vectorized exp, log and tanh (s2sad.numba_math) against the C library.

Errors are counted in units in the last place (ulps) of the C library's result, which is
itself within one ulp of the exact value; the kernels promise two.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from s2sad.backends import numba_math

LIBM = {"exp": math.exp, "log": math.log, "tanh": math.tanh}
KERNELS = {"exp": numba_math.exp_kernel, "log": numba_math.log_kernel, "tanh": numba_math.tanh_kernel}
ARRAYS = {"exp": njit(lambda x: numba_math.exp(x)), "log": njit(lambda x: numba_math.log(x)),
          "tanh": njit(lambda x: numba_math.tanh(x))}


def libm(name, xs):
    f = LIBM[name]
    out = []
    for v in np.ravel(xs):
        try:
            out.append(f(float(v)))
        except OverflowError:
            out.append(math.inf)
        except ValueError:
            out.append(-math.inf if v == 0 else math.nan)
    return np.array(out).reshape(np.shape(xs))


def ulps(got, want):
    got, want = np.asarray(got), np.asarray(want)
    both_special = ~np.isfinite(want) | (want == 0)
    assert np.array_equal(got[both_special], want[both_special], equal_nan=True)
    finite = ~both_special
    return np.max(np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite])), initial=0.0)


RNG = np.random.default_rng(20261123)
SAMPLES = {
    "exp": np.concatenate([RNG.uniform(-745.0, 709.7, 20000), RNG.uniform(-1, 1, 20000),
                           RNG.standard_normal(2000) * 1e-9, RNG.uniform(-745.13, -708.0, 2000)]),
    "log": np.concatenate([np.exp(RNG.uniform(-744.0, 709.0, 20000)), RNG.uniform(0.6, 1.5, 20000),
                           1.0 + RNG.standard_normal(2000) * 1e-9, RNG.uniform(5e-324, 2.3e-308, 2000)]),
    "tanh": np.concatenate([RNG.uniform(-25, 25, 20000), RNG.uniform(-1, 1, 20000),
                            RNG.standard_normal(2000) * 1e-9, RNG.uniform(0.62, 0.63, 2000)]),
}
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, -1.0, -1e-300, 1.0,
                    709.78, 709.79, -745.13, -745.14, 1e300, -1e300, 0.625, -0.625, 20.0, -20.0])


@pytest.mark.parametrize("name", sorted(LIBM))
def test_within_two_ulps_of_libm(name):
    xs = SAMPLES[name]
    assert ulps(ARRAYS[name](xs), libm(name, xs)) <= 2.0


@pytest.mark.parametrize("name", sorted(LIBM))
def test_special_values_as_numpy(name):
    with np.errstate(all="ignore"):
        want = getattr(np, name)(SPECIAL)
    got = ARRAYS[name](SPECIAL)
    assert ulps(got, want) <= 2.0
    numbers = ~np.isnan(want)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))   # tanh(-0.0) is -0.0


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(sorted(LIBM)))
def test_any_float(x, name):
    assert ulps(np.array([KERNELS[name](x)]), libm(name, np.array([x]))) <= 2.0


@pytest.mark.parametrize("name", sorted(LIBM))
def test_array_layouts_and_dtypes(name):
    x = np.abs(RNG.standard_normal((6, 5))) + 0.1
    f, ref = ARRAYS[name], getattr(np, name)
    for arr in (x, x.T, x[::2, 1:], x[0], np.empty((0, 3)), x.reshape(2, 3, 5)):
        got = f(arr)
        assert got.shape == arr.shape and got.dtype == np.float64
        assert ulps(got, libm(name, arr)) <= 2.0
    # other dtypes and scalars go to Numba's own implementation, with NumPy's result types
    ints = np.arange(1, 7)
    np.testing.assert_allclose(f(ints), ref(ints), rtol=1e-15)
    assert f(x.astype(np.float32)).dtype == np.float32
    assert f(0.5) == pytest.approx(ref(0.5), rel=1e-15)
    assert f(2) == pytest.approx(ref(2), rel=1e-15)
    z = np.array([0.5 + 0.25j])
    np.testing.assert_allclose(f(z), ref(z), rtol=1e-14)
