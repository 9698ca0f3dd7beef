"""pg_stat_statements exports: CSV, JSON and psql output, into the ``statement_stats`` frame.

Three loaders read what a client can hand over:

* ``pgss_csv`` — ``\\copy (SELECT * FROM pg_stat_statements) TO 'pgss.csv' CSV HEADER``, or any
  CSV/TSV/semicolon export of the view (pgAdmin, DBeaver, a monitoring tool);
* ``pgss_json`` — a JSON array of row objects (``SELECT json_agg(s) FROM pg_stat_statements s``),
  an object holding one (``{"rows": [...]}``, optionally with ``"info"``: the
  ``pg_stat_statements_info`` row), or JSON lines (``SELECT row_to_json(s) …`` with ``psql -At``);
* ``pgss_psql`` — psql output: aligned tables (multi-line query cells continued with ``+``),
  unaligned (``\\a``) or expanded (``\\x``) ones, also inside a longer transcript such as the
  pg_regress ``.out`` files of the extension; every table with ``calls`` and ``query``
  columns is read.

One row per pg_stat_statements row. Column names of every server generation are mapped onto
the frame: ``total_time``/``mean_time``/… (PostgreSQL ≤ 12) and ``total_exec_time``/
``mean_exec_time``/``stddev_exec_time``/… (13+) become ``total_ms``, ``mean_ms``, ``min_ms``,
``max_ms``, ``stddev_ms``; ``queryid`` → ``query_id`` (kept as text: it is a signed 64-bit
integer that a float would round); ``datname`` (else ``dbid``) → ``database``; ``rolname``/
``usename`` (else ``userid``) → ``user``; ``query`` → ``sample_sql``, fingerprinted like logged
statements (``$1`` and literals alike become ``?``), so pg_stat_statements joins the logs.
Every other column is kept as an extra under its own name, typed (numbers, booleans,
timestamps); the PostgreSQL ≤ 16 names ``blk_read_time``/``blk_write_time`` are renamed to
their 17+ names ``shared_blk_read_time``/``shared_blk_write_time`` so exports of different
servers concatenate. Planning time stays apart (``total_plan_time``…): ``total_ms`` is
execution time, as in PostgreSQL ≤ 12.

Several rows can share a fingerprint (different users or databases, ``toplevel``, IN lists of
different lengths before PostgreSQL 18): :func:`aggregate_pgss` merges them exactly (sums;
mean and population standard deviation recombined from per-row sums of squares; min, max).
:func:`pgss_delta` subtracts two snapshots and reports resets between them.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from auditkit.errors import NothingParsedError
from auditkit.lazy_re import compile_later
from auditkit.loaders import _json
from auditkit.loaders._psql_tables import psql_tables
from auditkit.loaders._records import BadRecord, Row, csv_records
from auditkit.loaders.base import Loader, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import STATEMENT_STATS, conform
from auditkit.sql.fingerprint import fingerprint_many

__all__ = [
    "PGSS_COLUMNS",
    "PgssCsvLoader",
    "PgssJsonLoader",
    "PgssPsqlLoader",
    "aggregate_pgss",
    "pgss_delta",
    "pgss_frame",
]

#: pg_stat_statements column (any server version) → statement_stats column
PGSS_COLUMNS: dict[str, str] = {
    "calls": "calls",
    "total_time": "total_ms",
    "total_exec_time": "total_ms",
    "mean_time": "mean_ms",
    "mean_exec_time": "mean_ms",
    "min_time": "min_ms",
    "min_exec_time": "min_ms",
    "max_time": "max_ms",
    "max_exec_time": "max_ms",
    "stddev_time": "stddev_ms",
    "stddev_exec_time": "stddev_ms",
    "rows": "rows",
    "shared_blks_hit": "shared_blks_hit",
    "shared_blks_read": "shared_blks_read",
    "queryid": "query_id",
    "query": "sample_sql",
    "datname": "database",
    "rolname": "user",
    "usename": "user",
}
#: PostgreSQL ≤ 16 names of columns renamed in 17
_RENAMED = {"blk_read_time": "shared_blk_read_time", "blk_write_time": "shared_blk_write_time"}
#: extras that add up across rows and between snapshots (counters and their times)
_ADDITIVE = compile_later(
    r"^(?:plans|total_plan_time|(?:shared|local|temp)_blks?_\w+|\w*blk_(?:read|write)_time|wal_\w+"
    r"|jit_\w+|parallel_workers_\w+|generic_plan_calls|custom_plan_calls)$"
)
_ID_COLUMNS = ("userid", "dbid")
_TRUE = {"t", "true", "True", "TRUE", "yes", "on"}
_FALSE = {"f", "false", "False", "FALSE", "no", "off"}
_TS_NAMES = compile_later(r"(?:_since|stats_reset|_at|^ts)$")


# -- the common mapping ------------------------------------------------------------------------
def pgss_frame(
    raw: pd.DataFrame, source: str = "", lines: Iterable[int] | None = None
) -> pd.DataFrame:
    """Map a frame of pg_stat_statements columns (cells as text or JSON values) to statement_stats.

    Columns are matched case-insensitively; unknown ones are kept as typed extras. ``lines``
    gives each row's line (or record) number in ``source``. Rank and share are computed over
    the rows given.
    """
    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    raw = raw.loc[:, ~raw.columns.duplicated()]
    raw = raw.rename(columns=_RENAMED)
    out: dict[str, Any] = {}
    for col in raw.columns:
        target = PGSS_COLUMNS.get(col)
        if target and target not in out:
            out[target] = raw[col]
    df = pd.DataFrame(out, index=raw.index)
    for target in ("calls", "rows", "shared_blks_hit", "shared_blks_read"):
        if target in df:
            df[target] = _numeric(df[target]).round().astype("Int64")
    for target in ("total_ms", "mean_ms", "min_ms", "max_ms", "stddev_ms"):
        if target in df:
            df[target] = _numeric(df[target]).astype("float64")
    if "total_ms" not in df:
        df["total_ms"] = (
            (df["mean_ms"] * df["calls"].astype("float64")) if "mean_ms" in df else np.nan
        )
    if "mean_ms" not in df and "calls" in df:
        df["mean_ms"] = df["total_ms"] / df["calls"].astype("float64").where(df["calls"] > 0)
    for target in ("query_id", "sample_sql", "database", "user"):
        if target in df:
            df[target] = _text(df[target])
    if "database" not in df and "dbid" in raw:
        df["database"] = _text(raw["dbid"])
    if "user" not in df and "userid" in raw:
        df["user"] = _text(raw["userid"])
    if "sample_sql" in df:
        fps, ids = fingerprint_many(df["sample_sql"].fillna(""), "postgres")
        df["fingerprint"], df["fingerprint_id"] = fps.to_numpy(), ids.to_numpy()
    df["sources"] = source
    mapped = {c for c in raw.columns if c in PGSS_COLUMNS}
    for col in raw.columns:
        if col in mapped and col not in _ID_COLUMNS:
            continue
        df[col] = _text(raw[col]) if col in _ID_COLUMNS else _typed(raw[col], col)
    df["source_file"] = pd.Series(source, index=df.index, dtype="string")
    if lines is not None:
        df["source_line"] = pd.array(list(lines), dtype="Int64")
    return _ranked(conform(df.reset_index(drop=True), STATEMENT_STATS))


def _numeric(values: pd.Series) -> pd.Series:
    if values.dtype == object or str(values.dtype).startswith("string"):
        values = values.astype("string").str.strip()
    return pd.to_numeric(values, errors="coerce")


def _text(values: pd.Series) -> pd.Series:
    def one(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v == "":
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return pd.Series([one(v) for v in values], index=values.index, dtype="string")


def _typed(values: pd.Series, name: str) -> pd.Series:
    """Type one extra column: booleans, numbers, timestamps, else text."""
    present = values.dropna()
    present = present[present.astype(str).str.strip() != ""]
    if len(present) == 0:
        return pd.Series(pd.NA, index=values.index, dtype="string")
    as_text = present.astype(str).str.strip()
    if as_text.isin(_TRUE | _FALSE).all():
        mapped = (
            values.astype("string")
            .str.strip()
            .map(
                lambda v: True if v in _TRUE else False if v in _FALSE else None, na_action="ignore"
            )
        )
        return mapped.astype("boolean")
    num = pd.to_numeric(as_text, errors="coerce")
    if name.endswith("_time") and num.notna().all():  # float8 milliseconds, even when all 0
        return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype("float64")
    if num.notna().all():
        full = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
        integral = not as_text.str.contains(r"[.eE]").any() and (num % 1 == 0).all()
        return (
            full.round().astype("Int64")
            if integral and num.abs().max() < 2**63
            else full.astype("float64")
        )
    if _TS_NAMES.search(name):
        stamps = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
        if stamps.notna().sum() == len(present):
            return stamps
    return values.astype("string")


def _ranked(df: pd.DataFrame, order: bool = False) -> pd.DataFrame:
    """Set ``rank`` (1 = largest total time) and ``share`` of the total over ``df``.

    ``order`` sorts the rows by rank (profiles); loaders keep the file's order.
    """
    if len(df) == 0:
        return df
    by_total = df.sort_values(
        ["total_ms", "calls"], ascending=[False, False], na_position="last", kind="stable"
    ).index
    rank = pd.Series(np.arange(1, len(df) + 1), index=by_total)
    df["rank"] = rank.reindex(df.index).astype("Int64")
    grand = df["total_ms"].sum(min_count=1)
    df["share"] = df["total_ms"] / grand if grand and grand > 0 else np.nan
    return df.sort_values("rank", kind="stable").reset_index(drop=True) if order else df


# -- loaders -------------------------------------------------------------------------------------
class _PgssLoader(Loader):
    """Shared parts: reading the file, the report, the 'no calls/query columns' error."""

    frame = "statement_stats"
    dialect = "postgres"
    expected = "a pg_stat_statements export with at least the calls and query columns"
    hint: ClassVar[str] = (
        "export the whole view: \\copy (SELECT * FROM pg_stat_statements) TO 'pgss.csv' CSV HEADER"
    )

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        text, bad = read_text(path)
        report.bytes = len(text.encode("utf-8", errors="replace"))
        report.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        for n in bad[:5]:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {n}")
        raw, lines = self.records(text, path, report)
        frame = self._frame(raw, lines, path, report)
        report.events[self.frame] = len(frame)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, {self.frame: frame}, report, primary=self.frame)

    def records(
        self, text: str, path: str | Path, report: ParseReport
    ) -> tuple[pd.DataFrame, list[int]]:
        """The file's rows as a frame of cells, and each row's line number."""
        raise NotImplementedError

    def _frame(
        self, raw: pd.DataFrame, lines: list[int], path: str | Path, report: ParseReport
    ) -> pd.DataFrame:
        columns = {str(c).strip().lower() for c in raw.columns}
        if not {"calls", "query"} <= columns:
            found = ", ".join(str(c) for c in raw.columns) or "none"
            report.read += len(raw)
            report.skipped["no calls/query columns"] += len(raw)
            raise NothingParsedError(
                f"no calls and query columns in this {self.name} file (found: {found})",
                path=path,
                expected=self.expected,
                report=report,
                hint=self.hint,
            )
        raw = raw.reset_index(drop=True)
        lower = raw.rename(columns=lambda c: str(c).strip().lower())
        calls = _numeric(
            lower["calls"].iloc[:, 0]
            if isinstance(lower["calls"], pd.DataFrame)
            else lower["calls"]
        )
        query = (
            lower["query"].iloc[:, 0]
            if isinstance(lower["query"], pd.DataFrame)
            else lower["query"]
        )
        no_query = query.isna() | (query.astype("string").str.strip() == "")
        bad_calls = calls.isna()
        keep = ~(bad_calls | no_query)
        for reason, mask in (
            ("calls is not a number", bad_calls),
            ("row without a query", no_query & ~bad_calls),
        ):
            for idx in np.flatnonzero(mask.to_numpy()):
                report.skip(lines[idx], reason, ", ".join(f"{v}" for v in raw.iloc[idx].tolist()))
        report.ok(int(keep.sum()))
        kept_lines = [line for line, k in zip(lines, keep.to_numpy(), strict=True) if k]
        return pgss_frame(raw[keep.to_numpy()], str(path), kept_lines)


@register
class PgssCsvLoader(_PgssLoader):
    """pg_stat_statements as CSV (``\\copy … CSV HEADER``; comma, semicolon, tab or pipe)."""

    name = "pgss_csv"
    description = "pg_stat_statements export as CSV"

    def sniff(self, head: str, path: Path) -> float:
        first = head.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
        if not first or first.startswith(("{", "[")) or " | " in first:
            return 0.0
        names = {c.strip().strip('"') for c in re.split(r"[,;\t|]", first)}
        if not {"calls", "query"} <= names:
            return 0.0
        strong = names & {
            "total_time",
            "total_exec_time",
            "queryid",
            "mean_time",
            "mean_exec_time",
            "userid",
            "dbid",
        }
        if re.search(r"(?m)^\(\d+ rows?\)$", head) or ("|" in first and "," not in first):
            return 0.5  # psql unaligned output: pgss_psql reads its multi-line cells right
        return 0.95 if strong else 0.7

    def records(
        self, text: str, path: str | Path, report: ParseReport
    ) -> tuple[pd.DataFrame, list[int]]:
        text = text.lstrip("\ufeff")
        first = text.split("\n", 1)[0]
        if first.lower().startswith("sep=") and len(first.strip()) == 5:  # Excel's delimiter line
            delimiter = first.strip()[4]
            text = text.split("\n", 1)[1] if "\n" in text else ""
            offset = 1
        else:
            counts = {d: first.count(d) for d in ",;\t|"}
            delimiter = max(counts, key=lambda d: counts[d])
            offset = 0
        records = csv_records(text, delimiter, first_line=1 + offset)
        top = next(records, None)
        header: list[str] = top.values if isinstance(top, Row) else []
        if isinstance(top, BadRecord):
            report.skip(top.line, top.reason, top.excerpt)
        rows: list[list[str]] = []
        lines: list[int] = []
        for rec in records:
            if isinstance(rec, BadRecord):
                report.skip(rec.line, rec.reason, rec.excerpt)
                continue
            start, row = rec.line - offset, rec.values
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                report.skip(
                    start + offset,
                    f"{len(row)} fields, the header has {len(header)}",
                    delimiter.join(row),
                )
                continue
            rows.append(row)
            lines.append(start + offset)
        return pd.DataFrame(rows, columns=header, dtype="object"), lines


@register
class PgssJsonLoader(_PgssLoader):
    """pg_stat_statements as JSON: an array, ``{"rows": [...]}`` (with ``"info"``), or JSON lines."""

    name = "pgss_json"
    description = "pg_stat_statements export as JSON or JSON lines"
    hint: ClassVar[str] = "export the whole view: SELECT json_agg(s) FROM pg_stat_statements s"

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip("\ufeff \t\r\n")[:1]
        if start not in ("[", "{"):
            return 0.0
        if '"calls"' in head and '"query"' in head:
            return 0.95
        return 0.0

    def records(
        self, text: str, path: str | Path, report: ParseReport
    ) -> tuple[pd.DataFrame, list[int]]:
        text = text.lstrip("\ufeff")
        objects: list[Mapping[str, Any]]
        info: Mapping[str, Any] = {}
        try:
            doc = _json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if doc is not None:
            objects, info = _rows_of(doc)
            lines = list(range(1, len(objects) + 1))
            bad = [i for i, o in enumerate(objects) if not isinstance(o, Mapping)]
            for i in bad:
                report.skip(i + 1, "not a JSON object", json.dumps(objects[i])[:160])
            objects = [o for o in objects if isinstance(o, Mapping)]
            lines = [n for i, n in enumerate(lines) if i not in set(bad)]
        else:
            # JSON lines, or an array cut short (json_agg writes one object per line): read
            # object by object, ignoring the array's brackets and commas around each line
            objects, lines = [], []
            for n, line in enumerate(text.split("\n"), start=1):
                item = line.strip().lstrip("[").rstrip(",").rstrip("]").strip().rstrip(",")
                if not item:
                    continue
                try:
                    obj = _json.loads(item)
                except json.JSONDecodeError:
                    report.skip(n, "invalid JSON", line)
                    continue
                if not isinstance(obj, Mapping):
                    report.skip(n, "not a JSON object", line)
                    continue
                objects.append(obj)
                lines.append(n)
            if text.lstrip().startswith("["):
                report.warn(
                    "not valid JSON as a whole (cut short?): the array was read object by object"
                )
        # object dtype: a 64-bit queryid must not pass through float
        frame = (
            pd.DataFrame([dict(o) for o in objects], dtype="object") if objects else pd.DataFrame()
        )
        for key in ("dealloc", "stats_reset"):
            if key in info and key not in frame:
                frame[key] = info[key]
        return frame.astype("object"), lines


def _rows_of(doc: Any) -> tuple[list[Any], Mapping[str, Any]]:
    """The row objects of a JSON document, and the pg_stat_statements_info object if present."""
    if isinstance(doc, list):
        return doc, {}
    if isinstance(doc, Mapping):
        info = doc.get("info") or doc.get("pg_stat_statements_info") or {}
        if isinstance(info, list):
            info = info[0] if info else {}
        for key in ("rows", "pg_stat_statements", "statements", "data", "results"):
            if isinstance(doc.get(key), list):
                return doc[key], info if isinstance(info, Mapping) else {}
        for value in doc.values():
            if (
                isinstance(value, list)
                and value
                and isinstance(value[0], Mapping)
                and "calls" in value[0]
            ):
                return value, info if isinstance(info, Mapping) else {}
        return [doc], {}
    return [], {}


@register
class PgssPsqlLoader(_PgssLoader):
    """pg_stat_statements in psql output: aligned, unaligned or expanded tables (also .out files)."""

    name = "pgss_psql"
    description = "pg_stat_statements rows in psql output (aligned, unaligned or expanded)"
    expected = "psql result tables with calls and query columns"

    def sniff(self, head: str, path: Path) -> float:
        for m in re.finditer(r"(?m)^(.*\bcalls\b.*)$", head):
            line = m.group(1)
            if re.search(r"\bquery\b", line) and "|" in line:
                following = head[m.end() + 1 : m.end() + 400].split("\n", 1)[0].strip()
                if re.fullmatch(r"\+?-+(?:\+-+)+\+?", following):
                    return 0.9
                if " | " not in line and re.fullmatch(r"[\w?|]+", line.strip()):
                    return 0.8
        if (
            re.search(r"(?m)^-\[ RECORD 1 \]", head)
            and re.search(r"(?m)^calls\s+\|", head)
            and re.search(r"(?m)^query\s+\|", head)
        ):
            return 0.9
        return 0.0

    def records(
        self, text: str, path: str | Path, report: ParseReport
    ) -> tuple[pd.DataFrame, list[int]]:
        tables = psql_tables(text.replace("\r\n", "\n"))
        wanted = [t for t in tables if "calls" in t.columns and "query" in t.columns]
        if not wanted:
            found = sorted({c for t in tables for c in t.columns})
            return pd.DataFrame(columns=found or []), []
        frames: list[pd.DataFrame] = []
        lines: list[int] = []
        for t in wanted:
            if t.footer_rows is not None and t.footer_rows != len(t.rows):
                report.warn(
                    f"table at line {t.first_line}: psql counted {t.footer_rows} rows, {len(t.rows)} read"
                )
            cols = _dedupe(t.columns)
            frames.append(pd.DataFrame(t.rows, columns=cols, dtype="object"))
            lines.extend(t.lines)
        if len(wanted) > 1:
            report.warn(
                f"{len(wanted)} result tables with calls and query columns were read (lines {', '.join(str(t.first_line) for t in wanted[:10])})"
            )
        return pd.concat(frames, ignore_index=True, sort=False), lines


def _dedupe(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        seen[c] = seen.get(c, 0) + 1
        out.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return out


# -- merging rows and snapshots ----------------------------------------------------------------
def _moments(df: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row: calls, sum of times and sum of squared times (population moments)."""
    n = df["calls"].astype("float64").fillna(0.0)
    mean = df["mean_ms"].astype("float64")
    mean = mean.where(mean.notna(), df["total_ms"].astype("float64") / n.where(n > 0))
    sd = (
        df["stddev_ms"].astype("float64").fillna(0.0)
        if "stddev_ms" in df
        else pd.Series(0.0, index=df.index)
    )
    s1 = df["total_ms"].astype("float64").where(df["total_ms"].notna(), mean * n)
    s2 = n * (sd * sd + mean * mean)
    return n, s1, s2


def aggregate_pgss(df: pd.DataFrame) -> pd.DataFrame:
    """Merge pg_stat_statements rows that share a ``fingerprint_id`` into one row each.

    Calls, total time, rows, block counters and the other additive columns (plans, planning
    time, WAL, JIT) add up; ``mean_ms`` is recomputed from the sums; ``stddev_ms`` combines the
    rows' population deviations through their sums of squares (exact, like merging two
    Welford accumulators); ``min_ms``/``max_ms`` are the extremes. ``sample_sql`` and
    ``query_id`` come from the row with the slowest execution, ``database`` and ``user`` from
    the row with the most calls; ``pgss_rows`` counts the rows merged. Ranked by total time.

    Example::

        >>> rows = pd.DataFrame({"fingerprint_id": ["a", "a"], "fingerprint": ["q", "q"],
        ...     "calls": [1, 3], "total_ms": [2.0, 6.0], "mean_ms": [2.0, 2.0], "stddev_ms": [0.0, 0.0],
        ...     "min_ms": [2.0, 2.0], "max_ms": [2.0, 2.0]})
        >>> aggregate_pgss(rows)[["calls", "total_ms", "mean_ms"]].to_dict("records")
        [{'calls': 4, 'total_ms': 8.0, 'mean_ms': 2.0}]
    """
    if len(df) == 0:
        return conform(df, STATEMENT_STATS)
    df = df.reset_index(drop=True)
    n, s1, s2 = _moments(df)
    work = pd.DataFrame({"fid": df["fingerprint_id"], "_n": n, "_s1": s1, "_s2": s2})
    sums = ["calls", "rows", "shared_blks_hit", "shared_blks_read"]
    extra_sums = [
        c for c in df.columns if _ADDITIVE.match(str(c)) and pd.api.types.is_numeric_dtype(df[c])
    ]
    for c in sums + extra_sums:
        if c in df:
            work[c] = df[c]
    g = work.groupby("fid", sort=False)
    out = g[[c for c in work.columns if c != "fid"]].sum(min_count=1)
    first = df.groupby("fingerprint_id", sort=False)
    out["fingerprint"] = first["fingerprint"].first()
    out["min_ms"] = first["min_ms"].min() if "min_ms" in df else np.nan
    out["max_ms"] = first["max_ms"].max() if "max_ms" in df else np.nan
    if "min_plan_time" in df:
        out["min_plan_time"] = first["min_plan_time"].min()
        out["max_plan_time"] = first["max_plan_time"].max()
    calls = out["_n"]
    out["total_ms"] = out["_s1"]
    out["mean_ms"] = out["_s1"] / calls.where(calls > 0)
    var = (out["_s2"] / calls.where(calls > 0) - out["mean_ms"] ** 2).clip(lower=0.0)
    out["stddev_ms"] = np.sqrt(var)
    if "plans" in out and "total_plan_time" in out:
        out["mean_plan_time"] = out["total_plan_time"] / out["plans"].astype("float64").where(
            out["plans"] > 0
        )
    slowest = (
        df["max_ms"].astype("float64").fillna(-1.0)
        if "max_ms" in df
        else df["total_ms"].astype("float64").fillna(-1.0)
    )
    pick = slowest.groupby(df["fingerprint_id"], sort=False).idxmax().reindex(out.index)
    for c in ("sample_sql", "query_id", "sources"):
        if c in df:
            out[c] = df.loc[pick.to_numpy(), c].to_numpy()
    busiest = (
        df["calls"]
        .astype("float64")
        .fillna(-1.0)
        .groupby(df["fingerprint_id"], sort=False)
        .idxmax()
        .reindex(out.index)
    )
    for c in ("database", "user"):
        if c in df:
            out[c] = df.loc[busiest.to_numpy(), c].to_numpy()
    if "stats_since" in df:
        out["stats_since"] = first["stats_since"].min()
    out["pgss_rows"] = g.size().astype("Int64")
    out = out.drop(columns=["_n", "_s1", "_s2"]).rename_axis("fingerprint_id").reset_index()
    return _ranked(conform(out, STATEMENT_STATS), order=True)


def _key_columns(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    keys = [c for c in ("query_id", "userid", "dbid", "toplevel") if c in before and c in after]
    if "query_id" not in keys or before["query_id"].isna().any() or after["query_id"].isna().any():
        return []
    if "userid" not in keys:
        keys += [c for c in ("user", "database") if c in before and c in after and c not in keys]
    return keys


def pgss_delta(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """What ran between two pg_stat_statements snapshots, and what the comparison has to say.

    Rows are matched on queryid + userid + dbid (+ toplevel), else on the fingerprint after
    :func:`aggregate_pgss`. Counters are subtracted; ``mean_ms`` and ``stddev_ms`` are those of
    the executions in between (recovered from the difference of the sums and sums of squares);
    ``min_ms``/``max_ms`` only where the snapshot shows a new extreme. A row counts as reset —
    its after values are taken whole, as they only hold executions since the reset — when its
    calls went down, when its ``stats_since`` moved (PostgreSQL 17), or for every row when
    ``stats_reset`` (pg_stat_statements_info) changed. Each kind of reset, entries evicted
    (``dealloc`` went up) and entries gone from the second snapshot are reported as messages.
    Statements without calls in between are left out; ``reset`` marks the rows taken whole.
    """
    messages: list[str] = []
    keys = _key_columns(before, after)
    if not keys:
        before, after = aggregate_pgss(before), aggregate_pgss(after)
        keys = ["fingerprint_id"]
        messages.append(
            "no queryid/userid/dbid in both snapshots: rows were matched by fingerprint"
        )
    b = before.drop_duplicates(subset=keys, keep="last").set_index(keys)
    a = after.drop_duplicates(subset=keys, keep="last").set_index(keys)
    both = a.index.intersection(b.index)
    gone = b.index.difference(a.index)

    global_reset = False
    if "stats_reset" in a and "stats_reset" in b:
        ra, rb = (
            pd.to_datetime(a["stats_reset"], utc=True).max(),
            pd.to_datetime(b["stats_reset"], utc=True).max(),
        )
        if pd.notna(ra) and pd.notna(rb) and ra != rb:
            global_reset = True
            messages.append(
                f"pg_stat_statements was reset at {ra.isoformat()} (pg_stat_statements_info.stats_reset) "
                "between the snapshots: the second snapshot's values are used as the delta; "
                "executions between the first snapshot and the reset are lost"
            )
    if "dealloc" in a and "dealloc" in b:
        da, db = _numeric(a["dealloc"]).max(), _numeric(b["dealloc"]).max()
        if pd.notna(da) and pd.notna(db) and da > db and not global_reset:
            messages.append(
                f"{int(da - db)} entries were evicted between the snapshots (dealloc {int(db)} → {int(da)}): "
                "evicted statements are undercounted; raise pg_stat_statements.max"
            )

    reset = pd.Series(global_reset, index=a.index, dtype=bool)
    if not global_reset and len(both):
        fewer = a.loc[both, "calls"].astype("float64") < b.loc[both, "calls"].astype("float64")
        reset.loc[both] = fewer.to_numpy()
        if fewer.any():
            messages.append(
                f"calls went down for {int(fewer.sum())} statement(s) (reset, or evicted and tracked again): "
                f"their second-snapshot values are used as the delta (queryid {_sample(fewer)})"
            )
        if "stats_since" in a and "stats_since" in b:
            sa = pd.to_datetime(a.loc[both, "stats_since"], utc=True)
            sb = pd.to_datetime(b.loc[both, "stats_since"], utc=True)
            moved = (sa != sb) & sa.notna() & sb.notna() & ~fewer
            if moved.any():
                reset.loc[moved[moved].index] = True
                messages.append(
                    f"stats_since changed for {int(moved.sum())} statement(s) (their counters restarted): "
                    f"their second-snapshot values are used as the delta (queryid {_sample(moved)})"
                )
    if len(gone) and not global_reset:
        messages.append(
            f"{len(gone)} statement(s) of the first snapshot are missing from the second (evicted or reset)"
        )

    delta = a.copy()
    matched = both[~reset.loc[both].to_numpy()] if len(both) else both
    if len(matched):
        _subtract(delta, a.loc[matched], b.loc[matched], matched)
    delta["reset"] = reset.astype("boolean")
    delta = delta.reset_index()
    delta = delta[delta["calls"].fillna(0) > 0].reset_index(drop=True)
    return _ranked(conform(delta, STATEMENT_STATS), order=True), messages


def _sample(mask: pd.Series) -> str:
    ids = [str(k[0] if isinstance(k, tuple) else k) for k in mask[mask].index[:3]]
    return ", ".join(ids) + (", …" if int(mask.sum()) > 3 else "")


def _subtract(delta: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame, idx: pd.Index) -> None:
    """Fill ``delta`` at ``idx`` with after − before for counters and the derived statistics."""
    na, s1a, s2a = _moments(a)
    nb, s1b, s2b = _moments(b)
    dn, ds1, ds2 = na - nb, s1a - s1b, s2a - s2b
    counters = ["calls", "rows", "shared_blks_hit", "shared_blks_read"]
    counters += [
        c
        for c in a.columns
        if _ADDITIVE.match(str(c)) and pd.api.types.is_numeric_dtype(a[c]) and c in b
    ]
    for c in counters:
        if c in a and c in b:
            delta.loc[idx, c] = a[c] - b[c]
    positive = dn.where(dn > 0)
    mean = ds1 / positive
    delta.loc[idx, "total_ms"] = ds1
    delta.loc[idx, "mean_ms"] = mean
    stddev = np.sqrt((ds2 / positive - mean * mean).clip(lower=0.0))
    delta.loc[idx, "stddev_ms"] = stddev.where(
        dn != 1, 0.0
    )  # one execution: no spread (not rounding noise)
    if "max_ms" in a and "max_ms" in b:
        delta.loc[idx, "max_ms"] = a["max_ms"].where(a["max_ms"] > b["max_ms"])
    if "min_ms" in a and "min_ms" in b:
        delta.loc[idx, "min_ms"] = a["min_ms"].where(a["min_ms"] < b["min_ms"])
    if "plans" in a and "total_plan_time" in a and "mean_plan_time" in delta:
        plans = delta.loc[idx, "plans"].astype("float64")
        delta.loc[idx, "mean_plan_time"] = delta.loc[idx, "total_plan_time"].astype(
            "float64"
        ) / plans.where(plans > 0)
