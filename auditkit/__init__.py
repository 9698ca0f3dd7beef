"""auditkit: Django performance audits from logs, statistics, plans and traces.

Load a client's files into canonical pandas frames, run checks that return findings, and
render parameterised notebooks into offline HTML reports. The public API is listed in
``__all__``; everything else is private.

    >>> import auditkit
    >>> auditkit.fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3)")
    'select * from t where id in (...)'
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from auditkit.errors import (
    AuditkitError,
    CollectorError,
    ConfigError,
    InputError,
    MappingError,
    NotebookError,
    NothingParsedError,
    RunError,
    SchemaError,
    UnknownFormatError,
)

__version__ = "0.1.0"

#: public names and the module each comes from, imported on first access: ``import auditkit``
#: and ``auditkit --help`` cost no pandas (and no loader registration) until a name is used
_LAZY = {
    "Audit": "auditkit.auditing",
    "audit": "auditkit.auditing",
    "CHAPTERS": "auditkit.checks",
    "REGISTRY": "auditkit.checks",
    "ClientData": "auditkit.client",
    "InputFile": "auditkit.client",
    "load_client": "auditkit.client",
    "AuditConfig": "auditkit.config",
    "load_config": "auditkit.config",
    "status_delta": "auditkit.counters",
    "Digest": "auditkit.digest",
    "digest": "auditkit.digest",
    "CHECKS": "auditkit.findings",
    "Evidence": "auditkit.findings",
    "EvidenceStrength": "auditkit.findings",
    "Finding": "auditkit.findings",
    "Impact": "auditkit.findings",
    "Recommendation": "auditkit.findings",
    "Severity": "auditkit.findings",
    "Subject": "auditkit.findings",
    "findings_frame": "auditkit.findings",
    "load_findings": "auditkit.findings",
    "load": "auditkit.load",
    "detect": "auditkit.loaders.detect",
    "aggregate_pgss": "auditkit.loaders.pg_stat_statements",
    "pgss_delta": "auditkit.loaders.pg_stat_statements",
    "all_loaders": "auditkit.loaders.registry",
    "LoadResult": "auditkit.loaders.result",
    "ParseReport": "auditkit.loaders.result",
    "compare_plans": "auditkit.plans",
    "plan_summary": "auditkit.plans",
    "query_profile": "auditkit.profile",
    "attach_requests": "auditkit.requests",
    "infer_requests": "auditkit.requests",
    "fingerprint": "auditkit.sql.fingerprint",
    "fingerprint_id": "auditkit.sql.fingerprint",
    "fingerprint_many": "auditkit.sql.fingerprint",
    "collect_memcached": "auditkit.collect.memcached",
    "collect_postgres": "auditkit.collect.postgres",
    "collect_redis": "auditkit.collect.redis",
    "run_audit": "auditkit.runner",
    "run_batch": "auditkit.runner",
}

if TYPE_CHECKING:  # the names, for type checkers and editors
    from auditkit.auditing import Audit, audit
    from auditkit.checks import CHAPTERS, REGISTRY
    from auditkit.client import ClientData, InputFile, load_client
    from auditkit.collect.memcached import collect_memcached
    from auditkit.collect.postgres import collect_postgres
    from auditkit.collect.redis import collect_redis
    from auditkit.config import AuditConfig, load_config
    from auditkit.counters import status_delta
    from auditkit.digest import Digest, digest
    from auditkit.findings import (
        CHECKS,
        Evidence,
        EvidenceStrength,
        Finding,
        Impact,
        Recommendation,
        Severity,
        Subject,
        findings_frame,
        load_findings,
    )
    from auditkit.load import load
    from auditkit.loaders.detect import detect
    from auditkit.loaders.pg_stat_statements import aggregate_pgss, pgss_delta
    from auditkit.loaders.registry import all_loaders
    from auditkit.loaders.result import LoadResult, ParseReport
    from auditkit.plans import compare_plans, plan_summary
    from auditkit.profile import query_profile
    from auditkit.requests import attach_requests, infer_requests
    from auditkit.runner import run_audit, run_batch
    from auditkit.sql.fingerprint import fingerprint, fingerprint_id, fingerprint_many


def __getattr__(name: str) -> object:
    """Import the lazily exported names of :data:`_LAZY` on first access."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'auditkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """The package: ``auditkit.digest`` and ``auditkit.load`` stay the functions.

    Importing a submodule binds it to its package's attribute of the same name; two public
    functions share their module's name, and imports are lazy here, so that binding would
    replace the function with the module whenever the submodule is imported first.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            return  # resolved by __getattr__ to the function the module defines
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "Audit",
    "AuditConfig",
    "AuditkitError",
    "CHAPTERS",
    "CHECKS",
    "ClientData",
    "CollectorError",
    "ConfigError",
    "Digest",
    "Evidence",
    "EvidenceStrength",
    "Finding",
    "Impact",
    "InputError",
    "InputFile",
    "LoadResult",
    "MappingError",
    "NotebookError",
    "NothingParsedError",
    "ParseReport",
    "REGISTRY",
    "Recommendation",
    "RunError",
    "SchemaError",
    "Severity",
    "Subject",
    "UnknownFormatError",
    "__version__",
    "aggregate_pgss",
    "all_loaders",
    "attach_requests",
    "audit",
    "collect_memcached",
    "collect_postgres",
    "collect_redis",
    "compare_plans",
    "detect",
    "digest",
    "findings_frame",
    "fingerprint",
    "fingerprint_id",
    "fingerprint_many",
    "infer_requests",
    "load",
    "load_client",
    "load_config",
    "load_findings",
    "pgss_delta",
    "plan_summary",
    "query_profile",
    "run_audit",
    "run_batch",
    "status_delta",
]
