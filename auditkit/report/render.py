"""Offline HTML pages from executed notebooks (nbconvert), and the plotly set-up they rely on.

A page is self-contained: it opens from a file or an e-mail attachment with no network.

* **Code hidden, no gaps.** Cells are exported with nbconvert's ``basic`` template and
  ``exclude_input`` / ``exclude_input_prompt`` / ``exclude_output_prompt``; before export, the
  parameter cells and every code cell left without visible output are removed, so hidden
  code leaves no empty box behind. stderr streams (library warnings) are dropped.
* **plotly.js once per report, offline.** In the kernel, :func:`use_report_renderer` makes
  every figure display as the plotly mimetype (interactive in JupyterLab) *plus* an HTML
  ``<div>`` and script that call ``Plotly.newPlot`` without any plotly.js of their own. The
  pages of a report share one copy of the plotly.js bundled with the plotly package, written
  beside them (:data:`PLOTLY_ASSET`, by :func:`write_plotly_asset`) and loaded with a relative
  ``<script src>`` by the pages that have a chart. A page rendered alone (``plotly_src=None``)
  inlines it instead; so does :func:`single_file_html`, the whole report in one self-contained
  file for e-mailing. (plotly's ``notebook_connected`` renderer loads plotly.js from a CDN and
  ``notebook`` relies on require.js from a CDN: neither works offline.)
* **No external requests.** The page shell is ours, not JupyterLab's template (which loads
  require.js, MathJax and mermaid from CDNs): inline CSS (``report.css``), plotly.js from the
  report's own folder, nothing else. A browser test intercepts every request and fails on any
  that is not file:.
* **A table of contents** from the page's headings, and a navigation bar across chapters.

Size budget: :data:`PAGE_BUDGET_BYTES` (6 MiB) for any one file, and :data:`REPORT_BUDGET_BYTES`
(8 MiB) for a whole report folder. plotly.js (plotly 6/7) is about 4.8 MB and is there once; a
chapter's own content is tens to hundreds of kB. Tests hold every run to both.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditkit.lazy_re import compile_later
from auditkit.redact import scrub_values

if TYPE_CHECKING:  # nbformat pulls in jsonschema (1.5 s): only the runner needs it at run time
    from nbformat import NotebookNode

__all__ = [
    "PAGE_BUDGET_BYTES",
    "PLOTLY_ASSET",
    "REPORT_BUDGET_BYTES",
    "single_file_html",
    "write_plotly_asset",
    "auditkit_version",
    "PLOTLY_RENDERER",
    "Page",
    "error_page",
    "export_notebook",
    "page_html",
    "plotly_js",
    "report_css",
    "use_report_renderer",
    "warm_exporter",
]

#: any one file of a report stays under this size (plotly.js included where it is inlined)
PAGE_BUDGET_BYTES = 6 * 1024 * 1024
#: a whole report folder (pages, the shared plotly.js, findings.json, manifest.json) stays under this
REPORT_BUDGET_BYTES = 8 * 1024 * 1024
#: where the pages of a report find their shared plotly.js, relative to the pages
PLOTLY_ASSET = "assets/plotly.min.js"
#: the plotly renderer the notebooks use (see the module docstring)
PLOTLY_RENDERER = "plotly_mimetype+auditkit_html"
#: cells with these tags never reach a page
HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "remove_cell"})
_PLOT_DIV = 'class="plotly-graph-div"'


@dataclass(frozen=True)
class Page:
    """A written page: where, how big, how many charts, whether it needs plotly.js, its body."""

    path: Path
    size_bytes: int
    charts: int
    plotly_js: bool
    body: str = field(default="", repr=False, compare=False)


# -- kernel side ---------------------------------------------------------------------------------
def use_report_renderer() -> None:
    """Make figures display as the plotly mimetype plus an HTML div without plotly.js.

    Called by :func:`auditkit.report.notebook.chapter`; idempotent.
    """
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class ReportHtmlRenderer(MimetypeRenderer):  # type: ignore[misc]
        """``text/html`` of a figure that expects ``window.Plotly`` from the page."""

        def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
            html = pio.to_html(
                fig_dict,
                include_plotlyjs=False,
                include_mathjax=False,
                full_html=False,
                config={"displaylogo": False, "responsive": True},
                validate=False,
            )
            return {"text/html": html}

    if "auditkit_html" not in pio.renderers:
        pio.renderers["auditkit_html"] = ReportHtmlRenderer()
    pio.renderers.default = PLOTLY_RENDERER


def auditkit_version() -> str:
    """The running auditkit's version (also when imported from a stale editable install)."""
    try:
        from auditkit import __version__

        return str(__version__)
    except ImportError:
        from importlib.metadata import version

        return version("auditkit")


# -- page assets ---------------------------------------------------------------------------------
def report_css() -> str:
    """The report stylesheet (``auditkit/report/report.css``)."""
    return resources.files("auditkit.report").joinpath("report.css").read_text(encoding="utf-8")


def plotly_js() -> str:
    """The plotly.js bundled with the installed plotly package (no network)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def write_plotly_asset(report_dir: str | Path) -> Path:
    """Write the shared plotly.js of a report at ``report_dir/``:data:`PLOTLY_ASSET` (once)."""
    path = Path(report_dir) / PLOTLY_ASSET
    text = plotly_js()
    if not path.is_file() or path.stat().st_size != len(text.encode("utf-8")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


# -- notebook → body -----------------------------------------------------------------------------
def _visible_outputs(cell: NotebookNode) -> list[NotebookNode]:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            continue
        if o.get("output_type") in ("display_data", "execute_result"):
            data = o.get("data", {})
            if not data or (
                set(data) == {"text/plain"} and data["text/plain"].strip() in ("", "None")
            ):
                continue
        out.append(o)
    return out


def prepare(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` with parameter cells, empty code cells and stderr streams removed."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDDEN_TAGS:
            continue
        if cell.cell_type == "code":
            cell.outputs = _visible_outputs(cell)
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


@functools.cache
def _exporter() -> Any:
    """One nbconvert exporter per process: building one compiles its Jinja templates anew."""
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def warm_exporter() -> None:
    """Build the exporter and render a small notebook once (about 0.9 s: nbconvert's imports,
    its Jinja templates, the markdown renderer), so the first real page does not pay for it.
    The runner calls this while the kernels execute the first notebooks."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": "<p>x</p>", "text/plain": "x"})
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("## x\n\n*x* `x`"), code]
    notebook_body(nb)


def notebook_body(nb: NotebookNode) -> str:
    """The cells of an executed notebook as HTML, code and prompts excluded."""
    body, _ = _exporter().from_notebook_node(prepare(nb))
    return str(body)


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str, str]] = []
        self._current: tuple[int, str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3"):
            ident = dict(attrs).get("id")
            if ident:
                self._current, self._text = (int(tag[1]), ident), []
        elif tag == "a" and self._current and "anchor-link" in (dict(attrs).get("class") or ""):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._skip:
            self._skip -= 1
        elif tag in ("h1", "h2", "h3") and self._current:
            level, ident = self._current
            self.found.append((level, ident, "".join(self._text).strip()))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current and not self._skip:
            self._text.append(data)


def toc_html(body: str, levels: tuple[int, ...] = (2, 3)) -> str:
    """A table of contents of the ``levels`` headings of ``body`` (empty when none)."""
    parser = _Headings()
    parser.feed(body)
    items = [
        f'<li class="ak-toc-{level}"><a href="#{escape(ident, quote=True)}">{escape(text)}</a></li>'
        for level, ident, text in parser.found
        if level in levels and text
    ]
    return f'<nav class="ak-toc"><b>Contents</b><ul>{"".join(items)}</ul></nav>' if items else ""


def _nav(nav: Sequence[tuple[str, str]], current: str | None) -> str:
    current_attr = ' class="ak-current"'
    links = "".join(
        f'<a href="{escape(href, quote=True)}"{current_attr if href == current else ""}>{escape(label)}</a>'
        for label, href in nav
    )
    return f'<div class="ak-nav">{links}</div>' if links else ""


def page_html(
    title: str,
    body: str,
    *,
    nav: Sequence[tuple[str, str]] = (),
    current: str | None = None,
    toc: bool = True,
    footer: str = "",
    plotly_src: str | None = None,
    status: tuple[str, str] | None = None,
) -> str:
    """The page shell around ``body`` (trusted HTML): CSS, plotly.js if needed, nav, TOC.

    ``plotly_src`` is the relative address of a shared plotly.js (:data:`PLOTLY_ASSET`); without
    it, a page with charts inlines plotly.js and stands alone. ``status`` — the run's status
    word (:data:`auditkit.status.RUN_STATUSES`) and a sentence — puts a status line in the
    footer (``data-status`` holds the word), and, unless the run is complete, a notice on top.
    """
    charts = body.count(_PLOT_DIV)
    if not charts:
        head_js = ""
    elif plotly_src:
        head_js = f'<script type="text/javascript" src="{escape(plotly_src, quote=True)}"></script>'
    else:
        head_js = f'<script type="text/javascript">{plotly_js()}</script>'

    contents = toc_html(body) if toc else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    status_line, notice = "", ""
    if status is not None:
        word, sentence = status
        status_line = (
            f'<span class="ak-run-status" data-status="{escape(word, quote=True)}">'
            f"Audit {escape(word.replace('_', ' '))}: {escape(sentence)}.</span> "
        )
        if word != "complete":
            notice = (
                f'<div class="ak-error ak-run-status-notice" data-status="{escape(word, quote=True)}">'
                f"<p><b>This audit is incomplete:</b> {escape(sentence)}.</p></div>\n"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{report_css()}</style>\n{head_js}\n</head>\n<body>\n"
        f"{_nav(nav, current)}\n"
        f'<div class="ak-layout">{contents}<main class="ak-main">\n{notice}{body}\n'
        f'<div class="ak-footer">{status_line}{escape(footer)} Generated {generated} by auditkit {escape(auditkit_version())}.</div>'
        "</main></div>\n</body>\n</html>\n"
    )


def _write(path: Path, html: str, secrets: Iterable[str], body: str = "") -> Page:
    html = scrub_values(html, secrets) if secrets else html
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    charts = html.count(_PLOT_DIV)
    return Page(path, path.stat().st_size, charts, charts > 0, body)


def export_notebook(
    notebook: NotebookNode | str | Path,
    out_path: str | Path,
    *,
    title: str,
    nav: Sequence[tuple[str, str]] = (),
    current: str | None = None,
    footer: str = "",
    secrets: Iterable[str] = (),
    plotly_src: str | None = None,
    status: tuple[str, str] | None = None,
) -> Page:
    """Render an executed notebook to an offline page at ``out_path``.

    ``secrets`` are exact values scrubbed from the page as a last line of defence (the
    notebooks never display them in the first place). ``plotly_src`` and ``status``: see
    :func:`page_html`.
    """
    import nbformat

    nb = (
        notebook
        if isinstance(notebook, nbformat.NotebookNode)
        else nbformat.read(str(notebook), as_version=4)
    )
    body = notebook_body(nb)
    html = page_html(
        title,
        body,
        nav=nav,
        current=current,
        footer=footer,
        plotly_src=plotly_src,
        status=status,
    )
    return _write(Path(out_path), html, secrets, body)


def error_page(
    out_path: str | Path,
    *,
    title: str,
    message: str,
    details: str = "",
    links: Sequence[tuple[str, str]] = (),
    nav: Sequence[tuple[str, str]] = (),
    current: str | None = None,
    secrets: Iterable[str] = (),
) -> Page:
    """A page saying what failed (all text escaped), with links to what can still be read."""
    items = "".join(
        f'<li><a href="{escape(h, quote=True)}">{escape(label)}</a></li>' for label, h in links
    )
    body = (
        f"<h1>{escape(title)}</h1>"
        f'<div class="ak-error"><p><b>This part of the audit could not be produced.</b></p><p>{escape(message)}</p>'
        + (f"<pre>{escape(details)}</pre>" if details else "")
        + "</div>"
        + (f'<h2 id="see-also">See also</h2><ul>{items}</ul>' if items else "")
    )
    return _write(
        Path(out_path), page_html(title, body, nav=nav, current=current, toc=False), secrets
    )


_ID = compile_later(r'\bid="([^"]*)"')
_HREF = compile_later(r'\bhref="([^"#]*?)(?:#([^"]*))?"')


def _relink(body: str, prefix: str, pages: dict[str, str]) -> str:
    """``body`` with its ids prefixed and its links between pages turned into in-file anchors."""

    def href(m: re.Match[str]) -> str:
        target, anchor = m.group(1), m.group(2)
        if target and target not in pages:  # an outside link (or the executed notebook)
            return m.group(0)
        page_prefix = pages[target] if target else prefix
        return f'href="#{page_prefix}-{anchor}"' if anchor else f'href="#{page_prefix}"'

    return _HREF.sub(href, _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', body))


def single_file_html(
    title: str, chapters: Sequence[tuple[str, str, str]], *, footer: str = ""
) -> str:
    """The whole report as one self-contained page: ``chapters`` are (label, page file, body).

    Every chapter becomes a section; ids are prefixed with the chapter so they stay unique, and
    links between pages become links inside the file. plotly.js is inlined once.
    """
    pages = {page: Path(page).stem for _, page, _ in chapters}
    sections = "\n".join(
        f'<section id="{escape(pages[page], quote=True)}" class="ak-chapter">'
        f"{_relink(body, pages[page], pages)}</section>"
        for _, page, body in chapters
    )
    nav = [(label, f"#{pages[page]}") for label, page, _ in chapters]
    return page_html(title, sections, nav=nav, footer=footer)


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (tracebacks from the kernel carry them)."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
