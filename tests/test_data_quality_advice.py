"""Data-quality advice names the software that wrote the input and what to switch on in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import auditkit
from auditkit.checks.data_quality import _skipped_advice, how_to_collect, software_of

MYSQL_CLIENT = Path(__file__).parent / "fixtures" / "mysql_client"


def test_statement_advice_follows_the_database() -> None:
    pg = how_to_collect("slow_query", software_of(["postgres_stderr", "pg_indexes"]))
    assert "log_min_duration_statement" in pg and "pg_stat_statements" in pg
    assert "long_query_time" not in pg
    my = how_to_collect("slow_query", software_of(["mysql_slow"]))
    assert "long_query_time" in my and "events_statements_summary_by_digest" in my
    assert "log_min_duration_statement" not in my
    dj = how_to_collect("slow_query", software_of(["django_log", "mysql_indexes"]))
    assert "django.db.backends" in dj and "LOGGING" in dj and "long_query_time" in dj
    # the database unknown: both are named, never a generic "send a query log"
    both = how_to_collect("unused_index", software_of(["django_log"]))
    assert "pg_stat_user_indexes" in both and "table_io_waits_summary_by_index_usage" in both


def test_plan_advice_is_dialect_aware() -> None:
    assert "EXPLAIN (ANALYZE, BUFFERS" in how_to_collect("plans", frozenset({"postgres"}))
    my = how_to_collect("plans", frozenset({"mysql"}))
    assert "EXPLAIN ANALYZE" in my and "ANALYZE FORMAT=JSON" in my and "BUFFERS" not in my


def test_skipped_records_advice_names_the_setting_of_the_writer() -> None:
    assert "log_line_prefix" in _skipped_advice("postgres_stderr")
    assert "LOGGING" in _skipped_advice("django_log")
    assert "slow_query_log_file" in _skipped_advice("mysql_slow")


def test_gaps_of_a_django_log_only_folder_say_what_to_switch_on(tmp_path: Path) -> None:
    folder = tmp_path / "client"
    (folder / "django").mkdir(parents=True)
    shutil.copy(MYSQL_CLIENT / "django" / "django.log", folder / "django" / "django.log")
    result = auditkit.audit(auditkit.load_client(folder))
    gaps = {g.check: g for g in result.gaps}
    assert "unused_index" in gaps and "plans" in gaps
    assert all(g.how for g in result.gaps if g.check != "mysql_server"), [
        g.check for g in result.gaps if not g.how
    ]
    assert "pg_stat_user_indexes" in gaps["unused_index"].how
    assert result.document()["gaps"][0].get("how")


def test_gaps_of_the_mysql_shop_name_mysql_only() -> None:
    result = auditkit.audit(auditkit.load_client(MYSQL_CLIENT))
    text = " ".join(g.how for g in result.gaps)
    assert text
    assert "pg_stat" not in text and "log_min_duration_statement" not in text


def test_every_registry_entry_has_a_name_a_client_reads() -> None:
    """A check that could not run is listed by a human name, never its registry id."""
    from auditkit.checks import REGISTRY
    from auditkit.findings import CHECK_NAMES

    assert [s.name for s in REGISTRY if s.name not in CHECK_NAMES] == []
