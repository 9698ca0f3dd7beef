"""A Django shop on MariaDB and memcached, audited from the files a consultant would be sent.

The test builds a small Django project (not the sample app) with three planted problems:

* an index nothing reads: ``Customer.nickname`` has ``db_index=True``, no view filters on it;
* a full-scan lookup: ``/customer?email=…`` filters on ``Customer.email``, which has no index;
* a per-user cache key family: ``/profile/<id>`` caches ``user:<id>:profile`` for a minute; the
  workload reads 20 profiles 5 times each, so the family's hit ratio is 80 %.

It runs the app on a private MariaDB (performance_schema on, slow log with
``log_slow_verbosity=query_plan,explain``) and a private memcached (``stats detail on``), then
collects what a client would export — the slow log, performance_schema, sys and
information_schema exports in several shapes of the real ``mysql`` client, SHOW GLOBAL STATUS
before and after, SHOW GLOBAL VARIABLES, memcached stats before and after, ``stats items``,
``stats detail dump`` and ``lru_crawler metadump``, the Django query log, and an EXPLAIN
FORMAT=JSON beside its ``.sql`` — and checks that the loaders read every file with exact counts
and that the frames show the three problems.

``python tests/test_mysql_django.py --save tests/fixtures/mysql_client`` writes the folder
(the committed fixture the audit can be run on).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import auditkit
from tests.conftest import REQUIRE_SERVICES

CUSTOMERS = 200
EMAIL_LOOKUPS = 50
PROFILE_USERS = 20
PROFILE_ROUNDS = 5

MODELS = """
from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=120)  # looked up, never indexed
    nickname = models.CharField(max_length=40, db_index=True)  # indexed, never looked up
    city = models.CharField(max_length=40)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total = models.IntegerField()
"""
VIEWS = """
from django.core.cache import cache
from django.http import JsonResponse
from django.urls import path

from shop.models import Customer, Order


def customer_by_email(request):
    c = Customer.objects.filter(email=request.GET["email"]).first()
    return JsonResponse({"id": c.pk if c else None})


def profile(request, pk):
    def build():
        c = Customer.objects.get(pk=pk)
        return {"id": c.pk, "city": c.city, "orders": Order.objects.filter(customer=c).count()}

    return JsonResponse(cache.get_or_set(f"user:{pk}:profile", build, 60))


urlpatterns = [path("customer", customer_by_email), path("profile/<int:pk>", profile)]
"""
CACHE_KEYS = """
def make_key(key, key_prefix, version):
    # the family first, so memcached's 'stats detail' counts per family
    return f"{key}:v{version}"
"""
SETTINGS = """
import pymysql

pymysql.install_as_MySQLdb()
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["shop"]
ROOT_URLCONF = "shop.views"
USE_TZ = True
DATABASES = {{"default": {{"ENGINE": "django.db.backends.mysql", "NAME": "shop", "USER": "root",
    "HOST": "127.0.0.1", "PORT": {port}}}}}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
    "LOCATION": "127.0.0.1:{mc_port}", "KEY_FUNCTION": "shop.cache_keys.make_key"}}}}
LOGGING = {{"version": 1, "disable_existing_loggers": False,
    "formatters": {{"f": {{"format": "[%(asctime)s] %(levelname)s %(name)s: %(message)s"}}}},
    "handlers": {{"file": {{"class": "logging.FileHandler", "filename": {log!r}, "formatter": "f"}}}},
    "loggers": {{"django.db.backends": {{"handlers": ["file"], "level": "DEBUG", "propagate": False}}}}}}
"""
WORKLOAD = f"""
import django, json
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
from shop.models import Customer, Order
settings.DEBUG = True  # django.db.backends logs only in debug
Customer.objects.bulk_create(
    [Customer(email=f"c{{i}}@example.org", nickname=f"n{{i}}", city=f"city{{i % 9}}") for i in range({CUSTOMERS})]
)
Order.objects.bulk_create([Order(customer_id=1 + i % {CUSTOMERS}, total=i) for i in range(400)])
client = Client()
for i in range({EMAIL_LOOKUPS}):
    assert client.get("/customer", {{"email": f"c{{i * 3}}@example.org"}}).status_code == 200
for _ in range({PROFILE_ROUNDS}):
    for pk in range(1, {PROFILE_USERS} + 1):
        assert client.get(f"/profile/{{pk}}").status_code == 200
"""

#: consultant-style exports: file name → (statement, mysql client options)
EXPORTS = {
    "performance_schema/index_usage.txt": (
        "SELECT * FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_SCHEMA = 'shop';",
        ("-t", "-vvv"),
    ),
    "performance_schema/table_io.tsv": (
        "SELECT * FROM performance_schema.table_io_waits_summary_by_table WHERE OBJECT_SCHEMA = 'shop';",
        ("-B",),
    ),
    "performance_schema/digests.txt": (
        "SELECT * FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = 'shop';",
        ("-E",),
    ),
    "sys/sys_reports.txt": (
        "SELECT * FROM sys.schema_unused_indexes WHERE object_schema = 'shop';"
        " SELECT * FROM sys.schema_redundant_indexes WHERE table_schema = 'shop';"
        " SELECT * FROM sys.statements_with_full_table_scans WHERE db = 'shop';",
        ("-t", "-vvv"),
    ),
    "information_schema/statistics.tsv": (
        "SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop';",
        ("-B",),
    ),
    "information_schema/tables.txt": (
        "SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop';",
        ("-t",),
    ),
    "information_schema/show_create_table.txt": (
        "SHOW CREATE TABLE shop.shop_customer; SHOW CREATE TABLE shop.shop_order;",
        ("-E", "-vvv"),
    ),
    "status/variables.tsv": (
        # path-valued variables are left out: the fixture is committed
        "SHOW GLOBAL VARIABLES WHERE Variable_name NOT REGEXP 'dir|file|socket|path|pid|log_error';",
        ("-B",),
    ),
}
STATUS = "SHOW GLOBAL STATUS;"


def _need(reason: str | None) -> None:
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)


def collect(folder: Path) -> dict[str, Any]:
    """Run the shop on private servers and write the consultant's folder; return the facts."""
    from devtools.mariadb import ThrowawayMariaDB
    from devtools.mariadb import available as mariadb_available
    from devtools.memcached import ThrowawayMemcached
    from devtools.memcached import available as memcached_available

    _need(mariadb_available() or memcached_available())
    pytest.importorskip("pymemcache")
    pytest.importorskip("pymysql")
    facts: dict[str, Any] = {}
    app = folder.parent / f"{folder.name}-app"
    (app / "shop").mkdir(parents=True)
    (app / "shop" / "__init__.py").write_text("")
    (app / "shop" / "models.py").write_text(MODELS)
    (app / "shop" / "views.py").write_text(VIEWS)
    (app / "shop" / "cache_keys.py").write_text(CACHE_KEYS)
    for sub in ("django", "slow", "performance_schema", "sys", "information_schema", "status", "memcached", "explain"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    with ThrowawayMariaDB({"character-set-server": "utf8mb4"}) as db, ThrowawayMemcached() as mc:
        (app / "shop" / "settings.py").write_text(
            SETTINGS.format(port=db.port, mc_port=mc.port, log=str(folder / "django" / "django.log"))
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "PYTHONPATH": str(app)}

        def django(code: str) -> None:
            subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=app, timeout=300)

        db.run("CREATE DATABASE shop;")
        django("import django; django.setup(); from django.core.management import call_command; "
               "call_command('makemigrations', 'shop', verbosity=0); call_command('migrate', verbosity=0)")
        (folder / "django" / "django.log").write_text("")  # the migration's statements are not the workload
        db.run(
            "TRUNCATE performance_schema.events_statements_summary_by_digest;"
            " TRUNCATE performance_schema.table_io_waits_summary_by_index_usage;"
            " TRUNCATE performance_schema.table_io_waits_summary_by_table;"
            " SET GLOBAL long_query_time = 0; SET GLOBAL log_slow_verbosity = 'query_plan,explain';"
            " SET GLOBAL slow_query_log = 1;"
        )
        mc.command("stats detail on")
        (folder / "status" / "status_before.txt").write_text(
            "-- 2030-01-01T10:00:00Z\n" + db.run(STATUS, "-t", "-vvv")
        )
        (folder / "memcached" / "stats_series.txt").write_text("2030-01-01T10:00:00Z\n" + mc.command("stats"))
        django(WORKLOAD)
        db.run("SET GLOBAL slow_query_log = 0;")
        (folder / "status" / "status_after.txt").write_text(
            "-- 2030-01-01T10:05:00Z\n" + db.run(STATUS, "-t", "-vvv")
        )
        with open(folder / "memcached" / "stats_series.txt", "a") as fh:
            fh.write("2030-01-01T10:05:00Z\n" + mc.command("stats"))
        for name, (sql, opts) in EXPORTS.items():
            (folder / name).write_text(db.run(sql, *opts))
        facts["digests"] = int(  # the exports ran without a default database: not counted here
            db.run(
                "SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest"
                " WHERE SCHEMA_NAME = 'shop';",
                "-N",
                "-B",
            )
        )
        (folder / "memcached" / "stats_items.txt").write_text(mc.command("stats items"))
        (folder / "memcached" / "stats_detail_dump.txt").write_text(mc.command("stats detail dump"))
        (folder / "memcached" / "metadump.txt").write_text(
            "2030-01-01T10:05:00Z\n" + mc.command("lru_crawler metadump all")
        )
        lookup = "SELECT `shop_customer`.`id`, `shop_customer`.`email`, `shop_customer`.`nickname`, `shop_customer`.`city` FROM `shop_customer` WHERE `shop_customer`.`email` = 'c3@example.org' ORDER BY `shop_customer`.`id` ASC LIMIT 1"
        (folder / "explain" / "customer_by_email.sql").write_text(lookup + ";\n")
        (folder / "explain" / "customer_by_email.json").write_text(
            db.run(f"EXPLAIN FORMAT=JSON {lookup};", "-N", "-B", "-r", database="shop")
        )
        (folder / "explain" / "customer_by_email.analyze.json").write_text(
            db.run(f"ANALYZE FORMAT=JSON {lookup};", "-N", "-B", "-r", database="shop")
        )
        shutil.copy(db.slow_log, folder / "slow" / "mariadb-slow.log")
        facts["status_rows"] = int(db.run("SELECT COUNT(*) FROM information_schema.GLOBAL_STATUS;", "-N", "-B"))
    shutil.rmtree(app)
    (folder / "README.md").write_text(README)
    return facts


README = """# A Django shop on MariaDB 10.11 and memcached 1.6: what its consultant was sent

Written by `tests/test_mysql_django.py` (run `python tests/test_mysql_django.py --save
tests/fixtures/mysql_client`): a small Django 5 shop run against a private MariaDB 10.11
(performance_schema on) and memcached (`stats detail on`) by the Django test client, and every
file below exported by the real servers and the real `mysql` client. Nothing is hand-written.

Planted: `shop_customer.nickname` has an index nothing reads; `/customer?email=` looks customers up
by an unindexed `email` (a full scan of 200 rows per request, 50 requests); `/profile/<id>` caches
`user:<id>:profile` for a minute (20 users × 5 reads: 20 misses; Django's `get_or_set` reads
once more after each add, so memcached counts 120 gets, 100 hits).

| folder | what | how |
|---|---|---|
| `django/` | Django's query log (`django.db.backends` at DEBUG) | logging FileHandler |
| `slow/` | the slow log, `long_query_time=0`, `log_slow_verbosity=query_plan,explain` | server |
| `performance_schema/` | index usage (`-t -vvv`), table I/O (`-B`), digests (`-E`) | mysql client |
| `sys/` | unused and redundant indexes, statements with full scans, one file | `mysql -t -vvv` |
| `information_schema/` | STATISTICS (`-B`), TABLES (`-t`), SHOW CREATE TABLE (`-E -vvv`) | mysql client |
| `status/` | SHOW GLOBAL STATUS before and after (a `--` time stamp line each), VARIABLES | mysql client |
| `memcached/` | `stats` before/after, `stats items`, `stats detail dump`, `lru_crawler metadump all` | text protocol |
| `explain/` | EXPLAIN FORMAT=JSON and ANALYZE FORMAT=JSON of the lookup, beside its `.sql` | mysql client |
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("shop") / "client"
    folder.mkdir()
    return folder, collect(folder)


def test_every_file_loads_with_exact_counts(shop: tuple[Path, dict[str, Any]]) -> None:
    folder, facts = shop
    client = auditkit.load_client(folder)
    inv = client.inventory().set_index("file")
    data = inv[inv["status"] != "documentation"]
    not_loaded = data[(data["status"] != "loaded") & ~data.index.str.endswith(".sql")]
    assert not_loaded.empty, not_loaded[["status", "note"]].to_string()
    formats = data["format"].to_dict()
    assert formats["slow/mariadb-slow.log"] == "mysql_slow"
    assert formats["django/django.log"] == "django_log"
    assert formats["memcached/stats_detail_dump.txt"] == "memcached_detail"
    assert formats["memcached/metadump.txt"] == "memcached_metadump"
    assert formats["explain/customer_by_email.json"] == "explain_mysql_json"
    slow = (folder / "slow" / "mariadb-slow.log").read_text()
    assert inv.loc["slow/mariadb-slow.log", "parsed"] == slow.count("# Query_time:")
    assert inv.loc["performance_schema/digests.txt", "parsed"] == facts["digests"]
    assert inv.loc["status/status_after.txt", "parsed"] == facts["status_rows"]
    detail = (folder / "memcached" / "stats_detail_dump.txt").read_text()
    assert len(client.results["memcached/stats_detail_dump.txt"].frame) == detail.count("PREFIX ")
    for name, result in client.results.items():
        assert result.report.read == result.report.parsed + result.report.skipped_total, name


def test_the_frames_show_the_three_problems(shop: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = shop
    client = auditkit.load_client(folder)
    # 1. the unused index: zero reads since the statistics were truncated, and sys lists it
    ix = client.frame("schema_indexes")
    nick = ix[ix["index"].str.contains("nickname", na=False)]
    usage = nick.dropna(subset=["index_reads"])
    assert len(usage) and (usage["index_reads"] == 0).all()
    assert (nick["sys_view"] == "schema_unused_indexes").any()
    # 2. the full-scan lookup: every execution read the whole table to send one row
    stats = client.results["performance_schema/digests.txt"].frame
    lookup = stats[stats["fingerprint"].str.contains("`email` = ?", regex=False)].iloc[0]
    assert lookup["calls"] == EMAIL_LOOKUPS and lookup["no_index_used"] == EMAIL_LOOKUPS
    # the scan in primary-key order stops at the match (LIMIT 1): customer c{3i} costs 3i + 1 rows
    examined = [3 * i + 1 for i in range(EMAIL_LOOKUPS)]
    assert lookup["rows_examined"] == sum(examined) and lookup["rows"] == EMAIL_LOOKUPS
    events = client.query_events("profile")
    slow_lookups = events[events["fingerprint_id"] == lookup["fingerprint_id"]]
    assert len(slow_lookups) == EMAIL_LOOKUPS  # the slow log's statements join the digest
    assert slow_lookups["full_scan"].all()
    assert sorted(slow_lookups["rows_examined"]) == examined
    plans = client.frame("plan_nodes")
    assert (plans["fingerprint_id"] == lookup["fingerprint_id"]).all()  # joined by the .sql beside
    scans = plans[plans["relation"] == "shop_customer"]
    assert set(scans["node_type"]) == {"index"}  # a full scan of the primary key, in id order
    # 3. the per-user key family: memcached's own counts
    fam = client.results["memcached/stats_detail_dump.txt"].frame.set_index("key_prefix")
    # Django's get_or_set reads again after adding a missing key: one more get (a hit) per miss
    assert fam.loc["user", "gets"] == PROFILE_USERS * PROFILE_ROUNDS + PROFILE_USERS
    assert fam.loc["user", "misses"] == PROFILE_USERS and fam.loc["user", "sets"] == PROFILE_USERS
    assert fam.loc["user", "hit_ratio"] == pytest.approx(100 / 120)
    keys = client.frame("cache_keys")
    assert set(keys["key_prefix"]) == {"user:{n}:profile:v{n}"} and len(keys) == PROFILE_USERS
    # the server's counters over the 5 minutes between the two status snapshots
    from auditkit.loaders.mysql_stats import status_delta

    rates, notes = status_delta(client.frame("server_status"))
    r = rates.set_index("name")
    assert notes == [] and r.loc["Com_select", "interval_s"] == 300.0
    assert r.loc["Com_select", "delta"] >= EMAIL_LOOKUPS + PROFILE_USERS * 2
    assert r.loc["Select_scan", "delta"] >= EMAIL_LOOKUPS


if __name__ == "__main__":  # python tests/test_mysql_django.py --save tests/fixtures/mysql_client
    if len(sys.argv) != 3 or sys.argv[1] != "--save":
        raise SystemExit(__doc__)
    target = Path(sys.argv[2])
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    print(json.dumps(collect(target)))
    for p in sorted(target.rglob("*")):
        if p.is_file():
            text = p.read_text(errors="replace")
            assert not re.search(r"/(?:tmp|work|root)/", text), f"a local path in {p}"
