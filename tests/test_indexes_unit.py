"""The index advisor's rules on small frames (no database): each case one rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pytest

from auditkit.analysis.catalog import existing_indexes
from auditkit.checks.indexes import (
    duplicate_indexes,
    index_candidates,
    migrations_for,
    unused_indexes,
    validate_with_hypopg,
)
from auditkit.config import AuditConfig
from auditkit.findings import CHECKS, EvidenceStrength, Finding, Severity
from auditkit.schemas import (
    COLUMN_STATS,
    SCHEMA_COLUMNS,
    SCHEMA_INDEXES,
    SCHEMA_TABLES,
    STATEMENT_STATS,
    conform,
    empty,
)
from auditkit.sql.fingerprint import fingerprint, fingerprint_id


def stats(*statements: tuple[str, int, float]) -> pd.DataFrame:
    """statement_stats from (sample SQL, calls, total ms)."""
    rows = []
    for sql, calls, total in statements:
        fp = fingerprint(sql)
        rows.append(
            {
                "fingerprint_id": fingerprint_id(fp),
                "fingerprint": fp,
                "calls": calls,
                "total_ms": total,
                "sample_sql": sql,
            }
        )
    return conform(pd.DataFrame(rows), STATEMENT_STATS)


def tables(**rows: float) -> pd.DataFrame:
    return conform(
        pd.DataFrame([{"table": t, "rows_estimate": n} for t, n in rows.items()]), SCHEMA_TABLES
    )


def indexes(*defs: str, **extra: Any) -> pd.DataFrame:
    from auditkit.sql.analyze import parse_index_definition

    rows = []
    for d in defs:
        p = parse_index_definition(d)
        assert p is not None
        rows.append(
            {
                "schema": "public",
                "table": p.table,
                "index": p.name,
                "definition": d,
                "columns": p.columns,
                "unique": p.unique,
                "primary": p.name.endswith("_pkey"),
                **extra,
            }
        )
    return conform(pd.DataFrame(rows), SCHEMA_INDEXES)


def columns(
    table: str, app: str, model: str, fields: Iterable[tuple[str, str, str, str | None]]
) -> pd.DataFrame:
    """schema_columns from (field, column, field type, fk_to)."""
    rows = [
        {
            "app_label": app,
            "model": model,
            "table": table,
            "field": f,
            "column": c,
            "field_type": t,
            "fk_to": fk,
            "inferred": False,
        }
        for f, c, t, fk in fields
    ]
    return conform(pd.DataFrame(rows), SCHEMA_COLUMNS)


ORDER_COLUMNS = columns(
    "shop_order",
    "shop",
    "Order",
    [
        ("id", "id", "BigAutoField", None),
        ("customer", "customer_id", "ForeignKey", "shop_customer"),
        ("status", "status", "CharField", None),
        ("created_at", "created_at", "DateTimeField", None),
        ("tenant", "tenant_id", "ForeignKey", "shop_tenant"),
        ("note", "note", "TextField", None),
    ],
)
ORDER_INDEXES = (
    "CREATE UNIQUE INDEX shop_order_pkey ON public.shop_order USING btree (id)",
    "CREATE INDEX shop_order_customer_id_f638df20 ON public.shop_order USING btree (customer_id)",
)


def advise(
    st: pd.DataFrame,
    idx: pd.DataFrame | None = None,
    cols: pd.DataFrame | None = None,
    tab: pd.DataFrame | None = None,
    **kw: Any,
) -> list[Finding]:
    return index_candidates(
        st,
        tab if tab is not None else tables(shop_order=100_000, shop_customer=50_000),
        idx if idx is not None else indexes(*ORDER_INDEXES),
        cols if cols is not None else ORDER_COLUMNS,
        kw.pop("plan_nodes", None),
        kw.pop("config", None),
        **kw,
    )


def keys(findings: list[Finding]) -> list[str]:
    return [str(f.metrics["keys"]) for f in findings]


# -- candidates ---------------------------------------------------------------------------------
def test_covered_by_the_foreign_key_index() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."customer_id" = 42', 50, 30.0))
    assert advise(st) == []


def test_equality_then_range_then_sort() -> None:
    st = stats(
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'paid\' AND "shop_order"."tenant_id" = 3 '
            'ORDER BY "shop_order"."created_at" DESC LIMIT 20',
            10,
            100.0,
        ),
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'paid\' AND "shop_order"."created_at" > now() '
            'ORDER BY "shop_order"."created_at"',
            10,
            50.0,
        ),
    )
    cs = conform(
        pd.DataFrame(
            [
                {"table": "shop_order", "column": "status", "n_distinct": 5.0},
                {"table": "shop_order", "column": "tenant_id", "n_distinct": 50.0},
            ]
        ),
        COLUMN_STATS,
    )
    found = advise(st, column_stats=cs)
    # the more selective equality column first; the sort last, with its direction
    assert keys(found) == ["tenant_id, status, created_at DESC", "status, created_at"]
    first = found[0]
    assert first.subject.columns == ("tenant_id", "status", "created_at")
    assert first.recommendation is not None
    assert first.recommendation.django == (
        f'models.Index(fields=["tenant", "status", "-created_at"], name="{first.subject.index}")'
    )
    second = found[1]
    assert "range" in str(second.metrics["explanation"]) and "sort" not in str(
        second.metrics["explanation"]
    )


def test_in_list_and_range_on_another_column_give_up_the_sort() -> None:
    st = stats(
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."status" IN (\'a\', \'b\') ORDER BY "shop_order"."created_at" LIMIT 5',
            5,
            10.0,
        ),
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."tenant_id" = 1 AND "shop_order"."id" > 10 '
            'ORDER BY "shop_order"."created_at" LIMIT 5',
            5,
            10.0,
        ),
    )
    found = advise(st, tab=tables(shop_order=100_000, shop_tenant=10))
    assert sorted(keys(found)) == ["status", "tenant_id, id"]
    note = next(f for f in found if f.metrics["keys"] == "tenant_id, id").evidence.note or ""
    assert "after a range on another column" in note


def test_expression_and_pattern_indexes() -> None:
    st = stats(
        (
            'SELECT * FROM "shop_customer" WHERE UPPER("shop_customer"."email"::text) = UPPER(\'A@B.C\') LIMIT 21',
            100,
            500.0,
        ),
        (
            'SELECT * FROM "shop_customer" WHERE UPPER("shop_customer"."name"::text) LIKE UPPER(\'ab%\') LIMIT 21',
            100,
            400.0,
        ),
        (
            'SELECT * FROM "shop_customer" WHERE "shop_customer"."bio"::text LIKE \'%ab%\' LIMIT 21',
            100,
            300.0,
        ),
        (
            "SELECT COUNT(*) FROM \"shop_customer\" WHERE DATE_TRUNC('day', \"shop_customer\".\"created_at\" AT TIME ZONE 'UTC') = '2024-01-01'",
            10,
            200.0,
        ),
    )
    cols = columns(
        "shop_customer",
        "shop",
        "Customer",
        [
            ("email", "email", "EmailField", None),
            ("name", "name", "CharField", None),
            ("bio", "bio", "TextField", None),
            ("created_at", "created_at", "DateTimeField", None),
        ],
    )
    found = {
        f.metrics["keys"]: f
        for f in advise(
            st,
            idx=indexes(
                "CREATE UNIQUE INDEX shop_customer_email_key ON public.shop_customer USING btree (email)"
            ),
            cols=cols,
        )
    }
    # a contains-pattern LIKE gets no btree index
    assert set(found) == {
        "UPPER(email)",
        "UPPER(name) text_pattern_ops",
        "DATE_TRUNC('day', created_at AT TIME ZONE 'UTC')",
    }
    upper = found["UPPER(email)"]
    assert upper.subject.expression == "expression" and upper.recommendation is not None
    assert 'models.Index(Upper("email"), name=' in (upper.recommendation.django or "")
    ist = found["UPPER(name) text_pattern_ops"].recommendation
    assert ist is not None and 'OpClass(Upper("name"), name="text_pattern_ops")' in (
        ist.django or ""
    )
    assert "from django.contrib.postgres.indexes import OpClass" in (ist.django or "")
    assert '((UPPER("name")) text_pattern_ops)' in (ist.sql or "")
    trunc = found["DATE_TRUNC('day', created_at AT TIME ZONE 'UTC')"].recommendation
    assert trunc is not None and 'Trunc("created_at", "day")' in (trunc.django or "")


def test_existing_expression_and_pattern_indexes_cover() -> None:
    st = stats(
        (
            'SELECT * FROM "shop_customer" WHERE UPPER("shop_customer"."email"::text) = UPPER(\'x\')',
            100,
            500.0,
        ),
        (
            'SELECT * FROM "shop_customer" WHERE "shop_customer"."name"::text LIKE \'ab%\'',
            100,
            500.0,
        ),
    )
    idx = indexes(
        "CREATE INDEX e ON public.shop_customer USING btree (upper((email)::text))",
        "CREATE INDEX shop_customer_name_11112222_like ON public.shop_customer USING btree (name varchar_pattern_ops)",
    )
    assert advise(st, idx=idx) == []
    # a plain index does not serve LIKE (non-C collations) and a partial one is not trusted
    idx2 = indexes(
        "CREATE INDEX n ON public.shop_customer USING btree (name)",
        "CREATE INDEX e ON public.shop_customer USING btree (upper((email)::text)) WHERE (id > 0)",
    )
    assert sorted(keys(advise(st, idx=idx2))) == ["UPPER(email)", "name varchar_pattern_ops"]


def test_unique_index_on_some_equality_columns_covers() -> None:
    st = stats(
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."id" = 1 AND "shop_order"."status" = \'x\'',
            100,
            50.0,
        )
    )
    assert advise(st) == []


def test_prefix_candidates_merge_into_the_longer_one() -> None:
    st = stats(
        ('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 10, 40.0),
        (
            'SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\' ORDER BY "shop_order"."created_at" LIMIT 9',
            10,
            60.0,
        ),
    )
    found = advise(st)
    assert keys(found) == ["status, created_at"]
    assert found[0].metrics["statements"] == 2 and found[0].metrics["total_ms"] == 100.0
    assert "Also serves the lookups on status" in (found[0].evidence.note or "")


def test_small_tables_and_rare_statements_are_left_alone() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 3, 40.0))
    assert advise(st, tab=tables(shop_order=500)) == []
    assert advise(st, config=AuditConfig(presets={"index": "dexter"})) == []  # < 100 calls
    assert len(advise(st)) == 1


def test_write_heavy_table_states_the_trade_off() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 100, 1000.0))
    busy = conform(
        pd.DataFrame(
            [
                {
                    "table": "shop_order",
                    "rows_estimate": 100_000,
                    "seq_scan": 10,
                    "idx_scan": 10,
                    "n_tup_ins": 500_000,
                    "n_tup_upd": 100_000,
                    "n_tup_del": 0,
                }
            ]
        ),
        SCHEMA_TABLES,
    )
    quiet = conform(
        pd.DataFrame(
            [
                {
                    "table": "shop_order",
                    "rows_estimate": 100_000,
                    "seq_scan": 1000,
                    "idx_scan": 9000,
                    "n_tup_ins": 10,
                    "n_tup_upd": 0,
                    "n_tup_del": 0,
                }
            ]
        ),
        SCHEMA_TABLES,
    )
    heavy, light = advise(st, tab=busy)[0], advise(st, tab=quiet)[0]
    assert (
        "weigh the read saving against that" in heavy.summary and heavy.metrics["write_ratio"] > 1
    )
    # the trade-off is stated; severity follows the time saved alone (one rule for every check)
    assert "the read saving outweighs it" in light.summary
    assert heavy.severity == light.severity


def test_a_measured_plan_sizes_the_saving_and_is_cited() -> None:
    st = stats(
        ('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 10, 100.0),
        ("SELECT 1", 10, 1000.0),
    )
    # Limit → Sort → Seq Scan: the index replaces the scan and the sort above it (90 of 100 ms)
    plan = pd.DataFrame(
        {
            "plan_id": ["p#1"] * 3,
            "node_id": [0, 1, 2],
            "parent_id": [pd.NA, 0, 1],
            "node_type": ["Limit", "Sort", "Seq Scan"],
            "relation": [None, None, "shop_order"],
            "filter": [None, None, "((status)::text = 'a'::text)"],
            "rows_removed_by_filter": [None, None, 99_000.0],
            "actual_total_ms": [100.0, 90.0, 60.0],
            "loops": [1.0, 1.0, 1.0],
            "source_file": ["plans/p.json"] * 3,
        }
    )
    without, with_plan = advise(st)[0], advise(st, plan_nodes=plan)[0]
    assert without.impact is not None and with_plan.impact is not None
    assert without.impact.db_ms == 50.0  # half, assumed
    assert with_plan.impact.db_ms == 90.0 and "measured plan" in (with_plan.impact.note or "")
    assert with_plan.metrics["plan_seq_scans"] == 1
    assert any("plan_node" in i for i in with_plan.evidence.items)


def test_endpoints_helped() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 2, 10.0))
    events = pd.DataFrame(
        {"fingerprint_id": [st["fingerprint_id"][0]] * 2, "endpoint": ["orders:list", "api:orders"]}
    )
    f = advise(st, events=events)[0]
    assert f.metrics["endpoints"] == 2 and f.metrics["endpoint_list"] == "api:orders, orders:list"


def test_inferred_model_names_without_a_dump() -> None:
    st = stats(
        (
            'SELECT * FROM "blog_post" WHERE "blog_post"."author_id" = 1 AND "blog_post"."state" = \'x\'',
            5,
            10.0,
        )
    )
    found = advise(
        st,
        idx=indexes("CREATE UNIQUE INDEX blog_post_pkey ON public.blog_post USING btree (id)"),
        cols=empty(SCHEMA_COLUMNS),
        tab=tables(blog_post=10_000, blog_author=10),
    )
    f = found[0]
    assert (
        f.metrics["inferred_model"]
        and f.metrics["model"] == "Post"
        and f.metrics["app_label"] == "blog"
    )
    assert f.recommendation is not None and '"author"' in (f.recommendation.django or "")
    assert "inferred" in f.summary and "XXXX" not in (f.recommendation.migration or "")
    # the app's latest migration is unknown: the migration says how to create it, never a made-up name
    (blog,) = migrations_for(found)
    assert blog.path is None and "makemigrations blog --empty" in blog.text


def test_mysql_ddl() -> None:
    st = stats(("SELECT * FROM `shop_order` WHERE `shop_order`.`status` = 'a'", 5, 10.0))
    f = advise(st, dialect="mysql")[0]
    assert f.recommendation is not None
    assert (
        f.recommendation.sql
        == f"ALTER TABLE `shop_order` ADD INDEX `{f.subject.index}` (`status`), ALGORITHM=INPLACE, LOCK=NONE;"
    )
    assert "migrations.AddIndex(" in (f.recommendation.migration or "") and "atomic" not in (
        f.recommendation.migration or ""
    )


def test_combined_migration_adds_every_index_once() -> None:
    st = stats(
        ('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 5, 10.0),
        (
            'SELECT * FROM "shop_order" WHERE UPPER("shop_order"."note"::text) = UPPER(\'x\')',
            5,
            10.0,
        ),
    )
    tab = conform(
        pd.DataFrame(
            [
                {
                    "table": "shop_order",
                    "rows_estimate": 100_000,
                    "model": "shop.Order",
                    "latest_migration": "0007_auto",
                }
            ]
        ),
        SCHEMA_TABLES,
    )
    found = advise(st, tab=tab)
    files = migrations_for(found)
    assert [m.app_label for m in files] == ["shop"]
    text = files[0].text
    assert text.count("AddIndexConcurrently(") == 2 and '("shop", "0007_auto")' in text
    assert files[0].path == "shop/migrations/0008_auditkit_indexes.py" and files[0].path in text
    assert "from django.db.models.functions import Upper" in text
    compile(text, "migration.py", "exec")
    for f in found:
        compile(f.recommendation.migration or "", "m.py", "exec")  # type: ignore[union-attr]


def test_findings_round_trip_and_use_known_ids() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 5, 10.0))
    for f in advise(st):
        assert f.check in CHECKS and Finding.from_dict(f.to_dict()) == f


def test_validation_without_a_database_says_so() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 5, 10.0))
    out = validate_with_hypopg(advise(st), None, st)
    assert (
        out[0].evidence.strength == EvidenceStrength.STATISTICS
        or out[0].evidence.strength == EvidenceStrength.PATTERN
    )
    assert "no database was given" in (out[0].evidence.note or "")


# -- unused and duplicate ---------------------------------------------------------------------------
def catalog(*rows: dict[str, Any]) -> pd.DataFrame:
    from auditkit.sql.analyze import parse_index_definition

    out = []
    for r in rows:
        p = parse_index_definition(r["definition"])
        assert p is not None
        out.append(
            {
                "schema": "public",
                "table": p.table,
                "index": p.name,
                "columns": p.columns,
                "unique": p.unique,
                "primary": p.name.endswith("_pkey"),
                "stats_reset": "2026-01-01 00:00:00+00",
                "collected_at": "2026-01-31 00:00:00+00",
                **r,
            }
        )
    return conform(pd.DataFrame(out), SCHEMA_INDEXES)


IDX = catalog(
    {
        "definition": "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
        "idx_scan": 0,
        "size_bytes": 10**6,
    },
    {
        "definition": "CREATE UNIQUE INDEX t_code_key ON public.t USING btree (code)",
        "idx_scan": 0,
        "size_bytes": 10**6,
    },
    {
        "definition": "CREATE INDEX t_code_idx ON public.t USING btree (code)",
        "idx_scan": 0,
        "size_bytes": 10**6,
    },
    {
        "definition": "CREATE INDEX t_a_idx ON public.t USING btree (a)",
        "idx_scan": 500,
        "size_bytes": 2 * 10**8,
    },
    {
        "definition": "CREATE INDEX t_a_b_idx ON public.t USING btree (a, b)",
        "idx_scan": 900,
        "size_bytes": 3 * 10**8,
    },
    {
        "definition": "CREATE INDEX t_a_part ON public.t USING btree (a) WHERE (b IS NULL)",
        "idx_scan": 5,
        "size_bytes": 10**5,
    },
    {
        "definition": "CREATE INDEX t_c_idx ON public.t USING btree (c)",
        "idx_scan": 0,
        "size_bytes": 2 * 10**9,
    },
    {
        "definition": "CREATE INDEX t_d_idx ON public.t USING btree (d)",
        "idx_scan": 0,
        "size_bytes": 10**6,
        "valid": False,
    },
    {
        "definition": "CREATE INDEX t_e_gin ON public.t USING gin (e)",
        "idx_scan": 3,
        "size_bytes": 10**6,
    },
)
TAB = conform(
    pd.DataFrame(
        [
            {
                "table": "t",
                "rows_estimate": 10**6,
                "n_tup_ins": 1000,
                "n_tup_upd": 500,
                "n_tup_del": 10,
                "stats_reset": "2026-01-01 00:00:00+00",
            }
        ]
    ),
    SCHEMA_TABLES,
)


def test_unused_indexes() -> None:
    found = {f.subject.index: f for f in unused_indexes(IDX, TAB)}
    # the unique twin is kept, so t_code_idx is left to duplicate_indexes; keys and pk never flagged
    assert set(found) == {"t_c_idx", "t_d_idx"}
    assert found["t_c_idx"].severity == Severity.HIGH  # 2 GB
    assert (
        "(30.0 days)" in found["t_c_idx"].summary and "1,500 row writes" in found["t_c_idx"].summary
    )
    assert found["t_d_idx"].title.startswith("Drop invalid index")
    # pgHero: fewer than 50 scans is unused (t_a_part, t_e_gin)
    assert len(unused_indexes(IDX, TAB, AuditConfig(presets={"index": "pghero"}))) == 4
    # on a small table only a big (or invalid) index is worth a finding
    small = conform(pd.DataFrame([{"table": "t", "rows_estimate": 10}]), SCHEMA_TABLES)
    assert {f.subject.index for f in unused_indexes(IDX, small)} == {"t_c_idx", "t_d_idx"}


def test_duplicate_and_redundant_indexes() -> None:
    found = {f.subject.index: f for f in duplicate_indexes(IDX, TAB)}
    assert set(found) == {"t_code_idx", "t_a_idx"}
    assert (
        found["t_code_idx"].subject.expression == "identical"
        and found["t_code_idx"].metrics["kept_index"] == "t_code_key"
    )
    assert (
        found["t_a_idx"].subject.expression == "redundant prefix"
        and found["t_a_idx"].metrics["kept_index"] == "t_a_b_idx"
    )
    assert found["t_a_idx"].severity == Severity.MEDIUM  # 200 MB
    rec = found["t_a_idx"].recommendation
    assert rec is not None and rec.sql == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."t_a_idx";'
    assert "No model declares this index" in (rec.django or "")
    compile(rec.migration or "", "m.py", "exec")
    (app,) = migrations_for([found["t_a_idx"]])
    assert "atomic = False" in app.text and "RunSQL(" in app.text


def test_declarations_from_a_model_dump_are_matched_to_catalog_rows() -> None:
    dump = conform(
        pd.DataFrame(
            [
                {
                    "table": "t",
                    "index": "t_code_idx",
                    "columns": "code",
                    "origin": "django_models",
                    "declared_by": "Meta.indexes of Thing",
                    "app_label": "app",
                    "model": "Thing",
                    "fields": "code",
                }
            ]
        ),
        SCHEMA_INDEXES,
    )
    both = pd.concat([IDX, dump], ignore_index=True)
    info = {i.name: i for i in existing_indexes(both)}
    assert (
        info["t_code_idx"].declared_by == "Meta.indexes of Thing"
        and not info["t_code_idx"].declared_only
    )
    f = next(f for f in duplicate_indexes(both, TAB) if f.subject.index == "t_code_idx")
    assert f.recommendation is not None and "Thing.Meta.indexes" in (f.recommendation.django or "")
    assert 'RemoveIndexConcurrently(model_name="thing", name="t_code_idx")' in (
        f.recommendation.migration or ""
    )


@pytest.mark.parametrize("check", ["missing_index", "unused_index", "duplicate_index"])
def test_check_ids_are_documented(check: str) -> None:
    assert check in CHECKS


def test_statements_to_plan_literals_or_generic_plan() -> None:
    from auditkit.checks.indexes.hypopg import _explainable

    literal = {
        "sample_sql": "SELECT * FROM t WHERE a = 'x?' AND b = 2;",
        "fingerprint": "select * from t where a = ? and b = ?",
    }
    assert _explainable(literal, generic=False) == (
        "SELECT * FROM t WHERE a = 'x?' AND b = 2",
        False,
    )
    bound = {
        "sample_sql": "SELECT * FROM t WHERE a = $1 AND b IN (...)",
        "fingerprint": "select * from t where a = ? and b in (...)",
    }
    assert _explainable(bound, generic=False) is None  # PostgreSQL < 16: no literals, no plan
    assert _explainable(bound, generic=True) == ("SELECT * FROM t WHERE a = $1 AND b IN ($2)", True)
    django = {"sample_sql": None, "fingerprint": "select * from t where a = %s and b = ?"}
    assert _explainable(django, generic=True) == ("select * from t where a = $1 and b = $2", True)


def test_validation_with_an_unreachable_database_says_so_without_the_dsn() -> None:
    st = stats(('SELECT * FROM "shop_order" WHERE "shop_order"."status" = \'a\'', 5, 10.0))
    dsn = "postgresql://shop:s3cret-pw@127.0.0.1:1/shop"
    out = validate_with_hypopg(advise(st), dsn, st)
    note = out[0].evidence.note or ""
    assert "cannot connect to the database" in note and "s3cret-pw" not in note and dsn not in note


def test_rows_of_several_exports_combine_per_index() -> None:
    from pathlib import Path

    import auditkit

    catalog = Path(__file__).parent / "fixtures" / "catalog"
    rows = pd.concat(
        [
            auditkit.load(catalog / "pg_indexes.csv").frame,
            auditkit.load(catalog / "pg_stat_user_indexes.csv").frame,
            auditkit.load(catalog / "relation_sizes.csv").frames[
                "schema_indexes"
            ],  # no table_name column
        ],
        ignore_index=True,
    )
    info = {i.name: i for i in existing_indexes(rows)}
    total = info["shop_order_total_idx"]
    assert total.table == "shop_order" and total.idx_scan == 0 and (total.size_bytes or 0) > 0
    assert total.definition and total.key_names == ("total",)
    assert len(info) == 17


def test_inferred_model_of_an_app_label_with_underscores() -> None:
    """``<app_label>_<model>``: class names carry no underscore, app labels may (the real
    ``daiquiri`` project's apps are ``daiquiri_jobs``, ``daiquiri_query``…)."""
    from auditkit.analysis.code import CodeMap

    code = CodeMap.build(empty(SCHEMA_COLUMNS))
    job = code.model("daiquiri_jobs_job")
    assert (job.app_label, job.name, job.inferred) == ("daiquiri_jobs", "Job", True)
    assert code.model("blog_post").app_label == "blog"
    assert code.model("auth_user").django  # Django's own, exact from its dump
    groups = code.model("auth_user_groups")
    assert groups.app_label == "auth"


def test_no_index_on_what_django_already_indexes_without_a_catalog() -> None:
    """A query log alone (no catalog, no model dump): Django's own tables get the indexes their
    migrations create (a foreign key's, unique_together's), and a multi-table-inheritance
    child's ``<parent>_ptr_id`` is its primary key."""
    st = stats(
        (
            'SELECT * FROM "auth_permission" WHERE "auth_permission"."content_type_id" = 7',
            400,
            900.0,
        ),
        (
            'SELECT * FROM "django_content_type" WHERE ("django_content_type"."app_label" = \'a\' '
            'AND "django_content_type"."model" = \'b\')',
            400,
            900.0,
        ),
        (
            'SELECT * FROM "billing_invoice" INNER JOIN "billing_document" ON '
            '("billing_invoice"."document_ptr_id" = "billing_document"."id") '
            'WHERE "billing_invoice"."document_ptr_id" = 12',
            400,
            900.0,
        ),
    )
    empty_catalog = empty(SCHEMA_INDEXES)
    found = advise(
        st,
        idx=empty_catalog,
        cols=empty(SCHEMA_COLUMNS),
        tab=tables(auth_permission=50_000, django_content_type=50_000, billing_invoice=90_000),
    )
    assert found == [], [f.title for f in found]
