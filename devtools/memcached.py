"""Throwaway memcached servers for the tests: a private process on a free port of 127.0.0.1.

    from devtools.memcached import ThrowawayMemcached, available

    with ThrowawayMemcached(memory_mb=16) as mc:
        mc.port
        mc.command("stats detail on")      # the raw reply, up to END / OK / STORED …
        mc.command("stats")                 # 'STAT pid 123\\r\\n…END\\r\\n'

The server is started from the installed ``memcached`` binary (``apt-get install memcached``),
listens on TCP only (UDP off), runs as root when the tests do (``-u root``), and is stopped
when the block ends, at exit or on garbage collection.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import weakref

from devtools._process import Throwaway, free_port, stop_process, wait_until_answers

__all__ = ["DevMemcachedError", "ThrowawayMemcached", "available"]

_ENDINGS = (b"END\r\n", b"OK\r\n", b"STORED\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n", b"ERROR\r\n")


class DevMemcachedError(RuntimeError):
    """memcached could not be started; the message says why."""


def available() -> str | None:
    """None when memcached can be started here, else the reason it cannot."""
    return None if shutil.which("memcached") else "memcached is not installed"


class ThrowawayMemcached(Throwaway):
    """A private memcached (see the module docstring)."""

    def __init__(self, memory_mb: int = 16, *extra: str, lru_maintainer: bool = False) -> None:
        # without the LRU maintainer thread by default: it moves items between the hot, warm and
        # cold LRUs while the crawler walks them, and a metadump then misses a key now and then
        if not lru_maintainer:
            extra = ("-o", "no_lru_maintainer", *extra)
        exe = shutil.which("memcached")
        if exe is None:
            raise DevMemcachedError("memcached is not installed")
        self.port = free_port()
        user = ["-u", "root"] if os.geteuid() == 0 else []
        self._proc = subprocess.Popen(
            [
                exe,
                "-l",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "0",
                "-m",
                str(memory_mb),
                *user,
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._finalizer = weakref.finalize(self, stop_process, self._proc)
        try:
            wait_until_answers(self._answers, self._proc, "memcached", DevMemcachedError)
        except DevMemcachedError:
            self.stop()
            raise

    def _answers(self) -> bool:
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        return True

    def command(self, line: str, data: bytes | None = None) -> str:
        """Send one text-protocol command (and its data block) and return the whole reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(line.encode() + b"\r\n" + (data + b"\r\n" if data is not None else b""))
            buf = b""
            while not buf.endswith(_ENDINGS):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        return buf.decode("utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._finalizer()
