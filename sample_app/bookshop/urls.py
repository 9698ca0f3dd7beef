"""URLs of the Sample Bookshop. ``PLANTED.md`` says which of them are slow, and why."""

from __future__ import annotations

from catalog import views as catalog_views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", catalog_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("books/", include("catalog.urls")),
    path("", include("orders.urls")),
]
