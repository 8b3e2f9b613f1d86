"""The on-disk cache of generated modules.

Each generated module is written to `<cache dir>/s2sad_<hash>.py`, where the
hash covers s2sad's version, the generated source, a fingerprint of the user
globals injected into it (their values are frozen into Numba-compiled code)
and the options. Loading the module from a real file (rather than `exec` of a
string) is what lets `numba.njit(cache=True)` keep compiled machine code in
`<cache dir>/__pycache__` across processes.

Safety: the directory is created with mode 0o700 and refused if another user
owns it or if group/others can write to it. Each file starts with a header
holding the SHA-256 of the rest of the file; before running a file, s2sad
re-reads it once, checks owner, permissions, header and that the body is
exactly the source it would write now, and runs those verified bytes (so the
file cannot change between the check and the run). A truncated, tampered or
foreign file is deleted and written again, never executed. Writes go to a
temporary file in the same directory, then `os.link` (first writer wins, so
several processes compiling the same function at once all see one complete
file) or `os.replace` when replacing a bad file.

`S2SAD_CACHE_DIR` sets the directory (default: `$XDG_CACHE_HOME/s2sad` or
`~/.cache/s2sad`); `S2SAD_CACHE=0` turns the cache off (generated code is then
exec'd from memory and Numba compiles it in every process).
"""

import functools
import hashlib
import importlib.util
import linecache
import logging
import os
import shutil
import stat
import tempfile
import types

log = logging.getLogger("s2sad")

HEADER = "# s2sad-cache v1 sha256="
FORMAT = "1"


def _uid():
    return os.getuid() if hasattr(os, "getuid") else None


def cache_dir(create=True):
    """The cache directory (a `str`), created with mode 0o700 when `create`."""
    path = os.environ.get("S2SAD_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "s2sad")
    path = os.path.abspath(path)
    if create and not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def enabled():
    return os.environ.get("S2SAD_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def _safe(st):
    """True when a stat result belongs to this user and is not group/world writable."""
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return False
    return not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def usable_dir():
    """The cache directory if it is safe to execute files from, else None (with one log line why)."""
    if not enabled():
        return None
    try:
        path = cache_dir()
        st = os.stat(path)
    except OSError as exc:
        _warn_once(f"s2sad: cache directory unusable ({exc}); generated code will not be cached")
        return None
    if not stat.S_ISDIR(st.st_mode) or not _safe(st):
        _warn_once(f"s2sad: not using cache directory {path}: it must be a directory owned by this user and "
                   "not writable by group or others (chmod 700 it)")
        return None
    pycache = os.path.join(path, "__pycache__")  # Numba's pickled index files live here
    try:
        pst = os.lstat(pycache)
    except FileNotFoundError:
        pst = None
    if pst is not None and (not stat.S_ISDIR(pst.st_mode) or not _safe(pst)):
        _warn_once(f"s2sad: not using cache directory {path}: {pycache} is not a directory owned by this "
                   "user and closed to others")
        return None
    return path


_warned = set()


def _warn_once(msg):
    if msg not in _warned:
        _warned.add(msg)
        log.warning(msg)


def _version():
    from . import __version__
    return __version__


@functools.cache
def _package_digest():
    """A hash of s2sad's own source files. Compiled code depends on the runtime helpers and the
    Numba backend as much as on the generated source, so a changed s2sad (an editable install,
    a patched file) must not load machine code cached by the old one under the same version."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


def fingerprint(value, depth=0):
    """A process-independent description of an injected global (it affects compiled code)."""
    if depth > 4:
        return f"<deep {type(value).__qualname__}>"
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return f"np.{type(value).__name__}:{value!r}"
        if isinstance(value, np.ndarray) and depth == 0:
            # a global array is an argument of the compiled code (numba_backend._arrays_as_arguments),
            # read at each call: its values are not part of the code
            return f"ndarray:{value.dtype.str}:{value.ndim}"
        if isinstance(value, np.ndarray):  # inside a tuple: Numba may compile its values in
            data = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
            return f"ndarray:{value.dtype.str}:{value.shape}:{data}"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}(" + ",".join(fingerprint(v, depth + 1) for v in value) + ")"
    if isinstance(value, dict):
        items = sorted((repr(k), fingerprint(v, depth + 1)) for k, v in value.items())
        return "dict(" + ",".join(f"{k}={v}" for k, v in items) + ")"
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    fn = getattr(value, "py_func", value)  # a Numba dispatcher: fingerprint its Python function
    code = getattr(fn, "__code__", None)
    if code is not None:
        cells = tuple(c.cell_contents for c in (fn.__closure__ or ()) if _has_contents(c))
        return (f"function:{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}:"
                f"{_code_digest(code)}:{fingerprint(fn.__defaults__, depth + 1)}:{fingerprint(cells, depth + 1)}")
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    module = getattr(value, "__module__", None)
    if name and module and _importable(module, name, value):
        return f"object:{module}.{name}"
    # Anything else: its repr (which may hold an address, making the key per-process: safe, just uncached)
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _has_contents(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def _importable(module, name, value):
    import sys
    obj = sys.modules.get(module)
    for part in name.split("."):
        obj = getattr(obj, part, None)
    return obj is value


def _code_digest(code):
    h = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        h.update((_code_digest(const) if hasattr(const, "co_code") else repr(const)).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:16]


def key(source, injected=None, options=None):
    """The content hash naming a generated module's file."""
    h = hashlib.sha256()
    h.update(f"s2sad {_version()} ({_package_digest()}) format {FORMAT}\n".encode())
    h.update(source.encode())
    for name in sorted(injected or {}):
        h.update(f"\n{name}={fingerprint(injected[name])}".encode())
    h.update(f"\noptions={sorted((options or {}).items())!r}".encode())
    return h.hexdigest()


def _content(source):
    body = source.encode()
    return f"{HEADER}{hashlib.sha256(body).hexdigest()}\n".encode() + body


def _read_verified(path, expected):
    """The file's bytes if they are exactly `expected` and the file is ours and closed to others, else None.

    Returns None (file absent) or raises `_Bad(reason)`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink (ELOOP) or unreadable file
        raise _Bad(f"cannot open safely ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Bad("not a regular file")
        if not _safe(st):
            raise _Bad("owned by another user or writable by group/others")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(len(expected) + 1)
    finally:
        os.close(fd)
    first, sep, body = data.partition(b"\n")
    if not sep or not first.startswith(HEADER.encode()):
        raise _Bad("missing or damaged header")
    if hashlib.sha256(body).hexdigest().encode() != first[len(HEADER):]:
        raise _Bad("content does not match the hash in its header (truncated or edited)")
    if data != expected:
        raise _Bad("content differs from the generated source")
    return data


class _Bad(Exception):
    pass


def _write(directory, path, data, replace):
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process got there first: theirs is as good as ours
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem
                os.replace(tmp, path)
                tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def load(source, namespace, options=None):
    """Load `source` from its cache file as a fresh module whose globals include `namespace`.

    Returns the module's `__dict__`, or None when the cache is off or unusable
    (the caller then execs the source). `namespace` (runtime helpers and the
    user globals the code refers to) is set on the module before its code
    runs, so later njit compiles see it.
    """
    directory = usable_dir()
    if directory is None:
        return None
    digest = key(source, {k: v for k, v in namespace.items() if not k.startswith("__")}, options)
    name = f"s2sad_{digest[:40]}"
    path = os.path.join(directory, name + ".py")
    expected = _content(source)
    try:
        data = _read_verified(path, expected)
        if data is None:
            _write(directory, path, expected, replace=False)
            data = _read_verified(path, expected)
    except _Bad as bad:
        log.warning("s2sad: regenerating cache file %s: %s", path, bad)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            pass
        try:
            _write(directory, path, expected, replace=True)
            data = _read_verified(path, expected)
        except (_Bad, OSError) as again:
            log.warning("s2sad: cannot write a trusted cache file %s (%s); not caching it", path, again)
            return None
    except OSError as exc:
        _warn_once(f"s2sad: cannot write to the cache directory {directory} ({exc}); not caching")
        return None
    if data is None:
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(namespace)
    text = data.decode()
    # inspect.getsource reads generated functions back (higher-order derivatives): serve the verified text
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    # run the verified bytes, not a second read of the file (which could differ); no .pyc is written
    exec(compile(data, path, "exec"), module.__dict__)
    return module.__dict__


def clear_cache():
    """Delete every cached generated module and Numba's compiled code for them. Returns the count of files removed."""
    directory = cache_dir(create=False)
    if not os.path.isdir(directory):
        return 0
    removed = 0
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if entry == "__pycache__" and os.path.isdir(path) and not os.path.islink(path):
            removed += sum(len(files) for _, _, files in os.walk(path))
            shutil.rmtree(path, ignore_errors=True)
        elif entry.startswith(("s2sad_", ".tmp-")) and (os.path.islink(path) or os.path.isfile(path)):
            os.unlink(path)
            removed += 1
    for name in [n for n in linecache.cache if n.startswith(directory + os.sep)]:
        linecache.cache.pop(name, None)
    return removed
