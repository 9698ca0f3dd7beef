"""One audit, one truth: the registry, root causes, the shared impact unit, advice on evidence.

Unit-level tests over small client folders written here; the sample client and other Django
apps are audited in tests/test_sample_audit.py and tests/test_indexes_advisor.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.auditing import Audit
from auditkit.checks import REGISTRY
from auditkit.checks.fold import fold
from auditkit.checks.severity import of_impact
from auditkit.findings import CHECKS, Evidence, Finding, Impact, Severity, Subject

ROOT = Path(__file__).resolve().parent.parent


def _jsonl(root: Path, requests: list[list[tuple[str, float]]], endpoint: str = "/list/") -> Path:
    """A capture-app query log: one request per list of (sql, ms)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    for r, statements in enumerate(requests):
        for i, (sql, ms) in enumerate(statements):
            lines.append(
                {
                    "ts": f"2024-05-01T10:{r // 60:02d}:{r % 60:02d}.{i:06d}Z",
                    "duration_ms": ms,
                    "sql": sql,
                    "params": None,
                    "alias": "default",
                    "request_id": f"r{r}",
                    "endpoint": endpoint,
                    "method": "GET",
                    "pid": 1,
                    "thread": "t",
                }
            )
    (root / "queries.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


# -- the registry ------------------------------------------------------------------------------------
def test_registry_is_ordered_and_documented() -> None:
    names = [s.name for s in REGISTRY]
    assert len(names) == len(set(names))
    assert names[0] == "data_quality"
    emitted = {c for s in REGISTRY for c in s.emits}
    assert emitted <= set(CHECKS)
    assert {s.chapter for s in REGISTRY} <= {"overview", "queries", "indexing", "caching", "scaling"}
    for s in REGISTRY:
        assert s.needs or s.always, s.name  # a check that lacks data can say what it needs


def test_missing_data_is_said_once_not_guessed(tmp_path: Path) -> None:
    client = auditkit.load_client(
        _jsonl(tmp_path / "c", [[('SELECT "a"."id" FROM "a" WHERE "a"."x" = 1', 1.0)]])
    )
    result = auditkit.audit(client)
    gaps = {g.check for g in result.gaps}
    assert {"capacity_limit", "low_cache_hit_ratio", "background_task_candidate"} <= gaps
    assert not any(f.check == "background_task_candidate" for f in result.findings)


# -- identity ------------------------------------------------------------------------------------------
def test_finding_id_is_its_check_and_subject_not_its_wording() -> None:
    a = Finding("unused_index", Severity.LOW, "Unused index x", "s", Subject(table="t", index="x"))
    b = Finding("unused_index", Severity.HIGH, "Other words", "other", Subject(table="t", index="x"))
    c = Finding("unused_index", Severity.LOW, "Unused index x", "s", Subject(table="t", index="y"))
    assert a.id == b.id != c.id and re.fullmatch(r"unused_index:[0-9a-f]{16}", a.id)
    # the fingerprint's text may change between versions; its id identifies
    d = Finding("slow_query", Severity.LOW, "t", "s", Subject(fingerprint="select 1", fingerprint_id="f1"))
    e = Finding("slow_query", Severity.LOW, "t", "s", Subject(fingerprint="SELECT ?", fingerprint_id="f1"))
    assert d.id == e.id
    assert Finding.from_dict(a.to_dict()) == a and a.to_dict()["id"] == a.id


# -- severity: one rule over measured impact -------------------------------------------------------------
@pytest.mark.parametrize(
    ("impact", "expected"),
    [
        (Impact(db_ms=100.0, db_share=0.12), Severity.HIGH),
        (Impact(db_ms=100.0, db_share=0.05), Severity.MEDIUM),
        (Impact(db_ms=1.0, db_share=0.001), Severity.LOW),
        (Impact(db_ms=0.0, db_share=0.0), Severity.INFO),
        (Impact(db_ms=5000.0, db_share=0.01, db_ms_per_request=150.0, requests=40), Severity.HIGH),
        # per-request savings count only over enough requests
        (Impact(db_ms=300.0, db_share=0.01, db_ms_per_request=150.0, requests=2), Severity.LOW),
        (Impact(response_ms_per_request=400.0, requests=50), Severity.MEDIUM),
        (None, Severity.INFO),
    ],
)
def test_severity_rule(impact: Impact | None, expected: Severity) -> None:
    assert of_impact(impact) == expected


# -- root causes -----------------------------------------------------------------------------------
def _f(check: str, statements: tuple[str, ...] = (), **kw: object) -> Finding:
    subject = kw.pop("subject", Subject())
    return Finding(
        check,
        kw.pop("severity", Severity.MEDIUM),  # type: ignore[arg-type]
        f"{check} {statements}",
        "s",
        subject,  # type: ignore[arg-type]
        metrics=kw.pop("metrics", {}),  # type: ignore[arg-type]
        evidence=kw.pop("evidence", Evidence()),  # type: ignore[arg-type]
        impact=kw.pop("impact", None),  # type: ignore[arg-type]
        statements=statements,
    )


def test_one_finding_per_root_cause() -> None:
    index = _f(
        "missing_index",
        ("f1",),
        subject=Subject(table="orders", columns=("status",)),
        impact=Impact(db_ms=10.0, db_share=0.1),
    )
    slow = _f("slow_query", ("f1",))
    plan_scan = _f(
        "plan_seq_scan",
        subject=Subject(table="orders"),
        metrics={"plan_id": "p1"},
        evidence=Evidence(items=({"filter": "((status)::text = 'x'::text)"},)),
    )
    plan_sort = _f("plan_sort_disk", metrics={"plan_id": "p1"})  # same plan: same cause
    other_plan = _f("plan_time_share", metrics={"plan_id": "p2"})
    lone_slow = _f("slow_query", ("f9",))
    lone_plan = _f("plan_misestimate", ("f9",), metrics={"plan_id": "p3"})
    roots = fold([index, slow, plan_scan, plan_sort, other_plan, lone_slow, lone_plan])
    by = {f.check: f for f in roots}
    assert set(by) == {"missing_index", "slow_query", "plan_time_share"}
    assert [s["check"] for s in by["missing_index"].evidence.symptoms] == [
        "slow_query",
        "plan_seq_scan",
        "plan_sort_disk",
    ]
    # a statement no cause explains stays a finding of its own, with its plan flags
    assert [s["check"] for s in by["slow_query"].evidence.symptoms] == ["plan_misestimate"]
    # a plan flag that only says where the time goes is orientation, not a defect
    assert by["plan_time_share"].severity == Severity.INFO
    # and it does not explain itself
    assert by["plan_time_share"].evidence.symptoms == ()


def test_a_cached_aggregate_takes_its_statement_from_an_index() -> None:
    cache = _f("cache_candidate", ("agg",), metrics={"aggregate": True})
    index = _f(
        "missing_index",
        ("agg", "list"),
        subject=Subject(table="t", columns=("a",)),
        metrics={"share": 0.2, "keys": "a", "kind": "plain", "model": "T", "fields": "a"},
        evidence=Evidence(
            items=(
                {"fingerprint_id": "agg", "total_ms": 300.0, "calls": 3, "endpoints": "/report/"},
                {"fingerprint_id": "list", "total_ms": 100.0, "calls": 10, "endpoints": "/list/"},
            )
        ),
        impact=Impact(db_ms=200.0, db_share=0.2),
    )
    roots = {f.check: f for f in fold([cache, index])}
    narrowed = roots["missing_index"]
    assert narrowed.statements == ("list",)
    assert narrowed.impact is not None and narrowed.impact.db_ms == pytest.approx(50.0)
    # a row list is the index's: the cache candidate becomes its evidence
    rows = _f("cache_candidate", ("list",), metrics={"aggregate": False})
    roots = fold([rows, index])
    assert [f.check for f in roots] == ["missing_index"]
    assert roots[0].evidence.symptoms[0]["check"] == "cache_candidate"


# -- advice on evidence -----------------------------------------------------------------------------------
def test_no_index_on_primary_keys_or_unique_columns_without_a_catalog(tmp_path: Path) -> None:
    """A plain query log: no catalog, no model dump. Django's own tables are known exactly,
    every other table's primary key is ``id``."""
    requests = []
    for r in range(30):
        requests.append(
            [
                (f'SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."id" = {r}', 2.0),
                (
                    f"SELECT \"auth_user\".\"id\" FROM \"auth_user\" WHERE \"auth_user\".\"username\" = 'u{r}'",
                    2.0,
                ),
                (f'SELECT "django_site"."id" FROM "django_site" WHERE "django_site"."id" = {r}', 1.0),
                (
                    f"SELECT \"django_session\".\"session_key\" FROM \"django_session\" WHERE \"django_session\".\"session_key\" = 'k{r}'",
                    1.0,
                ),
                (f'SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."id" = {r}', 2.0),
                (
                    f"SELECT \"shop_order\".\"id\" FROM \"shop_order\" WHERE \"shop_order\".\"status\" = 's{r % 3}'",
                    20.0,
                ),
            ]
        )
    client = auditkit.load_client(_jsonl(tmp_path / "c", requests))
    found = [f for f in auditkit.audit(client).findings if f.check == "missing_index"]
    assert [(f.subject.table, f.subject.columns) for f in found] == [("shop_order", ("status",))]
    assert "inferred" in found[0].summary


def test_an_fk_followed_to_the_same_parent_is_an_n_plus_one_and_counts_are_annotated(
    tmp_path: Path,
) -> None:
    requests = []
    for _r in range(12):
        stmts = [('SELECT "blog_post"."id", "blog_post"."author_id" FROM "blog_post" LIMIT 10', 3.0)]
        # every post of the page has the same author: same statement, same parameters, per row
        stmts += [('SELECT "blog_author"."id" FROM "blog_author" WHERE "blog_author"."id" = 7 LIMIT 21', 1.0)] * 10
        # and a comment count per post
        stmts += [
            (f'SELECT COUNT(*) AS "__count" FROM "blog_comment" WHERE "blog_comment"."post_id" = {p}', 1.0)
            for p in range(10)
        ]
        requests.append(stmts)
    client = auditkit.load_client(_jsonl(tmp_path / "c", requests, endpoint="/posts/"))
    result = auditkit.audit(client)
    plus = [f for f in result.findings if f.check == "n_plus_one"]
    assert len(plus) == 1  # one list queryset, one change
    code = plus[0].recommendation.django  # type: ignore[union-attr]
    assert code == (
        "from django.db.models import Count\n"
        'Post.objects.select_related("author").annotate(comment_count=Count("comment"))'
    )
    assert not any(f.check == "duplicate_query" for f in result.findings)


def test_django_contrib_indexes_are_never_to_drop() -> None:
    rows = pd.DataFrame(
        {
            "table": ["auth_user_groups", "auth_user_groups", "shop_order"],
            "index": ["auth_user_groups_user_id_6a12ed8b", "auth_user_groups_pkey", "shop_order_x_idx"],
            "definition": [
                "CREATE INDEX auth_user_groups_user_id_6a12ed8b ON public.auth_user_groups USING btree (user_id)",
                "CREATE UNIQUE INDEX auth_user_groups_pkey ON public.auth_user_groups USING btree (id)",
                "CREATE INDEX shop_order_x_idx ON public.shop_order USING btree (x)",
            ],
            "idx_scan": [0, 5, 0],
            "size_bytes": [8192, 8192, 8192],
        }
    )
    from auditkit.checks.indexes import unused_indexes

    found = unused_indexes(rows)
    django = [f for f in found if "Django's own" in f.title]
    assert len(django) == 1 and django[0].severity == Severity.INFO
    assert django[0].recommendation is not None and django[0].recommendation.sql is None
    assert {f.subject.index for f in found if f.severity > Severity.INFO} == {"shop_order_x_idx"}


def test_no_fix_text_of_our_sample_shop_in_the_library() -> None:
    """Fix code is written from the client's own models, never copied from the sample app."""
    canned = re.compile(r"top_books|Book\.objects|Author\.objects|book:\{|send_receipt|order\.pk")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "auditkit").rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if canned.search(line)
    ]
    assert not hits, hits
    placeholder = re.compile(r"<field pointing|XXXX|<the field|\.only\(…")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "auditkit").rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if placeholder.search(line)
    ]
    assert not hits, hits


# -- the saved audit -----------------------------------------------------------------------------------
def test_an_audit_saves_and_loads_without_pickle(tmp_path: Path) -> None:
    client = auditkit.load_client(
        _jsonl(tmp_path / "c", [[('SELECT "a"."id" FROM "a" WHERE "a"."x" = 1', 1.0)]] * 3)
    )
    result = auditkit.audit(client)
    result.save(tmp_path / "w")
    assert sorted(p.suffix for p in (tmp_path / "w").rglob("*") if p.is_file()) <= [".json", *[".parquet"] * 20]
    back = Audit.load(tmp_path / "w")
    assert [f.to_dict() for f in back.findings] == [f.to_dict() for f in result.findings]
    assert back.workload == {k: v for k, v in result.workload.items() if v is not None}
    assert set(back.frames) == set(result.frames)
