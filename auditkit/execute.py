"""Executing one notebook: papermill on a kernel, the executed notebook scrubbed.

:func:`execute_notebook` runs a notebook into its output file and returns its outcome
(``status``, ``seconds``, ``error``, ``details``); it never raises for an error in the
notebook. The notebook runs on a kernel of its own or on a run's warm kernel
(:class:`auditkit.kernels._WarmKernel`); afterwards its error and stream outputs are redacted
and the values of secret environment variables removed everywhere
(:func:`_scrub_notebook`). :mod:`auditkit.runner` executes a run's chapters with it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from auditkit.kernels import _kernel_manager_class, _WarmKernel
from auditkit.redact import Redactor, scrub_values
from auditkit.status import COMPLETE, FAILED

__all__ = ["execute_notebook"]


def execute_notebook(
    source: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any],
    *,
    kernel_name: str = "python3",
    timeout: float = 600.0,
    cwd: str | Path | None = None,
    show_literals: bool = False,
    secret_env: Sequence[str] = (),
    _kernel: _WarmKernel | None = None,
) -> dict[str, Any]:
    """Execute one notebook with papermill into ``output``; never raises for a notebook error.

    Returns ``{"status", "seconds", "error", "details"}`` (status ``complete`` or ``failed``). The executed notebook is written in
    every case (papermill writes it as it goes) and then scrubbed: error and stream outputs
    are redacted, and the values of the ``secret_env`` variables removed everywhere. The
    notebook runs in a kernel of its own, or (inside a run) in a warm kernel of the run,
    already started in ``cwd`` (see :class:`_Kernels`).
    """
    import auditkit.report  # noqa: F401  (first: it spares papermill's imports a slow one)

    # isort: split
    import papermill

    start = time.perf_counter()
    status, error, details, kernel_log = COMPLETE, None, "", ""
    runtime = Path(tempfile.mkdtemp(prefix="ak-k-")) if _kernel is None else None
    log: Any = None
    kernel: dict[str, Any]
    if runtime is not None:
        log = open(runtime / "kernel.log", "w+b")  # noqa: SIM115 (closed in finally)
        kernel = {
            "kernel_manager_class": _kernel_manager_class(runtime, kernel_name, log),
            "cwd": str(cwd or Path(source).parent),
        }
    elif _kernel is not None:  # it runs in the run's folder already: papermill must not chdir
        kernel = {"km": _kernel.km, "cwd": None}
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
            start_timeout=120,
            **kernel,
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the run
        status = FAILED
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        error = f"{ename}: {evalue}"
        details = "".join(getattr(exc, "traceback", None) or traceback.format_exception_only(exc))
    finally:
        if _kernel is not None:
            _kernel.release_clients()
            if status == FAILED:
                kernel_log = _kernel.log_tail()
        else:
            if status == FAILED:
                log.seek(0)
                kernel_log = log.read()[-4000:].decode("utf-8", errors="replace")
            log.close()
            shutil.rmtree(str(runtime), ignore_errors=True)
    if kernel_log.strip():
        details += "\n--- kernel log (tail) ---\n" + kernel_log
    redactor = Redactor.from_env(show_literals, secret_env)
    if Path(output).is_file():
        _scrub_notebook(Path(output), redactor)
    from auditkit.report.render import strip_ansi

    return {
        "status": status,
        "seconds": round(time.perf_counter() - start, 3),
        "error": redactor.text(error) if error else None,
        "details": redactor.text(strip_ansi(details))[-6000:],
    }


def _scrub_notebook(path: Path, redactor: Redactor) -> None:
    import nbformat

    from auditkit.report.render import strip_ansi

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # local paths of the consultant's machine
        if meta.get(key):
            meta[key] = Path(str(meta[key])).name
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                out["text"] = redactor.text(out.get("text", ""))
            elif kind == "error":
                out["evalue"] = redactor.text(out.get("evalue", ""))
                out["traceback"] = [
                    redactor.text(strip_ansi(line)) for line in out.get("traceback", [])
                ]
            elif kind in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "text/plain" in data:
                    data["text/plain"] = redactor.text(data["text/plain"])
                for mime, value in list(data.items()):
                    if isinstance(value, str) and redactor.secrets:
                        data[mime] = scrub_values(value, redactor.secrets)
    nbformat.write(nb, str(path))
