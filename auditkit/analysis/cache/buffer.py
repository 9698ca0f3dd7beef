"""The database's buffer cache: PostgreSQL's shared-buffer hit ratio per table, index, statement
and database (``pg_statio_*``, ``pg_stat_statements`` blocks, ``pg_stat_database``)."""

from __future__ import annotations

import pandas as pd

__all__ = ["MIN_BLOCKS", "TEMPLATE_DATABASES", "buffer_cache"]


def buffer_cache(
    schema_tables: pd.DataFrame,
    schema_indexes: pd.DataFrame,
    statement_stats: pd.DataFrame,
    server_status: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """PostgreSQL's buffer cache hit ratio per table (heap, indexes, TOAST), per index, per
    statement and per database, with the blocks read from outside shared buffers.

    Returns frames ``tables``, ``indexes``, ``statements``, ``databases`` (each with ``hit``,
    ``read``, ``hit_ratio``, sorted by blocks read, largest first); empty when the input lacks
    the counters. ``pg_stat_database`` counters of several snapshots are differenced.
    """
    out: dict[str, pd.DataFrame] = {}
    t = schema_tables
    if (
        len(t)
        and {"heap_blks_hit", "heap_blks_read"} <= set(t.columns)
        and t["heap_blks_hit"].notna().any()
    ):
        df = pd.DataFrame({"table": t["table"]})
        hit = sum(
            pd.to_numeric(t[c], errors="coerce").fillna(0)
            for c in ("heap_blks_hit", "idx_blks_hit", "toast_blks_hit")
            if c in t
        )
        read = sum(
            pd.to_numeric(t[c], errors="coerce").fillna(0)
            for c in ("heap_blks_read", "idx_blks_read", "toast_blks_read")
            if c in t
        )
        df["hit"], df["read"] = hit, read
        df["heap_hit_ratio"] = _ratio(
            pd.to_numeric(t["heap_blks_hit"], errors="coerce"),
            pd.to_numeric(t["heap_blks_read"], errors="coerce"),
        )
        out["tables"] = _rank(
            df.groupby("table", as_index=False)[["hit", "read"]]
            .max()
            .merge(df[["table", "heap_hit_ratio"]].drop_duplicates("table"), on="table")
        )
    i = schema_indexes
    if (
        len(i)
        and {"idx_blks_hit", "idx_blks_read"} <= set(i.columns)
        and i["idx_blks_hit"].notna().any()
    ):
        df = pd.DataFrame(
            {
                "table": i["table"],
                "index": i["index"],
                "hit": pd.to_numeric(i["idx_blks_hit"], errors="coerce"),
                "read": pd.to_numeric(i["idx_blks_read"], errors="coerce"),
            }
        ).dropna(subset=["hit"])
        out["indexes"] = _rank(df.drop_duplicates(["table", "index"], keep="last"))
    s = statement_stats
    if len(s) and "shared_blks_hit" in s and s["shared_blks_hit"].notna().any():
        df = pd.DataFrame(
            {
                "fingerprint_id": s["fingerprint_id"],
                "fingerprint": s["fingerprint"],
                "calls": s.get("calls"),
                "hit": pd.to_numeric(s["shared_blks_hit"], errors="coerce").fillna(0),
                "read": pd.to_numeric(s["shared_blks_read"], errors="coerce").fillna(0),
                "total_ms": s.get("total_ms"),
            }
        )
        out["statements"] = _rank(df)
    st = server_status
    if len(st) and "view" in st:
        db = st[(st["view"] == "pg_stat_database") & st["name"].isin(["blks_hit", "blks_read"])]
        if len(db):
            rows = []
            for database, g in db.groupby(db["database"].fillna(""), sort=False):
                if database in TEMPLATE_DATABASES:  # never queried by an application
                    continue
                vals = {}
                for name in ("blks_hit", "blks_read"):
                    v = (
                        g[g["name"] == name]
                        .sort_values(["ts", "snapshot"], na_position="first")["value"]
                        .dropna()
                    )
                    if len(v) >= 2 and v.iloc[-1] >= v.iloc[0]:
                        vals[name] = float(v.iloc[-1] - v.iloc[0])
                    elif len(v):
                        vals[name] = float(v.iloc[-1])
                if vals:
                    rows.append(
                        {
                            # pg_stat_database's row without a database: the shared catalogs
                            "database": database or "(shared catalogs)",
                            "hit": vals.get("blks_hit", 0.0),
                            "read": vals.get("blks_read", 0.0),
                        }
                    )
            if rows:
                out["databases"] = _rank(pd.DataFrame(rows))
    return out


def _ratio(hit: pd.Series, read: pd.Series) -> pd.Series:
    total = hit.fillna(0) + read.fillna(0)
    return (hit.fillna(0) / total).where(total > 0)


#: PostgreSQL's template databases: their counters are the server's own housekeeping
TEMPLATE_DATABASES = frozenset({"template0", "template1"})
#: objects with fewer blocks touched than this are left out of the tables: their ratios are noise
MIN_BLOCKS = 100


def _rank(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["hit"].astype(float).fillna(0) + df["read"].astype(float).fillna(0) >= MIN_BLOCKS]
    df = df.copy()
    df["hit_ratio"] = _ratio(df["hit"].astype(float), df["read"].astype(float))
    return df.sort_values("read", ascending=False, kind="stable").reset_index(drop=True)
