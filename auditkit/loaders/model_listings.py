"""Model listings written by other tools → the same frames as auditkit's own model dump.

Two loaders, both ending in :func:`auditkit.loaders.django_models` rows (``schema_columns``,
``schema_tables``, ``schema_indexes``), so :class:`auditkit.analysis.code.CodeMap` names the
client's models, fields and relations from them:

* ``graph_models_json`` — ``manage.py graph_models <apps> --json`` of django-extensions (its
  ``graphs`` → ``models`` → ``fields`` and ``relations``). It names apps, models, fields, field
  classes, primary keys, foreign keys with their target model and related query name, and
  auto-created many-to-many fields, but **not** tables or columns: those are Django's
  conventions (``<app_label>_<model lower>``, ``<field>_id``, ``<table>_<m2m field>``), so every
  row carries ``table_inferred`` = True and ``column_inferred`` = True (extras). A model with a
  custom ``Meta.db_table`` or a field with ``db_column`` is named wrongly there: prefer
  ``manage.py auditkit_dump_models`` when the client can run it. The app label is the last
  part of the app's module (``django.contrib.auth`` → ``auth``).
* ``model_listing_json`` — any JSON that lists models with their table and fields: a list of
  model objects, an object of them keyed by ``app_label.Model``, or either under ``"models"``.
  A model: ``db_table`` (or ``table``), ``app_label`` + ``name``/``object_name``/``model`` (or a
  ``label``/``model`` ``app.Model``), ``fields`` with ``name``, ``column``/``attname``/``db_column``,
  ``type``/``internal_type``/``class``, ``related_model``/``to``/``target`` (``app.Model`` or a
  table), ``related_name``, ``many_to_many`` (a flag on a field, or a list beside ``fields``),
  ``primary_key``, ``unique``, ``db_index``, ``null``; ``indexes`` and ``constraints`` with
  ``name``, ``fields`` and/or ``columns``; ``unique_together``. Missing columns follow Django's
  conventions (``<field>_id`` for a foreign key) and are marked ``column_inferred``.

Both keep ``source_tool`` (``django-extensions graph_models`` or ``model listing``) as an extra.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import InputError
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.django_models import FORMAT, _model_rows
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import SCHEMA_COLUMNS, SCHEMA_INDEXES, SCHEMA_TABLES, conform, empty

__all__ = ["GraphModelsLoader", "ModelListingLoader"]

_RELATIONS = {"ForeignKey": "foreign_key", "OneToOneField": "one_to_one"}


def _read_json(path: str | Path, loader: Loader) -> tuple[Any, ParseReport]:
    report = ParseReport(str(path), loader.name)
    text, _bad = read_text(path)
    report.lines = text.count("\n") + 1
    try:
        return json.loads(text), report
    except (json.JSONDecodeError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(
            f"not valid JSON ({getattr(exc, 'msg', type(exc).__name__)})",
            path=path,
            line=line,
            hint=loader.expected,
        ) from None


def _frames(
    columns: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    indexes: list[dict[str, Any]],
    extras: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    out = {}
    for name, rows, schema in (
        ("schema_columns", columns, SCHEMA_COLUMNS),
        ("schema_tables", tables, SCHEMA_TABLES),
        ("schema_indexes", indexes, SCHEMA_INDEXES),
    ):
        for r in rows:
            for k, v in extras.items():
                r.setdefault(k, v)
        out[name] = conform(pd.DataFrame(rows), schema) if rows else empty(schema)
    return out


def _finish(
    loader: Loader,
    path: str | Path,
    report: ParseReport,
    frames: dict[str, pd.DataFrame],
    began: float,
) -> LoadResult:
    for name, df in frames.items():
        report.events[name] = len(df)
    report.elapsed_s = time.perf_counter() - began
    report.check()
    if report.parsed == 0:
        raise nothing_parsed(loader, path, report)
    return LoadResult(loader.name, frames, report, primary=loader.frame)


def _convention_table(app_label: str, model: str) -> str:
    return f"{app_label}_{model.lower()}"


# --------------------------------------------------------------------------------------------
# django-extensions graph_models --json
# --------------------------------------------------------------------------------------------
def _label_of_module(module: str) -> str:
    """``library_models`` / ``django_contrib_auth_models`` → ``library`` / ``auth``."""
    base = re.sub(r"_models(?:_\w+)?$", "", module)
    return base.rsplit("_", 1)[-1] if "_" in base else base


@register
class GraphModelsLoader(Loader):
    """``manage.py graph_models --json`` (django-extensions): models, fields and relations."""

    name = "graph_models_json"
    frame = "schema_columns"
    description = "django-extensions graph_models --json (model names; tables by convention)"
    expected = 'the JSON of "manage.py graph_models <apps> --json" (an object with "graphs")'

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip()[:4000]
        if not start.startswith("{") or '"graphs"' not in start:
            return 0.0
        return 1.0 if '"cli_options"' in start or '"cluster_app_name"' in start else 0.7

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        began = time.perf_counter()
        data, report = _read_json(path, self)
        graphs = data.get("graphs") if isinstance(data, dict) else None
        if not isinstance(graphs, list):
            raise InputError('no "graphs" list', path=path, hint=self.expected)
        vendor = str(options.get("vendor") or "postgresql")
        # every listed model: (module, name) → app label, so relations find their target
        labels: dict[tuple[str, str], str] = {}
        for g in graphs:
            app = str((g or {}).get("app_name") or "")
            label = app.rsplit(".", 1)[-1] if app else ""
            for m in (g or {}).get("models") or []:
                if isinstance(m, dict) and m.get("name"):
                    labels[(str(m.get("app_name") or ""), str(m["name"]))] = (
                        label or _label_of_module(str(m.get("app_name") or ""))
                    )
        columns: list[dict[str, Any]] = []
        tables: list[dict[str, Any]] = []
        indexes: list[dict[str, Any]] = []
        record = 0
        for g in graphs:
            for m in (g or {}).get("models") or []:
                record += 1
                if not isinstance(m, dict) or not m.get("name"):
                    report.skip(record, "model without a name", str(m)[:160])
                    continue
                key = (str(m.get("app_name") or ""), str(m["name"]))
                app_label = labels[key]
                model = _graph_model(m, app_label, labels)
                report.ok()
                src = {"source_file": str(path), "source_line": record}
                _model_rows(
                    app_label, str(m["name"]), model, None, vendor, src, columns, tables, indexes
                )
        extras = {
            "table_inferred": True,
            "column_inferred": True,
            "source_tool": "django-extensions graph_models",
        }
        frames = _frames(columns, tables, indexes, extras)
        if len(frames["schema_tables"]):
            report.warn(
                "graph_models names no tables or columns: they follow Django's conventions "
                "(a custom Meta.db_table or db_column is missed); auditkit_dump_models names them exactly"
            )
        return _finish(self, path, report, frames, began)


def _graph_model(
    m: dict[str, Any], app_label: str, labels: dict[tuple[str, str], str]
) -> dict[str, Any]:
    """One graph_models model as a model of auditkit's dump (tables by Django's convention)."""
    name = str(m["name"])
    table = _convention_table(app_label, name)
    relations = {str(r.get("name")): r for r in m.get("relations") or [] if isinstance(r, dict)}
    fields: list[dict[str, Any]] = []
    m2m: list[dict[str, Any]] = []
    for f in m.get("fields") or []:
        if not isinstance(f, dict) or not f.get("name"):
            continue
        fname = str(f["name"])
        ftype = str(f.get("type") or "")
        base_type, _, target_field = ftype.partition(" (")
        rel = relations.get(fname)
        field: dict[str, Any] = {
            "name": fname,
            "type": base_type,
            "column": fname,
            "primary_key": bool(f.get("primary_key")),
        }
        if f.get("relation") and rel is not None:
            target = _graph_target(rel, labels, name)
            field.update(
                {
                    "column": f"{fname}_id",
                    "relation": _RELATIONS.get(base_type, "foreign_key"),
                    "db_index": True,
                    "unique": base_type == "OneToOneField" or None,
                    "related": {**target, "column": target_field.rstrip(")") or "id"},
                }
            )
        fields.append(field)
    for fname, rel in relations.items():
        if str(rel.get("type")) != "ManyToManyField":
            continue
        target = _graph_target(rel, labels, name)
        target_model = str(target["model"]).split(".")[-1]
        same = target_model == name
        m2m.append(
            {
                "name": fname,
                "type": "ManyToManyField",
                "related": target,
                "through": {
                    "table": f"{table}_{fname}",
                    "model": f"{app_label}.{name}_{fname}",
                    "auto_created": True,
                    "source_field": f"from_{name.lower()}" if same else name.lower(),
                    "source_column": f"from_{name.lower()}_id" if same else f"{name.lower()}_id",
                    "target_field": f"to_{target_model.lower()}" if same else target_model.lower(),
                    "target_column": f"to_{target_model.lower()}_id"
                    if same
                    else f"{target_model.lower()}_id",
                },
            }
        )
    return {"db_table": table, "fields": fields, "many_to_many": m2m}


def _graph_target(
    rel: dict[str, Any], labels: dict[tuple[str, str], str], owner: str
) -> dict[str, Any]:
    target = str(rel.get("target") or "")
    module = str(rel.get("target_app") or "")
    label = labels.get((module, target)) or _label_of_module(module)
    text = str(rel.get("label") or "")
    m = re.search(r"\(([^()]*)\)\s*$", text)
    query_name = m.group(1).strip() if m else None
    # graph_models prints the related query name: the model's name in lower case unless
    # related_name (or related_query_name) was set, and then the accessor is that name
    accessor = (
        f"{owner.lower()}_set" if query_name is None or query_name == owner.lower() else query_name
    )
    return {
        "model": f"{label}.{target}",
        "table": _convention_table(label, target),
        "related_query_name": query_name,
        "accessor_name": accessor,
    }


# --------------------------------------------------------------------------------------------
# any JSON listing of models
# --------------------------------------------------------------------------------------------
_TABLE_KEYS = ("db_table", "table", "table_name")
_FIELD_COLUMN = ("column", "attname", "db_column", "column_name")
_FIELD_TYPE = ("type", "internal_type", "field_type", "class", "field_class")
_FIELD_TARGET = ("related_model", "to", "target", "related_to", "fk_to")


def _get(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = d.get(k)
        if v not in (None, ""):
            return v
    return None


def _models_in(data: Any) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(key, model object) for every object of ``data`` that looks like a model."""
    if isinstance(data, dict) and "models" in data and not isinstance(data.get("fields"), list):
        yield from _models_in(data["models"])
        return
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                yield None, item
        return
    if isinstance(data, dict):
        if isinstance(data.get("fields"), list):
            yield None, data
            return
        for key, item in data.items():
            if isinstance(item, dict):
                if isinstance(item.get("fields"), list) or _get(item, _TABLE_KEYS):
                    yield str(key), item
                elif isinstance(item.get("models"), (dict, list)):  # {"app": {"models": …}}
                    for sub_key, sub in _models_in(item["models"]):
                        yield (
                            (f"{key}.{sub_key}" if sub_key else None),
                            {
                                "app_label": key,
                                **sub,
                            },
                        )


def _name_of(key: str | None, m: dict[str, Any]) -> tuple[str | None, str | None]:
    label = _get(m, ("label", "model_label"))
    app = _get(m, ("app_label", "app"))
    name = _get(m, ("object_name", "name", "model_name", "class_name"))
    model = m.get("model")
    if isinstance(model, str) and "." in model and not label:
        label = model
    elif isinstance(model, str) and not name:
        name = model
    for text in (label, key):
        if isinstance(text, str) and "." in text:
            a, _, n = text.rpartition(".")
            app = app or a.rsplit(".", 1)[-1]
            name = name if name and "." not in str(name) else n
            break
    if name is None and key and "." not in key:
        name = key
    return (None if app is None else str(app)), (None if name is None else str(name))


@register
class ModelListingLoader(Loader):
    """Any JSON that lists Django models with their table and fields (not auditkit's own dump)."""

    name = "model_listing_json"
    frame = "schema_columns"
    description = "JSON listing of models with db_table and fields (other tools' model dumps)"
    expected = (
        'a JSON list (or object) of models, each with "db_table" and "fields" (name, column or '
        "attname, type, related_model, many_to_many)"
    )

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip()[:8000]
        if not start.startswith(("{", "[")) or f'"{FORMAT}"' in start or '"graphs"' in start:
            return 0.0
        if '"fields"' not in start or not re.search(r'"(?:db_table|table)"\s*:', start):
            return 0.0
        return 0.9 if re.search(r'"(?:column|attname|db_column)"\s*:', start) else 0.6

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        began = time.perf_counter()
        data, report = _read_json(path, self)
        vendor = str(options.get("vendor") or "postgresql")
        found = list(_models_in(data))
        named: list[tuple[int, str, str, dict[str, Any]]] = []
        for record, (key, m) in enumerate(found, start=1):
            app, name = _name_of(key, m)
            if not name or not isinstance(m.get("fields"), list):
                report.skip(record, "no model name or no fields list", json.dumps(m)[:160])
                continue
            if not app:
                table = _get(m, _TABLE_KEYS)
                app = str(table).partition("_")[0] if table else None
            if not app:
                report.skip(record, "no app label and no table", name)
                continue
            named.append((record, app, name, m))
        by_label = {f"{a}.{n}".lower(): (a, n, m) for _, a, n, m in named}
        columns: list[dict[str, Any]] = []
        tables: list[dict[str, Any]] = []
        indexes: list[dict[str, Any]] = []
        for record, app, name, m in named:
            model, inferred = _listing_model(app, name, m, by_label)
            report.ok()
            src = {"source_file": str(path), "source_line": record}
            start = len(columns), len(tables)
            _model_rows(app, name, model, None, vendor, src, columns, tables, indexes)
            for r in columns[start[0] :]:
                r["column_inferred"] = (r.get("field"), r.get("table")) in inferred
            for r in tables[start[1] :]:
                r["table_inferred"] = not _get(m, _TABLE_KEYS)
        extras = {"source_tool": "model listing"}
        return _finish(self, path, report, _frames(columns, tables, indexes, extras), began)


def _table_for(
    target: str, by_label: dict[str, tuple[str, str, dict[str, Any]]]
) -> tuple[str, str]:
    """(model label, table) of a related model named ``app.Model`` or by its table."""
    hit = by_label.get(target.lower())
    if hit:
        app, name, m = hit
        return f"{app}.{name}", str(_get(m, _TABLE_KEYS) or _convention_table(app, name))
    for app, name, m in by_label.values():
        if str(_get(m, _TABLE_KEYS) or "") == target:
            return f"{app}.{name}", target
    if "." in target:
        app, _, name = target.rpartition(".")
        return target, _convention_table(app.rsplit(".", 1)[-1], name)
    return target, target


def _listing_model(
    app: str,
    name: str,
    m: dict[str, Any],
    by_label: dict[str, tuple[str, str, dict[str, Any]]],
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """A listed model as a model of auditkit's dump, and the (field, table) whose column is a guess."""
    table = str(_get(m, _TABLE_KEYS) or _convention_table(app, name))
    inferred: set[tuple[str, str]] = set()
    fields: list[dict[str, Any]] = []
    m2m: list[dict[str, Any]] = []
    listed_m2m = [f for f in m.get("many_to_many") or [] if isinstance(f, dict)]
    for f in [*(m.get("fields") or []), *listed_m2m]:
        if not isinstance(f, dict) or not f.get("name"):
            continue
        fname = str(f["name"])
        ftype = str(_get(f, _FIELD_TYPE) or "")
        ftype = ftype.rsplit(".", 1)[-1].partition(" (")[0]
        target = _get(f, _FIELD_TARGET)
        if isinstance(target, dict):
            target = _get(target, ("label", "model", "table", "db_table"))
        is_m2m = bool(f.get("many_to_many")) or ftype == "ManyToManyField" or f in listed_m2m
        related: dict[str, Any] = {}
        if target:
            label, rtable = _table_for(str(target), by_label)
            related = {
                "model": label,
                "table": rtable,
                "column": "id",
                "accessor_name": f.get("related_name"),
                "related_query_name": f.get("related_query_name"),
            }
        if is_m2m:
            through: dict[str, Any] = f["through"] if isinstance(f.get("through"), dict) else {}
            t_name = str(related.get("model", "")).split(".")[-1] or "target"
            m2m.append(
                {
                    "name": fname,
                    "type": "ManyToManyField",
                    "related": related,
                    "through": {
                        "table": through.get("table")
                        or (f.get("through") if isinstance(f.get("through"), str) else None)
                        or f.get("db_table")
                        or f"{table}_{fname}",
                        "auto_created": through.get("auto_created", True),
                        "source_column": through.get("source_column") or f"{name.lower()}_id",
                        "target_column": through.get("target_column") or f"{t_name.lower()}_id",
                        "source_field": name.lower(),
                        "target_field": t_name.lower(),
                    },
                }
            )
            continue
        column = _get(f, _FIELD_COLUMN)
        if column is None:
            column = f"{fname}_id" if target else fname
            inferred.add((fname, table))
        relation = _RELATIONS.get(ftype, "foreign_key") if target else None
        fields.append(
            {
                "name": fname,
                "type": ftype or None,
                "column": str(column),
                "null": f.get("null"),
                "unique": f.get("unique"),
                "primary_key": bool(f.get("primary_key")),
                "db_index": f.get("db_index", bool(target)),
                "relation": relation,
                "related": related,
            }
        )
    model: dict[str, Any] = {
        "db_table": table,
        "fields": fields,
        "many_to_many": m2m,
        "indexes": [_listing_index(ix) for ix in m.get("indexes") or [] if isinstance(ix, dict)],
        "constraints": [
            {
                **_listing_index(c),
                "type": c.get("type") or ("UniqueConstraint" if c.get("unique", True) else None),
            }
            for c in m.get("constraints") or []
            if isinstance(c, dict)
            and str(c.get("type") or "UniqueConstraint") == "UniqueConstraint"
        ],
        "unique_together": [list(u) for u in m.get("unique_together") or [] if isinstance(u, list)],
    }
    # index columns given as field names only: the fields' columns
    by_field = {f["name"]: f["column"] for f in fields}
    for ix in [*model["indexes"], *model["constraints"]]:
        if not ix.get("columns"):
            ix["columns"] = [
                ("-" if str(n).startswith("-") else "")
                + by_field.get(str(n).lstrip("-"), str(n).lstrip("-"))
                for n in ix.get("fields") or []
            ]
    return model, inferred


def _listing_index(ix: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": ix.get("name"),
        "fields": list(ix.get("fields") or []),
        "columns": list(ix.get("columns") or []),
        "type": ix.get("type") or ix.get("class"),
        "condition": ix.get("condition"),
        "expressions": list(ix.get("expressions") or []),
    }
