"""Meta.indexes entries added by the index-advisor test.

Empty in the repository. The test writes the advisor's recommended ``Meta.indexes`` entries
into a copy of this file (next to the generated migration) and checks that ``makemigrations
--check`` then finds nothing to do: the recommended model change and migration agree.
"""

from __future__ import annotations

from typing import Any

ADDED: dict[str, list[Any]] = {}


def for_model(name: str) -> list[Any]:
    """The indexes added for model ``name`` (lower case)."""
    return list(ADDED.get(name, []))
