"""Admin pages of the orders app."""

from __future__ import annotations

from django.contrib import admin

from orders.models import Customer, Order, OrderLine


class OrderLineInline(admin.TabularInline):
    """An order's lines, edited inline."""

    model = OrderLine
    raw_id_fields = ("book",)
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders with their customers joined, lines inline."""

    list_display = ("id", "customer", "status", "created_at", "total")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    inlines = (OrderLineInline,)


admin.site.register(Customer, search_fields=["email", "name"])
