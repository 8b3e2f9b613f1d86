"""The `s2sad` command line: emit, show, check, cache.

    s2sad emit  path/to/file.py:func [--wrt x,y | --argnums 0,1] [--mode reverse|forward]
                [--order N] [--signature "x: float, A: float64[:, :]"] [--numba] [-o out.py]
    s2sad show  path/to/file.py:func [same options] [--stage normalized|adjoint|tangent]
    s2sad check path/to/file.py:func --args "1.5, [1, 2]"
    s2sad cache info|clear

Errors about the user's code go to stderr as one message with file:line, and
the exit status is 1; a malformed command line exits with 2. Set
S2SAD_TRACEBACK=1 to see Python's traceback instead.
"""

import argparse
import ast
import contextlib
import importlib.util
import inspect
import math
import os
import re
import stat
import sys
import tempfile
import traceback

import numpy as np

from . import cache
from .codegen import compiler, standalone
from .errors import S2SADError
from .ir import emit

EXIT_ERROR, EXIT_USAGE = 1, 2


class CLIError(Exception):
    """An error to report as one message on stderr."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _version():
    try:
        import s2sad
        return getattr(s2sad, "__version__", "")
    except Exception:  # pragma: no cover - a broken package still prints its errors  # noqa: BLE001 - the user's code may raise anything
        return ""


# ---- loading the user's function ----------------------------------------------------------
def split_target(target):
    path, sep, func = target.rpartition(":")
    if not sep or not path or not func:
        raise CLIError(f"expected path/to/file.py:function, got {target!r}", EXIT_USAGE)
    if not func.replace(".", "_").isidentifier():
        raise CLIError(f"{func!r} is not a function name (expected path/to/file.py:function)", EXIT_USAGE)
    return path, func


def load_function(target):
    path, func = split_target(target)
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, expected a Python file")
    path = os.path.abspath(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    modname = "_s2sad_user_" + "".join(c if c.isalnum() else "_" for c in stem)
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the user's file may import its neighbours
    name = os.path.basename(path)
    before = set(sys.modules)
    try:
        # what the file prints goes to stderr: stdout may be the emitted module (`s2sad emit f.py:f > out.py`)
        with contextlib.redirect_stdout(sys.stderr):
            spec.loader.exec_module(module)
    except SyntaxError as err:
        col = f":{err.offset}" if err.offset else ""
        line = f"\n    {err.text.strip()}" if err.text else ""
        raise CLIError(f"{err.filename or path}:{err.lineno}{col}: syntax error: {err.msg}{line}") from None
    except SystemExit as err:
        raise CLIError(f"{_user_frame(err, path)}: importing {name} called sys.exit({err.code!r}), so s2sad "
                       f"cannot read {func}\n  hint: s2sad imports the file as a module (its __name__ is not "
                       "'__main__'): put the script part under `if __name__ == \"__main__\":`") from None
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        raise CLIError(f"{_user_frame(err, path)}: error while importing {name}: {type(err).__name__}: {err}"
                       f"\n  hint: s2sad runs the file's top-level code to find {func}; run `python {name}` "
                       "to see the error, or move the code that fails under `if __name__ == \"__main__\":`"
                       ) from None
    _IMPORTED.update(_user_files(set(sys.modules) - before))
    obj = module
    for part in func.split("."):
        if not hasattr(obj, part):
            defined = sorted(n for n, v in vars(module).items()
                             if inspect.isfunction(v) and getattr(v, "__module__", None) == modname)
            hint = f" (functions defined there: {', '.join(defined)})" if defined else ""
            raise CLIError(f"{path}:1: no function named {func!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CLIError(f"{path}: {func!r} is a {type(obj).__name__}, not a function")
    return obj, path


_IMPORTED = set()   # the user's own modules that importing the target imported (-o never writes over one)


def _user_files(names):
    """Source files of the modules `names`, but those installed with Python (NumPy, ...)."""
    installed = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    files = set()
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and not os.path.realpath(file).startswith(installed):
            files.add(os.path.abspath(file))
    return files


def _user_frame(err, path):
    where = f"{path}:1"
    for frame in traceback.extract_tb(err.__traceback__):
        if os.path.abspath(frame.filename) == path:
            where = f"{path}:{frame.lineno}"
    return where


def params_of(fn):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise CLIError(f"cannot read the parameters of {fn!r}") from None
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise CLIError(f"{_where(fn)}: {fn.__name__} takes *{p.name}: the command line needs named "
                           "parameters")
    return [p.name for p in params]


def _where(fn):
    try:
        return f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"
    except (OSError, TypeError):
        return getattr(fn, "__name__", "?")


def argnums_from(args, params, default=(0,)):
    if args.wrt and args.argnums:
        raise CLIError("give --wrt or --argnums, not both", EXIT_USAGE)
    if args.wrt:
        out = []
        for name in args.wrt.split(","):
            name = name.strip()
            if name not in params:
                raise CLIError(f"--wrt {name!r}: the function's parameters are {', '.join(params)}", EXIT_USAGE)
            out.append(params.index(name))
        return tuple(out)
    if args.argnums:
        try:
            out = tuple(int(a) for a in args.argnums.split(","))
        except ValueError:
            raise CLIError(f"--argnums expects integers such as 0,1; got {args.argnums!r}", EXIT_USAGE) from None
        for i in out:
            if not 0 <= i < len(params):
                raise CLIError(f"--argnums {i}: the function takes {len(params)} argument(s)", EXIT_USAGE)
        return out
    return default


# ---- commands --------------------------------------------------------------------------------
def _generate(args, mode=None):
    fn, path = load_function(args.target)
    params = params_of(fn)
    if not params:
        raise CLIError(f"{_where(fn)}: {fn.__name__} takes no arguments: nothing to differentiate")
    argnums = argnums_from(args, params)
    try:
        types = (standalone.parse_signature(args.signature, params) if args.signature
                 else standalone.default_types(fn))
    except standalone.UsageError as err:
        raise CLIError(str(err), EXIT_USAGE) from None
    mode = mode or args.mode
    try:
        gen = standalone.Generated(fn, params, types, argnums, mode, args.order)
    except standalone.UsageError as err:
        raise CLIError(str(err), EXIT_USAGE) from None
    return gen, fn, path


def _command_line(args):
    parts = ["s2sad", args.command, args.target]
    for opt in ("wrt", "argnums", "signature"):
        value = getattr(args, opt, None)
        if value:
            parts += [f"--{opt}", repr(value) if " " in value else value]
    parts += ["--mode", args.mode]
    if args.order != 1:
        parts += ["--order", str(args.order)]
    if getattr(args, "numba", False):
        parts.append("--numba")
    return " ".join(parts)


def cmd_emit(args, out):
    gen, fn, path = _generate(args)
    source, warnings = standalone.emit_module(
        gen, numba=args.numba, version=_version(),
        header_lines=[f"source: {path}:{fn.__name__}", f"command: {_command_line(args)}"])
    if args.numba:
        reason = standalone.numba_reason(source, gen)
        if reason:
            warnings.append(f"Numba cannot compile the emitted {gen.entry()[0]} for these argument types, so "
                            f"calling it will raise; emit without --numba to run it as plain Python. "
                            f"Numba says:\n{reason}")
    for w in warnings:
        print(f"s2sad: warning: {w}", file=sys.stderr)
    if args.output and args.output != "-":
        write_output(args.output, source, _input_files(gen, path), suggest=f"{gen.entry()[0]}.py")
        print(f"s2sad: wrote {args.output} ({gen.entry()[0]})", file=sys.stderr)
    else:
        out.write(source)
    return 0


def _input_files(gen, path):
    """The files s2sad read: the target file, the user's modules it imported, and each file a
    differentiated function comes from."""
    target = os.path.basename(path)
    files = {file: f"a module {target} imports" for file in _IMPORTED}
    for func in gen.module.sources.values():
        try:
            file = inspect.getsourcefile(func.fn)
        except TypeError:
            continue  # a generated function (--order > 1) or a NumPy ufunc: no file
        if file:
            files[os.path.abspath(file)] = f"the source of {func.name}"
    files[path] = "the target file"
    return files


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def write_output(output, text, inputs, suggest="derivative.py"):
    """Write `text` to `output` atomically (a temporary file in the same folder, then os.replace):
    an interrupted or failed write leaves the old file as it was. Never over an input file
    (`inputs`: {path: what it is}). A device such as /dev/null is written to as it is."""
    if os.path.isdir(output):
        raise CLIError(f"-o {output}: is a directory\n  hint: name the file to write, e.g. "
                       f"-o {os.path.join(output, suggest)}", EXIT_USAGE)
    for source, what in sorted(inputs.items()):
        if os.path.exists(output) and _same_file(output, source):
            other = os.path.join(os.path.dirname(output), suggest)
            if any(os.path.exists(other) and _same_file(other, f) for f in inputs):
                other = os.path.join(os.path.dirname(output), "s2sad_" + suggest)
            raise CLIError(f"-o {output}: is an input file, {what} ({source}); s2sad does not write over "
                           f"the code it reads\n  hint: write the derivative to a file of its own, e.g. -o {other}",
                           EXIT_USAGE)
    target = os.path.realpath(output)  # a symbolic link keeps pointing at the file it names
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        shown = os.path.dirname(output) or folder
        if os.path.exists(folder):
            raise CLIError(f"-o {output}: {shown} is a file, not a folder\n  hint: write into a folder, "
                           f"e.g. -o {suggest}", EXIT_USAGE)
        raise CLIError(f"-o {output}: the folder {shown} does not exist\n"
                       f"  hint: create it first (mkdir -p {shown})", EXIT_USAGE)
    tmp = None
    try:
        if os.path.exists(target) and not os.path.isfile(target):
            with open(target, "w") as fh:   # /dev/null, a pipe: replacing it would remove the device
                fh.write(text)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if os.path.exists(target):
            mode = stat.S_IMODE(os.stat(target).st_mode)      # an existing file keeps its permissions
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask                              # a new one gets open()'s
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise CLIError(f"-o {output}: cannot write: {err.strerror or err}\n  hint: check the folder's "
                       "permissions and free space, or write elsewhere") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def cmd_show(args, out):
    stage = args.stage or {"reverse": "adjoint", "forward": "tangent"}[args.mode]
    if stage == "normalized":
        fn, path = load_function(args.target)
        text = f"# s2sad: normalized form of {fn.__name__} ({path})\n\n" + emit.to_source(compiler.Function.of(fn).ir)
    else:
        gen, fn, path = _generate(args, mode="reverse" if stage == "adjoint" else "forward")
        text, _ = standalone.emit_module(
            gen, numba=args.numba, version=_version(), standalone=False,
            header_lines=[f"source: {path}:{fn.__name__}",
                          ("shown without the runtime helpers (Tape, push, pop, ...): "
                           "`s2sad emit` writes them into the file")])
    color = args.color == "always" or (args.color == "auto" and out.isatty())
    if color:
        try:
            from pygments import highlight
            from pygments.formatters import TerminalFormatter
            from pygments.lexers import PythonLexer
            text = highlight(text, PythonLexer(), TerminalFormatter())
        except ImportError:
            pass
    out.write(text)
    return 0


def _parse_args_literal(text):
    try:
        value = ast.literal_eval("(" + text + ",)") if text.strip() else ()
    except (ValueError, SyntaxError) as err:
        raise CLIError(f"--args {text!r} is not a list of Python literals ({err})", EXIT_USAGE) from None

    def convert(v):
        if isinstance(v, (list, tuple)):
            try:
                return np.array(v, dtype=float)
            except (TypeError, ValueError):
                raise CLIError(f"--args: {v!r} is not a numeric (rectangular) list", EXIT_USAGE) from None
        return v
    return [convert(v) for v in value]


def _fd(fn, args, i, index, eps):
    def at(delta):
        a = list(args)
        if isinstance(a[i], np.ndarray):
            x = a[i].copy()
            x[index] += delta
            a[i] = x
        else:
            a[i] = a[i] + delta
        return float(fn(*a))
    return (at(eps) - at(-eps)) / (2 * eps)


def cmd_check(args, out):
    import s2sad
    fn, path = load_function(args.target)
    params = params_of(fn)
    values = _parse_args_literal(args.args)
    if len(values) != len(params):
        raise CLIError(f"--args gives {len(values)} value(s) but {fn.__name__} takes {len(params)} "
                       f"({', '.join(params)})", EXIT_USAGE)
    floats = tuple(i for i, v in enumerate(values)
                   if isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind == "f"))
    argnums = argnums_from(args, params, default=floats)
    if not argnums:
        raise CLIError("no float arguments to differentiate with respect to (write 1.0, not 1)", EXIT_USAGE)
    for i in argnums:
        if isinstance(values[i], int) and not isinstance(values[i], bool):
            values[i] = float(values[i])
    try:
        value = fn(*values)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's code may raise anything
        raise CLIError(f"{_user_frame(err, path)}: {fn.__name__}({args.args}) raised "
                       f"{type(err).__name__}: {err}") from None
    if np.ndim(value) != 0:
        raise CLIError(f"{fn.__name__} returned an array of shape {np.shape(value)}: check needs a scalar output")
    try:
        grads = s2sad.grad(fn, argnums=tuple(argnums))(*values)
    except S2SADError:
        raise
    except Exception as err:  # noqa: BLE001 - generated code evaluates the user's math: ZeroDivisionError, ...
        raise CLIError(f"{_where(fn)}: computing the derivative of {fn.__name__}({args.args}) raised "
                       f"{type(err).__name__}: {err}\n  hint: the derivative may be undefined there "
                       "(math.sqrt at 0, a division by zero); try other --args") from None
    rows, bad = [], 0
    for i, g in zip(argnums, grads):
        for index in (np.ndindex(np.shape(values[i])) if isinstance(values[i], np.ndarray) else [()]):
            got = float(np.asarray(g)[index]) if index != () else float(g)
            try:
                want = _fd(fn, values, i, index, args.eps)
            except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's code may raise anything
                raise CLIError(f"{_user_frame(err, path)}: {fn.__name__} raised {type(err).__name__}: {err} "
                               f"at {params[i]}{list(index) if index != () else ''} +/- eps={args.eps}\n"
                               "  hint: pick --args inside the function's domain, or a smaller --eps") from None
            err = abs(got - want)
            ok = err <= args.atol + args.rtol * abs(want)
            bad += not ok
            idx = ",".join(map(str, index)) if index != () else "-"
            rows.append((params[i], idx, f"{got:.10g}", f"{want:.10g}", f"{err:.3g}", "ok" if ok else "MISMATCH"))
    head = ("argument", "index", "s2sad", "finite difference", "abs error", "")
    widths = [max(len(r[k]) for r in rows + [head]) for k in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    shown = ", ".join(repr(np.asarray(v).tolist()) if isinstance(v, np.ndarray) else repr(v) for v in values)
    out.write(f"{fn.__name__}({shown}) = {float(value):.10g}\n")
    out.write(fmt.format(*head).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths[:-1]) + "\n")
    for r in rows:
        out.write(fmt.format(*r).rstrip() + "\n")
    if bad:
        out.write(f"{bad} of {len(rows)} entries differ from central finite differences "
                  f"(eps={args.eps}, atol={args.atol}, rtol={args.rtol})\n")
        print(f"s2sad: check failed: {bad} gradient entr{'y' if bad == 1 else 'ies'} of {fn.__name__} "
              f"differ{'s' if bad == 1 else ''} from finite differences", file=sys.stderr)
        return EXIT_ERROR
    out.write(f"all {len(rows)} entries match central finite differences\n")
    return 0


def cache_dir():
    """s2sad.cache_dir() where the disk cache exists; otherwise the same path rule, without creating it."""
    import s2sad
    if callable(getattr(s2sad, "cache_dir", None)):
        try:
            return str(s2sad.cache_dir(create=False))
        except TypeError:
            return str(s2sad.cache_dir())
    return os.path.abspath(os.environ.get("S2SAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "s2sad"))


def cmd_cache(args, out):
    path = cache_dir()
    try:
        if args.action == "info":
            files = cache.cache_files()   # generated modules and Numba's files, no symlink followed
            size = sum(n for _, n in files)
            out.write(f"cache directory: {path}{'' if os.path.isdir(path) else ' (does not exist yet)'}\n")
            out.write(f"files: {len(files)}\nsize: {size} bytes ({size / 1024:.1f} KiB)\n")
            return 0
        removed = cache.clear_cache()
    except S2SADError as err:
        raise CLIError(str(err)) from None
    out.write(f"removed {removed} file(s) from {path}\n")
    return 0


# ---- argument parsing ----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        match = re.match(r"argument (\S+?)(/\S+)?: expected one argument$", message)
        if match:
            message += (f"\n  hint: a value that starts with '-' needs an equals sign: "
                        f"{match.group(1)}=-VALUE")
        raise CLIError(f"{self.prog}: {message}", EXIT_USAGE)


def _number(positive=False):
    """An argparse type: a finite float, > 0 (`positive`) or >= 0."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number such as 1e-6, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(
                f"must be a {'positive' if positive else 'non-negative'} finite number, got {text!r}"
                + ("\n  hint: a central difference divides by 2 * eps; the default is 1e-6" if positive else ""))
        return value
    parse.__name__ = "number"
    return parse


def _target_options(p):
    p.add_argument("target", help="path/to/file.py:function")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--wrt", help="comma-separated parameter names to differentiate with respect to")
    which.add_argument("--argnums", help="comma-separated argument positions (default 0)")
    p.add_argument("--mode", choices=("reverse", "forward"), default="reverse")
    p.add_argument("--order", type=int, default=1, help="derivative order (> 1: one scalar argument)")
    p.add_argument("--signature", help='argument types, e.g. "x: float, A: float64[:, :]" (default: float)')
    p.add_argument("--numba", action="store_true", help="decorate every emitted function with numba.njit")


def build_parser():
    parser = _Parser(prog="s2sad", description="Source-to-source automatic differentiation of Python + NumPy.")
    parser.add_argument("--version", action="version", version=f"s2sad {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{emit,show,check,cache}", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser("emit", help="write a standalone Python module with the derivative")
    _target_options(p)
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p = sub.add_parser("show", help="print the generated code")
    _target_options(p)
    p.add_argument("--stage", choices=("normalized", "adjoint", "tangent"),
                   help="normalized: the desugared input; adjoint: reverse mode; tangent: forward mode")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p = sub.add_parser("check", help="compare s2sad's gradient with central finite differences")
    p.add_argument("target", help="path/to/file.py:function")
    p.add_argument("--args", required=True, help='the arguments, as Python literals: "1.5, [1, 2]"')
    which = p.add_mutually_exclusive_group()
    which.add_argument("--wrt")
    which.add_argument("--argnums")
    p.add_argument("--eps", type=_number(positive=True), default=1e-6,
                   help="finite-difference step (> 0, default 1e-6)")
    p.add_argument("--atol", type=_number(), default=1e-5, help="absolute tolerance (>= 0, default 1e-5)")
    p.add_argument("--rtol", type=_number(), default=1e-5, help="relative tolerance (>= 0, default 1e-5)")
    p = sub.add_parser("cache", help="the on-disk cache of generated code")
    p.add_argument("action", choices=("info", "clear"))
    return parser


COMMANDS = {"emit": cmd_emit, "show": cmd_show, "check": cmd_check, "cache": cmd_cache}


def main(argv=None, out=None):
    out = out or sys.stdout
    debug = os.environ.get("S2SAD_TRACEBACK", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out)
    except CLIError as err:
        print(f"s2sad: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:
        if debug:
            raise
        if isinstance(err, S2SADError):
            print(f"s2sad: error: {err}", file=sys.stderr)
            return EXIT_ERROR
        print(f"s2sad: internal error: {type(err).__name__}: {err}\n"
              "(this is probably a bug in s2sad; run with S2SAD_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR
