"""``auditkit.load(path)``: any supported file into canonical frames, its format sniffed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult

__all__ = ["load"]


def load(path: str | Path, format: str | None = None, **options: Any) -> LoadResult:
    """Load ``path`` with the loader for ``format`` (detected from the file when omitted).

    Returns a :class:`~auditkit.loaders.result.LoadResult`: ``.frame`` is the main canonical
    frame, ``.frames`` all of them, ``.report`` the parse report. Raises
    :class:`~auditkit.errors.UnknownFormatError` or :class:`~auditkit.errors.NothingParsedError`
    with the file, what was expected and the likely cause.

    Example::

        >>> result = load("data/sample/django/queries.log")   # doctest: +SKIP
        >>> result.frame[["duration_ms", "fingerprint"]].head()  # doctest: +SKIP
    """
    loader = get_loader(format or detect(path).format)
    return loader.load(path, **options)
