"""``cache_candidate`` per endpoint: read-only work that repeats with the same statements and
parameters across requests, costly enough that a cache round trip is cheaper, with the Django
tool that fits the case."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditkit.analysis.code import CodeMap
from auditkit.checks.caching._common import (
    endpoint_views,
)
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Impact,
    Recommendation,
    Subject,
    duration_text,
    plural,
)
from auditkit.schemas import QUERY_EVENTS, conform
from auditkit.sql.django_orm import statement_shape

__all__ = ["cache_candidates", "cacheable_reads"]


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


#: statements that read, and those that write
_READ = r"^\(?\s*(select|with)\b"
_WRITE = r"^\s*(insert|update|delete)\b"


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
        keep = [
            (f, e) not in bad
            for f, e in zip(g["fid"].tolist(), g["endpoint"].tolist(), strict=True)
        ]
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
    views = endpoint_views(requests)
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
