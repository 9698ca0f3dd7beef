"""The baseline's first migration (``catalog/migrations/0001_initial.py``), unchanged."""

from importlib import import_module

Migration = import_module("catalog.migrations.0001_initial").Migration
