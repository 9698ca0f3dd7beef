"""An honest run: unreadable files are reported, documentation is listed, empty folders stop.

* one unreadable file (permissions, an I/O error — also while hashing it) is listed with its
  reason in the inventory and the data-quality findings; the rest of the client is audited;
* READMEs, ``manifest.json`` and office/PDF documents are documentation, never errors;
* ``load_client(require_input=True)`` on a folder with nothing readable raises
  :class:`NothingReadableError` naming the folder and what was found;
* ``auditkit run`` on an empty folder or a folder of garbage exits 3 with one line on stderr and
  writes no report;
* the ``tz`` setting of ``audit.yaml`` reaches the loaders, and bad zones are config errors.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditkit.checks.data_quality import data_quality
from auditkit.cli import cli
from auditkit.client import load_client
from auditkit.config import load_config
from auditkit.errors import ConfigError, NothingReadableError
from auditkit.findings import Severity
from auditkit.runner import BatchResult, RunResult
from tests.conftest import FIXTURES

DJANGO = FIXTURES / "django" / "prefixed.log"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    (root / "logs").mkdir(parents=True)
    shutil.copy(DJANGO, root / "logs" / "django.log")
    shutil.copy(DJANGO, root / "logs" / "locked.log")
    (root / "README.md").write_text("# What we sent\nlogs of Monday\n")
    (root / "manifest.json").write_text('{"exported_by": "ops", "files": ["logs/django.log"]}\n')
    (root / "notes.docx").write_bytes(b"PK\x03\x04" + os.urandom(300))
    (root / "report.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(300))
    (root / "blob.bin").write_bytes(os.urandom(4000))
    return root


def test_documentation_is_listed_not_an_error(tmp_path: Path) -> None:
    client = load_client(_folder(tmp_path))
    status = {f.path: f.status for f in client.files}
    assert status["README.md"] == status["manifest.json"] == "documentation"
    assert status["notes.docx"] == status["report.pdf"] == "documentation"
    assert status["blob.bin"] == "unrecognised"
    assert status["logs/django.log"] == "loaded"
    titles = [f.title for f in data_quality(client.files)]
    assert not any("README" in t or "manifest" in t or ".pdf" in t for t in titles)


def test_io_error_while_hashing_is_one_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The input hash is taken inside the per-file handling: one I/O error is one file."""
    import auditkit.client as client_module

    real = client_module._sha256

    def failing(path: Path) -> str:
        if path.name == "locked.log":
            raise OSError(errno.EIO, "Input/output error")
        return real(path)

    monkeypatch.setattr(client_module, "_sha256", failing)
    client = load_client(_folder(tmp_path))
    locked = next(f for f in client.files if f.path == "logs/locked.log")
    assert locked.status == "unreadable" and "Input/output error" in (locked.error or "")
    assert len(client.frame("query_events")) == 4  # the readable copy was audited
    found = [f for f in data_quality(client.files) if f.subject.file == "logs/locked.log"]
    assert len(found) == 1 and found[0].severity == Severity.MEDIUM
    assert "Input/output error" in found[0].summary
    assert str(tmp_path) not in found[0].summary  # no local path in a report


def test_io_error_while_loading_is_one_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditkit.loaders.stream as stream

    real = stream._open_decompressed

    def failing(path: str | Path):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked.log":
            raise OSError(errno.EIO, "Input/output error")
        return real(path)

    monkeypatch.setattr(stream, "_open_decompressed", failing)
    client = load_client(_folder(tmp_path), config=load_config(None))
    locked = next(f for f in client.files if f.path == "logs/locked.log")
    assert locked.status == "unreadable", locked
    assert client.has("query_events")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads files whatever their permissions (the I/O-error tests cover this path)",
)
def test_chmod_000_file_is_reported_and_the_rest_audited(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    locked = root / "logs" / "locked.log"
    locked.chmod(0)
    try:
        client = load_client(root)
    finally:
        locked.chmod(0o644)
    info = next(f for f in client.files if f.path == "logs/locked.log")
    assert info.status == "unreadable" and "Permission denied" in (info.error or "")
    assert client.has("query_events")


def test_require_input_names_the_folder_and_what_was_found(tmp_path: Path) -> None:
    root = tmp_path / "junk"
    root.mkdir()
    (root / "README.md").write_text("nothing here\n")
    (root / "data.bin").write_bytes(os.urandom(5000))
    (root / "words.txt").write_text("lorem ipsum dolor sit amet\n" * 20)
    with pytest.raises(NothingReadableError) as caught:
        load_client(root, require_input=True)
    exc = caught.value
    assert exc.path == "junk" and exc.found == {"documentation": 1, "unrecognised": 2}
    assert "nothing to audit in junk" in str(exc) and "2 unrecognised" in str(exc)
    # without require_input the folder loads (the report's data-quality section says why)
    assert load_client(root).results == {}


@pytest.mark.parametrize("kind", ["empty", "garbage"])
def test_run_exits_3_with_one_line_and_no_report(tmp_path: Path, kind: str) -> None:
    root = tmp_path / kind
    root.mkdir()
    if kind == "garbage":
        (root / "dump.bin").write_bytes(os.urandom(8000))
        (root / "README.md").write_text("see attached\n")
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["run", str(root), "--out", str(out)])
    assert result.exit_code == 3, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"nothing to audit in {kind}" in lines[0], result.stderr
    assert str(tmp_path) not in lines[0]
    assert not (out / kind).exists()


def test_exit_code_3_only_when_every_failure_is_no_input() -> None:
    def res(status: str) -> RunResult:
        return RunResult("c", "d", "r", status=status)

    assert BatchResult([res("complete")]).exit_code == 0
    assert BatchResult([res("no_input")]).exit_code == 3
    assert BatchResult([res("complete"), res("no_input")]).exit_code == 3
    assert BatchResult([res("no_input"), res("failed")]).exit_code == 1


def test_tz_setting(tmp_path: Path) -> None:
    root = tmp_path / "paris"
    root.mkdir()
    log = root / "django.log"
    log.write_text(
        "2024-05-06 10:00:00,000 DEBUG (0.002) SELECT 1; args=(); alias=default\n"
        "2024-05-06 10:00:01,000 DEBUG (0.002) SELECT 2; args=(); alias=default\n"
    )
    utc = load_client(root).frame("query_events")
    (root / "audit.yaml").write_text("tz: Europe/Paris\n")
    paris = load_client(root).frame("query_events")
    assert (utc.ts - paris.ts).iloc[0] == pd_hours(2)  # CEST is UTC+2 in May
    (root / "audit.yaml").write_text("tz: Mars/Olympus\n")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(root)


def pd_hours(n: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.Timedelta(hours=n)
