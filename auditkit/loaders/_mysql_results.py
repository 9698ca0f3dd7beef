"""Result sets as the ``mysql``/``mariadb`` client (and the exports around it) write them.

One reader for every view a consultant exports from a MySQL-family server, so a loader only
picks the result sets it knows (by their columns) and types the values. A file may hold any
number of result sets, each introduced by its statement (``mysql -v``/``-vvv`` echo, an
interactive ``mysql>``/``MariaDB [db]>`` prompt saved with ``tee``, a ``--`` or ``#`` comment)
and possibly a time stamp (a ``date`` line, an ISO time on its own line or in the comment).

Shapes, found anywhere in a file:

* **tabular** (``mysql -t``, the interactive client): ``+---+---+`` rules around a
  ``| a | b |`` header and rows; the rule gives every column's exact position, so a cell
  holding ``|`` is kept; the ``N rows in set (0.00 sec)`` footer is checked.
* **vertical** (``\\G``, ``mysql -E``): ``*** 1. row ***`` then ``name: value`` lines with the
  names right-aligned; a value spanning lines (``SHOW CREATE TABLE``) continues until the next
  aligned name.
* **batch** (``mysql -B``, mysqltest ``.result`` files, ``SELECT … INTO OUTFILE`` with a header
  row): TAB-separated; ``\\n``, ``\\t``, ``\\\\`` and ``\\0`` escapes are decoded (not with
  ``--raw``: pass ``raw=True``). A second result set starts at a line equal to the current header,
  or at a line with another number of fields.
* **CSV** (a GUI's export, ``INTO OUTFILE … FIELDS TERMINATED BY ','``, ``mysql -B | tr``):
  a header row and comma- or semicolon-separated fields, quoted with ``"``.
* **JSON**: an array of row objects, an object holding one, or one object per line
  (``mysql -NBr -e "SELECT JSON_OBJECT(…) FROM …"``, MySQL Shell ``--result-format=json``).

NULL is ``NULL`` in the client's shapes and ``\\N`` in TSV/CSV exports; both become ``None``
(the client prints a string ``'NULL'`` the same way: the two cannot be told apart there).
Cells are text; JSON values keep their type. Nothing here knows what a view means.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders._json import loads as json_loads

__all__ = ["ResultSet", "read_result_sets", "time_stamp"]

_RULE = compile_later(r"^\+(?:-+\+)+\s*$")
_FOOTER = compile_later(r"^(\d+) rows? in set\b|^Empty set\b")
_VERTICAL = compile_later(r"^\*{5,} (\d+)\. row \*{5,}\s*$")
_DASHES = compile_later(r"^-{5,}\s*$")
_PROMPT = compile_later(r"^(?:mysql|MariaDB \[[^\]]*\]|MySQL \[[^\]]*\]|mariadb)>\s?")
_CONTINUATION = compile_later(r"^\s*(?:->|'>|\">|`>|/\*>)\s?")
_NOISE = compile_later(
    r"^(?:Query OK\b|Bye$|Database changed$|Records: \d|Rows matched: |Warning \(Code|Note \(Code"
    r"|Reading table information|You can turn off this feature|Welcome to the |Your (?:MySQL|MariaDB)"
    r"|Server version:|Copyright |Oracle is a |Type 'help;'|mysql: \[Warning\]|\(\d+ rows?\)$)"
)
#: a time stamp on a line of its own or inside a comment
_STAMP = compile_later(
    r"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?(?: UTC)?)"
    r"|(?P<date>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" +\d{1,2} \d\d:\d\d:\d\d(?: [A-Z]{2,5})? \d{4})"
    r"|(?P<epoch>^\d{10}(?:\.\d+)?$)"
)
_BATCH_ESCAPES = compile_later(r"\\([ntr0\\])")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\"}
_IDENT = compile_later(r"^[A-Za-z_@$(][\w@$().,'`* +/-]*$")


@dataclass
class ResultSet:
    """One result set: its columns, rows (text, ``None`` for NULL) and what introduced it."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    #: 1-based line of each row (of its first line)
    lines: list[int] = field(default_factory=list)
    #: 1-based line of the header (or of the first record)
    first_line: int = 0
    #: 'tabular', 'vertical', 'batch', 'csv' or 'json'
    style: str = "batch"
    #: the statement that produced it, when the file shows it
    statement: str | None = None
    #: the comment lines written before it (``-- SHOW GLOBAL STATUS at …``), joined
    comment: str | None = None
    #: a time stamp written before it (UTC), when there was one
    ts: pd.Timestamp | None = None
    #: rows the client counted in its footer, when it printed one
    footer_rows: int | None = None
    #: lines inside the result set that could not be read as a row: (line, reason, text)
    bad: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        """Lower-cased column names."""
        return {c.strip().lower() for c in self.columns}

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by lower-cased column name."""
        keys = [c.strip().lower() for c in self.columns]
        return [dict(zip(keys, row, strict=False)) for row in self.rows]


# --------------------------------------------------------------------------------------------
# context: statements, comments and time stamps between result sets
# --------------------------------------------------------------------------------------------
@dataclass
class _Context:
    statement_lines: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ts: pd.Timestamp | None = None
    in_dashes: bool = False
    dash_lines: list[str] = field(default_factory=list)
    last_statement: str | None = None

    def feed(self, line: str) -> None:
        s = line.strip()
        if not s:
            return
        if _DASHES.match(s):
            if self.in_dashes:
                self.last_statement = "\n".join(self.dash_lines).strip() or self.last_statement
                self.dash_lines = []
            self.in_dashes = not self.in_dashes
            return
        if self.in_dashes:
            self.dash_lines.append(line)
            return
        # a time stamp counts in a comment or on a short line of its own: only those are searched
        is_comment = s.startswith(("--", "#"))
        stamp = time_stamp(s) if is_comment or len(s) <= 40 else None
        if is_comment:
            self.comments.append(s.lstrip("-#").strip())
            if stamp is not None:
                self.ts = stamp
            return
        if stamp is not None and len(s) <= 40:
            self.ts = stamp
            return
        m = _PROMPT.match(s)
        if m or (_CONTINUATION.match(line) and self.statement_lines):
            body = _PROMPT.sub("", s, count=1) if m else _CONTINUATION.sub("", line, count=1)
            if m:
                self.statement_lines = []
            self.statement_lines.append(body)
            self._close()
            return
        if _NOISE.match(s):
            return
        # a bare statement (mysqltest .result files echo them without a prompt)
        if re.match(r"^(?:SELECT|SHOW|WITH|DESCRIBE|DESC|EXPLAIN|CALL|TABLE)\b", s, re.I) or (
            self.statement_lines and not self.last_statement_closed()
        ):
            if self.last_statement_closed():
                self.statement_lines = []
            self.statement_lines.append(s)
            self._close()

    def last_statement_closed(self) -> bool:
        return (
            not self.statement_lines
            or re.search(r"(?:;|\\[Gg])\s*$", self.statement_lines[-1]) is not None
        )

    def _close(self) -> None:
        if self.last_statement_closed():
            text = "\n".join(self.statement_lines).strip()
            self.last_statement = re.sub(r"(?:;|\\[Gg])\s*$", "", text).strip() or None

    def take(self) -> tuple[str | None, str | None, pd.Timestamp | None]:
        """What introduces the next result set; comments are used up, the time stamp stays."""
        comment = " ".join(self.comments) or None
        statement = self.last_statement
        self.comments = []
        self.last_statement = None
        self.statement_lines = []
        return statement, comment, self.ts


def time_stamp(text: str) -> pd.Timestamp | None:
    """The first time stamp in ``text`` (ISO 8601, ``date`` output or epoch seconds), UTC."""
    m = _STAMP.search(text)
    if not m:
        return None
    try:
        if m.group("epoch"):
            return pd.Timestamp(float(m.group("epoch")), unit="s", tz="UTC")
        raw = m.group("iso") or m.group("date")
        ts = pd.Timestamp(raw.replace(" UTC", "") if m.group("iso") else raw)
    except (ValueError, OverflowError):
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    try:  # frames hold nanoseconds: the year 9999 does not fit
        return ts.as_unit("ns")
    except (ValueError, OverflowError):
        return None


# --------------------------------------------------------------------------------------------
# the shapes
# --------------------------------------------------------------------------------------------
def _null(value: str) -> str | None:
    return None if value == "NULL" else value


def _tabular(lines: list[str], i: int) -> tuple[ResultSet, int]:
    """Read a ``+---+`` table whose top rule is line ``i``; return it and the next index."""
    rule = lines[i].rstrip()
    bounds = [k for k, ch in enumerate(rule) if ch == "+"]
    header_line = lines[i + 1].rstrip()
    columns = [header_line[a + 1 : b].strip() for a, b in itertools.pairwise(bounds)]
    rs = ResultSet(columns, first_line=i + 2, style="tabular")
    j = i + 3
    n = len(lines)
    while j < n:
        raw = lines[j].rstrip("\r\n")
        s = raw.rstrip()
        if _RULE.match(s):
            j += 1
            break
        if not s.startswith("|"):
            break
        # a value holding a newline breaks the frame: join physical lines until the row closes
        start = j
        while len(s) < len(rule) and j + 1 < n and not _RULE.match(lines[j + 1].rstrip()):
            j += 1
            s = s + "\n" + lines[j].rstrip()
        if len(s) == len(rule) and all(s[b] == "|" for b in bounds):
            cells = [s[a + 1 : b] for a, b in itertools.pairwise(bounds)]
        else:
            cells = [c for c in s.strip().strip("|").split(" | ")]
            if len(cells) != len(columns):
                rs.bad.append((start + 1, "row does not fit the table's columns", s[:160]))
                j += 1
                continue
        rs.rows.append([_null(c.strip()) for c in cells])
        rs.lines.append(start + 1)
        j += 1
    while j < n and not lines[j].strip():
        j += 1
    if j < n:
        m = _FOOTER.match(lines[j].strip())
        if m:
            rs.footer_rows = int(m.group(1)) if m.group(1) else 0
            j += 1
    return rs, j


def _vertical(lines: list[str], i: int) -> tuple[ResultSet, int]:
    """Read ``\\G`` records starting at line ``i`` (a ``*** 1. row ***`` line)."""
    rs = ResultSet([], first_line=i + 1, style="vertical")
    records: list[dict[str, str | None]] = []
    n = len(lines)
    j = i
    width: int | None = None
    key: str | None = None
    while j < n:
        line = lines[j].rstrip("\r\n")
        if _VERTICAL.match(line):
            records.append({})
            rs.lines.append(j + 1)
            key = None
            j += 1
            continue
        if not records:
            break
        colon = line.find(": ") if width is None else width
        head = line[:colon] if colon > 0 else ""
        is_field = (
            colon > 0
            and line[colon : colon + 1] == ":"
            and (len(line) == colon + 1 or line[colon + 1] == " ")
            and head.strip() != ""
            and head == head.rjust(len(head))
            and (width is not None or not head.startswith(" " * 2) or head.strip())
        )
        if is_field and width is None and key is None:
            width = colon
        if is_field:
            key = head.strip()
            value = line[colon + 2 :] if len(line) > colon + 1 else ""
            records[-1][key] = value
            if key not in rs.columns:
                rs.columns.append(key)
        elif key is not None and (line.strip() or _continues(lines, j, width)):
            if _FOOTER.match(line.strip()):
                break
            records[-1][key] = f"{records[-1][key]}\n{line}"
        else:
            break
        j += 1
    for rec in records:
        for k, v in rec.items():
            rec[k] = None if v == "NULL" else v
    rs.rows = [[rec.get(c) for c in rs.columns] for rec in records]
    while j < n and not lines[j].strip():
        j += 1
    if j < n:
        m = _FOOTER.match(lines[j].strip())
        if m:
            rs.footer_rows = int(m.group(1)) if m.group(1) else 0
            j += 1
    return rs, j


def _continues(lines: list[str], j: int, width: int | None) -> bool:
    """A blank line inside a multi-line vertical value: does the value go on after it?"""
    k = j + 1
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k >= len(lines) or _VERTICAL.match(lines[k]) or _FOOTER.match(lines[k].strip()):
        return False
    line = lines[k]
    return not (width is not None and line[width : width + 1] == ":" and line[:width].strip())


def _unescape(cell: str) -> str | None:
    if cell == "\\N" or cell == "NULL":
        return None
    if "\\" not in cell:
        return cell
    return _BATCH_ESCAPES.sub(lambda m: _ESC[m.group(1)], cell)


def _looks_like_header(cells: list[str]) -> bool:
    return bool(cells) and all(c and _IDENT.match(c) and not c.isdigit() for c in cells)


def _batch(lines: list[str], i: int, raw: bool) -> tuple[ResultSet, int]:
    """Read TAB-separated rows under the header on line ``i``."""
    header = lines[i].rstrip("\r\n").split("\t")
    rs = ResultSet(header, first_line=i + 1, style="batch")
    j = i + 1
    n = len(lines)
    while j < n:
        line = lines[j].rstrip("\r\n")
        if not line.strip() and "\t" not in line:
            break
        cells = line.split("\t")
        if cells == header:
            break
        if len(cells) != len(header):
            if _looks_like_header(cells) or _is_context(line):
                break
            rs.bad.append((j + 1, f"{len(cells)} fields, the header has {len(header)}", line[:160]))
            j += 1
            continue
        rs.rows.append([_unescape(c) if not raw else _null(c) for c in cells])
        rs.lines.append(j + 1)
        j += 1
    return rs, j


def _is_context(line: str) -> bool:
    s = line.strip()
    return bool(
        s.startswith(("--", "#"))
        or _PROMPT.match(s)
        or _DASHES.match(s)
        or _NOISE.match(s)
        or _FOOTER.match(s)
        or _RULE.match(s)
        or _VERTICAL.match(s)
    )


def _csv(text: str, first: int, delimiter: str) -> ResultSet:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, escapechar=None)
    header = next(reader, [])
    rs = ResultSet([h.strip() for h in header], first_line=first, style="csv")
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            rs.bad.append(
                (
                    start + first - 1,
                    f"{len(row)} fields, the header has {len(header)}",
                    ",".join(row)[:160],
                )
            )
            continue
        rs.rows.append([None if c in ("\\N", "NULL") else c for c in row])
        rs.lines.append(start + first - 1)
    return rs


def _json(text: str) -> list[ResultSet]:
    """JSON: an array of objects, an object holding arrays of objects, or JSON lines."""
    stripped = text.strip()
    try:
        doc = json_loads(stripped)
    except json.JSONDecodeError:
        doc = None
    sets: list[ResultSet] = []
    if doc is not None:
        arrays: list[tuple[str | None, list[Any]]] = []
        if isinstance(doc, list):
            arrays = [(None, doc)]
        elif isinstance(doc, dict):
            arrays = [(k, v) for k, v in doc.items() if isinstance(v, list)] or [(None, [doc])]
        for name, arr in arrays:
            rs = ResultSet([], style="json", first_line=1, comment=name)
            objects: list[dict[str, Any]] = []
            for k, obj in enumerate(arr, start=1):
                if not isinstance(obj, dict):
                    rs.bad.append((k, "not a JSON object", json.dumps(obj)[:160]))
                    continue
                for key in obj:
                    if key not in rs.columns:
                        rs.columns.append(str(key))
                objects.append(obj)
                rs.lines.append(k)
            rs.rows = [[o.get(c) for c in rs.columns] for o in objects]
            sets.append(rs)
        return sets
    rs = ResultSet([], style="json", first_line=1)
    objects = []
    for k, line in enumerate(text.split("\n"), start=1):
        item = line.strip().rstrip(",")
        if not item or item in ("[", "]"):
            continue
        try:
            obj = json_loads(item)
        except json.JSONDecodeError:
            rs.bad.append((k, "invalid JSON", line[:160]))
            continue
        if not isinstance(obj, dict):
            rs.bad.append((k, "not a JSON object", line[:160]))
            continue
        for key in obj:
            if key not in rs.columns:
                rs.columns.append(str(key))
        objects.append(obj)
        rs.lines.append(k)
    rs.rows = [[o.get(c) for c in rs.columns] for o in objects]
    return [rs]


# --------------------------------------------------------------------------------------------
# the file
# --------------------------------------------------------------------------------------------
def read_result_sets(text: str, raw: bool = False) -> tuple[list[ResultSet], list[int]]:
    """Every result set in ``text``, in order, and the lines that belong to none.

    ``raw`` says the batch output was written with ``--raw`` (no escapes to decode). The
    second value lists the 1-based lines that are neither part of a result set nor context
    (statements, comments, time stamps, client messages): a loader reports them as skipped.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        return _json(text), []
    lines = text.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if (
        "\t" not in first
        and not _RULE.match(first.strip())
        and not first.lstrip().startswith(("--", "#", "*"))
        and not _PROMPT.match(first)
        and (first.count(",") >= 1 or first.count(";") >= 1)
        and not _VERTICAL.match(first)
    ):
        delimiter = "," if first.count(",") >= first.count(";") else ";"
        start = lines.index(first)
        return [_csv("\n".join(lines[start:]), start + 1, delimiter)], []
    sets: list[ResultSet] = []
    stray: list[int] = []
    ctx = _Context()
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        s = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < n else ""
        rs: ResultSet | None = None
        if (
            _RULE.match(s)
            and nxt.startswith("|")
            and i + 2 < n
            and _RULE.match(lines[i + 2].strip())
        ):
            rs, i = _tabular(lines, i)
        elif _VERTICAL.match(s):
            rs, i = _vertical(lines, i)
        elif (
            "\t" in line
            and not s.startswith(("#", "--"))
            and _looks_like_header(line.rstrip("\r\n").split("\t"))
        ):
            rs, i = _batch(lines, i, raw)
        else:
            before = (len(ctx.comments), ctx.last_statement, ctx.ts, len(ctx.statement_lines))
            ctx.feed(line)
            after = (len(ctx.comments), ctx.last_statement, ctx.ts, len(ctx.statement_lines))
            if (
                s
                and before == after
                and not ctx.in_dashes
                and not _is_context(line)
                and not _DASHES.match(s)
            ):
                stray.append(i + 1)
            i += 1
            continue
        rs.statement, rs.comment, rs.ts = ctx.take()
        sets.append(rs)
    return sets, stray
