"""Kernels for a run's chapter notebooks: private, started warm, reused, reset between notebooks.

:func:`_kernel_manager_class` gives papermill a kernel manager whose connection files and
sockets live in the run's own runtime folder (Unix sockets where the platform has them, so
parallel runs never race for ports); :class:`_WarmKernel` is one kernel started while the
runner loads the client, warmed with what a chapter's first cells import and reset before each
notebook; :class:`_Kernels` is the pool of them that executes a run's notebooks from one queue
with the function it is given (:func:`auditkit.execute.execute_notebook`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from auditkit.status import COMPLETE, FAILED

_USE_IPC = os.name == "posix"
_KERNEL_START_LOCK = threading.Lock()


def _kernel_manager_class(runtime_dir: Path, kernel_name: str, log: Any = None) -> type:
    """A kernel manager for one notebook: this interpreter, this auditkit, ipc sockets.

    See the module docstring for why ipc (the port race) and why the interpreter is pinned.
    """
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class AuditKernelClient(AsyncKernelClient):  # type: ignore[misc]
        """A client whose readiness check does not end in a fixed wait.

        jupyter_client's check gets the kernel_info reply, makes sure IOPub is connected (a
        message arrives on it), then drains IOPub until it has been quiet for 0.2 s: 0.2 s lost
        by every client, i.e. by every notebook on a warm kernel. The first two are kept; the
        messages left on IOPub belong to the kernel_info request, and nbclient reads only the
        replies to its own requests.
        """

        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            from queue import Empty

            deadline = time.monotonic() + (timeout if timeout is not None else 120.0)
            while True:
                msg_id = self.kernel_info()
                try:
                    reply = await self._async_recv_reply(msg_id, timeout=1)
                except TimeoutError:
                    reply = None
                if reply is not None and reply.get("msg_type") == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    package_root = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)

    class AuditKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """ipc transport in a private folder; the runner's interpreter for the python kernel."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if _USE_IPC else "tcp"

        @default("client_factory")
        def _default_client_factory(self) -> type:
            return AuditKernelClient

        @default("connection_file")
        def _default_connection_file(self) -> str:
            return str(runtime_dir / f"k-{uuid.uuid4().hex[:10]}.json")

        @property
        def kernel_spec(self) -> KernelSpec | None:
            if self._kernel_spec is None and self.kernel_name in ("python3", "python", "auditkit"):
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    display_name="Python 3 (auditkit)",
                    language="python",
                    env={"PYTHONPATH": pythonpath, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
                )
            return super().kernel_spec

        def client(self, **kw: Any) -> Any:
            """A kernel client, remembered so the run can close the ones papermill leaves open."""
            kc = super().client(**kw)
            self.__dict__.setdefault("_ak_clients", []).append(kc)
            return kc

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            if (
                log is not None
            ):  # the kernel's own stdout/stderr: kept for failures, not the terminal
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
            if _USE_IPC:
                await super()._async_start_kernel(**kw)
                return
            with _KERNEL_START_LOCK:  # TCP: no two kernels of this process pick ports at once
                await super()._async_start_kernel(**kw)

    del kernel_name
    return AuditKernelManager


# -- warm kernels --------------------------------------------------------------------------------
#: what a kernel does while the runner loads the client: import the chapter object and what a
#: chapter's first cell and first figure need (the report renderer, Parquet reading, plotly's
#: validators), so no notebook pays for them; nothing of the audit is touched. The namespace is
#: reset afterwards (:data:`_RESET_CODE`): a notebook finds only its own names.
_WARM_CODE = """\
import auditkit.report  # first: it spares the report layer's imports a slow one
import io
import pandas
import plotly.graph_objects
import plotly.io
import auditkit.auditing, auditkit.report.notebook
from auditkit.report.render import use_report_renderer
use_report_renderer()
buffer = io.BytesIO()
pandas.DataFrame({"a": [1.0], "b": ["x"]}).to_parquet(buffer)
pandas.read_parquet(io.BytesIO(buffer.getvalue()))
figure = plotly.graph_objects.Figure(plotly.graph_objects.Scatter(x=[0], y=[0]))
plotly.io.renderers._build_mime_bundle(figure.to_dict())
"""
#: between two notebooks of one kernel: a fresh namespace and execution count (modules stay)
_RESET_CODE = "get_ipython().reset(new_session=True)"


#: the scheduling priority (``nice``) of a run's warm kernels: they start and import while the
#: client loads, and the loading, which the run waits for, goes first; they catch up beside the
#: audit, which leaves a core idle (cold sample audit: 0.6 s faster in the median of 7 paired
#: runs on two cores, faster in 6 of them)
KERNEL_NICENESS = 10


def _yield_to_loading(pid: int | None) -> None:
    """Lower the kernel process ``pid``'s priority by :data:`KERNEL_NICENESS` (where the
    platform has priorities; a kernel that cannot be lowered runs as it is)."""
    if pid is None or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, pid) + KERNEL_NICENESS
        os.setpriority(os.PRIO_PROCESS, pid, niceness)


class _WarmKernel:
    """One kernel of a run, started early and reused by several notebooks one after another.

    Started (from this interpreter, ipc sockets, see :func:`_kernel_manager_class`) and warmed
    with :data:`_WARM_CODE` while the runner loads and audits the client, so the notebooks pay
    neither a kernel start nor the imports. Between notebooks its namespace is reset
    (:data:`_RESET_CODE`); after a failed notebook it is replaced by a fresh kernel, so a
    half-run cell never leaks into the next chapter. Everything happens in the thread that
    created it (the kernel client belongs to that thread's event loop).
    """

    def __init__(self, cwd: Path, kernel_name: str, start_timeout: float = 120.0) -> None:
        self.cwd, self.kernel_name, self.start_timeout = cwd, kernel_name, start_timeout
        self.runtime = Path(tempfile.mkdtemp(prefix="ak-k-"))
        self.log = open(self.runtime / "kernel.log", "w+b")  # noqa: SIM115 (closed in close)
        self.km: Any = None
        self.used = False
        self.seconds = 0.0

    def start(self) -> None:
        from jupyter_core.utils import run_sync

        started = time.perf_counter()
        cls = _kernel_manager_class(self.runtime, self.kernel_name, self.log)
        self.km = cls(kernel_name=self.kernel_name)
        # as nbclient does: the kernel's IPython history stays in memory, so no cell (the
        # injected parameters name the client) lands in the user's history database
        run_sync(self.km.start_kernel)(
            cwd=str(self.cwd), extra_arguments=["--HistoryManager.hist_file=:memory:"]
        )
        _yield_to_loading(getattr(self.km.provisioner, "pid", None))
        self._run(_WARM_CODE, ready=True)
        self._run(_RESET_CODE)
        self.used = False
        self.seconds = round(time.perf_counter() - started, 3)

    def _run(self, code: str, *, ready: bool = False) -> None:
        """Run ``code`` silently, through a client of its own (a client kept across papermill's
        executions stops receiving replies, so each call opens and closes one). Only the shell
        reply is awaited; ``ready`` first waits for the kernel to answer (after its start)."""
        from jupyter_core.utils import run_sync

        kc = self.km.client()
        try:
            kc.start_channels()
            if ready:
                run_sync(kc.wait_for_ready)(timeout=self.start_timeout)
            msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.monotonic() + self.start_timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the kernel did not answer")
                reply = run_sync(kc.get_shell_msg)(timeout=remaining)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
        finally:
            kc.stop_channels()

    def prepare(self) -> None:
        """Before a notebook: a clean namespace (and a started kernel)."""
        if self.km is None or not self.alive():
            self.stop()
            self.start()
        elif self.used:
            self._run(_RESET_CODE)
        self.used = True

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        try:
            return bool(run_sync(self.km.is_alive)())
        except Exception:
            return False

    def release_clients(self) -> None:
        """Close the channels of the clients papermill opened on this kernel (it leaves them
        open when it does not own the kernel); a long batch would otherwise run out of files."""
        clients = self.km.__dict__.get("_ak_clients", []) if self.km is not None else []
        for kc in list(clients):
            with contextlib.suppress(Exception):
                kc.stop_channels()
            clients.remove(kc)

    def log_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:].decode("utf-8", errors="replace")

    def stop(self) -> None:
        from jupyter_core.utils import run_sync

        if self.km is not None:
            self.release_clients()
            with contextlib.suppress(Exception):
                run_sync(self.km.shutdown_kernel)(now=True)
        self.km = None

    def close(self) -> None:
        self.stop()
        self.log.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


class _Kernels:
    """``lanes`` warm kernels executing a run's notebooks from one queue (see :class:`_WarmKernel`).

    Created before the client is loaded, so the kernels start while it is; :meth:`run` hands
    them the notebooks and returns each one's outcome (as :func:`execute_notebook` does);
    ``then`` is called in the kernel's thread with each outcome as it arrives (the page is
    rendered there while the other kernels still execute). A kernel that cannot start leaves
    its notebooks to papermill's own kernel start, so the run behaves as before.
    """

    def __init__(
        self, lanes: int, cwd: Path, kernel_name: str, execute: Callable[..., dict[str, Any]]
    ) -> None:
        import queue

        self._execute = execute
        self._jobs: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._then: Callable[[str, dict[str, Any]], None] | None = None
        self._ready = threading.Event()
        self.start_seconds: list[float] = []
        self._threads = [
            threading.Thread(
                target=self._lane, args=(cwd, kernel_name), name=f"auditkit-kernel-{i}", daemon=True
            )
            for i in range(max(1, lanes))
        ]
        for t in self._threads:
            t.start()

    def _lane(self, cwd: Path, kernel_name: str) -> None:
        warm = _WarmKernel(cwd, kernel_name)
        kernel: _WarmKernel | None = warm
        try:
            try:
                warm.start()
                self.start_seconds.append(warm.seconds)
            except Exception:  # papermill starts its own kernel for each notebook instead
                warm.close()
                kernel = None
            while (job := self._jobs.get()) is not None:
                stem, args, kwargs = job
                try:
                    if kernel is not None:
                        kernel.prepare()
                    outcome = self._execute(*args, **kwargs, _kernel=kernel)
                except Exception as exc:  # the kernel could not be prepared: papermill's own
                    outcome = {
                        "status": FAILED,
                        "seconds": 0.0,
                        "error": f"{type(exc).__name__}: {exc}",
                        "details": "",
                    }
                if outcome["status"] != COMPLETE and kernel is not None:
                    kernel.stop()  # a fresh kernel for the next notebook (started on demand)
                self._outcomes[stem] = outcome
                if self._then is not None:
                    with contextlib.suppress(Exception):  # render() records its own failures
                        self._then(stem, outcome)
        finally:
            if kernel is not None:
                kernel.close()

    def submit(
        self,
        jobs: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
        then: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """Queue ``jobs`` (stem, execute_notebook args, kwargs); ``then`` gets each outcome."""
        self._then = then
        for job in jobs:
            self._jobs.put(job)

    def wait(self, stems: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Wait for every queued notebook, shut the kernels down; the outcomes by stem."""
        self.close()
        return {stem: self._outcomes[stem] for stem in stems if stem in self._outcomes}

    def run(
        self,
        jobs: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
        then: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """:meth:`submit` then :meth:`wait`."""
        self.submit(jobs, then)
        return self.wait([stem for stem, _, _ in jobs])

    def close(self) -> None:
        """Let every kernel finish its queue, then shut them down (idempotent)."""
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()
