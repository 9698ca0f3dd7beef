"""Customer, order and statistics endpoints. P4, P5, P8 and P9 of ``PLANTED.md`` live here,
and R1, the revisit release's new problem (``recent_orders``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders import queries
from orders.models import Customer, Order

#: how long the dashboard figures stay cached, seconds
DASHBOARD_TTL_S = 10
DASHBOARD_KEY = "dashboard:v1"


def _money(value: Decimal | None) -> str:
    return f"{value or Decimal(0):.2f}"


def customer_lookup(request: HttpRequest) -> JsonResponse:
    """P4 — ``?email=`` finds a customer ignoring case: ``UPPER(email) = UPPER(…)``, a seq scan."""
    email = request.GET.get("email", "").strip()
    if not email:
        return JsonResponse({"error": "email is required"}, status=400)
    try:
        customer = queries.customer_by_email(email).get()
    except Customer.DoesNotExist:
        return JsonResponse({"error": "no such customer"}, status=404)
    recent = customer.orders.order_by("-created_at")[:5]
    return JsonResponse(
        {
            "id": customer.pk,
            "name": customer.name,
            "city": customer.city,
            "recent_orders": [
                {
                    "id": o.pk,
                    "status": o.status,
                    "total": _money(o.total),
                    "created_at": o.created_at.isoformat(),
                }
                for o in recent
            ],
        }
    )


def fulfilment_queue(request: HttpRequest) -> HttpResponse:
    """P5 — the 50 oldest orders in ``?status=`` (pending by default): filter + sort, no index."""
    status = request.GET.get("status", Order.Status.PENDING)
    if status not in Order.Status.values:
        return JsonResponse({"error": f"unknown status {status!r}"}, status=400)
    orders = queries.fulfilment_queue(status)
    return render(request, "orders/queue.html", {"status": status, "orders": orders})


def recent_orders(request: HttpRequest) -> HttpResponse:
    """R1 (revisit release only) — forward-FK N+1: the page prints each order's customer."""
    return render(request, "orders/recent.html", {"orders": queries.recent_orders()})


def bestsellers(request: HttpRequest) -> HttpResponse:
    """P8 — uncached: the same join-and-aggregate over a month of order lines, every request."""
    since = queries.sales_window_start()
    rows = list(queries.bestsellers(since))
    return render(request, "orders/bestsellers.html", {"rows": rows, "since": since})


def dashboard(request: HttpRequest) -> JsonResponse:
    """Cached: order counts and takings, computed at most once every ``DASHBOARD_TTL_S``."""
    figures: dict[str, Any] | None = cache.get(DASHBOARD_KEY)
    if figures is None:
        week = timezone.now() - dt.timedelta(days=7)
        figures = {
            "by_status": [
                {"status": r["status"], "orders": r["orders"], "takings": _money(r["takings"])}
                for r in queries.status_totals()
            ],
            "last_7_days": {
                k: _money(v) if k == "takings" else v for k, v in queries.sales_since(week).items()
            },
            "computed_at": timezone.now().isoformat(),
        }
        cache.set(DASHBOARD_KEY, figures, DASHBOARD_TTL_S)
    return JsonResponse(figures)


@csrf_exempt  # an API endpoint called by the checkout service, not by a browser form
@require_POST
def confirm_order(request: HttpRequest, pk: int) -> JsonResponse:
    """P9 — confirms an order and e-mails the customer *inside the request*, through the SMTP
    relay (``EMAIL_HOST``): connecting and handing the message over take a few hundred ms."""
    order = Order.objects.select_related("customer").filter(pk=pk).first()
    if order is None:
        raise Http404(f"no order {pk}")
    if order.status == Order.Status.PENDING:
        order.status = Order.Status.PAID
        order.confirmed_at = timezone.now()
        order.save(update_fields=["status", "confirmed_at"])
    lines = list(order.lines.select_related("book"))
    body = render_to_string("orders/confirmation_email.txt", {"order": order, "lines": lines})
    send_mail(f"Your order {order.pk}", body, None, [order.customer.email])
    return JsonResponse({"id": order.pk, "status": order.status, "emailed": order.customer.email})
