"""PostgreSQL server logs sent through syslog, and Heroku Postgres through logplex.

With or without ``syslog_sequence_numbers`` (``[12-1]``, continued by ``[12-2]``…, TABs
escaped as ``#011``), RFC 3164 or ISO timestamps; Heroku's lines look like
``app[postgres.1234]: [GREEN] [15-1]  sql_error_code = 00000 LOG: …``, where ``[GREEN]`` names
the database. Classic syslog timestamps have no year: it comes from ``year=`` or the file's
modification time, and the report says which. The frames are those of
:mod:`auditkit.loaders.postgres_log`; what the PostgreSQL loaders share is in
:mod:`auditkit.loaders._pg_loader`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.loaders._pg_events import (
    MESSAGE_FRAGMENT,
    Entries,
    Stats,
    attach_secondaries,
    block_result,
    to_utc,
)
from auditkit.loaders._pg_loader import (
    CAPTURE,
    SECONDARY_ALT,
    SYSLOG_LINE,
    PgParser,
    PostgresLoader,
    block_report,
    detection_notes,
    junk_reason,
    prefix_error,
)
from auditkit.loaders._pg_prefix import (
    SECONDARY_SEVERITIES,
    SEVERITY,
    detect_prefix,
    prefix_pattern,
    severity_lines,
)
from auditkit.loaders.base import BlockParser, BlockResult
from auditkit.loaders.registry import register
from auditkit.loaders.stream import Block

__all__ = ["PostgresSyslogLoader", "SyslogParser"]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _is_postgres(ident: str, spid: str, idents: Sequence[str]) -> bool:
    """Whether a syslog line comes from PostgreSQL (its ident, or Heroku's ``app[postgres.N]``)."""
    return ident in idents or "postgres" in ident.lower() or spid.startswith("postgres.")


class SyslogParser(PgParser):
    """Parses blocks of PostgreSQL syslog lines (RFC 3164 / ISO stamps, Heroku logplex)."""

    _settings = ("prefix", "year", "tz", "idents", "source", "fmt", "notes", "cut_month")

    def __init__(
        self, prefix: str, year: int, tz: str | None, idents: Sequence[str], source: str,
        fmt: str = "postgres_syslog", notes: Sequence[str] = (), cut_month: int = 12,
    ) -> None:  # fmt: skip
        """A syslog parser for one prefix; ``year`` and ``cut_month`` place year-less stamps."""
        self.prefix = prefix
        self.year = year
        self.tz = tz
        self.idents = list(idents)
        self.source = source
        self.fmt = fmt
        self.notes = list(notes)
        self.cut_month = cut_month
        self._rx = re.compile(
            rf"(?:{prefix_pattern(prefix, capture=CAPTURE)})(?P<sev>{SEVERITY}): {{1,2}}{MESSAGE_FRAGMENT}(?P<msg>.*)"
        )
        self.boundary = re.compile(
            rb"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT)"
            rb"(?![^\n]*?\] (?:\[\d+-(?!1\])\d+\]|#011|\t))"
            rb"(?![^\n]*? (?:" + SECONDARY_ALT.encode() + rb"):  )"
        )

    def parse(self, block: Block) -> BlockResult:
        """Parse one block of syslog lines, stitching continuation parts to their entry."""
        text, bad = block.text()
        report = block_report(block, self.fmt, text)
        stats = Stats(bad_utf8=list(bad))
        fields = ("sts", "color", *CAPTURE, "sev", "dur", "kind", "name", "msg")
        cols: dict[str, list[str]] = {k: [] for k in fields}
        lines_out: list[int] = []
        parts: dict[int, list[str]] = {}
        by_seq: dict[tuple[str, str], int] = {}
        last_of_pid: dict[str, int] = {}
        raw_lines = text.split("\n")
        unterminated = bool(text) and not text.endswith("\n")
        for k, line in enumerate(raw_lines):
            if not line.strip():
                continue
            line_no = block.first_line + k
            m = SYSLOG_LINE.match(line)
            if not m:
                report.skip(
                    line_no,
                    junk_reason(line, unterminated and k == len(raw_lines) - 1).replace(
                        "line does not match the log_line_prefix", "not a syslog line"
                    ),
                    line,
                )
                continue
            ident, spid = m.group("ident"), m.group("spid")
            if not _is_postgres(ident, spid, self.idents):
                report.skip(line_no, f"not a PostgreSQL message ({ident})", line)
                continue
            pid = spid.rsplit(".", 1)[-1] if "." in spid else spid
            rest = m.group("rest")
            seq, part = m.group("seq"), m.group("part")
            e = self._rx.match(rest)
            # a later part is a raw continuation line, unless it carries its own prefix and
            # severity (Heroku numbers the DETAIL / STATEMENT lines of a report as parts)
            is_cont = e is None and (
                (part is not None and part != "1")
                or (seq is None and rest.startswith(("#011", "\t", " ")))
            )
            if is_cont:
                target = by_seq.get((pid, seq or "")) if seq is not None else last_of_pid.get(pid)
                if target is None:
                    report.skip(line_no, "continuation line without an entry", line)
                    continue
                piece = rest.replace("#011", "\t")
                parts.setdefault(target, []).append(piece[1:] if piece.startswith("\t") else piece)
                continue
            if not e:
                report.skip(line_no, "line does not match the log_line_prefix", line)
                stats.unprefixed += 1
                continue
            idx = len(lines_out)
            lines_out.append(line_no)
            gd = e.groupdict()
            cols["sts"].append(m.group("sts"))
            cols["color"].append(m.group("color") or "")
            for key in fields[2:]:
                if key == "pid":
                    cols[key].append(gd.get("pid") or pid)
                else:
                    cols[key].append(gd.get(key) or "")
            by_seq[(pid, seq or "")] = idx
            last_of_pid[pid] = idx
        msg = cols["msg"]
        for idx, pieces in parts.items():
            msg[idx] = msg[idx] + "\n" + "\n".join(pieces)
        stats.entries = len(lines_out)
        if any(cols["ts"]):
            ts = to_utc(cols["ts"], cols["tz"], self.tz, stats)
        else:
            ts = self._syslog_times(cols["sts"], stats)
        db = cols["db"] if any(cols["db"]) else cols["color"]
        entries = Entries(
            line=np.asarray(lines_out, dtype=np.int64), ts=ts, sev=cols["sev"], msg=msg,
            pid=cols["pid"], user=cols["user"], db=db, app=cols["app"], client=cols["client"],
            session=cols["session"], query_id=cols["query_id"], sqlstate=cols["sqlstate"],
            dur=cols["dur"], kind=cols["kind"], name=cols["name"],
        )  # fmt: skip
        if set(cols["sev"]) & SECONDARY_SEVERITIES:
            entries = attach_secondaries(entries, report)
        return block_result(entries, block.source, self.fmt, report, stats, digest=self.digest)

    def _syslog_times(self, stamps: list[str], stats: Stats) -> np.ndarray:
        """UTC timestamps from syslog stamps (ISO with offset, or RFC 3164 without a year)."""
        if not stamps:
            return np.empty(0, dtype="datetime64[ns]")
        if stamps[0][:1].isdigit():  # ISO 8601 with an offset (rsyslog high precision, logplex)
            parsed = pd.to_datetime(pd.Series(stamps), utc=True, errors="coerce", format="ISO8601")
            return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        texts = []
        for s in stamps:
            month = _MONTHS.get(s[:3], 1)
            year = self.year - 1 if month > self.cut_month else self.year
            texts.append(f"{year:04d}-{month:02d}-{int(s[4:6]):02d} {s[7:15]}")
        return to_utc(texts, None, self.tz, stats)


@register
class PostgresSyslogLoader(PostgresLoader):
    """PostgreSQL through syslog (with or without sequence numbers) and Heroku logplex."""

    name = "postgres_syslog"
    description = "PostgreSQL server log via syslog, or Heroku Postgres via logplex"
    expected = (
        "syslog lines like 'Feb 11 13:15:39 host postgres[10808]: [1-1] db=shop,user=app LOG:  "
        "duration: 1.2 ms  statement: …' or logplex lines 'app[postgres.4882]: [GREEN] [15-1] …'"
    )

    def sniff(self, head: str, path: Path) -> float:
        """Confident when most lines are syslog lines of a PostgreSQL process."""
        lines = [line for line in head.splitlines()[:400] if line.strip()]
        if not lines:
            return 0.0
        ours = 0
        with_sev = 0
        for line in lines:
            m = SYSLOG_LINE.match(line)
            if m and _is_postgres(m.group("ident"), m.group("spid"), ()):
                ours += 1
                rest = m.group("rest")
                if m.group("seq") or severity_lines([rest], indented=True)[0]:
                    with_sev += 1
        if not ours or not with_sev:
            return 0.0
        return min(0.97, 0.55 + 0.42 * ours / len(lines))

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """A syslog block parser: prefix detected from the messages, year from ``year=`` or the file."""
        notes: list[str] = []
        rests = []
        for line in head.splitlines():
            m = SYSLOG_LINE.match(line)
            if m and m.group("part") in (None, "1"):
                rests.append(m.group("rest"))
        prefix = options.get("prefix")
        if prefix is None:
            det = detect_prefix(rests, indented=True)
            if det.prefix is None:
                raise prefix_error(self, path, det)
            prefix = det.prefix
            notes += [n for n in detection_notes(det, False) if "timestamp" not in n]
        year = options.get("year")
        cut_month = 12
        if year is None:
            mtime = datetime.fromtimestamp(os.path.getmtime(path), tz=UTC)
            year, cut_month = mtime.year, mtime.month
            classic = any(re.match(r"^[A-Z][a-z]{2} ", r) for r in head.splitlines()[:50])
            if classic:
                notes.append(
                    f"syslog timestamps carry no year: assumed {year} from the file's modification "
                    f"time (months after {mtime.strftime('%B')} taken as {year - 1}); pass year= to set it"
                )
        idents = options.get("ident") or ()
        if isinstance(idents, str):
            idents = (idents,)
        return SyslogParser(
            prefix,
            int(year),
            options.get("tz"),
            tuple(idents),
            str(path),
            self.name,
            notes,
            cut_month,
        )
