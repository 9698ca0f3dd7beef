"""Locust's console output and its ``--logfile``: stats tables, percentiles, user ramp, errors.

A headless Locust run prints, every two seconds (``--console-stats-interval``), a stats table
of the requests so far; at the end the run's totals, the response-time percentiles and the
error report::

    Type     Name                 # reqs      # fails |    Avg     Min     Max    Med |   req/s  failures/s
    --------|--------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
    GET      /catalogue/             151     0(0.00%) |     14       2      32     14 |   21.84        0.00
    --------|--------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
             Aggregated              261   32(12.26%) |     13       1      48     13 |   37.75        4.63

    Response time percentiles (approximated)
    Type     Name                      50%    66%    75%    80%    90%    95%    98%    99%  99.9% 99.99%   100% # reqs
    GET      /catalogue/                14     17     18     19     22     25     28     31     33     33     33    151

    Error report
    # occurrences      Error
    32                 POST /basket/add/: HTTPError('500 Server Error: Internal Server Error for url: /basket/add/')

Its log lines (on stderr, or in the ``--logfile``) carry the time and the user ramp::

    [2026-12-05 07:56:17,539] vm/INFO/locust.runners: Ramping to 6 users at a rate of 2.00 per second
    [2026-12-05 07:56:19,546] vm/INFO/locust.runners: All users spawned: {"Shopper": 6} (6 total users)

Frames (``load_samples`` rows carry an extra ``row`` column saying which kind they are):

* ``row="total"`` — the final table, one row per endpoint and ``Aggregated``, with p50/p95/p99
  from the percentiles table (``ts`` NaT, like Locust's ``*_stats.csv``);
* ``row="interval"`` — every periodic table, with the requests and failures so far (cumulative),
  current ``rps``/``failures_per_s``, ``p50_ms`` = the median. Tables carry no time: when the
  same file has Locust's log lines (``2>&1``), the k-th table is dated from the run's start plus
  k × ``interval_s`` (default 2 s, Locust's default) and ``users`` read from the ramp at that
  time — estimates, said in the report's warnings; otherwise ``ts``/``users`` stay empty;
* ``row="ramp"`` — one row per user-count line (``All users spawned``, ``Currently spawned
  users``: ``users`` the count; ``Ramping to``, ``Sending spawn jobs of``, ``Shape test
  updating to``: ``target_users`` and ``spawn_rate``), ``ts`` the log time;
* ``load_failures`` — the error report: ``method``, ``endpoint`` and ``error`` split from
  ``METHOD NAME: error``, ``occurrences``.

Log times have no zone: they are read in ``tz`` (default UTC) with a warning. A *record* is one
non-blank line; indented lines after a log line (a traceback) belong to it; other lines are
skipped as ``not Locust output``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["LocustConsoleLoader"]

_LOG = compile_later(
    r"\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(?P<ms>\d{3})\] "
    r"(?P<host>[^/\s]+)/(?P<level>[A-Z]+)/(?P<logger>[\w.]+): (?P<msg>.*)"
)
_STATS_HEADER = compile_later(r"\s*(?:Type\s+)?Name\s+# reqs\s+# fails\s*\|")
_PCT_HEADER = compile_later(r"\s*(?:Type\s+)?Name\s+(?:\d+(?:\.\d+)?%\s+)+# reqs\s*$")
_NUM = r"(\d+(?:\.\d+)?|N/A)"
_STATS_ROW = compile_later(
    r"(?P<head>.*?)\s+(?P<reqs>\d+)\s+(?P<fails>\d+)\((?P<pct>[\d.]+)%\)\s*\|"
    rf"\s*{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s*\|\s*{_NUM}\s+{_NUM}\s*$"
)
_SEPARATOR = compile_later(r"[-|\s]+")
_ERROR_HEADER = compile_later(r"\s*# occurrences\s+Error\s*$")
_ERROR_ROW = compile_later(r"\s*(?P<n>\d+)\s+(?P<error>\S.*?)\s*$")
_ERROR_TEXT = compile_later(r"(?P<method>[A-Z]+) (?P<name>.+?): (?P<error>.*)")
_HTTP = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"})

_COUNT = compile_later(
    r"(?:All users spawned|Currently spawned users)\b.*\((\d+) total (?:users|running)\)"
)
_TARGETS = (
    compile_later(r"Ramping to (?P<n>\d+) users at a rate of (?P<rate>[\d.]+) per second"),
    compile_later(r"Sending spawn jobs of (?P<n>\d+) users at (?P<rate>[\d.]+) spawn rate"),
    compile_later(r"Shape test updating to (?P<n>\d+) users at (?P<rate>[\d.]+) spawn rate"),
    compile_later(r"Spawning (?P<n>\d+) users at the rate (?P<rate>[\d.]+) users/s"),
)


def _num(text: str | None) -> float | None:
    if text is None or text == "N/A":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _split_name(head: str, typed: bool) -> tuple[str | None, str]:
    """``(method, name)`` of a table row's leading part."""
    if typed and head[:1].strip():
        parts = head.split(None, 1)
        return parts[0], (parts[1].strip() if len(parts) > 1 else "")
    name = head.strip()
    first = name.split(" ", 1)
    if len(first) == 2 and first[0] in _HTTP:  # Locust 1.x: "GET /path" in the name column
        return first[0], first[1].strip()
    return None, name


class _State:
    def __init__(self) -> None:
        self.tables: list[list[dict[str, Any]]] = []
        self.percentiles: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.ramp: list[dict[str, Any]] = []
        self.logs: list[tuple[str, int]] = []  # (ts text, line)
        self.section: str | None = None  # stats, percentiles, errors
        self.typed = True
        self.pct_labels: list[str] = []
        self.after_tables: list[bool] = []  # was table i followed by the percentiles table


@register
class LocustConsoleLoader(Loader):
    """Locust's console output (stats tables, percentiles, error report) and its --logfile."""

    name = "locust_console"
    frame = "load_samples"
    description = (
        "Locust console output and --logfile (stats tables, percentiles, user ramp, errors)"
    )
    expected = (
        "Locust's printed stats tables (Type Name # reqs # fails | Avg Min Max Med | req/s "
        "failures/s), or log lines like [2026-12-05 07:56:17,539] host/INFO/locust.runners: "
        "Ramping to 6 users at a rate of 2.00 per second"
    )

    def sniff(self, head: str, path: Path) -> float:
        lines = head.split("\n")[:400]
        if any(_STATS_HEADER.match(ln) for ln in lines):
            return 0.95
        logs = [m for m in (_LOG.match(ln) for ln in lines) if m]
        if logs and any(m.group("logger").startswith("locust") for m in logs):
            return 0.95
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        st = _State()
        last_log = False
        for i, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")
            if not line.strip():
                st.section = None if st.section != "errors" else st.section
                last_log = False
                continue
            m = _LOG.fullmatch(line)
            if m:
                self._log(st, i, m)
                last_log = True
                report.ok()
                continue
            if last_log and (line[:1].isspace() or line.startswith(("Traceback", "  "))):
                report.ok()  # continuation of a log entry
                continue
            last_log = False
            if self._table_line(st, i, line):
                report.ok()
            else:  # a damaged row does not end its table
                report.skip(i, "not Locust output", line)
        return self._result(path, st, report, started, options)

    # -- lines ---------------------------------------------------------------------------------
    @staticmethod
    def _log(st: _State, i: int, m: re.Match[str]) -> None:
        ts = f"{m.group('ts')}.{m.group('ms')}"
        msg = m.group("msg")
        st.logs.append((ts, i))
        c = _COUNT.search(msg)
        if c:
            st.ramp.append({"ts": ts, "users": float(c.group(1)), "source_line": i})
            return
        for pattern in _TARGETS:
            t = pattern.search(msg)
            if t:
                st.ramp.append(
                    {
                        "ts": ts,
                        "target_users": float(t.group("n")),
                        "spawn_rate": float(t.group("rate")),
                        "source_line": i,
                    }
                )
                return

    @staticmethod
    def _table_line(st: _State, i: int, line: str) -> bool:
        if _STATS_HEADER.match(line):
            st.section, st.typed = "stats", line.lstrip().startswith("Type")
            st.tables.append([])
            st.after_tables.append(False)
            return True
        if line.strip() == "Response time percentiles (approximated)":
            if st.after_tables:
                st.after_tables[-1] = True
            st.section = "percentiles-title"
            return True
        if _PCT_HEADER.match(line):
            st.section, st.typed = "percentiles", line.lstrip().startswith("Type")
            st.pct_labels = re.findall(r"(\d+(?:\.\d+)?)%", line)
            return True
        if line.strip() in ("Error report", "Exception report"):
            st.section = "errors-title" if line.strip() == "Error report" else "exceptions"
            return True
        if _ERROR_HEADER.match(line):
            st.section = "errors"
            return True
        if _SEPARATOR.fullmatch(line):
            return st.section is not None
        if st.section == "stats":
            r = _STATS_ROW.fullmatch(line)
            if r is None:
                return False
            method, name = _split_name(r.group("head"), st.typed)
            st.tables[-1].append(
                {
                    "endpoint": name,
                    "method": method,
                    "requests": int(r.group("reqs")),
                    "failures": int(r.group("fails")),
                    "avg_ms": _num(r.group(5)),
                    "min_ms": _num(r.group(6)),
                    "max_ms": _num(r.group(7)),
                    "p50_ms": _num(r.group(8)),
                    "rps": _num(r.group(9)),
                    "failures_per_s": _num(r.group(10)),
                    "source_line": i,
                }
            )
            return True
        if st.section == "percentiles":
            k = len(st.pct_labels) + 1
            r = re.fullmatch(rf"(?P<head>.*?)((?:\s+(?:\d+(?:\.\d+)?|N/A)){{{k}}})\s*", line)
            if r is None:
                return False
            values = r.group(2).split()
            method, name = _split_name(r.group("head"), st.typed)
            row: dict[str, Any] = {"endpoint": name, "method": method, "source_line": i}
            for label, value in zip(st.pct_labels, values[:-1], strict=False):
                row[label] = _num(value)
            row["requests"] = int(values[-1])
            st.percentiles.append(row)
            return True
        if st.section == "errors":
            r = _ERROR_ROW.fullmatch(line)
            if r is None:
                return False
            err = r.group("error")
            e = _ERROR_TEXT.fullmatch(err)
            st.failures.append(
                {
                    "endpoint": e.group("name") if e else "",
                    "method": e.group("method") if e else None,
                    "error": e.group("error") if e else err,
                    "occurrences": int(r.group("n")),
                    "source_line": i,
                }
            )
            return True
        return st.section == "exceptions"

    # -- frames --------------------------------------------------------------------------------
    def _result(
        self,
        path: str | Path,
        st: _State,
        report: ParseReport,
        started: float,
        options: dict[str, Any],
    ) -> LoadResult:
        tz = options.get("tz")
        interval = float(options.get("interval_s", 2.0))
        parts: list[pd.DataFrame] = []
        ramp = pd.DataFrame(st.ramp)
        if len(ramp):
            ramp["ts"] = _localise(ramp["ts"], tz)
            ramp["row"] = "ramp"
            parts.append(ramp)
        start = _localise(pd.Series([st.logs[0][0]]), tz).iloc[0] if st.logs else None
        ramp_start = ramp["ts"].min() if len(ramp) else start
        estimated = False
        periodic = [t for t, final in zip(st.tables, st.after_tables, strict=True) if not final]
        finals = [t for t, final in zip(st.tables, st.after_tables, strict=True) if final]
        for k, table in enumerate(periodic):
            df = pd.DataFrame(table)
            if not len(df):
                continue
            df["row"] = "interval"
            df["snapshot"] = k + 1
            if ramp_start is not None and not pd.isna(ramp_start):
                df["ts"] = ramp_start + pd.Timedelta(seconds=interval * k)
                df["users"] = _users_at(ramp, df["ts"].iloc[0])
                estimated = True
            parts.append(df)
        for table in finals:
            df = pd.DataFrame(table)
            if not len(df):
                continue
            df["row"] = "total"
            pct = pd.DataFrame(st.percentiles)
            if len(pct):
                for q, col in ((50.0, "p50_ms"), (95.0, "p95_ms"), (99.0, "p99_ms")):
                    label = _closest(st.pct_labels, q, report)
                    if label is None:
                        continue
                    values = dict(
                        zip(
                            zip(pct["method"], pct["endpoint"], strict=True),
                            pct[label],
                            strict=True,
                        )
                    )
                    df[col] = [
                        values.get((m, n))
                        for m, n in zip(df["method"], df["endpoint"], strict=True)
                    ]
            parts.append(df)
        if estimated:
            report.warn(
                f"console tables carry no time: dated from the run's start every {interval:g} s "
                "(Locust's console interval) and users read from the ramp — estimates"
            )
        elif periodic:
            report.warn(
                "console tables carry no time and no log line dates them: ts and users left empty"
            )
        if st.logs:
            report.warn(
                f"Locust log times carry no zone: read as {tz or 'UTC'} (pass tz= otherwise)"
            )
        frames: dict[str, list[pd.DataFrame]] = {}
        if parts:
            df = pd.concat(parts, ignore_index=True)
            df["source_file"] = str(path)
            df["source_format"] = self.name
            frames["load_samples"] = [df]
        if st.failures:
            f = pd.DataFrame(st.failures)
            f["source_file"] = str(path)
            frames["load_failures"] = [f]
        out = finalise(frames, self, report)
        report.elapsed_s = time.perf_counter() - started
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, out, report, primary=self.frame)


def _localise(values: pd.Series, tz: str | None) -> pd.Series:
    ts = pd.to_datetime(values, errors="coerce", format="%Y-%m-%d %H:%M:%S.%f")
    return ts.dt.tz_localize(tz or "UTC", ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def _users_at(ramp: pd.DataFrame, ts: pd.Timestamp) -> float | None:
    """Users running at ``ts``: the last count before it, advanced along a ramp in progress."""
    if not len(ramp):
        return None
    before = ramp[ramp["ts"] <= ts]
    counts = before.dropna(subset=["users"]) if "users" in before else before.iloc[0:0]
    users = float(counts["users"].iloc[-1]) if len(counts) else 0.0
    since = counts["ts"].iloc[-1] if len(counts) else None
    targets = (
        before.dropna(subset=["target_users"]) if "target_users" in before else before.iloc[0:0]
    )
    if len(targets):
        t = targets.iloc[-1]
        if since is None or t["ts"] >= since:
            seconds = (ts - t["ts"]).total_seconds()
            grown = users + t["spawn_rate"] * seconds
            users = (
                min(float(t["target_users"]), grown)
                if t["target_users"] >= users
                else max(float(t["target_users"]), users - t["spawn_rate"] * seconds)
            )
    return float(int(users))


def _closest(labels: list[str], q: float, report: ParseReport) -> str | None:
    values = sorted(float(x) for x in labels)
    if not values:
        return None
    pick = next((v for v in values if v >= q), values[-1])
    if pick != q:
        report.warn(f"no {q:g}% column: p{q:g} taken from the {pick:g}% column")
    return next(x for x in labels if float(x) == pick)
