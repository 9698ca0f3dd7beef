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
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders.base import BlockLoader, BlockParser, BlockResult, add_fingerprints
from auditkit.loaders.registry import register
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block

__all__ = ["DjangoLogLoader"]

# "(0.002) " — the duration Django writes first in the message
_TIMED = re.compile(r"\((\d+(?:\.\d+)?)\) ")
_TIMED_LINE = re.compile(r"^(?P<prefix>.{0,300}?)\((?P<dur>\d+(?:\.\d+)?)\) (?=\S|$)", re.M)
_SCHEMA_TAIL = re.compile(r"; \(params (?P<params>.*)\)\s*$", re.S)
_ARGS = "; args="
_ALIAS = "; alias="

_TS = re.compile(
    r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?)"
)
_PID = re.compile(r"(?i)\b(?:pid|process)[=: ]\s*(\d+)")
_THREAD = re.compile(r"(?i)\b(?:thread|tid)[=: ]\s*([\w.:-]+)")
_REQID = re.compile(
    r"(?i)(?:\b(?:request[_-]?id|req[_-]?id|rid)[=: ]\s*([\w.:-]+))"
    r"|\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
)
_RUN = re.compile(r"\d+|[A-Za-z]+|\s+|.")


def prefix_shape(prefix: str) -> str:
    """A regex for prefixes like ``prefix``: digit runs, letter runs, spaces generalised.

    ``[2024-04-04 17:46:19,115] DEBUG: `` → ``\\[\\d+-\\d+-\\d+\\s+\\d+:…\\]\\s+[A-Za-z]+:\\s+``
    """
    out = []
    for tok in _RUN.findall(prefix):
        if tok.isdigit():
            out.append(r"\d+")
        elif tok.isalpha():
            out.append(r"[A-Za-z]+")
        elif tok.isspace():
            out.append(r"\s+")
        else:
            out.append(re.escape(tok))
    return "".join(out)


class DjangoLogParser(BlockParser):
    """Parses blocks of a Django query log whose prefix shapes were learnt from the head."""

    def __init__(self, shapes: list[str], tz: str | None) -> None:
        self.shapes = shapes
        self.tz = tz
        alternatives = "|".join(f"(?:{s})" for s in shapes) if shapes else ""
        if alternatives and "" not in shapes:
            start = f"(?:{alternatives})"
        else:
            # bare messages: a record starts with "(0.002) " or is a schema-editor line
            start = r"(?:\(\d+(?:\.\d+)?\) )" + (f"|{alternatives}" if alternatives else "")
        self._start = re.compile(f"^(?:{start})", re.M)
        self.boundary = re.compile(f"(?:{start})".encode())

    def __getstate__(self) -> dict[str, Any]:
        return {"shapes": self.shapes, "tz": self.tz}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["shapes"], state["tz"])  # type: ignore[misc]

    def parse(self, block: Block) -> BlockResult:
        text, bad = block.text()
        report = ParseReport(block.source, DjangoLogLoader.name)
        report.lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        report.bytes = len(block.data)
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")

        rows: dict[str, list[Any]] = {k: [] for k in (
            "ts_text", "duration_ms", "sql", "params", "database", "pid", "thread", "request_id", "rows", "source_line"
        )}
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
        for i in range(len(starts)):
            record = text[bounds[i] : bounds[i + 1]].rstrip("\n")
            line_no = line_of(bounds[i])
            if "\x00" in record:
                report.skip(line_no, "binary data", record)
                continue
            parsed = self._parse_record(record)
            if parsed is None:
                report.skip(line_no, "other message", record)
                continue
            if parsed == "truncated":
                report.skip(line_no, "truncated entry", record)
                continue
            report.ok()
            for key, value in parsed.items():
                rows[key].append(value)
            rows["source_line"].append(line_no)
        frame = self._frame(rows, block.source)
        return BlockResult({"query_events": add_fingerprints(frame)}, report)

    def _parse_record(self, record: str) -> dict[str, Any] | str | None:
        m = _TIMED_LINE.match(record)
        prefix = ""
        if m and (not self.shapes or _matches_shape(m.group("prefix"), self.shapes)):
            prefix = m.group("prefix")
            body = record[m.end() :]
            duration_ms: float | None = float(m.group("dur")) * 1000.0
        else:
            prefix = self._prefix_of(record)
            body = record[len(prefix) :]
            duration_ms = None
            schema = _SCHEMA_TAIL.search(body)
            if not schema:
                return None
            sql = body[: schema.start()]
            return self._fields(prefix, sql, schema.group("params"), None, None, None)
        alias = None
        a = body.rfind(_ALIAS)
        if a >= 0 and "\n" not in body[a + len(_ALIAS) :].strip():
            alias = body[a + len(_ALIAS) :].strip()
            body = body[:a]
        g = body.rfind(_ARGS)
        if g < 0:
            return "truncated"
        sql, params = body[:g], body[g + len(_ARGS) :].strip()
        rows = _executemany_count(params)
        return self._fields(prefix, sql, params, duration_ms, alias, rows)

    def _prefix_of(self, record: str) -> str:
        for shape in self.shapes:
            m = re.match(shape, record)
            if m:
                return m.group(0)
        return ""

    @staticmethod
    def _fields(
        prefix: str, sql: str, params: str | None, duration_ms: float | None, alias: str | None, rows: int | None
    ) -> dict[str, Any]:
        ts = _TS.search(prefix)
        pid = _PID.search(prefix)
        thread = _THREAD.search(prefix)
        req = _REQID.search(prefix)
        return {
            "ts_text": ts.group(1).replace(",", ".") if ts else None,
            "duration_ms": duration_ms,
            "sql": sql.strip(),
            "params": params,
            "database": alias,
            "pid": int(pid.group(1)) if pid else None,
            "thread": thread.group(1) if thread else None,
            "request_id": (req.group(1) or req.group(2)) if req else None,
            "rows": rows,
        }

    def _frame(self, rows: dict[str, list[Any]], source: str) -> pd.DataFrame:
        ts_text = pd.Series(rows.pop("ts_text"), dtype="object")
        df = pd.DataFrame(rows)
        ts = pd.to_datetime(ts_text, errors="coerce", format="mixed")
        if len(ts) and getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize(self.tz or "UTC", ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        df.insert(0, "ts", ts)
        df["source_file"] = source
        df["source_format"] = DjangoLogLoader.name
        return df


def _matches_shape(prefix: str, shapes: list[str]) -> bool:
    return any(re.fullmatch(s, prefix) for s in shapes)


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
    expected = "lines like '(0.002) SELECT …; args=(…); alias=default', optionally behind a logging prefix"

    def sniff(self, head: str, path: Path) -> float:
        timed = _TIMED_LINE.findall(head)
        if not timed:
            return 0.0
        with_args = head.count(_ARGS)
        if with_args == 0:
            return 0.2
        return min(1.0, 0.6 + 0.1 * min(with_args, 4))

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        shapes: Counter[str] = Counter()
        for m in _TIMED_LINE.finditer(head):
            tail = head[m.end() : m.end() + 4000]
            if _ARGS in tail.split("\n(", 1)[0] or _ARGS in tail:
                shapes[prefix_shape(m.group("prefix"))] += 1
        # keep shapes seen more than once (or the only one); a stray match inside SQL is noise
        common = [s for s, n in shapes.most_common(8) if n > 1 or len(shapes) == 1]
        # a shape that extends another one is that prefix followed by SQL ("(255) " in DDL)
        common = [s for s in common if not any(o != s and s.startswith(o) for o in common)]
        return DjangoLogParser(common, options.get("tz"))
