"""CDN logs → requests with cache_status, response_bytes, path (CloudFront, Cloudflare, Fastly)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.schemas import REQUESTS

CDN = Path(__file__).parent / "fixtures" / "cdn"
CLOUDFRONT = (
    "amazon-cloudfront-log-analysis/lab1-serveless-cloudfront-log-analysis/sample-logs/raw-logs/"
    "sample-cloudfront-access-logs.gz"
)


def test_cloudfront_standard_log(peer_data: Path) -> None:
    path = peer_data / CLOUDFRONT
    assert detect(path).format == "cloudfront_log"
    res = get_loader("cloudfront_log").load(path)
    assert res.report.read == res.report.parsed == 68  # 2 header lines + 66 records
    r = res.frame
    assert list(r.columns[: len(REQUESTS.names)]) == REQUESTS.names
    assert len(r) == 66
    assert r["cache_status"].value_counts().to_dict() == {
        "LAMBDAGENERATEDRESPONSE": 41,
        "HIT": 23,
        "MISS": 2,
    }
    assert r["status"].value_counts().to_dict() == {302: 63, 200: 3}
    assert r["edge"].value_counts().to_dict() == {"FRA53": 41, "BOM52": 24, "DUB2": 1}
    assert (r["ts"].dt.date.astype(str) == "2018-11-07").all()
    first = r.iloc[0]
    # logged at 00:12:08 when the response ended, 0.394 s after it began
    assert first["ts"] == pd.Timestamp("2018-11-07 00:12:07.606", tz="UTC")
    assert first["duration_ms"] == 394.0 and first["response_bytes"] == 376
    assert first["path"] == "/notavailable.json" and first["method"] == "GET"
    assert first["request_id"] == "PsDv-_qwCLPFx4CUU0cHWEmaH72tmUZkj70pPiTS-8KQBa616MpB1Q=="
    assert first["user_agent"].startswith("Mozilla/5.0 (compatible; bingbot/2.0;")
    assert r["request_id"].is_unique


def test_cloudfront_damaged_lines(tmp_path: Path, peer_data: Path) -> None:
    import gzip

    lines = gzip.decompress((peer_data / CLOUDFRONT).read_bytes()).decode().splitlines()
    bad = tmp_path / "cf.log"
    bad.write_text(
        "\n".join([lines[2], *lines[:4], lines[5][:40], "2018-13-45\t99\t" + "x\t" * 23 + "x"])
    )
    res = get_loader("cloudfront_log").load(bad)
    res.report.check()
    assert res.report.skipped == {
        "data before a #Fields header": 1,
        "wrong number of fields": 1,
        "no valid date, time or method": 1,
    }
    assert len(res.frame) == 2


@pytest.mark.parametrize(
    ("name", "records", "cache", "statuses"),
    [
        ("logfile_cloudflare.json", 1, {"UNKNOWN": 1}, {301: 1}),
        (
            "logfile_cloudflare.1",
            15,
            {"DYNAMIC": 9, "HIT": 5, "MISS": 1},
            {200: 9, 403: 2, 401: 1, 404: 1, 502: 1, 204: 1},
        ),
    ],
)
def test_cloudflare_logpush(
    peer_data: Path, name: str, records: int, cache: dict[str, int], statuses: dict[int, int]
) -> None:
    path = peer_data / "lnav" / "test" / name
    assert detect(path).format == "cloudflare_logpush"
    res = get_loader("cloudflare_logpush").load(path)
    assert res.report.read == res.report.parsed == records
    r = res.frame
    assert r["cache_status"].value_counts().to_dict() == cache
    assert r["status"].value_counts().to_dict() == statuses
    assert r["request_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert r["response_bytes"].notna().all() and r["ts"].notna().all()


def test_cloudflare_times_and_origin(peer_data: Path, tmp_path: Path) -> None:
    r = get_loader("cloudflare_logpush").load(peer_data / "lnav/test/logfile_cloudflare.1").frame
    first = r.iloc[0]  # integer nanoseconds kept exactly
    assert first["ts"] == pd.Timestamp(1712790000100000000, unit="ns", tz="UTC")
    assert first["duration_ms"] == 23.0 and first["path"] == "/"
    one = get_loader("cloudflare_logpush").load(peer_data / "lnav/test/logfile_cloudflare.json")
    row = one.frame.iloc[0]  # RFC 3339 times; zero origin fields: no origin request
    assert row["ts"] == pd.Timestamp("2022-10-30T00:00:02Z")
    assert pd.isna(row["upstream_ms"]) and pd.isna(row["upstream_status"])
    log = tmp_path / "cf.jsonl"
    log.write_text(
        '{"ClientRequestMethod":"GET","ClientRequestURI":"/p/?a=1","EdgeStartTimestamp":1714557600,'
        '"EdgeEndTimestamp":1714557601,"EdgeResponseStatus":200,"EdgeResponseBytes":10,'
        '"CacheCacheStatus":"miss","RayID":"8a","OriginResponseDurationMs":812,'
        '"OriginResponseStatus":200,"OriginIP":"192.0.2.10"}\n{"RayID": 1}\n'
    )
    res = get_loader("cloudflare_logpush").load(log)
    assert res.report.skipped == {"no EdgeStartTimestamp or ClientRequestMethod": 1}
    row = res.frame.iloc[0]
    assert (row["upstream_ms"], row["upstream_status"], row["upstream_addr"]) == (
        812.0,
        "200",
        "192.0.2.10",
    )
    assert row["path"] == "/p/" and row["duration_ms"] == 1000.0


def test_fastly_layouts() -> None:
    sumo = CDN / "fastly_json_sumo_layout.jsonl"
    assert detect(sumo).format == "fastly_json"
    res = get_loader("fastly_json").load(sumo)
    assert res.report.parsed == 5 and res.report.skipped == {"invalid JSON line": 1}
    r = res.frame
    assert r["cache_status"].tolist() == ["HIT", "PASS", "MISS", "HIT", "ERROR"]
    assert r["duration_ms"].tolist() == [1.83, 148.22, 96.112, 0.35, 2.011]  # µs → ms
    assert r["path"].tolist()[:2] == ["/static/app.css", "/products/"]
    assert r["response_bytes"].tolist()[0] == 18211 and r["method"].tolist()[-1] == "POST"
    docs = CDN / "fastly_json_docs_layout.jsonl"
    assert detect(docs).format == "fastly_json"
    d = get_loader("fastly_json").load(docs).frame
    assert d["cache_status"].tolist() == ["HIT-CLUSTER", "PASS"]
    assert d["status"].tolist() == [200, 302] and d["edge"].iloc[0] == "cache-fra19150-FRA"


def test_cdn_garbage(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"a": 1}\n[1, 2]\n')
    for fmt in ("cloudflare_logpush", "fastly_json"):
        with pytest.raises(NothingParsedError):
            get_loader(fmt).load(junk)
    empty = tmp_path / "cf.log"
    empty.write_text("#Version: 1.0\n")
    res = get_loader("cloudfront_log").load(empty)
    assert len(res.frame) == 0 and res.report.parsed == 1
