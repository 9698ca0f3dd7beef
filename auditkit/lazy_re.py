"""Regular expressions compiled when first used, not when their module is imported.

Every command imports every loader (detection asks each one whether it reads a file), and the
loaders hold some 250 module-level patterns — for EXPLAIN plans, MySQL, access logs, Locust…
— of which a given run uses a few dozen. Compiling them all cost about 30 ms of each start.
:func:`compile_later` returns a stand-in that compiles its pattern on first use and is then
as fast as the pattern itself (its methods are copied onto it).

The stand-in is not a :class:`re.Pattern`: call its methods (``RX.match(text)``,
``RX.sub(…)``, ``RX.pattern``), never pass it to ``re.match(RX, …)`` and the like.

Example::

    >>> WORD = compile_later(r"\\w+")
    >>> WORD.pattern
    '\\\\w+'
    >>> WORD.match("hello world").group()
    'hello'
"""

from __future__ import annotations

import re
from typing import Any, cast

__all__ = ["compile_later"]

#: what a compiled pattern offers, copied onto the stand-in once it is compiled
_METHODS = (
    "match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split", "scanner",
    "groups", "groupindex",
)  # fmt: skip


class _Later:
    """A pattern compiled on first use (see the module's notes)."""

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends ask for these: not a use
            raise AttributeError(name)
        compiled = re.compile(self.pattern, self.flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        self.flags = compiled.flags
        return getattr(compiled, name)

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _Later, (self.pattern, self.flags)

    def __repr__(self) -> str:
        return f"compile_later({self.pattern!r})"


def compile_later(pattern: str, flags: int | re.RegexFlag = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, done on the pattern's first use."""
    return cast("re.Pattern[str]", _Later(pattern, int(flags)))
