"""The baseline's first migration (``orders/migrations/0001_initial.py``), unchanged."""

from importlib import import_module

Migration = import_module("orders.migrations.0001_initial").Migration
