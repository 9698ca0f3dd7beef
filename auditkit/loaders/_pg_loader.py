"""What the PostgreSQL log loaders share (stderr, csvlog and jsonlog in ``postgres_log``,
syslog in ``postgres_syslog``): the prefix fields they capture, the severity words that
continue an entry, the syslog line, the base of their block parsers and of their loaders, and
the notes and errors about a detected ``log_line_prefix``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditkit.errors import NothingParsedError
from auditkit.lazy_re import compile_later
from auditkit.loaders._pg_events import bind_samples, finish_pending
from auditkit.loaders._pg_frames import complete
from auditkit.loaders._pg_prefix import SECONDARY_SEVERITIES, PrefixDetection
from auditkit.loaders.base import BlockLoader, BlockParser, block_executor, finalise, nothing_parsed
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import Block

__all__ = [
    "CAPTURE",
    "SECONDARY_ALT",
    "SEVERITY_BYTES",
    "SYSLOG_LINE",
    "PgParser",
    "PostgresLoader",
    "block_report",
    "detection_notes",
    "junk_reason",
    "looks_binary",
    "prefix_error",
]

#: prefix fields the loaders keep (others are matched but not captured)
CAPTURE = (
    "ts",
    "tz",
    "epoch",
    "pid",
    "user",
    "db",
    "app",
    "client",
    "session",
    "query_id",
    "sqlstate",
)
SECONDARY_ALT = "|".join(sorted(SECONDARY_SEVERITIES))
#: a severity word as bytes, for block boundaries (localised words are non-ASCII bytes)
SEVERITY_BYTES = rb"(?:[A-Z]{2,}[1-5]?|[\x80-\xff][^\s:]*)"
_CONTROL = compile_later(r"[\x00-\x08\x0e-\x1f]")


SYSLOG_LINE = compile_later(
    r"^(?P<sts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"(?: (?P<host>\S+))?? (?P<ident>[^\s\[\]:]+)\[(?P<spid>[^\]\s]+)\]:? "
    r"(?:\[(?P<color>[A-Z][A-Z0-9_]*)\] )?(?:\[(?P<seq>\d+)-(?P<part>\d+)\] ?)?(?P<rest>.*)$"
)


def looks_binary(text: str) -> bool:
    """Whether a line that reads as no entry is binary data: a NUL, or control characters."""
    return "\x00" in text or len(_CONTROL.findall(text[:200])) > 2


def junk_reason(text: str, last_unterminated: bool) -> str:
    """Why a line that starts no entry was skipped: binary, mis-encoded, truncated, a stray continuation, or noise."""
    if looks_binary(text):
        return "binary data"
    if "\ufffd" in text:
        return "invalid UTF-8"
    if last_unterminated:
        return "truncated entry (file ends mid-line)"
    if text[:1] in ("\t", " "):
        return "continuation line without an entry"
    return "line does not match the log_line_prefix"


def block_report(block: Block, fmt: str, text: str) -> ParseReport:
    """A fresh parse report for ``block`` with its byte and physical-line counts."""
    report = ParseReport(block.source, fmt)
    report.bytes = len(block.data)
    report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    return report


class PgParser(BlockParser):
    """What the PostgreSQL block parsers share: in a digest they leave ``sql`` unbound.

    Only the constructor settings named in ``_settings`` (and the digest flag) travel to
    worker processes; compiled patterns are rebuilt there by ``__init__``.
    """

    #: constructor keyword arguments, each stored under the same attribute name
    _settings: tuple[str, ...] = ()
    #: set by every constructor: the file, its format, and notes for its report (detection)
    source: str
    fmt: str
    notes: Sequence[str] = ()

    def __getstate__(self) -> dict[str, Any]:
        """The settings, not the compiled patterns (they pickle slowly, or not at all)."""
        state = {k: getattr(self, k) for k in self._settings}
        state["digest"] = self.digest
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the parser (and its compiled patterns) from its settings."""
        state = dict(state)
        digest = state.pop("digest", False)
        self.__init__(**state)  # type: ignore[misc]
        self.digest = digest

    def finish(self, pending: list[Any], report: ParseReport) -> dict[str, pd.DataFrame]:
        """Resolve statements and durations that met across blocks; add the notes (how the
        prefix, or a syslog year, was worked out)."""
        for note in self.notes:
            report.warn(note)
        return finish_pending(pending, self.source, self.fmt, report)

    def bind_samples(self, sql: list[str], params: list[str]) -> list[str]:
        """Bind the ``DETAIL: parameters`` of the samples a profile kept (digest frames)."""
        return bind_samples(sql, params)


def detection_notes(det: PrefixDetection, given: bool) -> list[str]:
    """Warnings about a detected prefix: that it was inferred, and which useful escapes it lacks."""
    notes = []
    if not given and det.prefix is not None and det.inferred:
        notes.append(
            f"log_line_prefix inferred as {det.prefix!r} from {det.matched} of {det.total} lines; "
            "pass prefix= to set it"
        )
    missing = det.missing()
    if missing:
        notes.append(
            f"log_line_prefix {det.prefix!r} has no {', '.join(missing)}: those columns stay empty"
            + (
                "; statements logged apart from their duration cannot be paired"
                if "the process id (%p)" in missing
                else ""
            )
        )
    return notes


def prefix_error(loader: BlockLoader, path: Path, det: PrefixDetection) -> NothingParsedError:
    """The error for a log whose prefix could not be worked out, saying what was seen."""
    return NothingParsedError(
        "could not work out the log_line_prefix",
        path=path,
        expected=loader.expected,
        hint=det.describe_failure()
        + "; pass prefix= with the server's log_line_prefix (SHOW log_line_prefix)",
    )


class PostgresLoader(BlockLoader):
    """What the four PostgreSQL loaders share: the frames, and a merge that stays cheap."""

    frame: ClassVar[str] = "query_events"
    dialect = "postgres"

    def load(
        self, path: str | Path, executor: Any = None, workers: int | None = None, **options: Any
    ) -> LoadResult:
        """Read ``path`` into ``query_events`` and ``server_events`` plus a parse report.

        Options: ``prefix`` (stderr, syslog, Cloud SQL: the server's log_line_prefix),
        ``tz`` (IANA zone for timestamps without one), ``year`` and ``ident`` (syslog),
        ``native`` (stderr, in a digest: False keeps the reference parser for every block).
        ``executor`` parses blocks on worker processes or a Dask cluster; without one, a large
        file is parsed on every core (``workers`` to say how many).

        As :meth:`BlockLoader.load`, except that block frames arrive without their all-null
        columns (less to ship from workers) and are completed here.
        """
        start = time.perf_counter()
        source = str(path)
        report = ParseReport(source, self.name)
        collected: dict[str, list[pd.DataFrame]] = {}
        with block_executor(path, executor, workers) as ex:
            for res in self.run(path, ex, **options):
                report.merge(res.report)
                for name, df in res.frames.items():
                    if len(df):
                        collected.setdefault(name, []).append(complete(df, name, source, self.name))
        for name in ("query_events", "server_events"):
            collected.setdefault(name, [])
        frames = finalise(collected, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, frames, report, primary=self.frame)
