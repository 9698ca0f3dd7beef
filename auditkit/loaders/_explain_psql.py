"""Finding PostgreSQL plans in what people paste: psql output, transcripts, bare plans.

A plan reaches a consultant in many wrappers. :func:`scan_postgres` cuts a file into
:class:`Chunk` s — one per psql result set or bare plan — and removes the wrapper, keeping
every content line's number in the file:

* psql aligned output (``\\pset border 0/1/2``, ASCII or Unicode line style, expanded ``\\x``) with its column
  header (``QUERY PLAN`` for EXPLAIN, the function name for pg_regress filters), dashes and
  ``(N rows)`` footer in any language (``(37 lignes)``); the ``+`` and ``↵`` continuation
  marks of multi-line cells; psql ``unaligned`` output; DBeaver's ``… |`` copies;
* whole psql transcripts and pg_regress ``.out`` files: the SQL before each result set is kept
  as the plan's statement (``EXPLAIN (…)`` stripped), result sets that are not plans (``count``,
  ``?column?``, multi-column tables) are passed over, command tags (``SET``, ``INSERT 0 1``)
  ignored;
* bare plans in text, JSON, XML or YAML, possibly after a preamble (comments, SQL), possibly
  hard-wrapped, possibly quoted line by line (pgAdmin).

Each chunk says which format it holds; the format readers do the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditkit.lazy_re import compile_later
from auditkit.loaders._explain_pg_text import closes_first, looks_like_node_line, paren_balance

__all__ = ["Chunk", "find_json_end", "scan_postgres", "statement_from", "strip_explain"]

_DASHES = compile_later(r"^[-─━═]+(?:[+┼╪┿][-─━═]+)*[+|]?\s*$")
_ASCII_BORDER = compile_later(r"^\+[-+]+\+\s*$")
_UNI_TOP = compile_later(r"^[╔┌┏][═─━╤┬┳]+[╗┐┓]\s*$")
_UNI_SEP = compile_later(r"^[╠├╞╟┣][═─━╪┼╋]+[╣┤╡╢┫]\s*$")
_UNI_BOTTOM = compile_later(r"^[╚└┗][═─━╧┴┻]+[╝┘┛]\s*$")
_UNI_ROW = compile_later(r"^[║│┃](?P<inner>.*)[║│┃]\s*$")
_ASCII_ROW = compile_later(r"^\|(?P<inner>.*)\|\s*$")
_RECORD = compile_later(r"^-\[ RECORD \d+ \]-*\s*$")
_EXPANDED = compile_later(r"^(?P<key>[^|]*?)\s*\| ?(?P<value>.*)$")
_FOOTER = compile_later(r"^\s*\((?P<n>\d+)\s+[^\W\d_]+\)\s*$")
_PROMPT = compile_later(r"^[\w.-]*[=\-(!'\"$*][#>]\s?")
_MYSQL_PROMPT = compile_later(r"^(?:mysql|MariaDB \[[^\]]*\])>\s?|^\s*->\s(?=\S)")
_EXPLAIN_PREFIX = compile_later(
    r"^\s*EXPLAIN\b\s*(?:\((?:[^()]|\([^()]*\))*\)\s*|(?:ANALY[SZ]E|VERBOSE|EXTENDED|PARTITIONS|FORMAT\s*=\s*\w+|FORMAT\s*=\s*'\w+')\s+)*",
    re.I,
)
_SQL_VERB = compile_later(
    r"\s*(?:EXPLAIN|SELECT|WITH|INSERT|UPDATE|DELETE|MERGE|VALUES|TABLE|EXECUTE|DECLARE|CREATE|ANALYZE|DESCRIBE|DESC|REPLACE)\b",
    re.I,
)
_WRAPPED = compile_later(
    r"(?is)^select\s+(?P<fn>[\w.]+)\(\s*'(?P<sql>(?:[^']|'')*)'\s*(?:,[^()]*)?\)\s*$"
)
_TOP_KEYS = compile_later(
    r"^\s*(?:Planning(?:\s+Time)?:|Execution\s+Time:|Total\s+runtime:|JIT:|Trigger\s.*:\s+time=|Query\s+Identifier:"
    r"|Settings:|Serialization:|Memory:)",
    re.I,
)


@dataclass
class Chunk:
    """One plan candidate: its format, content lines with their numbers, and where it came from.

    ``kind`` is ``text``, ``json``, ``xml`` or ``yaml``, or ``""`` for a result set that holds
    no plan. ``header`` is the psql column name (None for a bare plan), ``rows`` the psql
    footer's row count when there was one.
    """

    kind: str
    lines: list[tuple[int, str]]
    header: str | None = None
    statement: str | None = None
    rows: int | None = None
    line: int = 0
    physical: int = 0
    notes: list[str] = field(default_factory=list)


def strip_explain(sql: str) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS) SELECT …`` → ``SELECT …``; MariaDB ``ANALYZE SELECT …`` too."""
    analyze = re.match(
        r"\s*ANALYZE\s+(?:FORMAT\s*=\s*\w+\s+)?(?=SELECT|WITH|UPDATE|DELETE|INSERT|REPLACE)",
        sql,
        re.I,
    )
    if analyze:  # MariaDB's ANALYZE statement
        return sql[analyze.end() :].strip()
    if not re.match(r"\s*EXPLAIN\b", sql, re.I):
        return sql.strip()
    return re.sub(
        r"^QUERY\s+PLAN\s+", "", _EXPLAIN_PREFIX.sub("", sql, count=1).strip(), flags=re.I
    )


def statement_from(preamble: list[str]) -> str | None:
    """The last complete SQL statement in ``preamble`` (a transcript's lines before a result).

    Statements end with ``;`` or ``\\G``; prompts (``db=#``, ``mysql>``) and comment lines are
    dropped; lines after the last statement (command tags such as ``SET``) are ignored.
    """
    cleaned: list[str] = []
    for line in preamble:
        text = _PROMPT.sub("", line, count=1)
        text = _MYSQL_PROMPT.sub("", text, count=1)
        if text.strip().startswith(("--", "#")) and not re.fullmatch(r"-{3,}", text.strip()):
            cleaned.append("")
            continue
        cleaned.append(text.rstrip())
    # mysql --verbose frames each statement between two lines of dashes, without a ';'
    filled = [k for k, s in enumerate(cleaned) if s.strip()]
    if filled and re.fullmatch(r"-{3,}", cleaned[filled[-1]].strip()):
        last = filled[-1]
        opening = next(
            (k for k in range(last - 1, -1, -1) if re.fullmatch(r"-{3,}", cleaned[k].strip())), None
        )
        if opening is not None and opening < last - 1:
            text = "\n".join(cleaned[opening + 1 : last]).strip()
            return strip_explain(re.sub(r"(?:;|\\[Gg])\s*$", "", text)) or None
    end = None
    for i in range(len(cleaned) - 1, -1, -1):
        s = cleaned[i].rstrip()
        if s.endswith(";") or s.endswith("\\G") or s.endswith("\\g"):
            end = i
            break
    if end is None:
        return None
    start = end
    while start > 0:
        prev = cleaned[start - 1].rstrip()
        if not prev.strip() or prev.endswith(";") or prev.endswith("\\G") or _DASHES.match(prev):
            break
        start -= 1
    # output lines (warnings, command tags) may precede the statement without a blank line:
    # start at the last EXPLAIN line, else at the first line that begins with an SQL verb
    block = list(range(start, end + 1))
    explain = [k for k in block if re.match(r"\s*EXPLAIN\b", cleaned[k], re.I)]
    verbs = [k for k in block if _SQL_VERB.match(cleaned[k])]
    if explain:
        start = explain[-1]
    elif verbs:
        start = verbs[0]
    text = "\n".join(cleaned[start : end + 1]).strip()
    text = re.sub(r"(?:;|\\[Gg])\s*$", "", text).strip()
    if not text or not re.match(r"[A-Za-z(]", text):
        return None
    # pg_regress wraps EXPLAIN in filter functions: select explain_filter('explain …')
    wrapped = _WRAPPED.match(text)
    if wrapped and (
        wrapped.group("fn").lower().startswith("explain")
        or re.match(r"\s*explain\b", wrapped.group("sql"), re.I)
    ):
        return strip_explain(wrapped.group("sql").replace("''", "'"))
    return strip_explain(text)


_QUOTE_OR_BRACKET = compile_later(r'["\[\]{}]')
#: the rest of a JSON string after its opening quote: to the closing quote, or an open escape
_STRING_REST = compile_later(r'[^"\\]*(?:\\.[^"\\]*)*(?:(")|(\\?)$)', re.S)


def find_json_end(lines: list[str], start: int) -> int | None:
    """Index of the line where the JSON value opening on ``lines[start]`` closes (string aware)."""
    depth = 0
    escape = False  # a backslash ended the previous line's string: it escapes the next one's first
    began = False
    for i in range(start, len(lines)):
        line = lines[i]
        pos = 0
        while (m := _QUOTE_OR_BRACKET.search(line, pos)) is not None:
            ch = m.group(0)
            pos = m.end()
            if ch == '"':
                if escape:
                    if pos >= len(line):
                        break
                    escape = False
                    pos += 1
                rest = _STRING_REST.match(line, pos)
                assert rest is not None  # the pattern matches any text
                if rest.group(1) is None:  # a string never spans lines in a plan; resynchronise
                    escape = bool(rest.group(2))
                    break
                pos = rest.end()
            elif ch in "[{":
                depth += 1
                began = True
            else:
                depth -= 1
                if began and depth == 0:
                    return i
    return None


def _strip_markers(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Drop psql's ``+`` and ``↵`` continuation marks at the end of cell lines."""
    out = []
    for n, line in lines:
        s = line.rstrip()
        if s.endswith("↵") or s.endswith("+"):
            s = s[:-1].rstrip()
        out.append((n, s))
    return out


def _classify(lines: list[tuple[int, str]], header: str | None) -> str:
    first = next((s.strip() for _, s in lines if s.strip()), "")
    if first.startswith(("[", "{")):
        return "json"
    if first.startswith(("<explain", "<?xml")):
        return "xml"
    if first.startswith(("- Plan:", "Plan:")):
        return "yaml"
    if first.startswith(("|--", "`--")):
        return ""  # SQLite's EXPLAIN QUERY PLAN tree under the same header
    if looks_like_node_line(first, costs_off=True) or first.lower().startswith("query text:"):
        return "text"
    if header is not None and header.strip().upper() == "QUERY PLAN":
        return "text"
    return ""


def _header_at(lines: list[str], i: int) -> tuple[str, int, str] | None:
    """A psql result-set header starting at line ``i``: (style, body start index, header text)."""
    line = lines[i]
    n = len(lines)
    if (
        _RECORD.match(line)
        and i + 1 < n
        and (m := _EXPANDED.match(lines[i + 1]))
        and m.group("key")
    ):
        return "expanded", i + 1, m.group("key").strip()
    if (
        _ASCII_BORDER.match(line)
        and i + 2 < n
        and _ASCII_ROW.match(lines[i + 1])
        and _ASCII_BORDER.match(lines[i + 2])
    ):
        return "ascii2", i + 3, _ASCII_ROW.match(lines[i + 1]).group("inner").strip()  # type: ignore[union-attr]
    if (
        _UNI_TOP.match(line)
        and i + 2 < n
        and _UNI_ROW.match(lines[i + 1])
        and _UNI_SEP.match(lines[i + 2])
    ):
        return "uni2", i + 3, _UNI_ROW.match(lines[i + 1]).group("inner").strip()  # type: ignore[union-attr]
    if not line.strip() or _DASHES.match(line) or _FOOTER.match(line):
        return None
    j = i + 1
    title = line.strip().rstrip("|").strip()
    if title.upper() == "QUERY PLAN":
        while j < n and not lines[j].strip():
            j += 1
    if j < n and _DASHES.match(lines[j]) and len(lines[j].strip()) >= max(3, min(len(title), 20)):
        while j < n and _DASHES.match(lines[j]):
            j += 1
        style = (
            "dbeaver"
            if line.rstrip().endswith("|") and lines[i + 1].rstrip().endswith("+")
            else "aligned"
        )
        return style, j, title
    if title == "QUERY PLAN":
        return "unaligned", i + 1, title
    return None


def scan_postgres(text: str) -> list[Chunk]:
    """Cut ``text`` into plan chunks (and non-plan result sets, ``kind == ""``), in file order."""
    lines = text.split("\n")
    chunks: list[Chunk] = []
    preamble: list[tuple[int, str]] = []
    i = 0
    n = len(lines)
    while i < n:
        found = _header_at(lines, i)
        if found is None:
            preamble.append((i + 1, lines[i]))
            i += 1
            continue
        style, body_start, header = found
        statement = statement_from([s for _, s in preamble])
        chunks.extend(_bare(preamble))
        preamble = []
        body, i, rows = _body(lines, body_start, style)
        multi = "|" in header or "│" in header or "║" in header
        if (
            style == "aligned"
            and body_start > 0
            and re.search(r"[+┼╪]", lines[body_start - 1].rstrip()[:-1] or "")
        ):
            multi = True
        kind = "" if multi else _classify(body, header)
        chunk = Chunk(
            kind, body, header, statement, rows, body[0][0] if body else body_start + 1, len(body)
        )
        chunks.append(chunk)
    chunks.extend(_bare(preamble))
    return chunks


def _body(
    lines: list[str], start: int, style: str
) -> tuple[list[tuple[int, str]], int, int | None]:
    """The content lines of a result set starting at ``start``; returns (lines, next index, footer rows)."""
    out: list[tuple[int, str]] = []
    i = start
    n = len(lines)
    rows = None
    while i < n:
        line = lines[i]
        if style == "expanded":  # \x: one "-[ RECORD n ]---" per row, "key | value" lines
            if _RECORD.match(line):
                i += 1
                continue
            m = _EXPANDED.match(line)
            if not m or not line.strip():
                break
            out.append((i + 1, m.group("value")))
        elif style == "ascii2":
            if _ASCII_BORDER.match(line):
                i += 1
                break
            m = _ASCII_ROW.match(line)
            inner = m.group("inner") if m else line
            out.append((i + 1, inner[1:] if inner.startswith(" ") else inner))
        elif style == "uni2":
            if _UNI_BOTTOM.match(line):
                i += 1
                break
            m = _UNI_ROW.match(line)
            inner = m.group("inner") if m else line
            out.append((i + 1, inner[1:] if inner.startswith(" ") else inner))
        else:
            if _FOOTER.match(line) or not line.strip():
                break
            if style == "dbeaver" and line.rstrip().endswith("|"):
                line = line.rstrip()[:-1]
            out.append((i + 1, line))
        i += 1
    # the footer may follow a framed table or end an aligned one
    while i < n and not lines[i].strip() and style in ("ascii2", "uni2"):
        i += 1
    if i < n and (m := _FOOTER.match(lines[i])):
        rows = int(m.group("n"))
        i += 1
    return _strip_markers(out), i, rows


def _unquote_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """pgAdmin copies each plan line in double quotes; remove them when every line has them."""
    body = [s for _, s in lines if s.strip()]
    if body and all(len(s.strip()) >= 2 and s.strip()[0] == s.strip()[-1] == '"' for s in body):
        return [(n, s.strip()[1:-1] if s.strip() else s) for n, s in lines]
    return lines


def _bare(region: list[tuple[int, str]]) -> list[Chunk]:
    """Plans written without a psql header in a run of lines (a whole bare file, or a preamble)."""
    if not any(s.strip() for _, s in region):
        return []
    region = _unquote_lines(region)
    if sum(1 for _, s in region if s.rstrip().endswith("+")) >= 2:
        region = _strip_markers(region)
    texts = [s for _, s in region]
    out: list[Chunk] = []
    i = 0
    n = len(region)
    last = 0  # a plan's statement is looked for after the previous plan only

    def add(kind: str, stop: int) -> int:
        nonlocal last
        out.append(
            Chunk(
                kind,
                region[i:stop],
                None,
                statement_from(texts[last:i]),
                None,
                region[i][0],
                stop - i,
            )
        )
        last = stop
        return stop

    while i < n:
        raw = texts[i]
        s = raw.strip()
        if not s or _DASHES.match(raw) or _FOOTER.match(raw):
            i += 1
        elif s.startswith(("[", "{")):
            end = find_json_end(texts, i)
            i = add("json", (end if end is not None else n - 1) + 1)
        elif s.startswith(("<explain", "<?xml")):
            i = add("xml", next((j + 1 for j in range(i, n) if "</explain>" in texts[j]), n))
        elif s.startswith("- Plan:"):
            i = add("yaml", _yaml_extent(texts, i))
        elif s.lower().startswith("query text:") or (
            looks_like_node_line(raw) and not s.startswith("->")
        ):
            i = add("text", _text_extent(texts, i))
        else:
            i += 1
    return out


def _yaml_extent(texts: list[str], start: int) -> int:
    """Index just past the YAML plan list that starts at ``start`` (``- Plan:``)."""
    indent = len(texts[start]) - len(texts[start].lstrip())
    j = start + 1
    while j < len(texts) and not _FOOTER.match(texts[j]):
        line = texts[j]
        if (
            line.strip()
            and len(line) - len(line.lstrip()) <= indent
            and not line.strip().startswith("- ")
        ):
            break
        j += 1
    return j


def _text_extent(texts: list[str], start: int) -> int:
    """Index just past the bare text plan that starts at ``start``."""
    n = len(texts)
    first = texts[start]
    j = start
    if first.strip().lower().startswith("query text:"):
        j += 1
        while j < n and not looks_like_node_line(texts[j]):
            j += 1
        if j >= n:
            return n
        first = texts[j]
    root_indent = len(first) - len(first.lstrip())
    j += 1
    while j < n:
        line = texts[j]
        s = line.strip()
        if _FOOTER.match(line):
            return j + 1
        prev = texts[j - 1]
        if (
            s
            and prev.strip()
            and (paren_balance(prev) > 0 or (closes_first(s) and not s.startswith("->")))
        ):
            j += 1
            continue
        if not s:
            # a blank line ends the plan unless the plan clearly goes on after it
            k = j + 1
            while k < n and not texts[k].strip():
                k += 1
            if k < n and _continues(texts[k], root_indent):
                j = k
                continue
            return j
        if not _continues(line, root_indent):
            return j
        j += 1
    return n


def _continues(line: str, root_indent: int) -> bool:
    s = line.strip()
    indent = len(line) - len(line.lstrip())
    if s.startswith("->") or indent > root_indent or indent < root_indent:
        return True
    if _TOP_KEYS.match(s):
        return True
    return looks_like_node_line(line)
