"""The Django model dump (``auditkit.django_models``, version 1) and Django naming inference.

The dump is written by ``manage.py auditkit_dump_models`` (the ``auditkit.django`` app) and
documented in ``docs/formats/django-models.md``: apps → models → ``db_table``, fields (name,
column, type, null, unique, db_index, primary_key), foreign keys (target table and column,
related_name, related_query_name), many-to-many fields (through table and its columns),
``Meta.indexes``, ``unique_together``, ``index_together`` and constraints, and each app's
latest migration.

It loads into three frames:

* ``schema_columns`` — one row per concrete field, per many-to-many field (``through`` set) and
  per field of an auto-created through table. ``related_name`` is the *effective* reverse
  accessor (``orders`` or ``order_set``). Extra columns: ``null``, ``unique``, ``primary_key``,
  ``relation`` (foreign_key, one_to_one, many_to_many), ``related_model``, ``fk_column``,
  ``related_query_name``, ``through_source_column``, ``through_target_column``.
* ``schema_tables`` — one row per model table, ``model`` = ``app_label.Model``. Extras:
  ``app_label``, ``latest_migration`` (the app's leaf migration, for generated migrations'
  dependencies), ``managed``, ``auto_created``.
* ``schema_indexes`` — the indexes the models *declare*, named the way Django names them
  (primary keys, unique fields, foreign keys and ``db_index`` fields with their ``_like`` twin on
  PostgreSQL, ``Meta.indexes``, ``unique_together``, ``index_together``, unique constraints).
  Extras: ``origin`` = ``django_models`` (a declaration, not a catalog row), ``declared_by``,
  ``app_label``, ``model``, ``fields``, ``opclasses``, ``name_inferred`` (PostgreSQL's own name
  for an inline unique constraint is predicted, not read).

Without a dump, :func:`infer_models` guesses the same ``schema_columns`` rows from catalog
names — ``app_model`` tables, ``<fk>_id`` columns, Django's automatic FK indexes recognised by
recomputing their digest — and marks every row ``inferred``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.django.naming import auto_index_name, is_auto_index_name
from auditkit.errors import InputError
from auditkit.loaders import _json
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import SCHEMA_COLUMNS, SCHEMA_INDEXES, SCHEMA_TABLES, conform, empty

__all__ = ["FORMAT", "DjangoModelsLoader", "infer_models"]

FORMAT = "auditkit.django_models"
SUPPORTED_VERSIONS = (1,)

_PATTERN_TYPES = {
    "CharField",
    "TextField",
    "EmailField",
    "SlugField",
    "URLField",
    "FilePathField",
    "FileField",
    "ImageField",
}
_INDEX_METHODS = {
    "GinIndex": "gin",
    "GistIndex": "gist",
    "BrinIndex": "brin",
    "HashIndex": "hash",
    "SpGistIndex": "spgist",
    "BloomIndex": "bloom",
    "BTreeIndex": "btree",
    "Index": "btree",
}


@register
class DjangoModelsLoader(Loader):
    """The model dump written by ``manage.py auditkit_dump_models``."""

    name = "django_models"
    frame = "schema_columns"
    description = "Django model dump (auditkit_dump_models JSON)"
    expected = f'a JSON object with "format": "{FORMAT}" and "apps" (written by manage.py auditkit_dump_models)'

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip()[:4000]
        if start.startswith("{") and f'"{FORMAT}"' in start:
            return 1.0
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        began = time.perf_counter()
        report = ParseReport(str(path), self.name)
        text, _ = read_text(path)
        report.lines = text.count("\n") + 1
        try:
            data = _json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg})",
                path=path,
                line=exc.lineno,
                hint="re-run manage.py auditkit_dump_models -o FILE",
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not an {FORMAT} dump", path=path, hint=self.expected)
        version = data.get("version")
        if version not in SUPPORTED_VERSIONS:
            raise InputError(
                f"model dump version {version!r} is not supported",
                path=path,
                hint=f"supported versions: {SUPPORTED_VERSIONS}; upgrade auditkit",
            )
        vendor = str((data.get("database") or {}).get("vendor") or "postgresql")
        columns: list[dict[str, Any]] = []
        tables: list[dict[str, Any]] = []
        indexes: list[dict[str, Any]] = []
        record = 0
        for app_label, app in (data.get("apps") or {}).items():
            latest = (app.get("latest_migrations") or [None])[0] if isinstance(app, dict) else None
            for model_name, model in ((app or {}).get("models") or {}).items():
                record += 1
                if not isinstance(model, dict) or not model.get("db_table"):
                    report.skip(record, "model without db_table", f"{app_label}.{model_name}")
                    continue
                if model.get("proxy"):
                    report.skip(
                        record,
                        "proxy model (shares its parent's table)",
                        f"{app_label}.{model_name}",
                    )
                    continue
                report.ok()
                src = {"source_file": str(path), "source_line": record}
                _model_rows(
                    app_label, model_name, model, latest, vendor, src, columns, tables, indexes
                )
        frames = {
            "schema_columns": conform(pd.DataFrame(columns), SCHEMA_COLUMNS)
            if columns
            else empty(SCHEMA_COLUMNS),
            "schema_tables": conform(pd.DataFrame(tables), SCHEMA_TABLES)
            if tables
            else empty(SCHEMA_TABLES),
            "schema_indexes": conform(pd.DataFrame(indexes), SCHEMA_INDEXES)
            if indexes
            else empty(SCHEMA_INDEXES),
        }
        for name, df in frames.items():
            report.events[name] = len(df)
        report.elapsed_s = time.perf_counter() - began
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, frames, report, primary=self.frame)


def _model_rows(
    app_label: str,
    model_name: str,
    model: dict[str, Any],
    latest: str | None,
    vendor: str,
    src: dict[str, Any],
    columns: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    indexes: list[dict[str, Any]],
) -> None:
    table = str(model["db_table"])
    label = f"{app_label}.{model_name}"
    tables.append(
        {
            "table": table,
            "model": label,
            "app_label": app_label,
            "latest_migration": latest,
            "managed": bool(model.get("managed", True)),
            "auto_created": False,
            **src,
        }
    )
    fields_by_name: dict[str, dict[str, Any]] = {}
    base = {"app_label": app_label, "model": model_name, "table": table, "inferred": False, **src}

    def index(
        name: str,
        cols: list[str],
        declared_by: str,
        *,
        unique: bool = False,
        primary: bool = False,
        fields: list[str] | None = None,
        method: str = "btree",
        predicate: str | None = None,
        opclasses: list[str] | None = None,
        name_inferred: bool = False,
    ) -> None:
        indexes.append(
            {
                "table": table,
                "index": name,
                "columns": ", ".join(cols),
                "method": method,
                "unique": unique,
                "primary": primary,
                "predicate": predicate,
                "origin": "django_models",
                "declared_by": declared_by,
                "app_label": app_label,
                "model": model_name,
                "fields": ", ".join(fields or []),
                "opclasses": ", ".join(opclasses) if opclasses else None,
                "name_inferred": name_inferred,
                **src,
            }
        )

    for f in model.get("fields") or []:
        fields_by_name[f["name"]] = f
        rel = f.get("related") or {}
        columns.append(
            {
                **base,
                "field": f["name"],
                "column": f.get("column"),
                "field_type": f.get("type"),
                "fk_to": rel.get("table"),
                "related_name": rel.get("accessor_name") or rel.get("related_name"),
                "db_index": bool(f.get("db_index") or f.get("unique") or f.get("primary_key")),
                "null": f.get("null"),
                "unique": f.get("unique"),
                "primary_key": f.get("primary_key"),
                "relation": f.get("relation"),
                "related_model": rel.get("model"),
                "fk_column": rel.get("column"),
                "related_query_name": rel.get("related_query_name"),
            }
        )
        col = f.get("column")
        if not col:
            continue
        pattern = vendor == "postgresql" and f.get("internal_type", f.get("type")) in _PATTERN_TYPES
        what = f"{f.get('type')} {model_name}.{f['name']}"
        if f.get("primary_key"):
            index(
                f"{table}_pkey",
                [col],
                f"primary key {model_name}.{f['name']}",
                unique=True,
                primary=True,
                fields=[f["name"]],
                name_inferred=True,
            )
        elif f.get("unique"):
            index(
                f"{table}_{col}_key",
                [col],
                f"unique=True on {what}",
                unique=True,
                fields=[f["name"]],
                name_inferred=True,
            )
            if pattern:
                index(
                    auto_index_name(table, [col], "_like"),
                    [col],
                    f"unique=True on {what} (LIKE twin)",
                    fields=[f["name"]],
                    opclasses=["varchar_pattern_ops"],
                )
        elif f.get("db_index"):
            by = (
                f"ForeignKey {model_name}.{f['name']} (automatic index)"
                if f.get("relation")
                else f"db_index=True on {what}"
            )
            index(auto_index_name(table, [col]), [col], by, fields=[f["name"]])
            if pattern:
                index(
                    auto_index_name(table, [col], "_like"),
                    [col],
                    f"db_index=True on {what} (LIKE twin)",
                    fields=[f["name"]],
                    opclasses=["varchar_pattern_ops"],
                )
    for m in model.get("many_to_many") or []:
        rel, through = m.get("related") or {}, m.get("through") or {}
        columns.append(
            {
                **base,
                "field": m["name"],
                "column": None,
                "field_type": m.get("type"),
                "fk_to": rel.get("table"),
                "related_name": rel.get("accessor_name") or rel.get("related_name"),
                "through": through.get("table"),
                "db_index": False,
                "relation": "many_to_many",
                "related_model": rel.get("model"),
                "related_query_name": rel.get("related_query_name"),
                "through_source_column": through.get("source_column"),
                "through_target_column": through.get("target_column"),
            }
        )
        if through.get("auto_created") and through.get("table"):
            _through_rows(app_label, model_name, table, m, src, columns, tables, indexes, latest)
    for ix in model.get("indexes") or []:
        cols = [c.lstrip("-") for c in ix.get("columns") or []] + [
            f"({e})" for e in ix.get("expressions") or []
        ]
        index(
            str(ix.get("name")),
            cols,
            f"Meta.indexes of {model_name}",
            fields=list(ix.get("fields") or []),
            method=_INDEX_METHODS.get(str(ix.get("type")), "btree"),
            predicate=ix.get("condition"),
            opclasses=list(ix.get("opclasses") or []) or None,
        )
    for names in model.get("unique_together") or []:
        cols = [fields_by_name.get(n, {}).get("column") or n for n in names]
        index(
            auto_index_name(table, cols, "_uniq"),
            cols,
            f"unique_together of {model_name}",
            unique=True,
            fields=list(names),
        )
    for names in model.get("index_together") or []:
        cols = [fields_by_name.get(n, {}).get("column") or n for n in names]
        index(
            auto_index_name(table, cols, "_idx"),
            cols,
            f"index_together of {model_name}",
            fields=list(names),
        )
    for c in model.get("constraints") or []:
        if c.get("type") != "UniqueConstraint":
            continue
        cols = list(c.get("columns") or []) + [f"({e})" for e in c.get("expressions") or []]
        index(
            str(c.get("name")),
            cols,
            f"UniqueConstraint of {model_name}",
            unique=True,
            fields=list(c.get("fields") or []),
            predicate=c.get("condition"),
        )


def _through_rows(
    app_label: str,
    model_name: str,
    table: str,
    m: dict[str, Any],
    src: dict[str, Any],
    columns: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    indexes: list[dict[str, Any]],
    latest: str | None,
) -> None:
    through = m["through"]
    rel = m.get("related") or {}
    t_table = str(through["table"])
    t_model = str(through.get("model", "")).split(".")[-1] or f"{model_name}_{m['name']}"
    tables.append(
        {
            "table": t_table,
            "model": f"{app_label}.{t_model}",
            "app_label": app_label,
            "latest_migration": latest,
            "managed": True,
            "auto_created": True,
            **src,
        }
    )
    base = {"app_label": app_label, "model": t_model, "table": t_table, "inferred": False, **src}
    pairs = (
        (
            through.get("source_field"),
            through.get("source_column"),
            table,
            f"{app_label}.{model_name}",
        ),
        (
            through.get("target_field"),
            through.get("target_column"),
            rel.get("table"),
            rel.get("model"),
        ),
    )
    for fname, col, fk_to, related in pairs:
        if not col:
            continue
        columns.append(
            {
                **base,
                "field": fname,
                "column": col,
                "field_type": "ForeignKey",
                "fk_to": fk_to,
                "db_index": True,
                "relation": "foreign_key",
                "related_model": related,
                "fk_column": "id",
            }
        )
        indexes.append(
            {
                "table": t_table,
                "index": auto_index_name(t_table, [col]),
                "columns": col,
                "method": "btree",
                "unique": False,
                "primary": False,
                "origin": "django_models",
                "declared_by": f"many-to-many {model_name}.{m['name']} (auto-created through table)",
                "app_label": app_label,
                "model": t_model,
                "fields": fname,
                **src,
            }
        )
    cols = [c for c in (through.get("source_column"), through.get("target_column")) if c]
    if len(cols) == 2:
        indexes.append(
            {
                "table": t_table,
                "index": auto_index_name(t_table, cols, "_uniq"),
                "columns": ", ".join(cols),
                "method": "btree",
                "unique": True,
                "primary": False,
                "origin": "django_models",
                "declared_by": f"many-to-many {model_name}.{m['name']} (auto-created through table)",
                "app_label": app_label,
                "model": t_model,
                **src,
            }
        )


# --------------------------------------------------------------------------------------------
# inference without a dump
# --------------------------------------------------------------------------------------------
def infer_models(
    tables: pd.DataFrame,
    indexes: pd.DataFrame,
    *,
    seen_columns: Iterable[tuple[str, str]] = (),
) -> pd.DataFrame:
    """``schema_columns`` rows guessed from Django's naming, every one marked ``inferred``.

    * a table ``app_model`` → app label ``app`` and model ``Model`` (the class name's case is
      lost: Django lower-cases it; ``model`` holds the capitalised lower-case name);
    * a table ``<app>_<model>_<field>`` next to ``<app>_<model>`` with two ``…_id`` columns → the
      auto-created through table of the many-to-many field ``field`` (``through`` is set on the
      owning model's row);
    * a column ``<name>_id`` → foreign key field ``name`` to the table ``<app>_<name>`` when one
      exists (``fk_to`` empty otherwise);
    * an index whose name is exactly what Django's schema editor would generate for its columns
      (the digest is recomputed) → ``db_index`` True: Django's automatic index.

    Columns come from the indexes' keys and from ``seen_columns`` (table, column) pairs, such as
    the columns a workload's statements use.
    """
    table_names: list[str] = []
    if len(tables) and "table" in tables:
        table_names += [str(t) for t in tables["table"].dropna().unique()]
    if len(indexes) and "table" in indexes:
        table_names += [str(t) for t in indexes["table"].dropna().unique()]
    seen = list(seen_columns)
    table_names += [t for t, _ in seen]
    known = set(table_names)
    cols: dict[tuple[str, str], bool] = {}
    if len(indexes):
        for rec in indexes.itertuples(index=False):
            table, name, columns = (
                getattr(rec, "table", None),
                getattr(rec, "index", None),
                getattr(rec, "columns", None),
            )
            if not isinstance(table, str) or not isinstance(columns, str):
                continue
            keys = [c.strip() for c in columns.split(",") if c.strip() and "(" not in c]
            auto = isinstance(name, str) and is_auto_index_name(name, table, keys) is not None
            for k in keys:
                cols[(table, k)] = (
                    cols.get((table, k), False)
                    or auto
                    or bool(getattr(rec, "unique", False) is True)
                )
    for t, c in seen:
        cols.setdefault((t, c), False)
    rows: list[dict[str, Any]] = []
    for table in dict.fromkeys(table_names):
        app, _, rest = table.partition("_")
        if not rest:
            continue
        parent = next((t for t in known if t != table and table.startswith(t + "_")), None)
        table_cols = [c for (t, c) in cols if t == table]
        fk_cols = [c for c in table_cols if c.endswith("_id")]
        is_through = parent is not None and len(fk_cols) == 2
        model = rest.replace("_", " ").title().replace(" ", "") if not is_through else rest
        for column in table_cols:
            fk_to = None
            field = column
            ftype = None
            if column.endswith("_id") and column != "id":
                field = column[:-3]
                ftype = "ForeignKey"
                fk_to = next((t for t in (f"{app}_{field}",) if t in known), None)
            rows.append(
                {
                    "app_label": app,
                    "model": model,
                    "table": table,
                    "field": field,
                    "column": column,
                    "field_type": ftype,
                    "fk_to": fk_to,
                    "db_index": cols[(table, column)],
                    "inferred": True,
                }
            )
        if is_through and parent is not None:
            field = table[len(parent) + 1 :]
            rows.append(
                {
                    "app_label": app,
                    "model": parent.partition("_")[2].replace("_", " ").title().replace(" ", ""),
                    "table": parent,
                    "field": field,
                    "column": None,
                    "field_type": "ManyToManyField",
                    "through": table,
                    "db_index": False,
                    "inferred": True,
                }
            )
    return conform(pd.DataFrame(rows), SCHEMA_COLUMNS) if rows else empty(SCHEMA_COLUMNS)
