"""Display-ready tables: human labels, units, thousands separators, nothing raw.

Every table a page shows goes through :func:`table`: the caller names the columns to show, each
with a label a client reads (``"DB time / request"``, not ``db_ms_per_request``) and a kind that
says how to print it (``count``, ``ms``, ``percent``, ``bytes``, ``text``, ``sql``). Missing values
print as an em dash, never ``None`` or ``NaN``, and a column empty on every row is left out;
there is no index column; SQL is redacted and
shown on one line; numbers are right-aligned with thousands separators. Cell text is
HTML-escaped (pandas does not escape a Styler by default, and client text may hold markup).

Example::

    >>> import pandas as pd
    >>> html = table(pd.DataFrame({"n": [1234.0, 5], "ms": [float("nan"), 2.5], "x": None}),
    ...              [Col("n", "calls", "count"), Col("ms", "total", "ms"), Col("x", "empty")]).html
    >>> "1,234" in html and "—" in html and "nan" not in html.lower() and "empty" not in html
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.report.html import HtmlBlock
from auditkit.report.redact import Redactor

__all__ = ["Col", "fmt_bytes", "fmt_count", "fmt_ms", "fmt_percent", "plain_number", "table"]

#: characters of a statement shown in a table cell
STATEMENT_CHARS = 240
_DASH = "—"


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return bool(isinstance(v, float) and math.isnan(v))
    except TypeError:
        return False


def fmt_count(v: Any) -> str:
    """``1,234``; an em dash when missing."""
    if _missing(v):
        return _DASH
    return f"{float(v):,.0f}"


def fmt_ms(v: Any) -> str:
    """Milliseconds: ``0.42 ms``, ``48 ms``, ``1,234 ms``, ``12.3 s`` for long ones."""
    if _missing(v):
        return _DASH
    x = float(v)
    if x >= 100_000:
        return f"{x / 1000:,.1f} s"
    if x >= 100:
        return f"{x:,.0f} ms"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.2f} ms"


def fmt_percent(v: Any) -> str:
    """A fraction as a percentage: ``21 %``, ``2.5 %``, ``0.3 %``."""
    if _missing(v):
        return _DASH
    x = float(v) * 100
    if x >= 10:
        return f"{x:.0f} %"
    if x >= 0.1:
        return f"{x:.1f} %"
    return "< 0.1 %" if x > 0 else "0 %"


def plain_number(v: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, never in exponent notation: ``0.00022``,
    ``1.11``, ``1,234``; ``≈ 0`` below a millionth (a fitted parameter at its bound).

    >>> plain_number(1.5e-17), plain_number(0.000221), plain_number(8.34e-05), plain_number(1234.5)
    ('≈ 0', '0.000221', '0.0000834', '1,234')
    """
    if _missing(v):
        return _DASH
    x = float(v)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) < 1e-6:
        return "≈ 0" if x != 0 else "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def fmt_bytes(v: Any) -> str:
    """``1.3 MB``; an em dash when missing."""
    if _missing(v):
        return _DASH
    x = float(v)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if x < 1024 or unit == "TB":
            return f"{x:,.0f} {unit}" if unit == "B" else f"{x:,.1f} {unit}"
        x /= 1024
    return f"{x:,.1f} TB"


def _one_line(text: str, limit: int = STATEMENT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SELECT_LIST = compile_later(r"(?is)^(\(?\s*SELECT\s+(?:DISTINCT\s+)?)(.{80,}?)(\s+FROM\s)")


_ROW = r"\((?:[^()]|\([^()]*\))*\)"
#: a multi-row VALUES list: its first row stands for all
_VALUES_ROWS = compile_later(rf"(?i)\b(values)\s*({_ROW})(?:\s*,\s*{_ROW})+")
#: a long list of placeholders (IN (?, ?, ?, …)): its first stands for all
_PLACEHOLDERS = compile_later(r"\((\s*(?:\?|%s|\$\d+))(?:\s*,\s*(?:\?|%s|\$\d+)){2,}\s*\)")


def short_sql(sql: str) -> str:
    """A statement for a table cell: on one line, a long select list shortened to ``…``
    (``SELECT … FROM "t" WHERE …``), a multi-row VALUES list to its first row and a long list of
    placeholders to its first; what it reads, writes and filters stays.

    >>> short_sql("INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)")
    'INSERT INTO t (a, b) VALUES (?, ?), …'
    """
    text = " ".join(str(sql).split())
    text = _VALUES_ROWS.sub(lambda m: f"{m.group(1)} {m.group(2)}, …", text)
    text = _PLACEHOLDERS.sub(lambda m: f"({m.group(1).strip()}, …)", text)
    return _SELECT_LIST.sub(lambda m: f"{m.group(1)}…{m.group(3)}", text, count=1)


@dataclass(frozen=True)
class Col:
    """One column of a displayed table: the frame's column, its label and how to print it."""

    column: str
    label: str
    kind: str = "text"  # count | ms | percent | bytes | text | sql | number


_NUMERIC = {"count", "ms", "percent", "bytes", "number"}


def _formatter(kind: str, redactor: Redactor) -> Callable[[Any], str]:
    if kind == "count":
        return fmt_count
    if kind == "ms":
        return fmt_ms
    if kind == "percent":
        return fmt_percent
    if kind == "bytes":
        return fmt_bytes
    if kind == "number":
        return lambda v: _DASH if _missing(v) else f"{float(v):,.1f}"
    if kind == "sql":
        return lambda v: _DASH if _missing(v) else _one_line(short_sql(redactor.sql(v)))
    return lambda v: _DASH if _missing(v) or str(v) == "" else _one_line(redactor.text(v), 300)


def _empty(rows: pd.DataFrame, column: str) -> bool:
    """True when ``column`` is absent or holds nothing on any row (missing or blank)."""
    if column not in rows:
        return True
    return all(_missing(v) or (isinstance(v, str) and not v.strip()) for v in rows[column])


def table(
    df: pd.DataFrame,
    columns: Sequence[Col],
    *,
    caption: str | None = None,
    redactor: Redactor | None = None,
    limit: int | None = None,
) -> HtmlBlock:
    """``df``'s ``columns`` as an HTML table (see the module docstring)."""
    red = redactor or Redactor()
    rows = df.head(limit) if limit else df
    if len(rows):  # a column empty on every row says nothing: leave it out
        shown = [c for c in columns if not _empty(rows, c.column)]
        columns = shown or list(columns[:1])
    head = "".join(
        f'<th class="{"ak-num" if c.kind in _NUMERIC else "ak-text"}">{escape(c.label)}</th>'
        for c in columns
    )
    body = []
    formats = [(c, _formatter(c.kind, red)) for c in columns]
    for rec in rows.to_dict("records"):
        cells = []
        for c, f in formats:
            value = rec.get(c.column)
            cls = "ak-num" if c.kind in _NUMERIC else "ak-sql" if c.kind == "sql" else "ak-text"
            cells.append(f'<td class="{cls}">{escape(f(value))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    html = (
        f'<table class="ak-table">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return HtmlBlock(html, f"{len(rows)} rows")
