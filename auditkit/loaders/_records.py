"""One robust CSV record reader for every CSV-shaped loader.

:mod:`csv` is right about the format — quoted fields may hold the delimiter, doubled quotes
and newlines — but it gives up on damage: a stray carriage return in an unquoted field raises
``csv.Error`` and, used naively, ends the whole file; a quote that is never closed swallows
every following line into one field until the field limit (128 KiB by default) raises.

:func:`csv_records` keeps the format and contains the damage to one record:

* a record the csv module rejects (stray CR, NUL byte, field too large) is yielded as a
  :class:`BadRecord` with its first line number and the reason, and reading goes on with the
  next record;
* a quoted field still open after :data:`MAX_RECORD_LINES` lines or :data:`MAX_RECORD_CHARS`
  characters is an *open quote*: its first line is reported and reading restarts on the line
  after it, so the records the quote would have swallowed are read;
* a quoted field left open at the end of the text is reported the same way;
* fields up to :data:`MAX_RECORD_CHARS` are accepted (a statement of a pg_stat_statements
  export can exceed the module's 128 KiB default).

Every record comes with the number of its first physical line, so ``read = parsed + skipped``
can be kept by the caller: one :class:`Row` or :class:`BadRecord` is one record read::

    >>> rows = list(csv_records('a,b\\n1,2\\n"3,4\\n5,6\\n', max_lines=1))
    >>> [(r.line, getattr(r, 'values', None) or r.reason) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [(1, ['a', 'b']), (2, ['1', '2']),
     (3, 'open quote: a quoted field is still open after 1 lines'), (4, ['5', '6'])]
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_RECORD_CHARS",
    "MAX_RECORD_LINES",
    "BadRecord",
    "Row",
    "csv_records",
    "csv_rows_and_skips",
]

#: a quoted field may span this many physical lines before it counts as a quote left open
MAX_RECORD_LINES = 10_000
#: the longest record (and field) read, in characters
MAX_RECORD_CHARS = 64 * 1024 * 1024

# the module-wide limit of the csv module is raised once, to what this reader accepts
if csv.field_size_limit() < MAX_RECORD_CHARS:
    csv.field_size_limit(MAX_RECORD_CHARS)


@dataclass(frozen=True, slots=True)
class Row:
    """One CSV record: the line it starts on and its fields."""

    line: int
    values: list[str]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """One record that could not be read: its first line, why, and its start."""

    line: int
    reason: str
    excerpt: str


class _OpenQuote(Exception):
    """Raised by the line feed when one record has grown past the limits."""


class _Feed:
    """The physical lines of a text, one at a time, with their line ends, for csv.reader."""

    def __init__(self, lines: list[str], start: int, max_lines: int, max_chars: int) -> None:
        self.lines = lines
        self.pos = start
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.record_lines = 0
        self.record_chars = 0

    def begin_record(self) -> None:
        self.record_lines = 0
        self.record_chars = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        line = self.lines[self.pos]
        self.record_lines += 1
        self.record_chars += len(line)
        if self.record_lines > self.max_lines or (
            self.record_lines > 1 and self.record_chars > self.max_chars
        ):
            raise _OpenQuote
        self.pos += 1
        return line if self.pos == len(self.lines) else line + "\n"


def _reason(exc: csv.Error, excerpt: str) -> str:
    text = str(exc)
    if "new-line character" in text or "\r" in excerpt:
        return "stray carriage return inside a record"
    if "NUL" in text or "\x00" in excerpt:
        return "NUL byte inside a record"
    if "field larger" in text:
        return f"field longer than {MAX_RECORD_CHARS:,} characters"
    return f"malformed CSV ({text})"


def csv_records(
    text: str,
    delimiter: str = ",",
    *,
    first_line: int = 1,
    max_lines: int = MAX_RECORD_LINES,
    max_chars: int = MAX_RECORD_CHARS,
    **fmtparams: Any,
) -> Iterator[Row | BadRecord]:
    """Every record of a CSV ``text``, or why it could not be read (see the module docstring).

    ``first_line`` is the number of the text's first line in its file (for blocks of a log).
    Blank records are yielded as rows of one empty field, as :mod:`csv` does (``[]``), so the
    caller decides whether they count.
    """
    quote = str(fmtparams.get("quotechar", '"'))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pos = 0
    while pos < len(lines):
        feed = _Feed(lines, pos, max_lines, max_chars)
        reader = csv.reader(feed, delimiter=delimiter, **fmtparams)
        restart: int | None = None
        while True:
            start = feed.pos
            feed.begin_record()
            try:
                values = next(reader)
            except StopIteration:
                break
            except _OpenQuote:
                excerpt = lines[start][:160]
                if feed.record_lines > max_lines:
                    reason = f"open quote: a quoted field is still open after {max_lines} lines"
                else:
                    reason = f"open quote: a record runs past {max_chars:,} characters"
                yield BadRecord(first_line + start, reason, excerpt)
                restart = start + 1
                break
            except csv.Error as exc:
                excerpt = "\n".join(lines[start : max(feed.pos, start + 1)])[:160]
                yield BadRecord(first_line + start, _reason(exc, excerpt), excerpt)
                continue
            if feed.pos == len(lines) and feed.record_lines > 1:
                raw = "\n".join(lines[start : feed.pos])
                if raw.count(quote) % 2:  # the file ended inside a quoted field
                    reason = "open quote: a quoted field is still open at the end of the text"
                    yield BadRecord(first_line + start, reason, lines[start][:160])
                    restart = start + 1
                    break
            yield Row(first_line + start, values)
        if restart is None:
            break
        pos = restart


def csv_rows_and_skips(
    text: str, delimiter: str = ",", **fmtparams: Any
) -> tuple[list[Row], list[BadRecord]]:
    """:func:`csv_records` split into the rows and the bad records (for small files)."""
    rows: list[Row] = []
    bad: list[BadRecord] = []
    for rec in csv_records(text, delimiter, **fmtparams):
        (rows if isinstance(rec, Row) else bad).append(rec)  # type: ignore[arg-type]
    return rows, bad
