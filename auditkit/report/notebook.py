"""What the audit notebooks call: one chapter object per notebook, so cells stay one-liners.

A notebook's parameters cell sets plain values; its next cell builds the chapter::

    ch = chapter("queries", data_dir, audit_dir=audit_dir, client_name=client_name,
                 presets=presets, show_literals=show_literals, link_suffix=link_suffix,
                 dsn_env=dsn_env)

and every later cell is one call: ``ch.inputs()``, ``ch.profile_table()``,
``ch.statement_time_figure()``, ``ch.show("n_plus_one")``… The chapter *displays* an
:class:`~auditkit.auditing.Audit`: the one the run computed and saved (``audit_dir``, set by the
runner), or — in JupyterLab, without ``audit_dir`` — one computed here from ``data_dir``
with the same library call. It computes no finding of its own, so a page and ``findings.json``
always agree. Everything displayed passes the run's :class:`~auditkit.report.redact.Redactor`.

A display method returns ``None`` (which shows nothing) only where the notebook has no heading
of its own for it; under a heading, a method always says something — the result, or in one
sentence why there is none — so no heading stands empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditkit.checks import REGISTRY
from auditkit.findings import CHECK_NAMES
from auditkit.report.chapter_base import (
    CHAPTER_INFO,
    MIN_POINTS,
    NOTEBOOKS_DIR,
    ChapterInfo,
    _block,
    _find_previous,
    _note,
    resolve_data_dir,
    threshold_words,
)
from auditkit.report.chapter_caching import CachingViews
from auditkit.report.chapter_indexing import IndexingViews
from auditkit.report.chapter_queries import QueriesViews
from auditkit.report.chapter_scaling import ScalingViews
from auditkit.report.html import (
    HtmlBlock,
    actions_html,
    findings_html,
    note_html,
    severity_badge,
    summary_html,
)
from auditkit.report.render import use_report_renderer
from auditkit.report.tables import Col, table

if TYPE_CHECKING:
    from auditkit.auditing import Audit
    from auditkit.compare import Comparison

__all__ = [
    "CHAPTER_INFO",
    "MIN_POINTS",
    "NOTEBOOKS_DIR",
    "Chapter",
    "ChapterInfo",
    "Overview",
    "chapter",
    "resolve_data_dir",
    "threshold_words",
]


class Chapter(QueriesViews, IndexingViews, CachingViews, ScalingViews):
    """One chapter of the audit as a notebook drives it. Build it with :func:`chapter`."""


class Overview(Chapter):
    """The executive summary: the action plan, every finding, inventory and data quality, and —
    when the client's previous audit is given (``previous``) — what changed since."""

    def __init__(self, *args: Any, previous: str | Path | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.previous = previous

    # -- since the last audit ------------------------------------------------------------------------
    @cached_property
    def comparison(self) -> Comparison | None:
        """This audit compared with ``previous`` (None when no previous audit was given).

        The comparison is made on this audit's findings.json document — redacted as the report
        is —, so the page and findings.json's ``since_previous`` agree.
        """
        from auditkit.compare import compare

        if not self.previous:
            return None
        return compare(_find_previous(self.previous, self.audit_dir), self._document)

    @cached_property
    def _document(self) -> dict[str, Any]:
        return self.audit.document(self.redactor)

    def since_last_audit(self) -> HtmlBlock | None:
        """What changed since the previous audit, with its own heading (nothing when no
        previous audit was given): each finding new, worse, resolved or better, the change in
        what it costs, and the endpoints whose database time per request moved most."""
        from auditkit.report.compare import since_last_audit_html

        c = self.comparison
        if c is None:
            return None
        return _block(since_last_audit_html(c, links=self._links), c.headline())

    def header(self) -> HtmlBlock:
        """Client, files used, the workload window and the redaction in force."""
        a = self.audit
        inv = self.frame("inventory")
        used = int((inv["status"] == "loaded").sum()) if len(inv) else 0
        wl = a.workload
        window = ""
        if wl.get("start") and wl.get("end"):
            window = f" · statements from {wl['start'][:16].replace('T', ' ')} to {wl['end'][:16].replace('T', ' ')} UTC"
        literal_note = "shown" if self.show_literals else "replaced by placeholders"
        text = (
            f"Client: {a.client} · {len(inv)} files, {used} used{window} · literal values in SQL "
            f"{literal_note}."
        )
        return _note(self.redactor.text(text))

    def action_plan(self) -> HtmlBlock:
        """The few changes that matter most, ranked by the time they save."""
        return _block(
            actions_html(self.audit.actions, links=self._links, redactor=self.redactor), "actions"
        )

    def executive_summary(self) -> HtmlBlock:
        """Counts per severity and every finding, each linking into its chapter."""
        titles = {name: info.title for name, info in CHAPTER_INFO.items()}
        html = summary_html(
            self.audit.findings, links=self._links, chapter_titles=titles, redactor=self.redactor
        )
        return _block(html, f"{len(self.audit.findings)} findings")

    def chapters_table(self) -> HtmlBlock:
        """Each chapter: link, what it rests on, its findings by severity."""
        rows = []
        for name, info in CHAPTER_INFO.items():
            if name == self.name:
                continue
            found = self.audit.chapter(name)
            gaps = self.audit.chapter_gaps(name)
            specs = [s for s in REGISTRY if s.chapter == name]
            if len(gaps) == len(specs):
                status = f"not measured: needs {info.needs}"
            elif gaps:
                status = f"{len(specs) - len(gaps)} of {len(specs)} checks ran (see the chapter)"
            else:
                status = "every check ran"
            counts = Counter(f.severity for f in found)
            badges = (
                " ".join(f"{severity_badge(s)} {counts[s]}" for s in sorted(counts, reverse=True))
                or "none"
            )
            rows.append(
                f'<tr><td><a href="{escape(self.link(name), quote=True)}">{escape(info.title)}</a></td>'
                f"<td>{escape(status)}</td><td>{badges}</td></tr>"
            )
        html = (
            '<table class="ak-chapters"><thead><tr><th>chapter</th><th>checks</th><th>findings</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
        return _block(html, f"{len(rows)} chapters")

    def inventory_table(self) -> HtmlBlock:
        """Every input file with format, status and read / used / skipped counts."""
        inv = self.frame("inventory")
        return table(
            inv,
            [
                Col("file", "file"),
                Col("format", "format"),
                Col("status", "status"),
                Col("size_bytes", "size", "bytes"),
                Col("read", "records", "count"),
                Col("parsed", "used", "count"),
                Col("skipped", "skipped", "count"),
                Col("note", "note"),
            ],
            caption=f"{len(inv)} files in the client folder",
            redactor=self.redactor,
        )

    def data_quality(self) -> HtmlBlock:
        """What could not be used and why: skipped records, unread files, checks without data,
        and what the audit learnt about its inputs."""
        parts = []
        skipped = self.frame("skipped")
        if len(skipped):
            parts.append(
                table(
                    skipped,
                    [
                        Col("file", "file"),
                        Col("reason", "reason"),
                        Col("records", "records", "count"),
                        Col("first_lines", "first lines"),
                        Col("excerpt", "excerpt", "sql"),
                    ],
                    caption="Skipped records by file and reason",
                    redactor=self.redactor,
                ).html
            )
        else:
            parts.append(note_html("No record of any loaded file was skipped."))
        found = [f for f in self.audit.findings if f.check == "data_quality"]
        if found:
            parts.append(findings_html(found, redactor=self.redactor))
        gaps = self.audit.gaps
        if gaps:
            items = "".join(
                f"<li>{escape(CHECK_NAMES.get(g.check, g.check))} ({escape(CHAPTER_INFO[g.chapter].title)}): "
                f"needs {escape(g.needs)}.{' ' + escape(g.how) if g.how else ''}</li>"
                for g in gaps
            )
            parts.append(f"<p><b>Not measured for want of data:</b></p><ul>{items}</ul>")
        for n in self.audit.notes:
            parts.append(note_html(self.redactor.text(n)))
        return _block("".join(parts), "data quality")


def chapter(
    name: str,
    data_dir: str | Path | None = "../data/sample",
    *,
    audit_dir: str | Path | None = None,
    audit: Audit | None = None,
    client_name: str | None = None,
    presets: Mapping[str, str] | None = None,
    show_literals: bool = False,
    link_suffix: str = ".ipynb",
    dsn_env: str | None = None,
    previous: str | Path | None = None,
) -> Chapter:
    """The chapter object a notebook works with (an :class:`Overview` for ``"overview"``).

    It displays ``audit`` when given (an :class:`~auditkit.auditing.Audit` made in the session),
    else the audit saved in ``audit_dir``, else one computed from ``data_dir``. Also switches
    plotly to the report renderer (see :mod:`auditkit.report.render`). ``previous`` (the
    overview only) is the client's previous audit: a report folder or findings.json.
    """
    use_report_renderer()
    if name == "overview":
        return Overview(
            name,
            data_dir,
            audit_dir=audit_dir,
            audit=audit,
            client_name=client_name,
            presets=presets,
            show_literals=show_literals,
            link_suffix=link_suffix,
            dsn_env=dsn_env,
            previous=previous,
        )
    return Chapter(
        name,
        data_dir,
        audit_dir=audit_dir,
        audit=audit,
        client_name=client_name,
        presets=presets,
        show_literals=show_literals,
        link_suffix=link_suffix,
        dsn_env=dsn_env,
    )
