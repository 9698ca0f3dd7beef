"""The audit of the bundled sample client against ``sample_app/PLANTED.md``.

Every planted problem is found, once, with its exact fix in the Sample Bookshop's own models;
no control (C1 the catalogue, C2 the cached dashboard) is named; the findings above info are the
planted root causes plus a few real incidental ones, each with its symptoms folded in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import auditkit
from auditkit.auditing import Audit
from auditkit.findings import Finding, Severity

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
CONTROLS = ("/books/catalogue/", "/stats/dashboard/")


@pytest.fixture(scope="module")
def sample() -> Audit:
    return auditkit.audit(auditkit.load_client(SAMPLE))


def _one(sample: Audit, check: str, **subject: object) -> Finding:
    found = [
        f
        for f in sample.findings
        if f.check == check and all(getattr(f.subject, k) == v for k, v in subject.items())
    ]
    assert len(found) == 1, (check, subject, [str(f) for f in sample.findings])
    return found[0]


def _code(f: Finding) -> str:
    return (f.recommendation.django or "") if f.recommendation else ""


def test_p1_p2_p3_n_plus_one_with_the_exact_queryset(sample: Audit) -> None:
    assert _code(_one(sample, "n_plus_one", endpoint="/books/")) == (
        'Book.objects.select_related("author")'
    )
    assert _code(_one(sample, "n_plus_one", endpoint="/books/reviews/")) == (
        'Book.objects.prefetch_related("reviews")'
    )
    # endpoints are the capture app's: Django's own route patterns
    assert _code(_one(sample, "n_plus_one", endpoint="/books/tags/<slug:slug>/")) == (
        'Book.objects.prefetch_related("tags")'
    )
    for f in sample.findings:
        if f.check == "n_plus_one":
            assert f.severity == Severity.HIGH and f.impact is not None
            assert f.impact.basis == "measured" and f.impact.db_ms_per_request
            assert (
                any(s["check"] == "slow_query" for s in f.evidence.symptoms)
                or f.subject.endpoint == "/books/tags/<slug:slug>/"
            )


def test_p4_p5_missing_indexes_with_exact_ddl(sample: Audit) -> None:
    email = _one(sample, "missing_index", table="orders_customer")
    assert email.subject.expression == "expression" and email.metrics["keys"] == "UPPER(email)"
    assert email.recommendation is not None and 'Upper("email")' in (
        email.recommendation.django or ""
    )
    assert "Customer" in (email.action or "")
    queue = _one(sample, "missing_index", table="orders_order")
    assert queue.subject.columns == ("status", "created_at")
    assert queue.recommendation is not None
    assert 'fields=["status", "created_at"]' in (queue.recommendation.django or "")
    # the plans' sequential scans are their evidence, not findings of their own
    for f in (email, queue):
        assert any(s["check"] == "plan_seq_scan" for s in f.evidence.symptoms)
    assert not any(f.check in ("plan_seq_scan", "plan_rows_removed") for f in sample.findings)


def test_p6_p7_indexes_to_drop(sample: Audit) -> None:
    unused = _one(sample, "unused_index", index="catalog_book_pages_idx")
    assert unused.severity > Severity.INFO and unused.metrics["size_bytes"]
    for name in ("catalog_book_isbn_idx", "orders_order_customer_idx"):
        dup = _one(sample, "duplicate_index", index=name)
        assert "Meta.indexes" in _code(dup)
    # primary keys, unique constraints and Django's own tables are never proposed for a drop
    for f in sample.findings:
        if f.check in ("unused_index", "duplicate_index") and f.severity > Severity.INFO:
            assert f.subject.index and not f.subject.index.endswith(("_pkey", "_key", "_uniq"))
            assert f.subject.table and not f.subject.table.startswith(("auth_", "django_"))
    migrations = {m.app_label: m for m in sample.migrations}
    assert set(migrations) == {"catalog", "orders"}
    assert migrations["orders"].path == "orders/migrations/0002_auditkit_indexes.py"


def test_p8_the_bestsellers_are_cached_not_indexed(sample: Audit) -> None:
    cache = _one(sample, "cache_candidate", endpoint="/stats/bestsellers/")
    assert cache.severity == Severity.HIGH and cache.metrics["distinct"] == 1
    assert any(s["check"] == "slow_query" for s in cache.evidence.symptoms)
    # the composite index finding lets go of the bestsellers statement
    queue = _one(sample, "missing_index", table="orders_order")
    assert not set(queue.statements) & set(cache.statements)


def test_p9_the_confirmation_waits_on_email(sample: Audit) -> None:
    wait = _one(sample, "background_task_candidate", endpoint="/orders/<int:pk>/confirm/")
    assert "e-mail" in wait.title and wait.metrics["waiting_ms"] >= 250  # the SMTP relay
    assert wait.metrics["db_share"] < 0.2
    assert [
        f.subject.endpoint for f in sample.findings if f.check == "background_task_candidate"
    ] == ["/orders/<int:pk>/confirm/"]


def test_p11_p12_cache_hit_ratio_and_capacity(sample: Audit) -> None:
    # the cause: per-visitor rating keys, read about once each, whose result is the same for
    # every visitor (the fix drops that part of the key)
    hit = _one(sample, "low_cache_hit_ratio")
    assert hit.subject.endpoint == "/books/<int:pk>/"
    assert hit.subject.expression == "key family book:{int}:rating:{hex}"
    assert float(hit.metrics["hit_ratio"]) < 0.1 and hit.metrics["shared_result"]
    assert hit.metrics["reads_per_key"] < 1.5
    # its symptom: the Redis server's ratio, about 1 in 4 overall (the dashboard's one key hits),
    # over the collector's INFO series — told once, with the family, not as a second finding
    (server,) = [s for s in hit.evidence.symptoms or [] if "Redis" in str(s.get("title"))]
    ratio = re.search(r"hit ratio (\d+)%", str(server["title"]))
    assert ratio and 10 < int(ratio.group(1)) < 40
    cap = _one(sample, "capacity_limit")
    assert 16 <= int(cap.metrics["limit_users"]) <= 64
    for key in ("sigma", "kappa", "lambda", "n_star", "peak_rps"):
        assert key in cap.metrics
    budget = _one(sample, "connection_budget")
    assert budget.metrics["needed"] == 8 and budget.severity == Severity.INFO


def test_no_control_is_named(sample: Audit) -> None:
    for f in sample.findings:
        text = " ".join(
            [
                f.title,
                f.action or "",
                str(f.subject.endpoint),
                f.recommendation.summary if f.recommendation else "",
            ]
        )
        for control in CONTROLS:
            assert control not in text, (control, str(f))


def test_above_info_are_the_root_causes(sample: Audit) -> None:
    above = [f for f in sample.findings if f.severity > Severity.INFO]
    planted = {
        ("n_plus_one", "/books/"),
        ("n_plus_one", "/books/reviews/"),
        ("n_plus_one", "/books/tags/<slug:slug>/"),
        ("missing_index", "orders_customer"),
        ("missing_index", "orders_order"),
        ("unused_index", "catalog_book_pages_idx"),
        ("duplicate_index", "catalog_book_isbn_idx"),
        ("duplicate_index", "orders_order_customer_idx"),
        ("cache_candidate", "/stats/bestsellers/"),
        ("background_task_candidate", "/orders/<int:pk>/confirm/"),
        ("low_cache_hit_ratio", None),
        ("capacity_limit", None),
        ("connection_churn", None),
    }

    def key(f: Finding) -> tuple[str, str | None]:
        if f.check in ("low_cache_hit_ratio", "capacity_limit", "connection_churn"):
            return f.check, None
        if f.check == "missing_index":
            return f.check, f.subject.table
        return f.check, f.subject.endpoint or f.subject.index or f.subject.table

    keys = {key(f) for f in above}
    assert planted <= keys
    incidental = [f for f in above if key(f) not in planted]
    assert len(incidental) <= 3, [str(f) for f in incidental]
    # symptoms are folded: no slow statement or plan flag stands above info on its own
    assert not any(f.check == "slow_query" or f.check.startswith("plan_") for f in above)


def test_the_action_plan_leads_with_the_biggest_savings(sample: Audit) -> None:
    actions = sample.actions
    assert 4 <= len(actions) <= 7
    weights = [f.impact.weight for f in actions if f.impact]
    assert weights == sorted(weights, reverse=True)
    # the three N+1s, the uncached aggregate and the e-mail sent inside the request lead
    assert {f.check for f in actions[:5]} == {
        "n_plus_one",
        "cache_candidate",
        "background_task_candidate",
    }
    for f in actions:
        assert f.action and "None" not in f.action and "nan" not in f.action


def test_impact_is_in_one_unit_from_one_source(sample: Audit) -> None:
    # the capture app's JSON lines time the audit; the Django log of the same statements is
    # only quoted beside them, never added
    assert sample.workload["source"] == "capture" and sample.workload["tied_to_requests"]
    # database time has one source; response time saved outside the database (a connection
    # set-up, work moved to a task) is timed by whatever measured it, and says so
    sources = {f.impact.source for f in sample.findings if f.impact and f.impact.db_ms}
    assert sources == {"the auditkit capture app's query log"}
    assert "The Django query log measured" in sample.notes[0]
    assert "PostgreSQL server log measured" in sample.notes[0]
    shares = sum(
        f.impact.db_share or 0.0
        for f in sample.findings
        if f.impact and f.impact.basis != "at stake"
    )
    assert shares < 1.0  # savings of distinct causes never add up to more than all the time
    assert "PostgreSQL server log measured" in sample.notes[0]
