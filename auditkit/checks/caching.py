"""Cache checks: the caches that miss, why, and the work worth caching — one finding per cause.

Over the frames of :mod:`auditkit.analysis.cache`:

* :func:`key_family_findings` — ``low_cache_hit_ratio`` for a Django cache key family that
  misses (``min_hit_ratio``, with at least ``family_min_reads`` reads), with the diagnosis of
  its misses and the fix that follows: keys that embed a per-user or per-object part read about
  once each (the key without that part when the statements the misses ran are the same for
  every value of it), a timeout shorter than the time between two reads of a key (a timeout
  from the observed re-read interval), invalidation on every write. Families whose misses are
  evictions are the server's finding; a family whose writes are never read is one of its own.
* :func:`server_findings` — per cache server instance (restarts and statistics resets never
  averaged across): evictions (memory against ``maxmemory`` and the eviction policy; memcached
  items evicted before anyone read them), and a low hit ratio that no key-family finding
  explains (with cache events, the families name the keys; without, the finding says what data
  would).
* :func:`buffer_cache_findings` — PostgreSQL's shared buffers below ``pg_buffer_min_hit_ratio``
  (pgHero's 99 %), naming the tables, indexes and statements that read most blocks from outside.
* :func:`cacheable_reads` — ``cache_candidate`` per endpoint: read-only work (GET requests,
  SELECT statements) that repeats with the same statements *and parameters* across requests,
  costly enough that a cache round trip is cheaper; never a statement repeated inside one
  request (an N+1 or a duplicate: the ORM fixes it), nor a read cheaper than
  ``candidate_min_mean_ms``, nor the session and user lookups every request makes. The saving
  assumes results may be ``candidate_ttl_s`` old (stated in the finding). The tool fits the
  case: ``cache_page`` on the view when everything it reads repeats and no request reads a
  session or user, else the low-level API around the repeated read (``cache.get_or_set``, keyed
  per visitor with ``vary_on_cookie`` or the user's id when the page is per user), named with
  the client's view, URL name and models.
* :func:`http_cache_findings` — ``http_cache``: path patterns a CDN or proxy does not cache
  (BYPASS, DYNAMIC, EXPIRED, MISS), GET responses without ``Cache-Control``, static and media
  files served by the application.

Severity: findings that save time follow the shared rule over their impact
(:func:`auditkit.checks.severity.of_impact`); a hit ratio without a measured saving is judged
by the ratio — high below half the threshold, else medium (``docs/findings.md``).

Thresholds: the ``cache`` family of :mod:`auditkit.config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import pandas as pd

from auditkit.analysis.cache import (
    buffer_cache,
    key_families,
    key_parts,
    miss_causes,
    nice_ttl,
    per_user_part,
    server_snapshots,
    server_summary,
    shared_result,
    static_served,
)
from auditkit.analysis.code import CodeMap
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Severity,
    Subject,
    duration_text,
    plural,
)
from auditkit.schemas import QUERY_EVENTS, conform
from auditkit.sql.django_orm import statement_shape

__all__ = [
    "buffer_cache_findings",
    "cache_candidates",
    "cache_hit_ratios",
    "cacheable_reads",
    "http_cache_findings",
    "key_family_findings",
    "low_cache_hit_ratio",
    "server_findings",
]


def _rows(df: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``df`` as named tuples (typed loosely: columns vary by input)."""
    return iter(cast("Iterable[Any]", df.itertuples(index=False)))


_READ = r"^\(?\s*(select|with)\b"
_WRITE = r"^\s*(insert|update|delete)\b"


def _ratio_severity(ratio: float, threshold: float) -> Severity:
    return Severity.HIGH if ratio < threshold / 2 else Severity.MEDIUM


def _bytes(n: float) -> str:
    if n != n:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def _engine(engine: object) -> str:
    e = str(engine)
    return "memcached" if e == "memcached" else e.capitalize()


# -- server counters ---------------------------------------------------------------------------
def cache_hit_ratios(stats: pd.DataFrame) -> pd.DataFrame:
    """Per server instance: hits, misses and hit ratio over the audit window (differences of
    consecutive snapshots, never across a restart), or since start with one snapshot.

    Columns: server (the instance), engine, hits, misses, hit_ratio, window, snapshots.
    """
    cols = ["server", "engine", "hits", "misses", "hit_ratio", "window", "snapshots"]
    summary = server_summary(server_snapshots(stats))
    if len(summary) == 0:
        return pd.DataFrame(columns=cols)
    window = [
        b if b == "between snapshots" else ("since the restart" if r else "since server start")
        for b, r in zip(summary["basis"], summary["restarts"] + summary["resets"], strict=True)
    ]
    return pd.DataFrame(
        {
            "server": summary["instance"],
            "engine": summary["engine"],
            "hits": summary["hits"],
            "misses": summary["misses"],
            "hit_ratio": summary["hit_ratio"],
            "window": window,
            "snapshots": summary["snapshots"],
        }
    )[cols]


def server_findings(
    servers: pd.DataFrame,
    families: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    explained: bool = False,
) -> list[Finding]:
    """Evictions and low hit ratios of cache server instances (see the module docstring).

    ``explained`` is True when key-family findings name the keys that miss: the server's low
    ratio is then their symptom, not a finding of its own.
    """
    t = (config or AuditConfig()).thresholds("cache")
    out: list[Finding] = []
    for r in _rows(servers):
        restarts = int(r.restarts) + int(r.resets)
        seen = (
            f"{plural(restarts, 'restart or statistics reset', 'restarts or statistics resets')} "
            "were seen and not averaged across"
            if restarts
            else ""
        )
        window = (
            f"over {duration_text(float(r.window_s) * 1000)} between snapshots"
            if r.basis == "between snapshots" and r.window_s == r.window_s
            else "since the server started (one snapshot per run: not the audit window)"
        )
        engine = _engine(r.engine)
        evictions = float(r.evictions) if r.evictions == r.evictions else 0.0
        unfetched = (
            float(r.evicted_unfetched) if r.evicted_unfetched == r.evicted_unfetched else 0.0
        )
        if evictions >= t["min_evictions"]:
            policy = r.policy or "the server's policy"
            mem = (
                f"{_bytes(float(r.used_memory))} used of maxmemory {_bytes(float(r.maxmemory))}"
                if r.maxmemory == r.maxmemory and float(r.maxmemory) > 0
                else f"{_bytes(float(r.used_memory))} used"
            )
            evicted_reads = 0
            if families is not None and len(families) and "miss_evicted" in families:
                evicted_reads = int(families["miss_evicted"].fillna(0).sum())
            rate = (
                f" ({r.evictions_per_s:.2f} per second)"
                if r.evictions_per_s == r.evictions_per_s
                else ""
            )
            summary = (
                f"{engine} {r.instance} evicted {int(evictions):,} keys {window}{rate} to make room: "
                f"{mem}, eviction policy {policy}."
            )
            if unfetched:
                summary += f" {int(unfetched):,} of them had never been read."
            if evicted_reads:
                summary += f" {evicted_reads:,} reads in the cache events missed a key evicted before its timeout."
            if seen:
                summary += f" {seen}."
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=Severity.MEDIUM,
                    title=f"{engine} {r.instance} evicts keys: the cache is too small for what is written to it",
                    summary=summary,
                    subject=Subject(expression=f"evictions {r.instance}"),
                    metrics={
                        "evictions": int(evictions),
                        "evictions_per_s": _num(r.evictions_per_s),
                        "evicted_unfetched": _num(r.evicted_unfetched),
                        "used_memory_bytes": _num(r.used_memory),
                        "maxmemory_bytes": _num(r.maxmemory),
                        "policy": r.policy,
                        "restarts": restarts,
                        "evicted_reads": evicted_reads,
                    },
                    recommendation=Recommendation(
                        summary=(
                            f"Give {r.instance} more memory (maxmemory), or write less to it: drop "
                            "the key families whose writes are never read, shorten the timeouts of "
                            "the largest families. With allkeys-lru or allkeys-lfu the keys read least "
                            "go first; volatile-* policies evict only keys with a timeout."
                        )
                    ),
                    evidence=Evidence(
                        strength=EvidenceStrength.STATISTICS, note=f"counters {window}"
                    ),
                    chapter="caching",
                )
            )
        ratio = float(r.hit_ratio) if r.hit_ratio == r.hit_ratio else float("nan")
        if ratio != ratio or ratio >= t["min_hit_ratio"] or explained:
            continue
        out.append(
            Finding(
                check="low_cache_hit_ratio",
                severity=_ratio_severity(ratio, t["min_hit_ratio"]),
                title=f"{engine} cache hit ratio {ratio:.0%}",
                summary=(
                    f"{int(r.hits):,} hits and {int(r.misses):,} misses {window} on {r.instance}: "
                    f"{1 - ratio:.0%} of lookups miss, and each miss adds a round trip to the cache "
                    "on top of the work the cache was meant to save."
                    + (f" {seen}." if seen else "")
                ),
                subject=Subject(expression=f"{r.engine} {r.instance}"),
                metrics={
                    "hit_ratio": round(ratio, 4),
                    "hits": int(r.hits),
                    "misses": int(r.misses),
                    "threshold": t["min_hit_ratio"],
                    "snapshots": int(r.snapshots),
                    "restarts": restarts,
                    "window_s": _num(r.window_s),
                },
                recommendation=Recommendation(
                    summary=(
                        "Server counters do not say which keys miss. The capture app's cache "
                        "events (or a logging cache wrapper, or memcached's stats detail dump) name "
                        "the key families and the cause of each miss: keys read only once, "
                        "timeouts shorter than the time between two reads, evictions."
                    ),
                ),
                evidence=Evidence(strength=EvidenceStrength.STATISTICS, note=f"counters {window}"),
                chapter="caching",
            )
        )
    return out


def _count(v: Any) -> int:
    """A count from a frame cell: 0 for NaN or None (a source that does not count it)."""
    f = _num(v)
    return int(f) if f is not None else 0


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else round(f, 4)


# -- key families --------------------------------------------------------------------------------
def _endpoint_views(requests: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """Endpoint → its view, URL name and route, from the requests frame (when it says)."""
    out: dict[str, dict[str, str]] = {}
    if requests is None or len(requests) == 0 or "endpoint" not in requests:
        return out
    for col in ("view", "url_name", "route"):
        if col not in requests:
            continue
        known = requests.dropna(subset=["endpoint", col])
        for ep, value in (
            known.groupby("endpoint")[col].agg(lambda s: s.value_counts().index[0]).items()
        ):
            out.setdefault(str(ep), {})[col] = str(value)
    return out


def _where(endpoint: str | None, views: Mapping[str, Mapping[str, str]]) -> str:
    if not endpoint:
        return "its callers"
    v = views.get(endpoint, {})
    parts = [
        p
        for p in (v.get("view"), f'URL name "{v["url_name"]}"' if v.get("url_name") else None)
        if p
    ]
    return f"{endpoint} ({', '.join(parts)})" if parts else endpoint


def _drop_part(family: str, slot: int) -> str:
    """``family`` without its variable part number ``slot`` (and the separator before it)."""
    import re

    tokens = list(re.finditer(r"[:._\-/]?\{(?:int|uuid|email|hex|token|session)\}", family))
    if slot >= len(tokens):
        return family
    t = tokens[slot]
    return family[: t.start()] + family[t.end() :]


def key_family_findings(
    families: pd.DataFrame,
    events: pd.DataFrame,
    statements: pd.DataFrame | None = None,
    code: CodeMap | None = None,
    config: AuditConfig | None = None,
    *,
    requests: pd.DataFrame | None = None,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
) -> list[Finding]:
    """Key families that miss, with their cause and fix (see the module docstring)."""
    cfg = config or AuditConfig()
    t = cfg.thresholds("cache")
    out: list[Finding] = []
    if len(families) == 0:
        return out
    views = _endpoint_views(requests)
    is_django = code.is_django if code is not None else None
    reads_frame = miss_causes(events) if len(events) else pd.DataFrame()
    for f in _rows(families):
        family, reads, ratio = str(f.family), int(f.reads), float(f.hit_ratio)
        where = _where(
            f.endpoints[0] if isinstance(f.endpoints, list) and f.endpoints else None, views
        )
        label = f'"{family}"' + (f" ({f.cache})" if f.cache and f.source == "cache events" else "")
        low = reads >= t["family_min_reads"] and ratio == ratio and ratio < t["min_hit_ratio"]
        # writes never read are a cause of their own only where reads do not already miss
        # (a key read once is also written once and never read again: one cause, below)
        if not low and f.sets >= t["family_min_reads"] and f.sets_never_read >= 0.8 * f.sets:
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=Severity.LOW,
                    title=f"Cache key family {family}: written and never read",
                    summary=(
                        f"{int(f.sets_never_read):,} of {int(f.sets):,} writes of {label} were never read "
                        "back in the window: the cache is filled with entries nobody asks for, "
                        "which pushes out the ones that are."
                    ),
                    subject=Subject(
                        expression=f"key family {family}",
                        endpoint=f.endpoints[0]
                        if isinstance(f.endpoints, list) and f.endpoints
                        else None,
                    ),
                    metrics={
                        "sets": int(f.sets),
                        "sets_never_read": _count(f.sets_never_read),
                        "keys": _count(f.keys),
                    },
                    recommendation=Recommendation(
                        summary=f"Stop writing {label} on {where}, or write it only where it is read."
                    ),
                    evidence=Evidence(strength=EvidenceStrength.PATTERN, note=f"from {f.source}"),
                    chapter="caching",
                )
            )
        if not low:
            continue
        misses = int(f.misses)
        first = _count(getattr(f, "miss_first_read", 0))
        expired = _count(getattr(f, "miss_expired", 0))
        evicted = _count(getattr(f, "miss_evicted", 0))
        deleted = _count(getattr(f, "miss_deleted", 0))
        if f.source != "cache events":
            # server key statistics: counts, no history of each key
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=_ratio_severity(ratio, t["min_hit_ratio"]),
                    title=f"Cache key family {family}: hit ratio {ratio:.0%}",
                    summary=(
                        f"{misses:,} of {reads:,} reads of keys starting {family!r} on {f.cache} missed "
                        f"({f.source})."
                    ),
                    subject=Subject(expression=f"key family {family}"),
                    metrics={
                        "hit_ratio": round(ratio, 4),
                        "reads": reads,
                        "misses": misses,
                        "threshold": t["min_hit_ratio"],
                    },
                    recommendation=Recommendation(
                        summary=(
                            "Server statistics count the family's reads, not why they miss; cache "
                            "events (the capture app) give each miss its cause."
                        )
                    ),
                    evidence=Evidence(
                        strength=EvidenceStrength.STATISTICS, note=f"from {f.source}"
                    ),
                    chapter="caching",
                )
            )
            continue
        if evicted >= max(first, expired, deleted):
            continue  # the server's eviction finding
        causes = []
        fixes = []
        django: list[str] = []
        metrics: dict[str, Any] = {
            "hit_ratio": round(ratio, 4),
            "reads": reads,
            "misses": misses,
            "miss_first_read": first,
            "miss_expired": expired,
            "miss_evicted": evicted,
            "miss_deleted": deleted,
            "keys": _count(f.keys),
            "reads_per_key": _num(f.reads_per_key),
            "reread_s": _num(f.reread_s),
            "ttl_s": _num(f.ttl_s),
            "sets_never_read": _count(f.sets_never_read),
            "threshold": t["min_hit_ratio"],
        }
        avoidable = 0
        if (
            first >= 0.3 * misses
            and f.reads_per_key == f.reads_per_key
            and f.reads_per_key <= t["family_max_reads_per_key"]
        ):
            part = per_user_part(family)
            shared = (
                shared_result(events, family, statements, is_django)
                if statements is not None and len(statements)
                else None
            )
            kind = (
                "a per-user or per-session part"
                if part is not None
                else "a part that changes with every key (a user, a session, a visitor or an object)"
            )
            causes.append(
                f"{first:,} misses are first reads: {int(f.keys):,} distinct keys, each read "
                f"{f.reads_per_key:.1f} times on average — the key embeds {kind}, rarely read again"
            )
            metrics["per_user_part"] = part
            if shared is not None:
                metrics["shared_result"] = shared["shared"]
                metrics["varying_part"] = shared["slot"] + 1
            if shared is not None and shared["shared"]:
                slot = int(shared["slot"])
                smaller = _drop_part(family, slot)
                django.append(f'"{family}"  ->  "{smaller}"  # the key without part {slot + 1}')
                fixes.append(
                    f"the statements the misses ran are the same whatever part {slot + 1} of the key "
                    f"is ({shared['values']:,} distinct values): key the entry on {smaller!r} instead of "
                    f"{family!r}, so that one entry serves every value of that part"
                )
                # one computation per remaining key instead of one per key
                keys: list[str] = (
                    [str(k) for k in reads_frame.loc[reads_frame["family"] == family, "key"]]
                    if len(reads_frame)
                    else []
                )
                rest: set[tuple[str, ...]] = set()
                for k in keys:
                    parts = key_parts(family, str(k))
                    if parts:
                        rest.add(tuple(parts[:slot] + parts[slot + 1 :]))
                avoidable += max(0, first - max(1, len(rest)))
                metrics["keys_without_part"] = len(rest)
            elif shared is not None:
                fixes.append(
                    "the statements the misses ran differ with that part of the key: the data is "
                    "really per key; cache the part that is shared instead, or do not cache it"
                )
            else:
                fixes.append(
                    "check whether what the entry holds depends on that part of the key (no "
                    "statements with parameters were tied to the misses' requests to tell): if it "
                    "does not, key it without that part"
                )
        ttl = float(f.ttl_s) if f.ttl_s == f.ttl_s else float("nan")
        reread = float(f.reread_p75_s) if f.reread_p75_s == f.reread_p75_s else float("nan")
        if expired >= 0.2 * misses and expired > 0:
            proposed = nice_ttl(reread * 1.2) if reread == reread else None
            causes.append(
                f"{expired:,} misses came after the entry's timeout ran out"
                + (
                    f" ({duration_text(ttl * 1000)}, while a key is read again after "
                    f"{duration_text(float(f.reread_s) * 1000)} (median), {duration_text(reread * 1000)} "
                    "(75th percentile))"
                    if ttl == ttl and reread == reread
                    else ""
                )
            )
            if proposed and (ttl != ttl or proposed > ttl):
                fixes.append(
                    f"a timeout of {duration_text(proposed * 1000)} (from the observed re-read "
                    "interval) with the entry deleted when its data changes"
                )
                django.append(
                    f"timeout={proposed}  # for the keys {family!r}"
                    + (f", instead of {int(ttl)}" if ttl == ttl else "")
                )
                metrics["proposed_ttl_s"] = proposed
                avoidable += expired
        if deleted >= 0.3 * misses and deleted > 0:
            causes.append(
                f"{deleted:,} misses followed a delete: the entry is invalidated more often than read"
            )
            fixes.append(
                "invalidate only when the data the entry holds changes (a post_save of that model)"
            )
        if not causes:
            causes.append(f"{misses:,} of {reads:,} reads missed")
        if fixes and _get_then_set(events, family):
            fixes.append(
                "cache.get_or_set instead of cache.get followed by cache.set: it reads, computes "
                "on a miss and writes in one call"
            )
        impact = _miss_impact(
            family,
            events,
            statements,
            avoidable,
            total_ms=total_ms,
            window_s=window_s,
            source=source,
        )
        metrics["avoidable_misses"] = avoidable
        severity = (
            of_impact(impact, cfg)
            if impact is not None
            else _ratio_severity(ratio, t["min_hit_ratio"])
        )
        if impact is not None and severity < Severity.MEDIUM:
            severity = _ratio_severity(ratio, t["min_hit_ratio"])
        endpoint = f.endpoints[0] if isinstance(f.endpoints, list) and f.endpoints else None
        out.append(
            Finding(
                check="low_cache_hit_ratio",
                severity=severity,
                title=f"Cache key family {family}: hit ratio {ratio:.0%} on {endpoint or 'its callers'}",
                summary=(
                    f"{misses:,} of {reads:,} reads of {label} missed on {where}: "
                    + "; ".join(causes)
                    + "."
                ),
                subject=Subject(expression=f"key family {family}", endpoint=endpoint),
                metrics=metrics,
                recommendation=Recommendation(
                    summary=("Fix: " + "; and ".join(fixes) + ".")
                    if fixes
                    else "Find why the keys miss.",
                    django="\n".join(dict.fromkeys(django)) if django else None,
                ),
                evidence=Evidence(
                    strength=EvidenceStrength.PATTERN,
                    note="every miss's cause from the key's own history in the cache events",
                    items=tuple({"endpoint": e} for e in (f.endpoints or [])[:3]),
                ),
                impact=impact,
                chapter="caching",
                action=f"Fix the cache key {family} on {endpoint or 'its callers'}: "
                + (
                    impact.phrase()
                    if impact is not None
                    else f"{misses:,} misses of {reads:,} reads"
                )
                + ".",
            )
        )
    return out


def _get_then_set(events: pd.DataFrame, family: str) -> bool:
    """True when the family's misses are followed by a separate set in the same request."""
    if len(events) == 0 or "request_id" not in events:
        return False
    fam = (
        events[events["key_prefix"].astype("string") == family]
        if "key_prefix" in events
        else events.iloc[0:0]
    )
    if len(fam) == 0 or (fam["op"] == "get_or_set").any():
        return False
    gets = set(fam.loc[(fam["op"] == "get") & fam["hit"].eq(False), "request_id"].dropna())
    sets = set(fam.loc[fam["op"] == "set", "request_id"].dropna())
    return len(gets & sets) >= max(1, len(gets) // 2)


def _miss_impact(
    family: str,
    events: pd.DataFrame,
    statements: pd.DataFrame | None,
    avoidable: int,
    *,
    total_ms: float | None,
    window_s: float | None,
    source: str | None,
) -> Impact | None:
    """Database time of the misses the fix avoids: ``avoidable`` misses × the time of a miss's
    own work — the statements most miss requests run and most hit requests do not (all the
    statements of the miss requests when no read hit) — median per miss request."""
    if avoidable <= 0 or statements is None or len(statements) == 0 or len(events) == 0:
        return None
    reads = miss_causes(events)
    fam = reads[(reads["family"] == family) & reads["request_id"].notna()]
    if len(fam) == 0:
        return None
    req_col = "request_key" if "request_key" in statements else "request_id"
    req = statements[req_col].astype("string")
    miss_ids = set(fam.loc[~fam["hit"].astype(bool), "request_id"].astype(str))
    hit_ids = set(fam.loc[fam["hit"].astype(bool), "request_id"].astype(str))
    on_miss = statements[req.isin(miss_ids)]
    if len(on_miss) == 0:
        return None

    def share(df: pd.DataFrame, n: int) -> pd.Series:
        return df.groupby("fingerprint_id")[req_col].nunique() / max(1, n)

    path = share(on_miss, len(miss_ids)) >= 0.5
    if hit_ids:
        on_hit = share(statements[req.isin(hit_ids)], len(hit_ids))
        path &= on_hit.reindex(path.index).fillna(0.0) < 0.5
    fids = set(path[path].index)
    if not fids:
        return None
    work = on_miss[on_miss["fingerprint_id"].isin(fids)]
    ms = pd.to_numeric(work["duration_ms"], errors="coerce").fillna(0.0)
    per_miss = float(ms.groupby(work[req_col].astype(str)).sum().median())
    if per_miss <= 0:
        return None
    return Impact.of(
        per_miss * avoidable,
        total_ms,
        window_s=window_s,
        requests=int(fam["request_id"].nunique()),
        source=source,
        basis="estimated",
        note=(
            f"{avoidable:,} misses avoided × {duration_text(per_miss)} of database time a miss runs "
            "that a hit does not (median per miss)"
        ),
    )


# -- buffer cache --------------------------------------------------------------------------------
def buffer_cache_findings(
    frames: Mapping[str, pd.DataFrame], config: AuditConfig | None = None
) -> list[Finding]:
    """PostgreSQL's shared buffers below the bar, naming what reads most from outside them."""
    t = (config or AuditConfig()).thresholds("cache")
    bar = float(t["pg_buffer_min_hit_ratio"])
    basis = next(
        (k for k in ("databases", "tables", "statements") if k in frames and len(frames[k])), None
    )
    if basis is None:
        return []
    df = frames[basis]
    hit, read = float(df["hit"].sum()), float(df["read"].sum())
    if hit + read <= 0:
        return []
    ratio = hit / (hit + read)
    if ratio >= bar:
        return []
    named = []
    tables = frames.get("tables")
    if tables is not None and len(tables):
        worst = tables[tables["read"] > 0].head(3)
        named.append(
            "tables reading most blocks from outside shared buffers: "
            + ", ".join(
                f"{r.table} ({int(r.read):,} blocks, {r.hit_ratio:.1%} hit)" for r in _rows(worst)
            )
        )
    indexes = frames.get("indexes")
    if indexes is not None and len(indexes):
        worst = indexes[indexes["read"] > 0].head(3)
        if len(worst):
            named.append(
                "indexes: " + ", ".join(f"{r.index} ({int(r.read):,} blocks)" for r in _rows(worst))
            )
    statements = frames.get("statements")
    fids: tuple[str, ...] = ()
    if statements is not None and len(statements):
        worst = statements[statements["read"] > 0].head(3)
        fids = tuple(str(x) for x in worst["fingerprint_id"])
    source = {
        "databases": "pg_stat_database",
        "tables": "pg_statio_user_tables",
        "statements": "pg_stat_statements",
    }[basis]
    return [
        Finding(
            check="low_cache_hit_ratio",
            severity=Severity.MEDIUM if ratio >= bar - 0.04 else Severity.HIGH,
            title=f"PostgreSQL buffer cache hit ratio {ratio:.1%} (below {bar:.0%})",
            summary=(
                f"{int(read):,} blocks were read from disk or the OS cache for {int(hit):,} found in "
                f"shared buffers ({source}): the working set does not fit in memory."
                + (" " + "; ".join(named) + "." if named else "")
            ),
            subject=Subject(expression="PostgreSQL shared_buffers"),
            metrics={
                "hit_ratio": round(ratio, 4),
                "blocks_hit": int(hit),
                "blocks_read": int(read),
                "threshold": bar,
                "basis": source,
            },
            statements=fids,
            recommendation=Recommendation(
                summary=(
                    "Give PostgreSQL more memory (shared_buffers about a quarter of the machine's "
                    "memory, effective_cache_size about three quarters) or shrink the working set of "
                    "the tables named: indexes that avoid sequential scans, archiving cold rows."
                ),
            ),
            evidence=Evidence(
                strength=EvidenceStrength.STATISTICS, note=f"block counters of {source}"
            ),
            chapter="caching",
        )
    ]


def low_cache_hit_ratio(
    stats: pd.DataFrame,
    config: AuditConfig | None = None,
    statement_stats: pd.DataFrame | None = None,
    *,
    events: pd.DataFrame | None = None,
    statements: pd.DataFrame | None = None,
    code: CodeMap | None = None,
    requests: pd.DataFrame | None = None,
    key_family_stats: pd.DataFrame | None = None,
    buffers: Mapping[str, pd.DataFrame] | None = None,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
) -> list[Finding]:
    """Every cache layer that misses more than it should, one finding per cause."""
    ev = events if events is not None else pd.DataFrame()
    families = key_families(ev, key_family_stats)
    fam_findings = key_family_findings(
        families,
        ev,
        statements,
        code,
        config,
        requests=requests,
        total_ms=total_ms,
        window_s=window_s,
        source=source,
    )
    servers = server_summary(server_snapshots(stats))
    explaining = [f for f in fam_findings if f.metrics.get("hit_ratio") is not None]
    out = server_findings(servers, families, config, explained=bool(explaining))
    if explaining:
        # the server's low ratio is the families' symptom: it joins the family that misses most
        symptoms = [
            f
            for f in server_findings(servers, families, config)
            if not str(f.subject.expression).startswith("evictions")
        ]
        if symptoms:
            top = max(explaining, key=lambda f: int(f.metrics.get("misses") or 0))
            folded = dataclasses.replace(
                top,
                evidence=dataclasses.replace(
                    top.evidence,
                    symptoms=top.evidence.symptoms
                    + tuple(
                        {"check": s.check, "title": s.title, "summary": s.summary} for s in symptoms
                    ),
                ),
            )
            fam_findings = [folded if f is top else f for f in fam_findings]
    out += fam_findings
    frames = (
        dict(buffers)
        if buffers is not None
        else buffer_cache(
            pd.DataFrame(),
            pd.DataFrame(),
            statement_stats if statement_stats is not None else pd.DataFrame(),
            pd.DataFrame(),
        )
    )
    return out + buffer_cache_findings(frames, config)


# -- cache candidates ----------------------------------------------------------------------------
def cache_candidates(
    events: pd.DataFrame, config: AuditConfig | None = None, top: int | None = None
) -> list[Finding]:
    """Cache candidates of raw query events (see the module docstring)."""
    from auditkit.analysis.code import joins_of, tables_of
    from auditkit.analysis.requests import request_statements
    from auditkit.analysis.workload import choose_workload

    if len(events) == 0:
        return []
    events = conform(events, QUERY_EVENTS)
    fps = events["fingerprint"].dropna().astype(str).tolist()
    tables, seen = tables_of(fps)
    code = CodeMap.build(
        pd.DataFrame({"table": [], "inferred": []}),
        tables=tables,
        joins=joins_of(fps),
        seen_columns=seen,
    )
    workload = choose_workload(events)
    statements = (
        request_statements(events, config)
        if "request_id" in events and events["request_id"].notna().any()
        else events.assign(
            request_key=pd.Series(pd.NA, index=events.index, dtype="string"),
            _ms=pd.to_numeric(events["duration_ms"], errors="coerce").fillna(0.0),
        )
    )
    return cacheable_reads(
        statements,
        code,
        config,
        total_ms=workload.db_ms or float(statements["_ms"].sum()),
        window_s=workload.window_s,
        source=workload.label,
        top=top,
    )


def _tables(fp: str) -> list[str]:
    shape = statement_shape(fp)
    return [tb for tb in (shape.tables if shape else ()) if tb]


def cacheable_reads(
    statements: pd.DataFrame,
    code: CodeMap,
    config: AuditConfig | None = None,
    *,
    total_ms: float,
    window_s: float | None,
    source: str | None,
    table_writes: Mapping[str, int] | None = None,
    top: int | None = None,
    requests: pd.DataFrame | None = None,
) -> list[Finding]:
    """``cache_candidate`` findings: one per endpoint with read work worth caching (see the
    module docstring).

    ``table_writes`` (rows-changing statements per table in the window) keeps out row lists
    whose tables change more often than a cached copy would live: such a cache serves stale
    rows. Aggregates (GROUP BY, COUNT, SUM…) over many rows tolerate a few changes and stay in.
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("cache")
    if len(statements) == 0:
        return []
    fp_all = statements["fingerprint"].astype("string")
    reads = statements[fp_all.str.match(_READ, na=False)]
    if len(reads) == 0:
        return []
    variant = (
        reads["sql"].astype("string").fillna("")
        + "\x00"
        + reads["params"].astype("string").fillna("")
        if "params" in reads
        else reads["sql"].astype("string").fillna("")
    )
    g = pd.DataFrame(
        {
            "fid": reads["fingerprint_id"],
            "fp": reads["fingerprint"],
            "variant": variant,
            "ms": pd.to_numeric(reads["duration_ms"], errors="coerce").fillna(0.0),
            "endpoint": reads["endpoint"].astype("string"),
            "req": reads.get("request_key", pd.NA),
        }
    )
    # a statement run several times inside one request of an endpoint is a loop (N+1) or a
    # duplicate there: the ORM fixes it, not a cache
    if g["req"].notna().any():
        per_request = g.dropna(subset=["req"]).groupby(["fid", "endpoint", "req"]).size()
        looped = per_request.groupby(level=["fid", "endpoint"]).median() > 1
        bad = {k for k, v in looped.items() if v}
        keep = [(f, e) not in bad for f, e in zip(g["fid"], g["endpoint"], strict=True)]
        g = g[keep]
    # endpoints that write, or answer other methods than GET, are not read-only
    not_read_only: set[str] = set()
    writes = statements[fp_all.str.match(_WRITE, na=False)]
    for ep in writes["endpoint"].dropna().astype(str).unique():
        not_read_only.add(ep)
    methods: dict[str, set[str]] | None = None
    source_frame = None
    if "method" in statements and statements["method"].notna().any():
        source_frame = statements
    elif requests is not None and len(requests) and "method" in requests:
        source_frame = requests
    if source_frame is not None:
        known = source_frame.dropna(subset=["endpoint", "method"])
        methods = {
            str(ep): set(m.astype(str).str.upper()) for ep, m in known.groupby("endpoint")["method"]
        }
    if methods is not None:
        not_read_only |= {str(ep) for ep, m in methods.items() if m - {"GET", "HEAD"}}
    # requests that read the session or the user: the page is per visitor
    per_visitor: set[str] = set()
    fp_tables = {fp: _tables(str(fp)) for fp in fp_all.dropna().unique()}
    django_fps = {
        fp for fp, tbs in fp_tables.items() if tbs and all(code.is_django(tb) for tb in tbs)
    }
    if django_fps:
        per_visitor = set(statements.loc[fp_all.isin(django_fps), "endpoint"].dropna().astype(str))

    agg = g.groupby("fid").agg(
        calls=("variant", "size"),
        variants=("variant", "nunique"),
        ms=("ms", "sum"),
        fp=("fp", "first"),
    )
    agg["mean_ms"] = agg["ms"] / agg["calls"]
    agg["repeat_ratio"] = 1 - agg["variants"] / agg["calls"]
    picked = agg[
        (agg["calls"] >= t["candidate_min_calls"])
        & (agg["repeat_ratio"] >= t["candidate_min_repeat_ratio"])
        & (agg["mean_ms"] >= t["candidate_min_mean_ms"])
    ]
    ttl = float(t["candidate_ttl_s"])
    periods = max(1, math.ceil(window_s / ttl)) if window_s else 1
    chosen: list[tuple[str, Any, list[str], float, bool]] = []
    for fid, r in picked.iterrows():
        tables = fp_tables.get(r["fp"]) or _tables(str(r["fp"]))
        if tables and all(code.is_django(tb) for tb in tables):
            continue  # the session and user lookups of every request
        shape = statement_shape(str(r["fp"]))
        aggregate = bool(shape and (shape.aggregates or "group by" in str(r["fp"])))
        writes_n = sum((table_writes or {}).get(tb, 0) for tb in tables)
        if not aggregate and writes_n >= periods:
            continue  # its rows change within every cache period: a cached copy would be stale
        per_variant = g[g["fid"] == fid].groupby("variant")["ms"].agg(["size", "sum"])
        needed = per_variant["size"].clip(upper=periods)
        saved = float((per_variant["sum"] * (1 - needed / per_variant["size"])).sum())
        if saved <= 0:
            continue
        chosen.append((str(fid), r, tables, saved, aggregate))
    # one finding per endpoint: the statements worth caching that its requests run
    by_endpoint: dict[str, list[tuple[str, Any, list[str], float, bool]]] = {}
    for item in chosen:
        eps = g[g["fid"] == item[0]]["endpoint"].dropna().value_counts()
        endpoint = str(eps.index[0]) if len(eps) else ""
        if endpoint in not_read_only:
            continue
        by_endpoint.setdefault(endpoint, []).append(item)
    views = _endpoint_views(requests)
    rows = []
    for endpoint, items in by_endpoint.items():
        saved = sum(i[3] for i in items)
        if total_ms and saved / total_ms < t["candidate_min_share"]:
            continue
        rows.append((endpoint, items, saved))
    rows.sort(key=lambda x: -x[2])
    out = []
    for endpoint, items, saved in rows[: top or int(t["candidate_top"])]:
        out.append(
            _candidate(
                endpoint or None,
                items,
                saved,
                g,
                statements,
                code,
                cfg,
                views=views,
                per_visitor=endpoint in per_visitor,
                total_ms=total_ms,
                window_s=window_s,
                source=source,
                ttl=ttl,
            )
        )
    return out


def _candidate(
    endpoint: str | None,
    items: list[tuple[str, Any, list[str], float, bool]],
    saved: float,
    g: pd.DataFrame,
    statements: pd.DataFrame,
    code: CodeMap,
    cfg: AuditConfig,
    *,
    views: Mapping[str, Mapping[str, str]],
    per_visitor: bool,
    total_ms: float,
    window_s: float | None,
    source: str | None,
    ttl: float,
) -> Finding:
    fids = [i[0] for i in items]
    main = max(items, key=lambda i: i[3])
    fid, r = main[0], main[1]
    tables = list(dict.fromkeys(tb for i in items for tb in i[2]))
    aggregate = all(i[4] for i in items)
    mine = g[g["fid"].isin(fids)]
    requests_n = int(mine["req"].nunique()) if mine["req"].notna().any() else None
    models = list(
        dict.fromkeys(code.model(tb).name for tb in tables if code.many_to_many(tb) is None)
    )
    what = ", ".join(models) if models else "its tables"
    where = endpoint or "its callers"
    # does everything the endpoint reads (but Django's own lookups) repeat? then the page does
    whole_page = False
    if endpoint:
        own = statements[statements["endpoint"].astype("string") == endpoint]
        own_fids = {
            f
            for f, fp in zip(own["fingerprint_id"], own["fingerprint"], strict=True)
            if isinstance(fp, str) and not all(code.is_django(tb) for tb in _tables(fp) or ["?"])
        }
        whole_page = bool(own_fids) and own_fids <= set(fids)
    view = views.get(endpoint or "", {})
    view_path, url_name, route = view.get("view"), view.get("url_name"), view.get("route")
    named = ", ".join(p for p in (view_path, f'URL name "{url_name}"' if url_name else None) if p)
    ttl_i = int(ttl)
    tolerance = f"assuming results up to {duration_text(ttl * 1000)} old are acceptable"
    django = None
    if whole_page and not per_visitor:
        tool = "cache_page"
        advice = (
            f"Everything {where} reads from the database repeats identically across requests: cache "
            f"the whole response with cache_page({ttl_i})"
            + (f" on {view_path}" if view_path else "")
            + ". It is the same for every visitor (no session or user is read)."
        )
        if view_path:
            module, _, name = view_path.rpartition(".")
            if name[:1].isupper():  # a class-based view
                django = (
                    f"# {module.replace('.', '/')}.py, above class {name}\n"
                    "from django.utils.decorators import method_decorator\n"
                    "from django.views.decorators.cache import cache_page\n\n"
                    f'@method_decorator(cache_page({ttl_i}), name="dispatch")'
                )
            else:
                django = (
                    f"# {module.replace('.', '/')}.py, above def {name}\n"
                    "from django.views.decorators.cache import cache_page\n\n"
                    f"@cache_page({ttl_i})"
                )
            if route:
                django += (
                    f"\n\n# or in the URLconf, for the route {route!r}"
                    + (f" (URL name {url_name!r})" if url_name else "")
                    + f":\n# cache_page({ttl_i})({name}"
                    + (".as_view()" if name[:1].isupper() else "")
                    + ")"
                )
    elif whole_page and per_visitor:
        tool = "vary_on_cookie"
        advice = (
            f"{where} reads the session or the user on every request, so its page differs per "
            f"visitor, but its {what} read repeats for everyone: cache that read with the low-level "
            f"API (cache.get_or_set with a key naming what it depends on, timeout {ttl_i}) or the "
            "template fragment that shows it ({% cache %}); cache_page would need vary_on_cookie, "
            "one copy per visitor."
        )
    else:
        tool = "get_or_set" if aggregate else "fragment"
        advice = (
            f"Cache the {what} read on {where} with the low-level API: cache.get_or_set around the "
            f"code that runs it, keyed on its parameters, timeout {ttl_i}"
            + (
                "; or the {% cache %} fragment around the part of the template that shows it"
                if not aggregate
                else ""
            )
            + "."
        )
    invalidate = (
        "clear the cache when they change"
        if tool == "cache_page"
        else "delete the key when they change"
    )
    advice += (
        f" This assumes results up to {duration_text(ttl * 1000)} old are acceptable; if the "
        f"{what} rows must show at once, {invalidate}."
    )
    impact = Impact.of(
        saved,
        total_ms,
        window_s=window_s,
        requests=requests_n,
        source=source,
        basis="estimated",
        note=(
            f"each distinct statement run once per {duration_text(ttl * 1000)} instead of on every "
            f"request, {tolerance}"
        ),
    )
    calls = int(sum(int(i[1]["calls"]) for i in items))
    variants = int(sum(int(i[1]["variants"]) for i in items))
    return Finding(
        check="cache_candidate",
        severity=of_impact(impact, cfg),
        title=f"Cache the read on {what} behind {where}",
        summary=(
            f"{plural(len(items), 'statement')} ran {calls:,} times with only "
            f"{plural(variants, 'distinct set')} of "
            f"parameters ({duration_text(float(r['mean_ms']))} each for the costliest), once per "
            f"request on {where}"
            + (f" ({named})" if named else "")
            + ": the same result recomputed for every visitor."
        ),
        subject=Subject(fingerprint=str(r["fp"]), fingerprint_id=fid, endpoint=endpoint),
        metrics={
            "calls": calls,
            "distinct": variants,
            "statements": len(items),
            "repeat_ratio": round(1 - variants / calls, 4) if calls else 0.0,
            "mean_ms": round(float(r["mean_ms"]), 3),
            "total_ms": round(float(mine["ms"].sum()), 3),
            "saved_ms": round(saved, 3),
            "ttl_s": ttl,
            "aggregate": aggregate,
            "tool": tool,
            "per_visitor": per_visitor,
        },
        recommendation=Recommendation(summary=advice, django=django),
        evidence=Evidence(
            strength=EvidenceStrength.PATTERN, items=tuple({"fingerprint_id": f} for f in fids)
        ),
        impact=impact,
        chapter="caching",
        statements=tuple(fids),
        action=f"Cache the {what} read on {where}: {impact.phrase()}.",
    )


# -- HTTP and CDN --------------------------------------------------------------------------------
def http_cache_findings(
    cdn: pd.DataFrame, requests: pd.DataFrame, config: AuditConfig | None = None
) -> list[Finding]:
    """``http_cache``: what a CDN or proxy fails to cache, and static files the application
    serves itself (see the module docstring)."""
    t = (config or AuditConfig()).thresholds("cache")
    out: list[Finding] = []
    if len(cdn):
        weak = cdn[
            (cdn["requests"] >= t["cdn_min_requests"])
            & (cdn["hit_ratio"] < t["min_hit_ratio"])
            & (cdn["get_ok"] >= 0.5 * cdn["requests"])
        ].head(int(t["candidate_top"]))
        for r in _rows(weak):
            outcomes = {str(k): int(v) for k, v in dict(r.outcomes).items()}
            top = ", ".join(
                f"{k} {v:,}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])
            )
            reasons = []
            if outcomes.get("BYPASS"):
                reasons.append(
                    "BYPASS: the response or request forbids caching (Cache-Control: private/no-store, a cookie, an Authorization header)"
                )
            if outcomes.get("DYNAMIC"):
                reasons.append(
                    "DYNAMIC: the CDN does not consider the path cacheable (no Cache-Control max-age / s-maxage, or no cache rule)"
                )
            if outcomes.get("EXPIRED"):
                reasons.append("EXPIRED: entries outlive their max-age before the next request")
            if outcomes.get("MISS"):
                reasons.append("MISS: first requests, or entries evicted")
            no_cc = r.no_cache_control
            out.append(
                Finding(
                    check="http_cache",
                    severity=Severity.MEDIUM
                    if r.requests >= 10 * t["cdn_min_requests"]
                    else Severity.LOW,
                    title=f"The CDN answers {r.hit_ratio:.0%} of GET {r.pattern}",
                    summary=(
                        f"{int(r.requests):,} requests of {r.pattern} reached the CDN or proxy; "
                        f"outcomes {top}. "
                        + " ".join(reasons)
                        + (
                            f" {int(no_cc):,} successful GETs carried no Cache-Control."
                            if no_cc == no_cc
                            else ""
                        )
                    ),
                    subject=Subject(expression=f"path {r.pattern}"),
                    metrics={
                        "requests": int(r.requests),
                        "hits": int(r.hits),
                        "hit_ratio": round(float(r.hit_ratio), 4),
                        **{f"status_{k.lower()}": v for k, v in outcomes.items()},
                    },
                    recommendation=Recommendation(
                        summary=(
                            "Send a Cache-Control the CDN can use on these responses when they are "
                            "the same for every visitor: cache_control(public=True, s_maxage=…) or "
                            "cache_page on the view; for per-visitor pages, ETag / Last-Modified "
                            "(condition(etag_func=…), ConditionalGetMiddleware) saves the body."
                        ),
                        django="from django.views.decorators.cache import cache_control\n\n@cache_control(public=True, s_maxage=300)",
                    ),
                    evidence=Evidence(
                        strength=EvidenceStrength.PATTERN,
                        note="cache status of the CDN or proxy log",
                    ),
                    chapter="caching",
                )
            )
    static = static_served(requests)
    if len(static):
        total_req = int(static["requests"].sum())
        total_bytes = float(static["bytes"].sum())
        if total_req >= t["cdn_min_requests"]:
            top = ", ".join(
                f"{r.pattern} ({int(r.requests):,} requests, {_bytes(float(r.bytes))})"
                for r in _rows(static.head(3))
            )
            out.append(
                Finding(
                    check="http_cache",
                    severity=Severity.LOW,
                    title=f"Static and media files served by the application: {total_req:,} requests",
                    summary=(
                        f"{total_req:,} requests for static or media files ({_bytes(total_bytes)}) were "
                        f"answered without a cache in front: {top}. Each holds a worker the pages need."
                    ),
                    subject=Subject(expression="static and media files"),
                    metrics={"requests": total_req, "bytes": total_bytes},
                    recommendation=Recommendation(
                        summary=(
                            "Serve STATIC_ROOT and MEDIA_ROOT from the web server or a CDN, with "
                            "long-lived Cache-Control on hashed names (ManifestStaticFilesStorage), "
                            "or WhiteNoise behind a CDN."
                        )
                    ),
                    evidence=Evidence(strength=EvidenceStrength.PATTERN, note="request paths"),
                    chapter="caching",
                )
            )
    return out
