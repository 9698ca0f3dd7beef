"""A client folder as the client sent it: detection, inventory, cache, hints, source choice."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.errors import AuditkitError


@pytest.fixture
def client_dir(fixtures: Path, tmp_path: Path) -> Path:
    (tmp_path / "logs/nested").mkdir(parents=True)
    shutil.copy(fixtures / "django/prefixed.log", tmp_path / "logs/django.log")
    with open(fixtures / "postgres/stmt_type.log", "rb") as src, gzip.open(tmp_path / "logs/nested/pg.log.gz", "wb") as dst:
        dst.write(src.read())
    shutil.copy(fixtures / "pgss/pg15-before.csv", tmp_path / "pgss_before.csv")
    shutil.copy(fixtures / "pgss/pg15-after.csv", tmp_path / "pgss_after.csv")
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04" + bytes(200))
    (tmp_path / "README.md").write_text("what we sent\n")
    (tmp_path / ".DS_Store").write_bytes(b"\x00" * 10)
    return tmp_path


def test_inventory(client_dir: Path) -> None:
    client = auditkit.load_client(client_dir)
    status = {f.path: (f.status, f.format) for f in client.files}
    assert status == {
        "README.md": ("documentation", None),
        "logs/django.log": ("loaded", "django_log"),
        "logs/nested/pg.log.gz": ("loaded", "postgres_stderr"),
        "notes.docx": ("documentation", None),  # a Word document a client adds is listed
        "pgss_after.csv": ("loaded", "pgss_csv"),
        "pgss_before.csv": ("loaded", "pgss_csv"),
    }
    inv = client.inventory()
    assert list(inv.columns)[:3] == ["file", "format", "status"]
    assert all(str(client_dir) not in str(f.error) for f in client.files)  # paths relative
    events = client.frame("query_events")
    assert set(events["source_file"]) == {"logs/django.log", "logs/nested/pg.log.gz"}


def test_one_source_family_per_purpose(client_dir: Path) -> None:
    client = auditkit.load_client(client_dir)
    assert set(client.query_events("profile")["source_format"]) == {"postgres_stderr"}  # the server's view
    assert set(client.query_events("requests")["source_format"]) == {"django_log"}  # tied to requests
    profile, source = client.query_profile()
    assert source == "postgres_stderr" and len(profile)


def test_pgss_snapshots_give_a_delta(fixtures: Path, tmp_path: Path) -> None:
    shutil.copy(fixtures / "pgss/pg15-before.csv", tmp_path / "pgss_before.csv")
    shutil.copy(fixtures / "pgss/pg15-after.csv", tmp_path / "pgss_after.csv")
    client = auditkit.load_client(tmp_path)
    profile, source = client.query_profile()
    after = auditkit.load(tmp_path / "pgss_after.csv").frame
    before = auditkit.load(tmp_path / "pgss_before.csv").frame
    assert source == "pg_stat_statements"
    assert int(profile["calls"].sum()) <= int(after["calls"].sum()) - int(before["calls"].sum()) + len(after)
    assert int(profile["calls"].sum()) < int(after["calls"].sum()) + int(before["calls"].sum())


def test_cache_by_content_hash(client_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = auditkit.load_client(client_dir, cache_dir=cache)
    again = auditkit.load_client(client_dir, cache_dir=cache)
    loaded = [f for f in again.files if f.status == "loaded"]
    assert loaded and all(f.cached for f in loaded) and not any(f.cached for f in first.files)
    assert len(again.frame("query_events")) == len(first.frame("query_events"))


def test_audit_yaml_hints_and_ignore(client_dir: Path) -> None:
    (client_dir / "odd.txt").write_text((client_dir / "logs/django.log").read_text())
    (client_dir / "audit.yaml").write_text(
        "client: Acme\nformats:\n  - match: 'odd.txt'\n    format: django_log\nignore: ['notes.*']\n")
    client = auditkit.load_client(client_dir)
    status = {f.path: f.status for f in client.files}
    assert client.name == "Acme"
    assert status["odd.txt"] == "loaded" and status["notes.docx"] == "ignored" and status["audit.yaml"] == "ignored"


def test_a_broken_file_is_listed_not_fatal(client_dir: Path) -> None:
    (client_dir / "audit.yaml").write_text("formats:\n  - match: 'README.md'\n    format: postgres_stderr\n")
    (client_dir / "bad.log").write_text("(0.001) SELECT 1; args=()\n" + "garbage\n" * 3)
    (client_dir / "audit.yaml").write_text("formats:\n  - match: 'notes.docx'\n    format: django_log\n")
    client = auditkit.load_client(client_dir)
    status = {f.path: (f.status, f.error) for f in client.files}
    assert status["notes.docx"][0] == "error" and "notes.docx" in status["notes.docx"][1]
    with pytest.raises(AuditkitError, match="not a folder"):
        auditkit.load_client(client_dir / "missing")


def _same_clients(a: auditkit.ClientData, b: auditkit.ClientData) -> None:
    def files(c: auditkit.ClientData) -> list[dict]:
        out = []
        for f in c.files:
            d = f.to_dict()
            d.pop("cached")
            if d.get("report"):
                d["report"].pop("elapsed_s", None)
            out.append(d)
        return out

    assert len(a.files) == len(b.files)
    for x, y in zip(files(a), files(b), strict=True):
        assert x == y, {k: (x[k], y[k]) for k in x if x[k] != y[k]}
    assert list(a.frames) == list(b.frames)
    for name in a.frames:
        pd.testing.assert_frame_equal(a.frames[name], b.frames[name])


@pytest.mark.parametrize("large_from", [None, 4096])
def test_files_load_side_by_side_as_one_after_another(
    client_dir: Path,
    fixtures: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    large_from: int | None,
) -> None:
    """On worker processes, largest first, the folder loads to what a serial load gives, in
    the folder's order: statuses, errors, reports and frames; files from ``large_from`` bytes on
    load in this process, their blocks on the workers."""
    from auditkit.executors import ProcessExecutor

    shutil.copy(fixtures / "explain/pg15_join_agg.json", client_dir / "plan.json")
    (client_dir / "bad.log").write_text("(0.001) SELECT 1; args=()\n" + "garbage\n" * 3)
    (client_dir / "unknown.bin").write_bytes(bytes(range(256)) * 4)
    if large_from is not None:
        monkeypatch.setattr("auditkit.executors.PARALLEL_MIN_BYTES", large_from)
    caches = tmp_path_factory.mktemp("caches")  # outside the client folder
    serial = auditkit.load_client(client_dir, cache_dir=caches / "a")
    workers = ProcessExecutor(2)
    workers.start()
    try:
        parallel = auditkit.load_client(client_dir, cache_dir=caches / "b", executor=workers)
    finally:
        workers.close()
    _same_clients(serial, parallel)
    assert {f.status for f in parallel.files} >= {"loaded", "documentation", "unrecognised"}
    # what the workers parsed is in the parse cache, as a serial load leaves it
    again = auditkit.load_client(client_dir, cache_dir=caches / "b")
    assert all(f.cached for f in again.files if f.status == "loaded")
    _same_clients(serial, again)


def test_files_a_worker_could_not_return_load_here(client_dir: Path) -> None:
    """A worker that dies (or a parse that cannot travel back) mid-folder: the files it left
    load in this process, and the client is the one a serial load gives."""

    class DiesAfterOne:
        workers, shares_files = 2, True

        def map(self, fn, argsets):  # type: ignore[no-untyped-def]
            for args in argsets:
                yield fn(*args)
                raise RuntimeError("the worker died")

        def close(self) -> None:
            pass

    _same_clients(auditkit.load_client(client_dir), auditkit.load_client(client_dir, executor=DiesAfterOne()))
