"""Validation of index candidates with HypoPG: the database's own planner, read-only.

:func:`validate_with_hypopg` re-plans the statements a ``missing_index`` candidate is meant to
help, with the candidate created as a HypoPG hypothetical index, inside one read-only
transaction (HypoPG writes nothing). A candidate the planner uses and that cuts the
call-weighted cost by the preset's ``min_cost_reduction`` is kept, with the before and after
costs and plans as evidence of strength ``validated``; its impact becomes the statements' time
scaled by that cost cut (``basis: validated``) and its severity follows from it by the shared
rule. Without a database, or without HypoPG in it, candidates come back unchanged with a note.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from auditkit.analysis.catalog import as_text
from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import Evidence, EvidenceStrength, Finding, Severity, plural
from auditkit.lazy_re import compile_later

__all__ = ["validate_with_hypopg", "validation_plans"]

_PLACEHOLDER = compile_later(r"%\([A-Za-z0-9_]+\)s|%s|\$\d+|\?")


def _explainable(row: Mapping[str, Any], generic: bool) -> tuple[str, bool] | None:
    """(SQL, needs GENERIC_PLAN) for a statement row, or None when it cannot be planned."""
    sample = as_text(row.get("sample_sql"))
    fp = as_text(row.get("fingerprint"))
    for text in (sample, fp):
        if text is None:
            continue
        probe = re.sub(r"'(?:[^']|'')*'", "''", text)
        if not _PLACEHOLDER.search(probe) and "(...)" not in probe:
            return text.strip().rstrip(";"), False
    if generic:
        base = sample or fp
        if base is None:
            return None
        taken = [int(n) for n in re.findall(r"\$(\d+)", base)]
        counter = iter(range(max(taken, default=0) + 1, 100_000))
        sql = re.sub(r"\(\.\.\.\)", "(?)", base)
        sql = _PLACEHOLDER.sub(
            lambda m: m.group(0) if m.group(0).startswith("$") else f"${next(counter)}", sql
        )
        return sql.strip().rstrip(";"), True
    return None


def _plan_summary(plan: Mapping[str, Any]) -> tuple[float, str, set[str]]:
    """(total cost, one-line node path, index names used) of an EXPLAIN (FORMAT JSON) plan."""
    root = plan["Plan"]
    names: set[str] = set()
    parts: list[str] = []

    def walk(node: Mapping[str, Any], depth: int) -> None:
        label = str(node.get("Node Type"))
        if node.get("Index Name"):
            names.add(str(node["Index Name"]))
            label += f" using {node['Index Name']}"
        if node.get("Relation Name"):
            label += f" on {node['Relation Name']}"
        parts.append(("  " * depth) + label)
        for child in node.get("Plans") or []:
            walk(child, depth + 1)

    walk(root, 0)
    return float(root.get("Total Cost") or 0.0), " > ".join(p.strip() for p in parts), names


def validate_with_hypopg(
    candidates: Sequence[Finding],
    dsn: str | None,
    statements: pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    keep_rejected: bool = False,
) -> list[Finding]:
    """Confirm candidates with hypothetical indexes (HypoPG) and before/after planner costs.

    Inside one READ ONLY transaction (``default_transaction_read_only=on``; HypoPG writes
    nothing), each candidate is created with ``hypopg_create_index`` and every statement it is
    meant to help is planned with ``EXPLAIN`` (no ANALYZE) before and after. A statement without
    literals is planned with ``EXPLAIN (GENERIC_PLAN)`` on PostgreSQL 16+ and otherwise from its
    ``sample_sql``. A candidate is kept when the call-weighted cost falls by at least the
    preset's ``min_cost_reduction`` and the planner uses the index; it then carries the costs and
    plan shapes as evidence of strength ``validated``. Rejected candidates are dropped (or, with
    ``keep_rejected``, returned at severity info with the reason). Without ``dsn``, or when
    HypoPG is not installed in the database, the candidates come back unchanged with a note
    saying so (strength stays ``statistics`` or ``pattern``).
    """
    cfg = config or AuditConfig()
    t = cfg.thresholds("index")
    cands = [c for c in candidates if c.check == "missing_index"]
    others = [c for c in candidates if c.check != "missing_index"]
    if not cands:
        return list(candidates)
    if not dsn:
        return [_noted(c, "not validated: no database was given") for c in cands] + others
    import psycopg

    by_fid = (
        statements.drop_duplicates("fingerprint_id").set_index("fingerprint_id")
        if len(statements)
        else pd.DataFrame()
    )
    out: list[Finding] = []
    try:
        conn = psycopg.connect(
            dsn,
            options="-c default_transaction_read_only=on -c statement_timeout=30000",
            autocommit=False,
            application_name="auditkit-hypopg",
            connect_timeout=10,
        )
    except psycopg.Error as exc:
        from auditkit.collect.postgres import scrub_secrets

        # never the DSN: the reason only, with any password blanked
        reason = scrub_secrets(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, dsn
        )
        return [
            _noted(c, f"not validated: cannot connect to the database ({reason})") for c in cands
        ] + others
    with conn:
        conn.read_only = True
        conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'hypopg')"
        ).fetchone()
        assert row is not None
        version, hypopg = int(row[0]), row[1]
        if hypopg is None:
            note = (
                "not validated: the HypoPG extension is not installed in this database "
                "(CREATE EXTENSION hypopg, as its owner, enables what-if validation); advice rests on statistics"
            )
            return [_noted(c, note) for c in cands] + others
        generic = version >= 160000
        for cand in cands:
            checked = _validate_one(conn, cand, by_fid, generic, t, keep_rejected, cfg)
            if checked is not None:
                out.append(checked)
        with contextlib.suppress(Exception):
            conn.execute("SELECT hypopg_reset()")
        conn.rollback()
    return out + others


_LIMIT = compile_later(r"(?is)\s+LIMIT\s+(?:\d+|\$\d+|ALL)(?:\s+OFFSET\s+(?:\d+|\$\d+))?\s*$")


def _savepoint(conn: Any, sql: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first row of ``sql``, run under a savepoint; the error text when it fails."""
    conn.execute("SAVEPOINT auditkit_hypo")
    try:
        row = conn.execute(sql, params).fetchone()
    except Exception as exc:
        conn.execute("ROLLBACK TO SAVEPOINT auditkit_hypo")
        return str(exc).strip().splitlines()[0][:160]
    conn.execute("RELEASE SAVEPOINT auditkit_hypo")
    return row


def _explain(conn: Any, sql: str, generic: bool) -> dict[str, Any] | str:
    """The EXPLAIN (FORMAT JSON) plan of ``sql`` (no ANALYZE), or the error text."""
    explain = "EXPLAIN (FORMAT JSON, GENERIC_PLAN) " if generic else "EXPLAIN (FORMAT JSON) "
    row = _savepoint(conn, explain + sql)
    return row if isinstance(row, str) else row[0][0]


def validation_plans(finding: Finding) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(fingerprint id, plan before, plan after) as ``plan_nodes`` frames, for each statement a
    :func:`validate_with_hypopg` finding re-planned — ready for :func:`auditkit.plans.compare_plans`.

    The plans travel inside the finding (evidence items), so this needs no database.
    """
    from auditkit.loaders._explain_nodes import plans_frame
    from auditkit.loaders.explain import read_plans

    out: list[tuple[str, pd.DataFrame, pd.DataFrame]] = []
    for item in finding.evidence.items:
        if "plan_before_json" not in item or "plan_after_json" not in item:
            continue
        frames = []
        for side in ("before", "after"):
            plans, _failures = read_plans(str(item[f"plan_{side}_json"]), "postgres")
            frames.append(
                plans_frame(
                    [(f"{item['fingerprint_id']}#{side}", p) for p in plans[:1]], f"hypopg:{side}"
                )
            )
        out.append((str(item["fingerprint_id"]), frames[0], frames[1]))
    return out


def _noted(f: Finding, note: str) -> Finding:
    ev = replace(f.evidence, note=(f.evidence.note + ". " if f.evidence.note else "") + note)
    return replace(f, evidence=ev, metrics={**f.metrics, "validation": note.split(":")[0]})


def _validate_one(
    conn: Any,
    cand: Finding,
    by_fid: pd.DataFrame,
    generic: bool,
    t: Mapping[str, Any],
    keep_rejected: bool,
    config: AuditConfig,
) -> Finding | None:
    fids = [i["fingerprint_id"] for i in cand.evidence.items if "fingerprint_id" in i]
    sql_ddl = (cand.recommendation.sql if cand.recommendation else None) or ""
    hypo_ddl = re.sub(r"\s+CONCURRENTLY", "", sql_ddl, flags=re.I)
    hypo_ddl = re.sub(r'\s+IF NOT EXISTS\s+"[^"]*"', "", hypo_ddl, flags=re.I).rstrip(";")
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    total_before = total_after = 0.0
    used = False
    size = None
    # every statement planned as logged and, when it has a LIMIT, without it: the planner costs a
    # LIMIT as if matching rows were spread evenly, which hides the search a selective lookup
    # does (a LIMIT 1 over an ordered scan looks cheap however many rows it must read)
    targets: list[tuple[str, str, str, bool, float]] = []  # fid, variant, sql, generic, calls
    for fid in fids:
        if fid not in by_fid.index:
            skipped.append(f"{fid}: not in the statements given")
            continue
        row = by_fid.loc[fid].to_dict()
        target = _explainable(row, generic)
        if target is None:
            skipped.append(
                f"{fid}: no literals to plan with (PostgreSQL 16's GENERIC_PLAN would be needed)"
            )
            continue
        sql, gen = target
        calls = float(row.get("calls") or 1)
        targets.append((fid, "as logged", sql, gen, calls))
        unlimited = _LIMIT.sub("", sql)
        if unlimited != sql:
            targets.append((fid, "without LIMIT", unlimited, gen, calls))
    before = {(fid, v): _explain(conn, sql, gen) for fid, v, sql, gen, _ in targets}
    hypo = _savepoint(
        conn, "SELECT indexrelid, indexname FROM hypopg_create_index(%s)", (hypo_ddl,)
    )
    if isinstance(hypo, str):
        return _noted(cand, f"not validated: HypoPG could not create the index ({hypo})")
    after = {(fid, v): _explain(conn, sql, gen) for fid, v, sql, gen, _ in targets}
    size_row = _savepoint(conn, "SELECT hypopg_relation_size(%s)", (hypo[0],))
    size = float(size_row[0]) if not isinstance(size_row, str) else None
    _savepoint(conn, "SELECT hypopg_drop_index(%s)", (hypo[0],))
    per_fid: dict[str, list[dict[str, Any]]] = {}
    for fid, variant, _sql, gen, calls in targets:
        b, a = before[(fid, variant)], after[(fid, variant)]
        if isinstance(b, str) or isinstance(a, str):
            skipped.append(f"{fid} ({variant}): {b if isinstance(b, str) else a}")
            continue
        cost_b, path_b, _ = _plan_summary(b)
        cost_a, path_a, names = _plan_summary(a)
        per_fid.setdefault(fid, []).append(
            {
                "fingerprint_id": fid,
                "variant": variant,
                "calls": calls,
                "cost_before": round(cost_b, 2),
                "cost_after": round(cost_a, 2),
                "uses_index": any(str(hypo[1]) in n for n in names),
                "plan_before": path_b[:300],
                "plan_after": path_a[:300],
                "generic_plan": gen,
                "_plans": (b, a),
            }
        )
    for _fid, variants in per_fid.items():
        usable = [v for v in variants if v["uses_index"] and v["cost_before"] > 0]
        best = (
            max(usable, key=lambda v: 1 - v["cost_after"] / v["cost_before"])
            if usable
            else variants[0]
        )
        used |= bool(usable)
        calls = float(best.pop("calls"))
        for v in variants:
            v.pop("calls", None)
            plans = v.pop("_plans")
            v["chosen"] = v is best
            if v is best:
                # the two plans themselves, compact, for a before/after comparison offline
                v["plan_before_json"] = json.dumps([plans[0]], separators=(",", ":"))
                v["plan_after_json"] = json.dumps([plans[1]], separators=(",", ":"))
        total_before += best["cost_before"] * calls
        total_after += (best["cost_after"] if best["uses_index"] else best["cost_before"]) * calls
        results += variants
    if not results:
        return _noted(
            cand, "not validated: " + "; ".join(skipped[:3] or ["no statement could be planned"])
        )
    reduction = 1.0 - total_after / total_before if total_before > 0 else 0.0
    metrics = {
        **cand.metrics,
        "cost_before": round(total_before, 2),
        "cost_after": round(total_after, 2),
        "cost_reduction": round(reduction, 4),
        "validation": "hypopg",
    }
    if size is not None:
        metrics["estimated_size_bytes"] = size
    items = tuple(i for i in cand.evidence.items if "fingerprint_id" not in i) + tuple(results)
    if used and reduction >= t["min_cost_reduction"]:
        total_ms = float(cand.metrics.get("total_ms") or 0.0)
        note = (
            f"HypoPG: the planner uses the hypothetical index and the statements' cost falls from "
            f"{total_before:,.0f} to {total_after:,.0f} (−{reduction:.0%}, call-weighted)"
        )
        without_limit = [
            r["fingerprint_id"]
            for r in results
            if r.get("chosen") and r["variant"] == "without LIMIT"
        ]
        if without_limit:
            note += (
                f"; {plural(len(without_limit), 'statement')} compared without their LIMIT, whose cost assumes matching "
                "rows are spread evenly and so hides the search"
            )
        if skipped:
            note += f"; not planned: {'; '.join(skipped[:3])}"
        impact = cand.impact
        if impact is not None:
            saved = total_ms * reduction
            impact = replace(
                impact,
                db_ms=round(saved, 3),
                db_share=round(impact.db_share * saved / impact.db_ms, 5)
                if impact.db_share is not None and impact.db_ms
                else impact.db_share,
                db_ms_per_request=round(saved / impact.requests, 3) if impact.requests else None,
                basis="validated",
                note=(
                    f"the {total_ms:,.0f} ms of its statements scaled by the planner's cost cut "
                    f"({reduction:.0%}) with the hypothetical index"
                ),
            )
        return replace(
            cand,
            severity=of_impact(impact, config),
            metrics=metrics,
            evidence=Evidence(
                EvidenceStrength.VALIDATED, items, note + ". " + (cand.evidence.note or "")
            ),
            impact=impact,
        )
    reason = (
        "the planner does not use the hypothetical index"
        if not used
        else f"cost falls by only {reduction:.0%} (< {t['min_cost_reduction']:.0%})"
    )
    if not keep_rejected:
        return None
    return replace(
        cand,
        severity=Severity.INFO,
        title=f"Not confirmed: {cand.title}",
        metrics=metrics,
        evidence=Evidence(EvidenceStrength.VALIDATED, items, f"HypoPG: {reason}"),
        impact=None,
        action=None,
    )
