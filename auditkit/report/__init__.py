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
