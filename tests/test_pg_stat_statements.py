"""pg_stat_statements loaders (CSV, JSON, psql), aggregation by fingerprint and snapshot deltas.

Fixtures (``tests/fixtures/pgss``, see SOURCES.md) were written by PostgreSQL 15 running a
Django-like workload, plus PostgreSQL ≤ 12 and 17 column sets derived from the same snapshot;
the extension's own pg_regress outputs are read from the peer-data corpus.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401  (registers every loader)
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.pg_stat_statements import aggregate_pgss, pgss_delta, pgss_frame
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult
from auditkit.schemas import STATEMENT_STATS
from auditkit.sql.fingerprint import fingerprint, fingerprint_id

REGRESS = "postgres/contrib/pg_stat_statements/expected"

#: file → (result tables with calls and query columns, rows in them). Counted independently of
#: the loader from the psql footers:
#:   awk 'prev ~ /(^| )calls( |$)/ && prev ~ /(^| )query( |$)/ && prev ~ /\|/ && /^-+(\+-+)+$/ {w=1; t++}
#:        w && /^\([0-9]+ rows?\)$/ {gsub(/[()a-z ]/,""); n+=$0; w=0} {prev=$0} END {print t, n}' FILE
#: The manifest's figures are `grep -c calls FILE`: one query line and one header line per table.
REGRESS_TABLES = {
    "dml.out": (2, 20, 4),
    "extended.out": (4, 16, 8),
    "planning.out": (2, 6, 5),
    "select.out": (7, 59, 20),
    "utility.out": (16, 154, 32),
    "wal.out": (1, 5, 2),
}

#: fixture → (format, rows)
FIXTURES = {
    "pg12.csv": ("pgss_csv", 25),
    "pg12.json": ("pgss_json", 25),
    "pg15-before.csv": ("pgss_csv", 18),
    "pg15-after.csv": ("pgss_csv", 27),
    "pg15-names.csv": ("pgss_csv", 27),
    "pg15-reset.csv": ("pgss_csv", 18),
    "pg15-snap1-info.csv": ("pgss_csv", 28),
    "pg15-snap2-info.csv": ("pgss_csv", 29),
    "pg15-snap3-info.csv": ("pgss_csv", 18),
    "pg15.json": ("pgss_json", 27),
    "pg15.jsonl": ("pgss_json", 27),
    "pg15-rows.json": ("pgss_json", 27),
    "pg15-aligned.txt": ("pgss_psql", 27),
    "pg15-unaligned.txt": ("pgss_psql", 27),
    "pg17.csv": ("pgss_csv", 27),
    "pg17.jsonl": ("pgss_json", 27),
    "psql-expanded.txt": ("pgss_psql", 2),
    "psql-border2.txt": ("pgss_psql", 2),
}

KEY = ["query_id", "userid", "dbid"]
STATS = [
    "calls",
    "total_ms",
    "mean_ms",
    "min_ms",
    "max_ms",
    "stddev_ms",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
]
CUSTOMER_BY_ID = 'SELECT "shop_customer"."id", "shop_customer"."name" FROM "shop_customer" WHERE "shop_customer"."id" = $1 LIMIT $2'


@pytest.fixture(scope="module")
def pgss(fixtures: Path) -> Path:
    return fixtures / "pgss"


def load(path: Path, fmt: str | None = None) -> LoadResult:
    return get_loader(fmt or detect(path).format).load(path)


def by_key(df: pd.DataFrame) -> pd.DataFrame:
    keys = KEY + (["toplevel"] if "toplevel" in df else [])
    return df.set_index(keys).sort_index()


# -- loading ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_fixture_is_detected_and_read(pgss: Path, name: str) -> None:
    fmt, rows = FIXTURES[name]
    assert detect(pgss / name).format == fmt
    result = load(pgss / name)
    report = result.report
    report.check()
    assert report.read == report.parsed + report.skipped_total
    assert len(result.frame) == rows == report.parsed == report.events["statement_stats"]
    df = result.frame
    assert list(df.columns[: len(STATEMENT_STATS.names)]) == STATEMENT_STATS.names
    assert df["fingerprint_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert sorted(df["rank"].tolist()) == list(range(1, rows + 1))
    assert df["share"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(REGRESS_TABLES))
def test_pg_regress_outputs(peer_data: Path, name: str) -> None:
    path = peer_data / REGRESS / name
    tables, rows, calls_lines = REGRESS_TABLES[name]
    text = path.read_text(encoding="utf-8")
    assert sum("calls" in line for line in text.split("\n")) == calls_lines  # the manifest's count
    result = load(path)
    assert result.format == "pgss_psql"
    result.report.check()
    assert len(result.frame) == rows
    assert not any(
        "psql counted" in w for w in result.report.warnings
    )  # every (N rows) footer agrees
    if tables > 1:
        assert any(f"{tables} result tables" in w for w in result.report.warnings)


def test_regress_values(peer_data: Path) -> None:
    select = load(peer_data / REGRESS / "select.out").frame
    add = select[select["sample_sql"] == 'SELECT $1 + $2 + $3 AS "add"']
    assert add[["calls", "rows"]].values.tolist() == [[3, 3]]
    assert 'SELECT $1\n  -- but this one will appear\n  AS "text"' in set(select["sample_sql"])
    assert "SELECT $1 || $2" in set(select["sample_sql"])  # '|' inside the query column
    planning = load(peer_data / REGRESS / "planning.out").frame
    row = planning[planning["sample_sql"] == "SELECT $1"].iloc[0]
    assert (row["plans"], row["calls"], row["rows"]) == (3, 3, 3)
    assert (
        'SELECT plans, calls, rows, query FROM pg_stat_statements\n  WHERE query NOT LIKE $1 ORDER BY query COLLATE "C"'
        in set(planning["sample_sql"])
    )
    wal = load(peer_data / REGRESS / "wal.out").frame
    assert wal["wal_bytes_generated"].tolist() == [True, True, False, False, True]
    assert wal["rows"].tolist() == [1, 10, 1, 0, 3]


def test_three_column_generations_agree(pgss: Path) -> None:
    """PostgreSQL ≤ 12, 15 and 17 exports of one snapshot map to the same statistics."""
    pg15 = by_key(load(pgss / "pg15-after.csv").frame)
    pg17 = by_key(load(pgss / "pg17.csv").frame)
    pg12 = load(pgss / "pg12.csv").frame.set_index(KEY).sort_index()
    pd.testing.assert_frame_equal(pg15[STATS], pg17[STATS])
    top = pg15.xs(True, level="toplevel")
    pd.testing.assert_frame_equal(top[STATS], pg12[STATS])
    assert "plans" in pg15 and "plans" not in pg12
    # 17's renames land on one name; ≤ 16's blk_read_time is renamed to it
    assert "shared_blk_read_time" in pg12 and "blk_read_time" not in pg12
    assert pg17["shared_blk_read_time"].tolist() == pg15["shared_blk_read_time"].tolist()
    assert str(pg17["stats_since"].dtype).startswith("datetime64") and "UTC" in str(
        pg17["stats_since"].dtype
    )
    assert pg17["stats_since"].iloc[0] == pd.Timestamp("2026-11-24 20:19:22.701668", tz="UTC")


def test_json_shapes_and_generations_agree(pgss: Path) -> None:
    array = by_key(load(pgss / "pg15.json").frame)
    lines = by_key(load(pgss / "pg15.jsonl").frame)
    pg17 = by_key(load(pgss / "pg17.jsonl").frame)
    pg12 = load(pgss / "pg12.json").frame.set_index(KEY).sort_index()
    pd.testing.assert_frame_equal(array[STATS], pg17[STATS])
    pd.testing.assert_frame_equal(array.xs(True, level="toplevel")[STATS], pg12[STATS])
    # the json_agg export and the row_to_json export were taken moments apart: same statements
    assert set(array.index) == set(lines.index)
    wrapped = load(pgss / "pg15-rows.json").frame
    assert (wrapped["stats_reset"] == pd.Timestamp("2026-11-24 20:19:22.701668", tz="UTC")).all()
    assert (wrapped["dealloc"] == 0).all()


def test_query_id_is_exact(pgss: Path) -> None:
    """A 64-bit queryid must not pass through a float (CSV and JSON)."""
    for name in ("pg15-after.csv", "pg15.json", "pg15.jsonl", "pg12.json"):
        ids = set(load(pgss / name).frame["query_id"])
        assert "-9177489515463929558" in ids, name


def test_names_export(pgss: Path) -> None:
    df = load(pgss / "pg15-names.csv").frame
    assert set(df["database"]) == {"shop", "postgres"}
    assert set(df["user"]) == {"django_app", "reporting", "postgres"}
    assert df["userid"].notna().all() and df["dbid"].notna().all()
    ids = load(pgss / "pg15-after.csv").frame  # no names: the oids stand in
    assert ids["database"].str.fullmatch(r"\d+").all() and ids["user"].str.fullmatch(r"\d+").all()


def test_values_of_one_statement(pgss: Path) -> None:
    df = load(pgss / "pg15-after.csv").frame
    row = df[(df["sample_sql"] == CUSTOMER_BY_ID) & (df["userid"] == "16384")].iloc[0]
    assert row["calls"] == 20 and row["rows"] == 20
    assert row["total_ms"] == pytest.approx(row["mean_ms"] * 20)
    assert (
        row["fingerprint"]
        == 'select "shop_customer"."id", "shop_customer"."name" from "shop_customer" where "shop_customer"."id" = ? limit ?'
    )
    assert bool(row["toplevel"]) is True
    assert row["sources"].endswith("pg15-after.csv") and row["source_line"] >= 2


def test_psql_outputs_match_csv(pgss: Path) -> None:
    csv_rows = load(pgss / "pg15-after.csv").frame
    for name in ("pg15-aligned.txt", "pg15-unaligned.txt"):
        df = load(pgss / name).frame
        assert set(df["sample_sql"]) <= set(csv_rows["sample_sql"]) | {
            q for q in df["sample_sql"] if "pg_stat_statements" in q
        }, name
        spent = df[df["sample_sql"].str.startswith('SELECT "shop_customer"."name", SUM(')].iloc[0]
        assert spent["sample_sql"].count("\n") == 5 and spent["calls"] == 4
        assert spent["user"] == "django_app"
    expanded = load(pgss / "psql-expanded.txt").frame
    border2 = load(pgss / "psql-border2.txt").frame
    assert (
        expanded["sample_sql"].tolist()
        == border2["sample_sql"].tolist()
        == [
            'SELECT "a"."id"\n  FROM "a"\n WHERE "a"."id" = $1',
            "SELECT $1 || $2",
        ]
    )
    assert expanded["total_ms"].tolist() == border2["total_ms"].tolist() == [12.5, 0.25]


def test_pgss_text_fingerprints_like_logged_statements(pgss: Path) -> None:
    """pg_stat_statements' $n texts join the statements a log shows with literals."""
    df = load(pgss / "pg15-after.csv").frame
    logged = {
        'SELECT "shop_customer"."id", "shop_customer"."name" FROM "shop_customer" WHERE "shop_customer"."id" = 3 LIMIT 21',
        'SELECT "shop_order"."id", "shop_order"."total" FROM "shop_order" WHERE "shop_order"."customer_id" IN (4, 5, 6, 7, 8, 9, 10)',
        'UPDATE "shop_order" SET "status" = \'paid\' WHERE "shop_order"."id" = 42',
        "SELECT date_trunc('day', created) AS day, count(*) FROM shop_order GROUP BY 1 ORDER BY 1",
    }
    ids = set(df["fingerprint_id"])
    for sql in logged:
        assert fingerprint_id(fingerprint(sql)) in ids, sql


# -- aggregation --------------------------------------------------------------------------------
def test_aggregate_merges_users_and_in_lists(pgss: Path) -> None:
    rows = load(pgss / "pg15-after.csv").frame
    agg = aggregate_pgss(rows)
    assert agg["fingerprint_id"].is_unique
    assert agg["rank"].tolist() == list(range(1, len(agg) + 1))
    assert agg["calls"].sum() == rows["calls"].sum()
    assert agg["total_ms"].sum() == pytest.approx(rows["total_ms"].sum())
    lookup = agg[
        agg["fingerprint"].str.contains('where "shop_customer"."id" = ?', regex=False)
    ].iloc[0]
    assert (lookup["calls"], lookup["pgss_rows"]) == (24, 2)  # django_app 20 + reporting 4
    in_list = agg[agg["fingerprint"].str.contains("in (...)", regex=False)].iloc[0]
    parts = rows[rows["fingerprint_id"] == in_list["fingerprint_id"]]
    assert in_list["pgss_rows"] == 3 == len(parts)  # IN lists of 1, 3 and 7 items
    assert in_list["min_ms"] == parts["min_ms"].min() and in_list["max_ms"] == parts["max_ms"].max()
    assert in_list["sample_sql"] == parts.loc[parts["max_ms"].idxmax(), "sample_sql"]
    assert in_list["mean_ms"] == pytest.approx(parts["total_ms"].sum() / parts["calls"].sum())


def test_aggregate_statistics_are_exact() -> None:
    """Merged mean and population deviation equal those of all the executions together."""
    rng = np.random.default_rng(7)
    groups = [rng.lognormal(1.0, 0.8, size=n) for n in (1, 5, 40, 300)]
    rows = pd.DataFrame(
        {
            "fingerprint_id": ["f"] * len(groups),
            "fingerprint": ["select ?"] * len(groups),
            "calls": [len(g) for g in groups],
            "total_ms": [g.sum() for g in groups],
            "mean_ms": [g.mean() for g in groups],
            "stddev_ms": [g.std() for g in groups],
            "min_ms": [g.min() for g in groups],
            "max_ms": [g.max() for g in groups],
            "rows": [len(g) for g in groups],
        }
    )
    every = np.concatenate(groups)
    out = aggregate_pgss(rows).iloc[0]
    assert out["calls"] == len(every)
    assert out["mean_ms"] == pytest.approx(every.mean(), rel=1e-12)
    assert out["stddev_ms"] == pytest.approx(every.std(), rel=1e-9)
    assert (out["min_ms"], out["max_ms"]) == (every.min(), every.max())


# -- deltas -------------------------------------------------------------------------------------
def test_delta_without_reset(pgss: Path) -> None:
    before = load(pgss / "pg15-before.csv").frame
    after = load(pgss / "pg15-after.csv").frame
    delta, messages = pgss_delta(before, after)
    assert messages == []
    assert not delta["reset"].any()
    b, a, d = by_key(before), by_key(after), by_key(delta)
    common = d.index.intersection(b.index)
    assert len(common) > 5
    assert (d.loc[common, "calls"] == a.loc[common, "calls"] - b.loc[common, "calls"]).all()
    assert np.allclose(
        d.loc[common, "total_ms"], a.loc[common, "total_ms"] - b.loc[common, "total_ms"]
    )
    assert np.allclose(
        d.loc[common, "mean_ms"], d.loc[common, "total_ms"] / d.loc[common, "calls"].astype(float)
    )
    # the N+1 lookup ran 5 times per workload run, 3 runs in between
    lookup = d.loc[d["sample_sql"] == CUSTOMER_BY_ID]
    assert sorted(lookup["calls"].tolist()) == [3, 15]
    new = d.index.difference(b.index)
    assert (d.loc[new, "calls"] == a.loc[new, "calls"]).all()  # new statements count whole


def test_delta_stddev_of_the_interval() -> None:
    first, second = np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0])
    both = np.concatenate([first, second])

    def snap(x: np.ndarray) -> pd.DataFrame:
        raw = pd.DataFrame(
            {
                "queryid": ["1"],
                "userid": ["10"],
                "dbid": ["5"],
                "query": ["SELECT $1"],
                "calls": [len(x)],
                "total_exec_time": [x.sum()],
                "mean_exec_time": [x.mean()],
                "stddev_exec_time": [x.std()],
                "min_exec_time": [x.min()],
                "max_exec_time": [x.max()],
            }
        )
        return pgss_frame(raw)

    delta, messages = pgss_delta(snap(first), snap(both))
    row = delta.iloc[0]
    assert messages == [] and row["calls"] == 2
    assert row["mean_ms"] == pytest.approx(20.0)
    assert row["stddev_ms"] == pytest.approx(second.std())
    assert row["max_ms"] == 30.0 and math.isnan(
        row["min_ms"]
    )  # a new maximum; the minimum is older


def test_delta_with_reset_by_calls(pgss: Path) -> None:
    after = load(pgss / "pg15-after.csv").frame
    reset = load(pgss / "pg15-reset.csv").frame
    delta, messages = pgss_delta(after, reset)
    assert any("calls went down" in m for m in messages)
    assert any("missing from the second" in m for m in messages)
    d, r = by_key(delta), by_key(reset)
    assert d["reset"].sum() >= 10
    pd.testing.assert_frame_equal(d.loc[d["reset"], STATS], r.loc[d.index[d["reset"]], STATS])


def test_delta_with_reset_by_stats_reset(pgss: Path) -> None:
    snap2 = load(pgss / "pg15-snap2-info.csv").frame
    snap3 = load(pgss / "pg15-snap3-info.csv").frame
    delta, messages = pgss_delta(snap2, snap3)
    assert (
        len(messages) == 1
        and "stats_reset" in messages[0]
        and "2026-11-24T20:19:41.970595" in messages[0]
    )
    assert delta["reset"].all()
    assert delta["calls"].sum() == snap3["calls"].sum()
    quiet, none = pgss_delta(load(pgss / "pg15-snap1-info.csv").frame, snap2)
    assert none == [] and not quiet["reset"].any()


def test_delta_with_reset_by_stats_since(pgss: Path, tmp_path: Path) -> None:
    """PostgreSQL 17: an entry evicted and tracked again gets a new stats_since."""
    before = load(pgss / "pg17.csv").frame
    text = (pgss / "pg17.csv").read_text(encoding="utf-8").split("\n")
    header, first = text[0].split(","), text[1]
    assert first.endswith("2026-11-24 20:19:22.701668+00,2026-11-24 20:19:22.701668+00")
    calls_at = header.index("calls")
    cells = next(csv.reader([first]))
    cells[calls_at] = str(int(cells[calls_at]) + 100)
    cells[-2] = cells[-1] = "2026-11-24 21:00:00+00"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    (tmp_path / "later.csv").write_text(
        "\n".join([text[0], out.getvalue().rstrip("\n"), *text[2:]]), encoding="utf-8"
    )
    after = load(tmp_path / "later.csv").frame
    delta, messages = pgss_delta(before, after)
    assert any("stats_since changed for 1 statement" in m for m in messages)
    changed = delta[delta["reset"]]
    assert len(changed) == 1 and changed["calls"].iloc[0] == int(cells[calls_at])


def test_delta_reports_evictions(pgss: Path, tmp_path: Path) -> None:
    text = (pgss / "pg15-snap2-info.csv").read_text(encoding="utf-8")
    (tmp_path / "evicted.csv").write_text(
        text.replace(",0,2026-11-24", ",7,2026-11-24"), encoding="utf-8"
    )
    _, messages = pgss_delta(
        load(pgss / "pg15-snap1-info.csv").frame, load(tmp_path / "evicted.csv").frame
    )
    assert any("7 entries were evicted" in m for m in messages)


def test_delta_by_fingerprint_without_queryid(pgss: Path) -> None:
    aligned = load(pgss / "pg15-aligned.txt").frame
    delta, messages = pgss_delta(aligned, aligned)
    assert any("matched by fingerprint" in m for m in messages)
    assert len(delta) == 0  # nothing ran between two identical snapshots


# -- bad input ----------------------------------------------------------------------------------
def test_no_calls_or_query_columns_names_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("relname,seq_scan,idx_scan\nshop_order,12,3400\n", encoding="utf-8")
    with pytest.raises(NothingParsedError, match=r"found: relname, seq_scan, idx_scan"):
        get_loader("pgss_csv").load(path)
    path = tmp_path / "other.json"
    path.write_text(json.dumps([{"relname": "a", "n_live_tup": 3}]), encoding="utf-8")
    with pytest.raises(NothingParsedError, match=r"found: relname, n_live_tup"):
        get_loader("pgss_json").load(path)
    path = tmp_path / "other.out"
    path.write_text(
        " relname | seq_scan \n---------+----------\n t       |        1\n(1 row)\n",
        encoding="utf-8",
    )
    with pytest.raises(NothingParsedError, match=r"found: relname, seq_scan"):
        get_loader("pgss_psql").load(path)


def test_bad_rows_are_skipped_and_counted(pgss: Path, tmp_path: Path) -> None:
    lines = (pgss / "pg12.csv").read_text(encoding="utf-8").split("\n")
    header = lines[0].split(",")
    bad = ["x"] * len(header)
    bad[header.index("query")] = "SELECT 1"
    path = tmp_path / "bad.csv"
    path.write_text(
        "\n".join([lines[0], ",".join(bad), ",".join(["1"] * (len(header) - 2)), *lines[1:]]),
        encoding="utf-8",
    )
    result = get_loader("pgss_csv").load(path)
    report = result.report
    report.check()
    assert len(result.frame) == 25
    assert report.skipped["calls is not a number"] == 1
    assert sum(v for k, v in report.skipped.items() if "fields" in k) == 1
    assert report.skip_lines("calls is not a number") == [2]


def test_truncated_json_array_is_salvaged(pgss: Path, tmp_path: Path) -> None:
    text = (pgss / "pg15.json").read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    result = get_loader("pgss_json").load(path)
    assert 5 < len(result.frame) < 27
    assert result.report.skipped == {"invalid JSON": 1}
    assert any("cut short" in w for w in result.report.warnings)


def test_mis_encoded_csv(pgss: Path, tmp_path: Path) -> None:
    raw = (pgss / "pg15-after.csv").read_bytes()
    assert raw.count(b'AS ""spent""') == 1
    path = tmp_path / "latin1.csv"
    path.write_bytes(raw.replace(b'AS ""spent""', b'AS ""d\xe9pense""'))
    result = get_loader("pgss_csv").load(path)
    assert len(result.frame) == 27
    assert any("invalid UTF-8" in w for w in result.report.warnings)
    assert result.frame["sample_sql"].str.contains('AS "d\ufffdpense"', regex=False).sum() == 1


def test_empty_and_binary_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(NothingParsedError):
        get_loader("pgss_csv").load(empty)
    junk = tmp_path / "junk.json"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(NothingParsedError):
        get_loader("pgss_json").load(junk)


def test_copied_fixture_keeps_its_name(pgss: Path, tmp_path: Path) -> None:
    shutil.copy(pgss / "pg15.jsonl", tmp_path / "export.txt")
    assert detect(tmp_path / "export.txt").format == "pgss_json"
