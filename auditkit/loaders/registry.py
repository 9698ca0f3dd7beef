"""The loader registry: every format auditkit reads, by name.

Loader modules register their class with :func:`register`; :func:`get_loader` answers an
unknown name with one error listing the known ones. The import list in
``auditkit/loaders/__init__.py`` decides which modules are loaded.
"""

from __future__ import annotations

from typing import TypeVar

from auditkit.errors import ConfigError
from auditkit.loaders.base import Loader

__all__ = ["all_loaders", "get_loader", "register"]

_LOADERS: dict[str, Loader] = {}

L = TypeVar("L", bound=type[Loader])


def register(cls: L) -> L:
    """Class decorator: make the loader available under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if cls.name in _LOADERS and type(_LOADERS[cls.name]) is not cls:
        raise TypeError(f"two loaders are called {cls.name!r}")
    _LOADERS[cls.name] = cls()
    return cls


def get_loader(name: str) -> Loader:
    """The loader for format ``name``."""
    try:
        return _LOADERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown format {name!r}", hint=f"known formats: {', '.join(sorted(_LOADERS))}"
        ) from None


def all_loaders() -> dict[str, Loader]:
    """Every registered loader by name, sorted."""
    return dict(sorted(_LOADERS.items()))
