"""Redaction: what a report may show of the client's data.

Two kinds of sensitive text are treated differently:

* **Literals** — values in SQL statements (``'jane@acme.test'``, ``42``, ``E'…'``,
  ``$$…$$``) and e-mail addresses anywhere. Replaced by placeholders (``?``, ``[email]``)
  *by default*; a run with ``show_literals=True`` (``--show-literals``) keeps them.
* **Secrets** — passwords in URLs and DSNs (``postgres://u:pw@h``, ``password=pw``),
  ``PASSWORD '…'`` in SQL, bearer tokens, well-known API-token shapes, and the exact values of
  environment variables a run names (a DSN taken from ``$AUDITKIT_DSN``). Replaced by
  ``[secret]`` *always*; no setting shows them.

SQL redaction follows the scanning rules of :mod:`auditkit.sql.fingerprint` — quoted
identifiers are kept, strings, numbers and dollar-quoted bodies become ``?``, bind
placeholders (``%s``, ``$1``) stay — but keeps the statement's case and layout, so a redacted
statement still reads like the original. A test holds the two to the same fingerprint.

Example::

    >>> redact_sql("SELECT * FROM \\"auth_user\\" WHERE email = 'a@b.org' AND id = 7")
    'SELECT * FROM "auth_user" WHERE email = ? AND id = ?'
    >>> redact_text("connect postgres://app:hunter2@db/prod as ann@example.com")
    'connect postgres://app:[secret]@db/prod as [email]'
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditkit.findings import Evidence, Finding, Recommendation, Subject

__all__ = [
    "EMAIL_PLACEHOLDER",
    "LITERAL_PLACEHOLDER",
    "SECRET_PLACEHOLDER",
    "Redactor",
    "redact_sql",
    "redact_text",
    "scrub_secrets",
]

LITERAL_PLACEHOLDER = "?"
EMAIL_PLACEHOLDER = "[email]"
SECRET_PLACEHOLDER = "[secret]"

# -- SQL literals (one left-to-right scan, like the fingerprinter) ----------------------------
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
_SIGNED = re.compile(r"^[-+]")


def _sql_scanner(dialect: str) -> re.Pattern[str]:
    ident = _IDENT.get(dialect, _IDENT["postgres"])
    string = _STRING.get(dialect, _STRING["postgres"])
    return re.compile(
        rf"(?P<ident>{ident})|(?P<comment>{_COMMENT})|(?P<string>{string})|(?P<number>{_NUMBER})",
        re.S,
    )


_SCANNERS = {d: _sql_scanner(d) for d in ("postgres", "mysql")}

# -- free text ---------------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SECRET_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*):[^\s@/'\"]*@"),
        rf"\1:{SECRET_PLACEHOLDER}@",
    ),
    # libpq key=value and similar settings: password=…, token: …, api_key=…
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|secret[_-]?key|token|access[_-]?token|api[_-]?key"
            r"|access[_-]?key|auth[_-]?token|client[_-]?secret)(\s*[=:]\s*)"
            r"(?:'[^']*'|\"[^\"]*\"|[^\s&;,)]+)"
        ),
        rf"\1\2{SECRET_PLACEHOLDER}",
    ),
    # ALTER/CREATE ROLE … PASSWORD '…'
    (
        re.compile(r"(?i)\b(password)\s+(?:E?'(?:[^']|'')*'|\"[^\"]*\")"),
        rf"\1 {SECRET_PLACEHOLDER}",
    ),
    # Authorization headers
    (
        re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1 {SECRET_PLACEHOLDER}",
    ),
    # JSON web tokens and common API-token shapes
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
        SECRET_PLACEHOLDER,
    ),
    (
        re.compile(
            r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
        ),
        SECRET_PLACEHOLDER,
    ),
)

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


def scrub_secrets(text: str, values: Iterable[str] = ()) -> str:
    """Replace passwords, tokens and the exact ``values`` (e.g. a DSN from the environment)."""
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, SECRET_PLACEHOLDER)
    for pattern, repl in _SECRET_RULES:
        text = pattern.sub(repl, text)
    return text


def redact_text(text: str, *, literals: bool = True, secrets: Iterable[str] = ()) -> str:
    """Free text (messages, endpoints, file names): secrets always, e-mails when ``literals``."""
    text = scrub_secrets(text, secrets)
    if literals:
        text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    return text


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
        """A JSON-like value (evidence items, metrics) with every string redacted by its key."""
        if isinstance(value, str):
            k = (key or "").lower()
            if k in PARAM_KEYS:
                return self.text(value) if self.show_literals else "[redacted]"
            return self.sql(value) if k in SQL_KEYS else self.text(value)
        if isinstance(value, Mapping):
            return {str(k): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            if (key or "").lower() in PARAM_KEYS and not self.show_literals:
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
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
