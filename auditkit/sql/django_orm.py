"""Reading SQL the Django way: which relation a repeated query walks, and the ORM fix.

Django's ORM writes recognisable SQL. A query repeated once per row of a list is one of:

* **forward foreign key** — ``SELECT … FROM "app_author" WHERE "app_author"."id" = ?`` after a
  list query on ``app_book`` that selected ``"app_book"."author_id"``: accessing
  ``book.author`` in a loop → ``select_related("author")``;
* **reverse foreign key** — ``SELECT … FROM "app_comment" WHERE "app_comment"."ticket_id" = ?``:
  ``ticket.comment_set.all()`` (or its ``related_name``) in a loop → ``prefetch_related(…)``;
* **many-to-many** — ``SELECT … FROM "app_tag" INNER JOIN "app_book_tags" ON … WHERE
  "app_book_tags"."book_id" = ?``: ``book.tags.all()`` in a loop → ``prefetch_related("tags")``;
* **deferred field** — ``SELECT "app_book"."id", "app_book"."summary" FROM "app_book" WHERE
  "app_book"."id" = ?`` after ``.only()``/``.defer()``: each access loads one column →
  include the field in ``only()`` (or stop deferring it).

With a Django model dump (the ``schema_columns`` frame, ``inferred=False``) model, field and
related names are exact. Without one they follow Django's conventions (``app_model`` tables,
``<field>_id`` columns, ``<model>_set`` accessors) and the fix says it is inferred.

Each distinct fingerprint is parsed once (sqlglot, cached), never per executed statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import sqlglot
from sqlglot import exp

__all__ = ["OrmFix", "StatementShape", "model_name", "orm_fix", "statement_shape"]


@dataclass(frozen=True, slots=True)
class StatementShape:
    """What a SELECT reads: its main table, joined tables, selected and filtered columns."""

    kind: str  # select, insert, update, delete, other
    table: str | None
    tables: tuple[str, ...]
    selected: tuple[tuple[str | None, str], ...]  # (table, column)
    eq_filters: tuple[tuple[str | None, str], ...]  # columns compared with a parameter
    in_filters: tuple[tuple[str | None, str], ...]
    joins: tuple[tuple[str, str, str, str], ...]  # (left table, left col, right table, right col)


@lru_cache(maxsize=20_000)
def statement_shape(fingerprint: str, dialect: str = "postgres") -> StatementShape | None:
    """The shape of a fingerprint, or None when sqlglot cannot parse it."""
    head = fingerprint.lstrip("( ").split(" ", 1)[0].lower()
    if head not in ("select", "with"):
        kind = head if head in ("insert", "update", "delete") else "other"
        return StatementShape(kind, None, (), (), (), (), ())
    text = fingerprint.replace("(...)", "(?)")
    try:
        tree = sqlglot.parse_one(text, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    if tree is None:
        return None
    kinds: dict[type[exp.Expr], str] = {
        exp.Select: "select",
        exp.Insert: "insert",
        exp.Update: "update",
        exp.Delete: "delete",
    }
    kind = kinds.get(type(tree), "other")
    if kind != "select":
        table = tree.find(exp.Table)
        return StatementShape(kind, table.name if table else None, (), (), (), (), ())
    from_ = tree.args.get("from_") or tree.args.get("from")
    main = from_.find(exp.Table) if from_ is not None else None
    tables = tuple(t.name for t in tree.find_all(exp.Table))
    selected = tuple(
        (c.table or None, c.name) for c in tree.expressions if isinstance(c, exp.Column)
    )
    eq: list[tuple[str | None, str]] = []
    inn: list[tuple[str | None, str]] = []
    where = tree.args.get("where")
    if where is not None:
        for node in where.find_all(exp.EQ):
            col, other = (
                (node.left, node.right)
                if isinstance(node.left, exp.Column)
                else (node.right, node.left)
            )
            if isinstance(col, exp.Column) and isinstance(
                other, exp.Placeholder | exp.Literal | exp.Parameter
            ):
                eq.append((col.table or None, col.name))
        for node in where.find_all(exp.In):
            if isinstance(node.this, exp.Column):
                inn.append((node.this.table or None, node.this.name))
    joins = []
    for join in tree.args.get("joins") or []:
        on = join.args.get("on")
        if on is None:
            continue
        for node in on.find_all(exp.EQ):
            if isinstance(node.left, exp.Column) and isinstance(node.right, exp.Column):
                joins.append((node.left.table, node.left.name, node.right.table, node.right.name))
    return StatementShape(
        "select", main.name if main else None, tables, selected, tuple(eq), tuple(inn), tuple(joins)
    )


def model_name(table: str) -> str:
    """Django's model name from its default table name: ``shop_order_item`` → ``OrderItem``.

    The app label is taken to be the first underscore-separated word (Django's default
    ``<app_label>_<model>``); where that is wrong the model dump gives the truth.
    """
    parts = table.split("_", 1)
    model = parts[1] if len(parts) == 2 else parts[0]
    return "".join(p.capitalize() for p in model.split("_"))


@dataclass(frozen=True, slots=True)
class OrmFix:
    """The relation a repeated query walks and the ORM change that removes the repetition."""

    relation: str  # forward_fk, reverse_fk, many_to_many, deferred_field, unknown
    model: str | None  # the model of the list queryset to change
    field: str | None  # the name to pass to select_related / prefetch_related / only
    code: str  # ready-to-paste Django
    explanation: str
    inferred: bool  # True when names come from conventions, not a model dump


def _columns_lookup(models: pd.DataFrame | None) -> pd.DataFrame | None:
    if models is None or len(models) == 0:
        return None
    exact = models[models["inferred"].fillna(False).astype(bool) == False]  # noqa: E712
    return exact if len(exact) else None


def _qs(model: str | None) -> str:
    return f"{model}.objects" if model else "queryset"


def orm_fix(
    repeated: str,
    earlier: list[str] | tuple[str, ...] = (),
    models: pd.DataFrame | None = None,
    dialect: str = "postgres",
) -> OrmFix:
    """Interpret a repeated fingerprint, given the fingerprints run before it in the request.

    ``earlier`` are the request's preceding distinct fingerprints, most recent first (the list
    query is usually among them). ``models`` is the ``schema_columns`` frame if available.
    """
    shape = statement_shape(repeated, dialect)
    lookup = _columns_lookup(models)
    inferred = lookup is None
    if shape is None or shape.kind != "select" or not shape.table:
        return OrmFix(
            "unknown", None, None, "", "The repeated statement is not a plain SELECT.", True
        )
    filters = shape.eq_filters + shape.in_filters
    table = shape.table
    field: str | None  # OrmFix.field: None when no field can be named

    # many-to-many: the filter is on a join (through) table's <model>_id column
    for jt in shape.tables:
        if jt == table:
            continue
        for ftable, fcol in filters:
            if ftable == jt and fcol.endswith("_id"):
                owner_col = fcol[:-3]
                owner_table, field = _m2m_owner(jt, owner_col, lookup)
                model = _model_of(owner_table, lookup)
                return OrmFix(
                    "many_to_many",
                    model,
                    field,
                    f'{_qs(model)}.prefetch_related("{field}")',
                    f"Each {model or owner_table} loads its {field} with one query through {jt}; "
                    f"prefetch_related fetches them for the whole list in one more query.",
                    inferred,
                )
    for ftable, fcol in filters:
        if ftable not in (None, table):
            continue
        if fcol == "id" or _is_pk(table, fcol, lookup):
            # pk lookup: forward FK from an earlier list query, or a deferred field load
            selected = [c for t, c in shape.selected if t in (None, table)]
            for prev in earlier:
                pshape = statement_shape(prev, dialect)
                if pshape is None or pshape.kind != "select" or not pshape.table:
                    continue
                if pshape.table == table and len(selected) <= 2:
                    return _deferred(table, selected, fcol, lookup, seen_list_query=True)
                fk = _fk_column_to(pshape, table, lookup)
                if fk is not None:
                    parent_model = _model_of(pshape.table, lookup)
                    field = _field_of(pshape.table, fk, lookup)
                    return OrmFix(
                        "forward_fk",
                        parent_model,
                        field,
                        f'{_qs(parent_model)}.select_related("{field}")',
                        f"Each {parent_model} fetches its {field} ({_model_of(table, lookup)}) separately; "
                        f"select_related joins it into the list query.",
                        inferred,
                    )
            if len(selected) <= 2 and selected:
                return _deferred(table, selected, fcol, lookup, seen_list_query=False)
            model = _model_of(table, lookup)
            return OrmFix(
                "forward_fk",
                None,
                None,
                'queryset.select_related("<field pointing to ' + (model or table) + '>")',
                f"{model or table} rows are fetched one by one by primary key: a foreign key "
                "followed in a loop (the list query was not seen in the same request).",
                True,
            )
        if fcol.endswith("_id"):
            parent_field = fcol[:-3]
            parent_table = _fk_target(table, fcol, lookup) or _guess_parent_table(
                table, parent_field, earlier, dialect
            )
            parent_model = (
                _model_of(parent_table, lookup) if parent_table else parent_field.capitalize()
            )
            accessor = _reverse_accessor(table, fcol, lookup)
            return OrmFix(
                "reverse_fk",
                parent_model,
                accessor,
                f'{_qs(parent_model)}.prefetch_related("{accessor}")',
                f"Each {parent_model} loads its {_model_of(table, lookup)} rows with one query "
                f"(filtered on {fcol}); prefetch_related loads them for the whole list in one more query.",
                inferred,
            )
    return OrmFix(
        "unknown",
        _model_of(table, lookup),
        None,
        "",
        f"A query on {table} repeats with different parameters.",
        True,
    )


def _deferred(
    table: str, selected: list[str], pk: str, lookup: pd.DataFrame | None, *, seen_list_query: bool
) -> OrmFix:
    """A deferred field loaded row by row: the one selected column besides the primary key."""
    field = next((c for c in selected if c != pk), None)
    model = _model_of(table, lookup)
    why = (
        f"{field} was deferred by .only()/.defer() and is loaded one row at a time."
        if seen_list_query
        else f"{field} is loaded one row at a time, the pattern of a deferred field."
    )
    return OrmFix(
        "deferred_field",
        model,
        field,
        f'{_qs(model)}.only(…, "{field}")  # or drop it from .defer()',
        why,
        lookup is None or not seen_list_query,
    )


# -- names, from the model dump when present, else Django's conventions ------------------------
def _model_of(table: str | None, lookup: pd.DataFrame | None) -> str | None:
    if table is None:
        return None
    if lookup is not None:
        rows = lookup[lookup["table"] == table]
        if len(rows) and pd.notna(rows["model"].iloc[0]):
            return str(rows["model"].iloc[0])
    return model_name(table)


def _is_pk(table: str, column: str, lookup: pd.DataFrame | None) -> bool:
    if lookup is None or "primary_key" not in lookup:
        return False
    rows = lookup[(lookup["table"] == table) & (lookup["column"] == column)]
    return bool(len(rows) and rows["primary_key"].fillna(False).any())


def _fk_column_to(shape: StatementShape, target: str, lookup: pd.DataFrame | None) -> str | None:
    cols = [c for t, c in shape.selected if t in (None, shape.table)]
    if lookup is not None:
        rows = lookup[(lookup["table"] == shape.table) & (lookup["fk_to"] == target)]
        for col in rows["column"].dropna():
            if col in cols:
                return str(col)
    target_model = model_name(target).lower()
    candidates = [c for c in cols if c.endswith("_id")]
    for c in candidates:  # author_id -> author, for table app_author
        if c[:-3].replace("_", "") == target_model:
            return c
    return candidates[0] if len(candidates) == 1 else (candidates[0] if candidates else None)


def _field_of(table: str, column: str, lookup: pd.DataFrame | None) -> str:
    if lookup is not None:
        rows = lookup[(lookup["table"] == table) & (lookup["column"] == column)]
        if len(rows) and pd.notna(rows["field"].iloc[0]):
            return str(rows["field"].iloc[0])
    return column[:-3] if column.endswith("_id") else column


def _fk_target(table: str, column: str, lookup: pd.DataFrame | None) -> str | None:
    if lookup is None:
        return None
    rows = lookup[(lookup["table"] == table) & (lookup["column"] == column)]
    return str(rows["fk_to"].iloc[0]) if len(rows) and pd.notna(rows["fk_to"].iloc[0]) else None


def _reverse_accessor(table: str, column: str, lookup: pd.DataFrame | None) -> str:
    if lookup is not None:
        rows = lookup[(lookup["table"] == table) & (lookup["column"] == column)]
        if len(rows) and "related_name" in rows and pd.notna(rows["related_name"].iloc[0]):
            return str(rows["related_name"].iloc[0])
    return f"{model_name(table).lower()}_set"


def _m2m_owner(through: str, owner_col: str, lookup: pd.DataFrame | None) -> tuple[str, str]:
    if lookup is not None and "through" in lookup:
        rows = lookup[lookup["through"] == through]
        if len(rows):
            return str(rows["table"].iloc[0]), str(rows["field"].iloc[0])
    # Django's auto-created through table: <owner table>_<field>
    prefix = through.rsplit("_", 1)[0]
    field = through.rsplit("_", 1)[1]
    # the owner table is the longest prefix ending before the field name
    return prefix, field


def _guess_parent_table(
    child: str, parent_field: str, earlier: list[str] | tuple[str, ...], dialect: str
) -> str | None:
    app = child.split("_", 1)[0]
    guess = f"{app}_{parent_field.replace('_', '')}"
    for prev in earlier:
        shape = statement_shape(prev, dialect)
        if (
            shape
            and shape.table
            and shape.table.replace("_", "").endswith(parent_field.replace("_", ""))
        ):
            return shape.table
    return guess
