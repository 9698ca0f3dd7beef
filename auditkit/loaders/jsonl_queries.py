"""The auditkit query log: JSON Lines written by the Django capture app.

One JSON object per line: query records (one executed statement, with the request it belongs
to), request records (``"type": "request"``, one per HTTP request), task records
(``"type": "task"``, one per background task, version 2) and meta records (the first line, and
the writer's own counters). The format is specified in ``docs/formats/jsonl-queries.md``; this module is its reader.

The file is streamed in blocks like any large log. Statements become ``query_events`` as each
block is parsed; requests need the whole file (a request record may come after its
statements, and requests without a record are derived from their statements), so each block
hands back per-request partial sums and the request records as ``pending``, and
:meth:`JsonlQueriesParser.finish` builds the ``requests`` frame once, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders import _json
from auditkit.loaders._time import parse_series
from auditkit.loaders.base import BlockLoader, BlockParser, BlockResult, add_fingerprints
from auditkit.loaders.registry import register
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block
from auditkit.schemas import REQUESTS, cast, conform, empty

__all__ = ["FORMAT_VERSION", "JsonlQueriesLoader", "JsonlQueriesParser"]

#: the version of the format this reader knows (docs/formats/jsonl-queries.md)
FORMAT_VERSION = 2

_MYSQL_VENDORS = frozenset({"mysql", "mariadb"})
_QUERY_FIELDS = (
    "ts",
    "duration_ms",
    "sql",
    "params",
    "database",
    "alias",
    "request_id",
    "endpoint",
    "method",
    "pid",
    "thread",
    "stack",
    "db_system",
    "rows",
    "trace_id",
    "source_line",
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _params(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _utc(values: pd.Series) -> pd.Series:
    """ISO 8601 strings → UTC timestamps; values without an offset are UTC by the spec."""
    if not len(values):
        return pd.Series([], dtype="datetime64[ns, UTC]")
    return parse_series(values, format="ISO8601")


class JsonlQueriesParser(BlockParser):
    """Parses blocks of one auditkit query log (every line is a record)."""

    boundary = None

    def parse(self, block: Block) -> BlockResult:
        text, bad = block.text()
        report = ParseReport(block.source, JsonlQueriesLoader.name)
        report.lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        report.bytes = len(block.data)
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
        rows: dict[str, list[Any]] = {k: [] for k in _QUERY_FIELDS}
        requests: list[dict[str, Any]] = []
        for offset, raw in enumerate(text.split("\n")):
            if not raw.strip():
                continue
            line = block.first_line + offset
            try:
                obj = _json.loads(raw)
            except json.JSONDecodeError as exc:
                report.skip(line, "invalid JSON line", f"{exc.msg}: {raw}")
                continue
            if not isinstance(obj, dict):
                report.skip(line, "not a JSON object", raw)
                continue
            kind = obj.get("type", "query")
            if kind == "query":
                if not isinstance(obj.get("sql"), str) or not obj["sql"].strip():
                    report.skip(line, "query record without sql", raw)
                    continue
                report.ok()
                self._query(obj, line, rows)
            elif kind in ("request", "task"):
                if obj.get("request_id") in (None, ""):
                    report.skip(line, f"{kind} record without request_id", raw)
                    continue
                report.ok()
                requests.append({**obj, "_line": line})
            elif kind == "meta":
                report.ok()
                version = _int(obj.get("version"))
                if version is not None and version > FORMAT_VERSION:
                    report.warn(
                        f"written in format version {version}; this reader knows version "
                        f"{FORMAT_VERSION}: fields it does not know are ignored"
                    )
            else:
                report.skip(line, "unknown record type", raw)
        frame = self._frame(rows, block.source)
        pending: list[Any] = [("requests", requests)] if requests else []
        partial = _partial_requests(frame)
        if partial is not None:
            pending.append(("partial", partial))
        return BlockResult({"query_events": frame}, report, pending)

    @staticmethod
    def _query(obj: dict[str, Any], line: int, rows: dict[str, list[Any]]) -> None:
        rows["ts"].append(_text(obj.get("ts")))
        rows["duration_ms"].append(_float(obj.get("duration_ms")))
        rows["sql"].append(obj["sql"].strip())
        rows["params"].append(_params(obj.get("params")))
        alias = _text(obj.get("alias"))
        rows["database"].append(_text(obj.get("database")) or alias)
        rows["alias"].append(alias)
        rows["request_id"].append(_text(obj.get("request_id")) or None)
        rows["endpoint"].append(_text(obj.get("endpoint")))
        rows["method"].append(_text(obj.get("method")))
        rows["pid"].append(_int(obj.get("pid")))
        rows["thread"].append(_text(obj.get("thread")))
        rows["stack"].append(_text(obj.get("stack")))
        rows["db_system"].append(_text(obj.get("vendor")))
        rows["rows"].append(_int(obj.get("rows")))
        rows["trace_id"].append(_text(obj.get("trace_id")))
        rows["source_line"].append(line)

    @staticmethod
    def _frame(rows: dict[str, list[Any]], source: str) -> pd.DataFrame:
        df = pd.DataFrame(rows)
        if not len(df):
            return df
        df["ts"] = _utc(df["ts"])
        df["duration_ms"] = pd.to_numeric(df["duration_ms"], errors="coerce").astype("float64")
        for col in ("pid", "rows", "source_line"):
            df[col] = cast(pd.Series(df[col].tolist(), dtype="object"), "Int64", col)
        for col in ("alias", "method", "stack", "db_system"):
            df[col] = df[col].astype("string")
        df["source_format"] = JsonlQueriesLoader.name
        df["source_file"] = source
        mysql = df["db_system"].str.lower().isin(_MYSQL_VENDORS).fillna(False).to_numpy(dtype=bool)
        parts = []
        for dialect, mask in (("postgres", ~mysql), ("mysql", mysql)):
            if mask.any():
                parts.append(add_fingerprints(df[mask], dialect))  # type: ignore[arg-type]
        return pd.concat(parts).sort_index() if len(parts) > 1 else parts[0]

    def finish(self, pending: list[Any], report: ParseReport) -> dict[str, pd.DataFrame]:
        records: list[dict[str, Any]] = []
        partials: list[pd.DataFrame] = []
        for kind, payload in pending:
            if kind == "requests":
                records.extend(payload)
            else:
                partials.append(payload)
        derived = _merge_partials(partials)
        # the statements' sums by request, as plain values (one lookup per request record)
        sums: dict[str, tuple[Any, Any]] = (
            dict(
                zip(
                    derived.index.tolist(),
                    zip(derived["db_ms"].tolist(), derived["db_calls"].tolist(), strict=True),
                    strict=True,
                )
            )
            if derived is not None
            else {}
        )
        rows = []
        recorded: set[str] = set()
        for rec in records:
            rid = str(rec["request_id"])
            recorded.add(rid)
            agg = sums.get(rid)
            db_ms = _float(rec.get("db_ms"))
            db_calls = _int(rec.get("db_calls"))
            rows.append(
                {
                    "ts": _text(rec.get("ts")),
                    "request_id": rid,
                    "trace_id": _text(rec.get("trace_id")),
                    "endpoint": _text(rec.get("endpoint")),
                    "method": _text(rec.get("method")),
                    "status": _int(rec.get("status")),
                    "duration_ms": _float(rec.get("duration_ms")),
                    "db_ms": db_ms if db_ms is not None else (agg[0] if agg is not None else None),
                    "db_calls": db_calls
                    if db_calls is not None
                    else (_int(agg[1]) if agg is not None else None),
                    "cache_hits": _int(rec.get("cache_hits")),
                    "cache_misses": _int(rec.get("cache_misses")),
                    "cache_ms": _float(rec.get("cache_ms")),
                    "cpu_ms": _float(rec.get("cpu_ms")),
                    "mail_ms": _float(rec.get("mail_ms")),
                    "http_ms": _float(rec.get("http_ms")),
                    "route": _text(rec.get("route")),
                    "url_name": _text(rec.get("url_name")),
                    "view": _text(rec.get("view")),
                    "kind": "task" if rec.get("type") == "task" else "http",
                    "task_state": _text(rec.get("state")),
                    "sample_rate": _float(rec.get("sample_rate")),
                    "pid": _int(rec.get("pid")),
                    "thread": _text(rec.get("thread")),
                    "source_line": rec["_line"],
                    "source_file": report.path,
                }
            )
        frame = pd.DataFrame(rows)
        if len(frame):
            frame["ts"] = _utc(frame["ts"])
        if derived is not None:
            extra = derived[~derived.index.isin(list(recorded))].reset_index(names="request_id")
            if len(extra):
                extra["ts"] = pd.to_datetime(
                    extra.pop("start_ns").astype("Int64"), unit="ns", utc=True
                )
                end = pd.to_datetime(extra.pop("end_ns").astype("Int64"), unit="ns", utc=True)
                extra["duration_ms"] = (end - extra["ts"]).dt.total_seconds() * 1000.0
                frame = pd.concat([frame, extra], ignore_index=True) if len(frame) else extra
        if not len(frame):
            return {"requests": empty(REQUESTS)}
        frame["inferred"] = False
        frame["source_format"] = JsonlQueriesLoader.name
        frame["source_file"] = report.path
        frame["pid"] = pd.to_numeric(frame["pid"], errors="coerce").astype("Int64")
        frame["thread"] = frame["thread"].astype("string")
        if "task_state" in frame:
            frame["task_state"] = frame["task_state"].astype("string")
        if "sample_rate" in frame:
            frame["sample_rate"] = pd.to_numeric(frame["sample_rate"], errors="coerce")
        frame = frame.sort_values(["ts", "source_line"], kind="stable", na_position="last")
        return {"requests": conform(frame.reset_index(drop=True), REQUESTS)}


def _partial_requests(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Per request id in one block: first start, last end, statements, time, first fields."""
    if not len(frame) or frame["request_id"].isna().all():
        return None
    df = frame[frame["request_id"].notna()]
    # integer nanoseconds (exact), statement start = end - duration
    end = df["ts"].dt.as_unit("ns").astype("int64").astype("Int64").mask(df["ts"].isna())
    start = end - cast(df["duration_ms"].fillna(0.0) * 1e6, "Int64", "duration_ms")
    work = pd.DataFrame(
        {
            "request_id": df["request_id"].astype(str),
            "start_ns": start,
            "end_ns": end,
            "ms": df["duration_ms"],
            "endpoint": df["endpoint"],
            "method": df["method"],
            "trace_id": df["trace_id"],
            "pid": df["pid"],
            "thread": df["thread"],
            "source_line": df["source_line"],
        }
    )
    g = work.groupby("request_id", sort=False)
    out = g.agg(
        start_ns=("start_ns", "min"),
        end_ns=("end_ns", "max"),
        db_calls=("ms", "size"),
        endpoint=("endpoint", "first"),
        method=("method", "first"),
        trace_id=("trace_id", "first"),
        pid=("pid", "first"),
        thread=("thread", "first"),
        source_line=("source_line", "min"),
    )
    out.insert(2, "db_ms", g["ms"].sum(min_count=1))  # null when no statement was timed
    return out


def _merge_partials(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    """Combine the per-block partial sums of every request (blocks come in file order)."""
    if not parts:
        return None
    df = pd.concat(parts)
    if len(parts) == 1:
        return df
    g = df.groupby(level=0, sort=False)
    out = g.agg(
        start_ns=("start_ns", "min"),
        end_ns=("end_ns", "max"),
        db_calls=("db_calls", "sum"),
        endpoint=("endpoint", "first"),
        method=("method", "first"),
        trace_id=("trace_id", "first"),
        pid=("pid", "first"),
        thread=("thread", "first"),
        source_line=("source_line", "min"),
    )
    out.insert(2, "db_ms", g["db_ms"].sum(min_count=1))  # null when no block timed one
    return out


@register
class JsonlQueriesLoader(BlockLoader):
    """The auditkit query log (JSON Lines from the Django capture app)."""

    name = "jsonl_queries"
    frame = "query_events"
    description = "auditkit query log: JSON Lines of query and request records (docs/formats/jsonl-queries.md)"
    expected = (
        'one JSON object per line: {"ts", "duration_ms", "sql", "params", "alias", "request_id", '
        '"endpoint", "method", "pid", "thread"} or {"type": "request", …} or {"type": "task", …}'
    )

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.split("\n")[:20] if ln.strip()]
        if not lines or not lines[0].lstrip().startswith("{"):
            return 0.0
        hits = 0
        for ln in lines[:10]:
            try:
                obj = _json.loads(ln)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                return 0.0
            if obj.get("type") == "meta" and obj.get("format") == "auditkit.queries":
                return 1.0
            if ("sql" in obj and "duration_ms" in obj and "ts" in obj) or (
                obj.get("type") in ("request", "task")
                and "request_id" in obj
                and "duration_ms" in obj
            ):
                hits += 1
        return 0.95 if hits else 0.0

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        return JsonlQueriesParser()
