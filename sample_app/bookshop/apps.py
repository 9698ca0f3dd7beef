"""The project's own app: turns on statement logging when a query log is configured."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created


def _log_statements(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Make the new connection log every statement, as ``DEBUG = True`` would, but without it."""
    connection.force_debug_cursor = True


class BookshopConfig(AppConfig):
    """Connects the query-log switch (``BOOKSHOP_QUERY_LOG``) to new database connections."""

    name = "bookshop"
    verbose_name = "Bookshop project"

    def ready(self) -> None:
        if settings.QUERY_LOG:
            connection_created.connect(_log_statements, dispatch_uid="bookshop-log-statements")
