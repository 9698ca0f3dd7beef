"""The Redis collector against the local Redis: what it writes loads, it cannot write, and on a
least-privilege or managed server (an ACL user without ``config|get``, ``CONFIG`` renamed away)
it collects what it may and says what it could not."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import auditkit
from auditkit.checks.caching import cache_hit_ratios
from auditkit.collect.redis import _Guarded, collect_redis
from auditkit.errors import CollectorError

SECRET = "sentinel-redis-password-xyz"


def _text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())


def test_collect_and_load(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.setenv("AUDIT_REDIS", redis_url)
    client = redis.Redis.from_url(redis_url)
    key = f"auditkit:test:{uuid.uuid4().hex}"
    client.set(key, "1")
    client.get(key)
    result = collect_redis("AUDIT_REDIS", tmp_path, every_s=0.4, count=3)
    client.delete(key)
    client.close()
    names = sorted(p.name for p in result.files)
    infos = [n for n in names if n.startswith("info-")]
    assert len(infos) == 3 and infos == sorted(infos) and result.snapshots == 3
    assert {"redis_config.json", "redis_slowlog.json", "collect_redis.md"} <= set(names)
    assert not result.skipped
    data = auditkit.load_client(tmp_path)
    status = {f.path: (f.status, f.format) for f in data.files}
    assert all(status[n] == ("loaded", "redis_info") for n in infos)
    assert status["redis_config.json"] == ("loaded", "redis_config")
    assert status["redis_slowlog.json"] == ("loaded", "redis_slowlog")
    assert status["collect_redis.md"][0] == "documentation"
    stats = data.frame("cache_stats")
    config = stats[stats["section"] == "config"]
    assert {"maxmemory", "maxmemory-policy", "timeout"} <= set(config["metric"])
    info_server = stats[stats["metric"] == "keyspace_hits"]["server"].iloc[0]
    assert set(config["server"]) == {info_server}  # config joins the INFO snapshots' server
    assert config["ts"].notna().all()
    ratios = cache_hit_ratios(stats)
    assert len(ratios) == 1 and ratios.iloc[0]["snapshots"] == 3


def test_slowlog_loads(tmp_path: Path) -> None:
    doc = (
        '{"format": "auditkit.redis_slowlog", "version": 1, "collected_at": "2026-01-01T00:00:00Z",\n'
        ' "server": {"run_id": "abcdef0123456789", "redis_version": "7.0.15"},\n'
        ' "entries": [\n'
        '  {"id": 7, "ts": "2026-01-01T00:00:00Z", "duration_us": 25000, "command": "KEYS", "args": 1},\n'
        '  {"id": 6, "ts": "2026-01-01T00:00:00Z", "command": "GET", "args": 1},\n'
        '  {"id": 5, "ts": "2026-01-01T00:00:00Z", "duration_us": 12000, "command": "HGETALL", "args": 1, "client_name": "web"}\n'
        " ]}\n"
    )
    path = tmp_path / "redis_slowlog.json"
    path.write_text(doc)
    result = auditkit.load(path)
    assert result.format == "redis_slowlog"
    assert result.report.read == 3 and result.report.parsed == 2
    assert dict(result.report.skipped) == {"entry without a duration": 1}
    events = result.frame
    assert list(events["message"]) == ["KEYS", "HGETALL"] and list(events["duration_ms"]) == [25.0, 12.0]
    assert set(events["kind"]) == {"slow_command"} and list(events["source_line"]) == [4, 6]


def test_guard_refuses_writes() -> None:
    class Fake:
        def execute_command(self, *args: str) -> str:
            raise AssertionError("a write reached the server")

    guard = _Guarded(Fake())
    for command in (("SET", "k", "v"), ("FLUSHALL",), ("CONFIG", "SET", "maxmemory", "1"), ("DEL", "k"), ("SLOWLOG", "RESET"), ("CONFIG", "RESETSTAT")):
        with pytest.raises(CollectorError, match="only reads"):
            guard(*command)


def test_password_never_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_REDIS", f"redis://:{SECRET}@127.0.0.1:1/0")
    with pytest.raises(CollectorError) as err:
        collect_redis("AUDIT_REDIS", tmp_path, every_s=0, count=1)
    assert SECRET not in str(err.value) and "AUDIT_REDIS" in str(err.value)
    monkeypatch.delenv("AUDIT_REDIS")
    with pytest.raises(CollectorError, match="not set"):
        collect_redis("AUDIT_REDIS", tmp_path)


@pytest.fixture
def acl_user(redis_url: str) -> Iterator[str]:
    """A Redis user that may read INFO but not CONFIG GET (removed after the test)."""
    import redis

    admin = redis.Redis.from_url(redis_url)
    name = f"auditkit-test-{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(
        name, enabled=True, passwords=[f"+{SECRET}"], keys=["*"], commands=["+@all", "-config|get"]
    )
    try:
        host_port = redis_url.split("://", 1)[1].split("/", 1)[0]
        yield f"redis://{name}:{SECRET}@{host_port}/0"
    finally:
        admin.acl_deluser(name)
        admin.close()


def test_acl_user_without_config_get(acl_user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_REDIS_ACL", acl_user)
    result = collect_redis("AUDIT_REDIS_ACL", tmp_path, every_s=0.2, count=2)
    assert result.snapshots == 2
    assert "ACL" in result.skipped["redis_config.json"]
    assert not (tmp_path / "redis_config.json").exists()
    assert (tmp_path / "redis_slowlog.json").is_file()
    notes = (tmp_path / "collect_redis.md").read_text()
    assert "redis_config.json" in notes and "not permitted" in notes
    assert SECRET not in _text(tmp_path) and acl_user.split("@")[0] not in _text(tmp_path)
    data = auditkit.load_client(tmp_path)
    assert not [f for f in data.files if f.status == "error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def managed_redis(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """A private redis-server with CONFIG renamed away, as managed services do."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--rename-command", "CONFIG", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_config_renamed_away(managed_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_REDIS_MANAGED", managed_redis)
    out = tmp_path / "out"
    result = collect_redis("AUDIT_REDIS_MANAGED", out, every_s=0.1, count=2)
    assert result.snapshots == 2 and "disabled or renamed" in result.skipped["redis_config.json"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("info-")) != []
