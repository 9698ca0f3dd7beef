"""Statement analysis for the index advisor: pairs of statement and expected column uses."""

from __future__ import annotations

import pandas as pd
import pytest

from auditkit.sql.analyze import (
    analyze_sql,
    analyze_workload,
    expression_key,
    parse_index_definition,
)
from auditkit.sql.fingerprint import fingerprint

# (statement, sample with literals or None, dialect, expected {(table, column, role, key)})
CASES: list[tuple[str, str | None, str, set[tuple[str, str, str, str]]]] = [
    # Django __iexact: an expression, not the column
    (
        'SELECT "app_user"."id" FROM "app_user" WHERE UPPER("app_user"."email"::text) = UPPER(?) LIMIT ?',
        None,
        "postgres",
        {("app_user", "email", "eq", "upper(email)")},
    ),
    # aliases, joins, IN lists collapsed by the fingerprinter, ORDER BY DESC
    (
        'select "a"."id" from "shop_order" "a" inner join "shop_customer" c on ("a"."customer_id" = c."id") '
        'where "a"."status" = ? and a.created_at >= ? and c.country in (...) order by "a"."created_at" desc limit ?',
        None,
        "postgres",
        {
            ("shop_order", "status", "eq", "status"),
            ("shop_order", "created_at", "range", "created_at"),
            ("shop_customer", "country", "in", "country"),
            ("shop_order", "customer_id", "join", "customer_id"),
            ("shop_customer", "id", "join", "id"),
            ("shop_order", "created_at", "order", "created_at"),
        },
    ),
    # Django __startswith: LIKE on the text cast of the column
    (
        'SELECT "t"."id" FROM "t" WHERE "t"."name"::text LIKE ? ESCAPE ?',
        None,
        "postgres",
        {("t", "name", "like", "name")},
    ),
    # Django __istartswith: LIKE on UPPER()
    (
        'SELECT "t"."id" FROM "t" WHERE UPPER("t"."name"::text) LIKE UPPER(?)',
        None,
        "postgres",
        {("t", "name", "like", "upper(name)")},
    ),
    # date_trunc / TruncDay and __date
    (
        'SELECT COUNT(*) FROM "o" WHERE DATE_TRUNC(\'day\', "o"."created_at" AT TIME ZONE \'UTC\') = ?',
        None,
        "postgres",
        {("o", "created_at", "eq", "date_trunc('day', created_at at time zone 'utc')")},
    ),
    (
        'SELECT COUNT(*) FROM "o" WHERE ("o"."created_at" AT TIME ZONE \'UTC\')::date = ?',
        None,
        "postgres",
        {("o", "created_at", "eq", "cast(created_at at time zone 'utc' as date)")},
    ),
    # IS NULL, BETWEEN, correlated subquery, OR, NOT, <> and ILIKE
    (
        "SELECT 1 FROM t WHERE a IS NULL AND b BETWEEN ? AND ? AND c IN (SELECT x FROM u WHERE u.y = t.z) "
        "AND NOT (d = ?) AND e <> ? AND (f = 1 OR g = 2) AND h ILIKE ?",
        None,
        "postgres",
        {
            ("t", "a", "null", "a"),
            ("t", "b", "range", "b"),
            ("t", "c", "in", "c"),
            ("t", "f", "or", "f"),
            ("t", "g", "or", "g"),
            ("t", "h", "ilike", "h"),
            ("u", "y", "eq", "y"),
        },
    ),
    # UPDATE and DELETE act on their target
    (
        'UPDATE "app_x" SET "a" = ? WHERE "app_x"."id" = ?',
        None,
        "postgres",
        {("app_x", "id", "eq", "id")},
    ),
    (
        'DELETE FROM "app_x" WHERE "app_x"."author_id" IN (...)',
        None,
        "postgres",
        {("app_x", "author_id", "in", "author_id")},
    ),
    # ORDER BY a select alias and GROUP BY position
    (
        'SELECT "t"."k" AS kk, COUNT(*) FROM "t" WHERE "t"."tenant_id" = ? GROUP BY 1 ORDER BY kk',
        None,
        "postgres",
        {("t", "tenant_id", "eq", "tenant_id"), ("t", "k", "group", "k"), ("t", "k", "order", "k")},
    ),
    # MySQL backticks
    (
        "select `t`.`a` from `db`.`t` where `t`.`b` = ? order by `t`.`c`",
        None,
        "mysql",
        {("t", "b", "eq", "b"), ("t", "c", "order", "c")},
    ),
]


@pytest.mark.parametrize(("sql", "sample", "dialect", "expected"), CASES, ids=range(len(CASES)))
def test_column_uses(
    sql: str, sample: str | None, dialect: str, expected: set[tuple[str, str, str, str]]
) -> None:
    a = analyze_sql(sql, dialect, sample=sample)  # type: ignore[arg-type]
    assert a.error is None
    assert {(u.table, u.column, u.role, u.key) for u in a.uses} == expected


def test_like_pattern_and_trunc_unit_come_from_the_sample() -> None:
    fp = fingerprint(
        """SELECT "t"."id" FROM "t" WHERE "t"."name"::text LIKE 'Ab%' AND date_trunc('month', "t"."d") = '2024-01-01'"""
    )
    assert "'Ab%'" not in fp and "'month'" not in fp
    sample = """SELECT "t"."id" FROM "t" WHERE "t"."name"::text LIKE 'Ab%' AND date_trunc('month', "t"."d") = '2024-01-01'"""
    uses = {u.role: u for u in analyze_sql(fp, sample=sample).uses}
    assert uses["like"].pattern == "prefix"
    assert uses["eq"].unit == "month" and uses["eq"].expression_sql == "DATE_TRUNC('month', \"d\")"
    contains = analyze_sql(fp, sample=sample.replace("'Ab%'", "'%Ab%'")).uses
    assert next(u for u in contains if u.role == "like").pattern == "contains"
    # without a sample the shape is unknown, and said so
    assert next(u for u in analyze_sql(fp).uses if u.role == "like").pattern == "unknown"


def test_ddl_expression_is_unqualified() -> None:
    a = analyze_sql('SELECT 1 FROM "app_user" u WHERE UPPER(u."email"::text) = UPPER(?)')
    assert a.uses[0].expression_sql == 'UPPER("email")' and a.uses[0].function == "upper"


def test_unparseable_statement_is_reported_not_raised() -> None:
    stats = pd.DataFrame(
        {
            "fingerprint_id": ["a", "b", "c"],
            "fingerprint": [
                "select * from where ((",
                'select "t"."id" from "t" where "t"."k" = ?',
                "begin",
            ],
            "calls": [1, 2, 3],
            "total_ms": [1.0, 2.0, 3.0],
        }
    )
    wa = analyze_workload(stats)
    assert (
        list(wa.failures["fingerprint_id"]) == ["a"]
        and "ParseError" in wa.failures.iloc[0]["error"]
    )
    assert list(wa.uses["fingerprint_id"]) == ["b"] and wa.statements["c"].kind == "utility"
    assert wa.parsed == 2 and "1 not parsed" in wa.summary()


def test_each_distinct_fingerprint_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import auditkit.sql.analyze as mod

    calls: list[str] = []
    real = mod.analyze_sql
    monkeypatch.setattr(
        mod, "analyze_sql", lambda sql, *a, **k: calls.append(sql) or real(sql, *a, **k)
    )
    stats = pd.DataFrame(
        {"fingerprint": ['select 1 from "t" where "t"."a" = ?'] * 3, "calls": [1, 1, 1]}
    )
    mod.analyze_workload(stats)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("upper((email)::text)", 'UPPER(CAST("app_user"."email" AS TEXT))'),
        (
            "date_trunc('day'::text, timezone('UTC'::text, created_at))",
            "DATE_TRUNC('day', \"o\".\"created_at\" AT TIME ZONE 'UTC')",
        ),
        (
            "((created_at AT TIME ZONE 'UTC'::text))::date",
            '("o"."created_at" AT TIME ZONE \'UTC\')::date',
        ),
        ("lower((name)::text)", 'LOWER("t"."name")'),
    ],
)
def test_index_expressions_match_query_expressions(a: str, b: str) -> None:
    assert expression_key(a) == expression_key(b)


def test_parse_index_definition() -> None:
    d = parse_index_definition(
        'CREATE INDEX i ON public.t USING btree (a DESC NULLS LAST, b COLLATE "C", (lower(c)) text_pattern_ops) '
        "INCLUDE (d) WHERE (x IS NOT NULL)"
    )
    assert d is not None
    assert [(k.key, k.opclass, k.descending) for k in d.keys] == [
        ("a", None, True),
        ("b", None, False),
        ("lower(c)", "text_pattern_ops", False),
    ]
    assert (
        d.include == ("d",)
        and d.predicate == "x IS NOT NULL"
        and d.schema == "public"
        and not d.unique
    )
    gin = parse_index_definition(
        'CREATE INDEX "My Idx" ON "S"."T" USING gin (to_tsvector(\'english\'::regconfig, body))'
    )
    assert gin is not None and gin.name == "My Idx" and gin.table == "T" and gin.method == "gin"
    assert gin.keys[0].column is None and "to_tsvector" in (gin.keys[0].expression or "")
    assert parse_index_definition("ALTER TABLE t ADD x int") is None
