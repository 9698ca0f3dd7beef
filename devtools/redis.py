"""Throwaway Redis servers for the tests: a private process on a free port of 127.0.0.1.

    from devtools.redis import ThrowawayRedis, available

    with ThrowawayRedis("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru") as r:
        r.url                  # redis://127.0.0.1:<port>/0
        r.command("DBSIZE")    # the raw RESP reply
        r.info()               # INFO ALL as redis-cli prints it
        r.restart()            # SHUTDOWN NOSAVE, then the same server again: a new run_id

Started from the installed ``redis-server`` binary with no persistence (``--save ""``,
``--appendonly no``) in a temporary directory, so that a restart starts empty; stopped when the
block ends, at exit or on garbage collection. It never touches the shared Redis on 6379.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import weakref

from devtools._process import (
    Throwaway,
    free_port,
    stop_process,
    wait_or_kill,
    wait_until_answers,
)

__all__ = ["DevRedisError", "ThrowawayRedis", "available"]


class DevRedisError(RuntimeError):
    """redis-server could not be started; the message says why."""


def available() -> str | None:
    """None when redis-server can be started here, else the reason it cannot."""
    return None if shutil.which("redis-server") else "redis-server is not installed"


def _read_reply(s: socket.socket) -> bytes:
    """One whole RESP reply (simple, error, integer or bulk string)."""
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(1 << 16)
        if not chunk:
            return buf
        buf += chunk
    if buf[:1] != b"$":
        return buf
    head, _, rest = buf.partition(b"\r\n")
    size = int(head[1:])
    if size < 0:
        return buf
    while len(rest) < size + 2:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n" + rest


class ThrowawayRedis(Throwaway):
    """A private redis-server (see the module docstring)."""

    def __init__(self, *extra: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise DevRedisError("redis-server is not installed")
        self._exe = exe
        self._extra = extra
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="auditkit-redis-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _start(self) -> None:
        proc = subprocess.Popen(
            [
                self._exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                *self._extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _stop, proc, self._dir)
        try:
            wait_until_answers(
                lambda: b"PONG" in self.command("PING"), proc, "redis-server", DevRedisError
            )
        except DevRedisError:
            self.stop()
            raise

    def command(self, line: str) -> bytes:
        """Send one inline command and return its raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(line.encode() + b"\r\n")
            return _read_reply(s)

    def info(self) -> str:
        """``INFO ALL`` as ``redis-cli INFO ALL`` prints it (the bulk string's text)."""
        reply = self.command("INFO ALL")
        return reply.partition(b"\r\n")[2].rstrip(b"\r\n").decode("utf-8", errors="replace") + "\n"

    def restart(self) -> None:
        """Stop the server without saving and start it again on the same port."""
        with contextlib.suppress(OSError):
            self.command("SHUTDOWN NOSAVE")
        if self._proc is not None:
            wait_or_kill(self._proc)
        self._finalizer.detach()
        self._start()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._finalizer()


def _stop(proc: subprocess.Popen[bytes], folder: str) -> None:
    stop_process(proc)
    shutil.rmtree(folder, ignore_errors=True)
