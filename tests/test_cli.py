"""The command line: help everywhere, one-line errors, exit codes scripts can trust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DIGEST_SHAPES, FIXTURES

from auditkit.cli import cli
from auditkit.digest import digest
from auditkit.redact import Redactor


def test_help_on_every_command() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage" in result.output


def test_digest_table_and_json(fixtures: Path) -> None:
    runner = CliRunner()
    log = str(fixtures / "django/bare.log")
    table = runner.invoke(cli, ["digest", log, "--top", "2"])
    assert table.exit_code == 0, table.output
    assert "4 executions in 4 statement groups" in table.output
    data = json.loads(runner.invoke(cli, ["digest", log, "--json"]).output)
    row = data["statements"][0]
    assert {"fingerprint", "fingerprint_id", "calls", "total_ms", "mean_ms", "p95_ms"} <= set(row)
    assert row["total_ms"] == 12.0 and data["files"][0]["read"] == 4
    # literals are redacted unless asked for
    assert all("'x; args=(y)'" not in s["sample_sql"] for s in data["statements"])
    shown = json.loads(runner.invoke(cli, ["digest", log, "--json", "--show-literals"]).output)
    assert any("'x; args=(y)'" in s["sample_sql"] for s in shown["statements"])


@pytest.mark.parametrize(
    "log",
    [*DIGEST_SHAPES, FIXTURES / "django" / "bare.log"],  # the last: no times, no rows
    ids=lambda p: p.name,
)
@pytest.mark.parametrize("literals", [False, True])
def test_digest_json_is_the_profile_frame_as_pandas_writes_it(log: Path, literals: bool) -> None:
    """The command prints the profile's records without pandas; what it prints is what
    ``DataFrame.to_json(orient="records", date_format="iso")`` writes of the profile frame:
    nulls, times to the millisecond, floats, booleans."""
    flags = ["--show-literals"] if literals else []
    printed = json.loads(CliRunner().invoke(cli, ["digest", str(log), "--json", *flags]).output)
    prof = digest([log]).profile
    redactor = Redactor(show_literals=literals)
    prof = prof.assign(
        sample_sql=prof["sample_sql"].map(redactor.sql) if literals else prof["fingerprint"]
    )
    cols = list(printed["statements"][0])
    assert printed["statements"] == json.loads(
        prof[cols].to_json(orient="records", date_format="iso")
    )
    assert printed["groups"] == len(prof)


def test_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing here\n")
    result = runner.invoke(cli, ["digest", str(junk)])
    assert result.exit_code == 3
    assert result.output.count("\n") == 1 and "junk.txt" in result.output
    assert "Traceback" not in result.output
    bad_format = runner.invoke(cli, ["digest", "--format", "nope", str(junk)])
    assert bad_format.exit_code == 2 and "known formats" in bad_format.output
    debug = runner.invoke(cli, ["--debug", "digest", str(junk)])
    assert debug.exception is not None  # the traceback is there for --debug


def test_inspect_json(fixtures: Path, tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/q.log").write_bytes((fixtures / "django/prefixed.log").read_bytes())
    (tmp_path / "notes.bin").write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    files = {f["path"]: f for f in json.loads(result.output)["files"]}
    assert files["logs/q.log"]["format"] == "django_log"
    assert files["logs/q.log"]["report"]["skipped"] == {"other message": 1, "truncated entry": 1}
    assert files["notes.bin"]["status"] == "unrecognised"
