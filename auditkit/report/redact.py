"""Redaction for the report layer: :mod:`auditkit.redact` under its historical name.

Redaction is decided in one module, :mod:`auditkit.redact` (one ordered list of named rules,
used by the loaders' boundary as much as by the pages); this module re-exports it so
``from auditkit.report.redact import Redactor`` keeps working.
"""

from __future__ import annotations

from auditkit.redact import (
    EMAIL_PLACEHOLDER,
    LITERAL_PLACEHOLDER,
    PARAM_KEYS,
    RULES,
    SECRET_PLACEHOLDER,
    SQL_KEYS,
    Redactor,
    Rule,
    is_secret_column,
    redact_sql,
    redact_text,
    rule,
    scrub_frame,
    scrub_parameters,
    scrub_secrets,
    scrub_values,
    secret_parameters,
)

__all__ = [
    "EMAIL_PLACEHOLDER",
    "LITERAL_PLACEHOLDER",
    "PARAM_KEYS",
    "RULES",
    "SECRET_PLACEHOLDER",
    "SQL_KEYS",
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
