"""Modules imported when first used, not when a module that names them is imported.

``auditkit digest`` streams a log through NumPy and Arrow and prints a ranked profile: for a
PostgreSQL log it never needs pandas, yet every loader module says ``import pandas as pd``,
and importing pandas is a fifth of the command on the 100 MiB benchmark log. The command
calls :func:`defer` first: ``sys.modules["pandas"]`` then holds a stand-in, so each
``import pandas as pd`` binds the stand-in at no cost, and the first attribute anyone reads
(``pd.DataFrame``) imports pandas for real, copies its namespace onto the stand-in (later
reads are plain dictionary lookups) and leaves the real module in ``sys.modules``. Nothing
depends on pandas staying away: a file only pandas reads imports it in mid-command, and the
output is the same.

Arrow's C++ layer reads five objects of pandas the first time it converts anything
(:data:`PANDAS_SCALARS`); the stand-in answers them from pandas' compiled core, without
the rest (``light`` attributes). Arrow's own pandas check on ``pa.array(…)`` of Python or
NumPy values needs all of pandas: the block path builds such arrays with :mod:`auditkit.arrow`.

Why not :class:`importlib.util.LazyLoader`: on Python 3.11 every later ``import pandas``
reads the module's ``__spec__``, which makes a lazy module load at once.

What the import system must be told (:class:`_Finder`, first on ``sys.meta_path`` once
anything is deferred):

* submodules imported under the stand-in (its light attributes' homes) were bound to it, and
  a compiled one may have stored something on it (pandas' datetime C API capsule, which
  other compiled modules look up while pandas itself loads): the real module starts with
  them, before its ``__init__`` runs;
* a submodule import (``import pandas.api.types``) while the stand-in is in place imports
  the package when the import system reads the stand-in's ``__path__``, then asks for the
  submodule once more: it is handed back, not run twice;
* a digest's threads may reach the stand-in at once: one imports, the others wait.

For a command, before anything it imports: a library call leaves ``sys.modules`` alone.

Example::

    >>> defer("sys")  # already imported: nothing to defer
    False
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["PANDAS_SCALARS", "defer", "is_deferred"]

#: what Arrow's C++ layer reads of pandas the first time it converts anything (its
#: ``InitPandasStaticData``): NaT, NA and three scalar types, all defined in pandas' compiled
#: core. A stand-in for pandas answers these from that core, some 50 ms, where the first
#: ``to_numpy()`` of a digest would otherwise import the whole of pandas, some 200 ms.
#: They are the very objects pandas itself exports.
PANDAS_SCALARS = {
    "NaT": "pandas._libs.tslibs.nattype",
    "NA": "pandas._libs.missing",
    "Timestamp": "pandas._libs.tslibs.timestamps",
    "Timedelta": "pandas._libs.tslibs.timedeltas",
    "DateOffset": "pandas._libs.tslibs.offsets",
}


class _Deferred(types.ModuleType):
    """The stand-in of a module not imported yet (see the module's notes)."""

    def __getattr__(self, attr: str) -> Any:
        sub = sys.modules.get(f"{self.__name__}.{attr}")
        if sub is not None:
            # a submodule being imported under the stand-in (``import pkg.a.b as c`` reads
            # ``pkg.a`` before the import system binds it): what Python's own fallback gives
            return sub
        home = _LIGHT.get(self.__name__, {}).get(attr)
        if home is not None:
            value = getattr(_submodule(self, home), attr)
            setattr(self, attr, value)
            return value
        return getattr(_load(self), attr)


#: held while a stand-in imports (a digest's threads may reach it at once)
_LOCK = threading.RLock()


def _submodule(stand_in: _Deferred, name: str) -> types.ModuleType:
    """Import the submodule ``name`` of the package ``stand_in`` stands for, without running
    the package's own ``__init__`` (the import system finds it through ``__path__``)."""
    with _LOCK:
        if not isinstance(stand_in, _Deferred):  # imported whole meanwhile
            return importlib.import_module(name)
        vars(stand_in)["__path__"] = _PATHS[stand_in.__name__]
        try:
            return importlib.import_module(name)
        finally:
            del vars(stand_in)["__path__"]


def _load(stand_in: _Deferred) -> types.ModuleType:
    """Import the real module, copy its namespace onto ``stand_in`` and return it.

    The real module starts with what was set on the stand-in — the submodules imported
    under it (the import system bound them there, and finding them imported it does not
    bind them again) and whatever a compiled submodule stored on its package (pandas'
    datetime C API capsule, which other compiled modules look up as they load).
    """
    name = stand_in.__name__
    with _LOCK:
        if not isinstance(stand_in, _Deferred):  # another thread imported it meanwhile
            return sys.modules[name]
        _PREFILL[name] = {
            k: v for k, v in vars(stand_in).items() if not (k.startswith("__") and k.endswith("__"))
        }
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        try:
            real = importlib.import_module(name)
        finally:
            _PREFILL.pop(name, None)
        vars(stand_in).update(vars(real))
        stand_in.__class__ = types.ModuleType  # type: ignore[assignment]  # plain misses now
        return real


class _Finder(importlib.abc.MetaPathFinder):
    """The import system's side of the stand-ins, first on ``sys.meta_path``.

    * A deferred package being imported for real (:func:`_load`): its own spec, with a loader
      that starts the module with what was set on the stand-in (:class:`_Prefilled`).
    * A module asked for although already imported: that happens only when reading a
      stand-in's ``__path__`` imported its package in the middle of a submodule import (see
      the module's notes) — the module is handed back, not run again.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in _ROOTS:
            return None
        attrs = _PREFILL.get(fullname)
        if attrs is not None:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = _Prefilled(spec.loader, attrs)
                    return spec
            return None
        module = sys.modules.get(fullname)
        if module is None or isinstance(module, _Deferred):
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AlreadyLoaded(module), is_package=hasattr(module, "__path__")
        )


class _Prefilled(importlib.abc.Loader):
    """``loader``, with the module it runs starting with ``attrs`` in its namespace."""

    def __init__(self, loader: Any, attrs: dict[str, Any]) -> None:
        self.loader = loader
        self.attrs = attrs

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = self.loader.create_module(spec) or types.ModuleType(spec.name)
        vars(module).update(self.attrs)
        return module  # type: ignore[no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = self.loader  # the module's own loader from here on
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)


class _AlreadyLoaded(importlib.abc.Loader):
    """Hands back ``module``, already imported, keeping its own spec."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__  # the import system is about to overwrite it

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec
        module.__loader__ = getattr(self.spec, "loader", None)


_FINDER = _Finder()
#: the packages given to :func:`defer`: the only ones :data:`_FINDER` answers for
_ROOTS: set[str] = set()
#: per deferred package, the attributes its stand-in answers from a submodule
_LIGHT: dict[str, dict[str, str]] = {}
#: per deferred package with light attributes, where its submodules are
_PATHS: dict[str, list[str]] = {}
#: per package being imported for real, what its module starts with (see :func:`_load`)
_PREFILL: dict[str, dict[str, Any]] = {}


def defer(name: str, light: dict[str, str] | None = None) -> bool:
    """Put a stand-in for the module ``name`` in ``sys.modules`` that imports it on first use.

    ``light``: attributes the stand-in answers by importing only the submodule that defines
    them (attribute → submodule), not the whole package — for objects a package's
    ``__init__`` merely re-exports (see :data:`PANDAS_SCALARS`). Returns False, and changes
    nothing, when ``name`` is already imported.
    """
    if "." in name:
        raise ValueError(f"defer() takes a top-level package, not {name!r}")
    if name in sys.modules:
        return False
    _LIGHT[name] = dict(light or {})
    if light:
        spec = importlib.util.find_spec(name)  # finds the package, does not run it
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} is not an installed package: nothing to defer")
        _PATHS[name] = list(spec.submodule_search_locations)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    sys.modules[name] = _Deferred(name)
    _ROOTS.add(name.partition(".")[0])
    return True


def is_deferred(name: str) -> bool:
    """Whether ``name`` is still a stand-in, not imported for real."""
    return isinstance(sys.modules.get(name), _Deferred)
