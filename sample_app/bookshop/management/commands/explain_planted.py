"""``manage.py explain_planted --out DIR``: EXPLAIN ANALYZE the planted slow statements.

For each statement a view runs (built by the same ``queries`` functions the views call), the
command first runs the queryset to learn the exact SQL Django sends, then
``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` and ``… FORMAT TEXT`` of it, and writes
``DIR/<name>.json`` and ``DIR/<name>.txt`` as PostgreSQL returned them (the JSON text is
the server's own, not re-serialised), plus ``DIR/README.md`` saying which statement, view and
planted problem each plan belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import QuerySet
from django.db.models.query import MAX_GET_RESULTS
from django.test.utils import CaptureQueriesContext
from orders import queries as order_queries
from psycopg.types.string import TextLoader


@dataclass(frozen=True)
class Planted:
    """One statement to explain: file name, planted problem, endpoint, queryset."""

    name: str
    problem: str
    endpoint: str
    queryset: Callable[[], QuerySet[Any, Any]]


PLANTED: tuple[Planted, ...] = (
    Planted(
        "customer_email_iexact",
        "P4 missing expression index UPPER(email)",
        "/customers/lookup/",
        # the view calls .get(), which adds LIMIT 21 (MAX_GET_RESULTS)
        lambda: order_queries.customer_by_email("Customer4242@Example.com")[:MAX_GET_RESULTS],
    ),
    Planted(
        "order_queue_pending",
        "P5 missing composite index (status, created_at)",
        "/orders/queue/",
        lambda: order_queries.fulfilment_queue("pending"),
    ),
    Planted(
        "bestsellers_30d",
        "P8 uncached hot aggregate",
        "/stats/bestsellers/",
        lambda: order_queries.bestsellers(order_queries.sales_window_start()),
    ),
    Planted(
        "dashboard_status_totals",
        "cached aggregate (the dashboard's miss path)",
        "/stats/dashboard/",
        order_queries.status_totals,
    ),
)


class Command(BaseCommand):
    help = "EXPLAIN (ANALYZE, BUFFERS) the planted slow statements into JSON and text files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", required=True, help="folder for <name>.json, <name>.txt, README.md"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        index = [
            "# EXPLAIN plans of the planted statements",
            "",
            "Written by `manage.py explain_planted` after the load test: "
            "`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` → `<name>.json`, `FORMAT TEXT` → `<name>.txt`. "
            "Problem ids refer to `sample_app/PLANTED.md`.",
            "",
        ]
        for item in PLANTED:
            sql = self._sql_of(item.queryset())
            (out / f"{item.name}.json").write_text(
                self._explain(sql, "JSON") + "\n", encoding="utf-8"
            )
            (out / f"{item.name}.txt").write_text(
                self._explain(sql, "TEXT") + "\n", encoding="utf-8"
            )
            index += [
                f"## {item.name}",
                "",
                f"- problem: {item.problem}",
                f"- endpoint: `{item.endpoint}`",
                "",
                "```sql",
                sql,
                "```",
                "",
            ]
            self.stdout.write(f"explained {item.name}")
        (out / "README.md").write_text("\n".join(index), encoding="utf-8")

    @staticmethod
    def _sql_of(queryset: QuerySet[Any, Any]) -> str:
        """The statement Django sends for ``queryset``, literals bound (client-side binding)."""
        with CaptureQueriesContext(connection) as captured:
            list(queryset)
        return str(captured.captured_queries[-1]["sql"])

    @staticmethod
    def _explain(sql: str, fmt: str) -> str:
        connection.ensure_connection()
        raw = connection.connection
        # keep json as the server's text rather than parsed and re-serialised
        raw.adapters.register_loader("json", TextLoader)
        with raw.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT {fmt}) {sql}")
            return "\n".join(str(row[0]) for row in cursor.fetchall())
