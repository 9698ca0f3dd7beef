"""The orders app's querysets, shared by the views and by ``manage.py explain_planted``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum
from django.utils import timezone

from orders.models import Customer, Order, OrderLine

__all__ = [
    "BESTSELLER_DAYS",
    "SOLD",
    "bestsellers",
    "customer_by_email",
    "fulfilment_queue",
    "recent_orders",
    "sales_since",
    "sales_window_start",
    "status_totals",
]

#: the bestseller list covers this many days
BESTSELLER_DAYS = 30
#: orders that count as sold
SOLD = (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED)


def sales_window_start(days: int = BESTSELLER_DAYS) -> dt.datetime:
    """Midnight UTC ``days`` days ago: one value all day, so the statement repeats verbatim."""
    today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days)


def customer_by_email(email: str) -> QuerySet[Customer]:
    """P4: the customer whose e-mail is ``email``, ignoring case — ``UPPER(email) = UPPER(%s)``."""
    return Customer.objects.filter(email__iexact=email)


def fulfilment_queue(status: str, limit: int = 50) -> QuerySet[Order]:
    """P5: the oldest orders in ``status``, with their customers — filter + sort, no index."""
    return (
        Order.objects.filter(status=status)
        .select_related("customer")
        .order_by("created_at", "id")[:limit]
    )


def recent_orders(limit: int = 25) -> QuerySet[Order]:
    """Revisit release, R1: the newest orders (by id: the primary key's index serves it) —
    without their customers, which the page prints."""
    return Order.objects.order_by("-id")[:limit]


def bestsellers(since: dt.datetime, limit: int = 10) -> QuerySet[OrderLine, dict[str, Any]]:
    """P8: the books sold most since ``since`` — a join and aggregate over every recent line."""
    revenue = ExpressionWrapper(
        F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=12, decimal_places=2)
    )
    return (
        OrderLine.objects.filter(order__created_at__gte=since, order__status__in=SOLD)
        .values("book_id", "book__title", "book__author__name")
        .annotate(sold=Sum("quantity"), revenue=Sum(revenue))
        .order_by("-sold", "book_id")[:limit]
    )


def status_totals() -> QuerySet[Order, dict[str, Any]]:
    """Orders and takings per status — the dashboard's aggregate (cached)."""
    return (
        Order.objects.values("status")
        .annotate(orders=Count("id"), takings=Sum("total"))
        .order_by("status")
    )


def sales_since(since: dt.datetime) -> dict[str, Any]:
    """Orders and takings since ``since`` (the dashboard's second aggregate)."""
    return Order.objects.filter(created_at__gte=since, status__in=SOLD).aggregate(
        orders=Count("id"), takings=Sum("total")
    )
