"""Throwaway MariaDB (or MySQL) servers, started from the installed server binaries.

The tests of the MySQL-family loaders need what a consultant's client has switched on:
``performance_schema`` (a start-up option: the shared server on port 3306 runs without it and
must not be restarted or reconfigured), the slow query log with ``log_slow_verbosity``, and a
database of their own. Each test starts a private server in a temporary directory, on a free
port of 127.0.0.1 and its own Unix socket, uses it and throws it away.

The API::

    from devtools.mariadb import ThrowawayMariaDB, available

    reason = available()          # None, or why no server can be started here
    with ThrowawayMariaDB({"performance_schema": "ON"}) as db:
        db.port, db.socket        # for the mysql client: -h 127.0.0.1 -P port, or -S socket
        db.client_args()          # ['--no-defaults', '-S', socket, '-uroot']
        db.run("SELECT 1")        # runs the real ``mysql`` client, returns its stdout
        db.slow_log               # the slow query log file (when slow_query_log is on)
        db.stop()                 # idempotent; also on exit and garbage collection

Options are ``my.cnf`` ``[mysqld]`` lines (``None`` drops a default). Under root the server
runs as root (``--user=root``), which MariaDB allows when asked explicitly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from devtools._process import Throwaway, free_port, wait_or_kill

__all__ = ["DEFAULT_OPTIONS", "DevMariaDBError", "ThrowawayMariaDB", "available", "find_server"]

#: ``[mysqld]`` options every throwaway server starts with
DEFAULT_OPTIONS: dict[str, str | None] = {
    "performance_schema": "ON",
    "skip-name-resolve": "",
    "innodb_buffer_pool_size": "32M",
    "innodb_log_file_size": "8M",
    "innodb_flush_log_at_trx_commit": "0",
    "sync_binlog": "0",
    "skip-log-bin": "",
    "character-set-server": "utf8mb4",
    "lc_messages": "en_US",
    "default_time_zone": "+00:00",
}

_START_TIMEOUT_S = 60


class DevMariaDBError(RuntimeError):
    """A throwaway server could not be set up, started or stopped; the message says why."""


def find_server() -> tuple[Path, Path, Path] | None:
    """(server daemon, install-db script, mysql client) or None when one is missing."""
    daemon = shutil.which("mariadbd") or shutil.which("mysqld")
    for d in ("/usr/sbin", "/usr/local/sbin", "/usr/libexec"):
        for name in ("mariadbd", "mysqld"):
            if daemon is None and Path(d, name).is_file():
                daemon = str(Path(d, name))
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if daemon is None or install is None or client is None:
        return None
    return Path(daemon), Path(install), Path(client)


def available() -> str | None:
    """None when a throwaway server can be started, else the reason it cannot."""
    if find_server() is None:
        return "no MariaDB/MySQL server binaries (mariadbd, mariadb-install-db, mariadb)"
    return None


class ThrowawayMariaDB(Throwaway):
    """A private MariaDB server in a temporary directory (see the module docstring)."""

    def __init__(self, options: Mapping[str, str | None] | None = None) -> None:
        found = find_server()
        if found is None:
            raise DevMariaDBError(available() or "no server")
        self.daemon, self.install, self.client = found
        merged = dict(DEFAULT_OPTIONS)
        merged.update(options or {})
        self.options = {k: v for k, v in merged.items() if v is not None}
        self.dir = Path(tempfile.mkdtemp(prefix="auditkit-mariadb-"))
        self.port = free_port()
        # the socket lives where servers keep theirs, so no temporary path shows in the slow
        # log's start banner (fixtures made from it are committed)
        run = Path("/run/mysqld")
        self.socket = str(
            run / f"auditkit-{self.port}.sock"
            if run.is_dir() and os.access(run, os.W_OK)
            else self.dir / "mysqld.sock"
        )
        self.datadir = self.dir / "data"
        self.slow_log = self.dir / "slow.log"
        self.error_log = self.dir / "error.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer = weakref.finalize(self, _cleanup, None, self.dir, self.socket)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- life cycle -------------------------------------------------------------------------
    def _config(self) -> Path:
        lines = ["[mysqld]"]
        base = {
            "datadir": str(self.datadir),
            "socket": self.socket,
            "port": str(self.port),
            "bind-address": "127.0.0.1",
            "pid-file": str(self.dir / "mysqld.pid"),
            "log-error": str(self.error_log),
            "slow_query_log_file": str(self.slow_log),
            "tmpdir": str(self.dir),
        }
        for k, v in {**base, **self.options}.items():
            lines.append(k if v == "" else f"{k}={v}")
        cnf = self.dir / "my.cnf"
        cnf.write_text("\n".join(lines) + "\n")
        return cnf

    def _start(self) -> None:
        cnf = self._config()
        user = ["--user=root"] if os.geteuid() == 0 else []
        init = subprocess.run(
            [
                str(self.install),
                f"--defaults-file={cnf}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user,
            ],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
        )
        if init.returncode != 0:
            raise DevMariaDBError(f"install-db failed: {init.stderr.strip()[-500:]}")
        self._proc = subprocess.Popen(
            [str(self.daemon), f"--defaults-file={cnf}", *user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._proc.pid, self.dir, self.socket)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
                raise DevMariaDBError(f"the server exited at start: {log.strip()[-800:]}")
            ok = subprocess.run(
                [*self.client_command(), "-e", "SELECT 1"], capture_output=True, timeout=10
            )
            if ok.returncode == 0:
                return
            time.sleep(0.2)
        raise DevMariaDBError(f"the server did not answer within {_START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop the server and delete its directory (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                subprocess.run(
                    [*self.client_command(), "-e", "SHUTDOWN"], capture_output=True, timeout=30
                )
            wait_or_kill(proc, timeout=30)
        self._finalizer()

    # -- using it ---------------------------------------------------------------------------
    def client_args(self) -> list[str]:
        """Arguments of the ``mysql`` client for this server (root over the Unix socket)."""
        return ["--no-defaults", "-S", self.socket, "-uroot"]

    def client_command(self) -> list[str]:
        return [str(self.client), *self.client_args()]

    def run(self, sql: str, *options: str, database: str | None = None, check: bool = True) -> str:
        """Run ``sql`` through the real ``mysql`` client with ``options``; return its stdout."""
        args: Sequence[str] = [*self.client_command(), *options]
        if database:
            args = [*args, database]
        out = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=300)
        if check and out.returncode != 0:
            raise DevMariaDBError(f"mysql failed: {out.stderr.strip()[-800:]}")
        return out.stdout


def _cleanup(pid: int | None, directory: Path, socket_path: str) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        Path(socket_path).unlink(missing_ok=True)
