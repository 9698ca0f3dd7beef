"""The shop's models, with the planted indexing problems the advisor must find.

Planted (see tests/test_indexes_advisor.py for the workload):

* ``Order.reference`` is filtered on and has no index (plain index missing);
* ``Order.status`` is filtered on and sorted by ``created_at`` (composite index missing);
* ``Customer.email`` is looked up with ``__iexact`` (expression index ``Upper("email")`` missing);
* ``Customer.name`` is looked up with ``__startswith`` (pattern-ops index missing);
* ``shop_order_total_idx`` is never used (unused index);
* ``shop_order_customer_dup`` repeats the automatic index of the ``customer`` foreign key
  (duplicate index);
* lookups by ``Order.customer`` (automatic FK index) and ``Customer.slug`` (unique) are
  already covered: no index must be proposed for them.
"""

from __future__ import annotations

from django.db import models

from shop import extra_indexes


class Customer(models.Model):
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=80, unique=True)
    country = models.CharField(max_length=2)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [*extra_indexes.for_model("customer")]  # noqa: RUF012 (Django Meta)


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    reference = models.CharField(max_length=32)
    status = models.CharField(max_length=20)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField()
    note = models.TextField(blank=True, default="")
    tags = models.ManyToManyField(Tag, blank=True, related_name="orders")

    class Meta:
        indexes = [  # noqa: RUF012 (Django Meta)
            models.Index(fields=["customer"], name="shop_order_customer_dup"),
            models.Index(fields=["total"], name="shop_order_total_idx"),
            *extra_indexes.for_model("order"),
        ]
