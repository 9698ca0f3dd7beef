"""Injection safety: client text with markup is shown as text and never executes.

Payloads are planted where a client controls the text — SQL literals and comments, quoted
table names, endpoint paths, a file name — in a real query log, and the audit is run with
``show_literals`` (so even the literals reach the pages). Every page is then opened in headless
Chromium: each payload would set ``window.__pwned`` (or open a dialog, or request ``x``) if
it ran; none may, and the payload text must be visible as text. Unit tests hold the HTML,
table and figure builders to the same rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditkit.findings import Evidence, Finding, Recommendation, Severity, Subject
from auditkit.profile import query_profile
from auditkit.report import figures, tables
from auditkit.report.html import finding_html, summary_html
from auditkit.runner import RunResult, run_audit

SCRIPT = "<script>window.__pwned=1</script>"
IMG = "<img src=x onerror=window.__pwned=2>"
SVG = "<svg onload=window.__pwned=3>"
ENDPOINT = "shop/<script>window.__pwned=4</script>/"
ENDPOINT_IMG = 'api/"><img src=x onerror=window.__pwned=5>/'
FILE_NAME = "<img src=x onerror=window.__pwned=6>.dat"
PAYLOADS = (SCRIPT, IMG, SVG, ENDPOINT, ENDPOINT_IMG)
# -- builders (no browser) ---------------------------------------------------------------------------
def _finding() -> Finding:
    return Finding(
        check="n_plus_one",
        severity=Severity.HIGH,
        title=f"N+1 on {ENDPOINT}",
        summary=f"table {IMG}",
        subject=Subject(
            endpoint=ENDPOINT_IMG,
            table=IMG,
            columns=(SVG,),
            index=SCRIPT,
            fingerprint=f"select {SCRIPT}",
        ),
        metrics={"where": SVG},
        recommendation=Recommendation(SCRIPT, sql=f'CREATE INDEX ON "{IMG}" (a)', django=SVG),
        evidence=Evidence(
            items=({"sql": f'SELECT * FROM "{SCRIPT}"', "endpoint": ENDPOINT},), note=IMG
        ),
        chapter="queries",
    )


@pytest.mark.parametrize("redact", [True, False])
def test_finding_html_escapes_every_field(redact: bool) -> None:
    html = finding_html(_finding(), redact=redact) + summary_html(
        [_finding()], links={"queries": 'x.html"><script>'}
    )
    for raw in ("<script", "<img", "<svg"):
        assert raw not in html, raw
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert 'href="x.html&quot;&gt;&lt;script&gt;#finding-' in html  # attribute values escaped too


def test_tables_and_figures_escape_client_text() -> None:
    events = pd.DataFrame(
        {
            "sql": [f'SELECT * FROM "{SCRIPT}" WHERE a = 1', f'SELECT * FROM "{IMG}"'],
            "duration_ms": [3.0, 1.0],
            "endpoint": [ENDPOINT, ENDPOINT_IMG],
            "request_id": ["r1", "r2"],
            "trace_id": [None, None],
        }
    )
    from auditkit.analysis.requests import endpoint_table, request_statements

    prof = query_profile(events)
    endpoints = endpoint_table(request_statements(events))
    html = (
        tables.table(prof, [tables.Col("fingerprint", "statement", "sql")]).html
        + tables.table(endpoints, [tables.Col("endpoint", "endpoint")]).html
    )
    assert "<script>" not in html and "<img" not in html
    for fig in (figures.statement_time(prof), figures.endpoint_time(endpoints)):
        text = fig.to_json()
        assert "<script" not in text and "<img" not in text
        assert "&lt;script&gt;" in text or "&lt;img" in text


# -- in the browser -------------------------------------------------------------------------------------
def _client(root: Path) -> Path:
    root.mkdir(parents=True)
    lines: list[dict[str, Any]] = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    for r in range(6):
        rid = f"{r + 1:032x}"
        endpoint = (ENDPOINT, ENDPOINT_IMG)[r % 2]
        t = f"2024-05-01T10:00:{r:02d}"
        lines.append(
            {
                "ts": f"{t}.010Z",
                "duration_ms": 6.0,
                "alias": "default",
                "request_id": rid,
                "endpoint": endpoint,
                "method": "GET",
                "pid": 1,
                "thread": "t",
                "params": [SCRIPT],
                "sql": f'/* {SVG} */ SELECT "{SCRIPT}"."id" FROM "{SCRIPT}" WHERE "{SCRIPT}"."note" = \'{IMG}\'',
            }
        )
        for i in range(7):
            lines.append(
                {
                    "ts": f"{t}.{20 + i:03d}Z",
                    "duration_ms": 1.0,
                    "alias": "default",
                    "request_id": rid,
                    "endpoint": endpoint,
                    "method": "GET",
                    "pid": 1,
                    "thread": "t",
                    "params": [i],
                    "sql": f'SELECT "{IMG}"."name" FROM "{IMG}" WHERE "{IMG}"."id" = %s LIMIT 21',
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
                "duration_ms": 25.0 + r,
                "db_ms": 13.0,
                "db_calls": 8,
            }
        )
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    (root / FILE_NAME).write_bytes(b"\x00\x01\x02 not a log")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    base = tmp_path_factory.mktemp("injection")
    result = run_audit(_client(base / "acme"), base / "out", show_literals=True)
    assert result.ok, result.summary()
    return result


@pytest.mark.browser
def test_nothing_executes_in_any_page(browser: Any, run: RunResult) -> None:
    shown = ""
    for path in sorted(Path(run.report_dir).glob("*.html")):
        context = browser.new_context()
        page = context.new_page()
        dialogs: list[str] = []
        requests: list[str] = []
        page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))

        def route(r: Any, _request: Any = None, requests: list[str] = requests) -> None:
            requests.append(r.request.url)
            r.continue_()

        page.route("**/*", route)
        page.goto(path.as_uri(), wait_until="load")
        if "plotly-graph-div" in path.read_text(encoding="utf-8"):
            page.wait_for_selector(".main-svg", timeout=15000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None, path.name
        assert dialogs == [], path.name
        assert not [u for u in requests if u.rstrip("/").endswith("/x")], (
            path.name
        )  # <img src=x> never loaded
        assert (
            page.evaluate(
                "document.querySelectorAll('img[onerror], svg[onload], img[src=\"x\"]').length"
            )
            == 0
        )
        shown += page.inner_text("body")
        # hover texts and labels of charts are SVG text: payloads appear there as text too
        shown += " ".join(page.locator(".main-svg text").all_text_contents())
        context.close()
    # the payloads are visible as text (in tables, findings, inventory)
    for payload in (SCRIPT, IMG, ENDPOINT, FILE_NAME):
        assert payload in shown, payload
