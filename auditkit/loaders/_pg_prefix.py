"""PostgreSQL ``log_line_prefix``: from the setting to a regular expression, and back from a log.

PostgreSQL writes every stderr (and syslog, and Cloud SQL) log line as *prefix* + severity +
``":  "`` + message, where the prefix is the server's ``log_line_prefix`` with its ``%``
escapes expanded. To read a log we need that prefix as a regular expression whose named
groups capture the fields we keep (timestamp, pid, user, database, …).

:func:`prefix_pattern` turns a ``log_line_prefix`` into such a pattern; every escape of
PostgreSQL 9.x–18 is understood (``%t %m %n %p %P %l %u %d %a %h %r %L %c %s %v %x %e %q %Q
%i %b %%``, with optional padding such as ``%-10u``). ``%q`` makes the rest optional, as the
server omits it for background processes.

:func:`detect_prefix` finds the prefix of a log we were not told about: it tries the common
defaults (:data:`CANDIDATES`: Debian, pgBadger's recommendation, RDS, Cloud SQL, Heroku …)
and infers one from the text in front of ``LOG:`` / ``ERROR:`` when none fits — timestamps,
``[pid]``, ``user@db``, ``key=value`` pairs with well-known keys, addresses. Two pseudo-escapes
exist only for inferred prefixes: ``%#`` (a number we cannot name) and ``%*`` (a word we cannot
name). When nothing fits, :class:`PrefixDetection` says what was seen, for the error message.

Example::

    >>> import re
    >>> rx = re.compile(prefix_pattern("%m [%p] %q%u@%d "))
    >>> rx.match("2024-01-02 03:04:05.678 UTC [42] app@shop ").group("db")
    'shop'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from auditkit.lazy_re import compile_later

__all__ = [
    "CANDIDATES",
    "ENGLISH_SEVERITIES",
    "SECONDARY_SEVERITIES",
    "SEVERITY",
    "PrefixDetection",
    "detect_prefix",
    "escapes_of",
    "prefix_pattern",
]

#: severities PostgreSQL writes in English (lc_messages = C / en)
ENGLISH_SEVERITIES = frozenset(
    {
        "LOG", "ERROR", "WARNING", "FATAL", "PANIC", "NOTICE", "INFO", "DEBUG",
        "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5",
        "DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION", "BACKTRACE",
    }
)  # fmt: skip
#: severities that continue the report of the line before them (same process)
SECONDARY_SEVERITIES = frozenset(
    {"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION", "BACKTRACE"}
)
#: a severity word: upper-case Latin (accents included), Cyrillic, or CJK — so localised
#: servers (ERREUR, FEHLER, ОШИБКА, 错误) are recognised as such and reported, not misread
SEVERITY = r"[A-ZÀ-ÖØ-ÞА-ЯЁ][A-ZÀ-ÖØ-ÞА-ЯЁ]+[1-5]?|[\u3040-\u30ff\u4e00-\u9fff]+"

#: common log_line_prefix settings, tried in this order before inferring one
CANDIDATES: tuple[str, ...] = (
    "%m [%p] %q%u@%d ",  # Debian / Ubuntu default
    "%m [%p] ",  # PostgreSQL 13+ default
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",  # pgBadger's recommendation
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p]: [%l-1] ",
    "%t [%p]: ",
    "%t:%r:%u@%d:[%p]:",  # Amazon RDS / Aurora default
    "%m:%r:%u@%d:[%p]:",
    "%t [%p-%l] %q%u@%d ",  # Red Hat style
    "%m [%p-%l] %q%u@%d ",
    "[%p]: [%l-1] db=%d,user=%u ",  # Google Cloud SQL
    " sql_error_code = %e ",  # Heroku Postgres
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    "%m %u@%d [%p] ",
    "%t ",
    "%m ",
    "",
)

#: PostgreSQL prints ``YYYY-MM-DD HH:MM:SS``; log shippers re-stamp lines with slashes
#: (``YYYY/MM/DD``, ``DD/MM/YYYY``): those are timestamps too, never a pid and two numbers
_TS = r"(?:\d{4}[-/]\d\d[-/]\d\d|\d\d/\d\d/\d{4})[ T]\d\d:\d\d:\d\d"
_TZ_TEXT = r"[A-Za-z][A-Za-z0-9_/+-]*|[+-]\d\d(?::?\d\d)?"

# escape letter -> (group name or "", fragment with {g} where the group name goes)
_ESCAPES: dict[str, tuple[str, str]] = {
    "t": ("ts", rf"(?P<ts>{_TS})(?: (?P<tz>{_TZ_TEXT}))?"),
    "m": ("ts", rf"(?P<ts>{_TS}\.\d+)(?: (?P<tz>{_TZ_TEXT}))?"),
    "n": ("epoch", r"(?P<epoch>\d+(?:\.\d+)?)"),
    "p": ("pid", r"(?P<pid>\d+)"),
    "P": ("leader", r"(?P<leader>\d*)"),
    "l": ("line", r"(?P<line>\d+)"),
    "u": ("user", r"(?P<user>[^\s,=]*?)"),
    "d": ("db", r"(?P<db>[^\s,=]*?)"),
    "a": ("app", r"(?P<app>[^\n]*?)"),
    "h": ("client", r"(?P<client>[^\s,=]*?)"),
    "r": ("client", r"(?P<client>[^\s(,=]*?)(?:\((?P<port>\d+)\))?"),
    "L": ("local", r"(?P<local>\S*?)"),
    "c": ("session", r"(?P<session>[0-9a-f]+\.[0-9a-f]+)"),
    "s": ("sstart", rf"(?P<sstart>{_TS})(?: (?:{_TZ_TEXT}))?"),
    "v": ("vxid", r"(?P<vxid>\S*?)"),
    "x": ("xid", r"(?P<xid>\d*)"),
    "e": ("sqlstate", r"(?P<sqlstate>[0-9A-Z]{5})"),
    "Q": ("query_id", r"(?P<query_id>-?\d+)"),
    "i": ("tag", r"(?P<tag>[^\n]*?)"),
    "b": ("btype", r"(?P<btype>[^\n]*?)"),
    # pseudo-escapes of inferred prefixes: a number / a word we cannot name
    "#": ("", r"\d+"),
    "*": ("", r"[^\s,=]*?"),
}
_ESCAPE = compile_later(r"%(-?\d+)?([A-Za-z%#*])")
_GROUP = compile_later(r"\(\?P<(\w+)>")

#: what each escape is, for messages
ESCAPE_NAMES = {
    "t": "timestamp", "m": "timestamp with milliseconds", "n": "epoch timestamp",
    "p": "process id", "P": "parallel leader pid", "l": "line number", "u": "user",
    "d": "database", "a": "application", "h": "client host", "r": "client host and port",
    "L": "local address", "c": "session id", "s": "session start", "v": "virtual xid",
    "x": "transaction id", "e": "SQLSTATE", "Q": "query id", "i": "command tag",
    "b": "backend type", "#": "unnamed number", "*": "unnamed word",
}  # fmt: skip


def escapes_of(prefix: str) -> list[str]:
    """The escape letters used by ``prefix`` in order (``%%`` and ``%q`` excluded)."""
    return [m.group(2) for m in _ESCAPE.finditer(prefix) if m.group(2) not in "%q"]


def prefix_pattern(prefix: str, capture: Iterable[str] | None = None, greedy: bool = False) -> str:
    """A regular expression (source, no anchor) matching lines written with ``prefix``.

    Named groups: ``ts``/``tz`` (``%t``, ``%m``), ``epoch`` (``%n``), ``pid``, ``line``,
    ``user``, ``db``, ``app``, ``client`` (and ``port`` from ``%r``), ``session``,
    ``query_id``, ``sqlstate``, ``tag``, ``btype``, ``xid``, ``vxid``, ``sstart``, ``leader``,
    ``local``. ``capture`` limits the named groups to those names (fewer groups, faster
    matching); an escape used twice captures once. Unknown escapes expand to nothing, as
    in PostgreSQL.

    Free-text fields (user, database, host…) are lazy by default, so a value may contain the
    character that follows it in the prefix. ``greedy=True`` makes each such field stop at
    the first occurrence of that character instead — about a third faster to match, and
    identical on every line it matches; callers retry the lines it rejects with the lazy form.
    """
    wanted = None if capture is None else set(capture)
    used: set[str] = set()
    out: list[str] = []
    optional = False
    pos = 0
    for m in _ESCAPE.finditer(prefix):
        out.append(_literal(prefix[pos : m.start()]))
        pos = m.end()
        pad, letter = m.group(1), m.group(2)
        if letter == "%":
            out.append("%")
            continue
        if letter == "q":
            if not optional:
                out.append("(?:")
                optional = True
            continue
        spec = _ESCAPES.get(letter)
        if spec is None:
            continue
        fragment = spec[1]
        nxt = prefix[m.end() : m.end() + 1]
        if greedy and letter in _FREE and nxt and nxt != "%" and not pad:
            fragment = _greedy(fragment, nxt)
        frag = _named(fragment, wanted, used)
        if pad:
            frag = f" *{frag} *"
        out.append(frag)
    out.append(_literal(prefix[pos:]))
    if optional:
        out.append(")?")
    return "".join(out)


#: escapes whose value is free text, matched lazily unless greedy
_FREE = frozenset("udahrLvib*")
_LAZY_CLASS = compile_later(r"\[\^([^\]]*)\]\*\?")


def _greedy(fragment: str, nxt: str) -> str:
    """``[^\\s,=]*?`` followed by ``nxt`` → ``[^\\s,=<nxt>]*`` (stops at the first ``nxt``)."""
    if nxt.isspace() and "[^\\n]*?" in fragment:
        return fragment  # free text with blanks (application names): stay lazy
    return _LAZY_CLASS.sub(lambda m: f"[^{m.group(1)}{re.escape(nxt)}]*", fragment, count=1)


def _literal(text: str) -> str:
    """A literal part of the prefix, escaped for the regex."""
    return re.escape(text)


def _named(fragment: str, wanted: set[str] | None, used: set[str]) -> str:
    """Keep the named groups of ``fragment`` that are wanted and not yet used."""

    def keep(m: re.Match[str]) -> str:
        """The group opener: named if wanted and first of its name, else non-capturing."""
        name = m.group(1)
        if (wanted is not None and name not in wanted) or name in used:
            return "(?:"
        used.add(name)
        return m.group(0)

    return _GROUP.sub(keep, fragment)


# -- detection --------------------------------------------------------------------------------

#: text in front of the first severity word followed by ":  " (two spaces, as the server writes)
_SEV_LINE = compile_later(rf"^(?P<pre>[^\n]{{0,400}}?)(?P<sev>{SEVERITY}): {{2}}(?=\S)")
#: fallback for logs re-written with one space ("LOG: duration …"), English severities only
_SEV_LINE_1 = compile_later(
    r"^(?P<pre>[^\n]{0,400}?)(?P<sev>LOG|ERROR|WARNING|FATAL|PANIC|DETAIL|HINT|STATEMENT|CONTEXT): (?=\S)"
)


@dataclass
class PrefixDetection:
    """What :func:`detect_prefix` found: the prefix (or None) and the evidence behind it."""

    prefix: str | None
    matched: int = 0
    total: int = 0
    inferred: bool = False
    one_space: bool = False
    seen: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Share of the severity lines the prefix fits."""
        return self.matched / self.total if self.total else 0.0

    def missing(self) -> list[str]:
        """Important escapes the prefix lacks, described (empty when it has them all)."""
        if self.prefix is None:
            return []
        letters = set(escapes_of(self.prefix))
        out = []
        if not letters & {"t", "m", "n"}:
            out.append("a timestamp (%t, %m or %n)")
        if "p" not in letters:
            out.append("the process id (%p)")
        if not letters & {"u"}:
            out.append("the user (%u)")
        if not letters & {"d"}:
            out.append("the database (%d)")
        return out

    def describe_failure(self) -> str:
        """One sentence saying what was seen when no prefix could be worked out."""
        if not self.total:
            return (
                "no line looks like a PostgreSQL log entry (a prefix followed by 'LOG:  ', "
                "'ERROR:  ', 'STATEMENT:  ' …)"
            )
        shown = ", ".join(repr(s) for s in self.seen[:3])
        recognised = sorted(
            {ESCAPE_NAMES[e] for s in self.seen[:3] for e in escapes_of(_infer_one(s))}
            - {"unnamed number", "unnamed word"}
        )
        lacks = [
            name
            for letters, name in (
                (("t", "m", "n"), "a timestamp (%t/%m/%n)"),
                (("p",), "a process id ([%p])"),
            )
            if not any(e in letters for s in self.seen[:3] for e in escapes_of(_infer_one(s)))
        ]
        text = f"{self.total} lines carry a severity but their prefixes did not fit one log_line_prefix; saw prefixes like {shown}"
        if recognised:
            text += f"; recognised {', '.join(recognised)}"
        if lacks:
            text += f"; found no {' nor '.join(lacks)}"
        return text


def severity_lines(
    lines: Iterable[str], limit: int = 2000, indented: bool = False
) -> tuple[list[tuple[str, str, str]], bool]:
    """``(line, text before severity, severity)`` of lines that look like log entries.

    Lines starting with a blank are continuation lines and ignored, unless ``indented``
    (syslog and Heroku prefixes may start with a space).
    """
    out: list[tuple[str, str, str]] = []
    seen = 0
    candidates = []
    for line in lines:
        if not line or (line[0] in "\t " and not indented):
            continue
        seen += 1
        if seen > limit:
            break
        candidates.append(line)
        m = _SEV_LINE.match(line)
        if m:
            out.append((line, m.group("pre"), m.group("sev")))
    if out:
        return out, False
    for line in candidates:
        m = _SEV_LINE_1.match(line)
        if m:
            out.append((line, m.group("pre"), m.group("sev")))
    return out, bool(out)


def detect_prefix(
    lines: Iterable[str], candidates: Sequence[str] = CANDIDATES, indented: bool = False
) -> PrefixDetection:
    """Work out the ``log_line_prefix`` of ``lines`` (the start of a log, one entry per line).

    Candidates are tried first, then a prefix is inferred from the text before the severity.
    The prefix that fits the most lines wins, more specific ones on ties; it must fit at least
    half of the lines that carry a severity.
    """
    found, one_space = severity_lines(lines, indented=indented)
    texts = [line for line, _, _ in found]
    pres = [pre for _, pre, _ in found]
    det = PrefixDetection(None, 0, len(texts), one_space=one_space)
    det.seen = [p for p, _ in Counter(pres).most_common(5)]
    if not texts:
        return det
    sep = ": {1,2}" if one_space else ":  "
    # score: lines matched, then fields actually seen, then the simplest prefix
    best: tuple[int, int, int, str] | None = None
    for cand in dict.fromkeys([*candidates, *_inferences(pres)]):
        n, fields = _count_matches(cand, texts, sep)
        score = (n, fields, -len(escapes_of(cand)), cand)
        if n and (best is None or score[:3] > best[:3]):
            best = score
    if best is None or best[0] < 0.5 * len(texts):
        return det
    det.prefix, det.matched = best[3], best[0]
    det.inferred = det.prefix not in candidates
    return det


#: what follows the prefix on a line it fits, by separator (see :func:`_count_matches`)
_AFTER_PREFIX = {sep: compile_later(f"(?:{SEVERITY}){sep}(?=\\S)") for sep in (":  ", ": {1,2}")}


def _count_matches(prefix: str, texts: Sequence[str], sep: str) -> tuple[int, int]:
    """How many of ``texts`` the prefix fits, and how many of its fields were ever filled.

    A line fits when ``prefix``, a severity and ``sep`` start it. The prefix alone is matched
    first and the rest checked where it ends: when the rest is there, the one pattern of
    both would have matched the same way (it tries the prefix's ways in the same order).
    Only a line where the rest is not there needs that pattern, which is compiled then —
    the severity's Unicode classes make it cost a millisecond, and most candidates never
    need it.
    """
    head = re.compile(prefix_pattern(prefix))
    after = _AFTER_PREFIX[sep]
    whole: re.Pattern[str] | None = None
    n = 0
    filled: set[str] = set()
    for t in texts:
        m = head.match(t)
        if m is None:
            continue  # the prefix does not start the line: neither does prefix + severity
        if after.match(t, m.end()) is None:
            if whole is None:
                whole = re.compile(f"(?:{prefix_pattern(prefix)})(?:{SEVERITY}){sep}(?=\\S)")
            m = whole.match(t)
            if m is None:
                continue
        n += 1
        filled.update(k for k, v in m.groupdict().items() if v is not None)
    return n, len(filled)


# -- inference --------------------------------------------------------------------------------

_KEYS = {
    "u": ("user", "usr", "u", "username", "role", "usename", "login"),
    "d": ("db", "database", "dbname", "d", "datname", "base"),
    "a": ("app", "appli", "application", "application_name", "appname", "a", "prog"),
    "h": ("client", "host", "remote", "remote_host", "h", "ip", "addr", "from", "clientaddr"),
    "p": ("pid", "p", "process", "proc"),
    "c": ("session", "sessid", "session_id", "sid", "c"),
    "l": ("line", "l", "line_num", "lineno"),
    "x": ("xid", "tx", "txid", "x", "xact"),
    "v": ("vxid", "vtid", "v"),
    "Q": ("queryid", "query_id", "qid", "q"),
    "e": ("sql_error_code", "sqlstate", "state", "code", "e", "err"),
    "i": ("tag", "cmd", "command_tag", "command", "i"),
    "b": ("backend", "backend_type", "b", "type"),
}
_KEY_TO_ESC = {k: esc for esc, keys in _KEYS.items() for k in keys}

_KINDS = ("ts", "epoch", "lnum", "kv", "ud", "ipport", "ip", "sess", "bnum", "num", "lit")
_TOKEN = compile_later(
    r"(?P<ts>(?:\d{4}[-/]\d\d[-/]\d\d|\d\d/\d\d/\d{4})[ T]\d\d:\d\d:\d\d)(?P<ms>\.\d+)?(?P<tz> (?:[A-Za-z]{1,6}|[+-]\d\d(?::?\d\d)?)(?![\w]))?"
    r"|(?P<epoch>\d{10}\.\d{3})"
    r"|\[(?P<lnum>\d+)-(?P<lpart>\d+)\]"
    r"|(?P<kv>(?P<k>[A-Za-z_]+)(?P<eq>=| = )(?P<v>\[[^\]\s]*\]|[^,\s\]]*))"
    r"|(?P<ud>(?:\[unknown\]|[^\s@:,\[\]])*@(?:\[unknown\]|[^\s@:,\[\]])*)"
    r"|(?P<ipport>(?:\d{1,3}\.){3}\d{1,3}\(\d+\)|[0-9a-fA-F:]*:[0-9a-fA-F:]*\(\d+\))"
    r"|(?P<ip>(?:\d{1,3}\.){3}\d{1,3}|\[local\])"
    r"|(?P<sess>[0-9a-f]{6,}\.[0-9a-f]+)"
    r"|\[(?P<bnum>\d+)\]"
    r"|(?P<num>\d+)"
    r"|(?P<lit>.)",
    re.S,
)


@lru_cache(maxsize=4096)
def _infer_one(pre: str) -> str:
    """A log_line_prefix that could have written ``pre`` (best effort; remembered, as the
    head of a file is read twice: to detect its format, then its prefix)."""
    out: list[str] = []
    have: set[str] = set()

    def esc(letter: str) -> str:
        """The escape for ``letter``, or an unnamed one if that field was already placed."""
        if letter in have and letter not in "#*":
            return "%#" if letter in "plxQ" else "%*"
        have.add(letter)
        return f"%{letter}"

    for m in _TOKEN.finditer(pre):
        kind = next(k for k in _KINDS if m.group(k) is not None)
        if kind == "ts":
            out.append(esc("m" if m.group("ms") else "t"))
            if m.group("tz") is None:
                out.append("")
            continue
        if kind == "epoch":
            out.append(esc("n"))
        elif kind == "lnum":
            out.append(f"[{esc('l')}-{m.group('lpart')}]")
        elif kind == "kv":
            key, value = m.group("k"), m.group("v")
            letter = _KEY_TO_ESC.get(key.lower())
            if letter == "h" and "(" in value:
                letter = "r"
            if letter is None:
                letter = "#" if value.isdigit() else "*"
            out.append(f"{key}{m.group('eq')}{esc(letter)}")
        elif kind == "ud":
            out.append(f"{esc('u')}@{esc('d')}")
        elif kind == "ipport":
            out.append(esc("r"))
        elif kind == "ip":
            out.append(esc("h"))
        elif kind == "sess":
            out.append(esc("c"))
        elif kind == "bnum":
            out.append(f"[{esc('p') if 'p' not in have else '%#'}]")
        elif kind == "num":
            out.append(esc("p") if "p" not in have else "%#")
        else:
            lit = m.group("lit")
            out.append("%%" if lit == "%" else lit)
    return "".join(out)


def _inferences(pres: Sequence[str]) -> list[str]:
    """Candidate prefixes inferred from the most common shapes, with %q variants."""
    shapes = Counter(_infer_one(p) for p in pres)
    out: list[str] = []
    for shape, _ in shapes.most_common(4):
        if shape not in out:
            out.append(shape)
    # a shorter shape that is a start of a longer one: background processes (%q)
    longest = max(out, key=len) if out else ""
    for shorter in list(out):
        if shorter != longest and longest.startswith(shorter) and shorter:
            q = shorter + "%q" + longest[len(shorter) :]
            if q not in out:
                out.insert(0, q)
    return out
