"""One finding per root cause: symptoms folded into the cause that explains them.

A missing index shows up five times — as the missing index, a slow statement, a plan node
taking most of the plan's time, rows removed by a filter and a sequential scan. Only the first
is a cause; the others are its evidence. :func:`fold` takes every check's findings and returns
the root causes, each carrying the symptoms it explains in ``evidence.symptoms``:

1. **Symptoms** are the findings of ``slow_query``, ``temp_files`` and the ``plan_*`` checks.
   Every other check reports a cause.
2. A symptom joins a cause that explains it: one about the same statement (the fingerprints in
   :attr:`~auditkit.findings.Finding.statements`), or — for a plan node — a missing index on the
   node's table whose columns the node's filter, index condition or sort key names. When several
   causes explain it, it joins the first by :data:`PRECEDENCE` (caching a result removes the
   statement altogether; loading a relation with its list removes the repeats; an index makes
   them cheaper), then by time saved.
3. A statement no cause explains stays a finding of its own: a ``slow_query`` keeps the plan
   flags and temporary files of the same statement as its symptoms.
4. Plan flags left over are folded per plan: the most severe flag leads, the others are its
   symptoms. Its impact is the time at stake — the statement's time in the workload — and its
   severity follows the shared rule; a plan whose statement the workload never ran is low at
   most, since how often it runs is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from auditkit.checks.severity import of_impact
from auditkit.config import AuditConfig
from auditkit.findings import Finding, Impact, Severity

__all__ = ["PRECEDENCE", "SYMPTOMS", "fold", "is_symptom"]

#: causes, in the order a symptom explained by several joins them
PRECEDENCE = (
    "cache_candidate",
    "n_plus_one",
    "duplicate_query",
    "missing_index",
)
#: checks that report symptoms (plus every plan_* check)
SYMPTOMS = frozenset({"slow_query", "temp_files"})
#: plan flags a missing index explains through the node's table and columns
_INDEX_FLAGS = frozenset(
    {"plan_seq_scan", "plan_rows_removed", "plan_time_share", "plan_sort_disk", "plan_nested_loop"}
)


def is_symptom(f: Finding) -> bool:
    """True for findings that describe an effect rather than a cause."""
    return f.check in SYMPTOMS or f.check.startswith("plan_")


def _node_texts(f: Finding) -> tuple[str | None, str]:
    """(table, filter/index condition/sort key text) of a plan finding's node."""
    table = f.subject.table
    texts = []
    for item in f.evidence.items:
        for key in ("filter", "index_cond", "sort_key"):
            v = item.get(key)
            if v:
                texts.append(str(v))
    for key in ("filter",):
        v = f.metrics.get(key)
        if v:
            texts.append(str(v))
    return table, " ".join(texts)


def _explains(cause: Finding, symptom: Finding) -> bool:
    if set(cause.statements) & set(symptom.statements):
        return True
    if (
        cause.check == "missing_index"
        and symptom.check in _INDEX_FLAGS
        and cause.subject.table
        and cause.subject.columns
    ):
        table, text = _node_texts(symptom)
        if table == cause.subject.table and any(
            re.search(rf"\b{re.escape(c)}\b", text) for c in cause.subject.columns
        ):
            return True
    return False


def _rank(f: Finding) -> tuple[int, float]:
    order = PRECEDENCE.index(f.check) if f.check in PRECEDENCE else len(PRECEDENCE)
    return order, -(f.impact.weight if f.impact else 0.0)


def _summary(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "check": f.check,
        "severity": str(f.severity),
        "title": f.title,
        "summary": f.summary,
    }


def _with(f: Finding, symptoms: Sequence[Finding]) -> Finding:
    if not symptoms:
        return f
    folded: tuple[Mapping[str, Any], ...] = tuple(_summary(s) for s in symptoms)
    # a symptom that was itself a lead brings its own symptoms along
    for s in symptoms:
        folded += tuple(s.evidence.symptoms)
    return replace(f, evidence=replace(f.evidence, symptoms=f.evidence.symptoms + folded))


def _superseded(
    causes: Sequence[Finding], config: AuditConfig | None
) -> tuple[list[Finding], dict[int, list[Finding]]]:
    """Resolve two causes claiming one statement: a cached result against a missing index.

    Caching removes a statement's executions; an index makes them cheaper. An aggregate
    (reports, statistics) is cached: the index finding lets go of that statement (and goes when
    it has none left). A row list is indexed: the cache candidate becomes the index finding's
    evidence. Returns the causes kept and, per kept cause (by position), those it absorbed.
    """
    from auditkit.checks.indexes.candidates import narrow

    caches = [f for f in causes if f.check == "cache_candidate"]
    cached_aggregates = {fid for f in caches if f.metrics.get("aggregate") for fid in f.statements}
    kept: list[Finding] = []
    for f in causes:
        if f.check == "missing_index" and cached_aggregates & set(f.statements):
            narrowed = narrow(f, cached_aggregates, config)
            if narrowed is not None:
                kept.append(narrowed)
            continue
        kept.append(f)
    index_of = {fid: f for f in kept if f.check == "missing_index" for fid in f.statements}
    absorbed: dict[int, list[Finding]] = {}
    out: list[Finding] = []
    for f in kept:
        host = None
        if f.check == "cache_candidate" and not f.metrics.get("aggregate"):
            host = next((index_of[s] for s in f.statements if s in index_of), None)
        if host is None:
            out.append(f)
    for f in kept:
        if f.check == "cache_candidate" and not f.metrics.get("aggregate"):
            host = next((index_of[s] for s in f.statements if s in index_of), None)
            if host is not None:
                absorbed.setdefault(out.index(host), []).append(f)
    return out, absorbed


def fold(
    findings: Iterable[Finding],
    profile: pd.DataFrame | None = None,
    config: AuditConfig | None = None,
    *,
    total_ms: float | None = None,
    window_s: float | None = None,
    source: str | None = None,
) -> list[Finding]:
    """The root causes of ``findings``, symptoms folded in (see the module docstring).

    ``profile`` (the workload's ``statement_stats``) times the statements of plans that no
    cause or slow statement explains; ``total_ms``, ``window_s`` and ``source`` describe the
    workload for their impact.
    """
    items = list(findings)
    causes, attached = _superseded([f for f in items if not is_symptom(f)], config)
    symptoms = [f for f in items if is_symptom(f)]
    rest: list[Finding] = []
    ordered_causes = sorted(range(len(causes)), key=lambda i: _rank(causes[i]))
    plan_host: dict[str, int] = {}
    for s in symptoms:
        host = next((i for i in ordered_causes if _explains(causes[i], s)), None)
        if host is None:
            rest.append(s)
        else:
            attached.setdefault(host, []).append(s)
            if s.metrics.get("plan_id"):
                plan_host.setdefault(str(s.metrics["plan_id"]), host)
    # the other flags of a plan one of whose nodes a cause explains belong to that cause
    left = []
    for s in rest:
        host = plan_host.get(str(s.metrics.get("plan_id"))) if s.metrics.get("plan_id") else None
        if host is None:
            left.append(s)
        else:
            attached.setdefault(host, []).append(s)
    rest = left
    slow = [f for f in rest if f.check == "slow_query"]
    other = [f for f in rest if f.check != "slow_query"]
    on_slow: dict[int, list[Finding]] = {}
    loose: list[Finding] = []
    for s in other:
        host = next((i for i, q in enumerate(slow) if set(q.statements) & set(s.statements)), None)
        if host is None:
            loose.append(s)
        else:
            on_slow.setdefault(host, []).append(s)
    out = [_with(c, attached.get(i, [])) for i, c in enumerate(causes)]
    out += [_with(q, on_slow.get(i, [])) for i, q in enumerate(slow)]
    out += _plan_leads(loose, profile, config, total_ms, window_s, source)
    return out


def _plan_leads(
    flags: Sequence[Finding],
    profile: pd.DataFrame | None,
    config: AuditConfig | None,
    total_ms: float | None,
    window_s: float | None,
    source: str | None,
) -> list[Finding]:
    """Left-over plan flags and temporary files, one lead per plan (or statement)."""
    groups: dict[str, list[Finding]] = {}
    for f in flags:
        key = str(f.metrics.get("plan_id") or (f.statements[0] if f.statements else f.id))
        groups.setdefault(key, []).append(f)
    by_fid: dict[str, float] = {}
    if profile is not None and len(profile):
        by_fid = {
            str(k): float(v)
            for k, v in zip(profile["fingerprint_id"], profile["total_ms"], strict=False)
            if isinstance(k, str)
        }
    out = []
    for group in groups.values():
        lead = sorted(
            group, key=lambda f: (-int(f.severity), f.check != "plan_time_share", f.check)
        )[0]
        first = lead  # the lead is replaced below: its symptoms are the others of the group
        fid = lead.statements[0] if lead.statements else None
        ms = by_fid.get(fid) if fid else None
        if all(f.check == "plan_time_share" for f in group):
            # where a plan spends its time orients the reader; it is no defect by itself
            lead = replace(lead, severity=Severity.INFO)
        elif ms:
            impact = Impact.of(
                ms,
                total_ms,
                window_s=window_s,
                source=source,
                basis="at stake",
            )
            lead = replace(lead, impact=impact, severity=of_impact(impact, config))
        else:
            lead = replace(
                lead,
                severity=min(lead.severity, Severity.LOW),
                evidence=replace(
                    lead.evidence,
                    note=(
                        (lead.evidence.note + "; " if lead.evidence.note else "")
                        + (
                            "the workload provided does not run this statement"
                            if fid
                            else "the plan does not say which statement it belongs to"
                        )
                        + ", so how much time it costs is unknown"
                    ),
                ),
            )
        out.append(_with(lead, [f for f in group if f is not first]))
    return out
