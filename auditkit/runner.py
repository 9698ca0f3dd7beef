"""The audit run: execute the chapter notebooks for a client folder and write its report.

:func:`run_audit` takes one client folder and writes ``<out_dir>/<client>/``::

    index.html              the executive summary (the overview notebook), linking to…
    10_queries.html …       one offline page per chapter
    findings.json           every finding (schema: auditkit/findings.schema.json, docs/findings.md)
    manifest.json           versions, parameters, inputs (hash, format, parse report), timings
    notebooks/*.ipynb       the executed notebooks

Steps: load the client and audit it once here (:func:`auditkit.audit`), saving the audit in a
private working folder; execute the notebooks with papermill, each in its own kernel (in
parallel when an executor is given), each displaying that saved audit; render every executed
notebook to HTML (:mod:`auditkit.report.render`); write ``findings.json`` from the same audit,
and the manifest. Like papermill, a failed notebook still leaves its executed notebook
behind, and its page becomes an error page saying what failed; the rest of the report is
still written. A client folder that cannot be audited at all (missing, bad audit.yaml) gets
an error ``index.html`` and a manifest saying why. :func:`run_audit` returns a
:class:`RunResult` and does not raise for problems in the client's data.

:func:`run_batch` runs many client folders through :mod:`auditkit.executors` — serially,
on local worker processes (``workers``) or on a Dask cluster (``scheduler``) — and one
client's failure never stops the others.

**Kernels.** Each notebook gets a fresh ipykernel started from *this* interpreter
(``sys.executable``; ``kernel_name="python3"`` is pinned to it rather than to whatever
kernelspec ``python3`` resolves to), with this auditkit first on ``PYTHONPATH``, so a
kernel always runs the same code as the runner. Parallel kernels must not collide:
jupyter_client picks TCP ports by binding port 0 and releasing it before the kernel binds it,
so two kernels starting at once can be handed the same port (papermill's known port race).
On POSIX we avoid TCP altogether: kernels talk over ZeroMQ **ipc** (Unix sockets) in a
private temporary directory per notebook, so no port is ever chosen and no two kernels
share a path. Elsewhere (Windows) the kernel uses TCP and kernel starts in one runner
process are serialised with a lock.

**Secrets.** Notebook parameters are checked: a parameter named like a secret, or a value
holding credentials, is refused (pass the *name* of an environment variable instead, e.g.
``dsn_env="AUDITKIT_DSN"``). The values of those variables are scrubbed from every file the
run writes, as a last line of defence behind the redaction the notebooks already apply.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import AuditkitError, ConfigError, NothingReadableError
from auditkit.redact import Redactor, scrub_secrets, scrub_values

__all__ = [
    "MANIFEST_VERSION",
    "BatchResult",
    "NotebookRun",
    "RunResult",
    "default_notebooks",
    "execute_notebook",
    "previous_reports",
    "run_audit",
    "run_batch",
]

#: bumped when manifest.json changes shape
MANIFEST_VERSION = 1
#: distributions whose versions the manifest records
DEPENDENCIES = (
    "pandas",
    "numpy",
    "pyarrow",
    "sqlglot",
    "sqlparse",
    "plotly",
    "papermill",
    "nbconvert",
    "nbformat",
    "nbclient",
    "ipykernel",
    "jupyter_client",
    "pyzmq",
    "dask",
    "distributed",
    "pyyaml",
    "click",
    "tqdm",
    "zstandard",
)
#: parameter names that may not be passed to a notebook (secrets come from the environment)
_SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|credential|dsn|api_?key)")
#: the parameters every chapter notebook declares
NOTEBOOK_PARAMETERS = (
    "client_name",
    "data_dir",
    "audit_dir",
    "presets",
    "show_literals",
    "link_suffix",
    "dsn_env",
    "previous",
)
_USE_IPC = os.name == "posix"
_KERNEL_START_LOCK = threading.Lock()


# -- results ---------------------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """One executed notebook: status, time, where its outputs are (paths relative to the report)."""

    notebook: str
    chapter: str
    status: str = "pending"  # ok | failed
    seconds: float = 0.0
    executed: str | None = None
    page: str | None = None
    page_bytes: int | None = None
    charts: int = 0
    error: str | None = None


@dataclass
class RunResult:
    """The outcome of one client's audit."""

    client: str
    data_dir: str
    report_dir: str
    status: str = "ok"  # ok | failed | no_input (nothing in the folder could be read; no report)
    error: str | None = None
    notebooks: list[NotebookRun] = field(default_factory=list)
    findings: int = 0
    seconds: float = 0.0
    #: since the previous audit, in one sentence (None: no previous audit was given)
    since_previous: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def index(self) -> Path:
        return Path(self.report_dir) / "index.html"

    @property
    def findings_path(self) -> Path:
        return Path(self.report_dir) / "findings.json"

    @property
    def manifest_path(self) -> Path:
        return Path(self.report_dir) / "manifest.json"

    def summary(self) -> str:
        """One line for a terminal."""
        if self.ok:
            since = f" {self.since_previous}" if self.since_previous else ""
            return f"{self.client}: ok, {self.findings} findings in {self.seconds:.1f} s → {self.index}{since}"
        if self.status == "no_input":
            return f"{self.client}: NO INPUT ({self.error}); no report written"
        failed = [n.notebook for n in self.notebooks if n.status == "failed"]
        what = self.error or f"notebook(s) failed: {', '.join(failed)}"
        return f"{self.client}: FAILED ({what}) in {self.seconds:.1f} s → {self.index}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    """The outcome of a batch: one :class:`RunResult` per client folder, in input order."""

    results: list[RunResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        """0 when every client succeeded; 3 when every failure is a folder with nothing
        readable in it (an input error: no report was written); 1 otherwise."""
        if self.ok:
            return 0
        return 3 if all(r.status == "no_input" for r in self.failed) else 1

    def summary(self) -> str:
        """A few lines: one per client, then the totals."""
        lines = [r.summary() for r in self.results]
        lines.append(
            f"{len(self.results) - len(self.failed)} of {len(self.results)} audits succeeded"
            f" in {self.seconds:.1f} s"
            + (f"; failed: {', '.join(r.client for r in self.failed)}" if self.failed else "")
        )
        return "\n".join(lines)


# -- notebooks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Notebook:
    path: Path
    stem: str
    chapter: str
    title: str

    @property
    def page(self) -> str:
        return "index.html" if self.chapter == "overview" else f"{self.stem}.html"


def default_notebooks() -> Path:
    """The folder of the audit notebooks (``notebooks/`` of the repository)."""
    from auditkit.report.notebook import NOTEBOOKS_DIR

    if not NOTEBOOKS_DIR.is_dir():
        raise ConfigError(
            f"audit notebooks not found in {NOTEBOOKS_DIR}",
            hint="run from a checkout of auditkit, or pass notebooks= a folder of .ipynb files",
        )
    return NOTEBOOKS_DIR


def _notebooks(spec: str | Path | Iterable[str | Path] | None) -> list[_Notebook]:
    from auditkit.report.notebook import CHAPTER_INFO

    if spec is None or isinstance(spec, (str, Path)):
        folder = Path(spec) if spec is not None else default_notebooks()
        paths = sorted(folder.glob("*.ipynb")) if folder.is_dir() else [folder]
    else:
        paths = [Path(p) for p in spec]
    if not paths:
        raise ConfigError("no notebooks to run", hint="pass notebooks= a folder of .ipynb files")
    by_stem = {info.notebook: info for info in CHAPTER_INFO.values()}
    out = []
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"notebook {p} not found")
        info = by_stem.get(p.stem)
        out.append(
            _Notebook(
                p.resolve(), p.stem, info.name if info else p.stem, info.title if info else p.stem
            )
        )
    return out


def _kernel_manager_class(runtime_dir: Path, kernel_name: str, log: Any = None) -> type:
    """A kernel manager for one notebook: this interpreter, this auditkit, ipc sockets.

    See the module docstring for why ipc (the port race) and why the interpreter is pinned.
    """
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    package_root = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)

    class AuditKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """ipc transport in a private folder; the runner's interpreter for the python kernel."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if _USE_IPC else "tcp"

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
) -> dict[str, Any]:
    """Execute one notebook with papermill into ``output``; never raises for a notebook error.

    Returns ``{"status", "seconds", "error", "details"}``. The executed notebook is written in
    every case (papermill writes it as it goes) and then scrubbed: error and stream outputs
    are redacted, and the values of the ``secret_env`` variables removed everywhere.
    """
    import auditkit.report  # noqa: F401  (first: it spares papermill's imports a slow one)

    # isort: split
    import papermill

    start = time.perf_counter()
    runtime = Path(tempfile.mkdtemp(prefix="ak-k-"))
    status, error, details, kernel_log = "ok", None, "", ""
    log = open(runtime / "kernel.log", "w+b")  # noqa: SIM115 (closed in finally)
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            kernel_manager_class=_kernel_manager_class(runtime, kernel_name, log),
            cwd=str(cwd or Path(source).parent),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
            start_timeout=120,
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the run
        status = "failed"
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        error = f"{ename}: {evalue}"
        details = "".join(getattr(exc, "traceback", None) or traceback.format_exception_only(exc))
    finally:
        if status == "failed":
            log.seek(0)
            kernel_log = log.read()[-4000:].decode("utf-8", errors="replace")
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)
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


def _check_parameters(parameters: Mapping[str, Any]) -> None:
    for name, value in parameters.items():
        if not str(name).isidentifier():
            raise ConfigError(f"notebook parameter {name!r} is not a Python identifier")
        if _SECRET_NAME.search(str(name)) and not str(name).endswith("_env"):
            raise ConfigError(
                f"notebook parameter {name!r} looks like a secret",
                hint="secrets never go into notebooks: put it in an environment variable and pass its name (dsn_env=...)",
            )
        if isinstance(value, str) and scrub_secrets(value) != value:
            raise ConfigError(
                f"the value of notebook parameter {name!r} holds a credential",
                hint="pass the name of an environment variable that holds it instead",
            )


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return slug or "client"


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in DEPENDENCIES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _write_json(path: Path, data: Any, secrets: Sequence[str]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if secrets:
        text = scrub_values(text, secrets)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


def _local_paths(root: Path, report: Path, cache: Path | None) -> list[tuple[str, str]]:
    """Paths of this machine a manifest must not hold, longest first, with what replaces them."""
    pairs = [(str(report), "."), (str(root), root.name), (sys.executable, "python")]
    if cache is not None:
        pairs.append((str(cache), "<parse cache>"))
    pairs.append((str(Path.home()), "~"))
    return sorted(pairs, key=lambda kv: len(kv[0]), reverse=True)


def _portable(value: Any, local: Sequence[tuple[str, str]]) -> Any:
    """``value`` (a JSON-like manifest part) with every local path replaced (see _local_paths)."""
    if isinstance(value, str):
        for path, label in local:
            if len(path) > 1:
                value = value.replace(path, label)
        return value
    if isinstance(value, Mapping):
        return {k: _portable(v, local) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v, local) for v in value]
    return value


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


# -- the previous audit (auditkit.compare) ------------------------------------------------------
#: the previous audit's findings.json, as the notebooks find it beside the saved audit
PREVIOUS_FILE = "previous.json"


def _previous_document(previous: str | Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The previous audit's document, or why it cannot be used (never raises)."""
    if previous is None:
        return None, None
    from auditkit.compare import load_document

    try:
        doc, _ = load_document(Path(previous).expanduser())
    except AuditkitError as exc:
        return None, str(exc)
    return doc, None


def _save_previous(doc: Mapping[str, Any], work: Path, manifest: dict[str, Any]) -> None:
    (work / PREVIOUS_FILE).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    manifest["previous"] = {
        "client": doc.get("client"),
        "generated_at": doc.get("generated_at"),
        "auditkit_version": doc.get("auditkit_version"),
        "findings": len(doc.get("findings") or []),
    }


def _since_sentence(section: Mapping[str, Any]) -> str:
    counts = section.get("counts") or {}
    parts = [f"{n} {c}" for c, n in counts.items() if n]
    when = str((section.get("previous") or {}).get("generated_at") or "")[:10]
    return f"since {when or 'the previous audit'}: {', '.join(parts) or 'no findings either time'}"


def previous_reports(
    previous: str | Path, names: Sequence[str], clients: Sequence[str | Path]
) -> list[Path | None]:
    """For each client of a batch, its previous audit under ``previous`` (or None).

    ``previous`` is one client's report folder or findings.json (a batch of one client), or a
    folder of reports with one sub-folder per client, matched by report name (the client
    folder's name, as ``auditkit run`` names report folders). A single report given to a batch
    of several clients is an error: it cannot be the previous audit of them all.
    """
    root = Path(previous).expanduser()
    if not root.exists():
        raise ConfigError(
            f"previous audit {str(previous)!r} not found",
            hint="give the previous report folder (or findings.json), or the folder of reports",
        )
    single = root.is_file() or (root / "findings.json").is_file()
    if single:
        if len(names) > 1:
            raise ConfigError(
                f"{root.name!r} is one client's report, but the batch audits {len(names)} clients",
                hint="give the folder holding the previous reports, one sub-folder per client",
            )
        return [root]
    out: list[Path | None] = []
    for name, client in zip(names, clients, strict=True):
        found = None
        for candidate in (name, _slug(Path(client).expanduser().resolve().name)):
            if (root / candidate / "findings.json").is_file():
                found = root / candidate
                break
        out.append(found)
    if len(names) == 1 and out[0] is None:
        raise ConfigError(
            f"no previous audit of {names[0]!r} in {root.name!r}",
            hint=f"give its report folder, or a folder holding {names[0]}/findings.json",
        )
    return out


# -- one client --------------------------------------------------------------------------------
def run_audit(
    data_dir: str | Path,
    out_dir: str | Path = "reports",
    *,
    notebooks: str | Path | Iterable[str | Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
    show_literals: bool = False,
    executor: Any = None,
    client_name: str | None = None,
    report_name: str | None = None,
    presets: Mapping[str, str] | None = None,
    cache_dir: str | Path | None = None,
    no_cache: bool = False,
    dsn_env: str | None = "AUDITKIT_DSN",
    kernel_name: str = "python3",
    timeout: float = 600.0,
    single_file: bool = False,
    previous: str | Path | None = None,
) -> RunResult:
    """Audit one client folder into ``<out_dir>/<report_name>/`` (see the module docstring).

    ``previous`` is the client's previous audit (its report folder or findings.json): the
    summary page opens with what changed since, and findings.json carries it
    (``since_previous``, each finding's ``change``; see :mod:`auditkit.compare`).

    The client is loaded and audited once (:func:`auditkit.audit`); the audit is saved in a
    private working folder that the chapter notebooks read, and removed when the run ends.
    ``executor`` (an :mod:`auditkit.executors` executor) runs the chapter notebooks in
    parallel; by default they run one after the other. ``parameters`` are extra notebook
    parameters (never secrets); ``presets`` picks threshold presets by family
    (``{"n_plus_one": "sentry"}``). Parsed inputs are kept in the parse cache — the user's
    cache folder (:func:`auditkit.parse_cache.default_cache_dir`), or ``cache_dir`` — never
    under ``out_dir``; ``no_cache=True`` parses every file afresh and keeps nothing. The manifest
    names files relative to the client and report folders, never by a path of this machine.
    The pages share one plotly.js (``assets/``); ``single_file=True`` also writes the whole
    report as one self-contained page, ``<report_name>.html``, for e-mailing.
    """
    from auditkit.report.render import PAGE_BUDGET_BYTES, auditkit_version

    started = time.perf_counter()
    generated_at = datetime.now(UTC)
    root = Path(data_dir).expanduser().resolve()
    name = report_name or _slug(root.name)
    report = Path(out_dir).expanduser().resolve() / name
    nb_dir = report / "notebooks"
    from auditkit.parse_cache import default_cache_dir

    cache_label = None if no_cache else "named" if cache_dir else "default"
    cache = (
        None
        if cache_label is None
        else Path(cache_dir or default_cache_dir()).expanduser().resolve()
    )
    local = _local_paths(root, report, cache)
    secret_env = [dsn_env] if dsn_env else []
    redactor = Redactor.from_env(show_literals, secret_env)
    secrets = redactor.secrets
    result = RunResult(client=client_name or root.name, data_dir=str(root), report_dir=str(report))
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "client": result.client,
        "data_dir": root.name,
        "report_dir": report.name,
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "auditkit_version": auditkit_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": _versions(),
        "status": "running",
        "error": None,
    }
    timings: dict[str, float] = {}

    # 0. arguments: refuse secrets as parameters before anything runs
    extra = dict(parameters or {})
    _check_parameters(extra)
    nbs = _notebooks(notebooks)

    # the previous audit is read before anything is written: it may be this very report folder
    previous_doc, previous_error = _previous_document(previous)

    report_existed = report.exists()
    report.mkdir(parents=True, exist_ok=True)
    nb_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(nb_dir / "findings", ignore_errors=True)  # left by an earlier version's runs
    work = Path(tempfile.mkdtemp(prefix="auditkit-run-"))  # private (0700): the saved audit
    try:
        # 1. load and audit the client once: findings.json and every page come from this audit
        try:
            from auditkit import loaders as _loaders  # noqa: F401  (registers every format)
            from auditkit.auditing import audit
            from auditkit.client import load_client
            from auditkit.config import PRESETS, load_config

            if not root.is_dir():
                raise AuditkitError(
                    f"client folder {root.name!r} not found", hint="check the path given"
                )
            if previous_error:
                raise AuditkitError(f"the previous audit cannot be used: {previous_error}")
            config = load_config(root).with_presets(**dict(presets or {}))
            t0 = time.perf_counter()
            client = load_client(
                root, config, cache_dir=cache, name=client_name, require_input=True
            )
            timings["load_s"] = round(time.perf_counter() - t0, 3)
            result.client = client.name
            manifest["client"] = client.name
            manifest["presets"] = {family: config.preset(family) for family in PRESETS}
            manifest["inputs"] = [redactor.value(f.to_dict()) for f in client.files]
            t0 = time.perf_counter()
            dsn = os.environ.get(dsn_env) if dsn_env else None
            audited = audit(client, config, dsn=dsn)
            audited.save(work)
            timings["audit_s"] = round(time.perf_counter() - t0, 3)
            if previous_doc is not None:
                _save_previous(previous_doc, work, manifest)
        except NothingReadableError as exc:  # an input error: say so, and write no report
            if not report_existed:
                shutil.rmtree(report, ignore_errors=True)
            result.status = "no_input"
            result.error = _portable(redactor.text(str(exc)), local)
            result.seconds = round(time.perf_counter() - started, 3)
            return result
        except Exception as exc:
            message = _portable(redactor.text(str(exc)), local)
            return _client_failed(result, manifest, report, nbs, message, started, secrets)

        params: dict[str, Any] = {
            "client_name": result.client,
            "audit_dir": ".",
            "presets": dict(presets or {}),
            "show_literals": bool(show_literals),
            "link_suffix": ".html",
            "dsn_env": dsn_env,
            "previous": PREVIOUS_FILE if previous_doc is not None else None,
            **extra,
        }
        manifest["parameters"] = _portable(params, local)
        manifest["redaction"] = {"show_literals": bool(show_literals), "secret_env": secret_env}
        manifest["kernel"] = {
            "name": kernel_name,
            "python": Path(sys.executable).name,
            "transport": "ipc" if _USE_IPC else "tcp",
        }

        # 2. execute: every notebook reads the saved audit (in parallel if an executor is given)
        runs = {nb.stem: NotebookRun(nb.stem, nb.chapter) for nb in nbs}
        chapters = [nb for nb in nbs if nb.chapter != "overview"]
        overview = [nb for nb in nbs if nb.chapter == "overview"]

        def job(nb: _Notebook) -> tuple[Any, ...]:
            out = nb_dir / nb.path.name
            return (nb.path, out, params, kernel_name, timeout, work, show_literals, secret_env)

        t0 = time.perf_counter()
        outcomes: dict[str, dict[str, Any]] = {}
        ordered = [*overview, *chapters]
        if executor is None:
            for nb in ordered:
                outcomes[nb.stem] = _execute(*job(nb))
        else:
            for nb, outcome in zip(
                ordered, executor.map(_execute, [job(nb) for nb in ordered]), strict=True
            ):
                outcomes[nb.stem] = outcome
        timings["notebooks_s"] = round(time.perf_counter() - t0, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # 3. render every page (an error page for a failed notebook)
    t0 = time.perf_counter()
    from auditkit.report.render import (
        PLOTLY_ASSET,
        error_page,
        export_notebook,
        single_file_html,
        write_plotly_asset,
    )

    bodies: dict[str, str] = {}
    nav = [
        (("Summary" if nb.chapter == "overview" else nb.title), nb.page)
        for nb in [*overview, *chapters]
    ]
    for nb in nbs:
        run, outcome = runs[nb.stem], outcomes[nb.stem]
        executed = nb_dir / nb.path.name
        run.status, run.seconds, run.error = outcome["status"], outcome["seconds"], outcome["error"]
        run.executed = _relative(executed, report) if executed.is_file() else None
        run.page = nb.page
        title = f"{result.client} — {nb.title}"
        try:
            if run.status == "ok":
                page = export_notebook(
                    executed,
                    report / nb.page,
                    title=title,
                    nav=nav,
                    current=nb.page,
                    footer=f"Audit of {result.client}.",
                    secrets=secrets,
                    plotly_src=PLOTLY_ASSET,
                )
                bodies[nb.page] = page.body
            else:
                links = (
                    [("Executed notebook (with the error)", run.executed)] if run.executed else []
                )
                links += [(label, href) for label, href in nav if href != nb.page]
                page = error_page(
                    report / nb.page,
                    title=title,
                    message=run.error or "the notebook failed",
                    details=outcome.get("details", ""),
                    links=links,
                    nav=nav,
                    current=nb.page,
                    secrets=secrets,
                )
            run.page_bytes, run.charts = page.size_bytes, page.charts
        except Exception as exc:  # rendering must not lose the rest of the report
            run.status, run.error = (
                "failed",
                redactor.text(f"rendering failed: {type(exc).__name__}: {exc}"),
            )
    if not overview:  # no overview notebook run: still give the report a front page
        error_page(
            report / "index.html",
            title=f"{result.client} — audit",
            message="No overview notebook was run.",
            links=list(nav),
            nav=nav,
            secrets=secrets,
        )
    charts = any(r.charts for r in runs.values())
    if charts:
        write_plotly_asset(report)
    else:  # an earlier run's copy would only weigh on the folder
        (report / PLOTLY_ASSET).unlink(missing_ok=True)
    single = report / f"{report.name}.html"
    if single_file and bodies:
        sections = [(label, href, bodies[href]) for label, href in nav if href in bodies]
        html = single_file_html(
            f"{result.client} — audit", sections, footer=f"Audit of {result.client}."
        )
        single.write_text(scrub_values(html, secrets) if secrets else html, encoding="utf-8")
    else:
        single.unlink(missing_ok=True)
    timings["render_s"] = round(time.perf_counter() - t0, 3)

    # 4. findings.json: the same audit the pages show, redacted the same way
    result.notebooks = [runs[nb.stem] for nb in nbs]
    result.status = "ok" if all(r.status == "ok" for r in result.notebooks) else "failed"
    chapter_status = {
        nb.chapter: {
            "status": "complete" if runs[nb.stem].status == "ok" else "failed",
            "page": nb.page,
        }
        for nb in nbs
    }
    doc = audited.document(
        redactor,
        version=auditkit_version(),
        status="complete" if result.ok else "failed",
        chapters=chapter_status,
        previous=previous_doc,
    )
    _write_json(result.findings_path, doc, secrets)
    result.findings = len(doc["findings"])
    if "since_previous" in doc:
        result.since_previous = _since_sentence(doc["since_previous"])

    # 5. manifest.json
    result.seconds = round(time.perf_counter() - started, 3)
    timings["total_s"] = result.seconds
    manifest.update(
        status=result.status,
        notebooks=[asdict(r) for r in result.notebooks],
        timings=timings,
        page_budget_bytes=PAGE_BUDGET_BYTES,
        findings=result.findings,
        cache=cache_label,
    )
    _write_json(result.manifest_path, _portable(manifest, local), secrets)
    return result


def _execute(
    source: Path,
    output: Path,
    params: Mapping[str, Any],
    kernel_name: str,
    timeout: float,
    cwd: Path,
    show_literals: bool,
    secret_env: Sequence[str],
) -> dict[str, Any]:
    """Top-level (picklable) wrapper of :func:`execute_notebook` for executors."""
    return execute_notebook(
        source,
        output,
        params,
        kernel_name=kernel_name,
        timeout=timeout,
        cwd=cwd,
        show_literals=show_literals,
        secret_env=secret_env,
    )


def _client_failed(
    result: RunResult,
    manifest: dict[str, Any],
    report: Path,
    nbs: Sequence[_Notebook],
    message: str,
    started: float,
    secrets: Sequence[str],
) -> RunResult:
    from auditkit.report.render import error_page

    result.status, result.error = "failed", message
    result.notebooks = [NotebookRun(nb.stem, nb.chapter, status="skipped") for nb in nbs]
    result.seconds = round(time.perf_counter() - started, 3)
    error_page(
        report / "index.html",
        title=f"{result.client} — audit failed",
        message=message,
        details="The client folder could not be loaded, so no chapter was run.",
        secrets=secrets,
    )
    manifest.update(
        status="failed",
        error=message,
        notebooks=[asdict(r) for r in result.notebooks],
        timings={"total_s": result.seconds},
    )
    _write_json(result.manifest_path, manifest, secrets)
    return result


# -- many clients ------------------------------------------------------------------------------------
def _run_one(
    data_dir: str, out_dir: str, report_name: str, options: Mapping[str, Any]
) -> RunResult:
    """One client of a batch; every exception becomes a failed result (top-level: picklable)."""
    started = time.perf_counter()
    try:
        return run_audit(data_dir, out_dir, report_name=report_name, **options)
    except Exception as exc:
        from auditkit.report.render import error_page

        report = Path(out_dir).expanduser().resolve() / report_name
        message = scrub_secrets(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            error_page(
                report / "index.html", title=f"{report_name} — audit failed", message=message
            )
        return RunResult(
            client=report_name,
            data_dir=str(data_dir),
            report_dir=str(report),
            status="failed",
            error=message,
            seconds=round(time.perf_counter() - started, 3),
        )


def _report_names(dirs: Sequence[str | Path]) -> list[str]:
    names: list[str] = []
    for d in dirs:
        base = _slug(Path(d).expanduser().resolve().name)
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def run_batch(
    dirs: Sequence[str | Path],
    out_dir: str | Path = "reports",
    workers: int = 1,
    scheduler: str | None = None,
    *,
    executor: Any = None,
    on_result: Callable[[RunResult], None] | None = None,
    **options: Any,
) -> BatchResult:
    """Audit every folder of ``dirs``: serially, on ``workers`` processes, or on Dask.

    ``scheduler`` (a Dask scheduler address) runs the batch on that cluster; an explicit
    ``executor`` overrides both. ``options`` go to :func:`run_audit` (``show_literals``,
    ``presets``, ``parameters``…). ``on_result`` is called with each client's result as it
    arrives (in input order) — the CLI's progress display. Folders with the same name get
    ``-2``, ``-3``… report folders. One client's failure never stops the others. A batch of
    one client with ``workers > 1`` runs that client's chapter notebooks in parallel instead.
    ``previous`` (in ``options``) gives each client its previous audit (see
    :func:`previous_reports`); a client without one is audited alone.
    """
    from auditkit.executors import executor_for

    started = time.perf_counter()
    _check_parameters(dict(options.get("parameters") or {}))
    names = _report_names(dirs)
    previous = options.pop("previous", None)
    earlier = (
        previous_reports(previous, names, dirs) if previous is not None else [None] * len(dirs)
    )
    if (
        len(dirs) == 1
        and executor is None
        and scheduler is None
        and workers > 1
        and "executor" not in options
    ):
        # one client: spend the workers on its chapters instead (each notebook is its own kernel)
        from auditkit.executors import ProcessExecutor

        chapters = ProcessExecutor(workers)
        try:
            result = _run_one(
                str(dirs[0]),
                str(out_dir),
                names[0],
                {**options, "executor": chapters, "previous": earlier[0]},
            )
        finally:
            chapters.close()
        if on_result:
            on_result(result)
        return BatchResult([result], round(time.perf_counter() - started, 3))
    ex = executor or executor_for(workers, scheduler)
    jobs = [
        (str(d), str(out_dir), name, {**options, "previous": str(p) if p else None})
        for d, name, p in zip(dirs, names, earlier, strict=True)
    ]
    results: list[RunResult] = []
    try:
        iterator = ex.map(_run_one, jobs)
        while len(results) < len(jobs):
            try:
                res = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # a worker died: the clients left are reported as failed
                message = f"{type(exc).__name__}: {exc}"
                for d, _, name, _ in jobs[len(results) :]:
                    res = RunResult(
                        client=name,
                        data_dir=d,
                        report_dir=str(Path(out_dir) / name),
                        status="failed",
                        error=message,
                    )
                    results.append(res)
                    if on_result:
                        on_result(res)
                break
            results.append(res)
            if on_result:
                on_result(res)
    finally:
        if executor is None:
            ex.close()
    return BatchResult(results, round(time.perf_counter() - started, 3))
