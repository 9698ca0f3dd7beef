"""What every throwaway server shares: a free TCP port of 127.0.0.1, waiting until the server
answers, stopping its process, and the ``with`` block that stops it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["Throwaway", "free_port", "stop_process", "wait_or_kill", "wait_until_answers"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on (the system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``proc`` and wait for it; kill it when it outlives ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    wait_or_kill(proc, timeout)


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Wait for ``proc`` to end; kill it when it outlives ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_until_answers(
    answers: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    name: str,
    error: type[Exception],
    timeout: float = 10,
) -> None:
    """Poll ``answers()`` (an ``OSError`` counts as no) until it is true; raise ``error`` when
    ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if answers():
                return
        if proc.poll() is not None:
            raise error(f"{name} exited with {proc.returncode}")
        time.sleep(0.05)
    raise error(f"{name} did not answer within {timeout:g} s")


class Throwaway:
    """A server used in a ``with`` block: the block's end stops it (:meth:`stop`)."""

    def stop(self) -> object:
        """Stop the server and remove what it left (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
