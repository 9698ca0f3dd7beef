"""The Sample Bookshop (``sample_app/``) and the sample client it produced (``data/sample/``).

(a) The app passes Django's system checks, its committed migrations match its models, and they
apply to a fresh PostgreSQL database (created and dropped on the local server).
(b) ``data/sample`` holds every file ``scripts/make_sample.py`` writes, the query log loads with
request ids that tie it to the access log, the planted problems are visible in it, and no file
mentions a path of the machine that generated it.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from auditkit.loaders.registry import get_loader

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_app"
SAMPLE = ROOT / "data" / "sample"


def _make_sample_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "scripts" / "make_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _manage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKSHOP_", "DJANGO_"))}
    env.update(
        {"BOOKSHOP_DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "bookshop.settings"}
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
def test_checks_and_migrations_on_a_fresh_database(fresh_database: str) -> None:
    check = _manage("check", "--fail-level", "WARNING", database_url=fresh_database)
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout

    pending = _manage("makemigrations", "--check", "--dry-run", database_url=fresh_database)
    assert pending.returncode == 0, (
        f"models changed without a migration:\n{pending.stdout}{pending.stderr}"
    )

    migrate = _manage("migrate", "--no-input", database_url=fresh_database)
    assert migrate.returncode == 0, migrate.stderr

    with psycopg.connect(fresh_database) as conn:
        indexes = {
            row[0]: row[1] for row in conn.execute("SELECT indexname, indexdef FROM pg_indexes")
        }
        status_indexed = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders_order' AND indexdef LIKE '%(status%'"
        ).fetchone()
    # the planted index problems are in the schema the migrations build
    assert "catalog_book_pages_idx" in indexes  # P6
    assert indexes["catalog_book_isbn_idx"].endswith("USING btree (isbn)")  # P7 …
    assert indexes["catalog_book_isbn_key"].endswith(
        "USING btree (isbn)"
    )  # … same as the constraint's
    assert indexes["orders_order_customer_idx"].endswith("USING btree (customer_id)")  # P7
    assert status_indexed == (0,)  # P5: nothing on status
    assert not any("upper" in d.lower() for d in indexes.values())  # P4: no expression index


# -- (b) the committed sample -------------------------------------------------------------------


def test_sample_has_every_file_and_stays_small() -> None:
    expected = _make_sample_module().EXPECTED_FILES
    missing = [f for f in expected if not (SAMPLE / f).is_file()]
    assert not missing, f"data/sample lacks {missing}: run python scripts/make_sample.py"
    explains = sorted(p.name for p in (SAMPLE / "postgres" / "explain").glob("*.json"))
    assert explains == [
        "bestsellers_30d.json",
        "customer_email_iexact.json",
        "dashboard_status_totals.json",
        "order_queue_pending.json",
    ]
    for name in explains:
        assert (SAMPLE / "postgres" / "explain" / name).with_suffix(".txt").is_file()
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024


def test_sample_mentions_no_local_path() -> None:
    needles = [str(ROOT), str(Path.home()) + "/", sys.prefix]
    for path in sorted(SAMPLE.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")
        for needle in needles:
            assert needle not in text, f"{path.relative_to(SAMPLE)} mentions {needle}"
        assert "auditkit-pg-" not in text and "auditkit-sample-" not in text, path


def test_audit_yaml_states_the_deployment() -> None:
    config = yaml.safe_load((SAMPLE / "audit.yaml").read_text(encoding="utf-8"))
    assert config["client"] == "Sample Bookshop"
    deployment = config["deployment"]
    assert deployment["web_workers"] >= 1 and deployment["threads_per_worker"] >= 1
    assert deployment["max_connections"] == 100


def test_query_log_loads_with_request_ids_tied_to_the_access_log() -> None:
    result = get_loader("django_log").load(SAMPLE / "django" / "queries.log.gz")
    events = result.frame
    assert result.report.skipped_total == 0
    assert len(events) > 5000
    assert events["request_id"].notna().all()
    assert events["pid"].nunique() >= 2  # two gunicorn workers
    assert events["ts"].notna().all() and events["duration_ms"].notna().all()

    access = get_loader("access_log").load(SAMPLE / "access.log").frame
    assert set(events["request_id"]) <= set(access["request_id"])
    by_request = events.groupby("request_id").size()
    endpoint = access.set_index("request_id")["endpoint"]

    # P1: 40 author look-ups behind one book list; C1: the catalogue in 3 statements, always
    authors = events[
        events["sql"].str.contains(
            'FROM "catalog_author" WHERE "catalog_author"."id" =', regex=False
        )
    ]
    assert authors.groupby("request_id").size().max() == 40
    catalogue = [rid for rid, ep in endpoint.items() if ep == "/books/catalogue/"]
    assert catalogue and set(by_request.reindex(catalogue).fillna(0)) == {3}


def _csv_rows(name: str) -> list[dict[str, str]]:
    with open(SAMPLE / "postgres" / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_planted_index_problems_show_in_the_statistics() -> None:
    scans = {r["indexrelname"]: int(r["idx_scan"]) for r in _csv_rows("pg_stat_user_indexes.csv")}
    assert scans["catalog_book_pages_idx"] == 0  # P6 unused
    assert scans["orders_order_customer_idx"] == 0  # P7: the duplicate …
    fk_index = next(n for n in scans if n.startswith("orders_order_customer_id_"))
    assert scans[fk_index] > 0  # … while the foreign key's own index does the work
    tables = {r["relname"]: r for r in _csv_rows("pg_stat_user_tables.csv")}
    assert int(tables["orders_customer"]["seq_scan"]) > 100  # P4: e-mail look-ups scan
    assert int(tables["orders_order"]["seq_scan"]) > 100  # P5, P8
    statements = _csv_rows("pg_stat_statements.csv")
    assert {"datname", "rolname", "queryid", "calls", "total_exec_time"} <= set(statements[0])
    assert any('UPPER("orders_customer"."email"::text)' in r["query"] for r in statements)


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
            body_end = re.search(r"^class |\Z", text[cls.end():], re.M)
            block = text[cls.end(): cls.end() + (body_end.start() if body_end else 0)]
            if "    class Meta:\n" in block and "indexes = (" in block:
                new = block.replace("indexes = (\n", f"indexes = (\n            {entry},\n", 1)
            elif "    class Meta:\n" in block:
                new = block.replace("    class Meta:\n", f"    class Meta:\n        indexes = [{entry}]\n", 1)
            else:
                new = block.replace("\n    def ", f"\n    class Meta:\n        indexes = [{entry}]\n\n    def ", 1)
            text = text[: cls.end()] + new + text[cls.end() + len(block):]
        else:  # a declared index to drop: its Meta.indexes line (and the comment above it) goes
            name = str(f.subject.index)
            text = re.sub(rf"\n[ ]*#[^\n]*\n([ ]*models\.Index\([^\n]*name=\"{name}\"\),\n)", "\n", text)
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
        env.update({"BOOKSHOP_DATABASE_URL": fresh_database, "DJANGO_SETTINGS_MODULE": "bookshop.settings"})
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=app, env=env, capture_output=True, text=True, timeout=300
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
