"""The audit of a Django app on MariaDB: the index advisor and server health from MySQL's own
statistics, end to end.

A small lending-library app (not the sample app, not the shop of ``test_mysql_django``) runs on
a private MariaDB (``devtools/mariadb.py``) and memcached (``devtools/memcached.py``) with these
planted problems:

* an index nothing reads: ``Member.legacy_code`` has ``db_index=True``, no view filters on it;
* a full-scan lookup: ``/member?card=…`` filters on ``Member.card_number``, which has no index;
  another, ``/address?address=…``, on the TEXT column ``Member.address`` (an index needs a
  key prefix there);
* a foreign-key index nothing reads (``Member.branch``): InnoDB needs it, so it must *not* be
  proposed for dropping;
* a redundant index: ``Loan.Meta.indexes`` declares ``(title)`` and ``(title, member)``;
* server health: ``thread_cache_size = 0`` (every connection creates a thread), GROUP BY on a
  TEXT column (its temporary tables go to disk), a sort larger than a 32 kB sort buffer (merge
  passes);
* a per-user cache key family ``member:<id>:card`` on memcached.

The consultant's folder is collected the way one would: the ``mysql`` client (``-B``, ``-t``,
``-E``) over performance_schema, sys and information_schema, SHOW GLOBAL STATUS before and after,
SHOW GLOBAL VARIABLES, digests before and after, the slow log, an EXPLAIN beside its ``.sql``,
the model dump (``manage.py auditkit_dump_models``), memcached ``stats`` and ``stats detail
dump``, and the capture app's files (cache operations and requests; the statements come from
the server). The audit must find the problems with MySQL DDL and Django migrations naming only this
app's models and fields.

The committed fixture of ``test_mysql_django`` (``tests/fixtures/mysql_client``) is audited too,
without services.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import auditkit
from auditkit.analysis import Analysis
from auditkit.checks.mysql_server import mysql_server_health
from auditkit.config import AuditConfig
from auditkit.findings import Finding
from tests.conftest import REQUIRE_SERVICES

FIXTURE = Path(__file__).parent / "fixtures" / "mysql_client"

MEMBERS = 3000
LOOKUPS = 40
ADDRESS_LOOKUPS = 20
JOINS = 3
REPORTS = 15
CARD_USERS = 10
CARD_ROUNDS = 4

MODELS = """
from django.db import models


class Branch(models.Model):
    name = models.CharField(max_length=80)


class Member(models.Model):
    card_number = models.CharField(max_length=20)  # looked up at the desk, never indexed
    legacy_code = models.CharField(max_length=30, db_index=True)  # indexed, never read
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT)  # its index is never read
    notes = models.TextField()
    address = models.TextField()  # looked up whole, never indexed: a TEXT key needs a prefix


class Loan(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)

    class Meta:
        indexes = [  # the first is a leading prefix of the second: redundant
            models.Index(fields=["title"], name="loan_title_idx"),
            models.Index(fields=["title", "member"], name="loan_title_member_idx"),
        ]
"""
VIEWS = """
from django.core.cache import cache
from django.db.models import Count
from django.http import JsonResponse
from django.urls import path

from library.models import Loan, Member


def member_by_card(request):
    m = Member.objects.filter(card_number=request.GET["card"]).first()
    return JsonResponse({"id": m.pk if m else None})


def by_address(request):
    return JsonResponse({"n": Member.objects.filter(address=request.GET["address"]).count()})


def branch_match(request):
    # members whose card number is a branch's name: a join on two unindexed columns
    rows = Member.objects.raw(
        "SELECT m.id FROM library_member m JOIN library_branch b ON b.name = m.card_number"
    )
    return JsonResponse({"n": len(list(rows))})


def notes_report(request):
    groups = Member.objects.values("notes").annotate(n=Count("id"))
    ordered = list(Member.objects.order_by("notes").values_list("id", flat=True))
    return JsonResponse({"groups": len(list(groups)), "members": len(ordered)})


def card(request, pk):
    def build():
        return {"loans": Loan.objects.filter(member_id=pk).count()}

    return JsonResponse(cache.get_or_set(f"member:{pk}:card", build, 60))


urlpatterns = [
    path("member", member_by_card),
    path("address", by_address),
    path("branch-match", branch_match),
    path("notes", notes_report),
    path("member/<int:pk>/card", card),
]
"""
CACHE_KEYS = """
def make_key(key, key_prefix, version):
    return f"{key}:v{version}"
"""
SETTINGS = """
import pymysql

pymysql.install_as_MySQLdb()
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["library", "auditkit.django"]
ROOT_URLCONF = "library.views"
USE_TZ = True
DATABASES = {{"default": {{"ENGINE": "django.db.backends.mysql", "NAME": "library", "USER": "root",
    "HOST": "127.0.0.1", "PORT": {port}}}}}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
    "LOCATION": "127.0.0.1:{mc_port}", "KEY_FUNCTION": "library.cache_keys.make_key"}}}}
# the capture app for the cache operations and the requests' views only: the statements come
# from the server's own slow log and digests
MIDDLEWARE = ["auditkit.django.middleware.CaptureMiddleware"]
AUDITKIT_CAPTURE = {{"dir": {capture!r}, "statements": False, "dump_models": False}}
"""
SEED = f"""
import django
django.setup()
from library.models import Branch, Loan, Member
Branch.objects.bulk_create([Branch(name=f"branch {{i}}") for i in range(5)])
Member.objects.bulk_create(
    [Member(card_number=f"C{{i:06d}}", legacy_code=f"L{{i}}", branch_id=1 + i % 5,
            notes=("note " * 60) + str(i % 50), address=f"{{i}} Library Road")
     for i in range({MEMBERS})],
    batch_size=500,
)
Loan.objects.bulk_create([Loan(member_id=1 + i % {MEMBERS}, title=f"t{{i}}") for i in range(600)])
"""
WORKLOAD = f"""
import django
django.setup()
from django.db import connection
from django.test import Client
client = Client()

def get(*args):
    assert client.get(*args).status_code == 200
    connection.close()  # as CONN_MAX_AGE = 0 does after each request (the test client does not)

for i in range({LOOKUPS}):
    get("/member", {{"card": f"C{{i * 70:06d}}"}})
for i in range({ADDRESS_LOOKUPS}):
    get("/address", {{"address": f"{{i * 50}} Library Road"}})
for _ in range({JOINS}):
    get("/branch-match")
for _ in range({REPORTS}):
    get("/notes")
for _ in range({CARD_ROUNDS}):
    for pk in range(1, {CARD_USERS} + 1):
        get(f"/member/{{pk}}/card")
"""

#: what the consultant asked for: file → (statement, mysql client options)
EXPORTS = {
    "performance_schema/index_usage.tsv": (
        "SELECT * FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_SCHEMA = 'library';",
        ("-B",),
    ),
    "performance_schema/table_io.txt": (
        "SELECT * FROM performance_schema.table_io_waits_summary_by_table WHERE OBJECT_SCHEMA = 'library';",
        ("-t",),
    ),
    "sys/redundant_and_unused.txt": (
        "SELECT * FROM sys.schema_unused_indexes WHERE object_schema = 'library';"
        " SELECT * FROM sys.schema_redundant_indexes WHERE table_schema = 'library';",
        ("-t", "-vvv"),
    ),
    "information_schema/show_index.txt": (
        "SHOW INDEX FROM library.library_member; SHOW INDEX FROM library.library_loan;"
        " SHOW INDEX FROM library.library_branch;",
        ("-t", "-vvv"),
    ),
    "information_schema/show_create_table.txt": (
        "SHOW CREATE TABLE library.library_member; SHOW CREATE TABLE library.library_loan;",
        ("-E", "-vvv"),
    ),
    "information_schema/tables.tsv": (
        "SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'library';",
        ("-B",),
    ),
    "status/variables.txt": (
        "SHOW GLOBAL VARIABLES WHERE Variable_name NOT REGEXP 'dir|file|socket|path|pid|log_error';",
        ("-t",),
    ),
}
DIGESTS = "SELECT * FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = 'library';"
LOOKUP_SQL = (
    "SELECT `library_member`.`id`, `library_member`.`card_number`, `library_member`.`legacy_code`,"
    " `library_member`.`branch_id`, `library_member`.`notes`, `library_member`.`address`"
    " FROM `library_member`"
    " WHERE `library_member`.`card_number` = 'C000070' ORDER BY `library_member`.`id` ASC LIMIT 1"
)


def _need(reason: str | None) -> None:
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)


def collect(folder: Path) -> dict[str, Any]:
    """Run the library app on private servers and write the consultant's folder."""
    from devtools.mariadb import ThrowawayMariaDB
    from devtools.mariadb import available as mariadb_available
    from devtools.memcached import ThrowawayMemcached
    from devtools.memcached import available as memcached_available

    _need(mariadb_available() or memcached_available())
    pytest.importorskip("pymemcache")
    pytest.importorskip("pymysql")
    app = folder.parent / f"{folder.name}-app"
    (app / "library").mkdir(parents=True)
    (app / "library" / "__init__.py").write_text("")
    (app / "library" / "models.py").write_text(MODELS)
    (app / "library" / "views.py").write_text(VIEWS)
    (app / "library" / "cache_keys.py").write_text(CACHE_KEYS)
    for sub in (
        "slow",
        "performance_schema",
        "sys",
        "information_schema",
        "status",
        "memcached",
        "explain",
        "django",
    ):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    facts: dict[str, Any] = {}
    with ThrowawayMariaDB({"character-set-server": "utf8mb4"}) as db, ThrowawayMemcached() as mc:
        (app / "library" / "settings.py").write_text(
            SETTINGS.format(port=db.port, mc_port=mc.port, capture=str(folder / "capture"))
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "library.settings",
            "PYTHONPATH": os.pathsep.join([str(app), str(Path(__file__).parents[1])]),
        }

        def django(code: str) -> None:
            subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=app, timeout=300)

        db.run("CREATE DATABASE library;")
        django(
            "import django; django.setup(); from django.core.management import call_command; "
            "call_command('makemigrations', 'library', verbosity=0); call_command('migrate', verbosity=0); "
            f"call_command('auditkit_dump_models', '--app', 'library', output={str(folder / 'django' / 'models.json')!r})"
        )
        django(SEED)
        db.run(
            "ANALYZE TABLE library.library_member, library.library_loan, library.library_branch;"
        )
        # the audited period starts here: index and table I/O counters truncated, the planted
        # settings in force; the digests are not truncated: their two snapshots tell the period
        db.run(
            "TRUNCATE performance_schema.table_io_waits_summary_by_index_usage;"
            " TRUNCATE performance_schema.table_io_waits_summary_by_table;"
            " SET GLOBAL thread_cache_size = 0; SET GLOBAL sort_buffer_size = 32768;"
            " SET GLOBAL tmp_table_size = 16384; SET GLOBAL max_heap_table_size = 16384;"
            " SET GLOBAL long_query_time = 0; SET GLOBAL log_slow_verbosity = 'query_plan,explain';"
            " SET GLOBAL slow_query_log = 1;"
        )
        mc.command("stats detail on")
        (folder / "status" / "status_before.txt").write_text(
            "-- 2031-03-02T09:00:00Z\n" + db.run("SHOW GLOBAL STATUS;", "-t", "-vvv")
        )
        (folder / "performance_schema" / "digests_before.txt").write_text(db.run(DIGESTS, "-E"))
        django(WORKLOAD)
        db.run("SET GLOBAL slow_query_log = 0;")
        (folder / "status" / "status_after.txt").write_text(
            "-- 2031-03-02T10:00:00Z\n" + db.run("SHOW GLOBAL STATUS;", "-t", "-vvv")
        )
        (folder / "performance_schema" / "digests_after.txt").write_text(db.run(DIGESTS, "-E"))
        for name, (sql, opts) in EXPORTS.items():
            (folder / name).write_text(db.run(sql, *opts))
        (folder / "explain" / "member_by_card.sql").write_text(LOOKUP_SQL + ";\n")
        (folder / "explain" / "member_by_card.analyze.json").write_text(
            db.run(f"ANALYZE FORMAT=JSON {LOOKUP_SQL};", "-N", "-B", "-r", database="library")
        )
        (folder / "memcached" / "stats.txt").write_text(mc.command("stats"))
        (folder / "memcached" / "stats_detail_dump.txt").write_text(mc.command("stats detail dump"))
        (folder / "slow" / "slow.log").write_text(db.slow_log.read_text())
        for name in (
            "Connections",
            "Threads_created",
            "Created_tmp_disk_tables",
            "Sort_merge_passes",
        ):
            facts[name] = int(
                db.run(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                    f" WHERE VARIABLE_NAME = '{name.upper()}';",
                    "-N",
                    "-B",
                )
            )
    return facts


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("library") / "client"
    folder.mkdir()
    return folder, collect(folder)


def _one(findings: list[Finding], check: str, **subject: Any) -> Finding:
    found = [
        f
        for f in findings
        if f.check == check and all(getattr(f.subject, k) == v for k, v in subject.items())
    ]
    assert len(found) == 1, [(f.check, f.title) for f in findings]
    return found[0]


def _texts(f: Finding) -> str:
    rec = f.recommendation
    return " ".join(
        str(x)
        for x in (
            f.title,
            f.summary,
            f.action,
            rec and rec.sql,
            rec and rec.django,
            rec and rec.migration,
        )
        if x
    )


def test_the_audit_finds_the_planted_index_problems(library: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = library
    client = auditkit.load_client(folder)
    inv = client.inventory().set_index("file")
    assert (
        inv.loc[[f for f in inv.index if not f.endswith((".sql", ".md"))], "status"] == "loaded"
    ).all(), inv
    audit = auditkit.audit(client)
    findings = audit.findings

    # 1. the unused index, from performance_schema reads, with MySQL DDL and the model's field
    unused = _one(findings, "unused_index", table="library_member", columns=("legacy_code",))
    assert unused.metrics["index_reads"] == 0
    assert "MariaDB started" in unused.summary and "truncated" in unused.summary
    sql = unused.recommendation.sql
    assert re.fullmatch(
        r"ALTER TABLE `library_member` DROP INDEX `library_member_legacy_code_\w+`, ALGORITHM=INPLACE, LOCK=NONE;",
        sql,
    ), sql
    assert "db_index=False on Member.legacy_code" in unused.recommendation.django
    assert "ADD INDEX `library_member_legacy_code_" in unused.recommendation.migration
    # the foreign keys' indexes InnoDB needs are never proposed, read or not
    assert not [
        f
        for f in findings
        if f.check in ("unused_index", "duplicate_index") and "branch" in str(f.subject.columns)
    ]

    # the redundant index: the server's sys view and the definitions agree; Meta.indexes
    # declares it, so the migration removes the entry
    dup = _one(findings, "duplicate_index", table="library_loan")
    assert dup.subject.index == "loan_title_idx" and dup.subject.expression == "redundant prefix"
    assert "sys.schema_redundant_indexes reports the same" in dup.summary
    assert dup.recommendation.sql == (
        "ALTER TABLE `library_loan` DROP INDEX `loan_title_idx`, ALGORITHM=INPLACE, LOCK=NONE;"
    )
    assert 'migrations.RemoveIndex(model_name="loan", name="loan_title_idx")' in (
        dup.recommendation.migration or ""
    )
    assert not [
        f for f in findings if f.check == "unused_index" and f.subject.index == "loan_title_idx"
    ]

    # 2. the full-scan lookup: an index on card_number, with the server's evidence
    miss = _one(findings, "missing_index", table="library_member", columns=("card_number",))
    # (InnoDB's implicit id suffix serves ORDER BY id: no id key)
    assert miss.recommendation.sql == (
        f"ALTER TABLE `library_member` ADD INDEX `{miss.subject.index}` (`card_number`), "
        "ALGORITHM=INPLACE, LOCK=NONE;"
    )
    assert (
        f'models.Index(fields=["card_number"], name="{miss.subject.index}")'
        in miss.recommendation.django
    )
    assert 'migrations.AddIndex(\n    model_name="member"' in miss.recommendation.migration
    # the lookup and the raw join on card_number both need it; digests (the delta of the two
    # snapshots) and the slow log agree on their executions without an index
    assert len(miss.statements) == 2
    assert miss.metrics["mysql_no_index_used"] == LOOKUPS + JOINS
    assert miss.metrics["mysql_slow_full_scans"] == LOOKUPS + JOINS
    assert miss.metrics["mysql_rows_examined"] > 10 * miss.metrics["mysql_rows_sent"]
    assert miss.metrics["plan_seq_scans"] >= 1  # the EXPLAIN beside its .sql shows the full scan
    assert "online (ALGORITHM=INPLACE, LOCK=NONE" in miss.recommendation.summary

    # the TEXT column: a prefix key, created with RunSQL (models.Index has no key length)
    text = _one(findings, "missing_index", table="library_member", columns=("address",))
    assert text.recommendation.sql == (
        f"ALTER TABLE `library_member` ADD INDEX `{text.subject.index}` (`address`(191)), "
        "ALGORITHM=INPLACE, LOCK=NONE;"
    )
    assert text.recommendation.django is None
    assert "migrations.RunSQL(" in text.recommendation.migration
    assert (
        f'reverse_sql="ALTER TABLE `library_member` DROP INDEX `{text.subject.index}`, '
        'ALGORITHM=INPLACE, LOCK=NONE"' in text.recommendation.migration
    )
    assert text.metrics["mysql_no_index_used"] == ADDRESS_LOOKUPS

    # Django migrations: one, for this app, naming only its models and fields
    assert [m.app_label for m in audit.migrations] == ["library"]
    mig = audit.migrations[0]
    assert mig.path == "library/migrations/0002_auditkit_indexes.py"
    assert '("library", "0001_initial")' in mig.text
    for f in (unused, miss, dup, text):
        text = _texts(f)
        for word in re.findall(r'model_name="(\w+)"', text):
            assert word in ("member", "loan", "branch")
        assert not re.search(r"\b(shop|customer|nickname|book|author|order)\b", text, re.I), text
    # the digests are a delta: the seeding before the first snapshot is not in the profile
    digests = client.statement_stats()
    assert (
        not digests["fingerprint"].str.contains("insert into `library_member`", regex=False).any()
    )


def test_the_audit_reports_the_planted_server_health(library: tuple[Path, dict[str, Any]]) -> None:
    folder, facts = library
    audit = auditkit.audit(auditkit.load_client(folder))
    findings = audit.findings
    # the check's own findings (a pure function over the derived frames)
    a = Analysis.of(auditkit.load_client(folder))
    own = mysql_server_health(
        a.status_delta, a.server_status, a.pg_stat_statements, profile=a.profile
    )
    threads = _one(own, "low_cache_hit_ratio", expression="Thread cache")
    assert threads.metrics["thread_cache_size"] == 0
    assert threads.metrics["threads_created"] == threads.metrics["connections"] > 10
    # the window's delta, not the server's totals since it started
    assert threads.metrics["connections"] < facts["Connections"]
    assert "over the 60.0 min between the two status snapshots" in threads.summary
    assert threads in findings  # a cause of its own
    tmp = _one(own, "temp_files", expression="internal temporary tables")
    assert tmp.metrics["tmp_disk_tables"] >= REPORTS and tmp.metrics["tmp_table_size"] == 16384
    sorts = _one(own, "temp_files", expression="sort merge passes")
    assert sorts.metrics["sort_merge_passes"] >= REPORTS
    assert sorts.metrics["sort_buffer_size"] == 32768
    joins = _one(own, "plan_nested_loop")
    assert joins.metrics["select_full_join"] == JOINS
    # in the audit each is a symptom of the statement performance_schema names (one finding
    # per root cause): the GROUP BY on notes, the ORDER BY notes, the join on card_number
    hosts = {s["title"]: f for f in findings for s in f.evidence.symptoms}
    group_by = hosts[tmp.title]
    assert group_by.check == "slow_query" and "group by" in str(group_by.subject.fingerprint)
    order_by = hosts[sorts.title]
    assert "order by `library_member`.`notes`" in str(order_by.subject.fingerprint)
    join_host = hosts[joins.title]
    assert join_host.check == "missing_index" and join_host.subject.columns == ("card_number",)
    assert not [f for f in findings if f.check in ("temp_files", "plan_nested_loop")]
    # max_connections reaches the connection budget from SHOW GLOBAL VARIABLES
    budget = _one(findings, "connection_budget")
    assert budget.metrics["allowed"] == 151  # MariaDB's default, none of it reserved
    assert "max_connections from SHOW GLOBAL VARIABLES" in str(budget.evidence.note)


def test_the_cache_key_family_is_collected(library: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = library
    client = auditkit.load_client(folder)
    fam = client.results["memcached/stats_detail_dump.txt"].frame.set_index("key_prefix")
    # get_or_set reads once more after each add: gets = rounds × users + users
    assert fam.loc["member", "gets"] == CARD_USERS * CARD_ROUNDS + CARD_USERS
    assert fam.loc["member", "misses"] == CARD_USERS
    # the audit reports the family: each member's entry is computed on that member's first read
    # (the capture app counts a get_or_set once: rounds × users reads, users misses), and the
    # fix names this app's view
    audit = auditkit.audit(client)
    hit = _one(audit.findings, "low_cache_hit_ratio", expression="key family member:{int}:card")
    assert hit.subject.endpoint == "/member/<int:pk>/card"
    assert hit.metrics["reads"] == CARD_USERS * CARD_ROUNDS
    assert hit.metrics["misses"] == hit.metrics["miss_first_read"] == CARD_USERS
    assert hit.metrics["per_user_part"] == 0
    assert "10 distinct keys, each read 4.0 times" in hit.summary
    fix = hit.recommendation.summary
    assert "library.views.card" in fix and "'member:{int}:card'" in fix and "part 1" in fix
    assert not re.search(r"\b(shop|customer|book|author|order|visitor)\b", _texts(hit), re.I)


def test_the_committed_shop_folder() -> None:
    """The shop of test_mysql_django, audited from its committed folder (no services): its
    tables hold 200 and 400 rows, below the size an index matters at by default, so the
    advice appears only when the client lowers ``min_table_rows``; the server is healthy."""
    client = auditkit.load_client(FIXTURE)
    audit = auditkit.audit(client)
    assert not [f for f in audit.findings if f.check in ("missing_index", "unused_index")]
    assert not [f for f in audit.findings if f.check in ("temp_files", "low_cache_hit_ratio")]
    small = auditkit.audit(client, AuditConfig(overrides={"index": {"min_table_rows": 100}}))
    unused = _one(small.findings, "unused_index", table="shop_customer")
    assert unused.subject.columns == ("nickname",)
    assert "db_index=False on Customer.nickname" in unused.recommendation.django
    miss = _one(small.findings, "missing_index", table="shop_customer")
    assert miss.subject.columns == ("email",)
    assert miss.metrics["mysql_no_index_used"] == 50 and miss.metrics["mysql_rows_examined"] == 3725
    # the foreign key's index (shop_order.customer_id) is needed by InnoDB: never proposed
    assert not [
        f for f in small.findings if f.subject.table == "shop_order" and f.check == "unused_index"
    ]
    # the sys view lists statements with full scans only: it is no snapshot of the workload
    assert not [n for n in client.notes if "missing from the second" in n]
