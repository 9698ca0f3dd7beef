"""Customer, order and statistics URLs."""

from __future__ import annotations

from django.conf import settings
from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("customers/lookup/", views.customer_lookup, name="customer_lookup"),  # P4
    path("orders/queue/", views.fulfilment_queue, name="fulfilment_queue"),  # P5
    path("orders/<int:pk>/confirm/", views.confirm_order, name="confirm_order"),  # P9
    path("stats/bestsellers/", views.bestsellers, name="bestsellers"),  # P8, uncached
    path("stats/dashboard/", views.dashboard, name="dashboard"),  # cached
]

if settings.VARIANT == "revisit":  # a page the revisit release added (R1)
    urlpatterns.append(path("orders/recent/", views.recent_orders, name="recent_orders"))
