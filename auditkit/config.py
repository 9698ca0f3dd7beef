"""Thresholds, presets and per-client settings, in one place.

Checks never hold numbers of their own: they ask :meth:`AuditConfig.thresholds` for a
*family* (``"slow_query"``, ``"n_plus_one"``, ``"index"``, …) and get a mapping of named values.
Where established tools disagree, their values are offered as named presets of the family
(``n_plus_one: sentry``, ``index: dexter``); the ``default`` preset is auditkit's own choice
and is stated in reports. A client's ``audit.yaml`` may pick presets and override single
values; unknown families, presets or keys are errors that say what exists.

``audit.yaml`` (every key optional)::

    client: Acme Ltd
    formats:                      # help detection where it needs it
      - match: "logs/postgresql-*.log"
        format: postgres_stderr
        options: {prefix: "%m [%p] %q%u@%d "}
    deployment:                   # facts the scaling chapter uses
      web_workers: 8
      threads_per_worker: 4
      max_connections: 100
    presets: {n_plus_one: sentry, index: dexter}
    thresholds:
      slow_query: {min_mean_ms: 50}
    ignore: ["*.tmp", "notes/**"]
    map:                          # files no loader recognises (docs/formats/mapping.md)
      "exports/queries-*.csv":
        as: pg_stat_statements    # a format, a PostgreSQL view or a canonical frame
        columns: {total: total_exec_time, n: calls, sql: query}   # file column: expected column
        options: {}
    tz: Europe/Paris              # zone of timestamps printed without one (default: UTC,
                                  # with a warning in each parse report)
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from auditkit.errors import ConfigError

__all__ = ["PRESETS", "AuditConfig", "FileMap", "FormatHint", "load_config"]

#: family → preset name → values. "default" holds every key; other presets override some.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "severity": {
        # the one rule over measured impact (auditkit.checks.severity): a fix that saves this
        # share of all database time in the window, or this much per affected request (counted
        # when at least min_requests requests were affected), or this much response time per
        # request (work moved out of the request) is high / medium; any measured saving is low
        "default": {
            "high_share": 0.10,
            "medium_share": 0.02,
            "high_ms_per_request": 100.0,
            "medium_ms_per_request": 20.0,
            "high_response_ms": 1000.0,
            "medium_response_ms": 250.0,
            "min_requests": 10,
            # a share of all database time counts only from this much time saved in the
            # window: half of a nearly idle database's 20 ms is no high finding
            "min_share_ms": 100.0,
        },
    },
    "slow_query": {
        # pgHero flags statements averaging ≥ 20 ms with ≥ 100 calls; pgBadger ranks by total time
        "default": {
            "min_mean_ms": 100.0,
            "min_share": 0.05,
            # a share counts only when the statement's time is material: a statement that takes
            # 20 % of a nearly idle database's 50 ms is no finding
            "min_share_ms": 100.0,
            "min_calls": 1,
            "top": 20,
            "high_mean_ms": 1000.0,
            "high_share": 0.2,
        },
        # (min_share None: the share criterion is off)
        "pghero": {"min_mean_ms": 20.0, "min_calls": 100, "min_share": None},
    },
    "n_plus_one": {
        # auditkit: 5 repeats of one fingerprint in a request (Sentry's count), no time floor
        "default": {
            "min_repeats": 5,
            "min_total_ms": 0.0,
            "duplicate_min_repeats": 2,
            # severity bands on the time wasted per request and the repeats per request
            "high_wasted_ms": 100.0,
            "medium_wasted_ms": 20.0,
            "high_repeats": 50,
            "medium_repeats": 10,
        },
        # Sentry's N+1 DB detector: ≥ 5 repeated spans totalling ≥ 100 ms (sentry/issue_detection)
        "sentry": {"min_repeats": 5, "min_total_ms": 100.0},
        # Scout APM: N+1 insight when the repeated calls total ≥ 150 ms
        "scout": {"min_repeats": 2, "min_total_ms": 150.0},
        # django-zeal: raises on the 2nd repeat by default (ZEAL_NPLUSONE_THRESHOLD = 2)
        "django_zeal": {"min_repeats": 2, "min_total_ms": 0.0},
        # django-debug-toolbar: "similar" queries ≥ 2, "duplicated" ≥ 2
        "debug_toolbar": {"min_repeats": 2, "min_total_ms": 0.0, "duplicate_min_repeats": 2},
    },
    "requests": {
        # a plain query log has no request ids: statements of one pid/thread closer than this
        # are taken as one request
        "default": {"gap_ms": 250.0},
    },
    "plan": {
        # severity bands from PEV2 / explain.depesz.com: a node's share of the plan's time, the
        # factor between estimated and actual rows (three bands: low, medium, high severity), the
        # fraction of rows a filter removes (two bands: low, medium)
        "default": {
            "time_share": (0.1, 0.4, 0.9),
            "misestimate": (10.0, 100.0, 1000.0),
            "rows_removed": (0.5, 0.9),
            # hash joins that spilled into more than this many batches
            "hash_batches": 1,
            # index-only scans: heap fetches above this many and this fraction of the rows returned
            "heap_fetches": 1000,
            "heap_fetches_ratio": 0.1,
            # nested loops whose inner side ran this many times (medium, high)
            "nested_loop_loops": (1000, 100000),
            # sequential scans reading at least this many rows (medium, high)
            "seq_scan_rows": (10000, 1000000),
            # nodes faster than this (exclusive, all loops) are not worth a finding
            "min_node_ms": 1.0,
            # with no timing (EXPLAIN without ANALYZE), costs stand in for time
            "use_cost_without_timing": True,
        },
        # explain.depesz.com colours a node's exclusive time from 10 %, 50 %, 90 %
        "depesz": {"time_share": (0.1, 0.5, 0.9)},
    },
    "index": {
        # statements considered (calls, total ms), cost cut a hypothetical index must bring
        # (Dexter: 50 %), scans below which an index is unused (pgHero: 50), tables too small to
        # matter, write/read ratio above which a table is write-heavy, share of statement time
        # for medium/high severity, rows per equality value below which sorting is cheap (no sort
        # key added), keys per index at most, and the saving assumed before validation (or read
        # from a measured plan)
        "default": {
            "min_calls": 1,
            "min_total_ms": 0.0,
            "min_cost_reduction": 0.5,
            "unused_max_scans": 0,
            "min_table_rows": 1000,
            "write_heavy_ratio": 1.0,
            "medium_share": 0.02,
            "high_share": 0.1,
            "sort_skip_rows": 100,
            "max_columns": 3,
            "assumed_saving": 0.5,
            # with a measured plan, the saving is the share of its time spent in the scan the
            # index replaces, at most this much
            "max_plan_saving": 0.95,
            "unused_medium_bytes": 100 * 1024**2,
            "unused_high_bytes": 1024**3,
            # MySQL: characters of a TEXT column an index keeps (191 × 4 bytes of utf8mb4 fits
            # the 767-byte key limit of every InnoDB row format)
            "mysql_text_prefix_chars": 191,
        },
        # Dexter: statements with >= 100 calls; a hypothetical index must cut cost >= 50 %
        "dexter": {"min_calls": 100, "min_cost_reduction": 0.5, "max_columns": 2},
        # pgHero: unused = fewer than 50 scans; suggests indexes for >= 100 calls
        "pghero": {"min_calls": 100, "unused_max_scans": 50, "min_cost_reduction": 0.5},
        # PoWA / pg_qualstats: smaller samples, accept a 30 % cost cut
        "powa": {"min_calls": 10, "min_cost_reduction": 0.3},
    },
    "cache": {
        # Redis keyspace hit ratio below which caching is not pulling its weight; PostgreSQL
        # shared buffer hit ratio below which memory is short (pgHero: 99 %)
        "default": {
            "min_hit_ratio": 0.8,
            "pg_buffer_min_hit_ratio": 0.99,
            "candidate_min_calls": 100,
            "candidate_min_repeat_ratio": 0.5,
            # a read cheaper than this per execution is not worth a cache round trip, and
            # caching must save at least this share of all database time to be recommended
            "candidate_min_mean_ms": 5.0,
            "candidate_min_share": 0.05,
            # how stale a cached result may be, assumed when sizing the saving (seconds)
            "candidate_ttl_s": 600.0,
            # report the best few
            "candidate_top": 5,
            # a key family is judged from this many reads; keys read at most this often on
            # average are read about once: a per-user or per-object part nobody reads again
            "family_min_reads": 20,
            "family_max_reads_per_key": 2.0,
            # a server that evicted at least this many keys in the window is too small
            "min_evictions": 1,
            # a CDN path pattern is judged from this many requests (and static files too)
            "cdn_min_requests": 50,
        },
    },
    "mysql_server": {
        # MySQL/MariaDB server health from SHOW GLOBAL STATUS deltas (auditkit.checks.mysql_server).
        # InnoDB buffer-pool hit ratio (read requests served from memory) below which memory is
        # short (Percona/PMM: 99 %); share of internal temporary tables written to disk above
        # which tmp_table_size is too small (mysqltuner: 25 %); share of sorts needing merge
        # passes (sort_buffer_size) above which sorts spill (mysqltuner: 10 %); thread-cache hit
        # ratio (1 − Threads_created/Connections) below which new connections create threads
        # (mysqltuner: 50 %); joins without an index (Select_full_join) from which to report; and
        # buffer-pool read requests / temporary tables / sorts / connections below which the
        # window is too quiet to judge
        "default": {
            "buffer_pool_min_hit_ratio": 0.99,
            "tmp_disk_max_share": 0.25,
            "sort_merge_max_share": 0.10,
            "thread_cache_min_hit_ratio": 0.5,
            "full_join_min": 1,
            "min_read_requests": 1000,
            "min_tmp_tables": 10,
            "min_sorts": 10,
            "min_connections": 10,
        },
        "mysqltuner": {"buffer_pool_min_hit_ratio": 0.90},
    },
    "capacity": {
        # latency rises past the knee when p95 grows by this factor over the baseline step
        "default": {
            "p95_degradation": 2.0,
            "max_failure_rate": 0.01,
            "headroom": 0.7,
            # background work: requests waiting at least this long (median) on work outside the
            # database, the cache and the CPU (e-mail, external calls), and at most this share
            # of their time in the database
            "background_min_wait_ms": 100.0,
            "background_max_db_share": 0.3,
            # load steps: seconds dropped at the start of a step (spawning, warm-up), the
            # fewest settled seconds a step needs, the largest relative standard error of its
            # throughput, and the window over which Locust computes its current percentiles
            "step_warmup_s": 3.0,
            "step_min_s": 5.0,
            "step_max_noise": 0.15,
            "locust_percentile_window_s": 10.0,
            # the capacity model: confidence level, the R² below which a fit is called poor
            "confidence": 0.95,
            "min_r_squared": 0.9,
            # the plan: target = observed peak × growth unless given; a p95 objective in ms
            # (0: p95_degradation × the lowest step's p95); threads per worker at most; and
            # connections kept for migrations, shells and monitoring
            "growth": 2.0,
            "target_rps": 0.0,
            "latency_objective_ms": 0.0,
            "max_threads": 8,
            "maintenance_connections": 5,
            # connection churn: reported when sessions per request reach this
            "churn_min_sessions_per_request": 0.2,
        },
    },
}


@dataclass(frozen=True, slots=True)
class FormatHint:
    """From audit.yaml: files matching ``match`` (glob, relative to the client folder)."""

    match: str
    format: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def applies_to(self, relpath: str) -> bool:
        return fnmatch.fnmatch(relpath, self.match) or fnmatch.fnmatch(
            Path(relpath).name, self.match
        )


@dataclass(frozen=True, slots=True)
class FileMap:
    """From audit.yaml ``map:``: files matching ``match`` are read as ``target``.

    ``target`` is a format name (``auditkit formats``), a PostgreSQL view (``pg_stat_statements``,
    ``pg_stat_user_tables``, …) or a canonical frame (``schema_tables``, ``query_events``, …);
    ``columns`` renames the file's columns to the ones the target expects; ``options`` go to
    the loader. See :mod:`auditkit.loaders.mapping` and ``docs/formats/mapping.md``.
    """

    match: str
    target: str
    columns: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def applies_to(self, relpath: str) -> bool:
        return fnmatch.fnmatch(relpath, self.match) or fnmatch.fnmatch(
            Path(relpath).name, self.match
        )

    def hint(self) -> FormatHint:
        """The loader call this mapping stands for (the ``mapped`` loader with its options)."""
        return FormatHint(
            self.match,
            "mapped",
            {
                "as": self.target,
                "columns": dict(self.columns),
                "options": dict(self.options),
                "match": self.match,
            },
        )


@dataclass(frozen=True)
class AuditConfig:
    """Settings of one audit: presets, overrides, format hints, deployment facts."""

    client: str | None = None
    presets: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    formats: tuple[FormatHint, ...] = ()
    deployment: Mapping[str, Any] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    maps: tuple[FileMap, ...] = ()
    #: the zone of timestamps the client's files print without one (an IANA name)
    tz: str | None = None

    def __post_init__(self) -> None:
        if self.tz is not None:
            _zone(self.tz)
        for family, preset in self.presets.items():
            _family(family)
            if preset not in PRESETS[family]:
                raise ConfigError(
                    f"unknown {family} preset {preset!r}",
                    hint=f"{family} presets: {', '.join(PRESETS[family])}",
                )
        for family, values in self.overrides.items():
            known = PRESETS[_family(family)]["default"]
            for key in values:
                if key not in known:
                    raise ConfigError(
                        f"unknown {family} threshold {key!r}",
                        hint=f"{family} thresholds: {', '.join(known)}",
                    )

    def thresholds(self, family: str) -> dict[str, Any]:
        """The values in force for ``family``: default, then the chosen preset, then overrides."""
        presets = PRESETS[_family(family)]
        values = dict(presets["default"])
        chosen = self.presets.get(family, "default")
        values.update(presets[chosen])
        values.update(self.overrides.get(family, {}))
        return values

    def preset(self, family: str) -> str:
        """The preset name in force for ``family`` (for the report's 'thresholds used' note)."""
        return self.presets.get(family, "default")

    def with_presets(self, **presets: str) -> AuditConfig:
        """A copy with other presets chosen (notebook parameters use this)."""
        merged = {**self.presets, **{k: v for k, v in presets.items() if v}}
        return replace(self, presets=merged)

    def format_for(self, relpath: str) -> FormatHint | None:
        """The audit.yaml format hint for a file, if any (a ``map:`` entry first)."""
        mapped = self.map_for(relpath)
        if mapped is not None:
            return mapped.hint()
        return next((h for h in self.formats if h.applies_to(relpath)), None)

    def map_for(self, relpath: str) -> FileMap | None:
        """The audit.yaml ``map:`` entry for a file, if any."""
        return next((m for m in self.maps if m.applies_to(relpath)), None)

    def ignored(self, relpath: str) -> bool:
        return any(fnmatch.fnmatch(relpath, pat) for pat in self.ignore)


def _zone(name: str) -> str:
    """``name`` if it is a time zone the system knows (IANA, e.g. ``Europe/Paris``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"unknown time zone {name!r} for tz",
            hint="give an IANA zone name such as Europe/Paris, America/New_York or UTC",
        ) from None
    return name


def _family(name: str) -> str:
    if name not in PRESETS:
        raise ConfigError(
            f"unknown threshold family {name!r}", hint=f"families: {', '.join(PRESETS)}"
        )
    return name


def load_config(folder_or_file: str | Path | None) -> AuditConfig:
    """Read ``audit.yaml`` from a client folder (or a path to the file). Missing → defaults."""
    if folder_or_file is None:
        return AuditConfig()
    path = Path(folder_or_file)
    if path.is_dir():
        for name in ("audit.yaml", "audit.yml"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            return AuditConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read audit.yaml ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: audit.yaml must be a mapping of settings")
    known = {"client", "formats", "deployment", "presets", "thresholds", "ignore", "map", "tz"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"{path}: unknown {'setting' if len(unknown) == 1 else 'settings'} {', '.join(sorted(unknown))}",
            hint=f"known: {', '.join(sorted(known))}",
        )
    try:
        hints = tuple(
            FormatHint(str(h["match"]), str(h["format"]), dict(h.get("options") or {}))
            for h in data.get("formats") or []
        )
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: each formats entry needs 'match' and 'format'") from None
    return AuditConfig(
        client=data.get("client"),
        presets=dict(data.get("presets") or {}),
        overrides={k: dict(v) for k, v in (data.get("thresholds") or {}).items()},
        formats=hints,
        deployment=dict(data.get("deployment") or {}),
        ignore=tuple(data.get("ignore") or ()),
        maps=_maps(data.get("map"), path),
        tz=str(data["tz"]) if data.get("tz") else None,
    )


def _maps(section: Any, path: Path) -> tuple[FileMap, ...]:
    """The ``map:`` section: ``{glob: {as, columns, options}}`` or a list of ``{match, as, …}``."""
    if not section:
        return ()
    if isinstance(section, Mapping):
        entries = [
            {"match": k, **(v if isinstance(v, Mapping) else {"as": v})} for k, v in section.items()
        ]
    elif isinstance(section, list) and all(isinstance(e, Mapping) for e in section):
        entries = [dict(e) for e in section]
    else:
        raise ConfigError(
            f"{path}: map must be a mapping of file patterns to {{as: …, columns: {{…}}}}",
            hint='e.g. map: {"exports/*.csv": {as: pg_stat_statements, columns: {total: total_exec_time}}}',
        )
    out = []
    for e in entries:
        unknown = set(e) - {"match", "as", "columns", "options"}
        if unknown or not e.get("match") or not e.get("as"):
            shown = json.dumps({k: v for k, v in e.items()}, default=str)
            raise ConfigError(
                f"{path}: map entry {shown} needs a file pattern and 'as'"
                + (
                    f" (unknown {'key' if len(unknown) == 1 else 'keys'} {', '.join(sorted(unknown))})"
                    if unknown
                    else ""
                ),
                hint="keys: as (a format, PostgreSQL view or frame), columns {file column: expected column}, options",
            )
        columns = e.get("columns") or {}
        options = e.get("options") or {}
        if not isinstance(columns, Mapping) or not isinstance(options, Mapping):
            raise ConfigError(f"{path}: map {e['match']!r}: columns and options must be mappings")
        from auditkit.loaders.mapping import resolve_target

        resolve_target(str(e["as"]))  # an unknown target is a ConfigError naming what exists
        out.append(
            FileMap(
                str(e["match"]),
                str(e["as"]),
                {str(k): str(v) for k, v in columns.items()},
                dict(options),
            )
        )
    return tuple(out)
