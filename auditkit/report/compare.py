"""The "since the last audit" section of the summary page, from a :class:`~auditkit.compare.Comparison`.

HTML only: the comparison itself is computed by :mod:`auditkit.compare`; this module lays it out
(the changes first, the persisting findings folded away, then the endpoints whose database time
per request moved most).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from auditkit.compare import Comparison, FindingChange
from auditkit.findings import Finding, Severity, duration_text, plural
from auditkit.report.html import finding_anchor, note_html, severity_badge

__all__ = ["CHANGE_COLOURS", "change_badge", "since_last_audit_html"]

#: badge colours per change (background, text)
CHANGE_COLOURS: dict[str, tuple[str, str]] = {
    "new": ("#b91c1c", "#ffffff"),
    "worse": ("#c2410c", "#ffffff"),
    "resolved": ("#15803d", "#ffffff"),
    "better": ("#4d7c0f", "#ffffff"),
    "persisting": ("#6b7280", "#ffffff"),
}
#: endpoints listed in the section
ENDPOINTS_SHOWN = 10
#: an endpoint's status in words
_SEEN = {"both": "in both audits", "new": "new", "gone": "no longer"}


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def change_badge(change: str) -> str:
    """An inline badge for a change (new, worse, resolved, better, persisting)."""
    bg, fg = CHANGE_COLOURS.get(change, CHANGE_COLOURS["persisting"])
    return (
        f'<span class="ak-badge ak-change-{_e(change)}" style="background:{bg};color:{fg};'
        f'padding:1px 7px;border-radius:9px;font-size:85%;white-space:nowrap">{_e(change)}</span>'
    )


def _severity(word: str | None) -> str:
    if not word:
        return ""
    try:
        return severity_badge(Severity.parse(word))
    except Exception:  # a severity word of another auditkit version: shown as it is
        return _e(word)


def _row(c: FindingChange, links: Mapping[str, str]) -> str:
    title = _e(c.title)
    if c.change != "resolved" and c.finding:
        try:
            f = Finding.from_dict(c.finding)
            href = f"{links.get(f.chapter or '', '')}#{finding_anchor(f)}"
            title = f'<a href="{_e(href)}">{title}</a>'
        except Exception:  # a finding this version cannot read back: no link
            pass
    if c.previous_severity and c.severity and c.previous_severity != c.severity:
        sev = f"{_severity(c.previous_severity)} → {_severity(c.severity)}"
    else:
        sev = _severity(c.severity or c.previous_severity)
    what = c.figure()
    if c.note:
        what = f"{what}. {c.note}" if what else c.note
    return (
        f"<tr><td>{change_badge(c.change)}</td><td>{sev}</td><td>{title}</td>"
        f"<td>{_e(what)}</td></tr>"
    )


def _findings_table(items: list[FindingChange], links: Mapping[str, str]) -> str:
    head = (
        '<table class="ak-summary-table ak-changes"><thead><tr><th>change</th><th>severity</th>'
        "<th>finding</th><th>what it costs, then and now</th></tr></thead><tbody>"
    )
    return head + "".join(_row(c, links) for c in items) + "</tbody></table>"


def _ms(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if f != f else duration_text(f)


def _n(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if f != f:
        return "–"
    return f"{f:,.0f}" if abs(f) >= 100 else f"{f:,.1f}".removesuffix(".0")


def _endpoints_table(c: Comparison) -> str:
    ep = c.endpoints.head(ENDPOINTS_SHOWN)
    if len(ep) == 0:
        return ""
    per_hour = (
        ep["requests_per_hour_old"].notna().any() or ep["requests_per_hour_new"].notna().any()
    )
    rows = []
    for r in ep.to_dict("records"):
        traffic = (
            f"{_n(r['requests_per_hour_old'])} → {_n(r['requests_per_hour_new'])}"
            if per_hour
            else f"{_n(r['requests_old'])} → {_n(r['requests_new'])}"
        )
        rows.append(
            f"<tr><td>{_e(r['endpoint'])}</td><td>{_e(_SEEN.get(r['status'], r['status']))}</td>"
            f'<td class="ak-num">{_e(traffic)}</td>'
            f'<td class="ak-num">{_e(_ms(r["db_ms_per_request_old"]))} → '
            f"{_e(_ms(r['db_ms_per_request_new']))}</td>"
            f'<td class="ak-num">{_e(_n(r["statements_per_request_old"]))} → '
            f"{_e(_n(r['statements_per_request_new']))}</td></tr>"
        )
    traffic_label = "requests per hour" if per_hour else "requests (windows unknown)"
    return (
        '<table class="ak-table"><caption>Endpoints whose database time per request moved most'
        "</caption><thead><tr><th>endpoint</th><th>requested</th>"
        f'<th class="ak-num">{_e(traffic_label)}</th><th class="ak-num">database time per request'
        '</th><th class="ak-num">statements per request</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def since_last_audit_html(c: Comparison, *, links: Mapping[str, str] | None = None) -> str:
    """The section: heading, headline, caveats, the changes, persisting findings folded away,
    and the endpoints that moved."""
    links = links or {}
    old = c.old
    when = (old.generated_at or "")[:16].replace("T", " ")
    parts = [
        '<h2 id="since-last-audit">Since the last audit</h2>',
        note_html(c.headline()),
        note_html(
            f"Compared with the audit of {when or 'an unknown date'} UTC (auditkit "
            f"{old.auditkit_version or 'unknown version'}, {len(old.findings)} findings). "
            "Findings are matched by their identity — the check and what it is about — and "
            "their cost compared per request, else per hour: never as totals of different "
            "periods."
        ),
    ]
    parts += [note_html(caveat, "warning") for caveat in c.caveats]
    changed = [f for f in c.findings if f.change != "persisting"]
    same = c.of("persisting")
    if changed:
        parts.append(_findings_table(changed, links))
    else:
        parts.append(note_html("No finding is new, worse, better or resolved."))
    if same:
        parts.append(
            f'<details class="ak-minor"><summary>{plural(len(same), "persisting finding")}</summary>'
            + _findings_table(same, links)
            + "</details>"
        )
    parts.append(_endpoints_table(c))
    return "".join(parts)
