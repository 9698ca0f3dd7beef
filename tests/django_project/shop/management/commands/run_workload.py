"""``manage.py run_workload``: the shop's queries, including the planted problems.

Run with ``AUDITKIT_DJANGO_QUERY_LOG`` set so that Django logs every statement; auditkit then
reads that log like a client's.
"""

from __future__ import annotations

import random
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import reset_queries

from shop.models import Customer, Order


class Command(BaseCommand):
    help = "Run the shop workload (ORM queries with planted indexing problems)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--iterations", type=int, default=30)
        parser.add_argument("--seed", type=int, default=4)
        parser.add_argument("--customers", type=int, default=50_000)
        parser.add_argument("--orders", type=int, default=100_000)

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])
        customers, orders = options["customers"], options["orders"]
        for _ in range(options["iterations"]):
            # planted: filter on an unindexed column
            Order.objects.filter(reference=f"R{rng.randrange(1, orders):06d}").first()
            # planted: filter + sort that needs a composite index
            list(Order.objects.filter(status="pending").order_by("-created_at")[:20])
            # planted: case-insensitive lookup that needs an expression index
            Customer.objects.filter(
                email__iexact=f"User{rng.randrange(1, customers)}@Example.COM"
            ).first()
            # planted: prefix lookup that needs a pattern-ops index
            list(
                Customer.objects.filter(name__startswith=f"Name {rng.randrange(1, customers)}")[:10]
            )
            # covered: the automatic index of the customer foreign key
            list(Order.objects.filter(customer_id=rng.randrange(1, customers)))
            # covered: the unique slug
            Customer.objects.filter(slug=f"customer-{rng.randrange(1, customers)}").first()
            # covered: primary key
            Order.objects.filter(pk=rng.randrange(1, orders)).first()
            reset_queries()
