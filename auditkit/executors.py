"""Where work runs: this process, its threads, local worker processes, or a Dask cluster — one interface.

Block parsing (:mod:`auditkit.loaders.base`) and batch audits (:mod:`auditkit.runner`) both
hand pure functions to an executor's :meth:`Executor.map`, which yields results *in input
order* while keeping only a bounded number of tasks in flight, so memory stays bounded
however long the input is. Executors live in a small registry: :func:`get_executor` answers
an unknown name with one clear error.

Example::

    >>> ex = get_executor("serial")
    >>> list(ex.map(abs, [-1, 2]))
    [1, 2]
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as Executor_
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from auditkit.errors import ConfigError

__all__ = [
    "PARALLEL_MIN_BYTES",
    "PROCESS_MIN_BYTES",
    "default_workers",
    "gc_paused",
    "local_executor",
    "no_blas_threads",
    "quiet_imports",
    "retain_freed_memory",
    "workers_for",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "ThreadExecutor",
    "get_executor",
]

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(*args)`` for each args tuple and yields results in order.

    ``shares_files``: whether tasks run where this process's files can be read (then a block
    of a file may be sent as a :class:`~auditkit.loaders.stream.BlockRef`, not as bytes).
    """

    workers: int
    shares_files: bool

    def map(self, fn: Callable[..., R], argsets: Iterable[tuple[Any, ...]]) -> Iterator[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Everything in this process (the default, and what tests use)."""

    workers = 1
    #: nothing travels: blocks are passed as they are
    shares_files = False

    def map(self, fn: Callable[..., R], argsets: Iterable[tuple[Any, ...]]) -> Iterator[R]:
        for args in argsets:
            yield fn(*args)

    def close(self) -> None:
        pass


def _ordered(
    submit: Callable[..., Any],
    fn: Callable[..., R],
    argsets: Iterable[tuple[Any, ...]],
    window: int,
) -> Iterator[R]:
    queue: deque[Any] = deque()
    for args in argsets:
        queue.append(submit(fn, *args))
        if len(queue) >= window:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


class _PoolExecutor:
    """A pool of ``workers`` on this machine, started on first use; at most ``2 × workers``
    tasks in flight. Subclasses say which pool."""

    #: workers run on this machine and read the files themselves
    shares_files = True

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: Executor_ | None = None

    def _start(self) -> Executor_:
        raise NotImplementedError

    def map(self, fn: Callable[..., R], argsets: Iterable[tuple[Any, ...]]) -> Iterator[R]:
        if self._pool is None:
            self._pool = self._start()
        yield from _ordered(self._pool.submit, fn, argsets, 2 * self.workers)

    def close(self, wait: bool = True) -> None:
        """Stop the workers once their tasks are done; ``wait=False`` returns at once (a later
        ``close()`` waits for them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            if wait:
                self._pool = None

    def start(self) -> None:
        """Start the workers now rather than on first use."""
        if self._pool is None:
            self._pool = self._start()


class ProcessExecutor(_PoolExecutor):
    """Local worker processes (``--workers N``); at most ``2 × workers`` tasks in flight."""

    def _start(self) -> Executor_:
        return ProcessPoolExecutor(max_workers=self.workers)

    def start(self) -> None:
        """Start the worker processes now. Where workers are forked, each is a copy of this
        process as it is: start them before this process starts threads (a thread holding a
        lock at the fork leaves it held in the copy) and after the imports they will need."""
        gc.freeze()  # a copy's collections then leave this process's objects (and pages) alone
        try:
            super().start()
            assert self._pool is not None
            for future in [self._pool.submit(int) for _ in range(self.workers)]:
                future.result()
        finally:
            gc.unfreeze()


class ThreadExecutor(_PoolExecutor):
    """Threads of this process (``workers`` of them); at most ``2 × workers`` tasks in flight.

    Nothing is started or copied, and memory freed by one task is reused by the next — where
    a new worker process first pays for its own pages. Worth it where tasks spend most of
    their time in NumPy and Arrow kernels, which run without the interpreter lock (the
    native block reader of :mod:`auditkit.loaders._pg_native`). Tasks share this process's
    objects: ``fn`` must not change its arguments (block parsers hold settings only).
    """

    def _start(self) -> Executor_:
        return ThreadPoolExecutor(self.workers, thread_name_prefix="auditkit")


class DaskExecutor:
    """A Dask distributed cluster (``--scheduler ADDRESS``), or a local one for tests."""

    #: workers may run on other machines: blocks travel as bytes
    shares_files = False

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        from distributed import Client, LocalCluster

        if address:
            self._cluster = None
            self._client = Client(address)
        else:
            self._cluster = LocalCluster(
                n_workers=workers or 1, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self._client = Client(self._cluster)
        info = self._client.scheduler_info()
        self.workers = max(1, len(info.get("workers", {})))

    def map(self, fn: Callable[..., R], argsets: Iterable[tuple[Any, ...]]) -> Iterator[R]:
        def submit(f: Callable[..., R], *args: Any) -> Any:  # a distributed.Future: has .result()
            return self._client.submit(f, *args, pure=False)

        yield from _ordered(submit, fn, argsets, 2 * self.workers)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


_REGISTRY: dict[str, Callable[..., Executor]] = {
    "serial": lambda **_: SerialExecutor(),
    "thread": lambda workers=None, **_: ThreadExecutor(workers),
    "process": lambda workers=None, **_: ProcessExecutor(workers),
    "dask": lambda address=None, workers=None, **_: DaskExecutor(address, workers),
}


def get_executor(name: str = "serial", **options: Any) -> Executor:
    """The executor called ``name`` ('serial', 'thread', 'process', 'dask'), built with ``options``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown executor {name!r}", hint=f"use one of: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return factory(**options)


#: below this much input, starting worker processes costs more than it saves
PARALLEL_MIN_BYTES = 48 * 1024 * 1024


#: from this much input on, a digest parses on worker processes rather than threads: below
#: it, what each new process pays before its first block (its own pages, copies of the
#: parent's) outweighs the interpreter lock the threads share (measured on 100 MiB, 300 MiB
#: and 1 GiB PostgreSQL logs, ``benchmarks/README.md``)
PROCESS_MIN_BYTES = 256 * 1024 * 1024


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def workers_for(size_bytes: int, workers: int | None = None) -> int:
    """Worker processes for ``size_bytes`` of input: ``workers`` when given, else every core
    once the input is large enough to repay the processes' start-up (:data:`PARALLEL_MIN_BYTES`)."""
    if workers is not None:
        return max(1, workers)
    return default_workers() if size_bytes >= PARALLEL_MIN_BYTES else 1


def local_executor(size_bytes: int, workers: int | None = None) -> Executor:
    """The executor for parsing ``size_bytes`` of input on this machine: this process below
    :data:`PARALLEL_MIN_BYTES` (unless ``workers`` says), threads below
    :data:`PROCESS_MIN_BYTES`, worker processes from there on."""
    n = workers_for(size_bytes, workers)
    if n == 1:
        return get_executor("serial")
    return get_executor("thread" if size_bytes < PROCESS_MIN_BYTES else "process", workers=n)


_GC_LOCK = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a burst of allocation that makes no garbage
    cycles (a parsed block's many small tuples, the modules of an import). Pauses nest and
    may overlap between threads: the collector resumes, if it ran before, when the last ends."""
    global _gc_pauses, _gc_was_enabled
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Import a command's modules (pandas, Arrow, the loaders) with the garbage collector
    paused, then freeze what they made: some 100,000 long-lived objects and no garbage,
    which the collector would otherwise walk again and again while the command runs."""
    with gc_paused():
        yield
    gc.freeze()


def no_blas_threads() -> bool:
    """Keep NumPy's BLAS (OpenBLAS) from starting a thread pool of its own.

    A command that parses text never multiplies matrices, yet OpenBLAS starts one thread per
    core when NumPy is imported, and they wait by spinning: beside two parsing threads on two
    cores they took some 6 % of the CPU of a digest of the 100 MiB benchmark log (0.93× CPU,
    paired runs of 16). Works only before NumPy is first imported, and leaves a thread count
    the user set alone; returns whether it took effect. For a command (``auditkit digest``);
    its worker processes inherit it.
    """
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return True


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_freed_memory() -> bool:
    """Ask the C allocator (glibc) to keep the memory a block frees for the next block.

    By default a block's large arrays (several MiB each) are mapped fresh and handed back
    when freed, so every block pays for its pages again — on a virtual machine a fresh page
    costs several times a reused one. With allocations under 64 MiB served from the heap and
    up to 512 MiB of freed memory kept, the next block reuses them: on the 100 MiB benchmark
    log, 0.92–0.98× the wall time (three paired runs of 16) and a fifth less system time;
    on 1 GiB, about 20 MB more peak PSS. For a command that streams a
    file and then exits (``auditkit digest``); a library call leaves the allocator alone.
    Returns whether the allocator took it (glibc only: elsewhere nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 64 << 20) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, 512 << 20) == 1 and ok)


def executor_for(workers: int = 1, scheduler: str | None = None) -> Executor:
    """The executor the command line asks for: Dask if a scheduler, processes if workers > 1."""
    if scheduler:
        return get_executor("dask", address=scheduler)
    if workers and workers > 1:
        return get_executor("process", workers=workers)
    return get_executor("serial")
