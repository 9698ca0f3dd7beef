"""PostgreSQL server log loaders: stderr (any prefix), csvlog, jsonlog, syslog and cloud flavours.

Three layers of tests:

* the ``log_line_prefix`` machinery (``_pg_prefix``): escapes to regex, detection, inference;
* real logs kept under ``tests/fixtures/postgres`` (provenance in its SOURCES.md), with the
  counts their upstream projects assert, plus small logs written here for the edge cases
  (truncated, binary, mis-encoded, non-English, separate statement/duration lines);
* every PostgreSQL log of the shared peer corpus, against the counts of its MANIFEST
  (skipped when the corpus is absent).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401  (registers the loaders)
from auditkit.errors import NothingParsedError, UnknownFormatError
from auditkit.loaders._pg_events import bind_parameters
from auditkit.loaders._pg_prefix import detect_prefix, prefix_pattern
from auditkit.loaders.detect import MIN_CONFIDENCE, detect
from auditkit.loaders.postgres_log import PostgresStderrLoader
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult

PG = Path(__file__).parent / "fixtures" / "postgres"


def load(path: Path, fmt: str | None = None, **options: object) -> LoadResult:
    """Detect (unless ``fmt`` is given) and load, checking the report's invariant."""
    name = fmt or detect(path).format
    result = get_loader(name).load(path, **options)
    report = result.report
    assert report.read == report.parsed + report.skipped_total
    return result


def queries(result: LoadResult) -> pd.DataFrame:
    return result.frames["query_events"]


def events(result: LoadResult) -> pd.DataFrame:
    return result.frames["server_events"]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# ============================================================================ prefix


@pytest.mark.parametrize(
    ("prefix", "line", "expected"),
    [
        (
            "%m [%p] %q%u@%d ",
            "2024-01-02 03:04:05.678 CET [42] app@shop ",
            {
                "ts": "2024-01-02 03:04:05.678",
                "tz": "CET",
                "pid": "42",
                "user": "app",
                "db": "shop",
            },
        ),
        ("%m [%p] %q%u@%d ", "2024-01-02 03:04:05.678 UTC [42] ", {"pid": "42", "user": None}),
        (
            "%t:%r:%u@%d:[%p]:",
            "2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:",
            {"client": "192.168.1.201", "port": "50906", "user": "gilles", "db": "pgbench"},
        ),
        (
            "%t:%r:%u@%d:[%p]:",
            "2020-03-11 20:40:43 CET::@:[12760]:",
            {"client": "", "user": "", "pid": "12760"},
        ),
        (
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
            "2017-09-06 08:41:41 UTC [36]: [121-1] user=postgres,db=postgres,app=PostgreSQL JDBC Driver,client=172.23.0.1 ",
            {"line": "121", "app": "PostgreSQL JDBC Driver", "client": "172.23.0.1"},
        ),
        (
            "%n [%p] %e %c %v %x %Q ",
            "1700000000.123 [7] 40P01 6383b33a.258 3/0 1234 -42 ",
            {
                "epoch": "1700000000.123",
                "sqlstate": "40P01",
                "session": "6383b33a.258",
                "vxid": "3/0",
                "xid": "1234",
                "query_id": "-42",
            },
        ),
        ("%%%p%% %-8u| ", "%99% bob     | ", {"pid": "99", "user": "bob"}),
        (
            "%t %b [%i] ",
            "2024-01-02 03:04:05 UTC client backend [idle in transaction] ",
            {"btype": "client backend", "tag": "idle in transaction"},
        ),
    ],
)
def test_prefix_pattern_captures_every_escape(
    prefix: str, line: str, expected: dict[str, str | None]
) -> None:
    import re

    for greedy in (False, True):
        m = re.compile(prefix_pattern(prefix, greedy=greedy)).fullmatch(line)
        assert m, (prefix, greedy)
        for key, value in expected.items():
            assert m.group(key) == value, (key, greedy)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("pg_rawcsv.log", "%m [%p] %q%u@%d "),
        ("stmt_type.log", "%m [%p] "),
        ("multiline_param.log", "%m [%p] user=%u,db=%d "),
        ("pg-timezones.log", "%t:%r:%u@%d:[%p]:"),
        ("postgresql_param_range.log", "%t [%p]: [%l-1] [%#] usr=%u,db=%d,appli=%a "),
        ("postgresql-9.6-debian-with-slowlog.log", "%m [%p] %q%u@%d "),
        ("queryid.log.gz", "%m [%p] [queryid=%Q] %u@%d "),
        ("tempfile_only.log.gz", "%t [%p]: [%l-1] user=%u,db=%d "),
        ("pg_vacuums-excerpt.log.gz", "%t [%p]: [%l-1] user=%u,db=%d,host=%h,app=%a "),
    ],
)
def test_detect_prefix_of_real_logs(name: str, prefix: str) -> None:
    path = PG / name
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")
    det = detect_prefix(text.splitlines())
    assert det.prefix == prefix
    assert det.matched == det.total > 0


def test_detect_prefix_infers_q_for_background_processes() -> None:
    lines = [
        "2024-01-02 03:04:05 UTC <4242> LOG:  checkpoint starting: time",
        "2024-01-02 03:04:06 UTC <4243> shop/app LOG:  duration: 1.5 ms  statement: SELECT 1",
        "2024-01-02 03:04:07 UTC <4243> shop/app LOG:  duration: 2.5 ms  statement: SELECT 2",
    ]
    det = detect_prefix(lines)
    assert det.prefix is not None and "%q" in det.prefix
    assert det.matched == 3


def test_detect_prefix_failure_says_what_it_saw() -> None:
    det = detect_prefix(["hello world", "nothing to see"])
    assert det.prefix is None
    assert "no line looks like a PostgreSQL log entry" in det.describe_failure()
    det = detect_prefix(["<x>LOG:  one", "{y} ERROR:  two", "zz WARNING:  three", "?? HINT:  four"])
    assert det.prefix is None
    text = det.describe_failure()
    assert "saw prefixes like" in text and "timestamp" in text and "process id" in text


def test_bind_parameters_keeps_quotes_and_longer_numbers() -> None:
    sql = "SELECT $1, '$2', $10 FROM t WHERE a = $2"
    params = "$1 = 'a''b', $2 = NULL, $10 = '[2023-02-24T00:00,2023-02-25T00:00]'"
    assert bind_parameters(sql, params) == (
        "SELECT 'a''b', '$2', '[2023-02-24T00:00,2023-02-25T00:00]' FROM t WHERE a = NULL"
    )


# ============================================================================ fixtures: stderr


def test_multiline_parameters_phases_and_binding() -> None:
    result = load(PG / "multiline_param.log")
    assert result.format == "postgres_stderr"
    q = queries(result)
    assert len(q) == 8 and q.duration_ms.notna().all()
    assert q.phase.astype(str).tolist() == ["statement"] * 3 + [
        "parse",
        "bind",
        "execute",
        "bind",
        "execute",
    ]
    assert q.source_line.tolist() == [1, 2, 3, 4, 5, 8, 11, 14]
    bound = q[q.params.notna()]
    assert len(bound) == 4
    # the value spanning two lines keeps its newline, the TAB the server added is gone
    assert "(t.typname = 'njchar\nhello')" in bound.sql.iloc[0]
    assert bound.sql_template.str.contains(r"\$2", regex=True).all()
    # parse, bind and execute of one statement share one fingerprint (from the template)
    assert q.fingerprint.iloc[3:].nunique() == 1
    assert q.statement_name.iloc[3] == "njTypeOidQuery_Name"
    assert set(q.database) == {"mydb"} and set(q.user) == {"user1"}
    assert str(q.ts.iloc[0]) == "2021-12-03 07:14:48.591000+00:00"
    # the profile counts execute and statement only
    assert int(q.phase.isin(["execute", "statement"]).sum()) == 5


def test_param_range_values_survive_binding() -> None:
    result = load(PG / "postgresql_param_range.log")
    q = queries(result)
    assert len(q) == 3 and (q.phase == "execute").all() and (q.statement_name == "<unnamed>").all()
    assert q.params.notna().all()
    assert "&& '[2023-02-23T00:00,2023-02-24T00:00]'::tsrange" in q.sql.iloc[0]
    assert "in ('F99278492', 'H44277392'" in q.sql.iloc[0]
    assert q.duration_ms.tolist() == [778.166, 747.825, 133.424]
    assert set(q.application) == {"76ae131687c458a8", "8a2a6ffa3c3a18d5", "8f8363625ebc309c"}
    # CET is UTC+1
    assert str(q.ts.iloc[0]) == "2023-03-07 08:06:08+00:00"
    assert any("inferred" in w and "[%#]" in w for w in result.report.warnings)


def test_queryid_log_multiline_errors_tempfiles_locks() -> None:
    result = load(PG / "queryid.log.gz")
    q, s = queries(result), events(result)
    assert q.duration_ms.notna().sum() == 20
    assert q.query_id.iloc[0] == "1081270519976314062"
    psql = q.sql.iloc[1]
    assert psql.startswith('SELECT n.nspname as "Schema",\n  c.relname as "Name",')
    assert psql.endswith("ORDER BY 1,2;")
    assert q.sql.str.contains("'wor'\n        LIMIT 1000", regex=False).sum() == 1  # space-indented
    errors = s[s.kind == "error"]
    assert len(errors) == 3
    assert errors.statement.iloc[0].startswith("explain (analyze,buffers) SELECT\n  avg(viewcount)")
    assert "Valid units for this parameter" in errors.detail.iloc[1]
    temp = s[s.kind == "temp_file"]
    assert temp.size_bytes.tolist() == [24576, 72903, 72903]
    assert (
        temp.statement.iloc[0]
        == "explain (analyze) select * from generate_series(1,1000) order by 1;"
    )
    locks = s[s.kind == "lock_wait"]
    assert locks.event.tolist() == ["lock_waiting", "lock_acquired"]
    assert locks.duration_ms.tolist() == [1000.153, 13555.814]
    assert locks.relation.tolist() == ["96570405", "96570405"]


def test_noise_lines_are_skipped_with_line_numbers() -> None:
    result = load(PG / "pg_rawcsv.log")
    report = result.report
    assert (report.read, report.parsed, report.skipped_total) == (14, 12, 2)
    assert report.skip_lines("line does not match the log_line_prefix") == [3, 4]
    s = events(result)
    assert s.severity.tolist().count("FATAL") == 1 and s.severity.tolist().count("ERROR") == 2
    err = s[s.severity == "ERROR"].iloc[0]
    assert err.detail == "This value contradicts a previous setting for the same field type."
    assert err.statement == "SELECT TO_DATE('311299999','DDMMYYYYY');"
    assert (err.user, err.database) == ("gilles", "gilles")


def test_tempfiles_checkpoints_autovacuum() -> None:
    result = load(PG / "tempfile_only.log.gz")
    q, s = queries(result), events(result)
    assert q.duration_ms.notna().sum() == 65
    temp = s[s.kind == "temp_file"]
    assert len(temp) == 5 and temp.size_bytes.iloc[0] == 12517376 and temp.statement.notna().all()
    done = s[s.event == "checkpoint_complete"]
    assert len(done) == 39 and done.duration_ms.iloc[0] == pytest.approx(6618.0)
    assert (s.kind == "autovacuum").sum() == 4 and (s.kind == "autoanalyze").sum() == 17
    vac = s[s.kind == "autovacuum"].iloc[0]
    assert vac.relation == "bss_fwc14.public.grid_states" and vac.duration_ms == pytest.approx(
        140.0
    )


def test_non_ascii_literals_and_timezones() -> None:
    q = queries(load(PG / "stmt_type.log"))
    assert len(q) == 12
    assert "forêt & océan" in q.sql.iloc[4] and "камень & почка" in q.sql.iloc[7]
    assert str(q.ts.iloc[0]) == "2019-10-21 09:03:31.311000+00:00"  # MSK is UTC+3
    q = queries(load(PG / "pg-timezones.log"))  # one space after LOG:, RDS-like prefix
    assert q.duration_ms.tolist() == [0.054, 0.060]
    assert [str(t) for t in q.ts] == ["2021-05-27 17:00:00+00:00", "2021-05-27 17:46:39+00:00"]
    assert q.client.tolist() == ["10.1.91.65", "10.1.17.194"]


def test_beats_stderr_logs() -> None:
    result = load(PG / "postgresql-9.6-debian-with-slowlog.log")
    q, s = queries(result), events(result)
    assert q.duration_ms.notna().sum() == 11
    assert q.sql.iloc[0].count("\n") == 7 and "\n       pg_catalog.pg_get_userbyid" in q.sql.iloc[0]
    assert (s.severity == "FATAL").sum() == 2
    assert s.message.str.contains("incomplete startup packet").sum() == 1
    q = queries(load(PG / "postgresql-query-steps-slowlog.log"))
    assert q.phase.astype(str).tolist() == ["parse", "execute"] and q.duration_ms.tolist() == [
        12.437,
        12.437,
    ]


# ============================================================================ fixtures: csvlog


def test_csv_statement_without_duration_does_not_inherit_one() -> None:
    result = load(PG / "csv_statement_without_duration.log")
    assert result.format == "postgres_csvlog"
    q = queries(result)
    assert q.duration_ms.iloc[0] == 688786.283 and math.isnan(q.duration_ms.iloc[1])
    assert q.statement_name.iloc[0] == "stmt_slow/stmt_slow" and q.phase.iloc[1] == "statement"
    assert q.sql.iloc[1] == "SELECT example_schema.health_check()"
    assert q.client.tolist() == ["192.0.2.10", "192.0.2.20"]
    assert q.application.tolist() == ["example app", "example healthcheck"]


def test_csv_jdbc_parameters() -> None:
    q = queries(load(PG / "anonymize.log"))
    assert len(q) == 8 and q.duration_ms.notna().all()
    assert q.params.notna().sum() == 7
    assert q.phase.astype(str).tolist().count("bind") == 3
    update = q[q.statement_name == "<unnamed>"].iloc[-1]
    assert update.sql == "update public.dokumentdata set data='\\x255044......460a' where id='157'"
    assert update.sql_template == "update public.dokumentdata set data=$1 where id=$2"


def test_beats_csvlogs() -> None:
    q = queries(load(PG / "postgresql-11-parse-bind.csv.log"))
    assert q.phase.astype(str).tolist() == ["parse", "bind", "execute"]
    assert q.duration_ms.tolist() == [7.775, 4.091, 0.455]
    assert q.params.notna().sum() == 2
    assert q.sql.iloc[2] == "SELECT * from information_schema.tables WHERE table_name = 'tables'"
    assert q.statement_name.iloc[0] == "py:0x7fde12d61b80"

    q = queries(load(PG / "postgresql-11-multi-line.csv.log"))
    assert q.sql.tolist() == ["SELECT 'multi',\n'line';"] and q.duration_ms.tolist() == [0.658]

    s = events(load(PG / "postgresql-11-autovacuum.csv.log"))
    assert s.kind.tolist() == ["autovacuum"] and s.relation.tolist() == ["postgres.public.t"]
    assert s.duration_ms.tolist() == [20.0] and s.message.iloc[0].count("\n") == 5

    result = load(PG / "postgresql-13-error-code.csv.log")
    q, s = queries(result), events(result)
    assert len(q) == 2 and q.duration_ms.isna().all()
    fatal = s[s.severity == "FATAL"].iloc[0]
    assert (fatal.kind, fatal.sqlstate) == ("error", "25P03")
    assert s[s.kind == "disconnection"].duration_ms.tolist() == [pytest.approx(33289.0)]


# ============================================================================ fixtures: json and syslog


def test_jsonlog_and_stderr_twins_agree() -> None:
    a = events(load(PG / "pg_vacuums-excerpt.json.gz"))
    b = events(load(PG / "pg_vacuums-excerpt.log.gz"))
    assert len(a) == len(b) == 40
    for col in ("kind", "relation", "pid", "duration_ms", "message"):
        assert a[col].tolist() == b[col].tolist(), col
    gap = (a.ts - b.ts).abs()
    assert (gap < pd.Timedelta(seconds=1)).all()
    assert (a.kind == "autovacuum").sum() == 22


def test_cloudsql_export() -> None:
    result = load(PG / "cloudsql-excerpt.json.gz")
    assert result.format == "postgres_jsonlog"
    s = events(result)
    assert result.report.read == 150 and result.report.skipped_total == 0
    auth = s[
        (s.event == "connection_authorized")
        & (s.user == "cloudsqladmin")
        & (s.database == "cloudsqladmin")
    ]
    assert len(auth) == 17
    vac = s[s.kind == "autovacuum"]
    assert len(vac) == 2 and vac.message.str.contains("\ntuples: ").all()  # continuation objects
    assert str(s.ts.iloc[0]) == "2020-05-02 13:00:20.382318+00:00"


def test_cloudnativepg_records() -> None:
    result = load(PG / "cnpg-excerpt.json.gz")
    q, s = queries(result), events(result)
    auth = s[s.message.str.startswith("connection authorized: user=postgres database=postgres")]
    assert len(auth) == 27
    assert len(q) == 13 and q.duration_ms.notna().all()
    assert q.application.iloc[0] == "cnpg-instance-manager" and q.client.iloc[0] == "[local]"


def test_syslog_with_sequence_numbers() -> None:
    result = load(PG / "pg-syslog-excerpt.log.gz", year=2019)
    assert result.format == "postgres_syslog"
    report = result.report
    assert report.skipped["not a PostgreSQL message (systemd)"] == 3
    q = queries(result)
    assert len(q) == 102 and q.duration_ms.notna().all()
    assert q.sql.iloc[0].count("\n") == 7 and "\n       d.datcollate" in q.sql.iloc[0]
    assert str(q.ts.iloc[0]) == "2019-02-11 13:15:40+00:00"
    hint = events(result).iloc[2]
    assert hint.detail == 'HINT: Future log output will go to log destination "syslog".'
    # without year= the year comes from the file's modification time, and the report says so
    report = load(PG / "pg-syslog-excerpt.log.gz").report
    assert any("carry no year" in w for w in report.warnings)
    # tz= places stamps written without a zone
    paris = queries(load(PG / "pg-syslog-excerpt.log.gz", year=2019, tz="Europe/Paris"))
    assert str(paris.ts.iloc[0]) == "2019-02-11 12:15:40+00:00"


def test_crlf_line_ends(tmp_path: Path) -> None:
    raw = (PG / "multiline_param.log").read_bytes().replace(b"\n", b"\r\n")
    crlf = queries(load(write(tmp_path, "crlf.log", raw)))
    lf = queries(load(PG / "multiline_param.log"))
    pd.testing.assert_frame_equal(crlf.drop(columns="source_file"), lf.drop(columns="source_file"))


def test_heroku_logplex() -> None:
    result = load(PG / "logplex.gz")
    assert result.format == "postgres_syslog"
    q, s = queries(result), events(result)
    assert result.report.read == 26 and result.report.lines == 36
    assert len(q) == 4
    green = q[(q.database == "GREEN") & q.sql.str.startswith("WITH")]
    assert green.duration_ms.sum() == pytest.approx(21761.546)
    aqua = q[q.database == "AQUA"].iloc[0]
    assert aqua.phase == "execute" and aqua.sql.count("\n") == 5
    assert s.kind.value_counts().to_dict() == {"lock_wait": 4, "deadlock": 2}
    assert set(s.relation) == {"redacted_table_2"}
    deadlock = s[s.event == "deadlock"].iloc[0]
    assert deadlock.sqlstate == "40P01" and deadlock.detail.count("\nProcess ") >= 3


@pytest.mark.parametrize(
    ("name", "fmt"),
    [(p.name, f) for p, f in [
        *[(PG / n, "postgres_stderr") for n in (
            "multiline_param.log", "postgresql_param_range.log", "queryid.log.gz", "pg_rawcsv.log",
            "tempfile_only.log.gz", "pg-timezones.log", "stmt_type.log", "pg_vacuums-excerpt.log.gz",
            "postgresql-9.6-debian-with-slowlog.log", "postgresql-query-steps-slowlog.log")],
        *[(PG / n, "postgres_csvlog") for n in (
            "csv_statement_without_duration.log", "anonymize.log", "postgresql-11-parse-bind.csv.log",
            "postgresql-11-autovacuum.csv.log", "postgresql-11-multi-line.csv.log",
            "postgresql-13-error-code.csv.log")],
        *[(PG / n, "postgres_jsonlog") for n in (
            "pg_vacuums-excerpt.json.gz", "cloudsql-excerpt.json.gz", "cnpg-excerpt.json.gz")],
        *[(PG / n, "postgres_syslog") for n in ("logplex.gz", "pg-syslog-excerpt.log.gz")],
    ]],
)  # fmt: skip
def test_detection_of_fixtures(name: str, fmt: str) -> None:
    found = detect(PG / name)
    assert found.format == fmt and found.confidence >= MIN_CONFIDENCE


# ============================================================================ written here


def csv_row(n: int, message: str, detail: str = "", **extra: str) -> str:
    """A csvlog record with ``n`` columns (22 for 8.4, 23 for 9.0–12, 24 for 13, 26 for 14+)."""
    cols = [
        "2024-05-01 10:00:00.250 UTC", '"app"', '"shop"', "4242", '"10.0.0.7:51234"',
        "6630f8a0.1092", "3", '"SELECT"', "2024-05-01 09:59:00 UTC", "3/17", "0", "LOG", "00000",
        '"' + message.replace('"', '""') + '"', '"' + detail + '"' if detail else "",
        "", "", "", "", "", "", "",
    ]  # fmt: skip
    if n >= 23:
        cols.append('"psql"')
    if n >= 24:
        cols.append('"client backend"')
    if n >= 26:
        cols += ["", extra.get("query_id", "-6612378405134521203")]
    assert len(cols) == n
    return ",".join(cols) + "\n"


@pytest.mark.parametrize("columns", [22, 23, 24, 26])
def test_csvlog_every_column_layout(tmp_path: Path, columns: int) -> None:
    text = csv_row(
        columns, "duration: 1.500 ms  execute S_1: SELECT $1", "parameters: $1 = 'it''s'"
    )
    text += csv_row(columns, 'statement: SELECT "x"\nFROM t')
    result = load(write(tmp_path, f"pg{columns}.csv", text))
    assert result.format == "postgres_csvlog"
    q = queries(result)
    assert q.sql.tolist() == ["SELECT 'it''s'", 'SELECT "x"\nFROM t']
    assert q.duration_ms.fillna(-1).tolist() == [1.5, -1]
    assert q.client.tolist() == ["10.0.0.7"] * 2 and q.session_id.iloc[0] == "6630f8a0.1092"
    assert q.application.isna().all() if columns == 22 else (q.application == "psql").all()
    if columns == 26:
        assert q.query_id.iloc[0] == "-6612378405134521203"
    else:
        assert q.query_id.isna().all()


def test_syslog_without_sequence_numbers_and_iso_stamps(tmp_path: Path) -> None:
    text = (
        "2024-05-01T10:00:00.123456+02:00 db1 postgres[501]: [app@shop] LOG:  duration: 2.000 ms  statement: SELECT a,\n"
        "2024-05-01T10:00:00.123456+02:00 db1 postgres[501]: #011b FROM t\n"
        "2024-05-01T10:00:01.000000+02:00 db1 postgres[502]: [app@shop] ERROR:  division by zero\n"
        "2024-05-01T10:00:01.000000+02:00 db1 postgres[502]: [app@shop] STATEMENT:  SELECT 1/0\n"
        "2024-05-01T10:00:02.000000+02:00 db1 sshd[77]: Accepted publickey for root\n"
    )
    result = load(write(tmp_path, "messages", text))
    assert result.format == "postgres_syslog"
    q, s = queries(result), events(result)
    assert q.sql.tolist() == ["SELECT a,\nb FROM t"] and q.pid.tolist() == [501]
    assert str(q.ts.iloc[0]) == "2024-05-01 08:00:00.123456+00:00"
    assert (s.statement.iloc[0], s.user.iloc[0]) == ("SELECT 1/0", "app")
    assert result.report.skipped["not a PostgreSQL message (sshd)"] == 1
    assert not any("carry no year" in w for w in result.report.warnings)


def test_jsonlog_statement_and_duration_lines(tmp_path: Path) -> None:
    import json

    def rec(ts: str, pid: int, message: str) -> str:
        return json.dumps(
            {
                "timestamp": ts,
                "pid": pid,
                "error_severity": "LOG",
                "message": message,
                "dbname": "shop",
            }
        )

    text = "\n".join([
        rec("2024-05-01 10:00:00.000 UTC", 1, "statement: SELECT 1"),
        rec("2024-05-01 10:00:00.500 UTC", 1, "duration: 0.400 ms"),
        rec("2024-05-01 10:00:01.000 UTC", 2, "statement: SELECT 2"),
    ]) + "\n"  # fmt: skip
    result = load(write(tmp_path, "pg.json", text))
    q = queries(result)
    assert q.duration_ms.fillna(-1).tolist() == [0.4, -1] and q.sql.tolist() == [
        "SELECT 1",
        "SELECT 2",
    ]
    assert str(q.ts.iloc[0]) == "2024-05-01 10:00:00.500000+00:00"  # when the duration was logged


STMT = "2024-05-01 10:00:{s:02d}.000 UTC [{pid}] app@shop LOG:  {msg}\n"


def stderr_lines(*entries: tuple[int, str]) -> str:
    return "".join(STMT.format(s=i % 60, pid=pid, msg=msg) for i, (pid, msg) in enumerate(entries))


def test_separate_statement_and_duration_lines_are_paired(tmp_path: Path) -> None:
    text = stderr_lines(
        (11, "statement: SELECT 1"),
        (22, "statement: SELECT 2"),
        (11, "duration: 1.500 ms"),
        (33, "statement: SELECT 3"),  # never gets a duration
        (22, "duration: 2.500 ms"),
        (44, "execute S_1: SELECT $1"),
        (55, "duration: 9.000 ms"),  # no statement before it
        (44, "duration: 4.000 ms"),
    ).replace(
        "execute S_1: SELECT $1\n",
        "execute S_1: SELECT $1\n2024-05-01 10:00:05.000 UTC [44] app@shop DETAIL:  parameters: $1 = '7'\n",
    )
    result = load(write(tmp_path, "pg.log", text))
    q = queries(result).sort_values("source_line")
    assert q.sql.tolist() == ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT '7'"]
    assert q.duration_ms.fillna(-1).tolist() == [1.5, 2.5, -1, 4.0]
    assert q.phase.astype(str).tolist() == ["statement", "statement", "statement", "execute"]
    orphan = events(result)
    assert orphan.event.tolist() == [
        "duration_without_statement"
    ] and orphan.duration_ms.tolist() == [9.0]
    assert result.report.parsed == 9


def test_pairing_across_block_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries: list[tuple[int, str]] = []
    for i in range(40):
        entries.append((100 + i % 3, f"statement: SELECT {i}"))
        if i % 5:
            entries.append((100 + i % 3, f"duration: {i}.250 ms"))
    path = write(tmp_path, "pg.log", stderr_lines(*entries))
    whole = queries(load(path)).sort_values("source_line").reset_index(drop=True)
    monkeypatch.setattr(PostgresStderrLoader, "block_size", 300)
    result = load(path)
    split = queries(result).sort_values("source_line").reset_index(drop=True)
    assert len(split) == len(whole) == 40
    assert split.duration_ms.fillna(-1).tolist() == whole.duration_ms.fillna(-1).tolist()
    expected = [np.nan if i % 5 == 0 else i + 0.25 for i in range(40)]
    assert np.allclose(split.duration_ms.to_numpy(), expected, equal_nan=True)
    assert len(events(result)) == 0


def test_log_statement_line_repeated_by_min_duration_is_merged(tmp_path: Path) -> None:
    text = stderr_lines(
        (7, "statement: UPDATE t SET a = 1"),
        (7, "duration: 3.000 ms  statement: UPDATE t SET a = 1"),
    )
    result = load(write(tmp_path, "pg.log", text))
    assert queries(result).duration_ms.tolist() == [3.0]
    assert result.report.parsed == 2


def test_process_workers_give_the_serial_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditkit.executors import get_executor

    path = PG / "queryid.log.gz"
    serial = load(path)
    monkeypatch.setattr(PostgresStderrLoader, "block_size", 512)
    ex = get_executor("process", workers=2)
    try:
        parallel = get_loader("postgres_stderr").load(path, executor=ex)
    finally:
        ex.close()
    for name in ("query_events", "server_events"):
        a = serial.frames[name].sort_values("source_line").reset_index(drop=True)
        b = parallel.frames[name].sort_values("source_line").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert parallel.report.read == serial.report.read


def test_streaming_digest_counts_executions_only() -> None:
    """auditkit.digest aggregates block frames where they are parsed: they must carry enough."""
    from auditkit.digest import digest

    result = digest([PG / "multiline_param.log"], format="postgres_stderr")
    profile = result.profile
    assert int(profile.calls.sum()) == 5  # 3 statements + 2 executes; parse/bind left out
    assert set(profile.sources) == {str(PG / "multiline_param.log")}
    assert result.reports[0].read == 12


def test_truncated_files(tmp_path: Path) -> None:
    raw = (PG / "multiline_param.log").read_bytes()
    cut = raw[
        : raw.index(b"2021-12-03 07:14:48.595 UTC [4913] user=user1,db=mydb LOG:  duration: 0.131")
        + 21
    ]
    result = load(write(tmp_path, "cut.log", cut), "postgres_stderr")
    assert result.report.skipped["truncated entry (file ends mid-line)"] == 1
    assert result.report.skip_lines("truncated entry (file ends mid-line)") == [14]
    assert len(queries(result)) == 7
    # cut inside a quoted CSV field
    raw = (PG / "anonymize.log").read_bytes()
    result = load(write(tmp_path, "cut.csv", raw[:-60]), "postgres_csvlog")
    assert len(queries(result)) == 7
    assert result.report.skipped_total == 1 and "truncated" in next(iter(result.report.skipped))
    # a JSON line cut short
    raw = gzip.decompress((PG / "pg_vacuums-excerpt.json.gz").read_bytes())
    result = load(write(tmp_path, "cut.json", raw[:-100]), "postgres_jsonlog")
    assert result.report.skipped["truncated entry (file ends mid-record)"] == 1
    assert len(events(result)) == 39


def test_binary_files_and_binary_lines(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    junk = write(tmp_path, "junk.bin", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UnknownFormatError):
        detect(junk)
    with pytest.raises(NothingParsedError):
        get_loader("postgres_stderr").load(junk)
    text = stderr_lines(
        (1, "duration: 1.0 ms  statement: SELECT 1"), (2, "duration: 2.0 ms  statement: SELECT 2")
    )
    first, second = text.splitlines(keepends=True)
    path = write(
        tmp_path,
        "mixed.log",
        first.encode() + b"\x00\x01\x02\xff\xfe binary\x00junk\n" + second.encode(),
    )
    result = load(path, "postgres_stderr")
    assert result.report.skip_lines("binary data") == [2]
    assert queries(result).sql.tolist() == ["SELECT 1", "SELECT 2"]


def test_mis_encoded_lines_are_kept_and_reported(tmp_path: Path) -> None:
    text = stderr_lines(
        (1, "duration: 1.0 ms  statement: SELECT 1"),
        (2, "duration: 2.0 ms  statement: SELECT 'caf\u00e9'"),
        (3, "duration: 3.0 ms  statement: SELECT 3"),
    )
    path = write(tmp_path, "latin1.log", text.encode("latin-1"))
    result = load(path)
    q = queries(result)
    assert q.sql.iloc[1] == "SELECT 'caf\ufffd'" and len(q) == 3
    assert any("invalid UTF-8 on 1 lines (lines 2)" in w for w in result.report.warnings)


NON_ENGLISH = (
    "2024-05-01 10:00:00.000 CEST [101] app@shop LOG:  durée : 0.512 ms, instruction : SELECT 1\n"
    "2024-05-01 10:00:01.000 CEST [101] app@shop ERREUR:  la relation « t » n'existe pas\n"
    "2024-05-01 10:00:02.000 CEST [102] app@shop LOG:  Dauer: 1.234 ms  Anweisung: SELECT 2\n"
    "2024-05-01 10:00:03.000 CEST [102] app@shop FEHLER:  Relation »t« existiert nicht\n"
    "2024-05-01 10:00:04.000 MSK [103] app@shop СООБЩЕНИЕ:  продолжительность: 0.100 мс  оператор: SELECT 3\n"
)


def test_non_english_server_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "fr.log", NON_ENGLISH)
    assert detect(path).format == "postgres_stderr"
    with pytest.raises(NothingParsedError, match="non-English server messages") as info:
        get_loader("postgres_stderr").load(path)
    report = info.value.report
    assert report is not None and report.skipped_total == 5  # type: ignore[attr-defined]
    # mixed with English entries: those are read, the rest skipped and warned about
    mixed = NON_ENGLISH + stderr_lines((9, "duration: 1.0 ms  statement: SELECT 9"))
    result = load(write(tmp_path, "mixed.log", mixed))
    assert len(queries(result)) == 1 and result.report.skipped_total == 5
    assert any("lc_messages" in w for w in result.report.warnings)


def test_explicit_prefix_option(tmp_path: Path) -> None:
    text = (
        "1714557600.125|4242|app|shop|my app|00000| LOG:  duration: 1.250 ms  statement: SELECT 1\n"
        '1714557601.500|4243|app|shop|my app|42P01| ERROR:  relation "t" does not exist\n'
        "1714557601.500|4243|app|shop|my app|42P01| STATEMENT:  SELECT * FROM t\n"
    )
    path = write(tmp_path, "custom.log", text)
    result = load(path, "postgres_stderr", prefix="%n|%p|%u|%d|%a|%e| ")
    q, s = queries(result), events(result)
    assert q.application.tolist() == ["my app"] and q.pid.tolist() == [4242]
    assert str(q.ts.iloc[0]) == "2024-05-01 10:00:00.125000+00:00"
    assert (s.sqlstate.iloc[0], s.statement.iloc[0]) == ("42P01", "SELECT * FROM t")
    # a wrong prefix reads nothing and says why
    with pytest.raises(NothingParsedError, match="log_line_prefix"):
        get_loader("postgres_stderr").load(path, prefix="%m [%p] ")


def test_undetectable_prefix_error_names_what_it_saw(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.log", "just some text\nwithout any severity\n")
    with pytest.raises(NothingParsedError, match="no line looks like a PostgreSQL log entry"):
        get_loader("postgres_stderr").load(path)


def test_missing_escapes_are_reported(tmp_path: Path) -> None:
    text = "".join(
        f"2024-05-01 10:00:0{i}.000 UTC LOG:  duration: {i}.0 ms  statement: SELECT {i}\n"
        for i in range(5)
    )
    result = load(write(tmp_path, "nopid.log", text))
    assert any("(%p)" in w and "cannot be paired" in w for w in result.report.warnings)


def test_other_formats_are_not_claimed(tmp_path: Path) -> None:
    django = write(
        tmp_path,
        "django.log",
        "".join(
            f'(0.00{i}) SELECT "a"."id" FROM "a" WHERE "a"."id" = {i}; args=({i},); alias=default\n'
            for i in range(9)
        ),
    )
    mysql = write(
        tmp_path,
        "slow.log",
        "# Time: 2024-05-01T10:00:00.000000Z\n# User@Host: root[root] @ localhost []  Id:     8\n"
        "# Query_time: 0.000152  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 0\n"
        "SET timestamp=1714557600;\nSELECT 1;\n",
    )
    for path in (django, mysql):
        head = path.read_text()
        for name in ("postgres_stderr", "postgres_csvlog", "postgres_jsonlog", "postgres_syslog"):
            assert get_loader(name).sniff(head, path) < MIN_CONFIDENCE, (path.name, name)


# ============================================================================ peer corpus

#: file -> (format, checks on the result); counts from the peer corpus MANIFEST
PEER: dict[str, str] = {
    "pgbadger/t/fixtures/anonymize.log": "postgres_csvlog",
    "pgbadger/t/fixtures/begin_end.log": "postgres_stderr",
    "pgbadger/t/fixtures/cloudsql.log.gz": "postgres_jsonlog",
    "pgbadger/t/fixtures/cnpg.log.gz": "postgres_jsonlog",
    "pgbadger/t/fixtures/csv_statement_without_duration.log": "postgres_csvlog",
    "pgbadger/t/fixtures/light.postgres.log.bz2": "postgres_stderr",
    "pgbadger/t/fixtures/logplex.gz": "postgres_syslog",
    "pgbadger/t/fixtures/multiline_param.log": "postgres_stderr",
    "pgbadger/t/fixtures/pg-syslog.1.bz2": "postgres_syslog",
    "pgbadger/t/fixtures/pg-timezones.log": "postgres_stderr",
    "pgbadger/t/fixtures/pg_rawcsv.log": "postgres_stderr",
    "pgbadger/t/fixtures/pg_vacuums.json.gz": "postgres_jsonlog",
    "pgbadger/t/fixtures/pg_vacuums.log.gz": "postgres_stderr",
    "pgbadger/t/fixtures/postgresql_param_range.log": "postgres_stderr",
    "pgbadger/t/fixtures/queryid.log.gz": "postgres_stderr",
    "pgbadger/t/fixtures/rds.log.bz2": "postgres_stderr",
    "pgbadger/t/fixtures/stmt_type.log": "postgres_stderr",
    "pgbadger/t/fixtures/tempfile_only.log.gz": "postgres_stderr",
    "pgbadger/t/fixtures/weeknumber.log": "postgres_csvlog",
    "beats/filebeat/module/postgresql/log/test/postgresql-11-autovacuum.csv.log": "postgres_csvlog",
    "beats/filebeat/module/postgresql/log/test/postgresql-11-multi-line.csv.log": "postgres_csvlog",
    "beats/filebeat/module/postgresql/log/test/postgresql-11-parse-bind.csv.log": "postgres_csvlog",
    "beats/filebeat/module/postgresql/log/test/postgresql-13-error-code.csv.log": "postgres_csvlog",
    "beats/filebeat/module/postgresql/log/test/postgresql-9.6-debian-with-slowlog.log": "postgres_stderr",
    "beats/filebeat/module/postgresql/log/test/postgresql-query-steps-slowlog.log": "postgres_stderr",
}


def timed(result: LoadResult) -> int:
    return int(queries(result).duration_ms.notna().sum())


def count(result: LoadResult, **where: str) -> int:
    s = events(result)
    mask = pd.Series(True, index=s.index)
    for col, value in where.items():
        mask &= s[col] == value
    return int(mask.sum())


@pytest.fixture(scope="module")
def peer(peer_data: Path) -> dict[str, LoadResult]:
    """Every PostgreSQL log of the corpus, loaded once (syslog years fixed)."""
    out = {}
    for rel, fmt in PEER.items():
        options = {"year": 2019} if fmt == "postgres_syslog" else {}
        out[rel] = load(peer_data / rel, fmt, **options)
    return out


@pytest.mark.parametrize(("rel", "fmt"), sorted(PEER.items()))
def test_peer_detection(peer_data: Path, rel: str, fmt: str) -> None:
    found = detect(peer_data / rel)
    assert (found.format, found.confidence >= MIN_CONFIDENCE) == (fmt, True)


def test_peer_stderr_counts(peer: dict[str, LoadResult]) -> None:
    r = peer["pgbadger/t/fixtures/begin_end.log"]
    assert count(r, event="connection_authorized") == 8
    disc = events(r)[events(r).kind == "disconnection"]
    assert len(disc) == 8 and disc.duration_ms.tolist()[:2] == [7.0, 7.0]

    r = peer["pgbadger/t/fixtures/light.postgres.log.bz2"]
    assert timed(r) == 629 and r.report.read == 630 and set(queries(r).database) == {"postgres"}

    r = peer["pgbadger/t/fixtures/multiline_param.log"]
    assert timed(r) == 8 and queries(r).params.notna().sum() == 4 and r.report.lines == 16

    r = peer["pgbadger/t/fixtures/pg-timezones.log"]
    assert timed(r) == 2

    r = peer["pgbadger/t/fixtures/pg_rawcsv.log"]
    assert (r.report.read, r.report.skipped_total) == (14, 2)
    assert count(r, severity="FATAL") + count(r, severity="ERROR") == 3

    r = peer["pgbadger/t/fixtures/postgresql_param_range.log"]
    assert timed(r) == 3 and queries(r).params.notna().sum() == 3

    r = peer["pgbadger/t/fixtures/queryid.log.gz"]
    assert timed(r) == 20 and count(r, kind="error") == 3 and count(r, kind="temp_file") == 3
    assert r.report.lines == 63

    r = peer["pgbadger/t/fixtures/rds.log.bz2"]
    assert timed(r) == 114594 and r.report.read == 114604 and r.report.skipped_total == 0
    q = queries(r)
    fp = "select datname from pg_database where not datistemplate and datallowconn"
    kept = q[(q.client != "192.168.1.201") & (q.fingerprint == fp)]
    assert kept.duration_ms.sum() == pytest.approx(2.667)

    r = peer["pgbadger/t/fixtures/stmt_type.log"]
    assert timed(r) == 12

    r = peer["pgbadger/t/fixtures/tempfile_only.log.gz"]
    assert timed(r) == 65 and count(r, kind="temp_file") == 5
    assert count(r, event="checkpoint_complete") == 39
    assert count(r, kind="autovacuum") == 4 and count(r, kind="autoanalyze") == 17

    r = peer["beats/filebeat/module/postgresql/log/test/postgresql-9.6-debian-with-slowlog.log"]
    assert timed(r) == 11 and count(r, severity="FATAL") == 2
    r = peer["beats/filebeat/module/postgresql/log/test/postgresql-query-steps-slowlog.log"]
    assert queries(r).duration_ms.tolist() == [12.437, 12.437]


def test_peer_csvlog_counts(peer: dict[str, LoadResult]) -> None:
    r = peer["pgbadger/t/fixtures/anonymize.log"]
    assert timed(r) == 8 and queries(r).params.notna().sum() == 7
    r = peer["pgbadger/t/fixtures/csv_statement_without_duration.log"]
    assert queries(r).duration_ms.fillna(-1).tolist() == [688786.283, -1]
    r = peer["pgbadger/t/fixtures/weeknumber.log"]
    q = queries(r)
    assert timed(r) == 6 and q.params.notna().sum() == 6
    assert q.sql.iloc[0] == (
        'select * from "users" where "cn" = \'foo.bar\' and "users"."deleted_at" is null limit 1'
    )
    assert q.ts.dt.isocalendar().week.tolist() == [53, 53, 53, 1, 1, 27]
    base = "beats/filebeat/module/postgresql/log/test/"
    assert timed(peer[base + "postgresql-11-multi-line.csv.log"]) == 1
    assert timed(peer[base + "postgresql-11-parse-bind.csv.log"]) == 3
    assert count(peer[base + "postgresql-11-autovacuum.csv.log"], kind="autovacuum") == 1
    r = peer[base + "postgresql-13-error-code.csv.log"]
    assert (
        len(queries(r)) == 2
        and count(r, sqlstate="25P03") == 1
        and count(r, kind="disconnection") == 1
    )


def test_peer_jsonlog_counts(peer: dict[str, LoadResult]) -> None:
    r = peer["pgbadger/t/fixtures/cloudsql.log.gz"]
    assert r.report.read == 1343 and r.report.skipped_total == 0
    s = events(r)
    auth = s[
        (s.event == "connection_authorized")
        & (s.user == "cloudsqladmin")
        & (s.database == "cloudsqladmin")
    ]
    assert len(auth) == 151
    assert count(r, event="checkpoint_complete") == 12
    assert count(r, kind="autovacuum") == 15 and count(r, kind="autoanalyze") == 19

    r = peer["pgbadger/t/fixtures/cnpg.log.gz"]
    assert r.report.read == 2022 and r.report.parsed == 1979
    assert r.report.skipped["CloudNativePG operator message (logger none)"] == 36
    s = events(r)
    assert (
        s.message.str.startswith("connection authorized: user=postgres database=postgres").sum()
        == 378
    )
    assert timed(r) == 400
    assert count(r, event="checkpoint_complete") == 2
    assert count(r, kind="autoanalyze") == 11 and count(r, kind="temp_file") == 1

    a = events(peer["pgbadger/t/fixtures/pg_vacuums.json.gz"])
    b = events(peer["pgbadger/t/fixtures/pg_vacuums.log.gz"])
    assert len(a) == len(b) == 3544
    for frame in (a, b):
        assert (frame.kind == "autovacuum").sum() == 2094 and (
            frame.kind == "autoanalyze"
        ).sum() == 1450
    for col in ("kind", "relation", "pid", "duration_ms"):
        assert a[col].tolist() == b[col].tolist(), col
    local = a.ts.dt.tz_convert("Europe/Paris")
    day = local.dt.date == pd.Timestamp("2024-06-27").date()
    assert ((a.kind == "autoanalyze") & day & (local.dt.hour == 1)).sum() == 474
    assert ((a.kind == "autovacuum") & day & (local.dt.hour == 2)).sum() == 730


def test_peer_syslog_counts(peer: dict[str, LoadResult]) -> None:
    r = peer["pgbadger/t/fixtures/pg-syslog.1.bz2"]
    assert timed(r) == 59871 and r.report.lines == 59921
    q, s = queries(r), events(r)
    assert (q.database == "pgbench").sum() + (s.database == "pgbench").sum() == 59874
    r = peer["pgbadger/t/fixtures/logplex.gz"]
    assert timed(r) == 4 and r.report.lines == 36
    assert count(r, kind="deadlock") == 2 and count(r, kind="lock_wait") == 4
    green = queries(r)[queries(r).database == "GREEN"]
    assert green.duration_ms.sum() == pytest.approx(21761.546)
