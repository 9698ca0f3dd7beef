"""Cache-hit analysis, layer by layer: pure functions from canonical frames to derived frames.

A request meets up to three caches on its way to the data: a CDN or proxy cache (the
``cache_status`` of the requests frame), the Django cache (the operations of the
``cache_events`` frame, and the server counters of ``cache_stats``), and the database's buffer
cache (``pg_statio_*`` in ``schema_tables``/``schema_indexes``, ``pg_stat_statements`` blocks,
``pg_stat_database`` in ``server_status``). This package measures each, and the checks in
:mod:`auditkit.checks.caching` turn what it measures into findings.

**Server counters** (:func:`server_snapshots`, :func:`server_rates`, :func:`server_summary`,
:func:`command_mix`). Redis ``INFO`` and memcached ``stats`` counters are cumulative since the
server started (or since ``CONFIG RESETSTAT`` / ``stats reset``). Snapshots of one server are
put in order and cut into *segments* wherever the counters start again: a new ``run_id`` or
``pid`` (the loaders name such a server differently: it is the same instance when their
snapshots do not overlap in time), an uptime going backwards (a restart), or a counter going
backwards with the uptime still rising (a statistics reset). Rates and ratios come from the
differences of consecutive snapshots *within* a segment, never across one. With a single
snapshot the ratio is since the server started, and says so.

**Key families** (:func:`key_families`, :func:`miss_causes`). The operations of the Django cache
grouped by key family (``key_prefix``: the key with Django's ``KEY_PREFIX:VERSION:`` taken off
and its variable parts replaced, :func:`auditkit.loaders.cache_events.key_family`). Every miss
is given its cause from the key's own history: ``first read`` (the key was never written in the
window), ``expired`` (read after its time to live ran out), ``evicted`` (gone before its time
to live: the server made room), ``deleted`` (invalidated). Families also get their re-read
interval (the median time between two reads of one key), reads per key and the sets never read.
:func:`shared_result` tells from the statements the misses ran whether the varying part of the
key changes the result (if not, one entry could serve every key).

**Buffer cache** (:func:`buffer_cache`), **HTTP and CDN** (:func:`http_cache`,
:func:`static_served`) and **the funnel** (:func:`funnel`): what each layer absorbs per
endpoint and where the time goes when it does not.

The package, one module per layer: :mod:`~auditkit.analysis.cache.servers`,
:mod:`~auditkit.analysis.cache.keys`, :mod:`~auditkit.analysis.cache.buffer`,
:mod:`~auditkit.analysis.cache.http`, :mod:`~auditkit.analysis.cache.funnel`, and
:mod:`~auditkit.analysis.cache.display` for the chapter's frames. Every public name is
importable from here.
"""

from __future__ import annotations

from auditkit.analysis.cache.buffer import buffer_cache
from auditkit.analysis.cache.display import display_frames, ratio_series
from auditkit.analysis.cache.funnel import funnel
from auditkit.analysis.cache.http import CDN_HITS, http_cache, path_pattern, static_served
from auditkit.analysis.cache.keys import (
    key_families,
    key_parts,
    miss_causes,
    nice_ttl,
    per_user_part,
    shared_result,
)
from auditkit.analysis.cache.servers import (
    command_mix,
    server_rates,
    server_snapshots,
    server_summary,
)

__all__ = [
    "CDN_HITS",
    "buffer_cache",
    "command_mix",
    "display_frames",
    "funnel",
    "http_cache",
    "key_families",
    "key_parts",
    "miss_causes",
    "nice_ttl",
    "per_user_part",
    "path_pattern",
    "ratio_series",
    "server_rates",
    "server_snapshots",
    "server_summary",
    "shared_result",
    "static_served",
]
