"""N+1 detection end to end: a real Django project on the local PostgreSQL serves views with a
forward-FK, a reverse-FK and an M2M N+1, and a select_related/prefetch_related control.
auditkit reads its plain Django query log (requests inferred) and its JSON-lines log (real
request ids) and must name each N+1 with the right fix — and leave the control alone."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.checks.n_plus_one import duplicate_queries, endpoint_db_time, n_plus_one
from auditkit.config import AuditConfig
from auditkit.sql.django_orm import orm_fix

PROJECT = Path(__file__).resolve().parent / "nplusone_project"


@pytest.fixture(scope="module")
def project_logs(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    psycopg = pytest.importorskip("psycopg")
    name = f"auditkit_nplusone_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    out = tmp_path_factory.mktemp("nplusone")
    base = postgres_dsn.rsplit("/", 1)[0]
    try:
        env = {**os.environ, "AUDITKIT_NPLUSONE_DSN": f"{base}/{name}", "DJANGO_SETTINGS_MODULE": "settings"}
        subprocess.run([sys.executable, str(PROJECT / "drive.py"), str(out)], cwd=PROJECT, env=env, check=True, timeout=300)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def _by_relation(findings: list[auditkit.Finding]) -> dict[str, auditkit.Finding]:
    return {str(f.metrics["relation"]): f for f in findings}


def test_plain_django_log(project_logs: Path) -> None:
    events = auditkit.load(project_logs / "queries.log").frame
    findings = n_plus_one(events)
    found = _by_relation(findings)
    assert set(found) == {"forward_fk", "reverse_fk", "many_to_many"}, [str(f) for f in findings]
    assert found["forward_fk"].recommendation.django == 'Book.objects.select_related("author")'
    # no model dump: the reverse accessor is Django's default name, and the finding says so
    assert found["reverse_fk"].recommendation.django == 'Book.objects.prefetch_related("review_set")'
    assert found["many_to_many"].recommendation.django == 'Book.objects.prefetch_related("tags")'
    for f in findings:
        assert f.evidence.strength == auditkit.EvidenceStrength.INFERRED  # requests were inferred
        assert f.metrics["queries_per_request"] == 12  # one per book
        assert f.metrics["wasted_queries_per_request"] == 11
        assert f.metrics["requests_affected"] == 3
        assert f.metrics["total_saved_ms"] >= 0  # Django logs whole milliseconds: fast queries read 0.000


def test_jsonl_log_with_request_ids_and_models(project_logs: Path) -> None:
    events = auditkit.load(project_logs / "queries.jsonl").frame
    assert events["request_id"].notna().all()
    models = pd.DataFrame({  # what a model dump says about the reverse relation
        "table": ["shop_review"], "model": ["Review"], "field": ["book"], "column": ["book_id"],
        "fk_to": ["shop_book"], "related_name": ["reviews"], "inferred": [False],
    })
    findings = n_plus_one(events, models=models)
    endpoints = {f.subject.endpoint for f in findings}
    assert endpoints == {"/books/authors/", "/books/reviews/", "/books/tags/"}  # not /books/good/
    found = _by_relation(findings)
    assert found["reverse_fk"].recommendation.django == 'Book.objects.prefetch_related("reviews")'
    assert all(float(f.metrics["total_saved_ms"]) > 0 for f in findings)  # microsecond timings here
    # real request ids; the reverse relation's names come from the dump, the forward one's do not
    assert found["reverse_fk"].evidence.strength == auditkit.EvidenceStrength.PATTERN
    assert found["forward_fk"].evidence.strength == auditkit.EvidenceStrength.INFERRED
    table = endpoint_db_time(events)
    good = table[table["endpoint"] == "/books/good/"].iloc[0]
    bad = table[table["endpoint"] == "/books/authors/"].iloc[0]
    assert good["statements_per_request"] < 5 < bad["statements_per_request"]


def test_presets_change_what_counts(project_logs: Path) -> None:
    events = auditkit.load(project_logs / "queries.jsonl").frame
    strict = AuditConfig(overrides={"n_plus_one": {"min_repeats": 13}})
    assert n_plus_one(events, strict) == []
    sentry = AuditConfig(presets={"n_plus_one": "sentry"})  # also needs ≥ 100 ms in total
    assert all(float(f.metrics["total_saved_ms"]) >= 0 for f in n_plus_one(events, sentry))


def test_duplicates_are_not_n_plus_one() -> None:
    sql = 'SELECT "a"."id" FROM "a" WHERE "a"."id" = 1'
    events = pd.DataFrame({"sql": [sql] * 3 + ['SELECT "b"."id" FROM "b" WHERE "b"."id" = 2'],
                           "duration_ms": [1.0] * 4, "request_id": ["r1"] * 4, "endpoint": ["/x/"] * 4})
    fps = auditkit.fingerprint_many(events["sql"])
    events = events.assign(fingerprint=fps[0].to_numpy(), fingerprint_id=fps[1].to_numpy())
    assert n_plus_one(events) == []
    dups = duplicate_queries(events)
    assert len(dups) == 1 and dups[0].metrics["duplicates_per_request"] == 2


def test_deferred_field_interpretation() -> None:
    lst = auditkit.fingerprint('SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book"')
    rep = auditkit.fingerprint('SELECT "shop_book"."id", "shop_book"."summary" FROM "shop_book" WHERE "shop_book"."id" = 4 LIMIT 21')
    fix = orm_fix(rep, [lst])
    assert fix.relation == "deferred_field" and fix.field == "summary"
