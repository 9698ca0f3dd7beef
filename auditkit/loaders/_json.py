"""JSON parsing for every loader: bounded nesting, one error type for every kind of bad JSON.

Python's :func:`json.loads` recurses once per nesting level, so a document nested a few
thousand levels deep (a fuzzer's favourite, or a corrupt export) raises ``RecursionError``
from deep inside the decoder — and code that walks the result recursively would fail next.
No real export nests anywhere near :data:`MAX_DEPTH` levels (an EXPLAIN plan of a 100-way
join is under 250), so :func:`loads` refuses deeper documents *before* decoding them, with a
:class:`json.JSONDecodeError` like any other invalid JSON: each loader already turns that into
a skipped record (JSON lines) or a clear error naming the file (one document).

It also folds the other ways decoding fails (an integer of more than 4,300 digits raises a
plain ``ValueError``) into ``JSONDecodeError``. Every JSON loader calls this module rather than
:mod:`json` directly::

    >>> from auditkit.loaders import _json
    >>> _json.loads('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> _json.loads("[" * 600 + "]" * 600)
    Traceback (most recent call last):
      ...
    json.decoder.JSONDecodeError: nested deeper than 512 levels: line 1 column 513 (char 512)
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from auditkit.lazy_re import compile_later

__all__ = ["MAX_DEPTH", "JSONDecodeError", "depth_exceeded", "loads"]

#: deepest nesting of arrays and objects accepted in one JSON document
MAX_DEPTH = 512

JSONDecodeError = json.JSONDecodeError

#: a JSON string (its content cannot open or close a level)
_STRING = compile_later(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def depth_exceeded(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The offset where ``text`` first nests deeper than ``limit``, or None.

    Cheap when it can be: a text with no more than ``limit`` opening brackets cannot nest
    deeper, so only suspicious texts are scanned (strings blanked, then a running sum).
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    blanked = _STRING.sub(lambda m: " " * len(m.group(0)), text)
    codes = np.frombuffer(blanked.encode("utf-32-le"), dtype=np.uint32)
    step = np.zeros(len(codes), dtype=np.int32)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    depth = np.cumsum(step, dtype=np.int64)
    over = np.flatnonzero(depth > limit)
    return int(over[0]) if len(over) else None


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """:func:`json.loads` that refuses nesting deeper than ``max_depth`` levels.

    Every failure — syntax, depth, a number too long to convert — raises
    :class:`json.JSONDecodeError` (a ``ValueError``), never ``RecursionError``.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", errors="replace")
    at = depth_exceeded(text, max_depth)
    if at is not None:
        raise JSONDecodeError(f"nested deeper than {max_depth} levels", text, at)
    try:
        return json.loads(text)
    except JSONDecodeError:
        raise
    except RecursionError:  # a very small recursion limit in the caller's process
        raise JSONDecodeError("nested too deep to decode", text, 0) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise JSONDecodeError(str(exc), text, 0) from None
