"""The capture app end to end: a fresh Django project, installed exactly as the README shows,
``DEBUG=False``, on the local PostgreSQL (a database of its own) and Redis (a database number
and key prefix of its own), driven with real requests through Django's handler. What it writes
must load back with request ids joining statements, requests and cache operations, and the N+1
of its list view must be found on that endpoint with ``select_related`` naming the relation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.checks.n_plus_one import n_plus_one

ROOT = Path(__file__).resolve().parent.parent
REDIS_DB = 12
SECRET_NAME = "Zebulon-Quartzfield"  # a value the app sends as a parameter: must not be written

PROJECT = {
    "settings.py": """
        import os
        from urllib.parse import urlsplit

        _dsn = urlsplit(os.environ["CAPTURE_TEST_DSN"])
        SECRET_KEY = "capture-test-not-a-secret"
        DEBUG = False
        ALLOWED_HOSTS = ["testserver"]
        ROOT_URLCONF = "urls"
        USE_TZ = True
        INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
        MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        DATABASES = {"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": _dsn.path.lstrip("/"),
            "USER": _dsn.username or "postgres", "PASSWORD": _dsn.password or "",
            "HOST": _dsn.hostname or "127.0.0.1", "PORT": str(_dsn.port or 5432)}}
        CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": os.environ["CAPTURE_TEST_REDIS"],
                        "KEY_PREFIX": os.environ["CAPTURE_TEST_PREFIX"]},
            "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        }
        EMAIL_BACKEND = "shop.mail.SlowBackend"

        # the capture app, installed exactly as documented
        INSTALLED_APPS += ["auditkit.django"]
        MIDDLEWARE.insert(0, "auditkit.django.middleware.CaptureMiddleware")
        AUDITKIT_CAPTURE = {"dir": os.environ["CAPTURE_TEST_DIR"]}
    """,
    "urls.py": """
        from django.urls import path

        from shop import views

        urlpatterns = [
            path("books/", views.book_list, name="book-list"),
            path("books/<int:pk>/", views.book_detail, name="book-detail"),
            path("signup/", views.signup, name="signup"),
            path("contact/", views.contact, name="contact"),
            path("weather/", views.weather, name="weather"),
            path("report/", views.report, name="report"),
        ]
    """,
    "shop/__init__.py": "",
    "shop/models.py": """
        from django.db import models


        class Author(models.Model):
            name = models.CharField(max_length=100)


        class Book(models.Model):
            title = models.CharField(max_length=200)
            author = models.ForeignKey(Author, on_delete=models.CASCADE)
    """,
    "shop/mail.py": """
        import time

        from django.core.mail.backends.locmem import EmailBackend


        class SlowBackend(EmailBackend):
            # an SMTP relay a network round trip away
            def send_messages(self, messages):
                time.sleep(0.08)
                return super().send_messages(messages)
    """,
    "shop/tasks.py": """
        from celery import Celery

        app = Celery("shop")
        app.conf.task_always_eager = True
        app.conf.broker_url = "memory://"


        @app.task(name="shop.tasks.author_names")
        def author_names():
            from shop.models import Book

            return [b.author.name for b in Book.objects.order_by("id")]
    """,
    "shop/views.py": """
        import hashlib
        import os
        import urllib.request

        from django.core.cache import cache, caches
        from django.core.mail import send_mail
        from django.http import JsonResponse

        from shop.models import Book
        from shop.tasks import author_names


        def book_list(request):
            # the N+1: book.author in a loop, without select_related
            books = Book.objects.order_by("id")
            if request.GET.get("q"):
                books = books.filter(author__name=request.GET["q"])
            total = cache.get_or_set("book-count", Book.objects.count, 60)
            return JsonResponse({"total": total, "books": [[b.title, b.author.name] for b in books]})


        def book_detail(request, pk):
            data = cache.get(f"book:{pk}")
            if data is None:
                book = Book.objects.select_related("author").get(pk=pk)
                data = {"title": book.title, "author": book.author.name}
                cache.set(f"book:{pk}", data, 120)
            caches["local"].get_many([f"seen:{pk}", "seen:all"])
            return JsonResponse(data)


        def signup(request):
            # CPU-bound: password hashing
            digest = hashlib.pbkdf2_hmac("sha256", b"correct horse", b"salt", 300_000)
            return JsonResponse({"ok": digest.hex()[:8]})


        def contact(request):
            send_mail("hello", "body", "shop@example.com", ["client@example.com"])
            return JsonResponse({"sent": True})


        def weather(request):
            port = os.environ["CAPTURE_TEST_HTTP_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/forecast", timeout=10) as r:
                return JsonResponse({"forecast": r.read().decode()})


        def report(request):
            return JsonResponse({"names": author_names.delay().get()})
    """,
    "drive.py": """
        import http.server
        import os
        import sys
        import threading
        import time

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")


        class Slow(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(0.08)  # an external API taking its time
                body = b"sunny"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass


        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        os.environ["CAPTURE_TEST_HTTP_PORT"] = str(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()

        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        from shop.models import Author, Book

        call_command("makemigrations", "shop", verbosity=0)
        # the new migration file may share its folder's mtime tick with the listing the
        # import system cached: without this, a busy machine's migrate can miss it
        import importlib

        importlib.invalidate_caches()
        call_command("migrate", verbosity=0)
        authors = [Author.objects.create(name=n) for n in ("Ann", "Bob", "Cy", "__SECRET__")]
        for i in range(10):
            Book.objects.create(title=f"Book {i}", author=authors[i % 4])

        client = Client()
        assert client.get("/books/", HTTP_X_REQUEST_ID="client-req-0001").status_code == 200
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        assert client.get("/books/", HTTP_TRACEPARENT=parent).status_code == 200
        assert client.get("/books/", {"q": "__SECRET__"}).status_code == 200
        for pk in (1, 2, 3, 1, 2, 3):
            assert client.get(f"/books/{pk}/").status_code == 200
        for url in ("/signup/", "/contact/", "/weather/", "/report/"):
            assert client.get(url).status_code == 200, url
        assert client.get("/no/such/page/").status_code == 404
        server.shutdown()
    """.replace("__SECRET__", SECRET_NAME),
}


def _write_project(root: Path) -> None:
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture(scope="module")
def capture_dir(
    postgres_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    psycopg = pytest.importorskip("psycopg")
    redis = pytest.importorskip("redis")
    pytest.importorskip("celery")
    tmp = tmp_path_factory.mktemp("capture")
    project, out = tmp / "project", tmp / "capture"
    _write_project(project)
    name = f"auditkit_capture_{uuid.uuid4().hex[:8]}"
    prefix = f"auditkit-capture-test-{uuid.uuid4().hex[:8]}"
    redis_db_url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "CAPTURE_TEST_DSN": postgres_dsn.rsplit("/", 1)[0] + f"/{name}",
        "CAPTURE_TEST_REDIS": redis_db_url,
        "CAPTURE_TEST_PREFIX": prefix,
        "CAPTURE_TEST_DIR": str(out),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        subprocess.run(
            [sys.executable, str(project / "drive.py")],
            cwd=project,
            env=env,
            check=True,
            timeout=300,
        )
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(redis_db_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
    return out


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_written(capture_dir: Path) -> None:
    names = sorted(p.name for p in capture_dir.iterdir())
    assert "models.json" in names
    queries = sorted(capture_dir.glob("queries-*.jsonl"))
    caches = sorted(capture_dir.glob("cache-*.jsonl"))
    assert len(queries) == 1 and len(caches) == 1, names
    head = _lines(queries[0])[0]
    assert head["type"] == "meta" and head["format"] == "auditkit.queries" and head["version"] == 2
    assert head["params"] == "redacted" and head["sample_rate"] == 1.0
    text = queries[0].read_text(encoding="utf-8") + caches[0].read_text(encoding="utf-8")
    assert SECRET_NAME not in text, "a parameter value was written despite redaction"
    assert "capture-test-not-a-secret" not in text


def test_cache_file_shape(capture_dir: Path) -> None:
    lines = _lines(next(capture_dir.glob("cache-*.jsonl")))
    assert lines[0] == {**lines[0], "type": "meta", "format": "auditkit.cache", "version": 1}
    ops = [r for r in lines if r["type"] == "cache"]
    assert all(lines_ok(r) for r in ops)
    detail = [r for r in ops if str(r["key"]).startswith("book:1")]
    # the key as the application passed it (no KEY_PREFIX, no version), miss then set then hit
    assert [(r["op"], r["hit"]) for r in detail] == [("get", False), ("set", None), ("get", True)]
    assert detail[1]["ttl_s"] == 120.0 and detail[0]["ttl_s"] is None
    assert detail[0]["backend"] == "django.core.cache.backends.redis.RedisCache"
    assert detail[0]["cache"] == "default" and detail[0]["endpoint"] == "/books/<int:pk>/"
    count = [r for r in ops if r["op"] == "get_or_set"]
    assert [r["hit"] for r in count] == [False, True, True] and count[0]["ttl_s"] == 60.0
    many = [r for r in ops if r["op"] == "get_many"]
    assert len(many) == 6 and all(r["keys"] == 2 and r["cache"] == "local" for r in many)


def lines_ok(record: dict[str, object]) -> bool:
    keys = {"ts", "op", "key", "hit", "ttl_s", "duration_ms", "request_id", "endpoint", "cache"}
    return keys <= set(record) and str(record["ts"]).endswith("Z") and record["request_id"] is not None


@pytest.fixture(scope="module")
def client(capture_dir: Path) -> auditkit.ClientData:
    return auditkit.load_client(capture_dir)


def test_loads_back(client: auditkit.ClientData) -> None:
    status = {f.path.split("-")[0]: (f.status, f.format) for f in client.files}
    assert status["queries"] == ("loaded", "jsonl_queries")
    assert status["models.json"] == ("loaded", "django_models")
    assert status["cache"] == ("loaded", "cache_events")
    assert not [f for f in client.files if f.status == "error"]
    report = next(f.report for f in client.files if f.format == "jsonl_queries")
    assert report is not None and report.skipped_total == 0
    cache_report = next(f.report for f in client.files if f.format == "cache_events")
    assert cache_report is not None and cache_report.skipped_total == 0


def test_cache_events_load(client: auditkit.ClientData, capture_dir: Path) -> None:
    written = [r for r in _lines(next(capture_dir.glob("cache-*.jsonl"))) if r["type"] == "cache"]
    events = client.frame("cache_events")
    assert len(events) == len(written) > 0
    assert list(events["op"]) == [r["op"] for r in written]
    assert list(events["key"]) == [r["key"] for r in written]
    assert list(events["request_id"]) == [r["request_id"] for r in written]
    detail = events[events["key"] == "book:1"]
    outcomes = [None if h is pd.NA else bool(h) for h in detail["hit"].astype(object)]
    assert list(zip(detail["op"], outcomes, strict=True)) == [("get", False), ("set", None), ("get", True)]
    assert set(events.loc[events["key"].str.startswith("book:"), "key_prefix"]) == {"book:{int}"}
    many = events[events["op"] == "get_many"]
    assert many["key_count"].eq(2).all() and many["cache"].eq("local").all()
    # every hit loaded is one the request record counted
    requests = client.frame("requests").set_index("request_id")
    hits = events[events["hit"].notna()].groupby("request_id")["hit"].sum()
    for rid, n in hits.items():
        assert n <= requests.loc[rid, "cache_hits"]


def test_request_ids_join(client: auditkit.ClientData, capture_dir: Path) -> None:
    requests = client.frame("requests")
    events = client.frame("query_events")
    ids = set(requests["request_id"])
    assert len(requests) == 15  # 14 requests (one 404) and one task
    assert events["request_id"].notna().all() and set(events["request_id"]) <= ids
    cache_ids = {r["request_id"] for r in _lines(next(capture_dir.glob("cache-*.jsonl"))) if r["type"] == "cache"}
    assert cache_ids <= ids
    assert "client-req-0001" in ids
    traced = requests[requests["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert list(traced["request_id"]) == ["4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"]
    # db_calls of each request record equals its statements in the file
    per_request = events.groupby("request_id").size()
    for r in requests.itertuples():
        assert r.db_calls == per_request.get(r.request_id, 0)


def test_request_records(client: auditkit.ClientData) -> None:
    r = client.frame("requests").set_index("url_name", drop=False)
    lst = r[r["endpoint"] == "/books/"].iloc[0]
    assert lst["route"] == "books/" and lst["view"] == "shop.views.book_list" and lst["method"] == "GET"
    assert lst["status"] == 200 and lst["kind"] == "http" and lst["db_calls"] >= 11
    signup, contact, weather = r.loc["signup"], r.loc["contact"], r.loc["weather"]
    # CPU time, unlike wall-clock shares, does not depend on how busy the machine is: hashing
    # needs its CPU time whatever the load; sleeping on a relay or an API needs next to none
    assert signup["cpu_ms"] >= 40 and signup["mail_ms"] == signup["http_ms"] == 0  # computing
    assert contact["mail_ms"] >= 80 and contact["cpu_ms"] < 30  # waiting on mail
    assert weather["http_ms"] >= 80 and weather["cpu_ms"] < 30  # waiting on an API
    assert contact["mail_ms"] <= contact["duration_ms"] and weather["http_ms"] <= weather["duration_ms"]
    missing = r[r["status"] == 404].iloc[0]
    assert pd.isna(missing["endpoint"]) and missing["db_calls"] == 0
    details = r[r["url_name"] == "book-detail"]
    assert list(details["cache_misses"]) == [3, 3, 3, 2, 2, 2]  # + both local get_many keys
    assert list(details["cache_hits"]) == [0, 0, 0, 1, 1, 1]
    task = r[r["kind"] == "task"].iloc[0]
    assert task["endpoint"] == "task:shop.tasks.author_names" and task["db_calls"] == 11


def test_n_plus_one_found_on_its_endpoint(client: auditkit.ClientData) -> None:
    findings = n_plus_one(client.query_events("requests"), models=client.frame("schema_columns"))
    by_endpoint = {f.subject.endpoint: f for f in findings}
    assert "/books/" in by_endpoint, [str(f) for f in findings]
    fix = by_endpoint["/books/"].recommendation
    assert fix is not None and fix.django == 'Book.objects.select_related("author")'
    assert "/books/<int:pk>/" not in by_endpoint  # select_related there already
    assert "task:shop.tasks.author_names" in by_endpoint  # the task has the same loop


@pytest.mark.slow
def test_auditkit_run_reads_it(capture_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "auditkit", "run", str(capture_dir), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    findings = json.loads((tmp_path / capture_dir.name / "findings.json").read_text())
    items = findings["findings"] if isinstance(findings, dict) else findings
    n1 = [f for f in items if f["check"] == "n_plus_one" and f["subject"].get("endpoint") == "/books/"]
    assert n1 and n1[0]["recommendation"]["django"] == 'Book.objects.select_related("author")'
