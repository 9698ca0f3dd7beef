"""Django's ``django.db.backends`` query log.

Django writes one DEBUG message per statement::

    (0.002) SELECT "app_book"."id" FROM "app_book" WHERE "app_book"."id" = 1; args=(1,); alias=default

(``alias=`` appeared in Django 4.0; older versions end at ``args=…``). The duration is in
seconds; we store milliseconds. The message may stand alone or behind any logging prefix
(timestamp, level, process, thread, a request id): the prefix is learnt from the file's
first timed lines as a *shape* (runs of digits, letters and punctuation), so continuation
lines of multi-line SQL are told apart from new entries. ``executemany`` is logged with
``args=[(…), (…)]``: one event whose ``rows`` is the number of parameter sets. The schema
editor logs DDL without timing as ``<sql>; (params None)``: kept as events with no duration.
Messages of other loggers in the same file are skipped as ``other message``, counted.

Fields found in the prefix: an ISO-like timestamp (naive ones are taken as UTC unless
``tz=`` names the zone), ``pid``/``process``, ``thread``, and ``request_id``/``request-id``/
``rid`` or a UUID.

``prefix=`` takes the Python logging format the client configured, e.g.
``[%(asctime)s] [%(process)d] [%(request_id)s] %(levelname)s %(name)s: %(message)s``
(``{asctime}`` style too): each field is then read from its place — the request id of a
logging filter at any position, whatever its values look like. Without it, id-like tokens of
the prefix that are not a known field are kept in ``prefix_tokens``; when they match the
request ids of an access log in the same client folder, :func:`auditkit.client.load_client`
takes them as the statements' request ids (so statements join requests and their endpoints).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import ConfigError
from auditkit.lazy_re import compile_later
from auditkit.loaders._time import localize, naive_warning, parse_series
from auditkit.loaders.base import BlockLoader, BlockParser, BlockResult, add_fingerprints
from auditkit.loaders.registry import register
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block

__all__ = ["DjangoLogLoader"]

# "(0.002) " — the duration Django writes first in the message (always "%.3f", so dotted)
_TIMED_LINE = compile_later(r"^(?P<prefix>.{0,300}?)\((?P<dur>\d+\.\d+)\) (?=\S|$)", re.M)
_SCHEMA_TAIL = compile_later(r"; \(params (?P<params>.*)\)\s*$", re.S)
_SQL_START = compile_later(
    r"\b(?:CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|SELECT|WITH|TRUNCATE|COMMENT|SET|GRANT|REVOKE"
    r"|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|DECLARE|CLOSE|FETCH|VACUUM|ANALYZE|LOCK)\b"
)
_ARGS = "; args="
_ALIAS = "; alias="

#: an ISO-like ``%(asctime)s`` (``2024-05-06 10:00:00,123``), or a ``datefmt`` with slashes:
#: ``2024/05/06 10:00:00``, ``06/05/2024 10:00:00`` (month first, as pandas reads it) and
#: Django's own ``06/May/2024 10:00:00`` (its server log style)
_TS = compile_later(
    r"((?:\d{4}[-/]\d{2}[-/]\d{2}|\d{2}/\d{2}/\d{4}|\d{2}/[A-Z][a-z]{2}/\d{4})[ T:]"
    r"\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?)"
)
_MONTH_DATE_COLON = compile_later(r"^(\d{2}/[A-Z][a-z]{2}/\d{4}):")
_PID = compile_later(r"(?i)\b(?:pid|process)[=: ]\s*(\d+)")
_THREAD = compile_later(r"(?i)\b(?:thread|tid)[=: ]\s*([\w.:-]+)")
_REQID = compile_later(
    r"(?i)(?:\b(?:request[_-]?id|req[_-]?id|rid)[=: ]\s*([\w.:-]+))"
    r"|\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
)
_RUN = compile_later(r"\w+|\s+|.")
#: id-like tokens of a prefix (kept when no field names a request id)
_ID_TOKEN = compile_later(r"(?<![\w.:-])[A-Za-z0-9][A-Za-z0-9_.:-]{5,}(?![\w.:-])")
#: ``%(name)s`` / ``%(name)-8s`` / ``%(process)d`` / ``{name}`` fields of a logging format
_FMT_FIELD = compile_later(
    r"%\((?P<p>\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc]|\{(?P<b>\w+)(?:[:!][^}]*)?\}"
)
#: logging fields → (query-event column, regex for the value)
_FMT_COLUMNS: dict[str, tuple[str, str]] = {
    "asctime": ("ts", r".+?"),
    "process": ("pid", r"\d+"),
    "thread": ("thread", r"\d+"),
    "threadName": ("thread", r"\S+?"),
    "levelname": ("", r"[A-Z]+"),
    "levelno": ("", r"\d+"),
    "name": ("", r"\S+?"),
}
_REQUEST_ID_FIELDS = {
    "request_id", "requestid", "req_id", "rid", "correlation_id", "correlationid",
    "x_request_id", "request", "trace_id", "traceid",
}  # fmt: skip


def logging_prefix_regex(fmt: str, fields: int | None = None) -> str:
    """A regex for the prefix a Python logging ``fmt`` writes before ``%(message)s``.

    Named groups ``ts``, ``pid``, ``thread`` and ``request_id`` hold the fields auditkit uses;
    other fields match lazily. ``fields`` stops after that many fields (a record's start). Raises :class:`~auditkit.errors.ConfigError` when ``fmt`` has
    no ``%(message)s`` / ``{message}``.
    """
    out: list[str] = []
    pos = 0
    used: set[str] = set()
    for i, m in enumerate(_FMT_FIELD.finditer(fmt)):
        out.append(_fmt_literal(fmt[pos : m.start()]))
        pos = m.end()
        field = m.group("p") or m.group("b")
        if field == "message" or (fields is not None and i >= fields):
            return "".join(out)
        column, pattern = _FMT_COLUMNS.get(field, ("", r".*?"))
        if field.lower() in _REQUEST_ID_FIELDS:
            column, pattern = "request_id", r"\S*?"
        if column and column not in used:
            used.add(column)
            out.append(f"(?P<{column}>{pattern})")
        else:
            out.append(f"(?:{pattern})")
    raise ConfigError(
        f"logging format {fmt!r} has no %(message)s",
        hint="give the formatter's whole format string, e.g. '%(asctime)s %(levelname)s %(message)s'",
    )


def _fmt_literal(text: str) -> str:
    return "".join(r"\s+" if t.isspace() else re.escape(t) for t in re.findall(r"\s+|\S", text))


def prefix_tokens(prefix: str) -> list[str]:
    """Regex tokens for a prefix: word runs become ``\\w+``, spaces ``\\s+``, the rest literal."""
    out = []
    for tok in _RUN.findall(prefix):
        if tok.isspace():
            out.append(r"\s+")
        elif tok[0].isalnum() or tok[0] == "_":
            out.append(r"\w+")
        else:
            out.append(re.escape(tok))
    return out


def boundary_shape(prefixes: list[str]) -> str:
    """The start of a log record, learnt from the prefixes of timed lines.

    The shared leading tokens of every prefix, cut after the second field (the third when the
    first two hold no punctuation): a timestamp or ``LEVEL date`` is what tells a new record
    from a continuation line of multi-line SQL, while later fields (logger names, thread
    names) vary from record to record.
    """
    token_lists = [prefix_tokens(p) for p in prefixes if p]
    if not token_lists:
        return ""
    common: list[str] = []
    for column in zip(*token_lists, strict=False):
        if any(t != column[0] for t in column):
            break
        common.append(column[0])
    shape: list[str] = []
    fields = 0
    for tok in common:
        if tok == r"\s+":
            fields += 1
            punctuated = any(t not in (r"\w+", r"\s+") for t in shape)
            if fields >= 3 or (fields >= 2 and punctuated):
                break
        shape.append(tok)
    while shape and shape[-1] == r"\s+":
        shape.pop()
    return "".join(shape)


class DjangoLogParser(BlockParser):
    """Parses blocks of a Django query log whose record start (``shape``) was learnt up front.

    ``shape`` is a regex for the start of a record's prefix (see :func:`boundary_shape`); an
    empty shape means bare messages, where a record starts with ``(0.002) ``.
    """

    def __init__(self, shape: str, tz: str | None, fields: str = "") -> None:
        self.shape = shape
        self.tz = tz
        self.fields = fields
        start = shape if shape else r"\(\d+\.\d+\) "
        self._start = re.compile(f"^(?:{start})", re.M)
        self.boundary = re.compile(f"(?:{start})".encode())
        #: the prefix as a logging format gave it (prefix=): fields by place
        self._fields_re = re.compile(fields + r"\s*$", re.S) if fields else None

    def __getstate__(self) -> dict[str, Any]:
        return {"shape": self.shape, "tz": self.tz, "fields": self.fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["shape"], state["tz"], state.get("fields", ""))  # type: ignore[misc]

    def parse(self, block: Block) -> BlockResult:
        text, bad = block.text()
        report = ParseReport(block.source, DjangoLogLoader.name)
        report.lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        report.bytes = len(block.data)
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")

        rows: dict[str, list[Any]] = {
            k: []
            for k in (
                "ts_text",
                "duration_ms",
                "sql",
                "params",
                "database",
                "pid",
                "thread",
                "request_id",
                "prefix_tokens",
                "rows",
                "source_line",
            )
        }
        starts = [m.start() for m in self._start.finditer(text)]
        # text before the first record start: orphan continuation lines (file starts mid-entry)
        line_of = _LineIndex(text, block.first_line)
        if not starts or starts[0] > 0:
            head_end = starts[0] if starts else len(text)
            orphan = text[:head_end]
            if orphan.strip():
                n = orphan.count("\n") or 1
                report.skip(block.first_line, "continuation without an entry", orphan, count=1)
                del n
        bounds = [*starts, len(text)]
        known: dict[str, _PrefixFields] = {}  # this block's prefixes, read once each
        for i in range(len(starts)):
            record = text[bounds[i] : bounds[i + 1]].rstrip("\n")
            line_no = line_of(bounds[i])
            if "\x00" in record:
                report.skip(line_no, "binary data", record)
                continue
            parsed = self._parse_record(record, known)
            if parsed is None:
                report.skip(line_no, "other message", record)
                continue
            if isinstance(parsed, str):  # the only string _parse_record returns is "truncated"
                report.skip(line_no, "truncated entry", record)
                continue
            report.ok()
            for key, value in parsed.items():
                rows[key].append(value)
            rows["source_line"].append(line_no)
        frame = self._frame(rows, block.source, report)
        return BlockResult({"query_events": add_fingerprints(frame)}, report)

    def _parse_record(
        self, record: str, known: dict[str, _PrefixFields] | None = None
    ) -> dict[str, Any] | str | None:
        first_line = record.split("\n", 1)[0]
        m = _TIMED_LINE.match(first_line)
        if m and not _SCHEMA_TAIL.search(record[m.end() :].split(_ARGS, 1)[0]):
            prefix = m.group("prefix")
            body = record[m.end() :]
            duration_ms = float(m.group("dur")) * 1000.0
            alias = None
            a = body.rfind(_ALIAS)
            if a >= 0 and "\n" not in body[a + len(_ALIAS) :].strip():
                alias = body[a + len(_ALIAS) :].strip()
                body = body[:a]
            g = _args_split(body)
            if g < 0:
                return "truncated"
            sql, params = body[:g], body[g + len(_ARGS) :].strip()
            rows = _executemany_count(params)
            return self._fields(prefix, sql, params, duration_ms, alias, rows, known)
        # the schema editor: "<DDL>; (params None)", untimed
        schema = _SCHEMA_TAIL.search(record)
        if not schema:
            return None
        head = record[: schema.start()]
        shape_match = re.match(self.shape, head) if self.shape else None
        skip = shape_match.end() if shape_match else 0
        sql_at = _SQL_START.search(head, skip)
        if not sql_at:
            return None
        return self._fields(
            head[: sql_at.start()],
            head[sql_at.start() :],
            schema.group("params"),
            None,
            None,
            None,
            known,
        )

    def _fields(
        self,
        prefix: str,
        sql: str,
        params: str | None,
        duration_ms: float | None,
        alias: str | None,
        rows: int | None,
        known: dict[str, _PrefixFields] | None = None,
    ) -> dict[str, Any]:
        """A record's fields. ``known`` remembers what prefixes that differ only in a leading
        timestamp hold (pid, thread, request id, id tokens): a request's statements share
        them, and the searches cost more than the rest of the record."""
        named = self._fields_re.match(prefix) if self._fields_re else None
        if named is not None:
            got = named.groupdict()
            ts_raw = got.get("ts")
            ts = _TS.search(ts_raw) if ts_raw else None
            pid_text, thread, request_id = got.get("pid"), got.get("thread"), got.get("request_id")
            pid_value = int(pid_text) if pid_text and pid_text.isdigit() else None
            tokens = None
        else:
            ts = _TS.search(prefix)
            key = _rest_of_prefix(prefix, ts) if known is not None else None
            found = known.get(key) if known is not None and key is not None else None
            if found is None:
                found = _prefix_fields(prefix, ts)
                if known is not None and key is not None:
                    known[key] = found
            pid_value, thread, request_id, tokens = found
        ts_text = ts.group(1).replace(",", ".") if ts else None
        if ts_text is not None and "/" in ts_text:
            ts_text = _MONTH_DATE_COLON.sub(r"\1 ", ts_text)
        return {
            "ts_text": ts_text,
            "duration_ms": duration_ms,
            "sql": sql.strip(),
            "params": params,
            "database": alias,
            "pid": pid_value,
            "thread": thread,
            "request_id": request_id or None,
            "prefix_tokens": tokens,
            "rows": rows,
        }

    def _frame(
        self, rows: dict[str, list[Any]], source: str, report: ParseReport | None = None
    ) -> pd.DataFrame:
        ts_text = pd.Series(rows.pop("ts_text"), dtype="object")
        df = pd.DataFrame(rows)
        try:
            ts = pd.to_datetime(ts_text, errors="coerce", format="mixed")
        except (OverflowError, ValueError):  # mixed zones or out-of-range years
            ts = parse_series(ts_text, format="mixed")
        if len(ts) and getattr(ts.dt, "tz", None) is None:
            if report is not None and ts.notna().any():
                report.warn(naive_warning(self.tz))
            ts = localize(ts, self.tz)
        df.insert(0, "ts", ts)
        df["source_file"] = source
        df["source_format"] = DjangoLogLoader.name
        return df


#: what a prefix says besides its timestamp: pid, thread, request id, id tokens
_PrefixFields = tuple[int | None, str | None, str | None, str | None]


def _prefix_fields(prefix: str, ts: re.Match[str] | None) -> _PrefixFields:
    pid = _PID.search(prefix)
    th = _THREAD.search(prefix)
    req = _REQID.search(prefix)
    pid_value = int(pid.group(1)) if pid else None
    thread = th.group(1) if th else None
    request_id = (req.group(1) or req.group(2)) if req else None
    tokens = None if request_id else _id_tokens(prefix, ts)
    return pid_value, thread, request_id, tokens


def _rest_of_prefix(prefix: str, ts: re.Match[str] | None) -> str | None:
    """The prefix without its timestamp when :func:`_prefix_fields` cannot depend on the
    timestamp's text: it leads the prefix and a space follows it (no field's search can then
    start or end inside it). None otherwise: such a prefix is read in full."""
    if ts is None or prefix[: ts.start()].strip() or not prefix[ts.end() : ts.end() + 1].isspace():
        return None
    return prefix[ts.end() :]


def _id_tokens(prefix: str, ts: re.Match[str] | None) -> str | None:
    """Id-like tokens of a prefix outside its timestamp, space-separated (by position)."""
    if ts is not None:
        prefix = prefix[: ts.start()] + " " + prefix[ts.end() :]
    found = [t for t in _ID_TOKEN.findall(prefix) if any(c.isdigit() for c in t)]
    return " ".join(found) or None


def _args_split(body: str) -> int:
    """Offset of the ``; args=`` that ends the SQL: the first one outside a string literal.

    Literals may contain ``; args=`` themselves (and the params repr repeats them), so the
    split is the first occurrence where the SQL before it has balanced single quotes.
    """
    pos = body.find(_ARGS)
    while pos >= 0:
        if body.count("'", 0, pos) % 2 == 0:
            return pos
        pos = body.find(_ARGS, pos + 1)
    return -1


def _executemany_count(params: str) -> int | None:
    """``args=[(1,), (2,)]`` → 2 (executemany); anything else → None."""
    p = params.lstrip()
    if p.startswith("[(") or p.startswith("(("):
        depth, count = 0, 0
        for ch in p[1:]:
            if ch in "([{":
                if depth == 0:
                    count += 1
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth < 0:
                    break
        return count or None
    return None


class _LineIndex:
    """Offset → line number in a block, for increasing offsets (amortised O(1))."""

    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self.pos = 0
        self.line = first_line

    def __call__(self, offset: int) -> int:
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


@register
class DjangoLogLoader(BlockLoader):
    """Django ``django.db.backends`` DEBUG log, with or without a logging prefix."""

    name = "django_log"
    frame = "query_events"
    description = "Django django.db.backends query log"
    expected = (
        "lines like '(0.002) SELECT …; args=(…); alias=default', optionally behind a logging prefix"
    )

    def sniff(self, head: str, path: Path) -> float:
        timed = _TIMED_LINE.findall(head)
        if not timed:
            return 0.0
        with_args = head.count(_ARGS)
        if with_args == 0:
            return 0.2
        return min(1.0, 0.6 + 0.1 * min(with_args, 4))

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        prefixes = [m.group("prefix") for m in _TIMED_LINE.finditer(head)]
        # a timed match inside multi-line SQL would be noise: keep the most common shapes
        counts = Counter("".join(prefix_tokens(p)[:3]) for p in prefixes)
        if counts:
            top = counts.most_common(1)[0][0]
            prefixes = [p for p in prefixes if "".join(prefix_tokens(p)[:3]) == top]
        fmt = options.get("prefix")
        fields = logging_prefix_regex(str(fmt)) if fmt else ""
        if fields:  # a record starts with the format's first two fields (and what follows them)
            start = re.sub(r"\(\?P<\w+>", "(?:", logging_prefix_regex(str(fmt), 2))
            shape = options.get("prefix_regex") or start
        else:
            shape = options.get("prefix_regex") or boundary_shape(prefixes)
        return DjangoLogParser(shape, options.get("tz"), fields)
