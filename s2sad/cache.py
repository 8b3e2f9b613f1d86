"""The on-disk cache of generated modules.

Each generated module is written to `<cache dir>/s2sad_<hash>.py`, where the
hash covers s2sad's version and source, the generated source, a fingerprint of
the user globals injected into it (numbers and functions by value; a global
array by its type, as compiled code takes it as an argument) and the options.
Loading the module from a real file (rather than `exec` of a string) is what
lets Numba keep compiled machine code across processes, in
`<cache dir>/__pycache__` (whatever NUMBA_CACHE_DIR says; `numba_cache`).

Safety: the directory is created with mode 0o700 and refused if another user
owns it or if group/others can write to it. Each file starts with a header
holding the SHA-256 of the rest of the file; before running a file, s2sad
re-reads it once, checks owner, permissions, header and that the body is
exactly the source it would write now, and runs those verified bytes (so the
file cannot change between the check and the run). A truncated, tampered or
foreign file is deleted and written again, never executed. Numba's index and
machine-code files carry the SHA-256 of their name and content, checked
(with owner and mode) before Numba unpickles them: a damaged file, or one
function's file copied over another's, is reported and compiled again. Every
file is written with mode 0o600 whatever the umask, to a temporary file in
the same directory, then `os.link` (first writer wins, so several processes
compiling the same function at once all see one complete file) or
`os.replace`.

`S2SAD_CACHE_DIR` sets the directory (default: `$XDG_CACHE_HOME/s2sad` or
`~/.cache/s2sad`; where that cannot be made, HOME unset or not writable, a
per-user `s2sad-<uid>` directory of mode 0o700 in the temporary directory,
with a warning); `S2SAD_CACHE=0` turns the cache off (generated code is then
exec'd from memory and Numba compiles it in every process). `clear_cache`
removes s2sad's files only, without following symbolic links.
"""
import functools
import hashlib
import importlib.util
import linecache
import logging
import os
import shutil
import stat
import sys
import tempfile
import types
import warnings

from .errors import S2SADError
from .version import __version__

log = logging.getLogger("s2sad")

HEADER = "# s2sad-cache v1 sha256="
FORMAT = "1"


def _uid():
    return os.getuid() if hasattr(os, "getuid") else None


def _configured():
    """(the cache directory the environment names, whether S2SAD_CACHE_DIR named it); (None, False)
    where neither S2SAD_CACHE_DIR, XDG_CACHE_HOME nor a home directory gives one."""
    path = os.environ.get("S2SAD_CACHE_DIR")
    if path:
        return os.path.abspath(path), True
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if not home or home == "~" or not os.path.isabs(home):  # HOME unset and no password entry
            return None, False
        base = os.path.join(home, ".cache")
    return os.path.abspath(os.path.join(base, "s2sad")), False


def _fallback_dir():
    """A per-user directory under the system's temporary directory."""
    who = _uid() if _uid() is not None else (os.environ.get("USERNAME") or "user")
    return os.path.join(tempfile.gettempdir(), f"s2sad-{who}")


def _private_dir(path):
    """Create `path` (mode 0o700) if missing; raise OSError unless it is a real directory (not a
    symlink) of this user that group and others cannot write."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or not _safe(st):
        raise OSError(f"{path} is not a directory of this user closed to others")


def cache_dir(create=True):
    """The cache directory (a `str`), created with mode 0o700 when `create`.

    Without S2SAD_CACHE_DIR, where the default (`$XDG_CACHE_HOME/s2sad` or `~/.cache/s2sad`) cannot
    be made (HOME unset or not writable), a per-user directory in the temporary directory serves,
    with one warning saying so."""
    path, explicit = _configured()
    if not create:
        if path is not None and (explicit or os.path.isdir(path) or not os.path.isdir(_fallback_dir())):
            return path
        return _fallback_dir()
    if path is not None:
        try:
            if not os.path.isdir(path):
                os.makedirs(path, mode=0o700, exist_ok=True)
            return path
        except OSError as exc:
            if explicit:
                raise
            why = f"cannot create {path} ({exc.strerror or exc})"
    else:
        why = "no home directory (HOME is unset)"
    fallback = _fallback_dir()
    _private_dir(fallback)
    msg = f"s2sad: {why}; caching generated code in {fallback} instead (set S2SAD_CACHE_DIR to choose)"
    if msg not in _warned:
        _warned.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return fallback


def enabled():
    return os.environ.get("S2SAD_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def _owned(st):
    uid = _uid()
    return uid is None or st.st_uid == uid


def _safe(st):
    """True when a stat result belongs to this user and is not group/world writable."""
    return _owned(st) and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


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
    if pst is not None and stat.S_ISDIR(pst.st_mode) and not _safe(pst) and _owned(pst):
        try:  # ours, made group-writable under a umask of 002 (before s2sad set its modes itself)
            os.chmod(pycache, 0o700)
            pst = os.lstat(pycache)
        except OSError:
            pass
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
        if isinstance(value, np.ndarray):
            # a global array (or tuple of them) is an argument of the compiled code
            # (numba_backend._arrays_as_arguments), read at each call: its values are not part of the code
            return f"ndarray:{value.dtype.str}:{value.ndim}"
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


# ---- Numba's files: machine code compiled from the generated modules ---------------------------
NUMBA_HEADER = b"# s2sad-numba v1 sha256="


def numba_cache(py_func):
    """A Numba cache (for `dispatcher._cache`) of a generated function loaded from the cache directory.

    Its files live in `<cache dir>/__pycache__` whatever NUMBA_CACHE_DIR says (so that `s2sad cache`
    and the permission checks see them), are written with mode 0o600 whatever the umask, and each
    starts with a header holding the SHA-256 of its name and content: before Numba unpickles an
    index or loads machine code, s2sad checks owner, mode and hash, so a truncated file, or one
    function's file copied over another's, is not run: s2sad warns and Numba compiles again.
    None (no disk cache for it) where the directory cannot be made safe."""
    try:
        return _numba_classes()[0](py_func)
    except OSError as exc:
        _warn_once(f"s2sad: Numba's cache directory is unusable ({exc}); compiled code will not be cached")
        return None


class _BadFile(OSError):
    pass


def _read_private(path):
    """The bytes of a regular file of this user closed to others (no symlink followed), or raise
    FileNotFoundError / _BadFile(reason)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _BadFile(f"cannot open safely ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _BadFile("not a regular file")
        if not _safe(st):
            raise _BadFile("owned by another user or writable by group/others")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _sealed(name, payload):
    return NUMBA_HEADER + hashlib.sha256(name.encode() + b"\0" + payload).hexdigest().encode() + b"\n" + payload


def _unsealed(path):
    """The payload of a file `_sealed` for its own name, or raise FileNotFoundError / _BadFile."""
    data = _read_private(path)
    first, sep, payload = data.partition(b"\n")
    if not sep or not first.startswith(NUMBA_HEADER):
        raise _BadFile("missing or damaged header")
    if _sealed(os.path.basename(path), payload) != data:
        raise _BadFile("content does not match the hash it was written with (damaged, or another file copied here)")
    return payload


def _write_private(path, data):
    """Write `data` to `path` atomically, with mode 0o600 whatever the umask."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


@functools.cache
def _numba_classes():
    import pickle
    from numba.core import caching

    class Locator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(os.path.dirname(os.path.abspath(py_file)), "__pycache__")

        def ensure_cache_path(self):
            _private_dir(self._cache_path)

        def get_cache_path(self):
            return self._cache_path

    class Impl(caching.CompileResultCacheImpl):
        def __init__(self, py_func):  # Numba's, less the search for a locator (NUMBA_CACHE_DIR and others)
            self._lineno = py_func.__code__.co_firstlineno
            source = py_func.__code__.co_filename
            self._locator = Locator(py_func, source)
            self._locator.ensure_cache_path()
            fullname = f"{os.path.splitext(os.path.basename(source))[0]}.{py_func.__qualname__}"
            self._filename_base = self.get_filename_base(fullname, getattr(sys, "abiflags", ""))

    class Files(caching.IndexDataCacheFile):
        def _bad(self, path, why):
            log.warning("s2sad: not loading Numba's cache file %s: %s; compiling again", path, why)

        def _load_index(self):
            try:
                payload = _unsealed(self._index_path)
            except FileNotFoundError:
                return {}
            except _BadFile as bad:
                self._bad(self._index_path, bad)
                return {}
            version, _, data = payload.partition(b"\0")
            if version.decode(errors="replace") != self._version:
                return {}
            stamp, overloads = pickle.loads(data)
            return overloads if stamp == self._source_stamp else {}

        def _save_index(self, overloads):
            payload = self._version.encode() + b"\0" + self._dump((self._source_stamp, overloads))
            _write_private(self._index_path, _sealed(self._index_name, payload))

        def _load_data(self, name):
            path = self._data_path(name)
            try:
                payload = _unsealed(path)
            except _BadFile as bad:
                self._bad(path, bad)
                raise  # an OSError: Numba's `load` then compiles
            return pickle.loads(payload)

        def _save_data(self, name, data):
            _write_private(self._data_path(name), _sealed(name, self._dump(data)))

    class Cache(caching.FunctionCache):
        _impl_class = Impl

        def __init__(self, py_func):
            super().__init__(py_func)
            self._cache_file = Files(self._cache_path, self._impl.filename_base, self._impl.locator.get_source_stamp())

    return Cache, Locator


def _numba_leftovers(directory):
    """Where Numba put the machine code of s2sad's files when NUMBA_CACHE_DIR was set (s2sad now keeps
    it beside them): listed and cleared with the rest."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return None
    parent = os.path.basename(directory)
    digest = hashlib.sha1(os.path.abspath(directory).encode()).hexdigest()
    return os.path.join(os.path.abspath(root), f"{parent}_{digest}")


def _ours(name):
    return name.startswith(("s2sad_", ".tmp-"))


def _open_dir(path):
    """A descriptor of the directory `path` itself (no symlink followed at its last component), or
    None where it does not exist; raises S2SADError where it is not a directory of this user."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        kind = "a symbolic link" if os.path.islink(path) else f"not a directory s2sad can open ({exc.strerror})"
        raise S2SADError(f"not touching the cache directory {path}: it is {kind}\n"
                         "  hint: point S2SAD_CACHE_DIR at a real directory of your own") from None
    if not _owned(os.fstat(fd)):
        os.close(fd)
        raise S2SADError(f"not touching the cache directory {path}: another user owns it\n"
                         "  hint: point S2SAD_CACHE_DIR at a directory of your own")
    return fd


def _visit(path, action, prune=False, top=True):
    """Call action(dir fd, dir path, name, size) on each of s2sad's files under `path`, no symlink
    followed, while its directory is held open: s2sad_* files and temporaries at the top and in
    its __pycache__ (Numba's files), which `prune` then removes if it is empty."""
    fd = _open_dir(path)
    if fd is None:
        return
    try:
        subdirs = []
        for entry in list(os.scandir(fd)):
            st = entry.stat(follow_symlinks=False)
            if top and entry.name == "__pycache__" and stat.S_ISDIR(st.st_mode):
                subdirs.append(entry.name)
            elif _ours(entry.name) and not stat.S_ISDIR(st.st_mode):
                action(fd, path, entry.name, st.st_size if stat.S_ISREG(st.st_mode) else 0)
        for sub in subdirs:
            _visit(os.path.join(path, sub), action, top=False)
            if prune:
                try:
                    os.rmdir(sub, dir_fd=fd)  # only if empty: nothing of anyone else's goes
                except OSError:
                    pass
    finally:
        os.close(fd)


def _locations():
    """The cache directory, and the directory of NUMBA_CACHE_DIR where Numba put the machine code of
    its files when it chose (s2sad now keeps them beside the modules)."""
    directory = cache_dir(create=False)
    leftovers = _numba_leftovers(directory)
    return [directory] + ([leftovers] if leftovers else [])


def cache_files():
    """(path, size in bytes) of each file of s2sad's disk cache: generated modules, Numba's files."""
    found = []
    for location in _locations():
        _visit(location, lambda fd, path, name, size: found.append((os.path.join(path, name), size)))
    return found


def clear_cache():
    """Delete every cached generated module and Numba's compiled code for them. Returns the count of files removed.

    Only s2sad's own files go (s2sad_* and temporaries, in the directory, its __pycache__ and the
    matching directory of NUMBA_CACHE_DIR), each unlinked through its directory's descriptor: no
    symbolic link is followed, and a cache directory that is a link or another user's is refused
    with an S2SADError."""
    removed = []

    def unlink(fd, path, name, size):
        os.unlink(name, dir_fd=fd)
        removed.append(name)

    for location in _locations():
        _visit(location, unlink, prune=True)
        for name in [n for n in linecache.cache if n.startswith(location + os.sep)]:
            linecache.cache.pop(name, None)
    return len(removed)
