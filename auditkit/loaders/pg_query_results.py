"""Statistics queries with their results, as monitoring agents record them (``pg_query_results``).

The Datadog Agent's PostgreSQL check records what it sent and what came back as one JSON array
alternating SQL text and its result — the result a list of positional rows (no column names),
a list of scalars, ``[]`` or ``null``::

    ["SELECT psd.datname, xact_commit, xact_rollback, blks_read, blks_hit, … FROM pg_stat_database psd …",
     [["postgres", 124, 0, 125, 8668, …], …],
     "select checkpoints_timed, checkpoints_req, … FROM pg_stat_bgwriter",
     [[0, 214, 367, …]], …]

A result's column names are the SELECT list of its statement (the alias, else the column:
``psd.datname`` → ``datname``), parsed with sqlglot. A result of a statistics or catalog view
this package reads — ``pg_stat_database``, ``pg_stat_bgwriter``, ``pg_stat_checkpointer``,
``pg_stat_archiver``, ``pg_stat(io)_user_tables``/``_indexes``, ``pg_index``, … — whose columns
include those the view's own format recognises is read by that format's row logic
(:mod:`auditkit.loaders.pg_stat_views`, :mod:`auditkit.loaders.pg_catalog`): the same frames
and columns as a CSV export of the view. One record is one statement with its result; the
others (settings probes, replication queries, a partial ``pg_stat_database`` select) are
skipped with the reason. The snapshot holds no time: ``ts`` comes from option ``ts`` when given.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from auditkit.errors import InputError
from auditkit.loaders.base import Loader
from auditkit.loaders.pg_catalog import _CatalogLoader
from auditkit.loaders.registry import get_loader, register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["PgQueryResultsLoader", "select_names"]


def select_names(sql: str) -> tuple[list[str], list[str]] | None:
    """(output column names, tables read) of a SELECT, or None when it does not parse."""
    import sqlglot
    from sqlglot import exp

    first = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if first not in ("SELECT", "WITH"):
        return None
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, RecursionError):
        return None
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return None
    names = [(e.alias_or_name or f"column{i + 1}").lower() for i, e in enumerate(select.selects)]
    tables = [t.name.lower() for t in tree.find_all(exp.Table)]
    return names, tables


@register
class PgQueryResultsLoader(Loader):
    """A JSON array of statements and their positional results (Datadog Agent snapshots)."""

    name = "pg_query_results"
    frame = "server_status"
    description = "PostgreSQL statistics queries with their results, alternating in a JSON array (Datadog Agent)"
    expected = (
        'a JSON array alternating SQL text and its result rows, e.g. ["SELECT … FROM '
        'pg_stat_database", [[…], …], …]'
    )

    def sniff(self, head: str, path: Path) -> float:
        start = head.lstrip()[:2000]
        if not start.startswith("["):
            return 0.0
        first = start[1:].lstrip()
        if not first.startswith('"'):
            return 0.0
        word = first[1:20].lstrip().split(" ", 1)[0].upper()
        if word not in ("SELECT", "SHOW", "WITH"):
            return 0.0
        return 0.9 if "pg_stat" in head or "pg_settings" in head else 0.6

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        from auditkit.loaders.base import nothing_parsed
        from auditkit.loaders.pg_stat_views import VIEW_FORMATS

        began = time.perf_counter()
        report = ParseReport(str(path), self.name)
        text, _bad = read_text(path)
        report.lines = text.count("\n") + 1
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(
                f"not valid JSON ({getattr(exc, 'msg', type(exc).__name__)})",
                path=path,
                line=getattr(exc, "lineno", None),
                hint=self.expected,
            ) from None
        if not isinstance(data, list):
            raise InputError("not a JSON array", path=path, hint=self.expected)
        per_format: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for record, i in enumerate(range(0, len(data), 2), start=1):
            sql = data[i]
            result = data[i + 1] if i + 1 < len(data) else None
            if not isinstance(sql, str):
                report.skip(record, "not a statement", str(sql)[:160])
                continue
            excerpt = " ".join(sql.split())[:160]
            parsed = select_names(sql)
            if parsed is None:
                report.skip(record, "not a SELECT", excerpt)
                continue
            names, tables = parsed
            view = next((t for t in tables if t in VIEW_FORMATS), None)
            loader = get_loader(VIEW_FORMATS[view]) if view else None
            if not isinstance(loader, _CatalogLoader):
                report.skip(record, "not a statistics view read here", excerpt)
                continue
            if not any(req <= set(names) for req in loader.required):
                report.skip(record, f"{view} without the columns of its export", excerpt)
                continue
            if not isinstance(result, list) or not result:
                report.skip(record, "no result rows", excerpt)
                continue
            rows = per_format.setdefault(loader.name, {})
            kept = 0
            for values in result:
                if not isinstance(values, list) or len(values) != len(names):
                    continue
                out = loader.row(dict(zip(names, values, strict=True)))
                if isinstance(out, str):
                    continue
                kept += 1
                for frame_name, produced in out.items():
                    for row in produced if isinstance(produced, list) else [produced]:
                        row.setdefault("source_file", str(path))
                        row.setdefault("source_line", record)
                        rows.setdefault(frame_name, []).append(row)
            if kept:
                report.ok()
            else:
                report.skip(record, "no row of the view's shape", excerpt)
        frames: dict[str, Any] = {}
        for fmt, rows in per_format.items():
            loader = get_loader(fmt)
            assert isinstance(loader, _CatalogLoader)
            loader.complete(rows, path, options)
            scratch = ParseReport(str(path), fmt)
            for name, df in loader.frames_from(rows, scratch).items():
                if len(df) == 0:
                    continue
                frames[name] = df if name not in frames else _concat(frames[name], df)
        for name, df in frames.items():
            report.events[name] = len(df)
        report.elapsed_s = time.perf_counter() - began
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        if self.frame not in frames:
            from auditkit.schemas import FRAMES, empty

            frames[self.frame] = empty(FRAMES[self.frame])
        return LoadResult(self.name, frames, report, primary=self.frame)


def _concat(a: Any, b: Any) -> Any:
    import pandas as pd

    from auditkit.schemas import FRAMES, conform

    name = next((n for n, s in FRAMES.items() if list(a.columns[: len(s.names)]) == s.names), None)
    both = pd.concat([a, b], ignore_index=True)
    return conform(both, FRAMES[name]) if name else both
