"""nginx access logs with upstream fields, odd methods, and bounded memory on huge lines."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.loaders.access_log import _match, upstream_ms
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader

ACCESS = Path(__file__).parent / "fixtures" / "traces" / "access"
INGRESS = "beats/filebeat/module/nginx/ingress_controller/test/test.log"


def test_recorded_nginx_upstream_and_cache() -> None:
    path = ACCESS / "nginx_upstream_cache.log"
    assert detect(path).format == "access_log"
    res = get_loader("access_log").load(path)
    assert res.report.read == res.report.parsed == 10
    assert res.report.warnings == [
        "requests with a method that is not a standard HTTP method kept: geti ×1"
    ]
    r = res.frame
    first = r.iloc[0]  # retried: the first server refused, the second answered
    assert first["upstream_addr"] == "127.0.0.1:18771, 127.0.0.1:18770"
    assert first["upstream_status"] == "502, 200" and first["upstream_ms"] == 2.0
    assert r["cache_status"].value_counts().to_dict() == {"HIT": 2, "MISS": 1}
    hits = r[r["cache_status"] == "HIT"]
    assert hits["upstream_ms"].isna().all() and hits["upstream_addr"].isna().all()
    slow = r[r["path"] == "/slow/"].iloc[0]
    assert slow["upstream_ms"] == 201.0 and slow["duration_ms"] == 201.0
    assert r.loc[r["path"] == "/static/site.css", "response_bytes"].tolist() == [452] * 3
    assert r["path"].tolist()[6] == "/search/"  # query string dropped
    odd = r[r["method"] == "geti"].iloc[0]
    assert odd["status"] == 400 and odd["path"] == "/products/"


def test_ingress_nginx_peer_log(peer_data: Path) -> None:
    res = get_loader("access_log").load(peer_data / INGRESS)
    rep = res.report
    assert rep.read == rep.parsed == 29  # the manifest's 29 lines, PATCHp/geti kept
    assert "PATCHp ×1, geti ×1" in rep.warnings[0]
    r = res.frame
    assert r["status"].value_counts().to_dict() == {200: 25, 400: 2, 502: 2}
    lists = r[r["upstream_addr"].str.contains(",", na=False)]
    assert len(lists) == 5  # the manifest's 5 multi-upstream lines
    assert (r["upstream_addr"] == "unix:/var/run/php-fpm.sock").sum() == 1
    retried = r.iloc[22]
    assert retried["upstream_addr"] == "172.17.0.6:8080, 172.17.0.7:8080"
    assert retried["upstream_status"] == "200, 203" and retried["upstream_ms"] == 104.0
    assert r.iloc[28]["upstream_ms"] == 100.0 and r.iloc[28]["upstream_status"] == "200, -"
    assert r.loc[r["method"].isin(["PATCHp", "geti"]), "upstream_addr"].isna().all()
    assert r["request_id"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_key_value_upstream_fields(tmp_path: Path) -> None:
    log = tmp_path / "kv.log"
    log.write_text(
        '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a/?x=1 HTTP/1.1" 200 512 rt=0.040 '
        'urt="0.010, 0.020 : 0.005" ua="10.0.0.5:8000, 10.0.0.6:8000 : 10.0.0.7:8000" '
        'us="502, 504 : 200" ucs=EXPIRED\n'
        '10.0.0.1 - - [01/May/2024:10:00:01 +0000] "GET /b/ HTTP/1.1" 200 10 rt=0.001 urt="-" '
        "ua=- us=- ucs=HIT\n"
    )
    r = get_loader("access_log").load(log).frame
    assert r.loc[0, "upstream_ms"] == pytest.approx(35.0)
    assert r.loc[0, "upstream_addr"] == "10.0.0.5:8000, 10.0.0.6:8000 : 10.0.0.7:8000"
    assert r.loc[0, "upstream_status"] == "502, 504 : 200"
    assert r["cache_status"].tolist() == ["EXPIRED", "HIT"]
    assert r.loc[1, "upstream_ms"] != r.loc[1, "upstream_ms"]  # NaN: served from the cache


def test_upstream_ms_sums_tries() -> None:
    assert upstream_ms("0.010, 0.020 : 0.005") == pytest.approx(35.0)
    assert upstream_ms("-") is None and upstream_ms("-, -") is None
    assert upstream_ms("0.100, -") == 100.0


def test_huge_request_line_memory_is_bounded() -> None:
    line = '1.2.3.4 - - [01/May/2024:10:00:00 +0000] "GET /' + "a" * 10_000_000 + ' HTTP/1.1" 200 5'
    tracemalloc.start()
    try:
        assert _match(line) is not None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(line)  # was ~180× the line (1.8 GB for 10 MB)
