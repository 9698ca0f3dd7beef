"""Regenerate ``data/sample``: real output of the Sample Bookshop under real load.

    python scripts/make_sample.py [--out data/sample] [--seed 42] [--steps 4,8,16,32,64,128]

What it does, in order (a few minutes in all):

1. starts a private PostgreSQL cluster (:class:`devtools.postgres.ThrowawayPostgres`:
   ``pg_stat_statements`` preloaded, every statement logged) and a private Redis server
   (or, with ``--redis-url``, uses one database of an existing server, flushed with FLUSHDB);
2. migrates ``sample_app`` and seeds it deterministically (``manage.py seed_bookshop``), then
   runs VACUUM ANALYZE and resets the statistics, so the counters describe the traffic only;
3. serves the app with gunicorn (gthread workers) writing a combined access log with request
   time and id, and Django's ``django.db.backends`` log with a request-id prefix;
4. checks every endpoint once (the smoke requests are in the logs too), snapshots
   ``pg_stat_statements`` and Redis INFO, drives a stepped Locust load whose last step
   saturates the server, and snapshots again, with table, index and size statistics;
5. EXPLAIN (ANALYZE, BUFFERS)s the planted slow statements (``manage.py explain_planted``);
6. scrubs paths of this machine from every file, gzips the two big logs, writes
   ``audit.yaml`` and ``README.md``, and replaces the output folder.

Needs the ``dev`` extras (Locust) and gunicorn in the environment, PostgreSQL server binaries
with contrib, and ``redis-server`` (or ``--redis-url``). The planted problems are described in
``sample_app/PLANTED.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import gzip
import importlib.metadata
import importlib.util
import io
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
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_app"
sys.path.insert(0, str(ROOT))

from devtools.postgres import ThrowawayPostgres  # noqa: E402

CLIENT = "Sample Bookshop"
#: the size budget of the output folder
MAX_BYTES = 5 * 1024 * 1024
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

#: files written to the output folder; the test checks they are all there
EXPECTED_FILES = (
    "README.md",
    "audit.yaml",
    "access.log",
    "django/queries.log.gz",
    "django/models.json",
    "postgres/postgresql.log.gz",
    "postgres/pg_stat_statements.csv",
    "postgres/pg_stat_statements_before.csv",
    "postgres/pg_stat_user_tables.csv",
    "postgres/pg_stat_user_indexes.csv",
    "postgres/pg_indexes.csv",
    "postgres/relation_sizes.csv",
    "postgres/pg_settings.csv",
    "postgres/explain/README.md",
    "redis/info_before.txt",
    "redis/info_after.txt",
    "load/locust_stats.csv",
    "load/locust_stats_history.csv",
    "load/locust_failures.csv",
    "load/locust_exceptions.csv",
)

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

PG_QUERIES = {
    "pg_stat_statements": (
        "SELECT d.datname, r.rolname, s.* FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid "
        "ORDER BY s.total_exec_time DESC"
    ),
    "pg_stat_user_tables": "SELECT * FROM pg_stat_user_tables ORDER BY schemaname, relname",
    "pg_stat_user_indexes": "SELECT * FROM pg_stat_user_indexes ORDER BY schemaname, relname, indexrelname",
    "pg_indexes": (
        "SELECT * FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY schemaname, tablename, indexname"
    ),
    "relation_sizes": (
        "SELECT n.nspname AS schemaname, c.relname, CASE c.relkind WHEN 'r' THEN 'table' "
        "WHEN 'i' THEN 'index' END AS kind, i.indrelid::regclass::text AS table_name, "
        "c.reltuples::bigint AS reltuples, pg_relation_size(c.oid) AS size_bytes, "
        "pg_total_relation_size(c.oid) AS total_size_bytes "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "WHERE c.relkind IN ('r', 'i') AND n.nspname = 'public' "
        "ORDER BY pg_total_relation_size(c.oid) DESC, c.relname"
    ),
    "pg_settings": (
        "SELECT name, setting, unit, source FROM pg_settings WHERE name IN ("
        "'server_version', 'max_connections', 'shared_buffers', 'work_mem', "
        "'maintenance_work_mem', 'effective_cache_size', 'random_page_cost', "
        "'effective_io_concurrency', 'max_parallel_workers_per_gather', 'jit', "
        "'shared_preload_libraries', 'pg_stat_statements.track', 'track_io_timing', "
        "'log_min_duration_statement', 'log_line_prefix', 'log_timezone', 'lc_messages', "
        "'log_connections', 'log_disconnections', 'log_temp_files', 'log_lock_waits', "
        "'fsync', 'synchronous_commit') ORDER BY name"
    ),
}


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


def redis_info(url: str) -> str:
    """``INFO all`` exactly as the server sends it (what ``redis-cli INFO all`` prints)."""
    client = redis.Redis.from_url(url)
    client.set_response_callback("INFO", lambda response, **options: response)  # keep it raw
    try:
        raw = client.execute_command("INFO", "all")
    finally:
        client.close()
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def copy_csv(dsn: str, query: str) -> str:
    """``COPY (query) TO STDOUT (FORMAT csv, HEADER)`` — byte for byte what psql's ``\\copy`` writes."""
    buf = io.BytesIO()
    sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur, cur.copy(sql) as copy:
        for chunk in copy:
            buf.write(chunk)
    return buf.getvalue().decode()


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


def smoke(base: str) -> None:
    """Request every endpoint once; each must answer 200."""
    for method, path in SMOKE:
        req = urllib.request.Request(
            base + path, method=method, headers={"User-Agent": "make_sample-smoke"}
        )
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
        "--out", type=Path, default=ROOT / "data" / "sample", help="output folder (replaced)"
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
    for module in ("gunicorn", "locust", "auditkit.django"):
        if importlib.util.find_spec(module) is None:
            raise SystemExit(
                f"{module} is not installed in this environment (pip install -e '.[dev]')"
            )

    work = Path(tempfile.mkdtemp(prefix="auditkit-sample-"))
    staging = work / "sample"
    for sub in ("django", "postgres/explain", "redis", "load"):
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
    job.env.update(
        {"DJANGO_SETTINGS_MODULE": "bookshop.settings", "TZ": "UTC", "PYTHONHASHSEED": "0"}
    )
    redis_cm: contextlib.AbstractContextManager[str] = (
        contextlib.nullcontext(options.redis_url)
        if options.redis_url
        else private_redis(job.work / "redis")
    )
    with ThrowawayPostgres(PG_SETTINGS, database=DATABASE) as pg, redis_cm as redis_url:
        server_version = str(pg.execute("SHOW server_version")[0][0])
        log(
            f"PostgreSQL {server_version} cluster up; Redis database {redis_url.rsplit('/', 1)[-1]}"
        )
        job.env.update({"BOOKSHOP_DATABASE_URL": pg.dsn, "BOOKSHOP_REDIS_URL": redis_url})
        summary = build_database(job, pg, redis_url)
        log_start = pg.log_path.stat().st_size
        with serve(job) as base:
            smoke(base)
            log(
                f"gunicorn up ({options.workers} workers x {options.threads} threads), every endpoint answers"
            )
            job.write(
                "postgres/pg_stat_statements_before.csv",
                copy_csv(pg.dsn, PG_QUERIES["pg_stat_statements"]),
            )
            job.write("redis/info_before.txt", redis_info(redis_url))
            load = drive_load(job, base, summary)
            for name in PG_QUERIES:
                job.write(f"postgres/{name}.csv", copy_csv(pg.dsn, PG_QUERIES[name]))
            job.write("redis/info_after.txt", redis_info(redis_url))
        (job.work / "postgresql.log").write_bytes(
            traffic_log(pg.log_path, log_start, pg.sync_log())
        )
        log("statistics and logs collected; explaining the planted statements")
        job.manage("explain_planted", "--out", str(job.staging / "postgres/explain"))
        facts = {
            "max_connections": int(pg.execute("SHOW max_connections")[0][0]),
            "log_line_prefix": str(pg.execute("SHOW log_line_prefix")[0][0]),
            "server_version": server_version,
            "redis_version": redis.Redis.from_url(redis_url).info("server")["redis_version"],
            "socket_dir": str(pg.socket_dir),
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
        private_redis=not options.redis_url,
    )
    finish(job, facts)


def build_database(job: Job, pg: ThrowawayPostgres, redis_url: str) -> dict[str, Any]:
    """Migrate, dump the models, seed; then reset statistics and cache so both start with the traffic.

    Returns the seeding summary (row counts, tag slugs). The server log is synced at the end:
    its size is where the kept log starts (as if rotated at the statistics reset).
    """
    job.manage("migrate", "--no-input", "-v", "0")
    # what a client runs for the consultant: the model dump (models and fields, no rows)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), job.env.get("PYTHONPATH")]))
    job.manage(
        "auditkit_dump_models",
        "-o",
        str(job.staging / "django/models.json"),
        env={**job.env, "BOOKSHOP_AUDITKIT_APP": "1", "PYTHONPATH": pythonpath},
    )
    log("migrated, models dumped")
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
    """gunicorn serving the app on a free port, with the access and query logs in ``work``."""
    port = free_port()
    env = {
        **job.env,
        "BOOKSHOP_BIND": f"127.0.0.1:{port}",
        "BOOKSHOP_WEB_WORKERS": str(job.options.workers),
        "BOOKSHOP_WEB_THREADS": str(job.options.threads),
        "BOOKSHOP_QUERY_LOG": str(job.work / "queries.log"),
        "BOOKSHOP_ACCESS_LOG": str(job.work / "access.log"),
        "BOOKSHOP_ERROR_LOG": str(job.work / "gunicorn-error.log"),
    }
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    usage = subprocess.run(
        [*args[:3], "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--no-control-socket" in usage:  # newer gunicorn would open a socket in $HOME
        args.append("--no-control-socket")
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
        stop_process(web)  # graceful: in-flight requests finish, the logs are flushed


def drive_load(job: Job, base: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Locust, headless, with the stepped shape of ``locustfile.py``; CSVs into ``load/``."""
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
    run_time = len(options.steps.split(",")) * options.step_seconds
    log(f"load: {options.steps} users, {options.step_seconds}s per step ({run_time}s)")
    args = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--host", base]
    args += ["--csv", str(job.staging / "load/locust"), "--csv-full-history"]
    args += ["--run-time", f"{run_time + 10}s", "--only-summary", "--loglevel", "WARNING"]
    # exit status 1 only says some requests failed: under saturation that is a result, not an error
    proc = subprocess.run(
        args, cwd=APP, env=env, capture_output=True, text=True, timeout=run_time + 120, check=False
    )
    stats = job.staging / "load/locust_stats.csv"
    if not stats.exists():
        raise SystemExit(f"locust wrote no statistics ({proc.returncode}):\n{proc.stderr[-3000:]}")
    load = summarise_load(stats)
    log(
        f"load done: {load['requests']} requests, {load['failures']} failures, p95 {load['p95_ms']:.0f} ms"
    )
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
    for path in job.staging.rglob("*"):
        if path.is_file() and path.suffix in {".csv", ".txt", ".json", ".md"}:
            text = path.read_text(encoding="utf-8")
            if scrub(text) != text:
                path.write_text(scrub(text), encoding="utf-8", newline="")
    write_audit_yaml(job.staging, facts)
    write_readme(job.staging, facts)
    missing = [f for f in EXPECTED_FILES if not (job.staging / f).is_file()]
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
        # the snapshot before the load is a baseline to subtract, not more statements
        "ignore": ["postgres/pg_stat_statements_before.csv"],
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
        "# deployment: what the load test actually ran.\n"
    )
    (folder / "audit.yaml").write_text(
        header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def write_readme(folder: Path, facts: Mapping[str, Any]) -> None:
    """data/sample/README.md: how the folder was produced and what is in it."""
    s, load = facts["summary"], facts["load"]
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
    text = f"""# data/sample — the Sample Bookshop

The embedded default client of auditkit: **real** output of a real small Django application
(`sample_app/`, a bookshop) with planted, documented performance problems — see
[`sample_app/PLANTED.md`](../../sample_app/PLANTED.md) for each problem, where it is, what
auditkit should find and the expected fix. Nothing here is hand-written: every file was written
by the software named below, then only scrubbed of local paths and gzip-compressed.

Regenerate it (about {minutes} minute{"s" if minutes > 1 else ""}; needs PostgreSQL server binaries with
contrib, `redis-server`, and gunicorn + Locust in the environment):

```sh
python scripts/make_sample.py --out data/sample
```

This copy: generated {facts["started"]} in {facts["elapsed_s"]} s, seed {facts["seed"]},
scale {facts["scale"]}, load steps {facts["steps"]} users × {facts["step_seconds"]} s.

## How it was produced

1. A private PostgreSQL {facts["server_version"]} cluster (`devtools.postgres.ThrowawayPostgres`):
   `pg_stat_statements` preloaded (`track = all`), `log_min_duration_statement = 0`,
   `log_line_prefix = '{facts["log_line_prefix"]}'`, `log_connections`/`log_disconnections` on,
   `track_io_timing` on, `lc_messages = C`, UTC; `max_connections = {facts["max_connections"]}`.
   {redis_what} for Django's cache.
2. `manage.py migrate`, then `manage.py seed_bookshop --seed {facts["seed"]}` (COPY, deterministic):
   {s["authors"]} authors, {s["books"]} books, {s["book_tags"]} book–tag links, {s["reviews"]} reviews,
   {s["customers"]} customers, {s["orders"]} orders ({statuses}), {s["order_lines"]} order lines.
   Then `pg_stat_reset()`, `VACUUM ANALYZE`, `pg_stat_statements_reset()`: the statistics describe the
   traffic only, and so does the server log, kept from that moment on (as if rotated then).
3. gunicorn {version("gunicorn")} with {facts["workers"]} gthread workers × {facts["threads"]} threads,
   Django {version("django")} on psycopg {version("psycopg")}, `CONN_MAX_AGE = 0` (Django's default).
   One smoke request per endpoint, then Locust {version("locust")} headless with a stepped shape
   ({facts["steps"]} users, {facts["step_seconds"]} s each, 0.5–1.5 s think time): the last steps saturate
   the two workers. {load["requests"]} requests, {load["failures"]} failures, {load["rps"]:.1f} requests/s on
   average, median {load["median_ms"]:.0f} ms, p95 {load["p95_ms"]:.0f} ms.
4. `manage.py explain_planted` ran EXPLAIN (ANALYZE, BUFFERS) of the planted slow statements after the load.

Python {platform.python_version()}.

## Files

| file | what | written by |
|---|---|---|
| `audit.yaml` | client name, log format hint, deployment facts (workers, threads, max_connections) | this script |
| `access.log` | gunicorn access log: combined format + `rt=` request time (s) + `rid=` request id | gunicorn |
| `django/models.json` | the model dump (`manage.py auditkit_dump_models`): models, fields, relations, indexes | auditkit.django |
| `django/queries.log.gz` | `django.db.backends` DEBUG log, prefix `<ISO time UTC> DEBUG pid=… thread=… request_id=…` | Django logging |
| `postgres/postgresql.log.gz` | server log: every statement with its duration, connections, checkpoints | PostgreSQL |
| `postgres/pg_stat_statements.csv` | `pg_stat_statements` joined with `datname`, `rolname`, after the load | PostgreSQL COPY |
| `postgres/pg_stat_statements_before.csv` | the same after the smoke requests, before the load: a baseline to subtract (`ignore`d by `audit.yaml`) | PostgreSQL COPY |
| `postgres/pg_stat_user_tables.csv` | table access statistics after the load | PostgreSQL COPY |
| `postgres/pg_stat_user_indexes.csv` | index usage after the load (`idx_scan = 0`: unused) | PostgreSQL COPY |
| `postgres/pg_indexes.csv` | every index definition | PostgreSQL COPY |
| `postgres/relation_sizes.csv` | table and index sizes, row estimates | PostgreSQL COPY |
| `postgres/pg_settings.csv` | the server settings that matter to an audit | PostgreSQL COPY |
| `postgres/explain/*.json`, `*.txt` | EXPLAIN (ANALYZE, BUFFERS) of the planted statements; `README.md` there names each | PostgreSQL |
| `redis/info_before.txt`, `info_after.txt` | `INFO all` before and after the load (CRLF, as sent) | Redis |
| `load/locust_*.csv` | Locust's stats, per-second history (per endpoint), failures, exceptions | Locust |

Statements are tied together by request id: the `X-Request-ID` the app returns is the `rid=` of
the access log and the `request_id=` of the query log. Local paths (the cluster's socket
folder) are replaced by placeholders such as `<pg-socket-dir>`. All people are fictitious
(`customer42@example.com`).

## Traffic by endpoint

| method | endpoint | requests |
|---|---|---:|
{endpoint_rows}
"""
    (folder / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
