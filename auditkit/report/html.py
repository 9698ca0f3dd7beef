"""HTML fragments of the report: findings, notes, the executive summary.

Everything that comes from the client — SQL, table and index names, endpoints, file names,
messages, metric values — is escaped here with :func:`html.escape` (quotes included), after
redaction. Only markup written in this module reaches the page unescaped; nothing here emits
``<script>``. The classes (``ak-…``) are styled by ``report.css`` in exported pages; a few
inline colours keep fragments readable in a live JupyterLab too.

Example::

    >>> from auditkit.findings import Finding, Severity, Subject
    >>> f = Finding("slow_query", Severity.HIGH, "<b>x</b>", "s", Subject(table="<t>"))
    >>> "&lt;b&gt;x&lt;/b&gt;" in finding_html(f)
    True
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from auditkit.findings import CHECKS, Finding, Severity, rank
from auditkit.report.redact import Redactor

__all__ = [
    "SEVERITY_COLOURS",
    "HtmlBlock",
    "finding_anchor",
    "finding_html",
    "findings_html",
    "note_html",
    "severity_badge",
    "summary_html",
]

#: badge colours per severity (background, text)
SEVERITY_COLOURS: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: ("#7f1d1d", "#ffffff"),
    Severity.HIGH: ("#c2410c", "#ffffff"),
    Severity.MEDIUM: ("#b45309", "#ffffff"),
    Severity.LOW: ("#1d4ed8", "#ffffff"),
    Severity.INFO: ("#4b5563", "#ffffff"),
}

#: evidence rows and characters per value shown in a finding
_EVIDENCE_ROWS = 10
_VALUE_CHARS = 400


class HtmlBlock:
    """A piece of HTML that displays itself in Jupyter (and as plain text elsewhere)."""

    def __init__(self, html: str, text: str = "") -> None:
        self.html = html
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or "<HtmlBlock>"

    def __str__(self) -> str:
        return self.html


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _short(value: object, limit: int = _VALUE_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finding_anchor(f: Finding) -> str:
    """A stable HTML id for a finding (same finding → same id in every run)."""
    key = json.dumps([f.check, f.title, f.subject.to_dict()], sort_keys=True, default=str)
    return "finding-" + hashlib.blake2b(key.encode("utf-8"), digest_size=5).hexdigest()


def severity_badge(severity: Severity) -> str:
    """An inline badge for a severity."""
    bg, fg = SEVERITY_COLOURS[severity]
    return (
        f'<span class="ak-badge ak-sev-{severity}" style="background:{bg};color:{fg};'
        f'padding:1px 7px;border-radius:9px;font-size:85%;white-space:nowrap">{severity}</span>'
    )


def note_html(text: str, kind: str = "info") -> str:
    """One line of commentary (``kind``: info, missing, warning, error), escaped."""
    colours = {"info": "#4b5563", "missing": "#6b7280", "warning": "#b45309", "error": "#b91c1c"}
    colour = colours.get(kind, colours["info"])
    return f'<p class="ak-note ak-note-{_e(kind)}" style="color:{colour};margin:0.4em 0">{_e(text)}</p>'


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>"
        for k, v in metrics.items()
        if v is not None
    )
    return f'<table class="ak-metrics">{rows}</table>' if rows else ""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return _short(v)


def _evidence_table(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    columns: list[str] = []
    for item in items[:_EVIDENCE_ROWS]:
        for k in item:
            if k not in columns:
                columns.append(k)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_short(item.get(c, '')))}</td>" for c in columns) + "</tr>"
        for item in items[:_EVIDENCE_ROWS]
    )
    more = len(items) - _EVIDENCE_ROWS
    tail = f"<p>… and {more} more</p>" if more > 0 else ""
    return f'<table class="ak-evidence-items"><tr>{head}</tr>{body}</table>{tail}'


def _code(label: str, code: str | None) -> str:
    if not code:
        return ""
    return f'<div class="ak-code"><span class="ak-code-label">{_e(label)}</span><pre><code>{_e(code)}</code></pre></div>'


def finding_html(
    f: Finding, redact: bool = True, *, redactor: Redactor | None = None, anchor: str | None = None
) -> str:
    """One finding as an HTML card: severity, title, subject, summary, metrics, fix, evidence.

    ``redact`` (default) passes the finding through ``redactor`` (default: literals hidden)
    first; ``Finding._repr_html_`` shows it unredacted for the consultant's own session.
    """
    if redact:
        f = (redactor or Redactor()).finding(f)
    rid = anchor or finding_anchor(f)
    subject = f.subject.label()
    rec = f.recommendation
    rec_html = ""
    if rec is not None and (rec.summary or rec.sql or rec.django or rec.migration):
        rec_html = (
            '<div class="ak-rec"><b>Recommendation.</b> '
            f"{_e(rec.summary)}{_code('SQL', rec.sql)}{_code('Django', rec.django)}{_code('Migration', rec.migration)}</div>"
        )
    ev = f.evidence
    ev_body = _evidence_table(list(ev.items)) + (f"<p>{_e(ev.note)}</p>" if ev.note else "")
    ev_html = (
        f'<details class="ak-evidence"><summary>Evidence ({_e(ev.strength)})</summary>{ev_body}</details>'
        if ev_body
        else f'<p class="ak-evidence-strength">Evidence: {_e(ev.strength)}</p>'
    )
    what = CHECKS.get(f.check, "")
    return (
        f'<div class="ak-finding ak-sev-{f.severity}" id="{_e(rid)}" '
        'style="border-left:4px solid #ccc;padding:0.3em 0.8em;margin:0.8em 0">'
        f'<div class="ak-finding-head">{severity_badge(f.severity)} <b>{_e(f.title)}</b> '
        f'<code class="ak-check" title="{_e(what)}">{_e(f.check)}</code></div>'
        + (f'<div class="ak-subject">{_e(subject)}</div>' if subject else "")
        + f'<p class="ak-summary">{_e(f.summary)}</p>'
        + _metrics_table(f.metrics)
        + rec_html
        + ev_html
        + "</div>"
    )


def findings_html(
    findings: Iterable[Finding], *, redactor: Redactor | None = None, empty: str = "No findings."
) -> str:
    """Every finding as a card, severity-ranked; ``empty`` when there are none."""
    ranked = rank(findings)
    if not ranked:
        return note_html(empty)
    return "".join(finding_html(f, redactor=redactor) for f in ranked)


def summary_html(
    findings: Iterable[Finding],
    *,
    links: Mapping[str, str] | None = None,
    chapter_titles: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    collapse_below: Severity = Severity.MEDIUM,
) -> str:
    """The executive summary: counts per severity and a ranked table linking into chapters.

    ``links`` maps a chapter to the page its findings are on (``10_queries.html``); each row
    links to the finding's anchor there. Findings below ``collapse_below`` are listed in a
    collapsed section after the others.
    """
    red = redactor or Redactor()
    ranked = [red.finding(f) for f in rank(findings)]
    if not ranked:
        return note_html("No findings: nothing in the data provided calls for action.")
    counts = Counter(f.severity for f in ranked)
    badges = " ".join(f"{severity_badge(s)} {counts[s]}" for s in sorted(counts, reverse=True))

    def row(f: Finding) -> str:
        page = (links or {}).get(f.chapter or "", "")
        href = f"{page}#{finding_anchor(f)}"
        chapter = (chapter_titles or {}).get(f.chapter or "", f.chapter or "")
        return (
            f"<tr><td>{severity_badge(f.severity)}</td>"
            f'<td><a href="{_e(href)}">{_e(f.title)}</a></td>'
            f"<td>{_e(_short(f.subject.label(), 120))}</td>"
            f"<td>{_e(chapter)}</td>"
            f'<td><code style="white-space:nowrap">{_e(f.check)}</code></td></tr>'
        )

    head = (
        '<table class="ak-summary-table"><thead><tr><th>severity</th><th>finding</th>'
        "<th>subject</th><th>chapter</th><th>check</th></tr></thead><tbody>"
    )
    major = [f for f in ranked if f.severity >= collapse_below]
    minor = [f for f in ranked if f.severity < collapse_below]
    html = f'<div class="ak-summary-counts">{badges}</div>'
    if major:
        html += head + "".join(row(f) for f in major) + "</tbody></table>"
    if minor:
        what = ", ".join(
            f"{counts[s]} {s}" for s in sorted({f.severity for f in minor}, reverse=True)
        )
        html += (
            f'<details class="ak-minor"{"" if major else " open"}><summary>{_e(what)} findings</summary>'
            + head
            + "".join(row(f) for f in minor)
            + "</tbody></table></details>"
        )
    return html
