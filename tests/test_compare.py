"""Re-audits: two audits of one client compared (auditkit.compare, `auditkit compare`,
`auditkit run --previous`).

The real pair: ``tests/nplusone_project`` (a Django app other than the sample shop) is run twice
on the local PostgreSQL — once as it is, once with the forward-FK N+1 of ``/books/authors/``
fixed (``select_related``) and a new many-to-many N+1 added to ``/books/good/`` (its
``prefetch_related("tags")`` removed) — and each run's JSON-lines query log audited. The
comparison must report exactly that: one finding resolved, one new, the rest persisting.
The sample client against its revisit (``data/sample-revisit``, P1, P4 and P6 fixed and one
problem added) is compared the same way once that folder exists.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from auditkit.auditing import Audit, audit
from auditkit.cli import cli
from auditkit.client import load_client
from auditkit.compare import CHANGES, INPUT_CHECKS, compare, snapshot
from auditkit.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "nplusone_project"
SAMPLE = ROOT / "data" / "sample"
REVISIT = ROOT / "data" / "sample-revisit"
SCHEMA = ROOT / "auditkit" / "findings.schema.json"


# -- the real pair: the N+1 project before and after ---------------------------------------------
def _drive(project: Path, out: Path, postgres_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = f"auditkit_compare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_dsn.rsplit("/", 1)[0]
    try:
        env = {
            **os.environ,
            "AUDITKIT_NPLUSONE_DSN": f"{base}/{name}",
            "DJANGO_SETTINGS_MODULE": "settings",
        }
        subprocess.run(
            [sys.executable, str(project / "drive.py"), str(out)],
            cwd=project,
            env=env,
            check=True,
            timeout=300,
        )
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _revisited(tmp: Path) -> Path:
    """A copy of the project with one N+1 fixed and one added."""
    project = tmp / "project-v2"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    views = project / "shop" / "views.py"
    text = views.read_text(encoding="utf-8")
    fixed = text.replace(
        '[[b.title, b.author.name] for b in Book.objects.order_by("id")]',
        '[[b.title, b.author.name] for b in Book.objects.select_related("author").order_by("id")]',
    )
    added = fixed.replace('.prefetch_related("reviews", "tags")', '.prefetch_related("reviews")')
    assert fixed != text and added != fixed, "the project's views changed: update this test"
    views.write_text(added, encoding="utf-8")
    return project


def _client(logs: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(logs / "queries.jsonl", folder / "queries.jsonl")
    # a few milliseconds of traffic: any statement is a sizeable share of it, so slow statements
    # are judged on their mean time alone (as pgHero does), and none of this app's is slow
    (folder / "audit.yaml").write_text(
        "client: N+1 shop\nthresholds:\n  slow_query: {min_share: null}\n", encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def pair(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two client folders of the same app: before (v1) and after (v2) the changes."""
    tmp = tmp_path_factory.mktemp("compare")
    logs1, logs2 = tmp / "logs-v1", tmp / "logs-v2"
    _drive(PROJECT, logs1, postgres_dsn)
    _drive(_revisited(tmp), logs2, postgres_dsn)
    return _client(logs1, tmp / "shop-v1"), _client(logs2, tmp / "shop-v2")


@pytest.fixture(scope="module")
def audits(pair: tuple[Path, Path]) -> tuple[Audit, Audit]:
    return audit(load_client(pair[0])), audit(load_client(pair[1]))


def _n_plus_one(a: Audit) -> dict[str, str]:
    """endpoint → finding id of the N+1 findings."""
    return {str(f.subject.endpoint): f.id for f in a.findings if f.check == "n_plus_one"}


def test_pair_reports_exactly_the_fix_and_the_new_problem(audits: tuple[Audit, Audit]) -> None:
    old, new = audits
    before, after = _n_plus_one(old), _n_plus_one(new)
    assert set(before) == {"/books/authors/", "/books/reviews/", "/books/tags/"}
    assert set(after) == {"/books/reviews/", "/books/tags/", "/books/good/"}
    c = compare(old, new)
    by_change = {change: {fc.id for fc in c.of(change)} for change in CHANGES}
    assert by_change["resolved"] == {before["/books/authors/"]}
    assert by_change["new"] == {after["/books/good/"]}
    # every other finding is in both audits and persists: each was measured over 3 requests,
    # too few to call a change of milliseconds better or worse (the comparison says so)
    others = {f.id for f in old.findings} - {before["/books/authors/"]}
    assert {fc.id for fc in c.of("persisting")} == others
    assert not c.of("better") and not c.of("worse")
    moved = [fc for fc in c.of("persisting") if fc.note]
    assert all("too few requests" in str(fc.note) for fc in moved)
    resolved = c.of("resolved")[0]
    assert resolved.note is None  # /books/authors/ was requested in the new audit: fixed
    assert resolved.measure == "db_ms_per_request" and resolved.old and resolved.new is None
    assert c.of("new")[0].title == next(
        f.title for f in new.findings if f.id == after["/books/good/"]
    )
    # endpoints by route: the fixed one issues 1 statement per request instead of 1 + 12
    ep = c.endpoints.set_index("endpoint")
    assert ep.loc["/books/authors/", "statements_per_request_old"] == 13
    assert ep.loc["/books/authors/", "statements_per_request_new"] == 1
    assert (
        ep.loc["/books/good/", "statements_per_request_new"]
        > ep.loc["/books/good/", "statements_per_request_old"]
    )
    assert set(ep["status"]) == {"both"}
    # statements by fingerprint: the per-author lookup is gone, the per-book tag query is more often
    st = c.statements
    gone = st[st["status"] == "gone"]
    assert any("shop_author" in str(fp) for fp in gone["fingerprint"]), st[
        ["status", "fingerprint"]
    ]
    assert c.basis == "per_request"


def test_pair_compares_the_same_through_findings_json(
    audits: tuple[Audit, Audit], tmp_path: Path
) -> None:
    old, new = audits
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old.document()), encoding="utf-8")
    b.write_text(json.dumps(new.document()), encoding="utf-8")
    direct = compare(old, new)
    via_files = compare(a, b)
    assert [(c.id, c.change) for c in via_files.findings] == [
        (c.id, c.change) for c in direct.findings
    ]
    # the document keeps ten significant digits: the same tables up to that
    for got, want in (
        (via_files.endpoints, direct.endpoints),
        (via_files.statements, direct.statements),
    ):
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True),
            want.reset_index(drop=True),
            check_dtype=False,
            rtol=1e-5,
        )


def test_audit_compared_with_itself_reports_no_change(audits: tuple[Audit, Audit]) -> None:
    for a in audits:
        c = compare(a, a.document())
        assert c.unchanged and c.counts["persisting"] == len(a.findings)
        assert all(fc.delta in (None, 0.0) for fc in c.findings)
        assert set(c.statements["status"]) == {"both"}
        # the document keeps ten significant digits: no change beyond that
        assert (c.statements["time_change"].abs() < 1e-5).all()
        assert (c.endpoints["db_ms_per_request_change"].abs() < 1e-5).all()
        assert c.caveats == []


def test_sample_compared_with_itself_reports_no_change(tmp_path: Path) -> None:
    a = audit(load_client(SAMPLE))
    (tmp_path / "findings.json").write_text(json.dumps(a.document()), encoding="utf-8")
    c = compare(tmp_path, a)  # a report folder against the Audit object
    about_the_app = [f for f in a.findings if f.check not in INPUT_CHECKS]
    assert c.unchanged and len(c.findings) == len(about_the_app) > 10
    assert c.headline().endswith(f"{len(about_the_app)} persisting.")


# -- normalisation: per request and per hour, never totals -------------------------------------------
@pytest.fixture(scope="module")
def sample_doc(audits: tuple[Audit, Audit]) -> dict[str, Any]:
    return audits[0].document()


def _longer(doc: dict[str, Any], window: float, traffic: float) -> dict[str, Any]:
    """``doc`` observed over ``window`` times the time with ``traffic`` times the requests
    (and so ``traffic`` times the database time): the application itself unchanged."""
    out = copy.deepcopy(doc)
    wl = out["workload"]
    wl["window_s"] *= window
    wl["requests"] = int(wl["requests"] * traffic)
    wl["db_ms"] *= traffic
    for f in out["findings"]:
        imp = f.get("impact")
        if imp:
            for key in ("db_ms", "requests"):
                if key in imp:
                    imp[key] = imp[key] * traffic
            if "window_s" in imp:
                imp["window_s"] *= window
            if "db_ms_per_hour" in imp:
                imp["db_ms_per_hour"] *= traffic / window
    for s in out["statements"]:
        s["calls"] *= traffic
        s["total_ms"] *= traffic
    for e in out["endpoints"]:
        for key in ("requests", "statements", "db_ms"):
            e[key] *= traffic
    return out


def test_longer_window_same_traffic_is_not_worse(sample_doc: dict[str, Any]) -> None:
    c = compare(sample_doc, _longer(sample_doc, window=4.0, traffic=4.0))
    assert c.unchanged, [(fc.title, fc.change, fc.old, fc.new) for fc in c.findings]
    assert any("windows differ" in s for s in c.caveats)
    assert not any("Traffic differs" in s for s in c.caveats)
    assert (c.statements["time_change"].abs() < 1e-6).all()  # per request: the same


def test_more_traffic_in_the_same_window_is_said(sample_doc: dict[str, Any]) -> None:
    c = compare(sample_doc, _longer(sample_doc, window=1.0, traffic=3.0))
    assert any("Traffic differs" in s for s in c.caveats)
    # per affected request nothing changed, so no finding is worse for three times the traffic
    measured = [fc for fc in c.findings if fc.measure == "db_ms_per_request"]
    assert measured and all(fc.change == "persisting" for fc in measured)


def test_finding_worse_and_better_by_impact(sample_doc: dict[str, Any]) -> None:
    old, new = copy.deepcopy(sample_doc), copy.deepcopy(sample_doc)
    for doc in (old, new):  # measured over enough requests to be judged
        for f in doc["findings"]:
            if f.get("impact"):
                f["impact"]["requests"] = 50
    timed = [f for f in new["findings"] if (f.get("impact") or {}).get("db_ms_per_request")]
    assert len(timed) >= 2
    # the two largest: a change of either is far beyond the noise (findings of equal rank
    # may come in either order)
    timed.sort(key=lambda f: (-f["impact"]["db_ms_per_request"], f["id"]))
    timed[0]["impact"]["db_ms_per_request"] = timed[0]["impact"]["db_ms_per_request"] * 3 + 5
    timed[1]["impact"]["db_ms_per_request"] = 0.0
    c = {fc.id: fc for fc in compare(old, new).findings}
    assert c[timed[0]["id"]].change == "worse" and c[timed[0]["id"]].ratio > 3
    assert c[timed[1]["id"]].change == "better" and c[timed[1]["id"]].new == 0.0
    assert sum(fc.change == "persisting" for fc in c.values()) == len(c) - 2
    # the same change measured over 3 requests is not told from noise
    few = copy.deepcopy(new)
    for f in few["findings"]:
        if f.get("impact"):
            f["impact"]["requests"] = 3
    judged = {fc.id: fc for fc in compare(old, few).findings}[timed[0]["id"]]
    assert judged.change == "persisting" and "too few requests" in str(judged.note)


def test_resolved_without_traffic_is_not_called_fixed(sample_doc: dict[str, Any]) -> None:
    new = copy.deepcopy(sample_doc)
    gone = next(f for f in new["findings"] if f["subject"].get("endpoint"))
    endpoint = gone["subject"]["endpoint"]
    new["findings"] = [f for f in new["findings"] if f["id"] != gone["id"]]
    new["endpoints"] = [e for e in new["endpoints"] if e["endpoint"] != endpoint]
    c = compare(sample_doc, new)
    (resolved,) = c.of("resolved")
    assert resolved.id == gone["id"]
    assert resolved.note and "not observed rather than fixed" in resolved.note
    assert endpoint in resolved.note


# -- versions ---------------------------------------------------------------------------------------
def test_findings_without_ids_are_refused_clearly(
    sample_doc: dict[str, Any], tmp_path: Path
) -> None:
    """The shape auditkit wrote before finding ids (findings.json version 1: no schema_version,
    no ids) cannot be matched, and the error says so and what to do."""
    v1 = copy.deepcopy(sample_doc)
    del v1["schema_version"]
    v1["auditkit_version"] = "0.0.9"
    for f in v1["findings"]:
        del f["id"]
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(v1), encoding="utf-8")
    with pytest.raises(InputError) as err:
        compare(path, sample_doc)
    text = str(err.value)
    assert "carry no id" in text and "0.0.9" in text and "version 1" in text
    assert "findings.json" in text and err.value.path == str(path)
    result = CliRunner().invoke(cli, ["compare", str(path), str(path)])
    assert result.exit_code == 3
    assert "carry no id" in result.output and "Traceback" not in result.output


def test_other_version_with_ids_compares(sample_doc: dict[str, Any]) -> None:
    """A document from another auditkit version — a newer schema with fields this one does not
    know — compares on its finding ids, and the comparison says the versions differ."""
    other = copy.deepcopy(sample_doc)
    other["schema_version"] = 9
    other["auditkit_version"] = "9.0.0"
    other["something_new"] = {"x": 1}
    for f in other["findings"]:
        f["title"] = "Reworded: " + f["title"]  # wording is not identity
        f["severity"] = "critical"
    c = compare(other, sample_doc)
    assert not c.of("new") and not c.of("resolved")
    assert any("different auditkit versions" in s for s in c.caveats)


def test_version_2_document_compares_findings_only(audits: tuple[Audit, Audit]) -> None:
    """findings.json version 2 (ids, but no statement or endpoint figures) compares its findings
    and says why statements and endpoints are not compared — rather than calling them all new."""
    old, new = audits
    v2 = old.document()
    v2["schema_version"] = 2
    del v2["statements"], v2["endpoints"], v2["workload"]["statement_groups"]
    c = compare(v2, new)
    assert c.counts["resolved"] == 1 and c.counts["new"] == 1
    assert len(c.statements) == 0 and len(c.endpoints) == 0
    assert sum("holds no" in s and "previous audit" in s for s in c.caveats) == 2


def test_not_a_findings_json(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(InputError, match="not JSON"):
        snapshot(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(InputError, match=r"not a findings\.json"):
        snapshot(tmp_path / "y.json")
    with pytest.raises(InputError, match=r"no findings\.json in this folder"):
        snapshot(tmp_path)


# -- the command line and the run --------------------------------------------------------------------
def test_cli_compare_json_and_text(audits: tuple[Audit, Audit], tmp_path: Path) -> None:
    old, new = audits
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "findings.json").write_text(json.dumps(old.document()), encoding="utf-8")
    (tmp_path / "new" / "findings.json").write_text(json.dumps(new.document()), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", str(tmp_path / "old"), str(tmp_path / "new"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {f["change"] for f in out["findings"]} <= set(CHANGES)
    assert out["counts"]["resolved"] == 1 and out["counts"]["new"] == 1
    assert all("id" in f and "check" in f and "summary" in f for f in out["findings"])
    assert any(f["change"] == "resolved" and f.get("impact_change") for f in out["findings"])
    text = runner.invoke(cli, ["compare", str(tmp_path / "old"), str(tmp_path / "new")])
    assert text.exit_code == 0
    assert "RESOLVED (1)" in text.output and "NEW (1)" in text.output
    assert "/books/authors/" in text.output


def test_run_with_previous_writes_since_previous(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """`auditkit run --previous`: findings.json carries since_previous and each finding's change
    (valid against the schema), and the summary page opens with the changes."""
    from auditkit.runner import run_audit

    overview = [ROOT / "notebooks" / "00_overview.ipynb"]
    first = run_audit(pair[0], tmp_path / "jan", notebooks=overview, report_name="shop")
    assert first.ok, first.error or [n.error for n in first.notebooks]
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "run",
            str(pair[1]),
            "--out",
            str(tmp_path / "feb"),
            "--previous",
            str(tmp_path / "jan"),  # the folder of reports: matched by report name
            "--notebooks",
            str(overview[0]),
            "--quiet",
        ],
    )
    # the batch names the report after the folder: shop-v2; the previous one is "shop"
    assert result.exit_code == 2 and "no previous audit of 'shop-v2'" in result.output
    result = runner.invoke(
        cli,
        [
            "run",
            str(pair[1]),
            "--out",
            str(tmp_path / "feb"),
            "--previous",
            str(tmp_path / "jan" / "shop"),
            "--notebooks",
            str(overview[0]),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 resolved" in result.output and "1 new" in result.output
    doc = json.loads((tmp_path / "feb" / "shop-v2" / "findings.json").read_text(encoding="utf-8"))
    assert doc["schema_version"] == 3
    since = doc["since_previous"]
    assert since["counts"]["resolved"] == 1 and since["counts"]["new"] == 1
    changes = {f["id"]: f["change"] for f in doc["findings"]}
    assert sorted(changes.values()).count("new") == 1 and "resolved" not in changes.values()
    assert [f["change"] for f in since["findings"]].count("resolved") == 1
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(
        json.loads(SCHEMA.read_text(encoding="utf-8")), format_checker=jsonschema.FormatChecker()
    ).validate(doc)
    manifest = json.loads((tmp_path / "feb" / "shop-v2" / "manifest.json").read_text())
    assert manifest["parameters"]["previous"] == "previous.json"  # no path of this machine
    assert (
        manifest["previous"]["generated_at"]
        == json.loads(first.findings_path.read_text())["generated_at"]
    )
    page = (tmp_path / "feb" / "shop-v2" / "index.html").read_text(encoding="utf-8")
    assert 'id="since-last-audit"' in page and "ak-change-resolved" in page
    assert page.index("since-last-audit") < page.index("What to do first")
    first_page = first.index.read_text(encoding="utf-8")
    assert "since-last-audit" not in first_page  # no previous audit: no section at all


def test_batch_previous_must_be_a_folder_of_reports(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    from auditkit.errors import ConfigError
    from auditkit.runner import previous_reports

    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "findings.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="one client's report"):
        previous_reports(tmp_path / "one", ["a", "b"], list(pair))
    (tmp_path / "all" / "shop-v1").mkdir(parents=True)
    (tmp_path / "all" / "shop-v1" / "findings.json").write_text("{}", encoding="utf-8")
    found = previous_reports(tmp_path / "all", ["shop-v1", "shop-v2"], list(pair))
    assert found == [tmp_path / "all" / "shop-v1", None]  # the second client has none: alone


# -- the sample client and its revisit ------------------------------------------------------------------
@pytest.mark.skipif(
    not REVISIT.is_dir(),
    reason="data/sample-revisit (the sample client with P1, P4, P6 fixed and one problem added) "
    "is not in this checkout yet",
)
def test_sample_revisit_reports_the_fixed_and_the_added_problems() -> None:
    old = audit(load_client(SAMPLE))
    new = audit(load_client(REVISIT))
    c = compare(old, new)

    def subject(f: Any) -> dict[str, Any]:
        return dict(f.finding.get("subject") or {})

    resolved = c.of("resolved")
    p1 = [
        f for f in resolved if f.check == "n_plus_one" and subject(f).get("endpoint") == "/books/"
    ]
    p4 = [
        f
        for f in resolved
        if f.check == "missing_index"
        and subject(f).get("table") == "orders_customer"
        and "email" in " ".join(subject(f).get("columns") or [])
    ]
    p6 = [
        f
        for f in resolved
        if f.check == "unused_index" and subject(f).get("index") == "catalog_book_pages_idx"
    ]
    assert len(p1) == len(p4) == len(p6) == 1, [f.sentence() for f in resolved]
    assert {f.id for f in resolved} == {p1[0].id, p4[0].id, p6[0].id}, [
        f.sentence() for f in resolved
    ]
    assert all(f.note is None for f in resolved)  # fixed, not merely unobserved
    assert len(c.of("new")) == 1, [f.sentence() for f in c.of("new")]
