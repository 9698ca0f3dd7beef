"""``http_cache``: path patterns a CDN or proxy does not cache, GET responses without
``Cache-Control``, static and media files served by the application."""

from __future__ import annotations

import pandas as pd

from auditkit.analysis.cache import (
    static_served,
)
from auditkit.checks.caching._common import (
    bytes_text,
    frame_rows,
)
from auditkit.config import AuditConfig
from auditkit.findings import (
    Evidence,
    EvidenceStrength,
    Finding,
    Recommendation,
    Severity,
    Subject,
)

__all__ = ["http_cache_findings"]


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
        for r in frame_rows(weak):
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
                f"{r.pattern} ({int(r.requests):,} requests, {bytes_text(float(r.bytes))})"
                for r in frame_rows(static.head(3))
            )
            out.append(
                Finding(
                    check="http_cache",
                    severity=Severity.LOW,
                    title=f"Static and media files served by the application: {total_req:,} requests",
                    summary=(
                        f"{total_req:,} requests for static or media files ({bytes_text(total_bytes)}) were "
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
