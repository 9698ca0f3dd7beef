"""Regenerate ``data/sample``: real output of the Sample Bookshop under real load.

    python scripts/make_sample.py [--out data/sample] [--seed 42] [--steps 4,8,16,32,64,128]
    python scripts/make_sample.py --variant revisit --out data/sample-revisit

What it does, in order (a few minutes in all):

1. starts a private PostgreSQL cluster (:class:`devtools.postgres.ThrowawayPostgres`:
   ``pg_stat_statements`` preloaded, every statement logged), a private Redis server
   (or, with ``--redis-url``, uses one database of an existing server, flushed with FLUSHDB)
   and a slow local SMTP relay (:class:`SlowSMTPSink`: accepts every message, ~0.3 s each);
2. migrates ``sample_app`` and seeds it deterministically (``manage.py seed_bookshop``), then
   runs VACUUM ANALYZE and resets the statistics, so the counters describe the traffic only;
3. serves the app with gunicorn (gthread workers; access log with request time and id, error
   log) with auditkit's capture app installed (JSON lines of statements, requests and cache
   operations, the model dump) and Django's ``django.db.backends`` log with a request-id prefix;
4. checks every endpoint once (the smoke requests are in the logs too), starts the read-only
   collectors as a consultant would — ``auditkit collect postgres`` (one snapshot before the
   load, one after) and ``auditkit collect redis`` (an INFO snapshot per load step) — and
   drives a stepped Locust load whose last step saturates the server;
5. EXPLAIN (ANALYZE, BUFFERS)s the planted slow statements (``manage.py explain_planted``);
6. scrubs paths (and the host name) of this machine from every file, gzips the logs, writes
   ``audit.yaml`` and ``README.md``, and replaces the output folder.

``--variant revisit`` runs the shop's revisit release (``BOOKSHOP_VARIANT=revisit``: P1, P4 and
P6 fixed, one new problem), for comparing two audits of the same client.

Needs the ``dev`` extras (Locust) and gunicorn in the environment, PostgreSQL server binaries
with contrib, and ``redis-server`` (or ``--redis-url``). The planted problems are described in
``sample_app/PLANTED.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import gzip
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_app"
sys.path.insert(0, str(ROOT))

from devtools.postgres import ThrowawayPostgres  # noqa: E402

CLIENT = "Sample Bookshop"
#: the size budget of the output folder
MAX_BYTES = 4 * 1024 * 1024
DATABASE = "bookshop"
REDIS_DB = 15

#: server settings on top of ThrowawayPostgres's (which log every statement with duration)
PG_SETTINGS: dict[str, str | int | bool] = {
    "log_connections": True,
    "log_disconnections": True,
    "log_lock_waits": True,
    "log_temp_files": 0,
    "log_autovacuum_min_duration": 0,
    "log_checkpoints": True,
    "track_io_timing": True,
    "max_connections": 100,
}

#: files written to the output folder (glob patterns: capture and snapshot names carry times
#: and process ids); the test checks each matches at least one file
EXPECTED_FILES = (
    "README.md",
    "audit.yaml",
    "access.log",
    "gunicorn/error.log",
    "capture/models.json",
    "capture/queries-*.jsonl.gz",
    "capture/cache-*.jsonl.gz",
    "django/queries.log.gz",
    "postgres/postgresql.log.gz",
    "postgres/collect_postgres.md",
    "postgres/pg_stat_statements.csv",
    "postgres/pg_stat_user_tables.csv",
    "postgres/pg_stat_user_indexes.csv",
    "postgres/pg_statio_user_tables.csv",
    "postgres/pg_statio_user_indexes.csv",
    "postgres/pg_stat_database.csv",
    "postgres/pg_indexes.csv",
    "postgres/pg_relation_sizes.csv",
    "postgres/pg_stats.csv",
    "postgres/pg_settings.csv",
    "postgres/snapshots/pg_stat_statements-*.csv",
    "postgres/snapshots/pg_stat_database-*.csv",
    "postgres/snapshots/pg_statio_user_tables-*.csv",
    "postgres/explain/README.md",
    "redis/collect_redis.md",
    "redis/info-*.txt",
    "redis/redis_config.json",
    "load/locust_stats.csv",
    "load/locust_stats_history.csv",
    "load/locust_failures.csv",
    "load/locust_exceptions.csv",
)

#: the releases of the shop (``BOOKSHOP_VARIANT``) and their default output folders
VARIANTS = {"baseline": "sample", "revisit": "sample-revisit"}

#: the slow SMTP relay: seconds before its greeting, and before it accepts a message's data
SMTP_GREETING_DELAY_S = 0.1
SMTP_DATA_DELAY_S = 0.2
#: what the capture app's file names and meta records say instead of this machine's name
HOST_PLACEHOLDER = "bookshop-web"

#: every endpoint, requested once before the load (all must answer 200)
SMOKE = (
    ("GET", "/"),
    ("GET", "/books/"),
    ("GET", "/books/reviews/"),
    ("GET", "/books/tags/fantasy/"),
    ("GET", "/books/catalogue/"),
    ("GET", "/books/1/"),
    ("GET", "/customers/lookup/?email=customer1%40example.com"),
    ("GET", "/orders/queue/?status=pending"),
    ("GET", "/stats/bestsellers/"),
    ("GET", "/stats/dashboard/"),
)


def log(message: str) -> None:
    """Progress on stderr, with the elapsed time."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 30) -> None:
    """Wait until something accepts connections on ``port``; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within {timeout}s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM (a graceful stop for gunicorn and redis), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL (db 15)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: install it, or pass --redis-url")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        str(workdir / "redis.log"),
    ]
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/{REDIS_DB}"
    finally:
        stop_process(proc)


class SlowSMTPSink:
    """A local SMTP relay that accepts every message and answers like a distant, busy one.

    Enough of RFC 5321 for Django's SMTP backend (``smtplib``): greeting, EHLO/HELO, MAIL,
    RCPT, DATA, RSET, NOOP, QUIT. It waits :data:`SMTP_GREETING_DELAY_S` before its greeting
    and :data:`SMTP_DATA_DELAY_S` before accepting a message's data — the round trips and
    queueing of a remote relay — and only counts the messages (nothing is kept or relayed).
    Runs its own asyncio loop in a thread; use it as a context manager.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.messages = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> SlowSMTPSink:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise SystemExit(f"the SMTP sink did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(text: bytes) -> None:
            writer.write(text)
            await writer.drain()

        try:
            await asyncio.sleep(SMTP_GREETING_DELAY_S)
            await reply(b"220 relay.bookshop.example ESMTP sink\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    await reply(b"250-relay.bookshop.example\r\n250-8BITMIME\r\n250 HELP\r\n")
                elif verb == b"HELO":
                    await reply(b"250 relay.bookshop.example\r\n")
                elif verb == b"DATA":
                    await reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    while await reader.readline() not in (b".\r\n", b".\n", b""):
                        pass
                    await asyncio.sleep(SMTP_DATA_DELAY_S)
                    self.messages += 1
                    await reply(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    await reply(b"221 2.0.0 bye\r\n")
                    break
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    await reply(b"250 2.0.0 OK\r\n")
                else:
                    await reply(b"502 5.5.2 command not implemented\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def traffic_log(path: Path, start: int, marker_sql: str) -> bytes:
    """The server log from byte ``start`` up to the session that ran ``marker_sql`` (excluded).

    The log is cut where the statistics were reset and where the snapshots ended, so it covers
    the traffic (smoke requests, load, snapshots) and not the seeding or the EXPLAINs.
    """
    lines = path.read_bytes()[start:].splitlines(keepends=True)
    token = marker_sql.split("'")[1].encode()
    end = next(i for i, line in enumerate(lines) if token in line)
    pid = re.search(rb"\[(\d+)\]", lines[end])
    if pid:
        tag = b"[" + pid.group(1) + b"]"
        while end > 0 and tag in lines[end - 1]:
            end -= 1
    return b"".join(lines[:end])


def run(args: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 600) -> str:
    """Run a command in ``sample_app``; its stdout, or exit with its stderr."""
    proc = subprocess.run(
        list(args),
        cwd=APP,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def smoke(base: str, extra: Sequence[tuple[str, str]] = ()) -> None:
    """Request every endpoint once (``SMOKE`` and ``extra``); each must answer 200.

    Each request carries an ``X-Request-ID`` of its own, as Locust's do (see locustfile.py).
    """
    for method, path in (*SMOKE, *extra):
        headers = {"User-Agent": "make_sample-smoke", "X-Request-ID": uuid.uuid4().hex}
        req = urllib.request.Request(base + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"smoke request {method} {path} answered {exc.code}") from None


def version(package: str) -> str:
    """Installed version of ``package``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class Scrubber:
    """Replaces paths of this machine with neutral placeholders, and proves none is left."""

    def __init__(self, replacements: Mapping[str, str]) -> None:
        # longest first, so a folder inside another is replaced by its own placeholder
        self.replacements = sorted(
            ((k, v) for k, v in replacements.items() if k), key=lambda kv: -len(kv[0])
        )
        self.forbidden = [k for k, _ in self.replacements]

    def __call__(self, text: str) -> str:
        for old, new in self.replacements:
            text = text.replace(old, new)
        return text

    def check(self, folder: Path) -> None:
        """Exit when any file under ``folder`` still mentions a forbidden path."""
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            text = data.decode("utf-8", errors="replace")
            for needle in self.forbidden:
                if needle in text:
                    raise SystemExit(
                        f"{path.relative_to(folder)} still contains a local path ({needle!r})"
                    )


def gzip_file(src: Path, dest: Path) -> None:
    """gzip -9 without a name or time in the header, so equal logs give equal files."""
    with (
        open(src, "rb") as fin,
        open(dest, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as fout,
    ):
        shutil.copyfileobj(fin, fout)


def summarise_load(stats_csv: Path) -> dict[str, Any]:
    """Requests, failures and the aggregated row of Locust's stats CSV."""
    with open(stats_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "median_ms": float(total["Median Response Time"]),
        "p95_ms": float(total["95%"]),
        "endpoints": [
            (r["Type"], r["Name"], int(r["Request Count"]))
            for r in rows
            if r["Name"] != "Aggregated"
        ],
    }


def replace_output(staging: Path, out: Path) -> None:
    """Put ``staging`` where ``out`` is, refusing to delete a folder that is not a sample."""
    if out.exists():
        marker = out / "audit.yaml"
        is_sample = marker.is_file() and f"client: {CLIENT}" in marker.read_text(encoding="utf-8")
        if any(out.iterdir()) and not is_sample:
            raise SystemExit(
                f"{out} exists and is not a sample folder (no audit.yaml for {CLIENT!r}); not replacing it"
            )
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder, replaced (default data/sample, data/sample-revisit for the revisit)",
    )
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default="baseline",
        help="release of the shop: baseline (every planted problem) or revisit (PLANTED.md)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the data (default 42)")
    parser.add_argument("--scale", type=float, default=1.0, help="row-count multiplier (default 1)")
    parser.add_argument(
        "--steps", default="4,8,16,32,64,128", help="users per load step (default 4,8,16,32,64,128)"
    )
    parser.add_argument(
        "--step-seconds", type=int, default=15, help="seconds per load step (default 15)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes (default 2)"
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument(
        "--redis-url",
        help="use this Redis server's database instead of a private server (FLUSHDB'd!)",
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the working folder (for debugging)"
    )
    options = parser.parse_args(argv)
    if options.out is None:
        options.out = ROOT / "data" / VARIANTS[options.variant]
    for module in ("gunicorn", "locust", "auditkit.django"):
        if importlib.util.find_spec(module) is None:
            raise SystemExit(
                f"{module} is not installed in this environment (pip install -e '.[dev]')"
            )

    work = Path(tempfile.mkdtemp(prefix="auditkit-sample-"))
    staging = work / "sample"
    for sub in ("django", "capture", "gunicorn", "postgres/explain", "redis", "load"):
        (staging / sub).mkdir(parents=True)
    try:
        generate(Job(options, work, staging))
    finally:
        if options.keep_temp:
            log(f"working folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


@dataclass
class Job:
    """One regeneration: options, folders, and the environment every child process gets."""

    options: argparse.Namespace
    work: Path
    staging: Path
    env: dict[str, str] = field(default_factory=dict)

    def write(self, relpath: str, text: str) -> None:
        """Write ``text`` to ``staging/relpath`` exactly (no newline translation)."""
        (self.staging / relpath).write_text(text, encoding="utf-8", newline="")

    def manage(self, *args: str, env: Mapping[str, str] | None = None, what: str = "") -> str:
        """``manage.py args…`` of the sample app; its standard output."""
        return run([sys.executable, "manage.py", *args], env or self.env, what or args[0])


def generate(job: Job) -> None:
    """Everything between the empty working folder and the finished output folder."""
    options = job.options
    started = dt.datetime.now(dt.UTC)
    job.env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKSHOP_", "DJANGO_"))}
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), job.env.get("PYTHONPATH")]))
    job.env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bookshop.settings",
            "TZ": "UTC",
            "PYTHONHASHSEED": "0",
            "PYTHONPATH": pythonpath,  # this checkout's auditkit: capture app and collectors
            "BOOKSHOP_VARIANT": options.variant,
        }
    )
    redis_cm: contextlib.AbstractContextManager[str] = (
        contextlib.nullcontext(options.redis_url)
        if options.redis_url
        else private_redis(job.work / "redis")
    )
    with (
        ThrowawayPostgres(PG_SETTINGS, database=DATABASE) as pg,
        redis_cm as redis_url,
        SlowSMTPSink() as smtp,
    ):
        server_version = str(pg.execute("SHOW server_version")[0][0])
        log(
            f"PostgreSQL {server_version} cluster up; Redis database {redis_url.rsplit('/', 1)[-1]}; "
            f"SMTP sink on port {smtp.port}"
        )
        job.env.update(
            {
                "BOOKSHOP_DATABASE_URL": pg.dsn,
                "BOOKSHOP_REDIS_URL": redis_url,
                "BOOKSHOP_EMAIL_HOST": "127.0.0.1",
                "BOOKSHOP_EMAIL_PORT": str(smtp.port),
            }
        )
        summary = build_database(job, pg, redis_url)
        log_start = pg.log_path.stat().st_size
        with serve(job) as base:
            extra = [("POST", f"/orders/{summary['orders']}/confirm/")]
            if options.variant == "revisit":
                extra.append(("GET", "/orders/recent/"))
            smoke(base, extra)
            log(
                f"gunicorn up ({options.workers} workers x {options.threads} threads), every endpoint "
                f"answers, {smtp.messages} e-mail sent"
            )
            load = drive_load(job, base, summary)
        log("gunicorn stopped; explaining the planted statements")
        (job.work / "postgresql.log").write_bytes(
            traffic_log(pg.log_path, log_start, pg.sync_log())
        )
        job.manage("explain_planted", "--out", str(job.staging / "postgres/explain"))
        facts = {
            "max_connections": int(pg.execute("SHOW max_connections")[0][0]),
            "log_line_prefix": str(pg.execute("SHOW log_line_prefix")[0][0]),
            "server_version": server_version,
            "redis_version": redis.Redis.from_url(redis_url).info("server")["redis_version"],
            "socket_dir": str(pg.socket_dir),
            "emails": smtp.messages,
        }
    facts.update(
        started=started.isoformat(timespec="seconds"),
        elapsed_s=round(time.monotonic() - _T0),
        summary=summary,
        load=load,
        steps=[int(s) for s in options.steps.split(",")],
        step_seconds=options.step_seconds,
        workers=options.workers,
        threads=options.threads,
        seed=options.seed,
        scale=options.scale,
        variant=options.variant,
        private_redis=not options.redis_url,
    )
    finish(job, facts)


def build_database(job: Job, pg: ThrowawayPostgres, redis_url: str) -> dict[str, Any]:
    """Migrate, seed; then reset statistics and cache so both start with the traffic.

    Returns the seeding summary (row counts, tag slugs). The server log is synced at the end:
    its size is where the kept log starts (as if rotated at the statistics reset).
    """
    job.manage("migrate", "--no-input", "-v", "0")
    log("migrated")
    out = job.manage(
        "seed_bookshop", "--seed", str(job.options.seed), "--scale", str(job.options.scale)
    )
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    log(
        f"seeded: {summary['books']} books, {summary['reviews']} reviews, {summary['customers']} "
        f"customers, {summary['orders']} orders, {summary['order_lines']} order lines"
    )
    # ANALYZE after the reset refills n_live_tup; pg_stat_statements forgets the seeding
    pg.execute("SELECT pg_stat_reset()")
    pg.execute("VACUUM ANALYZE")
    pg.execute("SELECT pg_stat_statements_reset()")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # only our database, never FLUSHALL
    client.close()
    pg.sync_log()
    time.sleep(0.3)  # let the marker session's disconnection line land before the cut
    return summary


@contextlib.contextmanager
def serve(job: Job) -> Iterator[str]:
    """gunicorn serving the app on a free port; access, error, query and capture logs in ``work``."""
    port = free_port()
    (job.work / "capture").mkdir(exist_ok=True)
    env = {
        **job.env,
        "BOOKSHOP_BIND": f"127.0.0.1:{port}",
        "BOOKSHOP_WEB_WORKERS": str(job.options.workers),
        "BOOKSHOP_WEB_THREADS": str(job.options.threads),
        "BOOKSHOP_QUERY_LOG": str(job.work / "queries.log"),
        "BOOKSHOP_ACCESS_LOG": str(job.work / "access.log"),
        "BOOKSHOP_CAPTURE_DIR": str(job.work / "capture"),
    }
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    usage = subprocess.run(
        [*args[:3], "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--no-control-socket" in usage:  # newer gunicorn would open a socket in $HOME
        args.append("--no-control-socket")
    args += ["--error-logfile", str(job.work / "gunicorn-error.log")]
    web = subprocess.Popen(
        [*args, "bookshop.wsgi:application"],
        cwd=APP,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, web, "gunicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        # graceful: in-flight requests finish, the workers exit normally, so the logs are
        # flushed and the capture app's writer drains its queue (atexit)
        stop_process(web)


def start_collector(job: Job, what: str, args: Sequence[str], ready: str) -> subprocess.Popen[Any]:
    """``auditkit collect <what> args…`` in the background, as a consultant runs it beside a load
    test; returns once its first snapshot is written (``ready``: a glob under the output folder).
    Its own output goes to ``work/collect-<what>.log``."""
    out = open(job.work / f"collect-{what}.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditkit", "collect", what, *args],
        cwd=job.work,
        env=job.env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    deadline = time.monotonic() + 60
    while not any(job.staging.glob(ready)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            text = (job.work / f"collect-{what}.log").read_text(errors="replace")
            raise SystemExit(f"auditkit collect {what} wrote no first snapshot:\n{text[-3000:]}")
        time.sleep(0.1)
    return proc


def finish_collector(job: Job, what: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Wait for a background collector; exit with its output when it failed."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
    if proc.returncode != 0:
        text = (job.work / f"collect-{what}.log").read_text(errors="replace")
        raise SystemExit(f"auditkit collect {what} failed ({proc.returncode}):\n{text[-3000:]}")


def drive_load(job: Job, base: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Locust, headless, with the stepped shape of ``locustfile.py``; CSVs into ``load/``.

    The read-only collectors run beside it, started first as a consultant would:
    ``auditkit collect postgres`` takes one snapshot before the load and one after it (the
    audit window; ``--explain-top 0``: the planted statements get EXPLAIN ANALYZE below), and
    ``auditkit collect redis`` an INFO snapshot at the start of every step and one after the
    last, so the cache counters form a series.
    """
    options = job.options
    env = {
        **job.env,
        "BOOKSHOP_BOOKS": str(summary["books"]),
        "BOOKSHOP_CUSTOMERS": str(summary["customers"]),
        "BOOKSHOP_ORDERS": str(summary["orders"]),
        "BOOKSHOP_TAGS": ",".join(summary["tags"]),
        "BOOKSHOP_STEPS": options.steps,
        "BOOKSHOP_STEP_S": str(options.step_seconds),
    }
    steps = len(options.steps.split(","))
    run_time = steps * options.step_seconds
    # the second PostgreSQL snapshot comes after Locust's hard stop (run_time + 10 s) and after
    # gunicorn has answered what was still queued
    pg_every = run_time + 25
    pg = start_collector(
        job,
        "postgres",
        [
            *("--dsn-env", "BOOKSHOP_DATABASE_URL", "--out", str(job.staging / "postgres")),
            *("--every", f"{pg_every}s", "--count", "2", "--explain-top", "0"),
        ],
        "postgres/snapshots/pg_stat_database-*.csv",
    )
    rd = start_collector(
        job,
        "redis",
        [
            *("--url-env", "BOOKSHOP_REDIS_URL", "--out", str(job.staging / "redis")),
            *("--every", f"{options.step_seconds}s", "--count", str(steps + 2)),
        ],
        "redis/info-*.txt",
    )
    log(
        f"collectors started; load: {options.steps} users, {options.step_seconds}s per step ({run_time}s)"
    )
    args = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--host", base]
    args += ["--csv", str(job.staging / "load/locust"), "--csv-full-history"]
    args += ["--run-time", f"{run_time + 10}s", "--only-summary", "--loglevel", "WARNING"]
    # exit status 1 only says some requests failed: under saturation that is a result, not an error
    proc = subprocess.run(
        args, cwd=APP, env=env, capture_output=True, text=True, timeout=run_time + 120, check=False
    )
    stats = job.staging / "load/locust_stats.csv"
    if not stats.exists():
        stop_process(pg)
        stop_process(rd)
        raise SystemExit(f"locust wrote no statistics ({proc.returncode}):\n{proc.stderr[-3000:]}")
    if pg.poll() is not None:
        raise SystemExit("the PostgreSQL collector finished before the load did: raise pg_every")
    load = summarise_load(stats)
    log(
        f"load done: {load['requests']} requests, {load['failures']} failures, p95 {load['p95_ms']:.0f} ms; "
        "waiting for the collectors' last snapshots"
    )
    finish_collector(job, "redis", rd, timeout=options.step_seconds * (steps + 2) + 60)
    finish_collector(job, "postgres", pg, timeout=pg_every + 60)
    return load


def finish(job: Job, facts: Mapping[str, Any]) -> None:
    """Scrub, compress, describe, verify, and put the folder in place."""
    replacements = {
        facts["socket_dir"]: "<pg-socket-dir>",
        str(job.work): "<workdir>",
        str(ROOT): "<repo>",
        str(Path.home()): "<home>",
    }
    if sys.prefix != sys.base_prefix:  # a virtual environment (never replace /usr)
        replacements[sys.prefix] = "<venv>"
    scrub = Scrubber(replacements)
    for name, dest in (
        ("queries.log", "django/queries.log.gz"),
        ("postgresql.log", "postgres/postgresql.log.gz"),
    ):
        src = job.work / name
        src.write_text(scrub(src.read_text(encoding="utf-8")), encoding="utf-8")
        gzip_file(src, job.staging / dest)
    job.write("access.log", scrub((job.work / "access.log").read_text(encoding="utf-8")))
    job.write(
        "gunicorn/error.log", scrub((job.work / "gunicorn-error.log").read_text(encoding="utf-8"))
    )
    copy_capture(job.work / "capture", job.staging / "capture", scrub)
    for path in job.staging.rglob("*"):
        if path.is_file() and path.suffix in {".csv", ".txt", ".json", ".md"}:
            text = path.read_text(encoding="utf-8")
            if scrub(text) != text:
                path.write_text(scrub(text), encoding="utf-8", newline="")
    write_audit_yaml(job.staging, facts)
    write_readme(job.staging, facts)
    missing = [f for f in EXPECTED_FILES if not any(p.is_file() for p in job.staging.glob(f))]
    if missing:
        raise SystemExit(f"missing output files: {missing}")
    scrub.check(job.staging)
    size = sum(p.stat().st_size for p in job.staging.rglob("*") if p.is_file())
    if size > MAX_BYTES:
        raise SystemExit(
            f"the sample is {size / 1e6:.1f} MB, over the {MAX_BYTES / 1e6:.0f} MB budget: shorten the load"
        )
    replace_output(job.staging, job.options.out)
    log(f"wrote {job.options.out} ({size / 1e6:.2f} MB) in {time.monotonic() - _T0:.0f}s")


def copy_capture(src: Path, dest: Path, scrub: Scrubber) -> None:
    """The capture app's folder as a client hands it over: JSON lines gzipped, the model dump
    as is; local paths scrubbed, and this machine's name (in file names and meta records)
    replaced by :data:`HOST_PLACEHOLDER`."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname())[:40] or "host"
    host_field = re.compile(r'("host"\s*:\s*)"' + re.escape(host) + '"')
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        text = scrub(path.read_text(encoding="utf-8"))
        if path.suffix == ".jsonl":
            text = host_field.sub(rf'\1"{HOST_PLACEHOLDER}"', text)
            name = path.name.replace(f"-{host}-", f"-{HOST_PLACEHOLDER}-")
            plain = dest / name
            plain.write_text(text, encoding="utf-8")
            gzip_file(plain, dest / f"{name}.gz")
            plain.unlink()
            if f'"{host}"' in text:
                raise SystemExit(f"{name} still names this machine ({host!r})")
        else:
            (dest / path.name).write_text(text, encoding="utf-8")


def write_audit_yaml(folder: Path, facts: Mapping[str, Any]) -> None:
    """The client's audit.yaml: who, how the logs are formatted, how it was deployed."""
    config = {
        "client": CLIENT,
        "formats": [
            {
                "match": "postgres/postgresql.log*",
                "format": "postgres_stderr",
                "options": {"prefix": facts["log_line_prefix"]},
            },
        ],
        "deployment": {
            "web_server": f"gunicorn {version('gunicorn')} (gthread)",
            "web_workers": facts["workers"],
            "threads_per_worker": facts["threads"],
            "database": f"PostgreSQL {facts['server_version']}",
            "max_connections": facts["max_connections"],
            "conn_max_age": 0,
            "cache": f"Redis {facts['redis_version']} (django.core.cache.backends.redis.RedisCache)",
        },
    }
    header = (
        "# Written by scripts/make_sample.py: the Sample Bookshop (sample_app/) under a Locust load.\n"
        f"# Release of the shop: {facts['variant']} (BOOKSHOP_VARIANT, see sample_app/PLANTED.md).\n"
        "# deployment: what the load test actually ran.\n"
    )
    (folder / "audit.yaml").write_text(
        header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def write_readme(folder: Path, facts: Mapping[str, Any]) -> None:
    """The folder's README.md: how it was produced and what is in it."""
    s, load = facts["summary"], facts["load"]
    revisit = facts["variant"] == "revisit"
    endpoint_rows = "\n".join(
        f"| {method} | `{name}` | {n} |" for method, name, n in load["endpoints"]
    )
    redis_what = (
        f"A private Redis {facts['redis_version']} server (database {REDIS_DB})"
        if facts["private_redis"]
        else f"Redis {facts['redis_version']} (one database of a shared server, flushed first)"
    )
    minutes = -(-facts["elapsed_s"] // 60)  # rounded up
    statuses = ", ".join(f"{k} {v}" for k, v in s["orders_by_status"].items())
    steps = len(facts["steps"])
    folder_name = "data/sample-revisit" if revisit else "data/sample"
    command = (
        "python scripts/make_sample.py --variant revisit --out data/sample-revisit"
        if revisit
        else "python scripts/make_sample.py --out data/sample"
    )
    if revisit:
        title = f"# {folder_name} — the Sample Bookshop, revisited"
        intro = """The same client as [`data/sample`](../sample/README.md), audited again after a release:
the same shop, seed and load, run as its **revisit** release (`BOOKSHOP_VARIANT=revisit`). The
client fixed three of the first audit's findings and shipped a new page with a new problem:

| | what changed | where |
|---|---|---|
| P1 fixed | `book_list` joins the authors (`select_related("author")`): 41 statements → 1 | `GET /books/` |
| P4 fixed | expression index `orders_cust_email_u_c2ad1c_idx` on `UPPER(email)` (`orders/migrations_revisit/0002_…`) | `GET /customers/lookup/` |
| P6 fixed | `catalog_book_pages_idx` dropped (`catalog/migrations_revisit/0002_…`) | `catalog_book` |
| R1 new | the staff's recent-orders page prints each order's customer: forward-FK N+1 (`Order.customer`), 26 statements per request | `GET /orders/recent/` |

Every other planted problem (P2, P3, P5, P7–P12) and both controls (C1, C2) are unchanged. A
comparison of the two audits must report P1, P4 and P6 as resolved, R1 as new, and the rest
as persisting — see "Revisit" in [`sample_app/PLANTED.md`](../../sample_app/PLANTED.md)."""
    else:
        title = f"# {folder_name} — the Sample Bookshop"
        intro = """The embedded default client of auditkit: **real** output of a real small Django application
(`sample_app/`, a bookshop) with planted, documented performance problems — see
[`sample_app/PLANTED.md`](../../sample_app/PLANTED.md) for each problem, where it is, what
auditkit should find and the expected fix. [`data/sample-revisit`](../sample-revisit/README.md)
is the same client after a release that fixed three of them and added one."""
    text = f"""{title}

{intro}

Nothing here is hand-written: every file was written by the software named below, as a
consultant who followed auditkit's own gathering advice would receive it (the capture app in
the project, the read-only collectors beside a load test), then only scrubbed of local paths
and this machine's name and gzip-compressed.

Regenerate it (about {minutes} minute{"s" if minutes > 1 else ""}; needs PostgreSQL server binaries with
contrib, `redis-server`, and gunicorn + Locust in the environment):

```sh
{command}
```

This copy: generated {facts["started"]} in {facts["elapsed_s"]} s, release `{facts["variant"]}`, seed {facts["seed"]},
scale {facts["scale"]}, load steps {facts["steps"]} users × {facts["step_seconds"]} s.

## How it was produced

1. A private PostgreSQL {facts["server_version"]} cluster (`devtools.postgres.ThrowawayPostgres`):
   `pg_stat_statements` preloaded (`track = all`), `log_min_duration_statement = 0`,
   `log_line_prefix = '{facts["log_line_prefix"]}'`, `log_connections`/`log_disconnections` on,
   `track_io_timing` on, `lc_messages = C`, UTC; `max_connections = {facts["max_connections"]}`.
   {redis_what} for Django's cache. A local SMTP relay (a minimal asyncio server in the script)
   that waits {SMTP_GREETING_DELAY_S:g} s before its greeting and {SMTP_DATA_DELAY_S:g} s before accepting a message, like a
   distant relay; it only counts messages ({facts["emails"]} received).
2. `manage.py migrate`, then `manage.py seed_bookshop --seed {facts["seed"]}` (COPY, deterministic):
   {s["authors"]} authors, {s["books"]} books, {s["book_tags"]} book–tag links, {s["reviews"]} reviews,
   {s["customers"]} customers, {s["orders"]} orders ({statuses}), {s["order_lines"]} order lines.
   Then `pg_stat_reset()`, `VACUUM ANALYZE`, `pg_stat_statements_reset()`: the statistics describe the
   traffic only, and so does the server log, kept from that moment on (as if rotated then).
3. gunicorn {version("gunicorn")} with {facts["workers"]} gthread workers × {facts["threads"]} threads and
   `--error-logfile`, Django {version("django")} on psycopg {version("psycopg")}, `CONN_MAX_AGE = 0`
   (Django's default), e-mail through Django's SMTP backend. auditkit's capture app installed as its
   documentation says (`auditkit.django` in `INSTALLED_APPS`, `CaptureMiddleware` first in
   `MIDDLEWARE`, `AUDITKIT_CAPTURE = {{"dir": …}}`, every other key at its default: every request,
   parameters redacted), and the `django.db.backends` log on.
4. One smoke request per endpoint. Then, as a consultant runs them beside a load test:
   `auditkit collect postgres --every <load + 25 s> --count 2 --explain-top 0` (one snapshot just
   before the load, one after it) and `auditkit collect redis --every {facts["step_seconds"]}s --count {steps + 2}` (an
   `INFO` snapshot at the start of every load step and one after the last). Locust {version("locust")}
   headless with a stepped shape ({facts["steps"]} users, {facts["step_seconds"]} s each, 0.5–1.5 s think time;
   each request carries its own `X-Request-ID`, as a front proxy would add): the last steps
   saturate the two workers. {load["requests"]} requests, {load["failures"]} failures, {load["rps"]:.1f} requests/s on
   average, median {load["median_ms"]:.0f} ms, p95 {load["p95_ms"]:.0f} ms.
5. `manage.py explain_planted` ran EXPLAIN (ANALYZE, BUFFERS) of the planted slow statements after the
   load (so the collector was not asked for generic plans of the same statements).

Python {platform.python_version()}.

## One workload, nothing counted twice

The capture app's query log and Django's `django.db.backends` log time the same statements
from the application, and the PostgreSQL log and `pg_stat_statements` time them again on the
server. The audit times everything with one source (`auditkit.analysis.workload.choose_workload`):
statements the application timed *and tied to their requests* come first, and of those the
capture app's JSON lines before the Django log — so the capture times this audit, and the
Django log, the server log and `pg_stat_statements` are only quoted beside it (the report's
reconciliation). `django/queries.log.gz` is kept for that comparison and because it is what a
client without the capture app sends; no statement is counted twice.

## Files

| file | what | written by |
|---|---|---|
| `audit.yaml` | client name, log format hint, deployment facts (workers, threads, max_connections) | this script |
| `access.log` | gunicorn access log: combined format + `rt=` request time (s) + `rid=` request id | gunicorn |
| `gunicorn/error.log` | gunicorn's error log: start, worker boots, shutdown | gunicorn (`--error-logfile`) |
| `capture/queries-*.jsonl.gz` | per worker process: every statement (SQL with placeholders, parameters redacted, duration, request id, route) and one record per request (route, URL name, view, status, duration, `cpu_ms`, `db_ms`, `cache_ms`, `mail_ms`, `http_ms`) — `docs/formats/jsonl-queries.md` | auditkit capture app |
| `capture/cache-*.jsonl.gz` | per worker process: every cache operation (key, hit or miss, TTL, duration, request id) | auditkit capture app |
| `capture/models.json` | the model dump, written by the capture app at start-up: models, fields, relations, indexes | auditkit capture app |
| `django/queries.log.gz` | `django.db.backends` DEBUG log, prefix `<ISO time UTC> DEBUG pid=… thread=… request_id=…` | Django logging |
| `postgres/postgresql.log.gz` | server log: every statement with its duration, connections, checkpoints | PostgreSQL |
| `postgres/pg_stat_statements.csv`, `pg_stat_user_tables.csv`, `pg_stat_user_indexes.csv`, `pg_statio_user_tables.csv`, `pg_statio_user_indexes.csv`, `pg_stat_database.csv` | the cumulative statistics after the load (`collected_at` in every row) | `auditkit collect postgres` |
| `postgres/snapshots/<view>-<UTC time>.csv` | the same six views just before the load: the first snapshot of the window | `auditkit collect postgres` |
| `postgres/pg_indexes.csv`, `pg_relation_sizes.csv`, `pg_stats.csv`, `pg_settings.csv` | index definitions and details, sizes, planner statistics (no values), every setting | `auditkit collect postgres` |
| `postgres/collect_postgres.md` | when the collector ran, what it read and skipped | `auditkit collect postgres` |
| `postgres/explain/*.json`, `*.txt` | EXPLAIN (ANALYZE, BUFFERS) of the planted statements; `README.md` there names each | PostgreSQL |
| `redis/info-<UTC time>.txt` | `INFO ALL`, one per load step plus one before and one after (CRLF, as sent) | `auditkit collect redis` |
| `redis/redis_config.json`, `redis_slowlog.json`, `collect_redis.md` | `CONFIG GET *`, the slow log (command names only), what was collected | `auditkit collect redis` |
| `load/locust_*.csv` | Locust's stats, per-second history (per endpoint), failures, exceptions | Locust |

Statements, requests and cache operations are tied together by request id: the `X-Request-ID`
of each request is the `rid=` of the access log, the `request_id=` of the Django log and the
`request_id` of the capture app's records. Local paths (the cluster's socket folder, the working
folder) are replaced by placeholders such as `<pg-socket-dir>`, the machine's name by
`{HOST_PLACEHOLDER}`. All people are fictitious (`customer42@example.com`).

Some of these files wait for a loader on another line of work and are listed as unrecognised
in the report's data-quality section until then: `gunicorn/error.log` (the gunicorn error-log
loader), `postgres/pg_statio_user_*.csv` and `postgres/pg_stat_database.csv` with their snapshots
(the PostgreSQL cumulative-view loaders), `capture/cache-*.jsonl.gz` (the cache-events loader).

## Traffic by endpoint

| method | endpoint | requests |
|---|---|---:|
{endpoint_rows}
"""
    (folder / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
