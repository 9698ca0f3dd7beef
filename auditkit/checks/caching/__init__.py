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

The package, one module per layer: :mod:`~auditkit.checks.caching.servers`,
:mod:`~auditkit.checks.caching.key_families`, :mod:`~auditkit.checks.caching.buffer_cache`,
:mod:`~auditkit.checks.caching.hit_ratio` (the three together),
:mod:`~auditkit.checks.caching.candidates`, :mod:`~auditkit.checks.caching.http`. Every public
name is importable from here.
"""

from __future__ import annotations

from auditkit.checks.caching.buffer_cache import buffer_cache_findings
from auditkit.checks.caching.candidates import cache_candidates, cacheable_reads
from auditkit.checks.caching.hit_ratio import low_cache_hit_ratio
from auditkit.checks.caching.http import http_cache_findings
from auditkit.checks.caching.key_families import key_family_findings
from auditkit.checks.caching.servers import cache_hit_ratios, server_findings

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
