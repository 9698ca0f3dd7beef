"""Display-ready tables: redacted, with units in the headers, escaped when rendered.

Each function takes canonical frames (or findings) and returns a pandas ``Styler`` — or a
plain DataFrame where noted — that a notebook displays as is. Stylers are built with
``escape="html"`` because pandas does not escape cell text in a Styler by default, and
client text (SQL, file names, endpoints) may hold markup.

Example::

    >>> import pandas as pd
    >>> from auditkit import query_profile
    >>> prof = query_profile(pd.DataFrame({"sql": ["SELECT 1"], "duration_ms": [2.0]}))
    >>> "total (ms)" in profile_table(prof).to_html()
    True
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from pandas.io.formats.style import Styler

from auditkit.client import ClientData
from auditkit.findings import Finding, findings_frame
from auditkit.report.redact import Redactor

__all__ = [
    "endpoint_frame",
    "endpoint_table",
    "findings_table",
    "inventory_table",
    "profile_table",
    "skipped_table",
    "styled",
]

#: characters of a statement shown in a table cell
STATEMENT_CHARS = 240


def styled(df: pd.DataFrame, *, precision: int = 1, caption: str | None = None) -> Styler:
    """The house style: escaped cells and headers, no index, thousands separators."""
    st = (
        df.style.format(escape="html", precision=precision, thousands=",", na_rep="")
        .format_index(escape="html", axis=1)
        .hide(axis="index")
        .set_table_attributes('class="ak-table"')
    )
    if caption:
        st = st.set_caption(caption)
    return st


def _one_line(text: str, limit: int = STATEMENT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def findings_table(findings: Iterable[Finding], redactor: Redactor | None = None) -> pd.DataFrame:
    """Findings as a ranked DataFrame (severity, check, title, subject, impact), redacted."""
    red = redactor or Redactor()
    df = findings_frame([red.finding(f) for f in findings])
    assert isinstance(df, pd.DataFrame)
    return df


def profile_table(
    profile: pd.DataFrame, *, redactor: Redactor | None = None, top: int = 20
) -> Styler:
    """The query profile's top statements: calls, total and share of time, mean, p95, max.

    The statement shown is the slowest execution with its literals redacted (or as logged
    with ``show_literals``), on one line.
    """
    red = redactor or Redactor()
    p = profile.head(top)
    statement = p["sample_sql"].where(p["sample_sql"].notna(), p["fingerprint"])
    df = pd.DataFrame(
        {
            "#": p["rank"].astype("Int64"),
            "statement": [_one_line(red.sql(s)) for s in statement],
            "calls": p["calls"].astype("Int64"),
            "total (ms)": p["total_ms"].astype(float),
            "share (%)": p["share"].astype(float) * 100,
            "mean (ms)": p["mean_ms"].astype(float),
            "p95 (ms)": p["p95_ms"].astype(float),
            "max (ms)": p["max_ms"].astype(float),
        }
    )
    return styled(df, caption=f"Top {len(df)} statements by total time").bar(
        subset=["share (%)"], color="#bfdbfe", vmin=0, vmax=100
    )


def inventory_table(client: ClientData, *, redactor: Redactor | None = None) -> Styler:
    """Every input file: format, status, size, records read / parsed / skipped, events, note."""
    red = redactor or Redactor()
    inv = client.inventory()
    df = pd.DataFrame(
        {
            "file": inv["file"].map(red.text),
            "format": inv["format"].fillna(""),
            "status": inv["status"],
            "size (kB)": inv["size_bytes"].astype(float) / 1024,
            "read": inv["read"].astype("Int64"),
            "parsed": inv["parsed"].astype("Int64"),
            "skipped": inv["skipped"].astype("Int64"),
            "events": inv["events"].astype("Int64"),
            "note": inv["note"].map(
                lambda n: _one_line(red.text(n), 200) if isinstance(n, str) else ""
            ),
        }
    )
    return styled(df, caption=f"{len(df)} files in the client folder")


def skipped_table(
    client: ClientData, *, redactor: Redactor | None = None, per_reason: int = 3
) -> pd.DataFrame | Styler:
    """What was skipped, per file and reason: count, first line numbers, a redacted excerpt.

    Returns an empty DataFrame when nothing was skipped.
    """
    red = redactor or Redactor()
    rows = []
    for f in client.files:
        r = f.report
        if r is None or not r.skipped_total:
            continue
        for reason, count in r.skipped.most_common():
            samples = [s for s in r.samples if s.reason == reason]
            rows.append(
                {
                    "file": red.text(f.path),
                    "reason": reason,
                    "records": count,
                    "first lines": ", ".join(str(s.line) for s in samples[:per_reason]),
                    "excerpt": _one_line(red.sql(samples[0].excerpt), 160) if samples else "",
                }
            )
    if not rows:
        return pd.DataFrame(columns=["file", "reason", "records", "first lines", "excerpt"])
    return styled(pd.DataFrame(rows), caption="Skipped records by file and reason")


def endpoint_frame(events: pd.DataFrame, redactor: Redactor | None = None) -> pd.DataFrame:
    """Database time per endpoint from query events that carry one (empty frame otherwise).

    Columns: endpoint, requests (distinct request or trace ids), statements, db_ms,
    statements_per_request, db_ms_per_request — sorted by db_ms.
    """
    red = redactor or Redactor()
    cols = [
        "endpoint",
        "requests",
        "statements",
        "db_ms",
        "statements_per_request",
        "db_ms_per_request",
    ]
    if len(events) == 0 or "endpoint" not in events or events["endpoint"].isna().all():
        return pd.DataFrame(columns=cols)
    ev = events.dropna(subset=["endpoint"])
    rid = ev["request_id"].fillna(ev["trace_id"]) if "trace_id" in ev else ev["request_id"]
    g = ev.assign(_rid=rid).groupby("endpoint", sort=False)
    df = pd.DataFrame(
        {
            "requests": g["_rid"].nunique(),
            "statements": g.size(),
            "db_ms": g["duration_ms"].sum(),
        }
    ).reset_index()
    df["statements_per_request"] = df["statements"] / df["requests"].where(df["requests"] > 0)
    df["db_ms_per_request"] = df["db_ms"] / df["requests"].where(df["requests"] > 0)
    df["endpoint"] = df["endpoint"].map(red.text)
    return df.sort_values("db_ms", ascending=False, kind="stable").reset_index(drop=True)[cols]


def endpoint_table(
    events: pd.DataFrame, *, redactor: Redactor | None = None, top: int = 20
) -> Styler | None:
    """:func:`endpoint_frame` styled for the report; ``None`` when no event has an endpoint."""
    df = endpoint_frame(events, redactor).head(top)
    if len(df) == 0:
        return None
    df = df.rename(
        columns={
            "db_ms": "DB time (ms)",
            "statements_per_request": "statements / request",
            "db_ms_per_request": "DB time / request (ms)",
        }
    )
    return styled(df, caption="Database time per endpoint")
