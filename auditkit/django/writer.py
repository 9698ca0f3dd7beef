"""The writer thread: capture files written off the request path, rotated by size, bounded.

The request path only puts a finished capture on a bounded queue (``queue_size``); when the
queue is full the capture is dropped and counted, never waited for. One daemon thread per
process wakes when captures arrive, lets a few gather (50 ms), and turns them into JSON lines,
handing the GIL back to request threads between captures, (:mod:`auditkit.django.records`) and appends them with
one ``os.write`` per batch to its own files — one per stream and process, so several worker
processes never write to the same file:

* ``queries-<UTC start>-<host>-<pid>.jsonl`` — statements, request and task records;
* ``cache-<UTC start>-<host>-<pid>.jsonl`` — cache operations.

Each file starts with a meta record (format, version, writer, Django version, host, pid,
sampling, parameter mode). A file that reaches ``max_bytes`` is closed (its last line a meta
record counting what was dropped) and a new one begun; only the newest ``max_files`` closed
files of a stream and process are kept; while the folder holds more than ``max_total_bytes``
the writer pauses (and counts what it drops) instead of filling the disk. A write error (disk
full, permissions) pauses it too: capture must never break the application.

Files are written with unbuffered ``os.write`` so that nothing sits in a buffer a ``fork``
could copy; after a fork the child forgets its parent's files and thread and starts its own
on first use. :meth:`CaptureWriter.close` (registered with ``atexit``) drains the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditkit.django.conf import CaptureSettings
from auditkit.django.context import Capture
from auditkit.django.records import (
    CACHE_FORMAT,
    CACHE_VERSION,
    JSON,
    QUERIES_FORMAT,
    QUERIES_VERSION,
    ParamRedactor,
    cache_records,
    capture_common,
    iso,
    query_lines,
    statement_record,
)
from auditkit.lazy_re import compile_later

__all__ = ["STREAMS", "CaptureWriter"]

log = logging.getLogger("auditkit.capture")

#: stream name → (format, version) of its files
STREAMS: dict[str, tuple[str, int]] = {
    "queries": (QUERIES_FORMAT, QUERIES_VERSION),
    "cache": (CACHE_FORMAT, CACHE_VERSION),
}
#: how long the writer pauses after a write error or while the folder is over its size limit
PAUSE_S = 30.0
#: how long the writer lets captures gather after waking up
GATHER_S = 0.05
_UNSAFE = compile_later(r"[^A-Za-z0-9._-]+")


def _dumps(record: dict[str, Any]) -> str:
    return JSON.encode(record) + "\n"


def _stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def _age(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except OSError:
        return 0.0, path.name


class _File:
    """One open capture file of one stream (append-only, unbuffered)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = 0


class CaptureWriter:
    """Queue and thread that write captures into ``settings.dir`` (see the module docstring)."""

    def __init__(
        self, settings: CaptureSettings, redact: ParamRedactor, meta: dict[str, Any]
    ) -> None:
        self.settings = settings
        self.redact = redact
        self.meta = meta
        self.host = _UNSAFE.sub("-", socket.gethostname())[:40] or "host"
        self._lock = threading.Lock()
        self._reset()

    # -- state --------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.Queue[Any] = queue.Queue(self.settings.queue_size)
        self._thread: threading.Thread | None = None
        self._files: dict[str, _File] = {}
        self._paused_until = 0.0
        self._checked_total_at = 0.0
        self._head_bytes = 0
        self.dropped = 0  # captures (or untracked entries) not written
        self.written = 0  # captures written
        self.errors = 0

    def after_fork(self) -> None:
        """In a forked child: forget the parent's thread and files (their fds are closed)."""
        for f in self._files.values():
            with contextlib.suppress(OSError):
                os.close(f.fd)
        self._lock = threading.Lock()
        self._reset()

    # -- the request side ---------------------------------------------------------------------
    def submit(self, item: Any) -> bool:
        """Queue ``item`` for writing without waiting; False (and counted) when it is dropped."""
        if self._pid != os.getpid():
            self.after_fork()
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="auditkit-capture", daemon=True)
                thread.start()
                self._thread = thread

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown). False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        try:
            self._queue.put(("flush", done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the files and stop the thread (registered with atexit)."""
        if self._pid != os.getpid():
            return
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
                thread.join(timeout)
            except queue.Full:
                pass
        self._thread = None
        self._close_files()

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is not None and item[0] != "flush":
                time.sleep(GATHER_S)  # let a few requests gather: fewer wake-ups, larger writes
            batch = [item]
            while len(batch) < 1024:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(i is None for i in batch)
            try:
                self._write_batch([i for i in batch if i is not None])
            except Exception:  # never let the writer die: count and go on
                self.errors += 1
                log.exception("auditkit capture: could not write a batch")
            if stop:
                self._close_files()
                return

    def _write_batch(self, batch: list[Any]) -> None:
        lines: dict[str, list[str]] = {"queries": [], "cache": []}
        events: list[threading.Event] = []
        for item in batch:
            kind = item[0]
            if kind == "capture":
                time.sleep(0)  # hand the GIL to a request thread waiting for it, between captures
                capture: Capture = item[1]
                lines["queries"].extend(query_lines(capture, self.redact))
                if capture.cache_ops:
                    common = capture_common(capture)
                    lines["cache"].extend(
                        _dumps(r) for r in cache_records(capture.cache_ops, common)
                    )
                self.written += 1
            elif kind == "statement":
                lines["queries"].append(_dumps(statement_record(item[1], self.redact, item[2])))
            elif kind == "cache":
                lines["cache"].extend(_dumps(r) for r in cache_records([item[1]], item[2]))
            elif kind == "models":
                self._dump_models()
            elif kind == "flush":
                events.append(item[1])
        for stream, text in lines.items():
            if text:
                self._append(stream, text)
        for event in events:
            event.set()

    # -- files --------------------------------------------------------------------------------
    def _paused(self) -> bool:
        now = time.monotonic()
        if now < self._paused_until:
            return True
        if now - self._checked_total_at > PAUSE_S:
            self._checked_total_at = now
            if self._folder_bytes() > self.settings.max_total_bytes:
                log.warning(
                    "auditkit capture: %s holds more than %d bytes; pausing",
                    self.settings.dir,
                    self.settings.max_total_bytes,
                )
                self._paused_until = now + PAUSE_S
                return True
        return False

    def _folder_bytes(self) -> int:
        total = 0
        try:
            for entry in os.scandir(self.settings.dir):
                if entry.is_file() and entry.name.endswith(".jsonl"):
                    total += entry.stat().st_size
        except OSError:
            return 0
        return total

    def _append(self, stream: str, lines: Iterable[str]) -> None:
        """Append ``lines``, starting a new file wherever the next line would pass max_bytes."""
        if self._paused():
            self.dropped += 1
            return
        try:
            f = self._files.get(stream) or self._open(stream)
            chunk: list[bytes] = []
            size = 0
            for line in lines:
                data = line.encode("utf-8", "replace")
                if chunk and f.size + size + len(data) > self.settings.max_bytes:
                    self._write_all(f, b"".join(chunk))
                    chunk, size = [], 0
                if f.size + len(data) > self.settings.max_bytes and f.size > self._head_bytes:
                    self._rotate(stream)
                    f = self._open(stream)
                chunk.append(data)
                size += len(data)
            if chunk:
                self._write_all(f, b"".join(chunk))
        except OSError as exc:
            self.errors += 1
            self.dropped += 1
            self._paused_until = time.monotonic() + PAUSE_S
            log.warning(
                "auditkit capture: cannot write to %s (%s); pausing", self.settings.dir, exc
            )

    @staticmethod
    def _write_all(f: _File, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(f.fd, view)
            view = view[n:]
        f.size += len(data)

    def _open(self, stream: str) -> _File:
        self.settings.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        base = f"{stream}-{_stamp(now)}-{self.host}-{os.getpid()}"
        path = self.settings.dir / f"{base}.jsonl"
        n = 1
        while path.exists():
            n += 1
            path = self.settings.dir / f"{base}-{n}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        f = _File(path, fd)
        fmt, version = STREAMS[stream]
        head = {
            "type": "meta",
            "format": fmt,
            "version": version,
            **self.meta,
            "host": self.host,
            "pid": os.getpid(),
            "started": iso(now),
        }
        self._write_all(f, _dumps(head).encode())
        self._head_bytes = f.size
        self._files[stream] = f
        return f

    def _rotate(self, stream: str) -> None:
        self._close_file(stream)
        self._prune(stream)

    def _close_file(self, stream: str) -> None:
        f = self._files.pop(stream, None)
        if f is None:
            return
        fmt, version = STREAMS[stream]
        tail = {
            "type": "meta",
            "format": fmt,
            "version": version,
            "event": "closed",
            "closed": iso(time.time()),
            "captures_written": self.written,
            "captures_dropped": self.dropped,
        }
        try:
            self._write_all(f, _dumps(tail).encode())
        except OSError:
            pass
        finally:
            os.close(f.fd)

    def _close_files(self) -> None:
        for stream in list(self._files):
            self._close_file(stream)

    def _prune(self, stream: str) -> None:
        """Delete this process's oldest closed files of ``stream`` beyond ``max_files``."""
        base = f"{stream}-*-{self.host}-{os.getpid()}"
        found = {
            *self.settings.dir.glob(f"{base}.jsonl"),
            *self.settings.dir.glob(f"{base}-*.jsonl"),
        }
        closed = sorted(found, key=_age)
        for old in closed[: max(0, len(closed) - self.settings.max_files)]:
            with contextlib.suppress(OSError):
                old.unlink()

    def _dump_models(self) -> None:
        """Write ``models.json`` (the model dump) atomically; a failure is logged, not raised."""
        try:
            from auditkit.django.model_dump import dump_models

            data = dump_models()
            self.settings.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.settings.dir / f".models.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            tmp.replace(self.settings.dir / "models.json")
        except Exception:
            self.errors += 1
            log.exception("auditkit capture: could not write the model dump")
