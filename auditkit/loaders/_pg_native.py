"""The stderr log's statements read in native code: NumPy over the block's bytes, Arrow over its fields.

The reference parser (:class:`~auditkit.loaders.postgres_log.StderrParser`) runs one Python
regular expression over a block and builds a Python string for every field of every entry;
on a statement log that is most of its time. This reader takes the same block as one byte
array and does per-line work only in vectorised NumPy and Arrow operations:

* lines are found from the newlines; the timestamp at the start of the prefix (``%m``,
  ``%t``) is checked eight bytes at a time;
* the rest of the prefix and the severity — from the timestamp to the ``:  `` after the
  severity — takes only a few distinct texts in a block (a process, a user, a database, a
  severity: ``" UTC [4242] app@shop LOG"``). Each distinct text is matched once by the
  reference's own regular expression, on a line that carries it, so the fields are the
  reference's; every line then takes its fields from its text's match;
* the message is read the same way: ``duration: `` and the number are checked per line; what
  follows up to the first ``": "`` (``" ms  execute S_1"``) is again a handful of texts,
  each matched once by the reference's message pattern;
* statements, parameters, timestamps and durations become Arrow arrays that point into the
  block, never Python objects; fingerprints are Arrow kernels, as in the reference.

It reads the lines a statement log is made of, and gives up (:class:`Unsupported`) — the
caller then parses the block with the reference parser — on anything else: continuation
lines, bytes that are not UTF-8, CR line ends, a translated server, statements logged without
their duration (``log_statement``), a secondary line after a statement other than the
DETAIL of its parameters, a prefix whose text changes on every line (``%n``, ``%x``; the
session line number ``%l`` of pgBadger's recommended prefix is read when only the
timestamp and the process id come before it), or any line the reference would read
differently. The few other entries of a block (checkpoints,
connections, errors and their DETAIL / STATEMENT lines) are handed to the reference parser
as a small block of their own, so their classification is the reference's, and put back in
place by line number.

It is used in a digest only (:attr:`~auditkit.loaders.base.BlockParser.digest`): its query
events are the lean ones a profile reads, the same frames as the reference's for the same
block (``tests/test_pg_native.py`` compares them on every PostgreSQL stderr log we have).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from auditkit.arrow import numbers, strings
from auditkit.lazy_re import compile_later
from auditkit.loaders._pg_events import MESSAGE, Stats, zoned_to_utc
from auditkit.loaders._pg_frames import Taken, first_rows, statement_columns, text_labels
from auditkit.loaders._pg_prefix import ENGLISH_SEVERITIES, SECONDARY_SEVERITIES
from auditkit.loaders.base import BlockResult
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block
from auditkit.profile import Labels, ProfileColumns, ProfilePartial

__all__ = ["NativePlan", "Unsupported", "native_plan", "parse_native", "pieces"]

_NL, _SP, _TAB, _COLON = 10, 32, 9, 58
_PARAMS = b"parameters: "
_DURATION = b"duration: "
_DUR_CLASS = r"^-?[0-9]+(?:\.[0-9]+)?$"
#: the statement keywords, in the order of their codes here
_KINDS = ("statement", "execute", "parse", "bind")
_ESCAPE = compile_later(r"%(-?\d+)?([A-Za-z%#*])")
#: escapes whose text changes from line to line (besides a leading timestamp): not for us
_PER_LINE = frozenset("nlxv")
#: prefix fields the digest reads (besides the timestamp)
_FIELDS = ("tz", "pid", "user", "db", "query_id")
#: the most distinct prefix texts in a block, relative to its lines (more: not a statement log)
_MAX_SHAPES = 0.25


class Unsupported(Exception):
    """This block is not for the native reader: parse it with the reference parser.

    ``spans``: when only some entries stopped the reader (a statement written over several
    lines), their byte ranges in the block, each with the secondary lines that belong to it:
    the rest of the block can still be read natively (see ``StderrParser.parse_parts``).
    """

    def __init__(self, spans: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.spans = spans


@dataclass(frozen=True)
class NativePlan:
    """How the native reader takes lines of one ``log_line_prefix``.

    ``stamp``: ``"m"`` or ``"t"`` when the prefix starts with that timestamp (its fixed
    layout is checked per line, the rest of the prefix per distinct text), else ``""``.
    ``pattern``: the reference parser's one-pass pattern, matched on one line per text.
    ``line_number``: for a prefix with the session's line number (``%l``, as pgBadger
    recommends), an RE2 pattern whose first group is the text before that number: the
    number is written as ``0`` in the texts lines are grouped by (no frame reads it).
    """

    stamp: str
    pattern: re.Pattern[str]
    line_number: str | None = None


#: RE2's special characters, escaped in a literal part of the prefix
_RE2_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _line_number_pattern(prefix: str, escapes: list[re.Match[str]], stamp: str) -> str | None:
    """The :attr:`NativePlan.line_number` pattern of ``prefix`` (its ``escapes``), or None
    when the text before ``%l`` holds more than literals, the leading timestamp and the
    process id — a free-text field there could hold the literal that finds the number, and
    only the reference could tell."""
    parts = ["^(.*?" if stamp else "^("]  # the timestamp's zone (``UTC``, ``+03``) before
    at = 0
    for k, m in enumerate(escapes):
        literal = prefix[at : m.start()]
        at = m.end()
        if k == 0 and stamp:
            continue  # the timestamp itself is not in the texts
        if not literal and parts[-1] == "[0-9]+":
            return None  # two numbers side by side: where one ends is unknown
        parts.append("".join(f"\\{c}" if c in _RE2_SPECIAL else c for c in literal))
        letter = m.group(2)
        if letter == "l":
            if literal.isdigit() or not literal:
                return None  # nothing but digits before it: the number has no start
            return "".join(parts) + ")[0-9]+"
        if letter != "p":
            return None
        parts.append("[0-9]+")
    return None


def native_plan(prefix: str, pattern: re.Pattern[str]) -> NativePlan | None:
    """The plan for ``prefix`` read with the reference's ``pattern``, or None when its lines
    cannot be grouped by text (an escape that changes on every line: ``%n``, ``%x``…; ``%l``
    is read when the text before it fixes where it stands)."""
    escapes = list(_ESCAPE.finditer(prefix))
    letters = [m.group(2) for m in escapes]
    if any(m.group(1) for m in escapes):
        return None
    stamp = ""
    first = _ESCAPE.match(prefix)
    if first and first.group(2) in ("m", "t"):
        stamp = first.group(2)
    elif set(letters) & {"m", "t"}:
        return None  # a timestamp inside the prefix: every line's text differs
    per_line = set(letters) & _PER_LINE
    line_number = None
    if per_line == {"l"} and letters.count("l") == 1:
        line_number = _line_number_pattern(prefix, escapes, stamp)
        if line_number is None:
            return None
    elif per_line:
        return None
    return NativePlan(stamp, pattern, line_number)


#: how far a field is looked for byte by byte before its line is searched (most fields are short)
_SCAN = 32
#: the widest such look: from the end of the timestamp to the severity's colon
_WINDOW = 64


class _Bytes:
    """The block as bytes, with the positions of the characters the walker looks for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.buf = np.frombuffer(data, dtype=np.uint8)
        # bytes past the end read as newlines (bounds need no special case)
        self.padded = np.concatenate([self.buf, np.full(2 * _WINDOW, _NL, dtype=np.uint8)])
        #: row k is the _WINDOW bytes from k on (a view: gathering rows reads only those)
        self.windows = np.lib.stride_tricks.sliding_window_view(self.padded, _WINDOW)
        #: item k is the 8 bytes from k on as one little-endian integer (unaligned view)
        self.words = np.ndarray(
            shape=(len(self.buf) + _WINDOW,), dtype="<u8", buffer=self.padded, strides=(1,)
        )
        self._occ: dict[int, np.ndarray] = {}
        self._colons: tuple[np.ndarray, np.ndarray] | None = None
        self.arrow = pa.py_buffer(data)

    def at(self, pos: np.ndarray, k: int = 0) -> np.ndarray:
        """The bytes at ``pos + k``."""
        return self.padded[pos + k] if k else self.padded[pos]

    def occurrences(self, byte: int) -> np.ndarray:
        """Sorted positions of ``byte`` in the block."""
        occ = self._occ.get(byte)
        if occ is None:
            occ = self._occ[byte] = np.flatnonzero(self.buf == byte)
        return occ

    def _search(self, byte: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first ``byte`` at or after ``pos``, searched in the whole block."""
        occ = self.occurrences(byte)
        if not len(occ):
            return pos, np.zeros(len(pos), dtype=bool)
        j = np.searchsorted(occ, pos)
        return occ[np.minimum(j, len(occ) - 1)], j < len(occ)

    def scan(
        self, pos: np.ndarray, stops: tuple[int, ...], width: int = _SCAN
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first of ``stops[0]`` at or after ``pos`` — looked for in the window after each
        position, then in the block for the rows whose window lacks it."""
        win = self.windows[pos, :width]
        m = win == stops[0]
        first = m.argmax(axis=1)
        found = m[np.arange(len(pos)), first]
        hit = pos + first
        if not found.all():
            far = np.flatnonzero(~found)
            h, f = self._search(stops[0], pos[far] + width)
            hit[far] = h
            found[far] = f
        return hit, found

    def colons(self, two_blanks: bool) -> np.ndarray:
        """Sorted positions of every ``":  "`` in the block (``two_blanks``: the one after a
        severity), or of every ``": "`` and ``":"`` ending a line."""
        if self._colons is None:
            colons = self.occurrences(_COLON)
            one, two = self.padded[colons + 1], self.padded[colons + 2]
            spaced = one == _SP
            self._colons = colons[spaced & (two == _SP)], colons[spaced | (one == _NL)]
        return self._colons[0 if two_blanks else 1]

    def first_colon(
        self, pos: np.ndarray, limit: np.ndarray, two_blanks: bool, width: int = _SCAN
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first of :meth:`colons` at or after ``pos``, and whether it is before ``limit``.

        Looked for in the ``width`` bytes after each position: there the first colon is
        nearly always the one sought. The block's colons are found, and searched, only for
        the rows that window cannot answer — a colon of the other kind before the limit, or
        none in a window that ends before the limit does."""
        win = self.windows[pos, :width]
        m = win == _COLON
        first = m.argmax(axis=1)
        has = m[np.arange(len(pos)), first]
        hit = pos + first
        one = self.padded[hit + 1]
        if two_blanks:
            kind = (one == _SP) & (self.padded[hit + 2] == _SP)
        else:
            kind = (one == _SP) | (one == _NL)
        found = has & kind & (hit < limit)
        again = np.flatnonzero(np.where(has, ~kind & (hit < limit), pos + width < limit))
        if len(again):
            h, f = _after(self.colons(two_blanks), pos[again], limit[again])
            hit[again] = h
            found[again] = f
        return hit, found

    def equal(self, pos: np.ndarray, text: bytes) -> np.ndarray:
        """Whether ``text`` is written at each of ``pos`` (eight bytes compared at a time)."""
        ok: np.ndarray | None = None
        for k in range(0, len(text), 8):
            part = text[k : k + 8]
            mask, value = _word(part)
            w = self.words[pos + k] if k else self.words[pos]
            hit = (w & mask) == value if len(part) < 8 else w == value
            ok = hit if ok is None else ok & hit
        assert ok is not None
        return ok

    def spans(self, start: np.ndarray, end: np.ndarray) -> pa.LargeStringArray:
        """The texts ``[start, end)`` as one Arrow array (spans in order, not overlapping).

        One array over the block whose offsets alternate start, end makes every span an even
        item (the text between spans the odd ones): Arrow then copies the even items out.
        """
        n = len(start)
        if n == 0:
            return strings([])
        offsets = np.empty(2 * n + 1, dtype=np.int64)
        offsets[0:-1:2] = start
        offsets[1::2] = end
        offsets[-1] = end[-1]
        both = pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(offsets), self.arrow)
        return both.take(numbers(np.arange(0, 2 * n, 2, dtype=np.int64)))  # type: ignore[no-any-return]


def _ascii_class(arr: pa.Array, pattern: str) -> np.ndarray:
    """Whether each text matches ``pattern`` (RE2, no captures: Arrow's fast path)."""
    return pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _word(text: bytes) -> tuple[np.uint64, np.uint64]:
    """(mask, value) comparing up to 8 bytes at once against :attr:`_Bytes.words`."""
    mask = int.from_bytes(b"\xff" * len(text) + b"\x00" * (8 - len(text)), "little")
    value = int.from_bytes(text + b"\x00" * (8 - len(text)), "little")
    return np.uint64(mask), np.uint64(value)


def _timestamp_ok(b: _Bytes, pos: np.ndarray, millis: bool) -> np.ndarray:
    """Whether ``YYYY-MM-DD HH:MM:SS`` (``.mmm`` too with ``millis``) is written at ``pos``,
    and no further digit (nor ``.`` without ``millis``) right after it."""
    layout = "dddd-dd-dd dd:dd:dd" + (".ddd" if millis else "")
    ok = np.ones(len(pos), dtype=bool)
    for k in range(0, len(layout), 8):
        part = layout[k : k + 8]
        hi_mask = hi_value = lo_mask = six = carry = 0
        for j, ch in enumerate(part):
            sh = 8 * j
            if ch == "d":
                hi_mask |= 0xF0 << sh
                hi_value |= 0x30 << sh
                lo_mask |= 0x0F << sh
                six |= 0x06 << sh
                carry |= 0x10 << sh
            else:
                hi_mask |= 0xFF << sh
                hi_value |= ord(ch) << sh
        w = b.words[pos + k]
        ok &= (w & np.uint64(hi_mask)) == np.uint64(hi_value)
        # a low half above 9 carries into bit 4 when 6 is added: not a digit
        ok &= (((w & np.uint64(lo_mask)) + np.uint64(six)) & np.uint64(carry)) == 0
    after = b.at(pos, len(layout))
    ok &= (after < 48) | (after > 57)
    if not millis:
        ok &= after != ord(".")
    return ok


def _encode(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Codes per row and the distinct texts of ``arr``."""
    enc = arr.dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, enc.dictionary.to_pylist()


def _after(
    sorted_pos: np.ndarray, pos: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first of ``sorted_pos`` at or after ``pos``, and whether it is before ``end``."""
    if not len(sorted_pos):
        return pos.copy(), np.zeros(len(pos), dtype=bool)
    j = np.searchsorted(sorted_pos, pos)
    hit = sorted_pos[np.minimum(j, len(sorted_pos) - 1)]
    return hit, (j < len(sorted_pos)) & (hit < end)


@dataclass
class _Prefix:
    """What the prefix and severity of each line are: a code per line into per-text facts."""

    codes: np.ndarray  # per line
    sev: list[str]  # per text
    fields: dict[str, list[str]]  # per text: see _FIELDS ("" when not written)
    has: set[str]  # fields the prefix writes at all
    msg_start: np.ndarray  # per line
    stamp_len: int


def _read_prefix(b: _Bytes, plan: NativePlan, start: np.ndarray, end: np.ndarray) -> _Prefix:
    """Prefix fields and severity of every line (see the module's notes), or Unsupported."""
    n = len(start)
    stamp_len = {"m": 23, "t": 19}.get(plan.stamp, 0)
    if stamp_len and not _timestamp_ok(b, start, plan.stamp == "m").all():
        raise Unsupported
    seg = start + stamp_len
    colon, found = b.first_colon(seg, end, True, _WINDOW)
    if not found.all():
        raise Unsupported  # a severity written with one space, or no severity at all
    shapes = b.spans(seg, colon)
    if plan.line_number is not None:
        # the session line number, the one field that differs on every line, written as 0; a
        # line the pattern misses keeps its number, so its text is its own (matched below)
        shapes = pc.replace_substring_regex(
            shapes, pattern=plan.line_number, replacement="\\10", max_replacements=1
        )
    codes, texts = _encode(shapes)
    if len(texts) > max(64, _MAX_SHAPES * n):
        raise Unsupported
    first = first_rows(codes, len(texts))
    rx = plan.pattern
    names = rx.groupindex
    sev: list[str] = []
    fields: dict[str, list[str]] = {name: [] for name in _FIELDS}
    data = b.data
    for k in range(len(texts)):
        r = int(first[k])
        line = data[int(start[r]) : int(end[r])].decode("utf-8")
        m = rx.match(line)
        if m is None or m.group("junk") is not None or m.group("sev") is None:
            raise Unsupported
        if m.end("sev") != int(colon[r] - start[r]):
            raise Unsupported  # the reference ends the severity elsewhere
        if stamp_len and ("ts" not in names or m.span("ts") != (0, stamp_len)):
            raise Unsupported
        if "epoch" in names and m.group("epoch"):
            raise Unsupported
        sev.append(m.group("sev"))
        for name in _FIELDS:
            fields[name].append((m.group(name) or "") if name in names else "")
    if not set(sev) <= ENGLISH_SEVERITIES:
        raise Unsupported  # a translated server: the reference reports it
    has = {name for name in _FIELDS if name in names}
    # the reference's ": {1,2}" after the severity takes both blanks of ":  "
    return _Prefix(codes, sev, fields, has, colon + 3, stamp_len)


@dataclass
class _Messages:
    """The statement part of each line's message."""

    has_dur: np.ndarray  # "duration: X ms" read
    dur_start: np.ndarray
    dur_end: np.ndarray
    dur_ms: np.ndarray  # X (NaN without)
    kind: np.ndarray  # index into _KINDS, -1 none
    body: np.ndarray  # where the text after the keyword (or the message) starts


_ANCHOR = "duration: 0"


def _read_messages(b: _Bytes, msg_start: np.ndarray, end: np.ndarray) -> _Messages:
    """``duration: X ms`` and the statement keyword of every message, as the reference's
    :data:`~auditkit.loaders._pg_events.MESSAGE` reads them (matched once per distinct text)."""
    n = len(msg_start)
    kind = np.full(n, -1, dtype=np.int8)
    body = msg_start.copy()
    has_dur = b.equal(msg_start, _DURATION)
    dur_start = msg_start + len(_DURATION)
    dur_end = dur_start.copy()
    dur_ms = np.full(n, np.nan)
    d = np.flatnonzero(has_dur)
    if len(d):
        num_end, found = b.scan(dur_start[d], (_SP,), 24)
        found &= (num_end < end[d]) & (num_end > dur_start[d])
        if not found.all():
            raise Unsupported
        texts = b.spans(dur_start[d], num_end)
        if not _ascii_class(texts, _DUR_CLASS).all():
            raise Unsupported  # not a plain number (or digits of another script)
        dur_end[d] = num_end
        dur_ms[d] = pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False)
    # the text from where the keyword may start to the first ": " (or ":" ending the line),
    # that ": " included: a handful of distinct texts
    key_start = np.where(has_dur, dur_end, msg_start)
    stop, found = b.first_colon(key_start, end + 1, False)
    stop = np.where(found, stop + 2, key_start)
    codes, texts = _encode(b.spans(key_start, stop))
    if len(texts) > max(256, _MAX_SHAPES * n):
        raise Unsupported
    per_text = np.bincount(codes, minlength=len(texts))
    timed = np.bincount(codes[d], minlength=len(texts))
    if ((timed > 0) & (timed < per_text)).any():
        raise Unsupported  # one text after a duration on some lines, a message on others
    first = first_rows(codes, len(texts))
    text_kind = np.full(len(texts), -1, dtype=np.int8)
    text_body = np.zeros(len(texts), dtype=np.int64)
    text_dur = np.zeros(len(texts), dtype=bool)
    for k, text in enumerate(texts):
        r = int(first[k])
        if has_dur[r]:
            # the number is checked per line: one stands for all
            m = MESSAGE.match(_ANCHOR + text)
            if m is None or m.group("dur") is None:
                raise Unsupported  # "duration: X" not followed by " ms": read apart
            offset = m.end() - len(_ANCHOR)
            text_dur[k] = True
        else:
            m = MESSAGE.match(text)
            if m is None or m.group("dur") is not None:
                raise Unsupported
            offset = m.end()
        if m.group("kind"):
            text_kind[k] = _KINDS.index(m.group("kind"))
        text_body[k] = offset
    kind = text_kind[codes]
    body = key_start + text_body[codes]
    if (body > end).any():
        raise Unsupported
    return _Messages(has_dur, dur_start, dur_end, dur_ms, kind, body)


def parse_native(
    plan: NativePlan,
    block: Block,
    fmt: str,
    default_tz: str | None,
    reference: Callable[[Block], BlockResult],
    bind: Callable[[list[str], list[str]], list[str]] | None = None,
) -> BlockResult:
    """What a digest reads of ``block``, or :class:`Unsupported` when the block is not for us:
    the profile of its statements (no query-events frame: the profile is built straight from
    the parsed columns), the server events, the parse report and the pending records.

    ``reference`` parses a block the reference way (the block's other entries go there);
    ``bind`` binds the kept samples' parameters (the parser's ``bind_samples``).
    """
    data = block.data
    if not data or data[-1] != _NL or b"\r" in data or b"\x00" in data:
        raise Unsupported
    if block.first_line == 1 and data.startswith(b"\xef\xbb\xbf"):
        raise Unsupported
    b = _Bytes(data)
    try:
        pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), b.arrow
        ).validate(full=True)
    except pa.ArrowInvalid:
        raise Unsupported from None
    newlines = b.occurrences(_NL).astype(np.int64, copy=False)
    physical = len(newlines)
    line_start = np.empty(physical, dtype=np.int64)
    line_start[0] = 0
    line_start[1:] = newlines[:-1] + 1
    first_byte = b.buf[line_start]
    # a line starting with a blank, or an empty one, continues the entry before it
    cont = (first_byte == _TAB) | (first_byte == _SP) | (first_byte == _NL)
    if cont[0]:
        raise Unsupported
    entry_line = np.flatnonzero(~cont)  # the physical line each entry starts on
    n = len(entry_line)
    start = line_start[entry_line]
    end = newlines[entry_line]  # the end of an entry's first line
    last_line = np.empty(n, dtype=np.int64)
    last_line[:-1] = entry_line[1:] - 1
    last_line[-1] = physical - 1
    multi = last_line > entry_line
    if multi.any():
        early = _statement_spans(plan, b, start, end, np.flatnonzero(multi), len(data))
        if early:  # before the block is read: reading it first would be thrown away
            raise Unsupported(early)
    pre = _read_prefix(b, plan, start, end)
    codes = pre.codes
    sev_text = np.array(pre.sev, dtype=object)
    is_sec = np.isin(sev_text, list(SECONDARY_SEVERITIES))[codes]
    is_log = (sev_text == "LOG")[codes]
    is_detail = (sev_text == "DETAIL")[codes]
    msg = _read_messages(b, pre.msg_start, end)
    has_kind = msg.kind >= 0
    primary = ~is_sec
    query = primary & has_kind & msg.has_dur & is_log
    if (primary & has_kind & ~query).any():
        raise Unsupported  # a statement without its duration, or under another severity
    # every secondary belongs to the last primary before it
    owner = np.maximum.accumulate(np.where(is_sec, -1, np.arange(n)))
    owned_by_query = is_sec & (owner >= 0) & query[np.maximum(owner, 0)]
    sec_idx = np.flatnonzero(owned_by_query)
    pid_code: np.ndarray | None = None
    if "pid" in pre.has:
        pid_values, pid_of_text = np.unique(
            np.array(pre.fields["pid"], dtype=object), return_inverse=True
        )
        pid_code = pid_of_text.reshape(-1)[codes]
    detail_of = np.full(n, -1, dtype=np.int64)
    spread = multi & (query | owned_by_query)
    if spread.any():  # a statement or its parameters on several lines: for the reference
        raise Unsupported(_entry_spans(owner[spread], is_sec, start, len(data)))
    if len(sec_idx):
        owners = owner[sec_idx]
        if (np.diff(owners) == 0).any() or not is_detail[sec_idx].all():
            raise Unsupported  # more than a DETAIL after a statement
        if (has_kind[sec_idx] | msg.has_dur[sec_idx]).any():
            raise Unsupported
        if pid_code is not None and (pid_code[sec_idx] != pid_code[owners]).any():
            raise Unsupported  # the reference reports a DETAIL of another process
        detail_of[owners] = sec_idx
    qidx = np.flatnonzero(query)
    if not len(qidx):
        raise Unsupported

    report = ParseReport(block.source, fmt)
    report.bytes = len(data)
    report.lines = physical
    stats = Stats()
    stats.entries = n

    # the other entries (server events and their secondary lines), the reference's way
    others = np.flatnonzero(~query & ~owned_by_query)
    entry_end = newlines[last_line]  # the end of an entry's last line
    server = _others(others, b, start, entry_end, block.source, reference, report, stats)
    report.ok(len(qidx) + len(sec_idx))

    # the first statement of each process in the block (pairing across blocks, as the reference)
    data_of = b.data

    def text_of(row: int) -> str:
        return data_of[int(msg.body[row]) : int(end[row])].decode("utf-8").strip()

    firsts: dict[str, tuple[Any, ...]] = {}
    if pid_code is not None:
        per = pid_code[qidx]
        size = int(per.max()) + 1
        first_of = first_rows(per, size)
        last_of = first_rows(per[::-1].copy(), size)  # positions from the end
        seen = np.flatnonzero(first_of >= 0)
        # keys in the reference's order: by last statement, the latest first
        for p in seen[np.argsort(last_of[seen], kind="stable")].tolist():
            firsts[str(pid_values[p])] = ("timed", text_of(int(qidx[int(first_of[p])])))
    else:
        firsts[""] = ("timed", text_of(int(qidx[0])))

    # lean: the extended protocol's parse and bind steps are counted, not built
    kinds = msg.kind[qidx]
    run = kinds < 2
    if not run.all():
        report.events["query_events"] += int((~run).sum())
    # times: the reference converts every entry's, and its zone facts count them all
    mine = np.flatnonzero(query | owned_by_query)
    ts_all = _times_of(b, pre, start, mine, default_tz, stats)
    keep = qidx[run]
    ts = ts_all[np.searchsorted(mine, keep)]
    cols = _profile_columns(
        b,
        pre,
        keep,
        _statements(b, msg.body[keep], end[keep]),
        ts,
        msg,
        detail_of,
        end,
        block.source,
    )
    return BlockResult(
        {},
        report,
        [("block", firsts, []), ("stats", stats)],
        profile=ProfilePartial.from_columns(cols, bind),
        counts={"server_events": server},
    )


#: bytes after which Arrow's ``utf8_rtrim_whitespace`` might trim a character this reader
#: does not (vertical tab, form feed, the information separators, any non-ASCII byte)
_OTHER_SPACE = np.zeros(256, dtype=bool)
_OTHER_SPACE[[11, 12, 28, 29, 30, 31, *range(128, 256)]] = True


def _statements(b: _Bytes, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """The statement texts ``[start, end)`` with trailing white space removed, as the
    reference's ``utf8_rtrim_whitespace`` does — by moving the ends, one copy of the texts."""
    end = end.copy()
    while True:
        last = b.padded[np.maximum(end - 1, 0)]
        blank = (end > start) & ((last == _SP) | (last == _TAB))
        if not blank.any():
            break
        end[blank] -= 1
    texts = b.spans(start, end)
    if _OTHER_SPACE[b.padded[np.maximum(end - 1, 0)][end > start]].any():
        return pc.utf8_rtrim_whitespace(texts)  # a rare character: Arrow decides
    return texts


#: how far back from a secondary line its statement is looked for (further: the full reader)
_MAX_WALK = 64


def _severity_and_message(plan: NativePlan, b: _Bytes, s: int, e: int) -> tuple[str, str] | None:
    """The severity and message of the line ``[s, e)`` as the reference reads them, or None
    when the line does not read as prefix, severity, ``":  "`` and message."""
    line = b.data[s:e].decode("utf-8", errors="replace")
    m = plan.pattern.match(line)
    if m is None or m.group("junk") is not None or m.group("sev") is None:
        return None
    if not line.startswith(":  ", m.end("sev")):
        return None
    return m.group("sev"), line[m.end("sev") + 3 :]


def _statement_spans(
    plan: NativePlan,
    b: _Bytes,
    start: np.ndarray,
    end: np.ndarray,
    multi: np.ndarray,
    size: int,
) -> list[tuple[int, int]] | None:
    """The byte ranges of the statements written over several lines, each with its secondary
    lines, told from the first lines of the few entries around the ``multi``-line ones — so a
    block holding them is cut into pieces before it is read, not after. None when there is
    no such statement, or when a line does not read plainly (the full reader decides then).
    Other entries over several lines (an autovacuum report) stay in the block: the native
    reader hands them to the reference with the block's other server events."""
    facts: dict[int, tuple[str, str] | None] = {}

    def fact(k: int) -> tuple[str, str] | None:
        if k not in facts:
            facts[k] = _severity_and_message(plan, b, int(start[k]), int(end[k]))
        return facts[k]

    heads: set[int] = set()
    for row in multi.tolist():
        h = row
        while True:
            f = fact(h)
            if f is None:
                return None
            if f[0] not in SECONDARY_SEVERITIES:
                break
            if h == 0 or row - h >= _MAX_WALK:
                h = -1  # its statement is in an earlier block (or too far): not ours
                break
            h -= 1
        if h < 0 or h in heads:
            continue
        sev, message = fact(h)  # type: ignore[misc]
        m = MESSAGE.match(message)
        if sev == "LOG" and m is not None and m.group("kind"):
            heads.add(h)
    if not heads:
        return None
    spans = []
    n = len(start)
    for h in sorted(heads):
        k = h + 1
        while k < n:
            f = fact(k)
            if f is None:
                return None
            if f[0] not in SECONDARY_SEVERITIES:
                break
            k += 1
        spans.append((int(start[h]), int(start[k]) if k < n else size))
    return spans


def _entry_spans(
    heads: np.ndarray, is_sec: np.ndarray, start: np.ndarray, size: int
) -> list[tuple[int, int]]:
    """Byte ranges of the primary entries ``heads``, each up to the next primary entry (its
    secondary lines with it), in block order."""
    heads = np.unique(heads)
    primaries = np.flatnonzero(~is_sec)
    after = np.searchsorted(primaries, heads, side="right")
    ends = np.full(len(heads), size, dtype=np.int64)
    more = after < len(primaries)
    ends[more] = start[primaries[after[more]]]
    return list(zip(start[heads].tolist(), ends.tolist(), strict=True))


def _times_of(
    b: _Bytes,
    pre: _Prefix,
    start: np.ndarray,
    rows: np.ndarray,
    default_tz: str | None,
    stats: Stats,
) -> np.ndarray:
    """UTC times of the lines ``rows`` (NaT without a timestamp), counting their zone facts."""
    if not pre.stamp_len:
        return np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[ns]")
    texts = b.spans(start[rows], start[rows] + pre.stamp_len)
    # the zone of a line is its prefix text's: the texts' zones, and each line's text
    zones, codes = (pre.fields["tz"], pre.codes[rows]) if "tz" in pre.has else (None, None)
    try:
        return zoned_to_utc(texts, zones, codes, default_tz, stats)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise Unsupported from None  # not a date: the reference reads it apart


def _label(pre: _Prefix, name: str, rows: np.ndarray, null_too: str = "") -> Labels | None:
    """The prefix field ``name`` of the lines ``rows`` as profile labels ('' and ``null_too``
    are no value, as in the reference's frame); None when the prefix does not write it."""
    if name not in pre.has:
        return None
    return text_labels(Taken(pre.fields[name], pre.codes[rows]), null_too)  # a text per prefix


def _profile_columns(
    b: _Bytes,
    pre: _Prefix,
    keep: np.ndarray,
    sql: pa.Array,
    ts: np.ndarray,
    msg: _Messages,
    detail_of: np.ndarray,
    end: np.ndarray,
    source: str,
) -> ProfileColumns:
    """What a profile reads of the statements ``keep``: the columns the reference's lean
    query-events frame holds for them (:func:`~auditkit.loaders._pg_frames.query_frame`),
    without the frame — per-row texts are read only for the samples a profile keeps."""
    data = b.data
    detail = detail_of[keep]

    def params(row: int) -> str | None:
        """The ``DETAIL:  parameters: …`` text of statement ``row`` (None without)."""
        d = int(detail[row])
        if d < 0:
            return None
        at = int(pre.msg_start[d])
        if not data.startswith(_PARAMS, at):
            return None
        return data[at + len(_PARAMS) : int(end[d])].decode("utf-8")

    found = {
        name: label
        for name, label in (
            ("database", _label(pre, "db", keep)),
            ("user", _label(pre, "user", keep)),
            ("query_id", _label(pre, "query_id", keep, "0")),
        )
        if label is not None
    }
    return statement_columns(sql, msg.dur_ms[keep], ts, found, source, params)


def _others(
    rows: np.ndarray,
    b: _Bytes,
    start: np.ndarray,
    end: np.ndarray,
    source: str,
    reference: Callable[[Block], BlockResult],
    report: ParseReport,
    stats: Stats,
) -> int:
    """How many server events the entries ``rows`` (with their secondary and continuation
    lines) hold, parsed by the reference as a block of their own (a digest counts them).
    ``end``: where each entry's last line ends."""
    if not len(rows):
        return 0
    data = b.data
    sub = b"".join(
        data[s : e + 1] for s, e in zip(start[rows].tolist(), end[rows].tolist(), strict=True)
    )
    res = reference(Block(sub, 1, source))
    sub_stats = next((p[1] for p in res.pending if p[0] == "stats"), None)
    if (
        res.report.skipped
        or res.report.warnings
        or (res.profile is not None and res.profile.events)
        or res.report.events["query_events"]
        or any(p[1] or p[2] for p in res.pending if p[0] == "block")
        or sub_stats is None
        or res.report.read != len(rows)
    ):
        raise Unsupported  # what the reference reports of them needs the whole block
    report.ok(len(rows))
    stats.unknown_tz |= sub_stats.unknown_tz
    stats.naive += sub_stats.naive
    stats.naive_tz = stats.naive_tz or sub_stats.naive_tz
    return res.counts["server_events"]


#: a run of readable entries shorter than this between two the native reader cannot read
#: goes to the reference parser with them (a call of either costs a few milliseconds)
_MIN_NATIVE = 256 * 1024


def pieces(block: Block, spans: list[tuple[int, int]]) -> list[tuple[Block, bool]]:
    """``block`` cut at entry boundaries into pieces for the native reader (True) and for the
    reference parser (False, the byte ``spans`` given, with any short run between them)."""
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < _MIN_NATIVE:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if merged[0][0] < _MIN_NATIVE:
        merged[0][0] = 0
    size = len(block.data)
    if size - merged[-1][1] < _MIN_NATIVE:
        merged[-1][1] = size
    cuts: list[tuple[int, int, bool]] = []
    at = 0
    for a, b in merged:
        if a > at:
            cuts.append((at, a, True))
        cuts.append((a, b, False))
        at = b
    if at < size:
        cuts.append((at, size, True))
    data = block.data
    out = []
    line = block.first_line
    for a, b, native in cuts:
        piece = data[a:b]
        offset = None if block.offset is None else block.offset + a
        out.append((Block(piece, line, block.source, offset=offset), native))
        line += piece.count(b"\n")
    return out
