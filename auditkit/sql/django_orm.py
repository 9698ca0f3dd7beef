"""Reading SQL the Django way: which relation a repeated query walks, and the ORM fix.

Django's ORM writes recognisable SQL. A query repeated once per row of a list is one of:

* **forward foreign key** — ``SELECT … FROM "app_author" WHERE "app_author"."id" = ?`` after a
  list query on ``app_book`` that selected ``"app_book"."author_id"``: ``book.author`` in a loop
  → ``select_related("author")`` — also when every row points at the same author (the same
  statement with the same parameters, once per row);
* **reverse foreign key** — ``SELECT … FROM "app_comment" WHERE "app_comment"."ticket_id" = ?``:
  ``ticket.comment_set.all()`` (or its ``related_name``) in a loop → ``prefetch_related(…)``;
* **many-to-many** — ``SELECT … FROM "app_tag" INNER JOIN "app_book_tags" ON … WHERE
  "app_book_tags"."book_id" = ?``: ``book.tags.all()`` in a loop → ``prefetch_related("tags")``;
* **an aggregate per row** — ``SELECT COUNT(*) … WHERE "app_review"."book_id" = ?``
  (``book.reviews.count()``), ``SELECT 1 … LIMIT 1`` (``.exists()``), ``AVG``/``SUM``/``MIN``/
  ``MAX`` of a column → ``annotate(review_count=Count("reviews"))`` and the like: prefetching
  the rows to count them would be the wrong fix;
* **deferred field** — ``SELECT "app_book"."id", "app_book"."summary" FROM "app_book" WHERE
  "app_book"."id" = ?`` after ``.only()``/``.defer()``: each access loads one column → load it
  with the list (``only(...)`` naming the list's fields and this one).

Names — models, fields, related names, query names — come from :class:`~auditkit.analysis.code.
CodeMap`: exact with a model dump, Django's conventions otherwise (and the fix says so). When a
name cannot be known the fix is prose, never a placeholder.

Each distinct fingerprint is parsed once (sqlglot, cached), never per executed statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd
import sqlglot
from sqlglot import exp

from auditkit.lazy_re import compile_later

if TYPE_CHECKING:
    from auditkit.analysis.code import CodeMap, Model

__all__ = [
    "OrmFix",
    "StatementShape",
    "model_name",
    "orm_fix",
    "orm_tables",
    "statement_shape",
]

_NO_DUMP = pd.DataFrame(
    {"table": pd.Series(dtype="string"), "inferred": pd.Series(dtype="boolean")}
)
_AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Avg: "avg",
    exp.Sum: "sum",
    exp.Min: "min",
    exp.Max: "max",
}


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
    #: aggregates selected: (function, table, column) — column None for COUNT(*)
    aggregates: tuple[tuple[str, str | None, str | None], ...] = ()
    #: True for ``SELECT 1 … LIMIT 1`` (Django's ``.exists()``)
    exists: bool = False
    limit: bool = False


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
    aggregates: list[tuple[str, str | None, str | None]] = []
    constants = 0
    for e in tree.expressions:
        node = e.this if isinstance(e, exp.Alias) else e
        while isinstance(node, exp.Paren):
            node = node.this
        fn = _AGGREGATES.get(type(node))
        if fn is not None:
            arg = node.this
            col = arg if isinstance(arg, exp.Column) else None
            aggregates.append((fn, (col.table or None) if col else None, col.name if col else None))
        elif isinstance(node, exp.Literal | exp.Placeholder | exp.Parameter):
            constants += 1
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
    limit = tree.args.get("limit") is not None
    return StatementShape(
        "select",
        main.name if main else None,
        tables,
        selected,
        tuple(eq),
        tuple(inn),
        tuple(joins),
        tuple(aggregates),
        exists=limit and constants > 0 and constants == len(tree.expressions),
        limit=limit,
    )


#: a column qualified by its quoted table, the way Django's compiler writes every column it
#: selects, filters or sorts on: ``"app_model"."col"`` (PostgreSQL, SQLite, Oracle) or
#: ```app_model`.`col``` (MySQL, MariaDB)
_QUALIFIED = compile_later(r'"([^"]+)"\s*\.\s*"[^"]+"|`([^`]+)`\s*\.\s*`[^`]+`')


def orm_tables(fingerprints: Iterable[object]) -> frozenset[str]:
    """The tables the statements name the way Django's ORM writes SQL: columns qualified by
    the quoted table name (``"shop_order"."customer_id"``, ```shop_order`.`customer_id```).

    Hand-written SQL, another tool's (pgbench, a reporting job) or a legacy schema's queries
    name tables bare (``WHERE bid = ?``, ``address.address_id``) or through an alias; Django's
    conventions (an ``id`` primary key, ``<name>_id`` foreign keys) can only be assumed for
    the tables its compiler wrote.

    >>> sorted(orm_tables(['SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."paid"']))
    ['shop_order']
    >>> sorted(orm_tables(["SELECT a.address FROM address a WHERE a.address_id = ?"]))
    []
    """
    out: set[str] = set()
    for fp in dict.fromkeys(fingerprints):
        if not isinstance(fp, str) or ('"' not in fp and "`" not in fp):
            continue
        for m in _QUALIFIED.finditer(fp):
            out.add(m.group(1) or m.group(2))
    return frozenset(out)


def model_name(table: str) -> str:
    """Django's model name from its default table name: ``shop_order_item`` → ``OrderItem``."""
    parts = table.split("_", 1)
    model = parts[1] if len(parts) == 2 else parts[0]
    return "".join(p.capitalize() for p in model.split("_"))


@dataclass(frozen=True, slots=True)
class OrmFix:
    """The relation a repeated query walks and the ORM change that removes the repetition.

    ``model`` is the model of the list queryset to change, ``method`` the queryset method
    (``select_related``, ``prefetch_related``, ``annotate``, ``only``) and ``argument`` its
    argument as code. ``relation`` is ``forward_fk``, ``reverse_fk``, ``many_to_many``,
    ``count``, ``exists``, ``aggregate``, ``deferred_field`` or ``unknown`` (no fix in code:
    ``explanation`` says why).
    """

    relation: str
    model: Model | None
    field: str | None
    method: str | None
    argument: str | None
    explanation: str
    inferred: bool
    imports: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The fix as one line of Django (empty when no fix can be written)."""
        if self.model is None or self.method is None or self.argument is None:
            return ""
        return f"{self.model.manager}.{self.method}({self.argument})"


def _unknown(text: str, model: Model | None = None) -> OrmFix:
    return OrmFix("unknown", model, None, None, None, text, True)


def orm_fix(
    repeated: str,
    earlier: Sequence[str] = (),
    code: CodeMap | None = None,
    dialect: str = "postgres",
    context: Sequence[str] = (),
) -> OrmFix:
    """Interpret a repeated fingerprint, given the fingerprints run before it in the request.

    ``earlier`` are the request's preceding distinct fingerprints, most recent first (the list
    query is usually among them); ``context`` every fingerprint of the request (to find the
    relation when the list query came before the logged part). ``code`` names the client's
    models; by default Django's conventions only.
    """
    from auditkit.analysis.code import CodeMap, joins_of, tables_of

    if code is not None:
        cm = code
    else:  # Django's conventions over the tables these statements use
        fps = [repeated, *earlier, *context]
        tables, seen = tables_of(fps)
        cm = CodeMap.build(_NO_DUMP, tables=tables, joins=joins_of(fps), seen_columns=seen)
    shape = statement_shape(repeated, dialect)
    if shape is None or shape.kind != "select" or not shape.table:
        return _unknown("The repeated statement is not a plain SELECT.")
    filters = shape.eq_filters + shape.in_filters
    table = shape.table

    # many-to-many: the filter is on a join (through) table's <model>_id column
    for jt in shape.tables:
        if jt == table:
            continue
        for ftable, fcol in filters:
            if ftable == jt and fcol.endswith("_id"):
                rel = cm.many_to_many(jt)
                if rel is None:
                    continue
                forward = rel.target.table == table or fcol[:-3] == rel.model.name.lower()
                owner = rel.model if forward else rel.target
                name = rel.field if forward else rel.accessor
                query_name = rel.field if forward else rel.query_name
                if not owner.name:
                    return _unknown(f"A many-to-many relation through {jt} is read once per row.")
                agg = _aggregate_fix(shape, owner, query_name, rel.inferred)
                if agg is not None:
                    return agg
                return OrmFix(
                    "many_to_many",
                    owner,
                    name,
                    "prefetch_related",
                    json.dumps(name),
                    f"Each {owner.name} loads its {name} with one query through {jt}; "
                    f"prefetch_related loads them for the whole list in one more query.",
                    rel.inferred,
                )
    pk = cm.primary_key(table)
    for ftable, fcol in filters:
        if ftable not in (None, table):
            continue
        if fcol == pk:
            return _by_primary_key(shape, table, fcol, earlier, context, cm, dialect)
        if fcol.endswith("_id") or cm.foreign_key(table, fcol) is not None:
            rel = cm.reverse_of(table, fcol)
            if rel is None:
                return _unknown(
                    f"Rows of {cm.model(table).name} are read once per row of a list, filtered on "
                    f"{fcol}; the model it points to could not be told.",
                    cm.model(table),
                )
            agg = _aggregate_fix(
                shape, rel.target, rel.query_name, rel.inferred, (rel.model, rel.field)
            )
            if agg is not None:
                return agg
            return OrmFix(
                "reverse_fk",
                rel.target,
                rel.accessor,
                "prefetch_related",
                json.dumps(rel.accessor),
                f"Each {rel.target.name} loads its {rel.model.name} rows with one query "
                f"(filtered on {fcol}); prefetch_related loads them for the whole list in one more query.",
                rel.inferred,
            )
    return _unknown(
        f"A query on {table} repeats within each request; it follows no relation auditkit recognises.",
        cm.model(table),
    )


def _aggregate_fix(
    shape: StatementShape,
    owner: Model,
    query_name: str,
    inferred: bool,
    child: tuple[Model, str] | None = None,
) -> OrmFix | None:
    """``annotate`` for a COUNT / EXISTS / AVG… computed once per row, else None.

    ``child`` is the related model and its foreign-key field to ``owner`` (for EXISTS).
    """
    if shape.exists and child is not None:
        alias = f"has_{query_name}"
        related, fk_field = child
        return OrmFix(
            "exists",
            owner,
            alias,
            "annotate",
            f'{alias}=Exists({related.manager}.filter({fk_field}=OuterRef("pk")))',
            f"Each {owner.name} asks whether it has related {query_name} with one query; "
            "annotate() answers it for the whole list in the list query.",
            inferred,
            ("from django.db.models import Exists, OuterRef",),
        )
    if not shape.aggregates:
        return None
    fn, _t, column = shape.aggregates[0]
    if fn == "count":
        alias = f"{query_name}_count"
        arg = json.dumps(query_name)
    else:
        if column is None:
            return None
        alias = f"{query_name}_{fn}"
        arg = json.dumps(f"{query_name}__{column[:-3] if column.endswith('_id') else column}")
    func = {"count": "Count", "avg": "Avg", "sum": "Sum", "min": "Min", "max": "Max"}[fn]
    return OrmFix(
        "count" if fn == "count" else "aggregate",
        owner,
        alias,
        "annotate",
        f"{alias}={func}({arg})",
        f"Each {owner.name} computes {func.upper()} over its {query_name} with one query; "
        "annotate() computes it for the whole list in the list query.",
        inferred,
        (f"from django.db.models import {func}",),
    )


def _by_primary_key(
    shape: StatementShape,
    table: str,
    pk: str,
    earlier: Sequence[str],
    context: Sequence[str],
    cm: CodeMap,
    dialect: str,
) -> OrmFix:
    """A row of ``table`` fetched by primary key once per row: a forward FK, or a deferred field."""
    selected = [c for t, c in shape.selected if t in (None, table)]
    target = cm.model(table)
    for prev in earlier:
        pshape = statement_shape(prev, dialect)
        if pshape is None or pshape.kind != "select" or not pshape.table:
            continue
        if pshape.table == table and len(selected) <= 2:
            return _deferred(table, selected, pk, pshape, cm)
        cols = [c for t, c in pshape.selected if t in (None, pshape.table)]
        rel = cm.foreign_key_to(pshape.table, table, cols)
        if rel is not None:
            return _select_related(rel.model, rel.field, target, rel.inferred)
    if len(selected) <= 2 and selected:
        return _deferred(table, selected, pk, None, cm)
    # the list query was not seen before it: a table of the request with one FK to this one
    holders: set[tuple[str, str]] = set()
    for fp in context:
        cshape = statement_shape(fp, dialect)
        if cshape is None or not cshape.table or cshape.table == table:
            continue
        cols = [c for t, c in cshape.selected if t in (None, cshape.table)]
        rel = cm.foreign_key_to(cshape.table, table, cols)
        if rel is not None:
            holders.add((rel.model.table, rel.field))
    if len(holders) == 1:
        holder_table, fname = next(iter(holders))
        return _select_related(cm.model(holder_table), fname, target, True)
    return _unknown(
        f"{target.name} rows are fetched one at a time by primary key: a foreign key to "
        f"{target.name} followed for each row of a list. Which relation could not be told "
        "(the list query is not in the same request): select_related on that relation removes it.",
        None,
    )


def _select_related(model: Model, field: str, target: Model, inferred: bool) -> OrmFix:
    return OrmFix(
        "forward_fk",
        model,
        field,
        "select_related",
        json.dumps(field),
        f"Each {model.name} fetches its {field} ({target.name}) separately; select_related "
        "joins it into the list query.",
        inferred,
    )


def _deferred(
    table: str,
    selected: list[str],
    pk: str,
    list_shape: StatementShape | None,
    cm: CodeMap,
) -> OrmFix:
    """A deferred field loaded row by row: the one selected column besides the primary key."""
    column = next((c for c in selected if c != pk), None)
    model = cm.model(table)
    if column is None:
        return _unknown(f"{model.name} rows are re-read by primary key once per row.", model)
    field = cm.field_name(table, column)
    if list_shape is None:
        return OrmFix(
            "deferred_field",
            model,
            field,
            None,
            None,
            f"{model.name}.{field} is loaded one row at a time, the pattern of a field left out by "
            f".only() or .defer() on a {model.name} list: load {field} with the list.",
            True,
        )
    listed = [
        cm.field_name(table, c) for t, c in list_shape.selected if t in (None, table) and c != pk
    ]
    fields = list(dict.fromkeys([*listed, field]))
    return OrmFix(
        "deferred_field",
        model,
        field,
        "only",
        ", ".join(json.dumps(f) for f in fields),
        f"{field} was left out of the list's .only()/.defer() and is loaded one row at a time; "
        "naming it in only() loads it with the list.",
        model.inferred,
    )
