"""Application-server logs: gunicorn's error log and uWSGI's log.

Both tell what the database never sees: how many workers served the site, of which kind, how
many threads each, where they listened, and when workers timed out, were killed or crashed.

**gunicorn** (``--error-logfile``; ``[%Y-%m-%d %H:%M:%S %z] [pid] [LEVEL] message``, lines
without that prefix — tracebacks, the ``--log-level debug`` configuration dump — continue
the entry above them)::

    [2026-12-05 07:50:22 +0000] [31316] [INFO] Starting gunicorn 27.0.1
    [2026-12-05 07:50:22 +0000] [31316] [INFO] Listening at: http://127.0.0.1:8000 (31316)
    [2026-12-05 07:50:22 +0000] [31316] [INFO] Using worker: sync
    [2026-12-05 07:50:22 +0000] [31347] [INFO] Booting worker with pid: 31347
    [2026-12-05 07:50:25 +0000] [31316] [CRITICAL] WORKER TIMEOUT (pid:31347)
    [2026-12-05 07:50:25 +0000] [31316] [ERROR] Worker (pid:31347) was sent SIGKILL! Perhaps out of memory?

**uWSGI** (``--logto`` / ``--daemonize``): a start-up banner without time stamps, events such
as ``spawned uWSGI worker 1 (pid: 32230, cores: 2)``, ``*** HARAKIRI ON WORKER 1 …``,
``DAMN ! worker 1 (pid: …) died, killed by signal 9``, and one line per request::

    [pid: 32231|app: 0|req: 1/1] 127.0.0.1 () {28 vars in 286 bytes} [Sat Dec  5 07:51:01 2026] GET /x?y=1 => generated 2 bytes in 0 msecs (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)

Frames:

* ``server_events`` — one row per worker or server event, ``kind`` one of
  :data:`EVENT_KINDS` (``worker_boot``, ``worker_exit``, ``worker_timeout``,
  ``worker_killed``, ``worker_crash``, ``worker_error``, ``listen_queue_full``,
  ``server_start``, ``server_stop``, ``app_error``, ``other``), ``pid`` the worker's — the
  application server's own kinds, so checks of database errors never read them;
* ``server_settings`` — ``server`` = ``gunicorn``/``uwsgi``, one row per fact and start-up:
  ``workers``, ``worker_class``, ``threads``, ``bind``, ``timeout``, ``version``…, with
  ``source`` saying where it came from: ``configuration`` (gunicorn's debug dump, uWSGI's
  ``cores``), ``start-up lines`` (``Using worker``, ``Listening at``), or ``inferred from
  worker boots`` (the most workers alive at once after a start, when nothing states it);
* ``requests`` — uWSGI request lines: ``endpoint``/``path`` the path without query string,
  ``duration_ms`` (``msecs`` or ``micros``), ``status``, ``response_bytes``, ``pid``; and
  gunicorn access-log lines found in the error log (a container's stderr often carries both),
  read as the ``access_log`` format reads them.

Times without a zone (uWSGI's ``ctime`` stamps) are read in ``tz`` (default UTC, with a
warning in the parse report). uWSGI banner lines carry no time: they take the last time seen.
A *record* is one entry (a prefixed line with its continuation lines) for gunicorn, one line
for uWSGI; blank lines are not records.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.lazy_re import compile_later
from auditkit.loaders.access_log import AccessLogLoader
from auditkit.loaders.access_log import match_line as access_match
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import Block, read_text
from auditkit.requests import path_of

__all__ = ["EVENT_KINDS", "GunicornLogLoader", "UwsgiLogLoader"]

#: ``server_events.kind`` values of application servers
EVENT_KINDS = (
    "server_start",
    "server_stop",
    "worker_boot",
    "worker_exit",
    "worker_timeout",
    "worker_killed",
    "worker_crash",
    "worker_error",
    "listen_queue_full",
    "app_error",
    "other",
)

_GUNICORN = compile_later(
    r"\[(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: ?[+-]\d{2}:?\d{2}|Z)?)\] "
    r"\[(?P<pid>\d+)\] \[(?P<level>[A-Z]+)\] (?P<msg>.*)"
)
_PID = compile_later(r"pid: ?(\d+)")
_CONFIG_LINE = compile_later(r"\s{2}(?P<key>[a-z_]+): (?P<value>.*)")
#: settings of gunicorn's configuration dump worth keeping (the rest are hooks and defaults)
_GUNICORN_SETTINGS = (
    "bind",
    "backlog",
    "workers",
    "worker_class",
    "threads",
    "worker_connections",
    "max_requests",
    "max_requests_jitter",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "preload_app",
)
_TIME_SETTINGS = {"timeout": 1000.0, "graceful_timeout": 1000.0, "keepalive": 1000.0}


class _Collector:
    """Rows of the three frames, with the clock and the live workers of the current start."""

    def __init__(self, server: str, fmt: str, source: str, tz: str | None) -> None:
        self.server, self.fmt, self.source, self.tz = server, fmt, source, tz
        self.events: list[dict[str, Any]] = []
        self.settings: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.live: set[int] = set()
        self.peak = 0
        self.start: tuple[Any, int] | None = None  # (ts, line) of the current start
        self.stated: set[str] = set()  # settings stated since the current start
        self.naive = False
        #: requests already parsed into a frame (gunicorn's access lines)
        self.requests_frame: pd.DataFrame | None = None

    def event(
        self,
        ts: Any,
        line: int,
        kind: str,
        message: str,
        severity: str | None = None,
        pid: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.events.append(
            {
                "ts": ts,
                "kind": kind,
                "severity": severity,
                "message": message,
                "detail": detail,
                "pid": pid,
                "source_format": self.fmt,
                "source_line": line,
            }
        )

    def setting(self, ts: Any, line: int, name: str, value: str, source: str) -> None:
        number: float | None
        try:
            number = float(value) * _TIME_SETTINGS.get(name, 1.0)
        except ValueError:
            number = None
        unit = "ms" if name in _TIME_SETTINGS and number is not None else ""
        if name in _TIME_SETTINGS and number is not None:
            value = f"{float(value):g}s"
        self.settings.append(
            {
                "name": name,
                "setting": value,
                "unit": unit,
                "value": number,
                "source": source,
                "ts": ts,
                "server": self.server,
                "source_line": line,
            }
        )
        self.stated.add(name)

    # worker bookkeeping: the most workers alive at once is the worker count
    def started(self, ts: Any, line: int) -> None:
        self.close_start()
        # gunicorn dumps its configuration (debug level) just before "Starting gunicorn"
        after = self.start[1] if self.start else 0
        dumped = {
            r["name"]
            for r in self.settings
            if r["source"] == "configuration" and r["source_line"] > after
        }
        self.live, self.peak, self.start, self.stated = set(), 0, (ts, line), dumped

    def boot(self, pid: int | None) -> None:
        if pid is not None:
            self.live.add(pid)
            self.peak = max(self.peak, len(self.live))

    def gone(self, pid: int | None) -> None:
        self.live.discard(pid or -1)

    def close_start(self) -> None:
        if self.peak and "workers" not in self.stated:
            ts, line = self.start if self.start else (None, 1)
            self.setting(ts, line, "workers", str(self.peak), "inferred from worker boots")

    def frames(self) -> dict[str, list[pd.DataFrame]]:
        self.close_start()
        out: dict[str, list[pd.DataFrame]] = {}
        for name, rows in (
            ("server_events", self.events),
            ("server_settings", self.settings),
            ("requests", self.requests),
        ):
            if name == "requests" and self.requests_frame is not None:
                out[name] = [self.requests_frame]
                continue
            df = pd.DataFrame(rows)
            if len(df):
                df["ts"] = _times(df["ts"], self.tz)
                df["source_file"] = self.source
                if "pid" in df:
                    df["pid"] = pd.to_numeric(df["pid"], errors="coerce").astype("Int64")
            out[name] = [df]
        return out


def _times(values: pd.Series, tz: str | None) -> pd.Series:
    """Logged times → UTC: aware ones converted, naive ones read in ``tz`` (default UTC)."""
    out: list[Any] = []
    for v in values:
        ts: Any = pd.NaT
        if isinstance(v, (str, pd.Timestamp)):
            try:
                t = pd.Timestamp(v)
                t = t.tz_localize(tz or "UTC") if t.tzinfo is None else t
                ts = t.tz_convert("UTC")
            except (ValueError, OverflowError, TypeError):
                ts = pd.NaT
        out.append(ts)
    return pd.Series(out, index=values.index, dtype="datetime64[ns, UTC]")


def _read(path: str | Path, fmt: str) -> tuple[str, ParseReport]:
    text, bad = read_text(path)
    return text, ParseReport.for_text(path, fmt, text, bad)


def _access_requests(
    access: dict[int, str], n_lines: int, source: str, report: ParseReport, options: dict[str, Any]
) -> pd.DataFrame:
    """Access-log lines found among the error log's, read by the access-log parser."""
    lines = [""] * n_lines
    for i, raw in access.items():
        lines[i - 1] = raw
    text = "\n".join(lines)
    head = "\n".join(list(access.values())[:500])
    parser = AccessLogLoader().parser(Path(source), head, **options)
    result = parser.parse(Block(text.encode("utf-8"), 1, source))
    sub = result.report
    report.read += sub.read
    report.parsed += sub.parsed
    for reason, count in sub.skipped.items():
        report.skipped[reason] += count
    report.samples.extend(sub.samples)
    for warning in sub.warnings:
        report.warn(warning)
    df = result.frames["requests"]
    df["source_format"] = GunicornLogLoader.name
    return df


def _result(
    loader: Loader, path: str | Path, col: _Collector, report: ParseReport, started: float
) -> LoadResult:
    frames = finalise(col.frames(), loader, report)
    if col.naive:
        zone = col.tz or "UTC"
        report.warn(
            f"time stamps without a zone read as {zone} (pass tz= if the server ran in another)"
        )
    report.elapsed_s = time.perf_counter() - started
    report.check()
    if report.parsed == 0:
        raise nothing_parsed(loader, path, report)
    frames = {k: v for k, v in frames.items() if len(v) or k == loader.frame}
    return LoadResult(loader.name, frames, report, primary=loader.frame)


# -- gunicorn ---------------------------------------------------------------------------------


def _gunicorn_kind(msg: str) -> tuple[str, int | None]:
    """Kind of a gunicorn message and the worker pid it names."""
    m = _PID.search(msg) or re.search(r"\(pid:(\d+)\)", msg)
    pid = int(m.group(1)) if m else None
    low = msg.lower()
    if msg.startswith("Starting gunicorn"):
        return "server_start", None
    if msg.startswith("Booting worker"):
        return "worker_boot", pid
    if msg.startswith("Worker exiting"):
        return "worker_exit", pid
    if msg.startswith("WORKER TIMEOUT"):
        return "worker_timeout", pid
    if "was sent sigkill" in low or "was sent code 9" in low:
        return "worker_killed", pid
    term = re.match(r"Worker with pid (\d+) was terminated due to signal (\d+)", msg)
    if term:  # gunicorn 20.1+: 9 is a kill (the OOM killer, or the master after a timeout)
        return ("worker_killed" if term.group(2) == "9" else "worker_exit"), int(term.group(1))
    if re.match(r"Worker \(pid:\d+\) exited with code", msg):
        return "worker_crash", pid
    if msg.startswith(("Exception in worker process", "Error handling request")):
        return "worker_error", None
    if msg.startswith("Shutting down: Master"):
        return "server_stop", None
    return "other", pid


@register
class GunicornLogLoader(Loader):
    """gunicorn's error log: worker boots, exits, timeouts and kills; workers, class, bind."""

    name = "gunicorn_log"
    frame = "server_events"
    description = "gunicorn error log (--error-logfile): worker lifecycle and start-up settings"
    expected = (
        "lines like [2026-12-05 07:50:22 +0000] [31316] [INFO] Booting worker with pid: 31347"
    )

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.split("\n")[:200] if ln.strip()]
        hits = [m for m in (_GUNICORN.match(ln) for ln in lines) if m]
        if not hits:
            return 0.0
        words = ("gunicorn", "Booting worker", "Worker exiting", "WORKER TIMEOUT", "Listening at:")
        if any(w in m.group("msg") for m in hits for w in words):
            return 0.95
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        text, report = _read(path, self.name)
        col = _Collector("gunicorn", self.name, str(path), options.get("tz"))
        entries: list[tuple[int, re.Match[str], list[str]]] = []
        lines = text.split("\n")
        access: dict[int, str] = {}  # a container's stderr mixes the access log in
        for i, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            m = _GUNICORN.fullmatch(raw.rstrip("\r"))
            if m:
                entries.append((i, m, []))
            elif access_match(raw) is not None:
                access[i] = raw
            elif entries:
                entries[-1][2].append(raw.rstrip("\r"))
            else:
                report.skip(i, "not a gunicorn log line", raw)
        for line, m, more in entries:
            report.ok()
            self._entry(col, line, m, more)
        if access:
            col.requests_frame = _access_requests(access, len(lines), str(path), report, options)
        names = {r["name"]: r["setting"] for r in col.settings}
        if (
            names.get("worker_class") in ("gthread", "gevent", "eventlet")
            and "threads" not in names
        ):
            report.warn(
                f"worker class {names['worker_class']}: the log does not state threads or connections "
                "per worker (log once at --log-level debug, or give deployment.threads_per_worker "
                "in audit.yaml)"
            )
        return _result(self, path, col, report, started)

    @staticmethod
    def _entry(col: _Collector, line: int, m: re.Match[str], more: list[str]) -> None:
        ts, msg, level = m.group("ts"), m.group("msg").strip(), m.group("level")
        if not re.search(r"[+-]\d{2}:?\d{2}$|Z$", ts):
            col.naive = True
        kind, pid = _gunicorn_kind(msg)
        if kind == "server_start":
            col.started(ts, line)
            version = msg.split()[-1]
            col.setting(ts, line, "version", version, "start-up lines")
        elif kind == "worker_boot":
            col.boot(pid)
        elif kind in ("worker_exit", "worker_killed", "worker_crash", "worker_timeout"):
            col.gone(pid)
        if msg.startswith("Listening at:"):
            urls = msg.split(":", 1)[1].rsplit("(", 1)[0].strip()
            col.setting(ts, line, "bind", urls, "start-up lines")
        elif msg.startswith("Using worker:"):
            col.setting(ts, line, "worker_class", msg.split(":", 1)[1].strip(), "start-up lines")
        elif msg.startswith("Current configuration"):
            for extra in more:
                c = _CONFIG_LINE.fullmatch(extra)
                if c and c.group("key") in _GUNICORN_SETTINGS:
                    value = c.group("value").strip()
                    if c.group("key") == "bind":
                        value = ",".join(re.findall(r"'([^']*)'", value)) or value
                    col.setting(ts, line, c.group("key"), value, "configuration")
            more = []
        if kind == "other" and level in ("ERROR", "CRITICAL"):
            kind = "app_error"
        col.event(
            ts,
            line,
            kind,
            msg,
            level,
            pid if pid is not None else int(m.group("pid")),
            "\n".join(more) or None,
        )


# -- uWSGI ------------------------------------------------------------------------------------

_UWSGI_REQUEST = compile_later(
    r"\[pid: (?P<pid>\d+)\|app: (?P<app>-?\d+)\|req: (?P<req>\d+)/(?P<total>\d+)\] "
    r"(?P<client>\S*) \((?P<user>[^)]*)\) \{(?P<vars>\d+) vars in (?P<vbytes>\d+) bytes\} "
    r"\[(?P<ts>[^\]]+)\] (?P<method>\S+) (?P<uri>.*) => generated (?P<bytes>\d+) bytes in "
    r"(?P<dur>\d+) (?P<unit>msecs|micros) \((?P<proto>[^ )]+) (?P<status>\d{3})\)"
)
_UWSGI_STAMP = compile_later(
    r"(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}) - (?P<msg>.*)"
)
_UWSGI_START = compile_later(
    r"\*\*\* Starting uWSGI (?P<version>\S+).*? on \[(?P<ts>[^\]]+)\] \*\*\*"
)

#: (pattern, kind, settings) of uWSGI's event lines; groups name the pid and settings
_UWSGI_EVENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        compile_later(r"spawned uWSGI worker \d+ \(pid: (?P<pid>\d+), cores: (?P<cores>\d+)\)"),
        "worker_boot",
    ),
    (
        compile_later(
            r"spawned uWSGI worker \d+ \(and the only\) \(pid: (?P<pid>\d+), cores: (?P<cores>\d+)\)"
        ),
        "worker_boot",
    ),
    (compile_later(r"Respawned uWSGI worker \d+ \(new pid: (?P<pid>\d+)\)"), "worker_boot"),
    (compile_later(r"\*\*\* HARAKIRI ON WORKER \d+ \(pid: (?P<pid>\d+)"), "worker_timeout"),
    (
        compile_later(
            r"DAMN ! worker \d+ \(pid: (?P<pid>\d+)\) died, killed by signal (?P<signal>\d+)"
        ),
        "worker_killed",
    ),
    (compile_later(r"DAMN ! worker \d+ \(pid: (?P<pid>\d+)\) (?:died|MISSING)"), "worker_crash"),
    (compile_later(r"worker \d+ buried after"), "worker_exit"),
    (compile_later(r"\.\.\.The work of process (?P<pid>\d+) is done"), "worker_exit"),
    (compile_later(r"worker \d+ killed successfully \(pid: (?P<pid>\d+)\)"), "worker_exit"),
    (compile_later(r"\*\*\* uWSGI listen queue of socket .* full"), "listen_queue_full"),
    (compile_later(r"goodbye to uWSGI"), "server_stop"),
)
#: banner lines: facts of the start-up, no event
_UWSGI_BANNER = compile_later(
    r"compiled with|os: |nodename: |machine: |clock source|pcre|detected |current working directory|"
    r"your |lock engine|thunder lock|Python version|--- Python VM|Python main interpreter|python threads|"
    r"mapped \d+ bytes|\*\*\* Operational MODE|WSGI app \d+|\*\*\* uWSGI is running|uWSGI running as root|"
    r"\*\*\* WARNING|spawned uWSGI (?:master|http|https|fastrouter)|uwsgi socket \d+ bound|uWSGI http bound|"
    r"chdir\(\)|setgid\(\)|setuid\(\)|set(?:uid|gid) to|\*\*\* has_emperor|Set PythonHome|"
    r"uWSGI http \d+|HARAKIRI|\[uwsgi|SIGINT/SIGTERM received|gateway \"|"
    r"\*\*\* Stats server|\*\*\* starting uWSGI|added .* to pythonpath|unable to|announcing"
)


#: start-up lines that state a setting: the setting and the pattern of its value
_UWSGI_SETTINGS = tuple(
    (name, compile_later(pattern))
    for name, pattern in (
        ("mode", r"\*\*\* Operational MODE: (\S+) \*\*\*"),
        ("socket", r"uwsgi socket \d+ bound to (?:TCP|UNIX) address (\S+)"),
        ("bind", r"uWSGI http bound on (\S+)"),
        ("cores", r"mapped \d+ bytes \(\d+ KB\) for (\d+) cores"),
        ("cpu_cores", r"detected number of CPU cores: (\d+)"),
        ("listen", r"your server socket listen backlog is limited to (\d+)"),
    )
)


def _uwsgi_settings(col: _Collector, ts: Any, line: int, msg: str) -> None:
    for name, pattern in _UWSGI_SETTINGS:
        m = pattern.match(msg)
        if m:
            col.setting(ts, line, name, m.group(1), "start-up lines")
    if msg.startswith("spawned uWSGI master"):
        col.setting(ts, line, "master", "true", "start-up lines")


@register
class UwsgiLogLoader(Loader):
    """uWSGI's log: start-up banner, worker lifecycle (harakiri, kills) and request lines."""

    name = "uwsgi_log"
    frame = "server_events"
    description = "uWSGI log (--logto): start-up banner, worker events and request lines"
    expected = (
        "*** Starting uWSGI … *** banner lines, or request lines like [pid: 88185|app: 0|req: 1/1] "
        "127.0.0.1 () {38 vars in 696 bytes} [Sun Mar 13 22:49:12 2016] POST /x => generated 47 "
        "bytes in 129 msecs (HTTP/1.1 200) …"
    )

    def sniff(self, head: str, path: Path) -> float:
        if "*** Starting uWSGI" in head:
            return 0.95
        lines = [ln for ln in head.split("\n")[:100] if ln.strip()]
        if not lines:
            return 0.0
        hits = sum(1 for ln in lines if _UWSGI_REQUEST.match(ln))
        return 0.9 if hits / len(lines) >= 0.5 else 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        started = time.perf_counter()
        text, report = _read(path, self.name)
        col = _Collector("uwsgi", self.name, str(path), options.get("tz"))
        col.naive = True  # uWSGI's ctime stamps carry no zone
        last_ts: Any = None
        cores_per_worker: str | None = None
        name = Path(path).name
        seen = False  # a uWSGI line was seen: later unknown lines are events of its log
        for i, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            r = _UWSGI_REQUEST.match(line)
            if r:
                seen = True
                last_ts = _ctime(r.group("ts"))
                self._request(col, i, r, name, last_ts)
                report.ok()
                continue
            msg = line.strip()
            s = _UWSGI_STAMP.match(msg)
            if s:
                last_ts = _ctime(s.group("ts"))
                msg = s.group("msg").strip()
            st = _UWSGI_START.search(msg)
            if st:
                last_ts = _ctime(st.group("ts"))
                col.started(last_ts, i)
                col.setting(last_ts, i, "version", st.group("version"), "start-up lines")
                col.event(last_ts, i, "server_start", msg)
                cores_per_worker = None
                seen = True
                report.ok()
                continue
            for pattern, kind in _UWSGI_EVENTS:
                e = pattern.search(msg)
                if e is None:
                    continue
                groups = e.groupdict()
                pid = int(groups["pid"]) if groups.get("pid") else None
                if kind == "worker_boot":
                    col.boot(pid)
                    cores = groups.get("cores")
                    if cores and cores != cores_per_worker:
                        cores_per_worker = cores
                        col.setting(last_ts, i, "threads", cores, "configuration")
                elif kind in ("worker_exit", "worker_killed", "worker_crash"):
                    col.gone(pid)
                col.event(last_ts, i, kind, msg, pid=pid)
                break
            else:
                if not seen and s is None and _UWSGI_BANNER.search(msg) is None:
                    report.skip(i, "not a uWSGI log line", line)
                    continue
                if msg.startswith("HARAKIRI [core") and col.events:
                    last = col.events[-1]  # the request that timed out: detail of its event
                    if last["kind"] == "worker_timeout":
                        last["detail"] = "\n".join(filter(None, [last["detail"], msg]))
                _uwsgi_settings(col, last_ts, i, msg)
                if _UWSGI_BANNER.search(msg) is None:
                    col.event(last_ts, i, "other", msg)
            seen = True
            report.ok()
        return _result(self, path, col, report, started)

    @staticmethod
    def _request(col: _Collector, line: int, r: re.Match[str], name: str, ts: Any) -> None:
        dur = int(r.group("dur"))
        uri = r.group("uri")
        col.requests.append(
            {
                "ts": ts,
                "request_id": f"{name}:{line}",
                "endpoint": path_of(uri),
                "path": path_of(uri),
                "method": r.group("method"),
                "status": int(r.group("status")),
                "duration_ms": dur / 1000.0 if r.group("unit") == "micros" else float(dur),
                "response_bytes": int(r.group("bytes")),
                "pid": int(r.group("pid")),
                "client": r.group("client") or None,
                "inferred": False,
                "source_format": UwsgiLogLoader.name,
                "source_line": line,
            }
        )


def _ctime(text: str) -> pd.Timestamp | None:
    """``Sun Mar 13 22:49:12 2016`` (naive) as a Timestamp; None when unreadable."""
    try:
        return pd.Timestamp(pd.to_datetime(" ".join(text.split()), format="%a %b %d %H:%M:%S %Y"))
    except (ValueError, OverflowError):
        return None
