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
audit_dir = None  # the run's saved audit (the runner sets it); None: audit data_dir here
presets = {}  # threshold presets by family, e.g. {"n_plus_one": "sentry"}
show_literals = False  # True shows literal values in SQL (e-mails, names, ids): consultant's eyes only
link_suffix = ".ipynb"  # links between chapters: .ipynb in JupyterLab, .html in the report
dsn_env = "AUDITKIT_DSN"  # the NAME of an environment variable with a live DSN, never the DSN
previous = None  # the client's previous audit (report folder or findings.json): "since the last audit"'''


def setup(name: str, *extra: str, previous: bool = False) -> str:
    last = "dsn_env=dsn_env, previous=previous)" if previous else "dsn_env=dsn_env)"
    lines = [
        "from auditkit.report.notebook import chapter",
        "",
        f'ch = chapter("{name}", data_dir, audit_dir=audit_dir, client_name=client_name, presets=presets,',
        f"             show_literals=show_literals, link_suffix=link_suffix, {last}",
        *extra,
    ]
    return "\n".join(lines)


def notebook(title: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = new_notebook()
    params = new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [cells[0], params, *cells[1:]]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
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
            "statistics and load tests — whichever were available. Each finding states what was "
            "measured, the time its fix saves, how strong the evidence is, and the exact change, in "
            "SQL and in Django."
        ),
        code(setup("overview", "ch.header()", previous=True)),
        code("ch.since_last_audit()  # shown only when the previous audit is given"),
        md(
            "## What to do first\n\n"
            "The changes that save the most time, in order. Each is one sentence here; its finding, "
            "with the evidence and the exact change, is one click away."
        ),
        code("ch.action_plan()"),
        md(
            "## Findings at a glance\n\n"
            "Every finding of the audit, most severe first. A problem is reported once, where its "
            "cause is: the slow statements, plan nodes and repeats it explains are listed with it."
        ),
        code("ch.executive_summary()"),
        md(
            "## Chapters\n\n"
            "One chapter per area. A check whose inputs were not provided says so: an absent "
            "finding there means *not measured*, not *no problem*."
        ),
        code("ch.chapters_table()"),
        md(
            "## Data inventory\n\n"
            "Every file received, the format auditkit recognised, and how much of it was used: "
            "*records* counts what the file holds, *used* what became data, *skipped* what was left "
            "out (with the reasons below). Unrecognised files are listed, never fatal."
        ),
        code("ch.inventory_table()"),
        md(
            "## Data quality\n\n"
            "What could not be used, and why; the checks that lacked the data they need; and where "
            "the report's times come from."
        ),
        code("ch.data_quality()"),
        md(
            "## How to read this report\n\n"
            "- **Severity** follows one rule: *high* when the fix saves at least 10 % of all database "
            "time, 100 ms of database time per request or 1 s of response time; *medium* from 2 %, "
            "20 ms or 250 ms (a share counts once the saving reaches 100 ms); *low* below; *info* "
            "when nothing measurable is saved. Findings that "
            "save no time (an unused index, a connection budget) are judged by what they risk.\n"
            "- **Saves** is the time the fix removes over the period the files cover, measured by one "
            "source for the whole report (named under Data quality); *estimated* when it rests on a "
            "stated assumption.\n"
            "- **Evidence**: *validated by the database* (a re-planned query), *from the server's "
            "statistics*, *recognised in logs or traces*, or *reconstructed by a documented "
            "heuristic*.\n"
            "- **Privacy**: literal values in SQL (e-mail addresses, names, ids) are replaced by "
            "placeholders (`?`), and passwords or tokens never appear in this report."
        ),
    ],
)

QUERIES = notebook(
    "Queries",
    [
        md(
            "# Queries\n\n"
            "Which statements the database spends its time on, which pages issue them, and the "
            "query patterns that waste time — N+1 loops, where the application issues one query per "
            "row instead of one per page, repeated reads, and slow statements."
        ),
        code(setup("queries", "ch.inputs()")),
        md(
            "## Where the database time goes\n\n"
            "Total time per statement over the whole period the files cover. A statement ranks high "
            "by being slow, or by being fast and run very often; both are worth fixing. Hover a bar "
            "to see the statement."
        ),
        code("ch.statement_time_figure()"),
        code("ch.profile_table()"),
        md(
            "## Response times of statements\n\n"
            "How long individual statements take. Most should finish within a few milliseconds; a "
            "long tail on the right is what users feel as slow pages."
        ),
        code("ch.latency_figure()"),
        md(
            "## Database time per page\n\n"
            "The time each endpoint spends in the database per request, and how many statements one "
            "request issues."
        ),
        code("ch.endpoint_table()"),
        code("ch.endpoint_time_figure()"),
        md(
            "## N+1 queries\n\n"
            "One query per row of a list — a template or serializer following a relation row by "
            "row. The fix is one change to the list's queryset (`select_related`, "
            "`prefetch_related`, `annotate`), shown with each finding."
        ),
        code('ch.thresholds("n_plus_one")'),
        code('ch.show("n_plus_one")'),
        md(
            "## Duplicate queries\n\nThe same statement with the same values read again within one request."
        ),
        code('ch.show("duplicate_query")'),
        md(
            "## Slow statements\n\n"
            "Statements whose time stands out and that no cause found elsewhere in this report "
            "explains."
        ),
        code('ch.thresholds("slow_query")'),
        code('ch.show("slow_query")'),
        code("ch.other_findings()"),
    ],
)

INDEXING = notebook(
    "Indexing",
    [
        md(
            "# Indexing\n\n"
            "Indexes let the database find rows without reading whole tables. This chapter lists "
            "the indexes worth adding — with the `CREATE INDEX` statement, the Django "
            "`Meta.indexes` entry and the migration — and those worth removing, because every index "
            "slows down writes and takes space."
        ),
        code(setup("indexing", "ch.inputs()")),
        code("ch.live_database()"),
        md(
            "## Where statement time goes, per table\n\n"
            "Statement time per table and kind of statement: where an index can help most."
        ),
        code("ch.table_time_figure()"),
        md(
            "## Indexes to add\n\n"
            "Each candidate serves statements no existing index serves, keys ordered equality → "
            "range → sort; primary keys, unique constraints and Django's own indexes are taken into "
            "account. With a live database each is re-planned as a hypothetical index, and the "
            "planner's verdict replaces the estimate."
        ),
        code('ch.thresholds("index")'),
        code("ch.candidates_table()"),
        code('ch.show("missing_index")'),
        code("ch.plan_comparisons()"),
        md(
            "## Indexes to drop\n\nIndexes no statement used in the statistics window, or that another index already provides."
        ),
        code("ch.drops_table()"),
        code('ch.show("unused_index", "duplicate_index")'),
        code("ch.index_table()"),
        md(
            "## Migrations\n\n"
            "Every index change above, as one migration per app, numbered after the app's latest "
            "migration."
        ),
        code("ch.migrations()"),
        md(
            "## Query plans\n\n"
            "What the database did for plans no cause above explains: sequential scans of large "
            "tables, row estimates far from reality, sorts and hashes spilling to disk."
        ),
        code('ch.thresholds("plan")'),
        code('ch.show("plan_*")'),
        code("ch.other_findings()"),
    ],
)

CACHING = notebook(
    "Caching",
    [
        md(
            "# Caching\n\n"
            "A request meets up to three caches on its way to the data: a CDN or proxy in front of "
            "the application, the Django cache (Redis, memcached) inside it, and the database's "
            "buffer cache below it. This chapter follows the requests through every layer it has "
            "data for: what each absorbs, why the misses miss, and the work that repeats often "
            "enough to be worth caching."
        ),
        code(setup("caching", "ch.inputs()")),
        md(
            "## The funnel\n\n"
            "Per endpoint, the share of requests the CDN answered, the share of Django cache reads "
            "that hit, the share of database blocks found in memory, and where the time of a "
            "request goes (medians)."
        ),
        code("ch.cache_funnel_table()"),
        md(
            "## Cache servers\n\n"
            "Redis and memcached count hits, misses, evictions and expirations since they started. "
            "Rates come from the differences between consecutive snapshots; a restart or a "
            "statistics reset starts the counters again and is never averaged across."
        ),
        code("ch.cache_servers_table()"),
        code("ch.cache_rates_figure()"),
        code("ch.cache_commands_table()"),
        code('ch.thresholds("cache")'),
        md(
            "## Key families\n\n"
            "Keys grouped the way statements are (`summary:12:705` is `summary:{int}:{int}`), each "
            "miss given its cause from the key's own history: read for the first time, read after "
            "its timeout ran out, evicted before it, or deleted."
        ),
        code("ch.key_family_table()"),
        code("ch.key_family_figure()"),
        code("ch.key_family_series_figure()"),
        code('ch.show("low_cache_hit_ratio")'),
        md(
            "## Database buffer cache\n\n"
            "PostgreSQL's shared buffers should answer about 99 % of block reads; below that, the "
            "working set does not fit in memory."
        ),
        code("ch.buffer_cache_table()"),
        md(
            "## What to cache\n\n"
            "Read-only work that repeats with the same statements and parameters across requests, "
            "ranked by the database time caching would save; the saving assumes results that old "
            "are acceptable. Never the session and user lookups of every request, nor the repeated "
            "statement of an N+1, whose fix is the ORM."
        ),
        code("ch.cache_candidates_table()"),
        code('ch.show("cache_candidate")'),
        md(
            "## HTTP and CDN\n\n"
            "What the CDN or proxy in front of the application answers, per path pattern, and the "
            "static files the application serves itself."
        ),
        code("ch.cdn_table()"),
        code("ch.cdn_series_figure()"),
        code('ch.show("http_cache")'),
        code("ch.other_findings()"),
    ],
)

SCALING = notebook(
    "Scaling",
    [
        md(
            "# Scaling\n\n"
            "How far the application goes as load grows, why it stops there, and what it needs "
            "to go further: a capacity model fitted to the load test, a plan sized in instances, "
            "workers and database connections, the work to move out of the request, and what "
            "the fixes of the other chapters would buy."
        ),
        code(setup("scaling", "ch.inputs()")),
        md(
            "## Behaviour under load\n\n"
            "Throughput (requests per second) and latency as the number of concurrent users "
            "grows. The dots are the load test's steps; the line is the Universal Scalability "
            "Law fitted to them, with its confidence band. Where the line bends, more users "
            "mostly wait: that is the saturation point. The dashed line is the what-if below."
        ),
        code("ch.load_curve_figure()"),
        code("ch.load_steps_table()"),
        md(
            "## The capacity model\n\n"
            "Three numbers describe how throughput grows: what one user alone gets (λ), the "
            "share of the work that is serialised (σ, contention) and the cost that grows with "
            "every pair of users (κ, coherency). Contention caps throughput; coherency makes it "
            "fall past a peak."
        ),
        code("ch.capacity_model()"),
        code('ch.thresholds("capacity")'),
        code('ch.show("capacity_limit")'),
        md(
            "## What the fixes would buy\n\n"
            "The database time the findings of the other chapters save per request, applied to "
            "the model."
        ),
        code("ch.what_if()"),
        md(
            "## Capacity plan\n\n"
            "Instances, workers, threads and database connections for the target load, each "
            "line with where its numbers come from."
        ),
        code("ch.capacity_plan_table()"),
        md("## Database connections"),
        code('ch.show("connection_budget", "connection_churn")'),
        md(
            "## Traffic\n\n"
            "How the request log's traffic is spread over time and endpoints: the peak a plan "
            "must carry, and the endpoints that dominate the load."
        ),
        code("ch.traffic_figure()"),
        code("ch.traffic_table()"),
        md("## Response times per endpoint"),
        code("ch.request_latency_figure()"),
        md(
            "## Work to move out of the request\n\n"
            "Time a request waits on e-mail, outbound calls or other work outside the database, "
            "the cache and the CPU: a background task answers the visitor sooner and frees the "
            "worker."
        ),
        code('ch.show("background_task_candidate")'),
        code("ch.work_to_move()"),
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
