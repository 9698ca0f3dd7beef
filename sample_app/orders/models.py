"""Customers and their orders.

Planted here (see ``PLANTED.md``): P4, ``Customer.email`` is unique, but the look-up is
case-insensitive (``UPPER(email)``), which its index cannot serve; P5, ``Order.status`` has no
index although the fulfilment queue filters on it and sorts on ``created_at``; P7, a
duplicate of the foreign key's own index (``orders_order_customer_idx``). The revisit release
(``BOOKSHOP_VARIANT=revisit``) has the expression index P4 asked for
(``orders/migrations_revisit/0002``).
"""

from __future__ import annotations

from catalog.models import REVISIT, Book
from django.db import models
from django.db.models.functions import Upper


class Customer(models.Model):
    """Someone who buys books. Sample data only: ``customer42@example.com``."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=120)
    city = models.CharField(max_length=80)
    created_at = models.DateTimeField()

    class Meta:
        indexes = (
            # P4 is fixed in the revisit release only: the expression index the first audit proposed
            *(
                (models.Index(Upper("email"), name="orders_cust_email_u_c2ad1c_idx"),)
                if REVISIT
                else ()
            ),
        )

    def __str__(self) -> str:
        return self.email


class Order(models.Model):
    """One checkout: a customer, lines, a status that moves along the fulfilment pipeline."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending payment"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    # P5: no db_index — the fulfilment queue filters on status and sorts on created_at
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = (
            # P7: the ForeignKey already has orders_order_customer_id_<hash> on (customer_id)
            models.Index(fields=["customer"], name="orders_order_customer_idx"),
        )

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class OrderLine(models.Model):
    """A book in an order, at the price it was sold for."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    book = models.ForeignKey(Book, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveSmallIntegerField()
    unit_price = models.DecimalField(max_digits=8, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} × book {self.book_id}"
