"""The capture app's parts that need no configured Django: settings, request ids, parameter
redaction, the writer (rotation, limits, drops, fork) and the kill switch; then its options
(sampling, kept parameters, stacks, untracked statements, kill file, rotation) in a small
project on SQLite, run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from auditkit.django.conf import CaptureSettings, parse_settings
from auditkit.django.context import Capture
from auditkit.django.middleware import request_ids
from auditkit.django.records import ParamRedactor
from auditkit.django.runtime import Runtime
from auditkit.django.writer import CaptureWriter

ROOT = Path(__file__).resolve().parent.parent


# -- settings -----------------------------------------------------------------------------------
def test_settings_minimal_and_defaults(tmp_path: Path) -> None:
    settings, problems = parse_settings({"dir": str(tmp_path)})
    assert problems == [] and settings is not None
    assert settings.dir == tmp_path and settings.sample_rate == 1.0 and settings.params == "redact"
    assert settings.kill_path == tmp_path / "OFF"


@pytest.mark.parametrize(
    ("raw", "ident"),
    [
        ("not a dict", "auditkit.E001"),
        ({"dir": "/x", "sampel_rate": 0.1}, "auditkit.E002"),
        ({"sample_rate": 0.1}, "auditkit.E003"),
        ({"dir": "/x", "sample_rate": 1.5}, "auditkit.E004"),
        ({"dir": "/x", "params": "hide"}, "auditkit.E004"),
        ({"dir": "/x", "max_bytes": 0}, "auditkit.E004"),
        ({"dir": "/x", "stack": "yes"}, "auditkit.E004"),
        ({"dir": "/x", "kill_file": "../OFF"}, "auditkit.E004"),
    ],
)
def test_settings_problems(raw: object, ident: str) -> None:
    settings, problems = parse_settings(raw)
    assert settings is None and [p[0] for p in problems] == [ident]


def test_settings_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_settings(None) == (None, [])
    assert parse_settings({"dir": str(tmp_path), "enabled": False}) == (None, [])
    monkeypatch.setenv("AUDITKIT_CAPTURE_ENABLED", "0")
    assert parse_settings({"dir": str(tmp_path)}) == (None, [])


# -- request ids --------------------------------------------------------------------------------
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_request_ids() -> None:
    assert request_ids({"HTTP_X_REQUEST_ID": "abc-123"}) == ("abc-123", None)
    assert request_ids({"HTTP_X_CORRELATION_ID": "c-1", "HTTP_X_REQUEST_ID": "r-1"}, "X-Correlation-ID")[0] == "c-1"
    rid, trace = request_ids({"HTTP_TRACEPARENT": TRACEPARENT})
    assert trace == "4bf92f3577b34da6a3ce929d0e0e4736" and rid == f"{trace}-00f067aa0ba902b7"
    assert request_ids({"HTTP_X_REQUEST_ID": "r-1", "HTTP_TRACEPARENT": TRACEPARENT}) == ("r-1", trace)
    insane, _ = request_ids({"HTTP_X_REQUEST_ID": "<script>alert(1)</script>"})
    assert len(insane) == 32 and insane.isalnum()
    zero = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    assert request_ids({"HTTP_TRACEPARENT": zero})[1] is None


# -- parameters ---------------------------------------------------------------------------------
def test_param_redaction() -> None:
    redact = ParamRedactor("redact", b"secret-one")
    a, b = redact((42, "ann@example.com", None, True, 42), False), redact((43,), False)
    assert a[0] == a[4] != b[0] and a[0].startswith("int:") and a[1].startswith("str:")
    assert a[2] is None and a[3] is True
    assert "ann" not in json.dumps(a)
    assert ParamRedactor("redact", b"secret-two")((42,), False)[0] != a[0]  # keyed
    assert redact({"x": 1}, False) == {"x": redact((1,), False)[0]}
    assert redact([(1,), (2,)], True) is None  # executemany: counted, not written
    assert ParamRedactor("keep", b"k")((42, "a"), False) == [42, "a"]
    assert ParamRedactor("off", b"k")((42,), False) is None


# -- the writer ---------------------------------------------------------------------------------
def _capture(statements: int = 3, rid: str = "r") -> Capture:
    c = Capture(rid, method="GET", endpoint="/x/")
    for i in range(statements):
        c.statements.append((time.time(), 0.5, "SELECT %s", (i,), None, "default", "sqlite", "db", 1, None, None))
        c.db_calls += 1
    c.finish()
    c.status = 200
    return c


def _writer(tmp_path: Path, **overrides: object) -> CaptureWriter:
    settings = CaptureSettings(dir=tmp_path, **overrides)  # type: ignore[arg-type]
    return CaptureWriter(settings, ParamRedactor("redact", b"k"), {"writer": "test"})


def test_writer_rotates_and_prunes(tmp_path: Path) -> None:
    writer = _writer(tmp_path, max_bytes=2000, max_files=2)
    for i in range(40):
        assert writer.submit(("capture", _capture(rid=f"r{i}")))
        if i % 5 == 4:
            assert writer.flush()
    writer.close()
    files = sorted(tmp_path.glob("queries-*.jsonl"))
    assert 2 <= len(files) <= 3  # two closed files kept, plus the last one
    for f in files:
        lines = [json.loads(x) for x in f.read_text().splitlines()]
        assert lines[0]["type"] == "meta" and lines[0]["format"] == "auditkit.queries"
        assert lines[-1]["type"] == "meta" and lines[-1]["event"] == "closed"
        assert f.stat().st_size <= 2000 + 200  # a line never splits; the closing meta follows
    last = [json.loads(x) for x in files[-1].read_text().splitlines()][-1]
    assert last["captures_written"] == 40 and last["captures_dropped"] == 0


def test_writer_drops_when_full_and_counts(tmp_path: Path) -> None:
    writer = _writer(tmp_path, queue_size=1)
    writer._thread = object()  # type: ignore[assignment]  # no thread drains the queue
    assert writer.submit(("capture", _capture()))
    assert not writer.submit(("capture", _capture()))
    assert writer.dropped == 1


def test_writer_pauses_over_the_folder_limit(tmp_path: Path) -> None:
    (tmp_path / "old.jsonl").write_bytes(b"x" * 5000)
    writer = _writer(tmp_path, max_total_bytes=1000)
    writer.submit(("capture", _capture()))
    writer.close()
    assert not list(tmp_path.glob("queries-*.jsonl")) and writer.dropped == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_writer_after_fork(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.submit(("capture", _capture(rid="parent-1")))
    writer.flush()
    pid = os.fork()
    if pid == 0:  # the child: a fresh thread and files of its own
        try:
            writer.after_fork()
            writer.submit(("capture", _capture(rid="child-1")))
            writer.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    writer.submit(("capture", _capture(rid="parent-2")))
    writer.close()
    files = {f.name.rsplit("-", 1)[1]: f.read_text() for f in tmp_path.glob("queries-*.jsonl")}
    assert len(files) == 2
    parent = files[f"{os.getpid()}.jsonl"]
    assert "parent-1" in parent and "parent-2" in parent and "child-1" not in parent
    assert parent.count('"request_id":"parent-1"') == 4  # written once, not again by the child


def test_kill_file(tmp_path: Path) -> None:
    settings = CaptureSettings(dir=tmp_path)
    runtime = Runtime(settings, _writer(tmp_path))
    assert runtime.active() and runtime.sampled()
    settings.kill_path.write_text("")
    runtime._next_check = 0.0
    assert not runtime.active() and not runtime.sampled()
    settings.kill_path.unlink()
    runtime._next_check = 0.0
    assert runtime.active()


# -- options, in a project ----------------------------------------------------------------------
PROJECT = {
    "settings.py": """
        import os
        SECRET_KEY = "units"
        DEBUG = False
        ALLOWED_HOSTS = ["testserver"]
        ROOT_URLCONF = "urls"
        USE_TZ = True
        INSTALLED_APPS = ["django.contrib.contenttypes", "auditkit.django"]
        MIDDLEWARE = ["auditkit.django.middleware.CaptureMiddleware"]
        DATABASES = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["UNITS_DB"]},
            "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["UNITS_DB"] + "2"},
        }
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        AUDITKIT_CAPTURE = {
            "dir": os.environ["UNITS_DIR"], "sample_rate": 0.5, "params": "keep", "stack": True,
            "untracked": True, "dump_models": False, "request_id_header": "X-Correlation-ID",
        }
    """,
    "urls.py": """
        from django.db import connection, connections
        from django.http import HttpResponse
        from django.urls import path


        def view(request):
            with connection.cursor() as cursor:
                cursor.execute("SELECT %s, %s", [7, "kept"])
            if request.GET.get("other"):  # a second alias, first opened inside a request
                with connections["other"].cursor() as cursor:
                    cursor.execute("SELECT 2")
            return HttpResponse("ok")


        urlpatterns = [path("v/", view, name="v")]
    """,
    "drive.py": """
        import os, random, sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
        import django
        django.setup()
        from django.core.checks import run_checks
        from django.db import connection
        from django.test import Client
        random.seed(7)
        assert not [m for m in run_checks() if m.id.startswith("auditkit")], run_checks()
        with connection.cursor() as cursor:  # outside any request: untracked
            cursor.execute("SELECT 1")
        client = Client()
        for i in range(200):
            client.get("/v/", {"other": "1"} if i % 10 == 0 else {}, HTTP_X_CORRELATION_ID=f"corr-{i}")
        open(os.path.join(os.environ["UNITS_DIR"], "OFF"), "w").close()
        import time; time.sleep(1.1)
        for i in range(20):
            client.get("/v/", HTTP_X_CORRELATION_ID=f"off-{i}")
    """,
}


def test_options_in_a_project(tmp_path: Path) -> None:
    project, out = tmp_path / "project", tmp_path / "capture"
    for name, text in PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text).lstrip())
    env = {
        **os.environ,
        "UNITS_DB": str(tmp_path / "db.sqlite3"),
        "UNITS_DIR": str(out),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, str(project / "drive.py")], cwd=project, env=env, check=True, timeout=120)
    records = [
        json.loads(line)
        for f in sorted(out.glob("queries-*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    requests = [r for r in records if r.get("type") == "request"]
    ids = {r["request_id"] for r in requests}
    assert 70 <= len(requests) <= 130  # sample_rate 0.5 of 200 requests
    assert all(i.startswith("corr-") for i in ids)  # the configured header, none after OFF
    statements = [r for r in records if "sql" in r and r["request_id"] is not None]
    other = [s for s in statements if s["alias"] == "other"]
    statements = [s for s in statements if s["alias"] == "default"]
    assert len(statements) == len(requests)  # whole requests: one statement each, none orphaned
    assert {s["request_id"] for s in statements} == ids
    assert all(s["params"] == [7, "kept"] for s in statements)  # params: keep
    assert other and all(s["sql"] == "SELECT 2" and s["request_id"] in ids for s in other)
    assert all("urls.py" in s["stack"] and " view" in s["stack"] for s in statements)
    untracked = [r for r in records if "sql" in r and r["request_id"] is None]
    assert [u["sql"] for u in untracked] == ["SELECT 1"]
    assert records[0]["sample_rate"] == 0.5 and records[0]["params"] == "kept"
