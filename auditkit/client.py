"""A client folder: whatever the client sent, detected, loaded and combined into frames.

:func:`load_client` walks a folder in any layout of subfolders, compressed or not, detects the
format of every file (audit.yaml ``formats`` entries help where detection needs it), loads it,
and concatenates the frames of all files per canonical frame name. Unrelated files are listed
as ``unrecognised`` and files that fail are listed with their error — never fatal: the
data-quality section of the report shows them. Parsed inputs are cached by content hash, so a
re-run does not parse gigabytes again.

Several files may describe the same statements (a Django query log *and* the PostgreSQL log
of the same hours). Summing them would double every count, so :meth:`ClientData.query_events`
picks one source family for a purpose; ``frame("query_events")`` keeps everything, with
``source_format`` to tell them apart.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.config import AuditConfig, load_config
from auditkit.errors import AuditkitError, NothingReadableError, UnknownFormatError
from auditkit.loaders.base import BlockLoader
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.schemas import FRAMES, conform, empty

if TYPE_CHECKING:
    from auditkit.executors import Executor

__all__ = ["ClientData", "InputFile", "load_client", "nothing_readable"]

#: files that document a folder rather than hold data: listed, never loaded, never an error
_DOC_SUFFIXES = {
    ".md", ".markdown", ".rst", ".adoc", ".pdf", ".doc", ".docx", ".odt", ".rtf", ".pages",
    ".xls", ".xlsx", ".ods", ".ppt", ".pptx", ".odp", ".key", ".png", ".jpg", ".jpeg", ".gif",
    ".svg", ".webp", ".html", ".htm", ".eml", ".msg",
}  # fmt: skip
#: documentation by name (any suffix): READMEs, notes, a manifest describing the export
_DOC_STEMS = {"readme", "readme.txt", "notes", "changelog", "license", "licence", "manifest"}
_CONFIG_NAMES = {"audit.yaml", "audit.yml"}

#: which query-event sources to prefer, by purpose (first present wins)
SOURCE_PRIORITY: dict[str, tuple[tuple[str, ...], ...]] = {
    # the whole workload as the server saw it
    "profile": (
        ("postgres_stderr", "postgres_csvlog", "postgres_jsonlog", "postgres_syslog"),
        ("mysql_slow",),
        ("jsonl_queries",),
        ("django_log",),
        ("otlp_json", "jaeger_json", "datadog_json", "newrelic_json", "newrelic_csv"),
    ),
    # statements tied to the request that issued them
    "requests": (
        ("jsonl_queries",),
        ("otlp_json", "jaeger_json", "datadog_json"),
        ("django_log",),
        ("postgres_stderr", "postgres_csvlog", "postgres_jsonlog", "postgres_syslog", "mysql_slow"),
    ),
}


@dataclass
class InputFile:
    """One file of the client folder and what became of it."""

    path: str
    size_bytes: int
    sha256: str
    format: str | None = None
    status: str = "pending"  # loaded | unrecognised | error | unreadable | ignored | documentation
    report: ParseReport | None = None
    error: str | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "format": self.format,
            "status": self.status,
            "error": self.error,
            "cached": self.cached,
            "report": self.report.to_dict() if self.report else None,
        }


@dataclass
class ClientData:
    """Everything loaded from one client folder."""

    name: str
    root: Path
    config: AuditConfig
    files: list[InputFile] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    results: dict[str, LoadResult] = field(default_factory=dict)
    #: things the analyses learnt about the inputs (snapshot resets, …), for the data-quality section
    notes: list[str] = field(default_factory=list)

    def frame(self, name: str) -> pd.DataFrame:
        """The combined frame ``name`` of every file (an empty canonical frame if none)."""
        if name in self.frames:
            return self.frames[name]
        return empty(FRAMES[name])

    def has(self, name: str) -> bool:
        """True when at least one file produced rows of frame ``name``."""
        return name in self.frames and len(self.frames[name]) > 0

    def query_events(self, purpose: str = "profile") -> pd.DataFrame:
        """Query events from one source family chosen for ``purpose`` ('profile' or 'requests').

        See :data:`SOURCE_PRIORITY`. For 'requests', only events carrying a request or trace id
        count as a source unless nothing carries one.
        """
        events = self.frame("query_events")
        if len(events) == 0:
            return events
        fmt = events["source_format"].astype("string")
        for family in SOURCE_PRIORITY[purpose]:
            chosen = events[fmt.isin(family)]
            if purpose == "requests":
                ided = chosen[chosen["request_id"].notna() | chosen["trace_id"].notna()]
                if len(ided):
                    return self._with_endpoints(ided.reset_index(drop=True))
                continue
            if len(chosen):
                return chosen.reset_index(drop=True)
        if purpose == "requests":
            for family in SOURCE_PRIORITY[purpose]:
                chosen = events[fmt.isin(family)]
                if len(chosen):
                    return chosen.reset_index(drop=True)
        return events

    def _with_endpoints(self, events: pd.DataFrame) -> pd.DataFrame:
        """Fill missing endpoints of statements from any requests source with the same ids.

        A query log often carries the request id but not the route, while the access log (or a
        trace) of the same requests carries both: joining them attributes statements to endpoints.
        """
        requests = self.frames.get("requests")
        if requests is None or len(requests) == 0 or events["endpoint"].notna().all():
            return events
        known = requests.dropna(subset=["request_id", "endpoint"]).drop_duplicates("request_id")
        if len(known) == 0:
            return events
        by_id = known.set_index("request_id")["endpoint"]
        filled = events["request_id"].map(by_id)
        out = events.copy()
        out["endpoint"] = out["endpoint"].fillna(filled).astype("string")
        return out

    def query_profile(self) -> tuple[pd.DataFrame, str]:
        """The client's query profile and where it came from.

        From query events when there are any (one source family, see :meth:`query_events`),
        else from pg_stat_statements exports (the difference of the first and last snapshot
        when there are several). Returns the ``statement_stats`` frame and a source label.
        """
        from auditkit.profile import query_profile

        events = self.query_events("profile")
        if len(events):
            fmt = ", ".join(sorted(events["source_format"].dropna().astype(str).unique()))
            return query_profile(events), fmt or "query log"
        if self.has("statement_stats"):
            return self.statement_stats(), "pg_stat_statements"
        return empty(FRAMES["statement_stats"]), "none"

    def statement_stats(self) -> pd.DataFrame:
        """The statement statistics as one profile: the delta of the first and last snapshot.

        Several exports of the same server are snapshots; adding them up would count every
        statement again per snapshot. With two or more, the counters that moved between the
        first and the last (by file order: name them so, e.g. ``…_before``/``…_after`` or
        by date) are the audit window, and a reset in between is reported in ``notes``.
        pg_stat_statements snapshots are subtracted by
        :func:`~auditkit.loaders.pg_stat_statements.pgss_delta`, MySQL/MariaDB
        ``events_statements_summary_by_digest`` snapshots by
        :func:`~auditkit.loaders.mysql_stats.digest_delta`. A ``sys`` view that lists only some
        statements (``statements_with_full_table_scans``) is no snapshot of the workload: it
        stands in only when no digest table was exported.
        """
        from auditkit.loaders.mysql_stats import digest_delta
        from auditkit.loaders.pg_stat_statements import aggregate_pgss, pgss_delta

        pg: list[tuple[str, pd.DataFrame]] = []
        digests: list[tuple[str, pd.DataFrame]] = []
        partial: list[tuple[str, pd.DataFrame]] = []
        for path, r in sorted(self.results.items()):
            df = r.frames.get("statement_stats")
            if df is None or len(df) == 0:
                continue
            mysql = "dialect" in df and df["dialect"].isin(("mysql", "mariadb")).any()
            if not mysql:
                pg.append((path, df))
            elif "sys_view" in df and df["sys_view"].notna().all():
                partial.append((path, df))
            else:  # a file holding the digest table and a sys view too: the table
                digests.append((path, df[df["sys_view"].isna()] if "sys_view" in df else df))
        parts: list[pd.DataFrame] = []
        for kind, snaps, delta_of in (
            ("pg_stat_statements", pg, pgss_delta),
            ("performance_schema digests", digests or partial, digest_delta),
        ):
            if not snaps:
                continue
            if len(snaps) == 1:
                parts.append(_keep_mysql_counts(aggregate_pgss(snaps[0][1]), snaps[0][1]))
                continue
            ordered = sorted(snaps, key=lambda kv: _snapshot_order(kv[0]))
            delta, messages = delta_of(ordered[0][1], ordered[-1][1])
            self.notes.extend(f"{kind} {ordered[0][0]} → {ordered[-1][0]}: {m}" for m in messages)
            parts.append(_keep_mysql_counts(aggregate_pgss(delta), delta))
        if not parts:
            return empty(FRAMES["statement_stats"])
        if len(parts) == 1:
            return parts[0]
        both = pd.concat(parts, ignore_index=True)
        return _keep_mysql_counts(aggregate_pgss(both), both)

    def sources(self, frame: str) -> list[str]:
        """Formats that contributed rows to ``frame``."""
        df = self.frames.get(frame)
        if df is None or "source_format" not in df:
            return []
        return sorted(df["source_format"].dropna().astype(str).unique())

    def inventory(self) -> pd.DataFrame:
        """One row per file: path, format, status, read/parsed/skipped, events, error."""
        rows = []
        for f in self.files:
            r = f.report
            rows.append(
                {
                    "file": f.path,
                    "format": f.format,
                    "status": f.status,
                    "size_bytes": f.size_bytes,
                    "read": r.read if r else None,
                    "parsed": r.parsed if r else None,
                    "skipped": r.skipped_total if r else None,
                    "events": sum(r.events.values()) if r else None,
                    "note": f.error or ("; ".join(r.warnings[:2]) if r and r.warnings else None),
                }
            )
        return pd.DataFrame(
            rows,
            columns=[
                "file",
                "format",
                "status",
                "size_bytes",
                "read",
                "parsed",
                "skipped",
                "events",
                "note",
            ],
        )

    def _repr_html_(self) -> str:
        return f"<b>{self.name}</b>: {len(self.files)} files<br>" + self.inventory()._repr_html_()  # type: ignore[operator]


#: MySQL digest counters summed per fingerprint (aggregate_pgss knows PostgreSQL's)
_MYSQL_COUNTS = (
    "rows_examined",
    "lock_ms",
    "no_index_used",
    "full_scans",
    "full_joins",
    "tmp_tables",
    "tmp_disk_tables",
    "sort_merge_passes",
)


def _keep_mysql_counts(agg: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``agg`` with the MySQL digest counters and dialect of ``rows`` summed per fingerprint."""
    if len(agg) == 0 or "fingerprint_id" not in rows:
        return agg
    agg = agg.copy()
    g = rows.groupby("fingerprint_id", sort=False)
    for col in _MYSQL_COUNTS:
        if col in rows and pd.to_numeric(rows[col], errors="coerce").notna().any():
            summed = (
                pd.to_numeric(rows[col], errors="coerce")
                .groupby(rows["fingerprint_id"], sort=False)
                .sum(min_count=1)
            )
            agg[col] = (
                agg["fingerprint_id"]
                .map(summed)
                .astype(agg[col].dtype if col in agg else "float64")
            )
    if "dialect" in rows:
        agg["dialect"] = agg["fingerprint_id"].map(g["dialect"].first()).astype("string")
    return agg


def _snapshot_order(path: str) -> tuple[int, str]:
    """Order snapshot files: 'before' first, 'after' last, otherwise by name (dates sort)."""
    name = Path(path).name.lower()
    rank = 0 if "before" in name else 2 if "after" in name else 1
    return rank, name


def _walk(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
            yield p


def _is_documentation(path: Path) -> bool:
    """READMEs, a ``manifest.json``, Word/PDF/office documents and pictures a client adds."""
    name = path.name.lower()
    if path.suffix.lower() in _DOC_SUFFIXES:
        return True
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return name in _DOC_STEMS or (
        stem in _DOC_STEMS and path.suffix.lower() in {".txt", ".json", ".yaml", ".yml", ""}
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_client(
    data_dir: str | Path,
    config: AuditConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    name: str | None = None,
    require_input: bool = False,
    executor: Executor | None = None,
) -> ClientData:
    """Detect and load every file of a client folder. Never raises for a bad file.

    ``cache_dir`` keeps parsed results keyed by file content hash, format and options.
    A file that cannot be read at all (permissions, an I/O error) is listed as
    ``unreadable`` with the reason; documentation (READMEs, ``manifest.json``, PDFs, office
    documents) as ``documentation``. With ``require_input``, a folder from which no file
    loads raises :class:`~auditkit.errors.NothingReadableError` naming the folder and what
    was found in it: there is nothing to audit.

    ``executor`` (one of :mod:`auditkit.executors` whose workers read this machine's files)
    loads the files side by side, largest first: a folder of many small files then uses every
    worker. A file large enough to be parsed in blocks
    (:data:`~auditkit.executors.PARALLEL_MIN_BYTES`) is loaded here, its blocks on the same
    workers. Without one, files load one after another (each large one on every core). The
    result is the same either way, in the folder's order.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise AuditkitError(
            f"{root}: not a folder", hint="give the folder holding the client's files"
        )
    cfg = config or load_config(root)
    client = ClientData(name or cfg.client or root.name, root, cfg)
    cache = Path(cache_dir) if cache_dir else None
    paths = list(_walk(root))
    loaded = _load_files(root, paths, cfg, cache, executor)
    collected: dict[str, list[pd.DataFrame]] = {}
    for info, result in loaded:
        client.files.append(info)
        if result is None:
            continue
        rel = info.path
        client.results[rel] = result
        for frame_name, df in result.frames.items():
            if len(df):
                df = df.copy()
                if "source_file" in df:
                    df["source_file"] = rel
                if "plan_id" in df:  # "<file>#<n>": name plans by their path in the folder
                    df["plan_id"] = (
                        rel + "#" + df["plan_id"].astype(str).str.rsplit("#", n=1).str[-1]
                    )
                collected.setdefault(frame_name, []).append(df)
    for frame_name, parts in collected.items():
        client.frames[frame_name] = (
            conform(pd.concat(parts, ignore_index=True), FRAMES[frame_name])
            if frame_name in FRAMES
            else pd.concat(parts, ignore_index=True)
        )
    _request_ids_from_prefix(client)
    _routes(client)
    if require_input and not client.results:
        raise nothing_readable(client)
    return client


def _load_files(
    root: Path,
    paths: list[Path],
    cfg: AuditConfig,
    cache: Path | None,
    executor: Executor | None,
) -> list[tuple[InputFile, LoadResult | None]]:
    """Every file of ``paths`` through :func:`_load_file`, in ``paths``' order.

    With an executor of several workers that read this machine's files, the files below
    :data:`~auditkit.executors.PARALLEL_MIN_BYTES` go to the workers, largest first (so no
    worker is left with a long file at the end); the larger ones are loaded here, their blocks
    parsed on the same workers.
    """
    from auditkit.executors import PARALLEL_MIN_BYTES

    if executor is None or executor.workers < 2 or not executor.shares_files or len(paths) < 2:
        return [_load_file(root, p, cfg, cache) for p in paths]
    sizes = [_size(p) for p in paths]
    large = [i for i, size in enumerate(sizes) if size >= PARALLEL_MIN_BYTES]
    small = sorted(
        (i for i, size in enumerate(sizes) if size < PARALLEL_MIN_BYTES), key=lambda i: -sizes[i]
    )
    out: dict[int, tuple[InputFile, LoadResult | None]] = {}
    for i in large:
        out[i] = _load_file(root, paths[i], cfg, cache, executor)
    # the workers keep their parses in the parse cache in the background (see _store)
    jobs = ((root, paths[i], cfg, cache, None, True) for i in small)
    try:
        for i, loaded in zip(small, executor.map(_load_file, jobs), strict=False):
            out[i] = loaded
    except Exception:  # a worker died, or a parse could not travel back: the rest load here
        pass
    for i in small:
        if i not in out:
            out[i] = _load_file(root, paths[i], cfg, cache)
    return [out[i] for i in range(len(paths))]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # said again, with the reason, when the file is loaded


def _load_file(
    root: Path,
    path: Path,
    cfg: AuditConfig,
    cache: Path | None,
    executor: Executor | None = None,
    background: bool = False,
) -> tuple[InputFile, LoadResult | None]:
    """One file of the client folder: what became of it, and what it loaded (None if nothing).

    Never raises for the file: a file that cannot be read, recognised or parsed says why in
    its :class:`InputFile`. A fresh parse is scrubbed of secrets and kept in the parse cache
    (:func:`_store`; in the background with ``background``). ``executor`` parses a large
    block-parsed file's blocks.
    """
    rel = path.relative_to(root).as_posix()
    info = InputFile(rel, 0, "")
    try:  # size and hash inside the per-file handling: one unreadable file is one file
        info.size_bytes = path.stat().st_size
        info.sha256 = _sha256(path)
    except OSError as exc:
        info.status, info.error = "unreadable", _os_reason(exc)
        return info, None
    if path.name in _CONFIG_NAMES:
        info.status, info.format = "ignored", "audit.yaml"
        return info, None
    if cfg.ignored(rel):
        info.status = "ignored"
        return info, None
    hint = cfg.format_for(rel)  # a format named in audit.yaml wins over the file's name
    if hint is None and _is_documentation(path):
        info.status = "documentation"
        return info, None
    options = dict(hint.options) if hint else {}
    if cfg.tz and "tz" not in options:
        options["tz"] = cfg.tz
    try:
        fmt = hint.format if hint else detect(path).format
    except UnknownFormatError as exc:
        info.status, info.error = "unrecognised", str(exc).replace(str(path), rel)
        return info, None
    except OSError as exc:
        info.status, info.error = "unreadable", _os_reason(exc)
        return info, None
    info.format = fmt
    result = _cached(cache, info, fmt, options)
    if result is None:
        loader = get_loader(fmt)
        extra = (
            {"executor": executor}
            if executor is not None and isinstance(loader, BlockLoader)
            else {}
        )
        try:
            start = time.perf_counter()
            result = loader.load(path, **options, **extra)
            result.report.elapsed_s = time.perf_counter() - start
        except AuditkitError as exc:
            info.status, info.error = "error", str(exc).replace(str(path), rel)
            report = getattr(exc, "report", None)
            info.report = report if isinstance(report, ParseReport) else None
            return info, None
        except OSError as exc:  # the disk, not the format: say so
            info.status, info.error = "unreadable", _os_reason(exc)
            return info, None
        except Exception as exc:  # a loader bug must not sink the whole audit
            info.status, info.error = "error", f"{type(exc).__name__}: {exc}"
            return info, None
        _store(cache, info, fmt, options, result, background=background)
    result.report.path = rel
    info.status, info.report = "loaded", result.report
    return info, result


def nothing_readable(client: ClientData) -> NothingReadableError:
    """The error for a folder where no file loaded: the folder and what was found in it."""
    found = Counter(f.status for f in client.files)
    if not client.files:
        what = "it is empty"
    else:
        parts = [f"{n} {status}" for status, n in sorted(found.items())]
        what = f"{len(client.files)} {'file' if len(client.files) == 1 else 'files'}: {', '.join(parts)}"
        first = next((f for f in client.files if f.error), None)
        if first is not None and first.error:
            reason = first.error.split(" — ")[0]
            named = reason if reason.startswith(first.path) else f"{first.path}: {reason}"
            what += f" (e.g. {named})"
    exc = NothingReadableError(
        f"nothing to audit in {client.root.name}: no file could be read — {what}",
        found=dict(found),
    )
    exc.path = client.root.name
    return exc


def _os_reason(exc: OSError) -> str:
    """An OS error as a short reason with no local path (the file is named by the caller)."""
    reason = exc.strerror or type(exc).__name__
    return f"cannot be read: {reason}"


#: share of a prefix position's tokens that must be known request ids to take the position
PREFIX_ID_MATCH = 0.5


def _request_ids_from_prefix(client: ClientData) -> None:
    """Request ids hidden in a logging prefix, recognised by the access log's ids.

    A Django log whose formatter prints a request id (``[%(request_id)s]``) under no name keeps
    its id-like prefix tokens in ``prefix_tokens``. When, at one position, most tokens are
    request ids of the ``requests`` frame (an access log, a trace), that position is the
    request id: statements then join their requests and endpoints.
    """
    events = client.frames.get("query_events")
    requests = client.frames.get("requests")
    if events is None or "prefix_tokens" not in events:
        return
    if requests is not None and len(requests) and events["prefix_tokens"].notna().any():
        known = set(requests["request_id"].dropna().astype(str))
        missing = events["request_id"].isna() & events["prefix_tokens"].notna()
        split = events.loc[missing, "prefix_tokens"].astype(str).str.split(" ", expand=True)
        best, share = None, 0.0
        for col in split.columns:
            tokens = split[col].dropna()
            if len(tokens):
                hit = float(tokens.isin(known).mean())
                if hit > share:
                    best, share = col, hit
        if best is not None and share >= PREFIX_ID_MATCH:
            ids = split[best].where(split[best].isin(known))
            events.loc[missing, "request_id"] = ids.astype("string")
            client.notes.append(
                f"request ids read from the Django log prefix (position {int(best) + 1}): "
                f"{share:.0%} of its tokens are request ids of the access log"
            )
    client.frames["query_events"] = events.drop(columns=["prefix_tokens"])


def _routes(client: ClientData) -> None:
    """Endpoints as routes, consistently across every frame (see auditkit.endpoints)."""
    from auditkit.endpoints import route_templates

    frames = [
        df for df in client.frames.values() if "endpoint" in df and df["endpoint"].notna().any()
    ]
    if not frames:
        return
    paths = set().union(*(set(df["endpoint"].dropna().astype(str).unique()) for df in frames))
    mapping = route_templates(paths)
    if all(k == v for k, v in mapping.items()):
        return
    for name, df in client.frames.items():
        if "endpoint" in df and df["endpoint"].notna().any():
            if "path" not in df:
                df["path"] = df["endpoint"]
            df["endpoint"] = (
                df["endpoint"]
                .map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
                .astype("string")
            )
            client.frames[name] = df


def _cached(
    cache: Path | None, info: InputFile, fmt: str, options: dict[str, Any]
) -> LoadResult | None:
    """The file's parse from the parse cache (see :mod:`auditkit.parse_cache`), if trusted."""
    if cache is None:
        return None
    from auditkit.parse_cache import ParseCache

    result = ParseCache(cache).get(info.sha256, fmt, options)
    info.cached = result is not None
    return result


def _store(
    cache: Path | None,
    info: InputFile,
    fmt: str,
    options: dict[str, Any],
    result: LoadResult,
    *,
    background: bool = False,
) -> None:
    """Keep a fresh parse: secrets scrubbed from it (always), then cached when a cache is set.

    Scrubbing here, at the boundary, means no frame, cache entry or page of an audit ever holds
    a password, token or session key (:func:`auditkit.redact.scrub_frame`).

    With ``background`` (a worker process of :func:`load_client`) the cache entry is written by
    a thread of its own while the worker goes on: a worker process ends only once its threads
    have (:mod:`multiprocessing`), so closing the workers waits for every entry.
    """
    from auditkit.redact import scrub_frame, scrub_secrets

    result.report.path = info.path  # relative to the client folder, never a local path
    for df in result.frames.values():
        scrub_frame(df)
    report = result.report
    report.warnings = [scrub_secrets(w) for w in report.warnings]
    for s in report.samples:
        s.excerpt = scrub_secrets(s.excerpt)
    if cache is not None:
        from auditkit.parse_cache import ParseCache

        put = ParseCache(cache).put
        if background:
            args = (info.sha256, fmt, dict(options), result)
            threading.Thread(target=put, args=args, name="auditkit-cache").start()
        else:
            put(info.sha256, fmt, options, result)
