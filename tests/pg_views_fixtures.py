"""Write the PostgreSQL statistics-view fixtures with ``psql`` against a private cluster.

``python tests/pg_views_fixtures.py --save tests/fixtures/pg_views`` regenerates the committed
files (see their ``SOURCES.md``); ``tests/test_pg_stat_views.py`` runs :func:`write_fixtures`
live into a temporary folder too, so the loaders are held to what the installed ``psql`` writes.

Two snapshots are taken with traffic in between: the plain files hold the first snapshot's
views in several output shapes (``psql --csv``, aligned, expanded ``\\x``, ``json_agg``,
``row_to_json`` lines), ``delta/`` holds ``pg_stat_database`` and ``pg_statio_user_tables`` at
both times, named as ``auditkit collect postgres`` names its snapshots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE library_author (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, born int);
CREATE TABLE library_book (
    id bigserial PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES library_author (id),
    title text NOT NULL,
    isbn varchar(13),
    published date
);
CREATE INDEX library_book_author_id_idx ON library_book (author_id);
CREATE UNIQUE INDEX library_book_isbn_uniq ON library_book (isbn) WHERE isbn IS NOT NULL;
INSERT INTO library_author (name, born) SELECT 'author ' || g, 1900 + g % 100 FROM generate_series(1, 500) g;
INSERT INTO library_book (author_id, title, isbn, published)
    SELECT 1 + g % 500, 'title ' || g, lpad(g::text, 13, '0'), date '2000-01-01' + g % 7000
    FROM generate_series(1, 8000) g;
ANALYZE;
"""

TRAFFIC = """
SELECT count(*) FROM library_book WHERE author_id = 7;
SELECT * FROM library_book WHERE isbn = '0000000000042';
SELECT count(*) FROM library_book WHERE title LIKE 'title 1%';
UPDATE library_book SET published = published + 1 WHERE id <= 50;
SELECT a.name, count(*) FROM library_author a JOIN library_book b ON b.author_id = a.id GROUP BY a.name ORDER BY 2 DESC LIMIT 5;
"""

#: view → the query that exports it (as auditkit's collector does: the view's own columns)
VIEWS = {
    "pg_stat_database": "SELECT s.*, now() AS collected_at FROM pg_stat_database s WHERE s.datname = current_database()",
    "pg_statio_user_tables": "SELECT s.*, now() AS collected_at FROM pg_statio_user_tables s ORDER BY s.relname",
    "pg_statio_user_indexes": "SELECT s.*, now() AS collected_at FROM pg_statio_user_indexes s ORDER BY s.relname, s.indexrelname",
    "pg_stat_bgwriter": "SELECT s.*, now() AS collected_at FROM pg_stat_bgwriter s",
    "pg_stat_archiver": "SELECT s.*, now() AS collected_at FROM pg_stat_archiver s",
}

#: pg_index detail and size listings, as people write them
LISTINGS = {
    "pg_index_detail.csv": (
        "--csv",
        """SELECT i.indexrelid::regclass AS index, i.indrelid::regclass AS "table", i.indisunique,
                  i.indisprimary, i.indisvalid, i.indkey, i.indnatts,
                  (SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
           ORDER BY 1::text""",
    ),
    "pg_index_oids.csv": (
        "--csv",
        """SELECT i.indexrelid, i.indrelid, i.indnatts, i.indisunique, i.indisprimary, i.indkey
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
           ORDER BY i.indexrelid""",
    ),
    "relation_sizes_pretty.txt": (
        "",
        """SELECT nspname || '.' || relname AS "relation", pg_size_pretty(pg_total_relation_size(c.oid)) AS "total_size"
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC""",
    ),
    "table_sizes.csv": (
        "--csv",
        """SELECT schemaname, relname AS table_name, pg_size_pretty(pg_relation_size(relid)) AS table_size,
                  pg_size_pretty(pg_indexes_size(relid)) AS indexes_size,
                  pg_size_pretty(pg_total_relation_size(relid)) AS total_size
           FROM pg_stat_user_tables ORDER BY relname""",
    ),
    "index_sizes.json": (
        "-At",
        """SELECT json_agg(t) FROM (SELECT schemaname, relname AS table_name, indexrelname AS index_name,
                  pg_relation_size(indexrelid) AS index_size
           FROM pg_stat_user_indexes ORDER BY indexrelname) t""",
    ),
}


def _psql(pg: Any, *args: str, sql: str) -> str:
    from devtools.postgres import find_bindir

    bindir = find_bindir()
    exe = str(bindir / "psql") if bindir and (bindir / "psql").is_file() else "psql"
    env = {**os.environ, "PGTZ": "UTC", "PGCLIENTENCODING": "UTF8"}
    out = subprocess.run(
        [exe, "-X", "-v", "ON_ERROR_STOP=1", "-d", pg.dsn, *args, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return out.stdout


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _snapshot(pg: Any, target: Path, stamp: str) -> None:
    delta = target / "delta"
    delta.mkdir(parents=True, exist_ok=True)
    for view in ("pg_stat_database", "pg_statio_user_tables"):
        (delta / f"{view}-{stamp}.csv").write_text(_psql(pg, "--csv", sql=VIEWS[view]))


def write_fixtures(pg: Any, target: Path) -> Path:
    """Create the schema, export every view in several shapes at two times, into ``target``."""
    import time

    target.mkdir(parents=True, exist_ok=True)
    pg.execute(SCHEMA)
    pg.execute(TRAFFIC)
    pg.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.1)  # pending statistics of other backends reach the shared counters
    first = _stamp()
    _snapshot(pg, target, first)
    for view, sql in VIEWS.items():
        (target / f"{view}.csv").write_text(_psql(pg, "--csv", sql=sql))
        (target / f"{view}.txt").write_text(_psql(pg, sql=sql))
    (target / "pg_stat_database-expanded.txt").write_text(
        _psql(pg, "-x", sql=VIEWS["pg_stat_database"])
    )
    (target / "pg_statio_user_tables.json").write_text(
        _psql(pg, "-At", sql=f"SELECT json_agg(t) FROM ({VIEWS['pg_statio_user_tables']}) t")
    )
    (target / "pg_statio_user_indexes.jsonl").write_text(
        _psql(pg, "-At", sql=f"SELECT row_to_json(t) FROM ({VIEWS['pg_statio_user_indexes']}) t")
    )
    for name, (flag, sql) in LISTINGS.items():
        (target / name).write_text(_psql(pg, *([flag] if flag else []), sql=sql))
    (target / "dt_plus.txt").write_text(
        _psql(pg, sql="\\dt+ public.*").replace("postgres ", "app      ")
    )
    (target / "di_plus.txt").write_text(
        _psql(pg, sql="\\di+ public.*").replace("postgres ", "app      ")
    )
    for _ in range(3):
        pg.execute(TRAFFIC)
    time.sleep(1.1)
    second = _stamp()
    if second == first:
        time.sleep(1.0)
        second = _stamp()
    _snapshot(pg, target, second)
    return target


#: exports with a dashboard's own column names, for the audit.yaml ``map:`` tests
MAPPING_INPUTS = {
    "top_statements.csv": """
        SELECT query AS statement_text, calls AS executions, total_exec_time AS total_ms,
               mean_exec_time AS avg_ms, rows AS rows_returned, shared_blks_hit AS cache_hits,
               shared_blks_read AS disk_reads
        FROM pg_stat_statements
        WHERE query ILIKE '%library%' AND query NOT ILIKE '%pg_stat_statements%'
        ORDER BY total_exec_time DESC""",
    "table_activity.csv": """
        SELECT relname AS tbl, n_live_tup AS approx_rows, seq_scan AS full_scans,
               idx_scan AS index_scans, n_tup_upd AS updates
        FROM pg_stat_user_tables ORDER BY relname""",
}


def write_mapping_inputs(pg: Any, target: Path) -> Path:
    """Exports of pg_stat_statements and pg_stat_user_tables under other column names."""
    target.mkdir(parents=True, exist_ok=True)
    for name, sql in MAPPING_INPUTS.items():
        (target / name).write_text(_psql(pg, "--csv", sql=sql))
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--save":
        raise SystemExit(__doc__)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from devtools.postgres import ThrowawayPostgres

    out = Path(sys.argv[2])
    keep = out / "SOURCES.md"
    saved = keep.read_text() if keep.exists() else None
    shutil.rmtree(out, ignore_errors=True)
    with ThrowawayPostgres({"autovacuum": False, "logging_collector": False}) as pg:
        write_fixtures(pg, out)
        write_mapping_inputs(pg, out.parent / "mapping")
        version = pg.execute("SHOW server_version")[0][0]
    if saved:
        keep.write_text(saved)
    print(f"written by psql against PostgreSQL {version} into {out}")
