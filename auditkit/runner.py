"""The audit run: execute the chapter notebooks for a client folder and write its report.

:func:`run_audit` takes one client folder and writes ``<out_dir>/<client>/``::

    index.html              the executive summary (the overview notebook), linking to…
    10_queries.html …       one offline page per chapter
    findings.json           every finding (schema: auditkit/findings.schema.json, docs/findings.md)
    manifest.json           versions, parameters, inputs (hash, format, parse report), timings
    notebooks/*.ipynb       the executed notebooks

Steps (each timed in the manifest's ``timings``): start the run's kernels, which import the
report layer while the runner loads the client (``load_s``) and audits it once here
(:func:`auditkit.audit`, ``audit_s``), saving the audit in a private working folder
(``save_s``); execute the notebooks with papermill on those warm kernels, each notebook
displaying that saved audit and computing nothing, each page rendered to HTML
(:mod:`auditkit.report.render`) as soon as its notebook ends (``notebooks_s``); render the
summary page last, with the run's status, and write ``findings.json`` from the same audit, and
the manifest (``render_s`` counts all page rendering). Like papermill, a failed notebook
still leaves its executed notebook behind, and its page becomes an error page saying what
failed; the rest of the report is still written. The run's status is one word of
:data:`RUN_STATUSES`, the same in findings.json, manifest.json and the summary page; a run that
cannot replace an earlier report in its folder marks that report's pages as not refreshed. A client folder that cannot be audited at all (missing, bad audit.yaml) gets
an error ``index.html`` and a manifest saying why. :func:`run_audit` returns a
:class:`RunResult` and does not raise for problems in the client's data.

:func:`run_batch` runs many client folders through :mod:`auditkit.executors` — serially,
on local worker processes (``workers``) or on a Dask cluster (``scheduler``) — and one
client's failure never stops the others.

**Loading.** A run with more than one lane loads its client's files on as many worker
processes (:func:`auditkit.client.load_client`), forked before anything else starts threads;
meanwhile this process imports what the audit needs and readies the page exporter.

**Kernels.** A run starts one kernel per lane (``kernels``; the CLI gives a single client
every core) before it loads the client, so kernel start-up and imports (about 2 s each) overlap
the load instead of preceding each notebook; they run at a lower priority
(:data:`~auditkit.kernels.KERNEL_NICENESS`), so the loading goes first and they catch up beside
the audit. A kernel executes its notebooks one after the
other: before each, its namespace is reset (``%reset``: a new history session, execution
counts from 1; imported modules stay), and after a failed notebook it is replaced by a fresh
one, so no chapter sees another's variables or a half-run cell. Kernels are ipykernels
started from *this* interpreter (``sys.executable``; ``kernel_name="python3"`` is pinned to it rather than to whatever
kernelspec ``python3`` resolves to), with this auditkit first on ``PYTHONPATH``, so a
kernel always runs the same code as the runner. Parallel kernels must not collide:
jupyter_client picks TCP ports by binding port 0 and releasing it before the kernel binds it,
so two kernels starting at once can be handed the same port (papermill's known port race).
On POSIX we avoid TCP altogether: kernels talk over ZeroMQ **ipc** (Unix sockets) in a
private temporary directory per kernel, so no port is ever chosen and no two kernels
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditkit.errors import AuditkitError, ConfigError, NothingReadableError
from auditkit.execute import execute_notebook
from auditkit.executors import ProcessExecutor
from auditkit.kernels import _USE_IPC, _Kernels
from auditkit.lazy_re import compile_later
from auditkit.redact import Redactor, scrub_secrets, scrub_values
from auditkit.status import (
    COMPLETE,
    FAILED,
    NO_INPUT,
    SKIPPED,
)

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
_SECRET_NAME = compile_later(r"(?i)(password|passwd|secret|token|credential|dsn|api_?key)")
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


# -- results ---------------------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """One executed notebook: status, time, where its outputs are (paths relative to the report)."""

    notebook: str
    chapter: str
    status: str = "pending"  # then one of CHAPTER_STATUSES: complete | failed | skipped
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
    status: str = COMPLETE  # one of RUN_STATUSES: complete | failed | no_input
    error: str | None = None
    notebooks: list[NotebookRun] = field(default_factory=list)
    findings: int = 0
    seconds: float = 0.0
    #: since the previous audit, in one sentence (None: no previous audit was given)
    since_previous: str | None = None
    #: when the earlier report this run found in its folder, and could not replace, was made
    #: (its pages are marked as not refreshed; see :func:`_mark_earlier_report`)
    earlier_report: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == COMPLETE

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
        if self.status == NO_INPUT:
            earlier = (
                f"; the earlier report ({self.earlier_report[:10]}) in {self.report_dir} is"
                " marked as not refreshed"
                if self.earlier_report
                else ""
            )
            return f"{self.client}: NO INPUT ({self.error}); no report written{earlier}"
        failed = [n.notebook for n in self.notebooks if n.status == FAILED]
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
        return 3 if all(r.status == NO_INPUT for r in self.failed) else 1

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
    kernels: int | None = None,
) -> RunResult:
    """Audit one client folder into ``<out_dir>/<report_name>/`` (see the module docstring).

    ``previous`` is the client's previous audit (its report folder or findings.json): the
    summary page opens with what changed since, and findings.json carries it
    (``since_previous``, each finding's ``change``; see :mod:`auditkit.compare`).

    The client is loaded and audited once (:func:`auditkit.audit`); the audit is saved in a
    private working folder that the chapter notebooks read, and removed when the run ends.
    The chapter notebooks run on ``kernels`` kernels of this run (default: one; or the
    ``workers`` of an :mod:`auditkit.executors` ``executor`` given instead), started while the
    client is loaded and each executing several notebooks in turn, its namespace reset in
    between; each page is rendered as soon as its notebook is done. ``parameters`` are extra notebook
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
    earlier = _earlier_report(report)  # read before this run writes anything there
    report.mkdir(parents=True, exist_ok=True)
    nb_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(nb_dir / "findings", ignore_errors=True)  # left by an earlier version's runs
    work = Path(tempfile.mkdtemp(prefix="auditkit-run-"))  # private (0700): the saved audit
    # the kernels start now, in the run's working folder, while the client is loaded
    lanes = max(1, min(len(nbs), kernels or getattr(executor, "workers", 1) or 1))
    # the client's files load on as many worker processes: started first, so that each is a
    # copy of this process made before it runs the kernels' threads
    loading = _loading_workers(lanes)
    # this process waits for them: meanwhile, it imports what the audit needs and readies the
    # page exporter (else done while the kernels execute the first notebooks)
    warming: threading.Thread | None = None
    if loading is not None:
        warming = threading.Thread(target=_warm_up, name="auditkit-warm-up", daemon=True)
        warming.start()
    pool = _Kernels(lanes, work, kernel_name, execute_notebook)
    from auditkit.report.render import (
        PLOTLY_ASSET,
        error_page,
        export_notebook,
        single_file_html,
        warm_exporter,
        write_plotly_asset,
    )

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
            try:
                client = load_client(
                    root,
                    config,
                    cache_dir=cache,
                    name=client_name,
                    require_input=True,
                    executor=loading,
                )
            finally:  # the workers end once the parse cache has what they parsed
                if loading is not None:
                    loading.close(wait=False)
            timings["load_s"] = round(time.perf_counter() - t0, 3)
            result.client = client.name
            manifest["client"] = client.name
            manifest["presets"] = {family: config.preset(family) for family in PRESETS}
            manifest["inputs"] = [redactor.value(f.to_dict()) for f in client.files]
            t0 = time.perf_counter()
            dsn = os.environ.get(dsn_env) if dsn_env else None
            audited = audit(client, config, dsn=dsn)
            timings["audit_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            audited.save(work)
            timings["save_s"] = round(time.perf_counter() - t0, 3)
            if previous_doc is not None:
                _save_previous(previous_doc, work, manifest)
        except NothingReadableError as exc:  # an input error: say so, and write no report
            result.status = NO_INPUT
            result.error = _portable(redactor.text(str(exc)), local)
            result.seconds = round(time.perf_counter() - started, 3)
            if not report_existed:
                shutil.rmtree(report, ignore_errors=True)
            else:
                _mark_earlier_report(report, earlier, manifest, result, secrets)
            return result
        except Exception as exc:
            message = _portable(redactor.text(str(exc)), local)
            return _client_failed(result, manifest, report, nbs, message, started, secrets, earlier)

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
            "kernels": lanes,
        }

        # 2. execute: every notebook displays the saved audit, on the run's warm kernels; each
        # chapter's page is rendered as soon as its notebook is done (the summary page last:
        # it states how the run ended)
        runs = {nb.stem: NotebookRun(nb.stem, nb.chapter) for nb in nbs}
        chapters = [nb for nb in nbs if nb.chapter != "overview"]
        overview = [nb for nb in nbs if nb.chapter == "overview"]
        by_stem = {nb.stem: nb for nb in nbs}
        nav = [
            (("Summary" if nb.chapter == "overview" else nb.title), nb.page)
            for nb in [*overview, *chapters]
        ]
        bodies: dict[str, str] = {}
        render_lock = threading.Lock()
        render_seconds = [0.0]

        def render(
            stem: str, outcome: dict[str, Any], status: tuple[str, str] | None = None
        ) -> None:
            nb, run = by_stem[stem], runs[stem]
            executed = nb_dir / nb.path.name
            run.status, run.seconds = outcome["status"], outcome["seconds"]
            run.error = outcome["error"]
            run.executed = _relative(executed, report) if executed.is_file() else None
            run.page = nb.page
            if nb.chapter == "overview" and status is None and run.status == COMPLETE:
                return  # rendered last, when the run's status is known
            title = f"{result.client} — {nb.title}"
            with render_lock:
                t0 = time.perf_counter()
                try:
                    if run.status == COMPLETE:
                        page = export_notebook(
                            executed,
                            report / nb.page,
                            title=title,
                            nav=nav,
                            current=nb.page,
                            footer=f"Audit of {result.client}.",
                            secrets=secrets,
                            plotly_src=PLOTLY_ASSET,
                            status=status,
                        )
                        bodies[nb.page] = page.body
                    else:
                        links = (
                            [("Executed notebook (with the error)", run.executed)]
                            if run.executed
                            else []
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
                    run.status = FAILED
                    run.error = redactor.text(f"rendering failed: {type(exc).__name__}: {exc}")
                finally:
                    render_seconds[0] += time.perf_counter() - t0

        def job(nb: _Notebook) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
            args = (nb.path, nb_dir / nb.path.name, params)
            kwargs = {
                "kernel_name": kernel_name,
                "timeout": timeout,
                "cwd": work,
                "show_literals": show_literals,
                "secret_env": secret_env,
            }
            return nb.stem, args, kwargs

        t0 = time.perf_counter()
        pool.submit([job(nb) for nb in [*overview, *chapters]], then=render)
        with render_lock:  # while the kernels execute the first notebooks
            t1 = time.perf_counter()
            if warming is not None:
                warming.join()
            else:
                with contextlib.suppress(Exception):  # the first page would then pay for it
                    warm_exporter()
            render_seconds[0] += time.perf_counter() - t1
        outcomes = pool.wait(nb.stem for nb in nbs)
        for nb in nbs:  # a kernel thread that died leaves its notebooks without an outcome
            if nb.stem not in outcomes:
                render(nb.stem, {"status": FAILED, "seconds": 0.0, "error": "not executed"})
        timings["kernel_start_s"] = max(pool.start_seconds, default=0.0)
        timings["notebooks_s"] = round(time.perf_counter() - t0, 3)
    finally:
        pool.close()
        if loading is not None:
            loading.close()
        shutil.rmtree(work, ignore_errors=True)

    # 3. the summary page (with the run's status), the shared plotly.js, the single file
    t0 = time.perf_counter()
    result.notebooks = [runs[nb.stem] for nb in nbs]
    status = _run_status(result.notebooks)
    for nb in overview:
        if runs[nb.stem].status == COMPLETE:
            render(nb.stem, outcomes[nb.stem], status=_status_notice(status, result.notebooks))
    result.notebooks = [runs[nb.stem] for nb in nbs]
    result.status = status = _run_status(result.notebooks)
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
    written = {nb.page for nb in nbs} | {"index.html"} | ({single.name} if single_file else set())
    _mark_earlier_report(report, earlier, None, result, secrets, keep=written)
    timings["render_s"] = round(render_seconds[0] + time.perf_counter() - t0, 3)

    # 4. findings.json: the same audit the pages show, redacted the same way
    chapter_status = {nb.chapter: {"status": runs[nb.stem].status, "page": nb.page} for nb in nbs}
    doc = audited.document(
        redactor,
        version=auditkit_version(),
        status=status,
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
        status=status,
        notebooks=[asdict(r) for r in result.notebooks],
        timings=timings,
        page_budget_bytes=PAGE_BUDGET_BYTES,
        findings=result.findings,
        cache=cache_label,
    )
    _write_json(result.manifest_path, _portable(manifest, local), secrets)
    return result


def _warm_up() -> None:
    """What a run does while its client loads on worker processes: import what the audit
    needs (:func:`auditkit.auditing.warm_imports`) and ready the page exporter
    (:func:`auditkit.report.render.warm_exporter`). Neither may fail the run: each page would
    then pay for its part."""
    from auditkit.auditing import warm_imports
    from auditkit.report.render import warm_exporter

    for step in (warm_imports, warm_exporter):
        with contextlib.suppress(Exception):
            step()


def _loading_workers(lanes: int) -> ProcessExecutor | None:
    """``lanes`` worker processes to load a client's files on, started now; None for one lane
    (or where no process can be started: the files then load in this process)."""
    if lanes < 2:
        return None
    from auditkit import loaders  # noqa: F401  (every format registered: the workers inherit it)
    from auditkit.client import load_client  # noqa: F401  (what the workers run)

    workers = ProcessExecutor(lanes)
    try:
        workers.start()
    except (OSError, RuntimeError):
        workers.close()
        return None
    return workers


def _run_status(notebooks: Sequence[NotebookRun]) -> str:
    """The run's status word (see :data:`RUN_STATUSES`) from its chapters'."""
    return COMPLETE if all(n.status == COMPLETE for n in notebooks) else FAILED


def _status_notice(status: str, notebooks: Sequence[NotebookRun]) -> tuple[str, str]:
    """The summary page's status line: (status word, the sentence that explains it)."""
    from auditkit.report.notebook import CHAPTER_INFO

    if status == COMPLETE:
        return status, "every chapter of this report was produced"
    titles = {info.name: info.title for info in CHAPTER_INFO.values()}
    failed = [titles.get(n.chapter, n.chapter) for n in notebooks if n.status != COMPLETE]
    return status, (
        f"{', '.join(failed)} could not be produced; "
        + ("its page says" if len(failed) == 1 else "their pages say")
        + " what failed"
    )


#: the banner an earlier run's page carries once a later run could not refresh it
_STALE_START, _STALE_END = "<!-- auditkit:not-refreshed -->", "<!-- /auditkit:not-refreshed -->"
_STALE_BLOCK = compile_later(
    re.escape(_STALE_START) + r".*?" + re.escape(_STALE_END) + r"\n?", re.S
)


def _earlier_report(report: Path) -> str | None:
    """When the report already in ``report`` was generated (None: there is none)."""
    if not (report / "index.html").is_file() and not (report / "findings.json").is_file():
        return None
    for name in ("findings.json", "manifest.json"):  # the audit's own date first
        with contextlib.suppress(OSError, ValueError, AttributeError):
            doc = json.loads((report / name).read_text(encoding="utf-8"))
            earlier = (doc.get("earlier_report") or {}).get("generated_at") or doc.get(
                "generated_at"
            )
            if earlier:
                return str(earlier)
    with contextlib.suppress(OSError):
        stamp = (report / "index.html").stat().st_mtime
        return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
    return None


def _mark_earlier_report(
    report: Path,
    earlier: str | None,
    manifest: dict[str, Any] | None,
    result: RunResult,
    secrets: Sequence[str],
    keep: Iterable[str] = (),
) -> list[str]:
    """Mark the pages an earlier run left in ``report`` that this run did not rewrite.

    A report folder is where a consultant picks up what to send: a page that this run did
    not produce must not pass for a new one. Each such page (every ``*.html`` of the folder
    but ``keep``) gets a banner at its top saying it is from the earlier run and why this run
    did not replace it; the pages are kept, not removed, since the earlier findings.json
    may be the ``--previous`` audit of the next run. With ``manifest`` (a run that ended
    ``no_input``), manifest.json is rewritten to say so, naming the earlier report. Returns
    the pages marked.
    """
    if earlier is None:
        return []
    from html import escape

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    when = earlier.replace("T", " ")[:16]
    why = {
        NO_INPUT: "found nothing it could read in the client folder",
        FAILED: "failed",
        COMPLETE: "did not produce this page (its chapter was not part of the run)",
    }.get(result.status, "did not replace it")
    banner = (
        f'{_STALE_START}<div class="ak-error ak-not-refreshed" data-status="{escape(result.status)}">'
        f"<p><b>Not refreshed: this page is from an earlier audit ({escape(when)}).</b> "
        f"The run of {escape(now)} {why}"
        + (f": {escape(result.error)}" if result.error else "")
        + ". Do not send this page as a new audit.</p></div>"
        f"{_STALE_END}\n"
    )
    kept = set(keep)
    marked = []
    for page in sorted(report.glob("*.html")):
        if page.name in kept:
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            html = _STALE_BLOCK.sub("", page.read_text(encoding="utf-8"))
            head, sep, tail = html.partition("<body>\n")
            if not sep:
                head, sep, tail = html.partition("<body>")
            if not sep:
                continue
            html = head + sep + banner + tail
            page.write_text(scrub_values(html, secrets) if secrets else html, encoding="utf-8")
            marked.append(page.name)
    if marked or manifest is not None:
        result.earlier_report = earlier
    if manifest is not None:
        manifest.update(
            status=result.status,
            error=result.error,
            earlier_report={"generated_at": earlier, "pages_marked": marked},
            timings={"total_s": result.seconds},
        )
        _write_json(report / "manifest.json", manifest, secrets)
    return marked


def _client_failed(
    result: RunResult,
    manifest: dict[str, Any],
    report: Path,
    nbs: Sequence[_Notebook],
    message: str,
    started: float,
    secrets: Sequence[str],
    earlier: str | None = None,
) -> RunResult:
    from auditkit.report.render import error_page

    result.status, result.error = FAILED, message
    result.notebooks = [NotebookRun(nb.stem, nb.chapter, status=SKIPPED) for nb in nbs]
    result.seconds = round(time.perf_counter() - started, 3)
    error_page(
        report / "index.html",
        title=f"{result.client} — audit failed",
        message=message,
        details="The client folder could not be loaded, so no chapter was run.",
        secrets=secrets,
    )
    _mark_earlier_report(report, earlier, None, result, secrets, keep={"index.html"})
    manifest.update(
        status=FAILED,
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
            status=FAILED,
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
    one client with ``workers > 1`` loads that client's files on that many processes and runs its
    chapter notebooks on that many kernels.
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
        # one client: spend the workers on its chapters instead (one warm kernel per worker)
        result = _run_one(
            str(dirs[0]),
            str(out_dir),
            names[0],
            {**options, "kernels": workers, "previous": earlier[0]},
        )
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
                        status=FAILED,
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
