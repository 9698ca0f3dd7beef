"""Django cache key families that miss (``low_cache_hit_ratio``), with the diagnosis of their
misses and the fix that follows: keys that embed a per-user or per-object part read about once
each, a timeout shorter than the time between two reads of a key, invalidation on every write;
and families whose writes are never read."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditkit.analysis.cache import (
    key_parts,
    miss_causes,
    nice_ttl,
    per_user_part,
    shared_result,
)
from auditkit.analysis.code import CodeMap
from auditkit.checks.caching._common import (
    count_of,
    endpoint_views,
    frame_rows,
    number_of,
    ratio_severity,
    where_text,
)
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
)

__all__ = ["key_family_findings"]


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
    views = endpoint_views(requests)
    is_django = code.is_django if code is not None else None
    reads_frame = miss_causes(events) if len(events) else pd.DataFrame()
    for f in frame_rows(families):
        family, reads, ratio = str(f.family), int(f.reads), float(f.hit_ratio)
        where = where_text(
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
                        "sets_never_read": count_of(f.sets_never_read),
                        "keys": count_of(f.keys),
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
        first = count_of(getattr(f, "miss_first_read", 0))
        expired = count_of(getattr(f, "miss_expired", 0))
        evicted = count_of(getattr(f, "miss_evicted", 0))
        deleted = count_of(getattr(f, "miss_deleted", 0))
        if f.source != "cache events":
            # server key statistics: counts, no history of each key
            out.append(
                Finding(
                    check="low_cache_hit_ratio",
                    severity=ratio_severity(ratio, t["min_hit_ratio"]),
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
            "keys": count_of(f.keys),
            "reads_per_key": number_of(f.reads_per_key),
            "reread_s": number_of(f.reread_s),
            "ttl_s": number_of(f.ttl_s),
            "sets_never_read": count_of(f.sets_never_read),
            "threshold": t["min_hit_ratio"],
        }
        avoidable = 0
        part = per_user_part(family)
        rarely_reread = (
            f.reads_per_key == f.reads_per_key and f.reads_per_key <= t["family_max_reads_per_key"]
        )
        # keys read about once each; or keys with a per-user part whose misses are mostly first
        # reads: one entry per user, each computed on that user's first read, however often it
        # is read again
        if first >= 0.3 * misses and (
            rarely_reread or (part is not None and first >= 0.5 * misses)
        ):
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
                f"{f.reads_per_key:.1f} times on average — the key embeds {kind}, "
                + (
                    "rarely read again"
                    if rarely_reread
                    else "so every new value of it is computed once more"
                )
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
                    f"check whether what {where} caches under {family!r} depends on "
                    + (
                        f"part {part + 1} of the key"
                        if part is not None
                        else "that part of the key"
                    )
                    + " (no statements with parameters were tied to the misses' requests to tell): "
                    "if it does not, key it without that part"
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
            else ratio_severity(ratio, t["min_hit_ratio"])
        )
        if impact is not None and severity < Severity.MEDIUM:
            severity = ratio_severity(ratio, t["min_hit_ratio"])
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
