"""Web server access logs — nginx and gunicorn, common and combined formats — as requests.

The shared shape (NCSA common, and combined with referer and user agent)::

    203.0.113.9 - - [01/May/2024:10:00:00 +0000] "GET /products/?page=2 HTTP/1.1" 200 5120
    203.0.113.9 - - [01/May/2024:10:00:00 +0000] "GET /products/ HTTP/1.1" 200 5120 "-" "Mozilla/5.0"

followed, in the formats an audit wants, by the request time and perhaps a request id:

* nginx ``$request_time`` — seconds with a millisecond fraction (``0.123``), often followed by
  ``$upstream_response_time`` and ``$request_id`` (32 hex digits);
* gunicorn ``%(L)s`` — seconds with a microsecond fraction (``0.012345``), or ``%(D)s`` —
  whole microseconds (``12345``), or ``%(M)s`` — whole milliseconds (say ``request_time_unit="ms"``);
* ``key=value`` fields: ``rt=``/``request_time=`` (seconds), ``rid=``/``request_id=``.

Which trailing field is the request time is decided once per file from its first lines
(:meth:`AccessLogLoader.parser`): the first field that is always a decimal number (seconds),
else the whole-number field with the most distinct values (a worker pid repeats, a duration
does not), read as microseconds unless ``request_time_unit`` says otherwise. A request id is
a 32-hex-digit or UUID field, or a ``rid=`` / ``request_id=`` value.

nginx's upstream fields are found by their values, wherever the ``log_format`` puts them
(:func:`_roles`), or by ``key=value`` names (``urt=``/``upstream_response_time=``, ``ua=``/
``upstream_addr=``, ``us=``/``upstream_status=``, ``ucs=``/``upstream_cache_status=``):
``$upstream_addr`` (``10.0.0.5:8000``, ``[2001:db8::1]:80``, ``unix:/run/app.sock``),
``$upstream_status``, ``$upstream_response_time`` and ``$upstream_cache_status`` (HIT, MISS,
BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED). A retried request lists one value per try —
``"10.0.0.5:8000, 10.0.0.6:8000"``, and ``" : "`` between upstream groups after an internal
redirect —: ``upstream_ms`` is the sum of the tries' times (the time the proxy waited on the
application), ``upstream_addr``/``upstream_status`` keep the list as logged.

Rows: ``endpoint`` and ``path`` are the path without query string, ``method`` and ``status`` come from the
request line, ``duration_ms`` from the request time. nginx and gunicorn write the log line
when the response is complete, so ``ts`` (the request's start, UTC) is the logged time minus
the request time; pass ``logged_at="start"`` for servers that log the start (Apache ``%t``).
Logs without a request id get ``<file name>:<line>`` ids. Extra columns: ``client``,
``size_bytes``, ``user_agent``; ``response_bytes`` is the logged body size. A request line
with a method nginx does not know (``PATCHp``, ``geti``: nginx answers them 400) but a path and
a protocol is kept, and the report lists those methods. Lines that are not requests (``"-"
400``, TLS handshakes sent to a plain port) are skipped as ``malformed request line``; other
lines as ``not an access log line``. Blank lines are not records. Memory is linear in a line's
length (a 10 MB request line parses in about its own size). Streamed in blocks: access logs are
large.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import ConfigError
from auditkit.lazy_re import compile_later
from auditkit.loaders.base import BlockLoader, BlockParser, BlockResult
from auditkit.loaders.registry import register
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block
from auditkit.requests import path_of

__all__ = ["AccessLogLoader", "AccessLogParser", "match_line", "upstream_ms"]


def _quoted(name: str) -> str:
    # the "unrolled loop" form: runs of plain characters are one single-class repeat, which the
    # regex engine matches without a backtracking frame per character (the alternation
    # (?:[^"\\]|\\.)* took ~180 bytes of memory per character of a long request line)
    return rf'"(?P<{name}>[^"\\]*(?:\\.[^"\\]*)*)"'


#: where the bracketed time starts: found first, in linear time, then matched from there
_TIME_OPEN = compile_later(r"\[(?:\d{2}/[A-Za-z]{3}/\d{4}[: ]|\d{4}-\d{2}-\d{2}T)")
_FROM_TIME = compile_later(
    r"\[(?P<time>\d{2}/[A-Za-z]{3}/\d{4}[: ]\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\] "
    + _quoted("request")
    + r" (?P<status>\d{3}) (?P<size>\d+|-)"
    + rf"(?: {_quoted('referer')} {_quoted('agent')})?"
    + r"(?P<rest>.*)$"
)


def _match(line: str) -> dict[str, str | None] | None:
    """The fields of one access-log line, or None.

    ``host ident user [time] "request" status size ["referer" "agent"] rest``; anything may
    precede the host (a syslog prefix), and host/ident/user may be absent altogether (Django's
    runserver log starts at the time).
    """
    start = _TIME_OPEN.search(line)
    if start is None:
        return None
    m = _FROM_TIME.match(line, start.start())
    if m is None:
        return None
    fields: dict[str, str | None] = m.groupdict()
    prefix = line[: start.start()]
    fields["client"] = None
    if prefix.strip():
        tokens = prefix.split()
        if not prefix.endswith(" ") or len(tokens) < 3:
            return None
        fields["client"] = tokens[-3]
    return fields


def match_line(line: str) -> dict[str, str | None] | None:
    """The fields of one access-log line (time, request, status, size, …), or None."""
    return _match(line)


_TOKEN = compile_later(r'"[^"\\]*(?:\\.[^"\\]*)*"|\S+')
#: nginx writes one value per upstream try: "a, b" across servers, "a : b" across groups
_LIST_GLUE = compile_later(r"(?<=\S)(?:,\s+|\s+:\s+)(?=\S)")
_ADDR = compile_later(
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,10}|unix:\S+"
)
_CACHE_WORDS = frozenset(
    {"HIT", "MISS", "BYPASS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "DYNAMIC"}
)
_UPSTREAM_TIME_KEYS = ("urt", "upstream_response_time", "upstream_time", "uptime")
_UPSTREAM_ADDR_KEYS = ("ua", "upstream_addr", "upstream", "upstream_address")
_UPSTREAM_STATUS_KEYS = ("us", "upstream_status")
_CACHE_KEYS = ("ucs", "upstream_cache_status", "cache_status", "cache", "cs")
_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND",
     "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PURGE"}
)  # fmt: skip
_ODD_METHOD = compile_later(r"[A-Za-z][A-Za-z_-]{0,31}")
_KV = compile_later(r"([A-Za-z_][\w.-]*)=(.*)")
_FLOAT = compile_later(r"\d+\.\d+")
_INT = compile_later(r"\d+")
_ID = compile_later(
    r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_METHOD = compile_later(r"[A-Z][A-Z_-]{1,15}")
_TIME_KEYS = frozenset({"rt", "request_time", "reqtime", "rtime", "request_duration", "duration"})
_ID_KEYS = frozenset({"rid", "request_id", "req_id", "requestid", "x_request_id", "x-request-id"})
_UNITS = {"s": 1000.0, "ms": 1.0, "us": 0.001}


def _trailing(rest: str) -> tuple[list[str], dict[str, str]]:
    """Positional fields and key=value fields after the common/combined part."""
    plain: list[str] = []
    kv: dict[str, str] = {}
    for tok in _TOKEN.findall(_LIST_GLUE.sub(_glued, rest)):
        m = _KV.fullmatch(tok)
        if m and not tok.startswith('"'):
            kv[m.group(1).lower()] = m.group(2).strip('"')
        else:
            plain.append(tok.strip('"'))
    return plain, kv


def _glued(m: re.Match[str]) -> str:
    """A list separator without spaces, so the list stays one field: ``,`` or ``|``."""
    return "," if "," in m.group(0) else "|"


def _items(value: str) -> list[str]:
    """The per-try values of an nginx list field: ``"0.010, 0.020 : 0.005"`` → 3 items."""
    return [v for v in re.split(r"\s*(?:,|\||\s:\s)\s*", value.strip()) if v]


def _as_logged(value: str) -> str:
    """A glued list written back as nginx writes it: ``a, b : c``."""
    return value.replace(",", ", ").replace("|", " : ")


def _is_list(value: str, item: re.Pattern[str]) -> bool:
    items = _items(value)
    return bool(items) and all(v == "-" or item.fullmatch(v) for v in items)


_STATUS = compile_later(r"[1-5]\d\d")


def upstream_ms(value: str | None) -> float | None:
    """nginx ``$upstream_response_time`` summed over tries, in ms; None when none was timed.

    >>> upstream_ms("0.010, 0.020 : 0.005")
    35.0
    """
    if not value or value == "-":
        return None
    total, seen = 0.0, False
    for v in _items(value):
        if _FLOAT.fullmatch(v) or _INT.fullmatch(v):
            total += float(v)
            seen = True
    return round(total * 1000.0, 6) if seen else None


class AccessLogParser(BlockParser):
    """Parses blocks of one access log whose request-time field was found up front."""

    def __init__(
        self,
        time_pos: int | None,
        int_unit: str,
        logged_at: str,
        tz: str | None,
        roles: dict[str, int] | None = None,
    ) -> None:
        self.time_pos = time_pos
        #: positions of upstream_ms, upstream_addr, upstream_status, cache_status
        self.roles = roles or {}
        self.int_unit = int_unit
        self.logged_at = logged_at
        self.tz = tz
        self.boundary = None

    def parse(self, block: Block) -> BlockResult:
        text, bad = block.text()
        report = ParseReport(block.source, AccessLogLoader.name)
        report.lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        report.bytes = len(block.data)
        for line in bad:
            report.warn(f"invalid UTF-8 replaced with U+FFFD on line {line}")
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "time",
                "request_id",
                "endpoint",
                "method",
                "status",
                "duration_ms",
                "client",
                "size_bytes",
                "user_agent",
                "source_line",
                "path",
                "upstream_ms",
                "upstream_addr",
                "upstream_status",
                "cache_status",
            )
        }
        odd: list[str] = []
        name = Path(block.source).name
        for offset, raw in enumerate(text.split("\n")):
            if not raw.strip():
                continue
            line_no = block.first_line + offset
            m = _match(raw)
            if m is None:
                report.skip(line_no, "not an access log line", raw)
                continue
            request = m["request"] or ""
            parts = request.split(" ")
            # a method nginx does not know ("PATCHp", "geti") on an otherwise whole request
            # line is still a request the server answered: kept, and said in the report
            odd_but_whole = (
                len(parts) == 3
                and _ODD_METHOD.fullmatch(parts[0]) is not None
                and parts[1].startswith(("/", "http"))
                and parts[2].startswith("HTTP/")
            )
            if (len(parts) < 2 or not _METHOD.fullmatch(parts[0])) and not odd_but_whole:
                report.skip(line_no, "malformed request line", raw)
                continue
            if parts[0] not in _STANDARD_METHODS:
                odd.append(parts[0])
            target = (
                " ".join(parts[1:-1])
                if len(parts) > 2 and parts[-1].startswith("HTTP/")
                else " ".join(parts[1:])
            )
            plain, kv = _trailing(m["rest"] or "")
            duration = self._duration(plain, kv)
            rid = next((kv[k] for k in _ID_KEYS if kv.get(k) not in (None, "", "-")), None)
            if rid is None:
                rid = next((t for t in plain if _ID.fullmatch(t)), None)
            up = self._upstream(plain, kv)
            report.ok()
            cols["time"].append(m["time"])
            cols["request_id"].append(rid or f"{name}:{line_no}")
            cols["endpoint"].append(
                path_of(target) if target.startswith(("/", "http")) else target or None
            )
            cols["method"].append(parts[0])
            cols["status"].append(int(m["status"] or 0))
            cols["duration_ms"].append(duration)
            cols["client"].append(m["client"])
            size = m["size"] or "-"
            cols["size_bytes"].append(int(size) if size.isdigit() else None)
            agent = m["agent"]
            cols["user_agent"].append(agent if agent not in (None, "-") else None)
            cols["source_line"].append(line_no)
            cols["path"].append(path_of(target) if target.startswith(("/", "http")) else None)
            for key, value in up.items():
                cols[key].append(value)
        if odd:
            counts = ", ".join(f"{k} ×{v}" for k, v in sorted(Counter(odd).items()))
            report.warn(f"requests with a method that is not a standard HTTP method kept: {counts}")
        return BlockResult({"requests": self._frame(cols, block.source)}, report)

    def _upstream(self, plain: list[str], kv: dict[str, str]) -> dict[str, Any]:
        """upstream_ms, upstream_addr, upstream_status, cache_status of one line."""

        def pick(role: str, keys: tuple[str, ...]) -> str | None:
            for key in keys:
                if kv.get(key) not in (None, ""):
                    return kv[key]
            pos = self.roles.get(role)
            if pos is not None and pos < len(plain):
                return plain[pos]
            return None

        timing = pick("upstream_ms", _UPSTREAM_TIME_KEYS)
        addr = pick("upstream_addr", _UPSTREAM_ADDR_KEYS)
        status = pick("upstream_status", _UPSTREAM_STATUS_KEYS)
        cache = pick("cache_status", _CACHE_KEYS)
        return {
            "upstream_ms": upstream_ms(timing),
            "upstream_addr": _as_logged(addr) if addr not in (None, "-") else None,
            "upstream_status": _as_logged(status) if status not in (None, "-") else None,
            "cache_status": cache.upper() if cache not in (None, "-", "") else None,
        }

    def _duration(self, plain: list[str], kv: dict[str, str]) -> float | None:
        for key in _TIME_KEYS:
            value = kv.get(key)
            if value and (_FLOAT.fullmatch(value) or _INT.fullmatch(value)):
                return float(value) * 1000.0  # key=value request times are seconds
        if self.time_pos is None or self.time_pos >= len(plain):
            return None
        tok = plain[self.time_pos]
        if _FLOAT.fullmatch(tok):
            return float(tok) * 1000.0
        if _INT.fullmatch(tok):
            return float(tok) * _UNITS[self.int_unit]
        return None

    def _frame(self, cols: dict[str, list[Any]], source: str) -> pd.DataFrame:
        times = pd.Series(cols.pop("time"), dtype="object")
        df = pd.DataFrame(cols)
        logged = _parse_times(times, self.tz)
        duration = pd.to_numeric(df["duration_ms"], errors="coerce")
        if self.logged_at == "end":
            df["ts"] = logged - pd.to_timedelta(duration.fillna(0.0), unit="ms")
        else:
            df["ts"] = logged
        df["status"] = df["status"].astype("Int64")
        df["size_bytes"] = df["size_bytes"].astype("Int64")
        for col in ("client", "user_agent", "path", "upstream_addr", "upstream_status"):
            df[col] = df[col].astype("string")
        df["cache_status"] = df["cache_status"].astype("string")
        df["upstream_ms"] = pd.to_numeric(df["upstream_ms"], errors="coerce")
        df["response_bytes"] = df["size_bytes"]
        df["db_ms"] = float("nan")
        df["inferred"] = False
        df["source_format"] = AccessLogLoader.name
        df["source_file"] = source
        return df


def _parse_times(times: pd.Series, tz: str | None) -> pd.Series:
    """``10/Oct/2023:13:55:36 +0000`` (nginx, gunicorn), ISO 8601, or Django's naive form."""
    if not len(times):
        return pd.Series([], dtype="datetime64[ns, UTC]")
    out = pd.to_datetime(
        times, format="%d/%b/%Y:%H:%M:%S %z", errors="coerce", utc=True
    ).dt.as_unit("ns")
    todo = out.isna()
    if todo.any():
        iso = pd.to_datetime(times[todo], format="ISO8601", errors="coerce", utc=True)
        out[todo] = iso
        todo = out.isna()
    if todo.any():
        naive = pd.to_datetime(times[todo], format="%d/%b/%Y %H:%M:%S", errors="coerce")
        local = naive.dt.tz_localize(tz or "UTC", ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
            "UTC"
        )
        out[todo] = local
    return out.dt.as_unit("ns")


@register
class AccessLogLoader(BlockLoader):
    """nginx / gunicorn access logs (common, combined, plus request time and request id)."""

    name = "access_log"
    frame = "requests"
    description = (
        "nginx or gunicorn access log (common/combined, optionally with request time and id, "
        "nginx upstream and cache fields)"
    )
    expected = (
        'lines like 203.0.113.9 - - [01/May/2024:10:00:00 +0000] "GET /path HTTP/1.1" 200 5120 '
        '"-" "agent" 0.123'
    )

    def sniff(self, head: str, path: Path) -> float:
        lines = [ln for ln in head.split("\n")[:50] if ln.strip()]
        if len(lines) > 1 and not head.endswith("\n"):
            lines = lines[:-1]  # the last line may be cut by the head
        if not lines:
            return 0.0
        hits = sum(1 for ln in lines if _match(ln) is not None)
        share = hits / len(lines)
        return 0.9 if share >= 0.6 else 0.3 if hits else 0.0

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        unit = options.get("request_time_unit")
        if unit is not None and unit not in _UNITS:
            raise ConfigError(
                f"request_time_unit={unit!r} is not a unit", hint=f"use one of {', '.join(_UNITS)}"
            )
        logged_at = options.get("logged_at", "end")
        if logged_at not in ("end", "start"):
            raise ConfigError(
                f"logged_at={logged_at!r}", hint="use 'end' (nginx, gunicorn) or 'start' (Apache)"
            )
        time_pos = _time_position(head)
        return AccessLogParser(
            time_pos, unit or "us", logged_at, options.get("tz"), _roles(head, time_pos)
        )


def _time_position(head: str) -> int | None:
    """Which positional trailing field holds the request time, from the file's first lines."""
    columns: dict[int, list[str]] = {}
    for raw in head.split("\n")[:500]:
        m = _match(raw)
        if m is None:
            continue
        plain, _ = _trailing(m["rest"] or "")
        for i, tok in enumerate(plain):
            if tok != "-":
                columns.setdefault(i, []).append(tok)
    floats = [
        i
        for i, vals in sorted(columns.items())
        if vals and sum(bool(_FLOAT.fullmatch(v)) for v in vals) >= 0.8 * len(vals)
    ]
    if floats:
        return floats[0]
    ints = [
        (len(set(vals)), i)
        for i, vals in sorted(columns.items())
        if vals and sum(bool(_INT.fullmatch(v)) for v in vals) >= 0.8 * len(vals)
    ]
    if not ints:
        return None
    return max(ints, key=lambda t: (t[0], -t[1]))[1]


def _roles(head: str, time_pos: int | None) -> dict[str, int]:
    """Positions of the upstream fields among the trailing fields, from the file's first lines.

    ``upstream_addr``: the first column whose values are all addresses (``10.0.0.5:8000``,
    ``[2001:db8::1]:80``, ``unix:/run/app.sock``, lists of them); ``upstream_ms``: the first
    column after the request time (and after the address, when there is one) whose values are
    all seconds or lists of seconds; ``upstream_status``: the first other column after the
    address (else after the upstream time) whose values are all statuses; ``cache_status``: a
    column of HIT/MISS/BYPASS/… words.
    """
    columns: dict[int, list[str]] = {}
    for raw in head.split("\n")[:500]:
        m = _match(raw)
        if m is None:
            continue
        plain, _ = _trailing(m["rest"] or "")
        for i, tok in enumerate(plain):
            if tok != "-" and set(_items(tok)) != {"-"}:
                columns.setdefault(i, []).append(tok)

    def every(i: int, test: Any) -> bool:
        vals = columns.get(i) or []
        return bool(vals) and sum(bool(test(v)) for v in vals) >= 0.8 * len(vals)

    roles: dict[str, int] = {}
    order = sorted(columns)
    addr = next((i for i in order if every(i, lambda v: _is_list(v, _ADDR))), None)
    if addr is not None:
        roles["upstream_addr"] = addr
    after = max(x for x in (time_pos, addr, -1) if x is not None)
    seconds = re.compile(r"\d+\.\d{3}")  # nginx writes times to the millisecond
    timing = next(
        (i for i in order if i > after and every(i, lambda v: _is_list(v, seconds))), None
    )
    if timing is not None:
        roles["upstream_ms"] = timing
    start = addr if addr is not None else timing
    if start is not None:
        status = next(
            (
                i
                for i in order
                if i > start and i != timing and every(i, lambda v: _is_list(v, _STATUS))
            ),
            None,
        )
        if status is not None:
            roles["upstream_status"] = status
    cache = next((i for i in order if every(i, lambda v: v.upper() in _CACHE_WORDS)), None)
    if cache is not None:
        roles["cache_status"] = cache
    return roles
