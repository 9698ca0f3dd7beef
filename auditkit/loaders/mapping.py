"""Files the sniffer does not know, read the way ``audit.yaml`` ``map:`` says.

An entry names a glob, what the files are (``as:``) and how their columns are called::

    map:
      "exports/queries-*.csv":
        as: pg_stat_statements            # a format, a PostgreSQL view or a canonical frame
        columns: {total: total_exec_time, n: calls, sql: query}   # file column: expected column
        options: {}                       # passed to the loader

``as:`` is resolved by :func:`resolve_target`:

* a **format** (``auditkit formats``: ``pgss_csv``, ``pg_stat_tables``, ``postgres_stderr``…);
* a **PostgreSQL view** (``pg_stat_statements``, ``pg_stat_user_tables``, ``pg_statio_user_tables``,
  ``pg_stat_database``… — :data:`auditkit.loaders.pg_stat_views.VIEW_FORMATS`): the format that
  reads its export;
* a **canonical frame** (``schema_tables``, ``query_events``… — ``docs/frames.md``): the file's
  rows become rows of the frame, columns named as the frame names them.

A tabular file (CSV/TSV, JSON array or lines, psql output) has its columns renamed by
``columns`` and then checked: every column the target requires must be there, else a
:class:`~auditkit.errors.MappingError` names the file, the missing column, the columns the file
has, and the ``map:`` line to add, with a guessed file column. The renamed rows are handed to the
target's loader (as JSON, so line numbers map back to the file's) or conformed to the frame.
Without ``columns`` a non-tabular file (a log) is simply read with the named format, as
``formats:`` does.

The ``mapped`` loader is registered so that a mapping is a format hint like any other (its
options carry ``as``, ``columns``, ``options``): it never claims a file by sniffing.
"""

from __future__ import annotations

import difflib
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import ConfigError, MappingError
from auditkit.loaders.base import Loader, add_fingerprints, nothing_parsed
from auditkit.loaders.pg_catalog import records_from_text
from auditkit.loaders.registry import all_loaders, get_loader, register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text
from auditkit.schemas import BOOL, FRAMES, conform

__all__ = [
    "SYNONYMS",
    "Closest",
    "MappedLoader",
    "Target",
    "closest_format",
    "map_line",
    "required_columns",
    "resolve_target",
    "suggest_columns",
]

#: formats whose files are tables of named columns (the map's ``columns`` applies to them)
_PGSS = {"pgss_csv", "pgss_json", "pgss_psql"}


class Target:
    """What a ``map: … as:`` names: a loader format, or a canonical frame."""

    def __init__(self, given: str, kind: str, name: str) -> None:
        self.given = given
        self.kind = kind  # 'format' or 'frame'
        self.name = name

    def __repr__(self) -> str:
        return f"<target {self.given} → {self.kind} {self.name}>"


def resolve_target(given: str) -> Target:
    """The format or frame ``given`` names (a format, a PostgreSQL view or a frame)."""
    from auditkit.loaders.pg_stat_views import VIEW_FORMATS

    name = given.strip()
    loaders = all_loaders()
    if name in loaders and name != MappedLoader.name:
        return Target(given, "format", name)
    if name.lower() in VIEW_FORMATS:
        return Target(given, "format", VIEW_FORMATS[name.lower()])
    if name in FRAMES:
        return Target(given, "frame", name)
    raise ConfigError(
        f"map: unknown 'as: {given}'",
        hint=(
            "name a format (auditkit formats), a PostgreSQL view "
            f"({', '.join(sorted(VIEW_FORMATS))}) or a frame ({', '.join(FRAMES)})"
        ),
    )


def required_columns(target: Target) -> tuple[frozenset[str], ...]:
    """Column sets the target needs (any one of them); empty when it reads no named columns."""
    if target.kind == "frame":
        schema = FRAMES[target.name]
        return (frozenset(c.name for c in schema.columns if c.required),)
    loader = get_loader(target.name)
    required = getattr(loader, "required", None)
    if required:
        return tuple(frozenset(r) for r in required)
    if target.name in _PGSS:
        return (frozenset({"calls", "query"}),)
    if target.name == "pg_settings":
        return (frozenset({"name", "setting"}),)
    return ()


#: expected column → names the same thing often has in other tools' exports
SYNONYMS: dict[str, tuple[str, ...]] = {
    "calls": ("executions", "exec_count", "execution_count", "count", "n", "num_calls", "times"),
    "query": ("sql", "statement", "statement_text", "query_text", "sql_text", "stmt", "text"),
    "sql": ("query", "statement", "statement_text", "query_text", "sql_text", "stmt"),
    "total_exec_time": ("total", "total_ms", "total_time", "total_time_ms", "sum_ms", "time_ms"),
    "mean_exec_time": ("mean", "mean_ms", "avg", "avg_ms", "average_ms", "mean_time"),
    "rows": ("rows_returned", "row_count", "rows_affected"),
    "shared_blks_hit": ("cache_hits", "blks_hit", "buffer_hits"),
    "shared_blks_read": ("disk_reads", "blks_read", "buffer_reads"),
    "table": ("tbl", "table_name", "tablename", "relname", "relation"),
    "tablename": ("tbl", "table", "table_name", "relname"),
    "relname": ("tbl", "table", "table_name", "tablename", "relation"),
    "index": ("idx", "index_name", "indexname", "indexrelname"),
    "indexname": ("idx", "index", "index_name", "indexrelname"),
    "indexrelname": ("idx", "index", "index_name", "indexname"),
    "rows_estimate": ("rows", "approx_rows", "n_live_tup", "reltuples", "row_count", "live_rows"),
    "seq_scan": ("full_scans", "seq_scans", "sequential_scans"),
    "idx_scan": ("index_scans", "idx_scans"),
    "n_tup_ins": ("inserts", "rows_inserted"),
    "n_tup_upd": ("updates", "rows_updated"),
    "n_tup_del": ("deletes", "rows_deleted"),
    "ts": ("timestamp", "time", "datetime", "date", "@timestamp", "start_time"),
    "duration_ms": ("duration", "elapsed_ms", "took_ms", "time_ms", "latency_ms"),
    "endpoint": ("path", "url", "route", "view", "uri"),
    "name": ("setting_name", "variable", "parameter", "key"),
    "setting": ("value", "current_value", "setting_value"),
}


def suggest_columns(missing: list[str], have: list[str]) -> dict[str, str]:
    """For each missing column, the file column most like it ({file column: expected}).

    A known synonym first (:data:`SYNONYMS`: ``executions`` for ``calls``), then a name whose
    words hold the other's (``table_name`` for ``table``), then a close spelling; a file column
    is suggested once.
    """
    return {h: want for h, (want, _q) in _guess(missing, have).items()}


def _likeness(want: str, h: str) -> float:
    """How surely file column ``h`` is expected column ``want``: 0.9 synonym, 0.75 words, 0.6 spelling."""
    synonyms = SYNONYMS.get(want, ())
    if h in synonyms:
        return 0.9 - synonyms.index(h) / 1000
    words_w, words_h = set(want.split("_")), set(h.split("_"))
    if min(len(want), len(h)) >= 4 and (words_w <= words_h or words_h <= words_w):
        return 0.75
    if difflib.SequenceMatcher(None, want, h).ratio() >= 0.8:
        return 0.6
    return 0.0


def _guess(missing: list[str], have: list[str]) -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    free = list(have)
    for want in missing:
        ranked = sorted(((_likeness(want, h), h) for h in free), reverse=True)
        if ranked and ranked[0][0] > 0:
            quality, best = ranked[0]
            out[best] = (want, quality)
            free.remove(best)
    return out


def map_line(match: str, target: str, columns: Mapping[str, str]) -> str:
    """The audit.yaml ``map:`` entry, as one line of YAML flow style."""
    cols = ", ".join(f"{k}: {v}" for k, v in columns.items())
    body = f"as: {target}" + (f", columns: {{{cols}}}" if cols else "")
    return f'map: {{"{match}": {{{body}}}}}'


@register
class MappedLoader(Loader):
    """A file read as audit.yaml ``map:`` says (never chosen by sniffing)."""

    name = "mapped"
    frame = "query_events"
    description = "a file mapped in audit.yaml (map: glob → as, columns)"
    expected = "a file named in audit.yaml map:, with the columns its 'as:' needs"

    def sniff(self, head: str, path: Path) -> float:
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        given = str(options.get("as") or "")
        target = resolve_target(given)
        columns = {str(k): str(v) for k, v in (options.get("columns") or {}).items()}
        inner = dict(options.get("options") or {})
        match = str(options.get("match") or Path(path).name)
        text, _bad = read_text(path)
        header, records = records_from_text(text)
        tabular = bool(header)
        if not columns and target.kind == "format" and not (tabular and required_columns(target)):
            result = get_loader(target.name).load(path, **inner)
            result.report.format = f"{target.name} (mapped as {given})"
            return result
        if not tabular:
            raise MappingError(
                f"as: {given} with columns needs a table (CSV, JSON records or psql output), "
                "and this file has no header row",
                path=path,
                missing=[],
                have=[],
                suggestion=map_line(match, given, {}),
            )
        lowered = {k.lower(): v.lower() for k, v in columns.items()}
        absent = [k for k in lowered if k not in header]
        if absent:
            raise MappingError(
                f"map columns name {', '.join(absent)}, which the file does not have",
                path=path,
                missing=absent,
                have=header,
                suggestion=map_line(match, given, columns),
            )
        renamed = [lowered.get(h, h) for h in header]
        needs = required_columns(target)
        if needs and not any(req <= set(renamed) for req in needs):
            best = min(needs, key=lambda req: len(req - set(renamed)))
            missing = sorted(best - set(renamed))
            free = [h for h in header if h not in lowered]
            guess = {**columns, **suggest_columns(missing, free)}
            raise MappingError(
                f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"missing for as: {given}",
                path=path,
                missing=missing,
                have=header,
                suggestion=map_line(match, given, guess),
            )
        rows: list[tuple[int, dict[str, Any]]] = [
            (line, {lowered.get(k, k): v for k, v in rec.items()}) for line, rec in records
        ]
        if target.kind == "frame":
            return self._as_frame(path, target, rows, given)
        return self._through_loader(path, target, rows, inner, given)

    def _through_loader(
        self,
        path: str | Path,
        target: Target,
        rows: list[tuple[int, dict[str, Any]]],
        options: dict[str, Any],
        given: str,
    ) -> LoadResult:
        """Hand the renamed rows to the target's loader as a JSON array; map lines back."""
        name = "pgss_json" if target.name in _PGSS else target.name
        lines = [line for line, _ in rows]
        with tempfile.TemporaryDirectory(prefix="auditkit-map-") as tmp:
            copy = Path(tmp) / (Path(path).stem + ".json")
            copy.write_text(json.dumps([rec for _, rec in rows], default=str), encoding="utf-8")
            result = get_loader(name).load(copy, **options)
        report = result.report
        report.path, report.format = str(path), f"{name} (mapped as {given})"
        for s in report.samples:
            s.line = lines[s.line - 1] if 0 < s.line <= len(lines) else s.line
        for df in result.frames.values():
            if "source_file" in df:
                df["source_file"] = str(path)
            if "source_line" in df:
                df["source_line"] = (
                    pd.to_numeric(df["source_line"], errors="coerce")
                    .map(lambda n: lines[int(n) - 1] if pd.notna(n) and 0 < n <= len(lines) else n)
                    .astype("Int64")
                )
        return LoadResult(name, result.frames, report, primary=result.primary)

    def _as_frame(
        self,
        path: str | Path,
        target: Target,
        rows: list[tuple[int, dict[str, Any]]],
        given: str,
    ) -> LoadResult:
        """The renamed rows as rows of a canonical frame (extra columns kept)."""
        start = time.perf_counter()
        schema = FRAMES[target.name]
        report = ParseReport(str(path), f"{target.name} (mapped as {given})")
        required = [c.name for c in schema.columns if c.required]
        kept: list[dict[str, Any]] = []
        for line, rec in rows:
            empty_required = [c for c in required if rec.get(c) in (None, "")]
            if "__invalid__" in rec or rec.get("__width__") is not None:
                report.skip(line, "not a record of the header's columns", str(rec)[:160])
            elif empty_required:
                report.skip(line, f"no {', '.join(empty_required)}", str(rec)[:160])
            else:
                report.ok()
                kept.append({**rec, "source_file": str(path), "source_line": line})
        report.lines = rows[-1][0] if rows else 0
        df = pd.DataFrame(kept)
        for col in schema.columns:
            if col.dtype == BOOL and col.name in df:
                df[col.name] = df[col.name].map(_flag).astype(BOOL)
        if "source_format" in schema.names:
            df["source_format"] = "mapped"
        frame = conform(df, schema) if len(df) else conform(pd.DataFrame(columns=required), schema)
        if target.name == "query_events" and len(frame):
            frame = add_fingerprints(frame)
        report.events[target.name] = len(frame)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(target.name, {target.name: frame}, report, primary=target.name)


def _flag(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("t", "true", "1", "yes", "y", "on", "hit"):
        return True
    if s in ("f", "false", "0", "no", "n", "off", "miss"):
        return False
    return None


# --------------------------------------------------------------------------------------------
# the closest known format of an unread file (auditkit inspect)
# --------------------------------------------------------------------------------------------
#: frames a table of one's own is usually mapped onto (the others need ids only loaders make)
_MAPPABLE_FRAMES = (
    "query_events",
    "requests",
    "cache_events",
    "schema_tables",
    "schema_indexes",
    "column_stats",
    "cache_stats",
)


@dataclass
class Closest:
    """What an unread file is most like, what differs, and the ``map:`` line that reads it."""

    path: str
    target: str | None = None  # what to write after 'as:' (a view, a format or a frame)
    format: str | None = None  # the format (or frame) that would read it
    score: float = 0.0
    differs: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    suggestion: str | None = None
    reason: str | None = None  # why nothing is proposed

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "format": self.format,
            "score": round(self.score, 3),
            "differs": list(self.differs),
            "columns": dict(self.columns),
            "map": self.suggestion,
            "reason": self.reason,
        }


def _candidates() -> list[tuple[str, str, str, tuple[frozenset[str], ...], frozenset[str]]]:
    """(as, kind, name, required sets, other known columns) of every mappable target."""
    from auditkit.loaders.pg_stat_statements import PGSS_COLUMNS
    from auditkit.loaders.pg_stat_views import VIEW_FORMATS

    view_of: dict[str, str] = {}
    for view, fmt in VIEW_FORMATS.items():
        view_of.setdefault(fmt, view)
    out = []
    for name in all_loaders():
        if name == MappedLoader.name:
            continue
        target = Target(name, "format", name)
        required = required_columns(target)
        if not required:
            continue
        known = frozenset(PGSS_COLUMNS) if name in _PGSS else frozenset()
        out.append((view_of.get(name, name), "format", name, required, known))
    for frame in _MAPPABLE_FRAMES:
        schema = FRAMES[frame]
        target = Target(frame, "frame", frame)
        known = frozenset(c.name for c in schema.columns) - {"source_file", "source_line"}
        out.append((frame, "frame", frame, required_columns(target), known))
    return out


def closest_format(path: str | Path, relpath: str | None = None) -> Closest:
    """The known format (or frame) an unread file is closest to, and the ``map:`` line.

    A table (CSV, JSON records, psql output) is compared by its columns with what every format
    and mappable frame requires, file columns guessed by :func:`suggest_columns`; a file without
    a header by the loaders' own sniffers (the best rating below the detection threshold).
    """
    from auditkit.loaders.detect import looks_binary
    from auditkit.loaders.stream import read_head

    rel = relpath or Path(path).name
    out = Closest(rel)
    try:
        raw = read_head(path)
    except OSError as exc:
        out.reason = f"cannot read the file ({exc.strerror or exc})"
        return out
    if not raw:
        out.reason = "the file is empty"
        return out
    head = raw.decode("utf-8", errors="replace")
    header: list[str] = []
    try:
        header, _records = records_from_text(head)
    except Exception:  # a head cut mid-record may not parse: then it is no table
        header = []
    if header and len(header) >= 2:
        return _closest_table(out, rel, header)
    if looks_binary(raw):
        out.reason = "binary, not a text export or log (decompress it or export it as text)"
        return out
    scores = []
    for name, loader in all_loaders().items():
        try:
            scores.append((float(loader.sniff(head, Path(path))), name))
        except Exception:
            continue
    scores.sort(reverse=True)
    if not scores or scores[0][0] <= 0:
        out.reason = "no known format is close: no loader's sniffer sees anything of its own"
        return out
    score, name = scores[0]
    out.target, out.format, out.score = name, name, score
    out.differs = [f"{name} recognises it only at {score:.2f} (detection needs 0.5)"]
    out.suggestion = map_line(rel, name, {})
    return out


def _closest_table(out: Closest, rel: str, header: list[str]) -> Closest:
    have = set(header)
    best: tuple[tuple[float, int, int], Any] | None = None
    for as_name, kind, name, required, known in _candidates():
        for req in required:
            found = req & have
            guesses = _guess(sorted(req - have), [h for h in header if h not in req])
            guessed = {h: want for h, (want, _q) in guesses.items()}
            coverage = (len(found) + sum(q for _w, q in guesses.values())) / len(req)
            extra = len((known - req) & have)
            key = (coverage, len(found) + len(guessed) + extra, len(req))
            if best is None or key > best[0]:
                best = (key, (as_name, kind, name, req, found, guessed, known))
    if best is None or best[0][0] < 0.5:
        out.reason = (
            "no known format or frame has columns like these ("
            + ", ".join(header[:12])
            + (", …" if len(header) > 12 else "")
            + ")"
        )
        return out
    (coverage, _n, _size), (as_name, kind, name, req, found, guessed, known) = best
    out.target, out.format, out.score = as_name, name, coverage
    out.columns = dict(guessed)
    # the target's other columns, where a file column surely is one (a synonym or its words)
    free = [h for h in header if h not in guessed and h not in known]
    optional = _guess(sorted(known - req - have), free)
    out.columns.update({h: want for h, (want, q) in optional.items() if q >= 0.75})
    for file_col, want in out.columns.items():
        out.differs.append(f"column {file_col!r} is probably {want!r}")
    for want in sorted(req - found - set(guessed.values())):
        out.differs.append(f"missing column {want!r}")
    if not out.differs:
        out.differs.append(
            f"it has the columns {as_name} needs ({', '.join(sorted(req))}) but not enough of its "
            "other columns to be recognised"
        )
    out.suggestion = map_line(rel, as_name, out.columns)
    return out
