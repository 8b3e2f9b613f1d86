"""The Numba backend's sum, mean, max and min (s2sad.numba_reductions) against NumPy, of whole
arrays and along an axis, on every path: the fast ones (a float64 array; C-contiguous for a
whole-array reduction), the short-row and long-row loops along an axis, and the calls handed
to Numba's own NumPy functions (another layout or dtype)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

from s2sad.backends.numba import NUMPY as NP  # the `np` compiled generated code sees
SOURCE = """
def whole_sum(a): return np.sum(a)
def sum_axis0(a): return np.sum(a, axis=0)
def whole_mean(a): return np.mean(a)
def whole_max(a): return np.max(a)
def whole_min(a): return np.min(a)
def max_axis0(a): return np.max(a, axis=0)
def amax_plus_amin(a): return np.amax(a) + np.amin(a)
"""
COMPILED, PLAIN = {"np": NP}, {"np": np}
exec(SOURCE, COMPILED)
exec(SOURCE, PLAIN)
NAMES = [k for k in PLAIN if not k.startswith("__") and k != "np"]
JITTED = {name: njit(COMPILED[name]) for name in NAMES}
rng = np.random.default_rng(0)
ARRAYS = [rng.standard_normal(1001), rng.standard_normal((30, 7)), rng.standard_normal((30, 7)).T,
          rng.standard_normal((40, 6))[::3], np.arange(10), np.array([-5.0]), np.array([1.0, np.nan, 3.0])]


@pytest.mark.parametrize("name", NAMES)
def test_agrees_with_numpy_on_every_layout_and_dtype(name):
    for a in ARRAYS:
        np.testing.assert_allclose(JITTED[name](a), PLAIN[name](a), rtol=1e-13, err_msg=f"{a.shape} {a.dtype}")


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)))
def test_any_float_array(a):
    np.testing.assert_allclose(JITTED["whole_sum"](a), np.sum(a), rtol=1e-9, atol=1e-6)
    assert JITTED["whole_max"](a) == np.max(a) and JITTED["whole_min"](a) == np.min(a)


def test_an_empty_array_has_no_max_and_a_nan_is_the_max():
    with pytest.raises(ValueError, match="zero-size array"):
        JITTED["whole_max"](np.zeros(0))
    a = np.arange(20.0)
    a[13] = np.nan
    assert np.isnan(JITTED["whole_max"](a)) and np.isnan(JITTED["whole_min"](a))
    assert JITTED["whole_sum"](np.zeros(0)) == 0.0


# ---- along one axis: the [outer, n, inner] loops (long rows go to the whole-array kernels) ----
AXIS_SOURCE = """
def sum_along(a, axis): return np.sum(a, axis=axis)
def max_along(a, axis): return np.max(a, axis=axis)
def min_along(a, axis): return np.min(a, axis=axis)
def mean_along(a, axis): return np.mean(a, axis=axis)
def prod_along(a, axis): return np.prod(a, axis=axis)
"""
exec(AXIS_SOURCE, COMPILED)
exec(AXIS_SOURCE, PLAIN)
ALONG = {name: njit(COMPILED[name]) for name in ("sum_along", "max_along", "min_along", "mean_along", "prod_along")}
with_nan = rng.standard_normal((6, 40))
with_nan[2, 33] = with_nan[4, 3] = np.nan
AXIS_ARRAYS = {"rows of 7": rng.standard_normal((30, 7)), "transposed": rng.standard_normal((30, 7)).T,
               "3-d, rows of 40": rng.standard_normal((3, 5, 40)), "ints": rng.integers(-9, 9, (4, 6)),
               "NaNs": with_nan, "1-d": rng.standard_normal(50)}


@pytest.mark.parametrize("name", ["sum_along", "max_along"])
@pytest.mark.parametrize("kind", AXIS_ARRAYS)
def test_along_an_axis_agrees_with_numpy(name, kind):
    a = AXIS_ARRAYS[kind]
    for axis in range(-a.ndim, a.ndim):
        got, want = ALONG[name](a, axis), PLAIN[name](a, axis)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=f"{kind} axis={axis}")


@pytest.mark.parametrize("name", ["min_along", "mean_along", "prod_along"])
def test_min_mean_and_prod_along_an_axis(name):
    for a in (AXIS_ARRAYS["3-d, rows of 40"], AXIS_ARRAYS["NaNs"][:, :30]):
        for axis in range(a.ndim):
            np.testing.assert_allclose(ALONG[name](a, axis), PLAIN[name](a, axis), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=70),
                  elements=st.floats(-1e6, 1e6) | st.just(np.nan)), st.integers(0, 1))
def test_any_matrix_along_either_axis(a, axis):
    np.testing.assert_allclose(ALONG["sum_along"](a, axis), np.sum(a, axis=axis), rtol=1e-9, atol=1e-6)
    if a.shape[axis] > 0:
        np.testing.assert_array_equal(ALONG["max_along"](a, axis), np.max(a, axis=axis))


def test_an_axis_out_of_bounds_or_an_empty_max_is_a_value_error():
    with pytest.raises(ValueError, match="out of bounds"):
        ALONG["sum_along"](AXIS_ARRAYS["rows of 7"], 2)
    with pytest.raises(ValueError, match="zero-size array"):
        ALONG["max_along"](np.zeros((3, 0)), 1)


DTYPE_SOURCE = """
def all_along_rows(a): return np.max(a, axis=1), np.min(a, axis=1), np.mean(a, axis=1), np.prod(a, axis=1)
"""
exec(DTYPE_SOURCE, COMPILED)
exec(DTYPE_SOURCE, PLAIN)
ALL_ALONG_ROWS = njit(COMPILED["all_along_rows"])


@pytest.mark.parametrize("a", [rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 5)) > 0,
                               rng.integers(-3, 4, (4, 5))], ids=["float32", "bool", "int64"])
def test_along_an_axis_the_result_has_numpys_dtype(a):
    for got, want in zip(ALL_ALONG_ROWS(a), PLAIN["all_along_rows"](a)):
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def column_of_a_matrix_joined(A):
    return np.sum(np.c_[A[:, 0], A[:, 1:]] ** 2) + np.sum(np.reshape(A[:, 1], (-1, 1)) * A)


def test_reshape_of_a_strided_view_compiles_as_numpy_reshapes_it():
    """np.c_ reshapes a matrix's column (not contiguous), which Numba's np.reshape refuses; found by
    test_random_arrays' Numba sweep."""
    import s2sad
    A = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(s2sad.grad(column_of_a_matrix_joined, backend="numba")(A),
                               s2sad.grad(column_of_a_matrix_joined, backend="python")(A), rtol=1e-14)
    want = 2 * A + A[:, [1]]           # d/dA of sum(A ** 2) + sum_ij A[i, 1] A[i, j]
    want[:, 1] += A.sum(axis=1)
    np.testing.assert_allclose(s2sad.grad(column_of_a_matrix_joined, backend="python")(A), want, rtol=1e-14)
