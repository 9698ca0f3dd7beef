"""Result tables in psql output: aligned (the default), unaligned (``\\a``) and expanded (``\\x``).

A psql transcript or a pg_regress ``.out`` file holds statements, messages and any number of
result tables. :func:`psql_tables` finds the tables and returns their cells as text, one
:class:`PsqlTable` each, so a loader only has to pick the tables it knows (by their columns)
and type the values.

Aligned (``\\pset format aligned``, border 1)::

     plans | calls | query
    -------+-------+-------------------------------------------
         1 |     0 | SELECT plans, calls, query FROM pg_stat_statements+
           |       |   WHERE query NOT LIKE $1
    (1 row)

A cell holding a newline ends its line with ``+`` in the padding position and continues on the
next line, whose other cells are blank. Cells are split on ``|`` left and right of the widest
text column (``query`` by default), so a ``|`` inside that column (``a || b``) is kept; the
``(N rows)`` footer is checked against the rows read. Border 2 (``| a | b |`` between
``+---+`` rules) is read too.

Unaligned (``\\a``): ``calls|rows|query`` header and ``|``-separated rows; a text value with
newlines simply continues on the next lines, so a line starts a new row only when it has the
separators a row needs and its other cells look like the earlier rows' (numbers stay numbers).

Expanded (``\\x``): ``-[ RECORD 1 ]----+-----`` then ``column | value`` lines; ``+`` marks a
value continued on the next line, whose column part is blank.

No per-character Python loop: lines are split with ``str`` methods, and only the lines of
tables are visited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditkit.lazy_re import compile_later

__all__ = ["PsqlTable", "psql_tables"]

_RULE = compile_later(r"^\+?-+(?:\+-+)*\+?$")
_FOOTER = compile_later(r"^\((\d+) rows?\)$")
_RECORD = compile_later(r"^-\[ RECORD (\d+) \]-*(?:\+-*)?$")


@dataclass
class PsqlTable:
    """One result table: its column names, its rows (cell texts) and where it was."""

    columns: list[str]
    rows: list[list[str | None]] = field(default_factory=list)
    #: 1-based line number of each row's first line
    lines: list[int] = field(default_factory=list)
    #: 1-based line number of the header (or of the first record of an expanded table)
    first_line: int = 0
    #: the row count psql printed in the ``(N rows)`` footer, when there was one
    footer_rows: int | None = None
    #: 'aligned', 'unaligned' or 'expanded'
    style: str = "aligned"


def psql_tables(text: str, text_column: str = "query") -> list[PsqlTable]:
    """Every result table of two or more columns in ``text``, in order.

    ``text_column`` names the column most likely to hold ``|`` or newlines; cells are split
    around it so that it keeps them.
    """
    lines = text.split("\n")
    tables: list[PsqlTable] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        nxt = lines[i + 1].strip() if i + 1 < n else ""
        if "|" in line and "+" in nxt and _RULE.match(nxt) and not nxt.startswith("+"):
            table, i = _aligned(lines, i, text_column)
        elif (
            line.strip().startswith("+-")
            and _RULE.match(line.strip())
            and nxt.startswith("|")
            and i + 2 < n
            and _RULE.match(lines[i + 2].strip())
        ):
            table, i = _aligned(lines, i + 1, text_column, border2=True)
        elif _RECORD.match(line.strip()):
            table, i = _expanded(lines, i)
        elif _is_unaligned_header(line, nxt, text_column):
            table, i = _unaligned(lines, i, text_column)
        else:
            i += 1
            continue
        tables.append(table)
    return tables


def _split(cells_text: str, ncols: int, text_at: int) -> list[str] | None:
    """Split one line into ``ncols`` cells, the text column keeping any ``|`` it holds."""
    if text_at < 0:
        parts = cells_text.split("|")
        return parts if len(parts) == ncols else None
    left = cells_text.split("|", text_at) if text_at else [cells_text]
    if len(left) != text_at + 1:
        return None
    right_n = ncols - text_at - 1
    right = left.pop().rsplit("|", right_n) if right_n else [left.pop()]
    if len(right) != right_n + 1:
        return None
    return [*left, *right]


def _aligned(
    lines: list[str], i: int, text_column: str, border2: bool = False
) -> tuple[PsqlTable, int]:
    """Read an aligned table whose header is line ``i``; return it and the next line index."""
    header = lines[i].strip()
    if border2:
        header = header.strip("|")
    columns = [c.strip() for c in header.split("|")]
    ncols = len(columns)
    text_at = columns.index(text_column) if text_column in columns else -1
    table = PsqlTable(columns, first_line=i + 1, style="aligned")
    i += 2
    open_cells = [False] * ncols
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        m = _FOOTER.match(stripped)
        if m:
            table.footer_rows = int(m.group(1))
            return table, i + 1
        if border2 and _RULE.match(stripped):
            i += 1
            continue
        if not stripped:
            return table, i
        body = raw
        if border2:
            body = (
                stripped[1:-1] if stripped.startswith("|") and stripped.endswith("|") else stripped
            )
        cells = _split(body, ncols, text_at)
        if cells is None:
            return table, i
        values: list[str] = []
        marks: list[bool] = []
        for j, cell in enumerate(cells):
            # psql writes '+' in the padding right before '|' (or at the end of the last
            # column) when the cell continues on the next line
            mark = cell.endswith("+") if j < ncols - 1 else cell.rstrip().endswith("+")
            value = cell[1:] if cell.startswith(" ") else cell
            value = value.rstrip()
            if mark:  # psql pads the cell up to the mark: that padding is not text
                value = value[:-1].rstrip()
            values.append(value)
            marks.append(mark)
        if any(open_cells) and table.rows:
            row = table.rows[-1]
            for j, value in enumerate(values):
                if open_cells[j]:
                    row[j] = f"{row[j]}\n{value}"
            open_cells = [open_cells[j] and marks[j] for j in range(ncols)]
        else:
            table.rows.append([v if j == text_at else v.strip() for j, v in enumerate(values)])
            table.lines.append(i + 1)
            open_cells = marks
        i += 1
    return table, i


def _expanded(lines: list[str], i: int) -> tuple[PsqlTable, int]:
    """Read expanded records (``-[ RECORD 1 ]``) from line ``i``."""
    table = PsqlTable([], first_line=i + 1, style="expanded")
    records: list[dict[str, str]] = []
    key = ""
    cont = False
    while i < len(lines):
        stripped = lines[i].strip()
        if _RECORD.match(stripped):
            records.append({})
            table.lines.append(i + 1)
            key, cont = "", False
            i += 1
            continue
        if not stripped or "|" not in lines[i]:
            break
        name, _, value = lines[i].partition("|")
        value = value[1:] if value.startswith(" ") else value
        value = value.rstrip()
        mark = value.endswith("+")
        if mark:  # the padding before the mark is not text
            value = value[:-1].rstrip()
        name = name.strip()
        record = records[-1]
        if not name and cont and key:
            record[key] = f"{record[key]}\n{value}"
        else:
            key = name
            record[key] = value
            if key not in table.columns:
                table.columns.append(key)
        cont = mark
        i += 1
    table.rows = [[record.get(c) for c in table.columns] for record in records]
    footer = _FOOTER.match(lines[i].strip()) if i < len(lines) else None
    table.footer_rows = int(footer.group(1)) if footer else None
    return table, i + (1 if footer else 0)


def _is_unaligned_header(line: str, nxt: str, text_column: str) -> bool:
    if "|" not in line or " | " in line or line != line.strip():
        return False
    names = line.split("|")
    return (
        text_column in names
        and "|" in nxt
        and all(re.fullmatch(r"[A-Za-z_?][A-Za-z0-9_?]*", n) for n in names)
    )


def _unaligned(lines: list[str], i: int, text_column: str) -> tuple[PsqlTable, int]:
    """Read an unaligned table whose header is line ``i``.

    A value with newlines runs over several lines. When the text column is last, a line
    starts a new row if its other cells are there and shaped like the earlier rows'; when it
    is not, a line ends the row if the cells after the text column are there and shaped so.
    """
    columns = lines[i].split("|")
    ncols = len(columns)
    text_at = columns.index(text_column)
    table = PsqlTable(columns, first_line=i + 1, style="unaligned")
    shape: list[bool | None] = [None] * ncols  # per column: numeric so far?
    buffer: list[str] = []
    start = i + 1

    def fits(cells: list[str], at: range) -> bool:
        return all(shape[j] is not True or _is_number(cells[k]) for k, j in enumerate(at))

    def flush() -> None:
        cells = _split("\n".join(buffer), ncols, text_at) if buffer else None
        if cells is not None:
            row: list[str | None] = list(cells)
            table.rows.append(row)
            table.lines.append(start + 1)
            for j, cell in enumerate(cells):
                if j != text_at:
                    shape[j] = _is_number(cell) and shape[j] is not False
        buffer.clear()

    i += 1
    last = text_at == ncols - 1
    while i < len(lines):
        line = lines[i]
        m = _FOOTER.match(line.strip())
        if m:
            flush()
            table.footer_rows = int(m.group(1))
            return table, i + 1
        if last:
            head = line.split("|", ncols - 1)
            if len(head) == ncols and fits(head[:-1], range(ncols - 1)):
                flush()
                start = i
            elif not buffer:
                break
            buffer.append(line)
        else:
            if not buffer:
                start = i
            buffer.append(line)
            right_n = ncols - text_at - 1
            tail = line.rsplit("|", right_n)
            if len(tail) == right_n + 1 and fits(tail[1:], range(text_at + 1, ncols)):
                flush()
        i += 1
    flush()
    return table, i


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
