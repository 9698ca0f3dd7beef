"""The parse cache: parsed client files kept between runs — privately, as data, never as code.

Parsing a client's gigabytes of logs takes minutes; an audit re-run (another preset, a fixed
notebook) should not pay it again. The cache keeps, per parsed file, its frames as Parquet and
its parse report as JSON. It never holds a secret — results are scrubbed
(:func:`auditkit.redact.scrub_frame`) before they are stored — and it never holds code: no
pickle is written or read, so a planted file cannot run anything.

**Where.** Not beside the reports (a report folder is zipped and sent to the client): in the
user's cache directory, ``$AUDITKIT_CACHE_DIR`` when set, else platformdirs'
``user_cache_path("auditkit") / "parsed"`` — ``~/.cache/auditkit/parsed`` on Linux,
``~/Library/Caches/auditkit/parsed`` on macOS, ``%LOCALAPPDATA%\\auditkit\\Cache\\parsed`` on
Windows — or any folder the user names (``auditkit run --cache-dir DIR``). The folder is created
private (0700, files 0600) and carries a ``CACHEDIR.TAG`` so backup tools skip it.
``auditkit cache info`` shows its size and age, ``auditkit cache clear`` empties it.

**Layout and keys.** One folder per entry, named by the SHA-256 of the auditkit version, the
file's content hash, the format and the loader options::

    <root>/CACHEDIR.TAG
    <root>/<64 hex>/entry.json      version, source hash, format, options, parse report,
                                    and each frame's file with its SHA-256
    <root>/<64 hex>/f0.parquet …    one Parquet file per frame

**Trust.** An entry is loaded only when everything agrees: its folder name is the key asked
for, ``entry.json`` names this auditkit version, the same content hash, format and options,
every frame file has the SHA-256 recorded for it, and (on POSIX) the entry belongs to the
current user and is not writable by anyone else. Anything else — another version's entry, a
planted or corrupted one, a half-written one — is ignored, never read, and replaced on the next
store. Entries are written into a temporary folder and renamed into place, so a reader sees a
whole entry or none, and two runs caching the same file at once do not collide. Reading
Parquet runs no code (pyarrow ≥ 14.0.1 no longer unpickles its legacy Python extension type),
and the trust checks above run before any frame file is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders.result import LoadResult, ParseReport, Skip

__all__ = [
    "CACHE_FORMAT",
    "CacheInfo",
    "ParseCache",
    "default_cache_dir",
]

#: bumped when the layout of an entry changes (older entries are then ignored)
CACHE_FORMAT = 1
#: environment variable naming the cache folder (the default is the user's cache directory)
ENV_VAR = "AUDITKIT_CACHE_DIR"
_ENTRY = "entry.json"
_TAG = "CACHEDIR.TAG"
#: https://bford.info/cachedir/ — the first line is the standard signature
_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder holds auditkit's parse cache (parsed client files, secrets removed).\n"
    "# It can be deleted at any time: `auditkit cache clear`.\n"
)
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def default_cache_dir() -> Path:
    """The cache folder when none is named: ``$AUDITKIT_CACHE_DIR``, else the user's cache dir."""
    named = os.environ.get(ENV_VAR)
    if named:
        return Path(named).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("auditkit", appauthor=False) / "parsed"


def _canonical_options(options: Mapping[str, Any]) -> str:
    return json.dumps(dict(options), sort_keys=True, default=str, separators=(",", ":"))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version() -> str:
    from auditkit import __version__

    return str(__version__)


@dataclass
class CacheInfo:
    """What a cache folder holds: entries this version can use and stale ones, sizes, ages."""

    root: Path
    exists: bool = False
    entries: int = 0
    bytes: int = 0
    stale_entries: int = 0
    stale_bytes: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    versions: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``auditkit cache info --json``)."""
        return {
            "root": str(self.root),
            "exists": self.exists,
            "entries": self.entries,
            "bytes": self.bytes,
            "stale_entries": self.stale_entries,
            "stale_bytes": self.stale_bytes,
            "oldest": self.oldest.isoformat(timespec="seconds") if self.oldest else None,
            "newest": self.newest.isoformat(timespec="seconds") if self.newest else None,
            "versions": dict(self.versions),
        }

    def summary(self) -> str:
        """A few lines for a terminal."""
        if not self.exists:
            return f"{self.root}: no cache yet"
        lines = [
            f"{self.root}",
            f"  {self.entries} entries, {_size(self.bytes)}"
            + (
                f"; {self.stale_entries} stale (other versions or damaged), {_size(self.stale_bytes)}"
                if self.stale_entries
                else ""
            ),
        ]
        if self.oldest and self.newest:
            lines.append(
                f"  oldest {self.oldest:%Y-%m-%d %H:%M}, newest {self.newest:%Y-%m-%d %H:%M} (UTC)"
            )
        return "\n".join(lines)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


class ParseCache:
    """The parse cache in folder ``root`` (see the module docstring).

    Example::

        cache = ParseCache(default_cache_dir())
        result = cache.get(sha256, "postgres_stderr", {})      # None when absent or untrusted
        if result is None:
            result = loader.load(path)
            cache.put(sha256, "postgres_stderr", {}, result)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"<ParseCache {self.root}>"

    # -- keys ----------------------------------------------------------------------------------
    @staticmethod
    def key(sha256: str, fmt: str, options: Mapping[str, Any]) -> str:
        """The entry name of a file's parse: version, content hash, format and options."""
        raw = json.dumps(
            {
                "cache_format": CACHE_FORMAT,
                "auditkit": _version(),
                "sha256": sha256,
                "format": fmt,
                "options": _canonical_options(options),
            },
            sort_keys=True,
        )
        return hashlib.sha256(raw.encode()).hexdigest()

    # -- reading -------------------------------------------------------------------------------
    def get(self, sha256: str, fmt: str, options: Mapping[str, Any]) -> LoadResult | None:
        """The cached parse of a file, or None when absent or not to be trusted."""
        entry = self.root / self.key(sha256, fmt, options)
        meta = self._meta(entry)
        if meta is None or not _matches(meta, sha256, fmt, options):
            return None
        try:
            frames: dict[str, pd.DataFrame] = {}
            files = meta["frames"]
            for item in files:
                path = entry / str(item["file"])
                if not _is_frame_file(item["file"]) or not self._owned(path):
                    return None
                if _sha256_file(path) != item["sha256"]:
                    return None
            for item in files:
                df = _read_frame(entry / str(item["file"]))
                for col in item.get("nan_nulls", []):
                    df[col] = df[col].where(df[col].notna(), float("nan"))
                frames[str(item["name"])] = df
            report = _report_from_json(meta["report"])
            return LoadResult(str(meta["format"]), frames, report, str(meta.get("primary") or ""))
        except (OSError, KeyError, TypeError, ValueError):
            return None
        except Exception:  # a damaged Parquet file raises pyarrow's own errors
            return None

    def _meta(self, entry: Path) -> dict[str, Any] | None:
        path = entry / _ENTRY
        if not entry.is_dir() or not self._owned(entry) or not self._owned(path):
            return None
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    @staticmethod
    def _owned(path: Path) -> bool:
        """On POSIX: ``path`` belongs to this user and nobody else may write it."""
        try:
            st = path.lstat()
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return False
        if os.name != "posix":
            return True
        return st.st_uid == os.getuid() and not st.st_mode & 0o022

    # -- writing -------------------------------------------------------------------------------
    def put(self, sha256: str, fmt: str, options: Mapping[str, Any], result: LoadResult) -> bool:
        """Store ``result`` (already scrubbed of secrets); False when it cannot be stored.

        A frame Parquet cannot hold (mixed objects in a column) leaves the file uncached — the
        next run parses it again — rather than failing the audit.
        """
        try:
            self._prepare_root()
        except OSError:
            return False
        key = self.key(sha256, fmt, options)
        tmp = self.root / f".tmp-{key[:12]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(mode=_DIR_MODE)
            os.chmod(tmp, _DIR_MODE)
            frames = []
            for i, (name, df) in enumerate(result.frames.items()):
                path = tmp / f"f{i}.parquet"
                _write_frame(df, path)
                frames.append(
                    {
                        "name": name,
                        "file": path.name,
                        "sha256": _sha256_file(path),
                        "rows": len(df),
                        "nan_nulls": _nan_null_columns(df),
                    }
                )
            meta = {
                "cache_format": CACHE_FORMAT,
                "auditkit": _version(),
                "sha256": sha256,
                "format": fmt,
                "options": _canonical_options(options),
                "primary": result.primary,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "frames": frames,
                "report": _report_to_json(result.report),
            }
            _write_private(tmp / _ENTRY, json.dumps(meta, ensure_ascii=False, indent=1).encode())
            self._install(tmp, self.root / key)
            return True
        except Exception:  # caching is an optimisation: never fail a run for it
            shutil.rmtree(tmp, ignore_errors=True)
            return False

    def _prepare_root(self) -> None:
        created = not self.root.exists()
        self.root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        tag = self.root / _TAG
        if created or tag.is_file():
            # ours: keep it private (a folder the user named and we did not create keeps its mode)
            os.chmod(self.root, _DIR_MODE)
        if not tag.exists():
            _write_private(tag, _TAG_TEXT.encode())

    def _install(self, tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``; an untrusted entry in the way is moved aside first."""
        try:
            os.rename(tmp, final)
            return
        except OSError:
            pass
        meta = self._meta(final)
        if meta is not None and meta.get("auditkit") == _version():
            shutil.rmtree(tmp, ignore_errors=True)  # another run stored the same parse first
            return
        trash = self.root / f".trash-{uuid.uuid4().hex[:12]}"
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)

    # -- the whole cache -------------------------------------------------------------------------
    def _entries(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if (
                p.is_dir()
                and not p.is_symlink()
                and (_is_key(p.name) or p.name.startswith((".tmp-", ".trash-")))
            ):
                yield p

    def info(self) -> CacheInfo:
        """Entries, sizes and ages; entries this version would not load count as stale."""
        out = CacheInfo(self.root, exists=self.root.is_dir())
        version = _version()
        for entry in self._entries():
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            meta = self._meta(entry) if _is_key(entry.name) else None
            current = (
                meta is not None
                and meta.get("auditkit") == version
                and meta.get("cache_format") == CACHE_FORMAT
            )
            out.versions[str(meta.get("auditkit")) if meta else "damaged"] += 1
            if current:
                out.entries += 1
                out.bytes += size
            else:
                out.stale_entries += 1
                out.stale_bytes += size
            mtime = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            out.oldest = mtime if out.oldest is None or mtime < out.oldest else out.oldest
            out.newest = mtime if out.newest is None or mtime > out.newest else out.newest
        return out

    def clear(self, *, stale_only: bool = False) -> CacheInfo:
        """Delete every entry (or only the stale ones); returns what was removed.

        Only auditkit's own entries are touched: a folder the user named keeps anything else
        it holds.
        """
        removed = CacheInfo(self.root, exists=self.root.is_dir())
        version = _version()
        for entry in list(self._entries()):
            if stale_only:
                meta = self._meta(entry) if _is_key(entry.name) else None
                if meta is not None and meta.get("auditkit") == version:
                    continue
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.entries += 1
                removed.bytes += size
        return removed


# -- helpers ------------------------------------------------------------------------------------
def _is_key(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _is_frame_file(name: object) -> bool:
    return (
        isinstance(name, str)
        and name.startswith("f")
        and name.endswith(".parquet")
        and name[1:-8].isdigit()
    )


def _matches(meta: Mapping[str, Any], sha256: str, fmt: str, options: Mapping[str, Any]) -> bool:
    return (
        meta.get("cache_format") == CACHE_FORMAT
        and meta.get("auditkit") == _version()
        and meta.get("sha256") == sha256
        and meta.get("format") == fmt
        and meta.get("options") == _canonical_options(options)
        and isinstance(meta.get("frames"), list)
        and isinstance(meta.get("report"), dict)
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, _FILE_MODE)


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=None)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
    os.chmod(path, _FILE_MODE)


def _nan_null_columns(df: pd.DataFrame) -> list[str]:
    """Object columns whose missing values are NaN (Parquet gives None back; restore NaN)."""
    out = []
    for col in df.columns:
        if df[col].dtype == object:
            nulls = df[col][df[col].isna()]
            if len(nulls) and all(isinstance(v, float) for v in nulls):
                out.append(str(col))
    return out


def _read_frame(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _report_to_json(report: ParseReport) -> dict[str, Any]:
    return {
        "path": report.path,
        "format": report.format,
        "read": report.read,
        "parsed": report.parsed,
        "skipped": dict(report.skipped),
        "samples": [[s.line, s.reason, s.excerpt] for s in report.samples],
        "events": dict(report.events),
        "warnings": list(report.warnings),
        "lines": report.lines,
        "bytes": report.bytes,
        "elapsed_s": report.elapsed_s,
    }


def _counter(value: Any) -> Counter[str]:
    if not isinstance(value, dict):
        raise TypeError("expected an object of counts")
    return Counter({str(k): _int(v) for k, v in value.items()})


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


def _report_from_json(data: Mapping[str, Any]) -> ParseReport:
    """A parse report from ``entry.json``, every field type-checked (TypeError otherwise)."""
    report = ParseReport(str(data["path"]), str(data["format"]))
    report.read = _int(data["read"])
    report.parsed = _int(data["parsed"])
    report.skipped = _counter(data["skipped"])
    report.samples = [
        Skip(_int(line), str(reason), str(excerpt)) for line, reason, excerpt in data["samples"]
    ]
    report.events = _counter(data["events"])
    report.warnings = [str(w) for w in data["warnings"]]
    report.lines = _int(data["lines"])
    report.bytes = _int(data["bytes"])
    report.elapsed_s = float(data["elapsed_s"])
    return report
