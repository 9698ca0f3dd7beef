"""The report layer: figures, tables, redaction, HTML fragments and page rendering.

Modules, one concept each:

* :mod:`~auditkit.report.redact` — what a report may show (literals, secrets);
* :mod:`~auditkit.report.html` — findings and notes as escaped HTML fragments;
* :mod:`~auditkit.report.tables` — display-ready, redacted tables;
* :mod:`~auditkit.report.figures` — plotly figure builders with units on every axis;
* :mod:`~auditkit.report.notebook` — the chapter object the audit notebooks call;
* :mod:`~auditkit.report.render` — executed notebooks to offline HTML pages.

Nothing here decides what is a problem: that is the checks' job (:mod:`auditkit.checks`).
"""

from __future__ import annotations

import sys as _sys

# jsonschema (imported by nbformat, which papermill, nbconvert and plotly's renderers import)
# loads the optional ``rfc3987_syntax`` IRI checker when it is installed — jupyterlab's
# dependencies install it — and that module compiles 39 lark grammars at import: about 1.8 s
# in every process that renders or executes a report (the runner and each notebook kernel).
# No report ever validates an IRI, so a process that imports the report layer before
# jsonschema goes without that one format checker (jsonschema then leaves "iri" formats
# unchecked, as it does whenever the package is absent).
if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
