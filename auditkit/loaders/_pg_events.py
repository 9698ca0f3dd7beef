"""PostgreSQL server-log semantics shared by the stderr, csvlog, jsonlog and syslog loaders.

Every format ends, per block, in the same columnar :class:`Entries` (one item per log entry:
timestamp, process, user, database, severity, message, DETAIL…). :func:`build_frames` turns
them into the two canonical frames — what goes where is documented for users in
:mod:`auditkit.loaders.postgres_log`:

* ``query_events``: ``duration: X ms  statement: …``, ``duration: X ms  execute <name>: …``
  and the ``parse`` / ``bind`` steps, each its own row marked in ``phase``; ``DETAIL:
  parameters:`` bound into ``sql`` (:func:`bind_parameters`), the ``$n`` form kept in
  ``sql_template`` where parameters were bound, fingerprints from the template form;
  statements logged apart from their duration paired per process, across block boundaries
  through ``pending`` and :func:`finish_pending`;
* ``server_events``: every other entry, classified (:func:`_classify`).

The frames themselves are built in :mod:`auditkit.loaders._pg_frames`: they leave the
workers *compact* (no all-null columns) and are completed after the merge, where
Arrow-backed nulls cost nothing — shipping them from worker processes, or letting
:func:`~auditkit.schemas.conform` build them from Python lists, costs more than the parse
itself on gigabyte logs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditkit.arrow import scalar, strings
from auditkit.lazy_re import compile_later
from auditkit.loaders._pg_frames import (
    _QUERY_KEYS,
    _SERVER_KEYS,
    Taken,
    _floats,
    _rows_to_columns,
    profile_columns,
    query_frame,
    server_frame,
)
from auditkit.loaders._pg_prefix import ENGLISH_SEVERITIES, SECONDARY_SEVERITIES
from auditkit.loaders._time import naive_warning
from auditkit.loaders.base import BlockResult
from auditkit.loaders.result import ParseReport
from auditkit.profile import ProfilePartial

__all__ = [
    "MESSAGE",
    "Entries",
    "Stats",
    "attach_secondaries",
    "bind_parameters",
    "bind_samples",
    "build_frames",
    "finish_pending",
    "to_utc",
    "zoned_to_utc",
]


#: the statement part of a message: an optional duration, an optional protocol step. Both
#: parts are possessive (``?+``, Python 3.11): whatever follows them always matches, so the
#: first way they match is the final one, and telling the engine so spares it the
#: backtracking state it otherwise saves on every line (the stderr parser's one-pass regex
#: runs this on every entry; about 8 % of its time). The name stays lazy: it must be able to
#: grow until the ``:`` that ends it.
MESSAGE = compile_later(
    r"(?:duration: (?P<dur>-?+\d++(?:\.\d++)?+) ms(?: {1,2}+|$))?+"
    r"(?:(?P<kind>statement|execute|parse|bind)(?: (?P<name>\S+?))?(?:: |:$))?+"
)
#: the same, as a regex fragment for the one-pass stderr pattern (groups dur, kind, name)
MESSAGE_FRAGMENT = MESSAGE.pattern

_PARAMS = compile_later(r"\$(\d+) = (NULL|'(?:[^']|'')*'|[^,]*)")
_BIND_SPLIT = compile_later(r"('(?:[^']|'')*'|\$\d+)")

_LOCK = compile_later(
    r"process \d+ (?P<what>still waiting for|acquired|detected deadlock while waiting for) "
    r"(?P<mode>\w+) on (?P<obj>.+?) after (?P<ms>\d+(?:\.\d+)?) ms"
)
_TEMP = compile_later(r'temporary file: path "(?P<path>[^"]*)", size (?P<size>\d+)')
_CKPT = compile_later(r"(?P<what>checkpoint|restartpoint) (?P<step>starting|complete)\b")
_CKPT_TOTAL = compile_later(r"total=(?P<s>\d+(?:\.\d+)?) s")
_AUTOVAC = compile_later(
    r'automatic (?:aggressive )?(?P<op>vacuum|analyze)(?: to prevent wraparound)? of table "(?P<rel>[^"]+)"'
)
_ELAPSED = compile_later(r"elapsed:? (?P<s>\d+(?:\.\d+)?) s")
_CONN = compile_later(r"(?:replication )?connection (?P<what>received|authenticated|authorized)\b")
_DISCONN = compile_later(
    r"disconnection: session time: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d+(?:\.\d+)?)"
)
_REL_CONTEXT = compile_later(r'relation "(?P<rel>[^"]+)"')
_REL_OID = compile_later(r"relation (?P<oid>\d+)")
_QUERY_TEXT = compile_later(
    r"Query Text: (?P<q>.*?)(?:\n(?:[A-Z][a-z]+ )*[A-Z][a-z]+.*\(cost=|\Z)", re.S
)
#: a duration or statement keyword of a translated server (German, French, Spanish, …)
LOCALISED_MESSAGE = compile_later(
    r"^(?:Dauer|durée|duración|durata|duração|duur|czas trwania|doba trvání|süre|"
    r"продолжительность|тривалість|持续时间|実行時間|소요 시간|"
    r"Anweisung|instruction|sentencia|istruzione|instrução|оператор|polecenie)\s?:",
    re.IGNORECASE,
)

# time zone abbreviations PostgreSQL prints with %t / %m, in minutes east of UTC. CST and IST
# are ambiguous; the common reading is used (US Central, India) and tz= overrides.
TZ_OFFSETS: dict[str, int] = {
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60,
    "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "EET": 120, "EEST": 180,
    "MSK": 180, "MSD": 240, "IST": 330, "PKT": 300, "ICT": 420, "WIB": 420,
    "HKT": 480, "SGT": 480, "PHT": 480, "AWST": 480, "JST": 540, "KST": 540,
    "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
    "SAST": 120, "CAT": 120, "EAT": 180, "WAT": 60, "IDT": 180,
    "NST": -210, "NDT": -150, "AST": -240, "ADT": -180, "BRT": -180, "ART": -180,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
}  # fmt: skip
_NUMERIC_TZ = compile_later(r"^(?P<sign>[+-])(?P<h>\d\d):?(?P<m>\d\d)?$")


@dataclass
class Stats:
    """Per-block facts that become one warning per file in :func:`finish_pending`."""

    bad_utf8: list[int] = field(default_factory=list)
    unknown_tz: set[str] = field(default_factory=set)
    localised: int = 0
    localised_words: set[str] = field(default_factory=set)
    unprefixed: int = 0
    entries: int = 0
    #: timestamps printed without a zone (read in ``tz``, else UTC)
    naive: int = 0
    naive_tz: str | None = None


@dataclass
class Entries:
    """Log entries of one block, column by column (``''`` stands for "not logged").

    ``dur``/``kind``/``name``/``msg`` are the message split by :data:`MESSAGE` (the stderr
    parser does it in its one-pass regex; others call :meth:`split_messages`). ``ts`` holds
    UTC nanoseconds as ``datetime64[ns]`` (NaT when unknown).
    """

    line: np.ndarray
    ts: np.ndarray
    sev: Sequence[str]
    msg: Sequence[str]
    pid: Sequence[str] | None = None
    user: Sequence[str] | None = None
    db: Sequence[str] | None = None
    app: Sequence[str] | None = None
    client: Sequence[str] | None = None
    session: Sequence[str] | None = None
    query_id: Sequence[str] | None = None
    sqlstate: Sequence[str] | None = None
    dur: Sequence[str] | None = None
    kind: Sequence[str] | None = None
    name: Sequence[str] | None = None
    detail: Sequence[str] | None = None
    hint: Sequence[str] | None = None
    context: Sequence[str] | None = None
    statement: Sequence[str] | None = None
    iquery: Sequence[str] | None = None

    def __len__(self) -> int:
        """Number of entries."""
        return len(self.sev)

    def split_messages(self) -> None:
        """Fill ``dur``, ``kind``, ``name`` from ``msg`` (for formats with a message field)."""
        durs, kinds, names, bodies = [], [], [], []
        match = MESSAGE.match
        for text in self.msg:
            m = match(text)
            g = m.groups() if m else (None, None, None)
            durs.append(g[0] or "")
            kinds.append(g[1] or "")
            names.append(g[2] or "")
            bodies.append(text[m.end() :] if m else text)
        self.dur, self.kind, self.name, self.msg = durs, kinds, names, bodies

    def take(self, idx: Sequence[int]) -> Entries:
        """The entries at positions ``idx``, in that order.

        Fields the classification reads are copied; the others (user, database…) are
        selected lazily (:class:`Taken`) and taken by Arrow when the frame is built.
        """
        sel = np.asarray(idx, dtype=np.int64)
        out = Entries(self.line[sel], self.ts[sel], [], [])
        for name in _TEXT_FIELDS:
            col = getattr(self, name)
            if col is None:
                setattr(out, name, None)
            elif name in _PASSTHROUGH:
                setattr(out, name, Taken.of(col, sel))
            else:
                setattr(out, name, pick(col, idx))
        return out


def pick(values: Sequence[Any], idx: Sequence[int]) -> Sequence[Any]:
    """``[values[i] for i in idx]``, at C speed (``operator.itemgetter``)."""
    if len(idx) > 1:
        return itemgetter(*idx)(values)  # type: ignore[no-any-return]
    return [values[i] for i in idx]


#: fields only carried to the frames, never read row by row (except for server events)
_PASSTHROUGH = frozenset({"user", "db", "app", "client", "session", "query_id", "sqlstate"})
_TEXT_FIELDS = (
    "sev", "msg", "pid", "user", "db", "app", "client", "session", "query_id", "sqlstate",
    "dur", "kind", "name", "detail", "hint", "context", "statement", "iquery",
)  # fmt: skip


# -- timestamps --------------------------------------------------------------------------------


def tz_offset_minutes(text: str) -> int | None:
    """Minutes east of UTC for a time zone abbreviation or numeric offset (None if unknown)."""
    if not text:
        return None
    off = TZ_OFFSETS.get(text.upper())
    if off is not None:
        return off
    m = _NUMERIC_TZ.match(text)
    if m:
        minutes = int(m.group("h")) * 60 + int(m.group("m") or 0)
        return minutes if m.group("sign") == "+" else -minutes
    return None


def to_utc(
    ts: Sequence[str] | pa.Array,
    tz: Sequence[str] | pa.Array | None,
    default_tz: str | None,
    stats: Stats | None = None,
) -> np.ndarray:
    """UTC ``datetime64[ns]`` from server timestamps and their zone texts, vectorised.

    ``ts`` is ``YYYY-MM-DD HH:MM:SS[.fff]``; ``tz`` the abbreviation or offset printed after it
    (``CET``, ``+03``). Unknown or missing zones use ``default_tz`` (an IANA name) or, failing
    that, UTC — unknown abbreviations are recorded in ``stats`` for a warning. Both may be
    Python sequences or Arrow string arrays (the native reader's columns).
    """
    if len(ts) == 0:
        return np.empty(0, dtype="datetime64[ns]")
    arr = ts if isinstance(ts, pa.Array) else strings(ts)
    arr = pc.if_else(pc.equal(arr, scalar("", arr.type)), scalar(None, arr.type), arr)
    if tz is None:
        return zoned_to_utc(arr, None, None, default_tz, stats)
    zones = tz if isinstance(tz, pa.Array) else strings(tz)
    enc = pc.fill_null(zones, scalar("", zones.type)).dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    return zoned_to_utc(arr, enc.dictionary.to_pylist(), codes, default_tz, stats)


def zoned_to_utc(
    ts: pa.Array,
    zones: Sequence[str] | None,
    codes: np.ndarray | None,
    default_tz: str | None,
    stats: Stats | None = None,
) -> np.ndarray:
    """:func:`to_utc` of timestamp texts ``ts`` (no empty ones; nulls are NaT) whose zone
    texts are ``zones[codes[i]]`` ('' for none; ``zones`` None: no zone written at all) — the
    form the native reader has them in, a zone per distinct prefix text."""
    n = len(ts)
    try:
        naive = pc.cast(ts, pa.timestamp("ns")).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        naive = pd.to_datetime(
            pd.Series(ts.to_pylist(), dtype=object), errors="coerce", format="mixed"
        ).to_numpy(dtype="datetime64[ns]")
    naive = naive.astype("datetime64[ns]", copy=False)
    unresolved = np.ones(n, dtype=bool)
    if zones is not None and codes is not None:
        offsets = np.array(
            [np.nan if (o := tz_offset_minutes(t)) is None else o for t in zones],
            dtype=np.float64,
        )
        per_row = offsets[codes]
        known = ~np.isnan(per_row)
        if known.any():
            naive = naive.copy()
            shift = (per_row[known] * 60e9).astype(np.int64).astype("timedelta64[ns]")
            naive[known] = naive[known] - shift
        unresolved = ~known
        if stats is not None:
            used = np.zeros(len(zones), dtype=bool)
            used[codes] = True
            stats.unknown_tz.update(
                t
                for t, o, u in zip(zones, offsets, used.tolist(), strict=True)
                if t and u and np.isnan(o)
            )
    if stats is not None:
        zoneless = unresolved & ~np.isnat(naive)
        if zones is not None and codes is not None:
            # a zone text that was printed but unknown is warned about apart
            empty = np.array([not t for t in zones], dtype=bool)
            zoneless &= empty[codes]
        if zoneless.any():
            stats.naive += int(zoneless.sum())
            stats.naive_tz = default_tz
    if default_tz and unresolved.any():
        local = pd.DatetimeIndex(naive[unresolved]).tz_localize(
            default_tz, ambiguous="NaT", nonexistent="shift_forward"
        )
        naive = naive.copy()
        naive[unresolved] = (
            local.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        )
    return naive


# -- secondary lines ----------------------------------------------------------------------------


def attach_secondaries(e: Entries, report: ParseReport) -> Entries:
    """Fold DETAIL / HINT / CONTEXT / STATEMENT / QUERY entries into the entry they follow.

    The server writes them right after their primary line, with the same process id; a
    secondary line with no primary before it in the block is skipped (reported). Attached
    lines are counted as parsed here; primaries are counted by :func:`build_frames`.
    """
    sev = e.sev
    n = len(sev)
    pid = e.pid
    secondary = SECONDARY_SEVERITIES
    is_sec = np.fromiter(map(secondary.__contains__, sev), dtype=bool, count=n)
    sec = np.flatnonzero(is_sec).astype(np.int64, copy=False)
    keep = np.flatnonzero(~is_sec)
    # the owner of a secondary is the last primary before it (-1: none in this block); found
    # for all at once, so the loop below only gathers texts
    owner = np.maximum.accumulate(np.where(is_sec, -1, np.arange(n)))[sec]
    bad: np.ndarray = owner < 0
    if pid is not None and len(sec):
        pids = np.asarray(pid, dtype=object)
        bad |= pids[sec] != pids[np.maximum(owner, 0)]
    if bad.any():
        # a secondary follows the one before it: once one of a run is not attached, neither
        # are the rest of that run (runs are told apart by their owner)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        run_start = starts[np.searchsorted(starts, np.arange(len(sec)), side="right") - 1]
        seen = np.cumsum(bad)
        bad = np.asarray(seen - (seen - bad)[run_start] > 0)
        for i in sec[bad].tolist():
            report.skip(
                int(e.line[i]), f"{sev[i]} line without the entry it belongs to", _full(e, i)
            )
    good = ~bad
    attached, owners = sec[good], owner[good]
    out = e.take(keep.tolist())
    if len(attached):
        pos = (np.cumsum(~is_sec) - 1)[owners]  # where each owner lands among the kept entries
        cols = {
            name: [""] * len(keep) for name in ("detail", "hint", "context", "statement", "iquery")
        }
        one_each = bool((np.diff(owners) > 0).all())
        att = attached.tolist()
        if one_each and _plain_details(e, att):
            # the common case (a DETAIL with the parameters after each statement): the texts
            # are the messages as they are, placed by NumPy rather than a Python loop
            detail = np.full(len(keep), "", dtype=object)
            detail[pos] = pick(e.msg, att) if len(att) > 1 else [e.msg[att[0]]]
            cols["detail"] = detail.tolist()
        elif one_each:
            # one secondary per entry, of any kind: no joining
            for i, k in zip(attached.tolist(), pos.tolist(), strict=True):
                name = sev[i]
                target = _SECONDARY_TARGET.get(name, "context")
                text = _full(e, i)
                cols[target][k] = (
                    f"{name}: {text}" if target == "context" and name != "CONTEXT" else text
                )
        else:
            _gather(e, attached.tolist(), pos.tolist(), cols)
        for name, values in cols.items():
            setattr(out, name, values)
    report.ok(int(good.sum()))
    return out


def _plain_details(e: Entries, idx: list[int]) -> bool:
    """Whether the entries at ``idx`` are all DETAIL lines whose text is their whole message
    (no duration or statement keyword split off by the parser, see :func:`_full`)."""
    if set(pick(e.sev, idx)) != {"DETAIL"}:
        return False
    return not any(pick(e.dur, idx) if e.dur else ()) and not any(
        pick(e.kind, idx) if e.kind else ()
    )


def _gather(e: Entries, attached: list[int], pos: list[int], cols: dict[str, list[str]]) -> None:
    """Write secondaries into ``cols`` at their owners' positions ``pos``, the general way.

    Per owner, texts of one severity are joined in order, severities in order of first
    appearance; LOCATION, BACKTRACE go to context with their name in front.
    """
    details: dict[int, dict[str, list[str]]] = {}
    for i, k in zip(attached, pos, strict=True):
        details.setdefault(k, {}).setdefault(e.sev[i], []).append(_full(e, i))
    for k, parts in details.items():
        for sev_name, texts in parts.items():
            target = _SECONDARY_TARGET.get(sev_name, "context")
            text = "\n".join(texts)
            if target == "context" and sev_name != "CONTEXT":
                text = f"{sev_name}: {text}"
            cols[target][k] = f"{cols[target][k]}\n{text}" if cols[target][k] else text


def _full(e: Entries, i: int) -> str:
    """The whole message of entry ``i`` (its statement keyword split off by the parser)."""
    head = ""
    if e.dur and e.dur[i]:
        head += f"duration: {e.dur[i]} ms  "
    if e.kind and e.kind[i]:
        head += f"{e.kind[i]}{' ' + e.name[i] if e.name and e.name[i] else ''}: "
    return head + e.msg[i]


_SECONDARY_TARGET = {
    "DETAIL": "detail",
    "HINT": "hint",
    "CONTEXT": "context",
    "STATEMENT": "statement",
    "QUERY": "iquery",
    "LOCATION": "context",
    "BACKTRACE": "context",
}


# -- parameters ---------------------------------------------------------------------------------


def parse_parameters(text: str) -> dict[str, str]:
    """``$1 = 'a', $2 = NULL`` → ``{'1': "'a'", '2': 'NULL'}``."""
    return dict(_PARAMS.findall(text))


@lru_cache(maxsize=4096)
def _template_parts(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A statement split around its ``$n`` placeholders and quoted strings (cached: the same
    prepared statement is bound again and again)."""
    parts = _BIND_SPLIT.split(template)
    return tuple(parts[0::2]), tuple(parts[1::2])


def bind_parameters(template: str, params: str) -> str:
    """The statement with each ``$n`` replaced by its logged value (quoted strings untouched)."""
    values = parse_parameters(params)
    if not values:
        return template
    texts, tokens = _template_parts(template)
    out = [texts[0]]
    for token, text in zip(tokens, texts[1:], strict=True):
        out.append(values.get(token[1:], token) if token[0] == "$" else token)
        out.append(text)
    return "".join(out)


# -- classification -----------------------------------------------------------------------------


def _col(values: Sequence[str] | None, idx: Sequence[int] | None) -> Sequence[str] | None:
    """The column at positions ``idx`` (all of it when ``idx`` is None)."""
    if values is None:
        return None
    if idx is None:
        return values
    return pick(values, idx)


def block_result(
    e: Entries,
    source: str,
    fmt: str,
    report: ParseReport,
    stats: Stats,
    *,
    digest: bool = False,
) -> BlockResult:
    """What a block of entries gives: its query- and server-events frames, the parse report
    and what must wait for later blocks (the ``stats`` among it).

    In a digest (``digest``) no frame is built: the statements' profile is made from their
    lean columns (:func:`~auditkit.loaders._pg_frames.profile_columns`), the profile the
    frame would give, and the server events are counted — a digest shows nothing else.
    """
    if not digest:
        frames, pending = build_frames(e, source, fmt, report, stats)
        return BlockResult(frames, report, [*pending, ("stats", stats)])
    qcols, srows, pending = _events(e, report, stats, lean=True)
    cols = profile_columns(qcols, source)
    return BlockResult(
        {},
        report,
        [*pending, ("stats", stats)],
        profile=ProfilePartial.from_columns(cols, bind_samples),
        counts={"server_events": len(srows)},
    )


def build_frames(
    e: Entries,
    source: str,
    fmt: str,
    report: ParseReport,
    stats: Stats,
) -> tuple[dict[str, pd.DataFrame], list[Any]]:
    """Query and server events of one block of entries, and what must wait for later blocks.

    Every entry is counted in ``report``: parsed (it made or completed an event) or skipped
    (non-English message). Returns the frames and the ``pending`` records for
    :func:`finish_pending`.
    """
    qcols, srows, pending = _events(e, report, stats)
    frames = {
        "query_events": query_frame(qcols, source, fmt),
        "server_events": server_frame(_server_columns(e, srows, stats), source, fmt),
    }
    return frames, pending


def _events(
    e: Entries, report: ParseReport, stats: Stats, *, lean: bool = False
) -> tuple[dict[str, Any], list[int], list[Any]]:
    """The query-event columns of a block of entries, its server events' entry positions
    and its ``pending`` records (see :func:`build_frames`). ``lean`` (a digest): query
    events as :func:`_query_columns` makes them for a profile."""
    n = len(e)
    if e.kind is None or e.dur is None or e.name is None:
        e.split_messages()
    assert e.kind is not None and e.dur is not None and e.name is not None
    sev, kind, dur, msg = e.sev, e.kind, e.dur, e.msg

    # non-English severities cannot be interpreted
    skip: set[int] = set()
    sevset = set(sev)
    foreign = sevset - ENGLISH_SEVERITIES
    if foreign:
        for i in range(n):
            if sev[i] in foreign:
                skip.add(i)
                stats.localised_words.add(sev[i])
        stats.localised += len(skip)

    all_queries = "" not in set(kind) and not skip
    qidx: list[int] | None
    sidx: list[int] = []
    bare: list[int] = []
    if all_queries:
        qidx = None
        untimed_any = "" in dur
    else:
        is_query = np.fromiter(map(bool, kind), dtype=bool, count=n)
        if skip:
            is_query[list(skip)] = False
        rest = np.flatnonzero(~is_query).tolist()
        if skip:
            rest = [i for i in rest if i not in skip]
        bare = [i for i in rest if dur[i] and not msg[i].strip()]
        sidx = [i for i in rest if not dur[i] or msg[i].strip()]
        timed = np.fromiter(map(bool, dur), dtype=bool, count=n)
        untimed_any = bool(bare) or bool((is_query & ~timed).any())
        qidx = np.flatnonzero(is_query).tolist()
    pending: list[Any] = []
    # translated duration / statement messages under an English severity ("LOG:  Dauer: …")
    if sidx:
        localised = [i for i in sidx if LOCALISED_MESSAGE.match(msg[i])]
        if localised:
            for i in localised:
                skip.add(i)
                stats.localised_words.add(msg[i].split(":", 1)[0].strip())
            stats.localised += len(localised)
            sidx = [i for i in sidx if i not in skip]
    for i in sorted(skip):
        report.skip(
            int(e.line[i]),
            "non-English server message (lc_messages is not English)",
            f"{sev[i]}: {msg[i]}",
        )

    # pairing of statements logged apart from their duration (log_statement + log_duration).
    # Per process, a statement without duration waits for the next "duration: X ms" line;
    # the first statement-related entry of each process in this block, and the statements
    # still waiting at its end, go to ``pending`` so that finish_pending can pair across
    # block boundaries.
    dur_values: list[str] | Sequence[str] = dur
    ts = e.ts
    dropped: set[int] = set()
    withheld: list[int] = []
    orphan_server: list[int] = []
    firsts: dict[str, tuple[Any, ...]] = {}
    pid = e.pid or [""] * n
    if untimed_any:
        if qidx is None:
            qidx = list(range(n))
        dur_values = list(dur)
        ts = ts.copy()
        order = sorted([*qidx, *bare])
        is_bare = set(bare)
        open_: dict[str, int] = {}
        for i in order:
            p = pid[i]
            first = p not in firsts
            if i in is_bare:
                j = open_.pop(p, None)
                if j is not None:
                    dur_values[j] = dur[i]
                    ts[j] = e.ts[i]
                    firsts.setdefault(p, ("untimed",))
                elif first:
                    firsts[p] = ("bare", float(dur[i]), e.ts[i], _server_row(e, i, stats))
                    dropped.add(i)
                else:
                    orphan_server.append(i)
                continue
            j = open_.pop(p, None)
            if dur[i]:
                if first:
                    firsts[p] = ("timed", msg[i].strip())
                if j is not None and _same_statement(e, j, i):
                    dropped.add(j)  # log_statement line repeated by log_min_duration_statement
            else:
                firsts.setdefault(p, ("untimed",))
                open_[p] = i
        withheld = sorted(open_.values())
    else:
        # every statement is timed: the first of each process is all finish_pending needs
        sel = range(n) if qidx is None else qidx
        pids = pid if qidx is None else pick(pid, qidx)
        for p, i in dict(zip(reversed(pids), reversed(sel), strict=True)).items():
            firsts[p] = ("timed", msg[i].strip())
    report.ok(n - len(skip))

    # query events
    qsel: list[int] | None = None
    if qidx is not None:
        exclude = dropped | set(withheld)
        qsel = [i for i in qidx if i not in exclude] if exclude else qidx
    if lean and ("parse" in kind or "bind" in kind):
        # a profile counts executions only (PROFILE_PHASES): the parse and bind steps of the
        # extended protocol — two thirds of the rows of such a log — are not built, only
        # counted, so the digest reports as many query events as a load finds
        run = ~np.fromiter(map(_STEPS.__contains__, kind), dtype=bool, count=n)
        every = np.arange(n) if qsel is None else np.asarray(qsel, dtype=np.int64)
        kept = every[run[every]]
        report.events["query_events"] += len(every) - len(kept)
        qsel = kept.tolist()
    qcols = _query_columns(e, qsel, dur_values, ts, lean=lean)
    opens: list[tuple[str, dict[str, Any]]] = []
    if withheld:
        wcols = _query_columns(e, withheld, dur_values, ts, lean=lean)
        for k, j in enumerate(withheld):
            opens.append((pid[j], {key: _item(wcols[key], k) for key in _QUERY_KEYS}))
    pending.append(("block", firsts, opens))
    return qcols, sorted([*sidx, *orphan_server]), pending


#: the extended protocol's steps before execution (not in PROFILE_PHASES)
_STEPS = frozenset({"parse", "bind"})


def _item(col: Any, k: int) -> Any:
    """Element ``k`` of a column as a plain Python value (for pending rows)."""
    if col is None:
        return None
    value = col[k]
    if isinstance(value, np.generic):
        return value.item() if not isinstance(value, np.datetime64) else value
    return value


def _same_statement(e: Entries, j: int, i: int) -> bool:
    """Whether entries ``j`` and ``i`` log the same statement text."""
    return e.msg[j].strip() == e.msg[i].strip()


def _query_columns(
    e: Entries, idx: list[int] | None, dur: Sequence[str], ts: np.ndarray, *, lean: bool = False
) -> dict[str, Any]:
    """Columns of the query events at entry positions ``idx`` (None: every entry).

    ``sql`` has the DETAIL parameters bound in; ``sql_template`` keeps the ``$n`` form, and
    is set only where parameters were bound (elsewhere ``sql`` is the template).

    ``lean`` (a digest, whose frames only feed a query profile): ``sql`` stays the ``$n``
    template and ``params`` holds the parameters, so that only the one sample a profile keeps
    per statement group is bound (:func:`bind_samples`) — binding every execution was a fifth
    of a digest's time on logs of the extended protocol; and the columns a profile never
    reads (application, client, pid, session, statement name) are left out. The
    fingerprints are the same either way: they are computed from the template form.
    """
    assert e.kind is not None
    body = _col(e.msg, idx)
    assert body is not None
    detail = _col(e.detail, idx)
    sql: Any = body
    template: Any = None
    params: list[str] | None = None
    if detail is not None and any(detail):
        params = [d[12:] if d.startswith("parameters: ") else "" for d in detail]
        if any(params) and not lean:
            sql = _bind_all(body, params)
            template = [b if p else "" for b, p in zip(body, params, strict=True)]
    sel = None if idx is None else np.asarray(idx, dtype=np.int64)

    def lazy(values: Sequence[str] | None) -> Any:
        """The column selected lazily at ``sel`` (as is when every entry is a query)."""
        if values is None or sel is None:
            return values
        return Taken.of(values, sel)

    if lean:
        return {
            "ts": ts if sel is None else ts[sel],
            "duration_ms": _floats(lazy(dur), len(body)),
            "sql": sql,
            "sql_template": None,
            "params": params if params is not None and any(params) else None,
            "database": lazy(e.db),
            "user": lazy(e.user),
            "application": None,
            "client": None,
            "pid": None,
            "session_id": None,
            "query_id": lazy(e.query_id),
            "phase": lazy(e.kind),
            "statement_name": None,
            "source_line": e.line if sel is None else e.line[sel],  # orders pending rows
        }
    return {
        "ts": ts if sel is None else ts[sel],
        "duration_ms": _floats(lazy(dur), len(body)),
        "sql": sql,
        "sql_template": template,
        "params": params,
        "database": lazy(e.db),
        "user": lazy(e.user),
        "application": lazy(e.app),
        "client": lazy(e.client),
        "pid": lazy(e.pid),
        "session_id": lazy(e.session),
        "query_id": lazy(e.query_id),
        "phase": lazy(e.kind),
        "statement_name": lazy(e.name),
        "source_line": e.line if sel is None else e.line[sel],
    }


def _bind_all(body: Sequence[str], params: Sequence[str]) -> list[str]:
    """Every statement with its parameters bound, each distinct pair bound once.

    The extended protocol logs ``bind`` and then ``execute`` with the same statement and the
    same parameters, so about half the pairs of such a log repeat the one before.
    """
    bound: dict[tuple[str, str], str] = {}
    out = []
    for b, p in zip(body, params, strict=True):
        if not p:
            out.append(b)
            continue
        text = bound.get((b, p))
        if text is None:
            text = bound[(b, p)] = bind_parameters(b, p)
        out.append(text)
    return out


def bind_samples(sql: Sequence[str], params: Sequence[str]) -> list[str]:
    """Statements of a digest frame (the ``$n`` form) with their ``params`` bound, as
    :func:`_query_columns` binds them for a load: right-trimmed by the same Arrow kernel, so a
    digest's sample is exactly the ``sql`` a load would show for that execution."""
    bound = [bind_parameters(s, p) if p else s for s, p in zip(sql, params, strict=True)]
    return pc.utf8_rtrim_whitespace(strings(bound)).to_pylist()  # type: ignore[no-any-return]


def _server_row(e: Entries, i: int, stats: Stats) -> dict[str, Any]:
    """Entry ``i`` as one server-event row dict (kept pending until finish)."""
    cols = _server_columns(e, [i], stats)
    return {k: _item(cols[k], 0) for k in _SERVER_KEYS}


def _server_columns(e: Entries, idx: list[int], stats: Stats) -> dict[str, Any]:
    """Columns of the server events at entry positions ``idx``, classified by message."""
    out: dict[str, list[Any]] = {k: [] for k in _SERVER_KEYS if k not in ("ts", "source_line")}
    pid = e.pid
    for i in idx:
        sev = e.sev[i]
        message = _full(e, i).rstrip()
        detail = _join_detail(e, i)
        context = (e.context[i] if e.context else "") or ""
        statement = (e.statement[i] if e.statement else "") or ""
        kind, event, duration, size, relation = _classify(
            sev, message, context, e.sqlstate[i] if e.sqlstate else ""
        )
        if event == "auto_explain" and not statement:
            m = _QUERY_TEXT.search(message)
            statement = m.group("q").strip() if m else ""
        out["kind"].append(kind)
        out["event"].append(event)
        out["severity"].append(sev)
        out["sqlstate"].append(e.sqlstate[i] if e.sqlstate else "")
        out["message"].append(message)
        out["detail"].append(detail)
        out["statement"].append(statement)
        out["database"].append(e.db[i] if e.db else "")
        out["user"].append(e.user[i] if e.user else "")
        out["pid"].append(pid[i] if pid else "")
        out["duration_ms"].append(duration)
        out["size_bytes"].append(size)
        out["relation"].append(relation)
        out["application"].append(e.app[i] if e.app else "")
        out["client"].append(e.client[i] if e.client else "")
        out["session_id"].append(e.session[i] if e.session else "")
    cols: dict[str, Any] = dict(out)
    sel = np.asarray(idx, dtype=np.int64)
    cols["ts"] = e.ts[sel]
    cols["source_line"] = e.line[sel]
    cols["duration_ms"] = np.array(
        [np.nan if d is None else d for d in out["duration_ms"]], dtype=np.float64
    )
    cols["size_bytes"] = [None if s is None else s for s in out["size_bytes"]]
    return cols


def _join_detail(e: Entries, i: int) -> str:
    """DETAIL, HINT, CONTEXT and QUERY of entry ``i`` as one text, labelled."""
    parts = []
    if e.detail and e.detail[i]:
        parts.append(e.detail[i])
    if e.hint and e.hint[i]:
        parts.append(f"HINT: {e.hint[i]}")
    if e.context and e.context[i]:
        parts.append(f"CONTEXT: {e.context[i]}")
    if e.iquery and e.iquery[i]:
        parts.append(f"QUERY: {e.iquery[i]}")
    return "\n".join(parts)


def _classify(
    sev: str, message: str, context: str, sqlstate: str
) -> tuple[str, str, float | None, int | None, str]:
    """(kind, event, duration_ms, size_bytes, relation) of a server message."""
    if message.startswith("duration: "):
        m = MESSAGE.match(message)
        ms = float(m.group("dur")) if m and m.group("dur") else None
        rest = message[m.end() :] if m else message
        if rest.startswith("plan:"):
            return "other", "auto_explain", ms, None, ""
        return "other", "duration_without_statement", ms, None, ""
    m = _LOCK.match(message)
    if m:
        rel = _relation(m.group("obj"), context)
        what = m.group("what")
        if what.startswith("detected deadlock"):
            return "deadlock", "deadlock_waiting", float(m.group("ms")), None, rel
        event = "lock_waiting" if what.startswith("still") else "lock_acquired"
        return "lock_wait", event, float(m.group("ms")), None, rel
    if sqlstate == "40P01" or message.startswith("deadlock detected"):
        return "deadlock", "deadlock", None, None, _relation("", context)
    if sev in ("ERROR", "FATAL", "PANIC"):
        return "error", sev.lower(), None, None, ""
    m = _TEMP.match(message)
    if m:
        return "temp_file", "temp_file", None, int(m.group("size")), ""
    m = _CKPT.match(message)
    if m:
        duration = None
        if m.group("step") == "complete":
            t = _CKPT_TOTAL.search(message)
            duration = float(t.group("s")) * 1000.0 if t else None
        return "checkpoint", f"{m.group('what')}_{m.group('step')}", duration, None, ""
    m = _AUTOVAC.match(message)
    if m:
        t = _ELAPSED.search(message)
        duration = float(t.group("s")) * 1000.0 if t else None
        op = m.group("op")
        return (
            ("autovacuum" if op == "vacuum" else "autoanalyze"),
            f"auto{op}",
            duration,
            None,
            m.group("rel"),
        )
    m = _CONN.match(message)
    if m:
        return "connection", f"connection_{m.group('what')}", None, None, ""
    m = _DISCONN.match(message)
    if m:
        seconds = int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
        return "disconnection", "disconnection", seconds * 1000.0, None, ""
    return "other", sev.lower(), None, None, ""


def _relation(obj: str, context: str) -> str:
    """The relation of a lock event: the name from CONTEXT, else the OID in the message."""
    m = _REL_CONTEXT.search(context)
    if m:
        return m.group("rel")
    m = _REL_OID.match(obj)
    return m.group("oid") if m else ""


# -- finishing ----------------------------------------------------------------------------------


def finish_pending(
    pending: list[Any], source: str, fmt: str, report: ParseReport
) -> dict[str, pd.DataFrame]:
    """Pair statements and durations that met across block boundaries; emit the rest.

    ``pending`` holds, per block and in file order, ``("block", firsts, opens)`` — the first
    statement-related entry of each process in the block (``("bare", ms, ts, server_row)``
    for a duration line with nothing before it, ``("timed", text)``, ``("untimed",)``) and
    the statements still waiting for a duration at its end — and ``("stats", Stats)`` for
    warnings. A waiting statement takes the duration of its process's next block when that
    block starts with a bare duration; it is dropped when the next block starts with the
    same statement timed (log_statement and log_min_duration_statement both on); otherwise
    it keeps no duration.
    """
    queries: list[dict[str, Any]] = []
    servers: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    total = Stats()
    for item in pending:
        if item[0] == "stats":
            s: Stats = item[1]
            total.bad_utf8.extend(s.bad_utf8)
            total.unknown_tz |= s.unknown_tz
            total.localised += s.localised
            total.localised_words |= s.localised_words
            total.unprefixed += s.unprefixed
            total.entries += s.entries
            total.naive += s.naive
            total.naive_tz = total.naive_tz or s.naive_tz
            continue
        _, firsts, opens = item
        for pid, first in firsts.items():
            row = open_.pop(pid, None)
            if first[0] == "bare":
                if row is None:
                    servers.append(first[3])
                else:
                    row["duration_ms"], row["ts"] = first[1], first[2]
                    queries.append(row)
            elif row is not None and not (
                first[0] == "timed" and first[1] == str(row["sql_template"] or row["sql"]).strip()
            ):
                queries.append(row)
        for pid, row in opens:
            previous = open_.pop(pid, None)
            if previous is not None:
                queries.append(previous)
            open_[pid] = row
    queries.extend(open_.values())
    _warn(total, report)
    frames: dict[str, pd.DataFrame] = {}
    if queries:
        queries.sort(key=lambda r: r["source_line"])
        frames["query_events"] = query_frame(_rows_to_columns(queries, _QUERY_KEYS), source, fmt)
    if servers:
        frames["server_events"] = server_frame(_rows_to_columns(servers, _SERVER_KEYS), source, fmt)
    return frames


def _warn(s: Stats, report: ParseReport) -> None:
    """The file-wide warnings gathered from every block."""
    if s.localised:
        words = ", ".join(sorted(s.localised_words)[:6])
        report.warn(
            f"non-English server messages: {s.localised} entries ({words}) were skipped — "
            "the server runs with a translated lc_messages; set lc_messages = 'C' (or 'en_US') "
            "so durations and errors can be read"
        )
    if s.bad_utf8:
        lines = ", ".join(str(x) for x in s.bad_utf8[:10])
        more = f" and {len(s.bad_utf8) - 10} more" if len(s.bad_utf8) > 10 else ""
        report.warn(
            f"invalid UTF-8 on {len(s.bad_utf8)} lines (lines {lines}{more}): bytes replaced by "
            "U+FFFD; the file may be in another encoding (server_encoding / client_encoding)"
        )
    if s.unknown_tz:
        report.warn(
            f"unknown time zone abbreviation(s) {', '.join(sorted(s.unknown_tz))} taken as UTC; "
            "pass tz='Area/City' (the server's log_timezone)"
        )
    if s.naive:
        report.warn(naive_warning(s.naive_tz))
    if s.unprefixed and s.entries and s.unprefixed * 2 > s.entries:
        report.warn(
            f"{s.unprefixed} of {s.unprefixed + s.entries} lines do not match the log_line_prefix; "
            "is the prefix right? pass prefix= with the server's log_line_prefix"
        )
