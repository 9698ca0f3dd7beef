"""auditkit: Django performance audits from logs, statistics, plans and traces.

Load a client's files into canonical pandas frames, run checks that return findings, and
render parameterised notebooks into offline HTML reports. The public API is listed in
``__all__``; everything else is private.

    >>> import auditkit
    >>> auditkit.fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3)")
    'select * from t where id in (...)'
"""

from __future__ import annotations

from auditkit import loaders as _loaders  # noqa: F401  (registers every format)
from auditkit.client import ClientData, InputFile, load_client
from auditkit.config import AuditConfig, load_config
from auditkit.digest import Digest, digest
from auditkit.errors import (
    AuditkitError,
    CollectorError,
    ConfigError,
    InputError,
    NotebookError,
    NothingParsedError,
    RunError,
    SchemaError,
    UnknownFormatError,
)
from auditkit.findings import (
    CHECKS,
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    findings_frame,
    load_findings,
)
from auditkit.load import load
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import all_loaders
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.profile import query_profile
from auditkit.sql.fingerprint import fingerprint, fingerprint_id, fingerprint_many

__version__ = "0.1.0"

__all__ = [
    "AuditConfig",
    "AuditkitError",
    "CHECKS",
    "ClientData",
    "CollectorError",
    "ConfigError",
    "Digest",
    "Evidence",
    "EvidenceStrength",
    "Finding",
    "InputError",
    "InputFile",
    "LoadResult",
    "NotebookError",
    "NothingParsedError",
    "ParseReport",
    "Recommendation",
    "RunError",
    "SchemaError",
    "Severity",
    "Subject",
    "UnknownFormatError",
    "__version__",
    "all_loaders",
    "detect",
    "digest",
    "findings_frame",
    "fingerprint",
    "fingerprint_id",
    "fingerprint_many",
    "load",
    "load_client",
    "load_config",
    "load_findings",
    "query_profile",
]
