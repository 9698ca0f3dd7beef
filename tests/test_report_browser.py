"""The deliverable in a real browser: headless Chromium (Debian ``chromium``) via Playwright.

Opens ``index.html`` and the chapters of a run from file://, with every request intercepted:
anything that is not file: (or data:) fails the test — the report must work with no network.
Checks that plotly drew its charts (SVG ``.main-svg``), that no console error occurred, and
that the executive summary's links land on the finding in its chapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auditkit.runner import RunResult, run_audit

pytestmark = pytest.mark.browser

@dataclass
class Visit:
    """A page opened offline, with what it tried to fetch and what went wrong."""

    page: Any
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_offline(browser: Any, path: Path, *, wait_charts: bool = False) -> Visit:
    context = browser.new_context()
    page = context.new_page()
    visit = Visit(page)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("file:", "data:", "about:", "blob:")):
            r.continue_()
        else:
            visit.external.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and visit.errors.append(m.text))
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    page.on("dialog", lambda d: (visit.dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    if wait_charts:
        page.wait_for_selector(".main-svg", timeout=15000)
    page.wait_for_timeout(300)
    return visit


def _client(root: Path) -> Path:
    root.mkdir(parents=True)
    lines: list[dict[str, Any]] = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    for r in range(8):
        rid = f"{r + 1:032x}"
        endpoint = ("books/", "books/<int:pk>/", "account/")[r % 3]
        t = f"2024-05-01T10:00:{r:02d}"
        lines.append(
            {
                "ts": f"{t}.010Z",
                "duration_ms": 4.0 + r,
                "sql": 'SELECT "catalog_book"."id", "catalog_book"."author_id" FROM "catalog_book" LIMIT 20',
                "params": [],
                "alias": "default",
                "request_id": rid,
                "endpoint": endpoint,
                "method": "GET",
                "pid": 1,
                "thread": "t",
            }
        )
        for i in range(7):
            lines.append(
                {
                    "ts": f"{t}.{20 + i:03d}Z",
                    "duration_ms": 0.8 + i / 10,
                    "sql": 'SELECT "catalog_author"."name" FROM "catalog_author" WHERE "catalog_author"."id" = %s LIMIT 21',
                    "params": [i],
                    "alias": "default",
                    "request_id": rid,
                    "endpoint": endpoint,
                    "method": "GET",
                    "pid": 1,
                    "thread": "t",
                }
            )
        lines.append(
            {
                "type": "request",
                "ts": f"{t}.000Z",
                "request_id": rid,
                "endpoint": endpoint,
                "method": "GET",
                "status": 200,
                "duration_ms": 30.0 + 3 * r,
                "db_ms": 10.0,
                "db_calls": 8,
            }
        )
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    (root / "README.txt").write_text("what the client sent us\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    base = tmp_path_factory.mktemp("browser")
    result = run_audit(_client(base / "acme"), base / "out")
    assert result.ok, result.summary()
    return result


def test_index_opens_offline_without_errors(browser: Any, run: RunResult) -> None:
    visit = open_offline(browser, run.index)
    assert visit.external == [] and visit.errors == []
    page = visit.page
    assert page.locator(".ak-toc a").count() >= 4  # table of contents
    assert page.locator(".ak-summary-table a, details.ak-minor a").count() > 0  # ranked findings
    body = page.inner_text("body")
    assert "queries.jsonl" in body and "README.txt" in body  # every input in the inventory
    assert page.locator(".input_area, .jp-InputArea, .prompt").count() == 0  # no code, no prompts


def test_chapter_charts_are_drawn_offline(browser: Any, run: RunResult) -> None:
    visit = open_offline(browser, Path(run.report_dir) / "10_queries.html", wait_charts=True)
    assert visit.external == [] and visit.errors == []
    page = visit.page
    charts = page.locator(".plotly-graph-div").count()
    assert charts >= 3  # statement time, latency, endpoint time
    assert page.locator(".plotly-graph-div .main-svg").count() >= charts
    assert page.evaluate("typeof window.Plotly") == "object"
    html = page.content()
    assert html.count('src="assets/plotly.min.js"') == 1  # the shared library once, not per chart


def test_summary_links_land_on_the_finding(browser: Any, run: RunResult) -> None:
    visit = open_offline(browser, run.index)
    page = visit.page
    link = page.locator('.ak-summary-table a[href^="10_queries.html#"]').first
    href = link.get_attribute("href")
    assert href
    link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(href)
    assert page.locator(f"#{href.split('#', 1)[1]}").count() == 1


def test_every_page_is_clean(browser: Any, run: RunResult) -> None:
    for path in sorted(Path(run.report_dir).glob("*.html")):
        charts = "plotly-graph-div" in path.read_text(encoding="utf-8")
        visit = open_offline(browser, path, wait_charts=charts)
        assert visit.external == [], (path.name, visit.external)
        assert visit.errors == [], (path.name, visit.errors)
        assert visit.page.locator(".ak-nav a").count() == 5, path.name
