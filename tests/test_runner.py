"""The audit run end to end: notebooks executed with papermill, pages, findings.json, manifest.

The sample audit runs on ``data/sample`` (the bundled client); the other tests build small
client folders in ``tmp_path`` from JSON-lines and Django query logs written the way the
capture app and Django write them, so they run in seconds. Notebook subsets
(``notebooks=[...]``) keep batch tests short; the sample audit runs every chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from auditkit.errors import ConfigError
from auditkit.findings import CHECKS
from auditkit.report.notebook import NOTEBOOKS_DIR
from auditkit.report.render import PAGE_BUDGET_BYTES, PLOTLY_ASSET, REPORT_BUDGET_BYTES
from auditkit.runner import RunResult, execute_notebook, run_audit, run_batch

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
SCHEMA = ROOT / "auditkit" / "findings.schema.json"
CHAPTER_PAGES = (
    "index.html",
    "10_queries.html",
    "20_indexing.html",
    "30_caching.html",
    "40_scaling.html",
)
QUICK = [NOTEBOOKS_DIR / "00_overview.ipynb", NOTEBOOKS_DIR / "10_queries.ipynb"]
PLOTLY_HEADER = "* plotly.js v"


# -- client folders ------------------------------------------------------------------------------
def write_client(root: Path, *, requests: int = 6, email: str = "ann.other@example.com") -> Path:
    """A small client folder: a JSON-lines query log with an N+1, a Django log, a stray file."""
    root.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, Any]] = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    for r in range(requests):
        rid = f"{r + 1:032x}"
        t = f"2024-05-01T10:00:{r:02d}"
        lines.append(
            _q(
                f"{t}.010Z",
                3.5,
                'SELECT "catalog_book"."id", "catalog_book"."author_id" FROM "catalog_book" '
                'ORDER BY "catalog_book"."id" DESC LIMIT 10',
                [],
                rid,
                "books/",
            )
        )
        for i in range(8):
            lines.append(
                _q(
                    f"{t}.{20 + i:03d}Z",
                    0.9,
                    'SELECT "catalog_author"."id", "catalog_author"."name" FROM '
                    '"catalog_author" WHERE "catalog_author"."id" = %s LIMIT 21',
                    [i + 1],
                    rid,
                    "books/",
                )
            )
        lines.append(
            _q(
                f"{t}.040Z",
                1.2,
                f'SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."email" = \'{email}\'',
                [email],
                rid,
                "account/",
            )
        )
        lines.append(
            {
                "type": "request",
                "ts": f"{t}.000Z",
                "request_id": rid,
                "endpoint": "books/",
                "method": "GET",
                "status": 200,
                "duration_ms": 48.0,
                "db_ms": 12.0,
                "db_calls": 10,
            }
        )
    (root / "capture").mkdir(exist_ok=True)
    (root / "capture" / "queries.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    django = [
        '[2024-04-04 17:46:19,115] DEBUG: (0.004) SELECT "catalog_book"."id" FROM "catalog_book" WHERE "catalog_book"."id" = 7; args=(7,); alias=default',
        '[2024-04-04 17:46:19,120] DEBUG: (0.002) SELECT "catalog_book"."id" FROM "catalog_book" WHERE "catalog_book"."id" = 9; args=(9,); alias=default',
        "[2024-04-04 17:46:19,130] INFO: Watching for file changes with StatReloader",
    ]
    (root / "django.log").write_text("\n".join(django) + "\n", encoding="utf-8")
    (root / "notes.bin").write_bytes(bytes(range(256)) * 4)
    return root


def _q(ts: str, ms: float, sql: str, params: list[Any], rid: str, endpoint: str) -> dict[str, Any]:
    return {
        "ts": ts,
        "duration_ms": ms,
        "sql": sql,
        "params": params,
        "alias": "default",
        "request_id": rid,
        "endpoint": endpoint,
        "method": "GET",
        "pid": 4121,
        "thread": "MainThread",
    }


def validate_findings(path: Path) -> dict[str, Any]:
    """findings.json of a run, validated against the JSON Schema."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    return doc


def html_pages(report: Path) -> Iterator[Path]:
    return iter(sorted(report.glob("*.html")))


# -- the sample audit --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The whole audit of data/sample (every chapter), run once for the tests below."""
    if not any(SAMPLE.rglob("*.gz")) and not any(SAMPLE.rglob("*.log")):
        pytest.skip("data/sample has no data yet (run make sample)")
    return run_audit(SAMPLE, tmp_path_factory.mktemp("reports"), single_file=True)


def test_sample_audit_writes_every_page(sample_run: RunResult) -> None:
    report = Path(sample_run.report_dir)
    assert report.name == "sample"
    for page in CHAPTER_PAGES:
        assert (report / page).is_file(), page
    failed = {n.notebook: n.error for n in sample_run.notebooks if n.status != "complete"}
    assert not failed, failed
    assert sample_run.ok
    for nb in NOTEBOOKS_DIR.glob("*.ipynb"):
        executed = nbformat.read(str(report / "notebooks" / nb.name), as_version=4)
        errors = [
            o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert not errors


def test_sample_index_is_the_executive_summary_linking_chapters(sample_run: RunResult) -> None:
    index = (Path(sample_run.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "executive summary" in index.lower()
    for page in CHAPTER_PAGES[1:]:
        assert f'href="{page}' in index, page  # nav bar and finding links
    # severity-ranked findings table first, then the data inventory and quality sections
    assert (
        index.index("Findings at a glance")
        < index.index("Data inventory")
        < index.index("Data quality")
    )
    assert 'class="ak-toc"' in index


def test_sample_findings_json_matches_the_schema(sample_run: RunResult) -> None:
    doc = validate_findings(sample_run.findings_path)
    assert doc["client"] == "Sample Bookshop"
    assert len(doc["findings"]) == sample_run.findings > 0
    assert set(doc["chapters"]) == {"overview", "queries", "indexing", "caching", "scaling"}
    assert {f["check"] for f in doc["findings"]} <= set(CHECKS) | {
        f["check"] for f in doc["findings"] if f["check"].startswith("plan_")
    }
    severities = [f["severity"] for f in doc["findings"]]
    order = ["critical", "high", "medium", "low", "info"]
    assert severities == sorted(severities, key=order.index)


def run_statuses(result: RunResult) -> dict[str, str]:
    """The run's status word as findings.json, manifest.json and the summary page state it."""
    report = Path(result.report_dir)
    page = (report / "index.html").read_text(encoding="utf-8")
    found = re.findall(r'class="ak-run-status" data-status="([a-z_]+)"', page)
    assert len(found) == 1, "the summary page states the run's status once"
    return {
        "result": result.status,
        "findings.json": json.loads(result.findings_path.read_text(encoding="utf-8"))["status"],
        "manifest.json": json.loads(result.manifest_path.read_text(encoding="utf-8"))["status"],
        "summary page": found[0],
    }


def test_sample_run_status_is_one_word_everywhere(sample_run: RunResult) -> None:
    from auditkit.status import CHAPTER_STATUSES, RUN_STATUSES

    assert set(run_statuses(sample_run).values()) == {"complete"}
    doc = json.loads(sample_run.findings_path.read_text(encoding="utf-8"))
    m = json.loads(sample_run.manifest_path.read_text(encoding="utf-8"))
    assert {c["status"] for c in doc["chapters"].values()} <= set(CHAPTER_STATUSES)
    assert {n["status"] for n in m["notebooks"]} == {"complete"}
    # the vocabulary is documented where findings.json and the run are
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert set(schema["properties"]["status"]["enum"]) == set(RUN_STATUSES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{word}`" in readme for word in RUN_STATUSES)


def test_sample_manifest(sample_run: RunResult) -> None:
    m = json.loads(sample_run.manifest_path.read_text(encoding="utf-8"))
    assert m["status"] == "complete" and m["auditkit_version"]
    assert (
        m["dependencies"]["papermill"]
        and m["dependencies"]["plotly"]
        and m["dependencies"]["pandas"]
    )
    # the audit is saved once in a private folder the notebooks read: no local path anywhere
    assert m["parameters"]["audit_dir"] == "." and "data_dir" not in m["parameters"]
    assert m["data_dir"] == SAMPLE.name and str(SAMPLE.resolve()) not in json.dumps(m)
    assert (
        m["parameters"]["show_literals"] is False and m["parameters"]["dsn_env"] == "AUDITKIT_DSN"
    )
    files = {
        p.relative_to(SAMPLE).as_posix()
        for p in SAMPLE.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert {i["path"] for i in m["inputs"]} == files
    for i in m["inputs"]:
        digest = hashlib.sha256((SAMPLE / i["path"]).read_bytes()).hexdigest()
        assert i["sha256"] == digest
        if i["status"] == "loaded":
            assert (
                i["format"]
                and i["report"]["read"] == i["report"]["parsed"] + i["report"]["skipped_total"]
            )
    assert {n["notebook"] for n in m["notebooks"]} == {
        p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")
    }
    assert all(n["seconds"] > 0 for n in m["notebooks"])
    assert m["timings"]["total_s"] >= m["timings"]["notebooks_s"] > 0
    assert m["kernel"]["python"] == Path(sys.executable).name


def test_sample_pages_share_one_plotly_and_hold_the_size_budget(sample_run: RunResult) -> None:
    report = Path(sample_run.report_dir)
    single = report / f"{report.name}.html"
    asset = report / PLOTLY_ASSET
    assert PLOTLY_HEADER in asset.read_text(encoding="utf-8")[:2000]
    charted = 0
    for page in html_pages(report):
        if page == single:
            continue
        text = page.read_text(encoding="utf-8")
        assert page.stat().st_size <= 512 * 1024, (page.name, page.stat().st_size)
        charts = text.count('class="plotly-graph-div"')
        assert PLOTLY_HEADER not in text, page.name  # never inlined: shared
        scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", text)
        assert scripts == ([PLOTLY_ASSET] if charts else []), (page.name, scripts)
        charted += charts > 0
        assert "cdn." not in text
        assert "jp-InputArea" not in text and "input_area" not in text  # code hidden
    assert charted >= 2  # queries and scaling draw charts
    # the whole folder a consultant sends stays small: plotly.js once, not once per page
    deliverable = [p for p in report.rglob("*") if p.is_file() and p != single]
    deliverable = [p for p in deliverable if "notebooks" not in p.relative_to(report).parts]
    assert sum(p.stat().st_size for p in deliverable) <= REPORT_BUDGET_BYTES
    # the single self-contained file: every chapter, plotly.js inlined once, links inside it
    text = single.read_text(encoding="utf-8")
    assert single.stat().st_size <= PAGE_BUDGET_BYTES
    assert text.count(PLOTLY_HEADER) == 1 and "<script src=" not in text
    assert text.count('class="ak-chapter"') == len(CHAPTER_PAGES)
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # chapter-prefixed: no clash between chapters
    for anchor in re.findall(r'href="#([^"]+)"', text):
        assert anchor in set(ids), anchor
    assert not re.search(r'href="[^"#:]+\.html', text)  # no link out to the separate pages


# -- small clients -------------------------------------------------------------------------------
def test_rerun_hits_the_parse_cache(tmp_path: Path) -> None:
    client = write_client(tmp_path / "acme")
    cache = tmp_path / "cache"
    first = run_audit(client, tmp_path / "out", notebooks=QUICK, cache_dir=cache)
    m1 = json.loads(first.manifest_path.read_text())
    second = run_audit(client, tmp_path / "out", notebooks=QUICK, cache_dir=cache)
    m2 = json.loads(second.manifest_path.read_text())
    assert first.ok and second.ok
    loaded1 = {i["path"]: i["cached"] for i in m1["inputs"] if i["status"] == "loaded"}
    loaded2 = {i["path"]: i["cached"] for i in m2["inputs"] if i["status"] == "loaded"}
    assert loaded1 and not any(loaded1.values())
    assert loaded2.keys() == loaded1.keys() and all(loaded2.values())
    validate_findings(second.findings_path)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".parquet", ".pickle")]


def test_batch_with_a_broken_client_completes_and_fails(tmp_path: Path) -> None:
    good = [write_client(tmp_path / name, requests=3) for name in ("acme", "globex", "initech")]
    broken = tmp_path / "umbrella"
    write_client(broken, requests=2)
    (broken / "audit.yaml").write_text("presets: {n_plus_one: no_such_preset}\n", encoding="utf-8")
    seen: list[str] = []
    batch = run_batch(
        [*good, broken],
        tmp_path / "out",
        workers=2,
        notebooks=QUICK,
        on_result=lambda r: seen.append(r.client),
    )
    assert batch.exit_code == 1 and not batch.ok
    assert [r.client for r in batch.failed] == ["umbrella"]
    assert len(seen) == 4
    for r in batch.results[:3]:
        assert r.ok, r.summary()
        assert (Path(r.report_dir) / "10_queries.html").is_file()
        doc = validate_findings(r.findings_path)
        assert any(f["check"] == "data_quality" for f in doc["findings"])  # the stray binary file
    bad = batch.results[3]
    page = (Path(bad.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "no_such_preset" in page and "could not be produced" in page
    assert json.loads(bad.manifest_path.read_text())["status"] == "failed"
    assert "umbrella" in batch.summary() and "3 of 4 audits succeeded" in batch.summary()


def test_batch_on_a_local_dask_cluster(tmp_path: Path) -> None:
    from auditkit.executors import DaskExecutor

    dirs = [write_client(tmp_path / name, requests=2) for name in ("acme", "acme-eu")]
    ex = DaskExecutor()
    try:
        batch = run_batch(dirs, tmp_path / "out", executor=ex, notebooks=QUICK)
    finally:
        ex.close()
    assert batch.ok, batch.summary()
    assert {Path(r.report_dir).name for r in batch.results} == {"acme", "acme-eu"}
    for r in batch.results:
        validate_findings(r.findings_path)


def test_same_folder_names_get_distinct_reports(tmp_path: Path) -> None:
    a = write_client(tmp_path / "a" / "client", requests=1)
    b = write_client(tmp_path / "b" / "client", requests=1)
    batch = run_batch([a, b], tmp_path / "out", notebooks=[NOTEBOOKS_DIR / "00_overview.ipynb"])
    assert [Path(r.report_dir).name for r in batch.results] == ["client", "client-2"]


def test_a_failing_notebook_leaves_its_notebook_and_an_error_page(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for src in QUICK:
        (nbs / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    broken = nbformat.read(str(QUICK[1]), as_version=4)
    broken.cells.append(
        nbformat.v4.new_code_cell('raise RuntimeError("chapter exploded on purpose")')
    )
    nbformat.write(broken, str(nbs / "15_broken.ipynb"))
    result = run_audit(write_client(tmp_path / "acme", requests=2), tmp_path / "out", notebooks=nbs)
    assert not result.ok
    runs = {n.notebook: n for n in result.notebooks}
    assert runs["15_broken"].status == "failed" and "chapter exploded on purpose" in (
        runs["15_broken"].error or ""
    )
    assert runs["00_overview"].status == runs["10_queries"].status == "complete"
    report = Path(result.report_dir)
    executed = nbformat.read(str(report / "notebooks" / "15_broken.ipynb"), as_version=4)
    assert any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    page = (report / "15_broken.html").read_text(encoding="utf-8")
    assert "chapter exploded on purpose" in page and "notebooks/15_broken.ipynb" in page
    assert (report / "index.html").is_file() and (report / "10_queries.html").is_file()
    validate_findings(result.findings_path)
    # one word for the run everywhere, and the summary page says which chapter failed
    assert set(run_statuses(result).values()) == {"failed"}
    index = (report / "index.html").read_text(encoding="utf-8")
    assert "ak-run-status-notice" in index and "15_broken" in index


def test_secrets_are_refused_as_parameters(tmp_path: Path) -> None:
    client = write_client(tmp_path / "acme", requests=1)
    with pytest.raises(ConfigError, match="looks like a secret"):
        run_audit(client, tmp_path / "out", parameters={"db_password": "x"})
    with pytest.raises(ConfigError, match="holds a credential"):
        run_audit(client, tmp_path / "out", parameters={"note": "postgresql://app:pw@db/shop"})


def test_kernel_runs_the_runner_interpreter_with_ipc(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("target = ''")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        p,
        nbformat.v4.new_code_cell(
            "import sys, json, auditkit\n"
            "from ipykernel import get_connection_file\n"
            "cfg = get_connection_file()\n"
            "open(target, 'w').write(json.dumps([sys.executable, auditkit.__version__, json.load(open(cfg))['transport']]))"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    src = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(src))
    target = tmp_path / "probe.json"
    outcome = execute_notebook(src, tmp_path / "out.ipynb", {"target": str(target)})
    assert outcome["status"] == "complete", outcome
    executable, version, transport = json.loads(target.read_text())
    from auditkit.report.render import auditkit_version

    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert version == auditkit_version()
    assert transport == ("ipc" if sys.platform != "win32" else "tcp")


def test_cli_run(tmp_path: Path) -> None:
    from auditkit.cli_run import run

    client = write_client(tmp_path / "acme", requests=1)
    res = CliRunner().invoke(
        run,
        [
            str(client),
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "out"),
            "-q",
            "--notebooks",
            str(NOTEBOOKS_DIR / "00_overview.ipynb"),
        ],
    )
    assert res.exit_code == 1, res.output
    assert "1 of 2 audits succeeded" in res.output and "FAILED missing" in res.output
    assert (tmp_path / "out" / "acme" / "index.html").is_file()
    res = CliRunner().invoke(run, [str(client), "--preset", "n_plus_one=nope"])
    assert res.exit_code == 2 and "n_plus_one" in res.output


def test_schema_and_docs_cover_the_check_vocabulary() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    enum = set(schema["$defs"]["check"]["anyOf"][0]["enum"])
    docs = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    missing_schema = set(CHECKS) - enum
    missing_docs = [c for c in CHECKS if f"| `{c}` |" not in docs]
    assert not missing_schema, f"add to auditkit/findings.schema.json: {sorted(missing_schema)}"
    assert not missing_docs, f"document in docs/findings.md: {missing_docs}"


def test_a_run_that_reads_nothing_marks_the_earlier_report(tmp_path: Path) -> None:
    """An earlier report left in the output folder must never pass for the new one."""
    client = write_client(tmp_path / "acme", requests=1)
    out = tmp_path / "out"
    first = run_audit(client, out, notebooks=QUICK)
    assert first.ok
    report = Path(first.report_dir)
    earlier = json.loads(first.findings_path.read_text(encoding="utf-8"))
    # the client's next delivery holds nothing readable
    shutil.rmtree(client)
    client.mkdir()
    (client / "README.md").write_text("the logs follow next week\n")
    second = run_audit(client, out, notebooks=QUICK)
    assert second.status == "no_input" and second.report_dir == first.report_dir
    assert second.earlier_report == earlier["generated_at"]
    assert "marked as not refreshed" in second.summary()
    pages = sorted(report.glob("*.html"))
    assert {p.name for p in pages} == {"index.html", "10_queries.html"}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert html.count("Not refreshed: this page is from an earlier audit") == 1, page.name
        assert 'data-status="no_input"' in html and "Do not send this page" in html
        assert str(tmp_path) not in html
    m = json.loads(second.manifest_path.read_text(encoding="utf-8"))
    assert m["status"] == "no_input" and "nothing to audit" in m["error"]
    assert m["earlier_report"]["generated_at"] == earlier["generated_at"]
    # findings.json stays the earlier audit's own record (the next run's --previous)
    assert json.loads(first.findings_path.read_text(encoding="utf-8")) == earlier
    # marking twice leaves one banner; a good run afterwards writes clean pages
    run_audit(client, out, notebooks=QUICK)
    assert (report / "index.html").read_text(encoding="utf-8").count("Not refreshed") == 1
    write_client(client, requests=1)
    third = run_audit(client, out, notebooks=QUICK)
    assert third.ok and third.earlier_report is None
    assert not any("Not refreshed" in p.read_text(encoding="utf-8") for p in report.glob("*.html"))
    # a run that reads nothing into a fresh folder writes nothing at all
    shutil.rmtree(client)
    client.mkdir()
    (client / "README.md").write_text("the logs follow next week\n")
    none = run_audit(client, tmp_path / "fresh", notebooks=QUICK)
    assert none.status == "no_input" and not (tmp_path / "fresh" / "acme").exists()


def test_a_kernel_running_several_notebooks_gives_each_a_fresh_namespace(tmp_path: Path) -> None:
    """One warm kernel executes notebooks in turn: nothing of one leaks into the next, each
    counts its cells from 1, and a failed notebook leaves a fresh kernel for the next."""
    from auditkit.kernels import _Kernels

    def notebook(name: str, *cells: str) -> Path:
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell("marker = ''")
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        return path

    first = notebook(
        "a",
        "assert not {'buffer', 'figure', 'pandas', 'io'} & set(dir()), 'warm-up names leaked'",
        "leak = marker\nimport os\nprint(os.getpid())",
    )
    broken = notebook("b", "assert 'leak' not in dir(), 'namespace leaked'\nraise SystemExit(3)")
    last = notebook(
        "c",
        "assert 'leak' not in dir() and 'os' not in dir(), 'namespace leaked'\nimport os\nprint(os.getpid())",
    )
    pool = _Kernels(1, tmp_path, "python3", execute_notebook)
    jobs = [
        (p.stem, (p, tmp_path / f"out-{p.name}", {"marker": p.stem}), {"cwd": tmp_path})
        for p in (first, broken, last)
    ]
    outcomes = pool.run(jobs)
    assert outcomes["a"]["status"] == "complete", outcomes["a"]
    assert outcomes["b"]["status"] == "failed" and "namespace leaked" not in (
        outcomes["b"]["error"] or ""
    )
    assert outcomes["c"]["status"] == "complete", outcomes["c"]
    counts = [
        [c.execution_count for c in nbformat.read(str(tmp_path / f"out-{n}"), as_version=4).cells]
        for n in ("a.ipynb", "c.ipynb")
    ]
    assert all(c[0] == 1 and c == sorted(c) for c in counts), counts
    pids = [
        nbformat.read(str(tmp_path / f"out-{n}"), as_version=4).cells[-1].outputs[0].text
        for n in ("a.ipynb", "c.ipynb")
    ]
    assert pids[0] != pids[1], "a failed notebook's kernel is replaced"


def test_warm_kernels_keep_no_history_on_disk(tmp_path: Path) -> None:
    """A run's kernels keep IPython's history in memory: the injected parameters (the client's
    name among them) never reach the user's history database. They run at a lower priority
    than the run, whose loading goes first (KERNEL_NICENESS)."""
    from auditkit.kernels import KERNEL_NICENESS, _WarmKernel

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("target = ''")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        p,
        nbformat.v4.new_code_cell(
            "open(target, 'w').write(str(get_ipython().history_manager.hist_file))"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    src = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(src))
    kernel = _WarmKernel(tmp_path, "python3")
    try:
        kernel.start()
        kernel.prepare()
        target = tmp_path / "hist.txt"
        outcome = execute_notebook(
            src, tmp_path / "out.ipynb", {"target": str(target)}, _kernel=kernel
        )
        if hasattr(os, "getpriority"):
            own = os.getpriority(os.PRIO_PROCESS, 0)
            pid = kernel.km.provisioner.pid
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + KERNEL_NICENESS)
    finally:
        kernel.close()
    assert outcome["status"] == "complete", outcome
    assert target.read_text() == ":memory:"


def test_what_an_audit_imports_ahead_exists() -> None:
    """The modules a run imports while its client loads (WARM_IMPORTS) are real modules."""
    import importlib.util

    from auditkit.auditing import WARM_IMPORTS

    assert all(importlib.util.find_spec(name) is not None for name in WARM_IMPORTS)
