"""The parse cache: exact round trips as Parquet + JSON, private files, and no trust in strangers.

Every format's parse comes back from the cache equal to the fresh parse (frames with their
dtypes, the parse report field by field). An entry is used only when it is whole, this
version's, for this content, and ours: entries from another version, with a wrong content hash,
with a frame file whose hash does not match, writable by others, or planted as a pickle, are
ignored and never read — the tests check that the Parquet reader is not even called.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from auditkit.client import load_client
from auditkit.errors import AuditkitError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.parse_cache import CACHE_FORMAT, ParseCache, default_cache_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "data" / "sample"
QUERY_LOG = SAMPLE / "django" / "queries.log.gz"


def _one_file_per_format() -> list[tuple[str, Path]]:
    seen: dict[str, Path] = {}
    for p in sorted([*FIXTURES.rglob("*"), *SAMPLE.rglob("*")]):
        if not p.is_file() or p.suffix == ".md" or "redaction" in p.parts:
            continue
        try:
            fmt = detect(p).format
        except AuditkitError:
            continue
        seen.setdefault(fmt, p)
    return sorted(seen.items())


FORMATS = _one_file_per_format()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixtures_cover_many_formats() -> None:
    assert len(FORMATS) >= 25, [f for f, _ in FORMATS]


@pytest.mark.parametrize(("fmt", "path"), FORMATS, ids=[f for f, _ in FORMATS])
def test_round_trip_is_exact(fmt: str, path: Path, tmp_path: Path) -> None:
    try:
        fresh = get_loader(fmt).load(path)
    except AuditkitError as exc:
        pytest.skip(f"{path.name} does not load on its own: {exc}")
    cache = ParseCache(tmp_path / "cache")
    assert cache.put(_sha(path), fmt, {"prefix": None}, fresh)
    back = cache.get(_sha(path), fmt, {"prefix": None})
    assert back is not None
    assert back.format == fresh.format and back.primary == fresh.primary
    assert list(back.frames) == list(fresh.frames)
    for name, df in fresh.frames.items():
        pd.testing.assert_frame_equal(back.frames[name], df, check_exact=True)
    assert back.report.to_dict() == fresh.report.to_dict()
    # other options, another format: other entries
    assert cache.get(_sha(path), fmt, {"prefix": "%m "}) is None
    assert cache.get(_sha(path), fmt + "_other", {"prefix": None}) is None


def test_files_are_private_and_never_pickles(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    client = load_client(SAMPLE, cache_dir=root)
    entries = [p for p in root.iterdir() if p.is_dir()]
    assert len(entries) == sum(1 for f in client.files if f.status == "loaded")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert (
        (root / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    names = set()
    for p in root.rglob("*"):
        if p.is_file():
            names.add(p.suffix)
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert names <= {".json", ".parquet", ".TAG"}, names
    for entry in entries:
        meta = json.loads((entry / "entry.json").read_text())
        path = meta["report"]["path"]
        assert (SAMPLE / path).is_file() and not Path(path).is_absolute()  # relative to the client
        for item in meta["frames"]:
            assert (entry / item["file"]).read_bytes()[:4] == b"PAR1"


def test_second_load_comes_from_the_cache(tmp_path: Path) -> None:
    first = load_client(SAMPLE, cache_dir=tmp_path / "c")
    second = load_client(SAMPLE, cache_dir=tmp_path / "c")
    loaded = [f for f in second.files if f.status == "loaded"]
    assert loaded and all(f.cached for f in loaded)
    assert not any(f.cached for f in first.files)
    assert first.frames.keys() == second.frames.keys()
    for name in first.frames:
        pd.testing.assert_frame_equal(first.frames[name], second.frames[name])
    uncached = load_client(SAMPLE)
    for name in first.frames:
        pd.testing.assert_frame_equal(first.frames[name], uncached.frames[name])


# -- untrusted entries ----------------------------------------------------------------------------
@pytest.fixture
def stored(tmp_path: Path) -> tuple[ParseCache, str, Path]:
    """A cache holding the parse of the sample Django query log; its key and entry folder."""
    cache = ParseCache(tmp_path / "cache")
    sha = _sha(QUERY_LOG)
    assert cache.put(sha, "django_log", {}, get_loader("django_log").load(QUERY_LOG))
    entry = cache.root / cache.key(sha, "django_log", {})
    assert entry.is_dir()
    return cache, sha, entry


@pytest.fixture
def no_parquet_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every Parquet read the cache makes (a planted entry must cause none)."""
    import auditkit.parse_cache as pc

    reads: list[str] = []
    real = pc._read_frame

    def spy(path: Path) -> pd.DataFrame:
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(pc, "_read_frame", spy)
    return reads


def _edit_meta(entry: Path, **changes: object) -> None:
    path = entry / "entry.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_entry_of_another_version_is_ignored(
    stored: tuple[ParseCache, str, Path], no_parquet_reads: list[str]
) -> None:
    cache, sha, entry = stored
    _edit_meta(entry, auditkit="0.0.1")
    assert cache.get(sha, "django_log", {}) is None
    _edit_meta(entry, auditkit=json.loads((entry / "entry.json").read_text())["auditkit"])
    _edit_meta(entry, cache_format=CACHE_FORMAT + 1)
    assert cache.get(sha, "django_log", {}) is None
    assert no_parquet_reads == []
    assert cache.info().stale_entries == 1


def test_entry_with_a_wrong_content_hash_is_ignored(
    stored: tuple[ParseCache, str, Path], no_parquet_reads: list[str]
) -> None:
    cache, sha, entry = stored
    _edit_meta(entry, sha256="0" * 64)
    assert cache.get(sha, "django_log", {}) is None
    assert no_parquet_reads == []


def test_tampered_frame_file_is_ignored(
    stored: tuple[ParseCache, str, Path], no_parquet_reads: list[str]
) -> None:
    cache, sha, entry = stored
    frame = next(entry.glob("f*.parquet"))
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frame.write_bytes(bytes(data))
    assert cache.get(sha, "django_log", {}) is None
    assert no_parquet_reads == []


def test_frame_file_named_outside_the_entry_is_ignored(
    stored: tuple[ParseCache, str, Path], no_parquet_reads: list[str]
) -> None:
    cache, sha, entry = stored
    meta = json.loads((entry / "entry.json").read_text())
    meta["frames"][0]["file"] = "../../elsewhere.parquet"
    (entry / "entry.json").write_text(json.dumps(meta))
    assert cache.get(sha, "django_log", {}) is None
    assert no_parquet_reads == []


@pytest.mark.skipif(os.name != "posix", reason="ownership and modes are POSIX")
def test_entry_others_may_write_is_ignored(
    stored: tuple[ParseCache, str, Path], no_parquet_reads: list[str]
) -> None:
    cache, sha, entry = stored
    os.chmod(entry / "entry.json", 0o666)
    assert cache.get(sha, "django_log", {}) is None
    os.chmod(entry / "entry.json", 0o600)
    assert cache.get(sha, "django_log", {}) is not None
    no_parquet_reads.clear()
    link = cache.root / "linked"
    shutil.move(str(entry), link)
    entry.symlink_to(link, target_is_directory=True)
    assert cache.get(sha, "django_log", {}) is None
    assert no_parquet_reads == []


def test_planted_pickle_is_never_loaded(tmp_path: Path) -> None:
    """The hole the issue found: a pickle in the cache folder ran code on the next run."""
    import pickle  # the attacker's tool, used here only to build the planted file

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    client = tmp_path / "client"
    client.mkdir()
    shutil.copy(QUERY_LOG, client / "queries.log.gz")
    cache = tmp_path / "cache"
    cache.mkdir()
    sha = _sha(QUERY_LOG)
    blob = pickle.dumps(Payload())
    # where the old cache looked, and where the new one keeps its entries
    key = ParseCache(cache).key(sha, "django_log", {})
    (cache / f"{key[:32]}.pickle").write_bytes(blob)
    (cache / key).mkdir()
    (cache / key / "entry.json").write_bytes(blob)
    (cache / key / "f0.parquet").write_bytes(blob)
    loaded = load_client(client, cache_dir=cache)
    assert not marker.exists()
    f = loaded.files[0]
    assert f.status == "loaded" and not f.cached and loaded.has("query_events")
    # the planted entry was replaced by a real one, which the next run uses
    assert ParseCache(cache).get(sha, "django_log", {}) is not None
    assert not marker.exists()


def test_replacing_an_untrusted_entry(stored: tuple[ParseCache, str, Path]) -> None:
    cache, sha, entry = stored
    _edit_meta(entry, auditkit="0.0.1")
    assert cache.get(sha, "django_log", {}) is None
    assert cache.put(sha, "django_log", {}, get_loader("django_log").load(QUERY_LOG))
    assert cache.get(sha, "django_log", {}) is not None
    assert not [p for p in cache.root.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


# -- the whole cache -------------------------------------------------------------------------------
def test_info_and_clear(stored: tuple[ParseCache, str, Path]) -> None:
    cache, sha, _ = stored
    other = ParseCache(cache.root)
    assert other.put("1" * 64, "django_log", {}, get_loader("django_log").load(QUERY_LOG))
    _edit_meta(cache.root / cache.key("1" * 64, "django_log", {}), auditkit="0.0.1")
    keep = cache.root / "notes.txt"  # a folder the user named may hold other things
    keep.write_text("mine")
    info = cache.info()
    assert (info.entries, info.stale_entries) == (1, 1)
    assert info.bytes > 0 and info.oldest is not None and info.newest is not None
    assert "1 entries" in info.summary() and "1 stale" in info.summary()
    removed = cache.clear(stale_only=True)
    assert removed.entries == 1 and cache.info().entries == 1
    removed = cache.clear()
    assert removed.entries == 1 and cache.info().entries == 0
    assert keep.read_text() == "mine" and (cache.root / "CACHEDIR.TAG").is_file()
    assert cache.get(sha, "django_log", {}) is None


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUDITKIT_CACHE_DIR", str(tmp_path / "named"))
    assert default_cache_dir() == tmp_path / "named"
    monkeypatch.delenv("AUDITKIT_CACHE_DIR")
    import platformdirs

    assert (
        default_cache_dir() == platformdirs.user_cache_path("auditkit", appauthor=False) / "parsed"
    )


def test_cli_cache_info_and_clear(stored: tuple[ParseCache, str, Path]) -> None:
    from click.testing import CliRunner

    from auditkit.cli import cli

    cache, sha, _ = stored
    runner = CliRunner()
    res = runner.invoke(cli, ["cache", "info", "--cache-dir", str(cache.root)])
    assert res.exit_code == 0 and "1 entries" in res.output, res.output
    res = runner.invoke(cli, ["cache", "info", "--cache-dir", str(cache.root), "--json"])
    assert json.loads(res.output)["entries"] == 1
    res = runner.invoke(cli, ["cache", "clear", "--cache-dir", str(cache.root), "--stale"])
    assert res.exit_code == 0 and "removed 0 entries" in res.output
    res = runner.invoke(cli, ["cache", "clear", "--cache-dir", str(cache.root)])
    assert res.exit_code == 0 and "removed 1 entries" in res.output
    assert cache.get(sha, "django_log", {}) is None
