"""The memcached collector against a real memcached started on a free port for the test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import auditkit
from auditkit.checks.caching import cache_hit_ratios
from auditkit.collect.memcached import _Connection, collect_memcached
from auditkit.errors import CollectorError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _send(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        time.sleep(0.05)
        return s.recv(65536)


def _start() -> tuple[subprocess.Popen[bytes], int]:
    from conftest import REQUIRE_SERVICES

    exe = shutil.which("memcached")
    if exe is None:
        message = "memcached is not installed (apt-get install memcached)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    # no LRU maintainer thread: it moves items while the crawler walks them, and the metadump
    # would miss a key now and then
    args = [
        exe,
        "-p",
        str(port),
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-m",
        "16",
        "-o",
        "no_lru_maintainer",
    ]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


@pytest.fixture(scope="module")
def memcached() -> Iterator[int]:
    proc, port = _start()
    try:
        # the application's own traffic (not the collector's): detail tracking, sets, gets
        _send(port, b"stats detail on\r\n")
        for i in range(20):
            _send(port, f"set user:{i} 0 0 5\r\nhello\r\n".encode())
        for i in range(30):
            _send(port, f"get user:{i}\r\n".encode())
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def fresh_memcached() -> Iterator[int]:
    proc, port = _start()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_collect_and_load(memcached: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_MEMCACHED", f"memcached://127.0.0.1:{memcached}")
    result = collect_memcached(
        tmp_path, url_env="AUDIT_MEMCACHED", every_s=0.3, count=2, metadump=True
    )
    names = sorted(p.name for p in result.files)
    stats = [n for n in names if n.startswith("stats-")]
    assert len(stats) == 2 and result.snapshots == 2 and result.version
    assert {
        "stats_slabs.txt",
        "stats_items.txt",
        "stats_settings.txt",
        "stats_detail_dump.txt",
        "metadump.txt",
        "collect_memcached.json",
        "collect_memcached.md",
    } <= set(names)
    detail = (tmp_path / "stats_detail_dump.txt").read_text()
    assert detail.startswith("PREFIX user get 30 hit 20 set 20") and detail.endswith("END\n")
    assert len((tmp_path / "metadump.txt").read_text().splitlines()) == 21  # 20 keys + END
    sidecar = json.loads((tmp_path / "collect_memcached.json").read_text())
    assert sidecar["format"] == "auditkit.collect_memcached"
    assert sidecar["files"]["stats_items.txt"]["command"] == "stats items"
    assert sidecar["files"]["stats_items.txt"]["collected_at"].endswith("Z")
    data = auditkit.load_client(tmp_path)
    status = {f.path: (f.status, f.format) for f in data.files}
    assert all(status[n] == ("loaded", "memcached_stats") for n in stats)
    assert status["stats_slabs.txt"] == ("loaded", "memcached_stats")
    assert not [f for f in data.files if f.status == "error"], data.inventory()
    frame = data.frame("cache_stats")
    snapshots = frame[frame["source_file"].isin(stats)]
    ratios = cache_hit_ratios(snapshots)
    assert len(ratios) == 1 and ratios.iloc[0]["snapshots"] == 2
    hits = snapshots[snapshots["metric"] == "get_hits"]["value"]
    assert set(hits) == {20.0}


def test_detail_off_is_noted(fresh_memcached: int, tmp_path: Path) -> None:
    result = collect_memcached(tmp_path, server=f"127.0.0.1:{fresh_memcached}")
    assert "detail tracking is off" in result.skipped["stats_detail_dump.txt"]
    assert (tmp_path / "stats.txt").is_file() and not (tmp_path / "metadump.txt").exists()
    assert auditkit.load(tmp_path / "stats.txt").format == "memcached_stats"


def test_guard_refuses_writes(memcached: int) -> None:
    conn = _Connection(socket.AF_INET, ("127.0.0.1", memcached))
    try:
        for command in (
            "flush_all",
            "stats reset",
            "stats detail on",
            "set k 0 0 1",
            "delete user:1",
        ):
            with pytest.raises(CollectorError, match="only reads"):
                conn.ask(command)
    finally:
        conn.close()


def test_unreachable(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="cannot connect"):
        collect_memcached(tmp_path, server=f"127.0.0.1:{_free_port()}")
