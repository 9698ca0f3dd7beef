"""Build the Django model dump (format ``auditkit.django_models``, version 1).

The format is documented in ``docs/formats/django-models.md``; the loader is
:mod:`auditkit.loaders.django_models`. :func:`dump_models` runs inside a configured Django
project (``manage.py auditkit_dump_models`` calls it). It reads model metadata and migration
files only and reads no row (on PostgreSQL it needs no database connection at all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMAT", "VERSION", "dump_models"]

FORMAT = "auditkit.django_models"
VERSION = 1


def _model_label(model: Any) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def _related(field: Any) -> dict[str, Any]:
    remote = field.remote_field
    target = remote.model
    out: dict[str, Any] = {
        "model": _model_label(target),
        "table": target._meta.db_table,
        "related_name": remote.related_name,
        "related_query_name": field.related_query_name(),
    }
    try:
        out["accessor_name"] = remote.get_accessor_name()
    except Exception:  # hidden reverse relation ('+')
        out["accessor_name"] = None
    if getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False):
        target_field = field.target_field
        out["field"] = target_field.name
        out["column"] = target_field.column
        on_delete = getattr(remote, "on_delete", None)
        out["on_delete"] = getattr(on_delete, "__name__", None)
    return out


def _field(field: Any, connection: Any) -> dict[str, Any]:
    try:
        db_type = field.db_type(connection)
    except Exception:
        db_type = None
    out: dict[str, Any] = {
        "name": field.name,
        "column": field.column,
        "type": type(field).__name__,
        "internal_type": field.get_internal_type(),
        "db_type": db_type,
        "null": bool(field.null),
        "unique": bool(field.unique),
        "db_index": bool(field.db_index),
        "primary_key": bool(field.primary_key),
    }
    if field.is_relation and field.remote_field is not None:
        out["relation"] = "one_to_one" if field.one_to_one else "foreign_key"
        out["related"] = _related(field)
    return out


def _m2m(field: Any) -> dict[str, Any]:
    through = field.remote_field.through
    return {
        "name": field.name,
        "type": type(field).__name__,
        "related": _related(field),
        "through": {
            "model": _model_label(through),
            "table": through._meta.db_table,
            "auto_created": bool(through._meta.auto_created),
            "source_column": field.m2m_column_name(),
            "target_column": field.m2m_reverse_name(),
            "source_field": field.m2m_field_name(),
            "target_field": field.m2m_reverse_field_name(),
        },
    }


def _expressions(obj: Any, model: Any, connection: Any) -> list[str]:
    """SQL of an index's or constraint's expressions (empty for field-based ones)."""
    out = []
    for expression in getattr(obj, "expressions", ()) or ():
        try:
            from django.db.models.sql import Query

            query = Query(model, alias_cols=False)
            compiler = query.get_compiler(connection=connection)
            resolved = expression.resolve_expression(query)
            sql, params = compiler.compile(resolved)
            out.append(sql % tuple(repr(p) for p in params) if params else sql)
        except Exception:
            out.append(str(expression))
    return out


def _columns(model: Any, names: list[str]) -> list[str]:
    cols = []
    for name in names:
        desc = name.startswith("-")
        field = model._meta.get_field(name.lstrip("-"))
        cols.append(("-" if desc else "") + field.column)
    return cols


def _condition(obj: Any, model: Any, connection: Any) -> str | None:
    cond = getattr(obj, "condition", None)
    if cond is None:
        return None
    try:
        from django.db.models.sql import Query

        query = Query(model, alias_cols=False)
        where = query.build_where(cond)
        sql, params = where.as_sql(query.get_compiler(connection=connection), connection)
        return sql % tuple(repr(p) for p in params) if params else sql
    except Exception:
        return str(cond)


def _indexes(model: Any, connection: Any) -> list[dict[str, Any]]:
    out = []
    for index in model._meta.indexes:
        out.append(
            {
                "name": index.name,
                "type": type(index).__name__,
                "fields": list(index.fields),
                "columns": _columns(model, list(index.fields)),
                "expressions": _expressions(index, model, connection),
                "opclasses": list(index.opclasses),
                "include": list(getattr(index, "include", ()) or ()),
                "condition": _condition(index, model, connection),
            }
        )
    return out


def _constraints(model: Any, connection: Any) -> list[dict[str, Any]]:
    out = []
    for constraint in model._meta.constraints:
        fields = list(getattr(constraint, "fields", ()) or ())
        entry: dict[str, Any] = {"name": constraint.name, "type": type(constraint).__name__}
        if fields:
            entry["fields"] = fields
            entry["columns"] = _columns(model, fields)
        expressions = _expressions(constraint, model, connection)
        if expressions:
            entry["expressions"] = expressions
        condition = _condition(constraint, model, connection)
        if condition:
            entry["condition"] = condition
        check = getattr(constraint, "check", None) or getattr(constraint, "condition", None)
        if type(constraint).__name__ == "CheckConstraint" and check is not None:
            entry["check"] = str(check)
        out.append(entry)
    return out


def _migrations() -> dict[str, list[str]]:
    """app label → names of its latest (leaf) migrations, read from the migration files."""
    try:
        from django.db.migrations.loader import MigrationLoader

        loader = MigrationLoader(None, ignore_no_migrations=True)
    except Exception:
        return {}
    leaves: dict[str, list[str]] = {}
    for app_label, name in loader.graph.leaf_nodes():
        leaves.setdefault(app_label, []).append(name)
    return leaves


def dump_models(app_labels: list[str] | None = None, *, using: str = "default") -> dict[str, Any]:
    """The model dump of the running Django project (every app, or those in ``app_labels``).

    Unmanaged models and proxies are included and flagged; auto-created many-to-many
    through tables appear under their owning field. No table row is read.
    """
    import django
    from django.apps import apps
    from django.db import connections

    connection = connections[using]
    leaves = _migrations()
    out_apps: dict[str, Any] = {}
    for config in apps.get_app_configs():
        if app_labels and config.label not in app_labels:
            continue
        models: dict[str, Any] = {}
        for model in config.get_models(include_auto_created=False):
            meta = model._meta
            models[model.__name__] = {
                "db_table": meta.db_table,
                "managed": bool(meta.managed),
                "proxy": bool(meta.proxy),
                "pk": meta.pk.name if meta.pk is not None else None,
                "parents": [_model_label(p) for p in meta.parents],
                "fields": [_field(f, connection) for f in meta.local_concrete_fields],
                "many_to_many": [_m2m(f) for f in meta.local_many_to_many],
                "indexes": _indexes(model, connection),
                "unique_together": [list(t) for t in meta.unique_together],
                "index_together": [list(t) for t in getattr(meta, "index_together", ()) or ()],
                "constraints": _constraints(model, connection),
            }
        if not models and config.label not in leaves:
            continue
        out_apps[config.label] = {
            "name": config.name,
            "latest_migrations": sorted(leaves.get(config.label, [])),
            "models": models,
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "django_version": django.get_version(),
        "database": {"alias": using, "vendor": connection.vendor},
        "apps": out_apps,
    }
