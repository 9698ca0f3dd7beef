"""App configuration of the catalogue."""

from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Authors, books, tags and reviews."""

    name = "catalog"
