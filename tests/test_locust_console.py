"""Locust's console output and --logfile → load_samples (totals, intervals, ramp) and load_failures.

Fixtures are a recorded Locust 2.47.0 run (tests/fixtures/locust/SOURCES.md); the peer corpus
adds a distributed master's --logfile (Locust 2.32.4).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.analysis.load import load_steps
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader

LOCUST = Path(__file__).parent / "fixtures" / "locust"


def load(name: str):  # type: ignore[no-untyped-def]
    path = LOCUST / name
    assert detect(path).format == "locust_console"
    return get_loader("locust_console").load(path)


def test_console_tables() -> None:
    res = load("console-tables-2.47.0.txt")
    rep = res.report
    assert rep.read == rep.parsed == 45 and rep.skipped_total == 0
    s = res.frames["load_samples"]
    total = s[s["row"] == "total"].set_index("endpoint")
    assert total.loc["Aggregated", "requests"] == 261 and total.loc["Aggregated", "failures"] == 32
    assert total.loc["/catalogue/", "method"] == "GET"
    assert total.loc["/catalogue/", "rps"] == pytest.approx(21.84)
    # percentiles come from the percentiles table
    assert (total.loc["/product/[id]/", ["p50_ms", "p95_ms", "p99_ms"]] == [16, 27, 48]).all()
    assert total.loc["Aggregated", "p95_ms"] == 25
    assert total["ts"].isna().all()
    intervals = s[s["row"] == "interval"]
    assert intervals["snapshot"].nunique() == 4
    agg = intervals[intervals["endpoint"] == "Aggregated"]
    assert agg["requests"].tolist() == [0, 47, 130, 223]  # cumulative, as Locust prints them
    assert intervals["ts"].isna().all()  # nothing dates them in this file
    assert any("no log line dates them" in w for w in rep.warnings)
    f = res.frames["load_failures"]
    assert f[["method", "endpoint", "occurrences"]].values.tolist() == [
        ["POST", "/basket/add/", 32]
    ]
    assert f["error"].iloc[0].startswith("HTTPError('500 Server Error")


def test_logfile_ramp() -> None:
    res = load("logfile-2.47.0.log")
    s = res.frames["load_samples"]
    assert (s["row"] == "ramp").all()
    assert s["target_users"].dropna().tolist() == [6.0] and s["spawn_rate"].dropna().tolist() == [
        2.0
    ]
    assert s["users"].dropna().tolist() == [6.0]
    assert s["ts"].iloc[0] == pd.Timestamp("2026-12-05 07:55:13.545", tz="UTC")
    assert "load_failures" not in res.frames or len(res.frames["load_failures"]) == 0


def test_merged_console_dates_tables_from_the_ramp() -> None:
    res = load("console-merged-2.47.0.txt")
    assert res.report.read == res.report.parsed == 51
    s = res.frames["load_samples"]
    agg = s[(s["row"] == "interval") & (s["endpoint"] == "Aggregated")]
    start = pd.Timestamp("2026-12-05 07:56:17.539", tz="UTC")  # "Ramping to 6 users …"
    assert list(agg["ts"]) == [start + pd.Timedelta(seconds=2 * k) for k in range(4)]
    assert agg["users"].tolist() == [0.0, 4.0, 6.0, 6.0]  # 2 users/s up to 6
    assert any("estimates" in w for w in res.report.warnings)
    total = s[s["row"] == "total"].set_index("endpoint")
    assert total.loc["Aggregated", "requests"] == 269
    assert res.frames["load_failures"]["occurrences"].tolist() == [28]
    # the periodic tables have no p95: their steps never reach the capacity check
    assert load_steps(s)["p95_ms"].isna().all()


def test_peer_distributed_master_log(peer_data: Path) -> None:
    path = peer_data / "jitterbug" / "locust.log"
    assert detect(path).format == "locust_console"
    res = get_loader("locust_console").load(path)
    assert res.report.read == res.report.parsed == 147  # DEBUG and INFO lines alike
    s = res.frames["load_samples"]
    text = path.read_text()
    assert s["users"].notna().sum() == text.count("All users spawned") + text.count(
        "Currently spawned users"
    )
    assert s["users"].max() == 15 and s["target_users"].max() == 15


def test_console_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("hello\nType     Name   oops\n")
    with pytest.raises(NothingParsedError):
        get_loader("locust_console").load(bad)
    head = (LOCUST / "console-tables-2.47.0.txt").read_text().splitlines()
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join([*head[:10], "GET   /x   12  0(0.0", *head[10:]]))
    res = get_loader("locust_console").load(cut)
    res.report.check()
    assert res.report.skipped["not Locust output"] == 1


def test_console_without_type_column(tmp_path: Path) -> None:
    """Locust 1.x printed the method inside the name column (no Type column): written by hand
    after Locust 1.x's print_stats layout."""
    text = (
        " Name                                      # reqs      # fails  |     Avg     Min     Max  Median  |   req/s failures/s\n"
        "-------------------------------------------------------------------------------------------------------------------\n"
        " GET /products/                                  120     2(1.67%)  |      35      12     410      30  |    9.80    0.20\n"
        " POST /basket/add/                                40     0(0.00%)  |      52      20     300      48  |    3.10    0.00\n"
        "-------------------------------------------------------------------------------------------------------------------\n"
        " Aggregated                                      160     2(1.25%)  |      39      12     410      33  |   12.90    0.20\n"
    )
    path = tmp_path / "console.txt"
    path.write_text(text)
    assert detect(path).format == "locust_console"
    res = get_loader("locust_console").load(path)
    s = res.frames["load_samples"]
    assert s["endpoint"].tolist() == ["/products/", "/basket/add/", "Aggregated"]
    assert s["method"].tolist()[:2] == ["GET", "POST"] and pd.isna(s["method"].iloc[2])
    assert s["requests"].tolist() == [120, 40, 160] and s["failures"].tolist() == [2, 0, 2]
    assert s["p50_ms"].tolist() == [30, 48, 33] and s["rps"].tolist()[-1] == 12.9
