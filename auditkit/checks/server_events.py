"""What the database server logged besides timed statements: errors, deadlocks, lock waits and
temporary files.

Works on the ``server_events`` frame (PostgreSQL server logs). Errors are grouped by SQLSTATE
and message shape (numbers and quoted values replaced), so a thousand ``duplicate key``
errors are one finding with a count. Lock waits and deadlocks are grouped by what was waited on
— the table and the statement that waited — and one wait is counted once although the server
logs it twice ("still waiting" after ``deadlock_timeout``, then "acquired" with the whole wait).
Temporary files are grouped by statement fingerprint with their total size, which is the
evidence for raising ``work_mem`` for that statement or rewriting it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, cast

import pandas as pd

from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    plural,
)
from auditkit.lazy_re import compile_later
from auditkit.sql.fingerprint import fingerprint_many

__all__ = ["server_errors", "temp_files"]

_SHAPE = compile_later(r'"[^"]*"|\'[^\']*\'|\b\d+(?:\.\d+)?\b')


def _shape(message: str) -> str:
    return _SHAPE.sub("?", message)


class _SourceRow(Protocol):
    """A ``server_events`` row from ``itertuples()`` (pandas-stubs types its fields as any scalar)."""

    source_file: str
    source_line: int | None  # nullable Int64: NA when unknown


def _rows(g: pd.DataFrame) -> Iterable[_SourceRow]:
    return cast("Iterable[_SourceRow]", g.itertuples())


_LOCK_MODE = compile_later(r"\b(\w+Lock)\b")
_IDENT = r'(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*))?'
_TARGET = compile_later(
    rf"\b(?:update\s+(?:only\s+)?|delete\s+from\s+|insert\s+into\s+|from\s+)({_IDENT})", re.I
)
_MAIN_VERB = compile_later(r"\)\s*(select|insert|update|delete)\b", re.I)

_ADVICE = {
    "deadlock": "Take row locks in a consistent order (e.g. select_for_update() ordered by primary "
    "key) and keep transactions short.",
    "lock_wait": "Find the blocking transaction (pg_stat_activity, pg_locks): long transactions or "
    "select_for_update() held across slow work; keep transactions short, move work out of atomic().",
}


def _verb(fingerprint: str) -> str:
    """The statement's main verb: UPDATE for ``WITH … UPDATE``, SELECT … FOR UPDATE as such."""
    head = fingerprint.lstrip("( ").split(None, 1)[0].upper() if fingerprint.strip() else ""
    if head == "WITH":
        verbs = _MAIN_VERB.findall(fingerprint)
        head = verbs[-1].upper() if verbs else "WITH"
    if head == "SELECT" and re.search(r"\bfor\s+(?:no\s+key\s+)?update\b", fingerprint, re.I):
        return "SELECT … FOR UPDATE"
    return head


def _table_of(relation: object, fingerprint: str, verb: str) -> str | None:
    """The table waited on: the server's ``relation`` when it names one (not a bare OID), else
    the statement's target (the table an UPDATE, DELETE or INSERT writes, a SELECT reads)."""
    if isinstance(relation, str) and relation and not relation.isdigit():
        return relation
    text = fingerprint
    if verb in ("UPDATE", "DELETE", "INSERT"):  # skip a WITH's reads: the write's target
        m = re.search(rf"\b{verb}\b", text, re.I)
        text = text[m.start() :] if m else text
    t = _TARGET.search(text)
    if t:
        return t.group(1).replace('"', "").replace("`", "")
    if isinstance(relation, str) and relation:
        return f"the relation with OID {relation}"
    return None


def _waits(g: pd.DataFrame) -> tuple[int, float | None]:
    """Waits in ``g`` and the time they took: one wait per process logged as waiting and
    acquired counts once, with the acquired message's (whole) duration."""
    event = g["event"].astype("string").fillna("") if "event" in g else pd.Series("", index=g.index)
    ms = pd.to_numeric(g["duration_ms"], errors="coerce")
    pid = g["pid"].astype("string").fillna("?") if "pid" in g else pd.Series("?", index=g.index)
    count, total, known = 0, 0.0, False
    for _, idx in pid.groupby(pid, sort=False).groups.items():
        ev, d = event[idx], ms[idx]
        waiting = ev.str.endswith("waiting")
        finished = ~waiting
        count += max(int(waiting.sum()), int(finished.sum()))
        part = d[finished] if finished.any() and d[finished].notna().any() else d[waiting]
        if part.notna().any():
            known = True
            total += float(part.max()) if len(part) and not finished.any() else float(part.sum())
    return count, (total if known else None)


def _lock_findings(df: pd.DataFrame) -> list[Finding]:
    """Deadlocks and lock waits, one finding per table and statement waited on."""
    stmt = df["statement"].astype("string").fillna("")
    fps, ids = fingerprint_many(stmt)
    df = df.assign(
        fingerprint=[str(f) if s else "" for f, s in zip(fps, stmt, strict=False)],
        fingerprint_id=[str(i) if s else "" for i, s in zip(ids, stmt, strict=False)],
    )
    df = df.assign(
        mode=df["message"].astype(str).map(lambda m: (_LOCK_MODE.findall(m) or [""])[0]),
        relation=df["relation"].astype("string")
        if "relation" in df
        else pd.Series(pd.NA, index=df.index, dtype="string"),
    )
    out = []
    for (kind, fp, fid), g in df.groupby(["kind", "fingerprint", "fingerprint_id"], sort=False):
        verb = _verb(str(fp)) if fp else ""
        rel = g["relation"].dropna()
        table = _table_of(str(rel.iloc[0]) if len(rel) else None, str(fp), verb)
        modes = sorted({m for m in g["mode"] if m})
        if kind == "deadlock":
            n = int((g["event"] == "deadlock").sum()) if "event" in g else len(g)
            n = n or len(g)
            waited = None
        else:
            n, waited = _waits(g)
        on = f"on {table}" if table else "in statements the log does not show"
        by = f" by {verb} statements" if verb else ""
        word = "deadlock" if kind == "deadlock" else "lock wait"
        head = "Deadlocks" if kind == "deadlock" else "Lock waits"
        title = f"{head} {on}{by}: {plural(n, word)}" + (
            f", {duration_text(waited)} waited" if waited else ""
        )
        for_what = f" for {' and '.join(modes)}" if modes else ""
        out.append(
            Finding(
                check="server_errors",
                severity=Severity.HIGH if kind == "deadlock" else Severity.MEDIUM,
                title=title,
                summary=(
                    f"The server logged {plural(n, word)}{for_what}"
                    + (f" {on}" if table else "")
                    + (f", {duration_text(waited)} waited in all" if waited else "")
                    + "."
                    + (
                        " The statement that waited is quoted below (literals replaced)."
                        if fp
                        else " The log does not show the statement (log_lock_waits with "
                        "log_min_error_statement = error or lower shows it)."
                    )
                ),
                subject=Subject(
                    table=table if table and not table.startswith("the relation") else None,
                    fingerprint=str(fp) or None,
                    fingerprint_id=str(fid) or None,
                    file=str(g["source_file"].iloc[0]) if "source_file" in g else None,
                ),
                metrics={"count": n, "waited_ms": waited},
                recommendation=Recommendation(summary=_ADVICE[str(kind)]),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN,
                    items=tuple(
                        {"source_file": str(r.source_file), "source_line": int(r.source_line)}
                        for r in _rows(g.head(5))
                        if pd.notna(r.source_line)
                    ),
                ),
                chapter="queries",
                statements=(str(fid),) if fid else (),
            )
        )
    return out


def server_errors(events: pd.DataFrame) -> list[Finding]:
    """Errors (ERROR/FATAL/PANIC) grouped by SQLSTATE and message shape; deadlocks and lock
    waits by the table and statement waited on."""
    if len(events) == 0:
        return []
    df = events[events["kind"].isin(["error", "deadlock", "lock_wait"])].copy()
    if len(df) == 0:
        return []
    out = _lock_findings(df[df["kind"].isin(["deadlock", "lock_wait"])])
    df = df[df["kind"] == "error"]
    df["shape"] = df["message"].astype(str).map(_shape)
    for key, g in df.groupby([df["sqlstate"].fillna(""), "shape"], sort=False):
        sqlstate, shape = cast("tuple[str, str]", key)
        n = len(g)
        sev = g["severity"].astype(str).str.upper()
        severity = (
            Severity.HIGH
            if sev.isin(["PANIC"]).any()
            else Severity.MEDIUM
            if n >= 100 or sev.isin(["FATAL"]).any()
            else Severity.LOW
        )
        code = f" (SQLSTATE {sqlstate})" if sqlstate and sqlstate != "00000" else ""
        out.append(
            Finding(
                check="server_errors",
                severity=severity,
                title=f"Server errors: {shape[:90]}",
                summary=f"The server logged this error {'once' if n == 1 else plural(n, 'time')}{code}.",
                subject=Subject(
                    expression=shape[:200],
                    file=str(g["source_file"].iloc[0]) if "source_file" in g else None,
                ),
                metrics={"count": n, "sqlstate": sqlstate or None},
                recommendation=Recommendation(
                    summary="Fix the cause in the application; errors abort the transaction and "
                    "are often retried."
                ),
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
                summary=f"{plural(len(g), 'temporary file')}, up to {float(size.max()) / 1e6:.1f} MB each: the sort or hash did not fit in work_mem.",
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
