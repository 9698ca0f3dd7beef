"""Throwaway PostgreSQL clusters, started from the installed server binaries.

Tests that compare auditkit with the server itself (pg_stat_statements, the statement log),
the pgBadger benchmark and the sample-data script all need a PostgreSQL whose settings they
choose: ``pg_stat_statements`` preloaded, every statement logged to a file of known name and
prefix. The system server is not configured that way and must not be reconfigured, so each
of them starts a private cluster in a temporary directory, uses it and throws it away.

The API (everything else is private)::

    from devtools.postgres import ThrowawayPostgres, available, find_bindir

    reason = available()                # None, or why no cluster can be started here
    find_bindir()                       # the server's bin folder (pgbench, psql live there too)
    with ThrowawayPostgres({"log_min_duration_statement": 0}, tcp=False) as pg:
        pg.dsn                          # libpq URI over the Unix socket in the cluster's dir
        pg.socket_dir, pg.port          # for command-line clients: -h socket_dir -p port
        pg.tcp_dsn                      # same over 127.0.0.1:<free port> when tcp=True, else None
        pg.execute("SELECT 1")          # -> [(1,)]; autocommit, one connection per call
        marker = pg.sync_log()          # wait until everything so far is in the log file
        pg.log_path                     # the server log (log_filename is fixed)
        pg.logs()                       # every file in the log directory
        pg.stop(save_logs_to=folder)    # optional: keep the logs; the cluster is deleted

* **Settings** are a dict merged over :data:`DEFAULT_SETTINGS` (``None`` removes a default):
  ``pg_stat_statements`` preloaded with ``track = all``, the logging collector writing
  ``postgresql.log`` with ``log_min_duration_statement = 0`` and
  ``log_line_prefix = '%m [%p] %q%u@%d '``, English messages, and durability off (it is a
  throwaway cluster). When ``pg_stat_statements`` is preloaded the extension is created in the
  cluster's database at start, so its view can be queried at once.
* **Network**: the server listens on a Unix socket in its own directory only
  (``listen_addresses = ''``), so it never collides with or exposes anything; ``tcp=True``
  adds a free port on 127.0.0.1 (for tools that only speak TCP).
* **Binaries** are found at run time: ``$AUDITKIT_PG_BINDIR``, then ``pg_config --bindir``,
  then ``initdb`` on ``PATH``, then the usual per-version install folders (newest first).
* **Root**: ``initdb`` and ``postgres`` refuse to run as root; under root the cluster is
  owned by, and run as, the ``postgres`` user (through ``runuser``, or ``su``).
* **Clean-up** happens in every case: a failed start stops what was started and removes the
  directory before raising; :meth:`ThrowawayPostgres.stop` is idempotent and also runs when
  the object is garbage-collected or the interpreter exits.
* **Log timing**: the logging collector writes asynchronously. :meth:`~ThrowawayPostgres.sync_log`
  runs the marker statement :data:`SYNC_SQL` and waits until it reaches the file; callers
  that count statements exclude it (its text is unique).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from devtools._process import Throwaway, free_port

__all__ = [
    "DEFAULT_SETTINGS",
    "SYNC_SQL",
    "DevPostgresError",
    "ThrowawayPostgres",
    "available",
    "find_bindir",
]

#: A setting value as written to postgresql.conf (bool → on/off, numbers as they are).
Setting = str | int | float | bool

#: The settings every throwaway cluster starts with (override or drop them per cluster).
DEFAULT_SETTINGS: dict[str, Setting] = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "logging_collector": True,
    "log_filename": "postgresql.log",
    "log_rotation_age": 0,
    "log_rotation_size": 0,
    "log_min_duration_statement": 0,
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "lc_messages": "C",
    "log_timezone": "UTC",
    "timezone": "UTC",
    # a throwaway cluster needs no durability; these make it several times faster to fill
    "fsync": False,
    "synchronous_commit": False,
    "full_page_writes": False,
}

#: The statement :meth:`ThrowawayPostgres.sync_log` runs (``{}`` is a unique token).
SYNC_SQL = "SELECT '{}' AS auditkit_log_sync"

_USER = "postgres"  # the database superuser initdb creates; also the OS user under root
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS; keep a margin
_START_TIMEOUT_S = 60


class DevPostgresError(RuntimeError):
    """A throwaway cluster could not be set up, started or stopped; the message says why."""


# -- discovery --------------------------------------------------------------------------------


def _has_server(bindir: Path) -> bool:
    return all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when not installed."""
    candidates: list[Path] = []
    if env := os.environ.get("AUDITKIT_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    patterns = (
        "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
        "/usr/pgsql-*/bin",  # PGDG RPMs
        "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew (Apple silicon)
        "/usr/local/opt/postgresql@*/bin",  # Homebrew (Intel)
        "/Applications/Postgres.app/Contents/Versions/*/bin",
    )
    for pattern in patterns:
        candidates.extend(
            Path(p) for p in sorted(glob.glob(pattern), key=_version_key, reverse=True)
        )
    return next((c for c in candidates if _has_server(c)), None)


def _library_present(bindir: Path, library: str) -> bool:
    """Is the shared library ``library`` installed for the server in ``bindir``?"""
    dirs: list[Path] = []
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--pkglibdir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            )
            dirs.append(Path(out.stdout.strip()))
    dirs += [bindir.parent / "lib", bindir.parent / "lib" / "postgresql"]
    suffixes = (".so", ".dylib", ".dll")
    return any((d / f"{library}{s}").is_file() for d in dirs for s in suffixes)


def _run_as_prefix() -> list[str] | None:
    """The command prefix that runs a program as the postgres OS user ([] when not root)."""
    if os.geteuid() != 0:
        return []
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", _USER, "--"]
    return None  # su is handled in _command (it takes one shell string)


def _merge(settings: Mapping[str, Setting | None] | None) -> dict[str, Setting]:
    merged: dict[str, Setting | None] = {**DEFAULT_SETTINGS, **(settings or {})}
    return {k: v for k, v in merged.items() if v is not None}


def _preloaded(settings: Mapping[str, Setting]) -> list[str]:
    value = str(settings.get("shared_preload_libraries", ""))
    return [lib.strip() for lib in value.split(",") if lib.strip()]


def available(settings: Mapping[str, Setting | None] | None = None) -> str | None:
    """None when a :class:`ThrowawayPostgres` with ``settings`` can start here, else why not.

    Checks that the server binaries are installed, that preloaded libraries (by default
    ``pg_stat_statements``, from postgresql-contrib) exist, and, when running as root, that a
    ``postgres`` user exists to run the server as. Cheap: starts nothing.
    """
    bindir = find_bindir()
    if bindir is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install the "
            "server, or point AUDITKIT_PG_BINDIR at its bin folder"
        )
    for library in _preloaded(_merge(settings)):
        if not _library_present(bindir, library):
            return f"shared library {library!r} is not installed for the server in {bindir} (postgresql-contrib?)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_USER)
        except KeyError:
            return f"running as root, and there is no {_USER!r} user to run the server as"
        if not shutil.which("runuser") and not shutil.which("su"):
            return f"running as root, and neither runuser nor su is available to become {_USER!r}"
    return None


# -- the cluster ------------------------------------------------------------------------------


def _conf_value(value: Setting) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _cleanup(root: Path, bindir: Path, data: Path) -> None:
    """Stop the server in ``data`` if it runs, then delete ``root``. Never raises."""
    pidfile = data / "postmaster.pid"
    if pidfile.exists():
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(_command(stop), capture_output=True, timeout=60, check=False)
        if pidfile.exists():  # pg_ctl failed: signal the postmaster directly
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().split("\n", 1)[0])
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                for _ in range(100):  # os.kill(pid, 0) raises (suppressed) once it is gone
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def _command(args: Sequence[str]) -> list[str]:
    """``args`` as a command run by the server's OS user (unchanged unless we are root)."""
    prefix = _run_as_prefix()
    if prefix is None:
        su = shutil.which("su") or "su"
        return [su, _USER, "-s", "/bin/sh", "-c", shlex.join(args)]
    return [*prefix, *args]


class ThrowawayPostgres(Throwaway):
    """A private PostgreSQL cluster in a temporary directory, for as long as it is needed.

    Use it as a context manager (``with ThrowawayPostgres() as pg: …``) or call
    :meth:`start` and :meth:`stop`. See the module docstring for the settings and the API.

    :param settings: server settings merged over :data:`DEFAULT_SETTINGS`; ``None`` as a value
        removes a default. ``log_directory`` defaults to a folder in the cluster's directory.
    :param tcp: also listen on a free TCP port on 127.0.0.1.
    :param database: the database :attr:`dsn` and :meth:`execute` connect to (created if it
        is not ``postgres``).
    """

    def __init__(
        self,
        settings: Mapping[str, Setting | None] | None = None,
        *,
        tcp: bool = False,
        database: str = "postgres",
    ) -> None:
        self.settings = _merge(settings)
        self.tcp = tcp
        self.database = database
        self.port = 0
        self._root: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (the cluster's directory exists)."""
        return self._root is not None

    def start(self) -> ThrowawayPostgres:
        """Create the cluster, start the server and wait until it accepts connections.

        Raises :class:`DevPostgresError` (after removing everything it created) on failure.
        """
        if self._root is not None:
            raise DevPostgresError("this cluster is already running")
        reason = available(self.settings)
        if reason:
            raise DevPostgresError(reason)
        bindir = find_bindir()
        assert bindir is not None  # checked by available()
        self._bindir = bindir
        root = Path(tempfile.mkdtemp(prefix="auditkit-pg-"))
        if len(str(root)) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            shutil.rmtree(root, ignore_errors=True)
            root = Path(tempfile.mkdtemp(prefix="akpg-", dir="/tmp"))
        self._root = root
        self._finalizer = weakref.finalize(self, _cleanup, root, bindir, root / "data")
        try:
            self._initdb()
            self._configure()
            self._start_server()
            self._post_start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, save_logs_to: str | Path | None = None) -> list[Path]:
        """Stop the server and delete the cluster. Idempotent.

        :param save_logs_to: a folder to move the log files into first (created if needed);
            they are then owned by the calling user.
        :return: the saved log files (empty unless ``save_logs_to`` was given).
        """
        if self._root is None:
            return []
        root, finalizer = self._root, self._finalizer
        saved: list[Path] = []
        try:
            if save_logs_to is not None:
                _cleanup_server_only(self._bindir, root / "data")
                dest = Path(save_logs_to)
                dest.mkdir(parents=True, exist_ok=True)
                for log in self.logs():
                    target = dest / log.name
                    shutil.move(str(log), target)
                    with contextlib.suppress(OSError):
                        os.chown(target, os.geteuid(), os.getegid())
                    saved.append(target)
        finally:
            self._root = None
            if finalizer is not None:
                finalizer()  # stops the server (if still up) and removes the directory
        return saved

    # -- what callers use -----------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's Unix socket (and the cluster)."""
        return self._require_root()

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self._require_root() / "data"

    @property
    def dsn(self) -> str:
        """libpq URI of :attr:`database` over the Unix socket, as user ``postgres``."""
        return self._dsn_for(self.database)

    @property
    def tcp_dsn(self) -> str | None:
        """libpq URI over 127.0.0.1 when started with ``tcp=True``, else None."""
        if not self.tcp:
            return None
        self._require_root()
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{quote(self.database)}"

    @property
    def log_dir(self) -> Path:
        """The folder the logging collector writes to."""
        configured = self.settings.get("log_directory")
        return Path(str(configured)) if configured else self._require_root() / "log"

    @property
    def log_path(self) -> Path:
        """The server log file (``log_filename`` is fixed, so there is one)."""
        return self.log_dir / str(self.settings.get("log_filename", "postgresql.log"))

    def logs(self) -> list[Path]:
        """Every file in the log directory, sorted by name."""
        directory = self.log_dir
        return sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; return its rows ([] when it returns none)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)  # without params psycopg sends the text as it is
            return list(cur.fetchall()) if cur.description is not None else []

    def sync_log(self, timeout: float = 10.0) -> str:
        """Wait until every statement run so far is in :attr:`log_path`; return the marker SQL.

        Runs :data:`SYNC_SQL` with a unique token and waits for it in the log, which the
        logging collector writes in order. Callers counting statements exclude the returned
        text (its fingerprint, ``select ? as auditkit_log_sync``, is one group of its own).
        """
        token = f"auditkit-sync-{uuid.uuid4().hex}"
        sql = SYNC_SQL.format(token)
        self.execute(sql)
        deadline = time.monotonic() + timeout
        needle = token.encode()
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError), open(self.log_path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - (1 << 20)))
                if needle in fh.read():
                    return sql
            time.sleep(0.02)
        raise DevPostgresError(f"the log marker did not reach {self.log_path} within {timeout}s")

    def __repr__(self) -> str:
        state = f"socket in {self._root}, port {self.port}" if self._root else "stopped"
        return f"<ThrowawayPostgres {state}>"

    # -- steps of start() ------------------------------------------------------------------
    def _require_root(self) -> Path:
        if self._root is None:
            raise DevPostgresError(
                "the cluster is not running (use it inside `with`, or call start())"
            )
        return self._root

    def _dsn_for(self, database: str) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{_USER}@/{quote(database)}?host={host}&port={self.port}"

    def _run(self, args: Sequence[str], what: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            _command(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self._root,
        )
        if proc.returncode != 0:
            raise DevPostgresError(
                f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc.stdout

    def _initdb(self) -> None:
        root = self._require_root()
        root.chmod(0o755)  # the socket directory: reachable by the client user
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        args = [str(self._bindir / "initdb"), "-D", str(root / "data"), "-U", _USER]
        args += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        self._run(args, "initdb")

    def _configure(self) -> None:
        root = self._require_root()
        self.port = free_port()
        conf: dict[str, Setting] = {
            "port": self.port,
            "listen_addresses": "127.0.0.1" if self.tcp else "",
            "unix_socket_directories": str(root),
            "log_directory": str(root / "log"),
            **self.settings,
        }
        lines = [f"{key} = {_conf_value(value)}" for key, value in conf.items()]
        # postgresql.auto.conf is read last and owned by us: the cleanest place to override
        auto = root / "data" / "postgresql.auto.conf"
        text = "# written by devtools.postgres\n" + "\n".join(lines) + "\n"
        _write_as_server_user(auto, text)

    def _start_server(self) -> None:
        root = self._require_root()
        args = [
            str(self._bindir / "pg_ctl"),
            "-D",
            str(root / "data"),
            "-l",
            str(root / "startup.log"),
        ]
        args += ["-w", "-t", str(_START_TIMEOUT_S), "-s", "start"]
        try:
            self._run(args, "starting the server", timeout=_START_TIMEOUT_S + 30)
        except DevPostgresError as exc:
            detail = ""
            for log in [root / "startup.log", *self.logs()]:
                with contextlib.suppress(OSError):
                    detail += log.read_text(errors="replace")[-2000:]
            raise DevPostgresError(f"{exc}\nserver log:\n{detail.strip()}") from None

    def _post_start(self) -> None:
        import psycopg

        if self.database != "postgres":
            with psycopg.connect(self._dsn_for("postgres"), autocommit=True) as conn:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(
                        psycopg.sql.Identifier(self.database)
                    )
                )
        if "pg_stat_statements" in _preloaded(self.settings):
            self.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _write_as_server_user(path: Path, text: str) -> None:
    """Write ``path`` and give it to the server's OS user when we are root."""
    path.write_text(text, encoding="utf-8")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o600)


def _cleanup_server_only(bindir: Path, data: Path) -> None:
    """Stop the server (so its log is complete) without deleting anything."""
    if not (data / "postmaster.pid").exists():
        return
    stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(_command(stop), capture_output=True, timeout=90, check=False)
