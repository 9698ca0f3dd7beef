"""The indexing chapter's figure and tables."""

from __future__ import annotations

import pandas as pd
import pytest

from auditkit import query_profile
from auditkit.auditing import Audit
from auditkit.findings import Finding, Impact, Recommendation, Severity, Subject
from auditkit.report.figures_indexing import table_time, table_time_frame
from auditkit.report.notebook import chapter


@pytest.fixture
def profile() -> pd.DataFrame:
    events = pd.DataFrame(
        {
            "sql": [
                'SELECT * FROM "a" WHERE "a"."x" = 1',
                'SELECT * FROM "a" WHERE "a"."x" = 2',
                'SELECT * FROM "a" INNER JOIN "b" ON ("a"."b_id" = "b"."id")',
                'UPDATE "b" SET "y" = 1 WHERE "b"."id" = 3',
                "SELECT * FROM pg_stat_statements",
                "BEGIN",
            ],
            "duration_ms": [10.0, 30.0, 60.0, 5.0, 7.0, 0.1],
        }
    )
    return query_profile(events)


def test_time_is_split_between_tables_and_adds_up(profile: pd.DataFrame) -> None:
    df = table_time_frame(profile)
    by = df.groupby(["table", "kind"])["total_ms"].sum()
    assert by[("a", "select")] == pytest.approx(40.0 + 30.0)
    assert by[("b", "select")] == pytest.approx(30.0) and by[("b", "update")] == pytest.approx(5.0)
    assert "pg_stat_statements" not in set(df["table"])  # system catalogs are left out
    assert df["total_ms"].sum() == pytest.approx(105.0)


def test_figure_stacks_kinds_largest_table_first(profile: pd.DataFrame) -> None:
    fig = table_time(profile)
    assert {t.name for t in fig.data} == {"select", "update"}
    assert list(fig.layout.yaxis.categoryarray) == ["b", "a"]  # plotly draws the last on top
    assert table_time(profile.iloc[0:0]).data == ()


def _f(check: str, severity: Severity, **metrics: object) -> Finding:
    return Finding(
        check=check,
        severity=severity,
        title=check,
        summary="",
        subject=Subject(
            table="t",
            index=str(metrics.pop("index", "i")),
            expression=str(metrics.pop("expression", "plain")),
        ),
        metrics=metrics,
        recommendation=Recommendation("r", sql="SQL"),
        impact=Impact.of(float(metrics.get("total_ms", 0.0)), 100.0)  # type: ignore[arg-type]
        if check == "missing_index"
        else None,
        chapter="indexing",
    )  # type: ignore[arg-type]


def test_candidates_and_drop_tables() -> None:
    findings = [
        _f("missing_index", Severity.LOW, keys="a", total_ms=5.0),
        _f(
            "missing_index",
            Severity.HIGH,
            keys="b, c",
            total_ms=50.0,
            cost_reduction=0.93,
            estimated_size_bytes=2048,
        ),
        _f("unused_index", Severity.LOW, index="u1", size_bytes=10.0),
        _f("unused_index", Severity.LOW, index="u2", size_bytes=5000.0),
        _f(
            "duplicate_index",
            Severity.MEDIUM,
            index="d",
            expression="identical",
            kept_index="k",
            size_bytes=1.0,
        ),
        _f("plan_seq_scan", Severity.HIGH),
    ]
    ch = chapter("indexing", audit=Audit("client", findings))
    cand = ch.candidates_table().html
    assert cand.index("b, c") < cand.index(">a<") and "2.0 kB" in cand and "50 %" in cand
    drops = ch.drops_table().html
    assert drops.index(">d<") < drops.index(">u2<") < drops.index(">u1<")
    assert "identical of k" in drops and "NaN" not in drops and "None" not in drops


def test_plan_comparisons_empty_without_validation() -> None:
    from auditkit.report.figures_indexing import plan_comparisons

    assert plan_comparisons([_f("missing_index", Severity.LOW, keys="a")]) is None
    empty = chapter("indexing", audit=Audit("client", []))
    assert "Nothing to report" in empty.candidates_table().html
