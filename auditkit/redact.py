"""Redaction: what auditkit keeps and shows of the client's data. The one place it is decided.

Two kinds of sensitive text are treated differently:

* **Secrets** — passwords, password hashes, session keys, CSRF tokens, API tokens and keys,
  ``Authorization`` and cookie headers, DSN passwords, private keys, and the exact values of
  environment variables a run names (a DSN taken from ``$AUDITKIT_DSN``). Replaced by
  ``[secret]`` **always**: when a client folder is loaded for an audit (so neither the parse
  cache nor any frame holds them, :func:`scrub_frame`) and again wherever text reaches a
  report. No setting shows them — ``--show-literals`` included.
* **Literals** — values in SQL statements (``'jane@acme.test'``, ``42``, ``E'…'``,
  ``$$…$$``) and e-mail addresses anywhere. Replaced by placeholders (``?``, ``[email]``)
  *by default*; a run with ``show_literals=True`` (``--show-literals``) keeps them.

Every rule is a named :class:`Rule` in the one ordered tuple :data:`RULES`; ``tests/fixtures/
redaction/cases.yaml`` holds, for each rule, texts it must redact and texts it must leave
alone, and a test keeps the two in step. Order matters: a rule sees the text the rules before
it left (a private key block goes first, so no later rule splits it; shape rules go last, so a
token a named rule already recognised is not counted twice). Values are replaced *inside*
their quotes — ``"password" = '[secret]'`` — so a statement stays a statement.

Bound parameters follow their statement: a value a secret column takes — by literal or by
placeholder position (``"password" = %s``, ``$2``, an ``INSERT`` column) — is removed from the
logged parameters too (:func:`scrub_parameters`). Whole pages and documents, whose contents
were redacted when they were laid out, need only the exact values removed (:func:`scrub_values`).

SQL literal redaction follows the scanning rules of :mod:`auditkit.sql.fingerprint` — quoted
identifiers are kept, strings, numbers and dollar-quoted bodies become ``?``, bind
placeholders (``%s``, ``$1``) stay — but keeps the statement's case and layout, so a redacted
statement still reads like the original. A test holds the two to the same fingerprint.

Example::

    >>> redact_sql("SELECT * FROM \\"auth_user\\" WHERE email = 'a@b.org' AND id = 7")
    'SELECT * FROM "auth_user" WHERE email = ? AND id = ?'
    >>> redact_text("connect postgres://app:hunter2@db/prod as ann@example.com")
    'connect postgres://app:[secret]@db/prod as [email]'
    >>> scrub_secrets('UPDATE "auth_user" SET "password" = \\'pbkdf2_sha256$870000$s4lt$h4sh=\\'')
    'UPDATE "auth_user" SET "password" = \\'[secret]\\''
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

from auditkit.findings import Evidence, Finding, Recommendation, Subject
from auditkit.lazy_re import compile_later

__all__ = [
    "EMAIL_PLACEHOLDER",
    "LITERAL_PLACEHOLDER",
    "RULES",
    "SECRET_PLACEHOLDER",
    "Redactor",
    "Rule",
    "is_secret_column",
    "redact_sql",
    "redact_text",
    "rule",
    "scrub_frame",
    "scrub_parameters",
    "scrub_secrets",
    "scrub_values",
    "secret_parameters",
]

LITERAL_PLACEHOLDER = "?"
EMAIL_PLACEHOLDER = "[email]"
SECRET_PLACEHOLDER = "[secret]"


#: texts this long (a whole report page) are matched against triggers with RE2, not ``re``
_LARGE = 1 << 16


# -- the rule type -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One redaction rule: a name, what it removes, and how.

    ``trigger`` is a regular expression in the common subset of Python's ``re`` and RE2 that
    matches wherever the rule could change something (a superset); :func:`scrub_frame` uses the
    union of all triggers to pick, with Arrow's compiled regex kernels, the few cells worth
    running the rules on. A test holds every rule's positive cases to its trigger.
    """

    name: str
    kind: Literal["secret", "literal"]
    what: str
    apply: Callable[[str], str]
    trigger: str
    _trigger: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_trigger", re.compile(self.trigger))

    def __call__(self, text: str) -> str:
        return self.apply(text)

    def scrub(self, text: str) -> str:
        """:attr:`apply`, skipped when the trigger does not match (the common, cheap case)."""
        return self.apply(text) if self.triggered(text) else text

    def triggered(self, text: str) -> bool:
        """True when the trigger matches ``text`` (RE2 for large texts: whole report pages)."""
        if len(text) < _LARGE:
            return self._trigger.search(text) is not None
        import pyarrow as pa
        import pyarrow.compute as pc

        return bool(pc.match_substring_regex(pa.array([text]), self.trigger)[0].as_py())


def _sub(
    pattern: str,
    repl: str | Callable[[re.Match[str]], str],
    flags: int = 0,
) -> Callable[[str], str]:
    compiled = re.compile(pattern, flags)

    def apply(text: str) -> str:
        return compiled.sub(repl, text)

    return apply


def _keep_groups(*names: str) -> Callable[[re.Match[str]], str]:
    """A replacement keeping the named groups around the secret, group ``v`` (→ [secret])."""

    def repl(m: re.Match[str]) -> str:
        if SECRET_PLACEHOLDER in m.string[max(0, m.start("v") - 1) : m.end("v") + 1]:
            return m.group(0)  # already redacted
        return (
            "".join(m.group(n) or "" for n in names[:-1])
            + SECRET_PLACEHOLDER
            + (m.group(names[-1]) or "")
        )

    return repl


def _header_value(name: str) -> Callable[[re.Match[str]], str]:
    """A replacement for headers whose name (the end of group ``key``) matches ``name``: their
    value → [secret]. A quoted name needs a quoted value (JSON); otherwise it is prose."""
    header = re.compile(name)
    keep = _keep_groups("key", "sep", "end")

    def repl(m: re.Match[str]) -> str:
        if not header.search(m.group("key")) or (m.group("kq") and not m.group("vq")):
            return m.group(0)  # "ix_for_authorization": pages: … is not a header
        return keep(m)

    return repl


def _shaped(pattern: str, accept: Callable[[str], bool], flags: int = 0) -> Callable[[str], str]:
    """Replace matches of ``pattern`` that ``accept`` judges secret (entropy, mixed classes)."""
    compiled = re.compile(pattern, flags)

    def repl(m: re.Match[str]) -> str:
        return SECRET_PLACEHOLDER if accept(m.group(0)) else m.group(0)

    def apply(text: str) -> str:
        return compiled.sub(repl, text)

    return apply


def _random_looking(token: str, *, upper: bool, digits: int = 1, distinct: float = 0.5) -> bool:
    """True when ``token`` looks generated: digits, mixed case if asked, many distinct chars.

    Words and identifiers (``getElementsByTagName``, ``select_related``) fail the digit, the
    case-balance or the distinct-characters test; random tokens over a 36- or 62-letter
    alphabet pass it (a 32-character one fails it about once in 200).
    """
    if sum(c.isdigit() for c in token) < digits:
        return False
    steps = sum(1 for a, b in pairwise(token) if ord(b) - ord(a) == 1)
    if steps > 0.25 * len(token):  # an alphabet ("ABCDEFGH…"), not a random draw
        return False
    if upper:
        # random mixed case: about as many capitals as small letters; CamelCase has few capitals
        capitals = sum(c.isupper() for c in token)
        letters = capitals + sum(c.islower() for c in token)
        if not letters or min(capitals, letters - capitals) < 0.25 * letters:
            return False
    return len(set(token)) >= distinct * len(token)


# -- secret vocabulary ---------------------------------------------------------------------------
#: the words naming a secret in ``key=value``, JSON, YAML, headers and query strings
_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|(?:secret|signing|encryption|master|fernet|license|client)[_-]?key"
    r"|private[_-]?key(?:[_-]?id)?|signature"
    r"|session(?:[_-]?(?:id|key|token|data))?|csrf(?:middleware)?token|csrf[_-]?token"
    r"|x-amz-(?:credential|signature|security-token)"
)
#: column names whose values are secrets whatever they look like
_SECRET_COLUMN_WORDS = (
    r"password|passwd|passphrase|secret|token|api_?key|apikey|access_?key|secret_?key"
    r"|private_?key|session_?key|session_?data|sessionid|csrf_?token|csrftoken"
    r"|csrfmiddlewaretoken|otp_?secret|totp_?secret|credentials?"
)
_SECRET_COLUMN = compile_later(rf"(?i)^(?:[a-z0-9_]*_)?(?:{_SECRET_COLUMN_WORDS})$")
#: tables whose ``key`` column is a token (DRF authtoken, django-otp devices, knox)
_TOKEN_TABLE = compile_later(r"(?i)token|otp|secret|knox|apikey|api_key")
#: bind placeholders and already-redacted values: never a secret value themselves
_NOT_A_VALUE = compile_later(
    r"(?i)^(?:\?|%s|%\(\w+\)s|\$\d+|:\w+|null|none|\[secret\]|\[redacted\]|\*+|-)?$"
)


def is_secret_column(name: str, table: str | None = None) -> bool:
    """True when a column (or frame column, or form field) called ``name`` holds secrets.

    ``auth_user.password``, ``django_session.session_key``/``session_data``, ``csrftoken``,
    ``api_key``…; ``key`` only in token tables (``authtoken_token.key``).
    """
    name = name.strip('"`[] ')
    if _SECRET_COLUMN.match(name):
        return True
    return name.lower() == "key" and table is not None and bool(_TOKEN_TABLE.search(table))


# -- SQL-aware secret rules ---------------------------------------------------------------------
_SQL_STRING = r"(?:[EeNn]|_[A-Za-z0-9]+)?'(?:[^'\\]|''|\\.)*(?:'|\Z)"
_SQL_OPERAND = compile_later(rf"\s*(?:{_SQL_STRING})")
_SQL_COLUMN = compile_later(
    r"""(?P<col>"(?:[^"]|"")++"|`[^`]++`|(?<![\w$])[A-Za-z_][\w$]*+)\s*+(?P<op>=|<>|!=|(?i:\bI?LIKE\b)|(?i:\bIN\b)\s*\()"""
)
_QUALIFIER = compile_later(r"""(?:"((?:[^"]|"")+)"|`([^`]+)`|([A-Za-z_][\w$]*))\s*\.\s*$""")


def _sql_table_before(text: str, at: int) -> str | None:
    m = _QUALIFIER.search(text[max(0, at - 130) : at])
    return next((g for g in m.groups() if g), None) if m else None


_SQL_SECRET_HEAD = compile_later(
    rf"""(?:{_SECRET_COLUMN_WORDS}|key)(?P<q>["`]?)\s*+(?P<op>=|<>|!=|\bi?like\b|\bin\s*\()"""
)


def _folded(text: str) -> str:
    """``text`` in lower case, offsets unchanged: case-insensitive heads are searched in it with
    a case-sensitive pattern (several times faster in ``re``). Where lower-casing would move
    offsets (a few non-ASCII letters), non-ASCII characters are blanked instead."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if c.isascii() else " " for c in text)


def _secret_operands(text: str) -> str:
    """``"password" = '…'``, ``"session_key" IN ('…', '…')``, ``… LIKE '…'``: values → [secret].

    Anchored on the column word (a fast search); the column is then read back to its start.
    """
    if "'" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _SQL_SECRET_HEAD.finditer(_folded(text)):
        if m.start() < pos:
            continue
        start = m.start()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
            start -= 1
        quote = m.group("q")
        if quote and (start == 0 or text[start - 1] != quote):
            continue
        column = text[start : m.start("q")]
        if not is_secret_column(column, _sql_table_before(text, start - len(quote))):
            continue
        rest = m.end()
        in_list = m.group("op").endswith("(")
        out.append(text[pos:rest])
        pos = rest
        while True:
            lit = _SQL_OPERAND.match(text, pos)
            if lit is None:
                break
            out.append(_secret_literal(lit.group(0)))
            pos = lit.end()
            if not in_list:
                break
            comma = re.match(r"\s*,", text[pos:])
            if comma is None:
                break
            out.append(comma.group(0))
            pos += comma.end()
    out.append(text[pos:])
    return "".join(out)


def _secret_literal(literal: str) -> str:
    """A quoted SQL literal with its content replaced, quotes (and prefix) kept."""
    lead = literal[: len(literal) - len(literal.lstrip())]
    body = literal.lstrip()
    q = body.index("'")
    return f"{lead}{body[: q + 1]}{SECRET_PLACEHOLDER}'"


_INSERT = compile_later(
    r"""(?is)\bINSERT\s+(?:IGNORE\s+)?INTO\s+(?P<table>(?:"(?:[^"]|"")+"|`[^`]+`|[\w$.]+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|`[^`]+`|[\w$]+))?)"""
    r"""\s*\((?P<cols>[^()]*)\)\s*VALUES\s*"""
)
_VALUES_TOKEN = compile_later(
    rf"(?P<str>{_SQL_STRING})|(?P<open>\()|(?P<close>\))|(?P<comma>,)|[^'(),]+"
)


def _insert_values(text: str) -> str:
    """``INSERT INTO t ("session_key", …) VALUES ('…', …)``: values of secret columns → [secret]."""
    if "'" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _INSERT.finditer(text):
        if m.start() < pos:
            continue
        table = m.group("table").replace('"', "").replace("`", "")
        cols = [c.strip() for c in m.group("cols").split(",")]
        secret = {i for i, c in enumerate(cols) if is_secret_column(c, table)}
        if not secret:
            continue
        out.append(text[pos : m.end()])
        pos = m.end()
        depth, index = 0, 0
        for t in _VALUES_TOKEN.finditer(text, pos):
            kind = t.lastgroup
            if kind == "open":
                depth += 1
                if depth == 1:
                    index = 0
            elif kind == "close":
                depth -= 1
            elif kind == "comma" and depth == 1:
                index += 1
            elif kind == "str" and depth == 1 and index in secret:
                out.append(text[pos : t.start()] + _secret_literal(t.group(0)))
                pos = t.end()
            elif kind is None and depth == 0 and t.group(0).strip():
                break  # past the VALUES list (RETURNING, ON CONFLICT …)
            if depth < 0:
                break
    out.append(text[pos:])
    return "".join(out)


# -- bound parameters of secret columns -----------------------------------------------------------
_PLACEHOLDER = compile_later(
    r"%\((?P<name>\w+)\)s|(?P<pos>%s|\?)|\$(?P<num>\d+)|(?<![:\w]):(?P<colon>[A-Za-z_]\w*)"
)
_SCAN_LITERALS = compile_later(rf"{_SQL_STRING}|--[^\n]*|/\*.*?(?:\*/|\Z)", re.S)
_OPERAND_PLACEHOLDER = compile_later(r"\s*(%\(\w+\)s|%s|\?|\$\d+|:[A-Za-z_]\w*)")


def _placeholders(sql: str) -> dict[int, int | str]:
    """Where each bind placeholder of ``sql`` starts, and which parameter it takes.

    ``%s`` and ``?`` take the next positional parameter (0-based), ``$n`` parameter n-1,
    ``%(name)s`` and ``:name`` the named one. Placeholders inside literals and comments are not.
    """
    masked = _SCAN_LITERALS.sub(lambda m: " " * len(m.group(0)), sql)
    out: dict[int, int | str] = {}
    ordinal = 0
    for m in _PLACEHOLDER.finditer(masked):
        if m.group("pos"):
            out[m.start()] = ordinal
            ordinal += 1
        elif m.group("num"):
            out[m.start()] = int(m.group("num")) - 1
        else:
            out[m.start()] = m.group("name") or m.group("colon")
    return out


def secret_parameters(sql: str) -> set[int | str]:
    """The bind parameters of ``sql`` that a secret column takes (0-based positions or names).

    ``UPDATE "auth_user" SET "password" = %s WHERE "id" = %s`` → ``{0}``;
    ``WHERE "session_key" IN ($2, $3)`` → ``{1, 2}``; ``INSERT INTO "django_session"
    ("session_key", …) VALUES (%s, …)`` → ``{0}``.
    """
    slots = _placeholders(sql)
    if not slots:
        return set()
    found: set[int | str] = set()
    for m in _SQL_COLUMN.finditer(sql):
        if not is_secret_column(m.group("col"), _sql_table_before(sql, m.start())):
            continue
        pos, in_list = m.end(), m.group("op").endswith("(")
        while (ph := _OPERAND_PLACEHOLDER.match(sql, pos)) is not None:
            slot = slots.get(ph.start(1))
            if slot is not None:
                found.add(slot)
            pos = ph.end()
            comma = re.match(r"\s*,", sql[pos:])
            if not in_list or comma is None:
                break
            pos += comma.end()
    for m in _INSERT.finditer(sql):
        table = m.group("table").replace('"', "").replace("`", "")
        cols = [c.strip() for c in m.group("cols").split(",")]
        secret = {i for i, c in enumerate(cols) if is_secret_column(c, table)}
        if not secret:
            continue
        depth, index = 0, 0
        for t in re.finditer(
            r"\(|\)|,|%\(\w+\)s|%s|\?|\$\d+|:[A-Za-z_]\w*|[^(),%?$:]+|.", sql[m.end() :]
        ):
            tok = t.group(0)
            if tok == "(":
                depth += 1
                index = 0 if depth == 1 else index
            elif tok == ")":
                depth -= 1
                if depth < 0:
                    break
            elif tok == "," and depth == 1:
                index += 1
            elif (
                depth == 1
                and index in secret
                and (slot := slots.get(m.end() + t.start())) is not None
            ):
                found.add(slot)
            elif depth == 0 and tok.strip() and tok != ",":
                break
    return found


_PG_PARAMETER = compile_later(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")
_ITEM = compile_later(
    r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,()\[\]{}'"]*(?:\([^()]*\))?[^,()\[\]{}'"]*)\s*(,|$)"""
)


def _parameter_values(params: str) -> list[str] | dict[str, str] | None:
    """The values in a logged parameter list, as text: a JSON array or object, a Python tuple
    (Django's ``args=``), or PostgreSQL's ``$1 = '…', $2 = '…'``. None when unreadable."""
    text = params.strip()
    pg = _PG_PARAMETER.findall(text)
    if pg:
        out: dict[str, str] = {}
        for num, value in pg:
            out[str(int(num) - 1)] = value[1:-1].replace("''", "'") if value != "NULL" else ""
        return out
    if text[:1] in "[{":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list):
            return [v if isinstance(v, str) else json.dumps(v) for v in data]
        if isinstance(data, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if text[:1] in "([" and text[-1:] in ")]":
        inner, items, pos = text[1:-1], [], 0
        while pos < len(inner):
            m = _ITEM.match(inner, pos)
            if m is None or m.end() == pos:
                return None
            item = m.group(1).strip()
            items.append(item[1:-1] if item[:1] in "'\"" and item[-1:] == item[:1] else item)
            pos = m.end()
        return items
    return None


def scrub_parameters(sql: str, scrubbed_sql: str, params: str) -> str:
    """``params`` (the parameters logged with ``sql``) without the values of secret columns.

    The secret values are those the rules removed from ``sql`` (``"password" = '…'`` → the
    literal) and those bound to a secret column's placeholder (:func:`secret_parameters`).
    """
    values: set[str] = set()
    before = [m.group(0) for m in re.finditer(_SQL_STRING, sql)]
    after = [m.group(0) for m in re.finditer(_SQL_STRING, scrubbed_sql)]
    if len(before) == len(after):
        for a, b in zip(before, after, strict=True):
            if a != b and SECRET_PLACEHOLDER in b:
                body = a[a.index("'") + 1 :]
                values.add(body[:-1] if body.endswith("'") else body)
    slots = secret_parameters(sql)
    if slots:
        parsed = _parameter_values(params)
        if isinstance(parsed, list):
            values.update(parsed[i] for i in slots if isinstance(i, int) and i < len(parsed))
        elif isinstance(parsed, dict):
            values.update(parsed[str(k)] for k in slots if str(k) in parsed)
    for value in sorted(
        (v for v in values if len(v) >= 3 and v != SECRET_PLACEHOLDER), key=len, reverse=True
    ):
        for form in {value, value.replace("'", "''"), json.dumps(value)[1:-1], repr(value)[1:-1]}:
            params = params.replace(form, SECRET_PLACEHOLDER)
    return params


# -- key = value -------------------------------------------------------------------------------
_ASSIGNMENT_HEAD = compile_later(
    rf"""(?:{_SECRET_WORDS})(?P<kq>["'`]?)(?P<sep>\s*+(?:=>|=|:(?!:))\s*+)(?!\[secret\]|secret\])"""
)
_ASSIGNMENT_VALUE = compile_later(
    r"""(?P<q1>')(?P<v1>(?:[^'\\]|''|\\.)*+)(?P<e1>'|\Z)"""
    r"""|(?P<q2>")(?P<v2>(?:[^"\\]|\\.)*+)(?P<e2>"|\Z)"""
    r"""|(?P<v3>[^\s&;,()'"<>\]}|]+)"""
)


def _assignments(text: str) -> str:
    """``key=value`` (and ``key: value``, JSON, quoted SQL columns) whose key ends in a secret
    word: the value → [secret], its quotes kept.

    Anchored on the secret word (a fast search), then the key is read back to its start and
    the value forward, so any text, however large, is scanned once.
    """
    out: list[str] = []
    pos = 0
    for m in _ASSIGNMENT_HEAD.finditer(_folded(text)):
        if m.start() < pos:
            continue
        v = _ASSIGNMENT_VALUE.match(text, m.end())
        if v is None:
            continue
        key_quote = m.group("kq")
        if v.group("q1") is not None:
            value, quote, end = v.group("v1"), "'", v.group("e1")
        elif v.group("q2") is not None:
            value, quote, end = v.group("v2"), '"', v.group("e2")
        else:
            if key_quote in ('"', "`"):
                continue  # "password" = other_column: SQL, no value here
            value, quote, end = v.group("v3"), "", ""
        if _NOT_A_VALUE.match(value) or (quote and value.startswith("+")):
            continue  # a placeholder, or code: "… token: " + name
        out.append(text[pos : m.end()] + quote + SECRET_PLACEHOLDER + end)
        pos = v.end()
    out.append(text[pos:])
    return "".join(out)


#: where a token shape may start: not inside a longer base64 run (plotly's binary arrays,
#: ``"bdata":"…"``, whose "/" HTML-escapes to ``\u002f``), which is data, not a credential
_NOT_IN_BASE64 = r'(?<![A-Za-z0-9_+/=\\])(?<!"bdata":")'

# -- the rules, in order -----------------------------------------------------------------------
_B64URL = r"[A-Za-z0-9_-]"
_HASH_TAIL = r"[A-Za-z0-9$+/=.,_*-]*"

RULES: tuple[Rule, ...] = (
    Rule(
        "private_key_block",
        "secret",
        "PEM private keys (a GCP service-account private_key, an SSH or TLS key), whole block",
        _sub(
            r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
            SECRET_PLACEHOLDER,
            re.S,
        ),
        r"PRIVATE KEY-----",
    ),
    Rule(
        "django_password_hash",
        "secret",
        "Django password hashes: pbkdf2_sha256$…, argon2$…, bcrypt$…, bcrypt_sha256$…, scrypt$…,"
        " md5$…, sha1$…, crypt$… (unsalted_md5 and unsalted_sha1 are md5$$…/sha1$$…)",
        _sub(
            r"(?<![A-Za-z0-9_])(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt"
            r"|unsalted_md5|unsalted_sha1|md5|sha1|crypt)\$" + _HASH_TAIL,
            SECRET_PLACEHOLDER,
        ),
        r"(?i:pbkdf2_sha[0-9]+|argon2|bcrypt(?:_sha256)?|scrypt|md5|sha1|crypt)\$",
    ),
    Rule(
        "modular_crypt_hash",
        "secret",
        "raw bcrypt ($2b$12$…), argon2 ($argon2id$v=19$…), sha-crypt ($6$…) and yescrypt hashes",
        _sub(
            r"\$(?:2[abxy]?\$\d{2}\$[./A-Za-z0-9]{8,}|argon2(?:id|i|d)\$"
            + _HASH_TAIL
            + r"|[56]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{16,}|y\$[./A-Za-z0-9$]{16,})",
            SECRET_PLACEHOLDER,
        ),
        r"\$(?:2[abxy]?\$[0-9][0-9]\$|argon2|[56]\$|y\$)",
    ),
    Rule(
        "url_password",
        "secret",
        "the password of a URL or DSN: postgres://user:pw@, mysql://, redis://:pw@, amqp://…",
        _sub(
            r"(?i)(?<![a-z0-9+.-])(?P<head>[a-z][a-z0-9+.-]*+://[^\s:/@'\"]*+:)(?P<pw>[^\s@/'\"]*+)(?P<at>@)",
            lambda m: (
                m.group(0)
                if not m.group("pw")
                else m.group("head") + SECRET_PLACEHOLDER + m.group("at")
            ),
        ),
        r"://[^\s:/@]*:",
    ),
    Rule(
        "authorization_header",
        "secret",
        "the value of Authorization, Proxy-Authorization, X-Api-Key and similar headers,"
        " as a header line, a JSON attribute or a trace tag",
        _sub(
            r"""(?<![\w.-])(?P<key>[\w.-]++)"""
            r"""(?P<sep>(?P<kq>["']?)\s*[:=]\s*\[?\s*(?P<vq>["']?))"""
            r"""(?P<v>(?:[A-Za-z][A-Za-z0-9-]*[ \t]+)?[^\s"'\],;\[][^\s"'\],;]*)(?P<end>)""",
            _header_value(r"(?i)(?:authorization|x-api-key|x-auth-token|api-token)$"),
        ),
        r"(?i:authorization|x-api-key|x-auth-token|api-token)",
    ),
    Rule(
        "cookie_header",
        "secret",
        "the value of Cookie and Set-Cookie headers (session, CSRF and any other cookie)",
        _sub(
            r"""(?<![\w.-])(?P<key>[\w.-]++)"""
            r"""(?P<sep>(?P<kq>["']?)\s*[:=]\s*\[?\s*(?P<vq>["']?))"""
            r"""(?P<v>[^"'\r\n\]\[=][^"'\r\n\]=]*=[^"'\r\n\]]*)(?P<end>)""",
            _header_value(r"(?i)(?:set-cookie|cookie)$"),
        ),
        r"(?i:cookie)",
    ),
    Rule(
        "aws_access_key_id",
        "secret",
        "AWS access key ids (AKIA…, ASIA… and the other IAM id prefixes)",
        _sub(
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[0-9A-Z]{16}\b",
            SECRET_PLACEHOLDER,
        ),
        r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA|BIA|CCA)[0-9A-Z]{16}",
    ),
    Rule(
        "gcp_api_key",
        "secret",
        "Google API keys (AIza…)",
        _sub(r"\bAIza[0-9A-Za-z_-]{30,}", SECRET_PLACEHOLDER),
        r"AIza[0-9A-Za-z_-]{30}",
    ),
    Rule(
        "vendor_token",
        "secret",
        "API tokens with a vendor prefix: GitHub (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_),"
        " GitLab (glpat-), Slack (xoxb-, xoxp-, xapp-…), Stripe (sk_live_, rk_live_, sk_test_,"
        " whsec_), SendGrid (SG.…), npm (npm_), OpenAI-style (sk-…)",
        _sub(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
            r"|xox[abeoprs]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{16,}"
            r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|npm_[A-Za-z0-9]{30,}"
            r"|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,})",
            SECRET_PLACEHOLDER,
        ),
        r"gh[pousr]_|github_pat_|glpat-|xox[abeoprs]-|xapp-|(?:sk|rk|pk)_(?:live|test)_|whsec_|SG\.|npm_|sk-",
    ),
    Rule(
        "json_web_token",
        "secret",
        "JSON web tokens (eyJ….eyJ….…), also cut short after the payload",
        _sub(
            rf"\beyJ{_B64URL}{{4,}}\.eyJ{_B64URL}{{2,}}(?:\.{_B64URL}*)?|\beyJ{_B64URL}{{10,}}\.{_B64URL}{{10,}}\.{_B64URL}{{10,}}",
            SECRET_PLACEHOLDER,
        ),
        r"eyJ",
    ),
    Rule(
        "bearer_credentials",
        "secret",
        "credentials after an auth scheme: Bearer …, Basic …, Token …",
        _shaped(
            r"(?<=\b[Bb]earer )[A-Za-z0-9._~+/=-]{8,}|(?<=\bBasic )[A-Za-z0-9+/=]{8,}"
            r"|(?<=\bToken )[A-Za-z0-9._~+/=-]{16,}",
            lambda tok: (
                any(c.isdigit() or c in "._~+/=-" for c in tok) or any(c.isupper() for c in tok[1:])
            ),
        ),
        r"[Bb]earer |Basic |Token ",
    ),
    Rule(
        "sql_role_password",
        "secret",
        "passwords in SQL: ALTER/CREATE ROLE … PASSWORD '…', IDENTIFIED BY '…', PASSWORD('…')",
        _sub(
            r"(?i)(?<![\"'`.\w])(?:(?P<pw>password(?:\s+|\s*\(\s*))(?P<lit1>(?:[EeNn]|_[A-Za-z0-9]+)?'(?:[^'\\]|''|\\.)*(?:'|\Z))"
            r"|(?P<by>identified\s+(?:with\s+\w+\s+)?by(?:\s+password)?\s*)(?P<lit2>'(?:[^'\\]|''|\\.)*(?:'|\Z)|\"[^\"]*(?:\"|\Z)))",
            lambda m: (
                m.group("pw") + _secret_literal(m.group("lit1"))
                if m.group("pw")
                else m.group("by")
                + (
                    _secret_literal(m.group("lit2"))
                    if m.group("lit2").startswith("'")
                    else f'"{SECRET_PLACEHOLDER}"'
                )
            ),
        ),
        r"(?i:password\s*\(?\s*(?:[en]|_[a-z0-9]+)?'|identified)",
    ),
    Rule(
        "secret_assignment",
        "secret",
        "key=value, key: value and JSON forms whose key names a secret — password=, passwd,"
        " secret, token, api_key, session=, sessionid=, csrftoken, aws_secret_access_key=,"
        " private_key, X-Amz-Signature… (libpq keyword strings, settings, query strings, SQL"
        " `SET \"password\" = '…'`); quoted values keep their quotes",
        _assignments,
        rf"(?i:{_SECRET_WORDS})[\"'`]?\s*(?:=|:)",
    ),
    Rule(
        "query_string_code",
        "secret",
        "one-time codes and keys in query strings: ?code=, &key=, &sig= (OAuth, signed URLs)",
        _sub(
            r"(?i)(?P<key>[?&;](?:code|key|sig|otp|ticket)=)(?!\[secret\]|secret\])(?P<v>[^&\s#\"'<>]+)(?P<end>)",
            _keep_groups("key", "end"),
        ),
        r"(?i:[?&;](?:code|key|sig|otp|ticket)=)",
    ),
    Rule(
        "sql_secret_column",
        "secret",
        "SQL values compared with a secret column: \"password\" = '…', \"session_key\" IN ('…'),"
        " \"authtoken_token\".\"key\" = '…', … LIKE '…'",
        _secret_operands,
        rf"(?i:(?:{_SECRET_COLUMN_WORDS}|key)[\"`]?\s*(?:=|<>|!=|i?like|in))",
    ),
    Rule(
        "sql_insert_secret_column",
        "secret",
        'SQL INSERT values in a secret column\'s position: INSERT INTO "django_session"'
        " (\"session_key\", …) VALUES ('…', …)",
        _insert_values,
        rf"(?i:insert\s[^(]*\([^)]*(?:{_SECRET_COLUMN_WORDS}|key))",
    ),
    Rule(
        "django_reset_token",
        "secret",
        "Django password-reset and e-mail confirmation tokens in URL paths (/reset/MQ/<token>/)",
        _sub(
            r"(?<=/)[0-9a-z]{1,13}-(?:[0-9a-f]{32}|[0-9a-f]{20})(?=[/?#\s\"']|\Z)",
            SECRET_PLACEHOLDER,
        ),
        r"/[0-9a-z]+-[0-9a-f]{20}",
    ),
    Rule(
        "session_key_shape",
        "secret",
        "Django session keys by shape: 32 lowercase letters and digits, not hexadecimal",
        _shaped(
            rf"{_NOT_IN_BASE64}[a-z0-9]{{32}}(?![A-Za-z0-9_+/=\\])",
            lambda t: (
                re.search("[g-z]", t) is not None and _random_looking(t, upper=False, distinct=0.4)
            ),
        ),
        r"[a-z0-9]{32}",
    ),
    Rule(
        "random_token_shape",
        "secret",
        "CSRF tokens and API keys by shape: 32 to 128 letters and digits of mixed case",
        _shaped(
            rf"{_NOT_IN_BASE64}[A-Za-z0-9]{{32,128}}(?![A-Za-z0-9_+/=\\])",
            lambda t: _random_looking(t, upper=True, distinct=0.45 if len(t) < 64 else 0.35),
        ),
        r"[A-Za-z0-9]{32}",
    ),
    Rule(
        "aws_secret_key_shape",
        "secret",
        "AWS secret access keys by shape: 40 base64 characters of mixed case and digits",
        _shaped(
            rf"{_NOT_IN_BASE64}[A-Za-z0-9/+]{{40}}(?![A-Za-z0-9_+/=\\])",
            lambda t: (
                t.count("/") <= 3 and not t.startswith("/") and _random_looking(t, upper=True)
            ),
        ),
        r"[A-Za-z0-9/+]{40}",
    ),
    Rule(
        "email",
        "literal",
        "e-mail addresses (a literal: shown with --show-literals)",
        _sub(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            EMAIL_PLACEHOLDER,
        ),
        r"@",
    ),
)

_SECRET_RULES = tuple(r for r in RULES if r.kind == "secret")
_LITERAL_RULES = tuple(r for r in RULES if r.kind == "literal")
#: RE2-compatible: where any secret rule could fire (the pre-filter of :func:`scrub_frame`)
SECRET_TRIGGER = "|".join(f"(?:{r.trigger})" for r in _SECRET_RULES)


def rule(name: str) -> Rule:
    """The rule called ``name`` (an unknown name is a ``KeyError`` listing the names)."""
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(f"no redaction rule {name!r}; rules: {', '.join(r.name for r in RULES)}")


# -- text and SQL --------------------------------------------------------------------------------
def scrub_secrets(text: str, values: Iterable[str] = ()) -> str:
    """Replace every secret: the exact ``values`` (e.g. a DSN from the environment), then the
    secret rules of :data:`RULES` in order."""
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, SECRET_PLACEHOLDER)
    for r in _SECRET_RULES:
        text = r.scrub(text)
    return text


def scrub_values(text: str, values: Iterable[str]) -> str:
    """Replace only the exact ``values`` (a DSN from the environment): for whole pages and
    documents, whose data was redacted by the rules before it was laid out."""
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, SECRET_PLACEHOLDER)
    return text


def redact_text(text: str, *, literals: bool = True, secrets: Iterable[str] = ()) -> str:
    """Free text (messages, endpoints, file names): secrets always, e-mails when ``literals``."""
    text = scrub_secrets(text, secrets)
    if literals:
        for r in _LITERAL_RULES:
            text = r.scrub(text)
    return text


_IDENT = {"postgres": r'"(?:[^"]|"")*"', "mysql": r"`(?:[^`]|``)*`"}
_STRING = {
    "postgres": (
        r"[EeUu]&?'(?:[^'\\]|''|\\.)*'|[BbXxNn]?'(?:[^']|'')*'"
        r"|\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$"
        # a statement cut off inside a string (truncated logs) must not leak the rest
        r"|'[^']*\Z"
    ),
    "mysql": (
        r"(?:_[A-Za-z0-9]+)?[BbXxNn]?'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\""
        r"|'[^']*\Z|\"[^\"]*\Z"
    ),
}
_COMMENT = r"--[^\n]*|/\*.*?(?:\*/|\Z)"
_NUMBER = r"(?<![\w$.?])[-+]?(?:0[xX][0-9A-Fa-f]+|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![\w])"
# a sign is only part of a number after an operator, a bracket, a comma or a keyword
_SIGNED = compile_later(r"^[-+]")


def _sql_scanner(dialect: str) -> re.Pattern[str]:
    ident = _IDENT.get(dialect, _IDENT["postgres"])
    string = _STRING.get(dialect, _STRING["postgres"])
    return re.compile(
        rf"(?P<ident>{ident})|(?P<comment>{_COMMENT})|(?P<string>{string})|(?P<number>{_NUMBER})",
        re.S,
    )


_SCANNERS = {d: _sql_scanner(d) for d in ("postgres", "mysql")}


def redact_sql(
    sql: str, dialect: str = "postgres", *, literals: bool = True, secrets: Iterable[str] = ()
) -> str:
    """A statement with its literal values replaced by ``?`` (identifiers and layout kept).

    With ``literals=False`` only secrets are removed (``--show-literals``).
    """
    secrets = tuple(secrets)
    if not literals:
        return scrub_secrets(sql, secrets)
    scanner = _SCANNERS.get(dialect, _SCANNERS["postgres"])

    def replace(m: re.Match[str]) -> str:
        if m.group("ident") is not None:
            return m.group(0)
        if m.group("comment") is not None:
            return redact_text(m.group(0), literals=True, secrets=secrets)
        number = m.group("number")
        if number is not None and _SIGNED.match(number):
            before = m.string[: m.start()].rstrip()
            # "a-1" or "x - 1": the sign is an operator, keep it
            if before and (before[-1].isalnum() or before[-1] in '_)"`]'):
                return number[0] + LITERAL_PLACEHOLDER
        return LITERAL_PLACEHOLDER

    return redact_text(scanner.sub(replace, sql), literals=True, secrets=secrets)


# -- frames ---------------------------------------------------------------------------------------
#: frame columns never scrubbed: ids auditkit validates or derives (hex, numbers, file names)
_ID_COLUMN = compile_later(
    r"(?i)^(?!session_id$).*_id$|^(?:fingerprint|source_file|source_format)$"
)


def scrub_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every secret in its text columns replaced (in place; also returned).

    A column named like a secret (``session_key``, ``csrftoken``, ``password``) loses every
    value; other text columns go through the secret rules. Only cells matching one of the
    rules' triggers (:data:`SECRET_TRIGGER`, one compiled RE2 pass over all text columns) are
    scrubbed in Python, so a large query log pays the rules on the few statements that need
    them. Id columns (``trace_id``, ``fingerprint_id``…) are left alone.
    """
    text_columns = []
    for col in df.columns:
        series = df[col]
        if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
            continue
        name = str(col)
        if is_secret_column(name):
            df[col] = series.where(series.isna(), SECRET_PLACEHOLDER)
        elif not _ID_COLUMN.match(name) and len(series):
            text_columns.append(col)
    if not text_columns:
        return df
    hits = _trigger_hits([df[c] for c in text_columns])
    if "sql" in text_columns and "params" in df.columns:
        # before "sql" is scrubbed: the secrets found in a statement leave its parameters too
        _scrub_parameter_column(df, hits[text_columns.index("sql")])
    for col, mask in zip(text_columns, hits, strict=True):
        if not mask.any():
            continue
        series = df[col]
        updated = series.copy()
        updated[mask] = [scrub_secrets(v) for v in series[mask]]
        df[col] = updated.astype(series.dtype)
    return df


def _scrub_parameter_column(df: pd.DataFrame, mask: np.ndarray) -> None:
    params = df["params"]
    rows = np.flatnonzero(mask & params.notna().to_numpy())
    if not len(rows):
        return
    sql = df["sql"].to_numpy(dtype=object)
    values = params.to_numpy(dtype=object).copy()
    for i in rows:
        text = str(sql[i])
        values[i] = scrub_parameters(text, scrub_secrets(text), str(values[i]))
    df["params"] = pd.Series(values, index=params.index, name=params.name).astype(params.dtype)


def _trigger_hits(columns: list[pd.Series]) -> list[np.ndarray]:
    """Per column, which cells match :data:`SECRET_TRIGGER`: one Arrow RE2 pass over them all.

    One call compiles the (long) pattern once, whatever the number of columns.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays: list[pa.Array] = []
    for series in columns:
        arr: pa.Array | pa.ChunkedArray | None = None
        if series.dtype != object:
            try:
                arr = pa.array(series.array)
            except (pa.ArrowException, TypeError, ValueError):
                arr = None
        if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            # mixed content (lists, numbers): only the string cells are text
            arr = pa.array(
                [v if isinstance(v, str) else None for v in series], type=pa.large_string()
            )
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        arrays.extend(c.cast(pa.large_string()) for c in chunks)
    # one contiguous array: RE2 builds its automaton per batch, so one batch is cheapest
    matched = pc.match_substring_regex(pa.concat_arrays(arrays), SECRET_TRIGGER)
    flat = np.asarray(matched.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    out, at = [], 0
    for series in columns:
        out.append(flat[at : at + len(series)])
        at += len(series)
    return out


# -- the policy of one run -------------------------------------------------------------------------
#: evidence and metric keys whose values are SQL (redacted as SQL, not as text)
SQL_KEYS = frozenset(
    {
        "sql",
        "sample_sql",
        "statement",
        "query",
        "excerpt",
        "filter",
        "index_cond",
        "sort_key",
        "join_filter",
        "recheck_cond",
        "hash_cond",
        "expression",
        "fingerprint",
        "db.statement",
        "db.query.text",
    }
)
#: keys whose values are bound parameters: dropped entirely unless literals are shown
PARAM_KEYS = frozenset({"params", "args", "parameters", "bind", "binds"})


@dataclass(frozen=True)
class Redactor:
    """The redaction policy of one run: literals on or off, and the secret values to remove.

    Everything that puts client data on a page goes through one of these methods.
    """

    show_literals: bool = False
    secrets: tuple[str, ...] = ()
    dialect: str = "postgres"

    @classmethod
    def from_env(
        cls, show_literals: bool = False, env_names: Iterable[str | None] = ()
    ) -> Redactor:
        """A redactor that also removes the values of the named environment variables.

        For a DSN value the password part is added on its own too, so a log line quoting the
        same password in another form is still caught.
        """
        values: list[str] = []
        for name in env_names:
            value = os.environ.get(name) if name else None
            if value and len(value) >= 4:
                values.append(value)
                m = re.search(r"://[^\s:/@]*:([^\s@/]+)@", value) or re.search(
                    r"(?i)\bpassword\s*=\s*'?([^\s']+)", value
                )
                if m and len(m.group(1)) >= 4:
                    values.append(m.group(1))
        return cls(show_literals, tuple(values))

    @property
    def literals(self) -> bool:
        """True when literal values are replaced (the default)."""
        return not self.show_literals

    def sql(self, sql: object) -> str:
        """A statement for display (``None``/NA → ``''``)."""
        if sql is None or _isna(sql):
            return ""
        return redact_sql(str(sql), self.dialect, literals=self.literals, secrets=self.secrets)

    def text(self, text: object) -> str:
        """Free text for display (``None``/NA → ``''``)."""
        if text is None or _isna(text):
            return ""
        return redact_text(str(text), literals=self.literals, secrets=self.secrets)

    def value(self, value: Any, key: str | None = None) -> Any:
        """A JSON-like value (evidence items, metrics) with every string redacted by its key.

        A value under a key naming a secret (``password``, ``session_key``…) is removed whole.
        """
        k = (key or "").lower()
        if isinstance(value, str):
            if k and is_secret_column(k):
                return SECRET_PLACEHOLDER
            if k in PARAM_KEYS:
                return self.text(value) if self.show_literals else "[redacted]"
            return self.sql(value) if k in SQL_KEYS else self.text(value)
        if isinstance(value, Mapping):
            return {str(k2): self.value(v, str(k2)) for k2, v in value.items()}
        if isinstance(value, (list, tuple)):
            if k in PARAM_KEYS and not self.show_literals:
                return "[redacted]"
            return [self.value(v, key) for v in value]
        return value

    def finding(self, f: Finding) -> Finding:
        """A copy of ``f`` fit for a report (see the module docstring for what changes).

        Recommendations keep their SQL literals (an index predicate must stay usable) but lose
        secrets and e-mail addresses like any text.
        """
        s = f.subject
        subject = Subject(
            endpoint=self.text(s.endpoint) if s.endpoint else None,
            table=self.text(s.table) if s.table else None,
            columns=tuple(self.text(c) for c in s.columns) if s.columns else s.columns,
            index=self.text(s.index) if s.index else None,
            expression=self.sql(s.expression) if s.expression else None,
            fingerprint=self.sql(s.fingerprint) if s.fingerprint else None,
            fingerprint_id=s.fingerprint_id,
            file=self.text(s.file) if s.file else None,
        )
        rec = f.recommendation
        if rec is not None:
            keep = Redactor(True, self.secrets, self.dialect) if self.literals else self
            rec = Recommendation(
                summary=self.text(rec.summary),
                sql=keep.text(rec.sql) if rec.sql else None,
                django=keep.text(rec.django) if rec.django else None,
                migration=keep.text(rec.migration) if rec.migration else None,
            )
        ev = f.evidence
        evidence = Evidence(
            ev.strength,
            tuple(self.value(dict(i)) for i in ev.items),
            self.text(ev.note) if ev.note else None,
            tuple(self.value(dict(s)) for s in ev.symptoms),
        )
        impact = f.impact
        if impact is not None and impact.note:
            impact = dataclasses.replace(impact, note=self.text(impact.note))
        metrics = {k: self.value(v, k) if isinstance(v, str) else v for k, v in f.metrics.items()}
        return dataclasses.replace(
            f,
            title=self.text(f.title),
            summary=self.text(f.summary),
            subject=subject,
            metrics=metrics,
            recommendation=rec,
            evidence=evidence,
            impact=impact,
            action=self.text(f.action) if f.action else None,
        )

    def frame(
        self, df: pd.DataFrame, sql: Iterable[str] = (), text: Iterable[str] = ()
    ) -> pd.DataFrame:
        """A copy of ``df`` with the ``sql`` columns redacted as SQL and ``text`` columns as text."""
        out = df.copy()
        for col in sql:
            if col in out:
                out[col] = out[col].map(self.sql).astype("string")
        for col in text:
            if col in out:
                out[col] = out[col].map(self.text).astype("string")
        return out


def _isna(value: object) -> bool:
    if isinstance(value, str):  # the usual case, answered without pandas (a digest defers it)
        return False
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
