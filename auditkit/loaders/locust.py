"""Locust's CSV output (``locust --csv PREFIX``): stats, stats history, failures, exceptions.

* ``*_stats.csv`` → ``load_samples``: one row per endpoint (and the ``Aggregated`` row) for the
  whole run, no timestamp.
* ``*_stats_history.csv`` → ``load_samples``: one row per interval and endpoint with the user
  count, requests and failures per second and response-time percentiles; ``Total Request
  Count``/``Total Failure Count`` are cumulative, as Locust writes them. ``N/A`` percentiles
  (no request finished yet) become NaN.
* ``*_failures.csv`` → ``load_failures``; ``*_exceptions.csv`` (often header-only) is read and
  reported, holding nothing to analyse.

Percentile columns are whatever the run was configured with (``50%``, ``66%``, … ``99.99%``,
or custom ones such as ``60%``/``70%``); p50/p95/p99 take the exact column when present and
the nearest higher one otherwise (said in the report's warnings). Response times are
milliseconds in Locust already. Older Locust 0.x files quote the header (``"Method","Name",
"# requests"``): those names are mapped too.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.loaders._records import BadRecord, csv_records
from auditkit.loaders._time import epoch_series
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["LocustLoader"]

_ALIASES = {
    "# requests": "Request Count",
    "# failures": "Failure Count",
    "Median response time": "Median Response Time",
    "Average response time": "Average Response Time",
    "Requests/s": "Requests/s",
    "Method": "Type",
    "# reqs": "Request Count",
    "# fails": "Failure Count",
}


def _kind(header: list[str]) -> str | None:
    h = set(header)
    if {"Timestamp", "User Count", "Name"} <= h:
        return "history"
    if "Name" in h and ("Request Count" in h or "# requests" in h):
        return "stats"
    if {"Name", "Error", "Occurrences"} <= h:
        return "failures"
    if {"Count", "Message", "Traceback"} <= h:
        return "exceptions"
    return None


def _numeric(df: pd.DataFrame, column: str) -> pd.Series | float:
    """The optional ``column`` as numbers (bad values NaN); NaN throughout when the file lacks it."""
    values = df.get(column)
    return np.nan if values is None else pd.to_numeric(values, errors="coerce")


def _percentile(df: pd.DataFrame, q: float, report: ParseReport) -> pd.Series:
    cols = {
        float(c[:-1]): c
        for c in df.columns
        if c.endswith("%") and c[:-1].replace(".", "", 1).isdigit()
    }
    if not cols:
        return pd.Series(np.nan, index=df.index)
    if q in cols:
        return pd.to_numeric(df[cols[q]], errors="coerce")
    higher = [k for k in sorted(cols) if k >= q]
    use = higher[0] if higher else max(cols)
    report.warn(f"no {q:g}% column: p{q:g} taken from the {use:g}% column")
    return pd.to_numeric(df[cols[use]], errors="coerce")


@register
class LocustLoader(Loader):
    """Locust CSV files: stats, stats history, failures and exceptions."""

    name = "locust_csv"
    frame = "load_samples"
    description = "Locust --csv output (stats, stats_history, failures, exceptions)"
    expected = "a Locust CSV header such as 'Type,Name,Request Count,…' or 'Timestamp,User Count,Type,Name,…'"

    def sniff(self, head: str, path: Path) -> float:
        first = head.split("\n", 1)[0].strip()
        try:
            header = [_ALIASES.get(c, c) for c in next(csv.reader([first]))]
        except (csv.Error, StopIteration):
            return 0.0
        return 0.95 if _kind(header) else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        records = list(csv_records(text))
        if not records:
            raise nothing_parsed(self, path, report)
        first = records[0]
        if isinstance(first, BadRecord):
            report.skip(first.line, first.reason, first.excerpt)
            raise nothing_parsed(self, path, report)
        header = [_ALIASES.get(c.strip(), c.strip()) for c in first.values]
        kind = _kind(header)
        if kind is None:
            report.skip(1, "not a Locust header", ",".join(first.values))
            raise nothing_parsed(self, path, report)
        report.ok()  # the header
        good = []
        for rec in records[1:]:
            if isinstance(rec, BadRecord):
                report.skip(rec.line, rec.reason, rec.excerpt)
                continue
            i, row = rec.line, rec.values
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                report.skip(i, f"expected {len(header)} columns, found {len(row)}", ",".join(row))
                continue
            good.append((i, row))
            report.ok()
        df = pd.DataFrame([r for _, r in good], columns=header)
        df["source_line"] = [i for i, _ in good]
        df["source_file"] = str(path)
        df = df.replace({"N/A": np.nan, "": np.nan})
        frames: dict[str, list[pd.DataFrame]] = {}
        if kind in ("stats", "history"):
            out = pd.DataFrame(
                {
                    "endpoint": df["Name"],
                    "method": df.get("Type"),
                    "rps": _numeric(df, "Requests/s"),
                    "failures_per_s": _numeric(df, "Failures/s"),
                    "p50_ms": _percentile(df, 50.0, report),
                    "p95_ms": _percentile(df, 95.0, report),
                    "p99_ms": _percentile(df, 99.0, report),
                    "source_file": df["source_file"],
                    "source_line": df["source_line"],
                }
            )
            if kind == "history":
                out["ts"] = epoch_series(df["Timestamp"], "s").to_numpy()
                out["users"] = pd.to_numeric(df["User Count"], errors="coerce")
                out["requests"] = _numeric(df, "Total Request Count")
                out["failures"] = _numeric(df, "Total Failure Count")
                # cumulative since the start, like the counts: a step's own mean is derived
                # from two of them (auditkit.analysis.load)
                out["total_mean_ms"] = _numeric(df, "Total Average Response Time")
            else:
                out["requests"] = _numeric(df, "Request Count")
                out["failures"] = _numeric(df, "Failure Count")
                out["mean_ms"] = _numeric(df, "Average Response Time")
                out["max_ms"] = _numeric(df, "Max Response Time")
            out["load_file_kind"] = kind
            frames["load_samples"] = [out]
        elif kind == "failures":
            frames["load_failures"] = [
                pd.DataFrame(
                    {
                        "endpoint": df["Name"],
                        "method": df.get("Method"),
                        "error": df["Error"],
                        "occurrences": pd.to_numeric(df["Occurrences"], errors="coerce"),
                        "source_file": df["source_file"],
                        "source_line": df["source_line"],
                    }
                )
            ]
        else:
            if len(df) == 0:
                report.warn("exceptions file with a header and no rows: no exceptions were raised")
            frames["load_failures"] = [
                pd.DataFrame(
                    {
                        "endpoint": "(exception)",
                        "error": df.get("Message"),
                        "occurrences": _numeric(df, "Count"),
                        "source_file": df["source_file"],
                        "source_line": df["source_line"],
                    }
                )
            ]
        out_frames = finalise(frames, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(
            self.name,
            out_frames,
            report,
            primary="load_failures" if kind in ("failures", "exceptions") else self.frame,
        )
