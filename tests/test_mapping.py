"""audit.yaml ``map:``: files no loader recognises, read as a format, a PostgreSQL view or a frame.

The inputs (``tests/fixtures/mapping``, see SOURCES.md) are real ``psql --csv`` exports of
``pg_stat_statements`` and ``pg_stat_user_tables`` of a ``library`` schema, under a dashboard's
own column names.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import auditkit
from auditkit.config import load_config
from auditkit.errors import ConfigError, MappingError
from auditkit.loaders.detect import detect

MAPPING = Path(__file__).parent / "fixtures" / "mapping"

YAML = """
map:
  "exports/top_*.csv":
    as: pg_stat_statements
    columns: {statement_text: query, executions: calls, total_ms: total_exec_time,
              avg_ms: mean_exec_time, cache_hits: shared_blks_hit, disk_reads: shared_blks_read}
  "exports/table_activity.csv":
    as: schema_tables
    columns: {tbl: table, approx_rows: rows_estimate, full_scans: seq_scan, index_scans: idx_scan,
              updates: n_tup_upd}
"""


def _folder(tmp_path: Path, yaml: str = YAML) -> Path:
    folder = tmp_path / "client"
    (folder / "exports").mkdir(parents=True)
    for name in ("top_statements.csv", "table_activity.csv"):
        shutil.copy(MAPPING / name, folder / "exports" / name)
    (folder / "audit.yaml").write_text(yaml)
    return folder


def test_without_a_map_the_files_are_unread(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "client: library\n")
    client = auditkit.load_client(folder)
    status = {f.path: f.status for f in client.files}
    assert status["exports/top_statements.csv"] == "unrecognised"
    assert status["exports/table_activity.csv"] == "unrecognised"


def test_a_mapped_folder_is_audited_with_its_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    client = auditkit.load_client(folder)
    files = {f.path: f for f in client.files}
    top = files["exports/top_statements.csv"]
    assert top.status == "loaded", top.error
    assert top.report is not None and top.report.parsed == 12 and top.report.skipped_total == 0
    assert "mapped as pg_stat_statements" in top.report.format
    profile, source = client.query_profile()
    assert source == "pg_stat_statements"
    fk_check = profile[profile["fingerprint"].str.contains("for key share", case=False)]
    assert int(fk_check["calls"].sum()) == 8000
    assert profile["total_ms"].sum() == pytest.approx(433.61, abs=0.01)
    # source lines point into the client's file, not a converted copy
    stats = client.frame("statement_stats")
    assert stats["source_file"].eq("exports/top_statements.csv").all()
    assert stats["source_line"].min() == 2 and stats["source_line"].max() > 12  # multi-line rows
    tables = client.frame("schema_tables").set_index("table")
    assert files["exports/table_activity.csv"].status == "loaded"
    assert tables.loc["library_book", "rows_estimate"] == 8000
    assert (
        tables.loc["library_book", "seq_scan"] == 11
        and tables.loc["library_book", "n_tup_upd"] == 200
    )
    # the audit runs on them: its workload is the mapped statements, but for the schema set-up
    # they record (CREATE TABLE, CREATE INDEX: 29.8 ms, not the application's work)
    ddl = profile["fingerprint"].str.match(r"create (?:table|index|unique index) ", case=False)
    assert int(ddl.sum()) == 4
    result = auditkit.audit(client)
    assert result.workload["source"] == "pg_stat_statements"
    assert result.workload["db_ms"] == pytest.approx(
        433.613 - profile.loc[ddl, "total_ms"].sum(), abs=0.001
    )
    assert result.workload["statements"] == profile.loc[~ddl, "calls"].sum()
    assert any("library_book" in f.title for f in result.findings)


def test_a_missing_required_column_names_the_file_what_it_has_and_the_line_to_add(
    tmp_path: Path,
) -> None:
    yaml = """
map:
  "exports/top_*.csv": {as: pg_stat_statements, columns: {total_ms: total_exec_time}}
"""
    folder = _folder(tmp_path, yaml)
    client = auditkit.load_client(folder)
    top = next(f for f in client.files if f.path == "exports/top_statements.csv")
    assert top.status == "error"
    assert top.error is not None
    assert "exports/top_statements.csv" in top.error
    assert "calls, query missing for as: pg_stat_statements" in top.error
    assert "the file has: statement_text, executions, total_ms" in top.error
    assert (
        'map: {"exports/top_*.csv": {as: pg_stat_statements, columns: {total_ms: total_exec_time, '
        "executions: calls, statement_text: query}}}" in top.error
    )
    with pytest.raises(MappingError) as err:
        auditkit.load(
            folder / "exports" / "top_statements.csv",
            format="mapped",
            **{"as": "pg_stat_statements", "columns": {}},
        )
    assert err.value.missing == ["calls", "query"] and "executions" in err.value.have


def test_map_entries_are_checked_when_audit_yaml_is_read(tmp_path: Path) -> None:
    (tmp_path / "audit.yaml").write_text('map: {"x.csv": {as: pg_stat_nothing}}\n')
    with pytest.raises(ConfigError, match="unknown 'as: pg_stat_nothing'"):
        load_config(tmp_path)
    (tmp_path / "audit.yaml").write_text('map: {"x.csv": {columns: {a: b}}}\n')
    with pytest.raises(ConfigError, match="needs a file pattern and 'as'"):
        load_config(tmp_path)
    (tmp_path / "audit.yaml").write_text(
        "map:\n  - {match: 'logs/*.txt', as: postgres_stderr, options: {prefix: '%m [%p] '}}\n"
    )
    cfg = load_config(tmp_path)
    hint = cfg.format_for("logs/a.txt")
    assert hint is not None and hint.format == "mapped" and hint.options["as"] == "postgres_stderr"
    assert cfg.with_presets(n_plus_one="sentry").maps == cfg.maps


def test_mapped_loader_never_sniffs(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    shutil.copy(MAPPING / "top_statements.csv", path)
    with pytest.raises(auditkit.UnknownFormatError):
        detect(path)


# -- auditkit inspect: the closest format and the map: line -------------------------------------
def test_inspect_proposes_the_map_line_that_reads_the_file(tmp_path: Path) -> None:
    import json

    import yaml
    from click.testing import CliRunner

    from auditkit.cli import cli

    folder = _folder(tmp_path, "client: library\n")
    (folder / "notes.log").write_text("call the DBA on Monday\nand again on Tuesday\n")
    runner = CliRunner()
    text = runner.invoke(cli, ["inspect", str(folder)])
    assert text.exit_code == 0, text.output
    assert "closest: pg_stat_statements (column 'executions' is probably 'calls'" in text.output
    assert (
        'map: {"exports/top_statements.csv": {as: pg_stat_statements, columns: {executions: calls, '
        "statement_text: query" in text.output
    )
    assert "closest: schema_tables (column 'tbl' is probably 'table'" in text.output
    assert "closest: none (no known format is close" in text.output  # notes.log

    out = runner.invoke(cli, ["inspect", "--json", str(folder)])
    assert out.exit_code == 0, out.output
    files = {f["path"]: f for f in json.loads(out.output)["files"]}
    top = files["exports/top_statements.csv"]["closest"]
    assert top["target"] == "pg_stat_statements" and top["format"] == "pgss_csv"
    assert (
        top["columns"]["executions"] == "calls" and top["columns"]["total_ms"] == "total_exec_time"
    )
    assert (
        files["exports/table_activity.csv"]["closest"]["columns"]["approx_rows"] == "rows_estimate"
    )
    assert files["notes.log"]["closest"]["map"] is None
    assert "closest" not in files["audit.yaml"]

    # the proposed lines, put in audit.yaml as they are, read both files
    entries: dict[str, object] = {}
    for f in files.values():
        if f.get("closest") and f["closest"]["map"]:
            entries.update(yaml.safe_load(f["closest"]["map"])["map"])
    (folder / "audit.yaml").write_text(yaml.safe_dump({"map": entries}))
    client = auditkit.load_client(folder)
    status = {f.path: f.status for f in client.files}
    assert status["exports/top_statements.csv"] == "loaded"
    assert status["exports/table_activity.csv"] == "loaded"
    profile, source = client.query_profile()
    assert source == "pg_stat_statements" and profile["calls"].sum() == 8026
    tables = client.frame("schema_tables").set_index("table")
    assert tables.loc["library_book", "n_tup_upd"] == 200
