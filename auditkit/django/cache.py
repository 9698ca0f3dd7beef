"""The cache recorder: every operation on every configured cache, ``CACHES`` unchanged.

Django creates cache backends lazily, one per alias and thread, through
``caches.create_connection``. :func:`install` wraps that method (and instruments backends that
already exist) so that each new backend gets a *recording class*: a subclass of its own class,
created once per backend class, whose public operations — ``get``, ``set``, ``add``,
``delete``, ``get_many``, ``set_many``, ``delete_many``, ``get_or_set``, ``incr``, ``decr``,
``touch``, ``has_key``, ``clear`` — time the call and note it on the current capture. The
instance keeps its class's behaviour and ``isinstance`` still holds; ``caches`` and ``cache``
are the same objects as before. The async variants of ``BaseCache`` call the sync ones, so
they are recorded as those.

Only the outermost operation is recorded: ``BaseCache.get_or_set`` calls ``get`` and ``add``,
``get_many`` calls ``get`` per key, ``incr`` calls ``get`` and ``set`` — they count once, as
``get_or_set``, ``get_many`` and ``incr``. A hit is known exactly: ``get`` asks the backend
with a private sentinel as the default, so a stored ``None`` is a hit; ``get_or_set`` is a hit
when its first ``get`` was one; ``get_many`` counts hits per key. Writes have ``hit`` null.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from auditkit.django.context import CURRENT, UNSAMPLED

__all__ = ["OPERATIONS", "install", "uninstall"]

#: the operations recorded (BaseCache's public API)
OPERATIONS = (
    "get",
    "set",
    "add",
    "delete",
    "get_many",
    "set_many",
    "delete_many",
    "get_or_set",
    "incr",
    "decr",
    "touch",
    "has_key",
    "clear",
)
_WRITES_WITH_TTL = {"set", "add", "touch", "get_or_set", "set_many"}
_MISSING = object()


class _Op:
    """The outermost operation in progress (its first inner ``get`` decides a get_or_set hit)."""

    __slots__ = ("hit",)

    def __init__(self) -> None:
        self.hit: bool | None = None


_OUTER: contextvars.ContextVar[_Op | None] = contextvars.ContextVar(
    "auditkit_cache_op", default=None
)
_state: dict[str, Any] = {"untracked": None, "original": None}
_classes: dict[type, type] = {}


def _ttl(backend: Any, timeout: Any) -> float | None:
    from django.core.cache.backends.base import DEFAULT_TIMEOUT

    if timeout is DEFAULT_TIMEOUT:
        timeout = getattr(backend, "default_timeout", None)
    return None if timeout is None else float(timeout)


#: each operation's parameters after ``self``, in order (BaseCache's signatures)
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "get": ("key", "default", "version"),
    "set": ("key", "value", "timeout", "version"),
    "add": ("key", "value", "timeout", "version"),
    "delete": ("key", "version"),
    "get_many": ("keys", "version"),
    "set_many": ("data", "timeout", "version"),
    "delete_many": ("keys", "version"),
    "get_or_set": ("key", "default", "timeout", "version"),
    "incr": ("key", "delta", "version"),
    "decr": ("key", "delta", "version"),
    "touch": ("key", "timeout", "version"),
    "has_key": ("key", "version"),
    "clear": (),
}


def _note(
    backend: Any,
    op: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    hit: bool | None,
    result: Any,
    ms: float,
    error: str | None,
) -> None:
    capture = CURRENT.get()
    if capture is None and _state["untracked"] is None:
        return
    bound = dict(zip(_SIGNATURES[op], args, strict=False))
    bound.update(kwargs)
    key: Any = bound.get("key")
    keys = hits = None
    if op in ("get_many", "delete_many"):
        names = list(bound.get("keys") or [])
        keys, key = len(names), (names[0] if names else None)
        if op == "get_many" and isinstance(result, dict):
            hits = len(result)
    elif op == "set_many":
        data = bound.get("data") or {}
        keys, key = len(data), next(iter(data), None)
    ttl = None
    if op in _WRITES_WITH_TTL:
        ttl = _ttl(backend, bound.get("timeout", _default_timeout()))
    version = bound.get("version")
    entry = (
        time.time(),
        op,
        key if key is None or isinstance(key, str | int) else str(key),
        hit,
        ttl,
        ms,
        getattr(backend, "_auditkit_alias", None),
        getattr(backend, "_auditkit_backend", None),
        version,
        keys,
        hits,
        error,
    )
    if capture is None:
        _state["untracked"](entry)
        return
    capture.cache_ms += ms
    capture.cache_calls += 1
    if op == "get_many" and keys is not None and hits is not None:
        capture.cache_hits += hits
        capture.cache_misses += keys - hits
    elif hit is True:
        capture.cache_hits += 1
    elif hit is False:
        capture.cache_misses += 1
    capture.cache_ops.append(entry)


def _default_timeout() -> Any:
    from django.core.cache.backends.base import DEFAULT_TIMEOUT

    return DEFAULT_TIMEOUT


def _wrap(op: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if op == "get":

        @functools.wraps(method)
        def get(self: Any, key: Any, default: Any = None, version: Any = None) -> Any:
            value: Any = _MISSING
            outer = _OUTER.get()
            if outer is not None:  # inside another operation: report the hit, record nothing
                value = method(self, key, _MISSING, version=version)
                if outer.hit is None:
                    outer.hit = value is not _MISSING
                return default if value is _MISSING else value
            if CURRENT.get() is None and _state["untracked"] is None:
                return method(self, key, default, version=version)
            token = _OUTER.set(_Op())
            t0 = time.perf_counter()
            error = None
            try:
                value = method(self, key, _MISSING, version=version)
            except Exception as exc:
                error = type(exc).__name__
                raise
            finally:
                ms = (time.perf_counter() - t0) * 1000.0
                _OUTER.reset(token)
                hit = None if error else value is not _MISSING
                _note(self, "get", (key, default, version), {}, hit, None, ms, error)
            return default if value is _MISSING else value

        return get

    @functools.wraps(method)
    def operation(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _OUTER.get() is not None or (CURRENT.get() is None and _state["untracked"] is None):
            return method(self, *args, **kwargs)
        state = _Op()
        token = _OUTER.set(state)
        t0 = time.perf_counter()
        error = None
        result: Any = None
        try:
            result = method(self, *args, **kwargs)
            return result
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            _OUTER.reset(token)
            hit: bool | None = None
            if op == "has_key" and error is None:
                hit = bool(result)
            elif op == "get_or_set":
                hit = state.hit
            _note(self, op, args, kwargs, hit, result, ms, error)

    return operation


def recording_class(cls: type) -> type:
    """The recording subclass of cache backend class ``cls`` (created once per class)."""
    if getattr(cls, "_auditkit_recording", False):
        return cls
    sub = _classes.get(cls)
    if sub is None:
        namespace: dict[str, Any] = {"_auditkit_recording": True, "__module__": cls.__module__}
        for op in OPERATIONS:
            method = getattr(cls, op, None)
            if callable(method):
                namespace[op] = _wrap(op, method)
        sub = type(cls.__name__, (cls,), namespace)
        sub.__qualname__ = cls.__qualname__
        _classes[cls] = sub
    return sub


def instrument(backend: Any, alias: str) -> Any:
    """Make ``backend`` (the cache of ``alias``) record its operations; returns it."""
    cls = type(backend)
    if not getattr(cls, "_auditkit_recording", False):
        backend._auditkit_backend = f"{cls.__module__}.{cls.__qualname__}"
        backend._auditkit_alias = alias
        # an exotic class whose layout forbids it is left as it is
        with contextlib.suppress(TypeError):
            backend.__class__ = recording_class(cls)
    return backend


def _untracked_sink(submit: Callable[[Any], bool]) -> Callable[[tuple[Any, ...]], None]:
    def sink(entry: tuple[Any, ...]) -> None:
        if UNSAMPLED.get():
            return
        common = {"pid": os.getpid(), "thread": threading.current_thread().name}
        submit(("cache", entry, common))

    return sink


def install(*, untracked: Callable[[Any], bool] | None) -> None:
    """Record every cache alias's operations from now on (see the module docstring)."""
    from django.core.cache import caches

    _state["untracked"] = _untracked_sink(untracked) if untracked is not None else None
    if _state["original"] is None:
        original = caches.create_connection

        def create_connection(alias: str) -> Any:
            return instrument(original(alias), alias)

        _state["original"] = original
        caches.create_connection = create_connection  # type: ignore[method-assign]
    for alias in caches.settings:
        existing = getattr(caches._connections, alias, None)
        if existing is not None:
            instrument(existing, alias)


def uninstall() -> None:
    """Stop instrumenting new backends (existing ones record nothing without a capture)."""
    from django.core.cache import caches

    _state["untracked"] = None
    if _state["original"] is not None:
        with contextlib.suppress(AttributeError):
            del caches.create_connection
        _state["original"] = None
