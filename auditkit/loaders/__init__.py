"""Loaders: one module per input format, each registering itself in the registry.

Every module in this package other than the infrastructure (``base``, ``result``, ``stream``,
``registry``, ``detect``) defines loaders and is imported here, so that the registry knows
every format. Use :func:`auditkit.load` rather than a loader directly.
"""

from __future__ import annotations

import importlib
import pkgutil

_INFRASTRUCTURE = {"base", "result", "stream", "registry", "detect"}

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _INFRASTRUCTURE and not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")
