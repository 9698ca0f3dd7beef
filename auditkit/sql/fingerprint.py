"""Statement fingerprints: group executions of "the same query" the way pg_stat_statements does.

A fingerprint is the statement with every literal (``'…'``, ``E'…'``, ``$$…$$``,
``$tag$…$tag$``, ``X'…'``, with any ``::type`` cast written on it), number (a unary minus
included), boolean, ``NULL`` used as a value, and bind parameter (``%s``, ``%(name)s``, ``$1``,
``?``) replaced by ``?``; ``IN (…)`` lists of any length become ``in (...)``; multi-row
``VALUES (…), (…)`` collapse to their first row; comments are dropped, whitespace is folded,
keywords are lower-cased and quoted identifiers stay exactly as written. ``IS [NOT]
NULL|TRUE|FALSE`` and ``NOT NULL`` are syntax and stay. Django's generated savepoint names
(``SAVEPOINT "s140_x3"``) become ``?`` so every savepoint falls in one group.

How this relates to pg_stat_statements (pgss) is tested against a real server
(``tests/test_fingerprint_pgss.py``): a pgss query text (with ``$n``) gets the fingerprint of
the logged statements it counts, so the two sources join, and each pgss entry is exactly one
group. Where pgss keys by parse tree it merges what we merge: ``NULL`` and ``'…'::timestamptz``
are constants like any other (psycopg2 inlines ``None`` and datetimes that way; server-side
binding sends ``$1``), comments and whitespace do not count. Where it splits, we merge
deliberately — several pgss entries, one group, calls adding up: ``IN`` lists of each length
(PostgreSQL 18 squashes them too), ``VALUES`` of each row count, the literal and the ``$n``
form of one statement, and each savepoint name (utility statements are not normalised;
pgBadger also keeps one group per name). pgss merges two things we keep apart, neither of which
Django produces: column aliases, and quoted vs unquoted spellings of one identifier.

Speed: the rules below are regular expressions written in the common subset of Python's
``re`` and RE2. :func:`fingerprint_many` runs them over a whole column at once with Arrow's
RE2 kernels (compiled code, no Python loop per statement) on the distinct texts only; the
final case folding and hashing run once per distinct normalised text. :func:`fingerprint`
runs the same rules with ``re`` for one statement; a test holds both paths to the same output.

Example::

    >>> fingerprint('SELECT "a"."id" FROM "a" WHERE "a"."id" IN (1, 2, 3) AND name = \\'x\\'')
    'select "a"."id" from "a" where "a"."id" in (...) and name = ?'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditkit.arrow import numbers, scalar, strings
from auditkit.lazy_re import compile_later

__all__ = [
    "Dialect",
    "fingerprint",
    "fingerprint_codes",
    "fingerprint_id",
    "fingerprint_many",
    "spread",
]

Dialect = Literal["postgres", "mysql"]

# Markers never present in the input (control characters are blanked first).
_M = "\x01"  # "a literal stood here"

_NUMBER = r"(?:0[xX][0-9A-Fa-f]+|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_COMMENT = r"--[^\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/|#[^\n]*"
# IS [NOT] NULL/TRUE/FALSE and the NOT NULL constraint: syntax, not values (pgss keeps them)
_KEPT = r"is\s+(?:not\s+)?(?:null|true|false)|not\s+null"
# a type name after ::, as drivers and people write it
_TYPE = (
    r"(?:(?i:(?:timestamp|time)(?:\s*\([0-9?]+\))?\s+with(?:out)?\s+time\s+zone|double\s+precision"
    r"|character\s+varying|bit\s+varying)"
    r'|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)'
    r"(?:\s*\(\s*[0-9?]+(?:\s*,\s*[0-9?]+)*\s*\))?(?:\s*\[\s*\])*"
)
_ROW = r"\((?:[^()]|\([^()]*\))*\)"  # a bracketed VALUES row, one nested level allowed
_PLACEHOLDER = r"%\([A-Za-z0-9_]+\)s|%s|\$[0-9]+"

# Per dialect: quoted identifier, string literal forms.
_IDENT = {"postgres": r'"(?:[^"]|"")*"', "mysql": r"`(?:[^`]|``)*`"}
_STRING = {
    # standard_conforming_strings: backslash is literal in '…' and U&'…', an escape in E'…';
    # dollar quotes with or without a tag (RE2 has no back-references, so a tagged body ends
    # at the first tag-shaped delimiter: nested bodies must use different tags, as they do)
    "postgres": r"[Ee]'(?:[^'\\]|''|\\.)*'|(?:[Uu]&|[BbXxNn])?'(?:[^']|'')*'|\$\$(?:[^$]|\$[^$])*\$\$"
    r"|\$[A-Za-z_][A-Za-z0-9_]*\$(?s:.)*?\$[A-Za-z_][A-Za-z0-9_]*\$",
    # MySQL: backslash escapes by default, and "…" is a string unless ANSI_QUOTES.
    "mysql": r"(?:_[A-Za-z0-9]+)?[BbXxNn]?'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\"",
}
# A plain '…' string (no prefix), per dialect: for a word written right against a string.
_PLAIN = {"postgres": r"'(?:[^']|'')*'", "mysql": r"'(?:[^'\\]|''|\\.)*'"}


def _comment(dialect: Dialect) -> str:
    """Comments: ``--`` and ``/* */``, and ``#`` in MySQL."""
    return _COMMENT if dialect == "mysql" else _COMMENT.replace("|#[^\\n]*", "")


def _rules(dialect: Dialect) -> tuple[tuple[str, str], ...]:
    ident, string, plain = _IDENT[dialect], _STRING[dialect], _PLAIN[dialect]
    comment = _comment(dialect)
    return (
        # 0. blank control characters (keeps the marker characters unambiguous)
        (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " "),
        # 1. one left-to-right scan: identifiers are kept (and marked), comments kept (and
        #    marked), strings, placeholders, booleans, NULL values and numbers become a marker.
        #    RE2 has no look-behind, so branches that must not start inside a word consume the
        #    word themselves and write it back: a word written against a string (LIKE'x%',
        #    THEN'y') keeps its last letter rather than lending it as an E/N/X/B prefix, and the
        #    number branch keeps the character before the number, so digits inside words
        #    (table1, s140_x3) are untouched. NULL, TRUE and FALSE are values (pgss replaces
        #    them) except after IS [NOT] and in the NOT NULL constraint: kept (and marked).
        (
            rf"({ident})|({comment})|{string}|{_PLACEHOLDER}|(?i:\b(?:true|false)\b)"
            rf"|(?i:\b({_KEPT})\b)|(?i:\bnull\b)"
            rf"|\b([A-Za-z_][A-Za-z0-9_$]+){plain}|([^A-Za-z0-9_$.\"`?]){_NUMBER}",
            rf"\1\2\3\4\5{_M}",
        ),
        # 2. drop the marker after identifiers and IS [NOT] NULL/TRUE/FALSE; drop comments
        #    with their marker
        (
            rf"({ident}){_M}|(?i:\b({_KEPT})){_M}"
            rf"|(?:--[^\n{_M}]*|#[^\n{_M}]*|/\*[^{_M}]*\*/){_M}",
            r"\1\2",
        ),
        # 3. what is left of the markers are literals
        (_M, "?"),
        # 4. unary minus folds into the constant (pgss: "+ -4426" -> "+ $1")
        (r"([-+*/%=<>(,]\s*|(?i:\b(?:select|and|or|then|else|when|by|return)\s+))-\s*\?", r"\1?"),
        #    and a cast written on a constant is part of it: psycopg2 sends datetimes as
        #    '…'::timestamptz and None as NULL, server-side binding sends $1; pgss counts all
        #    three as one statement ("'…'::timestamptz" is parsed into one constant)
        (rf"\?(?:\s*::\s*{_TYPE})+", "?"),
        # 5. IN lists of any length, VALUES rows of any count
        (r"(?i:\b(in)\s*\(\s*\?(?:\s*,\s*\?)*\s*\))", r"\1 (...)"),
        #    (a row may hold one level of brackets: now(), coalesce(?, ?), ?::numeric(8, 2))
        (rf"(?i:\b(values)\s*({_ROW})(?:\s*,\s*{_ROW})+)", r"\1 \2"),
        # 6. Django savepoint names
        (
            r"(?i:\b((?:release|rollback\s+to)\s+savepoint|savepoint)\s+(?:\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|[A-Za-z0-9_]+))",
            r"\1 ?",
        ),
        # 7. whitespace: fold runs (matching only runs that change: single spaces are most of
        #    the text, and every match costs a copy), one space after commas and none before,
        #    none inside brackets. (Then :data:`_TRIM` is stripped from both ends.)
        (r" [ \t\n\r\f]+|[\t\n\r\f][ \t\n\r\f]*", " "),
        (r" , ?|,([^ ])", r", \1"),
        (r"(\() | (\))", r"\1\2"),
    )


#: stripped from both ends last: spaces and the final ; (a string operation, much cheaper than
#: an end-anchored regex, which RE2 tries at every space)
_TRIM = " ;"


@lru_cache(maxsize=4)
def _compiled(dialect: Dialect) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(p, re.ASCII), r) for p, r in _rules(dialect))


_CASE_SPLIT = compile_later(r'"(?:[^"]|"")*"|`(?:[^`]|``)*`|[^"`]+|["`]')


def _fold_case(text: str) -> str:
    """Lower-case everything but quoted identifiers (run once per distinct text)."""
    if '"' not in text and "`" not in text:
        return text.lower()
    return "".join(
        part if part[0] in '"`' and len(part) > 1 else part.lower()
        for part in _CASE_SPLIT.findall(text)
    )


def fingerprint_id(fp: str) -> str:
    """Stable 16-hex-digit id of a fingerprint (BLAKE2b, 64 bits)."""
    return hashlib.blake2b(fp.encode("utf-8"), digest_size=8).hexdigest()


def fingerprint(sql: str, dialect: Dialect = "postgres") -> str:
    """The fingerprint of one statement. See the module docstring for the rules."""
    text = sql
    for pattern, repl in _compiled(dialect):
        text = pattern.sub(repl, text)
    return _fold_case(text.strip(_TRIM))


#: rules run on every distinct input; the rest run on the distinct *literal-free* texts, which are
#: far fewer (a log of 76,010 distinct statements has 249 once literals are gone)
_LITERAL_RULES = 2


def _normalise_array(arr: pa.Array, dialect: Dialect) -> tuple[pa.Array, np.ndarray]:
    """Normalised texts of the distinct inputs ``arr``: (distinct results, code of each input).

    The literal rules run on every input; the rest only on the distinct literal-free texts.
    """
    rules = _rules(dialect)
    for pattern, repl in rules[:_LITERAL_RULES]:
        arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=repl)
    encoded = arr.dictionary_encode()
    rest = encoded.dictionary
    for pattern, repl in rules[_LITERAL_RULES:]:
        rest = pc.replace_substring_regex(rest, pattern=pattern, replacement=repl)
    rest = pc.utf8_trim(rest, characters=_TRIM)
    # the remaining rules may map two literal-free texts to one: encode again (few values)
    final = rest.dictionary_encode()
    codes = _codes(encoded.indices)
    return final.dictionary, _codes(final.indices)[codes]


def _codes(indices: pa.Array) -> np.ndarray:
    """Dictionary indices as an int64 array, -1 where null."""
    filled = indices.fill_null(scalar(-1, indices.type)) if indices.null_count else indices
    return filled.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


#: bytes that, written right before a run of digits, make it a number of its own (rule 1's
#: number branch: anything but a word character, ``$``, ``.``, a quote or ``?``)
_NOT_BEFORE = np.zeros(256, dtype=bool)
_NOT_BEFORE[list(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$."`?')] = True
#: bytes that may not follow a run of digits we blank: a letter (``0x1F``, ``1e5``, ``5abc``),
#: a digit, ``_``, ``$`` or ``.`` (``1.5``)
_NOT_AFTER = np.zeros(256, dtype=bool)
_NOT_AFTER[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$.")] = True
_ZERO = ord("0")


def _blank_numbers(texts: pa.Array) -> pa.Array:
    """``texts`` with every whole integer written as ``0``, in NumPy.

    An integer here is a run of digits with a byte before it that is not a word character,
    ``$``, ``.``, a quote or ``?``, and nothing after it that would extend it (a letter, a
    digit, ``_``, ``$``, ``.``). Outside quoted identifiers such a run is exactly what rule 1
    replaces by ``?`` whatever its digits (or it lies in a string or a comment, which go
    whole), so two texts that differ only there have the same fingerprint — see
    :func:`_digits_in_identifiers` for the one place it can lie that matters.
    """
    arr = texts if texts.type == pa.large_string() else texts.cast(pa.large_string())
    if len(arr) == 0:
        return arr
    if arr.offset:  # a slice: its own buffers, from 0 (the validity bitmap included)
        arr = pa.concat_arrays([arr])
    validity, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    base = int(off[0])
    buf = np.frombuffer(data, dtype=np.uint8)[base : int(off[-1])].copy()
    rel = off - base
    digits = np.flatnonzero((buf >= _ZERO) & (buf <= _ZERO + 9))
    if not len(digits):
        return arr
    n = len(buf)
    text_start = np.zeros(n + 1, dtype=bool)
    text_start[rel] = True  # every text's first byte, and the end of the last
    # runs of digits, never across two texts
    run_start = np.ones(len(digits), dtype=bool)
    run_start[1:] = digits[1:] != digits[:-1] + 1
    run_start |= text_start[digits]
    first = digits[run_start]
    last = digits[np.append(run_start[1:], True)]
    ok = ~text_start[first] & ~_NOT_BEFORE[buf[np.maximum(first - 1, 0)]]
    ok &= text_start[last + 1] | ~_NOT_AFTER[buf[np.minimum(last + 1, n - 1)]]
    # a whole number becomes one 0: the digits after a run's first go (fewer, shorter keys)
    blank = ok[np.cumsum(run_start) - 1]
    buf[first[ok]] = _ZERO
    gone = digits[blank & ~run_start]
    if len(gone):
        keep = np.ones(n, dtype=bool)
        keep[gone] = False
        buf = buf[keep]
        rel = rel - np.searchsorted(gone, rel)
    return pa.LargeStringArray.from_buffers(
        len(arr), pa.py_buffer(rel), pa.py_buffer(buf), validity, arr.null_count
    )


@lru_cache(maxsize=4)
def _identifier_number(dialect: Dialect) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A scanner of the tokens that can hold a quote — quoted identifiers (group 1), comments
    and strings, written as rule 1 writes them, so it sees the identifiers rule 1 keeps — and
    a whole number inside an identifier."""
    comment = _comment(dialect)
    scan = re.compile(rf"({_IDENT[dialect]})|{comment}|{_STRING[dialect]}", re.ASCII)
    return scan, re.compile(r"[^A-Za-z0-9_$.\"`?][0-9]+(?![A-Za-z0-9_$.])")


def _digits_in_identifiers(keys: list[str], dialect: Dialect) -> list[int]:
    """The keys (texts with numbers blanked) with a blanked number inside a quoted identifier
    (``"page 2"``): identifiers are kept as written, so texts grouped under such a key may
    differ in their fingerprints and are fingerprinted one by one."""
    scan, number = _identifier_number(dialect)
    quote = "`" if dialect == "mysql" else '"'
    unsafe = []
    for k, key in enumerate(keys):
        if quote in key and any(
            m.group(1) and number.search(m.group(1)) for m in scan.finditer(key)
        ):
            unsafe.append(k)
    return unsafe


#: what a key (a text with its numbers blanked) gives, per dialect: its fingerprint and id, or
#: None when the key's texts must be fingerprinted one by one. Keys repeat from block to block
#: of a log (the same statements with other numbers), so most never reach the rules again.
_KEYS: dict[tuple[Dialect, str], tuple[str, str] | None] = {}
_KEYS_MAX = 200_000


def _fingerprint_keys(keys: list[str], dialect: Dialect) -> list[tuple[str, str] | None]:
    """:data:`_KEYS`' answer for each of ``keys``, computing the ones not seen before."""
    new = [k for k in dict.fromkeys(keys) if (dialect, k) not in _KEYS]
    if new:
        if len(_KEYS) + len(new) > _KEYS_MAX:
            _KEYS.clear()
        unsafe = set(_digits_in_identifiers(new, dialect))
        safe = [k for i, k in enumerate(new) if i not in unsafe]
        for i in unsafe:
            _KEYS[dialect, new[i]] = None
        if safe:
            for key, (fp, fid) in zip(safe, _fingerprints_of(safe, dialect), strict=True):
                _KEYS[dialect, key] = (fp, fid)
    return [_KEYS.get((dialect, k)) for k in keys]


def _fingerprints_of(texts: list[str], dialect: Dialect) -> list[tuple[str, str]]:
    """(fingerprint, id) of each of ``texts`` (distinct), the rules run by Arrow."""
    normalised, codes = _normalise_array(strings(texts), dialect)
    finals = [_fold_case(t) for t in normalised.to_pylist()]
    pairs = [(f, fingerprint_id(f)) for f in finals]
    return [pairs[c] for c in codes.tolist()]


def fingerprint_codes(
    distinct: pa.Array, dialect: Dialect = "postgres"
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Fingerprints of the texts ``distinct`` (repeats and nulls allowed), as codes into few values.

    Returns (fingerprints, ids, codes): ``fingerprints[codes[i]]`` (and ``ids[codes[i]]``)
    belong to ``distinct[i]``; code -1 is a null text. Texts that differ only in their numbers
    share a fingerprint (:func:`_blank_numbers`): the rules run once per such group and are
    remembered across calls, so a log's blocks — 39,000 distinct statements each, some 250
    groups — mostly reuse what earlier blocks computed. Callers that already dictionary-encoded
    their column (the log loaders) use this to spread results with one ``take`` each.
    """
    if len(distinct) == 0:
        none = strings([])
        return none, none, np.zeros(0, dtype=np.int64)
    blanked = _blank_numbers(distinct).dictionary_encode()
    group = _codes(blanked.indices)
    answers = _fingerprint_keys(blanked.dictionary.to_pylist(), dialect)
    index: dict[str, int] = {}  # fingerprint -> its code
    ids: dict[str, str] = {}

    def code(pair: tuple[str, str]) -> int:
        ids[pair[0]] = pair[1]
        return index.setdefault(pair[0], len(index))

    key_code = np.array([-1 if a is None else code(a) for a in answers], dtype=np.int64)
    codes = np.where(group < 0, -1, key_code[group])  # -1: a null text
    alone = np.flatnonzero(key_code < 0)
    rows = np.flatnonzero(np.isin(group, alone) & (group >= 0)) if len(alone) else alone
    if len(rows):  # keys with a number in a quoted identifier: their texts one by one
        texts = distinct.take(numbers(rows)).to_pylist()
        codes[rows] = [code(pair) for pair in _fingerprints_of(texts, dialect)]
    finals = list(index)
    return strings(finals), strings([ids[f] for f in finals]), codes


def spread(values: pa.Array, codes: np.ndarray) -> pa.Array:
    """``values`` taken at ``codes`` (-1 gives null)."""
    return pc.take(values, pa.array(codes, mask=codes < 0))


def fingerprint_many(
    sql: pd.Series | Sequence[str] | Iterable[str], dialect: Dialect = "postgres"
) -> tuple[pd.Series, pd.Series]:
    """Fingerprints and fingerprint ids of many statements at once (the hot path).

    Returns two string Series aligned with the input. Nulls stay null.
    """
    series = sql if isinstance(sql, pd.Series) else pd.Series(list(sql), dtype="string")
    index = series.index
    if len(series) == 0:
        empty = pd.Series([], dtype="string", index=index)
        return empty, empty.copy()
    arr = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):  # pyarrow-backed strings come chunked
        arr = arr.combine_chunks()
    encoded = arr.dictionary_encode()
    fp_values, id_values, codes = fingerprint_codes(encoded.dictionary, dialect)
    rows = codes[_codes(encoded.indices)]
    rows[_codes(encoded.indices) < 0] = -1
    fps = spread(fp_values.cast(pa.string()), rows).to_pandas().astype("string")
    fids = spread(id_values.cast(pa.string()), rows).to_pandas().astype("string")
    fps.index = index
    fids.index = index
    return fps, fids
