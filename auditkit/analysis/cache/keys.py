"""Django cache key families: the operations of the ``cache_events`` frame grouped by key family,
every miss given its cause from the key's own history, and what the key's parts mean.

A family is the ``key_prefix`` (the key with Django's ``KEY_PREFIX:VERSION:`` taken off and its
variable parts replaced, :func:`auditkit.loaders.cache_events.key_family`). Every miss is given
its cause: ``first read`` (the key was never written in the window), ``expired`` (read after its
time to live ran out), ``evicted`` (gone before its time to live: the server made room),
``deleted`` (invalidated). Families also get their re-read interval (the median time between
two reads of one key), reads per key and the sets never read. :func:`shared_result` tells from
the statements the misses ran whether the varying part of the key changes the result (if not,
one entry could serve every key); :func:`per_user_part` which part names a user or session;
:func:`nice_ttl` a round timeout from an observed interval.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from auditkit.analysis.cache._frames import to_float
from auditkit.lazy_re import compile_later
from auditkit.loaders.cache_events import key_family

__all__ = ["key_families", "key_parts", "miss_causes", "nice_ttl", "per_user_part", "shared_result"]


_READS = frozenset({"get", "get_or_set", "has_key", "mget", "exists"})
_WRITES = frozenset({"set", "add", "set_many", "setex", "mset", "incr", "decr"})
_DELETES = frozenset({"delete", "delete_many", "del"})
_MISS_CAUSES = ("first read", "expired", "evicted", "deleted")


_PER_USER_WORDS = compile_later(
    r"(?:^|[:._\-/])(user|users|u|uid|member|customer|account|profile|session|sess|visitor|cart|basket)(?=$|[:._\-/{])",
    re.I,
)


def _families(events: pd.DataFrame) -> pd.Series:
    if "key_prefix" in events and events["key_prefix"].notna().any():
        fam = events["key_prefix"].astype("string")
        return fam.fillna(
            events["key"]
            .astype("string")
            .map(lambda k: key_family(k) if isinstance(k, str) else pd.NA)
        )
    return (
        events["key"].astype("string").map(lambda k: key_family(k) if isinstance(k, str) else pd.NA)
    )


def _replay(events: pd.DataFrame) -> pd.DataFrame:
    """The single-key operations of ``events`` in time order per key, each read with the state
    of its key before it (vectorised: grouped shifts and forward fills, no loop per key).

    Columns: ``idx``, ``family``, ``cache``, ``key``, ``ts``, ``op``, ``endpoint``,
    ``request_id``, ``ttl_s``, ``is_read``, ``is_write``, ``hit``, ``cause``,
    ``since_write_s``, ``since_read_s``, ``read_later`` (a write read again afterwards).
    """
    ev = events.assign(family=_families(events), idx=np.arange(len(events)))
    ev = ev[ev["key"].notna() & ev["op"].notna()]
    if "error" in ev:
        ev = ev[ev["error"].isna()]
    if "key_count" in ev:
        ev = ev[~(pd.to_numeric(ev["key_count"], errors="coerce").fillna(1) > 1)]
    cache = ev["cache"].astype("string").fillna("") if "cache" in ev else ""
    ev = ev.assign(cache=cache, key=ev["key"].astype(str), op=ev["op"].astype(str))
    ev = ev.sort_values(["cache", "key", "ts", "idx"], kind="stable", na_position="first")
    ev = ev.reset_index(drop=True)
    hit = (
        ev["hit"].astype("boolean")
        if "hit" in ev
        else pd.Series(pd.NA, index=ev.index, dtype="boolean")
    )
    op = ev["op"]
    is_read = op.isin(list(_READS)) & hit.notna()
    is_write = (
        op.isin(list(_WRITES - {"incr", "decr"}))
        | op.eq("touch")
        | (op.eq("get_or_set") & hit.eq(False).fillna(False))
    )
    is_delete = op.isin(list(_DELETES))
    pos = pd.Series(np.arange(len(ev), dtype="float64"), index=ev.index)
    ttl = (
        pd.to_numeric(ev["ttl_s"], errors="coerce")
        if "ttl_s" in ev
        else pd.Series(np.nan, index=ev.index)
    )
    group = [ev["cache"], ev["key"]]
    state = pd.DataFrame(
        {
            "w_pos": pos.where(is_write),
            "w_ts": ev["ts"].where(is_write),
            "w_ttl": ttl.where(is_write),
            "d_pos": pos.where(is_delete),
        }
    )
    # the state *before* each row: the previous rows' last write and delete in the same key
    before = state.groupby(group, sort=False).shift(1)
    before = before.groupby(group, sort=False).ffill()
    written = before["w_pos"].notna()
    deleted = before["d_pos"].notna() & (~written | (before["d_pos"] > before["w_pos"]))
    since_write = (ev["ts"] - before["w_ts"]).dt.total_seconds()
    miss = is_read & hit.eq(False).fillna(False)
    expired = written & ~deleted & (before["w_ttl"] > 0) & (since_write >= before["w_ttl"] - 0.5)
    cause = pd.Series(pd.NA, index=ev.index, dtype="string")
    cause = cause.mask(miss & ~written & ~deleted, "first read")
    cause = cause.mask(miss & deleted, "deleted")
    cause = cause.mask(miss & written & ~deleted & expired.fillna(False), "expired")
    cause = cause.mask(miss & written & ~deleted & ~expired.fillna(False), "evicted")
    reads_ts = ev["ts"].where(is_read)
    prev_read = reads_ts.groupby(group, sort=False).shift(1)
    prev_read = prev_read.groupby(group, sort=False).ffill()
    last_read = pos.where(is_read).groupby(group, sort=False).transform("max")
    return ev.assign(
        is_read=is_read.to_numpy(),
        is_write=is_write.to_numpy(),
        hit=hit,
        cause=cause,
        since_write_s=since_write.where(written),
        since_read_s=(ev["ts"] - prev_read).dt.total_seconds().where(is_read),
        read_later=(is_write & (last_read > pos)).to_numpy(),
    )


def miss_causes(events: pd.DataFrame) -> pd.DataFrame:
    """The single-key reads of ``events`` with their family and, for a miss, its cause.

    Each key's operations are replayed in time order: a miss on a key never written before in
    the window is a ``first read``; one after a delete, ``deleted``; one after the time to live
    of the last write ran out, ``expired``; one before it ran out, ``evicted`` (the server
    dropped it early: memory pressure, a restart or a flush). ``get_or_set`` that misses writes
    the key too, with its timeout. Columns: ``idx`` (the row of ``events``), ``family``,
    ``cache``, ``key``, ``ts``, ``endpoint``, ``request_id``, ``hit``, ``cause``,
    ``since_write_s``, ``since_read_s`` (time since the previous read of the same key).
    """
    cols = [
        "idx",
        "family",
        "cache",
        "key",
        "ts",
        "endpoint",
        "request_id",
        "hit",
        "cause",
        "since_write_s",
        "since_read_s",
    ]
    if len(events) == 0:
        return pd.DataFrame(columns=cols)
    ev = _replay(events)
    reads = ev[ev["is_read"]].copy()
    for c in ("endpoint", "request_id"):
        if c not in reads:
            reads[c] = pd.NA
    reads["hit"] = reads["hit"].astype(bool)
    reads["cache"] = [c if isinstance(c, str) and c else None for c in reads["cache"]]
    reads["cause"] = reads["cause"].astype(object).where(reads["cause"].notna(), None)
    return reads.sort_values(["ts", "idx"], kind="stable").reset_index(drop=True)[cols]


def key_families(
    events: pd.DataFrame, key_family_stats: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per cache and key family: reads, hits, misses, hit ratio, the causes of the misses,
    distinct keys, reads per key, the median re-read interval of a key, the median time to
    live its writes gave, sets never read, and the endpoints that read it (busiest first).

    ``key_family_stats`` (the ``cache_key_families`` frame of a memcached ``stats detail dump``
    or key dump) adds families the server counted, with ``source`` saying which.
    """
    cols = [
        "cache",
        "family",
        "reads",
        "hits",
        "misses",
        "hit_ratio",
        *[f"miss_{c.replace(' ', '_')}" for c in _MISS_CAUSES],
        "keys",
        "reads_per_key",
        "reread_s",
        "reread_p75_s",
        "ttl_s",
        "sets",
        "sets_never_read",
        "endpoints",
        "source",
    ]
    frames: list[pd.DataFrame] = []
    if len(events):
        ev = _replay(events)
        keys = ["cache", "family"]
        reads = ev[ev["is_read"]]
        writes = ev[ev["is_write"]]
        g = ev.groupby(keys, sort=False)
        out = pd.DataFrame(index=g.size().index)
        r = reads.groupby(keys, sort=False)
        out["reads"] = r.size()
        out["hits"] = r["hit"].sum()
        for c in _MISS_CAUSES:
            out[f"miss_{c.replace(' ', '_')}"] = (
                reads[reads["cause"] == c].groupby(keys, sort=False).size()
            )
        out["read_keys"] = r["key"].nunique()
        out["keys"] = g["key"].nunique()
        out["reread_s"] = r["since_read_s"].median()
        out["reread_p75_s"] = r["since_read_s"].quantile(0.75)
        w = writes.groupby(keys, sort=False)
        out["ttl_s"] = w["ttl_s"].median() if "ttl_s" in writes else np.nan
        out["sets"] = w.size()
        out["sets_never_read"] = w.size() - w["read_later"].sum()
        # multi-key reads count in their first key's family
        if "key_count" in events:
            multi = events[events["op"].isin(["get_many", "mget"]) & events["key_count"].notna()]
            if len(multi):
                m = multi.assign(
                    family=_families(multi),
                    cache=multi["cache"].astype("string").fillna("") if "cache" in multi else "",
                    _hits=pd.to_numeric(multi["key_hits"], errors="coerce")
                    if "key_hits" in multi
                    else 0.0,
                ).groupby(keys, sort=False)
                more = pd.DataFrame({"n": m["key_count"].sum(), "h": m["_hits"].sum()})
                out = out.join(more, how="outer")
                out["reads"] = out["reads"].fillna(0) + out["n"].fillna(0)
                out["hits"] = out["hits"].fillna(0) + out["h"].fillna(0)
                out = out.drop(columns=["n", "h"])
        counts = ["reads", "hits", "sets", "sets_never_read", "keys"] + [
            f"miss_{c.replace(' ', '_')}" for c in _MISS_CAUSES
        ]
        out[counts] = out[counts].fillna(0).astype(int)
        out["misses"] = out["reads"] - out["hits"]
        out["hit_ratio"] = (out["hits"] / out["reads"].where(out["reads"] > 0)).astype(float)
        out["reads_per_key"] = (r.size() / out["read_keys"].where(out["read_keys"] > 0)).reindex(
            out.index
        )
        if "endpoint" in ev:
            eps = (
                ev.dropna(subset=["endpoint"])
                .groupby([*keys, "endpoint"], sort=False)
                .size()
                .sort_values(ascending=False, kind="stable")
            )
            top = (
                eps.reset_index()
                .groupby(keys, sort=False)["endpoint"]
                .agg(lambda s: [str(x) for x in s.head(5)])
            )
            out["endpoints"] = top.reindex(out.index)
        out["endpoints"] = [
            v if isinstance(v, list) else [] for v in out.get("endpoints", [None] * len(out))
        ]
        out["source"] = "cache events"
        out = out.reset_index()
        out["cache"] = [c if isinstance(c, str) and c else None for c in out["cache"]]
        frames.append(out)
    rows: list[dict[str, Any]] = []
    if key_family_stats is not None and len(key_family_stats):
        kf = key_family_stats
        for (server, family), g2 in kf.groupby(["server", "key_prefix"], sort=False, dropna=False):
            last: Any = g2.sort_values("ts", na_position="first").iloc[-1]
            gets = to_float(last.get("gets"))
            hits = to_float(last.get("hits"))
            rows.append(
                {
                    "cache": str(server),
                    "family": str(family),
                    "reads": int(gets) if gets == gets else 0,
                    "hits": int(hits) if hits == hits else 0,
                    "misses": int(gets - hits) if gets == gets and hits == hits else 0,
                    "hit_ratio": to_float(last.get("hit_ratio")),
                    "keys": _int0(last.get("keys")),
                    "ttl_s": to_float(last.get("median_ttl_s")),
                    "sets": _int0(last.get("sets")),
                    "sets_never_read": _int0(last.get("never_fetched_keys")),
                    "endpoints": [],
                    "source": str(last.get("source_format") or "server key statistics"),
                }
            )
    if rows:
        frames.append(pd.DataFrame(rows))
    if not frames:
        return pd.DataFrame(columns=cols)
    result = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in cols:
        if c not in result:
            result[c] = np.nan
    return result[cols].sort_values("misses", ascending=False, kind="stable").reset_index(drop=True)


def _int0(v: object) -> int:
    f = to_float(v)
    return int(f) if f == f else 0


def key_parts(family: str, key: str) -> list[str] | None:
    """The values of the variable parts of ``key`` in ``family`` (None when it does not fit):
    ``key_parts("summary:{int}:{int}", "shop:1:summary:12:705")`` → ``["12", "705"]``."""
    pattern = re.escape(family)
    for token in (
        "\\{int\\}",
        "\\{uuid\\}",
        "\\{email\\}",
        "\\{hex\\}",
        "\\{token\\}",
        "\\{session\\}",
    ):
        pattern = pattern.replace(token, "(.+?)")
    m = re.search(pattern + "$", key)  # after Django's KEY_PREFIX:VERSION:, if any
    return list(m.groups()) if m else None


def shared_result(
    events: pd.DataFrame,
    family: str,
    statements: pd.DataFrame,
    is_django: Any = None,
) -> dict[str, Any] | None:
    """Does the varying part of ``family``'s keys change what the miss path computes?

    For the misses of the family, the statements of the same request (text and parameters,
    the application's own tables only: the session and user lookups of every request are left
    out, ``is_django(table)`` says which are Django's) are compared across keys. For each
    variable part of the key: when keys that differ only there ran the very same statements,
    the part does not change the result. Returns ``{"slot": i (0-based), "values": distinct
    values of that part, "keys": keys compared, "statements": fingerprint ids, "shared": bool}``
    for the part with the most distinct values, or None when the data cannot tell (no
    statements with parameters in the misses' requests).
    """
    if len(events) == 0 or len(statements) == 0 or "request_id" not in events:
        return None
    reads = miss_causes(events)
    misses = reads[
        (reads["family"] == family) & (~reads["hit"].astype(bool)) & reads["request_id"].notna()
    ]
    if len(misses) < 2:
        return None
    req_col = "request_key" if "request_key" in statements else "request_id"
    st = statements[
        statements[req_col].astype("string").isin(set(misses["request_id"].astype(str)))
    ]
    if len(st) == 0:
        return None
    from auditkit.sql.django_orm import statement_shape

    def own(fp: object) -> bool:
        shape = statement_shape(str(fp)) if isinstance(fp, str) else None
        tables = [t for t in (shape.tables if shape else ()) if t]
        return bool(tables) and not (is_django and all(is_django(t) for t in tables))

    fps = {fp: own(fp) for fp in st["fingerprint"].dropna().unique()}
    st = st[st["fingerprint"].map(fps).fillna(False).astype(bool)]
    # the miss path: what the misses' requests run and the hits' requests do not
    hit_requests = set(
        reads.loc[
            (reads["family"] == family) & reads["hit"].astype(bool) & reads["request_id"].notna(),
            "request_id",
        ].astype(str)
    )
    if hit_requests:
        on_hits = set(
            statements.loc[
                statements[req_col].astype("string").isin(hit_requests), "fingerprint_id"
            ].astype(str)
        )
        path = st[~st["fingerprint_id"].astype(str).isin(on_hits)]
        if len(path):
            st = path
    if len(st) == 0:
        return None
    params = (
        st["params"].astype("string").fillna("")
        if "params" in st
        else pd.Series("", index=st.index)
    )
    sql = (
        st["sql"].astype("string").fillna("") if "sql" in st else st["fingerprint"].astype("string")
    )
    variant = st["fingerprint_id"].astype(str) + "\x00" + sql + "\x00" + params
    per_request = {
        str(rid): tuple(sorted(set(s))) for rid, s in variant.groupby(st[req_col].astype(str))
    }
    misses = misses.assign(_work=misses["request_id"].astype(str).map(per_request))
    misses = misses.dropna(subset=["_work"])
    parts: dict[str, list[str]] = {}
    for k in misses["key"].unique():
        slots = key_parts(family, str(k))
        if slots:
            parts[str(k)] = slots
    if len(parts) < 2:
        return None
    n_slots = max(len(v) for v in parts.values())
    best: dict[str, Any] | None = None
    for i in range(n_slots):
        values = {v[i] for v in parts.values() if len(v) > i}
        if len(values) < 2:
            continue
        # keys equal but for part i: did they run the same work?
        groups: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for k, work in zip(misses["key"], misses["_work"], strict=True):
            v = parts.get(str(k))
            if not v or len(v) <= i:
                continue
            rest = tuple(v[:i] + v[i + 1 :])
            groups.setdefault(rest, set()).add(work)
        compared = [g for g in groups.values()]
        if not compared:
            continue
        shared = all(len(g) == 1 for g in compared) and any(
            len({k for k in parts if tuple(parts[k][:i] + parts[k][i + 1 :]) == rest}) > 1
            for rest in groups
        )
        candidate: dict[str, Any] = {
            "slot": i,
            "values": len(values),
            "keys": len(parts),
            "statements": sorted(set(st["fingerprint_id"].astype(str))),
            "shared": bool(shared),
        }
        if best is None or (candidate["shared"], candidate["values"]) > (
            best["shared"],
            best["values"],
        ):
            best = candidate
    return best


def per_user_part(family: str) -> int | None:
    """The index of the variable part of ``family`` that a word marks as per user or session
    (``user:{int}``, ``…:session:{token}``, a ``{session}`` key), else None."""
    tokens = list(re.finditer(r"\{(?:int|uuid|email|hex|token|session)\}", family))
    for i, t in enumerate(tokens):
        if t.group(0) in ("{session}", "{email}"):
            return i
        before = family[: t.start()]
        if _PER_USER_WORDS.search(before[-12:] + "{"):
            return i
    return None


def nice_ttl(seconds: float) -> int:
    """A round time to live at least ``seconds``: 60, 120, 300, 600, 900, 1800, 3600, … s."""
    for step in (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if seconds <= step:
            return step
    return int(math.ceil(seconds / 86400) * 86400)
