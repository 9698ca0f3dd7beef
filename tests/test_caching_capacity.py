"""Cache-hit analysis and capacity checks over canonical frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import auditkit
from auditkit.analysis.load import load_steps
from auditkit.checks.caching import cache_candidates, cache_hit_ratios, low_cache_hit_ratio
from auditkit.checks.capacity import (
    background_task_candidates,
    connection_budget,
)
from auditkit.config import AuditConfig


def _info(tmp_path: Path, name: str, hits: int, misses: int, at: int = 0) -> Path:
    p = tmp_path / name
    usec = 1_700_000_000_000_000 + at * 1_000_000
    p.write_text(f"# Server\nredis_version:7.0.15\nrun_id:abc123\nserver_time_usec:{usec}\n"
                 f"# Stats\nkeyspace_hits:{hits}\nkeyspace_misses:{misses}\n")
    return p


def test_hit_ratio_between_two_snapshots(tmp_path: Path) -> None:
    before = auditkit.load(_info(tmp_path, "info_before.txt", 1000, 100)).frame
    after = auditkit.load(_info(tmp_path, "info_after.txt", 1100, 500, at=60)).frame
    ratios = cache_hit_ratios(pd.concat([before, after]))
    r = ratios.iloc[0]
    assert (r["hits"], r["misses"], r["window"]) == (100, 400, "between snapshots")
    findings = low_cache_hit_ratio(pd.concat([before, after]))
    assert len(findings) == 1 and findings[0].metrics["hit_ratio"] == 0.2
    assert low_cache_hit_ratio(before) == []  # 91 % since start is fine


def test_restart_between_snapshots(tmp_path: Path) -> None:
    before = auditkit.load(_info(tmp_path, "a.txt", 5000, 10)).frame
    after = auditkit.load(_info(tmp_path, "b.txt", 10, 90, at=60)).frame
    r = cache_hit_ratios(pd.concat([before, after])).iloc[0]
    assert r["window"] == "since the restart" and r["hits"] == 10


def test_cache_candidates() -> None:
    sql = ['SELECT "b"."id" FROM "b" ORDER BY "b"."sold" DESC LIMIT 10'] * 150 + [f'SELECT "a"."id" FROM "a" WHERE "a"."id" = {i}' for i in range(150)]
    events = pd.DataFrame({"sql": sql, "duration_ms": [5.0] * 300, "endpoint": ["/top/"] * 150 + ["/a/"] * 150})
    fps = auditkit.fingerprint_many(events["sql"])
    events = events.assign(fingerprint=fps[0].to_numpy(), fingerprint_id=fps[1].to_numpy(), params=None)
    found = cache_candidates(events)
    assert len(found) == 1 and found[0].subject.endpoint == "/top/"
    assert found[0].metrics["distinct"] == 1


def test_capacity_on_real_locust_history(peer_data: Path) -> None:
    history = auditkit.load(peer_data / "load-testing-hub/locust_stats_history.csv").frame
    steps = load_steps(history)
    assert len(steps) >= 1 and steps.loc[steps["trusted"], "rps"].gt(0).all()


def test_connection_budget() -> None:
    (f,) = connection_budget({"instances": 3, "web_workers": 8, "threads_per_worker": 4, "max_connections": 100})
    assert f.metrics["needed"] == 96 and f.severity == auditkit.Severity.HIGH  # past the headroom
    assert f.recommendation is not None and '"max_size": 2' in (f.recommendation.django or "")
    (g,) = connection_budget({"instances": 4, "web_workers": 8, "threads_per_worker": 4, "max_connections": 100})
    assert g.severity == auditkit.Severity.CRITICAL  # more than the server allows
    (h,) = connection_budget({"instances": 1, "web_workers": 2, "threads_per_worker": 4, "max_connections": 100})
    assert h.severity == auditkit.Severity.INFO and h.recommendation is not None and h.recommendation.django is None
    assert connection_budget({}) == []


def test_background_candidates_only_on_evidence_of_waiting() -> None:
    n = 20
    req = pd.DataFrame({
        "endpoint": ["/report/"] * n + ["/list/"] * n + ["/login/"] * n,
        "duration_ms": np.r_[np.full(n, 2500.0), np.full(n, 1500.0), np.full(n, 600.0)],
        "db_ms": np.r_[np.full(n, 100.0), np.full(n, 1400.0), np.full(n, 5.0)],
        # /login/ hashes a password: CPU, nothing to move
        "cpu_ms": np.r_[np.full(n, 40.0), np.full(n, 60.0), np.full(n, 590.0)],
        "mail_ms": np.r_[np.full(n, 2300.0), np.zeros(n), np.zeros(n)],
    })
    found = background_task_candidates(req, AuditConfig())
    assert [f.subject.endpoint for f in found] == ["/report/"]
    f = found[0]
    assert "e-mail" in f.title and f.impact is not None and f.impact.response_ms_per_request == 2360.0
    assert f.severity == auditkit.Severity.HIGH
    # durations and database time alone say nothing about waiting: no advice from a missing number
    assert background_task_candidates(req.drop(columns=["cpu_ms", "mail_ms"]), AuditConfig()) == []


def test_pg_settings(tmp_path: Path) -> None:
    p = tmp_path / "pg_settings.csv"
    p.write_text("name,setting,unit,source\nmax_connections,100,,configuration file\n"
                 "shared_buffers,16384,8kB,configuration file\nwork_mem,4096,kB,default\n"
                 "statement_timeout,0,ms,default\nlc_messages,C,,default\n")
    df = auditkit.load(p).frame
    values = dict(zip(df["name"], df["value"], strict=True))
    assert values["shared_buffers"] == 16384 * 8192 and values["work_mem"] == 4096 * 1024
    assert values["max_connections"] == 100 and np.isnan(values["lc_messages"])


def test_an_unknown_budget_is_said_to_be_unknown() -> None:
    from auditkit.analysis.connections import Churn
    from auditkit.checks.capacity import connection_churn

    # max_connections known, the workers not: the peak is unknown, never one invented worker
    (f,) = connection_budget({"max_connections": 100, "sources": {"max_connections": "pg_settings"}})
    assert "unknown" in f.title and "needed" not in f.metrics and f.metrics["allowed"] == 97
    assert "web_workers" in f.recommendation.summary
    # threads unstated: counted as a synchronous worker's one thread, and said so
    (g,) = connection_budget({"max_connections": 100, "web_workers": 3})
    assert "threads per worker not stated" in g.summary and g.metrics["needed"] == 3
    assert "(s)" not in g.summary + g.title
    # churn without max_connections: the budget to check is unknown, and the page says it
    churn = Churn("the PostgreSQL log", sessions=1000, window_s=100.0, requests=1000, databases=("shop",))
    (c,) = connection_churn(churn, {})
    assert "max_connections) was not among the files" in c.recommendation.summary
    (d,) = connection_churn(churn, {"max_connections": 100})
    assert "check the connection budget" in d.recommendation.summary
