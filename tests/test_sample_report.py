"""The sample client's report as its reader sees it: pages and findings.json agree, and every
page reads clean in a real browser (no NaN, None, empty heading or code name as a label).

Screenshots of every page are taken in headless Chromium (Debian ``chromium``, via Playwright)
and kept in the test's temporary folder; the checks run on what the browser rendered.
"""

from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from auditkit.findings import Finding
from auditkit.report.html import finding_anchor
from auditkit.runner import RunResult, run_audit

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    result = run_audit(SAMPLE, tmp_path_factory.mktemp("sample-report"))
    assert result.ok, result.summary()
    return result


class _Cards(HTMLParser):
    """(anchor, severity, title) of every finding card and summary row of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[tuple[str, str, str]] = []
        self.rows: list[tuple[str, str, str]] = []
        self._card: list[str] | None = None
        self._row: list[str] | None = None
        self._grab = ""
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "div" and "ak-finding " in cls + " " and a.get("id"):
            sev = next(c.removeprefix("ak-sev-") for c in cls.split() if c.startswith("ak-sev-"))
            self._card = [str(a["id"]), sev, ""]
        elif self._card is not None and tag == "b" and not self._card[2]:
            self._grab = "card"
        elif tag == "tr":
            self._row = ["", "", ""]
        elif self._row is not None and tag == "span" and "ak-badge" in cls:
            self._row[1] = next(c.removeprefix("ak-sev-") for c in cls.split() if c.startswith("ak-sev-"))
        elif self._row is not None and tag == "a" and "#finding-" in (a.get("href") or ""):
            self._row[0] = str(a["href"]).split("#", 1)[1]
            self._grab = "row"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("b", "a"):
            if self._grab == "card" and self._card is not None:
                self.cards.append((self._card[0], self._card[1], self._card[2]))
                self._card = None
            self._grab = ""
        elif tag == "tr" and self._row is not None:
            if self._row[0]:
                self.rows.append((self._row[0], self._row[1], self._row[2]))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._grab == "card" and self._card is not None:
            self._card[2] += data
        elif self._grab == "row" and self._row is not None:
            self._row[2] += data


def _parse(path: Path) -> _Cards:
    parser = _Cards()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_pages_and_findings_json_agree(report: RunResult) -> None:
    doc = json.loads(report.findings_path.read_text(encoding="utf-8"))
    expected = {
        (finding_anchor(Finding.from_dict(f)), f["severity"], f["title"]) for f in doc["findings"]
    }
    pages = sorted(Path(report.report_dir).glob("*.html"))
    summary = _parse(Path(report.report_dir) / "index.html")
    assert set(summary.rows) == expected  # the executive summary lists every finding, as is
    cards = {card for page in pages for card in _parse(page).cards}
    chapter_cards = {c for c in cards if c[0] in {e[0] for e in expected}}
    assert chapter_cards == expected  # every finding has its card, same severity and title
    # the action plan is findings.json's, in its order
    html = (Path(report.report_dir) / "index.html").read_text(encoding="utf-8")
    plan = re.findall(r'<ol class="ak-actions">(.*?)</ol>', html, re.S)[0]
    anchors = re.findall(r'href="[^"#]*#(finding-[0-9a-f]+)"', plan)
    by_id = {f["id"]: finding_anchor(Finding.from_dict(f)) for f in doc["findings"]}
    assert anchors == [by_id[i] for i in doc["actions"]]
    # the summary opens with the action plan: its first section, before the findings
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", html, re.S)
    assert re.sub(r"<[^>]+>", "", headings[0]).strip().rstrip("¶").strip() == "What to do first"
    # every figure of a saving reads the same on the pages and in findings.json
    text = " ".join(p.read_text(encoding="utf-8") for p in pages)
    for f in doc["findings"]:
        said = (f.get("impact") or {}).get("text")
        if said:
            assert escape(said[0].upper() + said[1:]) in text, (f["title"], said)


_EMPTY_HEADINGS = """() => {
  const heads = [...document.querySelectorAll('main h2, main h3')];
  const out = [];
  heads.forEach((h, i) => {
    const r = document.createRange();
    r.setStartAfter(h);
    if (i + 1 < heads.length) { r.setEndBefore(heads[i + 1]); }
    else { r.setEndAfter(document.querySelector('main').lastElementChild); }
    const frag = r.cloneContents();
    const text = frag.textContent.replace(/\\s+/g, ' ').trim();
    if (!text && !frag.querySelector('table, pre, .plotly-graph-div')) out.push(h.textContent.trim());
  });
  return out;
}"""
_CODE_NAME = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)+$")


@pytest.mark.browser
def test_every_page_reads_clean(browser: Any, report: RunResult, tmp_path: Path) -> None:
    from tests.test_report_browser import open_offline

    for path in sorted(Path(report.report_dir).glob("*.html")):
        charts = "plotly-graph-div" in path.read_text(encoding="utf-8")
        visit = open_offline(browser, path, wait_charts=charts)
        page = visit.page
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(tmp_path / f"{path.stem}.png"), full_page=True)
        assert visit.errors == [] and visit.external == [], path.name
        text = page.inner_text("main")
        for word in ("NaN", "nan", "None", "null", "undefined", "<NA>"):
            assert not re.search(rf"(?<![\w.]){re.escape(word)}(?![\w.])", text), (path.name, word)
        assert page.evaluate(_EMPTY_HEADINGS) == [], path.name
        headers = page.eval_on_selector_all("main th", "ths => ths.map(t => t.textContent.trim())")
        raw = [h for h in headers if _CODE_NAME.match(h)]
        assert raw == [], (path.name, raw)
        labels = page.eval_on_selector_all(".ak-check", "xs => xs.map(x => x.textContent.trim())")
        assert not [x for x in labels if _CODE_NAME.match(x)], (path.name, labels)
