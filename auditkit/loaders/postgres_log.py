"""PostgreSQL server logs: stderr (any ``log_line_prefix``), csvlog, jsonlog and syslog.

Four formats, one loader each, all producing the same two frames.

``postgres_stderr``
    The plain log, with any ``log_line_prefix``: give it as ``prefix="%m [%p] %q%u@%d "`` or
    let the loader work it out from the file (common defaults first — Debian, pgBadger's,
    Amazon RDS's ``%t:%r:%u@%d:[%p]:`` — then inferred from the text in front of ``LOG:``;
    the report says what was inferred, and which useful escapes are missing). Multi-line
    messages continue on TAB-indented lines. Zone abbreviations printed by ``%t``/``%m``
    are honoured; ``tz=`` (an IANA name) places timestamps printed without one.
``postgres_csvlog``
    ``log_destination = csvlog``: every column layout from 8.4 to 18 (22 to 26 columns),
    quoted fields with embedded newlines and doubled quotes.
``postgres_jsonlog``
    ``log_destination = jsonlog`` (PostgreSQL 15+), and two JSON-wrapped cloud flavours:
    Google Cloud SQL exports (the stderr line in ``textPayload``, its prefix detected as for
    stderr, continuation lines as separate objects) and CloudNativePG (csvlog fields in a
    ``record`` object; operator lines are skipped and counted; CloudNativePG writes
    newest first, so rows come in that order).
``postgres_syslog``
    Via syslog, with or without ``syslog_sequence_numbers`` (``[12-1]``, continued by
    ``[12-2]``…, TABs escaped as ``#011``), RFC 3164 or ISO timestamps; and Heroku Postgres
    through logplex (``app[postgres.1234]: [GREEN] [15-1]  sql_error_code = 00000 LOG: …``,
    where ``[GREEN]`` names the database). Classic syslog timestamps have no year: it comes
    from ``year=`` or the file's modification time, and the report says which. (Read by
    :mod:`auditkit.loaders.postgres_syslog`; what the four share is in ``_pg_loader``.)

**query_events** — one row per statement the server logged with ``log_min_duration_statement``
or ``log_statement``. The extra column ``phase`` is ``statement`` (simple protocol),
``parse``, ``bind`` or ``execute`` (extended protocol: each step is its own row, with its own
duration). **A query profile must count only ``execute`` and ``statement`` rows**
(:data:`PROFILE_PHASES`), or one execution of a prepared statement counts up to three times.
``DETAIL:  parameters: $1 = …`` is bound into ``sql`` (literals in place, for a sample to run);
``sql_template`` keeps the ``$n`` form where parameters were bound (elsewhere ``sql`` is the
template already), ``params`` the logged list, and the fingerprint is computed from the template
form so executions with different values fall in one group. ``statement_name`` is the prepared
statement / portal (``S_1``, ``<unnamed>``). A statement logged without a duration
(``log_statement``) has NaN ``duration_ms``, unless ``log_duration`` writes ``duration: X ms``
later for the same process: the two are paired, across block boundaries too, and the row takes
the time of the duration line. A statement that never receives a duration keeps NaN.

**server_events** — everything else, never dropped: errors with SQLSTATE (``kind`` error,
deadlock), lock waits (``lock_waiting`` / ``lock_acquired`` with the wait in ``duration_ms``),
temporary files (``size_bytes``), checkpoints (``duration_ms`` from ``total=``), automatic vacuum
and analyze (``relation``, elapsed time), connections and disconnections (session time), and
``other``; the extra column ``event`` refines ``kind``. DETAIL / HINT / CONTEXT go to ``detail``,
STATEMENT to ``statement``.

Messages of a server with a translated ``lc_messages`` (``ERREUR:``, ``FEHLER:``,
``LOG:  Dauer:``, ``СООБЩЕНИЕ:``) cannot be interpreted: they are skipped with that reason and
a warning says so; a file of nothing else raises :class:`~auditkit.errors.NothingParsedError`
naming the cause. Lines that fit no entry (noise from ``pg_ctl``, binary junk, a truncated last
line) are skipped with their line numbers; lines that are not valid UTF-8 are kept with U+FFFD
and listed in a warning. ``read == parsed + skipped`` counts log entries (a line and its
continuation lines), CSV records or JSON objects.

Speed: the stderr parser — the one used on gigabyte logs — runs one compiled regular
expression over each block that splits every entry (prefix fields, severity, duration,
statement kind, message and its continuation lines) at once; columns are built from the
matches with no per-line Python work in the common case, timestamps are parsed by Arrow,
fingerprints by :func:`~auditkit.sql.fingerprint.fingerprint_many` once per distinct text.
That parser is the reference. A digest reads the blocks of a statement log with the native
reader of :mod:`auditkit.loaders._pg_native` instead (per-line work in NumPy and Arrow, the
same frames, about two and a half times less CPU per block), and falls back to the reference,
block by block, on whatever that reader does not take; ``native=False`` keeps the reference
throughout. The other formats are rarely large and favour simplicity.

Example::

    >>> from auditkit.loaders.registry import get_loader
    >>> result = get_loader("postgres_stderr").load("postgresql.log", prefix="%m [%p] %q%u@%d ")
    >>> q = result.frames["query_events"]
    >>> q[q.phase.isin(PROFILE_PHASES)].groupby("fingerprint").duration_ms.sum()  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from auditkit.executors import gc_paused
from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders._pg_events import (
    MESSAGE_FRAGMENT,
    Entries,
    Stats,
    attach_secondaries,
    block_result,
    to_utc,
)
from auditkit.loaders._pg_frames import PROFILE_PHASES
from auditkit.loaders._pg_loader import (
    CAPTURE,
    SECONDARY_ALT,
    SEVERITY_BYTES,
    SYSLOG_LINE,
    PgParser,
    PostgresLoader,
    block_report,
    detection_notes,
    junk_reason,
    looks_binary,
    prefix_error,
)
from auditkit.loaders._pg_native import Unsupported, native_plan, parse_native
from auditkit.loaders._pg_native import pieces as native_pieces
from auditkit.loaders._pg_prefix import (
    CANDIDATES,
    SECONDARY_SEVERITIES,
    SEVERITY,
    PrefixDetection,
    detect_prefix,
    escapes_of,
    prefix_pattern,
    severity_lines,
)
from auditkit.loaders._records import BadRecord, csv_records
from auditkit.loaders.base import (
    BlockParser,
    BlockResult,
)
from auditkit.loaders.registry import register
from auditkit.loaders.stream import Block, read_head

__all__ = [
    "CANDIDATES",
    "PROFILE_PHASES",
    "PostgresCsvLoader",
    "PostgresJsonLoader",
    "PostgresStderrLoader",
    "PrefixDetection",
    "detect_prefix",
    "prefix_pattern",
]


def _epoch_to_ns(values: Sequence[str]) -> np.ndarray:
    """``%n`` epoch texts (``1714557600.125``) to ``datetime64[ns]``, exactly (no float step)."""
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    for k, text in enumerate(values):
        sec, _, frac = text.partition(".")
        if sec.isdigit() and (not frac or frac.isdigit()):
            out[k] = np.datetime64(int(sec) * 1_000_000_000 + int((frac + "000000000")[:9]), "ns")
    return out


# ============================================================================ stderr


class StderrParser(PgParser):
    """Parses blocks of a stderr log written with one known ``log_line_prefix``."""

    _settings = ("prefix", "tz", "source", "fmt", "notes", "native")

    def __init__(
        self,
        prefix: str,
        tz: str | None,
        source: str,
        fmt: str = "postgres_stderr",
        notes: Sequence[str] = (),
        native: bool = True,
    ) -> None:
        """Compile the one-pass patterns (fast and robust) and the block boundary for ``prefix``.

        ``native``: in a digest, read blocks with the native reader
        (:mod:`auditkit.loaders._pg_native`) where it can; False keeps the reference parser.
        """
        self.prefix = prefix
        self.tz = tz
        self.source = source
        self.fmt = fmt
        self.notes = list(notes)
        self.native = native
        # two forms of the one-pass pattern: the fast one, and the lazy (robust) one for
        # blocks where the fast one leaves lines unmatched (see prefix_pattern's greedy)
        # (possessive where nothing after can fail, as in MESSAGE: the same matches, less
        # backtracking state kept per line)
        entry = rf"(?P<sev>{SEVERITY}): {{1,2}}{MESSAGE_FRAGMENT}(?P<msg>[^\n]*+)|(?P<junk>[^\n]+))"
        cont = r"(?P<cont>(?:\n(?:[\t ][^\n]*+)?+)*+)"
        fast = prefix_pattern(prefix, capture=CAPTURE, greedy=True)
        lazy = prefix_pattern(prefix, capture=CAPTURE)
        self._rx_multi = re.compile(rf"^(?:(?:{fast}){entry}{cont}", re.M)
        self._rx_robust = re.compile(rf"^(?:(?:{lazy}){entry}{cont}", re.M)
        self._plan = native_plan(prefix, self._rx_multi) if native else None
        bare = prefix_pattern(prefix, capture=())
        self.boundary = re.compile(
            b"(?:"
            + bare.encode()
            + rb")(?!(?:"
            + SECONDARY_ALT.encode()
            + rb"):)"
            + SEVERITY_BYTES
            + rb":"
        )

    def parse(self, block: Block) -> BlockResult:
        """Parse one block with the garbage collector paused (its many small tuples make no
        cycles, :func:`~auditkit.executors.gc_paused`).

        In a digest, the native reader takes the block when it can; the reference parser
        (:meth:`_parse`) takes it otherwise, and always outside a digest.
        """
        with gc_paused():
            if self.digest and self._plan is not None:
                try:
                    return parse_native(
                        self._plan, block, self.fmt, self.tz, self._parse, self.bind_samples
                    )
                except Unsupported:
                    pass
            return self._parse(block)

    def parse_parts(self, block: Block) -> list[BlockResult]:
        """In a digest, the block as the native reader reads it, with the entries it cannot
        read (a statement written over several lines) cut out and read by the reference
        parser; the parts' results in file order. Outside a digest, :meth:`parse`."""
        if not (self.digest and self._plan is not None):
            return [self.parse(block)]
        with gc_paused():
            return self._native_parts(block, 0)

    def _native_parts(self, block: Block, depth: int) -> list[BlockResult]:
        assert self._plan is not None
        try:
            return [
                parse_native(self._plan, block, self.fmt, self.tz, self._parse, self.bind_samples)
            ]
        except Unsupported as exc:
            spans = exc.spans
        if not spans or depth >= 2:
            return [self._parse(block)]
        out: list[BlockResult] = []
        for piece, native in native_pieces(block, spans):
            out.extend(self._native_parts(piece, depth + 1) if native else [self._parse(piece)])
        return out

    def _parse(self, block: Block) -> BlockResult:
        """Split the block into entries with one regex pass, then build its frames."""
        text, bad = block.text()
        report = block_report(block, self.fmt, text)
        stats = Stats(bad_utf8=list(bad))
        body = text.lstrip("\n")
        first = block.first_line + (len(text) - len(body))
        unterminated = bool(body) and not body.endswith("\n")
        rx = self._rx_multi
        cols = _columns(rx, body)
        g = {name: idx - 1 for name, idx in rx.groupindex.items()}
        n = len(cols[0])
        if n and any(cols[g["junk"]]) and rx is not self._rx_robust:
            # some line does not fit the fast pattern: use the lazy one for this block
            rx = self._rx_robust
            cols = _columns(rx, body)
            g = {name: idx - 1 for name, idx in rx.groupindex.items()}
            n = len(cols[0])
        cont = cols[g["cont"]]
        newlines = cont.count("\n")
        simple = newlines == n or (unterminated and newlines == n - 1 and cont[-1] == "")
        lines = np.arange(first, first + n, dtype=np.int64)
        multi: list[int] = []  # entries with continuation (or blank) lines after them
        if not simple:
            # a vectorised comparison finds the few entries that span lines
            multi = np.flatnonzero(np.asarray(cont, dtype=object) != "\n").tolist()
            extra = np.zeros(n, dtype=np.int64)
            for i in multi:
                extra[i] = max(cont[i].count("\n") - 1, 0)
            lines[1:] += np.cumsum(extra[:-1])
        keep: list[int] | None = None
        junk = cols[g["junk"]]
        if any(junk):
            keep = []
            for i, j in enumerate(junk):
                if j:
                    reason = junk_reason(j, unterminated and i == n - 1)
                    report.skip(int(lines[i]), reason, j)
                    stats.unprefixed += 1
                else:
                    keep.append(i)
        if "\x00" in body:
            msg_col = cols[g["msg"]]
            base = keep if keep is not None else range(n)
            kept = []
            for i in base:
                if "\x00" in msg_col[i] or "\x00" in cont[i]:
                    report.skip(int(lines[i]), "binary data", msg_col[i])
                else:
                    kept.append(i)
            keep = kept
        if unterminated and n and not junk[-1] and (keep is None or (keep and keep[-1] == n - 1)):
            report.warn(
                f"the file does not end with a newline: its last entry (line {int(lines[-1])}) may be truncated"
            )

        def col(name: str) -> Sequence[str] | None:
            """The column ``name`` restricted to the kept entries (None when the prefix lacks it)."""
            idx = g.get(name)
            if idx is None:
                return None
            values = cols[idx]
            return values if keep is None else [values[i] for i in keep]

        msg = col("msg")
        assert msg is not None
        if multi:
            full = list(cols[g["msg"]])
            for i in multi:
                if len(cont[i]) > 1:
                    full[i] += _continuation(cont[i])
            msg = full if keep is None else [full[i] for i in keep]
        sel_lines = lines if keep is None else lines[np.asarray(keep, dtype=np.int64)]
        sev = col("sev")
        assert sev is not None
        stats.entries = len(sev)
        ts_text, epoch = col("ts"), col("epoch")
        if ts_text is not None:
            ts = to_utc(ts_text, col("tz"), self.tz, stats)
        elif epoch is not None:
            ts = _epoch_to_ns(epoch)
        else:
            ts = np.full(len(sev), np.datetime64("NaT"), dtype="datetime64[ns]")
        entries = Entries(
            line=sel_lines, ts=ts, sev=sev, msg=msg, pid=col("pid"), user=col("user"), db=col("db"),
            app=col("app"), client=col("client"), session=col("session"), query_id=col("query_id"),
            sqlstate=col("sqlstate"), dur=col("dur"), kind=col("kind"), name=col("name"),
        )  # fmt: skip
        if set(sev) & SECONDARY_SEVERITIES:
            entries = attach_secondaries(entries, report)
        return block_result(entries, block.source, self.fmt, report, stats, digest=self.digest)


def _columns(rx: re.Pattern[str], text: str) -> list[list[str]]:
    """The groups of every match of ``rx`` in ``text``, column by column: what ``findall``
    and a transposition give, for a pattern whose matches tile the text (the stderr one).

    ``split`` returns one flat list (text before, the groups of the first match, text
    between, the groups of the next…) instead of one tuple per match, so each column is a
    strided slice: no tuple per entry to build, transpose and free (a tenth of a block's
    parse). A group that took no part is None there and ``''`` for ``findall``: replaced.
    """
    flat = rx.split(text)
    width = rx.groups + 1
    out = []
    for k in range(1, width):
        col = flat[k::width]
        missing = col.count(None)
        if missing == len(col):
            col = [""] * len(col)
        elif missing:
            col = ["" if v is None else v for v in col]
        out.append(col)
    return out


def _continuation(cont: str) -> str:
    """Continuation lines as message text: the TAB the server adds after each newline removed."""
    text = cont.rstrip("\n")
    return text.replace("\n\t", "\n") if text else ""


def _detect_in(path: Path, head: str, lines_of: Any = None) -> PrefixDetection:
    """Detect the prefix from the head; read further (up to 4 MiB) when the head is not enough."""
    split = lines_of or (lambda text: text.splitlines())
    det = detect_prefix(split(head))
    if det.prefix is None and len(head) >= 60000:
        more = read_head(path, 4 << 20).decode("utf-8", errors="replace")
        det = detect_prefix(split(more))
    return det


@register
class PostgresStderrLoader(PostgresLoader):
    """PostgreSQL stderr log with any ``log_line_prefix`` (plain, Debian, RDS, …)."""

    name = "postgres_stderr"
    description = "PostgreSQL server log (stderr / logging collector), any log_line_prefix"
    expected = (
        "lines like '2024-05-01 10:00:00.123 UTC [4242] app@shop LOG:  duration: 1.2 ms  "
        "statement: SELECT …' (log_line_prefix, then severity, then message)"
    )

    def sniff(self, head: str, path: Path) -> float:
        """Confident when most lines are entries of one detectable ``log_line_prefix``."""
        lines = head.splitlines()[:400]
        starts = [line for line in lines if line and line[0] not in "\t "]
        if not starts or starts[0].lstrip().startswith("{"):
            return 0.0
        if sum(1 for line in starts if SYSLOG_LINE.match(line)) * 2 > len(starts):
            return 0.2  # a syslog file: the syslog loader is more specific
        found, _ = severity_lines(lines, limit=400)
        if not found:
            return 0.0
        det = detect_prefix(lines)
        if det.prefix is None:
            return 0.3
        share = det.matched / len(starts)
        if set(escapes_of(det.prefix)) & {"t", "m", "n", "p"}:
            return min(0.95, 0.4 + 0.55 * share)
        # no timestamp nor pid (an empty prefix, as before PostgreSQL 10): psql output and
        # test transcripts look alike, so most lines must be log entries
        return min(0.9, 0.1 + 0.5 * share)

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """A block parser for the given or detected ``prefix`` (raises when none can be found)."""
        prefix = options.get("prefix")
        tz = options.get("tz")
        native = bool(options.get("native", True))
        if prefix is None and not head.strip():
            prefix = CANDIDATES[1]  # an empty file: nothing to detect, the report will say so
        if prefix is None:
            det = _detect_in(path, head)
            if det.prefix is None:
                raise prefix_error(self, path, det)
            notes = detection_notes(det, False)
            return StderrParser(det.prefix, tz, str(path), self.name, notes, native)
        det = PrefixDetection(prefix)
        return StderrParser(prefix, tz, str(path), self.name, detection_notes(det, True), native)


# ============================================================================ csvlog

#: csvlog columns, in order; PostgreSQL 8.4 wrote the first 22, 9.0 added application_name,
#: 13 backend_type, 14 leader_pid and query_id
CSV_COLUMNS = (
    "log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
    "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
    "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
    "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
    "application_name", "backend_type", "leader_pid", "query_id",
)  # fmt: skip
_CSV_START = compile_later(r'^"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')
_CSV_SNIFF = compile_later(
    r'^"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:-]+)?"?,.*,"?(?:LOG|ERROR|WARNING|FATAL|PANIC|NOTICE|INFO|DEBUG[1-5]?|DETAIL|STATEMENT|[^\x00-\x7f,]+)"?,[0-9A-Z]{5},'
)
_TS_SPLIT = compile_later(
    r"^(?P<d>\d{4}-\d\d-\d\d)[T ](?P<t>\d\d:\d\d:\d\d(?:\.\d+)?)\s?(?P<z>Z|[+-]\d\d(?::?\d\d)?|[A-Za-z][A-Za-z0-9_/+-]*)?$"
)


def _split_ts(text: str) -> tuple[str, str]:
    """``'2024-06-27 00:00:07.369 CEST'`` → ``('2024-06-27 00:00:07.369', 'CEST')``; ISO too."""
    m = _TS_SPLIT.match(text.strip()) if text else None
    if not m:
        return "", ""
    z = m.group("z") or ""
    return f"{m.group('d')} {m.group('t')}", ("UTC" if z == "Z" else z)


class _FieldEntries:
    """Collects entries field by field (for the csv and json parsers)."""

    FIELDS = (
        "ts", "tz", "sev", "msg", "pid", "user", "db", "app", "client", "session", "query_id",
        "sqlstate", "detail", "hint", "context", "statement", "iquery",
    )  # fmt: skip

    def __init__(self) -> None:
        """An empty collection of entry columns."""
        self.cols: dict[str, list[str]] = {k: [] for k in self.FIELDS}
        self.lines: list[int] = []

    def add(self, line: int, values: dict[str, str]) -> None:
        """Append one entry starting at ``line`` (missing fields become empty strings)."""
        for key, col in self.cols.items():
            col.append(values.get(key) or "")
        self.lines.append(line)

    def entries(self, tz: str | None, stats: Stats) -> Entries:
        """The collected entries as :class:`Entries`, timestamps converted to UTC."""
        c = self.cols
        ts = to_utc(c["ts"], c["tz"], tz, stats)
        return Entries(
            line=np.asarray(self.lines, dtype=np.int64), ts=ts, sev=c["sev"], msg=c["msg"],
            pid=c["pid"], user=c["user"], db=c["db"], app=c["app"], client=c["client"],
            session=c["session"], query_id=c["query_id"], sqlstate=c["sqlstate"],
            detail=c["detail"], hint=c["hint"], context=c["context"], statement=c["statement"],
            iquery=c["iquery"],
        )  # fmt: skip


def _csv_values(row: Sequence[str]) -> dict[str, str]:
    """Entry fields of one csvlog row (any of the 22 to 26 column layouts)."""
    rec = dict(zip(CSV_COLUMNS, row, strict=False))
    return _record_values(rec)


def _record_values(rec: dict[str, Any]) -> dict[str, str]:
    """csvlog-named fields (csvlog rows, CloudNativePG records) → entry fields."""
    ts, tz = _split_ts(str(rec.get("log_time") or ""))
    conn = str(rec.get("connection_from") or "")
    client = conn.rsplit(":", 1)[0] if conn and not conn.startswith("[") and ":" in conn else conn
    return {
        "ts": ts, "tz": tz, "sev": str(rec.get("error_severity") or ""),
        "msg": str(rec.get("message") or ""), "pid": str(rec.get("process_id") or ""),
        "user": str(rec.get("user_name") or ""), "db": str(rec.get("database_name") or ""),
        "app": str(rec.get("application_name") or ""), "client": client,
        "session": str(rec.get("session_id") or ""), "query_id": str(rec.get("query_id") or ""),
        "sqlstate": str(rec.get("sql_state_code") or ""), "detail": str(rec.get("detail") or ""),
        "hint": str(rec.get("hint") or ""), "context": str(rec.get("context") or ""),
        "statement": str(rec.get("query") or ""), "iquery": str(rec.get("internal_query") or ""),
    }  # fmt: skip


class CsvParser(PgParser):
    """Parses blocks of a csvlog file with the csv module (quoted newlines and quotes)."""

    _settings = ("tz", "source", "fmt")
    boundary = re.compile(rb'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')

    def __init__(self, tz: str | None, source: str, fmt: str = "postgres_csvlog") -> None:
        """A csvlog parser; ``tz`` places timestamps printed without a zone."""
        self.tz = tz
        self.source = source
        self.fmt = fmt

    def parse(self, block: Block) -> BlockResult:
        """Parse the CSV records of one block (records may span lines)."""
        text, bad = block.text()
        report = block_report(block, self.fmt, text)
        stats = Stats(bad_utf8=list(bad))
        acc = _FieldEntries()
        last_line = block.first_line + text.count("\n") - (1 if text.endswith("\n") else 0)
        for rec in csv_records(text, first_line=block.first_line):
            if isinstance(rec, BadRecord):
                report.skip(rec.line, rec.reason, rec.excerpt)
                continue
            start, row = rec.line, rec.values
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            joined = ",".join(row)
            if "\x00" in joined:
                report.skip(start, "binary data", joined)
                continue
            if not 22 <= len(row) <= 26 or not _CSV_START.match(row[0]):
                end_of_block = start + joined.count("\n") >= last_line and not text.endswith("\n")
                reason = (
                    "truncated entry (file ends mid-record)"
                    if end_of_block
                    else f"malformed csvlog record ({len(row)} fields)"
                )
                if "\ufffd" in joined and not end_of_block:
                    reason = "invalid UTF-8"
                report.skip(start, reason, joined)
                continue
            acc.add(start, _csv_values(row))
        entries = acc.entries(self.tz, stats)
        stats.entries = len(entries)
        return block_result(entries, block.source, self.fmt, report, stats, digest=self.digest)


@register
class PostgresCsvLoader(PostgresLoader):
    """PostgreSQL csvlog (``log_destination = csvlog``), every layout from 8.4 to 18."""

    name = "postgres_csvlog"
    description = "PostgreSQL csvlog (log_destination = csvlog)"
    expected = (
        'CSV records like \'2024-05-01 10:00:00.123 UTC,"app","shop",4242,…,LOG,00000,'
        '"duration: 1.2 ms  statement: SELECT …",…\' with 22 to 26 columns'
    )

    def sniff(self, head: str, path: Path) -> float:
        """Confident when record starts are timestamps followed by csvlog fields and a severity."""
        lines = [line for line in head.splitlines()[:400] if line.strip()]
        starts = [line for line in lines if _CSV_START.match(line)]
        if not starts:
            return 0.0
        good = sum(1 for line in starts if _CSV_SNIFF.match(line))
        if not good:
            return 0.0
        return min(0.95, 0.6 + 0.35 * good / len(starts))

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """A csvlog block parser."""
        return CsvParser(options.get("tz"), str(path), self.name)


# ============================================================================ jsonlog

_CLOUDSQL_CONT = compile_later(r'"textPayload":\s?"\\t')


class JsonParser(PgParser):
    """Parses blocks of JSON lines: native jsonlog, Cloud SQL exports, CloudNativePG."""

    _settings = ("prefix", "tz", "source", "fmt", "notes")

    #: every line starts a record, except a Cloud SQL continuation line (textPayload "\t…")
    boundary = re.compile(rb'(?![^\n]*"textPayload":\s?"\\t)')

    def __init__(
        self,
        prefix: str | None,
        tz: str | None,
        source: str,
        fmt: str = "postgres_jsonlog",
        notes: Sequence[str] = (),
    ) -> None:
        """A JSON-lines parser; ``prefix`` is the log_line_prefix of Cloud SQL ``textPayload`` lines."""
        self.prefix = prefix
        self.tz = tz
        self.source = source
        self.fmt = fmt
        self.notes = list(notes)
        self._payload: re.Pattern[str] | None = None
        if prefix is not None:
            self._payload = re.compile(
                rf"(?:{prefix_pattern(prefix, capture=CAPTURE)})(?P<sev>{SEVERITY}): {{1,2}}(?P<msg>.*)",
                re.S,
            )
        self._stderr = re.compile(
            rf"(?:{prefix_pattern('%m [%p] ', capture=CAPTURE)})(?P<sev>{SEVERITY}): {{1,2}}(?P<msg>.*)",
            re.S,
        )

    def parse(self, block: Block) -> BlockResult:
        """Parse the JSON objects of one block, whichever of the three flavours each one is."""
        text, bad = block.text()
        report = block_report(block, self.fmt, text)
        stats = Stats(bad_utf8=list(bad))
        acc = _FieldEntries()
        last = -1  # index in acc of the last Cloud SQL entry (for continuation objects)
        lines = text.split("\n")
        unterminated = bool(text) and not text.endswith("\n")
        for k, raw in enumerate(lines):
            line_no = block.first_line + k
            if not raw.strip():
                continue
            try:
                obj = _json.loads(raw)
            except ValueError:
                if looks_binary(raw):
                    reason = "binary data"
                elif unterminated and k == len(lines) - 1:
                    reason = "truncated entry (file ends mid-record)"
                elif "\ufffd" in raw:
                    reason = "invalid UTF-8"
                else:
                    reason = "malformed JSON"
                report.skip(line_no, reason, raw)
                continue
            if not isinstance(obj, dict):
                report.skip(line_no, "JSON value is not an object", raw)
                continue
            if "error_severity" in obj and "message" in obj:
                ts, tz = _split_ts(str(obj.get("timestamp") or ""))
                acc.add(line_no, {
                    "ts": ts, "tz": tz, "sev": str(obj.get("error_severity") or ""),
                    "msg": str(obj.get("message") or ""), "pid": str(obj.get("pid") or ""),
                    "user": str(obj.get("user") or ""), "db": str(obj.get("dbname") or ""),
                    "app": str(obj.get("application_name") or ""),
                    "client": str(obj.get("remote_host") or ""),
                    "session": str(obj.get("session_id") or ""),
                    "query_id": str(obj.get("query_id") or ""),
                    "sqlstate": str(obj.get("state_code") or ""),
                    "detail": str(obj.get("detail") or ""), "hint": str(obj.get("hint") or ""),
                    "context": str(obj.get("context") or ""),
                    "statement": str(obj.get("statement") or ""),
                    "iquery": str(obj.get("internal_query") or ""),
                })  # fmt: skip
                last = -1
            elif isinstance(obj.get("record"), dict):
                acc.add(line_no, _record_values(obj["record"]))
                last = -1
            elif "textPayload" in obj:
                payload = str(obj.get("textPayload") or "")
                if payload.startswith("\t"):
                    if last >= 0:
                        acc.cols["msg"][last] += "\n" + payload[1:]
                        report.ok()
                    else:
                        report.skip(line_no, "continuation line without an entry", payload)
                    continue
                m = self._payload.match(payload) if self._payload else None
                if not m:
                    report.skip(line_no, "textPayload does not match the log_line_prefix", payload)
                    continue
                values = {k2: v for k2, v in m.groupdict().items() if v}
                values["ts"], values["tz"] = _split_ts(str(obj.get("timestamp") or ""))
                acc.add(line_no, values)
                last = len(acc.lines) - 1
            elif "logging_pod" in obj or ("level" in obj and "msg" in obj):
                message = str(obj.get("msg") or "")
                m = self._stderr.match(message) if obj.get("logger") == "postgres" else None
                if m:
                    acc.add(line_no, {k2: v for k2, v in m.groupdict().items() if v})
                else:
                    report.skip(
                        line_no,
                        f"CloudNativePG operator message (logger {obj.get('logger') or 'none'})",
                        raw,
                    )
                last = -1
            else:
                report.skip(line_no, "JSON object is not a PostgreSQL log record", raw)
        # entries are counted by build_frames; continuation objects and skips were counted above
        entries = acc.entries(self.tz, stats)
        stats.entries = len(entries)
        return block_result(entries, block.source, self.fmt, report, stats, digest=self.digest)


def _json_objects(head: str, limit: int = 50) -> list[dict[str, Any]]:
    """The JSON objects among the first ``limit`` lines of ``head`` (for sniffing and detection)."""
    out = []
    for line in head.splitlines()[:limit]:
        line = line.strip()
        if not line:
            continue
        try:
            obj = _json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


@register
class PostgresJsonLoader(PostgresLoader):
    """PostgreSQL jsonlog (15+), Google Cloud SQL exports and CloudNativePG JSON lines."""

    name = "postgres_jsonlog"
    description = "PostgreSQL jsonlog, Cloud SQL (textPayload) or CloudNativePG JSON lines"
    expected = (
        'one JSON object per line: PostgreSQL jsonlog ({"timestamp", "error_severity", '
        '"message", …}), a Cloud Logging export with the log line in textPayload, or '
        "CloudNativePG lines with a csvlog 'record'"
    )

    def sniff(self, head: str, path: Path) -> float:
        """Confident when the first objects carry jsonlog, Cloud SQL or CloudNativePG keys."""
        first = head.lstrip()[:1]
        if first != "{":
            return 0.0
        objs = _json_objects(head)
        if not objs:
            return 0.0
        score = 0
        for obj in objs:
            if (
                ("error_severity" in obj and "message" in obj and "timestamp" in obj)
                or (isinstance(obj.get("record"), dict) and "error_severity" in obj["record"])
                or ("logging_pod" in obj and "logger" in obj)
                or (
                    "textPayload" in obj
                    and (
                        "cloudsql" in str(obj.get("logName", ""))
                        or severity_lines([str(obj["textPayload"])])[0]
                    )
                )
            ):
                score += 1
        if not score:
            return 0.0
        return min(0.95, 0.6 + 0.35 * score / len(objs))

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """A JSON block parser; detects the Cloud SQL ``textPayload`` prefix when there is one."""
        prefix = options.get("prefix")
        notes: list[str] = []
        payloads = [str(o["textPayload"]) for o in _json_objects(head, 2000) if "textPayload" in o]
        if payloads and prefix is None:
            det = detect_prefix(payloads)
            if det.prefix is None:
                raise prefix_error(self, path, det)
            prefix = det.prefix
            notes = detection_notes(det, False)
            notes = [n for n in notes if "no a timestamp" not in n]
        return JsonParser(prefix, options.get("tz"), str(path), self.name, notes)
