"""The optimizer's rewrites of generated code, on small hand-written functions: what they change,
and, as much, what they must leave alone. Each rewritten function is also run against the
original on the same inputs."""

import textwrap

import gast
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from s2sad import optimize, runtime
from s2sad.ir import emit
from s2sad.transform import contributions


def rewritten(source, rewrite):
    fn = gast.parse(textwrap.dedent(source)).body[0]
    return emit.to_source(rewrite(fn)).strip()


def body_of(text):
    return [line.strip() for line in text.splitlines()[1:]]


def same_results(source, new_text, *args):
    """The original and the rewritten function give the same numbers (copies of the arguments:
    both may write into them)."""
    ns_old, ns_new = {"np": np, "unbroadcast": runtime.unbroadcast}, {"np": np, "unbroadcast": runtime.unbroadcast}
    exec(textwrap.dedent(source), ns_old)
    exec(new_text, ns_new)
    name = gast.parse(new_text).body[0].name
    old = ns_old[name](*[np.copy(a) for a in args])
    new = ns_new[name](*[np.copy(a) for a in args])
    np.testing.assert_array_equal(old, new)


def test_a_chain_of_temporaries_becomes_one_expression():
    src = """
    def f(x, y):
        _t1 = x - y
        _t2 = np.exp(_t1)
        z = _t2 * 2.0
        return z
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert body_of(text) == ["z = np.exp(x - y) * 2.0", "return z"]
    same_results(src, text, np.array([0.5, 1.0]), np.array([0.25, -1.0]))


def test_a_temporary_does_not_move_past_a_write_into_what_it_reads():
    src = """
    def f(x):
        _t1 = x[0] * 2.0
        x[0] = 5.0
        y = _t1 + 1.0
        return y
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert "_t1 = x[0] * 2.0" in text
    same_results(src, text, np.array([0.5, 1.0]))


def test_a_temporary_does_not_move_past_a_call_or_a_rebinding():
    src = """
    def f(x, a):
        _t1 = x * a
        add_at(x, 0, 1.0)
        _t2 = x + a
        a = 3.0
        return _t1 + _t2
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert "_t1 = x * a" in text and "_t2 = x + a" in text


def test_a_temporary_stays_out_of_loops_and_stays_when_read_twice():
    src = """
    def f(x, n):
        _t1 = np.sum(x)
        _t2 = x * 2.0
        s = 0.0
        for i in range(n):
            s = s + _t1
        return s + np.sum(_t2) + np.sum(_t2)
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert "_t1 = np.sum(x)" in text and "_t2 = x * 2.0" in text
    same_results(src, text, np.array([0.5, 1.0]), 3)


def test_user_names_random_draws_and_tape_operations_stay():
    src = """
    def f(x, _tape):
        d = x - 1.0
        _t1 = np.random.normal()
        _t2 = pop(_tape, x)
        return d * _t1 * _t2
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert "d = x - 1.0" in text and "_t1 = np.random.normal()" in text and "_t2 = pop(_tape, x)" in text


def test_an_if_test_and_a_loop_range_take_their_temporary():
    src = """
    def f(x):
        _t1 = x[0] > 0.0
        s = 0.0
        if _t1:
            s = 1.0
        _t2 = x.shape[0]
        for i in range(_t2):
            s = s + x[i]
        return s
    """
    text = rewritten(src, optimize.inline_temporaries)
    assert "if x[0] > 0.0:" in text and "for i in range(x.shape[0]):" in text
    same_results(src, text, np.array([0.5, 1.0, 2.0]))
    same_results(src, text, np.array([-0.5, 1.0]))


def test_simplify_spreads_a_scalar_and_takes_minus_out_of_a_sum():
    src = """
    def f(s, x):
        y = sum_adjoint(s, x, None) * x
        z = x / sum_adjoint(s, x, None)
        w = sum_adjoint(s, x, 0) * x
        return np.sum(-y) + np.sum(z) + np.sum(w)
    """
    text = rewritten(src, optimize.simplify)
    lines = body_of(text)
    assert lines[0] == "y = s * x" and lines[1] == "z = x / s" and lines[2] == "w = np.expand_dims(s, 0) * x"
    assert lines[3] == "return -np.sum(y) + np.sum(z) + np.sum(w)"


def run_with_helpers(text, *args):
    ns = dict(runtime.HELPERS, np=np)
    exec(textwrap.dedent(text), ns)
    return ns["f"](*args)


def test_simplify_spreads_along_an_axis_as_a_view_and_takes_minus_out_of_unbroadcast():
    src = """
    def f(g, x, h):
        a = sum_adjoint(g, x, 1) * x
        b = x + sum_adjoint(g, x, -1)
        c = unbroadcast(-a, h) * 0.5
        return a, b, c
    """
    text = rewritten(src, optimize.simplify)
    assert body_of(text)[:3] == ["a = np.expand_dims(g, 1) * x", "b = x + np.expand_dims(g, -1)",
                                 "c = -unbroadcast(a, h) * 0.5"]
    rng = np.random.default_rng(1)
    args = (rng.standard_normal(4), rng.standard_normal((4, 3)), rng.standard_normal(3))
    for old, new in zip(run_with_helpers(src, *args), run_with_helpers(text, *args)):
        np.testing.assert_array_equal(old, new)  # bit for bit: unbroadcast sums over the rows here


def test_a_helper_reads_the_shape_of_a_value_that_is_an_array_anyway():
    src = """
    def f(x, g, d2):
        _t2 = x - 1.0
        _t3 = _t2 ** 2
        _t12 = 0.5 * d2
        a = _t3 + _t12
        _t13 = np.exp(_t2)
        u = unbroadcast(g, _t3) * _t2
        v = unbroadcast(g, _t12) + sum_adjoint(1.0, _t13, None) + np.size(_t3)
        return a, u, v
    """
    fn = gast.parse(textwrap.dedent(src)).body[0]
    assert optimize.read_shapes_of_sources(fn)
    text = emit.to_source(fn).strip()
    # _t3 and _t13 are read for their shapes alone, _t2 (read twice) stays: its shape serves;
    # d2 is the user's name
    assert "unbroadcast(g, _t2) * _t2" in text and "unbroadcast(g, d2)" in text
    assert "sum_adjoint(1.0, _t2, None)" in text and "np.size(_t2)" in text
    rng = np.random.default_rng(2)
    args = (rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(3))
    for old, new in zip(run_with_helpers(src, *args), run_with_helpers(text, *args)):
        np.testing.assert_array_equal(old, new)


def test_the_shape_of_a_value_is_not_borrowed_across_a_rebinding():
    src = """
    def f(x, g):
        _t2 = x - 1.0
        _t3 = _t2 ** 2
        _t2 = np.ones(5)
        return unbroadcast(g, _t3) * _t2 * _t2
    """
    fn = gast.parse(textwrap.dedent(src)).body[0]
    assert not optimize.read_shapes_of_sources(fn)


def test_a_loop_that_writes_every_row_once_needs_no_zeroing():
    src = """
    def f(x, a):
        x_bar = np.zeros_like(x, dtype=np.float64)
        _t1 = x.shape
        n = _t1[0]
        y = 1.0
        for i in range(n):
            y = y * a
            x_bar[i] = x_bar[i] + y * x[i]
        return x_bar
    """
    text = rewritten(src, optimize.filled_by_loops)
    assert "x_bar = np.empty_like(x, dtype=np.float64)" in text and "x_bar[i] = y * x[i]" in text
    same_results(src, text, np.array([0.5, 1.0, -2.0]), 0.5)
    same_results(src, text, np.arange(6.0).reshape(3, 2), 0.5)  # rows: each written whole


def test_zeroing_stays_where_an_element_may_be_skipped_or_read():
    partial = """
    def f(x):
        g = np.zeros_like(x, dtype=np.float64)
        for i in range(1, x.shape[0]):
            g[i] = g[i] + x[i]
        return g
    """
    branch = """
    def f(x):
        g = np.zeros_like(x, dtype=np.float64)
        for i in range(len(x)):
            if x[i] > 0.0:
                g[i] = g[i] + x[i]
        return g
    """
    early_exit = """
    def f(x):
        g = np.zeros_like(x, dtype=np.float64)
        for i in range(len(x)):
            if x[i] > 0.0:
                break
            g[i] = g[i] + x[i]
        return g
    """
    read_first = """
    def f(x):
        g = np.zeros_like(x, dtype=np.float64)
        s = np.sum(g)
        for i in range(len(x)):
            g[i] = g[i] + x[i] + s
        return g
    """
    read_in_loop = """
    def f(x):
        g = np.zeros_like(x, dtype=np.float64)
        for i in range(len(x)):
            g[i] = g[i] + x[i]
            g[0] = g[0] + 1.0
        return g
    """
    other_length = """
    def f(x, y):
        g = np.zeros_like(x, dtype=np.float64)
        for i in range(len(y)):
            g[i] = g[i] + y[i]
        return g
    """
    x = np.array([-1.0, 2.0, 3.0])
    for src, args in [(partial, (x,)), (branch, (x,)), (early_exit, (x,)), (read_first, (x,)),
                      (read_in_loop, (x,)), (other_length, (x, x[:2]))]:
        text = rewritten(src, optimize.filled_by_loops)
        assert "np.zeros_like" in text and "empty_like" not in text, text
        same_results(src, text, *args)


def test_a_weight_adjoint_in_a_loop_is_added_in_place():
    src = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        for t in range(hs.shape[0]):
            h = hs[t]
            W_bar = W_bar + dot_adjoint_x(gs[t], W, h)
        return None, (W_bar,)
    """
    text = rewritten(src, optimize.accumulate_in_place)
    assert "W_bar = add_dot_adjoint_x(W_bar, gs[t], W, h)" in text
    ns_old, ns_new = {"np": np, "dot_adjoint_x": runtime.dot_adjoint_x}, dict(vars(runtime), np=np)
    exec(textwrap.dedent(src), ns_old)
    exec(text, ns_new)
    rng = np.random.default_rng(0)
    args = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    np.testing.assert_allclose(ns_new["f"](*args)[1][0], ns_old["f"](*args)[1][0], rtol=1e-15)
    np.testing.assert_allclose(ns_new["f"](*args)[1][0], args[2].T @ args[1], rtol=1e-13)


def test_outer_products_in_a_loop_are_stashed_and_added_after_it():
    src = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        for t in range(hs.shape[0] - 1, -1, -1):
            W_bar = add_dot_adjoint_x(W_bar, gs[t], W, hs[t])
        return W_bar
    """
    text = rewritten(src, optimize.defer_outer_products)
    assert body_of(text) == [
        "W_bar = np.zeros_like(W, dtype=np.float64)",
        "W_bar_rows = outer_rows(W_bar, len(range(hs.shape[0] - 1, -1, -1)))",
        "for t in range(hs.shape[0] - 1, -1, -1):",
        "W_bar = later_dot_adjoint_x(W_bar_rows, W_bar, gs[t], W, hs[t])",
        "W_bar = add_outer_rows(W_bar, W_bar_rows)",
        "return W_bar"]
    ns_old, ns_new = dict(vars(runtime), np=np), dict(vars(runtime), np=np)
    exec(textwrap.dedent(src), ns_old)
    exec(text, ns_new)
    rng = np.random.default_rng(0)
    for trips in (0, 1, 5):
        args = rng.standard_normal((4, 3)), rng.standard_normal((trips, 3)), rng.standard_normal((trips, 4))
        np.testing.assert_allclose(ns_new["f"](*args), ns_old["f"](*args), rtol=1e-14, atol=1e-15)


def test_an_accumulator_the_loop_reads_is_not_stashed():
    read_in_the_loop = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        s = 0.0
        for t in range(hs.shape[0]):
            W_bar = add_dot_adjoint_x(W_bar, gs[t], W, hs[t])
            s = s + np.sum(W_bar)
        return W_bar, s
    """
    written_in_the_loop = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        for t in range(hs.shape[0]):
            W_bar = add_dot_adjoint_x(W_bar, gs[t], W, hs[t])
            W_bar[0, 0] = 0.0
        return W_bar
    """
    not_a_range = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        for h in hs:
            W_bar = add_dot_adjoint_x(W_bar, gs[0], W, h)
        return W_bar
    """
    in_a_branch = """
    def f(W, hs, gs):
        W_bar = np.zeros_like(W, dtype=np.float64)
        for t in range(hs.shape[0]):
            if t > 1:
                W_bar = add_dot_adjoint_x(W_bar, gs[t], W, hs[t])
        return W_bar
    """
    for src in (read_in_the_loop, written_in_the_loop, not_a_range, in_a_branch):
        text = rewritten(src, optimize.defer_outer_products)
        assert "later_" not in text and "outer_rows" not in text, text


def test_tape_pairs_whose_values_nothing_reads_are_dropped():
    src = """
    def f(x, n):
        _tape = Tape()
        s = np.empty((0,), dtype=np.float64)
        y = np.empty((0,), dtype=np.float64)
        for t in range(n):
            push_shape(_tape, s)
            s = x[t:t + 2]
            push(_tape, y)
            y = np.tanh(s)
        y_bar = np.ones_like(y)
        x_bar = np.zeros_like(x)
        for t in range(n - 1, -1, -1):
            s_bar = y_bar * (1 - y * y)
            y = pop(_tape, y)
            x_bar[t:t + 2] = x_bar[t:t + 2] + s_bar
            s = pop_shape(_tape, s)
        return x_bar
    """
    def drop_pairs(fn):
        optimize.drop_unread_tape_pairs(fn)
        return fn

    text = rewritten(src, drop_pairs)
    assert "push(_tape, y)" in text and "y = pop(_tape, y)" in text, text  # y is read: kept
    assert "push_shape(_tape, s)" not in text and "pop_shape" not in text, text
    ns_old, ns_new = dict(vars(runtime), np=np), dict(vars(runtime), np=np)
    exec(textwrap.dedent(src), ns_old)
    exec(text, ns_new)
    x = np.random.default_rng(1).standard_normal(7)
    np.testing.assert_array_equal(ns_new["f"](x, 5), ns_old["f"](x, 5))
    # a popped shape read on the next trip, or after the loop, keeps its pair
    for read in ("x_bar[t:t + 2] = x_bar[t:t + 2] + s_bar * np.size(s)", "x_bar = x_bar + 0.0"):
        kept = src.replace("x_bar[t:t + 2] = x_bar[t:t + 2] + s_bar", read)
        if read.startswith("x_bar = "):
            kept = kept.replace("return x_bar", "return x_bar, s")
        assert "pop_shape(_tape, s)" in rewritten(kept, drop_pairs)


def test_sums_into_slices_of_a_zeroed_array_that_cannot_overlap_become_stores():
    src = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        _t8 = 2 * n
        A[n:_t8] = A[n:_t8] + e[0]
        A[0:n] = A[0:n] + e[1]
        _t10 = 3 * n
        A[_t8:_t10] = A[_t8:_t10] + e[2]
        A[0:n] = A[0:n] + e[3]
        return A
    """
    text = rewritten(src, slice_contributions)
    assert body_of(text)[2:6] == ["A[n:_t8] = e[0]", "A[0:n] = e[1]", "_t10 = 3 * n", "A[_t8:_t10] = e[2]"], text
    assert "A[0:n] = A[0:n] + e[3]" in text   # a second sum into [0:n]
    # a bound computed in the block counts as a name of its own from there on
    computed = src.replace("_t8 = 2 * n", "m = x.shape[0] // 4\n        _t8 = 2 * m").replace("A[0:n]", "A[0:m]")
    computed = computed.replace("A[n:_t8]", "A[m:_t8]").replace("_t10 = 3 * n", "_t10 = 3 * m")
    assert "A[m:_t8] = e[0]" in rewritten(computed, slice_contributions)
    ns_old, ns_new = {"np": np}, {"np": np}
    exec(textwrap.dedent(src), ns_old)
    exec(text, ns_new)
    x = np.zeros(12)
    for n in (-5, -3, -1, 0, 1, 3, 4, 5, 7):   # a negative n wraps around: all but [0:n] are empty
        e = [np.arange(len(x[sl])) + 1.0 + k for k, sl in
             enumerate((slice(n, 2 * n), slice(0, n), slice(2 * n, 3 * n), slice(0, n)))]
        np.testing.assert_array_equal(ns_new["f"](x, n, e), ns_old["f"](x, n, e))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans()), min_size=1, max_size=6),
       st.integers(-7, 7), st.integers(0, 12))
def test_stores_into_slices_give_the_sums_numbers(slices, n, length):
    # random sums into slices [p * n:q * n] (or constant ones [p:q]) of a zeroed array, for
    # every sign of n: the rewrite, whichever it makes stores, gives the same array
    lines = ["def f(x, n, e):", "    A = np.zeros_like(x, dtype=np.float64)"]
    for k, (p, q, constant) in enumerate(slices):
        lo, hi = (str(p), str(q)) if constant else (f"{p} * n", f"{q} * n")
        lines.append(f"    A[{lo}:{hi}] = A[{lo}:{hi}] + e[{k}]")
    src = "\n".join(lines + ["    return A"])
    text = rewritten(src, slice_contributions)
    ns_old, ns_new = {"np": np}, {"np": np}
    exec(src, ns_old)
    exec(text, ns_new)
    x = np.zeros(length)
    e = [k + 1.0 for k in range(len(slices))]   # broadcast into each slice
    np.testing.assert_array_equal(ns_new["f"](x, n, e), ns_old["f"](x, n, e))


def test_sums_into_slices_that_may_overlap_stay_sums():
    overlapping = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        A[0:2 * n] = A[0:2 * n] + e
        A[n:3 * n] = A[n:3 * n] + e
        return A
    """
    constant_and_multiple = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        A[2:3] = A[2:3] + e
        A[0:n] = A[0:n] + e
        return A
    """
    n_changes = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        A[0:n] = A[0:n] + e
        n = n + 1
        A[n:2 * n] = A[n:2 * n] + e
        return A
    """
    read_between = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        A[0:n] = A[0:n] + e
        y = A * 2.0
        A[n:2 * n] = A[n:2 * n] + y[0:n]
        return A
    """
    computed_between = """
    def f(x, n, e):
        A = np.zeros_like(x, dtype=np.float64)
        m = n
        A[0:m] = A[0:m] + e
        m = n + 1
        A[m:2 * m] = A[m:2 * m] + e
        return A
    """
    for src in (overlapping, constant_and_multiple, n_changes, read_between, computed_between):
        text = rewritten(src, slice_contributions)
        assert len([line for line in body_of(text) if "] + " in line]) == 1, text  # the first alone is a store


def test_an_accumulator_another_name_may_share_is_not_added_in_place():
    shared_by_copy = """
    def f(W, h, g):
        W_bar = np.zeros_like(W, dtype=np.float64)
        saved = W_bar
        W_bar = W_bar + dot_adjoint_x(g, W, h)
        return saved, W_bar
    """
    given = """
    def f(W, h, g, W_bar):
        W_bar = W_bar + dot_adjoint_x(g, W, h)
        return W_bar
    """
    from_a_helper = """
    def f(W, h, g, G):
        W_bar = unbroadcast(G, W)
        W_bar = W_bar + dot_adjoint_x(g, W, h)
        return G, W_bar
    """
    a_row_view = """
    def f(W, h, g):
        W_bar = np.zeros_like(W, dtype=np.float64)
        row = W_bar[0]
        W_bar = W_bar + dot_adjoint_x(g, W, h)
        return row, W_bar
    """
    for src in (shared_by_copy, given, from_a_helper, a_row_view):
        text = rewritten(src, optimize.accumulate_in_place)
        assert "add_dot_adjoint_x" not in text, text


def slice_contributions(fn):
    contributions.first_slice_contributions(fn.body)
    return fn


def first_contributions(fn):
    """transform.contributions on hand-written code whose every zeroing is an adjoint's."""
    fn.body = contributions.first_contributions(fn.body, lambda s: True, contributions.written_in_place(fn),
                                                live_out={"out"})
    return fn


def test_an_adjoint_shares_an_array_that_is_done_being_written_into():
    # gates_bar in an LSTM's reverse loop: zeroed each trip, filled slice by slice, then handed on
    done = """
    def f(g, x):
        out = np.zeros(2)
        for t in range(3):
            G = np.zeros_like(x, dtype=np.float64)
            G[0:2] = G[0:2] + g * t
            v = np.zeros_like(x, dtype=np.float64)
            v = v + unbroadcast(G, x)
            out = out + v[1:3]
        return out
    """
    text = rewritten(done, first_contributions)
    assert "v = unbroadcast(G, x)" in text and "v = np.zeros_like" not in text, text
    same_results(done, text, np.array([1.0, 2.0]), np.zeros(3))
    written_after = done.replace("            out = out + v[1:3]",
                                 "            G[1:3] = G[1:3] + g\n            out = out + v[1:3]")
    zeroed_once = done.replace("            G = np.zeros_like(x, dtype=np.float64)\n", "").replace(
        "        out = np.zeros(2)\n", "        out = np.zeros(2)\n        G = np.zeros_like(x, dtype=np.float64)\n")
    for src in (written_after, zeroed_once):
        text = rewritten(src, first_contributions)
        assert "v = v + unbroadcast(G, x)" in text, text
        same_results(src, text, np.array([1.0, 2.0]), np.zeros(3))
