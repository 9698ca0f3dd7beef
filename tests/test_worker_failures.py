"""Application-server worker failures, from logs gunicorn and uWSGI really wrote.

A small Django application (not the sample shop: an invoicing app built here) runs under
gunicorn with a one-second timeout. One view calls an outside service that never answers, so
gunicorn stops the worker at its timeout; then the test kills another worker with SIGKILL, as
the kernel's out-of-memory killer would. The audit of the folder holding gunicorn's error log
must report both — the timeout on the view's route, with the line of the application's own code
the worker was stuck in and what it was waiting on, and the kill without a timeout — and name
nothing but this application's code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from auditkit.checks.app_server import where_stopped, worker_failures
from auditkit.loaders.registry import get_loader
from devtools._process import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "appserver"

VIEWS = """
import urllib.request

from django.http import HttpResponse


def invoice_pdf(request, number):
    # the rendering service never answers: the worker waits until gunicorn stops it
    with urllib.request.urlopen(f"http://127.0.0.1:{RENDER_PORT}/render/{number}", timeout=30) as r:
        return HttpResponse(r.read(), content_type="application/pdf")


def health(request):
    return HttpResponse("ok")
"""

URLS = """
from django.urls import path

from billing import views

urlpatterns = [
    path("invoices/<int:number>/pdf/", views.invoice_pdf),
    path("health/", views.health),
]
"""

SETTINGS = """
SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "billing.urls"
INSTALLED_APPS = ["billing"]
DATABASES = {}
"""


def _get(url: str, timeout: float) -> None:
    with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        urllib.request.urlopen(url, timeout=timeout).read()


def _silent_server() -> tuple[socket.socket, int]:
    """A socket that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = srv.accept()
                held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return srv, int(srv.getsockname()[1])


def _wait_for(log: Path, text: str, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not log.exists() or log.read_text().count(text) < count:
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail(f"gunicorn did not log {text!r} {count} times")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def billing_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gunicorn", reason="gunicorn (dev extra)")
    root = tmp_path_factory.mktemp("billing")
    app = root / "billing"
    app.mkdir()
    srv, render_port = _silent_server()
    (app / "__init__.py").write_text("")
    (app / "views.py").write_text(f"RENDER_PORT = {render_port}\n" + textwrap.dedent(VIEWS))
    (app / "urls.py").write_text(URLS)
    (app / "settings.py").write_text(SETTINGS)
    client = root / "client"
    client.mkdir()
    log = client / "gunicorn-error.log"
    port = free_port()
    env = {**os.environ, "HOME": str(root), "DJANGO_SETTINGS_MODULE": "billing.settings"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--timeout", "1",
         "--bind", f"127.0.0.1:{port}", "--error-logfile", str(log), "--log-level", "info",
         "--chdir", str(root), "django.core.wsgi:get_wsgi_application()"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(log, "Booting worker", 2, proc)
        _get(f"http://127.0.0.1:{port}/health/", 10)
        _get(f"http://127.0.0.1:{port}/invoices/1042/pdf/", 15)
        _wait_for(log, "Booting worker", 3, proc)  # the timed-out worker's replacement
        # a worker killed from outside, as the out-of-memory killer does
        pids = [
            int(line.rsplit(" ", 1)[1])
            for line in log.read_text().splitlines()
            if "Booting worker with pid:" in line
        ]
        os.kill(pids[-1], signal.SIGKILL)
        _wait_for(log, "Booting worker", 4, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        srv.close()
    return client


def test_gunicorn_timeout_and_kill_are_reported(billing_client: Path) -> None:
    from auditkit import audit, load_client

    result = audit(load_client(billing_client))
    found = [f for f in result.findings if f.check == "worker_failures"]
    by_kind = {f.subject.expression: f for f in found}
    assert set(by_kind) == {"worker timeout", "worker killed"}, [f.title for f in found]

    timeout = by_kind["worker timeout"]
    assert timeout.chapter == "scaling"
    assert timeout.subject.endpoint == "/invoices/<int>/pdf/"
    assert (
        timeout.title == "gunicorn stopped a worker at the request timeout on /invoices/<int>/pdf/"
    )
    assert "billing/views.py:" in timeout.summary and "in invoice_pdf" in timeout.summary
    assert "an outbound HTTP call" in timeout.summary
    assert timeout.recommendation is not None
    assert "background task" in timeout.recommendation.summary
    stopped = [i for i in timeout.evidence.items if "stopped_in" in i]
    assert stopped and "urlopen" in str(stopped[0]["code"])

    kill = by_kind["worker killed"]
    assert kill.metrics["kills"] == 1  # the timed-out worker's own exit is not counted again
    assert "out-of-memory" in kill.summary

    # the fixes speak of this application alone, and of no machine path
    text = " ".join(
        f"{f.title} {f.summary} {f.recommendation.summary if f.recommendation else ''}"
        for f in found
    )
    for word in ("Book", "book", "sample", "shop", str(billing_client.parent)):
        assert word not in text


def test_uwsgi_harakiri_is_one_timeout_not_a_kill() -> None:
    res = get_loader("uwsgi_log").load(FIXTURES / "uwsgi-2.0.30-harakiri.log")
    found = worker_failures(
        res.frames["server_events"], res.frames["server_settings"], res.frames["requests"]
    )
    assert [f.subject.expression for f in found] == ["worker timeout"]
    f = found[0]
    assert f.title == "uWSGI stopped a worker at the request timeout on /slow"
    assert "harakiri" in f.summary and "GET /slow" in f.summary
    assert "nan" not in f.summary.lower() and "None" not in f.summary


def test_where_stopped_reads_the_innermost_client_frame() -> None:
    tb = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "/venv/lib/python3.12/site-packages/gunicorn/workers/sync.py", line 184, in handle_request
            respiter = self.wsgi(environ, resp.start_response)
          File "/venv/lib/python3.12/site-packages/django/core/handlers/base.py", line 197, in _get_response
            response = wrapped_callback(request, *callback_args, **callback_kwargs)
          File "/srv/ledger/reports/views.py", line 88, in yearly
            rows = list(Entry.objects.filter(year=year))
          File "/venv/lib/python3.12/site-packages/django/db/backends/utils.py", line 105, in _execute
            return self.cursor.execute(sql, params)
          File "/venv/lib/python3.12/site-packages/psycopg/cursor.py", line 97, in execute
            raise ex.with_traceback(None)
          File "/venv/lib/python3.12/site-packages/gunicorn/workers/base.py", line 204, in handle_abort
            sys.exit(1)
        SystemExit: 1
        """
    )
    s = where_stopped(tb)
    assert s is not None
    assert s.frame == "reports/views.py:88 in yearly"
    assert s.code == "rows = list(Entry.objects.filter(year=year))"
    assert s.waiting_on == "the database"
    assert where_stopped("no traceback here") is None


def test_peer_worker_that_failed_to_boot(peer_data: Path) -> None:
    """gunicorn 25's own log of a worker that could not import the application."""
    res = get_loader("gunicorn_log").load(peer_data / "hcli_core" / "gunicorn-error.log")
    found = worker_failures(
        res.frames["server_events"],
        res.frames["server_settings"],
        res.frames.get("requests", pd.DataFrame()),
    )
    assert [f.title for f in found] == ["A gunicorn worker failed to boot"]
    f = found[0]
    assert "ModuleNotFoundError: No module named 'argon2'" in f.summary
    assert "cli/credential.py:10" in f.summary
    assert "/home/" not in f.summary  # the client machine's directories stay out
    assert f.recommendation is not None and "--check-config" in f.recommendation.summary
