"""What the audit notebooks call: one chapter object per notebook, so cells stay one-liners.

A notebook's parameters cell sets plain values (client name, data folder, presets, redaction,
cache folder); its next cell builds the chapter::

    ch = chapter("queries", data_dir, client_name=client_name, presets=presets,
                 show_literals=show_literals, cache_dir=cache_dir, findings_dir=findings_dir)

and every later cell is one call: ``ch.inputs()``, ``ch.profile_table()``,
``ch.statement_time_figure()``, ``ch.show_findings()``… The chapter loads the client folder
once (through the parse cache when ``cache_dir`` is set), runs the chapter's checks once, and
redacts everything it displays with the run's :class:`~auditkit.report.redact.Redactor`.

When a chapter's inputs are missing, :meth:`Chapter.inputs` says so in one line and every
other display method returns ``None`` (which displays nothing), so the notebook needs no
``if``. Secrets never pass through a parameter: ``dsn_env`` names an environment variable,
and its value is only read where a live database is used, never displayed.

With ``findings_dir`` set (the runner sets it), :meth:`Chapter.findings` also writes the
chapter's redacted findings to ``<findings_dir>/<chapter>.json``; the overview reads those
files for the executive summary, and the runner merges them into ``findings.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from auditkit.checks import CHAPTERS, available, run_chapter
from auditkit.client import ClientData, load_client
from auditkit.config import AuditConfig, load_config
from auditkit.errors import ConfigError
from auditkit.findings import Finding, rank
from auditkit.profile import query_profile
from auditkit.report import figures, tables
from auditkit.report.html import HtmlBlock, findings_html, note_html, severity_badge, summary_html
from auditkit.report.redact import Redactor
from auditkit.report.render import use_report_renderer

__all__ = [
    "CHAPTER_INFO",
    "Chapter",
    "ChapterInfo",
    "Overview",
    "chapter",
    "read_chapter_findings",
    "resolve_data_dir",
]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
#: the repository's notebooks folder (relative data folders are also tried from here)
NOTEBOOKS_DIR = _PACKAGE_ROOT / "notebooks"


@dataclass(frozen=True)
class ChapterInfo:
    """A chapter: its notebook, title, the frames it reads and how to name them when missing."""

    name: str
    notebook: str
    title: str
    inputs: tuple[str, ...]
    needs: str


CHAPTER_INFO: dict[str, ChapterInfo] = {
    c.name: c
    for c in (
        ChapterInfo("overview", "00_overview", "Executive summary", (), "any input file"),
        ChapterInfo(
            "queries",
            "10_queries",
            "Queries",
            ("query_events", "statement_stats"),
            "a query log (Django, PostgreSQL or MySQL) or a pg_stat_statements export",
        ),
        ChapterInfo(
            "indexing",
            "20_indexing",
            "Indexing",
            ("plan_nodes", "schema_indexes", "schema_tables", "query_events"),
            "EXPLAIN plans, index and table statistics, or a query log",
        ),
        ChapterInfo(
            "caching",
            "30_caching",
            "Caching",
            ("cache_stats", "cache_events"),
            "cache statistics (Redis or memcached INFO) or recorded cache operations",
        ),
        ChapterInfo(
            "scaling",
            "40_scaling",
            "Scaling",
            ("load_samples", "requests"),
            "load-test results (Locust) or request traces",
        ),
    )
}

#: check id → the module of auditkit.checks that implements it, where the two differ
CHECK_MODULES = {"duplicate_query": "n_plus_one", "slow_query": "slow_queries"}
#: human names of checks in "not available" notes
_CHECK_LABELS = {
    "n_plus_one": "N+1 query",
    "duplicate_query": "duplicate query",
    "slow_query": "slow statement",
}


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The client folder ``data_dir`` names, wherever the notebook runs from.

    An absolute path is taken as is. A relative one is tried from the working directory
    (papermill run from anywhere), then from the repository's ``notebooks/`` folder (the
    default ``../data/sample`` in JupyterLab), then from the repository root.
    """
    p = Path(data_dir).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, NOTEBOOKS_DIR / p, _PACKAGE_ROOT / p]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"client folder {str(data_dir)!r} not found (tried {tried})",
        hint="pass data_dir= the folder of client files",
    )


def read_chapter_findings(path: str | Path) -> tuple[dict[str, Any], list[Finding]]:
    """A chapter's findings file: its header (chapter, title, has_inputs) and findings."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if k != "findings"}, [
        Finding.from_dict(f) for f in data.get("findings", [])
    ]


class Chapter:
    """One chapter of the audit as a notebook drives it. Build it with :func:`chapter`."""

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        *,
        client_name: str | None = None,
        presets: Mapping[str, str] | None = None,
        show_literals: bool = False,
        cache_dir: str | Path | None = None,
        findings_dir: str | Path | None = None,
        link_suffix: str = ".ipynb",
        dsn_env: str | None = None,
    ) -> None:
        if name not in CHAPTER_INFO:
            raise ConfigError(
                f"unknown chapter {name!r}", hint=f"chapters: {', '.join(CHAPTER_INFO)}"
            )
        self.info = CHAPTER_INFO[name]
        self.name = name
        self.data_dir = resolve_data_dir(data_dir)
        self.client_name = client_name
        self.config: AuditConfig = load_config(self.data_dir).with_presets(**dict(presets or {}))
        self.show_literals = bool(show_literals)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.findings_dir = Path(findings_dir) if findings_dir else None
        self.link_suffix = link_suffix
        self.dsn_env = dsn_env
        self.redactor = Redactor.from_env(self.show_literals, [dsn_env])
        self._findings: list[Finding] | None = None
        self._shown: set[str] = set()

    def __repr__(self) -> str:
        return f"<Chapter {self.name} of {self.data_dir.name}>"

    # -- data ----------------------------------------------------------------------------------
    @cached_property
    def client(self) -> ClientData:
        """The client folder, loaded once (parsed inputs come from the cache when possible)."""
        return load_client(
            self.data_dir, self.config, cache_dir=self.cache_dir, name=self.client_name
        )

    @property
    def has_inputs(self) -> bool:
        """True when any frame this chapter reads has rows (the overview always has)."""
        return not self.info.inputs or any(self.client.has(f) for f in self.info.inputs)

    def link(self, chapter: str) -> str:
        """The page of ``chapter`` as seen from this one ('' for this very page)."""
        if chapter == self.name:
            return ""
        return CHAPTER_INFO[chapter].notebook + self.link_suffix

    def live_dsn(self) -> str | None:
        """The DSN from the environment variable ``dsn_env`` names, for live collectors only.

        Never display it; reports mention only the variable's name.
        """
        return os.environ.get(self.dsn_env) if self.dsn_env else None

    # -- one-liners for the notebook -------------------------------------------------------------
    def header(self) -> HtmlBlock:
        """Client, folder, files and the thresholds presets in force, in one line."""
        c = self.client
        loaded = sum(1 for f in c.files if f.status == "loaded")
        presets = ", ".join(
            f"{fam} = {self.config.preset(fam)}" for fam in ("slow_query", "n_plus_one", "index")
        )
        literal_note = "shown" if self.show_literals else "replaced by placeholders"
        text = (
            f"Client: {c.name} · {len(c.files)} files, {loaded} used · presets: {presets} · "
            f"literal values in SQL {literal_note}."
        )
        return HtmlBlock(note_html(self.redactor.text(text)), text)

    def inputs(self) -> HtmlBlock:
        """One line: which sources feed this chapter, or that its inputs are missing."""
        if not self.has_inputs:
            text = f"No {self.info.needs} was provided, so this chapter has nothing to report."
            return HtmlBlock(note_html(text, "missing"), text)
        parts = []
        for frame in self.info.inputs:
            if self.client.has(frame):
                srcs = ", ".join(self._formats(frame))
                label = f"{len(self.client.frame(frame)):,} {frame.replace('_', ' ')}"
                parts.append(f"{label} ({srcs})" if srcs else label)
        text = ("Based on " + "; ".join(parts) + ".") if parts else ""
        if not CHAPTERS.get(self.name):
            text += " The checks of this chapter are not available in this version of auditkit yet, so it reports no findings."
        return HtmlBlock(note_html(self.redactor.text(text.strip())), text)

    def _formats(self, frame: str) -> list[str]:
        """Formats of the files that gave rows of ``frame``."""
        found = set(self.client.sources(frame))
        for result in self.client.results.values():
            df = result.frames.get(frame)
            if df is not None and len(df):
                found.add(result.format)
        return sorted(found)

    def thresholds(self, *families: str) -> HtmlBlock | None:
        """The thresholds in force for ``families``, with the preset each comes from."""
        if not self.has_inputs:
            return None
        parts = []
        for fam in families:
            values = ", ".join(f"{k} {v}" for k, v in self.config.thresholds(fam).items())
            parts.append(f"{fam} (preset {self.config.preset(fam)}): {values}")
        text = "Thresholds — " + "; ".join(parts) + "."
        return HtmlBlock(note_html(text), text)

    def findings(self) -> list[Finding]:
        """This chapter's findings (checks run once), written to ``findings_dir`` when set."""
        if self._findings is None:
            found = run_chapter(self.name, self.client, self.config) if self.has_inputs else []
            self._findings = rank(found)
            self._write_findings()
        return self._findings

    def _write_findings(self) -> None:
        if self.findings_dir is None or self._findings is None:
            return
        self.findings_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "chapter": self.name,
            "title": self.info.title,
            "has_inputs": self.has_inputs,
            "checks": len(CHAPTERS.get(self.name, ())),
            "findings": [self.redactor.finding(f).to_dict() for f in self._findings],
        }
        target = self.findings_dir / f"{self.name}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(target)

    def show_findings(self, *checks: str) -> HtmlBlock | None:
        """The chapter's findings (only those of ``checks`` when given; ``"plan_*"`` for all
        plan checks) as cards. Nothing when the chapter has no inputs or no checks yet —
        :meth:`inputs` has said so.
        """
        if not self.has_inputs or not CHAPTERS.get(self.name):
            return None
        self._shown.update(checks or {"*"})
        found = [f for f in self.findings() if not checks or _matches(f.check, checks)]
        html = findings_html(
            found,
            redactor=self.redactor,
            empty="No findings here: nothing in the data calls for action.",
        )
        return HtmlBlock(html, f"{len(found)} findings")

    def other_findings(self) -> HtmlBlock | None:
        """Findings of checks no earlier section showed (so every finding has a place)."""
        if not self.has_inputs or "*" in self._shown:
            return None
        found = [f for f in self.findings() if not _matches(f.check, tuple(self._shown))]
        if not found:
            return None
        return HtmlBlock(findings_html(found, redactor=self.redactor), f"{len(found)} findings")

    def show_check(self, check: str) -> HtmlBlock | None:
        """Findings of one check — or, if that check is not implemented yet, a note saying so.

        Returns no findings for an unavailable check: the report states the gap instead of
        implying a clean result.
        """
        if not self.has_inputs:
            return None
        if not available(CHECK_MODULES.get(check, check)):
            label = _CHECK_LABELS.get(check, check.replace("_", " "))
            text = f"The {label} check is not available in this version of auditkit, so no {label} findings are reported."
            return HtmlBlock(note_html(text, "warning"), text)
        return self.show_findings(check)

    # -- queries -----------------------------------------------------------------------------------
    @cached_property
    def _profile(self) -> pd.DataFrame:
        events = self.client.query_events("profile")
        if len(events):
            return query_profile(events)
        return self.client.frame("statement_stats")

    def profile(self) -> pd.DataFrame:
        """The query profile (statement_stats frame), unredacted: for the consultant's own use."""
        return self._profile

    def profile_table(self, top: int = 20) -> Styler | None:
        """The top statements by total time, literals redacted."""
        if len(self._profile) == 0:
            return None
        return tables.profile_table(self._profile, redactor=self.redactor, top=top)

    def statement_time_figure(self, top: int = 15) -> go.Figure | None:
        """Bar chart of database time per statement."""
        if len(self._profile) == 0:
            return None
        return figures.statement_time(self._profile, top=top, redactor=self.redactor)

    def latency_figure(self) -> go.Figure | None:
        """Histogram of statement durations."""
        events = self.client.query_events("profile")
        if len(events) == 0 or events["duration_ms"].notna().sum() == 0:
            return None
        return figures.latency_distribution(events, redactor=self.redactor)

    def endpoint_table(self, top: int = 20) -> Styler | None:
        """Database time per endpoint (only when the sources tie statements to endpoints)."""
        return tables.endpoint_table(
            self.client.query_events("requests"), redactor=self.redactor, top=top
        )

    def endpoint_time_figure(self, top: int = 15) -> go.Figure | None:
        """Bar chart of database time per endpoint (``None`` without endpoints)."""
        events = self.client.query_events("requests")
        if len(tables.endpoint_frame(events)) == 0:
            return None
        return figures.endpoint_time(events, top=top, redactor=self.redactor)

    # -- indexing ----------------------------------------------------------------------------------
    def index_table(self, top: int = 30) -> Styler | None:
        """Indexes with their size and scans since the statistics reset (when exported)."""
        idx = self.client.frame("schema_indexes")
        if len(idx) == 0:
            return None
        df = pd.DataFrame(
            {
                "table": idx["table"].map(self.redactor.text),
                "index": idx["index"].map(self.redactor.text),
                "columns": idx["columns"].map(self.redactor.text),
                "size (kB)": idx["size_bytes"].astype(float) / 1024,
                "scans": idx["idx_scan"],
            }
        ).sort_values("size (kB)", ascending=False, na_position="last")
        return tables.styled(df.head(top), caption="Indexes by size")

    def live_database(self) -> HtmlBlock | None:
        """Whether a live database was configured (by variable name only, never its value)."""
        if not self.has_inputs:
            return None
        if not self.dsn_env:
            text = "No live database was configured; results rest on the files provided."
        elif self.live_dsn():
            text = f"A live database is configured through ${self.dsn_env}."
        else:
            text = (
                f"No live database: set ${self.dsn_env} to validate candidates against the planner."
            )
        return HtmlBlock(note_html(text), text)

    # -- caching and scaling -----------------------------------------------------------------------
    def cache_hit_figure(self) -> go.Figure | None:
        """Cache hit ratio per key prefix or per server over time."""
        stats, events = self.client.frame("cache_stats"), self.client.frame("cache_events")
        if len(stats) == 0 and (len(events) == 0 or events["hit"].notna().sum() == 0):
            return None
        return figures.cache_hit_ratio(stats, events, redactor=self.redactor)

    def load_curve_figure(self) -> go.Figure | None:
        """Throughput and latency against users, from load-test samples."""
        samples = self.client.frame("load_samples")
        if len(samples) == 0:
            return None
        return figures.load_curve(samples)

    def request_latency_figure(self) -> go.Figure | None:
        """Response times per endpoint, from requests or traces."""
        req = self.client.frame("requests")
        if len(req) == 0 or req["duration_ms"].notna().sum() == 0:
            return None
        return figures.latency_distribution(
            req, by="endpoint", what="request", redactor=self.redactor
        )


class Overview(Chapter):
    """The executive summary chapter: every chapter's findings, inventory, data quality."""

    def chapter_findings(self) -> dict[str, tuple[dict[str, Any], list[Finding]]]:
        """Per chapter: its header and findings — from ``findings_dir`` after a run, else computed.

        In a run, a chapter without a findings file did not complete (its header says so).
        """
        out: dict[str, tuple[dict[str, Any], list[Finding]]] = {}
        for name, info in CHAPTER_INFO.items():
            if name == self.name:
                out[name] = (
                    {
                        "title": info.title,
                        "has_inputs": True,
                        "checks": len(CHAPTERS.get(name, ())),
                    },
                    self.findings(),
                )
                continue
            if self.findings_dir is not None:
                path = self.findings_dir / f"{name}.json"
                if path.is_file():
                    out[name] = read_chapter_findings(path)
                else:
                    out[name] = ({"title": info.title, "failed": True}, [])
                continue
            has = any(self.client.has(f) for f in info.inputs)
            found = run_chapter(name, self.client, self.config) if has else []
            out[name] = (
                {"title": info.title, "has_inputs": has, "checks": len(CHAPTERS.get(name, ()))},
                found,
            )
        return out

    @cached_property
    def _all(self) -> dict[str, tuple[dict[str, Any], list[Finding]]]:
        return self.chapter_findings()

    def all_findings(self) -> list[Finding]:
        """Every chapter's findings, severity-ranked."""
        return rank(f for _, found in self._all.values() for f in found)

    def executive_summary(self) -> HtmlBlock:
        """Counts per severity and the ranked findings, each linking into its chapter."""
        links = {name: self.link(name) for name in CHAPTER_INFO}
        titles = {name: info.title for name, info in CHAPTER_INFO.items()}
        found = self.all_findings()
        html = summary_html(found, links=links, chapter_titles=titles, redactor=self.redactor)
        return HtmlBlock(html, f"{len(found)} findings")

    def chapters_table(self) -> HtmlBlock:
        """Each chapter: link, whether its inputs were provided, its findings by severity."""
        rows = []
        for name, (head, found) in self._all.items():
            if name == self.name:
                continue
            info = CHAPTER_INFO[name]
            if head.get("failed"):
                status = "did not complete (see its page)"
            elif not head.get("has_inputs"):
                status = f"no input: needs {info.needs}"
            elif not head.get("checks"):
                status = "inputs present; no checks available yet"
            else:
                status = "complete"
            counts = Counter(f.severity for f in found)
            badges = (
                " ".join(f"{severity_badge(s)} {counts[s]}" for s in sorted(counts, reverse=True))
                or "—"
            )
            rows.append(
                f'<tr><td><a href="{_attr(self.link(name))}">{_text(info.title)}</a></td>'
                f"<td>{_text(status)}</td><td>{badges}</td></tr>"
            )
        html = (
            '<table class="ak-chapters"><thead><tr><th>chapter</th><th>status</th><th>findings</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        return HtmlBlock(html, f"{len(rows)} chapters")

    def inventory_table(self) -> Styler:
        """Every input file with format, status and read / parsed / skipped counts."""
        return tables.inventory_table(self.client, redactor=self.redactor)

    def skipped_table(self) -> Styler | HtmlBlock:
        """What the loaders skipped, by file and reason (a one-line note when nothing was)."""
        st = tables.skipped_table(self.client, redactor=self.redactor)
        if isinstance(st, pd.DataFrame):
            text = "No record of any loaded file was skipped."
            return HtmlBlock(note_html(text), text)
        return st

    def data_quality(self) -> HtmlBlock | None:
        """The data-quality findings (unreadable, unrecognised or partly skipped files)."""
        return self.show_findings("data_quality")


def _matches(check: str, wanted: tuple[str, ...]) -> bool:
    return check in wanted or (check.startswith("plan_") and "plan_*" in wanted)


def _text(value: object) -> str:
    return escape(str(value))


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def chapter(
    name: str,
    data_dir: str | Path = "../data/sample",
    *,
    client_name: str | None = None,
    presets: Mapping[str, str] | None = None,
    show_literals: bool = False,
    cache_dir: str | Path | None = None,
    findings_dir: str | Path | None = None,
    link_suffix: str = ".ipynb",
    dsn_env: str | None = None,
) -> Chapter:
    """The chapter object a notebook works with (an :class:`Overview` for ``"overview"``).

    Also switches plotly to the report renderer (see :mod:`auditkit.report.render`).
    """
    use_report_renderer()
    cls = Overview if name == "overview" else Chapter
    return cls(
        name,
        data_dir,
        client_name=client_name,
        presets=presets,
        show_literals=show_literals,
        cache_dir=cache_dir,
        findings_dir=findings_dir,
        link_suffix=link_suffix,
        dsn_env=dsn_env,
    )
