"""MySQL / MariaDB: the server's own evidence for an index candidate.

performance_schema digests (``digest_calls``, ``no_index_used``, ``full_scans``, rows examined
and sent) and the slow log's own counters, matched to the workload's statements
(:func:`mysql_facts`), put in words for a candidate (:func:`_mysql_text`); and the filesorts and
temporary tables of the MySQL EXPLAIN plans of its statements (:func:`_mysql_sorts`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import (
    as_number,
)
from auditkit.findings import plural


def _num_sum(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce").groupby(df["fingerprint_id"]).sum(min_count=1)


def _squash(fingerprint: Any) -> str:
    return re.sub(r"[\s`]+", "", str(fingerprint)).lower()


def mysql_facts(
    digests: pd.DataFrame | None,
    events: pd.DataFrame | None,
    profile: pd.DataFrame | None = None,
) -> dict[str, dict[str, float]]:
    """Per fingerprint id, what the MySQL/MariaDB server counted about its executions:
    performance_schema digests (``digest_calls``, ``no_index_used``, ``full_scans``,
    ``rows_examined``, ``rows_sent``) and the slow log (``slow_calls``, ``slow_full_scans``,
    ``slow_rows_examined``, ``slow_rows_sent``, ``slow_filesorts``, ``slow_tmp_disk``).

    A digest whose text differs from the logged statement's only in spacing (MariaDB writes
    ``COUNT (*)``) is keyed by the fingerprint id of ``profile``'s statement."""
    out: dict[str, dict[str, float]] = {}

    def put(fid: Any, key: str, value: Any) -> None:
        v = as_number(value)
        if v is not None:
            out.setdefault(str(fid), {})[key] = v

    if digests is not None and len(digests) and "fingerprint_id" in digests:
        d = digests[digests["fingerprint_id"].notna()]
        if profile is not None and len(profile) and "fingerprint" in d:
            by_text = {
                _squash(fp): str(fid)
                for fp, fid in zip(profile["fingerprint"], profile["fingerprint_id"], strict=False)
            }
            d = d.assign(
                fingerprint_id=[
                    by_text.get(_squash(fp), str(fid))
                    for fp, fid in zip(d["fingerprint"], d["fingerprint_id"], strict=False)
                ]
            )
        for col, key in (
            ("calls", "digest_calls"),
            ("no_index_used", "no_index_used"),
            ("full_scans", "full_scans"),
            ("rows_examined", "rows_examined"),
            ("rows", "rows_sent"),
        ):
            if col in d:
                for fid, v in _num_sum(d, col).items():
                    put(fid, key, v)
    if events is not None and len(events) and "rows_examined" in events:
        e = events[events["fingerprint_id"].notna() & events["rows_examined"].notna()]
        if len(e):
            for fid, v in e.groupby("fingerprint_id").size().items():
                put(fid, "slow_calls", v)
            for col, key in (
                ("rows_examined", "slow_rows_examined"),
                ("rows", "slow_rows_sent"),
            ):
                if col in e:
                    for fid, v in _num_sum(e, col).items():
                        put(fid, key, v)
            for col, key in (
                ("full_scan", "slow_full_scans"),
                ("filesort", "slow_filesorts"),
                ("tmp_table_on_disk", "slow_tmp_disk"),
            ):
                if col in e:
                    flags = e[col].astype("boolean").fillna(False).astype("float64")
                    for fid, v in flags.groupby(e["fingerprint_id"]).sum().items():
                        put(fid, key, v)
    return out


def _mysql_text(
    fids: Sequence[str], facts: Mapping[str, Mapping[str, float]]
) -> tuple[str, dict[str, float]]:
    """The server's evidence for a candidate's statements, in words and as metrics."""
    keys = (
        "digest_calls",
        "no_index_used",
        "full_scans",
        "rows_examined",
        "rows_sent",
        "slow_calls",
        "slow_full_scans",
        "slow_rows_examined",
        "slow_rows_sent",
        "slow_filesorts",
    )
    total: dict[str, float] = {}
    for f in fids:
        for k in keys:
            if k in facts.get(f, {}):
                total[k] = total.get(k, 0.0) + facts[f][k]
    parts = []
    calls = total.get("digest_calls")
    if calls:
        scans = max(total.get("no_index_used", 0.0), total.get("full_scans", 0.0))
        text = f"performance_schema counted {plural(int(calls), 'execution')}"
        if scans:
            text += f", {scans:,.0f} of them without an index"
        if "rows_examined" in total and "rows_sent" in total:
            text += (
                f"; they examined {total['rows_examined']:,.0f} rows to send "
                f"{total['rows_sent']:,.0f}"
            )
        parts.append(text)
    slow = total.get("slow_calls")
    if slow:
        text = f"the slow log shows {plural(int(slow), 'execution')}"
        if total.get("slow_full_scans"):
            text += f", {total['slow_full_scans']:,.0f} of them full scans"
        if "slow_rows_examined" in total and "slow_rows_sent" in total:
            text += (
                f" (Rows_examined {total['slow_rows_examined']:,.0f} against Rows_sent "
                f"{total['slow_rows_sent']:,.0f})"
            )
        if total.get("slow_filesorts"):
            text += f", {total['slow_filesorts']:,.0f} with a filesort"
        parts.append(text)
    if not parts:
        return "", {}
    return "On the server, " + "; ".join(parts) + ".", {f"mysql_{k}": v for k, v in total.items()}


def _mysql_sorts(plan_nodes: pd.DataFrame | None, fids: Sequence[str]) -> list[str]:
    """Filesorts and temporary tables in the MySQL EXPLAIN plans of ``fids``."""
    if plan_nodes is None or len(plan_nodes) == 0 or "fingerprint_id" not in plan_nodes:
        return []
    nodes = plan_nodes[plan_nodes["fingerprint_id"].isin(list(fids))]
    found: list[str] = []
    kinds = set(nodes["node_type"].dropna().astype(str))
    extra = " ".join(nodes["extra"].dropna().astype(str)) if "extra" in nodes else ""
    if "filesort" in kinds or "Using filesort" in extra:
        found.append("a filesort")
    if "temporary_table" in kinds or "Using temporary" in extra:
        found.append("a temporary table")
    return found
