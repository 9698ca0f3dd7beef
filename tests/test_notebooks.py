"""The committed audit notebooks stay thin, clean and uniform; their helpers behave.

Notebooks are narrative plus one-line calls (DESIGN.md §5): no outputs committed, the first
code cell tagged ``parameters`` with literal defaults pointing at ``data/sample``, no
function definitions, loops, conditions or parsing in any cell, and short code cells.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from auditkit.errors import ConfigError
from auditkit.report.notebook import CHAPTER_INFO, Chapter, chapter, resolve_data_dir
from auditkit.runner import NOTEBOOK_PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_LINES = 6
#: statements that are logic, not calls
FORBIDDEN = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.Try,
    ast.With,
    ast.Lambda,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
)


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(str(path), as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_chapter_has_its_notebook() -> None:
    assert [p.stem for p in NOTEBOOKS] == [info.notebook for info in CHAPTER_INFO.values()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert not {"execution", "papermill", "collapsed", "scrolled"} & set(cell.metadata)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_first_with_literal_defaults(path: Path) -> None:
    cells = _code_cells(path)
    params = cells[0]
    assert params.metadata.get("tags") == ["parameters"]
    assert all("parameters" not in c.metadata.get("tags", []) for c in cells[1:])
    tree = ast.parse(params.source)
    names = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.dump(stmt)
        target = stmt.targets[0]
        assert isinstance(target, ast.Name)
        names[target.id] = ast.literal_eval(stmt.value)  # literals only
    assert tuple(names) == NOTEBOOK_PARAMETERS
    assert names["data_dir"] == "../data/sample"
    assert names["show_literals"] is False
    assert names["dsn_env"] == "AUDITKIT_DSN"  # a variable's name, never a DSN
    assert names["presets"] == {} and names["audit_dir"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_calls_not_logic(path: Path) -> None:
    for cell in _code_cells(path)[1:]:
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert len(lines) <= MAX_LINES, cell.source
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN), f"logic in a notebook cell: {cell.source!r}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                assert (module or "").startswith("auditkit"), f"import {module} in a notebook"
        for word in ("def ", "for ", "class ", "import re", "lambda", "if "):
            assert word not in cell.source, (word, cell.source)


def test_chapter_notebooks_match_their_generator() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "build.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr


def test_markdown_leads_every_notebook() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


# -- helpers the notebooks call ----------------------------------------------------------------
def test_resolve_data_dir_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = (ROOT / "data" / "sample").resolve()
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir("../data/sample") == sample  # the notebooks' default, from elsewhere
    monkeypatch.chdir(ROOT / "notebooks")
    assert resolve_data_dir("../data/sample") == sample  # as JupyterLab runs it
    monkeypatch.chdir(ROOT)
    assert resolve_data_dir("data/sample") == sample  # papermill -p data_dir data/sample
    assert resolve_data_dir(str(tmp_path)) == tmp_path.resolve()
    with pytest.raises(ConfigError, match="not found"):
        resolve_data_dir("no/such/client")


def _client(root: Path) -> Path:
    root.mkdir()
    (root / "django.log").write_text(
        '[2024-04-04 17:46:19,115] DEBUG: (0.004) SELECT "t"."id" FROM "t" WHERE "t"."email" = \'a@b.example\'; args=(); alias=default\n'
        '[2024-04-04 17:46:19,125] DEBUG: (0.002) SELECT "t"."id" FROM "t" WHERE "t"."id" = 3; args=(3,); alias=default\n',
        encoding="utf-8",
    )
    return root


def test_chapter_with_missing_inputs_says_so_and_no_heading_stands_empty(tmp_path: Path) -> None:
    ch = chapter("caching", _client(tmp_path / "c"))
    note = ch.inputs()
    assert "nothing to report" in note.text or "not measured" in note.text
    # under a heading a method always says something: the result, or why there is none
    assert "No cache statistics" in ch.cache_hit_figure().text
    assert "No cache statistics" in ch.cache_servers_table().text
    for empty in (ch.key_family_table(), ch.buffer_cache_table(), ch.cdn_table()):
        assert empty.text.startswith("No "), empty.text
    assert "funnel" in ch.cache_funnel_table().text or ch.cache_funnel_table().html.startswith("<table")
    assert ch.cache_candidates_table().text.startswith(("Not measured", "Nothing to report"))
    assert ch.key_family_figure() is None and ch.cache_commands_table() is None
    assert ch.show("low_cache_hit_ratio").text.startswith(("Not measured", "Nothing to report"))
    assert "Preset: default" in ch.thresholds("cache").text
    # a section without a heading of its own shows nothing when empty
    assert ch.other_findings() is None


def test_checks_without_their_data_say_what_they_need(tmp_path: Path) -> None:
    ch = chapter("scaling", _client(tmp_path / "c"))
    text = ch.inputs().html
    assert "Work to move out of the request: not measured" in text and "cpu" in text.lower()


def test_queries_chapter_displays_redacted_tables_and_figures(tmp_path: Path) -> None:
    ch = chapter("queries", _client(tmp_path / "c"))
    html = ch.profile_table().html
    assert "a@b.example" not in html and "= ?" in html
    assert "nan" not in html.lower() and "none" not in html.lower()
    fig = ch.statement_time_figure()
    assert fig.layout.xaxis.title.text == "total database time (ms)"
    assert "a@b.example" not in fig.to_json()
    literal = chapter("queries", tmp_path / "c", show_literals=True)
    assert "a@b.example" in literal.profile_table().html


def test_a_chapter_displays_the_saved_audit(tmp_path: Path) -> None:
    """The runner saves the audit once; a chapter shows exactly its findings."""
    import auditkit

    client = auditkit.load_client(_client(tmp_path / "c"))
    audit = auditkit.audit(client)
    audit.save(tmp_path / "work")
    ch = chapter("queries", None, audit_dir=tmp_path / "work")
    assert [f.id for f in ch.findings()] == [f.id for f in audit.chapter("queries")]
    assert ch.frame("profile")["fingerprint_id"].tolist() == audit.frames["profile"]["fingerprint_id"].tolist()
    assert isinstance(ch, Chapter)


def test_dsn_is_read_from_the_named_variable_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AK_TEST_DSN", "postgresql://app:n0t-shown-pw@db/shop")
    ch = chapter("indexing", _client(tmp_path / "c"), dsn_env="AK_TEST_DSN")
    assert ch.live_dsn() == os.environ["AK_TEST_DSN"]
    block = ch.live_database()
    assert block is not None and "$AK_TEST_DSN" in block.html and "n0t-shown-pw" not in block.html


def test_figures_switch_plotly_to_the_report_renderer(tmp_path: Path) -> None:
    import plotly.io as pio

    chapter("overview", _client(tmp_path / "c"))
    assert pio.renderers.default == "plotly_mimetype+auditkit_html"
    fig = chapter("queries", tmp_path / "c").statement_time_figure()
    bundle = pio.renderers._build_mime_bundle(fig.to_dict())  # what Jupyter receives
    assert "application/vnd.plotly.v1+json" in bundle
    assert "Plotly.newPlot" in bundle["text/html"] and "plotly.js v" not in bundle["text/html"]
