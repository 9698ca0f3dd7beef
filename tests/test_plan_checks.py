"""Plan checks over real plans.

``tests/fixtures/catalog/plans`` holds EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output of
PostgreSQL 15 on the test shop database (100 000 orders, 50 000 customers), each provoking one
problem: a sort and a hash join with ``work_mem = 64kB``, a selective filter without an index,
correlated predicates the planner multiplies, a nested loop forced by ``enable_hashjoin = off``,
an index-only scan right after an update, and a plain EXPLAIN without ANALYZE.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.checks.plans import PLAN_CHECKS, plan_checks
from auditkit.config import AuditConfig
from auditkit.findings import CHECKS, EvidenceStrength, Finding, Severity

PLANS = Path(__file__).parent / "fixtures" / "catalog" / "plans"

#: fixture → checks that must fire (other checks may fire too)
EXPECTED = {
    "sort_on_disk.json": {"plan_sort_disk", "plan_time_share"},
    "hash_batches.json": {"plan_hash_batches", "plan_time_share"},
    "seq_scan_filter.json": {"plan_seq_scan", "plan_rows_removed"},
    "misestimate.json": {"plan_misestimate", "plan_seq_scan"},
    "nested_loop.json": {"plan_nested_loop"},
    "heap_fetches.json": {"plan_heap_fetches"},
}
#: fixture → checks that must not fire
ABSENT = {
    "sort_on_disk.json": {"plan_hash_batches", "plan_nested_loop", "plan_misestimate"},
    "seq_scan_filter.json": {"plan_sort_disk", "plan_hash_batches", "plan_misestimate"},
    "heap_fetches.json": {"plan_seq_scan", "plan_sort_disk"},
    "seq_scan_no_analyze.json": set(c for c in CHECKS if c.startswith("plan_")),
}


def _nodes(*names: str) -> pd.DataFrame:
    return pd.concat([auditkit.load(PLANS / n).frame for n in names], ignore_index=True)


def _findings(name: str, config: AuditConfig | None = None) -> list[Finding]:
    return plan_checks(_nodes(name), config)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_plan_raises_its_flag(name: str) -> None:
    found = {f.check for f in _findings(name)}
    assert EXPECTED[name] <= found, found
    assert not found & ABSENT.get(name, set())


def test_a_plan_without_problems_gives_nothing() -> None:
    assert _findings("seq_scan_no_analyze.json") == []


def test_findings_point_at_node_and_file() -> None:
    f = next(f for f in _findings("sort_on_disk.json") if f.check == "plan_sort_disk")
    assert f.metrics["plan_id"] == "sort_on_disk.json#1" and f.metrics["node_id"] == 0
    assert f.metrics["sort_method"] == "external merge" and f.metrics["sort_space_kb"] > 1000
    assert (
        f.subject.expression == "node 0: Sort" and f.evidence.strength == EvidenceStrength.VALIDATED
    )
    item = f.evidence.items[0]
    assert item["plan_id"] == "sort_on_disk.json#1" and item["node_type"] == "Sort"
    assert str(item["source_file"]).endswith("sort_on_disk.json")
    assert f.recommendation is not None and (f.recommendation.sql or "").startswith(
        "SET LOCAL work_mem = "
    )


def test_bands_give_severity() -> None:
    mis = next(f for f in _findings("misestimate.json") if f.check == "plan_misestimate")
    # 102 estimated, 20 000 actual: ~196×, between the 100× and 1000× bands
    assert 100 <= mis.metrics["factor"] < 1000 and mis.severity == Severity.MEDIUM
    assert mis.metrics["direction"] == "under" and mis.recommendation is not None
    assert mis.recommendation.sql == 'ANALYZE "shop_order";'
    removed = next(f for f in _findings("seq_scan_filter.json") if f.check == "plan_rows_removed")
    assert removed.metrics["fraction"] > 0.99 and removed.severity == Severity.MEDIUM
    loop = next(f for f in _findings("nested_loop.json") if f.check == "plan_nested_loop")
    assert loop.metrics["inner_loops"] == 20000 and loop.severity == Severity.MEDIUM
    batches = next(f for f in _findings("hash_batches.json") if f.check == "plan_hash_batches")
    assert batches.metrics["hash_batches"] == 32


def test_preset_and_overrides_change_the_bands() -> None:
    share = next(f for f in _findings("hash_batches.json") if f.check == "plan_time_share")
    default_sev = share.severity
    strict = AuditConfig(overrides={"plan": {"time_share": (0.01, 0.02, 0.03)}})
    assert (
        next(
            f for f in _findings("hash_batches.json", strict) if f.check == "plan_time_share"
        ).severity
        == Severity.HIGH
    )
    lax = AuditConfig(overrides={"plan": {"nested_loop_loops": (10**6, 10**7)}})
    assert not [f for f in _findings("nested_loop.json", lax) if f.check == "plan_nested_loop"]
    assert default_sev in (Severity.LOW, Severity.MEDIUM)
    assert AuditConfig(presets={"plan": "depesz"}).thresholds("plan")["time_share"] == (
        0.1,
        0.5,
        0.9,
    )


def test_one_finding_per_plan_for_time_share() -> None:
    found = [f for f in plan_checks(_nodes(*EXPECTED)) if f.check == "plan_time_share"]
    assert len({f.metrics["plan_id"] for f in found}) == len(found)


def test_a_limit_excuses_over_estimates() -> None:
    nodes = pd.DataFrame(
        {
            "plan_id": ["p"] * 3,
            "node_id": [0, 1, 2],
            "parent_id": [pd.NA, 0, 1],
            "node_type": ["Limit", "Index Scan", "Seq Scan"],
            "plan_rows": [20.0, 50000.0, 10.0],
            "actual_rows": [20.0, 20.0, 5000.0],
            "loops": [1.0, 1.0, 1.0],
            "actual_total_ms": [5.0, 4.9, 3.0],
            "exclusive_ms": [0.1, 1.9, 3.0],
        }
    )
    found = [f for f in plan_checks(nodes) if f.check == "plan_misestimate"]
    # the index scan stopped by LIMIT is fine; the under-estimate below it is not
    assert [f.metrics["node_id"] for f in found] == [2]


def test_the_same_plan_twice_is_judged_once() -> None:
    once = _nodes("sort_on_disk.json")
    twice = pd.concat([once, once.assign(plan_id="copy#1")], ignore_index=True)
    a, b = plan_checks(once), plan_checks(twice)
    assert [f.title for f in a] == [f.title for f in b]
    assert all(f.metrics["plans_alike"] == 2 and "copy#1" in (f.evidence.note or "") for f in b)


def test_statement_is_the_subject_when_the_plan_carries_it(peer_data: Path) -> None:
    path = (
        peer_data
        / "pganalyze-collector"
        / "logs"
        / "querysample"
        / "testdata"
        / "json_with.in.json"
    )
    nodes = auditkit.load(path).frame
    found = plan_checks(
        nodes, AuditConfig(overrides={"plan": {"time_share": (0.0, 0.5, 0.9), "min_node_ms": 0.0}})
    )
    assert found and all(f.subject.fingerprint and f.subject.fingerprint_id for f in found)


def test_every_peer_plan_is_checked_without_error(peer_data: Path) -> None:
    checked = 0
    for path in sorted(peer_data.rglob("*")):
        if not path.is_file() or path.suffix in (".gz", ".bz2", ".log") or "slowlog" in str(path):
            continue  # logs: not plans (and slow to sniff)
        try:
            fmt = auditkit.detect(path).format
        except auditkit.UnknownFormatError:
            continue
        if not fmt.startswith("explain"):
            continue
        try:
            nodes = auditkit.load(path).frame
        except auditkit.AuditkitError:
            continue  # the loader's own tests cover malformed plans
        for f in plan_checks(nodes):
            assert f.check in CHECKS and f.check.startswith("plan_")
            assert f.evidence.items and f.metrics["plan_id"]
        checked += 1
    assert checked >= 20
    assert len(PLAN_CHECKS) == len([c for c in CHECKS if c.startswith("plan_")])
