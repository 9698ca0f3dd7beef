"""MySQL, MariaDB and Percona Server slow query logs.

One event is a run of ``#`` header lines, a preamble and the statement::

    # Time: 2019-03-24T14:04:53.713951Z                      (5.7+: ISO, UTC; before: 190324 14:04:53, local)
    # User@Host: root[root] @ localhost [127.0.0.1]  Id:    16
    # Schema: employees  Last_errno: 0  Killed: 0             (Percona)
    # Query_time: 2.631844  Lock_time: 0.000145 Rows_sent: 10  Rows_examined: 3145718 …
    # Bytes_sent: 312  Tmp_tables: 1 …  InnoDB_IO_r_ops: 5491 … (Percona log_slow_verbosity)
    # explain: id  select_type  table …                        (MariaDB log_slow_verbosity=explain)
    use employees;                                            (only when the database changed)
    SET timestamp=1553436291;                                 (query start, epoch seconds)
    SELECT last_name, MAX(salary) … LIMIT 10;

Columns: ``duration_ms`` (Query_time), ``lock_ms`` (Lock_time), ``rows`` (Rows_sent),
``rows_examined``, ``user``, ``client`` (host, else address), ``pid`` (Thread_id / Id),
``database`` (Percona ``Schema:``, else the ``use`` in force), ``ts`` and ``sql`` (the
statement without the ``use``/``SET timestamp`` preamble and without the ``;`` the server
appends). Every other header field becomes an extra column named in snake_case
(``Bytes_sent`` → ``bytes_sent``, ``QC_Hit`` → ``qc_hit`` as a boolean); waits logged in
seconds become milliseconds (``InnoDB_IO_r_wait`` → ``innodb_io_r_wait_ms``), MySQL 8
``Start``/``End`` become ``start_ts``/``end_ts``, Percona's ``Log_slow_rate_limit`` becomes
``sample_rate`` (each logged event stands for that many), MariaDB ``# explain:`` lines are
kept verbatim in ``explain``. ``# administrator command: Quit;`` events are kept with
``sql = "administrator command: Quit"`` and ``admin = True``.

Timestamps. ``SET timestamp=N`` is epoch seconds, so it is authoritative where the old
``# Time: YYMMDD HH:MM:SS`` header is in the server's unknown local zone: ``ts`` is N plus the
query time (the statement's end, like the header) when N is plausible — after 1995, not in
the future and within 14 h (the widest zone offset) of the header. A 5.7+ ISO header with a
zone is exact to the microsecond and wins when present. Naive headers are read in ``tz=``;
without it, at the UTC offset between the headers and the ``SET timestamp`` values of the
file's first events (:func:`learn_offset`), else as UTC — with a warning saying which, so
events with and without ``SET timestamp`` land on one clock. Servers write ``# Time:`` only
when the second changes, so an event without one inherits the previous; an empty ``# Time:``
is treated as missing; an unparseable one gives NaT and a warning. Implausible
``SET timestamp`` values are reported.

Blocks and state. A block is cut only before a header line that directly follows a line
ending in ``;`` — the server ends every statement (and administrator command) with ``;\\n``,
so a cut never splits an event. The inherited ``# Time:`` and the ``use`` database do span
events, and so blocks: rather than handing events back as ``pending`` (which would move most
rows of a typical log to the main process and out of file order), :meth:`MySQLSlowLoader.blocks`
reads the last ``# Time:`` and preamble ``use`` of each block with two ``rfind`` scans (no
parsing) and passes them to the next block as :class:`SlowLogBlock` fields. Every block is
then parsed independently, on any executor, into complete rows in file order.

Records for the parse report: one per event (parsed, or skipped when it has no
``# Query_time:`` line or no statement), one per server start banner (skipped, counted), one
per run of text outside any event (a file starting mid-event, junk). Invalid UTF-8 is replaced
with U+FFFD and reported; a corrupted ``Query_time`` becomes NaN and is reported.

Known limits: without Percona's ``Schema:``, a connection with no default database inherits
the last ``use`` written by another one (the server writes ``use`` on change, globally).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders._time import epoch_series
from auditkit.loaders.base import BlockLoader, BlockParser, BlockResult, add_fingerprints
from auditkit.loaders.registry import register
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block, iter_blocks
from auditkit.schemas import cast

__all__ = ["MySQLSlowLoader", "MySQLSlowParser", "SlowLogBlock"]

# Header keys that can open an event (the first header line of an event carries one of them).
_START_KEYS = "Time|User@Host|User|Client|Thread_id|Schema|Query_time"
_KEY_LINE = compile_later(rf"^# ({_START_KEYS}):", re.M)
#: a run of header lines that starts with a key line, found from the newline before it: a
#: literal first character lets the regex engine skip ahead instead of testing ``^`` everywhere
_HEADER_RUN = compile_later(rf"\n# (?:{_START_KEYS}):[^\n]*(?:\n#[^\n]*)*")
#: a cut point: an event-opening header line right after a line ending in ';'
_BOUNDARY = re.compile(rb"(?:(?<=;\n)|(?<=;\r\n))# (?:" + _START_KEYS.encode() + rb"):")

_HEADER = compile_later(r"(?:#[^\n]*(?:\n|\Z))*")
_TIME = compile_later(r"^# Time:[ \t]*([^\n#]*?)[ \t]*(?:#|$)", re.M)
_WHO = compile_later(
    r"# (?:User@Host|User):[ \t]*(?P<priv>[^\[\n@]*?)[ \t]*(?:\[(?P<user>[^\]\n]*)\])?"
    r"[ \t]*@[ \t]*(?P<host>[^\s\[]*)[ \t]*(?:\[(?P<ip>[^\]\n]*)\])?"
)
_CLIENT = compile_later(r"# Client:[ \t]*(\S+)")
_ADMIN = compile_later(r"^# administrator command:[ \t]*([^\n]*?)[ \t;]*$", re.M)
_EXPLAIN = compile_later(r"^# explain:[ \t]?([^\n]*)$", re.M)
_PREAMBLE = compile_later(
    r"(?:(?:use[ \t]+(?P<db>[^\n;]*);"
    r"|SET[ \t]+(?:last_insert_id=(?P<lii>\d+),)?(?:insert_id=(?P<ii>\d+),)?timestamp=(?P<ts>\d+);)"
    r"[ \t]*(?:\n|\Z))*"
)
_BANNER = compile_later(
    r"^[^\n]*Version: [^\n]*started with:[ \t]*(?:\n|\Z)"
    r"(?:(?:Tcp|TCP) [Pp]ort:[^\n]*(?:\n|\Z))?"
    r"(?:Time[ \t]+Id[ \t]+Command[ \t]+Argument[ \t]*(?:\n|\Z))?",
    re.M,
)
_YYMMDD = compile_later(r"(\d{2})(\d{2})(\d{2})[ \t]+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")
_ISO_FRACTION = compile_later(r"(\.\d{6})\d+")

# Header keys that are read into canonical columns or handled by their own rule.
_CANONICAL = {"Query_time", "Lock_time", "Rows_sent", "Rows_examined", "Thread_id", "Id", "Schema"}
_IGNORED = {"Time", "User@Host", "User", "Client", "command"}
_DROP = _CANONICAL | _IGNORED
#: header key → (extra column, kind); other keys become snake_case with an inferred kind
_KNOWN: dict[str, tuple[str, str]] = {
    "InnoDB_IO_r_wait": ("innodb_io_r_wait_ms", "ms"),
    "InnoDB_rec_lock_wait": ("innodb_rec_lock_wait_ms", "ms"),
    "InnoDB_queue_wait": ("innodb_queue_wait_ms", "ms"),
    "Log_slow_rate_limit": ("sample_rate", "float"),
    "Log_slow_rate_type": ("sample_rate_type", "text"),
    "Start": ("start_ts", "ts"),
    "End": ("end_ts", "ts"),
    "InnoDB_trx_id": ("innodb_trx_id", "text"),
}
#: Query_time above this many seconds is an unsigned underflow, not a duration
_MAX_QUERY_S = 1e8
#: SET timestamp before this (1995-01-01) is not a real clock
_MIN_EPOCH_S = 788_918_400
#: the widest offset between a naive local header and UTC, plus slack
_LOCAL_TOLERANCE_S = 14 * 3600 + 120


@dataclass(frozen=True, slots=True)
class SlowLogBlock(Block):
    """A block of a slow log with the state the earlier blocks leave in force.

    ``time_in`` is the last non-empty ``# Time:`` value before the block, ``db_in`` the
    database of the last ``use`` before it (both None at the start of the file).
    """

    time_in: str | None = None
    db_in: str | None = None


class MySQLSlowParser(BlockParser):
    """Parses blocks of a slow log into query events.

    Holds only how naive ``# Time:`` headers are read: the ``tz=`` option, or the UTC offset
    learnt from the head of the file (:func:`learn_offset`).
    """

    boundary = _BOUNDARY

    def __init__(self, tz: str | None = None, offset_s: float | None = None) -> None:
        self.tz = tz
        self.offset_s = offset_s

    def parse(self, block: Block) -> BlockResult:
        """Parse the whole events of ``block`` (see the module docstring for the rules)."""
        text, bad = block.text()
        report = ParseReport(block.source, MySQLSlowLoader.name)
        report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        report.bytes = len(block.data)
        if bad:
            shown = ", ".join(str(n) for n in bad[:5]) + (", …" if len(bad) > 5 else "")
            report.warn(f"invalid UTF-8 replaced with U+FFFD on {len(bad)} line(s): {shown}")
        events = _Events(block.source)
        time_state = getattr(block, "time_in", None)
        db_state = getattr(block, "db_in", None)
        starts = _event_starts(text)
        line_at = _LineCounter(text, block.first_line)

        first = starts[0] if starts else len(text)
        self._outside(text[:first], block.first_line, report)
        bounds = [*starts, len(text)]
        for i in range(len(starts)):
            seg = text[bounds[i] : bounds[i + 1]]
            line_no = line_at(bounds[i])
            seg = self._strip_banners(seg, line_no, report)
            time_state, db_state = events.add(seg, line_no, time_state, db_state, report)

        if block.data and not block.data.endswith(b"\n"):
            report.warn(
                f"the file ends mid-line (line {block.first_line + text.count(chr(10))}): truncated while being written or copied?"
            )
        if not events.n and report.read:
            _diagnose(report, bool(starts))
        frame = events.frame(_Zone.of(self.tz, self.offset_s), report)
        return BlockResult({"query_events": add_fingerprints(frame, "mysql")}, report)

    @staticmethod
    def _outside(chunk: str, line_no: int, report: ParseReport) -> None:
        """Account for text before the first event: banners and orphan lines."""
        rest = (
            MySQLSlowParser._strip_banners(chunk, line_no, report)
            if "started with:" in chunk
            else chunk
        )
        if rest.strip():
            report.skip(line_no, "text outside an event", rest.strip())

    @staticmethod
    def _strip_banners(seg: str, line_no: int, report: ParseReport) -> str:
        """Remove server start banners from ``seg``, counting each as a skipped record.

        Text after a banner (before the next event) is orphan text, counted once.
        """
        if "started with:" not in seg:
            return seg
        found = list(_BANNER.finditer(seg))
        if not found:
            return seg
        for m in found:
            report.skip(line_no + seg.count("\n", 0, m.start()), "server banner", m.group())
        tail = _BANNER.sub("", seg[found[0].start() :])
        if tail.strip():
            report.skip(
                line_no + seg.count("\n", 0, found[0].end()), "text outside an event", tail.strip()
            )
        return seg[: found[0].start()]


def _diagnose(report: ParseReport, had_headers: bool) -> None:
    """Say first why a block gave no event (the hint of a 'nothing parsed' error)."""
    if report.skipped.get("server banner") == report.read:
        why = "only server start banners: the slow log was empty (slow_query_log off?) or this is a general query log"
    elif report.skipped.get("truncated event (no # Query_time line)"):
        why = "events without a '# Query_time:' line: the log was truncated mid-event"
    elif not had_headers:
        why = "no '# Time:', '# User@Host:' or '# Query_time:' header line: not a slow query log?"
    else:
        return
    if why not in report.warnings:
        report.warnings.insert(0, why)


def _event_starts(text: str) -> list[int]:
    """Offsets where events begin.

    A header key line opens a new event when it follows a non-header line (the previous
    statement, a banner, the start), when the current event already had its
    ``# Query_time:`` line, or when it is a second ``# Time:``. Two ``# User@Host:`` lines in a
    row (seen in Percona logs) stay one event.

    Header lines come in runs (one run per event, usually): a run whose keys end with its only
    ``# Query_time:`` and start with its only ``# Time:`` is decided at once; other runs (an
    administrator command followed by the next header, a truncated event) line by line.
    """
    starts: list[int] = []
    has_qt = has_time = False
    scan = "\n" + text  # scan[i + 1] is text[i]: a match at scan[j] is a line at text[j]
    for run in _HEADER_RUN.finditer(scan):
        pos, end = run.start(), run.end() - 1
        keys = _KEY_LINE.findall(text, pos, end)
        simple = keys.count("Query_time") <= 1 and keys.count("Time") <= 1
        simple = simple and ("Query_time" not in keys or keys[-1] == "Query_time")
        simple = simple and ("Time" not in keys or keys[0] == "Time")
        if not simple:
            for m in _KEY_LINE.finditer(text, pos, end):
                has_qt, has_time = _walk(text, m.start(), m.group(1), starts, has_qt, has_time)
            continue
        has_qt, has_time = _walk(text, pos, keys[0], starts, has_qt, has_time)
        has_qt = has_qt or "Query_time" in keys
        has_time = has_time or "Time" in keys
    return starts


def _walk(
    text: str, pos: int, key: str, starts: list[int], has_qt: bool, has_time: bool
) -> tuple[bool, bool]:
    """Apply the rule of :func:`_event_starts` to the key line at ``pos``."""
    prev_is_header = pos > 0 and text[text.rfind("\n", 0, pos - 1) + 1] == "#"
    if not starts or has_qt or not prev_is_header or (key == "Time" and has_time):
        starts.append(pos)
        has_qt = has_time = False
    if key == "Query_time":
        has_qt = True
    elif key == "Time":
        has_time = True
    return has_qt, has_time


def _fields(header: str) -> dict[str, str]:
    """``Key: value`` pairs of header lines; a key followed by another key has an empty value.

    Values never hold whitespace and keys end with ``:``, so a whitespace split pairs them
    (``Schema:  Last_errno: 0`` → Schema '', Last_errno '0'), faster than a regex with
    look-ahead. A key at the end of its line (``Schema: ``) is empty too. Tokens that are
    neither (``@``, ``localhost``, ``21:43:52``) are ignored.
    """
    out: dict[str, str] = {}
    key = None
    for tok in header.split():
        if tok == "#":  # a new header line: a key left open had an empty value
            if key is not None:
                out[key] = ""
                key = None
        elif tok[-1] == ":":
            if key is not None:
                out[key] = ""
            key = tok[:-1]
        elif key is not None:
            out[key] = tok
            key = None
    if key is not None:
        out[key] = ""
    return out


class _LineCounter:
    """Offset → line number for increasing offsets (amortised O(1))."""

    def __init__(self, text: str, first_line: int) -> None:
        self.text, self.pos, self.line = text, 0, first_line

    def __call__(self, offset: int) -> int:
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _unquote(db: str) -> str:
    db = db.strip()
    return db[1:-1].replace("``", "`") if len(db) > 1 and db[0] == db[-1] == "`" else db


_ROW = (
    "source_line",
    "query_time",
    "lock_time",
    "rows",
    "rows_examined",
    "pid",
    "user",
    "client",
    "client_ip",
    "database",
    "sql",
    "admin",
    "explain",
    "time",
    "time_own",
    "set_ts",
    "last_insert_id",
    "insert_id",
)


class _Events:
    """The events of one block: one tuple per event (cheaper than a list append per column)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[tuple[Any, ...]] = []
        self.extras: list[dict[str, str]] = []
        self._cols: dict[str, list[Any]] | None = None

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def cols(self) -> dict[str, list[Any]]:
        """The events column-wise (computed once, when the block is done)."""
        if self._cols is None or len(next(iter(self._cols.values()), [])) != len(self.rows):
            columns = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in _ROW]
            self._cols = {name: list(col) for name, col in zip(_ROW, columns, strict=True)}
        return self._cols

    def add(
        self,
        seg: str,
        line_no: int,
        time_state: str | None,
        db_state: str | None,
        report: ParseReport,
    ) -> tuple[str | None, str | None]:
        """Parse one event segment; return the ``# Time:`` and ``use`` state after it."""
        hm = _HEADER.match(seg)
        header = hm.group() if hm else ""
        body = seg[len(header) :]
        own_time = ""
        t = header.find("# Time:")
        if t >= 0:
            tm = _TIME.match(header, t)
            own_time = tm.group(1).strip() if tm else ""
            if own_time:
                time_state = own_time
        pm = _PREAMBLE.match(body)
        raw_db, lii, ii, set_ts = (
            pm.group("db", "lii", "ii", "ts") if pm else (None, None, None, None)
        )
        use_db = _unquote(raw_db) if raw_db is not None else None
        if use_db is not None:
            db_state = use_db
        if "Query_time:" not in header:
            report.skip(line_no, "truncated event (no # Query_time line)", seg)
            return time_state, db_state
        stmt = body[pm.end() :].strip() if pm else body.strip()
        admin = None
        if "# administrator command:" in seg:
            am = _ADMIN.search(header) or _ADMIN.search(stmt)
            if am:
                admin = am.group(1)
                stmt = (
                    stmt[am.end() :].strip()
                    if stmt.startswith("# administrator command:")
                    else stmt
                )
        if admin is not None:
            sql = f"administrator command: {admin}"
        elif stmt:
            sql = stmt[:-1].rstrip() if stmt.endswith(";") else stmt
        elif raw_db is not None:
            sql = f"use {raw_db.strip()}"
        else:
            report.skip(line_no, "event without a statement", seg)
            return time_state, db_state
        report.ok()

        explain = None
        if "# explain:" in header:
            explain = "\n".join(_EXPLAIN.findall(header))
            header = _EXPLAIN.sub("", header)
        kv = _fields(header)
        client = ip = user = None
        u = header.find("# User")
        who = _WHO.match(header, u) if u >= 0 else None
        if who:
            priv, name, host, ip = who.group("priv", "user", "host", "ip")
            user = priv or name or None
            client = host or ip or None
            if not host or not ip:
                ip = None
        elif "# Client:" in header:
            cm = _CLIENT.search(header)
            client = cm.group(1) if cm else None
        schema = kv.get("Schema")
        if schema:
            database = _unquote(schema)
        elif use_db is not None:
            database = use_db
        elif schema is not None:  # "Schema:" logged empty: the session had no database
            database = None
        else:
            database = db_state
        self.rows.append(
            (
                line_no,
                kv.get("Query_time"),
                kv.get("Lock_time"),
                kv.get("Rows_sent"),
                kv.get("Rows_examined"),
                kv.get("Thread_id") or kv.get("Id"),
                user,
                client,
                ip,
                database,
                sql,
                admin is not None,
                explain,
                time_state,
                bool(own_time),
                set_ts,
                lii,
                ii,
            )
        )
        for k in _DROP.intersection(kv):
            del kv[k]
        self.extras.append(kv)
        return time_state, db_state

    # -- columns -------------------------------------------------------------------------
    def frame(self, zone: _Zone, report: ParseReport) -> pd.DataFrame:
        """The block's query events with typed columns, timestamps resolved."""
        c = self.cols
        n = self.n
        lines = np.asarray(c["source_line"], dtype=np.int64)
        qt = pd.to_numeric(pd.Series(c["query_time"], dtype="object"), errors="coerce").astype(
            "float64"
        )
        corrupt = (qt > _MAX_QUERY_S) | (
            qt.isna() & pd.Series([v not in (None, "") for v in c["query_time"]], dtype=bool)
        )
        if corrupt.any():
            where = ", ".join(str(x) for x in lines[corrupt.to_numpy()][:5])
            report.warn(
                f"corrupted Query_time on {int(corrupt.sum())} event(s) (line {where}): duration_ms is NaN"
            )
            qt[corrupt] = np.nan
        duration_ms = qt * 1000.0
        df = pd.DataFrame(
            {
                "ts": self._timestamps(duration_ms.to_numpy(), lines, zone, report),
                "duration_ms": duration_ms,
                "lock_ms": pd.to_numeric(
                    pd.Series(c["lock_time"], dtype="object"), errors="coerce"
                ).astype("float64")
                * 1000.0,
                "rows": _int(c["rows"], "rows"),
                "rows_examined": _int(c["rows_examined"], "rows_examined"),
                "sql": pd.Series(c["sql"], dtype="string"),
                "database": pd.Series(c["database"], dtype="string"),
                "user": pd.Series(c["user"], dtype="string"),
                "client": pd.Series(c["client"], dtype="string"),
                "pid": _int(c["pid"], "pid"),
                "source_file": self.source,
                "source_line": pd.array(lines, dtype="Int64"),
                "source_format": MySQLSlowLoader.name,
                "admin": pd.array(c["admin"], dtype="boolean"),
                "explain": pd.Series(c["explain"], dtype="string"),
                "client_ip": pd.Series(c["client_ip"], dtype="string"),
                "last_insert_id": _int(c["last_insert_id"], "last_insert_id"),
                "insert_id": _int(c["insert_id"], "insert_id"),
            },
            index=pd.RangeIndex(n),
        )
        if n and any(self.extras):
            raw = pd.DataFrame.from_records(self.extras, index=pd.RangeIndex(n))
            for key in raw.columns:
                name, kind = _KNOWN.get(key, (_snake(key), ""))
                df[name] = _convert(raw[key], kind)
        return df

    def time_inputs(self, zone: tzinfo) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per event: header epoch seconds (naive ones read in ``zone``), whether the header
        named its zone, whether the header was unparseable, and the ``SET timestamp`` value."""
        n = self.n
        parsed: dict[str, tuple[float, bool]] = {}
        hdr = np.full(n, np.nan)
        explicit = np.zeros(n, dtype=bool)
        for i, raw in enumerate(self.cols["time"]):
            if raw is not None:
                got = parsed.get(raw)
                if got is None:
                    got = parsed[raw] = _parse_header_time(raw, zone)
                hdr[i], explicit[i] = got
        garbage = np.array([raw is not None for raw in self.cols["time"]], dtype=bool) & np.isnan(
            hdr
        )
        set_s = pd.to_numeric(
            pd.Series(self.cols["set_ts"], dtype="object"), errors="coerce"
        ).to_numpy(dtype=float)
        return hdr, explicit, garbage, set_s

    def _timestamps(
        self, duration_ms: np.ndarray, lines: np.ndarray, zone: _Zone, report: ParseReport
    ) -> pd.Series:
        """Resolve ``ts`` from the ``# Time:`` headers and ``SET timestamp`` (module docstring)."""
        if self.n == 0:
            return pd.Series([], dtype="datetime64[ns, UTC]")
        hdr, explicit, garbage, set_s = self.time_inputs(zone.tzinfo)
        own = np.asarray(self.cols["time_own"], dtype=bool)
        dur_s = np.nan_to_num(duration_ms / 1000.0, nan=0.0)
        exact_hdr = explicit & own & ~np.isnan(hdr)
        set_ok = _plausible_set(set_s, hdr, dur_s, exact_hdr)
        ts = np.where(exact_hdr, hdr, np.where(set_ok, set_s + dur_s, hdr))

        bad_set = ~np.isnan(set_s) & ~set_ok
        if bad_set.any():
            i = int(np.argmax(bad_set))
            report.warn(
                f"implausible SET timestamp on {int(bad_set.sum())} event(s) (first: {int(set_s[i])} at line {lines[i]}): "
                "the # Time: header was used instead"
            )
        unresolved = garbage & np.isnan(ts)
        if unresolved.any():
            i = int(np.argmax(unresolved))
            report.warn(
                f"unparseable '# Time: {self.cols['time'][i]}' (line {lines[i]}): {int(unresolved.sum())} event(s) have no timestamp"
            )
        if zone.note and (~explicit & ~np.isnan(hdr) & ~exact_hdr & ~set_ok).any():
            report.warn(zone.note)
        return epoch_series(ts, "s")


def _plausible_set(
    set_s: np.ndarray, hdr: np.ndarray, dur_s: np.ndarray, exact_hdr: np.ndarray
) -> np.ndarray:
    """``SET timestamp`` values that are real clocks and agree with the header (if any)."""
    with np.errstate(invalid="ignore"):
        plausible = (set_s >= _MIN_EPOCH_S) & (set_s <= time.time() + 86400)
        tolerance = np.where(exact_hdr, dur_s + 2.0, _LOCAL_TOLERANCE_S + dur_s)
        agrees = np.isnan(hdr) | (np.abs(hdr - set_s) <= tolerance)
    return plausible & agrees


@dataclass(frozen=True, slots=True)
class _Zone:
    """How naive ``# Time:`` headers are read, and the warning to give when they are used."""

    tzinfo: tzinfo
    note: str = ""

    @classmethod
    def of(cls, tz: str | None, offset_s: float | None) -> _Zone:
        if tz:
            return cls(ZoneInfo(tz))
        if offset_s is not None:
            sign = "+" if offset_s >= 0 else "-"
            hh, mm = divmod(int(abs(offset_s)) // 60, 60)
            return cls(
                timezone(timedelta(seconds=offset_s)),
                f"'# Time:' headers carry no time zone: read as UTC{sign}{hh:02d}:{mm:02d}, the offset "
                "between them and the SET timestamp values; pass tz='<server time zone>' to override",
            )
        return cls(
            UTC,
            "'# Time:' headers carry no time zone and were read as UTC: pass tz='<server time zone>' to correct them",
        )


def learn_offset(text: str) -> float | None:
    """The server's UTC offset (seconds) from events with both a naive header and a SET timestamp.

    Old servers write ``# Time:`` in local time and ``SET timestamp`` in epoch seconds; their
    difference, rounded to 15 minutes, is the zone offset. None unless 80 % of such events
    agree (a DST change inside the sample, or too few events).
    """
    events = _Events("")
    scratch = ParseReport("", "")
    starts = _event_starts(text)
    time_state: str | None = None
    db_state: str | None = None
    for a, b in zip(starts, [*starts[1:], len(text)], strict=False):
        time_state, db_state = events.add(text[a:b], 0, time_state, db_state, scratch)
    if not events.n:
        return None
    hdr, explicit, _, set_s = events.time_inputs(UTC)
    qt = pd.to_numeric(
        pd.Series(events.cols["query_time"], dtype="object"), errors="coerce"
    ).to_numpy(dtype=float)
    dur_s = np.nan_to_num(np.where(qt > _MAX_QUERY_S, np.nan, qt), nan=0.0)
    usable = (
        ~explicit
        & ~np.isnan(hdr)
        & _plausible_set(set_s, hdr, dur_s, np.zeros(events.n, dtype=bool))
    )
    if not usable.any():
        return None
    diffs = np.round((hdr[usable] - set_s[usable] - dur_s[usable]) / 900.0) * 900.0
    values, counts = np.unique(diffs, return_counts=True)
    best = int(np.argmax(counts))
    if counts[best] < 0.8 * usable.sum():
        return None
    return float(values[best])


def _parse_header_time(raw: str, zone: tzinfo) -> tuple[float, bool]:
    """``(epoch seconds or NaN, True when the header names its zone)`` for a ``# Time:`` value."""
    m = _YYMMDD.fullmatch(raw)
    try:
        if m:
            yy, mo, dd, hh, mi, ss, frac = m.groups()
            year = 2000 + int(yy) if int(yy) < 70 else 1900 + int(yy)
            micro = int((frac or "0")[:6].ljust(6, "0"))
            dt = datetime(year, int(mo), int(dd), int(hh), int(mi), int(ss), micro)
        else:
            dt = datetime.fromisoformat(_ISO_FRACTION.sub(r"\1", raw.replace(" ", "T", 1)))
    except ValueError:
        return float("nan"), False
    if dt.tzinfo is not None:
        return dt.timestamp(), True
    return dt.replace(tzinfo=zone).timestamp(), False


def _int(values: list[Any], column: str = "") -> pd.Series:
    """Integers of a header field; MySQL's 18446744073709551615 (an unsigned counter that
    went below zero) and other values past int64 become null and are counted."""
    return cast(pd.Series(values, dtype="object"), "Int64", column)


def _snake(key: str) -> str:
    """``InnoDB_IO_r_ops`` → ``innodb_io_r_ops``, ``QC_Hit`` → ``qc_hit``."""
    return re.sub(r"[^0-9a-z]+", "_", key.lower()).strip("_")


_YES_NO = {"Yes": True, "No": False, "yes": True, "no": False, "YES": True, "NO": False}


def _convert(raw: pd.Series, kind: str) -> pd.Series:
    """Type one extra column: by its known kind, else Yes/No → boolean, numbers → numbers."""
    values = raw.where(raw.notna() & (raw != ""), None)
    if kind == "text":
        return values.astype("string")
    if kind == "ts":
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    if kind in ("ms", "float"):
        num = pd.to_numeric(values, errors="coerce").astype("float64")
        return num * 1000.0 if kind == "ms" else num
    present = values.dropna()
    if len(present) and present.isin(list(_YES_NO)).all():
        return values.map(_YES_NO, na_action="ignore").astype("boolean")
    num = pd.to_numeric(values, errors="coerce")
    if len(present) and num.notna().sum() == len(present):
        whole = (num.dropna() % 1 == 0).all() and not present.astype(str).str.contains(
            r"[.eE]"
        ).any()
        return cast(num, "Int64", str(values.name or "")) if whole else num.astype("float64")
    return values.astype("string")


# -- the state scan between blocks (main process, bytes, no parsing) -------------------------
_TIME_B = re.compile(rb"# Time:[ \t]*([^\n#]*?)[ \t\r]*(?:#|\n|\Z)")
_USE_B = re.compile(rb"use[ \t]+([^\n;]*);[ \t\r]*(?:\n|\Z)")
_PRE_B = re.compile(
    rb"#|use[ \t]|SET[ \t]+(?:last_insert_id=\d+,)?(?:insert_id=\d+,)?timestamp=\d+;"
)


def last_time(data: bytes) -> str | None:
    """The last non-empty ``# Time:`` value in ``data`` (at a line start), or None."""
    end = len(data)
    while (i := data.rfind(b"# Time:", 0, end)) >= 0:
        if i == 0 or data[i - 1] == 0x0A:
            m = _TIME_B.match(data, i)
            if m and m.group(1).strip():
                return m.group(1).strip().decode("utf-8", errors="replace")
        end = i
    return None


def last_use(data: bytes) -> str | None:
    """The database of the last preamble ``use db;`` line in ``data``, or None.

    A ``use`` line is a preamble line when the line before it is a header line or another
    preamble line, as in the parser.
    """
    end = len(data)
    while (i := data.rfind(b"\nuse", 0, end)) >= 0:
        m = _USE_B.match(data, i + 1)
        if m:
            prev = data.rfind(b"\n", 0, i) + 1
            if _PRE_B.match(data, prev):
                return _unquote(m.group(1).decode("utf-8", errors="replace"))
        end = i
    return None


@register
class MySQLSlowLoader(BlockLoader):
    """MySQL / MariaDB / Percona Server slow query log (any version since 5.0)."""

    name = "mysql_slow"
    frame = "query_events"
    description = "MySQL, MariaDB or Percona Server slow query log"
    expected = "events of '# User@Host: …', '# Query_time: … Lock_time: …' header lines followed by the statement"
    dialect = "mysql"

    def sniff(self, head: str, path: Path) -> float:
        """Sure when ``# Query_time:`` lines are there; likely with only Time/User@Host headers."""
        timed = len(re.findall(r"(?m)^# Query_time: \S", head))
        if timed:
            return 1.0 if timed > 1 or "Lock_time:" in head else 0.9
        if re.search(r"(?m)^# (?:User@Host|Time): ", head):
            return 0.6
        if "started with:" in head and re.search(r"(?m)^Time\s+Id\s+Command\s+Argument", head):
            return 0.3
        return 0.0

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """A parser reading naive ``# Time:`` headers in ``tz=`` (an IANA zone name), else at the
        offset learnt from the head, else as UTC."""
        tz = options.get("tz")
        if tz:
            ZoneInfo(tz)  # fail early on an unknown zone
            return MySQLSlowParser(tz)
        return MySQLSlowParser(None, learn_offset(head))

    def blocks(self, path: str | Path, parser: BlockParser) -> Iterator[Block]:
        """The file's blocks, each carrying the ``# Time:`` and ``use`` state in force before it."""
        time_in: str | None = None
        db_in: str | None = None
        for b in iter_blocks(path, parser.boundary, self.block_size):
            yield SlowLogBlock(b.data, b.first_line, b.source, time_in, db_in)
            time_in = last_time(b.data) or time_in
            db_in = last_use(b.data) or db_in
