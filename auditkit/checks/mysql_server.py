"""MySQL / MariaDB server health from SHOW GLOBAL STATUS and VARIABLES.

The server's cumulative counters, taken twice (before and after the audited period), say what
the whole server did in between (:attr:`auditkit.analysis.Analysis.status_delta`, computed by
:func:`auditkit.loaders.mysql_stats.status_delta`); with a single snapshot they say what it did
since it started, and the finding says so. Each finding names the counters, the window and the
variable to change, with its current value when SHOW GLOBAL VARIABLES was exported:

============================ ============================================== =======================
finding                      counters                                       check id
============================ ============================================== =======================
InnoDB buffer pool misses    ``Innodb_buffer_pool_reads`` per               ``low_cache_hit_ratio``
                             ``Innodb_buffer_pool_read_requests``
thread cache misses          ``Threads_created`` per ``Connections``        ``low_cache_hit_ratio``
temporary tables on disk     ``Created_tmp_disk_tables`` per                ``temp_files``
                             ``Created_tmp_tables``
sorts that merge on disk     ``Sort_merge_passes`` per sorts                ``temp_files``
                             (``Sort_scan`` + ``Sort_range``)
joins without an index       ``Select_full_join``                           ``plan_nested_loop``
============================ ============================================== =======================

The statements behind temporary tables, merge passes and full joins come from
performance_schema digests when exported (``SUM_CREATED_TMP_DISK_TABLES``,
``SUM_SORT_MERGE_PASSES``, ``SUM_SELECT_FULL_JOIN``): a full join of a statement a
``missing_index`` finding covers folds into it. ``max_connections`` reaches the connection
budget through :attr:`auditkit.analysis.Analysis.deployment`. Thresholds: the ``mysql_server``
family of :mod:`auditkit.config` (presets ``default``, ``mysqltuner``). Severity: hit ratios by
the cache rule (high below half the threshold, else medium); spills medium from twice their
threshold, else low; full joins low.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import as_number, size_text
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    plural,
)

__all__ = ["mysql_server_health"]

_COUNTERS = (
    "Innodb_buffer_pool_read_requests",
    "Innodb_buffer_pool_reads",
    "Created_tmp_tables",
    "Created_tmp_disk_tables",
    "Sort_merge_passes",
    "Sort_scan",
    "Sort_range",
    "Select_full_join",
    "Connections",
    "Threads_created",
)


@dataclass
class _Server:
    """One server's counters over the window, its variables, and the window in words."""

    name: str
    counts: dict[str, float]
    variables: dict[str, str]
    window: str
    window_s: float | None

    def get(self, name: str) -> float | None:
        return self.counts.get(name.lower())

    def var(self, name: str) -> str | None:
        return self.variables.get(name.lower())

    def size(self, name: str) -> str:
        v = as_number(self.var(name))
        return f"{name} = {size_text(v)}" if v is not None else f"{name} (not exported)"


def _servers(status_delta: pd.DataFrame, server_status: pd.DataFrame) -> list[_Server]:
    """Counters per server: the delta of two snapshots, else the values of the one there is."""
    if len(server_status) == 0 or "kind" not in server_status:
        return []
    status = server_status[server_status["kind"].astype("string") == "status"]
    wanted = {n.lower() for n in _COUNTERS}
    if len(status) and not status["name"].astype("string").str.lower().isin(wanted).any():
        return []  # not a MySQL server's counters (PostgreSQL's cumulative views)
    variables = server_status[server_status["kind"].astype("string") == "variable"]
    var_of: dict[str, dict[str, str]] = {}
    for server, name, text in zip(
        variables["server"].astype("object").where(variables["server"].notna(), ""),
        variables["name"].astype(str),
        variables["text"].astype("object"),
        strict=False,
    ):
        var_of.setdefault(str(server), {})[name.lower()] = str(text)
    any_vars = next(iter(var_of.values())) if len(var_of) == 1 else {}
    out: list[_Server] = []
    done: set[str] = set()
    if len(status_delta) and "delta" in status_delta:
        servers = status_delta["server"].astype("object").where(status_delta["server"].notna(), "")
        for server, g in status_delta.groupby(servers, sort=False):
            counts = {
                str(n).lower(): float(d)
                for n, d in zip(g["name"], g["delta"], strict=False)
                if pd.notna(d)
            }
            interval = as_number(g["interval_s"].iloc[0])
            t0, t1 = g["ts_before"].iloc[0], g["ts_after"].iloc[0]
            when = f" ({t0:%Y-%m-%d %H:%M}–{t1:%H:%M} UTC)" if pd.notna(t0) and pd.notna(t1) else ""
            window = (
                f"over the {duration_text(interval * 1000)} between the two status snapshots{when}"
                if interval
                else "between the two status snapshots"
            )
            name = str(server)
            out.append(_Server(name, counts, var_of.get(name, any_vars), window, interval))
            done.add(name)
    servers = status["server"].astype("object").where(status["server"].notna(), "")
    for server, g in status.groupby(servers, sort=False):
        name = str(server)
        if name in done:
            continue
        last = g[g["snapshot"] == g["snapshot"].max()] if "snapshot" in g else g
        counts = {
            str(n).lower(): float(v)
            for n, v in zip(last["name"], last["value"], strict=False)
            if pd.notna(v)
        }
        uptime = counts.get("uptime")
        window = (
            f"since the server started ({duration_text(uptime * 1000)} of uptime at the one "
            "status snapshot exported)"
            if uptime
            else "since the server started (one status snapshot exported)"
        )
        out.append(_Server(name, counts, var_of.get(name, any_vars), window, uptime))
    return out


def _label(server: _Server) -> str:
    return f" on {server.name}" if server.name else ""


def _statements(
    digests: pd.DataFrame | None,
    column: str,
    profile: pd.DataFrame | None = None,
    top: int = 5,
) -> list[dict[str, Any]]:
    """The statements with the most of ``column`` in the digests, for evidence; named by the
    workload's fingerprint id where the digest text differs from it only in spacing (so the
    finding joins the cause of the same statement)."""
    if digests is None or len(digests) == 0 or column not in digests:
        return []
    v = pd.to_numeric(digests[column], errors="coerce")
    rows = digests.assign(_v=v)[v.fillna(0) > 0].sort_values("_v", ascending=False).head(top)
    by_text: dict[str, str] = {}
    if profile is not None and len(profile) and "fingerprint" in profile:
        by_text = {
            _squash(fp): str(fid)
            for fp, fid in zip(profile["fingerprint"], profile["fingerprint_id"], strict=False)
        }
    return [
        {
            "fingerprint_id": by_text.get(_squash(r["fingerprint"]), str(r["fingerprint_id"])),
            "fingerprint": str(r["fingerprint"])[:300],
            "calls": int(as_number(r.get("calls")) or 0),
            column: int(r["_v"]),
        }
        for _, r in rows.iterrows()
    ]


def _squash(text: Any) -> str:
    return re.sub(r"[\s`]+", "", str(text)).lower()


def _hit_ratio_finding(
    server: _Server,
    *,
    what: str,
    ratio: float,
    threshold: float,
    hits_text: str,
    recommendation: str,
    metrics: Mapping[str, Any],
) -> Finding:
    severity = Severity.HIGH if ratio < threshold / 2 else Severity.MEDIUM
    return Finding(
        check="low_cache_hit_ratio",
        severity=severity,
        title=f"{what} hit ratio {ratio:.1%}{_label(server)}",
        summary=f"{hits_text} {server.window}: below the {threshold:.0%} a healthy server keeps.",
        subject=Subject(expression=f"{what}{_label(server)}"),
        metrics={"hit_ratio": round(ratio, 4), "threshold": threshold, **metrics},
        recommendation=Recommendation(summary=recommendation),
        evidence=Evidence(
            EvidenceStrength.STATISTICS,
            ({k: v for k, v in metrics.items()},),
            note=f"SHOW GLOBAL STATUS {server.window}",
        ),
        chapter="caching",
    )


def _counted_finding(
    server: _Server,
    items: list[dict[str, Any]],
    *,
    check: str,
    severity: Severity,
    title: str,
    summary: str,
    expression: str,
    metrics: dict[str, Any],
    recommendation: str,
    chapter: str,
) -> Finding:
    """A finding from a counter of SHOW GLOBAL STATUS over the server's window, with the
    statements performance_schema names for it (``items``, from :func:`_statements`)."""
    return Finding(
        check=check,
        severity=severity,
        title=title,
        summary=summary,
        subject=Subject(expression=expression),
        metrics=metrics,
        recommendation=Recommendation(summary=recommendation),
        evidence=Evidence(
            EvidenceStrength.STATISTICS,
            tuple(items),
            note=f"SHOW GLOBAL STATUS {server.window}",
        ),
        chapter=chapter,
        statements=tuple(i["fingerprint_id"] for i in items),
    )


def _share_severity(share: float, threshold: float) -> Severity:
    return Severity.MEDIUM if share >= 2 * threshold else Severity.LOW


def mysql_server_health(
    status_delta: pd.DataFrame,
    server_status: pd.DataFrame,
    digests: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    profile: pd.DataFrame | None = None,
) -> list[Finding]:
    """Findings on a MySQL/MariaDB server's memory and spills (see the module docstring).

    ``digests`` (performance_schema) name the statements behind spills and full joins;
    ``profile`` (the workload's statements) gives them the workload's fingerprint ids."""
    t = (config or AuditConfig()).thresholds("mysql_server")
    out: list[Finding] = []
    for s in _servers(status_delta, server_status):
        # InnoDB buffer pool: logical reads that had to go to disk
        requests, reads = (
            s.get("Innodb_buffer_pool_read_requests"),
            s.get("Innodb_buffer_pool_reads"),
        )
        if requests and reads is not None and requests >= t["min_read_requests"]:
            ratio = 1 - reads / requests
            if ratio < t["buffer_pool_min_hit_ratio"]:
                out.append(
                    _hit_ratio_finding(
                        s,
                        what="InnoDB buffer pool",
                        ratio=ratio,
                        threshold=float(t["buffer_pool_min_hit_ratio"]),
                        hits_text=(
                            f"{reads:,.0f} of {requests:,.0f} page reads "
                            "(Innodb_buffer_pool_reads of Innodb_buffer_pool_read_requests) went "
                            "to disk"
                        ),
                        recommendation=(
                            f"The working set does not fit in memory ({s.size('innodb_buffer_pool_size')}): "
                            "give InnoDB more (on a dedicated server up to about 70 % of its memory; "
                            "innodb_buffer_pool_size is dynamic since MySQL 5.7.5 and MariaDB 10.2), "
                            "or shrink the working set — indexes that replace full scans, dropping "
                            "unused indexes, archiving cold rows."
                        ),
                        metrics={
                            "read_requests": requests,
                            "disk_reads": reads,
                            "innodb_buffer_pool_size": as_number(s.var("innodb_buffer_pool_size")),
                        },
                    )
                )
        # thread cache: connections that had to create a thread
        conns, created = s.get("Connections"), s.get("Threads_created")
        if conns and created is not None and conns >= t["min_connections"]:
            ratio = max(0.0, 1 - created / conns)
            if ratio < t["thread_cache_min_hit_ratio"]:
                cache = s.var("thread_cache_size")
                out.append(
                    _hit_ratio_finding(
                        s,
                        what="Thread cache",
                        ratio=ratio,
                        threshold=float(t["thread_cache_min_hit_ratio"]),
                        hits_text=(
                            f"{created:,.0f} of {conns:,.0f} connections (Threads_created of "
                            "Connections) created a new server thread"
                        ),
                        recommendation=(
                            "Raise thread_cache_size"
                            + (f" (now {cache})" if cache is not None else "")
                            + " to at least the connections open at peak (Max_used_connections): "
                            "a connection then reuses a cached thread instead of creating one. "
                            "It is dynamic (SET GLOBAL) and costs little memory."
                        ),
                        metrics={
                            "connections": conns,
                            "threads_created": created,
                            "thread_cache_size": as_number(cache),
                        },
                    )
                )
        # internal temporary tables written to disk
        tmp, disk = s.get("Created_tmp_tables"), s.get("Created_tmp_disk_tables")
        if (
            tmp
            and disk is not None
            and tmp >= t["min_tmp_tables"]
            and disk / tmp > t["tmp_disk_max_share"]
        ):
            share = disk / tmp
            items = _statements(digests, "tmp_disk_tables", profile)
            out.append(
                _counted_finding(
                    s,
                    items,
                    check="temp_files",
                    severity=_share_severity(share, t["tmp_disk_max_share"]),
                    title=f"{share:.0%} of temporary tables written to disk{_label(s)}",
                    summary=(
                        f"{disk:,.0f} of {tmp:,.0f} internal temporary tables (GROUP BY, DISTINCT, "
                        f"UNION, derived tables) went to disk {s.window} (Created_tmp_disk_tables "
                        "of Created_tmp_tables): each such statement writes and reads its rows "
                        "through the disk instead of memory."
                        + (
                            f" {plural(len(items), 'statement')} created them, the first "
                            "listed in the evidence."
                            if items
                            else ""
                        )
                    ),
                    expression=f"internal temporary tables{_label(s)}",
                    metrics={
                        "tmp_tables": tmp,
                        "tmp_disk_tables": disk,
                        "share": round(share, 4),
                        "threshold": t["tmp_disk_max_share"],
                        "tmp_table_size": as_number(s.var("tmp_table_size")),
                        "max_heap_table_size": as_number(s.var("max_heap_table_size")),
                    },
                    recommendation=(
                        "An in-memory temporary table goes to disk past the smaller of "
                        f"{s.size('tmp_table_size')} and {s.size('max_heap_table_size')}, or "
                        "always when it holds TEXT/BLOB columns (before MySQL 8's TempTable "
                        "engine): raise both together, and select fewer or narrower columns "
                        "in the statements listed (values(), only())."
                    ),
                    chapter="queries",
                )
            )
        # sorts that spill: merge passes per sort
        merges = s.get("Sort_merge_passes")
        sorts = (s.get("Sort_scan") or 0.0) + (s.get("Sort_range") or 0.0)
        if merges and sorts >= t["min_sorts"] and merges / sorts > t["sort_merge_max_share"]:
            share = merges / sorts
            items = _statements(digests, "sort_merge_passes", profile)
            out.append(
                _counted_finding(
                    s,
                    items,
                    check="temp_files",
                    severity=_share_severity(share, t["sort_merge_max_share"]),
                    title=f"Sorts merging on disk: {merges:,.0f} merge passes for {sorts:,.0f} sorts{_label(s)}",
                    summary=(
                        f"Sorts needed {merges:,.0f} merge passes {s.window} for {sorts:,.0f} sorts "
                        "(Sort_merge_passes of Sort_scan + Sort_range): their rows did not fit in "
                        "the sort buffer and were merged through temporary files."
                    ),
                    expression=f"sort merge passes{_label(s)}",
                    metrics={
                        "sort_merge_passes": merges,
                        "sorts": sorts,
                        "share": round(share, 4),
                        "threshold": t["sort_merge_max_share"],
                        "sort_buffer_size": as_number(s.var("sort_buffer_size")),
                    },
                    recommendation=(
                        "An index in the ORDER BY's order avoids the sort altogether (see the "
                        "missing-index findings); otherwise raise "
                        f"{s.size('sort_buffer_size')} moderately, per session for the "
                        "statements that need it rather than globally (it is allocated per sort)."
                    ),
                    chapter="queries",
                )
            )
        # joins that scan the joined table for every row of the other
        full = s.get("Select_full_join")
        if full is not None and full >= t["full_join_min"]:
            items = _statements(digests, "full_joins", profile)
            out.append(
                _counted_finding(
                    s,
                    items,
                    check="plan_nested_loop",
                    severity=Severity.LOW,
                    title=f"{plural(int(full), 'join')} without an index{_label(s)} (Select_full_join)",
                    summary=(
                        f"{full:,.0f} statements {s.window} joined a table with no usable index on "
                        "the join (Select_full_join): the joined table is read in full for the "
                        "rows of the other."
                        + (
                            f" performance_schema names {plural(len(items), 'statement')} "
                            "(SUM_SELECT_FULL_JOIN), in the evidence."
                            if items
                            else " Export performance_schema digests to name the statements."
                        )
                    ),
                    expression=f"joins without an index{_label(s)}",
                    metrics={"select_full_join": full},
                    recommendation=(
                        "Index the join column of the joined table (a ForeignKey has one "
                        "unless db_index=False; a join on another field needs db_index=True "
                        "or a Meta.indexes entry); the missing-index findings give the DDL "
                        "for the statements the workload timed."
                    ),
                    chapter="indexing",
                )
            )
    return out
