"""Django's index naming rules, without a configured Django project.

Django names the indexes it creates from the table, the columns and an MD5 digest of them:

* indexes of fields (``ForeignKey``, ``db_index=True``, ``unique=True`` added later) —
  ``<table>_<columns>_<digest8><suffix>`` (``BaseDatabaseSchemaEditor._create_index_name``),
  e.g. ``shop_order_customer_id_a1b2c3d4``; ``_like`` for the ``varchar_pattern_ops`` twin of a
  CharField index on PostgreSQL, ``_uniq`` for unique constraints;
* unnamed ``Meta.indexes`` — ``<table[:11]>_<column[:7]>_<digest6>_idx``
  (``Index.set_name_with_model``), at most 30 characters.

Recomputing the digest recognises an automatic index *exactly* (not by a pattern), and names a
recommended index the way Django itself would.

    >>> auto_index_name("shop_order", ["customer_id"]).startswith("shop_order_customer_id_")
    True
    >>> len(meta_index_name("shop_order", ["status", "-created_at"])) <= 30
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "MAX_NAME_LENGTH",
    "auto_index_name",
    "is_auto_index_name",
    "meta_index_name",
    "names_digest",
]

#: PostgreSQL's identifier limit (NAMEDATALEN - 1); Django's max_name_length() on PostgreSQL
MAX_NAME_LENGTH = 63


def names_digest(*args: str, length: int) -> str:
    """Django's ``django.db.backends.utils.names_digest``: MD5 of the names, truncated."""
    h = hashlib.md5(usedforsecurity=False)
    for arg in args:
        h.update(arg.encode())
    return h.hexdigest()[:length]


def _split_identifier(name: str) -> str:
    """The table part of ``schema"."table`` (Django's split_identifier), unquoted."""
    try:
        _, table = name.split('"."')
    except ValueError:
        table = name
    return table.strip('"')


def auto_index_name(
    table: str, columns: Sequence[str], suffix: str = "", max_length: int = MAX_NAME_LENGTH
) -> str:
    """The name Django's schema editor gives a field index (``_create_index_name``)."""
    table_name = _split_identifier(table)
    hash_suffix_part = f"{names_digest(table_name, *columns, length=8)}{suffix}"
    index_name = f"{table_name}_{'_'.join(columns)}_{hash_suffix_part}"
    if len(index_name) <= max_length:
        return index_name
    if len(hash_suffix_part) > max_length / 3:
        hash_suffix_part = hash_suffix_part[: max_length // 3]
    other_length = (max_length - len(hash_suffix_part)) // 2 - 1
    index_name = (
        f"{table_name[:other_length]}_{'_'.join(columns)[:other_length]}_{hash_suffix_part}"
    )
    if index_name[0] == "_" or index_name[0].isdigit():
        index_name = f"D{index_name[:-1]}"
    return index_name


def is_auto_index_name(name: str, table: str, columns: Sequence[str]) -> str | None:
    """The suffix ('' for a plain field index, '_like', '_uniq') when ``name`` is the index
    Django creates for ``columns`` of ``table``; None otherwise."""
    for suffix in ("", "_like", "_uniq"):
        if name == auto_index_name(table, columns, suffix):
            return suffix
    return None


def meta_index_name(table: str, columns: Sequence[str], suffix: str = "idx") -> str:
    """The name ``Index.set_name_with_model`` gives a ``Meta.indexes`` entry.

    ``columns`` are database column names, ``-`` first for a descending one. For an expression
    index, pass a readable stand-in for the expression (Django requires a name there anyway).
    """
    table_name = _split_identifier(table)
    plain = [c.lstrip("-") for c in columns]
    name = f"{table_name[:11]}_{plain[0][:7]}_{names_digest(table_name, *columns, suffix, length=6)}_{suffix}"
    if name[0] == "_" or name[0].isdigit():
        name = f"D{name[1:]}"
    return name
