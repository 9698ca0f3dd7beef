"""HTML fragments of the report: finding cards, the action plan, the executive summary.

Everything that comes from the client — SQL, table and index names, endpoints, file names,
messages, metric values — is escaped here with :func:`html.escape` (quotes included), after
redaction. Only markup written in this module reaches the page unescaped; nothing here emits
``<script>``. Labels are words a client reads (:data:`auditkit.findings.CHECK_NAMES`,
:data:`METRIC_LABELS`), never code names; a metric without a label stays in ``findings.json``
and off the page. The classes (``ak-…``) are styled by ``report.css``.

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

from auditkit.findings import CHECK_NAMES, Finding, Impact, Severity, duration_text, rank
from auditkit.report.redact import Redactor

__all__ = [
    "METRIC_LABELS",
    "SEVERITY_COLOURS",
    "HtmlBlock",
    "actions_html",
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

#: metrics a finding card shows: key → (label, kind); kinds as in :mod:`auditkit.report.tables`
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "requests_affected": ("requests affected", "count"),
    "requests_total": ("requests to the endpoint", "count"),
    "queries_per_request": ("queries per request", "number"),
    "wasted_queries_per_request": ("queries the fix removes per request", "number"),
    "duplicates_per_request": ("repeats per request", "number"),
    "statements_duplicated": ("statements repeated", "count"),
    "calls": ("executions", "count"),
    "distinct": ("distinct parameter sets", "count"),
    "total_ms": ("time in the window", "ms"),
    "mean_ms": ("mean per execution", "ms"),
    "p95_ms": ("95th percentile", "ms"),
    "max_ms": ("slowest execution", "ms"),
    "rows": ("rows", "count"),
    "statements": ("statements", "count"),
    "estimated_size_bytes": ("estimated index size", "bytes"),
    "table_rows": ("table rows", "count"),
    "table_seq_scans": ("sequential scans of the table", "count"),
    "size_bytes": ("size", "bytes"),
    "idx_scan": ("scans in the window", "count"),
    "table_writes": ("row writes in the window", "count"),
    "kept_index": ("index that stays", "text"),
    "hit_ratio": ("hit ratio", "percent"),
    "hits": ("hits", "count"),
    "misses": ("misses", "count"),
    "blocks_hit": ("blocks found in memory", "count"),
    "blocks_read": ("blocks read from disk", "count"),
    "limit_users": ("users at the limit", "count"),
    "healthy_users": ("last healthy step (users)", "count"),
    "healthy_rps": ("throughput at the last healthy step (requests/s)", "number"),
    "peak_rps": ("peak throughput (requests/s)", "number"),
    "p95_ms_at_limit": ("95th percentile at the limit", "ms"),
    "baseline_p95_ms": ("95th percentile at the first step", "ms"),
    "failure_rate_at_limit": ("failing at the limit", "percent"),
    "safe_rps": ("throughput to plan for (requests/s)", "number"),
    "needed": ("connections needed at peak", "count"),
    "allowed": ("connections allowed", "count"),
    "instances": ("instances", "count"),
    "web_workers": ("web workers per instance", "count"),
    "threads_per_worker": ("threads per worker", "count"),
    "background_slots": ("background worker slots", "count"),
    "median_ms": ("median response time", "ms"),
    "waiting_ms": ("waiting per request (median)", "ms"),
    "db_share": ("share of time in the database", "percent"),
    "requests": ("requests", "count"),
    "count": ("occurrences", "count"),
    "waited_ms": ("time waited", "ms"),
    "files": ("files", "count"),
    "total_bytes": ("written to disk", "bytes"),
    "max_bytes": ("largest file", "bytes"),
    "read": ("records read", "count"),
    "parsed": ("records used", "count"),
    "skipped": ("records skipped", "count"),
    "skipped_share": ("share skipped", "percent"),
    "indexes": ("indexes", "count"),
    "cost_before": ("planner cost before", "number"),
    "cost_after": ("planner cost with the index", "number"),
    "cost_reduction": ("cost cut", "percent"),
    "rows_read": ("rows read", "count"),
    "rows_kept": ("rows kept", "count"),
    "fraction": ("share discarded", "percent"),
    "factor": ("estimate off by (×)", "number"),
}
#: evidence item columns and how they read
_ITEM_LABELS: dict[str, str] = {
    "fingerprint": "statement",
    "fingerprint_id": "statement id",
    "request_id": "request",
    "executions": "executions",
    "calls": "executions",
    "total_ms": "time (ms)",
    "repeats": "repeats",
    "source_file": "file",
    "source_line": "line",
    "endpoints": "endpoints",
    "requests": "requests",
    "index": "index",
    "definition": "definition",
    "idx_scan": "scans",
    "plan_id": "plan",
    "node_id": "node",
    "node_type": "node",
    "relation": "table",
    "filter": "filter",
    "line": "line",
    "reason": "reason",
    "excerpt": "excerpt",
    "table": "table",
    "variant": "compared",
    "cost_before": "cost before",
    "cost_after": "cost after",
    "uses_index": "uses the index",
    "plan_before": "plan before",
    "plan_after": "plan with the index",
}
_HIDDEN_ITEM_KEYS = {
    "plan_before_json",
    "plan_after_json",
    "chosen",
    "generic_plan",
    "plan_node",
    "source",
}
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
    """A stable HTML id for a finding (its identity: same problem → same anchor in every run)."""
    return "finding-" + hashlib.blake2b(f.id.encode("utf-8"), digest_size=5).hexdigest()


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


def _fmt(value: Any, kind: str) -> str:
    from auditkit.report.tables import fmt_bytes, fmt_count, fmt_ms, fmt_percent

    if kind == "count":
        return fmt_count(value)
    if kind == "ms":
        return fmt_ms(value)
    if kind == "percent":
        return fmt_percent(value)
    if kind == "bytes":
        return fmt_bytes(value)
    if kind == "number":
        return f"{float(value):,.1f}"
    return _short(value, 120)


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = []
    for key, (label, kind) in METRIC_LABELS.items():
        v = metrics.get(key)
        if v is None or isinstance(v, bool) or (isinstance(v, float) and v != v):
            continue
        if kind != "text" and not isinstance(v, int | float):
            continue
        rows.append(f"<tr><th>{_e(label)}</th><td>{_e(_fmt(v, kind))}</td></tr>")
    return f'<table class="ak-metrics">{"".join(rows)}</table>' if rows else ""


def impact_text(impact: Impact | None) -> str:
    """The impact in a sentence: what the fix saves, measured how, over which window."""
    if impact is None:
        return ""
    text = impact.phrase()
    text = text[0].upper() + text[1:]
    basis = {
        "measured": "measured",
        "estimated": "estimated",
        "validated": "confirmed by the database's planner",
        "at stake": "at stake (all of its time: the most a fix could save)",
    }.get(impact.basis, impact.basis)
    parts = [f"{text}."]
    if impact.source:
        window = f" over {duration_text(impact.window_s * 1000)}" if impact.window_s else ""
        parts.append(f"Times from {impact.source}{window}; {basis}.")
    if impact.note:
        parts.append(f"How: {impact.note}.")
    return " ".join(parts)


def _code(label: str, code: str | None) -> str:
    if not code:
        return ""
    return f'<div class="ak-code"><span class="ak-code-label">{_e(label)}</span><pre><code>{_e(code)}</code></pre></div>'


def _evidence_table(items: Sequence[Mapping[str, Any]]) -> str:
    items = [
        {k: v for k, v in i.items() if k not in _HIDDEN_ITEM_KEYS and v is not None} for i in items
    ]
    items = [i for i in items if i]
    if not items:
        return ""
    columns: list[str] = []
    for item in items[:_EVIDENCE_ROWS]:
        for k in item:
            if k not in columns:
                columns.append(k)
    head = "".join(f"<th>{_e(_ITEM_LABELS.get(c, c.replace('_', ' ')))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_e(_short(item[c]) if c in item else '—')}</td>" for c in columns)
        + "</tr>"
        for item in items[:_EVIDENCE_ROWS]
    )
    more = len(items) - _EVIDENCE_ROWS
    tail = f"<p>… and {more} more</p>" if more > 0 else ""
    return f'<table class="ak-evidence-items"><tr>{head}</tr>{body}</table>{tail}'


def _symptoms(symptoms: Sequence[Mapping[str, Any]]) -> str:
    if not symptoms:
        return ""
    rows = "".join(f"<li>{_e(s.get('title'))}</li>" for s in symptoms)
    return f'<div class="ak-symptoms"><b>What it also explains</b><ul>{rows}</ul></div>'


_STRENGTH = {
    "validated": "validated by the database",
    "statistics": "from the server's statistics",
    "pattern": "recognised in logs or traces",
    "inferred": "reconstructed by a documented heuristic",
}


def finding_html(
    f: Finding, redact: bool = True, *, redactor: Redactor | None = None, anchor: str | None = None
) -> str:
    """One finding as an HTML card: severity, title, what it saves, summary, the change to
    make, the symptoms it explains, and its evidence.

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
            '<div class="ak-rec"><b>What to change.</b> '
            f"{_e(rec.summary)}{_code('SQL', rec.sql)}{_code('Django', rec.django)}"
            f"{_code('Migration operation', rec.migration)}</div>"
        )
    ev = f.evidence
    ev_body = _evidence_table(list(ev.items)) + (f"<p>{_e(ev.note)}</p>" if ev.note else "")
    strength = _STRENGTH.get(str(ev.strength), str(ev.strength))
    ev_html = (
        f'<details class="ak-evidence"><summary>Evidence: {_e(strength)}</summary>{ev_body}</details>'
        if ev_body
        else f'<p class="ak-evidence-strength">Evidence: {_e(strength)}.</p>'
    )
    impact = impact_text(f.impact)
    return (
        f'<div class="ak-finding ak-sev-{f.severity}" id="{_e(rid)}">'
        f'<div class="ak-finding-head">{severity_badge(f.severity)} <b>{_e(f.title)}</b> '
        f'<span class="ak-check">{_e(CHECK_NAMES.get(f.check, f.check))}</span></div>'
        + (f'<div class="ak-subject">{_e(subject)}</div>' if subject else "")
        + (f'<p class="ak-impact">{_e(impact)}</p>' if impact else "")
        + f'<p class="ak-summary">{_e(f.summary)}</p>'
        + _metrics_table(f.metrics)
        + rec_html
        + _symptoms(ev.symptoms)
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


def actions_html(
    actions: Sequence[Finding],
    *,
    links: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
) -> str:
    """The action plan: the changes that matter most, in order, each a sentence linking to its
    finding."""
    red = redactor or Redactor()
    if not actions:
        return note_html(
            "No change stands out: nothing in the data provided saves a measurable share of time."
        )
    items = []
    for f in actions:
        g = red.finding(f)
        href = f"{(links or {}).get(g.chapter or '', '')}#{finding_anchor(g)}"
        items.append(
            f'<li>{severity_badge(g.severity)} {_e(g.action)} <a href="{_e(href)}">Details</a></li>'
        )
    return f'<ol class="ak-actions">{"".join(items)}</ol>'


def summary_html(
    findings: Iterable[Finding],
    *,
    links: Mapping[str, str] | None = None,
    chapter_titles: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    collapse_below: Severity = Severity.MEDIUM,
) -> str:
    """Every finding, severity-ranked, linking into its chapter: counts per severity, then a
    table (findings below ``collapse_below`` in a collapsed section)."""
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
        saves = f.impact.phrase() if f.impact else ""
        return (
            f"<tr><td>{severity_badge(f.severity)}</td>"
            f'<td><a href="{_e(href)}">{_e(f.title)}</a></td>'
            f"<td>{_e(saves)}</td>"
            f"<td>{_e(chapter)}</td></tr>"
        )

    head = (
        '<table class="ak-summary-table"><thead><tr><th>severity</th><th>finding</th>'
        "<th>what the fix saves</th><th>chapter</th></tr></thead><tbody>"
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
