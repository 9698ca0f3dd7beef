"""Write the audit notebooks (``python notebooks/build.py``): narrative plus one-line calls.

The notebooks are generated so that they stay clean — no outputs, no execution counts, a
``parameters`` cell first — and uniform: every chapter takes the same parameters. Edit the
text here, run this script, and commit the .ipynb files with it. ``tests/test_notebooks.py``
checks the committed notebooks (no outputs, parameters first, no logic, short cells) and
that they match what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
client_name = None  # as shown in the report; default: audit.yaml's client, else the folder name
data_dir = "../data/sample"  # the client's folder of files (relative to this notebook or the cwd)
presets = {"n_plus_one": "default", "index": "default", "slow_query": "default"}
show_literals = False  # True shows literal values in SQL (e-mails, names, ids): consultant's eyes only
cache_dir = None  # folder for parsed inputs, keyed by file hash (the runner sets one)
findings_dir = None  # where this chapter writes its findings (the runner sets one)
link_suffix = ".ipynb"  # links between chapters: .ipynb in JupyterLab, .html in the report
dsn_env = "AUDITKIT_DSN"  # the NAME of an environment variable with a live DSN, never the DSN'''


def setup(name: str, *extra: str) -> str:
    lines = [
        "from auditkit.report.notebook import chapter",
        "",
        f'ch = chapter("{name}", data_dir, client_name=client_name, presets=presets, show_literals=show_literals,',
        "             cache_dir=cache_dir, findings_dir=findings_dir, link_suffix=link_suffix, dsn_env=dsn_env)",
        *extra,
    ]
    return "\n".join(lines)


def notebook(title: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = new_notebook()
    params = new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [cells[0], params, *cells[1:]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = title
    return nb


md, code = new_markdown_cell, new_code_cell

OVERVIEW = notebook(
    "Executive summary",
    [
        md(
            "# Performance audit: executive summary\n\n"
            "This report reviews how the application uses its database and caches, from the files "
            "your team provided: query logs, database statistics, query plans, traces, cache "
            "statistics and load tests — whichever were available. Each finding below states what "
            "was measured, why it matters, how strong the evidence is, and the exact change that "
            "fixes it, in SQL and in Django."
        ),
        code(setup("overview", "ch.header()")),
        md(
            "## Findings at a glance\n\n"
            "Every finding of the audit, most severe first, and within a severity the one that "
            "would save the most time first. Each title links to its chapter, where the evidence "
            "and the recommended change are shown in full."
        ),
        code("ch.executive_summary()"),
        md(
            "## Chapters\n\n"
            "The audit has one chapter per area. A chapter whose inputs were not provided says so "
            "and reports nothing: an absent finding there means *not measured*, not *no problem*."
        ),
        code("ch.chapters_table()"),
        md(
            "## Data inventory\n\n"
            "Every file received, the format auditkit recognised, and how much of it was used. "
            "*read* counts the records in the file, *parsed* those that became data, *skipped* "
            "those left out (with the reasons below). Unrecognised files are listed, never fatal."
        ),
        code("ch.inventory_table()"),
        md(
            "## Data quality\n\n"
            "What could not be used, and why. Skipped records are left out of every figure in this "
            "report, so a large share of them limits what the report can conclude."
        ),
        code("ch.skipped_table()"),
        code("ch.data_quality()"),
        md(
            "## How to read this report\n\n"
            "- **Severity**: *critical* and *high* findings cost the most time or risk outages; "
            "*medium* are worth planning; *low* and *info* are housekeeping.\n"
            "- **Evidence**: *validated* — confirmed by the database itself (a re-planned query); "
            "*statistics* — from the server's own counters; *pattern* — recognised in logs or "
            "traces; *inferred* — reconstructed by a documented heuristic.\n"
            "- **Privacy**: literal values in SQL (e-mail addresses, names, ids) are replaced by "
            "placeholders (`?`), and passwords or tokens never appear in this report.\n"
            "- Thresholds come from named presets of established tools; each chapter states the "
            "ones it used."
        ),
    ],
)

QUERIES = notebook(
    "Queries",
    [
        md(
            "# Queries\n\n"
            "Which statements the database spends its time on, how their response times are "
            "distributed, which pages issue them, and the query patterns that waste time — slow "
            "statements and N+1 loops, where the application issues one query per row instead of one "
            "query per page."
        ),
        code(setup("queries", "ch.inputs()")),
        md(
            "## Where the database time goes\n\n"
            "Total time per statement, over the whole period covered by the logs. A statement can "
            "rank high by being slow, or by being fast and executed very often; both are worth "
            "fixing. Hover a bar to see the statement."
        ),
        code("ch.statement_time_figure()"),
        md(
            "## Query profile\n\n"
            "The statements ranked by total time, with their number of executions, share of the "
            "total, mean, 95th percentile and slowest execution (milliseconds). Statements that "
            "differ only in their values are grouped together."
        ),
        code("ch.profile_table()"),
        md(
            "## Response times of statements\n\n"
            "How long individual statements take. Most should finish within a few milliseconds; "
            "a long tail on the right is what users feel as slow pages."
        ),
        code("ch.latency_figure()"),
        md(
            "## Database time per page\n\n"
            "When the logs tie statements to the requests that issued them, the time each endpoint "
            "spends in the database, and how many statements one request issues on average."
        ),
        code("ch.endpoint_table()"),
        code("ch.endpoint_time_figure()"),
        md(
            "## Slow statements\n\n"
            "Statements whose time per execution, or share of the total, stands out."
        ),
        code('ch.thresholds("slow_query")'),
        code('ch.show_check("slow_query")'),
        md(
            "## N+1 queries\n\n"
            "The same statement repeated with different values inside one request — typically a "
            "template or serializer following a relation row by row. The fix is usually one "
            "`select_related` or `prefetch_related` call, shown with each finding."
        ),
        code('ch.thresholds("n_plus_one")'),
        code('ch.show_check("n_plus_one")'),
        md("## Duplicate queries\n\nThe same statement with the same values repeated inside one request."),
        code('ch.show_check("duplicate_query")'),
        md("## Other findings"),
        code("ch.other_findings()"),
    ],
)

INDEXING = notebook(
    "Indexing",
    [
        md(
            "# Indexing\n\n"
            "Indexes let the database find rows without reading whole tables. This chapter lists "
            "the indexes worth adding — with the `CREATE INDEX` statement and the Django "
            "`Meta.indexes` entry — and those worth removing, because every index slows down "
            "writes and takes space."
        ),
        code(setup("indexing", "ch.inputs()")),
        code("ch.live_database()"),
        md("## Index candidates"),
        code(
            "from auditkit.report.figures_indexing import candidates_table, drop_table, plan_comparisons, table_time\n\n"
            "table_time(ch.profile())"
        ),
        code('ch.thresholds("index")'),
        code('ch.show_findings("missing_index")'),
        md(
            "Ranked, and re-planned with each candidate as a hypothetical index (HypoPG) when a live "
            "database is configured: the cost before and after is the planner's own verdict."
        ),
        code(
            "from auditkit.checks.indexes import validate_with_hypopg\n\n"
            "candidates = validate_with_hypopg(ch.findings(), ch.live_dsn(), ch.profile(), ch.config)\n"
            "candidates_table(candidates)"
        ),
        code("plan_comparisons(candidates)"),
        md("## Unused and duplicate indexes"),
        code('ch.show_findings("unused_index", "duplicate_index")'),
        code("drop_table(ch.findings())"),
        code("ch.index_table()"),
        md(
            "## Query plans\n\n"
            "What the database actually did for the slowest statements: sequential scans of large "
            "tables, row estimates far from reality, sorts and hashes spilling to disk."
        ),
        code('ch.thresholds("plan")'),
        code('ch.show_findings("plan_*")'),
        md("## Other findings"),
        code("ch.other_findings()"),
    ],
)

CACHING = notebook(
    "Caching",
    [
        md(
            "# Caching\n\n"
            "A cache answers repeated questions without asking the database again. This chapter "
            "measures how often the caches in place actually answer (their hit ratio) and points at "
            "results that repeat often enough to be worth caching."
        ),
        code(setup("caching", "ch.inputs()")),
        md("## Cache hit ratio"),
        code("ch.cache_hit_figure()"),
        code('ch.thresholds("cache")'),
        code('ch.show_findings("low_cache_hit_ratio")'),
        md("## What to cache"),
        code('ch.show_findings("cache_candidate", "http_cache")'),
        md("## Other findings"),
        code("ch.other_findings()"),
    ],
)

SCALING = notebook(
    "Scaling",
    [
        md(
            "# Scaling\n\n"
            "How the application behaves as load grows: the point where response times rise or "
            "errors appear, whether the database connection pool can serve the peak, and work that "
            "could leave the request for a background task."
        ),
        code(setup("scaling", "ch.inputs()")),
        md(
            "## Behaviour under load\n\n"
            "Throughput (requests per second) and latency as the number of concurrent users grows. "
            "Where throughput stops rising while latency climbs, the system has reached its ceiling."
        ),
        code("ch.load_curve_figure()"),
        code('ch.thresholds("capacity")'),
        code('ch.show_findings("capacity_limit")'),
        md("## Response times per endpoint"),
        code("ch.request_latency_figure()"),
        md("## Connections and background work"),
        code('ch.show_findings("connection_budget", "background_task_candidate")'),
        md("## Other findings"),
        code("ch.other_findings()"),
    ],
)

NOTEBOOKS: dict[str, NotebookNode] = {
    "00_overview.ipynb": OVERVIEW,
    "10_queries.ipynb": QUERIES,
    "20_indexing.ipynb": INDEXING,
    "30_caching.ipynb": CACHING,
    "40_scaling.ipynb": SCALING,
}


def _stable_ids(name: str, nb: NotebookNode) -> NotebookNode:
    # cell ids derived from the file name and position, so regenerating changes nothing
    stem = name.split("_", 1)[1].split(".")[0]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem}-{i:02d}"
    return nb


def render(name: str) -> str:
    """The text of notebook ``name`` as written to disk."""
    return nbformat.writes(_stable_ids(name, NOTEBOOKS[name])) + "\n"


def main(check: bool = False) -> int:
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python notebooks/build.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv[1:]))
