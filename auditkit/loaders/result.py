"""What a loader returns: canonical frames plus a parse report.

The parse report is the loader's account of the file: how many records it read, how many it
parsed, and what it skipped, by reason, with line numbers. ``read == parsed + skipped`` always
holds (:meth:`ParseReport.check`); a test holds every loader to it. A *record* is the loader's
unit — a log entry with its continuation lines, a CSV row, a JSON object — and ``lines`` counts
physical lines alongside. Reports from blocks of one file merge with :meth:`ParseReport.merge`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd

from auditkit.errors import ParseReportError

__all__ = ["LoadResult", "ParseReport", "Skip"]

#: how many line numbers and excerpts a report keeps per skip reason
KEEP_PER_REASON = 20


@dataclass(slots=True)
class Skip:
    """One skipped record: where, why, and the first characters of it."""

    line: int
    reason: str
    excerpt: str = ""


@dataclass
class ParseReport:
    """A loader's account of one file. Counts are in records (see the module docstring)."""

    path: str
    format: str
    read: int = 0
    parsed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    samples: list[Skip] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def for_text(cls, path: str | object, fmt: str, text: str, bad_lines: list[int]) -> ParseReport:
        """A report for a file read whole as text: size, lines, and its invalid-UTF-8 lines."""
        report = cls(str(path), fmt)
        report.bytes = len(text.encode("utf-8", errors="replace"))
        report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        for line in bad_lines:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
        return report

    # -- recording -------------------------------------------------------------------------
    def ok(self, n: int = 1) -> None:
        """Count ``n`` records read and parsed."""
        self.read += n
        self.parsed += n

    def skip(self, line: int, reason: str, excerpt: str = "", count: int = 1) -> None:
        """Count ``count`` records read and skipped for ``reason``, starting at ``line``."""
        self.read += count
        self.skipped[reason] += count
        if sum(1 for s in self.samples if s.reason == reason) < KEEP_PER_REASON:
            self.samples.append(Skip(line, reason, excerpt[:160]))

    def warn(self, message: str) -> None:
        """Record a warning once (e.g. 'non-English server messages')."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- combining ---------------------------------------------------------------------------
    def merge(self, other: ParseReport) -> ParseReport:
        """Add ``other`` (a later block of the same file) into this report and return it."""
        self.read += other.read
        self.parsed += other.parsed
        self.skipped.update(other.skipped)
        for s in other.samples:
            if sum(1 for x in self.samples if x.reason == s.reason) < KEEP_PER_REASON:
                self.samples.append(s)
        self.events.update(other.events)
        for w in other.warnings:
            self.warn(w)
        self.lines += other.lines
        self.bytes += other.bytes
        return self

    # -- reading -----------------------------------------------------------------------------
    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def check(self) -> None:
        """Raise :class:`~auditkit.errors.ParseReportError` unless read == parsed + skipped.

        A real check, not an ``assert``: ``python -O`` must not let a report that loses
        records through.
        """
        if self.read != self.parsed + self.skipped_total or min(self.read, self.parsed) < 0:
            raise ParseReportError(
                f"{self.path}: parse report does not add up: read {self.read} != parsed "
                f"{self.parsed} + skipped {self.skipped_total} (a loader bug; please report it)",
                path=self.path,
            )

    def skip_lines(self, reason: str) -> list[int]:
        """Line numbers kept for ``reason`` (the first few)."""
        return [s.line for s in self.samples if s.reason == reason]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by ``auditkit inspect --json`` and manifest.json)."""
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "parsed": self.parsed,
            "skipped": dict(self.skipped),
            "skipped_total": self.skipped_total,
            "skip_samples": [
                {"line": s.line, "reason": s.reason, "excerpt": s.excerpt} for s in self.samples
            ],
            "events": dict(self.events),
            "warnings": list(self.warnings),
            "lines": self.lines,
            "bytes": self.bytes,
            "elapsed_s": round(self.elapsed_s, 4),
        }

    def summary(self) -> str:
        """One line: 'read 120 = parsed 118 + skipped 2 (truncated: 2)'."""
        skipped = ", ".join(f"{k}: {v}" for k, v in self.skipped.most_common())
        events = ", ".join(f"{v} {k}" for k, v in self.events.items())
        text = f"read {self.read} = parsed {self.parsed} + skipped {self.skipped_total}"
        if skipped:
            text += f" ({skipped})"
        if events:
            text += f" → {events}"
        return text

    def __str__(self) -> str:
        return f"{self.path} [{self.format}]: {self.summary()}"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(s.reason)}</td><td>{s.line}</td><td><code>{escape(s.excerpt)}</code></td></tr>"
            for s in self.samples[:10]
        )
        warn = "".join(f"<li>{escape(w)}</li>" for w in self.warnings)
        return (
            f"<div><b>{escape(self.path)}</b> <i>{escape(self.format)}</i>: {escape(self.summary())}"
            + (f"<ul>{warn}</ul>" if warn else "")
            + (
                f"<table><tr><th>reason</th><th>line</th><th>excerpt</th></tr>{rows}</table>"
                if rows
                else ""
            )
            + "</div>"
        )


@dataclass
class LoadResult:
    """Frames produced from one file, keyed by canonical frame name, and the parse report."""

    format: str
    frames: dict[str, pd.DataFrame]
    report: ParseReport
    primary: str = ""

    @property
    def frame(self) -> pd.DataFrame:
        """The loader's main frame (query events for a query log, plan nodes for a plan…)."""
        return self.frames[self.primary or next(iter(self.frames))]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {len(v)} rows" for k, v in self.frames.items())
        return f"<LoadResult {self.format} {shapes}; {self.report.summary()}>"

    def _repr_html_(self) -> str:
        return self.report._repr_html_() + self.frame.head(20)._repr_html_()  # type: ignore[operator]
