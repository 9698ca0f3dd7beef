"""What the database server logged besides timed statements: errors, deadlocks, lock waits and
temporary files.

Works on the ``server_events`` frame (PostgreSQL server logs). Errors are grouped by SQLSTATE
and message shape (numbers and quoted values replaced), so a thousand ``duplicate key``
errors are one finding with a count; temporary files are grouped by statement fingerprint with
their total size, which is the evidence for raising ``work_mem`` for that statement or
rewriting it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, cast

import pandas as pd

from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject
from auditkit.sql.fingerprint import fingerprint_many

__all__ = ["server_errors", "temp_files"]

_SHAPE = re.compile(r'"[^"]*"|\'[^\']*\'|\b\d+(?:\.\d+)?\b')


def _shape(message: str) -> str:
    return _SHAPE.sub("?", message)


class _SourceRow(Protocol):
    """A ``server_events`` row from ``itertuples()`` (pandas-stubs types its fields as any scalar)."""

    source_file: str
    source_line: int | None  # nullable Int64: NA when unknown


def _rows(g: pd.DataFrame) -> Iterable[_SourceRow]:
    return cast("Iterable[_SourceRow]", g.itertuples())


def server_errors(events: pd.DataFrame) -> list[Finding]:
    """Errors (ERROR/FATAL/PANIC), deadlocks and lock waits, grouped by kind and message shape."""
    if len(events) == 0:
        return []
    df = events[events["kind"].isin(["error", "deadlock", "lock_wait"])].copy()
    if len(df) == 0:
        return []
    df["shape"] = df["message"].astype(str).map(_shape)
    out = []
    for key, g in df.groupby(["kind", df["sqlstate"].fillna(""), "shape"], sort=False):
        kind, sqlstate, shape = cast("tuple[str, str, str]", key)
        n = len(g)
        sev = g["severity"].astype(str).str.upper()
        severity = (
            Severity.HIGH
            if kind == "deadlock" or sev.isin(["PANIC"]).any()
            else (
                Severity.MEDIUM
                if kind == "lock_wait" or n >= 100 or sev.isin(["FATAL"]).any()
                else Severity.LOW
            )
        )
        waited = pd.to_numeric(g["duration_ms"], errors="coerce")
        what = {"deadlock": "Deadlocks", "lock_wait": "Lock waits"}.get(str(kind), "Server errors")
        advice = {
            "deadlock": "Take row locks in a consistent order (e.g. select_for_update() ordered by primary key) and keep "
            "transactions short.",
            "lock_wait": "Find the blocking transaction (pg_stat_activity, pg_locks): long transactions or "
            "select_for_update() held across slow work; keep transactions short, move work out of atomic().",
        }.get(
            str(kind),
            "Fix the cause in the application; errors abort the transaction and are often retried.",
        )
        out.append(
            Finding(
                check="server_errors",
                severity=severity,
                title=f"{what}: {shape[:90]}",
                summary=f"{n} × {kind} (SQLSTATE {sqlstate or 'n/a'}) logged by the server"
                + (f", {waited.sum() / 1000:.1f} s waited in total" if waited.notna().any() else "")
                + ".",
                subject=Subject(
                    expression=shape[:200],
                    file=str(g["source_file"].iloc[0]) if "source_file" in g else None,
                ),
                metrics={
                    "count": n,
                    "sqlstate": sqlstate or None,
                    "waited_ms": float(waited.sum()) if waited.notna().any() else None,
                },
                recommendation=Recommendation(summary=advice),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN,
                    items=tuple(
                        {"source_file": str(r.source_file), "source_line": int(r.source_line)}
                        for r in _rows(g.head(5))
                        if pd.notna(r.source_line)
                    ),
                ),
                chapter="queries",
            )
        )
    return out


def temp_files(events: pd.DataFrame) -> list[Finding]:
    """Statements that spilled to temporary files, grouped by statement fingerprint."""
    if len(events) == 0:
        return []
    df = events[events["kind"] == "temp_file"].copy()
    if len(df) == 0:
        return []
    stmt = df["statement"].astype("string").fillna("(statement not logged)")
    fps, ids = fingerprint_many(stmt)
    df["fingerprint"] = fps.to_numpy()
    df["fingerprint_id"] = ids.to_numpy()
    out = []
    for (fp, fid), g in df.groupby(["fingerprint", "fingerprint_id"], sort=False):
        size = pd.to_numeric(g["size_bytes"], errors="coerce")
        total_mb = float(size.sum()) / 1e6
        out.append(
            Finding(
                check="temp_files",
                severity=Severity.MEDIUM if total_mb >= 100 else Severity.LOW,
                title=f"Temporary files: {total_mb:.1f} MB written by one statement",
                summary=f"{len(g)} temporary file(s), up to {float(size.max()) / 1e6:.1f} MB each: the sort or hash did not fit in work_mem.",
                subject=Subject(fingerprint=str(fp), fingerprint_id=str(fid)),
                metrics={
                    "files": len(g),
                    "total_bytes": int(size.sum()),
                    "max_bytes": int(size.max()),
                },
                recommendation=Recommendation(
                    summary="Give the statement more memory for its session (SET work_mem) or make it sort/hash less "
                    "(an index that provides the order, fewer columns, a narrower filter).",
                    sql=f"SET LOCAL work_mem = '{max(4, int(float(size.max()) / 1e6 * 2))}MB';  -- inside the transaction that runs it",
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.STATISTICS,
                    items=tuple(
                        {"source_file": str(r.source_file), "source_line": int(r.source_line)}
                        for r in _rows(g.head(5))
                        if pd.notna(r.source_line)
                    ),
                ),
                chapter="queries",
                statements=(str(fid),),
            )
        )
    return out
