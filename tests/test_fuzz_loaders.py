"""Fuzzing every loader with damaged copies of real files.

Each sample is a real file (our fixtures, or the shared peer corpus) of one format; each
mutation damages it the way client files get damaged: cut short, flipped bytes, saved in
another encoding, NUL padding after a crash, one enormous line, JSON nested past any sane
depth, a broken compressed stream, numbers out of every range, stray carriage returns.

The loader for the sample's format must then either return frames whose parse report adds up
(read = parsed + skipped, checked by :meth:`ParseReport.check`, not an ``assert``) or raise an
error of auditkit's own tree (:class:`~auditkit.errors.AuditkitError`) naming the file. Any
other exception — a traceback a user would see — fails. Detection of the damaged file must
never raise anything but :class:`~auditkit.errors.UnknownFormatError`.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import lzma
import random
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from auditkit.errors import AuditkitError, ParseReportError, UnknownFormatError
from auditkit.loaders.base import BlockLoader
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.loaders.stream import read_text
from tests.conftest import FIXTURES, PEER_DATA, ROOT

#: sample → the format it is (checked on the undamaged file)
SAMPLES: dict[str, str] = {
    "fixtures/django/prefixed.log": "django_log",
    "fixtures/django/bare.log": "django_log",
    "fixtures/postgres/stmt_type.log": "postgres_stderr",
    "fixtures/postgres/multiline_param.log": "postgres_stderr",
    "fixtures/postgres/queryid.log.gz": "postgres_stderr",
    "fixtures/postgres/anonymize.log": "postgres_csvlog",
    "fixtures/postgres/postgresql-11-autovacuum.csv.log": "postgres_csvlog",
    "fixtures/postgres/cloudsql-excerpt.json.gz": "postgres_jsonlog",
    "fixtures/postgres/pg_vacuums-excerpt.json.gz": "postgres_jsonlog",
    "fixtures/postgres/logplex.gz": "postgres_syslog",
    "fixtures/mysql/percona-go-mysql/slow014.log": "mysql_slow",
    "fixtures/mysql/beats/mysql-ubuntu-8.0.15.log": "mysql_slow",
    "fixtures/mysql_client/slow/mariadb-slow.log": "mysql_slow",
    "fixtures/pgss/pg15.json": "pgss_json",
    "fixtures/pgss/pg17.csv": "pgss_csv",
    "fixtures/pgss/pg15-aligned.txt": "pgss_psql",
    "fixtures/explain/pg15_seqscan.json": "explain_pg_json",
    "fixtures/explain/pev2_46_buckets.plan": "explain_pg_text",
    "fixtures/explain/mariadb_analyze_join.json": "explain_mysql_json",
    "fixtures/explain/mariadb_batch.tsv": "explain_mysql",
    "fixtures/explain/sqlite_shell.txt": "explain_sqlite",
    "fixtures/traces/otlp2parquet/trace.json": "otlp_json",
    "fixtures/traces/otel-python/django_sqlite_new_semconv.jsonl": "otlp_json",
    "fixtures/traces/jaeger/ui_01.json": "jaeger_json",
    "fixtures/traces/dd-trace-py/tests.contrib.django.test_django_snapshots.test_psycopg2_query_default.json": "datadog_json",
    "fixtures/traces/newrelic/transactions_nrql.json": "newrelic_json",
    "fixtures/traces/newrelic/transactions.csv": "newrelic_csv",
    "fixtures/traces/jsonl/queries.jsonl": "jsonl_queries",
    "fixtures/catalog/pg_indexes.csv": "pg_indexes",
    "fixtures/catalog/pg_stat_user_tables.csv": "pg_stat_tables",
    "fixtures/catalog/relation_sizes.csv": "pg_relation_sizes",
    "fixtures/catalog/django_models.json": "django_models",
    "fixtures/mysql_client/status/status_after.txt": "mysql_stats",
    "fixtures/mysql_client/memcached/metadump.txt": "memcached_metadump",
    "data/sample/postgres/pg_settings.csv": "pg_settings",
    "data/sample/load/locust_stats_history.csv": "locust_csv",
    "peer/netdata/src/go/plugin/go.d/collector/redis/testdata/valkey/info_all.txt": "redis_info",
    "peer/netdata/src/go/plugin/go.d/collector/memcached/testdata/stats.txt": "memcached_stats",
    "peer/pgbadger/t/fixtures/pg_rawcsv.log": "postgres_stderr",
    "fixtures/traces/access/nginx_combined.log": "access_log",
}

#: formats another part of the code base is still reworking; their failures are reported, not gated
NOT_GATED: set[str] = set()
#: (format, mutation) pairs not run
NOT_RUN: set[tuple[str, str]] = set()
#: expensive mutations run on one sample per format (the first in SAMPLES order)
ONCE_PER_FORMAT = {"huge_line", "deep_json"}


def _path(sample: str) -> Path:
    top, rest = sample.split("/", 1)
    if top == "peer":
        if not PEER_DATA.is_dir():
            pytest.skip("peer-data corpus not found beside the repository")
        return PEER_DATA / rest
    return (FIXTURES / rest) if top == "fixtures" else ROOT / sample


@functools.cache
def _original(sample: str) -> bytes:
    """The sample's content, decompressed (mutations work on the text a loader sees); read once
    per worker, shared by the sample's mutations."""
    from auditkit.loaders.stream import open_binary

    with open_binary(_path(sample)) as fh:
        return fh.read()


def _rng(sample: str, mutation: str) -> random.Random:
    return random.Random(zlib.crc32(f"{sample}|{mutation}".encode()))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def truncate_half(data: bytes, rng: random.Random) -> bytes:
    return data[: len(data) // 2]


def truncate_odd(data: bytes, rng: random.Random) -> bytes:
    """Cut anywhere, even inside a multi-byte character."""
    return data[: max(1, rng.randrange(len(data)))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(max(8, len(out) // 200)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def utf16_bom(data: bytes, rng: random.Random) -> bytes:
    return _text(data).encode("utf-16")


def utf16le_no_bom(data: bytes, rng: random.Random) -> bytes:
    return _text(data).encode("utf-16-le")


def utf32_bom(data: bytes, rng: random.Random) -> bytes:
    return _text(data).encode("utf-32")


def latin1(data: bytes, rng: random.Random) -> bytes:
    """Saved in Latin-1, with accented words added so the file is not plain ASCII."""
    text = _text(data).replace("a", "à", 3).replace("e", "é", 3)
    return text.encode("latin-1", errors="replace")


def nul_bytes(data: bytes, rng: random.Random) -> bytes:
    """NUL bytes inside lines, and a run of them where a crash padded the file."""
    out = bytearray(data)
    for _ in range(4):
        out.insert(rng.randrange(len(out) + 1), 0)
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    return bytes(out[:cut]) + b"\x00" * 4096 + bytes(out[cut:])


#: a line longer than this is "huge" for a loader that reads the whole file at once: the point
#: (no crash, no time quadratic in the line) is made at this size; a loader that streams blocks
#: gets a line longer than its block (:func:`_huge_line_bytes`)
HUGE_LINE_BYTES = 1024 * 1024


def _huge_line_bytes(fmt: str) -> int:
    """A line longer than any buffer the loader of ``fmt`` reads the file in."""
    loader = get_loader(fmt)
    if isinstance(loader, BlockLoader):
        return loader.block_size + HUGE_LINE_BYTES
    return HUGE_LINE_BYTES


def huge_line(data: bytes, rng: random.Random, size: int = 10 * 1024 * 1024) -> bytes:
    """One enormous line (``size`` bytes, 10 MB by default) in the middle of the file."""
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    return data[:cut] + b"GET /" + b"a" * size + b"\n" + data[cut:]


def deep_json(data: bytes, rng: random.Random) -> bytes:
    """JSON nested 100,000 levels deep, where a value (or a record) would be."""
    deep = b"[" * 100_000 + b"]" * 100_000
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        return b'{"deep": ' + deep + b", " + stripped[1:]
    if stripped.startswith(b"["):
        return b"[" + deep + b", " + stripped[1:]
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    return data[:cut] + b'{"a": ' + deep + b"}\n" + data[cut:]


def overflow(data: bytes, rng: random.Random) -> bytes:
    """Numbers past every range: unsigned underflow, huge floats, year 9999."""
    text = _text(data)
    text = re.sub(r"\b(?:19|20)\d\d-", "9999-", text, count=3)
    values = ("18446744073709551615", "1e308", "-5", "99999999999999999999999")

    def swap(m: re.Match[str]) -> str:
        return values[rng.randrange(len(values))] if rng.random() < 0.5 else m.group(0)

    text = re.sub(r"(?<![\w.:-])\d+(?:\.\d+)?(?![\w.:])", swap, text)
    return text.encode("utf-8")


def stray_cr(data: bytes, rng: random.Random) -> bytes:
    """Carriage returns alone, as a line end and inside a line."""
    out = bytearray(data)
    newlines = [i for i, b in enumerate(out) if b == 10]
    for i in newlines[::5]:
        out[i] = 13
    out.insert(rng.randrange(len(out) + 1), 13)
    return bytes(out)


def gzip_truncated(data: bytes, rng: random.Random) -> bytes:
    packed = gzip.compress(data)
    return packed[: max(12, len(packed) * 2 // 3)]


def bzip2_corrupt(data: bytes, rng: random.Random) -> bytes:
    packed = bytearray(bz2.compress(data))
    for i in range(len(packed) // 2, len(packed), max(1, len(packed) // 20)):
        packed[i] ^= 0x5A
    return bytes(packed)


def xz_truncated(data: bytes, rng: random.Random) -> bytes:
    packed = lzma.compress(data)
    return packed[: max(16, len(packed) * 2 // 3)]


def zstd_truncated(data: bytes, rng: random.Random) -> bytes:
    packed = zstandard.ZstdCompressor().compress(data)
    return packed[: max(8, len(packed) * 2 // 3)]


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    f.__name__: f
    for f in (
        truncate_half,
        truncate_odd,
        flip_bytes,
        utf16_bom,
        utf16le_no_bom,
        utf32_bom,
        latin1,
        nul_bytes,
        huge_line,
        deep_json,
        overflow,
        stray_cr,
        gzip_truncated,
        bzip2_corrupt,
        xz_truncated,
        zstd_truncated,
    )
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_samples_are_what_they_claim(sample: str) -> None:
    assert detect(_path(sample)).format == SAMPLES[sample]


def _cases() -> list[tuple[str, str]]:
    first_of_format: dict[str, str] = {}
    for sample, fmt in SAMPLES.items():
        first_of_format.setdefault(fmt, sample)
    cases = []
    for sample, fmt in sorted(SAMPLES.items()):
        for mutation in sorted(MUTATIONS):
            if (fmt, mutation) in NOT_RUN:
                continue
            if mutation in ONCE_PER_FORMAT and first_of_format[fmt] != sample:
                continue
            cases.append((sample, mutation))
    return cases


@pytest.mark.parametrize(("sample", "mutation"), _cases())
def test_damaged_file(sample: str, mutation: str, tmp_path: Path) -> None:
    fmt = SAMPLES[sample]
    if mutation == "huge_line":
        damaged = huge_line(_original(sample), _rng(sample, mutation), _huge_line_bytes(fmt))
    else:
        damaged = MUTATIONS[mutation](_original(sample), _rng(sample, mutation))
    path = tmp_path / Path(sample).name
    path.write_bytes(damaged)
    with contextlib.suppress(UnknownFormatError):
        detect(path)
    try:
        result = get_loader(fmt).load(path)
    except ParseReportError:
        raise
    except AuditkitError as exc:
        assert str(path) in str(exc) or path.name in str(exc), (
            f"error does not name the file: {exc}"
        )
        return
    except Exception:
        if fmt in NOT_GATED:
            pytest.xfail(f"{fmt} is being reworked elsewhere")
        raise
    result.report.check()
    for name, frame in result.frames.items():
        assert frame.index.is_unique, name


def test_read_text_survives_damage(tmp_path: Path) -> None:
    """The whole-file reader keeps what precedes damage in a compressed stream."""
    body = b"".join(b"line %d\n" % i for i in range(20000))
    path = tmp_path / "x.log"
    path.write_bytes(gzip_truncated(body, random.Random(0)))
    text, _ = read_text(path)
    assert text.startswith("line 0\nline 1\n") and 0 < text.count("\n") < 20000
