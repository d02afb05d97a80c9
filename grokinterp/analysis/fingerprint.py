"""A fingerprint of the code that computes a measure, so the cache notices an edit.

:func:`code_fingerprint` hashes the source of a function and of every grokinterp
function, class member and constant it reaches: names it reads from its module (or from
a grokinterp module it reads attributes of), functions in its closure, and the members
of the chunk class (:class:`~grokinterp.analysis.checkpoints.Checkpoints`) it reads
(``ck.forward`` reaches the forward pass).  Code outside grokinterp (torch, numpy) is not
followed.  The walk may take in more than a measure really runs (a name it shares with
another member); it never leaves out code the measure calls through these routes.

>>> def f(x):
...     return x + 1
>>> code_fingerprint(f) == code_fingerprint(f), len(code_fingerprint(f))
(True, 16)
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import types
from collections.abc import Callable, Iterable, Iterator

__all__ = ["code_fingerprint"]

_CONSTANT_TYPES = (int, float, str, bytes, bool, tuple, frozenset, type(None))


def _ours(obj) -> bool:
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", "")
    return isinstance(module, str) and (module == "grokinterp" or module.startswith("grokinterp."))


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


@functools.lru_cache(maxsize=4096)
def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined where no source is kept (a REPL, exec)
        code = getattr(obj, "__code__", None)
        return repr(obj) if code is None else repr((code.co_code, code.co_consts, code.co_names))


def _functions_of(member) -> list[Callable]:
    """The plain functions behind a class member (method, property, cached_property)."""
    if isinstance(member, property):
        return [f for f in (member.fget, member.fset) if f is not None]
    if isinstance(member, functools.cached_property):
        return [member.func]
    if isinstance(member, (staticmethod, classmethod)):
        return [member.__func__]
    return [member] if inspect.isfunction(member) else []


class _Walk:
    def __init__(self, context: Iterable[type]):
        self.context = tuple(context)
        self.parts: dict[str, str] = {}

    def add(self, key: str, text: str) -> bool:
        if key in self.parts:
            return False
        self.parts[key] = text
        return True

    def function(self, fn: Callable, force: bool = False) -> None:
        fn = inspect.unwrap(fn)
        if not inspect.isfunction(fn) or not (force or _ours(fn)):
            return
        if fn.__code__.co_filename.startswith("<") and not force:
            return  # generated code (dataclass methods): its class's source covers it
        if not self.add(f"{fn.__module__}.{fn.__qualname__}", _source(fn)):
            return
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self.value(value)
        names = {name for code in _code_objects(fn.__code__) for name in code.co_names}
        for name in sorted(names):
            if name in fn.__globals__:
                value = fn.__globals__[name]
                if isinstance(value, types.ModuleType) and _ours(value):
                    for attr in sorted(names):
                        if hasattr(value, attr):
                            self.value(getattr(value, attr), f"{value.__name__}.{attr}")
                else:
                    self.value(value, f"{fn.__module__}.{name}")
            for cls in self.context:  # ck.<name>: the chunk's members it reads
                member = inspect.getattr_static(cls, name, None)
                for f in _functions_of(member):
                    self.function(f)

    def value(self, value, key: str = "") -> None:
        if inspect.isfunction(value) or inspect.ismethod(value):
            self.function(getattr(value, "__func__", value))
        elif inspect.isclass(value) and _ours(value):
            if self.add(f"{value.__module__}.{value.__qualname__}", _source(value)):
                for member in vars(value).values():
                    for f in _functions_of(member):
                        self.function(f)
        elif key and isinstance(value, _CONSTANT_TYPES) and key.startswith("grokinterp"):
            self.add(key, repr(value))


def code_fingerprint(
    fn: Callable, context: Iterable[type] = (), always: Iterable[Callable] = (), version: int = 0
) -> str:
    """A 16-hex-digit hash of ``fn``'s source and of the grokinterp code it reaches.

    context: classes whose members ``fn`` reads as attributes (followed by name);
    always: functions taken in whatever ``fn`` reads; version: an explicit number to bump.
    """
    walk = _Walk(context)
    walk.function(fn, force=True)
    for extra in always:
        walk.function(extra, force=True)
    digest = hashlib.sha256(f"version {version}\n".encode())
    for key in sorted(walk.parts):
        digest.update(f"{key}\n{walk.parts[key]}\n".encode())
    return digest.hexdigest()[:16]
