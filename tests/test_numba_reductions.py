"""The Numba backend's whole-array sum, mean, max and min (s2sad.numba_reductions) against NumPy,
on every path: the fast one (a C-contiguous float64 array, no axis) and the calls it hands
to Numba's own NumPy functions (an axis, another layout, another dtype)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

from s2sad.numba_backend import NUMPY as NP  # the `np` compiled generated code sees
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
