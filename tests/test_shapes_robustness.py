"""The loaders of this family never raise a traceback on damaged input.

Every real sample of the new formats is mutated (truncated, NULs, a flipped byte, UTF-16,
a 2 MB line, deep JSON, binary): each load either returns with read = parsed + skipped or
raises the project's own error, never anything else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.errors import AuditkitError
from auditkit.loaders.registry import get_loader

FIX = Path(__file__).parent / "fixtures"
SAMPLES = [
    ("otel_sdk_json", FIX / "traces/monocle/trace1.json"),
    ("zipkin_json", FIX / "traces/zipkin/yelp.json"),
    ("uwsgi_log", FIX / "appserver/uwsgi-2.0.30-harakiri.log"),
    ("locust_console", FIX / "locust/console-merged-2.47.0.txt"),
    ("access_log", FIX / "traces/access/nginx_upstream_cache.log"),
    ("fastly_json", FIX / "cdn/fastly_json_sumo_layout.jsonl"),
]


def _mutations(data: bytes) -> dict[str, bytes]:
    mid = len(data) // 2
    return {
        "truncated": data[:mid],
        "nul": data[:mid] + b"\x00" * 64 + data[mid:],
        "flipped": data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :],
        "utf16": data.decode("utf-8", "replace").encode("utf-16"),
        "huge_line": data[:mid] + b"x" * 2_000_000 + data[mid:],
        "deep_json": b"[" * 100_000 + b"]" * 100_000,
        "binary": bytes(range(256)) * 64,
        "empty": b"",
        "crlf": data.replace(b"\n", b"\r\n"),
    }


@pytest.mark.parametrize(("fmt", "sample"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_no_traceback(fmt: str, sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    for name, content in _mutations(data).items():
        path = tmp_path / f"{name}{sample.suffix}"
        path.write_bytes(content)
        try:
            res = get_loader(fmt).load(path)
        except AuditkitError:
            continue
        rep = res.report
        assert rep.read == rep.parsed + rep.skipped_total, (fmt, name)
        if name == "crlf":
            assert rep.parsed == get_loader(fmt).load(sample).report.parsed, (fmt, name)


PEER = [
    ("gunicorn_log", "hcli_core/gunicorn-error.log"),
    ("cloudflare_logpush", "lnav/test/logfile_cloudflare.1"),
    (
        "cloudfront_log",
        "amazon-cloudfront-log-analysis/lab1-serveless-cloudfront-log-analysis/sample-logs/"
        "raw-logs/sample-cloudfront-access-logs.gz",
    ),
    ("locust_console", "jitterbug/locust.log"),
]


@pytest.mark.parametrize(("fmt", "rel"), PEER, ids=[p[0] for p in PEER])
def test_no_traceback_peer(fmt: str, rel: str, peer_data: Path, tmp_path: Path) -> None:
    import gzip

    data = (peer_data / rel).read_bytes()
    if rel.endswith(".gz"):
        data = gzip.decompress(data)  # damaged compression is the stream reader's own test
    sample = tmp_path / "sample.txt"
    sample.write_bytes(data)
    test_no_traceback(fmt, sample, tmp_path)
