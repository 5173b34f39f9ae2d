"""What a step's cache key covers: its code, the project code it reaches, and the packages it uses.

``code_fingerprint(fn)`` walks the *loaded* code (not the files on disk, which
may differ from what runs): the function's bytecode, constants, names,
defaults and closure cells, then every global it names, transitively:

- a function or class of the project (a module that no installed distribution
  provides, or an editable one such as ``opsloop`` in development) is walked
  the same way, through its own module's globals;
- a project module used as ``helpers.f()`` contributes the attributes the
  code names on it (``co_names`` holds both ``helpers`` and ``f``);
- a simple constant (number, string, tuple of them...) contributes its ``repr``;
- anything provided by an installed distribution contributes that
  distribution's name and version (``importlib.metadata``), and the standard
  library the Python version.

Line numbers and file names are left out, so moving a function does not
invalidate its cache; changing one instruction, constant or default does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import os
import pickle
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["Fingerprint", "clear_caches", "code_fingerprint", "package_versions", "value_digest"]

_SIMPLE = (int, float, complex, str, bytes, bool, type(None), range)
_SITE_DIRS = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
)


_paths_seen: tuple[tuple[str, int], ...] = ()


def _path_stamps() -> tuple[tuple[str, int], ...]:
    out = []
    for p in sys.path:
        try:
            out.append((p, os.stat(p or ".").st_mtime_ns))
        except OSError:
            out.append((p, -1))
    return tuple(out)


def clear_caches(*, force: bool = False) -> None:
    """Forget the distribution map and versions if a package was installed, upgraded or
    removed since (any folder on ``sys.path`` changed), or always with ``force``."""
    global _paths_seen
    stamps = _path_stamps()
    if force or stamps != _paths_seen:
        _dist_map.cache_clear()
        _dist_version.cache_clear()
        _paths_seen = stamps


@functools.cache
def _dist_map() -> dict[str, list[str]]:
    # Reading every installed distribution's metadata costs ~0.5 s in a large environment:
    # done once, then again only when a folder on sys.path changes (see clear_caches).
    return {k: sorted(set(v)) for k, v in md.packages_distributions().items()}


@functools.cache
def _dist_version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "?"


def package_versions(top_level: str) -> list[tuple[str, str]]:
    """``[(distribution, version)]`` providing the top-level module ``top_level``."""
    return [(d, _dist_version(d)) for d in _dist_map().get(top_level, [])]


def _module_file(mod: types.ModuleType | None) -> str | None:
    f = getattr(mod, "__file__", None)
    return str(Path(f).resolve()) if f else None


def _is_walked(module_name: str) -> bool:
    """Project code (walked): not the standard library and not an installed, non-editable package."""
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "__builtin__"):
        return False
    if top == "opsloop":  # the platform itself: its version (a step's own code is always walked)
        return False
    if top == "__main__" or top not in _dist_map():
        return True
    f = _module_file(sys.modules.get(module_name))
    return bool(f) and not f.startswith(_SITE_DIRS)  # type: ignore[union-attr]


class Fingerprint:
    """One walk: accumulates a hash of the code reached and the packages it touched."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._seen: set[int] = set()
        self.packages: dict[str, str] = {}
        self.objects: list[str] = []  # qualified names walked, for `opsloop workflows show`

    # -- results ------------------------------------------------------------------------
    def code_digest(self) -> str:
        return self._h.hexdigest()

    def packages_digest(self) -> str:
        h = hashlib.sha256(sys.version.encode())
        for k in sorted(self.packages):
            h.update(f"\0{k}=={self.packages[k]}".encode())
        return h.hexdigest()

    # -- walking ------------------------------------------------------------------------
    def _put(self, *parts: object) -> None:
        for p in parts:
            self._h.update(repr(p).encode())
            self._h.update(b"\0")

    def _package(self, module_name: str) -> None:
        top = module_name.partition(".")[0]
        if top in sys.stdlib_module_names or top == "builtins":
            return
        for dist, ver in package_versions(top):
            self.packages[dist] = ver

    def add(self, obj: Any) -> None:
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, functools.partial):
            self._put("partial")
            self.add(obj.func)
            self.value(obj.args)
            self.value(obj.keywords)
            return
        if isinstance(obj, (staticmethod, classmethod)):
            self.add(obj.__func__)
            return
        if isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    self.add(f)
            return
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None and callable(obj):
            self.add(wrapped)
        fn = getattr(obj, "__opsloop_step_fn__", None)  # a Step: its function
        if fn is not None:
            self.add(fn)
            return
        module = getattr(obj, "__module__", None)
        if isinstance(obj, types.ModuleType):
            self._put("module", obj.__name__)
            self._package(obj.__name__)
            return
        if isinstance(obj, (types.FunctionType, type)) and isinstance(module, str):
            self._package(module)  # an installed distribution's version, walked or not
            if not _is_walked(module):
                self._put("ext", module, getattr(obj, "__qualname__", ""))
                return
            self.objects.append(f"{module}:{getattr(obj, '__qualname__', '')}")
            if isinstance(obj, types.FunctionType):
                self._function(obj)
            else:
                self._class(obj)
            return
        if isinstance(obj, types.BuiltinFunctionType | types.MethodType):
            self._put("builtin", getattr(obj, "__module__", None), getattr(obj, "__qualname__", ""))
            if isinstance(module, str):
                self._package(module)
            if isinstance(obj, types.MethodType):
                self.add(obj.__func__)
            return
        self.value(obj)

    def value(self, v: Any) -> None:
        """A global or constant: simple values by repr, containers item by item, others by type."""
        if isinstance(v, _SIMPLE):
            self._put(type(v).__name__, v)
        elif isinstance(v, (tuple, list, set, frozenset)):
            items: Iterable[Any] = sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v
            self._put(type(v).__name__, len(v))
            for x in items:
                self.value(x)
        elif isinstance(v, dict):
            self._put("dict", len(v))
            for k in sorted(v, key=repr):
                self.value(k)
                self.value(v[k])
        elif callable(v) or isinstance(v, types.ModuleType):
            self.add(v)
        else:  # an instance: its class (code), and its repr when that is stable
            self.add(type(v))
            r = repr(v)
            self._put("obj", r if " at 0x" not in r else type(v).__qualname__)

    def _code(self, co: types.CodeType, globals_: dict[str, Any], builtins_: Any) -> None:
        self._put(
            co.co_code,
            co.co_names,
            co.co_varnames,
            co.co_freevars,
            co.co_cellvars,
            co.co_argcount,
            co.co_kwonlyargcount,
            co.co_flags,
        )
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                self._code(c, globals_, builtins_)
            else:
                self.value(c)
        for name in co.co_names:
            if name in globals_:
                g = globals_[name]
                if isinstance(g, types.ModuleType) and _is_walked(g.__name__):
                    # ``helpers.f()``: the attributes the code names on the project module.
                    self._put("mod", g.__name__)
                    self._package(g.__name__)
                    for attr in co.co_names:
                        if attr in vars(g):
                            self._put(attr)
                            self.add(vars(g)[attr])
                else:
                    self._put(name)
                    self.add(g)

    def _function(self, fn: types.FunctionType) -> None:
        self._code(fn.__code__, fn.__globals__, getattr(fn, "__builtins__", {}))
        self.value(fn.__defaults__)
        self.value(fn.__kwdefaults__)
        for cell in fn.__closure__ or ():
            try:
                self.value(cell.cell_contents)
            except ValueError:  # an empty cell
                self._put("empty-cell")

    def _class(self, cls: type) -> None:
        self._put("class", cls.__qualname__)
        for base in cls.__bases__:
            if base is not object:
                self.add(base)
        for k, v in sorted(vars(cls).items()):
            if k in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__"):
                continue
            if k.startswith("__") and k.endswith("__") and not callable(v):
                continue
            self._put(k)
            self.value(v)


def code_fingerprint(fns: Iterable[Callable[..., Any]]) -> Fingerprint:
    """Walk ``fns`` (a step's function and anything else it declares) and what they reach."""
    fp = Fingerprint()
    for fn in fns:
        fn = getattr(fn, "__opsloop_step_fn__", fn)
        if isinstance(fn, types.FunctionType):  # the step itself is walked wherever it lives
            fp._seen.add(id(fn))
            fp._package(fn.__module__)
            fp.objects.append(f"{fn.__module__}:{fn.__qualname__}")
            fp._function(fn)
        else:
            fp.add(fn)
    return fp


def value_digest(v: Any) -> str:
    """A parameter's content hash: files and folders (``Path``) by their bytes, values by repr."""
    h = hashlib.sha256()
    _hash_value(h, v)
    return h.hexdigest()


def _hash_value(h: Any, v: Any) -> None:
    if isinstance(v, Path):
        if v.is_dir():
            h.update(b"dir")
            for f in sorted(x for x in v.rglob("*") if x.is_file()):
                h.update(f.relative_to(v).as_posix().encode() + b"\0")
                _hash_file(h, f)
        elif v.is_file():
            h.update(b"file")
            _hash_file(h, v)
        else:
            h.update(b"missing:" + str(v).encode())
        return
    if isinstance(v, (list, tuple)):
        h.update(f"{type(v).__name__}{len(v)}".encode())
        for x in v:
            _hash_value(h, x)
        return
    if isinstance(v, dict):
        h.update(f"dict{len(v)}".encode())
        for k in sorted(v, key=repr):
            _hash_value(h, k)
            _hash_value(h, v[k])
        return
    r = repr(v)
    if " at 0x" in r:  # no stable repr: its pickle
        r = hashlib.sha256(pickle.dumps(v, protocol=5)).hexdigest()
    h.update(f"{type(v).__module__}.{type(v).__qualname__}:{r}\0".encode())


def _hash_file(h: Any, f: Path) -> None:
    with open(f, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
