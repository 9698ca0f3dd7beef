"""Writing index changes: SQL DDL, ``Meta.indexes`` entries and migrations that apply.

Every index change auditkit recommends is given three ways, all written from the client's own
models and fields (:class:`~auditkit.analysis.code.CodeMap`):

* the SQL (``CREATE INDEX CONCURRENTLY`` / ``DROP INDEX CONCURRENTLY`` on PostgreSQL,
  ``ALGORITHM=INPLACE, LOCK=NONE`` on MySQL), to run by hand;
* the Django change (a ``models.Index(...)`` entry for the model's ``Meta.indexes``, or the
  entry to remove), so Django's state matches the database;
* the migration **operation** (``AddIndexConcurrently``, ``RemoveIndexConcurrently``,
  ``RunSQL``), each finding's own.

Applying several findings' migrations one by one would leave an app with two leaf
migrations, so :func:`migrations_for` puts every operation of an app into **one** migration,
numbered after the app's latest migration when the model dump names it. When it does not,
the migration cannot be numbered and says so: its text tells how to create the file
(``makemigrations APP --empty``) and gives the operations to paste — never a made-up name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auditkit.analysis.catalog import IndexInfo
from auditkit.analysis.code import CodeMap
from auditkit.django.naming import meta_index_name
from auditkit.findings import Finding, Recommendation
from auditkit.sql.fingerprint import Dialect

__all__ = [
    "CandidateKey",
    "MigrationFile",
    "ddl_statement",
    "drop_recommendation",
    "index_name",
    "meta_index_entry",
    "migration_operation",
    "migrations_for",
    "mysql_add_index",
]


@dataclass(frozen=True)
class CandidateKey:
    """One key of a proposed index."""

    key: str  # normal form (column name or expression key)
    column: str  # the underlying column
    role: str  # eq | in | null | range | like | order | group | join
    expression_sql: str | None = None
    function: str | None = None
    unit: str | None = None
    opclass: str | None = None
    descending: bool = False
    #: MySQL: index only the first characters of a TEXT/BLOB column (a key-length limit)
    prefix: int | None = None

    def ddl(self) -> str:
        text = f'"{self.column}"' if self.expression_sql is None else f"({self.expression_sql})"
        if self.prefix:
            text += f"({self.prefix})"
        if self.opclass:
            text += f" {self.opclass}"
        if self.descending:
            text += " DESC"
        return text

    def label(self) -> str:
        text = self.column if self.expression_sql is None else self.expression_sql.replace('"', "")
        if self.prefix:
            text += f"({self.prefix})"
        if self.opclass:
            text += f" {self.opclass}"
        if self.descending:
            text += " DESC"
        return text

    @property
    def ident(self) -> tuple[str, str | None, bool]:
        return (self.key, self.opclass, self.descending)


def index_name(table: str, keys: Sequence[CandidateKey]) -> str:
    """The name Django would give the ``Meta.indexes`` entry (``Index.set_name_with_model``)."""
    cols = []
    for k in keys:
        base = k.column if k.expression_sql is None else f"{k.column}_{(k.function or 'expr')[:5]}"
        if k.opclass:
            base += "_pattern"
        cols.append(("-" if k.descending else "") + base)
    return meta_index_name(table, cols)


def ddl_statement(table: str, keys: Sequence[CandidateKey], name: str, dialect: Dialect) -> str:
    """``CREATE INDEX`` without a write lock, in the dialect's syntax."""
    text = ", ".join(k.ddl() for k in keys)
    if dialect == "mysql":
        text = text.replace('"', "`")
        return f"ALTER TABLE `{table}` ADD INDEX `{name}` ({text}), ALGORITHM=INPLACE, LOCK=NONE;"
    return f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ({text});'


def _expression(k: CandidateKey, field_name: str) -> tuple[str, list[str]] | None:
    f = json.dumps(field_name)
    if k.function == "upper":
        return f"Upper({f})", ["from django.db.models.functions import Upper"]
    if k.function == "lower":
        return f"Lower({f})", ["from django.db.models.functions import Lower"]
    if k.function == "date_trunc" and k.unit:
        return f"Trunc({f}, {json.dumps(k.unit)})", ["from django.db.models.functions import Trunc"]
    if k.function == "date":
        return f"TruncDate({f})", ["from django.db.models.functions import TruncDate"]
    return None


def meta_index_entry(
    table: str, keys: Sequence[CandidateKey], name: str, code: CodeMap
) -> tuple[str, list[str]] | None:
    """The ``models.Index(...)`` entry and the imports it needs; None when an expression has no
    Django equivalent (the index is then created with ``RunSQL`` only)."""
    fields = [code.field_name(table, k.column) for k in keys]
    if any(k.prefix for k in keys):
        return None  # models.Index has no key prefix length: RunSQL creates it
    if not any(k.expression_sql for k in keys):
        names = [("-" if k.descending else "") + f for k, f in zip(keys, fields, strict=True)]
        args = f"fields={json.dumps(names)}, name={json.dumps(name)}"
        if any(k.opclass for k in keys):
            args += f", opclasses={json.dumps([k.opclass or '' for k in keys])}"
        return f"models.Index({args})", ["from django.db import models"]
    parts: list[str] = []
    imports = ["from django.db import models"]
    for k, f in zip(keys, fields, strict=True):
        if k.expression_sql is None:
            expr = f"F({json.dumps(f)})"
            imports.append("from django.db.models import F")
        else:
            rendered = _expression(k, f)
            if rendered is None:
                return None
            expr, imp = rendered
            imports += imp
        if k.descending:
            expr += ".desc()"
        if k.opclass:
            expr = f"OpClass({expr}, name={json.dumps(k.opclass)})"
            imports.append("from django.contrib.postgres.indexes import OpClass")
        parts.append(expr)
    return f"models.Index({', '.join(parts)}, name={json.dumps(name)})", sorted(set(imports))


def migration_operation(
    model_name: str,
    entry: tuple[str, list[str]] | None,
    create_sql: str,
    name: str,
    dialect: Dialect,
) -> str:
    """The migration operation adding one index, preceded by the imports it needs.

    ``AddIndexConcurrently`` (PostgreSQL) or ``AddIndex`` with the ``Meta.indexes`` entry;
    ``RunSQL`` with a reverse when the index has no Django equivalent.
    """
    if entry is None:
        create = create_sql.replace(" IF NOT EXISTS", "").rstrip(";")
        table = re.match(r"ALTER TABLE (`[^`]+`)", create)
        drop = (
            f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'
            if dialect == "postgres"
            else f"ALTER TABLE {table.group(1)} DROP INDEX `{name}`, ALGORITHM=INPLACE, LOCK=NONE"
            if table
            else f"DROP INDEX `{name}`"
        )
        return (
            "from django.db import migrations\n\n"
            f"migrations.RunSQL(\n    sql={json.dumps(create)},\n    reverse_sql={json.dumps(drop)},\n)"
        )
    text, imports = entry
    if dialect == "postgres":
        imports = [*imports, "from django.contrib.postgres.operations import AddIndexConcurrently"]
        op = "AddIndexConcurrently"
    else:
        imports = [*imports, "from django.db import migrations"]
        op = "migrations.AddIndex"
    return (
        "\n".join(_sorted_imports(imports))
        + f"\n\n{op}(\n    model_name={json.dumps(model_name)},\n    index={text},\n)"
    )


def _sorted_imports(imports: Iterable[str]) -> list[str]:
    unique = sorted(set(imports))
    return [i for i in unique if i.startswith("from django.contrib")] + [
        i for i in unique if not i.startswith("from django.contrib")
    ]


# -- drops ------------------------------------------------------------------------------------
def drop_recommendation(ix: IndexInfo, code: CodeMap, dialect: Dialect, why: str) -> Recommendation:
    """How to drop ``ix``: the SQL, the Django change and the migration operation, by what
    declares the index (a ``Meta.indexes`` entry, a field's ``db_index``/foreign key, a
    many-to-many through table, or nothing Django knows)."""
    sql = (
        f"DROP INDEX CONCURRENTLY IF EXISTS {ix.qualified};"
        if dialect == "postgres"
        else f"ALTER TABLE `{ix.table}` DROP INDEX `{ix.name}`, ALGORITHM=INPLACE, LOCK=NONE;"
    )
    model = code.model(ix.table)
    model_name = ix.model if ix.model else model.name
    declared = ix.declared_by or ""
    if dialect == "mysql":
        create = mysql_add_index(ix)
    else:
        create = re.sub(
            r"^CREATE (UNIQUE )?INDEX ",
            lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ",
            ix.definition or "",
        )
    migration: str | None
    if declared.startswith("Meta.indexes"):
        django_change = (
            f"Remove the models.Index named {json.dumps(ix.name)} from {model_name}.Meta.indexes."
        )
        if dialect == "postgres":
            migration = (
                "from django.contrib.postgres.operations import RemoveIndexConcurrently\n\n"
                f"RemoveIndexConcurrently(model_name={json.dumps(model_name.lower())}, name={json.dumps(ix.name)})"
            )
        else:
            migration = (
                "from django.db import migrations\n\n"
                f"migrations.RemoveIndex(model_name={json.dumps(model_name.lower())}, name={json.dumps(ix.name)})"
            )
    elif "ForeignKey" in declared or "db_index" in declared:
        field_name = (
            ix.fields[0] if ix.fields else code.field_name(ix.table, ix.keys[0].column or "")
        )
        if dialect == "mysql":
            django_change = (
                f"Set db_index=False on {model_name}.{field_name} and run makemigrations "
                f"{model.app_label}; keep the AlterField it writes for Django's state only "
                "(migrations.SeparateDatabaseAndState(state_operations=[…])) and let the "
                "operation below drop the index in place (ALGORITHM=INPLACE, LOCK=NONE: "
                "reads and writes continue)."
            )
            if "ForeignKey" in declared:
                django_change += (
                    " On InnoDB a foreign key needs an index leading with its column: "
                    "another index of the table does, or the drop would fail."
                )
        else:
            django_change = (
                f"Set db_index=False on {model_name}.{field_name} and run makemigrations "
                f"{model.app_label}: the AlterField it writes would drop the index inside a transaction, "
                "locking writes on the table, so make that migration non-atomic (atomic = False) and "
                "wrap its AlterField in migrations.SeparateDatabaseAndState with the operation below as "
                "the database operation."
            )
        migration = _runsql(sql, create, dialect)
    elif "many-to-many" in declared:
        django_change = (
            "Django creates this index for an auto-created many-to-many through table; removing it "
            "needs an explicit through model, and a later migration of the field would recreate it."
        )
        migration = None
    elif declared:
        django_change = f"Declared by {declared}: change that declaration; the SQL drops it."
        migration = _runsql(sql, create, dialect)
    else:
        django_change = (
            "No model declares this index (it was created by hand or by RunSQL): drop it with the "
            "SQL, or with this operation in a migration of the app that owns the table."
        )
        migration = _runsql(sql, create, dialect)
    if model.inferred and not ix.model:
        django_change += " (The model name follows Django's table naming: no model dump was given.)"
    return Recommendation(summary=why, sql=sql, django=django_change, migration=migration)


def mysql_add_index(ix: IndexInfo) -> str:
    """The MySQL statement recreating ``ix`` online (the reverse of its drop); "" when its keys
    are unknown."""
    m = re.match(
        r"^CREATE (UNIQUE |FULLTEXT |SPATIAL )?INDEX `?[^`(]+`? ON `?[^`(]+`? \((.*)\)(?: USING \w+)?;?$",
        (ix.definition or "").strip(),
        re.S,
    )
    if m:
        kind, cols = (m.group(1) or "").strip(), m.group(2)
    elif ix.keys and all(k.column or k.expression for k in ix.keys):
        kind = "UNIQUE" if ix.unique else ""
        cols = ", ".join(
            (f"`{k.column}`" if k.column else f"({k.expression})")
            + (" DESC" if k.descending else "")
            for k in ix.keys
        )
    else:
        return ""
    lock = "" if kind in ("FULLTEXT", "SPATIAL") else ", ALGORITHM=INPLACE, LOCK=NONE"
    return f"ALTER TABLE `{ix.table}` ADD {kind + ' ' if kind else ''}INDEX `{ix.name}` ({cols}){lock};"


def _runsql(drop_sql: str, create_sql: str, dialect: Dialect) -> str | None:
    if not create_sql:
        # without the definition the drop cannot be reversed: the SQL is given, no migration
        return None
    return (
        "from django.db import migrations\n\n"
        f"migrations.RunSQL(\n    sql={json.dumps(drop_sql.rstrip(';'))},\n"
        f"    reverse_sql={json.dumps(create_sql.rstrip(';'))},\n)"
    )


# -- one migration per app ----------------------------------------------------------------------
@dataclass(frozen=True)
class MigrationFile:
    """One app's migration: where it goes (None when the app's latest migration is unknown) and
    its text."""

    app_label: str
    path: str | None
    text: str
    operations: int


def _split(operation: str) -> tuple[list[str], str]:
    lines = operation.strip().splitlines()
    imports = [ln for ln in lines if ln.startswith(("from ", "import "))]
    body = "\n".join(ln for ln in lines if not ln.startswith(("from ", "import "))).strip()
    return imports, body


def _next_number(name: str) -> str | None:
    m = re.match(r"(\d+)_", name)
    return f"{int(m.group(1)) + 1:04d}" if m else None


def migrations_for(findings: Iterable[Finding]) -> list[MigrationFile]:
    """One migration per app holding every index operation of ``findings``.

    Each finding names its app (``metrics.app_label``), the app's latest migration when known
    (``metrics.latest_migration``) and its operation (``recommendation.migration``). Findings on
    Django's own tables are left out (``metrics.django_table``): no client migrates them.
    """
    per_app: dict[str, list[str]] = {}
    latest: dict[str, str | None] = {}
    for f in findings:
        rec = f.recommendation
        app = f.metrics.get("app_label")
        if rec is None or not rec.migration or not app or f.metrics.get("django_table"):
            continue
        per_app.setdefault(str(app), []).append(rec.migration)
        mig = f.metrics.get("latest_migration")
        latest.setdefault(str(app), str(mig) if mig else None)
        if mig and not latest[str(app)]:
            latest[str(app)] = str(mig)
    out = []
    for app, ops in sorted(per_app.items()):
        imports: list[str] = ["from django.db import migrations"]
        bodies = []
        for op in ops:
            imp, body = _split(op)
            imports += imp
            bodies.append("        " + body.replace("\n", "\n        ") + ",")
        concurrent = any("Concurrently" in op or "CONCURRENTLY" in op for op in ops)
        atomic = (
            "    # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction\n"
            "    atomic = False\n\n"
            if concurrent
            else ""
        )
        prev = latest.get(app)
        number = _next_number(prev) if prev else None
        body = (
            "\n".join(_sorted_imports(imports))
            + "\n\n\nclass Migration(migrations.Migration):\n"
            + atomic
            + (
                f"    dependencies = [\n        ({json.dumps(app)}, {json.dumps(prev)}),\n    ]\n\n"
                if prev
                else ""
            )
            + "    operations = [\n"
            + "\n".join(bodies)
            + "\n    ]\n"
        )
        if prev and number:
            path = f"{app}/migrations/{number}_auditkit_indexes.py"
            text = (
                f"# Generated by auditkit: every index change of app {app} in one migration.\n"
                f"# Save as {path}, and make the same changes to the models' Meta.indexes so that\n"
                "# makemigrations finds nothing left to do.\n" + body
            )
        else:
            path = None
            text = (
                f"# Every index change of app {app} in one migration. The model dump did not name\n"
                f"# the app's latest migration, so create the file with\n"
                f"#     python manage.py makemigrations {app} --empty --name auditkit_indexes\n"
                "# and give it these imports, atomic setting and operations (keep the dependencies\n"
                "# makemigrations wrote).\n" + body
            )
        out.append(MigrationFile(app, path, text, len(ops)))
    return out
