"""The Sample Bookshop (``sample_app/``) and the sample client it produced (``data/sample/``).

(a) The app passes Django's system checks in both releases (``BOOKSHOP_VARIANT``), with and
without the capture app, its committed migrations match its models, and they apply to a fresh
PostgreSQL database (created and dropped on the local server).
(b) ``data/sample`` and ``data/sample-revisit`` hold every file ``scripts/make_sample.py``
writes; the query logs load with request ids that tie them to the access log and to each
other; the planted problems are visible in them (SMTP time inside the confirmation, the
per-visitor cache keys); no file mentions a path or the name of the machine that generated it.
(c) The audit's migrations apply to the app; the revisit's audit no longer finds the fixed
problems, finds the new one, and still finds the rest.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from auditkit.loaders.registry import get_loader

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_app"
SAMPLE = ROOT / "data" / "sample"
REVISIT = ROOT / "data" / "sample-revisit"
SAMPLES = pytest.mark.parametrize("folder", [SAMPLE, REVISIT], ids=["sample", "revisit"])


def _make_sample_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "scripts" / "make_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _manage(
    *args: str, database_url: str, variant: str = "baseline", **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKSHOP_", "DJANGO_"))}
    env.update(
        {
            "BOOKSHOP_DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "bookshop.settings",
            "BOOKSHOP_VARIANT": variant,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=APP,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def fresh_database(postgres_dsn: str) -> Iterator[str]:
    """A uniquely named, empty database on the local server; dropped afterwards."""
    name = f"auditkit_sample_app_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(postgres_dsn)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# -- (a) the app --------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("variant", ["baseline", "revisit"])
def test_checks_and_migrations_on_a_fresh_database(
    fresh_database: str, variant: str, tmp_path: Path
) -> None:
    check = _manage(
        "check", "--fail-level", "WARNING", database_url=fresh_database, variant=variant
    )
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout
    # with the capture app installed as its documentation says
    captured = _manage(
        "check",
        "--fail-level",
        "WARNING",
        database_url=fresh_database,
        variant=variant,
        BOOKSHOP_CAPTURE_DIR=str(tmp_path / "capture"),
    )
    assert captured.returncode == 0, captured.stderr
    assert "no issues" in captured.stdout

    pending = _manage(
        "makemigrations", "--check", "--dry-run", database_url=fresh_database, variant=variant
    )
    assert pending.returncode == 0, (
        f"models changed without a migration:\n{pending.stdout}{pending.stderr}"
    )

    migrate = _manage("migrate", "--no-input", database_url=fresh_database, variant=variant)
    assert migrate.returncode == 0, migrate.stderr

    with psycopg.connect(fresh_database) as conn:
        indexes = {
            row[0]: row[1] for row in conn.execute("SELECT indexname, indexdef FROM pg_indexes")
        }
        status_indexed = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders_order' AND indexdef LIKE '%(status%'"
        ).fetchone()
    # the planted index problems are in the schema the migrations build
    assert indexes["catalog_book_isbn_idx"].endswith("USING btree (isbn)")  # P7 …
    assert indexes["catalog_book_isbn_key"].endswith(
        "USING btree (isbn)"
    )  # … same as the constraint's
    assert indexes["orders_order_customer_idx"].endswith("USING btree (customer_id)")  # P7
    assert status_indexed == (0,)  # P5: nothing on status
    upper = [name for name, d in indexes.items() if "upper" in d.lower()]
    if variant == "baseline":
        assert "catalog_book_pages_idx" in indexes  # P6
        assert upper == []  # P4: no expression index
    else:  # the revisit release dropped P6's index and added P4's
        assert "catalog_book_pages_idx" not in indexes
        assert upper == ["orders_cust_email_u_c2ad1c_idx"]
        assert "upper((email)::text)" in indexes["orders_cust_email_u_c2ad1c_idx"]


# -- (b) the committed sample -------------------------------------------------------------------


@SAMPLES
def test_sample_has_every_file_and_stays_small(folder: Path) -> None:
    expected = _make_sample_module().EXPECTED_FILES
    missing = [f for f in expected if not any(p.is_file() for p in folder.glob(f))]
    assert not missing, f"{folder.name} lacks {missing}: run python scripts/make_sample.py"
    explains = sorted(p.name for p in (folder / "postgres" / "explain").glob("*.json"))
    assert explains == [
        "bestsellers_30d.json",
        "customer_email_iexact.json",
        "dashboard_status_totals.json",
        "order_queue_pending.json",
    ]
    for name in explains:
        assert (folder / "postgres" / "explain" / name).with_suffix(".txt").is_file()
    # one capture file per stream and gunicorn worker; a view the collector wrote is not
    # shipped a second time by hand
    assert len(list(folder.glob("capture/queries-*.jsonl.gz"))) == 2
    assert len(list(folder.glob("capture/cache-*.jsonl.gz"))) == 2
    assert (
        not list(folder.glob("postgres/*_before.csv"))
        and not (folder / "redis/info_after.txt").exists()
    )
    assert len(list(folder.glob("redis/info-*.txt"))) == 8  # before, one per step, after
    assert len(list(folder.glob("postgres/snapshots/pg_stat_database-*.csv"))) == 1
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 3.5 * 1024 * 1024


@SAMPLES
def test_sample_mentions_no_local_path_or_host(folder: Path) -> None:
    import socket

    needles = [str(ROOT), str(Path.home()) + "/", sys.prefix]
    host = socket.gethostname()
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")
        for needle in needles:
            assert needle not in text, f"{path.relative_to(folder)} mentions {needle}"
        assert "auditkit-pg-" not in text and "auditkit-sample-" not in text, path
        if path.parent.name == "capture":
            assert f"-{host}-" not in path.name and f'"host":"{host}"' not in text.replace(" ", "")


@SAMPLES
def test_audit_yaml_states_the_deployment(folder: Path) -> None:
    config = yaml.safe_load((folder / "audit.yaml").read_text(encoding="utf-8"))
    assert config["client"] == "Sample Bookshop"
    deployment = config["deployment"]
    assert deployment["web_workers"] == 2 and deployment["threads_per_worker"] == 4
    assert deployment["max_connections"] == 100
    release = "revisit" if folder == REVISIT else "baseline"
    assert f"Release of the shop: {release} " in (folder / "audit.yaml").read_text(encoding="utf-8")


def _capture(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The capture app's statements and requests of a sample folder."""
    events, requests = [], []
    for path in sorted(folder.glob("capture/queries-*.jsonl.gz")):
        result = get_loader("jsonl_queries").load(path)
        assert result.report.skipped_total == 0, result.report.skipped
        events.append(result.frames["query_events"])
        requests.append(result.frames["requests"])
    return pd.concat(events, ignore_index=True), pd.concat(requests, ignore_index=True)


def _cache_ops(folder: Path) -> list[dict[str, object]]:
    """Every cache operation the capture app recorded (meta records left out)."""
    ops = []
    for path in sorted(folder.glob("capture/cache-*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
            record = json.loads(line)
            if record.get("type") not in ("meta",):
                ops.append(record)
    return ops


@SAMPLES
def test_query_logs_load_with_request_ids_tied_to_the_access_log(folder: Path) -> None:
    result = get_loader("django_log").load(folder / "django" / "queries.log.gz")
    events = result.frame
    assert result.report.skipped_total == 0
    assert len(events) > 5000
    assert events["request_id"].notna().all()
    assert events["pid"].nunique() >= 2  # two gunicorn workers
    assert events["ts"].notna().all() and events["duration_ms"].notna().all()

    access = get_loader("access_log").load(folder / "access.log").frame
    assert set(events["request_id"]) <= set(access["request_id"])
    by_request = events.groupby("request_id").size()
    endpoint = access.set_index("request_id")["endpoint"]

    # the capture app saw the same requests and statements under the same ids
    captured, requests = _capture(folder)
    assert set(requests["request_id"]) == set(access["request_id"])
    assert len(captured) == len(events)
    assert captured.groupby("request_id").size().sort_index().equals(by_request.sort_index())

    # P1: 40 author look-ups behind one book list (fixed in the revisit: none)
    authors = events[
        events["sql"].str.contains(
            'FROM "catalog_author" WHERE "catalog_author"."id" =', regex=False
        )
    ]
    if folder == SAMPLE:
        assert authors.groupby("request_id").size().max() == 40
    else:
        assert len(authors) == 0
        books = [rid for rid, ep in endpoint.items() if ep == "/books/"]
        assert books and set(by_request.reindex(books).fillna(0)) == {1}
    # C1: the catalogue in 3 statements, always
    catalogue = [rid for rid, ep in endpoint.items() if ep == "/books/catalogue/"]
    assert catalogue and set(by_request.reindex(catalogue).fillna(0)) == {3}


@SAMPLES
def test_p9_the_confirmation_waits_on_smtp(folder: Path) -> None:
    """The capture app timed the e-mail of every confirmation: most of the request, far more
    than its statements; no other endpoint sends mail."""
    _, requests = _capture(folder)
    confirm = requests[requests["endpoint"] == "/orders/<int:pk>/confirm/"]
    assert len(confirm) > 20
    assert (confirm["mail_ms"] >= 250).all()  # the relay's greeting + data delays: 0.3 s
    # waiting, not computing, and not the database: e-mail is most of each request
    assert confirm["mail_ms"].median() > 10 * confirm["db_ms"].median()
    assert confirm["mail_ms"].sum() > 5 * confirm["db_ms"].sum()
    assert (confirm["mail_ms"] / confirm["duration_ms"]).median() > 0.7
    assert (confirm["cpu_ms"] / confirm["duration_ms"]).median() < 0.2
    others = requests[requests["endpoint"] != "/orders/<int:pk>/confirm/"]
    assert others["mail_ms"].fillna(0).eq(0).all()


@SAMPLES
def test_p11_rating_keys_per_visitor_rarely_reread_c2_dashboard_hits(folder: Path) -> None:
    ops = _cache_ops(folder)
    rating = [o for o in ops if ":rating:" in str(o.get("key")) and o.get("op") == "get"]
    assert len(rating) > 200
    keys = {str(o["key"]) for o in rating}
    assert len(keys) > 0.8 * len(rating)  # many keys, each read about once
    hits = sum(1 for o in rating if o.get("hit"))
    assert hits / len(rating) < 0.15
    dashboard = [
        o for o in ops if str(o.get("key", "")).endswith("dashboard:v1") and o.get("op") == "get"
    ]
    assert len(dashboard) > 50
    assert sum(1 for o in dashboard if o.get("hit")) / len(dashboard) > 0.8


def _csv_rows(name: str, folder: Path = SAMPLE) -> list[dict[str, str]]:
    with open(folder / "postgres" / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@SAMPLES
def test_planted_index_problems_show_in_the_statistics(folder: Path) -> None:
    indexes = _csv_rows("pg_stat_user_indexes.csv", folder)
    scans = {r["indexrelname"]: int(r["idx_scan"]) for r in indexes}
    assert scans["orders_order_customer_idx"] == 0  # P7: the duplicate …
    fk_index = next(n for n in scans if n.startswith("orders_order_customer_id_"))
    assert scans[fk_index] > 0  # … while the foreign key's own index does the work
    tables = {r["relname"]: r for r in _csv_rows("pg_stat_user_tables.csv", folder)}
    assert int(tables["orders_order"]["seq_scan"]) > 100  # P5, P8
    if folder == SAMPLE:
        assert scans["catalog_book_pages_idx"] == 0  # P6 unused
        assert int(tables["orders_customer"]["seq_scan"]) > 100  # P4: e-mail look-ups scan
    else:  # fixed: no index on pages, and the look-ups use the expression index
        assert "catalog_book_pages_idx" not in scans
        assert scans["orders_cust_email_u_c2ad1c_idx"] > 100
        assert int(tables["orders_customer"]["seq_scan"]) < 10
    statements = _csv_rows("pg_stat_statements.csv", folder)
    assert {"datname", "rolname", "queryid", "calls", "total_exec_time"} <= set(statements[0])
    assert any('UPPER("orders_customer"."email"::text)' in r["query"] for r in statements)
    # the collector's snapshot before the load: same views, smaller counters
    before = next((folder / "postgres" / "snapshots").glob("pg_stat_user_tables-*.csv"))
    with open(before, newline="", encoding="utf-8") as fh:
        early = {r["relname"]: int(r["seq_scan"]) for r in csv.DictReader(fh)}
    assert early["orders_order"] < int(tables["orders_order"]["seq_scan"])


# -- (c) the audit's migrations apply to the app -------------------------------------------------


def _edit_models(app: Path, findings: list) -> None:  # type: ignore[type-arg]
    """Change the models as the findings say: Meta.indexes entries added and removed."""
    import re

    for f in findings:
        m = f.metrics
        app_dir = app / str(m["app_label"])
        models_py = app_dir / "models.py"
        text = models_py.read_text(encoding="utf-8")
        lines = (f.recommendation.django or "").splitlines()
        if f.check == "missing_index":
            imports = [ln for ln in lines if ln.startswith("from ")]
            entry = next(ln for ln in lines if ln.strip().startswith("models.Index"))
            for imp in imports:
                if imp not in text:  # after `from __future__`, before the other imports
                    first = re.search(r"^(?!from __future__)(?:from|import) ", text, re.M)
                    at = first.start() if first else 0
                    text = text[:at] + imp + "\n" + text[at:]
            cls = re.search(rf"^class {m['model']}\(models\.Model\):\n", text, re.M)
            assert cls, m["model"]
            body_end = re.search(r"^class |\Z", text[cls.end() :], re.M)
            block = text[cls.end() : cls.end() + (body_end.start() if body_end else 0)]
            if "    class Meta:\n" in block and "indexes = (" in block:
                new = block.replace("indexes = (\n", f"indexes = (\n            {entry},\n", 1)
            elif "    class Meta:\n" in block:
                new = block.replace(
                    "    class Meta:\n", f"    class Meta:\n        indexes = [{entry}]\n", 1
                )
            else:
                new = block.replace(
                    "\n    def ", f"\n    class Meta:\n        indexes = [{entry}]\n\n    def ", 1
                )
            text = text[: cls.end()] + new + text[cls.end() + len(block) :]
        else:  # a declared index to drop: its Meta.indexes line (and the comment above it) goes
            name = str(f.subject.index)
            text = re.sub(
                rf"\n[ ]*#[^\n]*\n([ ]*models\.Index\([^\n]*name=\"{name}\"\),\n)", "\n", text
            )
            text = re.sub(rf"\n[ ]*models\.Index\([^\n]*name=\"{name}\"\),", "", text)
        models_py.write_text(text, encoding="utf-8")


@pytest.mark.postgres
def test_the_audits_migrations_apply_and_leave_nothing_to_generate(
    fresh_database: str, tmp_path: Path
) -> None:
    """Every index change the audit of the sample recommends, as the one migration per app it
    writes: with the models changed as the findings say, the migrations apply to a fresh
    database and ``makemigrations --check`` finds nothing left to do."""
    import shutil

    import auditkit

    result = auditkit.audit(auditkit.load_client(SAMPLE))
    app = tmp_path / "sample_app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    files = result.migrations
    assert {m.app_label for m in files} == {"catalog", "orders"}
    for m in files:
        assert m.path is not None
        (app / m.path).write_text(m.text, encoding="utf-8")
    changed = [
        f
        for f in result.findings
        if f.check in ("missing_index", "unused_index", "duplicate_index")
        and f.recommendation is not None
        and f.recommendation.migration
        and not f.metrics.get("django_table")
    ]
    _edit_models(app, changed)

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKSHOP_", "DJANGO_"))}
        env.update(
            {"BOOKSHOP_DATABASE_URL": fresh_database, "DJANGO_SETTINGS_MODULE": "bookshop.settings"}
        )
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    migrate = manage("migrate", "--no-input")
    assert migrate.returncode == 0, migrate.stderr
    pending = manage("makemigrations", "--check", "--dry-run")
    assert pending.returncode == 0, pending.stdout + pending.stderr
    with psycopg.connect(fresh_database) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
    for f in changed:
        if f.check == "missing_index":
            assert f.subject.index in names
        else:
            assert f.subject.index not in names


def _root_causes(folder: Path) -> dict[tuple[str, str | None], object]:
    """The findings above info of a sample's audit, keyed by check and subject."""
    import auditkit
    from auditkit.findings import Severity

    out: dict[tuple[str, str | None], object] = {}
    for f in auditkit.audit(auditkit.load_client(folder)).findings:
        if f.severity <= Severity.INFO:
            continue
        if f.check in ("low_cache_hit_ratio", "capacity_limit"):
            key: tuple[str, str | None] = (f.check, None)
        elif f.check == "missing_index":
            key = (f.check, f"{f.subject.table} {f.metrics.get('keys')}")
        else:
            key = (f.check, f.subject.endpoint or f.subject.index or f.subject.table)
        assert key not in out, key  # one finding per root cause
        out[key] = f
    return out


def test_the_revisit_compared_with_the_first_audit() -> None:
    """What a comparison of the two audits must report (PLANTED.md, "Revisit"): P1, P4 and P6
    resolved, R1 new with its fix in the shop's own models, everything else persisting."""
    first, again = _root_causes(SAMPLE), _root_causes(REVISIT)
    resolved = set(first) - set(again)
    new = set(again) - set(first)
    assert resolved == {
        ("n_plus_one", "/books/"),
        ("missing_index", "orders_customer UPPER(email)"),
        ("unused_index", "catalog_book_pages_idx"),
    }
    assert new == {("n_plus_one", "/orders/recent/")}
    recent = again[("n_plus_one", "/orders/recent/")]
    assert recent.recommendation.django == 'Order.objects.select_related("customer")'  # type: ignore[attr-defined]
    assert "Order.customer" in recent.title  # type: ignore[attr-defined]
    persisting = set(first) & set(again)
    assert {
        ("n_plus_one", "/books/reviews/"),
        ("n_plus_one", "/books/tags/<slug:slug>/"),
        ("missing_index", "orders_order status, created_at"),
        ("duplicate_index", "catalog_book_isbn_idx"),
        ("duplicate_index", "orders_order_customer_idx"),
        ("cache_candidate", "/stats/bestsellers/"),
        ("background_task_candidate", "/orders/<int:pk>/confirm/"),
        ("low_cache_hit_ratio", None),
        ("capacity_limit", None),
    } <= persisting


# -- (d) what the analysis must still learn from this sample ----------------------------------------


def test_each_request_counts_once() -> None:
    import auditkit
    from auditkit.analysis import Analysis

    analysis = Analysis.of(auditkit.load_client(SAMPLE))
    requests = analysis.requests
    assert requests["request_id"].is_unique
    books = analysis.endpoints.set_index("endpoint").loc["/books/"]
    assert books["statements_per_request"] == 41
