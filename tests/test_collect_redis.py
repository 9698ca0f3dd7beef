"""The Redis collector against the local Redis: what it writes loads, and it cannot write."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditkit
from auditkit.checks.caching import cache_hit_ratios
from auditkit.collect.redis import _Guarded, collect_redis
from auditkit.errors import CollectorError

SECRET = "sentinel-redis-password-xyz"


def test_collect_and_load(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.setenv("AUDIT_REDIS", redis_url)
    client = redis.Redis.from_url(redis_url)
    client.set("auditkit:test:key", "1")
    result = collect_redis("AUDIT_REDIS", tmp_path, interval_s=0.5)
    client.get("auditkit:test:key")
    client.delete("auditkit:test:key")
    names = sorted(p.name for p in result.files)
    assert names == ["config.txt", "info_after.txt", "info_before.txt", "slowlog.txt"]
    client_data = auditkit.load_client(tmp_path)
    assert {f.path: f.status for f in client_data.files} == {
        "config.txt": "loaded", "info_after.txt": "loaded", "info_before.txt": "loaded", "slowlog.txt": "unrecognised"}
    stats = client_data.frame("cache_stats")
    assert {"keyspace_hits", "used_memory", "maxmemory"} <= set(stats["metric"])
    ratios = cache_hit_ratios(stats)
    assert len(ratios) == 1 and ratios.iloc[0]["snapshots"] == 2


def test_guard_refuses_writes() -> None:
    class Fake:
        def execute_command(self, *args: str) -> str:
            raise AssertionError("a write reached the server")

    guard = _Guarded(Fake())
    for command in (("SET", "k", "v"), ("FLUSHALL",), ("CONFIG", "SET", "maxmemory", "1"), ("DEL", "k")):
        with pytest.raises(CollectorError, match="only reads"):
            guard(*command)


def test_password_never_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_REDIS", f"redis://:{SECRET}@127.0.0.1:1/0")
    with pytest.raises(CollectorError) as err:
        collect_redis("AUDIT_REDIS", tmp_path, interval_s=0)
    assert SECRET not in str(err.value) and "AUDIT_REDIS" in str(err.value)
    monkeypatch.delenv("AUDIT_REDIS")
    with pytest.raises(CollectorError, match="not set"):
        collect_redis("AUDIT_REDIS", tmp_path)
