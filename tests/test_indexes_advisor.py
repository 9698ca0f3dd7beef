"""The index advisor end to end, on a real Django project and a real PostgreSQL with HypoPG.

A uniquely named database is migrated by ``tests/django_project`` (a copy, so generated
migrations never touch the repository), filled with 50 000 customers and 100 000 orders, and
exercised through the Django ORM with Django's query log on. The planted problems (see
``shop/models.py``): a filter on an unindexed column, a filter + sort needing a composite index,
an ``__iexact`` lookup, a ``__startswith`` lookup, an unused index and a duplicate index — next
to lookups that existing indexes already cover (the automatic FK index, a unique slug, the
primary key). Statistics are collected with :func:`collect_postgres`, read back by the
loaders, and the advisor must find each problem, propose the right index and nothing for the
covered lookups; HypoPG must confirm the cost reductions; the generated migrations must apply
with ``migrate`` and leave ``makemigrations --check`` nothing to do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import REQUIRE_SERVICES, ROOT

import auditkit
from auditkit.checks.indexes import (
    duplicate_indexes,
    index_candidates,
    migrations_for,
    unused_indexes,
    validate_with_hypopg,
    validation_plans,
)
from auditkit.client import ClientData
from auditkit.findings import EvidenceStrength, Finding
from auditkit.plans import compare_plans
from auditkit.report.figures_indexing import plan_comparisons

pytestmark = pytest.mark.postgres

PROJECT = ROOT / "tests" / "django_project"
DSN_ENV = "AUDITKIT_TEST_ADVISOR_DSN"

PLANT = """
INSERT INTO shop_customer (email, name, slug, country, created_at)
SELECT 'user' || g || '@example.com', 'Name ' || g, 'customer-' || g,
       (ARRAY['FR', 'DE', 'US', 'GB', 'ES'])[1 + g % 5], now() - g * interval '1 hour'
FROM generate_series(1, 50000) g;
INSERT INTO shop_order (customer_id, reference, status, total, created_at, note)
SELECT 1 + (g % 50000), 'R' || lpad(g::text, 6, '0'),
       (ARRAY['pending', 'paid', 'shipped', 'cancelled', 'refunded'])[1 + g % 5],
       (g % 1000) + 0.99, now() - g * interval '1 minute', ''
FROM generate_series(1, 100000) g;
"""


@dataclass
class Shop:
    dsn: str
    db: str
    project: Path
    client: ClientData
    env: dict[str, str]


def _manage(
    shop_env: dict[str, str], project: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=shop_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def shop(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
            is None
        ):
            message = "the hypopg extension is not installed on the local PostgreSQL (postgresql-15-hypopg)"
            if REQUIRE_SERVICES:
                pytest.fail(message)
            pytest.skip(message)
        db = f"auditkit_advisor_{uuid.uuid4().hex[:8]}"
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{db}"
    tmp = tmp_path_factory.mktemp("advisor")
    project = tmp / "django_project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    data = tmp / "client"
    (data / "django").mkdir(parents=True)
    env = {
        **os.environ,
        "AUDITKIT_TEST_PG_DSN": postgres_dsn,
        "AUDITKIT_DJANGO_DB": db,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        _manage(env, project, "migrate", "-v", "0")
        _manage(env, project, "auditkit_dump_models", "-o", str(data / "django" / "models.json"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PLANT)
            conn.execute("CREATE EXTENSION hypopg")
            conn.execute("ANALYZE")
            conn.execute("SELECT pg_stat_reset()")
        _manage(
            {**env, "AUDITKIT_DJANGO_QUERY_LOG": str(data / "django" / "queries.log")},
            project,
            "run_workload",
            "--iterations",
            "30",
        )
        from auditkit.collect.postgres import collect_postgres

        os.environ[DSN_ENV] = dsn
        collect_postgres(DSN_ENV, data / "postgres")
        client = auditkit.load_client(data)
        yield Shop(dsn, db, project, client, env)
    finally:
        os.environ.pop(DSN_ENV, None)
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _frames(shop: Shop) -> dict[str, object]:
    c = shop.client
    return {
        "schema_tables": c.frame("schema_tables"),
        "schema_indexes": c.frame("schema_indexes"),
        "schema_columns": c.frame("schema_columns"),
    }


@pytest.fixture(scope="module")
def candidates(shop: Shop) -> list[Finding]:
    c = shop.client
    profile, source = c.query_profile()
    assert source and len(profile) == 7
    return index_candidates(
        profile,
        c.frame("schema_tables"),
        c.frame("schema_indexes"),
        c.frame("schema_columns"),
        c.frame("plan_nodes"),
        c.config,
        column_stats=c.frame("column_stats"),
    )


def _by_key(findings: list[Finding]) -> dict[tuple[str | None, str], Finding]:
    return {(f.subject.table, str(f.metrics["keys"])): f for f in findings}


def test_every_input_loaded(shop: Shop) -> None:
    formats = {f.path: f.format for f in shop.client.files if f.status == "loaded"}
    assert (
        formats["django/models.json"] == "django_models"
        and formats["django/queries.log"] == "django_log"
    )
    assert {
        "pg_indexes",
        "pg_stat_tables",
        "pg_stat_indexes",
        "pg_relation_sizes",
        "pg_stats",
    } <= set(formats.values())
    assert not [f for f in shop.client.files if f.status == "error"]


def test_advisor_proposes_the_right_index_for_each_planted_lookup(
    candidates: list[Finding],
) -> None:
    found = _by_key(candidates)
    assert set(found) == {
        ("shop_order", "status, created_at DESC"),
        ("shop_order", "reference"),
        ("shop_customer", "UPPER(email)"),
        ("shop_customer", "name varchar_pattern_ops"),
    }
    composite = found[("shop_order", "status, created_at DESC")]
    assert composite.subject.expression == "composite" and composite.subject.columns == (
        "status",
        "created_at",
    )
    assert composite.recommendation is not None
    assert composite.recommendation.sql == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_order_status_65feda_idx" ON "shop_order" ("status", "created_at" DESC);'
    )
    assert (
        composite.recommendation.django
        == 'models.Index(fields=["status", "-created_at"], name="shop_order_status_65feda_idx")'
    )
    explanation = str(composite.metrics["explanation"])
    assert explanation.index("status — equality") < explanation.index("created_at DESC — sort")

    iexact = found[("shop_customer", "UPPER(email)")]
    assert iexact.subject.expression == "expression" and iexact.recommendation is not None
    assert 'ON "shop_customer" ((UPPER("email")))' in (iexact.recommendation.sql or "")
    assert 'models.Index(Upper("email"), name=' in (iexact.recommendation.django or "")
    assert "from django.db.models.functions import Upper" in (iexact.recommendation.django or "")
    assert "__iexact" in str(iexact.metrics["explanation"])

    plain = found[("shop_order", "reference")]
    assert plain.subject.expression == "plain" and plain.recommendation is not None
    assert (
        plain.recommendation.django
        == 'models.Index(fields=["reference"], name="shop_order_referen_f8c329_idx")'
    )
    # Django's .first() adds ORDER BY id: with ~1 row per reference value the sort is not worth a key
    assert "sorting them is cheap" in (plain.evidence.note or "")

    pattern = found[("shop_customer", "name varchar_pattern_ops")]
    assert pattern.metrics["kind"] == "pattern_ops" and pattern.recommendation is not None
    assert 'opclasses=["varchar_pattern_ops"]' in (pattern.recommendation.django or "")

    for f in candidates:
        assert f.check == "missing_index" and f.evidence.strength == EvidenceStrength.STATISTICS
        assert f.metrics["calls"] == 30 and f.metrics["estimated_size_bytes"] > 0
        assert f.metrics["model"] in ("Order", "Customer") and not f.metrics["inferred_model"]
        operation = f.recommendation.migration if f.recommendation else ""
        assert "AddIndexConcurrently(" in (operation or "")
        assert f.metrics["latest_migration"] == "0001_initial"
    (shop_app,) = migrations_for(candidates)
    assert "atomic = False" in shop_app.text and '("shop", "0001_initial")' in shop_app.text


def test_no_index_for_covered_lookups(candidates: list[Finding]) -> None:
    touched = {(f.subject.table, col) for f in candidates for col in f.subject.columns or ()}
    # FK lookup (Django's automatic index), unique slug, primary key
    assert ("shop_order", "customer_id") not in touched
    assert ("shop_customer", "slug") not in touched
    assert ("shop_order", "id") not in touched and ("shop_customer", "id") not in touched


def test_unused_and_duplicate_indexes(shop: Shop) -> None:
    fr = _frames(shop)
    unused = unused_indexes(
        fr["schema_indexes"],
        fr["schema_tables"],
        shop.client.config,  # type: ignore[arg-type]
        schema_columns=fr["schema_columns"],
    )  # type: ignore[arg-type]
    names = {f.subject.index for f in unused}
    assert "shop_order_total_idx" in names
    assert not names & {"shop_order_pkey", "shop_customer_slug_key", "shop_customer_pkey"}
    total = next(f for f in unused if f.subject.index == "shop_order_total_idx")
    assert "since the statistics reset on" in total.summary and total.metrics["size_bytes"] > 0
    assert total.recommendation is not None
    assert (
        total.recommendation.sql
        == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."shop_order_total_idx";'
    )
    assert "Order.Meta.indexes" in (total.recommendation.django or "")
    assert 'RemoveIndexConcurrently(model_name="order", name="shop_order_total_idx")' in (
        total.recommendation.migration or ""
    )

    dups = duplicate_indexes(
        fr["schema_indexes"],
        fr["schema_tables"],
        shop.client.config,  # type: ignore[arg-type]
        schema_columns=fr["schema_columns"],
    )  # type: ignore[arg-type]
    identical = [f for f in dups if f.subject.expression == "identical"]
    assert [f.subject.index for f in identical] == ["shop_order_customer_dup"]
    assert str(identical[0].metrics["kept_index"]).startswith("shop_order_customer_id_")
    # the auto-created many-to-many through table's FK index is a prefix of its unique pair
    redundant = {f.subject.index for f in dups if f.subject.expression == "redundant prefix"}
    assert redundant == {
        next(
            i
            for i in shop.client.frame("schema_indexes")["index"]
            if str(i).startswith("shop_order_tags_order_id_") and not str(i).endswith("_uniq")
        )
    }


def test_hypopg_confirms_the_cost_reductions(shop: Shop, candidates: list[Finding]) -> None:
    profile, _ = shop.client.query_profile()
    validated = validate_with_hypopg(candidates, shop.dsn, profile, shop.client.config)
    assert len(validated) == len(candidates)
    for f in validated:
        assert f.evidence.strength == EvidenceStrength.VALIDATED, f.title
        assert f.metrics["cost_reduction"] >= 0.5, (f.title, f.metrics)
        assert f.metrics["cost_after"] < f.metrics["cost_before"]
        plans = [i for i in f.evidence.items if "cost_before" in i]
        assert any(i["uses_index"] and i["chosen"] for i in plans)
        assert all("plan_before" in i and "plan_after" in i for i in plans)
        # the plans themselves travel in the finding: a before/after comparison needs no database
        fid, before, after = validation_plans(f)[0]
        assert fid in {str(i["fingerprint_id"]) for i in plans}
        table = str(f.subject.table)
        rel = compare_plans(before, after).set_index("item").loc[table]
        assert "Seq Scan" in str(rel["a_access"]) and "Index" in str(rel["b_access"])
        assert f"btree_{table}_" in str(
            rel["b_index"]
        )  # HypoPG names: <oid>btree_<table>_<columns>
    table = plan_comparisons(validated)
    assert table is not None and set(table["index"]) == {f.subject.index for f in candidates}
    # nothing was written: no index exists but the planted ones and Django's
    with psycopg.connect(shop.dsn) as conn:
        names = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
    assert not {f.subject.index for f in candidates} & names


def test_without_hypopg_the_advice_says_so(
    postgres_dsn: str, shop: Shop, candidates: list[Finding]
) -> None:
    db = f"auditkit_nohypo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        profile, _ = shop.client.query_profile()
        out = validate_with_hypopg(candidates, postgres_dsn.rsplit("/", 1)[0] + f"/{db}", profile)
        assert [f.title for f in out] == [f.title for f in candidates]
        for f in out:
            assert f.evidence.strength == EvidenceStrength.STATISTICS
            assert "HypoPG extension is not installed" in (f.evidence.note or "")
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    assert all(
        "no database" in (f.evidence.note or "")
        for f in validate_with_hypopg(candidates, None, profile)
    )


def test_the_whole_audit_of_another_app_names_only_its_code(shop: Shop) -> None:
    """Audited end to end — with HypoPG against its own database — every fix of this shop
    names only its own models, fields and relations, never the sample app's. (Before the
    migrations test below creates the indexes for real.)"""
    result = auditkit.audit(shop.client, dsn=shop.dsn)
    models = {"Customer", "Order", "Tag"}
    fields = {"customer", "reference", "status", "created_at", "email", "name", "slug", "tags", "orders", "total"}
    texts = []
    for f in result.findings:
        rec = f.recommendation
        code = "\n".join(x for x in (rec.django, rec.migration, rec.sql) if x) if rec else ""
        texts.append(code + "\n" + (f.action or "") + "\n" + (rec.summary if rec else ""))
        for model in re.findall(r"\b([A-Z][A-Za-z]+)\.(?:objects|Meta)\b", code):
            assert model in models, (model, f.title)
        for name in re.findall(r'model_name="(\w+)"', code):
            assert name in {m.lower() for m in models}, (name, f.title)
        for name in re.findall(r'fields=\["-?(\w+)"', code):
            assert name in fields, (name, f.title)
    joined = "\n".join(texts)
    for foreign in ("Book", "Author", "Review", "catalog_", "bestseller", "XXXX", "<field"):
        assert foreign not in joined
    # the planner confirmed each candidate: severity and evidence follow the validation
    candidates = [f for f in result.findings if f.check == "missing_index"]
    assert candidates and all(f.evidence.strength == EvidenceStrength.VALIDATED for f in candidates)
    assert all(f.impact is not None and f.impact.basis == "validated" for f in candidates)
    assert result.validation and "hypopg" in result.validation
    # one migration for the app, after its latest
    (migration,) = result.migrations
    assert migration.path == "shop/migrations/0002_auditkit_indexes.py"


def _write_extra_indexes(project: Path, findings: list[Finding]) -> None:
    imports = {"from django.db import models"}
    per_model: dict[str, list[str]] = {}
    for f in findings:
        lines = (f.recommendation.django if f.recommendation else "").splitlines()  # type: ignore[union-attr]
        imports |= {ln for ln in lines if ln.startswith("from ")}
        entry = next(ln.strip().rstrip(",") for ln in lines if ln.strip().startswith("models.Index"))
        per_model.setdefault(str(f.metrics["model"]).lower(), []).append(entry)
    body = "\n".join(sorted(imports)) + "\n\nADDED = {\n"
    for model, entries in per_model.items():
        body += f"    {model!r}: [\n" + "".join(f"        {e},\n" for e in entries) + "    ],\n"
    body += "}\n\n\ndef for_model(name):\n    return list(ADDED.get(name, []))\n"
    (project / "shop" / "extra_indexes.py").write_text(body)


def test_generated_migrations_apply(shop: Shop, candidates: list[Finding]) -> None:
    """Every index change of the app — the candidates and a duplicate to drop — in the one
    migration auditkit writes for the app, numbered after its latest: it applies, and with the
    models changed as the findings say, Django has nothing left to generate."""
    migrations = shop.project / "shop" / "migrations"
    dup = duplicate_indexes(
        shop.client.frame("schema_indexes"),
        shop.client.frame("schema_tables"),
        schema_columns=shop.client.frame("schema_columns"),
    )
    drop = next(f for f in dup if f.subject.index == "shop_order_customer_dup")
    files = migrations_for([*candidates, drop])
    assert [m.app_label for m in files] == ["shop"]
    migration = files[0]
    assert migration.path == "shop/migrations/0002_auditkit_indexes.py"
    assert migration.operations == len(candidates) + 1
    (migrations / "0002_auditkit_indexes.py").write_text(migration.text)
    _write_extra_indexes(shop.project, candidates)
    models_py = shop.project / "shop" / "models.py"
    models_py.write_text(
        models_py.read_text().replace(
            '            models.Index(fields=["customer"], name="shop_order_customer_dup"),\n', ""
        )
    )
    _manage(shop.env, shop.project, "migrate", "shop", "-v", "0")
    with psycopg.connect(shop.dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            ([str(f.subject.index) for f in candidates],),
        ).fetchall()
    assert {r[0] for r in rows} == {str(f.subject.index) for f in candidates}
    assert all(r[1] for r in rows)
    defs = {r[0]: r[2] for r in rows}
    assert "upper((email)::text)" in next(d for d in defs.values() if "upper" in d)
    assert "varchar_pattern_ops" in next(d for n, d in defs.items() if "name" in d)
    # the Meta.indexes entries and the migration agree: Django has nothing left to generate
    _manage(shop.env, shop.project, "makemigrations", "shop", "--check", "--dry-run")
    with psycopg.connect(shop.dsn) as conn:
        assert conn.execute("SELECT to_regclass('shop_order_customer_dup')").fetchone()[0] is None

