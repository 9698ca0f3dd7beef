"""Application-server workers that died under a request: timeouts, kills, crashes, a full queue.

Reads what gunicorn's error log and uWSGI's log record (``server_events`` rows of the
application-server kinds, :data:`auditkit.loaders.app_server.EVENT_KINDS`), the server's own
settings (``server_settings`` rows of ``server`` gunicorn/uwsgi: ``timeout``, ``worker_class``,
``workers``) and the requests an access log answered. The database never sees these: a worker
killed at its timeout aborts the request it was serving, the client gets an error (a 500 from
gunicorn, a 502 from the proxy) and every request queued behind it waits for a new worker.

One finding per kind of failure:

* **timeouts** (gunicorn ``WORKER TIMEOUT``, uWSGI ``HARAKIRI``) — with the request each timed-out
  worker was serving when the log names it (gunicorn's ``Error handling request GET /path``,
  uWSGI's harakiri line), routed to its endpoint, and *where the worker was* when it was
  stopped: the innermost frame of the application's own code in the traceback gunicorn writes,
  and what that code was waiting on (the database driver, an HTTP client, SMTP, a sleep) from
  the library frames below it;
* **kills** not preceded by a timeout of the same worker (``SIGKILL`` — gunicorn adds "Perhaps
  out of memory?"; uWSGI "killed by signal 9"): the kernel's out-of-memory killer or an
  orchestrator's memory limit;
* **crashes** (a worker exiting with an error code, uWSGI ``DAMN ! worker … died``);
* **a full listen queue** (uWSGI): every worker busy and the socket's backlog full, so new
  connections are refused.

Severity, by what the failure costs the site's users (the "server errors by their kind" rule of
:mod:`auditkit.checks.severity`): a full listen queue is high; timeouts and kills are high from
``high_count`` (3) aborted requests on, medium below; crashes are medium.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from auditkit.endpoints import route_templates
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    duration_text,
)
from auditkit.lazy_re import compile_later

__all__ = ["APP_SERVER_KINDS", "where_stopped", "worker_failures"]

#: the ``server_events`` kinds this check reads
APP_SERVER_KINDS = ("worker_timeout", "worker_killed", "worker_crash", "listen_queue_full")

#: aborted requests from which a timeout or kill finding is high
HIGH_COUNT = 3

#: a kill within this long after a timeout of the same worker is the timeout's own kill
_KILL_AFTER_TIMEOUT = pd.Timedelta(seconds=60)

_REQUEST_LINE = compile_later(r"Error handling request (?P<method>[A-Z]+) (?P<path>\S+)")
_HARAKIRI_REQUEST = compile_later(
    r"\b(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?P<path>/\S*)"
)
_FRAME = compile_later(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\s*$')

#: library frames that say what the application was waiting on, by the file's path
_WAITS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"/(psycopg2?|psycopg_pool|MySQLdb|pymysql|mysql/connector|django/db/backends)/"
        ),
        "the database",
    ),
    (re.compile(r"/(smtplib\.py|django/core/mail/)"), "sending e-mail (SMTP)"),
    (
        re.compile(
            r"/(requests|urllib3|httpx|httpcore|aiohttp|urllib/request\.py|http/client\.py)"
        ),
        "an outbound HTTP call",
    ),
    (re.compile(r"/(redis|django_redis|pymemcache|pylibmc)/"), "the cache server"),
    (re.compile(r"/(boto3|botocore|s3transfer|google/cloud)/"), "a cloud storage or service API"),
    (re.compile(r"/(ssl|socket)\.py"), "the network"),
)
#: paths of code that is not the client's: the standard library, installed packages, the server
_NOT_CLIENT = compile_later(r"/(site-packages|dist-packages|lib/python\d[\d.]*|gunicorn|uwsgi)/|^<")


@dataclass(frozen=True)
class Stopped:
    """Where a worker was when its timeout stopped it, from the traceback it logged."""

    #: the innermost frame of the application's own code: ``shop/views.py:42 in checkout``
    frame: str | None
    #: the source line of that frame, when the traceback shows it
    code: str | None
    #: what the code below it was waiting on (``the database``, ``an outbound HTTP call``…)
    waiting_on: str | None


def _short(path: str) -> str:
    """The last two components of a path: enough for a developer to find the file, without the
    client machine's directory layout."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if parts else path


def where_stopped(traceback: str | None) -> Stopped | None:
    """The innermost frame of the client's code in a Python traceback and what the library
    frames under it were doing, or None when the text holds no frame of the client's code."""
    if not traceback or "Traceback" not in traceback:
        return None
    lines = traceback.splitlines()
    frames: list[tuple[str, int, str, str | None]] = []
    for i, text in enumerate(lines):
        m = _FRAME.match(text)
        if not m:
            continue
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        code = nxt if nxt and not _FRAME.match(lines[i + 1]) and not nxt.startswith("^") else None
        frames.append((m["file"], int(m["line"]), m["func"], code))
    # the abort handler is where the server interrupted the worker: not the application's place
    frames = [f for f in frames if not re.search(r"/(gunicorn|uwsgi)/", f[0])]
    own = [i for i, f in enumerate(frames) if not _NOT_CLIENT.search(f[0])]
    if not own:
        return None
    last = own[-1]
    file, line, func, code = frames[last]
    waiting = None
    for below in frames[last + 1 :]:  # the first library the client's code called names the wait
        for pattern, what in _WAITS:
            if pattern.search(below[0]):
                waiting = what
                break
        if waiting:
            break
    if waiting is None and code and re.search(r"\btime\.sleep\(|\bsleep\(", code):
        waiting = "a sleep in the code itself"
    return Stopped(f"{_short(file)}:{line} in {func}", code, waiting)


def _server_name(settings: pd.DataFrame, events: pd.DataFrame) -> str:
    if len(settings) and "server" in settings.columns:
        servers = settings["server"].dropna().astype(str)
        servers = servers[servers.isin(["gunicorn", "uwsgi"])]
        if len(servers):
            return "uWSGI" if servers.iloc[0] == "uwsgi" else "gunicorn"
    fmt = events["source_format"].dropna().astype(str)
    return "uWSGI" if len(fmt) and fmt.iloc[0].startswith("uwsgi") else "gunicorn"


def _setting(settings: pd.DataFrame, name: str) -> pd.Series | None:
    if not len(settings) or "server" not in settings.columns:
        return None
    rows = settings[settings["server"].isin(["gunicorn", "uwsgi"]) & (settings["name"] == name)]
    return rows.iloc[-1] if len(rows) else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", df.to_dict("records"))


def _errors_of(events: pd.DataFrame, timeout: dict[str, Any]) -> list[dict[str, Any]]:
    """What the timed-out worker logged itself around its timeout (gunicorn's ``Error handling
    request`` with the traceback of where it was interrupted)."""
    errors = events[events["kind"] == "worker_error"]
    ts = timeout["ts"]
    return _records(
        errors[
            (errors["pid"] == timeout["pid"])
            & (errors["ts"] >= ts - pd.Timedelta(seconds=2))
            & (errors["ts"] <= ts + pd.Timedelta(seconds=30))
        ]
    )


def _aborted(
    events: pd.DataFrame, timeouts: pd.DataFrame
) -> tuple[list[tuple[str, str]], list[Stopped]]:
    """The (method, path) of the request each timed-out worker was serving, when logged, and
    where each was stopped, when its traceback was logged."""
    requests: list[tuple[str, str]] = []
    stops: list[Stopped] = []
    for t in _records(timeouts):
        detail = t["detail"] if isinstance(t["detail"], str) else ""
        m = _HARAKIRI_REQUEST.search(f"{t['message']} {detail}")
        if m and str(t["message"]).startswith("*** HARAKIRI"):
            requests.append((m["method"], m["path"]))
        for e in _errors_of(events, t):
            line = _REQUEST_LINE.search(str(e["message"]))
            if line and not m:
                requests.append((line["method"], line["path"]))
                m = line
            stop = where_stopped(e["detail"] if isinstance(e["detail"], str) else None)
            if stop:
                stops.append(stop)
                break
    return requests, stops


def _routes(paths: Iterable[str], requests: pd.DataFrame) -> dict[str, str]:
    """Route templates for the aborted paths, learnt together with every path the access log saw."""
    seen = list(paths)
    known: list[str] = []
    if len(requests) and "path" in requests.columns:
        known = requests["path"].dropna().astype(str).str.split("?").str[0].tolist()
    routes = route_templates([p.split("?")[0] for p in seen] + known)
    return {p: routes.get(p.split("?")[0], p.split("?")[0]) for p in seen}


def _times(n: int) -> str:
    return "once" if n == 1 else ("twice" if n == 2 else f"{n:,} times")


def _when(ts: pd.Series) -> str:
    ts = ts.dropna()
    if not len(ts):
        return ""
    first, last = ts.min(), ts.max()
    fmt = "%Y-%m-%d %H:%M"
    if first == last or first.strftime(fmt) == last.strftime(fmt):
        return f" at {first.strftime(fmt)} UTC"
    return f" between {first.strftime(fmt)} and {last.strftime(fmt)} UTC"


def _items(rows: pd.DataFrame, limit: int = 10) -> tuple[dict[str, object], ...]:
    out = []
    for r in _records(rows.head(limit)):
        item: dict[str, object] = {"time": str(r["ts"]), "message": str(r["message"])[:200]}
        if pd.notna(r["pid"]):
            item["pid"] = int(r["pid"])
        if isinstance(r["source_file"], str):
            item["source_file"] = _short(r["source_file"])
        if pd.notna(r["source_line"]):
            item["source_line"] = int(r["source_line"])
        out.append(item)
    return tuple(out)


def _timeouts(
    events: pd.DataFrame, settings: pd.DataFrame, requests: pd.DataFrame, server: str
) -> Finding | None:
    timeouts = events[events["kind"] == "worker_timeout"].sort_values("ts")
    if not len(timeouts):
        return None
    n = len(timeouts)
    timeout = _setting(settings, "timeout" if server == "gunicorn" else "harakiri")
    limit_ms = (
        float(timeout["value"]) if timeout is not None and pd.notna(timeout["value"]) else None
    )
    aborted, stops = _aborted(events, timeouts)
    routes = _routes([p for _, p in aborted], requests)
    by_route: dict[str, int] = {}
    for method, path in aborted:
        key = f"{method} {routes[path]}"
        by_route[key] = by_route.get(key, 0) + 1
    limit = (
        f"its {duration_text(limit_ms)} timeout"
        if limit_ms
        else (
            "its timeout (--timeout, 30 s unless set)"
            if server == "gunicorn"
            else "its harakiri limit"
        )
    )
    times = _times(n)
    summary = (
        f"{server} stopped a worker {times} for serving one request past {limit}"
        f"{_when(timeouts['ts'])}. "
        + ("The request was" if n == 1 else "Each request was")
        + " cut off with an error, and the worker's replacement had to start before it could "
        "serve again."
    )
    if by_route:
        listed = ", ".join(
            f"{k} ({v})" if v > 1 else k for k, v in sorted(by_route.items(), key=lambda kv: -kv[1])
        )
        summary += (
            f" The request was {listed}."
            if n == 1
            else f" The log names the request for {len(aborted)} of them: {listed}."
        )
    waits = sorted({s.waiting_on for s in stops if s.waiting_on})
    if stops:
        places = sorted({s.frame for s in stops if s.frame})
        summary += (
            f" When stopped, the worker was in {', '.join(places[:3])}"
            + (f", waiting on {' and '.join(waits)}" if waits else "")
            + "."
        )
    endpoint = max(by_route, key=lambda k: by_route[k]).split(" ", 1)[1] if by_route else None
    which = f" ({', '.join(sorted(by_route))})" if by_route else ""
    slept = "a sleep in the code itself" in waits
    waits = [w for w in waits if w != "a sleep in the code itself"]
    if "the database" in waits:
        advice = (
            f"Make the request{which} finish well inside the timeout: it was waiting on the "
            "database, so its statements are in the queries chapter — the slowest of them, with "
            "their plans, is where the time goes. "
        )
    elif waits:
        advice = (
            f"Take the slow work out of the request{which}: it was waiting on "
            f"{' and '.join(waits)}, which a background task (Celery, Django-RQ, or django.tasks "
            "from Django 6.0) can do after the response; and give that call a timeout shorter "
            "than the worker's. "
        )
    elif slept:
        advice = (
            f"The request{which} sleeps in the application's own code (see the evidence): "
            "remove the sleep, or move the work that waits (polling, retries) to a background "
            "task (Celery, Django-RQ, or django.tasks from Django 6.0). "
        )
    else:
        advice = (
            f"Find what keeps the request{which} busy past the timeout — an APM trace of one "
            "such request, or py-spy dump of a worker while it is stuck, shows where — and make "
            "it finish inside it or move the work to a background task. "
        )
    advice += (
        "Raising the timeout only hides the problem: each such request still holds a worker for as "
        "long, and the requests queued behind it wait."
    )
    metrics: dict[str, float | int | str | None] = {"timeouts": n, "requests_named": len(aborted)}
    if limit_ms:
        metrics["timeout_ms"] = limit_ms
    items = list(_items(timeouts))
    for s in stops[:5]:
        items.append({"stopped_in": s.frame, "code": s.code, "waiting_on": s.waiting_on})
    return Finding(
        check="worker_failures",
        severity=Severity.HIGH if n >= HIGH_COUNT else Severity.MEDIUM,
        title=(
            f"{server} stopped {'a worker' if n == 1 else f'{n:,} workers'} at the request timeout"
            + (f" on {endpoint}" if endpoint and len(by_route) == 1 else "")
        ),
        summary=summary,
        subject=Subject(
            endpoint=endpoint if len(by_route) == 1 else None, expression="worker timeout"
        ),
        metrics=metrics,
        recommendation=Recommendation(summary=advice),
        evidence=Evidence(
            strength=EvidenceStrength.PATTERN,
            items=tuple(items),
            note=f"from the {server} log"
            + ("" if stops else "; the log carries no traceback of the stopped workers"),
        ),
        action=(
            f"Make {endpoint} finish inside the worker timeout, or move its slow work out of the request."
            if endpoint and len(by_route) == 1
            else "Find the requests that run past the worker timeout and make them finish inside it."
        ),
    )


def _kills(events: pd.DataFrame, server: str) -> Finding | None:
    kills = events[events["kind"] == "worker_killed"].sort_values("ts")
    if not len(kills):
        return None
    timeouts = events[events["kind"] == "worker_timeout"]
    own = [
        not (
            (timeouts["pid"] == k["pid"])
            & (timeouts["ts"] <= k["ts"])
            & (timeouts["ts"] >= k["ts"] - _KILL_AFTER_TIMEOUT)
        ).any()
        for k in _records(kills)
    ]
    kills = kills[own]
    if not len(kills):
        return None
    n = len(kills)
    recycle = (
        "--max-requests with --max-requests-jitter"
        if server == "gunicorn"
        else "max-requests, reload-on-rss"
    )
    return Finding(
        check="worker_failures",
        severity=Severity.HIGH if n >= HIGH_COUNT else Severity.MEDIUM,
        title=(
            f"{'A' if n == 1 else f'{n:,}'} {server} worker{' was' if n == 1 else 's were'} "
            "killed by SIGKILL without a timeout"
        ),
        summary=(
            f"{'A worker' if n == 1 else f'{n:,} workers'} of {server} "
            f"{'was' if n == 1 else 'were'} killed by signal 9"
            f"{_when(kills['ts'])} without a timeout before: something outside {server} killed "
            f"{'it' if n == 1 else 'them'} — most often the kernel's out-of-memory killer or a "
            "container's memory limit. Every request the worker was serving was lost."
        ),
        subject=Subject(expression="worker killed"),
        metrics={"kills": n},
        recommendation=Recommendation(
            summary=(
                'Confirm the cause in the kernel log (dmesg: "Out of memory: Killed process") or the '
                "container's events (OOMKilled). If it is memory: find the requests that load whole "
                "querysets into memory (iterate large ones with .iterator(), paginate exports), "
                f"and recycle workers that grow ({recycle}); "
                "size the memory limit for workers × the largest worker."
            )
        ),
        evidence=Evidence(
            strength=EvidenceStrength.PATTERN, items=_items(kills), note=f"from the {server} log"
        ),
        action="Find why workers are killed without a timeout (usually memory) and stop it.",
    )


def _exception(text: str | None) -> str | None:
    """The exception a Python traceback ends with (``ModuleNotFoundError: No module named 'x'``)."""
    if not text or "Traceback" not in text:
        return None
    for line in reversed(text.strip().splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line.strip()):
            return line.strip()[:200]
    return None


def _crashes(events: pd.DataFrame, server: str) -> Finding | None:
    crashes = events[events["kind"] == "worker_crash"].sort_values("ts")
    if not len(crashes):
        return None
    n = len(crashes)
    errors = events[events["kind"] == "worker_error"]
    causes: list[tuple[str, Stopped | None]] = []
    for c in _records(crashes):
        before = errors[
            (errors["pid"] == c["pid"])
            & (errors["ts"] <= c["ts"])
            & (errors["ts"] >= c["ts"] - _KILL_AFTER_TIMEOUT)
        ]
        for e in reversed(_records(before)):
            detail = e["detail"] if isinstance(e["detail"], str) else None
            exc = _exception(detail)
            if exc:
                causes.append((exc, where_stopped(detail)))
                break
    boot = crashes["message"].astype(str).str.contains(
        "failed to boot|code 3", regex=True
    ).any() or (errors["message"].astype(str).str.startswith("Exception in worker process").any())
    summary = (
        f"{'A worker' if n == 1 else f'{n:,} workers'} of {server} exited abnormally"
        f'{_when(crashes["ts"])} ("{str(crashes["message"].iloc[0])[:120]}")'
    )
    if causes:
        exc, where = causes[0]
        summary += f": {exc}" + (f", raised in {where.frame}" if where and where.frame else "")
    summary += (
        ". The worker could not load the application, so it served nothing."
        if boot
        else f"; requests in flight on {'it' if n == 1 else 'them'} were lost."
    )
    preflight = (
        "gunicorn --check-config imports it and exits non-zero when it cannot, and manage.py "
        "check runs Django's system checks."
        if server == "gunicorn"
        else "manage.py check imports it and runs Django's system checks."
    )
    items = list(_items(crashes))
    items += [{"exception": exc, "raised_in": w.frame if w else None} for exc, w in causes[:5]]
    return Finding(
        check="worker_failures",
        severity=Severity.MEDIUM,
        title=(
            f"{'A' if n == 1 else f'{n:,}'} {server} worker{'' if n == 1 else 's'} "
            + ("failed to boot" if boot else "exited with an error")
        ),
        summary=summary,
        subject=Subject(expression="worker crash"),
        metrics={"crashes": n},
        recommendation=Recommendation(
            summary=(
                "Fix the exception the worker raised (see the evidence), and let the deployment "
                f"load the application before it takes traffic: {preflight}"
                if causes
                else f"Read the lines {server} logged just before each exit (see the evidence): "
                "an exception at import or start-up, a native extension crashing, or a signal."
            )
        ),
        evidence=Evidence(
            strength=EvidenceStrength.PATTERN, items=tuple(items), note=f"from the {server} log"
        ),
        action="Find why application-server workers crash and fix it.",
    )


def _queue_full(events: pd.DataFrame, settings: pd.DataFrame, server: str) -> Finding | None:
    full = events[events["kind"] == "listen_queue_full"].sort_values("ts")
    if not len(full):
        return None
    n = len(full)
    workers = _setting(settings, "workers")
    has = f" with {workers['setting']} workers" if workers is not None else ""
    return Finding(
        check="worker_failures",
        severity=Severity.HIGH,
        title=f"{server}'s listen queue was full {_times(n)}",
        summary=(
            f"{server}{has} reported its socket's listen queue full "
            f"{_times(n)}"
            f"{_when(full['ts'])}: every worker was busy and the backlog of waiting connections "
            "was used up, so new connections were refused or timed out."
        ),
        subject=Subject(expression="listen queue full"),
        metrics={"listen_queue_full": n},
        recommendation=Recommendation(
            summary=(
                "Requests are arriving faster than the workers finish them: make the slowest "
                "endpoints faster (the queries and scaling chapters rank them), then size the workers "
                "for the peak (the scaling chapter's capacity plan); a larger backlog (--listen, "
                "net.core.somaxconn) only lets more requests wait."
            )
        ),
        evidence=Evidence(
            strength=EvidenceStrength.PATTERN, items=_items(full), note=f"from the {server} log"
        ),
        action="Serve the peak without queueing: faster slow endpoints, then enough workers.",
    )


def worker_failures(
    server_events: pd.DataFrame, server_settings: pd.DataFrame, requests: pd.DataFrame
) -> list[Finding]:
    """One finding per kind of application-server worker failure (see the module docstring)."""
    if not len(server_events):
        return []
    kinds = [*APP_SERVER_KINDS, "worker_error"]
    events = server_events[server_events["kind"].isin(kinds)].copy()
    if not len(events[events["kind"].isin(APP_SERVER_KINDS)]):
        return []
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    server = _server_name(server_settings, events)
    found = [
        _timeouts(events, server_settings, requests, server),
        _kills(events, server),
        _crashes(events, server),
        _queue_full(events, server_settings, server),
    ]
    return [f for f in found if f is not None]
