"""Refused constructs and misuse: the right exception type, the exact line, the quoted line and a hint."""

import inspect
import textwrap

import numpy as np
import pytest

import s2sad

GLOBAL_STATE = 0.0


def marked_line(fn, marker):
    """The file line number of the line of `fn` carrying the comment `# MARK:marker`."""
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, line in enumerate(lines) if f"# MARK:{marker}" in line]
    assert len(hits) == 1, hits
    return hits[0]


def line_text(fn, lineno):
    lines, first = inspect.getsourcelines(fn)
    return lines[lineno - first].strip()


# ---- refused constructs --------------------------------------------------------------------------

def uses_yield(x):
    yield x * 2.0  # MARK:yield


async def uses_async(x):  # MARK:async
    return x


def uses_nested_async(x):
    async def inner(v):  # MARK:nested_async
        return v
    return x


def uses_global_write(x):
    global GLOBAL_STATE  # MARK:global
    GLOBAL_STATE = x
    return x


def uses_del(x):
    y = x * 2.0
    del y  # MARK:del
    return x


def uses_class(x):
    class Box:  # MARK:class
        pass
    return x


def uses_try(x):
    try:  # MARK:try
        y = x * 2.0
    except ValueError:
        y = x
    return y


class _Ctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def uses_with(x):
    with _Ctx():  # MARK:with
        y = x * 2.0
    return y


def uses_nested_def(x):
    def inner(v):  # MARK:def
        return v * v
    return inner(x)


def uses_listcomp(x):
    ys = [v * v for v in x]  # MARK:listcomp
    return np.sum(np.array(ys))


def uses_lambda(x):
    sq = lambda v: v * v  # MARK:lambda  # noqa: E731
    return sq(x)


def uses_walrus(x):
    if (y := x * 2.0) > 1.0:  # MARK:walrus
        return y
    return x


def uses_star_params(x, *args):  # MARK:starparams
    return x


def uses_star_call(x):
    t = (x, 2.0)
    return np.multiply(*t)  # MARK:starcall


REFUSED = [
    (uses_yield, "yield", "yield"),
    (uses_async, "async", "async"),
    (uses_nested_async, "nested_async", "async"),
    (uses_global_write, "global", "global"),
    (uses_del, "del", "del"),
    (uses_class, "class", "class"),
    (uses_try, "try", "try"),
    (uses_with, "with", "with"),
    (uses_nested_def, "def", "function defined inside"),
    (uses_listcomp, "listcomp", "list comprehension"),
    (uses_lambda, "lambda", "lambda"),
    (uses_walrus, "walrus", ":="),
    (uses_star_params, "starparams", "*args"),
    (uses_star_call, "starcall", "*args"),
]


@pytest.mark.parametrize("fn, marker, construct", REFUSED,
                         ids=[r.values[1] if hasattr(r, "marks") else r[1] for r in REFUSED])
def test_refused_construct_names_file_line_quotes_it_and_hints(fn, marker, construct):
    lineno = marked_line(fn, marker)
    with pytest.raises(s2sad.UnsupportedSyntaxError) as info:
        s2sad.grad(fn)(1.5)
    err = info.value
    assert isinstance(err, s2sad.S2SADError)
    assert err.lineno == lineno
    assert err.filename == __file__
    message = str(err)
    assert f"{__file__}:{lineno}:" in message
    assert line_text(fn, lineno) in message
    assert construct in message
    assert "hint:" in message


# ---- calls and names -----------------------------------------------------------------------------

def uses_kron(x):
    y = np.kron(x, x)  # MARK:kron
    return y[0] * 2.0


def uses_fft(x):
    y = np.fft.fft(x)  # MARK:fft
    return np.sum(np.abs(y))


@pytest.mark.parametrize("fn, marker, spelled", [(uses_kron, "kron", "np.kron"), (uses_fft, "fft", "np.fft.fft")])
def test_call_without_derivative_rule_names_the_line(fn, marker, spelled):
    lineno = marked_line(fn, marker)
    with pytest.raises(s2sad.NonDifferentiableError) as info:
        s2sad.grad(fn)(np.array([3.0, 1.0, 2.0]))
    message = str(info.value)
    assert isinstance(info.value, s2sad.S2SADError)
    assert f"{__file__}:{lineno}:" in message
    assert line_text(fn, lineno) in message
    assert spelled in message


def uses_norm_along_an_axis(x):
    X = np.reshape(x, (3, 2))
    return np.sum(np.linalg.norm(X, axis=1))  # MARK:norm_axis


def uses_keepdims_of_everything(x):
    return np.sum(x / np.sum(x * x, keepdims=True))  # MARK:keepdims


@pytest.mark.parametrize("fn, marker, words", [
    (uses_norm_along_an_axis, "norm_axis", ["np.linalg.norm", "takes (x)", "`axis`"]),
    (uses_keepdims_of_everything, "keepdims", ["keepdims", "one integer axis"])])
def test_an_argument_a_rule_does_not_take_is_refused_not_dropped(fn, marker, words):
    # the rule once ignored the argument: the gradient of another function, silently
    lineno = marked_line(fn, marker)
    for transform in (s2sad.grad, s2sad.jacfwd):
        with pytest.raises(s2sad.S2SADError) as info:
            transform(fn)(np.arange(1.0, 7.0))
        message = str(info.value)
        assert f"{__file__}:{lineno}:" in message and line_text(fn, lineno) in message and "hint:" in message
        for word in words:
            assert word in message


def zip_within_zip(x):
    s = 0.0
    for a, (b, c) in zip(x, zip(x, x)):  # MARK:zipzip
        s = s + a * b * c
    return s


def test_zip_within_zip_is_refused_as_a_construct_not_a_missing_rule():
    lineno = marked_line(zip_within_zip, "zipzip")
    with pytest.raises(s2sad.UnsupportedSyntaxError) as info:
        s2sad.grad(zip_within_zip)(np.array([3.0, 1.0, 2.0]))
    message = str(info.value)
    assert f"{__file__}:{lineno}:" in message and "`zip(...)` other than as a for loop's sequence" in message
    assert "hint: loop over it directly" in message


def test_no_rule_hint_names_only_existing_api():
    with pytest.raises(s2sad.NonDifferentiableError) as info:
        s2sad.grad(uses_kron)(np.array([3.0, 1.0, 2.0]))
    for word in ("custom_vjp", "stop_gradient"):
        if f"s2sad.{word}" in str(info.value):
            assert hasattr(s2sad, word), f"the hint suggests s2sad.{word}, which does not exist"


def uses_undefined(x):
    return x * name_that_is_defined_nowhere  # noqa: F821  # MARK:undef


def test_undefined_global_name():
    lineno = marked_line(uses_undefined, "undef")
    with pytest.raises(s2sad.S2SADError) as info:
        s2sad.grad(uses_undefined)(1.0)
    assert "name_that_is_defined_nowhere" in str(info.value)
    assert f":{lineno}:" in str(info.value)


def double(x):
    return 2.0 * x


def test_grad_with_respect_to_an_int_is_a_type_error():
    with pytest.raises(TypeError, match="integer"):
        s2sad.grad(double)(3)
    with pytest.raises(TypeError, match="int"):
        s2sad.grad(double)(np.arange(3))


def elementwise(x):
    return np.sin(x)


def test_non_scalar_output_is_a_type_error_naming_the_shape():
    with pytest.raises(TypeError, match=r"\(2, 3\)"):
        s2sad.grad(elementwise)(np.ones((2, 3)))


# ---- fuzz: odd but valid Python ------------------------------------------------------------------

FUZZ = [
    "s = 'abc'\n    return x",
    "d = {'a': x}\n    return d['a']",
    "y = x.foo()\n    return y",
    "y = x.real\n    return y",
    "x.attr = 3.0\n    return x",
    "y = [x, x]\n    return y[0]",
    "y = (x, 2.0)\n    return y[0] * y[1]",
    "y = {x}\n    return x",
    "y = f'{x}'\n    return x",
    "print(x)\n    return x",
    "y = x if x else 2.0\n    return y",
    "return x.conjugate()",
    "return len(x)",
    "return x @ x",
    "return np.float64(x)",
    "return float(x)",
    "return int(x) * 1.0",
    "return x[::-1][0] * 2.0",
    "y = np\n    return y.sin(x)",
    "return (lambda: x)()",
    "return np.linalg.norm(x)",
    "return sum(x)",
    "return np.sum(x[x > 0])",
    "return np.sum(x[[0, 1]])",
    "assert x is not None\n    return x",
    "return x if x is None else 1.0",
    "y = x\n    y.shape = (2,)\n    return np.sum(y)",
    "return not x",
    "return -x if True else x",
    "y = ...\n    return x",
    "return np.sum(x.T.T)",
    "return x.__class__(x)",
    "return np.sum(np.array([x[0], x[1]]))",
    "return x.item()",
    "return divmod(x, 2.0)[0]",
    "return np.sum(x, axis=None, keepdims=False)",
    "y = x\n    y = y * 2.0\n    return np.sum(y)",
    "t = 0.0\n    for i in range(2):\n        for j in range(2):\n            t += np.sum(x) * j\n    return t",
    "x = x * 2.0\n    return np.sum(x)",
    "t = 0.0\n    for i in range(2):\n        for j in range(2):\n            if j > i:\n"
                 "                break\n            t += np.sum(x)\n    return t",
]

ALLOWED = (s2sad.S2SADError, TypeError, ValueError)
INTERNAL = (AttributeError, KeyError, IndexError, NameError, UnboundLocalError, AssertionError)


def _load(body, tmp_path, index):
    source = "import numpy as np\n\n\ndef f(x):\n    " + body + "\n"
    path = tmp_path / f"fuzz_{index}.py"
    path.write_text(source)
    namespace = {"__name__": f"fuzz_{index}"}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["f"]


def _body(case):
    return case if isinstance(case, str) else case.values[0]


@pytest.mark.parametrize("body", FUZZ, ids=[textwrap.shorten(_body(c), 40) for c in FUZZ])
def test_fuzz_only_clear_errors_escape(body, tmp_path):
    f = _load(body, tmp_path, abs(hash(body)))
    for arg in (np.array([0.5, -1.5]), 0.5):
        try:
            s2sad.grad(f)(arg)
        except ALLOWED as err:
            assert not isinstance(err, INTERNAL)
            assert len(str(err)) > 20, f"unclear message: {err!r}"
        except Exception as err:  # anything else is an internal failure
            pytest.fail(f"{type(err).__name__} escaped from s2sad: {err}")
