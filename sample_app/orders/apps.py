"""App configuration of the orders app."""

from __future__ import annotations

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Customers, orders and order lines."""

    name = "orders"
