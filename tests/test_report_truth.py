"""What the report says is true of the client, not of our own sample shop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sample_names() -> tuple[set[str], set[str]]:
    """The sample application's model classes and their tables (``app_model``)."""
    models, tables = set(), set()
    for path in sorted((ROOT / "sample_app").glob("*/models.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                models.add(node.name)
                tables.add(f"{path.parent.name}_{node.name.lower()}")
    return models, tables


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings: what it writes into findings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_sample_application_name_in_generated_text() -> None:
    """No model, table or project name of sample_app appears in any string auditkit writes:
    every fix is derived from the client's own models."""
    models, tables = _sample_names()
    assert {"Book", "OrderLine"} <= models and "catalog_book" in tables  # the scan sees the app
    pattern = re.compile(
        rf"\b(?:{'|'.join(sorted(models | tables))})\b|\bbookshop\b|\border_lines\b"
    )
    hits = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for path in sorted((ROOT / "auditkit").rglob("*.py"))
        for line, text in _code_strings(path)
        if pattern.search(text)
    ]
    assert not hits, hits


MYSQL_CLIENT = ROOT / "tests" / "fixtures" / "mysql_client"


def test_a_nearly_idle_database_has_no_slow_statement() -> None:
    """The MariaDB shop's slow log holds 23 ms of statement time: a statement at half of it is
    no 'high' slow statement, and the action plan and the findings agree that nothing stands out."""
    import auditkit
    from auditkit.findings import Severity

    result = auditkit.audit(auditkit.load_client(MYSQL_CLIENT))
    assert not [f for f in result.findings if f.check == "slow_query"]
    assert not [f for f in result.findings if f.severity >= Severity.HIGH and not f.action]


def test_a_slow_statement_reads_plainly() -> None:
    import pandas as pd

    import auditkit
    from auditkit.checks.slow_queries import slow_statements

    events = pd.DataFrame(
        {
            "sql": ["SELECT * FROM big WHERE a = 1"] * 3 + ["SELECT 1"] * 10,
            "duration_ms": [900.0, 1100.0, 1000.0] + [0.5] * 10,
            "ts": pd.date_range("2024-01-01", periods=13, freq="min", tz="UTC"),
        }
    )
    profile = auditkit.query_profile(events)
    fid = profile["fingerprint_id"].iloc[0]
    endpoints = pd.DataFrame(
        {"fingerprint_id": [fid], "endpoint": ["(unknown endpoint)"], "calls": [3], "requests": [3]}
    )
    (f,) = slow_statements(profile, endpoints)
    assert "unknown endpoint" not in f.summary and f.impact.requests is None
    assert f.summary.startswith("Ran 3 times, 3.0 s in total")
    assert f.impact.note is None  # the page's "at stake" wording says it once


def test_latency_histogram_labels_only_powers_of_ten() -> None:
    import pandas as pd

    from auditkit.report.figures import latency_distribution

    fig = latency_distribution(pd.DataFrame({"duration_ms": [0.2] * 20 + [1.2]}))
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1


def test_tables_hide_empty_columns_and_print_plain_numbers() -> None:
    import pandas as pd

    from auditkit.report.tables import Col, plain_number, table

    df = pd.DataFrame({"what": ["a", "b"], "n": [1.0, None], "empty": [None, float("nan")]})
    html = table(df, [Col("what", "item"), Col("n", "count", "count"), Col("empty", "blank")]).html
    assert "blank" not in html and "count" in html and "nan" not in html.lower()
    assert [plain_number(x) for x in (1.5e-17, 0.00022, 8.34e-05, 1.11)] == [
        "≈ 0",
        "0.000220",
        "0.0000834",
        "1.11",
    ]


def test_long_values_and_in_lists_are_shortened_in_tables() -> None:
    from auditkit.report.tables import short_sql

    rows = ", ".join(["(?, ?)"] * 20)
    assert short_sql(f"INSERT INTO `shop_order` (`a`, `b`) VALUES {rows}") == (
        "INSERT INTO `shop_order` (`a`, `b`) VALUES (?, ?), …"
    )
    assert (
        short_sql("SELECT a FROM t WHERE id IN ($1, $2, $3)")
        == "SELECT a FROM t WHERE id IN ($1, …)"
    )
    assert (
        short_sql("SELECT a FROM t WHERE (a, b) = (?, ?)")
        == "SELECT a FROM t WHERE (a, b) = (?, ?)"
    )


def test_threshold_sentences_read_with_their_numbers() -> None:
    from auditkit.report.notebook import threshold_words

    assert threshold_words("statements run at least 1 times on tables") == (
        "statements run at least once on tables"
    )
    assert (
        threshold_words("an index unused means at most 0 scans in")
        == "an index unused means no scans in"
    )
    assert threshold_words("at most 1 scans, at least 2 rows") == "at most 1 scan, at least 2 rows"


def test_one_statement_reads_in_the_singular() -> None:
    from auditkit.checks.indexes.candidates import _lead

    text = _lead(1, 183, 10377.0, 0.055, "shop_customer", "UPPER(email)", ["/lookup/"])
    assert "1 statement (183 executions" in text and "filters or sorts shop_customer" in text
    assert text.endswith("serves it. It runs on /lookup/.")


def test_index_windows_and_usage_read_in_words() -> None:
    from auditkit.analysis.catalog import IndexInfo, stats_window

    ix = IndexInfo(
        "shop_order",
        "shop_order_x",
        (),
        idx_scan=0,
        stats_reset="2026-12-05 07:51:00+00",
        collected_at="2026-12-05 07:53:30+00",
    )
    assert (
        stats_window([ix], {}) == "since the statistics reset on 2026-12-05 07:51 UTC (2 minutes)"
    )
    assert ix.usage_text() == "was never scanned"
    from dataclasses import replace

    assert replace(ix, idx_scan=1).usage_text() == "was scanned 1 time"
