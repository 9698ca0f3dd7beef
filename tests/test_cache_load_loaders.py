"""Cache statistics (Redis/Valkey/Pika INFO, memcached stats) and Locust CSV loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditkit
from auditkit.errors import NothingParsedError

REDIS = "netdata/src/go/plugin/go.d/collector/redis/testdata"


@pytest.mark.parametrize(
    ("path", "sections", "pairs", "engine"),
    [
        (f"{REDIS}/v6.0.9/info_all.txt", 11, 150, "redis"),
        (f"{REDIS}/valkey/info_all.txt", None, None, "valkey"),
        # pika: 9 sections, 44 key:value lines, 5 'db0 k=v' keyspace lines and a '# Time:' line
        (f"{REDIS}/pika/info_all.txt", 9, 50, "pika"),
        ("netdata/src/go/plugin/go.d/collector/pika/testdata/redis/info_all.txt", 11, 143, "redis"),
    ],
)
def test_redis_info(peer_data: Path, path: str, sections: int | None, pairs: int | None, engine: str) -> None:
    result = auditkit.load(peer_data / path)
    result.report.check()
    assert result.format == "redis_info"
    df = result.frame
    assert (df["engine"] == engine).all()
    if sections is not None:
        # every section header and key:value line is read; only the RESP length line is skipped
        assert result.report.parsed == sections + pairs
        assert result.report.skipped == ({"RESP length line": 1})


def test_redis_composite_values(peer_data: Path) -> None:
    df = auditkit.load(peer_data / f"{REDIS}/v6.0.9/info_all.txt").frame
    values = dict(zip(df["metric"], df["value"], strict=False))
    assert values["db0.keys"] == 4 and values["keyspace_hits"] == 2
    assert any(m.startswith("cmdstat_") and m.endswith(".calls") for m in df["metric"])


@pytest.mark.parametrize(
    ("path", "stats"),
    [
        ("netdata/src/go/plugin/go.d/collector/memcached/testdata/stats.txt", 92),
        ("diamond/src/collectors/memcached/test/fixtures/stats", 51),
        ("diamond/src/collectors/memcached_slab/test/fixtures/stats", 4),
    ],
)
def test_memcached(peer_data: Path, path: str, stats: int) -> None:
    result = auditkit.load(peer_data / path)
    result.report.check()
    assert result.format == "memcached_stats" and len(result.frame) == stats


def test_locust(peer_data: Path) -> None:
    stats = auditkit.load(peer_data / "bitcoin-api/results_stats.csv").frame
    agg = stats[stats["endpoint"] == "Aggregated"].iloc[0]
    assert len(stats) == 9 and agg["requests"] == 2210 and agg["failures"] == 1607
    history = auditkit.load(peer_data / "bitcoin-api/results_stats_history.csv").frame
    assert len(history) == 56 and history["ts"].notna().all() and history["p95_ms"].isna().iloc[0]  # N/A → NaN
    failures = auditkit.load(peer_data / "bitcoin-api/results_failures.csv").frames["load_failures"]
    assert len(failures) == 7 and failures["occurrences"].sum() == 1607
    empty = auditkit.load(peer_data / "bitcoin-api/results_exceptions.csv")
    assert len(empty.frames["load_failures"]) == 0 and empty.report.warnings
    custom = auditkit.load(peer_data / "load-testing-hub/locust_stats_history.csv")
    assert len(custom.frame) == 71 and custom.frame["p99_ms"].notna().any()  # custom percentile set


def test_not_info(tmp_path: Path) -> None:
    from auditkit.loaders.registry import get_loader

    bad = tmp_path / "x.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(NothingParsedError):
        get_loader("redis_info").load(bad)
    with pytest.raises(NothingParsedError):
        get_loader("memcached_stats").load(bad)
