"""gunicorn and uWSGI logs → server_events, server_settings (and uWSGI requests).

gunicorn is started here on a tiny WSGI app with two workers and a one-second timeout; one
request outlives the timeout. Its real error log is read back with exact counts. The uWSGI
fixture was recorded from uWSGI 2.0.30 (tests/fixtures/appserver/SOURCES.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

import auditkit.loaders  # noqa: F401 - registers every loader
from auditkit.analysis import Analysis
from auditkit.errors import NothingParsedError
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader

FIXTURES = Path(__file__).parent / "fixtures" / "appserver"

APP = """
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(4)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float) -> None:
    # the timed-out request ends in a 500 or a reset: the log is what we test
    with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        urllib.request.urlopen(url, timeout=timeout).read()


@pytest.fixture(scope="module")
def gunicorn_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gunicorn", reason="gunicorn (dev extra)")
    folder = tmp_path_factory.mktemp("gunicorn")
    (folder / "tinyapp.py").write_text(APP)
    log = folder / "error.log"
    port = _free_port()
    env = {**os.environ, "HOME": str(folder)}  # gunicorn 27 puts a control socket in ~
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--timeout", "1",
         "--graceful-timeout", "2", "--bind", f"127.0.0.1:{port}", "--error-logfile", str(log),
         "--access-logfile", str(log),
         "--log-level", "info", "--chdir", str(folder), "tinyapp:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while log.read_text().count("Booting worker") < 2 if log.exists() else True:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("gunicorn did not start")
            time.sleep(0.1)
        _get(f"http://127.0.0.1:{port}/slow", 10)
        deadline = time.monotonic() + 20
        while log.read_text().count("Booting worker") < 3:  # the replacement of the killed one
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not replace the timed-out worker")
            time.sleep(0.1)
        _get(f"http://127.0.0.1:{port}/", 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log


def test_gunicorn_run(gunicorn_log: Path) -> None:
    assert detect(gunicorn_log).format == "gunicorn_log"
    res = get_loader("gunicorn_log").load(gunicorn_log)
    text = gunicorn_log.read_text()
    prefixed = sum(1 for ln in text.splitlines() if ln.startswith("[") and "] [" in ln[:40])
    access = [ln for ln in text.splitlines() if '"GET /' in ln and not ln.startswith("[")]
    # one file for both logs, as a container's stderr: the access lines are requests
    assert res.report.read == res.report.parsed == prefixed + len(access)
    req = res.frames["requests"]
    assert len(req) == len(access) >= 1
    assert req.loc[req["path"] == "/", "status"].tolist() == [200]
    ev = res.frames["server_events"]
    kinds = ev["kind"].value_counts()
    assert kinds["server_start"] == 1 and kinds["server_stop"] == 1
    assert kinds["worker_boot"] == 3  # two, then the replacement of the timed-out one
    assert kinds["worker_timeout"] == 1
    # the timed-out worker either exits on its own or is killed by the master
    assert kinds.get("worker_exit", 0) + kinds.get("worker_killed", 0) >= 3
    timed_out = int(ev.loc[ev["kind"] == "worker_timeout", "pid"].iloc[0])
    assert timed_out in set(ev.loc[ev["kind"] == "worker_boot", "pid"])
    assert ev["ts"].notna().all() and (ev["source_format"] == "gunicorn_log").all()
    s = res.frames["server_settings"].set_index("name")
    assert (res.frames["server_settings"]["server"] == "gunicorn").all()
    assert s.loc["workers", "setting"] == "2"
    assert s.loc["workers", "source"] == "inferred from worker boots"
    assert s.loc["worker_class", "setting"] == "sync"
    assert s.loc["bind", "setting"].startswith("http://127.0.0.1:")


def test_gunicorn_facts_reach_the_deployment(gunicorn_log: Path) -> None:
    res = get_loader("gunicorn_log").load(gunicorn_log)
    analysis = Analysis(res.frames)
    facts = analysis.deployment
    assert facts["web_workers"] == 2
    assert facts["sources"]["web_workers"] == "gunicorn log (inferred from worker boots)"
    assert "threads_per_worker" not in facts  # an info-level log does not state threads


def test_gunicorn_debug_configuration(tmp_path: Path) -> None:
    """With --log-level debug gunicorn dumps its configuration: workers and threads stated."""
    log = tmp_path / "debug.log"
    log.write_text(
        "[2026-12-05 07:50:32 +0000] [31588] [DEBUG] Current configuration:\n"
        "  config: ./gunicorn.conf.py\n  bind: ['127.0.0.1:8000', 'unix:/run/shop.sock']\n"
        "  workers: 4\n  worker_class: gthread\n  threads: 8\n  timeout: 30\n"
        "[2026-12-05 07:50:32 +0000] [31588] [INFO] Starting gunicorn 27.0.1\n"
        "[2026-12-05 07:50:32 +0000] [31590] [INFO] Booting worker with pid: 31590\n"
    )
    res = get_loader("gunicorn_log").load(log)
    s = res.frames["server_settings"].set_index("name")
    assert s.loc["workers", "setting"] == "4" and s.loc["workers", "source"] == "configuration"
    assert s.loc["threads", "value"] == 8 and s.loc["timeout", "value"] == 30_000
    assert s.loc["bind", "setting"] == "127.0.0.1:8000,unix:/run/shop.sock"
    facts = Analysis(res.frames).deployment
    assert (facts["web_workers"], facts["threads_per_worker"]) == (4, 8)
    assert facts["sources"]["threads_per_worker"] == "gunicorn log (configuration)"


def test_gunicorn_peer_log(peer_data: Path) -> None:
    path = peer_data / "hcli_core" / "gunicorn-error.log"
    assert detect(path).format == "gunicorn_log"
    res = get_loader("gunicorn_log").load(path)
    assert res.report.read == res.report.parsed == 9  # 39 continuation lines attached
    ev = res.frames["server_events"]
    assert ev["severity"].value_counts().to_dict() == {"INFO": 5, "ERROR": 4}
    assert ev["kind"].tolist() == [
        "server_start", "other", "other", "worker_boot", "worker_error", "worker_exit",
        "worker_crash", "server_stop", "app_error",
    ]  # fmt: skip
    tb = ev.loc[ev["kind"] == "worker_error", "detail"].iloc[0]
    assert tb.startswith("Traceback") and "No module named 'argon2'" in tb
    assert ev["ts"].iloc[0] == pd.Timestamp("2026-02-21 18:31:15", tz="UTC")  # -0800
    assert any("does not state threads" in w for w in res.report.warnings)
    s = res.frames["server_settings"].set_index("name")
    assert s.loc["worker_class", "setting"] == "gthread"
    assert s.loc["bind", "setting"] == "http://0.0.0.0:18080,http://0.0.0.0:19090"


def test_uwsgi_recorded_run() -> None:
    path = FIXTURES / "uwsgi-2.0.30-harakiri.log"
    assert detect(path).format == "uwsgi_log"
    res = get_loader("uwsgi_log").load(path)
    assert res.report.read == res.report.parsed == 54
    assert any("without a zone" in w for w in res.report.warnings)
    ev = res.frames["server_events"]
    assert ev["kind"].value_counts().to_dict() == {
        "worker_boot": 3, "worker_exit": 2, "server_start": 1, "worker_timeout": 1,
        "worker_killed": 1, "server_stop": 1,
    }  # fmt: skip
    timeout = ev[ev["kind"] == "worker_timeout"].iloc[0]
    assert timeout["pid"] == 32230 and "GET /slow" in timeout["detail"]
    assert ev.loc[ev["kind"] == "worker_killed", "pid"].tolist() == [32230]
    s = res.frames["server_settings"].set_index("name")
    assert (s.loc["workers", "setting"], s.loc["threads", "setting"]) == ("2", "2")
    assert s.loc["mode", "setting"] == "preforking+threaded"
    req = res.frames["requests"]
    assert req["path"].tolist() == ["/", "/x"] and (req["status"] == 200).all()
    assert (req["response_bytes"] == 2).all()
    facts = Analysis(res.frames).deployment
    assert (facts["web_workers"], facts["threads_per_worker"]) == (2, 2)


def test_uwsgi_peer_request_lines(peer_data: Path) -> None:
    path = peer_data / "lnav" / "test" / "logfile_uwsgi.0"
    assert detect(path).format == "uwsgi_log"
    res = get_loader("uwsgi_log").load(path)
    req = res.frames["requests"]
    assert len(req) == 19 and req["pid"].nunique() == 4 and (req["status"] == 200).all()
    micros = req[req["duration_ms"] < 1]
    assert len(micros) == 1 and micros["duration_ms"].iloc[0] == pytest.approx(0.068)
    assert req["ts"].iloc[0] == pd.Timestamp("2016-03-13 22:49:12", tz="UTC")
    assert req["method"].eq("POST").all() and req["response_bytes"].notna().all()


def test_app_server_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"\x00\xff garbage\n" * 10)
    for fmt in ("gunicorn_log", "uwsgi_log"):
        with pytest.raises(NothingParsedError):
            get_loader(fmt).load(bad)
    long = tmp_path / "long.log"
    long.write_text(
        "[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {1 vars in 1 bytes} [Sun Mar 13 22:49:12 2016] GET /"
        + "a" * 2_000_000
        + " => generated 1 bytes in 1 msecs (HTTP/1.1 200) 1 headers in 1 bytes (1 switches on core 0)\n"
    )
    res = get_loader("uwsgi_log").load(long)
    assert len(res.frames["requests"]) == 1


def test_gunicorn_kill_and_crash_messages(tmp_path: Path) -> None:
    """The master's words for a killed (out of memory) and a crashed worker, gunicorn 20–27."""
    log = tmp_path / "error.log"
    log.write_text(
        "[2026-12-05 08:00:00 +0100] [10] [INFO] Starting gunicorn 23.0.0\n"
        "[2026-12-05 08:00:00 +0100] [11] [INFO] Booting worker with pid: 11\n"
        "[2026-12-05 08:00:00 +0100] [12] [INFO] Booting worker with pid: 12\n"
        "[2026-12-05 08:00:00 +0100] [13] [INFO] Booting worker with pid: 13\n"
        "[2026-12-05 08:05:00 +0100] [10] [ERROR] Worker (pid:11) was sent SIGKILL! Perhaps out of memory?\n"
        "[2026-12-05 08:05:01 +0100] [14] [INFO] Booting worker with pid: 14\n"
        "[2026-12-05 08:06:00 +0100] [10] [WARNING] Worker with pid 12 was terminated due to signal 9\n"
        "[2026-12-05 08:07:00 +0100] [10] [ERROR] Worker (pid:13) exited with code 1\n"
    )
    res = get_loader("gunicorn_log").load(log)
    ev = res.frames["server_events"]
    assert ev["kind"].tolist() == [
        "server_start", "worker_boot", "worker_boot", "worker_boot", "worker_killed",
        "worker_boot", "worker_killed", "worker_crash",
    ]  # fmt: skip
    assert ev.loc[ev["kind"] == "worker_killed", "pid"].tolist() == [11, 12]
    assert ev["ts"].iloc[0] == pd.Timestamp("2026-12-05 07:00:00", tz="UTC")
    s = res.frames["server_settings"].set_index("name")
    assert s.loc["workers", "setting"] == "3"  # never more than three alive at once
