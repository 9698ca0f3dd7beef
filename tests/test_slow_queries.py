"""Slow statements and server events: thresholds from presets, literal-free findings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import auditkit
from auditkit.checks.server_events import server_errors, temp_files
from auditkit.checks.slow_queries import slow_queries
from auditkit.config import AuditConfig
from auditkit.findings import percent_text


def _stats() -> pd.DataFrame:
    events = pd.DataFrame(
        {
            "sql": ["SELECT * FROM big WHERE email = 'sentinel@example.org'"] * 3
            + [f"SELECT {i}" for i in range(100)],
            "duration_ms": [900.0, 1100.0, 1000.0] + [0.5] * 100,
            "ts": pd.date_range("2024-01-01", periods=103, freq="min", tz="UTC"),
        }
    )
    return auditkit.query_profile(events)


def test_slow_statement_found_without_literals() -> None:
    findings = slow_queries(_stats())
    assert len(findings) == 1
    f = findings[0]
    assert f.check == "slow_query" and f.severity == auditkit.Severity.HIGH
    assert f.metrics["calls"] == 3 and f.metrics["mean_ms"] == 1000.0
    assert "sentinel@example.org" not in str(f.to_dict())
    assert f.impact is not None and f.impact.db_ms and f.impact.basis == "at stake"


def test_presets_apply() -> None:
    pghero = AuditConfig(presets={"slow_query": "pghero"})  # ≥ 20 ms over ≥ 100 calls
    assert slow_queries(_stats(), pghero) == []


def test_server_events_from_a_real_log(peer_data: Path) -> None:
    loader = auditkit.all_loaders().get("postgres_stderr")
    if loader is None:  # pragma: no cover - while the PostgreSQL loader is absent
        return
    result = auditkit.load(peer_data / "pgbadger/t/fixtures/tempfile_only.log.gz")
    events = result.frames["server_events"]
    tf = temp_files(events)
    assert sum(int(f.metrics["files"]) for f in tf) == 5
    errors = server_errors(
        auditkit.load(peer_data / "pgbadger/t/fixtures/queryid.log.gz").frames["server_events"]
    )
    by_kind: dict[str, int] = {}
    for f in errors:
        kind = "lock_wait" if f.title.startswith("Lock waits") else "error"
        by_kind[kind] = by_kind.get(kind, 0) + int(f.metrics["count"])
    # the MANIFEST's 3 ERRORs; one wait, logged twice (still waiting, then acquired)
    assert by_kind == {"error": 3, "lock_wait": 1}
    wait = next(f for f in errors if f.title.startswith("Lock waits"))
    assert wait.title == "Lock waits on t1 by SELECT statements: 1 lock wait, 13.6 s waited"
    assert wait.metrics["waited_ms"] == 13555.814 and wait.subject.table == "t1"


def test_lock_waits_name_the_table_and_statement_waited_on(peer_data: Path) -> None:
    events = auditkit.load(peer_data / "pgbadger/t/fixtures/logplex.gz").frames["server_events"]
    found = server_errors(events)
    titles = [f.title for f in found]
    assert titles == [
        "Lock waits on redacted_table_2 by UPDATE statements: 3 lock waits, 20.7 s waited",
        "Deadlocks on redacted_table_2 by UPDATE statements: 1 deadlock",
    ]
    assert all(f.subject.fingerprint and "?" in f.subject.fingerprint for f in found)
    assert not any("(s)" in f.title + f.summary or "lock_wait" in f.summary for f in found)


def test_the_plan_is_asked_for_only_when_none_was_sent() -> None:
    stats = _stats()
    asked = slow_queries(stats)[0].recommendation
    assert asked.sql.startswith("EXPLAIN (ANALYZE, BUFFERS)") and "send the plan" in asked.summary
    fid = slow_queries(stats)[0].subject.fingerprint_id
    other = pd.DataFrame(
        {"plan_id": ["p1"], "node_id": [0], "node_type": ["Seq Scan"], "fingerprint_id": ["0" * 16]}
    )
    assert slow_queries(stats, plan_nodes=other)[0].recommendation.sql  # another statement's plan
    sent = other.assign(fingerprint_id=[fid])
    rec = slow_queries(stats, plan_nodes=sent)[0].recommendation
    assert rec.sql is None and "EXPLAIN" not in rec.summary and "plans received" in rec.summary


def test_the_plan_advice_speaks_the_database_dialect() -> None:
    rec = slow_queries(_stats(), dialect="mysql")[0].recommendation
    assert "EXPLAIN ANALYZE" in rec.summary and "ANALYZE FORMAT=JSON" in rec.summary
    assert rec.sql.startswith("EXPLAIN ANALYZE\n") and "BUFFERS" not in rec.sql + rec.summary


def test_an_upper_bound_says_at_most_in_the_page_and_the_json() -> None:
    from auditkit.report.html import findings_html

    f = slow_queries(_stats())[0]
    assert f.impact is not None and f.impact.phrase().startswith("saves at most ")
    assert f.to_dict()["impact"]["text"] == f.impact.phrase()
    assert "aves at most " in findings_html([f])
    measured = auditkit.Impact.of(100.0, 1000.0)
    assert measured.phrase() == "saves 10 % of all database time"


def test_titles_name_the_statement_kind_and_tables(peer_data: Path, tmp_path: Path) -> None:
    """pgbadger's pgbench log: the slow statements are pgbench's UPDATEs; the title says which
    table, and writes its share the way every other figure of the report does ("71 %")."""
    folder = tmp_path / "pgbench"
    folder.mkdir()
    (folder / "light.postgres.log.bz2").write_bytes(
        (peer_data / "pgbadger/t/fixtures/light.postgres.log.bz2").read_bytes()
    )
    result = auditkit.audit(auditkit.load_client(folder))
    slow = [f for f in result.findings if f.check == "slow_query"]
    assert [f.title.split(":")[0] for f in slow] == [
        "Slow UPDATE on pgbench_tellers",
        "Slow UPDATE on pgbench_branches",
    ]
    for f in slow:
        share = percent_text(float(f.metrics["share"] or 0))
        assert f.title.endswith(f": {share} of all database time"), f.title
        assert share in f.summary and f.impact is not None and share in f.impact.phrase()


def test_titles_of_joins_commits_and_unparsed_statements() -> None:
    """A Django app's join names its main table first; a statement without a table is named
    by its keyword; what the audit cannot name stays "statement"."""
    join = (
        'SELECT "fleet_trip"."id" FROM "fleet_trip" INNER JOIN "fleet_vehicle" ON '
        '("fleet_trip"."vehicle_id" = "fleet_vehicle"."id") INNER JOIN "fleet_driver" ON '
        '("fleet_trip"."driver_id" = "fleet_driver"."id") WHERE "fleet_vehicle"."plate" = \'x\''
    )
    events = pd.DataFrame(
        {
            "sql": [join] * 3 + ["COMMIT"] * 3 + ["administrator command: Ping"] * 3,
            "duration_ms": [400.0] * 3 + [300.0] * 3 + [200.0] * 3,
            "ts": pd.date_range("2024-01-01", periods=9, freq="min", tz="UTC"),
        }
    )
    titles = sorted(f.title for f in slow_queries(auditkit.query_profile(events)))
    assert titles == [
        "Slow COMMIT: 300.0 ms per call on average",
        "Slow SELECT on fleet_trip and 2 other tables: 400.0 ms per call on average",
        "Slow statement: 200.0 ms per call on average",
    ]
